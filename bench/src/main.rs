//! `greenlight-bench`: greenlight's function binaries side by side with an equivalent Python/boto3
//! hook, measured in the same run on this machine. Every figure is a median over several runs.
//! Everything runs on 127.0.0.1: a Lambda Runtime API emulator, a fake CodeDeploy, a green server.
//!
//! Usage: greenlight-bench --functions-dir DIR --python PYTHON [--out FILE] [--quick] [--runs N] [--only load]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use greenlight_fakes::{
    Behaviour, FakeCodeDeploy, FunctionProcess, GreenServer, InvocationResult, RuntimeApi,
};
use serde_json::{json, Value};

const HOOK: &str = "after-allow-test-traffic";
const FUNCTIONS: [&str; 4] = [
    "after-allow-test-traffic",
    "before-allow-traffic",
    "ecs-lifecycle-hook",
    "alarm-rollback",
];
const BASELINE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/baseline/hook.py");
const INVOKE_LIMIT: Duration = Duration::from_secs(60);

struct Args {
    functions_dir: PathBuf,
    python: PathBuf,
    out: Option<PathBuf>,
    runs: usize,
    quick: bool,
    /// `--only load`: the load figures alone (for working on them).
    only_load: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        functions_dir: "target/lambda".into(),
        python: "python3".into(),
        out: None,
        runs: 7,
        quick: false,
        only_load: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--quick" => {
                args.quick = true;
                args.runs = 1;
            }
            "--functions-dir" => args.functions_dir = it.next().context("--functions-dir needs a directory")?.into(),
            "--python" => args.python = it.next().context("--python needs an interpreter")?.into(),
            "--out" => args.out = Some(it.next().context("--out needs a file")?.into()),
            "--only" => match it.next().as_deref() {
                Some("load") => args.only_load = true,
                _ => bail!("--only takes `load`"),
            },
            "--runs" => args.runs = it.next().context("--runs needs a number")?.parse().context("--runs needs a number")?,
            other => bail!("unknown option {other}; usage: greenlight-bench --functions-dir DIR --python PYTHON [--out FILE] [--quick] [--runs N] [--only load]"),
        }
    }
    Ok(args)
}

/// Something that can run under the Runtime API: a bootstrap, or Python with the baseline script.
#[derive(Clone)]
enum Subject {
    Rust(PathBuf),
    Python(PathBuf),
}

impl Subject {
    fn spawn(&self, api: &RuntimeApi, env: &[(&str, String)]) -> Result<FunctionProcess> {
        Ok(match self {
            Subject::Rust(bootstrap) => FunctionProcess::spawn(bootstrap, api, env)?,
            Subject::Python(python) => {
                FunctionProcess::spawn_with_args(python, &[BASELINE], api, env)?
            }
        })
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Process start → first `GET /invocation/next`.
async fn init_time(subject: &Subject, codedeploy: &FakeCodeDeploy) -> Result<f64> {
    let api = RuntimeApi::start().await;
    let started = Instant::now();
    let process = subject.spawn(
        &api,
        &[
            ("AWS_ENDPOINT_URL_CODEDEPLOY", codedeploy.url()),
            ("GREENLIGHT_TEST_URL", "http://127.0.0.1:9".into()),
        ],
    )?;
    let polled = api.wait_for_first_poll(Duration::from_secs(30)).await;
    let output = process.output();
    process.stop().await;
    match polled {
        Some(at) => Ok(ms(at.duration_since(started))),
        None => bail!("the function never polled for an invocation; it printed:\n{output}"),
    }
}

fn event(n: usize) -> Value {
    json!({"DeploymentId": format!("d-BENCH{n}"), "LifecycleEventHookExecutionId": format!("bench-execution-{n}")})
}

/// One invocation of a hook with `checks` checks against `green`: wall time (ms), the server's own
/// time (ms), and the process's peak RSS (KiB).
async fn invocation(
    subject: &Subject,
    green: &GreenServer,
    checks: usize,
    concurrency: usize,
    n: usize,
) -> Result<(f64, f64, u64)> {
    let (api, codedeploy) = (RuntimeApi::start().await, FakeCodeDeploy::start().await);
    let plan = json!({
        "version": 1,
        "concurrency": concurrency,
        "defaults": {"retries": 0},
        "checks": (0..checks).map(|i| json!({"name": format!("c{i}"), "path": "/health"})).collect::<Vec<_>>(),
    });
    let urls: Vec<String> = (0..checks)
        .map(|_| format!("{}/health", green.url()))
        .collect();
    let process = subject.spawn(
        &api,
        &[
            ("AWS_ENDPOINT_URL_CODEDEPLOY", codedeploy.url()),
            ("GREENLIGHT_TEST_URL", green.url()),
            ("GREENLIGHT_PLAN", plan.to_string()),
            ("BASELINE_URLS", serde_json::to_string(&urls)?),
        ],
    )?;
    api.wait_for_first_poll(Duration::from_secs(30))
        .await
        .context("the function never polled")?;
    let busy_before = green.busy_time();
    let started = Instant::now();
    let answer = api.invoke(event(n), INVOKE_LIMIT).await;
    let wall = ms(started.elapsed());
    let busy = ms(green.busy_time() - busy_before);
    let rss = process.peak_rss_kib().unwrap_or_default();
    let output = process.output();
    process.stop().await;
    if !matches!(answer, InvocationResult::Response(_))
        || codedeploy.reported_statuses() != vec!["Succeeded"]
    {
        bail!("the invocation did not succeed ({answer:?}, reported {:?}); the function printed:\n{output}", codedeploy.reported_statuses());
    }
    Ok((wall, busy, rss))
}

struct Load {
    ours_rate: f64,
    wrk_rate: f64,
    /// From the paired runs' ratios, the two orders weighed alike (see `load_versus_wrk`).
    ratio: f64,
    rss_kib: u64,
    overhead_ms: f64,
}

/// The hook sends `requests` requests in one sampled check; then wrk loads the same server for the
/// same time. Medians over `runs`.
async fn load_versus_wrk(subject: &Subject, requests: u64, runs: usize) -> Result<Load> {
    let wrk = which("wrk").context("wrk is not installed (apt-get install wrk)")?;
    // A lean server: no logging, the same answer every time.
    let server = greenlight_fakes::server::LoopbackServer::start(|_request| async {
        greenlight_fakes::server::respond(200, "text/plain", "ok")
    })
    .await?;
    let url = server.url();
    let sequential = (requests / 5).max(1000);
    let (mut ours, mut theirs, mut ratios, mut rss, mut overhead) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut last_wall: Option<Duration> = None;
    for n in 0..runs {
        // 16 in flight: the request rate. Each run is a pair, greenlight and wrk back to back for
        // the same time, first one then the other in turn, so that drifts of a shared machine
        // fall on both sides; the figure is the median of the pairs' ratios.
        let wrk_first = last_wall.filter(|_| n % 2 == 1);
        let before = match wrk_first {
            Some(wall) => Some(wrk_rate(&wrk, &url, 2, 16, wall)?),
            None => None,
        };
        let (wall, peak) = hook_load(subject, &url, requests, 16, 3 * n).await?;
        last_wall = Some(wall);
        rss.push(peak as f64);
        let our_rate = requests as f64 / wall.as_secs_f64();
        let their_rate = match before {
            Some(rate) => rate,
            None => wrk_rate(&wrk, &url, 2, 16, wall)?,
        };
        ours.push(our_rate);
        theirs.push(their_rate);
        ratios.push((our_rate / their_rate, wrk_first.is_some()));
        // One at a time: what greenlight adds to each request over wrk's own round trip.
        let (wall, _) = hook_load(subject, &url, sequential, 1, 3 * n + 1).await?;
        let ours_each = wall.as_secs_f64() * 1000.0 / sequential as f64;
        let wrk_each = 1000.0 / wrk_rate(&wrk, &url, 1, 1, wall)?;
        overhead.push(ours_each - wrk_each);
        eprintln!(
            "load: greenlight {our_rate:.0}/s, wrk {their_rate:.0}/s ({:.0}%{}); one at a time {ours_each:.3} ms vs wrk {wrk_each:.3} ms",
            100.0 * our_rate / their_rate,
            if wrk_first.is_some() { ", wrk first" } else { "" }
        );
    }
    // Whichever runs second in a pair meets a server warmed by the first: the pairs run in both
    // orders, and the figure is the geometric mean of the two orders' medians, which cancels that.
    let in_order = |wrk_first: bool| -> Vec<f64> {
        ratios
            .iter()
            .filter(|(_, w)| *w == wrk_first)
            .map(|(r, _)| *r)
            .collect()
    };
    let (ours_first, wrk_first) = (in_order(false), in_order(true));
    let ratio = if wrk_first.is_empty() {
        median(ours_first.clone())
    } else {
        (median(ours_first.clone()) * median(wrk_first.clone())).sqrt()
    };
    eprintln!(
        "load: ratio {:.0}% (greenlight first: median {:.0}% of {} pairs; wrk first: median {:.0}% of {})",
        ratio * 100.0,
        median(ours_first.clone()) * 100.0,
        ours_first.len(),
        if wrk_first.is_empty() { 0.0 } else { median(wrk_first.clone()) * 100.0 },
        wrk_first.len()
    );
    Ok(Load {
        ours_rate: median(ours),
        wrk_rate: median(theirs),
        ratio,
        rss_kib: median(rss) as u64,
        overhead_ms: median(overhead),
    })
}

/// One invocation of the hook whose plan is one sampled check of `count` requests at
/// `concurrency`: its wall time and the process's peak RSS (KiB).
async fn hook_load(
    subject: &Subject,
    url: &str,
    count: u64,
    concurrency: usize,
    n: usize,
) -> Result<(Duration, u64)> {
    let (api, codedeploy) = (RuntimeApi::start().await, FakeCodeDeploy::start().await);
    let plan = json!({
        "version": 1,
        "budget": "10m",
        "checks": [{"name": "load", "path": "/", "timeout": "10s",
                    "samples": {"count": count, "concurrency": concurrency},
                    "thresholds": {"errors": "0%"}}],
    });
    let process = subject.spawn(
        &api,
        &[
            ("AWS_ENDPOINT_URL_CODEDEPLOY", codedeploy.url()),
            ("GREENLIGHT_TEST_URL", url.to_string()),
            ("GREENLIGHT_PLAN", plan.to_string()),
            ("GREENLIGHT_INVOCATION_TIMEOUT", "600s".into()),
        ],
    )?;
    api.wait_for_first_poll(Duration::from_secs(30))
        .await
        .context("the function never polled")?;
    let started = Instant::now();
    let answer = api
        .invoke(event(10_000 + n), Duration::from_secs(600))
        .await;
    let wall = started.elapsed();
    let rss = process.peak_rss_kib().unwrap_or_default();
    let output = process.output();
    process.stop().await;
    if !matches!(answer, InvocationResult::Response(_))
        || codedeploy.reported_statuses() != vec!["Succeeded"]
    {
        bail!("the load invocation did not succeed ({answer:?}); the function printed:\n{output}");
    }
    Ok((wall, rss))
}

/// The hook compares green with blue, 200 pairs of GET /api/version against two loopback
/// servers that answer in 5 ms: the invocation's wall time, and the time its statistics took as
/// the verdict reports it (medians over `runs`).
async fn comparison(subject: &Subject, runs: usize) -> Result<(f64, f64)> {
    let five_ms = || {
        greenlight_fakes::green::Behaviour::scripted(|_: &greenlight_fakes::green::Call| {
            greenlight_fakes::green::Reply::new(200, "application/json", r#"{"version":"2.0.0"}"#)
                .after(Duration::from_millis(5))
        })
    };
    let (blue, green) = (
        GreenServer::start(five_ms()).await,
        GreenServer::start(five_ms()).await,
    );
    let plan = json!({
        "version": 1,
        "checks": [{"name": "same-as-blue", "path": "/api/version", "compare": {"samples": 200}}],
    });
    let (mut walls, mut stats) = (Vec::new(), Vec::new());
    for n in 0..runs {
        let (api, codedeploy) = (RuntimeApi::start().await, FakeCodeDeploy::start().await);
        let process = subject.spawn(
            &api,
            &[
                ("AWS_ENDPOINT_URL_CODEDEPLOY", codedeploy.url()),
                ("GREENLIGHT_TEST_URL", green.url()),
                ("GREENLIGHT_PRODUCTION_URL", blue.url()),
                ("GREENLIGHT_PLAN", plan.to_string()),
            ],
        )?;
        api.wait_for_first_poll(Duration::from_secs(30))
            .await
            .context("the function never polled")?;
        let started = Instant::now();
        let answer = api.invoke(event(20_000 + n), Duration::from_secs(60)).await;
        walls.push(ms(started.elapsed()));
        if let InvocationResult::Response(verdict) = &answer {
            if let Some(took) = verdict["checks"][0]["comparison"]["statistics_ms"].as_f64() {
                stats.push(took);
            }
        }
        let output = process.output();
        process.stop().await;
        if !matches!(answer, InvocationResult::Response(_))
            || codedeploy.reported_statuses() != vec!["Succeeded"]
        {
            bail!("the comparison did not succeed ({answer:?}); the function printed:\n{output}");
        }
    }
    if stats.is_empty() {
        bail!("the verdict did not carry the comparison's statistics time");
    }
    Ok((median(walls), median(stats)))
}

/// wrk's request rate against `url` with `threads` and `connections`, for about `time`.
fn wrk_rate(wrk: &Path, url: &str, threads: u32, connections: u32, time: Duration) -> Result<f64> {
    let seconds = time.as_secs().max(2);
    let out = std::process::Command::new(wrk)
        .args([
            &format!("-t{threads}"),
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            &format!("{url}/"),
        ])
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .with_context(|| format!("wrk printed no rate:\n{text}"))
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// Alarm event in → `StopDeployment` received, with one warm alarm-rollback process.
async fn alarm_to_stop(bootstrap: &Path, runs: usize) -> Result<(f64, f64)> {
    let (api, codedeploy) = (RuntimeApi::start().await, FakeCodeDeploy::start().await);
    let process = FunctionProcess::spawn(
        bootstrap,
        &api,
        &[
            ("AWS_ENDPOINT_URL_CODEDEPLOY", codedeploy.url()),
            ("AWS_ENDPOINT_URL", codedeploy.url()),
        ],
    )?;
    api.wait_for_first_poll(Duration::from_secs(30))
        .await
        .context("alarm-rollback never polled")?;
    let mut samples = Vec::new();
    for i in 0..runs + 1 {
        let id = format!("d-ALARM{i}");
        codedeploy.add_deployment(&id, "checkout", "checkout-prod", "InProgress");
        let event = json!({
            "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
            "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-5xx"],
            "detail": {"alarmName": "checkout-5xx",
                "alarmTags": {"greenlight:codedeploy-application": "checkout", "greenlight:codedeploy-deployment-group": "checkout-prod"},
                "state": {"value": "ALARM", "reason": "bench", "timestamp": "2026-11-22T12:00:00.000+0000"}}
        });
        let sent = Instant::now();
        let answer = api.invoke(event, INVOKE_LIMIT).await;
        let stop = codedeploy
            .calls_to("StopDeployment")
            .into_iter()
            .find(|c| c.body["deploymentId"] == id.as_str());
        match stop {
            Some(call) => samples.push(ms(call.at.duration_since(sent))),
            None => bail!(
                "alarm-rollback did not stop {id}: {answer:?}\n{}",
                process.output()
            ),
        }
    }
    process.stop().await;
    let first = samples.remove(0);
    Ok((first, median(samples)))
}

fn zipped_size_mb(bootstrap: &Path, python: &Path) -> Result<f64> {
    let script = "import io,sys,zipfile\nb=io.BytesIO()\nz=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED)\nz.write(sys.argv[1],'bootstrap')\nz.close()\nprint(len(b.getvalue()))";
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .arg(bootstrap)
        .output()?;
    let bytes: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("zip size")?;
    Ok(bytes / 1_048_576.0)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map(|kib| format!("{:.0} GiB", kib / 1_048_576.0))
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cpu}, {cores} cores, {memory}")
}

struct Row {
    figure: String,
    ours: String,
    peer: String,
    ratio: String,
    target: String,
    met: Option<bool>,
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("greenlight-bench: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let args = parse_args()?;
    let python = Subject::Python(args.python.clone());
    let bootstrap = |f: &str| args.functions_dir.join(f).join("bootstrap");
    for f in FUNCTIONS {
        if !bootstrap(f).is_file() {
            bail!("{} is missing: build with `cargo lambda build --release --bin {f}` (bench/run does)", bootstrap(f).display());
        }
    }
    let runs = args.runs.max(1);
    if args.only_load {
        let requests: u64 = if args.quick { 10_000 } else { 100_000 };
        let load = load_versus_wrk(&Subject::Rust(bootstrap(HOOK)), requests, runs).await?;
        println!(
            "load: greenlight {:.0}/s, wrk {:.0}/s ({:.0}%), peak RSS {:.1} MiB, overhead {:.3} ms",
            load.ours_rate,
            load.wrk_rate,
            100.0 * load.ratio,
            load.rss_kib as f64 / 1024.0,
            load.overhead_ms
        );
        return Ok(());
    }
    let codedeploy = FakeCodeDeploy::start().await;
    let mut rows = Vec::new();
    let mut notes = Vec::new();

    // 1. Init.
    let mut python_init = Vec::new();
    for _ in 0..runs {
        python_init.push(init_time(&python, &codedeploy).await?);
    }
    let python_init = median(python_init);
    for f in FUNCTIONS {
        let mut samples = Vec::new();
        for _ in 0..runs {
            samples.push(init_time(&Subject::Rust(bootstrap(f)), &codedeploy).await?);
        }
        let ours = median(samples);
        let ratio = python_init / ours;
        rows.push(Row {
            figure: format!("Init: {f}"),
            ours: format!("{ours:.1} ms"),
            peer: format!("{python_init:.1} ms"),
            ratio: format!("1/{ratio:.0}"),
            target: "≤ 1/10".into(),
            met: Some(ratio >= 10.0),
        });
        eprintln!("init {f}: {ours:.1} ms (python {python_init:.1} ms)");
    }

    // 2. One invocation with 20 checks: wall time and peak memory.
    let green = GreenServer::start(Behaviour::Healthy).await;
    let (mut our_wall, mut our_rss, mut py_wall, mut py_rss) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for n in 0..runs {
        let (wall, _, rss) = invocation(&Subject::Rust(bootstrap(HOOK)), &green, 20, 8, n).await?;
        our_wall.push(wall);
        our_rss.push(rss as f64);
        let (wall, _, rss) = invocation(&python, &green, 20, 1, n).await?;
        py_wall.push(wall);
        py_rss.push(rss as f64);
    }
    let (ow, orss, pw, prss) = (
        median(our_wall),
        median(our_rss),
        median(py_wall),
        median(py_rss),
    );
    rows.push(Row {
        figure: "Hook invocation, 20 checks: wall time".into(),
        ours: format!("{ow:.1} ms"),
        peer: format!("{pw:.1} ms"),
        ratio: format!("1/{:.1}", pw / ow),
        target: "-".into(),
        met: None,
    });
    rows.push(Row {
        figure: "Hook invocation, 20 checks: peak RSS".into(),
        ours: format!("{:.1} MiB", orss / 1024.0),
        peer: format!("{:.1} MiB", prss / 1024.0),
        ratio: format!("1/{:.1}", prss / orss),
        target: "≤ 1/3".into(),
        met: Some(prss / orss >= 3.0),
    });
    eprintln!(
        "invocation: {ow:.1} ms, {:.1} MiB (python {pw:.1} ms, {:.1} MiB)",
        orss / 1024.0,
        prss / 1024.0
    );

    // 3. Package size.
    for f in FUNCTIONS {
        let size = zipped_size_mb(&bootstrap(f), &args.python)?;
        rows.push(Row {
            figure: format!("Package (zipped bootstrap): {f}"),
            ours: format!("{size:.2} MB"),
            peer: "-".into(),
            ratio: "-".into(),
            target: "≤ 6 MB".into(),
            met: Some(size <= 6.0),
        });
    }

    // 4. Verification overhead per check: (invocation wall time − the server's own time) / checks,
    //    checks one at a time so that times add up; and the marginal cost of one more check.
    let mut per_n = Vec::new();
    for checks in [1usize, 20, 200] {
        let mut samples = Vec::new();
        let mut walls = Vec::new();
        for n in 0..runs {
            let (wall, busy, _) =
                invocation(&Subject::Rust(bootstrap(HOOK)), &green, checks, 1, n).await?;
            samples.push((wall - busy) / checks as f64);
            walls.push(wall - busy);
        }
        let overhead = median(samples);
        per_n.push((checks, median(walls)));
        rows.push(Row {
            figure: format!("Overhead per check, {checks} check(s) (whole invocation)"),
            ours: format!("{overhead:.3} ms"),
            peer: "-".into(),
            ratio: "-".into(),
            target: if checks == 1 {
                "-".into()
            } else {
                "< 1 ms".into()
            },
            met: if checks == 1 {
                None
            } else {
                Some(overhead < 1.0)
            },
        });
    }
    let marginal = (per_n[2].1 - per_n[0].1) / 199.0;
    rows.push(Row {
        figure: "Overhead of one more check (marginal, 1 → 200)".into(),
        ours: format!("{marginal:.3} ms"),
        peer: "-".into(),
        ratio: "-".into(),
        target: "< 1 ms".into(),
        met: Some(marginal < 1.0),
    });
    notes.push(format!("The 1-check figure carries the whole fixed cost of an invocation (event, report to CodeDeploy, answer): {:.2} ms.", per_n[0].1));

    // 5. Load: greenlight's sampled check against wrk, on the same lean loopback server at the
    // same concurrency.
    let requests: u64 = if args.quick { 10_000 } else { 100_000 };
    match load_versus_wrk(&Subject::Rust(bootstrap(HOOK)), requests, runs).await {
        Ok(load) => {
            let ratio = load.ratio;
            rows.push(Row {
                figure: format!("Load probe, {requests} requests at 16 in flight: request rate"),
                ours: format!("{:.0}/s", load.ours_rate),
                peer: format!("{:.0}/s (wrk)", load.wrk_rate),
                ratio: format!("{:.0}%", ratio * 100.0),
                target: "≥ 90% of wrk".into(),
                met: Some(ratio >= 0.9),
            });
            rows.push(Row {
                figure: format!("Load probe, {requests} requests: peak RSS"),
                ours: format!("{:.1} MiB", load.rss_kib as f64 / 1024.0),
                peer: "-".into(),
                ratio: "-".into(),
                target: "≤ 32 MiB".into(),
                met: Some(load.rss_kib <= 32 * 1024),
            });
            rows.push(Row {
                figure: "Sampling overhead per request (one at a time, over wrk's round trip)"
                    .into(),
                ours: format!("{:.3} ms", load.overhead_ms),
                peer: "-".into(),
                ratio: "-".into(),
                target: "< 0.2 ms".into(),
                met: Some(load.overhead_ms < 0.2),
            });
            notes.push(format!("Load: both send GET / to the same hyper server on 127.0.0.1 (no logging), 16 requests in flight: wrk with 2 threads for as long as greenlight took (in each run a pair, back to back, wrk first in every other pair; whichever goes second meets a server warmed by the first and is about a tenth faster, so the rate figure is the geometric mean of the two orders' median ratios), greenlight as the after-allow-test-traffic hook running one check with `samples: {{count: {requests}, concurrency: 16}}` (each answer judged). The machine's 2 cores are shared by the server and the load generator in both cases. The overhead is measured one request at a time: the hook's time per request (each answer judged, the invocation's fixed cost included) less wrk's time per request against the same server (`-t1 -c1`)."));
        }
        Err(e) => notes.push(format!("Load figures not measured: {e}")),
    }

    // 6. Comparing green with blue.
    let (wall, stats) = comparison(&Subject::Rust(bootstrap(HOOK)), runs).await?;
    rows.push(Row {
        figure: "Compare probe, 2×200 requests against a 5 ms service: invocation wall time".into(),
        ours: format!("{:.2} s", wall / 1000.0),
        peer: "-".into(),
        ratio: "-".into(),
        target: "≤ 5 s".into(),
        met: Some(wall <= 5000.0),
    });
    rows.push(Row {
        figure: "Compare probe: statistics for 200 + 200 latencies".into(),
        ours: format!("{stats:.2} ms"),
        peer: "-".into(),
        ratio: "-".into(),
        target: "< 10 ms".into(),
        met: Some(stats < 10.0),
    });
    notes.push("Compare: the after-allow-test-traffic hook runs one `compare: {samples: 200}` check of GET /api/version against two loopback servers that answer in 5 ms (4 pairs in flight, blue asked twice first to learn noise, every pair diffed). The statistics figure is the time the shipped hook spent on them (percentiles, Mann-Whitney with the Hodges-Lehmann shift and its interval over 200 values a side, Fisher's test), as its verdict reports it (`statistics_ms`).".into());

    // 7. Alarm → stop.
    let (cold, warm) = alarm_to_stop(&bootstrap("alarm-rollback"), runs.max(3)).await?;
    rows.push(Row {
        figure: "Alarm event in → StopDeployment out (warm)".into(),
        ours: format!("{warm:.1} ms"),
        peer: "-".into(),
        ratio: "-".into(),
        target: "< 50 ms".into(),
        met: Some(warm < 50.0),
    });
    rows.push(Row {
        figure: "Alarm event in → StopDeployment out (first event)".into(),
        ours: format!("{cold:.1} ms"),
        peer: "-".into(),
        ratio: "-".into(),
        target: "-".into(),
        met: None,
    });

    let report = render(&rows, &notes, &args, runs);
    println!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

fn render(rows: &[Row], notes: &[String], args: &Args, runs: usize) -> String {
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let mut out = format!(
        "# greenlight benchmarks\n\n- Date: {date}\n- Machine: {}\n- Mode: {} ({runs} run{} per figure; figures are medians)\n- Subjects: `cargo lambda build --release` bootstraps from `{}`; the peer is `bench/baseline/hook.py` (Python {} with boto3), the same work: read the event, GET each URL, report to CodeDeploy. Both run under the same Lambda Runtime API emulator on 127.0.0.1, against the same loopback server and fake CodeDeploy.\n\n",
        machine(),
        if args.quick { "quick" } else { "full" },
        if runs == 1 { "" } else { "s" },
        args.functions_dir.display(),
        std::process::Command::new(&args.python).arg("--version").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().trim_start_matches("Python ").to_string()).unwrap_or_default(),
    );
    out.push_str("| Figure | greenlight | Python/boto3 | greenlight ÷ Python | Target | Met |\n|---|---|---|---|---|---|\n");
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {met} |\n",
            r.figure, r.ours, r.peer, r.ratio, r.target
        ));
    }
    out.push_str("\nNotes:\n\n");
    out.push_str("- greenlight runs the 20 checks with its default concurrency (8); the baseline runs them one after another, as the usual Python hooks do. The overhead figures run greenlight one check at a time, so that times add up.\n");
    out.push_str("- Peak RSS is the process's VmHWM after the invocation.\n");
    out.push_str("- Init ends at the first poll for an event. greenlight builds its AWS clients (configuration, TLS roots) on a background task from start-up, so that work overlaps the wait for the first event; what is left of it when the first event arrives is part of that invocation (see the fixed cost below), not of init. The Python hook builds its boto3 client at import, the usual way.\n");
    out.push_str("- Package size (MB here is MiB, 1,048,576 bytes): mostly TLS (aws-lc, rustls) and the AWS SDK. The release profile keeps opt-level 3 on the check path (reqwest, hyper, rustls, serde_json, regex, greenlight) and builds what runs once per invocation at `opt-level = \"s\"`: the AWS SDK crates, HTTP/2 and the SDK's HTTP client (AWS calls only), aws-lc (handshakes; bulk encryption is assembly either way), decompression and the YAML parser. Unwinding is kept on purpose (a panic in a check must still be reported).\n");
    for note in notes {
        out.push_str(&format!("- {note}\n"));
    }
    out
}
