//! What people and log queries see: one structured line per check, then one readable summary.
//! Only redacted text reaches here: header values never appear.

use crate::verdict::{Outcome, Verdict};

/// Logs every check as a structured event, then the readable summary.
pub fn log_verdict(title: &str, verdict: &Verdict) {
    for check in &verdict.checks {
        let status = check.measured.status().map(u64::from);
        let latency_ms = check.measured.latency().map(|l| l.as_millis() as u64);
        if check.outcome == Outcome::Passed {
            tracing::info!(check = %check.name, request = %check.request, outcome = "passed", status, latency_ms, attempts = check.attempts, "check passed");
        } else {
            tracing::warn!(check = %check.name, request = %check.request, outcome = check.outcome.label(), status, latency_ms, attempts = check.attempts, reason = %check.outcome.reason(), "check did not pass");
        }
    }
    let summary = verdict.summary(title);
    if verdict.succeeded() {
        tracing::info!(verdict = %verdict.status, elapsed_ms = verdict.elapsed.as_millis() as u64, "{summary}");
    } else {
        tracing::warn!(verdict = %verdict.status, elapsed_ms = verdict.elapsed.as_millis() as u64, reason = %verdict.reason, "{summary}");
    }
}
