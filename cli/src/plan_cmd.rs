//! `greenlight plan check FILE`: validate a plan, and say what it will do.

use std::path::Path;

use greenlight::PlanSpec;

use crate::style;

pub fn check(file: &Path) -> u8 {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("greenlight: cannot read {}: {e}", file.display());
            return 2;
        }
    };
    let spec = match PlanSpec::parse(&text) {
        Ok(spec) => spec,
        Err(e) => {
            let problems = e.problems();
            println!(
                "{} {} has {} problem{}:",
                style::bad("invalid:"),
                file.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            for problem in problems {
                println!("  - {problem}");
            }
            return 2;
        }
    };
    println!("{} {}", style::good("valid:"), file.display());
    println!(
        "  budget {}, up to {} checks at once",
        greenlight::duration::format_duration(spec.budget),
        spec.concurrency
    );
    for check in &spec.checks {
        println!(
            "  - {}: {} {} (timeout {}, {} retries)",
            check.name,
            check.method,
            check.path,
            greenlight::duration::format_duration(check.timeout),
            check.retries
        );
    }
    for (stage, s) in &spec.stages {
        let checks = s
            .checks
            .as_ref()
            .map_or("the top-level checks".to_string(), |c| {
                format!("{} checks of its own", c.len())
            });
        println!("  - ECS stage {stage}: {checks}, {} attempt(s)", s.attempts);
    }
    // Resolve against this shell's environment: unset variables are worth a warning here, though
    // the function's environment is what counts when it runs.
    let lookup = |name: &str| std::env::var(name).ok();
    if let Err(e) = spec.resolve(Some("http://127.0.0.1"), &lookup) {
        for problem in e.problems() {
            println!("  {} {problem}", style::warn("note (in this shell):"));
        }
    }
    0
}
