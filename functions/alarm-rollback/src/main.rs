//! `alarm-rollback`: receives EventBridge "CloudWatch Alarm State Change" events and rolls back
//! the in-flight deployments the alarm guards (CodeDeploy or ECS native).

use greenlight::rollback::AlarmRollback;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let rollback = AlarmRollback::from_env();
    let rollback = &rollback;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = event.context.deadline();
        rollback.handle(event.payload, deadline).await
    }))
    .await
}
