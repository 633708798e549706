//! `greenlight aws-standin` as the README's local flow uses it: the real function binaries,
//! pointed at it with `AWS_ENDPOINT_URL` alone, report and roll back against it, and it prints
//! each call.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use greenlight_demo_app::{DemoApp, Mode};
use greenlight_fakes::{FunctionProcess, InvocationResult, RuntimeApi};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const GREENLIGHT: &str = env!("CARGO_BIN_EXE_greenlight");

fn function(name: &str) -> PathBuf {
    Path::new(GREENLIGHT).with_file_name(name)
}

fn event(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Waits until `lines` holds a line containing `text`.
async fn wait_for(lines: &Arc<Mutex<Vec<String>>>, text: &str) -> bool {
    for _ in 0..200 {
        if lines.lock().unwrap().iter().any(|l| l.contains(text)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

#[tokio::test]
async fn the_functions_report_and_roll_back_against_the_stand_in_alone() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    let mut standin = Command::new(GREENLIGHT)
        .args(["aws-standin", "--bind", &bind])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut reader = BufReader::new(standin.stdout.take().unwrap()).lines();
    let collected = lines.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = reader.next_line().await {
            collected.lock().unwrap().push(line);
        }
    });
    assert!(
        wait_for(&lines, "AWS stand-in on http://127.0.0.1").await,
        "the stand-in started"
    );
    let aws = vec![
        ("AWS_ENDPOINT_URL", format!("http://{bind}")),
        ("AWS_REGION", "us-east-1".to_string()),
    ];

    let green = DemoApp {
        color: "green".into(),
        version: "2.0.0".into(),
        mode: Mode::Healthy,
    }
    .serve("127.0.0.1:0")
    .await
    .unwrap();
    let api = RuntimeApi::start().await;
    let mut env = aws.clone();
    env.push(("GREENLIGHT_TEST_URL", green.url()));
    let hook = FunctionProcess::spawn(&function("after-allow-test-traffic"), &api, &env).unwrap();
    match api
        .invoke(
            event("after-allow-test-traffic.json"),
            Duration::from_secs(10),
        )
        .await
    {
        InvocationResult::Response(body) => {
            assert_eq!(body["status"], "Succeeded", "{body}");
            assert_eq!(body["reported"], "recorded", "{body}");
        }
        other => panic!("{other:?}\n{}", hook.output()),
    }
    assert!(wait_for(&lines, "CodeDeploy PutLifecycleEventHookExecutionStatus").await);
    hook.stop().await;

    let api = RuntimeApi::start().await;
    let rollback = FunctionProcess::spawn(&function("alarm-rollback"), &api, &aws).unwrap();
    match api
        .invoke(event("alarm-rollback-alarm.json"), Duration::from_secs(10))
        .await
    {
        InvocationResult::Response(decision) => {
            assert_eq!(
                decision["actions"][0]["deployment"], "d-AB12CD34E",
                "{decision}"
            );
            assert_eq!(decision["actions"][0]["action"], "stopped", "{decision}");
        }
        other => panic!("{other:?}\n{}", rollback.output()),
    }
    assert!(wait_for(&lines, "CloudWatch ListTagsForResource").await);
    assert!(wait_for(&lines, "CodeDeploy StopDeployment").await);
    rollback.stop().await;
    let _ = standin.kill().await;
}
