//! The CodeDeploy hooks end to end in one process: a real green server on 127.0.0.1, the real
//! SDK talking HTTP to a fake CodeDeploy. Every test asserts what CodeDeploy received, and when.

use std::time::{Duration, Instant, SystemTime};

use greenlight::codedeploy::{ReportError, Reported};
use greenlight::hook::{CodeDeployHook, HookError, HookResponse};
use greenlight::{Env, Outcome, PlanSettings};
use greenlight_fakes::{unused_local_url, Behaviour, FakeAnswer, FakeCodeDeploy, GreenServer};
use serde_json::Value;

fn event() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/after-allow-test-traffic.json"
    ))
    .expect("read events/after-allow-test-traffic.json");
    serde_json::from_str(&text).expect("the sample event is JSON")
}

/// A hook configured like a deployed function: GREENLIGHT_TEST_URL, and optionally GREENLIGHT_PLAN.
async fn hook(fake: &FakeCodeDeploy, test_url: &str, plan: Option<&str>) -> CodeDeployHook {
    let mut vars = vec![
        ("GREENLIGHT_TEST_URL", test_url),
        ("SMOKE_TOKEN", "tok-secret-4242"),
    ];
    vars.extend(plan.map(|p| ("GREENLIGHT_PLAN", p)));
    let env = Env::from_pairs(vars);
    let plan = PlanSettings::from_env(&env).and_then(|s| s.load(&env));
    CodeDeployHook::new("AfterAllowTestTraffic", &fake.sdk_config().await, plan)
}

/// Runs one invocation with a Lambda deadline `timeout` away; returns the result and the deadline.
async fn invoke(
    hook: &CodeDeployHook,
    timeout: Duration,
) -> (Result<HookResponse, HookError>, Instant) {
    let deadline = Instant::now() + timeout;
    (
        hook.handle(event(), SystemTime::now() + timeout).await,
        deadline,
    )
}

const API_PLAN: &str = r#"
version: 1
defaults: {retries: 0, headers: {x-smoke: "1", authorization: "Bearer ${SMOKE_TOKEN}"}}
checks:
  - {name: health, path: /health, expect: {status: 200, body_contains: UP}}
  - {name: version, path: /api/version, expect: {json: {"$.color": green}}}
"#;

#[tokio::test]
async fn reports_succeeded_when_green_is_healthy() {
    let (fake, green) = (
        FakeCodeDeploy::start().await,
        GreenServer::start(Behaviour::Healthy).await,
    );
    let hook = hook(&fake, &green.url(), Some(API_PLAN)).await;
    let (result, _) = invoke(&hook, Duration::from_secs(10)).await;
    let response = result.expect("the hook reports");
    assert_eq!(response.reported, Reported::Recorded);
    assert_eq!(fake.reported_statuses(), vec!["Succeeded"]);
    let call = &fake.calls()[0];
    assert_eq!(call.body["deploymentId"], "d-AB12CD34E");
    assert_eq!(
        call.body["lifecycleEventHookExecutionId"],
        event()["LifecycleEventHookExecutionId"]
    );
    let received = green.received();
    assert_eq!(received.len(), 2);
    assert!(
        received
            .iter()
            .all(|r| r.headers.contains(&("x-smoke".into(), "1".into()))),
        "plan headers reach green"
    );
}

#[tokio::test]
async fn the_default_plan_gets_the_test_url() {
    let (fake, green) = (
        FakeCodeDeploy::start().await,
        GreenServer::start(Behaviour::Healthy).await,
    );
    let hook = hook(&fake, &green.url(), None).await;
    invoke(&hook, Duration::from_secs(10))
        .await
        .0
        .expect("reported");
    assert_eq!(fake.reported_statuses(), vec!["Succeeded"]);
    assert_eq!(green.received()[0].path, "/");
}

#[tokio::test]
async fn reports_failed_with_the_status_when_green_answers_500() {
    let (fake, green) = (
        FakeCodeDeploy::start().await,
        GreenServer::start(Behaviour::Status(500)).await,
    );
    let hook = hook(&fake, &green.url(), Some(API_PLAN)).await;
    let response = invoke(&hook, Duration::from_secs(10))
        .await
        .0
        .expect("reported");
    assert_eq!(fake.reported_statuses(), vec!["Failed"]);
    assert!(
        response
            .verdict
            .reason
            .contains("health failed: status: expected 200, got 500"),
        "{}",
        response.verdict.reason
    );
}

#[tokio::test]
async fn reports_failed_when_the_answer_comes_from_blue() {
    let (fake, green) = (
        FakeCodeDeploy::start().await,
        GreenServer::start(Behaviour::ServesBlue).await,
    );
    let hook = hook(&fake, &green.url(), Some(API_PLAN)).await;
    let response = invoke(&hook, Duration::from_secs(10))
        .await
        .0
        .expect("reported");
    assert_eq!(fake.reported_statuses(), vec!["Failed"]);
    let version = &response.verdict.checks[1];
    assert_eq!(
        version.outcome.reason(),
        "json $.color: expected \"green\", got \"blue\""
    );
    assert_eq!(response.verdict.checks[0].outcome, Outcome::Passed);
}

#[tokio::test]
async fn retries_until_green_warms_up() {
    let (fake, green) = (
        FakeCodeDeploy::start().await,
        GreenServer::start(Behaviour::FailsFirst(2)).await,
    );
    let plan = "version: 1\ndefaults: {retry_delay: 10ms}\nchecks: [{name: health, path: /health, retries: 2}]";
    let hook = hook(&fake, &green.url(), Some(plan)).await;
    let response = invoke(&hook, Duration::from_secs(10))
        .await
        .0
        .expect("reported");
    assert_eq!(fake.reported_statuses(), vec!["Succeeded"]);
    assert_eq!(response.verdict.checks[0].attempts, 3);
}

#[tokio::test]
async fn fails_a_slow_green_on_latency() {
    let (fake, green) = (
        FakeCodeDeploy::start().await,
        GreenServer::start(Behaviour::Slow(Duration::from_millis(300))).await,
    );
    let plan =
        "version: 1\nchecks: [{name: health, path: /health, retries: 0, expect: {latency: 100ms}}]";
    let hook = hook(&fake, &green.url(), Some(plan)).await;
    let response = invoke(&hook, Duration::from_secs(10))
        .await
        .0
        .expect("reported");
    assert_eq!(fake.reported_statuses(), vec!["Failed"]);
    assert!(
        response
            .verdict
            .reason
            .contains("latency: expected at most 100ms, got"),
        "{}",
        response.verdict.reason
    );
}

#[tokio::test]
async fn reports_failed_before_the_deadline_when_green_hangs() {
    let (fake, green) = (
        FakeCodeDeploy::start().await,
        GreenServer::start(Behaviour::Hangs).await,
    );
    // The check's own timeout (30s) is longer than the whole invocation (3s).
    let plan = "version: 1\ndefaults: {timeout: 30s}\nchecks: [{name: health, path: /health}]";
    let hook = hook(&fake, &green.url(), Some(plan)).await;
    let (result, deadline) = invoke(&hook, Duration::from_secs(3)).await;
    let response = result.expect("reported");
    let calls = fake.calls();
    assert_eq!(fake.reported_statuses(), vec!["Failed"]);
    assert!(
        calls[0].at < deadline,
        "the status reached CodeDeploy before the Lambda deadline"
    );
    assert!(
        Instant::now() < deadline,
        "the invocation returned before the Lambda deadline"
    );
    let outcome = &response.verdict.checks[0].outcome;
    assert!(
        matches!(outcome, Outcome::Errored { cause } if cause.contains("verification deadline")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn reports_failed_when_nothing_listens_on_the_test_url() {
    let fake = FakeCodeDeploy::start().await;
    let plan = "version: 1\ndefaults: {retries: 1, retry_delay: 10ms}\nchecks: [{name: health, path: /health}]";
    let hook = hook(&fake, &unused_local_url(), Some(plan)).await;
    let response = invoke(&hook, Duration::from_secs(10))
        .await
        .0
        .expect("reported");
    assert_eq!(fake.reported_statuses(), vec!["Failed"]);
    let check = &response.verdict.checks[0];
    assert_eq!(check.attempts, 2);
    assert!(
        matches!(&check.outcome, Outcome::Errored { cause } if cause.starts_with("could not connect")),
        "{:?}",
        check.outcome
    );
}

#[tokio::test]
async fn reports_failed_with_the_field_path_when_the_plan_is_wrong() {
    let fake = FakeCodeDeploy::start().await;
    let plan = "version: 1\nchecks: [{name: health, path: /health, expect: {status: abc}}]";
    let hook = hook(&fake, "http://127.0.0.1:9", Some(plan)).await;
    let response = invoke(&hook, Duration::from_secs(10))
        .await
        .0
        .expect("reported");
    assert_eq!(fake.reported_statuses(), vec!["Failed"]);
    assert!(
        response
            .verdict
            .reason
            .contains("checks[0].expect.status: \"abc\" is not a status code"),
        "{}",
        response.verdict.reason
    );
}

#[tokio::test]
async fn reports_failed_when_a_check_panics() {
    let (fake, green) = (
        FakeCodeDeploy::start().await,
        GreenServer::start(Behaviour::Healthy).await,
    );
    let plan =
        "version: 1\nchecks: [{name: health, path: /health}, {name: 'failpoint:panic', path: /}]";
    let hook = hook(&fake, &green.url(), Some(plan)).await;
    let response = invoke(&hook, Duration::from_secs(10))
        .await
        .0
        .expect("reported");
    assert_eq!(fake.reported_statuses(), vec!["Failed"]);
    assert_eq!(response.verdict.checks[0].outcome, Outcome::Passed);
    assert!(
        response.verdict.checks[1]
            .outcome
            .reason()
            .contains("the check panicked"),
        "{:?}",
        response.verdict.checks[1]
    );
}

#[tokio::test]
async fn retries_reporting_through_throttling_and_server_errors() {
    let (fake, green) = (
        FakeCodeDeploy::start().await,
        GreenServer::start(Behaviour::Healthy).await,
    );
    fake.answer_next([
        FakeAnswer::throttled(),
        FakeAnswer::internal_error(),
        FakeAnswer::throttled(),
    ]);
    let hook = hook(&fake, &green.url(), None).await;
    let response = invoke(&hook, Duration::from_secs(10))
        .await
        .0
        .expect("reported after retries");
    assert_eq!(response.reported, Reported::Recorded);
    assert_eq!(fake.reported_statuses(), vec!["Succeeded"; 4]);
}

#[tokio::test]
async fn already_completed_counts_as_reported() {
    let (fake, green) = (
        FakeCodeDeploy::start().await,
        GreenServer::start(Behaviour::Healthy).await,
    );
    fake.answer_always(FakeAnswer::already_completed());
    let hook = hook(&fake, &green.url(), None).await;
    let response = invoke(&hook, Duration::from_secs(10))
        .await
        .0
        .expect("already completed is success");
    assert_eq!(response.reported, Reported::AlreadyCompleted);
    assert_eq!(fake.calls().len(), 1, "no retry after already-completed");
}

#[tokio::test]
async fn access_denied_is_an_error_that_says_which_permission_is_missing() {
    let (fake, green) = (
        FakeCodeDeploy::start().await,
        GreenServer::start(Behaviour::Healthy).await,
    );
    fake.answer_always(FakeAnswer::access_denied());
    let hook = hook(&fake, &green.url(), None).await;
    let error = invoke(&hook, Duration::from_secs(10))
        .await
        .0
        .expect_err("access denied is an error");
    assert!(
        matches!(
            &error,
            HookError::Report {
                source: ReportError::AccessDenied(_),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("codedeploy:PutLifecycleEventHookExecutionStatus"),
        "{error}"
    );
    assert_eq!(fake.calls().len(), 1, "access denied is not retried");
}

#[tokio::test]
async fn gives_up_reporting_just_before_the_deadline_when_codedeploy_hangs() {
    let (fake, green) = (
        FakeCodeDeploy::start().await,
        GreenServer::start(Behaviour::Healthy).await,
    );
    fake.answer_always(FakeAnswer::Hang);
    let hook = hook(&fake, &green.url(), None).await;
    let (result, deadline) = invoke(&hook, Duration::from_secs(2)).await;
    assert!(
        matches!(
            result,
            Err(HookError::Report {
                source: ReportError::OutOfTime { .. },
                ..
            })
        ),
        "{result:?}"
    );
    assert!(
        Instant::now() < deadline,
        "the invocation returned before the Lambda deadline"
    );
}

#[tokio::test]
async fn an_event_without_ids_is_an_error_and_nothing_is_reported() {
    let fake = FakeCodeDeploy::start().await;
    let hook = hook(&fake, "http://127.0.0.1:9", None).await;
    let error = hook
        .handle(
            serde_json::json!({"DeploymentId": "d-1"}),
            SystemTime::now() + Duration::from_secs(5),
        )
        .await
        .expect_err("cannot report without an execution id");
    assert!(
        error
            .to_string()
            .contains("LifecycleEventHookExecutionId is missing"),
        "{error}"
    );
    assert!(fake.calls().is_empty());
    // The same hook keeps serving the next, valid event.
    invoke(&hook, Duration::from_secs(5))
        .await
        .0
        .expect("the next event is reported");
    assert_eq!(fake.reported_statuses(), vec!["Failed"]);
}

#[tokio::test]
async fn header_values_never_appear_in_the_verdict() {
    let (fake, green) = (
        FakeCodeDeploy::start().await,
        GreenServer::start(Behaviour::EchoesHeaders).await,
    );
    let plan = "version: 1\nchecks: [{name: echo, path: /, retries: 0, headers: {Authorization: 'Bearer ${SMOKE_TOKEN}'}, expect: {body_contains: nothing-like-this}}]";
    let hook = hook(&fake, &green.url(), Some(plan)).await;
    let response = invoke(&hook, Duration::from_secs(10))
        .await
        .0
        .expect("reported");
    assert!(green.received()[0]
        .headers
        .contains(&("authorization".into(), "Bearer tok-secret-4242".into())));
    let shown = serde_json::to_string(&response).unwrap();
    assert!(
        shown.contains("authorization: ***"),
        "the echoed header is scrubbed: {shown}"
    );
    assert!(!shown.contains("tok-secret-4242"), "{shown}");
}
