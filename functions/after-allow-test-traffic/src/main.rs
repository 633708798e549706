//! `after-allow-test-traffic`: the CodeDeploy `AfterAllowTestTraffic` hook. It smoke-tests green through the test
//! listener with the configured plan and reports `Succeeded` or `Failed` to CodeDeploy.
// The handler's future nests the AWS SDK's deeply; the compiler needs room to lay it out.
#![recursion_limit = "256"]

use greenlight::hook::CodeDeployHook;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    greenlight::lambda::serve(|| CodeDeployHook::from_env("AfterAllowTestTraffic")).await
}
