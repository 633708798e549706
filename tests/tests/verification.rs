//! Verification depth: readiness, retries that do not hide failures, sampled checks with
//! thresholds, the open-model load probe, ordering. Green is a real HTTP server on 127.0.0.1
//! whose every answer is scripted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use greenlight::{Outcome, PlanSpec};
mod common;
use common::run;
use greenlight_fakes::green::{Behaviour, Call, GreenServer, Reply};

/// A small deterministic generator, so "random" errors are the same on every run of a seed.
fn chance(seed: u64, n: u32) -> f64 {
    let mut x = seed ^ (u64::from(n) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn erring(rate: f64, seed: u64) -> Behaviour {
    Behaviour::scripted(move |call: &Call| {
        if chance(seed, call.n) < rate {
            Reply::new(500, "text/plain", "internal error")
        } else {
            Reply::new(200, "application/json", r#"{"status":"UP"}"#)
        }
    })
}

const ERROR_RATE_PLAN: &str = r#"
version: 1
checks:
  - name: orders
    path: /orders
    samples: {count: 200, concurrency: 8}
    thresholds: {errors: "< 1%"}
    expect: {status: 200}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_percent_error_rate_fails_and_a_healthy_green_passes_over_many_seeds() {
    let mut caught = 0;
    let mut healthy_passed = 0;
    for seed in 0..100u64 {
        let bad = GreenServer::start(erring(0.10, seed)).await;
        let verdict = run(ERROR_RATE_PLAN, &bad, Duration::from_secs(20)).await;
        if !verdict.succeeded() {
            caught += 1;
        }
        let good = GreenServer::start(erring(0.0, seed)).await;
        if run(ERROR_RATE_PLAN, &good, Duration::from_secs(20))
            .await
            .succeeded()
        {
            healthy_passed += 1;
        }
    }
    assert!(caught >= 99, "caught {caught} of 100");
    assert_eq!(healthy_passed, 100);
}

#[tokio::test]
async fn the_verdict_shows_counts_rate_and_the_distinct_reasons() {
    let green = GreenServer::start(erring(0.10, 7)).await;
    let verdict = run(ERROR_RATE_PLAN, &green, Duration::from_secs(20)).await;
    let check = &verdict.checks[0];
    let population = check.measured.population().expect("a population");
    assert_eq!(population.sent, 200);
    assert_eq!(population.answered, 200);
    let served_errors = green.received().len(); // every request was answered
    assert_eq!(served_errors, 200);
    assert!(population.errors > 2, "{population:?}");
    let Outcome::Failed { failures } = &check.outcome else {
        panic!("{:?}", check.outcome)
    };
    assert_eq!(failures[0].expectation, "errors");
    assert_eq!(failures[0].expected, "< 1%");
    assert!(
        failures[0].measured.contains(&format!(
            "({} of 200): status: expected 200, got 500",
            population.errors
        )),
        "{}",
        failures[0].measured
    );
    assert!(
        failures[0]
            .measured
            .contains(&format!("({}×)", population.errors)),
        "{}",
        failures[0].measured
    );
    let json = serde_json::to_value(&verdict).unwrap();
    assert_eq!(json["checks"][0]["samples"]["sent"], 200);
    assert!(verdict.summary("verify").contains("200 of 200 sent"));
}

#[tokio::test]
async fn a_latency_leak_shows_in_p99() {
    // One request in fifty takes 300 ms: p95 is fine, p99 is not.
    let green = GreenServer::start(Behaviour::scripted(|call: &Call| {
        let reply = Reply::new(200, "text/plain", "ok");
        if call.n % 50 == 49 {
            reply.after(Duration::from_millis(300))
        } else {
            reply
        }
    }))
    .await;
    let plan = r#"
version: 1
checks:
  - name: search
    path: /search
    samples: {count: 100, concurrency: 10}
    thresholds: {errors: "0%", p95: "< 100ms", p99: "< 200ms"}
"#;
    let verdict = run(plan, &green, Duration::from_secs(20)).await;
    let check = &verdict.checks[0];
    let Outcome::Failed { failures } = &check.outcome else {
        panic!("{:?}", check.outcome)
    };
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].expectation, "p99");
    assert_eq!(failures[0].expected, "< 200ms");
    let population = check.measured.population().unwrap();
    let p95 = population
        .thresholds
        .iter()
        .find(|t| t.name == "p95")
        .unwrap();
    assert!(p95.passed, "{p95:?}");
}

#[tokio::test]
async fn a_green_that_warms_up_passes_with_ready_and_fails_without() {
    let warming = || {
        Behaviour::scripted(|call: &Call| {
            if call.since_start < Duration::from_millis(1500) {
                Reply::new(503, "text/plain", "warming up")
            } else {
                Reply::new(200, "text/plain", "UP")
            }
        })
    };
    let with_ready = r#"
version: 1
ready:
  within: 10s
  interval: 200ms
  checks:
    - {name: health, path: /health, expect: {status: 200}}
checks:
  - {name: home, path: /, expect: {status: 200}, retries: 0}
"#;
    let green = GreenServer::start(warming()).await;
    let verdict = run(with_ready, &green, Duration::from_secs(20)).await;
    assert!(verdict.succeeded(), "{}", verdict.summary("verify"));
    assert!(verdict.checks[0].ready);
    assert!(verdict.checks[0].attempts > 1);

    let without = r#"
version: 1
checks:
  - {name: home, path: /, expect: {status: 200}, retries: 0}
"#;
    let green = GreenServer::start(warming()).await;
    let verdict = run(without, &green, Duration::from_secs(20)).await;
    assert!(!verdict.succeeded());
}

#[tokio::test]
async fn a_green_that_never_becomes_ready_says_so_and_nothing_else_runs() {
    let green = GreenServer::start(Behaviour::Status(503)).await;
    let plan = r#"
version: 1
ready:
  within: 1s
  interval: 100ms
  checks:
    - {name: health, path: /health, expect: {status: 200}}
checks:
  - {name: orders, path: /orders}
"#;
    let verdict = run(plan, &green, Duration::from_secs(10)).await;
    assert!(!verdict.succeeded());
    assert!(
        verdict
            .reason
            .starts_with("green was not ready after 1s, so nothing else was checked: health: status: expected 200, got 503"),
        "{}",
        verdict.reason
    );
    assert!(
        verdict.reason.contains("got 503"),
        "the last reason is given: {}",
        verdict.reason
    );
    assert_eq!(verdict.checks.len(), 1);
    assert!(green.received().iter().all(|r| r.path == "/health"));
}

#[tokio::test]
async fn a_500_is_not_retried_by_default_and_every_attempt_is_reported() {
    let green = GreenServer::start(Behaviour::Status(500)).await;
    let plan = r#"
version: 1
checks:
  - {name: home, path: /, retries: 3, retry_delay: 10ms, expect: {status: 200}}
"#;
    let verdict = run(plan, &green, Duration::from_secs(10)).await;
    assert_eq!(verdict.checks[0].attempts, 1);
    assert_eq!(green.received().len(), 1);

    // 503 is what a settling green shows: retried, and the report keeps each attempt.
    let green = GreenServer::start(Behaviour::FailsFirst(2)).await;
    let verdict = run(plan, &green, Duration::from_secs(10)).await;
    let check = &verdict.checks[0];
    assert!(verdict.succeeded());
    assert_eq!(check.attempts, 3);
    assert_eq!(check.measured.earlier().len(), 2);
    assert_eq!(check.measured.earlier()[0].status, Some(503));
    assert!(verdict.summary("verify").contains("passed at attempt 3"));
}

#[tokio::test]
async fn flaky_fail_makes_passing_after_retries_a_failure() {
    let green = GreenServer::start(Behaviour::FailsFirst(1)).await;
    let plan = r#"
version: 1
checks:
  - {name: home, path: /, retries: 2, retry_delay: 10ms, flaky: fail, expect: {status: 200}}
"#;
    let verdict = run(plan, &green, Duration::from_secs(10)).await;
    assert!(!verdict.succeeded());
    let Outcome::Failed { failures } = &verdict.checks[0].outcome else {
        panic!()
    };
    assert_eq!(failures[0].expectation, "flaky");
    assert!(failures[0].measured.contains("passed at attempt 2"));
}

#[tokio::test]
async fn retry_on_any_restores_retrying_everything() {
    let green = GreenServer::start(Behaviour::Status(500)).await;
    let plan = r#"
version: 1
checks:
  - {name: home, path: /, retries: 2, retry_delay: 10ms, retry_on: [any], expect: {status: 200}}
"#;
    let verdict = run(plan, &green, Duration::from_secs(10)).await;
    assert_eq!(verdict.checks[0].attempts, 3);
}

#[tokio::test]
async fn concurrency_one_runs_checks_in_plan_order() {
    let green = GreenServer::start(Behaviour::Healthy).await;
    let checks: Vec<String> = (0..12)
        .map(|i| format!("  - {{name: c{i}, path: /step/{i}}}"))
        .collect();
    let plan = format!(
        "version: 1\nconcurrency: 1\nchecks:\n{}\n",
        checks.join("\n")
    );
    let verdict = run(&plan, &green, Duration::from_secs(10)).await;
    assert!(verdict.succeeded());
    let order: Vec<String> = green.received().into_iter().map(|r| r.path).collect();
    let expected: Vec<String> = (0..12).map(|i| format!("/step/{i}")).collect();
    assert_eq!(order, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bug_under_concurrency_is_caught_by_an_open_model_probe() {
    // Correct alone; with more than 4 requests in flight it answers 500.
    let script = |call: &Call| {
        let reply = if call.in_flight > 4 {
            Reply::new(500, "text/plain", "lock poisoned")
        } else {
            Reply::new(200, "text/plain", "ok")
        };
        reply.after(Duration::from_millis(40))
    };
    let plan = r#"
version: 1
checks:
  - name: checkout
    path: /checkout
    samples: {rate: 200/s, duration: 1s, concurrency: 32}
    thresholds: {errors: "< 1%"}
"#;
    let green = GreenServer::start(Behaviour::scripted(script)).await;
    let verdict = run(plan, &green, Duration::from_secs(20)).await;
    assert!(!verdict.succeeded(), "{}", verdict.summary("verify"));
    assert!(
        verdict.reason.contains("lock poisoned"),
        "{}",
        verdict.reason
    );

    // One at a time, the same green looks fine: only load finds it.
    let one_by_one = r#"
version: 1
checks:
  - {name: checkout, path: /checkout, samples: 20}
"#;
    let green = GreenServer::start(Behaviour::scripted(script)).await;
    assert!(run(one_by_one, &green, Duration::from_secs(20))
        .await
        .succeeded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_model_probe_reports_achieved_rate_and_says_when_green_cannot_keep_up() {
    let green = GreenServer::start(Behaviour::Healthy).await;
    let plan = r#"
version: 1
checks:
  - name: home
    path: /
    samples: {rate: 100/s, duration: 1s, concurrency: 8}
"#;
    let verdict = run(plan, &green, Duration::from_secs(20)).await;
    assert!(verdict.succeeded(), "{}", verdict.summary("verify"));
    let population = verdict.checks[0].measured.population().unwrap();
    assert_eq!(population.requested_rate, Some(100.0));
    let achieved = population.achieved_rate.unwrap();
    assert!(achieved > 80.0 && achieved < 120.0, "{achieved}");

    // Green takes 500 ms an answer: 2 in flight cannot carry 50/s.
    let slow = GreenServer::start(Behaviour::Slow(Duration::from_millis(500))).await;
    let plan = r#"
version: 1
checks:
  - name: home
    path: /
    samples: {rate: 50/s, duration: 1s, concurrency: 2}
"#;
    let verdict = run(plan, &slow, Duration::from_secs(20)).await;
    assert!(!verdict.succeeded());
    assert!(
        verdict.reason.contains("green could not keep up"),
        "{}",
        verdict.reason
    );
}

#[tokio::test]
async fn time_running_out_before_enough_samples_is_inconclusive_never_a_pass() {
    let green = GreenServer::start(Behaviour::Slow(Duration::from_millis(100))).await;
    let plan = r#"
version: 1
checks:
  - {name: home, path: /, samples: 1000}
"#;
    let verdict = run(plan, &green, Duration::from_millis(1500)).await;
    assert!(!verdict.succeeded());
    let check = &verdict.checks[0];
    assert!(
        matches!(&check.outcome, Outcome::Inconclusive { cause } if cause.starts_with("time ran out")),
        "{:?}",
        check.outcome
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_keeps_a_bounded_tally_however_many_distinct_failures() {
    // Every answer fails differently; the report keeps three reasons and a count of the rest.
    let counter = Arc::new(AtomicU64::new(0));
    let seen = counter.clone();
    let green = GreenServer::start(Behaviour::scripted(move |call: &Call| {
        seen.fetch_add(1, Ordering::Relaxed);
        Reply::new(200, "text/plain", format!("answer {}", call.n))
    }))
    .await;
    let plan = r#"
version: 1
checks:
  - {name: home, path: /, samples: {count: 300, concurrency: 16}, expect: {body_contains: "never"}}
"#;
    let verdict = run(plan, &green, Duration::from_secs(20)).await;
    let population = verdict.checks[0].measured.population().unwrap();
    assert_eq!(counter.load(Ordering::Relaxed), 300);
    assert_eq!(population.failures.len(), 3);
    assert_eq!(population.other_failures, Some(297));
}

#[tokio::test]
async fn assertions_catch_schema_drift_auth_regressions_and_wrong_versions() {
    let body = r#"{"version":"2.0.0+build.7","items":[],"state":"degraded","id":17,"debug":"stack trace: at Foo.bar"}"#;
    let green = GreenServer::start(Behaviour::scripted(move |_: &Call| {
        Reply::new(200, "application/json", body)
            .header("x-debug-token", "abc")
            .header("location", "/orders/17")
    }))
    .await;
    let plan = r#"
version: 1
checks:
  - name: order
    path: /orders/17
    expect:
      body_not_contains: "stack trace"
      assert:
        - {json: "$.version", semver: "2.0.0"}
        - {json: "$.items", length: ">= 1"}
        - {json: "$.state", not: {one_of: [degraded, failed]}}
        - {json: "$.id", type: string}
        - {json: "$.error", absent: true}
        - {header: x-debug-token, absent: true}
        - {header: location, matches: "^/orders/[0-9]+$"}
"#;
    let verdict = run(plan, &green, Duration::from_secs(10)).await;
    let Outcome::Failed { failures } = &verdict.checks[0].outcome else {
        panic!("{:?}", verdict.checks[0].outcome)
    };
    let said: Vec<String> = failures.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        said,
        vec![
            "body_not_contains: expected the body not to contain \"stack trace\", got it at byte 74: \"…\":[],\"state\":\"degraded\",\"id\":17,\"debug\":\"stack trace: at Foo.bar\"}\"".to_string(),
            "json $.items: expected length >= 1, got length 0".to_string(),
            "json $.state: expected not one of [\"degraded\",\"failed\"], got \"degraded\"".to_string(),
            "json $.id: expected a string, got a number: 17".to_string(),
            "header x-debug-token: expected no value, got \"abc\"".to_string(),
        ],
        "the version (build metadata ignored), the absent error and the Location pass"
    );
}

#[tokio::test]
async fn an_assertion_on_a_body_that_is_not_json_says_so() {
    let green = GreenServer::start(Behaviour::Healthy).await;
    let plan = r#"
version: 1
checks:
  - {name: home, path: /, expect: {assert: [{json: "$.status", equals: UP}]}}
"#;
    let verdict = run(plan, &green, Duration::from_secs(10)).await;
    assert!(
        verdict
            .reason
            .contains("json $.status: expected equal to \"UP\", got nothing: the body is not JSON"),
        "{}",
        verdict.reason
    );
}

#[test]
fn plan_mistakes_in_the_new_fields_are_named_at_their_paths() {
    let plan = r#"
version: 1
ready: {within: 0s, checks: []}
checks:
  - name: a
    path: /
    samples: {count: 10, rate: 5/s}
  - name: b
    path: /
    thresholds: {errors: "< 1%"}
  - name: c
    path: /
    samples: 100
    retries: 2
    thresholds: {errors: "1", p95: "300", p99s: "1s", min_samples: 500}
  - name: d
    path: /
    retry_on: [sometimes]
    flaky: maybe
    expect: {assert: [{json: "$.a", lenght: 1}, {header: x, "<": 3}]}
"#;
    let problems = match PlanSpec::parse(plan) {
        Err(e) => e.problems(),
        Ok(_) => panic!("the plan is invalid"),
    };
    let expected = [
        "ready.within: must be longer than 0s",
        "ready.checks: list at least one check",
        "checks[0].samples: either `count`",
        "checks[1].thresholds: thresholds judge a population: add `samples:`",
        "checks[2].retries: a sampled check is never retried",
        "checks[2].thresholds.p99s: unknown field `p99s`; did you mean `p99`?",
        "checks[2].thresholds.errors: \"1\" is not an error rate",
        "checks[2].thresholds.p95: \"300\" has no unit",
        "checks[2].thresholds.min_samples: must be between 1 and the 100 samples planned, found 500",
        "checks[3].retry_on: \"sometimes\" is not a status code",
        "checks[3].flaky: \"maybe\" is not `pass` or `fail`",
        "checks[3].expect.assert[0].lenght: unknown predicate `lenght`; did you mean `length`?",
        "checks[3].expect.assert[1].<: headers are text",
    ];
    for prefix in expected {
        assert!(
            problems.iter().any(|p| p.starts_with(prefix)),
            "missing {prefix:?} in {problems:#?}"
        );
    }
}

fn gzip(data: &[u8]) -> bytes::Bytes {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap().into()
}

fn serving_gzip(body: bytes::Bytes) -> Behaviour {
    Behaviour::scripted(move |_: &Call| {
        Reply::new(200, "application/json", body.clone()).header("content-encoding", "gzip")
    })
}

#[tokio::test]
async fn compressed_answers_are_asked_for_decoded_and_judged() {
    // 700 KiB of JSON that gzip makes small: the whole decoded body is read and judged.
    let items: Vec<String> = (0..20_000)
        .map(|i| format!("{{\"id\":{i},\"name\":\"item number {i}\"}}"))
        .collect();
    let json = format!(r#"{{"status":"UP","items":[{}]}}"#, items.join(","));
    assert!(json.len() > 300 * 1024);
    let green = GreenServer::start(serving_gzip(gzip(json.as_bytes()))).await;
    let plan = r#"
version: 1
compression: true
checks:
  - name: api
    path: /api
    expect:
      json: {"$.status": UP}
      assert: [{json: "$.items", length: 20000}]
"#;
    let verdict = run(plan, &green, Duration::from_secs(10)).await;
    assert!(verdict.succeeded(), "{}", verdict.summary("verify"));
    let asked = green.received()[0]
        .headers
        .iter()
        .find(|(k, _)| k == "accept-encoding")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(asked.contains("gzip") && asked.contains("br"), "{asked}");
}

#[tokio::test]
async fn without_compression_nothing_is_asked_for_and_bytes_are_judged_as_sent() {
    let green = GreenServer::start(serving_gzip(gzip(br#"{"status":"UP"}"#))).await;
    let plan = r#"
version: 1
checks:
  - {name: api, path: /api, expect: {json: {"$.status": UP}}}
"#;
    let verdict = run(plan, &green, Duration::from_secs(10)).await;
    assert!(!verdict.succeeded());
    assert!(verdict.reason.contains("not JSON"), "{}", verdict.reason);
    assert!(green.received()[0]
        .headers
        .iter()
        .all(|(k, _)| k != "accept-encoding"));
}

#[tokio::test]
async fn a_gzip_bomb_is_cut_at_the_cap_after_decompression() {
    // 256 MiB of zeros in about 250 KiB.
    let bomb = {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..256 {
            encoder.write_all(&zeros).unwrap();
        }
        bytes::Bytes::from(encoder.finish().unwrap())
    };
    assert!(bomb.len() < 1024 * 1024);
    let green = GreenServer::start(serving_gzip(bomb)).await;
    let plan = r#"
version: 1
compression: true
checks:
  - {name: api, path: /api, expect: {body_contains: "UP"}}
"#;
    let started = std::time::Instant::now();
    let verdict = run(plan, &green, Duration::from_secs(10)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!verdict.succeeded());
    assert!(
        verdict
            .reason
            .contains("a body of 1048576 bytes, cut at the 1 MiB cap"),
        "{}",
        verdict.reason
    );
}

fn orders_api(create_status: u16) -> Behaviour {
    Behaviour::scripted(
        move |call: &Call| match (call.method.as_str(), call.path.as_str()) {
            ("POST", "/orders") => Reply::new(
                create_status,
                "application/json",
                r#"{"id":"ord_4242","state":"new"}"#,
            )
            .header("location", "/orders/ord_4242"),
            ("GET", "/orders/ord_4242") => Reply::new(
                200,
                "application/json",
                r#"{"id":"ord_4242","state":"broken"}"#,
            ),
            ("DELETE", "/orders/ord_4242") => Reply::new(204, "text/plain", ""),
            _ => Reply::new(404, "text/plain", "no such order"),
        },
    )
}

const FLOW: &str = r#"
version: 1
concurrency: 8
checks:
  - name: create
    method: POST
    path: /orders
    body: '{"sku": "A-1"}'
    expect: {status: 201}
    capture:
      order_id: {json: "$.id"}
      location: {header: location}
  - name: read
    path: ${captured.location}
    expect:
      assert:
        - {json: "$.id", equals: "${captured.order_id}"}
        - {json: "$.state", equals: new}
  - name: delete
    method: DELETE
    path: /orders/${captured.order_id}
    expect: {status: 204}
"#;

#[tokio::test]
async fn captures_chain_a_flow_across_checks_and_stay_secret() {
    let green = GreenServer::start(orders_api(201)).await;
    let verdict = run(FLOW, &green, Duration::from_secs(10)).await;
    let requests: Vec<(String, String)> = green
        .received()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(requests[0], ("POST".into(), "/orders".into()));
    assert!(requests.contains(&("GET".into(), "/orders/ord_4242".into())));
    assert!(requests.contains(&("DELETE".into(), "/orders/ord_4242".into())));
    assert_eq!(requests.len(), 3);
    // The read fails on its state; the captured id in the excerpt is masked.
    assert!(verdict.checks[0].outcome == Outcome::Passed);
    assert!(verdict.checks[2].outcome == Outcome::Passed);
    let summary = verdict.summary("verify");
    assert!(
        summary.contains("json $.state: expected equal to \"new\", got \"broken\""),
        "{summary}"
    );
    assert!(!summary.contains("ord_4242"), "{summary}");
    assert!(!serde_json::to_string(&verdict)
        .unwrap()
        .contains("ord_4242"));
    assert!(summary.contains("/${captured.location}"), "{summary}");
}

#[tokio::test]
async fn checks_whose_captures_are_missing_do_not_run_and_say_why() {
    let green = GreenServer::start(orders_api(500)).await;
    let verdict = run(FLOW, &green, Duration::from_secs(10)).await;
    assert_eq!(green.received().len(), 1, "only the POST was sent");
    for check in &verdict.checks[1..] {
        let Outcome::Errored { cause } = &check.outcome else {
            panic!("{:?}", check.outcome)
        };
        assert!(
            cause.starts_with("not run: ${captured.")
                && cause.contains("has no value (create failed: status: expected 201, got 500"),
            "{cause}"
        );
    }
}

#[test]
fn a_capture_used_before_it_is_captured_is_a_plan_error() {
    let plan = r#"
version: 1
checks:
  - {name: read, path: "/orders/${captured.order_id}"}
  - {name: create, method: POST, path: /orders, capture: {order_id: {json: $.id}, "bad name": {json: $.x}, loc: {cookie: x}}}
"#;
    let problems = match PlanSpec::parse(plan) {
        Err(e) => e.problems(),
        Ok(_) => panic!("invalid"),
    };
    assert!(
        problems.iter().any(|p| p.starts_with(
            "checks[0]: uses ${captured.order_id}, but no earlier check captures `order_id`"
        )),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(
            |p| p.starts_with("checks[1].capture.bad name: \"bad name\" is not a capture name")
        ),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("checks[1].capture.loc: unknown capture source `cookie`")),
        "{problems:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_probe_spreads_requests_over_weighted_routes_and_names_the_failing_one() {
    let green = GreenServer::start(Behaviour::scripted(|call: &Call| {
        match (call.method.as_str(), call.path.as_str()) {
            ("GET", "/products") => Reply::new(200, "text/plain", "ok"),
            ("POST", "/cart") if call.in_flight > 3 => Reply::new(503, "text/plain", "cart locked"),
            ("POST", "/cart") => Reply::new(200, "text/plain", "ok"),
            _ => Reply::new(404, "text/plain", "no"),
        }
        .after(Duration::from_millis(30))
    }))
    .await;
    let plan = r#"
version: 1
checks:
  - name: storefront
    samples: {rate: 200/s, duration: 1s, concurrency: 32}
    routes:
      - {path: /products, weight: 3}
      - {path: /cart, method: POST, body: '{"sku": "A-1"}', weight: 1}
    thresholds: {errors: "< 1%"}
"#;
    let verdict = run(plan, &green, Duration::from_secs(20)).await;
    let population = verdict.checks[0].measured.population().unwrap();
    assert_eq!(population.routes.len(), 2);
    let (products, cart) = (&population.routes[0], &population.routes[1]);
    assert_eq!(products.sent + cart.sent, population.sent);
    assert_eq!(products.sent, population.sent * 3 / 4, "{population:?}");
    assert_eq!(products.errors, 0);
    assert!(cart.errors > 0);
    assert!(!verdict.succeeded());
    assert!(
        verdict.reason.contains("POST http://")
            && verdict
                .reason
                .contains("/cart: status: expected 200-399, got 503"),
        "{}",
        verdict.reason
    );
    let received = green.received();
    let posts: Vec<_> = received.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len() as u64, cart.sent);
}
