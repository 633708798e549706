//! The `greenlight` command as a user runs it: exit codes, output, and the local rehearsal, whose
//! scenarios double as end-to-end tests of the shipped function binaries.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use greenlight_demo_app::{DemoApp, Mode};
use serde_json::Value;
use tokio::process::Command;

const GREENLIGHT: &str = env!("CARGO_BIN_EXE_greenlight");

async fn greenlight(args: &[&str]) -> Output {
    let run = Command::new(GREENLIGHT)
        .args(args)
        .env("NO_COLOR", "1")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("greenlight finished in time")
        .expect("greenlight ran")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

async fn rehearse(scenario: &str) -> (Output, Value) {
    let output = greenlight(&["rehearse", scenario, "--format", "json"]).await;
    let outcomes: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON outcome ({e}); stdout: {} stderr: {}",
            text(&output.stdout),
            text(&output.stderr)
        )
    });
    (output, outcomes[0].clone())
}

fn steps(outcome: &Value) -> Vec<String> {
    outcome["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["step"].as_str().unwrap(),
                e["message"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn a_healthy_green_is_promoted_to_production() {
    let (output, outcome) = rehearse("healthy").await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(outcome["result"], "promoted");
    assert!(
        outcome["production_requests"]["green"].as_u64().unwrap() > 0,
        "production traffic reached green"
    );
    assert_eq!(outcome["production_requests"]["green_5xx"], 0);
    let steps = steps(&outcome);
    assert!(
        steps
            .iter()
            .any(|s| s == "AfterAllowTestTraffic hook reported Succeeded: all 3 checks passed"),
        "{steps:#?}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s == "BeforeAllowTraffic hook reported Succeeded: all 3 checks passed"),
        "{steps:#?}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s == "AfterAllowTraffic hook reported Succeeded: the check passed"),
        "the metric gate after the shift passed: {steps:#?}"
    );
}

#[tokio::test]
async fn one_greenlight_serves_two_services_each_with_its_own_plan_and_found_route() {
    let (output, outcome) = rehearse("fleet").await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let services = outcome["services"].as_array().unwrap();
    assert_eq!(services.len(), 2);
    assert_eq!(services[0]["service"], "checkout/checkout-prod");
    assert_eq!(services[0]["result"], "promoted");
    assert!(
        services[0]["production_requests"]["green"]
            .as_u64()
            .unwrap()
            > 0
    );
    // payments' own plan (its checks' names) caught its broken green; checkout's green passed
    // the rehearsal plan, through the test listener each hook found from the deployment.
    assert_eq!(services[1]["service"], "payments/payments-prod");
    assert_eq!(services[1]["result"], "rolled-back");
    assert_eq!(
        services[1]["failing_checks"],
        serde_json::json!(["payments-orders"])
    );
    assert_eq!(services[1]["production_requests"]["green"], 0);
    let steps = steps(&outcome);
    assert!(
        steps
            .iter()
            .any(|s| s
                == "checkout AfterAllowTestTraffic hook reported Succeeded: all 3 checks passed"),
        "{steps:#?}"
    );
    assert!(
        steps.iter().any(|s| s
            == "payments AfterAllowTestTraffic hook reported Failed: 1 of 2 checks did not pass"),
        "{steps:#?}"
    );
}

#[tokio::test]
async fn a_broken_green_is_caught_by_the_hook_and_never_sees_production() {
    let (output, outcome) = rehearse("broken").await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "a rollback is the expected outcome: {}",
        text(&output.stderr)
    );
    assert_eq!(outcome["result"], "rolled-back");
    assert_eq!(
        outcome["failing_checks"],
        serde_json::json!(["list-orders"])
    );
    assert!(
        outcome["reason"]
            .as_str()
            .unwrap()
            .starts_with("AfterAllowTestTraffic hook reported Failed"),
        "{}",
        outcome["reason"]
    );
    assert!(
        outcome["reason"]
            .as_str()
            .unwrap()
            .contains("status: expected 200, got 500"),
        "the reason names the measured value"
    );
    assert_eq!(
        outcome["production_requests"]["green"], 0,
        "production never reached green"
    );
}

#[tokio::test]
async fn a_green_that_fails_under_production_traffic_is_rolled_back_by_the_alarm() {
    let (output, outcome) = rehearse("alarm").await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(outcome["result"], "rolled-back");
    assert!(
        outcome["reason"]
            .as_str()
            .unwrap()
            .contains("alarm-rollback stopped d-REHEARSAL1"),
        "{}",
        outcome["reason"]
    );
    assert!(
        outcome["production_requests"]["green_5xx"]
            .as_u64()
            .unwrap()
            > 5
    );
    assert!(
        steps(&outcome)
            .iter()
            .any(|s| s.starts_with("alarm-rollback stopped d-REHEARSAL1")),
        "{:#?}",
        steps(&outcome)
    );
}

#[tokio::test]
async fn a_green_that_slows_under_production_traffic_is_rolled_back_by_the_metric_gate() {
    let (output, outcome) = rehearse("slow").await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(outcome["result"], "rolled-back");
    assert_eq!(outcome["failing_checks"], serde_json::json!(["green-p90"]));
    let reason = outcome["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("AfterAllowTraffic hook reported Failed")
            && reason.contains("metric AWS/ApplicationELB TargetResponseTime p90")
            && reason.contains("expected every 1s datapoint < 0.3, got 0.4"),
        "{reason}"
    );
    assert!(
        outcome["production_requests"]["green"].as_u64().unwrap() > 0,
        "production reached green before the gate judged it"
    );
    // The healthy scenario passes the same gate (see a_healthy_green_is_promoted_to_production).
}

#[tokio::test]
async fn without_arguments_the_rehearsal_runs_healthy_then_broken_and_prints_a_timeline() {
    let output = greenlight(&["rehearse"]).await;
    assert_eq!(output.status.code(), Some(0));
    let out = text(&output.stdout);
    let healthy = out.find("scenario Healthy").expect("healthy first");
    let broken = out.find("scenario Broken").expect("then broken");
    assert!(healthy < broken);
    assert!(
        out.contains("healthy  promoted: production is on green 2.0.0"),
        "{out}"
    );
    assert!(
        out.contains("broken   rolled back: production is on blue 1.0.0"),
        "{out}"
    );
}

#[tokio::test]
async fn a_missing_function_binary_is_a_configuration_error_that_says_what_to_build() {
    let output = greenlight(&["rehearse", "healthy", "--functions-dir", "/nonexistent"]).await;
    assert_eq!(output.status.code(), Some(2));
    let err = text(&output.stderr);
    assert!(
        err.contains("cannot find the after-allow-test-traffic, before-allow-traffic, after-allow-traffic, alarm-rollback binary in /nonexistent: build the functions first")
            && err.contains("cargo lambda build --release"),
        "{err}"
    );
}

#[tokio::test]
async fn a_rehearsal_finds_binaries_in_cargo_lambdas_layout() {
    // DIR/<function>/bootstrap, as `cargo lambda build` leaves them.
    let dir = std::env::temp_dir().join(format!("greenlight-lambda-layout-{}", std::process::id()));
    for function in [
        "after-allow-test-traffic",
        "before-allow-traffic",
        "after-allow-traffic",
        "alarm-rollback",
    ] {
        let at = dir.join(function);
        std::fs::create_dir_all(&at).unwrap();
        let bootstrap = at.join("bootstrap");
        let _ = std::fs::remove_file(&bootstrap);
        std::os::unix::fs::symlink(Path::new(GREENLIGHT).with_file_name(function), &bootstrap)
            .unwrap();
    }
    let output = greenlight(&[
        "rehearse",
        "broken",
        "--format",
        "json",
        "--functions-dir",
        dir.to_str().unwrap(),
    ])
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let outcomes: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(outcomes[0]["result"], "rolled-back");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let output = greenlight(&["completions", shell]).await;
        assert_eq!(output.status.code(), Some(0), "{shell}");
        let script = text(&output.stdout);
        assert!(
            script.contains("rehearse") && script.contains("aws-standin"),
            "{shell}: {script}"
        );
    }
}

#[tokio::test]
async fn ctrl_c_stops_every_process_the_rehearsal_started() {
    let mut child = Command::new(GREENLIGHT)
        .args(["rehearse", "healthy"])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    // Wait until the rehearsal has started its three function processes.
    let until = Instant::now() + Duration::from_secs(20);
    let mut children = Vec::new();
    while Instant::now() < until {
        children = child_pids(pid);
        if children.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        children.len() >= 3,
        "the rehearsal started its function processes: {children:?}"
    );
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after Ctrl-C")
        .unwrap();
    assert_eq!(status.code(), Some(130));
    for child in children {
        let until = Instant::now() + Duration::from_secs(5);
        while alive(child) && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(child), "function process {child} was stopped");
    }
}

fn child_pids(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The fields after the command name (which is in parentheses): state, ppid, …
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        if after.split_whitespace().nth(1) == Some(&parent.to_string()) {
            pids.push(pid);
        }
    }
    pids
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test]
async fn verify_passes_against_a_healthy_service_and_fails_against_a_broken_one() {
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/plans/rehearsal.yaml");
    let plan = plan.to_str().unwrap();
    let healthy = DemoApp {
        color: "green".into(),
        version: "2.0.0".into(),
        mode: Mode::Healthy,
    }
    .serve("127.0.0.1:0")
    .await
    .unwrap();
    let output = greenlight(&["verify", "--plan", plan, "--target", &healthy.url()]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    let out = text(&output.stdout);
    assert!(out.contains("PASSED  health"), "{out}");
    assert!(out.contains("verdict: SUCCEEDED"), "{out}");

    let broken = DemoApp {
        color: "green".into(),
        version: "2.0.0".into(),
        mode: Mode::Broken,
    }
    .serve("127.0.0.1:0")
    .await
    .unwrap();
    let output = greenlight(&[
        "verify",
        "--plan",
        plan,
        "--target",
        &broken.url(),
        "--format",
        "json",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1));
    let verdict: Value = serde_json::from_slice(&output.stdout).expect("JSON verdict");
    assert_eq!(verdict["status"], "Failed");
    let orders = verdict["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "list-orders")
        .unwrap();
    assert_eq!(orders["outcome"], "failed");
    assert_eq!(orders["status"], 500);
}

#[tokio::test]
async fn verify_compares_green_with_the_baseline_given_on_the_command_line() {
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/plans/compare.yaml");
    let plan = plan.to_str().unwrap();
    let app = |color: &str, version: &str, mode: Mode| DemoApp {
        color: color.into(),
        version: version.into(),
        mode,
    };
    let blue = app("blue", "1.0.0", Mode::Healthy)
        .serve("127.0.0.1:0")
        .await
        .unwrap();
    let green = app("green", "2.0.0", Mode::Healthy)
        .serve("127.0.0.1:0")
        .await
        .unwrap();
    let output = greenlight(&[
        "verify",
        "--plan",
        plan,
        "--target",
        &green.url(),
        "--baseline",
        &blue.url(),
    ])
    .await;
    let out = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("PASSED  same-as-blue"), "{out}");
    assert!(out.contains("100 of 100 pairs"), "{out}");

    let broken = app("green", "2.0.0", Mode::Broken)
        .serve("127.0.0.1:0")
        .await
        .unwrap();
    let output = greenlight(&[
        "verify",
        "--plan",
        plan,
        "--target",
        &broken.url(),
        "--baseline",
        &blue.url(),
    ])
    .await;
    let out = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("errors vs blue: expected an error rate at most 1% above blue's 0%, got 50%"),
        "{out}"
    );
    assert!(out.contains("status (200 → 500) in GET "), "{out}");

    // Without a baseline, the comparison cannot run: a configuration error, not a pass.
    let output = greenlight(&["verify", "--plan", plan, "--target", &green.url()]).await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stdout));
    assert!(
        text(&output.stderr).contains("set GREENLIGHT_PRODUCTION_URL"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test]
async fn verify_with_a_bad_plan_is_a_configuration_error() {
    let dir = std::env::temp_dir().join(format!("greenlight-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plan = dir.join("bad.yaml");
    std::fs::write(
        &plan,
        "version: 1\nchecks: [{name: a, path: /, expect: {stauts: 200}}]\n",
    )
    .unwrap();
    let output = greenlight(&[
        "verify",
        "--plan",
        plan.to_str().unwrap(),
        "--target",
        "http://127.0.0.1:9",
    ])
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("checks[0].expect.stauts: unknown field `stauts`"),
        "{}",
        text(&output.stderr)
    );

    let output = greenlight(&["plan", "check", plan.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stdout).contains("invalid:")
            && text(&output.stdout).contains("checks[0].expect.stauts"),
        "{}",
        text(&output.stdout)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn plan_check_describes_a_valid_plan_and_keeps_this_shells_environment_apart() {
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/plans/api.yaml");
    let run = |token: Option<&str>| {
        let mut command = Command::new(GREENLIGHT);
        command
            .args(["plan", "check", plan.to_str().unwrap()])
            .env("NO_COLOR", "1")
            .env_remove("GREENLIGHT_TEST_URL")
            .env_remove("SMOKE_TOKEN");
        if let Some(token) = token {
            command.env("SMOKE_TOKEN", token);
        }
        command.output()
    };
    let output = run(None).await.unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "valid, but not runnable in this shell"
    );
    let out = text(&output.stdout);
    assert!(
        out.contains("valid:") && out.contains("- list-orders: GET /api/orders?limit=1"),
        "{out}"
    );
    assert!(
        out.contains("not runnable here:")
            && out.contains("environment variable SMOKE_TOKEN is not set"),
        "{out}"
    );

    let output = run(Some("tok-1234")).await.unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    assert!(!text(&output.stdout).contains("tok-1234"));
}

#[tokio::test]
async fn usage_errors_exit_2_and_help_teaches() {
    assert_eq!(
        greenlight(&["verify", "--format", "yaml"])
            .await
            .status
            .code(),
        Some(2)
    );
    let help = text(&greenlight(&["--help"]).await.stdout);
    assert!(
        help.contains("greenlight rehearse") && help.contains("Examples:"),
        "{help}"
    );
}

/// Writes a plan into a scratch file and returns its path.
fn plan_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("greenlight-cli-plans-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn plan_check(text: &str) -> Output {
    let path = plan_file(&format!("p{}.yaml", text.len()), text);
    Command::new(GREENLIGHT)
        .args(["plan", "check", path.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .env_remove("GREENLIGHT_TEST_URL")
        .env_remove("UNSET")
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn plan_check_rejects_what_the_hooks_reject() {
    for (check, expected) in [
        (
            "{name: a, path: 'ftp://x/y'}",
            "uses ftp: only http and https",
        ),
        ("{name: a, path: 'http://'}", "\"http://\" has no host"),
        ("{name: a, path: '/b/${'}", "without its closing"),
    ] {
        let output = plan_check(&format!("version: 1\nchecks: [{check}]\n")).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{check}: {}",
            text(&output.stdout)
        );
        assert!(
            text(&output.stdout).contains(expected),
            "{check}: {}",
            text(&output.stdout)
        );
    }
    let output = plan_check("version: 1\ntarget: not a url\nchecks: [{name: a, path: /}]\n").await;
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stdout).contains("target: \"not a url\" is not a URL"));

    let output = plan_check("version: 1\ntarget: ${UNSET}\nchecks: [{name: a, path: /}]\n").await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "an environment problem, kept apart"
    );
    let out = text(&output.stdout);
    assert!(
        out.contains("valid:") && out.contains("not runnable here:"),
        "{out}"
    );
    assert!(
        out.contains("target: environment variable UNSET is not set"),
        "{out}"
    );

    let output =
        plan_check("version: 1\nchecks: [{name: a, path: /, retires: 1, expect: {stauts: 200}}]\n")
            .await;
    assert_eq!(output.status.code(), Some(2));
    let out = text(&output.stdout);
    assert!(out.contains("has 2 problems"), "{out}");
    assert!(
        out.contains("did you mean `retries`") && out.contains("did you mean `status`"),
        "{out}"
    );
}

#[tokio::test]
async fn plan_check_reads_standard_input() {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(GREENLIGHT)
        .args(["plan", "check", "-", "--target", "http://127.0.0.1:9"])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"version: 1\nchecks: [{name: a, path: /health}]\n")
        .await
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).contains("valid: the plan on standard input"));
}

/// Runs the command with its standard output closed after the first line, as `| head -1` does.
async fn first_line_only(args: &[&str]) -> std::process::ExitStatus {
    use tokio::io::AsyncBufReadExt;
    let mut child = Command::new(GREENLIGHT)
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let _ = lines.next_line().await;
    drop(lines);
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("finished")
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    output.status
}

#[tokio::test]
async fn a_closed_pipe_ends_output_quietly() {
    let healthy = DemoApp {
        color: "green".into(),
        version: "2.0.0".into(),
        mode: Mode::Healthy,
    }
    .serve("127.0.0.1:0")
    .await
    .unwrap();
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/plans/rehearsal.yaml");
    let plan = plan.to_str().unwrap().to_string();
    let status = first_line_only(&["verify", "--plan", &plan, "--target", &healthy.url()]).await;
    assert_eq!(status.code(), Some(0));
    let status = first_line_only(&["plan", "check", &plan]).await;
    assert_ne!(status.code(), Some(101));
    let status = first_line_only(&["rehearse", "healthy"]).await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn errors_name_what_the_user_typed_and_suggest_the_fix() {
    let output = greenlight(&["verify", "--target", "127.0.0.1:18080"]).await;
    assert_eq!(output.status.code(), Some(2));
    let err = text(&output.stderr);
    assert!(
        err.contains("--target \"127.0.0.1:18080\" is not a URL")
            && err.contains("did you mean http://127.0.0.1:18080?"),
        "{err}"
    );
    assert_eq!(err.matches("is not a URL").count(), 1, "said once: {err}");

    let output = greenlight(&["verify", "--plan", "/nope.yaml", "--target", "http://h"]).await;
    assert_eq!(output.status.code(), Some(2));
    let err = text(&output.stderr);
    assert!(err.contains("--plan: /nope.yaml: no such file"), "{err}");
    assert!(!err.contains("GREENLIGHT_PLAN_FILE"), "{err}");

    let output = Command::new(GREENLIGHT)
        .args(["verify"])
        .env_remove("GREENLIGHT_TEST_URL")
        .env_remove("GREENLIGHT_PLAN")
        .env_remove("GREENLIGHT_PLAN_FILE")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("pass --target URL"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test]
async fn a_configuration_error_with_format_json_is_a_json_document() {
    let path = plan_file(
        "two-problems.yaml",
        "version: 1\nchecks: [{name: a, path: /, timeout: 5, method: FETCH}]\n",
    );
    let output = greenlight(&[
        "verify",
        "--plan",
        path.to_str().unwrap(),
        "--target",
        "http://127.0.0.1:9",
        "--format",
        "json",
    ])
    .await;
    assert_eq!(output.status.code(), Some(2));
    let document: Value = serde_json::from_slice(&output.stdout).expect("a JSON document");
    assert_eq!(document["error"]["kind"], "configuration");
    let problems = document["error"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{document}");
    assert!(text(&output.stderr).is_empty(), "{}", text(&output.stderr));

    let output = greenlight(&[
        "verify",
        "--plan",
        path.to_str().unwrap(),
        "--target",
        "http://127.0.0.1:9",
    ])
    .await;
    let err = text(&output.stderr);
    assert_eq!(
        err.matches("timeout: 5 has no unit").count(),
        1,
        "said once: {err}"
    );
}

#[tokio::test]
async fn tls_and_parser_errors_are_said_in_plain_words() {
    // An https:// URL at a port that speaks plain HTTP.
    let plain = DemoApp {
        color: "green".into(),
        version: "2.0.0".into(),
        mode: Mode::Healthy,
    }
    .serve("127.0.0.1:0")
    .await
    .unwrap();
    let target = plain.url().replace("http://", "https://");
    let output = greenlight(&["verify", "--target", &target]).await;
    assert_eq!(output.status.code(), Some(1));
    let out = text(&output.stdout);
    assert!(
        out.contains("the server answered in plain HTTP, not TLS"),
        "{out}"
    );
    assert!(!out.contains("InvalidContentType"), "{out}");

    for (plan, must_not) in [
        ("a: 1\na: 2\n", "DuplicateKeyPolicy"),
        (
            "version: 1\nchecks: [{name: a, path: /, expect: {json: {'$.[': 1}}}]\n",
            "parser error",
        ),
        (
            "version: 1\nchecks: [{name: a, path: /, expect: {body_matches: 'a{2'}}]\n",
            "regex parse error",
        ),
    ] {
        let output = plan_check(plan).await;
        let out = text(&output.stdout);
        assert_eq!(output.status.code(), Some(2), "{out}");
        assert!(!out.contains(must_not), "{out}");
    }
}

#[tokio::test]
async fn https_targets_can_be_trusted_by_ca_file_and_server_name() {
    use greenlight_fakes::https::{ca_file, HttpsGreen, SERVER_NAME};
    let green = HttpsGreen::start().await;
    let ca = ca_file();
    let run = |name: &str, tls: String| {
        let path = plan_file(name, &format!("version: 1\n{tls}\nchecks: [{{name: health, path: /health, retries: 0, expect: {{body_contains: UP}}}}]\n"));
        let target = green.url();
        async move {
            greenlight(&[
                "verify",
                "--plan",
                path.to_str().unwrap(),
                "--target",
                &target,
            ])
            .await
        }
    };

    let output = run("tls-none.yaml", String::new()).await;
    assert_eq!(output.status.code(), Some(1));
    let out = text(&output.stdout);
    assert!(
        out.contains("TLS: the certificate is signed by an authority this function does not trust"),
        "{out}"
    );

    let output = run(
        "tls-ca.yaml",
        format!("tls: {{ca_file: '{}'}}", ca.display()),
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let out = text(&output.stdout);
    assert!(
        out.contains(&format!(
            "TLS: the certificate is for {SERVER_NAME}, not 127.0.0.1"
        )),
        "{out}"
    );

    let output = run(
        "tls-name.yaml",
        format!(
            "tls: {{ca_file: '{}', server_name: {SERVER_NAME}}}",
            ca.display()
        ),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));

    let output = run(
        "tls-insecure.yaml",
        "tls: {insecure_skip_verify: true}".into(),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    assert!(
        text(&output.stdout).contains("certificates are NOT verified"),
        "{}",
        text(&output.stdout)
    );
}

#[tokio::test]
async fn plan_check_shows_metric_gates_per_codedeploy_hook_and_rejects_request_fields_on_them() {
    let plan = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/plans/metric-gates.yaml"
    ))
    .unwrap();
    let output = plan_check(&plan).await;
    let shown = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("- CodeDeploy hook AfterAllowTraffic: 4 checks of its own")
            && shown.contains("- green is healthy behind the load balancer: asks the load balancer that green's target group has at least 2 healthy targets"),
        "{shown}"
    );
    assert!(
        shown.contains("- no 5xx on green: asks CloudWatch for AWS/ApplicationELB HTTPCode_Target_5XX_Count Sum {target group green} after waiting until 5m since the start"),
        "{shown}"
    );
    let output = plan_check(
        "version: 1\nchecks:\n  - {name: m, path: /x, metric: {namespace: Custom, name: X, stat: Sum, threshold: '< 1'}}\n",
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stdout)
            .contains("checks[0].path: a metric or target_health check sends no request to green"),
        "{}",
        text(&output.stdout)
    );
}
