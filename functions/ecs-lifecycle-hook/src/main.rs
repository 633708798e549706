//! `ecs-lifecycle-hook`: the lifecycle hook for Amazon ECS native blue/green, linear and canary
//! deployments. It verifies green with the configured plan and returns `hookStatus`.

use std::convert::Infallible;

use greenlight::ecs_hook::{EcsHook, HookResponse};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let hook = EcsHook::from_env();
    let hook = &hook;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = event.context.deadline();
        Ok::<HookResponse, Infallible>(hook.handle(event.payload, deadline).await)
    }))
    .await
}
