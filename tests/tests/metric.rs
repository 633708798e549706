//! Metric gates end to end: the hooks read CloudWatch `GetMetricData` through the real SDK from
//! the loopback stand-in (CBOR, as the SDK speaks it), judge green's target-group metrics, and
//! report. Every test asserts what CodeDeploy or ECS received, and what CloudWatch was asked.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use greenlight::ecs_hook::{EcsHook, HookStatus};
use greenlight::hook::CodeDeployHook;
use greenlight::probe::metric::CloudWatchMetrics;
use greenlight::Env;
use greenlight_fakes::standin::{AwsStandIn, BlueGreenArns};
use greenlight_fakes::FakeAnswer;
use serde_json::{json, Value};

const TARGET_GROUP: &str = BlueGreenArns::GREEN_TARGET_GROUP;
const LOAD_BALANCER: &str = BlueGreenArns::LOAD_BALANCER;

/// AfterAllowTraffic judges green's 5xx count and p99 response time over the three minutes
/// before the hook runs.
const PLAN: &str = r#"
version: 1
checks:
  - {name: health, path: /health}
stages:
  AfterAllowTraffic:
    checks:
      - name: no 5xx on green
        metric:
          namespace: AWS/ApplicationELB
          name: HTTPCode_Target_5XX_Count
          dimensions: {TargetGroup: "${GREEN_TARGET_GROUP}", LoadBalancer: "${LOAD_BALANCER}"}
          stat: Sum
          window: 3m
          threshold: "< 1"
      - name: p99 under 300ms
        metric:
          namespace: AWS/ApplicationELB
          name: TargetResponseTime
          dimensions: {TargetGroup: "${GREEN_TARGET_GROUP}", LoadBalancer: "${LOAD_BALANCER}"}
          stat: p99
          window: 3m
          threshold: "< 300ms"
"#;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn event() -> Value {
    json!({"DeploymentId": "d-AB12CD34E", "LifecycleEventHookExecutionId": "exec-after-traffic"})
}

async fn sdk_config(standin: &AwsStandIn) -> aws_config::SdkConfig {
    standin.sdk_config().await
}

async fn standin() -> AwsStandIn {
    AwsStandIn::start("127.0.0.1:0", None)
        .await
        .expect("start the AWS stand-in")
}

/// Green's metrics for the last `minutes` minutes: `five_xx` and `latency` per minute.
fn put_green(standin: &AwsStandIn, minutes: i64, five_xx: impl Fn(i64) -> f64, latency: f64) {
    let dims = [
        ("TargetGroup", TARGET_GROUP),
        ("LoadBalancer", LOAD_BALANCER),
    ];
    // The latest whole minute strictly before now: a query ends at this second, exclusively, so
    // a datapoint stamped with it would be left out when the test runs on a minute's first second.
    let before_now = now() - 1;
    let minute_now = before_now - before_now % 60;
    for m in 0..minutes {
        let at = minute_now - m * 60;
        standin.cloudwatch.put(
            "AWS/ApplicationELB",
            "HTTPCode_Target_5XX_Count",
            &dims,
            at,
            five_xx(m),
        );
        for _ in 0..20 {
            standin.cloudwatch.put(
                "AWS/ApplicationELB",
                "TargetResponseTime",
                &dims,
                at,
                latency,
            );
        }
    }
}

async fn after_allow_traffic(standin: &AwsStandIn, plan: &str) -> CodeDeployHook {
    let env = Env::from_pairs([
        ("GREENLIGHT_PLAN", plan),
        ("GREENLIGHT_PRODUCTION_URL", "http://127.0.0.1:9/"),
        ("GREEN_TARGET_GROUP", TARGET_GROUP),
        ("LOAD_BALANCER", LOAD_BALANCER),
    ]);
    CodeDeployHook::from_settings("AfterAllowTraffic", &sdk_config(standin).await, &env)
}

async fn invoke(hook: &CodeDeployHook, timeout: Duration) -> Value {
    let response = hook
        .handle(event(), SystemTime::now() + timeout)
        .await
        .expect("the hook reports");
    serde_json::to_value(response).expect("serializable")
}

#[tokio::test]
async fn after_allow_traffic_succeeds_when_greens_metrics_are_clean() {
    let standin = standin().await;
    put_green(&standin, 5, |_| 0.0, 0.120);
    let hook = after_allow_traffic(&standin, PLAN).await;
    let response = invoke(&hook, Duration::from_secs(10)).await;
    assert_eq!(
        standin.codedeploy.reported_statuses(),
        vec!["Succeeded"],
        "{response:#}"
    );
    // Only the stage's metric checks ran: production was not asked over HTTP.
    let checks = response["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2, "{response:#}");
    assert!(checks[0]["metric"]["datapoints"].as_u64().unwrap() >= 3);
    // CloudWatch was asked for green's target group over the last three minutes.
    let calls = standin.cloudwatch.calls_to("GetMetricData");
    assert_eq!(calls.len(), 2);
    let body = &calls[0].body;
    let span = body["EndTime"].as_f64().unwrap() - body["StartTime"].as_f64().unwrap();
    assert_eq!(span, 180.0, "{body:#}");
    let dimensions = &body["MetricDataQueries"][0]["MetricStat"]["Metric"]["Dimensions"];
    assert!(
        dimensions.to_string().contains(TARGET_GROUP),
        "{dimensions}"
    );
    // The dimension came from the environment: shown as written, never as its value.
    assert!(!response.to_string().contains(TARGET_GROUP), "{response:#}");
    assert!(response.to_string().contains("${GREEN_TARGET_GROUP}"));
}

#[tokio::test]
async fn a_breach_fails_with_its_value_and_time() {
    let standin = standin().await;
    put_green(&standin, 5, |m| if m == 1 { 7.0 } else { 0.0 }, 0.450);
    let hook = after_allow_traffic(&standin, PLAN).await;
    let response = invoke(&hook, Duration::from_secs(10)).await;
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    let reason = response["reason"].as_str().unwrap();
    assert!(
        reason.contains("no 5xx on green failed")
            && reason.contains("expected every 1m datapoint < 1, got 7 at "),
        "{reason}"
    );
    assert!(
        reason.contains("p99 under 300ms failed")
            && reason.contains("expected every 1m datapoint < 0.3, got 0.45 at "),
        "{reason}"
    );
}

#[tokio::test]
async fn missing_data_fails_the_deployment_instead_of_passing_it() {
    let standin = standin().await;
    let hook = after_allow_traffic(&standin, PLAN).await;
    let response = invoke(&hook, Duration::from_secs(10)).await;
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    let reason = response["reason"].as_str().unwrap();
    assert!(
        reason.contains("inconclusive: not enough data: 0 datapoints"),
        "{reason}"
    );
}

#[tokio::test]
async fn cloudwatch_denying_or_hanging_still_gets_a_report_in_time() {
    let standin = standin().await;
    standin
        .cloudwatch
        .answer_next_for("GetMetricData", [FakeAnswer::access_denied()]);
    let hook = after_allow_traffic(&standin, PLAN).await;
    let response = invoke(&hook, Duration::from_secs(10)).await;
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    assert!(
        response["reason"]
            .as_str()
            .unwrap()
            .contains("the function's role needs cloudwatch:GetMetricData"),
        "{response:#}"
    );

    let standin = self::standin().await;
    standin.cloudwatch.answer_always(FakeAnswer::Hang);
    let hook = after_allow_traffic(&standin, PLAN).await;
    let started = Instant::now();
    let response = invoke(&hook, Duration::from_secs(3)).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    assert!(
        response["reason"].as_str().unwrap().contains("errored"),
        "{response:#}"
    );
}

#[tokio::test]
async fn a_wait_longer_than_the_invocation_is_reported_at_once_with_what_to_change() {
    let standin = standin().await;
    let plan = PLAN
        .replace("window: 3m", "wait: 10m")
        .replace("version: 1", "version: 1\nbudget: 14m");
    let hook = after_allow_traffic(&standin, &plan).await;
    let started = Instant::now();
    let response = invoke(&hook, Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no sleeping into the deadline"
    );
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    let reason = response["reason"].as_str().unwrap();
    assert!(
        reason.contains("the hooks go on waiting in later invocations"),
        "{reason}"
    );
    assert!(standin.cloudwatch.calls_to("GetMetricData").is_empty());
}

#[tokio::test]
async fn after_allow_traffic_without_a_production_url_looks_for_it_and_says_what_to_set() {
    let standin = standin().await;
    let env = Env::from_pairs([(
        "GREENLIGHT_PLAN",
        "version: 1\nchecks: [{name: h, path: /health}]",
    )]);
    let hook =
        CodeDeployHook::from_settings("AfterAllowTraffic", &sdk_config(&standin).await, &env);
    let response = invoke(&hook, Duration::from_secs(5)).await;
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    assert!(
        response["reason"].as_str().unwrap().contains(
            "no URL reaches green (GREENLIGHT_TEST_URL, GREENLIGHT_PRODUCTION_URL or the plan's target), and it could not be found from the deployment"
        ),
        "{response:#}"
    );
}

/// ECS: a bake spans invocations. The first answers IN_PROGRESS until the wait is over, without
/// spending an attempt; the next, once the stage has waited long enough (its start is carried
/// in hookDetails), judges the window.
#[tokio::test]
async fn an_ecs_stage_bakes_across_invocations_then_judges() {
    let standin = standin().await;
    let plan = r#"
version: 1
checks: [{name: health, path: /health}]
stages:
  POST_PRODUCTION_TRAFFIC_SHIFT:
    checks:
      - name: no 5xx on green
        metric:
          namespace: AWS/ApplicationELB
          name: HTTPCode_Target_5XX_Count
          dimensions: {TargetGroup: "${GREEN_TARGET_GROUP}", LoadBalancer: "${LOAD_BALANCER}"}
          stat: Sum
          wait: 2m
          threshold: "< 1"
"#;
    let hook = EcsHook::new(&Env::from_pairs([
        ("GREENLIGHT_PLAN", plan),
        ("GREENLIGHT_TEST_URL", "http://127.0.0.1:9/"),
        ("GREEN_TARGET_GROUP", TARGET_GROUP),
        ("LOAD_BALANCER", LOAD_BALANCER),
    ]))
    .with_metrics(Arc::new(CloudWatchMetrics::new(
        &sdk_config(&standin).await,
    )));
    let event_text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/ecs-lifecycle-hook-post-production-traffic-shift.json"
    ))
    .unwrap();
    let event: Value = serde_json::from_str(&event_text).unwrap();
    let first = hook
        .handle(event.clone(), SystemTime::now() + Duration::from_secs(5))
        .await;
    assert_eq!(first.hook_status, HookStatus::InProgress);
    let delay = first.call_back_delay.unwrap();
    assert!((115..=120).contains(&delay), "waits out the bake: {delay}s");
    let details = first.hook_details.clone().unwrap();
    assert_eq!(details["greenlight"]["attempts"], 0, "no attempt spent");
    assert!(standin.cloudwatch.calls_to("GetMetricData").is_empty());

    // ECS invokes again after the delay, with the hookDetails it was given: here the stage
    // started two minutes ago.
    let started = details["greenlight"]["startedAtMs"].as_u64().unwrap();
    let mut later = event.clone();
    later["hookDetails"] = json!({"greenlight": {"attempts": 0, "startedAtMs": started - 121_000}});
    put_green(&standin, 3, |_| 0.0, 0.1);
    let second = hook
        .handle(later.clone(), SystemTime::now() + Duration::from_secs(5))
        .await;
    assert_eq!(second.hook_status, HookStatus::Succeeded, "{second:?}");
    let body = &standin.cloudwatch.calls_to("GetMetricData")[0].body;
    let span = body["EndTime"].as_f64().unwrap() - body["StartTime"].as_f64().unwrap();
    assert_eq!(span, 120.0, "the window is the wait: {body:#}");

    // A start in the future (hookDetails are the service owner's to write) is now: the bake
    // starts over, it is not skipped and never waits forever.
    let mut future = event.clone();
    future["hookDetails"] = json!({"greenlight": {"attempts": 0, "startedAtMs": u64::MAX}});
    let answer = hook
        .handle(future, SystemTime::now() + Duration::from_secs(5))
        .await;
    assert_eq!(answer.hook_status, HookStatus::InProgress);
    assert!((115..=120).contains(&answer.call_back_delay.unwrap()));

    // Green degrades: the same invocation fails, and ECS rolls back.
    put_green(&standin, 1, |_| 12.0, 0.1);
    let third = hook
        .handle(later, SystemTime::now() + Duration::from_secs(5))
        .await;
    assert_eq!(third.hook_status, HookStatus::Failed, "{third:?}");
}

/// `target_group: green`: the hook finds green's target group from the deployment (CodeDeploy
/// names the task set labelled Green; ECS gives its target group) and the load balancer from the
/// production listener, and reads green's metrics, not blue's.
const GREEN_PLAN: &str = r#"
version: 1
stages:
  AfterAllowTraffic:
    checks:
      - name: no 5xx on green
        metric: {target_group: green, name: HTTPCode_Target_5XX_Count, stat: Sum, window: 3m, threshold: "< 1"}
"#;

fn blue_green(standin: &AwsStandIn, green_labelled: bool) {
    standin.seed_blue_green("d-AB12CD34E", green_labelled);
}

#[tokio::test]
async fn target_group_green_is_found_from_the_deployment() {
    let standin = standin().await;
    blue_green(&standin, true);
    put_green(&standin, 5, |_| 0.0, 0.1);
    // Blue's target group is failing: a gate that read blue's metrics would fail.
    let before_now = now() - 1;
    let minute_now = before_now - before_now % 60;
    for m in 0..5 {
        standin.cloudwatch.put(
            "AWS/ApplicationELB",
            "HTTPCode_Target_5XX_Count",
            &[
                ("TargetGroup", BlueGreenArns::BLUE_TARGET_GROUP),
                ("LoadBalancer", LOAD_BALANCER),
            ],
            minute_now - m * 60,
            9.0,
        );
    }
    let hook = after_allow_traffic(&standin, GREEN_PLAN).await;
    let response = invoke(&hook, Duration::from_secs(10)).await;
    assert_eq!(
        standin.codedeploy.reported_statuses(),
        vec!["Succeeded"],
        "{response:#}"
    );
    let body = &standin.cloudwatch.calls_to("GetMetricData")[0].body;
    let dimensions = body["MetricDataQueries"][0]["MetricStat"]["Metric"]["Dimensions"].to_string();
    assert!(
        dimensions.contains(TARGET_GROUP) && dimensions.contains(LOAD_BALANCER),
        "{dimensions}"
    );
    assert_eq!(
        response["checks"][0]["request"],
        "CloudWatch AWS/ApplicationELB HTTPCode_Target_5XX_Count Sum {target group green}"
    );
    assert_eq!(standin.elb.calls_to("DescribeTargetGroups").len(), 1);
}

#[tokio::test]
async fn a_green_that_cannot_be_found_fails_with_the_reason_never_passes() {
    // No task set labelled Green yet.
    let standin = standin().await;
    blue_green(&standin, false);
    let hook = after_allow_traffic(&standin, GREEN_PLAN).await;
    let response = invoke(&hook, Duration::from_secs(10)).await;
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    assert!(
        response["reason"]
            .as_str()
            .unwrap()
            .contains("green's target group could not be found: deployment d-AB12CD34E has no task set labelled Green yet"),
        "{response:#}"
    );
    assert!(standin.cloudwatch.calls_to("GetMetricData").is_empty());

    // The role may not read the deployment group: the permission is named.
    let standin = self::standin().await;
    blue_green(&standin, true);
    standin
        .codedeploy
        .answer_next_for("GetDeploymentGroup", [FakeAnswer::access_denied()]);
    let hook = after_allow_traffic(&standin, GREEN_PLAN).await;
    let response = invoke(&hook, Duration::from_secs(10)).await;
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    assert!(
        response["reason"]
            .as_str()
            .unwrap()
            .contains("the function's role needs codedeploy:GetDeploymentGroup"),
        "{response:#}"
    );
}

/// A bake longer than one invocation: the hook waits out its invocation, invokes itself
/// asynchronously with the event and its progress, and returns without reporting; the next
/// invocation (here: the payload the fake Lambda received, with the time that passed) judges
/// and reports, once.
#[tokio::test]
async fn a_bake_longer_than_one_invocation_continues_in_a_new_one_and_reports_once() {
    use greenlight::continuation::SelfInvoke;
    let plan = PLAN.replace("window: 3m", "window: 3m\n          wait: 10s");
    let standin = standin().await;
    put_green(&standin, 5, |_| 0.0, 0.1);
    let sdk = sdk_config(&standin).await;
    let hook = after_allow_traffic(&standin, &plan)
        .await
        .continuing(Arc::new(SelfInvoke::new(
            &sdk,
            "CodeDeployHook_shop-AfterTraffic",
        )));
    let started = Instant::now();
    let first = hook
        .handle(event(), SystemTime::now() + Duration::from_secs(6))
        .await
        .expect("the hook answers");
    let elapsed = started.elapsed();
    assert_eq!(serde_json::to_value(first.reported).unwrap(), "continued");
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(6),
        "uses its invocation, then hands over before the deadline: {elapsed:?}"
    );
    assert!(
        standin.codedeploy.reported_statuses().is_empty(),
        "nothing reported yet"
    );
    let invocations = standin.lambda.world(|w| w.invocations.clone());
    assert_eq!(invocations.len(), 1);
    let (function, kind, payload) = &invocations[0];
    assert_eq!(function, "CodeDeployHook_shop-AfterTraffic");
    assert_eq!(
        kind, "Event",
        "asynchronous: the hand-over does not wait for the next hop"
    );
    assert_eq!(payload["DeploymentId"], event()["DeploymentId"]);
    assert_eq!(
        payload["LifecycleEventHookExecutionId"],
        event()["LifecycleEventHookExecutionId"]
    );
    assert_eq!(payload["greenlight"]["hop"], 1);

    // Lambda runs the next invocation; by now nine of the ten seconds have passed.
    let mut next = payload.clone();
    next["greenlight"]["startedAtMs"] =
        json!(payload["greenlight"]["startedAtMs"].as_u64().unwrap() - 5_000);
    let second = hook
        .handle(next, SystemTime::now() + Duration::from_secs(6))
        .await
        .expect("the hook answers");
    assert_eq!(serde_json::to_value(second.reported).unwrap(), "recorded");
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Succeeded"]);
    assert_eq!(
        standin.lambda.world(|w| w.invocations.len()),
        1,
        "no further hop"
    );
    assert!(!standin.cloudwatch.calls_to("GetMetricData").is_empty());
}

#[tokio::test]
async fn a_hand_over_that_fails_is_reported_failed_in_time() {
    use greenlight::continuation::SelfInvoke;
    let plan = PLAN.replace("window: 3m", "window: 3m\n          wait: 10m");
    let standin = standin().await;
    standin
        .lambda
        .answer_next_for("Invoke", [FakeAnswer::access_denied()]);
    let sdk = sdk_config(&standin).await;
    let hook = after_allow_traffic(&standin, &plan)
        .await
        .continuing(Arc::new(SelfInvoke::new(
            &sdk,
            "CodeDeployHook_shop-AfterTraffic",
        )));
    let started = Instant::now();
    let response = invoke(&hook, Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    assert!(
        response["reason"].as_str().unwrap().contains(
            "could not go on in a new one: invoking CodeDeployHook_shop-AfterTraffic was refused"
        ),
        "{response:#}"
    );
    assert!(response["reason"]
        .as_str()
        .unwrap()
        .contains("lambda:InvokeFunction on itself"));
}
