//! Scenarios that every CodeDeploy hook binary must pass under the Runtime API emulator. Each
//! function crate's integration test runs them against its own built binary.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::{
    Behaviour, FakeCodeDeploy, FunctionProcess, GreenServer, InvocationResult, RuntimeApi,
};

fn read_event(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A malformed event gets a clear error; then the same process reports a valid event
/// `Succeeded` through `AWS_ENDPOINT_URL_CODEDEPLOY` (and its duplicate as already completed),
/// without logging header values.
pub async fn bad_event_then_good_events(binary: &Path, sample_event: &Path) {
    let sample = read_event(sample_event);
    let (fake, green, api) = (
        FakeCodeDeploy::start().await,
        GreenServer::start(Behaviour::Healthy).await,
        RuntimeApi::start().await,
    );
    let plan = "version: 1\nchecks:\n  - {name: health, path: /health, headers: {Authorization: 'Bearer ${SMOKE_TOKEN}'}, expect: {body_contains: UP}}\n";
    let mut function = FunctionProcess::spawn(
        binary,
        &api,
        &[
            ("AWS_ENDPOINT_URL_CODEDEPLOY", fake.url()),
            ("GREENLIGHT_TEST_URL", green.url()),
            // AfterAllowTraffic verifies production, which reaches green after the shift.
            ("GREENLIGHT_PRODUCTION_URL", green.url()),
            ("GREENLIGHT_PLAN", plan.to_string()),
            ("SMOKE_TOKEN", "tok-never-logged-77".to_string()),
        ],
    )
    .expect("start the function binary");

    let bad = api
        .invoke(json!({"DeploymentId": "d-1"}), Duration::from_secs(10))
        .await;
    match &bad {
        InvocationResult::Error {
            error_type,
            error_message,
        } => {
            assert_eq!(error_type, "InvalidEvent");
            assert!(
                error_message.contains("LifecycleEventHookExecutionId is missing"),
                "{error_message}"
            );
        }
        other => panic!("expected an error for a malformed event, got {other:?}"),
    }
    assert!(fake.calls().is_empty(), "a malformed event reports nothing");

    // The same event twice (CodeDeploy invokes at least once): the second report finds the
    // lifecycle event already completed, which is success.
    for expected in ["recorded", "already_completed"] {
        let answer = api.invoke(sample.clone(), Duration::from_secs(10)).await;
        let InvocationResult::Response(body) = answer else {
            panic!("expected a response, got {answer:?}")
        };
        assert_eq!(body["status"], "Succeeded", "{body}");
        assert_eq!(body["reported"], expected);
    }
    assert_eq!(fake.reported_statuses(), vec!["Succeeded", "Succeeded"]);
    assert_eq!(fake.calls()[0].body["deploymentId"], sample["DeploymentId"]);
    assert!(function.is_running(), "the process keeps serving");
    assert_eq!(api.init_error(), None);

    let logs = function.output();
    assert!(
        logs.contains("\"verdict\":\"Succeeded\""),
        "JSON logs carry the verdict: {logs}"
    );
    assert!(
        !logs.contains("tok-never-logged-77"),
        "header values never reach the logs: {logs}"
    );
    function.stop().await;
}

/// A plan error at start-up does not crash the function: each event is reported `Failed` with
/// the field path in the reason.
pub async fn broken_plan_is_reported_failed(binary: &Path, sample_event: &Path) {
    let sample = read_event(sample_event);
    let (fake, api) = (FakeCodeDeploy::start().await, RuntimeApi::start().await);
    let function = FunctionProcess::spawn(
        binary,
        &api,
        &[
            ("AWS_ENDPOINT_URL_CODEDEPLOY", fake.url()),
            ("GREENLIGHT_TEST_URL", "http://127.0.0.1:9".to_string()),
            (
                "GREENLIGHT_PRODUCTION_URL",
                "http://127.0.0.1:9".to_string(),
            ),
            (
                "GREENLIGHT_PLAN",
                "version: 1\nchecks: [{name: a, path: /, timeout: 5}]".to_string(),
            ),
        ],
    )
    .expect("start the function binary");
    let answer = api.invoke(sample, Duration::from_secs(10)).await;
    let InvocationResult::Response(body) = answer else {
        panic!("expected a response, got {answer:?}")
    };
    assert_eq!(body["status"], "Failed");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("checks[0].timeout: 5 has no unit"),
        "{body}"
    );
    assert_eq!(fake.reported_statuses(), vec!["Failed"]);
    function.stop().await;
}

/// Without credentials in the environment the hook cannot report; it says so at once, without
/// waiting out its deadline or looking for credentials anywhere else (no instance metadata).
pub async fn missing_credentials_fail_fast(binary: &Path, sample_event: &Path) {
    let sample = read_event(sample_event);
    let (fake, green, api) = (
        FakeCodeDeploy::start().await,
        GreenServer::start(Behaviour::Healthy).await,
        RuntimeApi::start().await,
    );
    let function = FunctionProcess::spawn(
        binary,
        &api,
        &[
            ("AWS_ENDPOINT_URL_CODEDEPLOY", fake.url()),
            ("GREENLIGHT_TEST_URL", green.url()),
            // AfterAllowTraffic verifies production, which reaches green after the shift.
            ("GREENLIGHT_PRODUCTION_URL", green.url()),
            ("AWS_ACCESS_KEY_ID", String::new()),
            ("AWS_SECRET_ACCESS_KEY", String::new()),
        ],
    )
    .expect("start the function binary");
    let started = std::time::Instant::now();
    let answer = api.invoke(sample, Duration::from_secs(20)).await;
    match &answer {
        InvocationResult::Error {
            error_type,
            error_message,
        } => {
            assert_eq!(error_type, "ReportFailed");
            assert!(
                error_message.to_lowercase().contains("credentials"),
                "{error_message}"
            );
        }
        other => panic!("expected a report failure, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed fast, not at the deadline: {:?} {answer:?}",
        started.elapsed()
    );
    assert!(
        fake.calls().is_empty(),
        "nothing unsigned reached CodeDeploy"
    );
    function.stop().await;
}
