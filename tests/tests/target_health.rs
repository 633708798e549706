//! target_health checks end to end: before production traffic moves, the hooks ask the load
//! balancer (the real SDK, in the query protocol, against the loopback stand-in) whether green's
//! target group has enough healthy targets and whether the production listener forwards only to
//! target groups with a healthy target. Every test asserts what CodeDeploy (or ECS) received.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use greenlight::ecs_hook::{EcsHook, HookStatus};
use greenlight::hook::CodeDeployHook;
use greenlight::probe::target_health::ElbLoadBalancers;
use greenlight::Env;
use greenlight_fakes::standin::{AwsStandIn, BlueGreenArns};
use greenlight_fakes::FakeAnswer;
use serde_json::{json, Value};

const PLAN: &str = r#"
version: 1
checks:
  - {name: health, path: /health}
stages:
  BeforeAllowTraffic:
    checks:
      - name: green is healthy behind the load balancer
        target_health: {target_group: green, min_healthy: 2, production_listener: true}
"#;

async fn sdk_config(standin: &AwsStandIn) -> aws_config::SdkConfig {
    standin.sdk_config().await
}

/// A stand-in with the deployment, green with `green` target states, blue with `blue`, and the
/// production listener forwarding to blue (100) and green (0), as before the shift.
async fn stand_in(green: &[&str], blue: &[&str]) -> (AwsStandIn, BlueGreenArns) {
    let standin = AwsStandIn::start("127.0.0.1:0", None).await.unwrap();
    let arns = standin.seed_blue_green("d-AB12CD34E", true);
    standin.elb.set_targets(&arns.green_target_group, green);
    standin.elb.set_targets(&arns.blue_target_group, blue);
    standin.elb.set_listener(
        &arns.production_listener,
        &[
            (&arns.blue_target_group, 100),
            (&arns.green_target_group, 0),
        ],
    );
    (standin, arns)
}

async fn before_allow_traffic(standin: &AwsStandIn) -> Value {
    let env = Env::from_pairs([
        ("GREENLIGHT_PLAN", PLAN),
        ("GREENLIGHT_TEST_URL", "http://127.0.0.1:9/"),
    ]);
    let hook =
        CodeDeployHook::from_settings("BeforeAllowTraffic", &sdk_config(standin).await, &env);
    let event =
        json!({"DeploymentId": "d-AB12CD34E", "LifecycleEventHookExecutionId": "exec-before"});
    let response = hook
        .handle(event, SystemTime::now() + Duration::from_secs(10))
        .await
        .expect("the hook reports");
    serde_json::to_value(response).unwrap()
}

#[tokio::test]
async fn healthy_green_and_a_production_listener_on_healthy_targets_pass() {
    let (standin, arns) = stand_in(&["healthy", "healthy", "initial"], &["healthy"]).await;
    let response = before_allow_traffic(&standin).await;
    assert_eq!(
        standin.codedeploy.reported_statuses(),
        vec!["Succeeded"],
        "{response:#}"
    );
    let check = &response["checks"][0];
    assert_eq!(
        check["request"],
        "ELB target health of green's target group"
    );
    assert_eq!(check["target_health"]["healthy"], 2);
    assert_eq!(
        check["target_health"]["production_listener"][0]["target_group"],
        BlueGreenArns::BLUE_TARGET_GROUP
    );
    // The load balancer was asked about green's target group, found from the deployment, and
    // about what the production listener forwards to (weight 0 is not traffic).
    let asked: Vec<String> = standin
        .elb
        .calls_to("DescribeTargetHealth")
        .iter()
        .map(|c| c.body["TargetGroupArn"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(asked, vec![arns.green_target_group, arns.blue_target_group]);
}

#[tokio::test]
async fn too_few_healthy_targets_fail_naming_the_unhealthy_ones() {
    let (standin, _) = stand_in(&["healthy", "unhealthy", "initial"], &["healthy"]).await;
    let response = before_allow_traffic(&standin).await;
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    let reason = response["reason"].as_str().unwrap();
    assert!(
        reason.contains("healthy targets in green's target group: expected at least 2, got 1 of 3 healthy in targetgroup/checkout-green/0123456789abcdef: 10.0.1.11:8080 unhealthy (Target.ResponseCodeMismatch: "),
        "{reason}"
    );
    assert!(
        reason.contains("10.0.1.12:8080 initial (Elb.RegistrationInProgress"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_production_listener_forwarding_to_a_target_group_without_healthy_targets_fails() {
    let (standin, _) = stand_in(&["healthy", "healthy"], &["unhealthy", "unhealthy"]).await;
    let response = before_allow_traffic(&standin).await;
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    let reason = response["reason"].as_str().unwrap();
    assert!(
        reason.contains("production listener: expected forwards only to target groups with a healthy target, got targetgroup/checkout-blue/1111222233334444 (weight 100): 0 of 2 healthy"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_load_balancer_that_denies_or_does_not_know_the_target_group_is_an_error_not_a_pass() {
    let (standin, _) = stand_in(&["healthy", "healthy"], &["healthy"]).await;
    standin
        .elb
        .answer_next_for("DescribeTargetHealth", [FakeAnswer::access_denied()]);
    let response = before_allow_traffic(&standin).await;
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    assert!(
        response["reason"]
            .as_str()
            .unwrap()
            .contains("the function's role needs elasticloadbalancing:DescribeTargetHealth"),
        "{response:#}"
    );

    let standin = AwsStandIn::start("127.0.0.1:0", None).await.unwrap();
    standin.seed_blue_green("d-AB12CD34E", true);
    let response = before_allow_traffic(&standin).await;
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    assert!(
        response["reason"]
            .as_str()
            .unwrap()
            .contains("TargetGroupNotFound"),
        "{response:#}"
    );
}

/// The ECS hook names the target group by ARN (ECS does not say which one is green's), at the
/// stage before production traffic moves.
#[tokio::test]
async fn the_ecs_hook_checks_a_target_group_named_by_arn() {
    let (standin, arns) = stand_in(&["healthy"], &["healthy"]).await;
    let plan = r#"
version: 1
checks: [{name: health, path: /health}]
stages:
  PRODUCTION_TRAFFIC_SHIFT:
    checks:
      - name: green is healthy
        target_health: {target_group: "${GREEN_TARGET_GROUP_ARN}", min_healthy: 2}
"#;
    let hook = EcsHook::new(&Env::from_pairs([
        ("GREENLIGHT_PLAN", plan),
        ("GREENLIGHT_TEST_URL", "http://127.0.0.1:9/"),
        ("GREEN_TARGET_GROUP_ARN", arns.green_target_group.as_str()),
    ]))
    .with_load_balancers(Arc::new(ElbLoadBalancers::new(&sdk_config(&standin).await)));
    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/ecs-lifecycle-hook-production-traffic-shift.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let answer = hook
        .handle(event.clone(), SystemTime::now() + Duration::from_secs(10))
        .await;
    assert_eq!(answer.hook_status, HookStatus::Failed, "1 of 2 wanted");
    standin
        .elb
        .set_targets(&arns.green_target_group, &["healthy", "healthy"]);
    let answer = hook
        .handle(event, SystemTime::now() + Duration::from_secs(10))
        .await;
    assert_eq!(answer.hook_status, HookStatus::Succeeded);
}
