//! `greenlight verify`: one run of a plan, with progress as checks end and a verdict at the end.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use greenlight::plan::PlanSettings;
use greenlight::{verify_observed, Deadline, PlanSpec};

use crate::{style, Format};

pub async fn run(plan_file: Option<PathBuf>, target: Option<String>, format: Format) -> u8 {
    let lookup = |name: &str| std::env::var(name).ok();
    let mut settings = PlanSettings::from_env();
    if let Some(file) = plan_file {
        settings.inline = None;
        settings.file = Some(file);
    }
    if let Some(target) = target {
        settings.test_url = Some(target);
    }
    let plan = match settings
        .load_spec()
        .and_then(|spec: PlanSpec| spec.resolve(settings.test_url.as_deref(), &lookup))
    {
        Ok(plan) => Arc::new(plan),
        Err(e) => {
            eprintln!("greenlight: {e}");
            for problem in e.problems() {
                eprintln!("  - {problem}");
            }
            return 2;
        }
    };
    let client = match greenlight::http::build_check_client() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("greenlight: cannot build the HTTP client: {e}");
            return 2;
        }
    };
    let total = plan.checks.len();
    let width = plan.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let terminal = std::io::stdout().is_terminal() && format == Format::Text;
    let done = AtomicUsize::new(0);
    if format == Format::Text {
        println!(
            "verifying {total} check{} (budget {})",
            if total == 1 { "" } else { "s" },
            greenlight::duration::format_duration(plan.budget)
        );
    }
    let verdict = verify_observed(
        &client,
        plan.clone(),
        Deadline::after(plan.budget),
        |report| {
            if format == Format::Json {
                return;
            }
            let n = done.fetch_add(1, Ordering::SeqCst) + 1;
            let mut out = std::io::stdout().lock();
            if terminal {
                // One live status line; the table at the end has the details.
                let _ = write!(
                    out,
                    "\r\x1b[2K{}",
                    style::dim(&format!(
                        "  {n}/{total} done, last: {} {}",
                        report.name,
                        report.outcome.label()
                    ))
                );
            } else {
                let _ = writeln!(out, "{}", report.line(width));
            }
            let _ = out.flush();
        },
    )
    .await;
    if terminal {
        print!("\r\x1b[2K");
    }
    match format {
        Format::Json => match serde_json::to_string_pretty(&verdict) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("greenlight: cannot print the verdict as JSON: {e}");
                return 2;
            }
        },
        Format::Text => {
            if !terminal {
                println!();
            }
            for report in &verdict.checks {
                println!("{}", style::check_line(&report.line(width)));
            }
            let word = if verdict.succeeded() {
                style::good("SUCCEEDED")
            } else {
                style::bad("FAILED")
            };
            println!(
                "verdict: {word} in {} - {}",
                greenlight::duration::format_duration(verdict.elapsed),
                verdict.reason
            );
        }
    }
    if verdict.succeeded() {
        0
    } else {
        1
    }
}
