//! The built `after-allow-traffic` binary under the Lambda Runtime API emulator, reporting to a fake
//! CodeDeploy reached through `AWS_ENDPOINT_URL_CODEDEPLOY`.

use std::path::Path;

use greenlight_fakes::hook_scenarios;

const BINARY: &str = env!("CARGO_BIN_EXE_after-allow-traffic");
const EVENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../events/after-allow-traffic.json"
);

#[tokio::test]
async fn serves_a_bad_event_then_reports_good_ones_in_the_same_process() {
    hook_scenarios::bad_event_then_good_events(Path::new(BINARY), Path::new(EVENT)).await;
}

#[tokio::test]
async fn a_broken_plan_is_reported_failed_not_crashed() {
    hook_scenarios::broken_plan_is_reported_failed(Path::new(BINARY), Path::new(EVENT)).await;
}

#[tokio::test]
async fn missing_credentials_fail_fast() {
    hook_scenarios::missing_credentials_fail_fast(Path::new(BINARY), Path::new(EVENT)).await;
}

/// Under the Runtime API, the binary reads green's metrics from CloudWatch through
/// `AWS_ENDPOINT_URL` (the stand-in serves CodeDeploy and CloudWatch on one port), and reports.
#[tokio::test]
async fn a_metric_gate_after_the_shift_reports_what_cloudwatch_shows() {
    use greenlight_fakes::{standin::AwsStandIn, FunctionProcess, InvocationResult, RuntimeApi};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let plan = "version: 1\nchecks:\n  - name: no 5xx on green\n    metric: {namespace: AWS/ApplicationELB, name: HTTPCode_Target_5XX_Count, dimensions: {TargetGroup: targetgroup/green/1}, stat: Sum, window: 2m, threshold: '< 1'}\n";
    for (five_xx, expected) in [(0.0, "Succeeded"), (5.0, "Failed")] {
        let standin = AwsStandIn::start("127.0.0.1:0", None).await.unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        for minute in 0..2 {
            let at = now - now % 60 - minute * 60;
            standin.cloudwatch.put(
                "AWS/ApplicationELB",
                "HTTPCode_Target_5XX_Count",
                &[("TargetGroup", "targetgroup/green/1")],
                at,
                five_xx,
            );
        }
        let api = RuntimeApi::start().await;
        let function = FunctionProcess::spawn(
            Path::new(BINARY),
            &api,
            &[
                ("AWS_ENDPOINT_URL", standin.url()),
                ("GREENLIGHT_PLAN", plan.to_string()),
            ],
        )
        .expect("start the function binary");
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(EVENT).unwrap()).unwrap();
        let answer = api.invoke(event, Duration::from_secs(10)).await;
        let InvocationResult::Response(body) = answer else {
            panic!("expected a response, got {answer:?}")
        };
        assert_eq!(body["status"], expected, "{body}");
        assert_eq!(standin.codedeploy.reported_statuses(), vec![expected]);
        assert_eq!(standin.cloudwatch.calls_to("GetMetricData").len(), 1);
        function.stop().await;
    }
}
