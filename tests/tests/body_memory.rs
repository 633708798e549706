//! The memory bound on bodies being read, in a process of its own (the bound is process-wide,
//! so no other test may read bodies at the same time).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::run;
use greenlight_fakes::green::{Behaviour, Call, GreenServer, Reply};

/// The tests here take turns: each asserts the process-wide bound is back to nothing.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_large_answers_in_flight_stay_within_the_body_memory_bound() {
    let _alone = ALONE.lock().await;
    let body = bytes::Bytes::from(vec![b'x'; 1024 * 1024]);
    let green = GreenServer::start(Behaviour::scripted(move |_: &Call| {
        Reply::new(200, "text/plain", body.clone())
    }))
    .await;
    let plan = r#"
version: 1
checks:
  - {name: big, path: /, timeout: 20s, samples: {count: 400, concurrency: 256}, expect: {body_contains: x}}
"#;
    let peak = Arc::new(AtomicU64::new(0));
    let watch = peak.clone();
    let monitor = tokio::spawn(async move {
        for _ in 0..20_000 {
            let now = greenlight::check::body_memory_in_use_kib() as u64;
            watch.fetch_max(now, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let verdict = run(plan, &green, Duration::from_secs(60)).await;
    monitor.abort();
    assert!(verdict.succeeded(), "{}", verdict.summary("verify"));
    assert!(peak.load(Ordering::Relaxed) <= 32 * 1024);
    assert!(
        peak.load(Ordering::Relaxed) > 0,
        "the monitor saw bodies being read"
    );
    assert_eq!(
        greenlight::check::body_memory_in_use_kib(),
        0,
        "every body's memory is given back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answers_are_compared_within_the_body_memory_bound() {
    let _alone = ALONE.lock().await;
    // About 900 KiB of JSON a side; green's last item differs.
    let big = |last: u32| {
        Behaviour::scripted(move |call: &Call| {
            let mut items: Vec<String> = (0..30_000).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
            items.push(format!(r#"{{"n":{last},"at":{}}}"#, call.n));
            Reply::new(200, "application/json", format!("[{}]", items.join(",")))
        })
    };
    let blue = GreenServer::start(big(1)).await;
    let green = GreenServer::start(big(2)).await;
    let plan = r#"
version: 1
checks:
  - {name: big, path: /, compare: {samples: 20, concurrency: 8, latency: false}}
"#;
    let spec = greenlight::PlanSpec::parse(plan).unwrap();
    let blue_url = blue.url();
    let env = [("GREENLIGHT_PRODUCTION_URL", blue_url.as_str())];
    let verdict = common::run_spec(&spec, &green, &env, Duration::from_secs(30)).await;
    assert!(
        verdict
            .reason
            .contains("20 of 20 answers differ: $[*].n (1 → 2) in GET "),
        "{}",
        verdict.reason
    );
    // `at` differs between blue's own answers: noise, not a finding.
    assert!(!verdict.reason.contains("$[*].at"), "{}", verdict.reason);
    assert_eq!(greenlight::check::body_memory_in_use_kib(), 0);
}
