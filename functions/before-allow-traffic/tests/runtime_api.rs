//! The built `before-allow-traffic` binary under the Lambda Runtime API emulator, reporting to a fake
//! CodeDeploy reached through `AWS_ENDPOINT_URL_CODEDEPLOY`.

use std::path::Path;

use greenlight_fakes::hook_scenarios;

const BINARY: &str = env!("CARGO_BIN_EXE_before-allow-traffic");
const EVENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../events/before-allow-traffic.json"
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
