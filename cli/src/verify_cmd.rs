//! `greenlight verify`: one run of a plan, with progress as checks end and a verdict at the end.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use greenlight::plan::{PlanError, PlanSettings, Setting};
use greenlight::probe::metric::CloudWatchMetrics;
use greenlight::probe::target_health::ElbLoadBalancers;
use greenlight::{verify_observed, Deadline, Env, Tools};
use serde_json::json;

use crate::{output, style, Format};

pub async fn run(
    plan_file: Option<PathBuf>,
    target: Option<String>,
    baseline: Option<String>,
    format: Format,
) -> u8 {
    let mut env = Env::process();
    if let Some(baseline) = baseline {
        env = env.with_values(vec![("GREENLIGHT_PRODUCTION_URL".into(), baseline)]);
    }
    let plan = PlanSettings::from_env(&env)
        .map(|mut settings| {
            if let Some(file) = &plan_file {
                settings.inline = None;
                settings.file = Some(Setting::new(file.display().to_string(), "--plan"));
            }
            if let Some(target) = &target {
                settings.test_url = Some(Setting::new(target.clone(), "--target"));
            }
            settings
        })
        .and_then(|settings| settings.load(&env));
    let plan = match plan {
        Ok(plan) => Arc::new(plan),
        Err(e) => return configuration_error(&e, format),
    };
    let mut tools = match greenlight::http::build_check_client() {
        Ok(client) => Tools::http(client),
        Err(e) => {
            output::error(format!("greenlight: cannot build the HTTP client: {e}"));
            return 2;
        }
    };
    if plan.reads_metrics() {
        // The standard AWS configuration (profile, region, AWS_ENDPOINT_URL_CLOUDWATCH).
        tools = tools.with_metrics(Arc::new(CloudWatchMetrics::from_env()));
    }
    if plan.asks_load_balancer() {
        tools = tools.with_load_balancers(Arc::new(ElbLoadBalancers::from_env()));
    }
    let total = plan.checks.len();
    let width = plan.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let terminal = std::io::stdout().is_terminal() && format == Format::Text;
    let done = AtomicUsize::new(0);
    if format == Format::Text {
        for warning in &plan.warnings {
            output::line(format!("{} plan: {warning}", style::warn("warning:")));
        }
        output::line(format!(
            "verifying {total} check{} (budget {})",
            if total == 1 { "" } else { "s" },
            greenlight::duration::format_duration(plan.budget)
        ));
    }
    let verdict = verify_observed(
        &tools,
        plan.clone(),
        Deadline::after(plan.budget),
        |report| {
            // On a terminal, one live status line; the table at the end has the details. Piped,
            // nothing until the table, so each check appears once.
            if terminal {
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                output::inline(format!(
                    "\r\x1b[2K{}",
                    style::dim(&format!(
                        "  {n}/{total} done, last: {} {}",
                        report.name,
                        report.outcome.label()
                    ))
                ));
            }
        },
    )
    .await;
    if terminal {
        output::inline("\r\x1b[2K");
    }
    match format {
        Format::Json => {
            if let Err(e) = output::json(&verdict) {
                output::error(format!("greenlight: cannot print the verdict as JSON: {e}"));
                return 2;
            }
        }
        Format::Text => {
            for report in &verdict.checks {
                output::line(style::check_line(&report.line(width), &report.outcome));
            }
            let word = if verdict.succeeded() {
                style::good("SUCCEEDED")
            } else {
                style::bad("FAILED")
            };
            output::line(format!(
                "verdict: {word} in {} - {}",
                greenlight::duration::format_duration(verdict.elapsed),
                verdict.summary_reason()
            ));
        }
    }
    if verdict.succeeded() {
        0
    } else {
        1
    }
}

/// Says once what is wrong with the configuration, naming what the user typed; as a JSON
/// document on standard output with `--format json`. Exit code 2.
fn configuration_error(error: &PlanError, format: Format) -> u8 {
    let (message, problems) = match error {
        PlanError::Missing => (
            "nothing to verify: pass --target URL (the route that reaches green; without --plan, the default plan GETs it and expects 200-399), or set GREENLIGHT_TEST_URL, GREENLIGHT_PLAN or GREENLIGHT_PLAN_FILE".to_string(),
            Vec::new(),
        ),
        PlanError::Invalid(_) | PlanError::Unresolved(_) => {
            let problems = error.problems();
            let heading = if problems.len() == 1 {
                "the plan has a problem".to_string()
            } else {
                format!("the plan has {} problems", problems.len())
            };
            (heading, problems)
        }
        other => (other.to_string(), Vec::new()),
    };
    match format {
        Format::Json => {
            let document = json!({"error": {"kind": "configuration", "message": message, "problems": problems}});
            if output::json(&document).is_err() {
                output::error(format!("greenlight: {message}"));
            }
        }
        Format::Text => {
            if problems.is_empty() {
                output::error(format!("greenlight: {message}"));
            } else if problems.len() == 1 {
                output::error(format!("greenlight: {}", problems[0]));
            } else {
                output::error(format!("greenlight: {message}:"));
                for problem in &problems {
                    output::error(format!("  - {problem}"));
                }
            }
        }
    }
    2
}
