//! `greenlight-demo-app`: the demo service as a process, for a container image or a manual try.
//! See `--help`.

use greenlight_demo_app::{DemoApp, Mode};

const HELP: &str = "greenlight-demo-app: the checkout demo service greenlight's rehearsal and example stack use

Usage: greenlight-demo-app [--bind ADDRESS] [--port PORT] [--color COLOR] [--version VERSION] [--mode MODE]

Options (or the environment variables in brackets):
  --bind ADDRESS    address to listen on, host:port [BIND] (default 0.0.0.0:8080; 127.0.0.1:8080 to stay local)
  --port PORT       port to listen on, on every interface [PORT] (ignored with --bind)
  --color COLOR     what /api/version reports as the color [APP_COLOR] (default green)
  --version VERSION what /api/version reports as the version [APP_VERSION] (default 2.0.0)
  --mode MODE       healthy, broken (the orders API answers 500), fails-after-N, or slows-after-N (orders take 400ms) [APP_MODE]
  -h, --help        this text

Routes: /health, /api/version, /api/orders";

#[tokio::main]
async fn main() {
    if let Err(message) = run().await {
        eprintln!("greenlight-demo-app: {message}\n(see greenlight-demo-app --help)");
        std::process::exit(2);
    }
}

async fn run() -> Result<(), String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut bind = var("BIND");
    let mut port = var("PORT").unwrap_or_else(|| "8080".into());
    let mut color = var("APP_COLOR").unwrap_or_else(|| "green".into());
    let mut version = var("APP_VERSION").unwrap_or_else(|| "2.0.0".into());
    let mut mode = var("APP_MODE").unwrap_or_else(|| "healthy".into());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            println!("{HELP}");
            return Ok(());
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--bind" => bind = Some(value),
            "--port" => port = value,
            "--color" => color = value,
            "--version" => version = value,
            "--mode" => mode = value,
            other => return Err(format!("unknown option {other}")),
        }
    }
    let mode: Mode = mode.parse()?;
    let address = bind.unwrap_or_else(|| format!("0.0.0.0:{port}"));
    let running = DemoApp {
        color,
        version,
        mode,
    }
    .serve(&address)
    .await
    .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    println!("checkout demo listening on {}", running.addr);
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    Ok(())
}
