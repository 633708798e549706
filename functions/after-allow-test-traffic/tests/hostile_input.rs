//! The built hook binary against hostile input: CPU-heavy and memory-heavy plans, garbage in the
//! environment, files that block, a slow CodeDeploy, odd URLs, duplicate keys, and secrets that
//! try to get out. Each test asserts what CodeDeploy and the logs would show.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::time::Duration;

use greenlight_fakes::hook_harness::{sample_event, HookHarness};
use greenlight_fakes::{Behaviour, FakeAnswer, FakeSns, GreenServer, Route};

const BINARY: &str = env!("CARGO_BIN_EXE_after-allow-test-traffic");

fn os(text: impl Into<String>) -> OsString {
    OsString::from(text.into())
}

async fn hook(env: &[(&str, OsString)]) -> HookHarness {
    HookHarness::start(Path::new(BINARY), env).await
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("greenlight-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir.join(name)
}

#[tokio::test]
async fn cpu_heavy_expectations_are_cut_and_the_status_is_reported_in_time() {
    let words = "lorem ipsum dolor sit amet ".repeat(40_000);
    let green = GreenServer::start(Behaviour::routes([Route::new(
        "/words",
        200,
        "text/plain",
        words,
    )]))
    .await;
    let checks: Vec<String> = (0..4)
        .map(|i| format!("{{name: c{i}, path: /words, retries: 0, expect: {{body_matches: '(\\w+\\s?){{1,100}}X'}}}}"))
        .collect();
    let plan = format!("version: 1\nchecks: [{}]\n", checks.join(", "));
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", os(green.url())),
        ("GREENLIGHT_PLAN", os(plan)),
    ])
    .await;
    let run = hook.invoke(sample_event(), Duration::from_secs(6)).await;
    assert!(
        run.in_time(),
        "reported and answered before the deadline: {run:?}"
    );
    assert_eq!(run.reported, vec!["Failed"]);
    // Each check either finished judging (no X in the body) or was stopped at its limit; either
    // way the reason says so.
    let checks = run.response()["checks"].as_array().expect("checks").clone();
    assert_eq!(checks.len(), 4);
    for check in checks {
        let judged = check["failures"][0]["expected"]
            .as_str()
            .is_some_and(|e| e.starts_with("the body to match"));
        let stopped = check["cause"].as_str().is_some_and(|c| {
            c.contains("judging body_matches was stopped")
                || c.contains("judging it did not finish")
        });
        assert!(judged || stopped, "{check}");
    }
}

/// 127 levels of nested lists, each with 4,000 numbers: 1 MB whose `$..*..*` selects every
/// value once per list it is in: tens of millions of selections.
fn deep_and_wide() -> String {
    let mut body = String::from("0");
    for _ in 0..127 {
        body = format!("[{}{body}]", "0,".repeat(4000));
    }
    body
}

#[tokio::test]
async fn a_pathological_jsonpath_is_stopped_within_a_small_functions_memory() {
    let green = GreenServer::start(Behaviour::routes([Route::new(
        "/deep",
        200,
        "application/json",
        deep_and_wide(),
    )]))
    .await;
    let plan = "version: 1\nchecks:\n  - {name: deep, path: /deep, retries: 0, expect: {json: {'$..*..*': 1}}}\n";
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", os(green.url())),
        ("GREENLIGHT_PLAN", os(plan)),
    ])
    .await;
    let run = hook.invoke(sample_event(), Duration::from_secs(10)).await;
    assert!(run.in_time(), "{run:?}");
    assert_eq!(run.reported, vec!["Failed"]);
    assert!(
        run.reason()
            .contains("judging json $..*..* on this body was stopped: it needed more than"),
        "{}",
        run.reason()
    );
    let peak = hook
        .function
        .peak_rss_kib()
        .expect("peak memory of the function");
    assert!(
        peak < 64 * 1024,
        "the function stayed well inside 128 MB: peak {} MiB",
        peak / 1024
    );
}

#[tokio::test]
async fn garbage_in_aws_variables_never_stops_the_report() {
    let green = GreenServer::start(Behaviour::Healthy).await;
    let fifo = scratch("aws-config-fifo");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", os(green.url())),
        ("AWS_MAX_ATTEMPTS", os("abc")),
        ("AWS_RETRY_MODE", os("zzz")),
        ("AWS_USE_FIPS_ENDPOINT", os("maybe")),
        ("AWS_USE_DUALSTACK_ENDPOINT", os("sometimes")),
        ("AWS_REQUEST_MIN_COMPRESSION_SIZE_BYTES", os("-1")),
        ("AWS_DISABLE_REQUEST_COMPRESSION", os("perhaps")),
        ("AWS_PROFILE", os("no-such-profile")),
        ("AWS_CONFIG_FILE", fifo.clone().into_os_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", fifo.into_os_string()),
    ])
    .await;
    let run = hook.invoke(sample_event(), Duration::from_secs(10)).await;
    assert_eq!(run.reported, vec!["Succeeded"], "{}", hook.logs());
    assert!(run.in_time());
    let logs = hook.logs();
    assert!(logs.contains("AWS_MAX_ATTEMPTS is ignored"), "{logs}");
    assert!(
        logs.contains("is a FIFO (named pipe), not a regular file"),
        "{logs}"
    );
}

#[tokio::test]
async fn a_plan_file_that_is_a_fifo_fails_the_deployment_at_once() {
    let fifo = scratch("plan-fifo");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", os("http://127.0.0.1:9")),
        ("GREENLIGHT_PLAN_FILE", fifo.into_os_string()),
    ])
    .await;
    let run = hook.invoke(sample_event(), Duration::from_secs(10)).await;
    assert_eq!(run.reported, vec!["Failed"]);
    assert!(
        run.reason().contains("GREENLIGHT_PLAN_FILE: ") && run.reason().contains("is a FIFO"),
        "{}",
        run.reason()
    );
}

#[tokio::test]
async fn a_slow_first_answer_from_codedeploy_leaves_room_for_a_second_attempt() {
    // Green hangs, so verification uses its whole window; CodeDeploy's first answer never comes.
    let green = GreenServer::start(Behaviour::Hangs).await;
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", os(green.url())),
        (
            "GREENLIGHT_PLAN",
            os("version: 1\ndefaults: {timeout: 30s}\nchecks: [{name: health, path: /health}]"),
        ),
    ])
    .await;
    hook.codedeploy
        .answer_next_for("PutLifecycleEventHookExecutionStatus", [FakeAnswer::Hang]);
    let run = hook.invoke(sample_event(), Duration::from_secs(3)).await;
    assert_eq!(run.reported, vec!["Failed", "Failed"], "two attempts fit");
    assert_eq!(run.response()["reported"], "recorded", "{:?}", run.answer);
    assert!(run.in_time(), "{run:?}");
}

#[tokio::test]
async fn a_fragment_or_query_in_the_test_url_never_sends_checks_to_the_wrong_path() {
    let green = GreenServer::start(Behaviour::routes([
        Route::new("/", 200, "text/plain", "home"),
        Route::new("/boom", 500, "text/plain", "broken"),
    ]))
    .await;
    let plan = os("version: 1\nchecks: [{name: boom, path: /boom, retries: 0}]");
    let fragment = hook(&[
        ("GREENLIGHT_TEST_URL", os(format!("{}/#", green.url()))),
        ("GREENLIGHT_PLAN", plan.clone()),
    ])
    .await;
    let run = fragment
        .invoke(sample_event(), Duration::from_secs(10))
        .await;
    assert_eq!(run.reported, vec!["Failed"]);
    assert!(run.reason().contains("has a fragment"), "{}", run.reason());

    let query = hook(&[
        ("GREENLIGHT_TEST_URL", os(format!("{}/?x=1", green.url()))),
        ("GREENLIGHT_PLAN", plan),
    ])
    .await;
    let run = query.invoke(sample_event(), Duration::from_secs(10)).await;
    assert_eq!(run.reported, vec!["Failed"]);
    assert!(
        run.reason().contains("status: expected 200-399, got 500"),
        "{}",
        run.reason()
    );
    assert!(green.received().iter().any(|r| r.path == "/boom?x=1"));
}

#[tokio::test]
async fn a_json_plan_with_a_key_written_twice_fails_instead_of_taking_the_last() {
    let green = GreenServer::start(Behaviour::Status(500)).await;
    let plan = r#"{"version": 1, "checks": [{"name": "a", "path": "/", "expect": {"status": 200, "status": 500}}]}"#;
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", os(green.url())),
        ("GREENLIGHT_PLAN", os(plan)),
    ])
    .await;
    let run = hook.invoke(sample_event(), Duration::from_secs(10)).await;
    assert_eq!(run.reported, vec!["Failed"]);
    assert!(
        run.reason()
            .contains("the key \"status\" is written twice in checks[0].expect"),
        "{}",
        run.reason()
    );
}

#[tokio::test]
async fn a_plan_variable_that_is_not_utf8_fails_instead_of_using_the_default_plan() {
    let green = GreenServer::start(Behaviour::Healthy).await;
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", os(green.url())),
        (
            "GREENLIGHT_PLAN",
            OsString::from_vec(b"version: 1\xff".to_vec()),
        ),
    ])
    .await;
    let run = hook.invoke(sample_event(), Duration::from_secs(10)).await;
    assert_eq!(run.reported, vec!["Failed"]);
    assert!(
        run.reason()
            .contains("environment variable GREENLIGHT_PLAN is not valid UTF-8"),
        "{}",
        run.reason()
    );
    assert!(green.received().is_empty(), "nothing ran");
}

/// Every place a secret could show: the answer to the invocation and the function's logs.
fn assert_nowhere(hook: &HookHarness, answer: &str, secrets: &[&str]) {
    let logs = hook.logs();
    for secret in secrets {
        assert!(
            !answer.contains(secret),
            "{secret:?} in the answer: {answer}"
        );
        assert!(!logs.contains(secret), "{secret:?} in the logs: {logs}");
    }
}

#[tokio::test]
async fn values_substituted_into_expectations_never_appear_in_the_output() {
    let green = GreenServer::start(Behaviour::Healthy).await;
    let plan = "version: 1\nchecks:\n  - {name: v, path: /api/version, retries: 0, expect: {body_contains: '${EXPECTED_SECRET}', json: {'$.color': '${COLOR_SECRET}'}}}\n";
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", os(green.url())),
        ("GREENLIGHT_PLAN", os(plan)),
        ("EXPECTED_SECRET", os("alice-admin-secret")),
        ("COLOR_SECRET", os("purple-secret-colour")),
    ])
    .await;
    let run = hook.invoke(sample_event(), Duration::from_secs(10)).await;
    assert_eq!(run.reported, vec!["Failed"]);
    let answer = run.response().to_string();
    assert!(
        answer.contains("expected the body to contain \\\"***\\\""),
        "{answer}"
    );
    assert_nowhere(
        &hook,
        &answer,
        &["alice-admin-secret", "purple-secret-colour"],
    );
}

#[tokio::test]
async fn a_long_echoed_token_is_masked_before_the_excerpt_is_cut() {
    let green = GreenServer::start(Behaviour::EchoesHeaders).await;
    let token: String = (0..350)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let plan = "version: 1\nchecks:\n  - {name: echo, path: /, retries: 0, headers: {authorization: 'Bearer ${LONG_TOKEN}'}, expect: {body_contains: never-there}}\n";
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", os(green.url())),
        ("GREENLIGHT_PLAN", os(plan)),
        ("LONG_TOKEN", os(token.clone())),
    ])
    .await;
    let run = hook.invoke(sample_event(), Duration::from_secs(10)).await;
    assert_eq!(run.reported, vec!["Failed"]);
    let answer = run.response().to_string();
    let pieces: Vec<&str> = (0..token.len() - 16)
        .step_by(16)
        .map(|i| &token[i..i + 16])
        .collect();
    assert_nowhere(&hook, &answer, &pieces);
    assert!(answer.contains("authorization: ***"), "{answer}");
}

#[tokio::test]
async fn credentials_in_the_test_url_and_their_basic_form_are_masked() {
    use base64::Engine;
    let green = GreenServer::start(Behaviour::EchoesHeaders).await;
    let url = green.url().replace("http://", "http://alice:s3cr3t-pw@");
    let plan = "version: 1\nchecks: [{name: echo, path: /, retries: 0, expect: {body_contains: never-there}}]";
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", os(url)),
        ("GREENLIGHT_PLAN", os(plan)),
    ])
    .await;
    let run = hook.invoke(sample_event(), Duration::from_secs(10)).await;
    assert_eq!(run.reported, vec!["Failed"]);
    let basic = base64::engine::general_purpose::STANDARD.encode("alice:s3cr3t-pw");
    let answer = run.response().to_string();
    assert_nowhere(&hook, &answer, &["s3cr3t-pw", &basic, "alice:"]);
    assert!(answer.contains("http://***@127.0.0.1"), "{answer}");
    assert!(
        green.received()[0]
            .headers
            .contains(&("authorization".into(), format!("Basic {basic}"))),
        "the credentials were sent"
    );
}

#[tokio::test]
async fn a_secret_echoed_json_escaped_is_masked() {
    let green = GreenServer::start(Behaviour::EchoesHeadersAsJson).await;
    let secret = r#"tok"en\with-quotes"#;
    let plan = "version: 1\nchecks:\n  - {name: echo, path: /, retries: 0, headers: {x-api-key: '${API_KEY}'}, expect: {body_contains: never-there}}\n";
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", os(green.url())),
        ("GREENLIGHT_PLAN", os(plan)),
        ("API_KEY", os(secret)),
    ])
    .await;
    let run = hook.invoke(sample_event(), Duration::from_secs(10)).await;
    assert_eq!(run.reported, vec!["Failed"]);
    let answer = run.response().to_string();
    let escaped = serde_json::to_string(secret).unwrap();
    let escaped = &escaped[1..escaped.len() - 1];
    let twice = serde_json::to_string(escaped).unwrap();
    let twice = &twice[1..twice.len() - 1];
    assert_nowhere(&hook, &answer, &[secret, escaped, twice]);
    assert!(answer.contains("***"), "{answer}");
}

#[tokio::test]
async fn a_failed_verdict_is_announced_after_the_report_with_secrets_masked() {
    let green = GreenServer::start(Behaviour::Status(500)).await;
    let sns = FakeSns::start().await;
    let plan = "version: 1\nchecks: [{name: health, path: /health, retries: 0, headers: {authorization: 'Bearer ${TOKEN}'}, expect: {body_contains: '${TOKEN}'}}]";
    let hook = hook(&[
        ("GREENLIGHT_TEST_URL", os(green.url())),
        ("GREENLIGHT_PLAN", os(plan)),
        ("TOKEN", os("announce-secret-1234")),
        (
            "GREENLIGHT_NOTIFY_TOPIC_ARN",
            os("arn:aws:sns:us-east-1:123456789012:deployments"),
        ),
        ("AWS_ENDPOINT_URL_SNS", os(sns.url())),
    ])
    .await;
    let run = hook.invoke(sample_event(), Duration::from_secs(10)).await;
    assert_eq!(run.reported, vec!["Failed"]);
    let published = sns.published();
    assert_eq!(published.len(), 1);
    assert!(
        published[0]
            .subject
            .starts_with("greenlight: AfterAllowTestTraffic FAILED for deployment d-"),
        "{:?}",
        published[0]
    );
    assert!(
        published[0]
            .message
            .contains("status: expected 200-399, got 500"),
        "{}",
        published[0].message
    );
    assert!(
        !published[0].message.contains("announce-secret-1234"),
        "{}",
        published[0].message
    );
    let report = hook
        .codedeploy
        .calls_to("PutLifecycleEventHookExecutionStatus")[0]
        .at;
    let announce = sns.calls()[0].at;
    assert!(report < announce, "the report comes first");
}
