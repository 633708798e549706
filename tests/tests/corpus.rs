//! A corpus of realistic broken greens, and healthy ones, for a typical JSON API (a shop), judged
//! by the README's recommended plan (`examples/plans/catches-regressions.yaml`). Every broken
//! green must fail, named by the check that should catch it; every healthy green must pass,
//! including one that needs 1.5 s to warm up and one whose latency jitters.
//!
//! The plan runs as written except for two durations, shortened so that the corpus runs in
//! seconds: the load probe's (20s → 3s) and readiness's (30s → 5s).

use std::sync::Arc;
use std::time::Duration;

mod common;
use greenlight::{Outcome, PlanSpec, Verdict};
use greenlight_fakes::green::{Behaviour, Call, GreenServer, Reply};

const TOKEN: &str = "corpus-smoke-token";
const VERSION: &str = "2.4.0";

/// What is wrong with a green (nothing, for the healthy ones).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Defect {
    None,
    /// Healthy, but `/health` and everything else answer 503 for the first 1.5 s.
    WarmsUp,
    /// Healthy, with latencies between 0 and 60 ms, extra fields, and build metadata.
    Jittery,
    /// Never becomes ready.
    NeverReady,
    /// Still the old build.
    WrongVersion,
    /// Every orders answer is a 500.
    OrdersDown,
    /// One orders answer in ten is a 500.
    TenPercentErrors,
    /// One orders answer in forty takes 1.2 s.
    LatencyLeak,
    /// `total` became a string.
    SchemaDrift,
    /// The orders list became empty (a bad query).
    EmptyList,
    /// Orders are served without a token.
    AuthOff,
    /// A debug build: `x-debug-token` on every answer.
    DebugBuild,
    /// 200, with an exception in the body.
    ExceptionIn200,
    /// Quotes fail with more than 4 requests in flight.
    ConcurrencyBug,
    /// Quotes in the wrong currency.
    WrongCurrency,
}

/// The check expected to catch each broken green.
fn caught_by(defect: Defect) -> Option<&'static str> {
    Some(match defect {
        Defect::None | Defect::WarmsUp | Defect::Jittery => return None,
        Defect::NeverReady => "up",
        Defect::WrongVersion => "version",
        Defect::OrdersDown | Defect::SchemaDrift | Defect::EmptyList | Defect::ExceptionIn200 => {
            "orders-schema"
        }
        Defect::TenPercentErrors | Defect::LatencyLeak => "orders-error-rate",
        Defect::AuthOff => "auth-is-enforced",
        Defect::DebugBuild => "no-debug-build",
        Defect::ConcurrencyBug | Defect::WrongCurrency => "checkout-under-load",
    })
}

fn json(status: u16, body: String) -> Reply {
    Reply::new(status, "application/json", body)
}

fn shop(defect: Defect) -> Behaviour {
    Behaviour::scripted(move |call: &Call| {
        let warming = match defect {
            Defect::WarmsUp => call.since_start < Duration::from_millis(1500),
            Defect::NeverReady => true,
            _ => false,
        };
        if warming {
            return Reply::new(503, "text/plain", "starting");
        }
        let authorised = call
            .headers
            .iter()
            .any(|(name, value)| name == "authorization" && value == &format!("Bearer {TOKEN}"));
        let jitter = match defect {
            Defect::Jittery => Duration::from_millis(u64::from(call.n * 37 % 61)),
            _ => Duration::ZERO,
        };
        let reply = match (call.method.as_str(), call.path.as_str()) {
            ("GET", "/health") => Reply::new(200, "text/plain", "UP"),
            ("GET", "/api/version") => {
                let version = match defect {
                    Defect::WrongVersion => "2.3.9".to_string(),
                    Defect::Jittery => format!("{VERSION}+build.7"),
                    _ => VERSION.to_string(),
                };
                json(200, format!(r#"{{"version":"{version}"}}"#))
            }
            ("GET", "/api/orders") if !authorised && defect != Defect::AuthOff => {
                json(401, r#"{"error":"unauthorised"}"#.into())
            }
            ("GET", "/api/orders") => {
                if defect == Defect::OrdersDown
                    || (defect == Defect::TenPercentErrors && call.n % 10 == 3)
                {
                    return json(500, r#"{"error":"internal"}"#.into());
                }
                let total = match defect {
                    Defect::SchemaDrift => r#""12.50""#,
                    _ => "12.5",
                };
                let orders = match defect {
                    Defect::EmptyList => String::new(),
                    Defect::Jittery => format!(
                        r#"{{"id":"ord_7f3a","total":{total},"notes":"gift"}},{{"id":"ord_7f3b","total":3}}"#
                    ),
                    _ => format!(
                        r#"{{"id":"ord_7f3a","total":{total}}},{{"id":"ord_7f3b","total":3}}"#
                    ),
                };
                let extra = match defect {
                    Defect::ExceptionIn200 => {
                        r#","warning":"java.lang.NullPointerException at OrderMapper""#
                    }
                    _ => "",
                };
                let reply = json(200, format!(r#"{{"orders":[{orders}]{extra}}}"#));
                if defect == Defect::LatencyLeak && call.n % 40 == 7 {
                    reply.after(Duration::from_millis(1200))
                } else {
                    reply
                }
            }
            ("POST", "/api/cart/quote") => {
                // Quotes take 150 ms: at 40 arrivals a second, about six are in flight.
                let reply = if defect == Defect::ConcurrencyBug && call.in_flight > 4 {
                    json(500, r#"{"error":"lock poisoned"}"#.into())
                } else {
                    let currency = match defect {
                        Defect::WrongCurrency => "USD",
                        _ => "EUR",
                    };
                    json(200, format!(r#"{{"total":25.0,"currency":"{currency}"}}"#))
                };
                reply.after(Duration::from_millis(150))
            }
            ("GET", "/") => Reply::new(200, "text/html", "<html>shop</html>"),
            _ => Reply::new(404, "text/plain", "not found"),
        };
        let reply = match defect {
            Defect::DebugBuild => reply.header("x-debug-token", "a1b2c3"),
            _ => reply,
        };
        let delay = reply.delay + jitter;
        reply.after(delay)
    })
}

/// The recommended plan, with its load and readiness durations shortened for the test.
fn plan() -> PlanSpec {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/plans/catches-regressions.yaml"
    ))
    .expect("the example plan");
    assert!(text.contains("duration: 20s") && text.contains("within: 30s"));
    let text = text
        .replace("duration: 20s", "duration: 3s")
        .replace("within: 30s", "within: 5s");
    PlanSpec::parse(&text).unwrap_or_else(|e| panic!("{e}"))
}

async fn judge(defect: Defect) -> (Defect, Verdict) {
    let green = GreenServer::start(shop(defect)).await;
    let env = [("SMOKE_TOKEN", TOKEN), ("EXPECTED_VERSION", VERSION)];
    let verdict = common::run_spec(&plan(), &green, &env, Duration::from_secs(60)).await;
    (defect, verdict)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recommended_plan_catches_every_broken_green_and_passes_every_healthy_one() {
    let defects = [
        Defect::None,
        Defect::WarmsUp,
        Defect::Jittery,
        Defect::NeverReady,
        Defect::WrongVersion,
        Defect::OrdersDown,
        Defect::TenPercentErrors,
        Defect::LatencyLeak,
        Defect::SchemaDrift,
        Defect::EmptyList,
        Defect::AuthOff,
        Defect::DebugBuild,
        Defect::ExceptionIn200,
        Defect::ConcurrencyBug,
        Defect::WrongCurrency,
    ];
    // A few at a time: every run has a load probe, and a load generator starved of CPU is
    // (rightly) judged inconclusive.
    let room = Arc::new(tokio::sync::Semaphore::new(4));
    let mut runs = tokio::task::JoinSet::new();
    for defect in defects {
        let room = room.clone();
        runs.spawn(async move {
            let _turn = room.acquire_owned().await.expect("open");
            judge(defect).await
        });
    }
    let mut wrong = Vec::new();
    while let Some(ended) = runs.join_next().await {
        let (defect, verdict) = ended.expect("a run");
        let not_passed: Vec<&str> = verdict
            .checks
            .iter()
            .filter(|c| c.outcome != Outcome::Passed)
            .map(|c| c.name.as_str())
            .collect();
        match caught_by(defect) {
            None if !verdict.succeeded() => wrong.push(format!(
                "healthy {defect:?} was blocked: {}",
                verdict.summary("verify")
            )),
            Some(check) if !not_passed.contains(&check) => wrong.push(format!(
                "{defect:?} was not caught by {check} (not passed: {not_passed:?}): {}",
                verdict.summary("verify")
            )),
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}
