//! The ECS-native lifecycle hook in one process, against real green (and production) servers on
//! 127.0.0.1, driven the way ECS drives it: re-invoked while it answers `IN_PROGRESS`, with the
//! returned `hookDetails` merged into the next event.

use std::time::{Duration, Instant, SystemTime};

use greenlight::ecs_hook::{EcsHook, HookStatus};
use greenlight::Env;
use greenlight_fakes::ecs_loop::drive_stage;
use greenlight_fakes::{unused_local_url, Behaviour, GreenServer};
use serde_json::{json, Value};

fn event(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("read the sample event"))
        .expect("JSON")
}

fn hook(vars: &[(&str, &str)]) -> EcsHook {
    EcsHook::new(&Env::from_pairs(vars.iter().copied()))
}

async fn invoke(hook: &EcsHook, event: Value) -> Value {
    serde_json::to_value(
        hook.handle(event, SystemTime::now() + Duration::from_secs(10))
            .await,
    )
    .expect("serializable")
}

async fn drive(hook: &EcsHook, event: Value) -> Vec<Value> {
    drive_stage(|e| invoke(hook, e), event, 10).await
}

#[tokio::test]
async fn a_healthy_green_passes_the_test_traffic_stage() {
    let green = GreenServer::start(Behaviour::Healthy).await;
    let plan = "version: 1\ndefaults: {headers: {x-amzn-ecs-bluegreen-test: 'true'}}\nchecks: [{name: version, path: /api/version, expect: {json: {'$.color': green}}}]";
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", &green.url()),
        ("GREENLIGHT_PLAN", plan),
    ]);
    let answers = drive(
        &hook,
        event("ecs-lifecycle-hook-post-test-traffic-shift.json"),
    )
    .await;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0]["hookStatus"], "SUCCEEDED");
    assert!(
        green.received()[0]
            .headers
            .contains(&("x-amzn-ecs-bluegreen-test".into(), "true".into())),
        "the test-listener header rule is honoured"
    );
}

#[tokio::test]
async fn a_broken_green_fails_at_once_without_an_allowance() {
    let green = GreenServer::start(Behaviour::Status(500)).await;
    let hook = hook(&[("GREENLIGHT_TEST_URL", &green.url())]);
    let answers = drive(
        &hook,
        event("ecs-lifecycle-hook-post-test-traffic-shift.json"),
    )
    .await;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0]["hookStatus"], "FAILED");
    assert!(answers[0]["hookDetails"]["greenlight"]["lastReason"]
        .as_str()
        .unwrap_or_default()
        .contains("status: expected 200-399, got 500"));
}

#[tokio::test]
async fn a_warming_green_gets_more_invocations_with_progress_carried_in_hook_details() {
    let green = GreenServer::start(Behaviour::FailsFirst(2)).await;
    let plan = "version: 1\nchecks: [{name: health, path: /health, retries: 0}]\nstages:\n  POST_TEST_TRAFFIC_SHIFT: {attempts: 5, retry_after: 15s}\n";
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", &green.url()),
        ("GREENLIGHT_PLAN", plan),
    ]);
    let answers = drive(
        &hook,
        event("ecs-lifecycle-hook-post-test-traffic-shift.json"),
    )
    .await;
    let statuses: Vec<&Value> = answers.iter().map(|a| &a["hookStatus"]).collect();
    assert_eq!(statuses, vec!["IN_PROGRESS", "IN_PROGRESS", "SUCCEEDED"]);
    assert_eq!(answers[0]["callBackDelay"], 15);
    assert_eq!(
        answers[1]["hookDetails"]["greenlight"]["attempts"], 2,
        "the count survives the merge into the next event"
    );
    assert_eq!(
        answers[0]["hookDetails"]["greenlight"]["firstFailureAtMs"],
        answers[1]["hookDetails"]["greenlight"]["firstFailureAtMs"]
    );
}

#[tokio::test]
async fn a_green_that_stays_broken_fails_once_the_attempts_are_spent() {
    let green = GreenServer::start(Behaviour::Status(503)).await;
    let plan = "version: 1\nchecks: [{name: health, path: /health, retries: 0}]\nstages:\n  POST_TEST_TRAFFIC_SHIFT: {attempts: 3}\n";
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", &green.url()),
        ("GREENLIGHT_PLAN", plan),
    ]);
    let answers = drive(
        &hook,
        event("ecs-lifecycle-hook-post-test-traffic-shift.json"),
    )
    .await;
    let statuses: Vec<&Value> = answers.iter().map(|a| &a["hookStatus"]).collect();
    assert_eq!(statuses, vec!["IN_PROGRESS", "IN_PROGRESS", "FAILED"]);
    assert_eq!(green.received().len(), 3);
}

#[tokio::test]
async fn a_spent_time_window_fails_even_with_attempts_left() {
    let green = GreenServer::start(Behaviour::Status(503)).await;
    let plan = "version: 1\nchecks: [{name: health, path: /health, retries: 0}]\nstages:\n  POST_TEST_TRAFFIC_SHIFT: {attempts: 50, within: 5m}\n";
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", &green.url()),
        ("GREENLIGHT_PLAN", plan),
    ]);
    let ten_minutes_ago = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 600_000;
    let mut late = event("ecs-lifecycle-hook-post-test-traffic-shift.json");
    late["hookDetails"] =
        json!({"greenlight": {"attempts": 4, "firstFailureAtMs": ten_minutes_ago}});
    let answer = invoke(&hook, late).await;
    assert_eq!(answer["hookStatus"], "FAILED");
    assert_eq!(answer["hookDetails"]["greenlight"]["attempts"], 5);
}

#[tokio::test]
async fn a_rollback_invocation_succeeds_without_touching_the_network() {
    let green = GreenServer::start(Behaviour::Status(500)).await;
    let plan = "version: 1\nchecks: [{name: health, path: /health}]\nstages:\n  PRODUCTION_TRAFFIC_SHIFT: {}\n";
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", &green.url()),
        ("GREENLIGHT_PRODUCTION_URL", &green.url()),
        ("GREENLIGHT_PLAN", plan),
    ]);
    let answer = invoke(&hook, event("ecs-lifecycle-hook-rollback.json")).await;
    assert_eq!(answer, json!({"hookStatus": "SUCCEEDED"}));
    assert!(green.received().is_empty());
    // The same stage during a real shift (green at 10%) is verified.
    let answer = invoke(
        &hook,
        event("ecs-lifecycle-hook-production-traffic-shift.json"),
    )
    .await;
    assert_eq!(answer["hookStatus"], "FAILED");
}

#[tokio::test]
async fn stages_without_checks_and_unknown_stages_succeed() {
    let hook = hook(&[("GREENLIGHT_TEST_URL", &unused_local_url())]);
    assert_eq!(
        invoke(&hook, event("ecs-lifecycle-hook-pre-scale-up.json")).await,
        json!({"hookStatus": "SUCCEEDED"})
    );
    let mut unknown = event("ecs-lifecycle-hook-pre-scale-up.json");
    unknown["lifecycleStage"] = json!("SOME_FUTURE_STAGE");
    assert_eq!(
        invoke(&hook, unknown).await,
        json!({"hookStatus": "SUCCEEDED"})
    );
    // Without GREENLIGHT_PRODUCTION_URL, nothing is verified after the production shift.
    assert_eq!(
        invoke(
            &hook,
            event("ecs-lifecycle-hook-post-production-traffic-shift.json")
        )
        .await,
        json!({"hookStatus": "SUCCEEDED"})
    );
}

#[tokio::test]
async fn the_production_stage_goes_through_the_production_url() {
    let (test, production) = (
        GreenServer::start(Behaviour::Healthy).await,
        GreenServer::start(Behaviour::ServesBlue).await,
    );
    let plan = "version: 1\nchecks: [{name: version, path: /api/version, retries: 0, expect: {json: {'$.color': green}}}]";
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", &test.url()),
        ("GREENLIGHT_PRODUCTION_URL", &production.url()),
        ("GREENLIGHT_PLAN", plan),
    ]);
    let answer = invoke(
        &hook,
        event("ecs-lifecycle-hook-post-production-traffic-shift.json"),
    )
    .await;
    assert_eq!(
        answer["hookStatus"], "FAILED",
        "production still serves blue"
    );
    assert_eq!((test.received().len(), production.received().len()), (0, 1));
    assert_eq!(
        invoke(
            &hook,
            event("ecs-lifecycle-hook-post-test-traffic-shift.json")
        )
        .await["hookStatus"],
        "SUCCEEDED"
    );
    assert_eq!(test.received().len(), 1);
}

#[tokio::test]
async fn the_flat_event_shape_is_verified_the_same_way() {
    let green = GreenServer::start(Behaviour::Healthy).await;
    let hook = hook(&[("GREENLIGHT_TEST_URL", &green.url())]);
    assert_eq!(
        invoke(&hook, event("ecs-lifecycle-hook-flat.json")).await["hookStatus"],
        "SUCCEEDED"
    );
    assert_eq!(green.received().len(), 1);
}

#[tokio::test]
async fn malformed_events_and_bad_plans_answer_failed() {
    let hook_ok = hook(&[("GREENLIGHT_TEST_URL", &unused_local_url())]);
    assert_eq!(
        invoke(&hook_ok, json!({"executionId": "x"})).await,
        json!({"hookStatus": "FAILED"})
    );
    let bad_plan = hook(&[
        ("GREENLIGHT_TEST_URL", "http://127.0.0.1:9"),
        (
            "GREENLIGHT_PLAN",
            "version: 1\nchecks: [{name: a, path: /, expect: {status: abc}}]",
        ),
    ]);
    let answer = invoke(
        &bad_plan,
        event("ecs-lifecycle-hook-post-test-traffic-shift.json"),
    )
    .await;
    assert_eq!(answer["hookStatus"], "FAILED");
    assert!(answer["hookDetails"]["greenlight"]["lastReason"]
        .as_str()
        .unwrap_or_default()
        .contains("checks[0].expect.status"));
    let bad_stage = hook(&[
        ("GREENLIGHT_TEST_URL", "http://127.0.0.1:9"),
        (
            "GREENLIGHT_PLAN",
            "version: 1\nchecks: [{name: a, path: /}]\nstages: {POST_TEST: {}}",
        ),
    ]);
    assert_eq!(
        invoke(&bad_stage, event("ecs-lifecycle-hook-pre-scale-up.json")).await["hookStatus"],
        "FAILED",
        "a plan error fails closed at every stage"
    );
}

#[tokio::test]
async fn each_invocation_ends_inside_the_lambda_deadline_when_green_hangs() {
    let green = GreenServer::start(Behaviour::Hangs).await;
    let plan = "version: 1\ndefaults: {timeout: 60s}\nchecks: [{name: health, path: /health}]\nstages:\n  POST_TEST_TRAFFIC_SHIFT: {attempts: 2}\n";
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", &green.url()),
        ("GREENLIGHT_PLAN", plan),
    ]);
    let deadline = Instant::now() + Duration::from_secs(3);
    let answer = hook
        .handle(
            event("ecs-lifecycle-hook-post-test-traffic-shift.json"),
            SystemTime::now() + Duration::from_secs(3),
        )
        .await;
    assert!(
        Instant::now() < deadline,
        "answered before the Lambda deadline"
    );
    assert_eq!(answer.hook_status, HookStatus::InProgress);
}
