//! The memory bound on bodies being read, in a process of its own (the bound is process-wide,
//! so no other test may read bodies at the same time).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::run;
use greenlight_fakes::green::{Behaviour, Call, GreenServer, Reply};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_large_answers_in_flight_stay_within_the_body_memory_bound() {
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
