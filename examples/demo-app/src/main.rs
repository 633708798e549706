//! `greenlight-demo-app [--port 8080] [--color green] [--version 2.0.0] [--mode healthy|broken|fails-after-N]`
//! (or the environment variables PORT, APP_COLOR, APP_VERSION, APP_MODE): the demo service as a
//! process, for a container image or a manual try.

use greenlight_demo_app::{DemoApp, Mode};

#[tokio::main]
async fn main() {
    if let Err(message) = run().await {
        eprintln!("greenlight-demo-app: {message}");
        std::process::exit(2);
    }
}

async fn run() -> Result<(), String> {
    let mut port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let mut color = std::env::var("APP_COLOR").unwrap_or_else(|_| "green".into());
    let mut version = std::env::var("APP_VERSION").unwrap_or_else(|_| "2.0.0".into());
    let mut mode = std::env::var("APP_MODE").unwrap_or_else(|_| "healthy".into());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => port = value,
            "--color" => color = value,
            "--version" => version = value,
            "--mode" => mode = value,
            other => return Err(format!("unknown option {other}")),
        }
    }
    let mode: Mode = mode.parse()?;
    let running = DemoApp {
        color,
        version,
        mode,
    }
    .serve(&format!("0.0.0.0:{port}"))
    .await
    .map_err(|e| format!("cannot listen on port {port}: {e}"))?;
    println!("checkout demo listening on {}", running.addr);
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    Ok(())
}
