//! Sampled and load checks send through their workers' own connections (`http://` URLs, see
//! shared/src/lane.rs). What green sees must not change: the same requests as a single check
//! sends, no more connections than requests in flight, and every hostile answer (a closed
//! connection, an endless or oversized body, nothing listening) ends as a named error in time.

use std::time::{Duration, Instant};

use greenlight::plan::Setting;
use greenlight::Outcome;
mod common;
use common::run;
use greenlight_fakes::green::{Behaviour, Call, GreenServer, Received, Reply};

fn sorted_headers(received: &Received) -> Vec<(String, String)> {
    let mut headers = received.headers.clone();
    headers.sort();
    headers
}

fn failures_of(verdict: &greenlight::Verdict) -> String {
    match &verdict.checks[0].outcome {
        Outcome::Failed { failures } => failures
            .iter()
            .map(|f| format!("{}: {}", f.expectation, f.measured))
            .collect::<Vec<_>>()
            .join("; "),
        other => format!("{other:?}"),
    }
}

/// Runs `plan` against `target`, a URL no GreenServer stands behind.
async fn verify_at(plan: &str, target: String) -> greenlight::Verdict {
    let spec = greenlight::PlanSpec::parse(plan).unwrap();
    let target = Setting::new(target, "--target");
    let plan = spec
        .resolve(Some(&target), &greenlight::Env::from_pairs([]))
        .unwrap();
    greenlight::verify(
        &greenlight::Tools::http(greenlight::http::build_check_client().unwrap()),
        std::sync::Arc::new(plan),
        greenlight::Deadline::after(Duration::from_secs(10)),
    )
    .await
}

#[tokio::test]
async fn a_sample_reaches_green_exactly_as_a_single_check_does() {
    let request = r#"
    method: POST
    path: "/orders?currency=EUR&page=2"
    headers: {x-tenant: acme, content-type: application/json}
    body: '{"sku":"A-1","quantity":2}'"#;
    let single = GreenServer::start(Behaviour::Healthy).await;
    let plan =
        format!("version: 1\nchecks:\n  - name: one{request}\n    expect: {{status: 200}}\n");
    assert!(run(&plan, &single, Duration::from_secs(10))
        .await
        .succeeded());
    let sampled = GreenServer::start(Behaviour::Healthy).await;
    let plan = format!(
        "version: 1\nchecks:\n  - name: many{request}\n    samples: {{count: 6, concurrency: 2}}\n    expect: {{status: 200}}\n"
    );
    let verdict = run(&plan, &sampled, Duration::from_secs(10)).await;
    assert!(verdict.succeeded(), "{}", failures_of(&verdict));

    let one = &single.received()[0];
    let many = sampled.received();
    assert_eq!(many.len(), 6);
    let host = |r: &Received| {
        r.headers
            .iter()
            .find(|(k, _)| k == "host")
            .map(|(_, v)| v.clone())
    };
    for sample in &many {
        assert_eq!((&sample.method, &sample.path), (&one.method, &one.path));
        // The same headers but for the port in Host (another server).
        let strip = |r: &Received| {
            sorted_headers(r)
                .into_iter()
                .filter(|(k, _)| k != "host")
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(sample), strip(one));
        assert_eq!(
            host(sample).unwrap(),
            sampled.url().trim_start_matches("http://")
        );
    }
    assert!(one
        .headers
        .iter()
        .any(|(k, v)| k == "user-agent" && v.starts_with("greenlight/")));
    assert!(one
        .headers
        .iter()
        .any(|(k, v)| k == "content-length" && v == "26"));
}

#[tokio::test]
async fn a_host_header_in_the_plan_is_sent_in_place_of_the_urls() {
    let green = GreenServer::start(Behaviour::Healthy).await;
    let plan = r#"
version: 1
checks:
  - {name: routed, path: /health, headers: {host: checkout.example.com}, samples: {count: 4, concurrency: 2}}
"#;
    assert!(run(plan, &green, Duration::from_secs(10)).await.succeeded());
    for received in green.received() {
        let hosts: Vec<_> = received
            .headers
            .iter()
            .filter(|(k, _)| k == "host")
            .collect();
        assert_eq!(hosts.len(), 1, "{:?}", received.headers);
        assert_eq!(hosts[0].1, "checkout.example.com");
    }
}

#[tokio::test]
async fn workers_keep_their_connections_and_never_open_more_than_are_in_flight() {
    let models = [
        ("{count: 300, concurrency: 4}", 300, 4),
        ("{rate: 200/s, duration: 1s, concurrency: 6}", 200, 6),
    ];
    for (samples, sent, concurrency) in models {
        let green = GreenServer::start(Behaviour::Healthy).await;
        let plan = format!(
            "version: 1\nchecks:\n  - {{name: steady, path: /health, samples: {samples}, thresholds: {{errors: \"0%\"}}}}\n"
        );
        let verdict = run(&plan, &green, Duration::from_secs(20)).await;
        assert!(verdict.succeeded(), "{samples}: {}", failures_of(&verdict));
        assert_eq!(green.received().len(), sent, "{samples}");
        let connections = green.connections();
        assert!(
            connections <= concurrency,
            "{samples}: {connections} connections"
        );
    }
}

#[tokio::test]
async fn a_green_that_closes_its_connections_gets_new_ones_and_loses_no_request() {
    // Every other answer closes its connection, as a server draining or limiting keep-alive does.
    let green = GreenServer::start(Behaviour::scripted(|call: &Call| {
        let reply = Reply::new(200, "text/plain", "ok");
        if call.n.is_multiple_of(2) {
            reply.header("connection", "close")
        } else {
            reply
        }
    }))
    .await;
    let plan = r#"
version: 1
checks:
  - {name: draining, path: /, samples: {count: 100, concurrency: 4}, thresholds: {errors: "0%"}}
"#;
    let verdict = run(plan, &green, Duration::from_secs(20)).await;
    assert!(verdict.succeeded(), "{}", failures_of(&verdict));
    assert_eq!(green.received().len(), 100);
    assert!(
        green.connections() >= 50,
        "{} connections",
        green.connections()
    );
}

#[tokio::test]
async fn oversized_bodies_are_cut_at_the_cap_and_their_connections_not_used_again() {
    let green = GreenServer::start(Behaviour::scripted(|_: &Call| {
        Reply::new(200, "text/plain", vec![b'x'; 3 * 1024 * 1024])
    }))
    .await;
    let plan = r#"
version: 1
checks:
  - {name: huge, path: /, samples: {count: 6, concurrency: 2}, expect: {body_contains: "y"}}
"#;
    let verdict = run(plan, &green, Duration::from_secs(20)).await;
    assert!(!verdict.succeeded());
    let population = verdict.checks[0].measured.population().unwrap();
    assert_eq!((population.answered, population.errors), (6, 6));
    // Reading stopped at 1 MiB, so the rest of each answer was never read: its connection closed.
    assert_eq!(green.connections(), 6);
    assert!(
        failures_of(&verdict).contains("body_contains"),
        "{}",
        failures_of(&verdict)
    );
}

#[tokio::test]
async fn a_green_that_never_answers_ends_each_sample_at_its_timeout() {
    let green = GreenServer::start(Behaviour::Hangs).await;
    let plan = r#"
version: 1
checks:
  - {name: stuck, path: /, timeout: 300ms, samples: {count: 4, concurrency: 2}}
"#;
    let started = Instant::now();
    let verdict = run(plan, &green, Duration::from_secs(20)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!verdict.succeeded());
    let reasons = failures_of(&verdict);
    assert!(
        reasons.contains("timed out: no complete answer within 300ms"),
        "{reasons}"
    );
}

#[tokio::test]
async fn nothing_listening_is_named_for_samples_and_load_alike() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    for samples in [
        "{count: 3}",
        "{rate: 20/s, duration: 200ms, concurrency: 2}",
    ] {
        let plan =
            format!("version: 1\nchecks:\n  - {{name: gone, path: /, samples: {samples}}}\n");
        let verdict = verify_at(&plan, format!("http://127.0.0.1:{port}")).await;
        assert!(!verdict.succeeded());
        let reasons = failures_of(&verdict);
        assert!(
            reasons.contains(
                "could not connect: connection refused (nothing listens on that host and port)"
            ),
            "{samples}: {reasons}"
        );
    }
}

#[tokio::test]
async fn a_host_name_is_resolved_and_each_of_its_addresses_tried() {
    // `localhost` is looked up; where it resolves to ::1 first, the next address (127.0.0.1,
    // where green listens) is tried.
    let green = GreenServer::start(Behaviour::Healthy).await;
    let port = green.url().rsplit(':').next().unwrap().to_string();
    let plan = "version: 1\nchecks:\n  - {name: named, path: /health, samples: {count: 20, concurrency: 2}}\n";
    let verdict = verify_at(plan, format!("http://localhost:{port}")).await;
    assert!(verdict.succeeded(), "{}", failures_of(&verdict));
    assert_eq!(green.received().len(), 20);
    let host = &green.received()[0].headers;
    assert!(
        host.iter()
            .any(|(k, v)| k == "host" && *v == format!("localhost:{port}")),
        "{host:?}"
    );
}
