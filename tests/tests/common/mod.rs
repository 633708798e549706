//! What the verification tests share: run a plan against a green on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use greenlight::plan::Setting;
use greenlight::{Deadline, Env, PlanSpec, Tools, Verdict};
use greenlight_fakes::green::GreenServer;

/// Parses `plan`, points it at `green`, and verifies within `within`.
#[allow(dead_code)] // each test binary uses its own part of this module
pub async fn run(plan: &str, green: &GreenServer, within: Duration) -> Verdict {
    let spec = PlanSpec::parse(plan).unwrap_or_else(|e| panic!("{e}"));
    run_spec(&spec, green, &[], within).await
}

/// Points `spec` at `green`, with `env` as the environment, and verifies within `within`.
#[allow(dead_code)]
pub async fn run_spec(
    spec: &PlanSpec,
    green: &GreenServer,
    env: &[(&str, &str)],
    within: Duration,
) -> Verdict {
    let target = Setting::new(green.url(), "--target");
    let plan = spec
        .resolve(Some(&target), &Env::from_pairs(env.iter().copied()))
        .unwrap_or_else(|e| panic!("{e}"));
    let client = greenlight::http::build_check_client().unwrap();
    greenlight::verify(
        &Tools::http(client),
        Arc::new(plan),
        Deadline::after(within),
    )
    .await
}
