//! The result model: each check ends `Passed`, `Failed` (an expectation not met, with the
//! measured value), `Errored` (could not measure, with the cause) or `Inconclusive` (a sampled
//! check got too few answers, or time ran out, before its thresholds could be judged); the
//! verdict is `Succeeded` only when every check passed.

use std::time::Duration;

use serde::Serialize;

use crate::duration::format_duration;
use crate::expect::Failure;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed { failures: Vec<Failure> },
    Errored { cause: String },
    Inconclusive { cause: String },
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed { .. } => "failed",
            Outcome::Errored { .. } => "errored",
            Outcome::Inconclusive { .. } => "inconclusive",
        }
    }

    /// Why it did not pass, in one line (empty when it passed).
    pub fn reason(&self) -> String {
        match self {
            Outcome::Passed => String::new(),
            Outcome::Failed { failures } => failures
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join("; "),
            Outcome::Errored { cause } | Outcome::Inconclusive { cause } => cause.clone(),
        }
    }
}

/// How one check went, with what was measured on its last attempt.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub name: String,
    /// `GET http://…/health`, with `${VAR}`s as written.
    pub request: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Requests sent: attempts of one exchange, or a population's samples.
    pub attempts: u32,
    /// What the check's probe measured.
    #[serde(flatten)]
    pub measured: crate::probe::Measured,
    #[serde(rename = "elapsed_ms", serialize_with = "millis")]
    pub elapsed: Duration,
    /// A readiness check (`ready:`), run before the others.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ready: bool,
    /// What the check captured for later checks (never shown).
    #[serde(skip)]
    pub captured: Vec<(String, String)>,
}

/// One attempt that did not end the check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRecord {
    pub outcome: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl CheckReport {
    /// A check that could not run or finish: `Errored` with `cause`, nothing measured.
    pub fn errored(name: &str, request: &str, cause: String, elapsed: Duration) -> Self {
        CheckReport {
            name: name.to_string(),
            request: request.to_string(),
            outcome: Outcome::Errored { cause },
            attempts: 0,
            measured: crate::probe::Measured::nothing(),
            elapsed,
            ready: false,
            captured: Vec::new(),
        }
    }

    /// One line (two when it did not pass): outcome, name padded to `width`, request, what was
    /// measured, and the reason.
    pub fn line(&self, width: usize) -> String {
        let bracket = self
            .measured
            .summary(self.attempts, self.outcome == Outcome::Passed);
        let label = if self.ready { "ready " } else { "" };
        let mut line = format!(
            "  {:<7} {label}{:<width$}  {}  [{bracket}]",
            self.outcome.label().to_uppercase(),
            self.name,
            self.request,
        );
        if self.outcome != Outcome::Passed {
            line.push_str(&format!("\n          {}", self.outcome.reason()));
        }
        let earlier = self.measured.earlier();
        if !earlier.is_empty() {
            let history: Vec<String> = earlier
                .iter()
                .enumerate()
                .map(|(i, a)| format!("{}: {}", i + 1, a.reason))
                .collect();
            line.push_str(&format!(
                "\n          earlier attempts: {}",
                history.join(" | ")
            ));
        }
        line
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum VerdictStatus {
    Succeeded,
    Failed,
}

impl std::fmt::Display for VerdictStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VerdictStatus::Succeeded => "Succeeded",
            VerdictStatus::Failed => "Failed",
        })
    }
}

/// The outcome of a whole verification.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub status: VerdictStatus,
    /// One line saying why: what passed, or what did not and why.
    pub reason: String,
    pub checks: Vec<CheckReport>,
    #[serde(rename = "elapsed_ms", serialize_with = "millis")]
    pub elapsed: Duration,
}

impl Verdict {
    /// `Succeeded` only when there is at least one check and every check passed.
    pub fn from_checks(checks: Vec<CheckReport>, elapsed: Duration) -> Self {
        let not_passed: Vec<&CheckReport> = checks
            .iter()
            .filter(|c| c.outcome != Outcome::Passed)
            .collect();
        let (status, reason) = if checks.is_empty() {
            (VerdictStatus::Failed, "no checks ran".to_string())
        } else if not_passed.is_empty() {
            let reason = match checks.len() {
                1 => "the check passed".to_string(),
                n => format!("all {n} checks passed"),
            };
            (VerdictStatus::Succeeded, reason)
        } else {
            let details = not_passed
                .iter()
                .map(|c| format!("{} {}: {}", c.name, c.outcome.label(), c.outcome.reason()))
                .collect::<Vec<_>>()
                .join(" | ");
            (
                VerdictStatus::Failed,
                format!(
                    "{} of {} checks did not pass: {details}",
                    not_passed.len(),
                    checks.len()
                ),
            )
        };
        Verdict {
            status,
            reason,
            checks,
            elapsed,
        }
    }

    /// A verification that could not start (bad plan, broken set-up): always `Failed`.
    pub fn not_run(reason: impl Into<String>) -> Self {
        Verdict {
            status: VerdictStatus::Failed,
            reason: reason.into(),
            checks: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }

    pub fn succeeded(&self) -> bool {
        self.status == VerdictStatus::Succeeded
    }

    /// Not passed, yet nothing failed: every check passed or is inconclusive (a metric check
    /// still waiting for its window, say), so a later verification may decide.
    pub fn undecided(&self) -> bool {
        !self.succeeded()
            && !self.checks.is_empty()
            && self
                .checks
                .iter()
                .all(|c| matches!(c.outcome, Outcome::Passed | Outcome::Inconclusive { .. }))
    }

    /// The reason without each check's details ("1 of 3 checks did not pass"), for output that
    /// lists the checks anyway.
    pub fn summary_reason(&self) -> &str {
        match self.reason.split_once(": ") {
            Some((head, _)) if !self.checks.is_empty() => head,
            _ => &self.reason,
        }
    }

    /// A readable multi-line summary: the verdict, then one line per check.
    pub fn summary(&self, title: &str) -> String {
        let mut out = format!(
            "{title}: {} in {} - {}\n",
            self.status.to_string().to_uppercase(),
            format_duration(self.elapsed),
            self.reason
        );
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &self.checks {
            out.push_str(&c.line(width));
            out.push('\n');
        }
        out
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

pub(crate) fn millis_opt<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => millis(d, s),
        None => s.serialize_none(),
    }
}
