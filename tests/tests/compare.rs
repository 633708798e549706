//! Green judged against blue: real blue and green servers on 127.0.0.1, the same requests to
//! both. Each regression that only shows side by side is caught and explained; healthy greens
//! with noisy fields, added fields and jittery latency pass; nothing but safe methods reaches
//! blue.

use std::time::Duration;

mod common;
use greenlight::plan::Setting;
use greenlight::{Env, PlanSpec, Verdict};
use greenlight_fakes::green::{Behaviour, Call, GreenServer, Reply};

/// An orders API; `variant` changes what green gets wrong.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Variant {
    Blue,
    Same,
    /// 8 ms slower on every request.
    Slow,
    /// Totals summed in binary floating point.
    FloatTotals,
    /// A price column rounded to one decimal.
    LostPrecision,
    /// Items sorted the other way.
    Reordered,
    /// A field blue returns is gone.
    MissingField,
    /// A new field, which clients ignore.
    AddedField,
    /// Latency that jitters between 1 and 4 ms, like blue's.
    Jittery,
}

fn orders(variant: Variant) -> Behaviour {
    Behaviour::scripted(move |call: &Call| {
        // Every answer, blue's too, carries a fresh request id and time: noise.
        let noise = format!(
            r#""request_id":"req-{}","generated_at":"2026-12-06T10:00:{:02}Z""#,
            call.n * 7919 % 100_000,
            call.n % 60
        );
        let delay = match variant {
            Variant::Slow => Duration::from_millis(10),
            Variant::Jittery | Variant::Blue | Variant::Same => {
                Duration::from_micros(1000 + u64::from(call.n * 613 % 3000))
            }
            _ => Duration::from_millis(2),
        };
        let body = match call.path.as_str() {
            "/api/orders" => {
                let (a, b) = match variant {
                    // 10.1 + 11.2 in binary floating point.
                    Variant::FloatTotals => ("21.299999999999997", "8.5"),
                    _ => ("21.3", "8.5"),
                };
                let price = match variant {
                    Variant::LostPrecision => "20.0",
                    _ => "19.99",
                };
                let items = match variant {
                    Variant::Reordered => format!(
                        r#"[{{"id":"ord_2","total":{b},"price":{price}}},{{"id":"ord_1","total":{a},"price":{price}}}]"#
                    ),
                    _ => format!(
                        r#"[{{"id":"ord_1","total":{a},"price":{price}}},{{"id":"ord_2","total":{b},"price":{price}}}]"#
                    ),
                };
                let extra = match variant {
                    Variant::MissingField => "",
                    Variant::AddedField => r#","currency":"EUR","page":{"next":null}"#,
                    _ => r#","currency":"EUR""#,
                };
                format!(r#"{{"items":{items}{extra},{noise}}}"#)
            }
            "/api/version" => format!(r#"{{"name":"orders",{noise}}}"#),
            _ => return Reply::new(404, "text/plain", "not found"),
        };
        Reply::new(200, "application/json", body).after(delay)
    })
}

const SMALL_PLAN: &str = r#"
version: 1
checks:
  - name: same-as-blue
    paths: [/api/orders, /api/version]
    compare: {samples: 100}
"#;

async fn compare(plan: &str, variant: Variant) -> (Verdict, GreenServer) {
    let blue = GreenServer::start(orders(Variant::Blue)).await;
    let green = GreenServer::start(orders(variant)).await;
    let spec = PlanSpec::parse(plan).unwrap_or_else(|e| panic!("{e}"));
    let env = [("GREENLIGHT_PRODUCTION_URL", blue.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let verdict = common::run_spec(&spec, &green, &env, Duration::from_secs(30)).await;
    (verdict, blue)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regressions_visible_only_side_by_side_are_caught_and_explained() {
    for (variant, expected) in [
        (
            Variant::Slow,
            "latency vs blue: expected green at most 20% slower than blue",
        ),
        (
            Variant::FloatTotals,
            "$.items[*].total (21.3 → 21.299999999999997) in GET ",
        ),
        (
            Variant::LostPrecision,
            "$.items[*].price (19.99 → 20.0) in GET ",
        ),
        (Variant::Reordered, "$.items (order changed) in GET "),
        (
            Variant::MissingField,
            "$.currency (missing in green) in GET ",
        ),
    ] {
        let (verdict, _) = compare(SMALL_PLAN, variant).await;
        assert!(
            !verdict.succeeded(),
            "{variant:?} passed: {}",
            verdict.summary("verify")
        );
        assert!(
            verdict.reason.contains(expected),
            "{variant:?}: {}",
            verdict.reason
        );
        if variant != Variant::Slow {
            assert!(
                verdict.reason.contains("answers vs blue: expected green to answer as blue does, got 50 of 100 answers differ"),
                "{variant:?}: {}",
                verdict.reason
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_greens_with_noise_added_fields_and_jitter_pass() {
    for variant in [Variant::Same, Variant::AddedField, Variant::Jittery] {
        let (verdict, _) = compare(SMALL_PLAN, variant).await;
        assert!(
            verdict.succeeded(),
            "{variant:?}: {}",
            verdict.summary("verify")
        );
        let json = serde_json::to_value(&verdict.checks[0]).unwrap();
        let noise = &json["comparison"]["responses"]["noise"];
        assert!(
            noise
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == "$.request_id"),
            "the request id is learnt as noise: {json}"
        );
        assert_eq!(json["comparison"]["pairs"], 100);
        assert_eq!(json["comparison"]["blue"]["answered"], 100);
    }
}

#[tokio::test]
async fn only_safe_methods_are_ever_sent_to_blue() {
    // A POST to compare is refused when the plan is read, before anything is sent.
    let post = r#"
version: 1
checks:
  - {name: create, method: POST, path: /api/orders, compare: true}
"#;
    let message = PlanSpec::parse(post).unwrap_err().to_string();
    assert!(
        message.contains("checks[0].method: a compare check sends each request to blue too, through the production listener; POST is not among the methods sent there (GET, HEAD)"),
        "{message}"
    );
    // Listed as safe, it is allowed.
    let allowed = post.replace(
        "version: 1",
        "version: 1\nbaseline: {safe_methods: [GET, POST]}",
    );
    assert!(PlanSpec::parse(&allowed).is_ok(), "{allowed}");

    // Every request blue received during a comparison is a GET.
    let (verdict, blue) = compare(SMALL_PLAN, Variant::Same).await;
    assert!(verdict.succeeded(), "{}", verdict.summary("verify"));
    let received = blue.received();
    assert!(received.len() >= 100, "{}", received.len());
    assert!(received.iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn without_a_baseline_compare_is_a_plan_error_never_a_pass() {
    let green = GreenServer::start(orders(Variant::Same)).await;
    let spec = PlanSpec::parse(SMALL_PLAN).unwrap();
    let error = spec
        .resolve(
            Some(&Setting::new(green.url(), "--target")),
            &Env::from_pairs(Vec::<(&str, &str)>::new()),
        )
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("baseline: compare checks send the same requests to blue: set GREENLIGHT_PRODUCTION_URL"),
        "{error}"
    );
    // The target itself is no baseline.
    let env = Env::from_pairs([("GREENLIGHT_PRODUCTION_URL", green.url().as_str())]);
    let error = spec
        .resolve(Some(&Setting::new(green.url(), "--target")), &env)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("green would be compared with itself"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_pairs_a_side_are_all_compared() {
    let plan = r#"
version: 1
checks:
  - name: same-as-blue
    path: /api/version
    compare: {samples: 200, diff: false}
"#;
    let (verdict, _) = compare(plan, Variant::Same).await;
    assert!(verdict.succeeded(), "{}", verdict.summary("verify"));
    let json = serde_json::to_value(&verdict.checks[0]).unwrap();
    assert_eq!(json["comparison"]["pairs"], 200);
    assert_eq!(json["attempts"], 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blue_that_never_answers_makes_the_comparison_inconclusive_in_time() {
    let blue = GreenServer::start(Behaviour::Hangs).await;
    let green = GreenServer::start(orders(Variant::Same)).await;
    let plan = r#"
version: 1
checks:
  - {name: same-as-blue, path: /api/version, timeout: 300ms, compare: {samples: 20, concurrency: 10}}
"#;
    let spec = PlanSpec::parse(plan).unwrap();
    let blue_url = blue.url();
    let env = [("GREENLIGHT_PRODUCTION_URL", blue_url.as_str())];
    let verdict = common::run_spec(&spec, &green, &env, Duration::from_secs(30)).await;
    assert!(!verdict.succeeded());
    assert!(
        verdict.reason.contains("same-as-blue inconclusive: latency: too few answers to compare (0 from blue, 20 from green"),
        "{}",
        verdict.reason
    );
    // Two rounds of pairs at the attempt's timeout, not the 30 s budget.
    assert!(
        verdict.elapsed < Duration::from_secs(10),
        "{:?}",
        verdict.elapsed
    );
}
