//! `alarm-rollback`: receives EventBridge "CloudWatch Alarm State Change" events and rolls back
//! the in-flight deployments the alarm guards (CodeDeploy or ECS native).
// The handler's future nests the AWS SDK's deeply; the compiler needs room to lay it out.
#![recursion_limit = "256"]

use greenlight::rollback::AlarmRollback;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    greenlight::lambda::serve(AlarmRollback::from_env).await
}
