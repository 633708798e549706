//! `after-allow-traffic`: the CodeDeploy `AfterAllowTraffic` hook. Production traffic reaches
//! green now; it verifies production (`GREENLIGHT_PRODUCTION_URL`), usually with metric checks
//! over a bake window (the plan's `stages.AfterAllowTraffic`), and reports `Succeeded` or
//! `Failed` to CodeDeploy, which rolls back on `Failed`.
// The handler's future nests the AWS SDK's deeply; the compiler needs room to lay it out.
#![recursion_limit = "256"]

use greenlight::hook::{CodeDeployHook, AFTER_ALLOW_TRAFFIC};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    greenlight::lambda::serve(|| CodeDeployHook::from_env(AFTER_ALLOW_TRAFFIC)).await
}
