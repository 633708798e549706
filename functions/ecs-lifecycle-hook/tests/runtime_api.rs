//! The built `ecs-lifecycle-hook` binary under the Lambda Runtime API emulator, driven by the ECS
//! re-invocation loop: a malformed event, then a stage that needs a second invocation.

use std::path::Path;
use std::time::Duration;

use greenlight_fakes::ecs_loop::drive_stage;
use greenlight_fakes::{Behaviour, FunctionProcess, GreenServer, InvocationResult, RuntimeApi};
use serde_json::{json, Value};

const BINARY: &str = env!("CARGO_BIN_EXE_ecs-lifecycle-hook");

fn event(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("read the sample event"))
        .expect("JSON")
}

async fn answer(api: &RuntimeApi, event: Value) -> Value {
    match api.invoke(event, Duration::from_secs(10)).await {
        InvocationResult::Response(body) => body,
        other => panic!("expected a hook response, got {other:?}"),
    }
}

#[tokio::test]
async fn answers_hook_status_through_the_runtime_api_across_invocations() {
    let (green, api) = (
        GreenServer::start(Behaviour::FailsFirst(1)).await,
        RuntimeApi::start().await,
    );
    let plan = "version: 1\nchecks: [{name: health, path: /health, retries: 0}]\nstages:\n  POST_TEST_TRAFFIC_SHIFT: {attempts: 3, retry_after: 10s}\n";
    let mut function = FunctionProcess::spawn(
        BINARY.as_ref(),
        &api,
        &[
            ("GREENLIGHT_TEST_URL", green.url()),
            ("GREENLIGHT_PLAN", plan.to_string()),
        ],
    )
    .expect("start the function binary");

    assert_eq!(
        answer(&api, json!({"nonsense": true})).await,
        json!({"hookStatus": "FAILED"})
    );
    let answers = drive_stage(
        |e| answer(&api, e),
        event("ecs-lifecycle-hook-post-test-traffic-shift.json"),
        5,
    )
    .await;
    let statuses: Vec<&Value> = answers.iter().map(|a| &a["hookStatus"]).collect();
    assert_eq!(statuses, vec!["IN_PROGRESS", "SUCCEEDED"]);
    assert_eq!(answers[0]["callBackDelay"], 10);
    assert_eq!(
        answer(&api, event("ecs-lifecycle-hook-rollback.json")).await,
        json!({"hookStatus": "SUCCEEDED"})
    );
    assert!(function.is_running());
    function.stop().await;
}

#[tokio::test]
async fn values_from_the_environment_never_reach_hook_details_or_logs() {
    let (green, api) = (
        GreenServer::start(Behaviour::Healthy).await,
        RuntimeApi::start().await,
    );
    let plan = "version: 1\nchecks: [{name: v, path: /api/version, retries: 0, expect: {body_contains: '${EXPECTED_SECRET}'}}]\nstages:\n  POST_TEST_TRAFFIC_SHIFT: {attempts: 2}\n";
    let function = FunctionProcess::spawn(
        BINARY.as_ref(),
        &api,
        &[
            ("GREENLIGHT_TEST_URL", green.url()),
            ("GREENLIGHT_PLAN", plan.to_string()),
            ("EXPECTED_SECRET", "alice-admin-secret".to_string()),
        ],
    )
    .expect("start the function binary");
    let first = answer(
        &api,
        event("ecs-lifecycle-hook-post-test-traffic-shift.json"),
    )
    .await;
    assert_eq!(first["hookStatus"], "IN_PROGRESS");
    let reason = first["hookDetails"]["greenlight"]["lastReason"]
        .as_str()
        .expect("the reason is carried to the next invocation");
    assert!(reason.contains("to contain \"***\""), "{reason}");
    assert!(!first.to_string().contains("alice-admin-secret"), "{first}");
    assert!(!function.output().contains("alice-admin-secret"));
    function.stop().await;
}
