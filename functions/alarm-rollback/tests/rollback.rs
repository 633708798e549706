//! The built `alarm-rollback` binary under the Lambda Runtime API emulator, with the real SDK
//! reaching fakes of CodeDeploy, ECS and CloudWatch through `AWS_ENDPOINT_URL_*`.

use std::path::Path;
use std::time::Duration;

use greenlight_fakes::{
    FakeAnswer, FakeCloudWatch, FakeCodeDeploy, FakeEcs, FakeSns, FunctionProcess,
    InvocationResult, RuntimeApi,
};
use serde_json::{json, Value};

const BINARY: &str = env!("CARGO_BIN_EXE_alarm-rollback");
const ALARM_ARN: &str = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-5xx";
const COMPOSITE_ARN: &str = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-health";

fn event(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("read the sample event"))
        .expect("JSON")
}

struct Harness {
    codedeploy: FakeCodeDeploy,
    ecs: FakeEcs,
    cloudwatch: FakeCloudWatch,
    sns: FakeSns,
    api: RuntimeApi,
    function: Option<FunctionProcess>,
}

impl Harness {
    async fn new() -> Self {
        Harness {
            codedeploy: FakeCodeDeploy::start().await,
            ecs: FakeEcs::start().await,
            cloudwatch: FakeCloudWatch::start().await,
            sns: FakeSns::start().await,
            api: RuntimeApi::start().await,
            function: None,
        }
    }

    fn run(&mut self, env: &[(&str, &str)]) {
        let mut all = vec![
            ("AWS_ENDPOINT_URL_CODEDEPLOY", self.codedeploy.url()),
            ("AWS_ENDPOINT_URL_ECS", self.ecs.url()),
            ("AWS_ENDPOINT_URL_CLOUDWATCH", self.cloudwatch.url()),
            ("AWS_ENDPOINT_URL_SNS", self.sns.url()),
        ];
        all.extend(env.iter().map(|(k, v)| (*k, v.to_string())));
        self.function = Some(
            FunctionProcess::spawn(BINARY.as_ref(), &self.api, &all).expect("start alarm-rollback"),
        );
    }

    async fn invoke(&self, event: Value) -> InvocationResult {
        self.api.invoke(event, Duration::from_secs(10)).await
    }

    async fn decision(&self, event: Value) -> Value {
        match self.invoke(event).await {
            InvocationResult::Response(decision) => decision,
            other => panic!("expected a decision, got {other:?}\nlogs:\n{}", self.logs()),
        }
    }

    fn logs(&self) -> String {
        self.function
            .as_ref()
            .map(|f| f.output())
            .unwrap_or_default()
    }

    /// A CodeDeploy deployment in flight for checkout/checkout-prod, the alarm tagged for it.
    fn codedeploy_in_flight(&self) {
        self.codedeploy
            .add_deployment("d-GREEN1", "checkout", "checkout-prod", "InProgress");
        self.codedeploy
            .add_deployment("d-OLD", "checkout", "checkout-prod", "Succeeded");
        self.cloudwatch.tag_alarm(
            ALARM_ARN,
            &[
                ("greenlight:codedeploy-application", "checkout"),
                ("greenlight:codedeploy-deployment-group", "checkout-prod"),
            ],
        );
    }
}

#[tokio::test]
async fn stops_the_codedeploy_deployment_named_by_the_alarm_tags() {
    let mut h = Harness::new().await;
    h.codedeploy_in_flight();
    h.run(&[]);
    let decision = h.decision(event("alarm-rollback-alarm.json")).await;
    assert_eq!(
        h.codedeploy.stopped(),
        vec!["d-GREEN1"],
        "only the in-flight deployment is stopped"
    );
    assert_eq!(
        h.codedeploy.calls_to("StopDeployment")[0].body["autoRollbackEnabled"],
        true
    );
    assert_eq!(
        h.cloudwatch.calls_to("ListTagsForResource")[0].body["ResourceARN"],
        ALARM_ARN
    );
    assert_eq!(
        decision["targets"],
        json!([{"target": "codedeploy:checkout/checkout-prod", "source": "alarm-tags"}])
    );
    assert_eq!(decision["actions"][0]["action"], "stopped");
    assert_eq!(decision["state"], "ALARM");
    assert_eq!(decision["reason_data"]["threshold"], 5.0);
    assert!(
        h.logs().contains("\"decision\""),
        "one decision record is logged"
    );
}

#[tokio::test]
async fn rolls_back_an_ecs_native_deployment_named_by_tags_in_the_event() {
    let mut h = Harness::new().await;
    let arn = h
        .ecs
        .add_deployment("prod", "checkout", "abc123", "IN_PROGRESS");
    h.ecs
        .add_deployment("prod", "checkout", "old", "SUCCESSFUL");
    h.run(&[]);
    let decision = h.decision(event("alarm-rollback-alarm-tags.json")).await;
    assert!(
        h.cloudwatch.calls().is_empty(),
        "tags in the event need no CloudWatch call"
    );
    let stops = h.ecs.calls_to("StopServiceDeployment");
    assert_eq!(stops.len(), 1);
    assert_eq!(
        stops[0].body,
        json!({"serviceDeploymentArn": arn, "stopType": "ROLLBACK"})
    );
    assert_eq!(
        h.ecs.deployment_status(&arn).as_deref(),
        Some("ROLLBACK_REQUESTED")
    );
    assert_eq!(decision["targets"][0]["source"], "event-tags");
}

#[tokio::test]
async fn the_mapping_names_targets_by_alarm_prefix() {
    let mut h = Harness::new().await;
    h.codedeploy
        .add_deployment("d-GREEN1", "checkout", "checkout-prod", "Ready");
    h.cloudwatch.tag_alarm(ALARM_ARN, &[("team", "payments")]);
    h.run(&[(
        "GREENLIGHT_ALARM_TARGETS",
        "'checkout-*': codedeploy:checkout/checkout-prod\npayments-5xx: ecs:prod/payments\n",
    )]);
    let decision = h.decision(event("alarm-rollback-alarm.json")).await;
    assert_eq!(h.codedeploy.stopped(), vec!["d-GREEN1"]);
    assert_eq!(
        decision["targets"],
        json!([{"target": "codedeploy:checkout/checkout-prod", "source": "mapping"}])
    );
}

#[tokio::test]
async fn discovery_finds_deployment_groups_that_list_the_alarm() {
    let mut h = Harness::new().await;
    h.codedeploy.add_group(
        "checkout",
        "checkout-prod",
        &["checkout-5xx", "checkout-latency"],
    );
    h.codedeploy
        .add_group("checkout", "checkout-staging", &["other-alarm"]);
    h.codedeploy
        .add_deployment("d-GREEN1", "checkout", "checkout-prod", "InProgress");
    h.codedeploy
        .add_deployment("d-STAGING", "checkout", "checkout-staging", "InProgress");
    h.cloudwatch.tag_alarm(ALARM_ARN, &[]);
    h.run(&[("GREENLIGHT_DISCOVERY_APPLICATIONS", "*")]);
    let decision = h.decision(event("alarm-rollback-alarm.json")).await;
    assert_eq!(h.codedeploy.stopped(), vec!["d-GREEN1"]);
    assert_eq!(
        decision["targets"],
        json!([{"target": "codedeploy:checkout/checkout-prod", "source": "discovery"}])
    );
    // A second event within the cache lifetime reads no deployment group again.
    let reads = h.codedeploy.calls_to("BatchGetDeploymentGroups").len();
    h.decision(event("alarm-rollback-alarm.json")).await;
    assert_eq!(
        h.codedeploy.calls_to("BatchGetDeploymentGroups").len(),
        reads
    );
}

#[tokio::test]
async fn an_ok_event_is_logged_and_ignored() {
    let mut h = Harness::new().await;
    h.codedeploy_in_flight();
    h.run(&[]);
    let decision = h.decision(event("alarm-rollback-ok.json")).await;
    assert_eq!(
        decision["ignored"],
        "the alarm entered OK; only ALARM rolls back"
    );
    assert!(
        h.codedeploy.calls().is_empty() && h.cloudwatch.calls().is_empty(),
        "an OK event calls nothing"
    );
}

#[tokio::test]
async fn an_unrelated_alarm_stops_nothing() {
    let mut h = Harness::new().await;
    h.codedeploy
        .add_deployment("d-GREEN1", "checkout", "checkout-prod", "InProgress");
    h.cloudwatch.tag_alarm(ALARM_ARN, &[("team", "payments")]);
    h.run(&[]);
    let decision = h.decision(event("alarm-rollback-alarm.json")).await;
    assert!(
        decision["ignored"]
            .as_str()
            .unwrap_or_default()
            .starts_with("no deployment is guarded by this alarm"),
        "{decision}"
    );
    assert!(h.codedeploy.stopped().is_empty());
}

#[tokio::test]
async fn nothing_in_flight_means_nothing_to_stop() {
    let mut h = Harness::new().await;
    h.cloudwatch.tag_alarm(
        ALARM_ARN,
        &[
            ("greenlight:codedeploy-application", "checkout"),
            ("greenlight:codedeploy-deployment-group", "checkout-prod"),
        ],
    );
    h.codedeploy
        .add_deployment("d-OLD", "checkout", "checkout-prod", "Succeeded");
    h.run(&[]);
    let decision = h.decision(event("alarm-rollback-alarm.json")).await;
    assert_eq!(
        decision["actions"],
        json!([{"target": "codedeploy:checkout/checkout-prod", "deployment": "", "action": "skipped", "skip": "nothing-in-flight", "detail": "no deployment in flight"}])
    );
    assert!(h.codedeploy.stopped().is_empty());
}

#[tokio::test]
async fn an_already_completed_deployment_is_success() {
    let mut h = Harness::new().await;
    h.codedeploy_in_flight();
    h.codedeploy.answer_next_for(
        "StopDeployment",
        [FakeAnswer::error(
            400,
            "DeploymentAlreadyCompletedException",
        )],
    );
    h.run(&[]);
    let decision = h.decision(event("alarm-rollback-alarm.json")).await;
    assert_eq!(decision["actions"][0]["action"], "skipped");
    assert_eq!(
        decision["actions"][0]["detail"],
        "already completed, stopping or rolling back"
    );
}

#[tokio::test]
async fn the_same_event_twice_stops_once() {
    let mut h = Harness::new().await;
    h.codedeploy_in_flight();
    // The deployment stays InProgress while it rolls back, as in AWS.
    h.codedeploy.world(|w| w.stopping_takes_time = true);
    h.run(&[]);
    h.decision(event("alarm-rollback-alarm.json")).await;
    let second = h.decision(event("alarm-rollback-alarm.json")).await;
    assert_eq!(
        h.codedeploy.stopped(),
        vec!["d-GREEN1"],
        "one stop for two identical events"
    );
    assert_eq!(second["actions"][0]["action"], "skipped");
}

#[tokio::test]
async fn dry_run_decides_and_stops_nothing() {
    let mut h = Harness::new().await;
    h.codedeploy_in_flight();
    h.run(&[("GREENLIGHT_DRY_RUN", "true")]);
    let decision = h.decision(event("alarm-rollback-alarm.json")).await;
    assert!(h.codedeploy.stopped().is_empty());
    assert_eq!(decision["dry_run"], true);
    assert_eq!(decision["actions"][0]["action"], "would-stop");
    assert_eq!(decision["actions"][0]["deployment"], "d-GREEN1");
    assert!(
        h.logs().contains("dry run, would stop 1 deployment(s)"),
        "{}",
        h.logs()
    );
}

#[tokio::test]
async fn throttling_is_retried_within_the_deadline() {
    let mut h = Harness::new().await;
    h.codedeploy_in_flight();
    h.codedeploy.answer_next_for(
        "StopDeployment",
        [FakeAnswer::throttled(), FakeAnswer::internal_error()],
    );
    h.cloudwatch.answer_next([FakeAnswer::throttled()]);
    h.run(&[]);
    let decision = h.decision(event("alarm-rollback-alarm.json")).await;
    assert_eq!(decision["actions"][0]["action"], "stopped");
    assert_eq!(
        h.codedeploy.stopped().len(),
        3,
        "two refused attempts, then the stop"
    );
    assert_eq!(
        h.codedeploy.deployment_status("d-GREEN1").as_deref(),
        Some("Stopped")
    );
}

#[tokio::test]
async fn a_composite_alarm_rolls_back_too() {
    let mut h = Harness::new().await;
    h.codedeploy
        .add_deployment("d-GREEN1", "checkout", "checkout-prod", "InProgress");
    h.cloudwatch.tag_alarm(
        COMPOSITE_ARN,
        &[
            ("greenlight:codedeploy-application", "checkout"),
            ("greenlight:codedeploy-deployment-group", "checkout-prod"),
        ],
    );
    h.run(&[]);
    let decision = h.decision(event("alarm-rollback-composite.json")).await;
    assert_eq!(h.codedeploy.stopped(), vec!["d-GREEN1"]);
    assert_eq!(
        decision["reason_data"]["triggeringAlarms"][0]["arn"],
        ALARM_ARN
    );
}

#[tokio::test]
async fn a_composite_alarm_whose_actions_are_suppressed_stops_nothing() {
    let mut h = Harness::new().await;
    h.codedeploy
        .add_deployment("d-GREEN1", "checkout", "checkout-prod", "InProgress");
    h.cloudwatch.tag_alarm(
        COMPOSITE_ARN,
        &[
            ("greenlight:codedeploy-application", "checkout"),
            ("greenlight:codedeploy-deployment-group", "checkout-prod"),
        ],
    );
    h.run(&[]);
    let mut suppressed = event("alarm-rollback-composite.json");
    suppressed["detail"]["state"]["actionsSuppressedBy"] = json!("WaitPeriod");
    let decision = h.decision(suppressed).await;
    assert!(
        decision["ignored"]
            .as_str()
            .unwrap_or_default()
            .contains("suppressed this alarm's actions (WaitPeriod)"),
        "{decision}"
    );
    assert!(h.codedeploy.stopped().is_empty());
}

#[tokio::test]
async fn access_denied_is_an_error_naming_the_deployment() {
    let mut h = Harness::new().await;
    h.codedeploy_in_flight();
    h.codedeploy
        .answer_next_for("StopDeployment", [FakeAnswer::access_denied()]);
    h.run(&[]);
    match h.invoke(event("alarm-rollback-alarm.json")).await {
        InvocationResult::Error {
            error_type,
            error_message,
        } => {
            assert_eq!(error_type, "RollbackIncomplete");
            assert!(
                error_message.contains("codedeploy:checkout/checkout-prod d-GREEN1: access denied"),
                "{error_message}"
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(
        h.logs().contains("\"decision\""),
        "the decision is logged even when it fails"
    );
}

#[tokio::test]
async fn a_malformed_event_is_answered_and_the_next_one_served() {
    let mut h = Harness::new().await;
    h.codedeploy_in_flight();
    h.run(&[]);
    match h.invoke(json!({"detail-type": "CloudWatch Alarm State Change", "detail": {"state": {"value": "ALARM"}}})).await {
        InvocationResult::Error { error_type, error_message } => {
            assert_eq!(error_type, "InvalidEvent");
            assert!(error_message.contains("`detail.alarmName` is missing"), "{error_message}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    h.decision(event("alarm-rollback-alarm.json")).await;
    assert_eq!(h.codedeploy.stopped(), vec!["d-GREEN1"]);
}

#[tokio::test]
async fn a_late_alarm_never_stops_a_deployment_created_after_it() {
    let mut h = Harness::new().await;
    h.codedeploy_in_flight();
    // The sample alarm entered ALARM at 2019-10-02T17:04:40.989Z; this deployment came later.
    h.codedeploy.add_deployment_created(
        "d-NEWER",
        "checkout",
        "checkout-prod",
        "InProgress",
        1_570_040_000.0,
    );
    h.run(&[("GREENLIGHT_DISCOVERY_APPLICATIONS", "off")]);
    let decision = h.decision(event("alarm-rollback-alarm.json")).await;
    assert_eq!(
        h.codedeploy.stopped(),
        vec!["d-GREEN1"],
        "only the deployment older than the alarm"
    );
    let newer = decision["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["deployment"] == "d-NEWER")
        .expect("the newer deployment is in the record")
        .clone();
    assert_eq!(newer["skip"], "stale", "{decision}");
    assert_eq!(decision["entered_at"], "2019-10-02T17:04:40.989Z");
}

#[tokio::test]
async fn a_slow_cloudwatch_does_not_delay_targets_from_the_mapping() {
    let mut h = Harness::new().await;
    let arn = h
        .ecs
        .add_deployment("prod", "checkout", "abc", "IN_PROGRESS");
    h.cloudwatch.answer_always(FakeAnswer::Hang);
    h.run(&[
        (
            "GREENLIGHT_ALARM_TARGETS",
            "checkout-5xx: ecs:prod/checkout",
        ),
        ("GREENLIGHT_DISCOVERY_APPLICATIONS", "off"),
    ]);
    let started = std::time::Instant::now();
    let invocation = h.invoke(event("alarm-rollback-alarm.json"));
    let stop = h.ecs.wait_for_calls(2, Duration::from_secs(3));
    let (_, calls) = tokio::join!(invocation, stop);
    let stop_call = calls
        .iter()
        .find(|c| c.operation == "StopServiceDeployment")
        .expect("the ECS deployment was stopped");
    assert!(
        stop_call.at.duration_since(started) < Duration::from_secs(1),
        "stopped within a second of the event: {:?}",
        stop_call.at.duration_since(started)
    );
    assert_eq!(
        h.ecs.deployment_status(&arn).as_deref(),
        Some("ROLLBACK_REQUESTED")
    );
}

#[tokio::test]
async fn owners_hear_about_a_rollback_and_about_a_failed_one() {
    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:deployments";
    let mut h = Harness::new().await;
    h.codedeploy_in_flight();
    h.run(&[
        ("GREENLIGHT_NOTIFY_TOPIC_ARN", TOPIC),
        ("GREENLIGHT_DISCOVERY_APPLICATIONS", "off"),
    ]);
    h.decision(event("alarm-rollback-alarm.json")).await;
    let published = h.sns.published();
    assert_eq!(published.len(), 1, "one message for the stop");
    assert_eq!(published[0].topic, TOPIC);
    assert_eq!(
        published[0].subject,
        "greenlight: alarm checkout-5xx rolled back 1 deployment(s)"
    );
    let record: Value = serde_json::from_str(&published[0].message).expect("the decision record");
    assert_eq!(record["actions"][0]["deployment"], "d-GREEN1");

    // Nothing in flight any more: nothing to say.
    h.decision(event("alarm-rollback-alarm.json")).await;
    assert_eq!(h.sns.published().len(), 1);

    h.codedeploy
        .add_deployment("d-GREEN2", "checkout", "checkout-prod", "InProgress");
    h.codedeploy
        .answer_next_for("StopDeployment", [FakeAnswer::access_denied()]);
    let _ = h.invoke(event("alarm-rollback-alarm.json")).await;
    let published = h.sns.published();
    assert_eq!(published.len(), 2);
    assert!(
        published[1].subject.contains("a rollback FAILED"),
        "{:?}",
        published[1]
    );
}
