//! `ecs-lifecycle-hook`: the lifecycle hook for Amazon ECS native blue/green, linear and canary
//! deployments. It verifies green with the configured plan and returns `hookStatus`.
// The handler's future nests the AWS SDK's deeply; the compiler needs room to lay it out.
#![recursion_limit = "256"]

use greenlight::ecs_hook::EcsHook;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    greenlight::lambda::serve(EcsHook::from_env).await
}
