//! `greenlight plan check FILE`: the validation the hooks run, and what a valid plan will do.
//!
//! Two kinds of problem are kept apart: the plan's own (structure, types, URLs written in it),
//! which no environment can fix (exit 2), and this shell's environment (unset variables, values
//! that do not make a URL), which the function's environment may well supply (exit 1).

use std::io::Read;
use std::path::Path;

use greenlight::plan::{PlanError, PlanSpec, Setting};
use greenlight::Env;

use crate::{output, style};

/// Used to check relative paths when no target is known here.
const PLACEHOLDER_TARGET: &str = "http://test-listener.invalid";

pub fn check(file: &Path, target: Option<String>) -> u8 {
    let (name, text) = match read(file) {
        Ok(read) => read,
        Err(message) => {
            output::error(format!("greenlight: {message}"));
            return 2;
        }
    };
    let spec = match PlanSpec::parse(&text) {
        Ok(spec) => spec,
        Err(e) => {
            let problems = e.problems();
            output::line(format!(
                "{} {name} has {} problem{}:",
                style::bad("invalid:"),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            ));
            for problem in problems {
                output::line(format!("  - {problem}"));
            }
            return 2;
        }
    };
    output::line(format!("{} {name}", style::good("valid:")));
    for warning in &spec.warnings {
        output::line(format!("  {} {warning}", style::warn("warning:")));
    }
    describe(&spec);

    // Fill the plan in as a hook would, from this shell's environment.
    let env = Env::process();
    let setting = match target {
        Some(t) => Some(Setting::new(t, "--target")),
        None => match env.setting("GREENLIGHT_TEST_URL") {
            Ok(url) => url.map(|u| Setting::new(u, "GREENLIGHT_TEST_URL")),
            Err(e) => {
                output::line(format!("  {} {e}", style::warn("in this shell:")));
                return 1;
            }
        },
    };
    let placeholder = setting.is_none() && spec.target.is_none();
    let setting = setting.or_else(|| {
        placeholder.then(|| Setting::new(PLACEHOLDER_TARGET, "GREENLIGHT_TEST_URL (a placeholder)"))
    });
    if placeholder {
        output::line(format!(
            "  {}",
            style::dim("relative paths will be joined to GREENLIGHT_TEST_URL where the plan runs")
        ));
    }
    match spec.resolve(setting.as_ref(), &env) {
        Ok(_) => 0,
        Err(PlanError::Unresolved(problems)) => {
            output::line(format!(
                "{} in this shell's environment the hooks would reject it ({} problem{}); the function's environment must supply:",
                style::warn("not runnable here:"),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            ));
            for problem in problems {
                output::line(format!("  - {problem}"));
            }
            1
        }
        Err(other) => {
            output::line(format!("  - {other}"));
            1
        }
    }
}

/// The plan's text and how to name it: a file, or standard input for `-`.
fn read(file: &Path) -> Result<(String, String), String> {
    if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .lock()
            .take(greenlight::plan::MAX_PLAN_BYTES as u64 + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the plan from standard input: {e}"))?;
        if text.len() > greenlight::plan::MAX_PLAN_BYTES {
            return Err(format!(
                "the plan on standard input is larger than {} bytes",
                greenlight::plan::MAX_PLAN_BYTES
            ));
        }
        return Ok(("the plan on standard input".into(), text));
    }
    greenlight::files::read_text(
        file,
        greenlight::plan::MAX_PLAN_BYTES,
        greenlight::files::READ_TIME_LIMIT,
    )
    .map(|text| (file.display().to_string(), text))
    .map_err(|e| e.to_string())
}

fn describe(spec: &PlanSpec) {
    output::line(format!(
        "  budget {}, up to {} checks at once",
        greenlight::duration::format_duration(spec.budget),
        spec.concurrency
    ));
    let format_duration = greenlight::duration::format_duration;
    if let Some(ready) = &spec.ready {
        output::line(format!(
            "  first, until they pass (within {}, every {}):",
            format_duration(ready.within),
            format_duration(ready.interval)
        ));
        for check in &ready.checks {
            output::line(format!(
                "  - {}: {} {} (timeout {})",
                check.name,
                check.method,
                check.path.written(),
                format_duration(check.timeout)
            ));
        }
        output::line("  then:");
    }
    for check in &spec.checks {
        output::line(check_line(check, "  "));
    }
    for (stage, s) in &spec.stages {
        let codedeploy = greenlight::plan::CODEDEPLOY_HOOKS.contains(&stage.as_str());
        let checks = s
            .checks
            .as_ref()
            .map_or("the top-level checks".to_string(), |c| {
                format!("{} checks of its own", c.len())
            });
        if codedeploy {
            output::line(format!("  - CodeDeploy hook {stage}: {checks}"));
        } else {
            output::line(format!(
                "  - ECS stage {stage}: {checks}, {} attempt(s)",
                s.attempts
            ));
        }
        for check in s.checks.iter().flatten() {
            output::line(check_line(check, "    "));
        }
    }
}

/// One check as `plan check` shows it: what it sends (or queries) and how it judges.
fn check_line(check: &greenlight::plan::CheckSpec, indent: &str) -> String {
    let how = check.probe.describe();
    if !check.probe.asks_over_http() {
        return format!("{indent}- {}: {how}", check.name);
    }
    let how = if check.routes.is_empty() {
        how
    } else {
        format!("{how}, over {} routes", check.routes.len())
    };
    format!(
        "{indent}- {}: {} {} (timeout {}, {how})",
        check.name,
        check.method,
        check.path.written(),
        greenlight::duration::format_duration(check.timeout),
    )
}
