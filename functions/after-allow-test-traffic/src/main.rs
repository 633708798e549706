//! `after-allow-test-traffic`: the CodeDeploy `AfterAllowTestTraffic` hook. It smoke-tests green through the test
//! listener with the configured plan and reports `Succeeded` or `Failed` to CodeDeploy.

use greenlight::hook::CodeDeployHook;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let hook = CodeDeployHook::from_env("AfterAllowTestTraffic");
    let hook = &hook;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = event.context.deadline();
        hook.handle(event.payload, deadline).await
    }))
    .await
}
