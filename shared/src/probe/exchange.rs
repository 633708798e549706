//! Probe kind `exchange`: one request, judged by the check's expectations, retried as the plan
//! allows. Its fields:
//!
//! - `retries` (default 2), `retry_delay` (default 200ms, doubling, at most 10s);
//! - `retry_on`: which failed attempts are retried (default: transport errors and 502/503/504;
//!   a failed expectation or a 500 is a finding, not noise; see [`RetryOn`]);
//! - `flaky: fail`: passing only after failed attempts is a failure;
//! - `capture`: values taken from a passing answer for later checks (`${captured.NAME}`).
//!
//! It measures the last attempt (status, latency) and keeps every earlier one, so a report
//! shows what retrying went through. Readiness checks (`ready:`) are this kind too, repeated
//! at an interval until they pass ([`run_until_ready`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::{Defaults, Measured};
use crate::check::{attempt, Attempt, MIN_ATTEMPT};
use crate::deadline::Deadline;
use crate::duration::format_duration;
use crate::expect::Failure;
use crate::plan::capture::Capture;
use crate::plan::problems::Problems;
use crate::plan::{Check, Flaky, RetryOn, DEFAULT_RETRIES, DEFAULT_RETRY_DELAY};
use crate::verdict::{AttemptRecord, CheckReport, Outcome};

/// Retries per check at most: with back-off, more would only spend the budget.
pub const MAX_RETRIES: u32 = 20;
/// Back-off between attempts never grows past this.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);

/// One request, retried.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub retries: u32,
    pub retry_delay: Duration,
    pub retry_on: RetryOn,
    pub flaky: Flaky,
    /// Values this check takes from its answer for later checks.
    pub captures: Vec<Capture>,
}

impl Default for Exchange {
    fn default() -> Self {
        Exchange {
            retries: DEFAULT_RETRIES,
            retry_delay: DEFAULT_RETRY_DELAY,
            retry_on: RetryOn::default(),
            flaky: Flaky::Pass,
            captures: Vec::new(),
        }
    }
}

impl Exchange {
    pub fn describe(&self) -> String {
        match self.retries {
            1 => "1 retry".to_string(),
            n => format!("{n} retries"),
        }
    }
}

/// The exchange kind's fields as written.
pub(crate) struct Fields {
    pub retries: Option<u32>,
    pub retry_delay: Option<Duration>,
    pub retry_on: Option<Vec<Value>>,
    pub flaky: Option<String>,
    pub capture: Option<BTreeMap<String, Value>>,
}

/// The exchange fields of the check at `at`, `defaults` filling what it does not say.
pub(crate) fn validate(
    fields: Fields,
    at: &str,
    defaults: &Defaults,
    p: &mut Problems,
) -> Option<Exchange> {
    if let Some(r) = fields.retries.filter(|r| *r > MAX_RETRIES) {
        p.error(
            format!("{at}.retries"),
            format!("at most {MAX_RETRIES}, found {r}"),
        );
    }
    let retry_on = match fields.retry_on.as_deref() {
        Some(items) => RetryOn::from_values(items)
            .map_err(|message| p.error(format!("{at}.retry_on"), message))
            .unwrap_or_default(),
        None => defaults.retry_on.clone().unwrap_or_default(),
    };
    let flaky = match fields.flaky.as_deref() {
        None | Some("pass") => Flaky::Pass,
        Some("fail") => Flaky::Fail,
        Some(other) => {
            p.error(
                format!("{at}.flaky"),
                format!("\"{other}\" is not `pass` or `fail`"),
            );
            Flaky::Pass
        }
    };
    let mut captures = Vec::new();
    for (name, source) in fields.capture.iter().flatten() {
        match Capture::parse(name, source, &mut |text| p.compile(text)) {
            Ok(capture) => captures.push(capture),
            Err(message) => p.error(format!("{at}.capture.{name}"), message),
        }
    }
    Some(Exchange {
        retries: fields
            .retries
            .or(defaults.retries)
            .unwrap_or(DEFAULT_RETRIES)
            .min(MAX_RETRIES),
        retry_delay: fields
            .retry_delay
            .or(defaults.retry_delay)
            .unwrap_or(DEFAULT_RETRY_DELAY),
        retry_on,
        flaky,
        captures,
    })
}

/// Runs `check` until it passes, runs out of attempts, reaches an attempt `retry_on` does not
/// retry, or reaches `deadline`.
pub(crate) async fn run(
    client: &reqwest::Client,
    check: &Check,
    exchange: &Exchange,
    deadline: Deadline,
) -> CheckReport {
    let started = Instant::now();
    let max_attempts = exchange.retries.saturating_add(1);
    let mut attempts = 0;
    let mut earlier = Vec::new();
    let mut last: Option<Attempt> = None;
    let mut not_retried = false;
    while attempts < max_attempts {
        if let Some(previous) = &last {
            if !exchange.retry_on.retries(previous.status) {
                not_retried = true;
                break;
            }
            let delay = backoff(exchange.retry_delay, attempts);
            if deadline.remaining() < delay + MIN_ATTEMPT {
                break;
            }
            tokio::time::sleep(delay).await;
        }
        if deadline.remaining() < MIN_ATTEMPT {
            break;
        }
        attempts += 1;
        let measured = attempt(client, check, deadline, attempts).await;
        let passed = measured.outcome == Outcome::Passed;
        if let Some(previous) = last.replace(measured) {
            earlier.push(record(&previous));
        }
        if passed {
            break;
        }
    }
    let passed = last.as_ref().is_some_and(|a| a.outcome == Outcome::Passed);
    let ran_out = attempts < max_attempts && !passed && !not_retried;
    let last = last.unwrap_or_else(|| Attempt::none(NO_TIME_FOR_A_FIRST_ATTEMPT));
    let outcome = match last.outcome {
        Outcome::Errored { cause } if ran_out && attempts > 0 => Outcome::Errored {
            cause: format!(
                "{cause} (no time left for more attempts before the verification deadline)"
            ),
        },
        Outcome::Passed if !earlier.is_empty() && exchange.flaky == Flaky::Fail => {
            Outcome::Failed {
                failures: vec![Failure {
                    expectation: "flaky".into(),
                    expected: "to pass at the first attempt (flaky: fail)".into(),
                    measured: format!(
                        "passed at attempt {attempts}, after: {}",
                        earlier
                            .iter()
                            .map(|a| a.reason.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                }],
            }
        }
        other => other,
    };
    let measured = Measured::Exchange {
        status: last.status,
        latency: last.latency,
        earlier,
    };
    report(check, outcome, attempts, measured, last.captured, started)
}

/// The report of an exchange.
fn report(
    check: &Check,
    outcome: Outcome,
    attempts: u32,
    measured: Measured,
    captured: Vec<(String, String)>,
    started: Instant,
) -> CheckReport {
    CheckReport {
        name: check.name.clone(),
        request: check.request_line.clone(),
        outcome,
        attempts,
        measured,
        elapsed: started.elapsed(),
        ready: false,
        captured,
    }
}

const NO_TIME_FOR_A_FIRST_ATTEMPT: &str =
    "the verification deadline was reached before the first attempt";

/// Runs a readiness check until it passes or `within` has gone by (inside `deadline`): green may
/// take a while to warm up, and nothing is judged before it is ready.
pub async fn run_until_ready(
    client: &reqwest::Client,
    check: &Check,
    within: Duration,
    interval: Duration,
    deadline: Deadline,
) -> CheckReport {
    let started = Instant::now();
    let ready_by = deadline.earliest(Deadline::after(within));
    let mut attempts = 0u32;
    let mut last: Option<Attempt> = None;
    while ready_by.remaining() >= MIN_ATTEMPT {
        if attempts > 0 {
            if ready_by.remaining() < interval + MIN_ATTEMPT {
                break;
            }
            tokio::time::sleep(interval).await;
        }
        attempts = attempts.saturating_add(1);
        let measured = attempt(client, check, ready_by, attempts).await;
        let passed = measured.outcome == Outcome::Passed;
        last = Some(measured);
        if passed {
            break;
        }
    }
    let waited = format_duration(started.elapsed());
    let last = last.unwrap_or_else(|| Attempt::none(NO_TIME_FOR_A_FIRST_ATTEMPT));
    let outcome = match &last.outcome {
        Outcome::Passed => Outcome::Passed,
        Outcome::Errored { cause } if attempts == 0 => Outcome::Errored {
            cause: cause.clone(),
        },
        other => Outcome::Failed {
            failures: vec![Failure {
                expectation: "ready".into(),
                expected: format!("to pass within {}", format_duration(within)),
                measured: format!("{} ({attempts} attempts over {waited})", other.reason()),
            }],
        },
    };
    let measured = Measured::Exchange {
        status: last.status,
        latency: last.latency,
        earlier: Vec::new(),
    };
    // Readiness checks capture nothing.
    CheckReport {
        ready: true,
        ..report(check, outcome, attempts, measured, Vec::new(), started)
    }
}

fn record(attempt: &Attempt) -> AttemptRecord {
    AttemptRecord {
        outcome: attempt.outcome.label().into(),
        reason: attempt.outcome.reason(),
        status: attempt.status,
    }
}

fn backoff(first: Duration, attempts_done: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts_done.saturating_sub(1).min(16));
    first.saturating_mul(factor).min(MAX_RETRY_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(fields: Fields, defaults: &Defaults) -> Result<Exchange, Vec<String>> {
        let mut p = Problems::default();
        validate(fields, "checks[0]", defaults, &mut p)
            .filter(|_| p.errors.is_empty())
            .ok_or_else(|| p.errors.iter().map(|e| e.to_string()).collect())
    }

    fn fields() -> Fields {
        Fields {
            retries: None,
            retry_delay: None,
            retry_on: None,
            flaky: None,
            capture: None,
        }
    }

    #[test]
    fn the_check_then_the_defaults_then_greenlights_own() {
        let plain = read(fields(), &Defaults::default()).unwrap();
        assert_eq!(
            (plain.retries, plain.retry_delay, plain.flaky),
            (DEFAULT_RETRIES, DEFAULT_RETRY_DELAY, Flaky::Pass)
        );
        assert!(plain.retry_on.retries(Some(503)) && !plain.retry_on.retries(Some(500)));
        let defaults = Defaults {
            retries: Some(5),
            retry_delay: Some(Duration::from_secs(1)),
            retry_on: Some(RetryOn::from_values(&[serde_json::json!("any")]).unwrap()),
        };
        let from_defaults = read(fields(), &defaults).unwrap();
        assert_eq!(from_defaults.retries, 5);
        assert!(from_defaults.retry_on.retries(Some(500)));
        let own = read(
            Fields {
                retries: Some(0),
                flaky: Some("fail".into()),
                ..fields()
            },
            &defaults,
        )
        .unwrap();
        assert_eq!((own.retries, own.flaky), (0, Flaky::Fail));
        assert_eq!(own.describe(), "0 retries");
    }

    #[test]
    fn wrong_fields_are_named_at_their_paths() {
        let errors = read(
            Fields {
                retries: Some(99),
                retry_on: Some(vec![serde_json::json!("sometimes")]),
                flaky: Some("maybe".into()),
                capture: Some(BTreeMap::from([(
                    "id".to_string(),
                    serde_json::json!({"json": "id"}),
                )])),
                ..fields()
            },
            &Defaults::default(),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert_eq!(errors[0], "checks[0].retries: at most 20, found 99");
        assert!(errors[1].starts_with("checks[0].retry_on: \"sometimes\" is not a status code"));
        assert_eq!(
            errors[2],
            "checks[0].flaky: \"maybe\" is not `pass` or `fail`"
        );
        assert!(
            errors[3].starts_with("checks[0].capture.id:"),
            "{}",
            errors[3]
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let first = Duration::from_millis(200);
        assert_eq!(backoff(first, 1), Duration::from_millis(200));
        assert_eq!(backoff(first, 2), Duration::from_millis(400));
        assert_eq!(backoff(first, 3), Duration::from_millis(800));
        assert_eq!(backoff(first, 30), MAX_RETRY_DELAY);
    }
}
