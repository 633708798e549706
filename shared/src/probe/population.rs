//! A population of requests: what [`super::samples`] and [`super::load`] share. One request is
//! an anecdote; a population has an error rate and percentiles. Every request is judged by the
//! check's expectations, then the population by its thresholds (see [`super::threshold`]).
//!
//! Memory stays flat however many requests are sent: latencies go into a fixed-size
//! [`Histogram`], failure reasons into a few counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::histogram::Histogram;
use super::threshold::{format_percent, Judged, LatencyLimit, RateLimit, Statistic, Thresholds};
use crate::check::Attempt;
use crate::duration::format_duration;
use crate::expect::Failure;
use crate::plan::problems::Problems;
use crate::plan::Check;
use crate::verdict::CheckReport;
use crate::verdict::Outcome;

/// How a population was sent, for judging it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sending {
    /// Requests planned (samples), or arrivals planned (a load run: rate × duration).
    pub planned: u64,
    pub concurrency: usize,
    /// A load run's arrivals per second.
    pub rate: Option<f64>,
}

/// How the sending ended, beside what the tally holds.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Ending {
    /// A load run's arrivals that found the concurrency ceiling reached.
    pub dropped: u64,
    /// A load run's arrivals sent late with room to spare.
    pub late: u64,
    /// The verification deadline (or a panic) ended the sending before all were sent.
    pub stopped_early: bool,
}

pub const MAX_SAMPLES: u64 = 1_000_000;
pub const MAX_SAMPLE_CONCURRENCY: usize = 256;
/// Distinct failure reasons kept with their counts; the rest are counted together.
const REASONS_KEPT: usize = 3;
/// What a sampled check measured: counts, the first distinct failure reasons, percentiles, and
/// each threshold next to its measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Population {
    pub planned: u64,
    pub sent: u64,
    pub answered: u64,
    /// Sent, but the verification deadline came before the answer: not counted either way.
    #[serde(skip_serializing_if = "is_zero")]
    pub cut_short: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub failures: Vec<ReasonCount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_failures: Option<u64>,
    pub latency_ms: Vec<(String, f64)>,
    pub thresholds: Vec<Judged>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub achieved_rate: Option<f64>,
    /// Open model: arrivals that found `concurrency` requests already in flight.
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped: u64,
    /// Open model: arrivals sent noticeably after their time, with room to send them.
    #[serde(skip_serializing_if = "is_zero")]
    pub late: u64,
    /// Per route, when the check has routes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteTally>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RouteTally {
    pub request: String,
    pub weight: u32,
    pub sent: u64,
    pub errors: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReasonCount {
    pub reason: String,
    pub count: u64,
}

impl Population {
    /// `200 sent, 19 errors (9.5%): status: expected 200, got 500 (17×); …; p95 12ms (< 300ms)`.
    pub fn line(&self) -> String {
        let mut parts = vec![format!(
            "{} of {} sent, {} answered, {} errors ({})",
            self.sent,
            self.planned,
            self.answered,
            self.errors,
            format_percent(self.error_rate)
        )];
        if let (Some(requested), Some(achieved)) = (self.requested_rate, self.achieved_rate) {
            parts.push(format!("{achieved:.1}/s of {requested:.1}/s requested"));
        }
        let judged: Vec<String> = self
            .thresholds
            .iter()
            .filter(|t| t.name != "errors")
            .map(|t| format!("{} {} ({})", t.name, t.measured, t.threshold))
            .collect();
        let shown: Vec<String> = if judged.is_empty() {
            self.latency_ms
                .iter()
                .filter(|(name, _)| name == "p50" || name == "p99")
                .map(|(name, ms)| format!("{name} {}", format_ms(*ms)))
                .collect()
        } else {
            judged
        };
        parts.extend(shown);
        parts.join(", ")
    }
}

fn format_ms(ms: f64) -> String {
    format_duration(Duration::from_secs_f64(ms / 1000.0))
}

#[derive(Default)]
struct Tally {
    /// Per route: sent, errors.
    per_route: Vec<(u64, u64)>,
    latencies: Histogram,
    answered: u64,
    cut_short: u64,
    errors: u64,
    reasons: Vec<ReasonCount>,
    other: u64,
}

impl Tally {
    /// `label` names the route, when there are several, so reasons say where they came from.
    fn add(&mut self, route: usize, label: Option<&str>, attempt: &Attempt) {
        if let Some(counts) = self.per_route.get_mut(route) {
            counts.0 += 1;
            if !attempt.cut_short && attempt.outcome != Outcome::Passed {
                counts.1 += 1;
            }
        }
        if attempt.cut_short {
            self.cut_short += 1;
            return;
        }
        if let Some(latency) = attempt.latency {
            self.answered += 1;
            self.latencies.record(latency);
        }
        if attempt.outcome == Outcome::Passed {
            return;
        }
        self.errors += 1;
        let reason = match label {
            Some(label) => format!("{label}: {}", attempt.outcome.reason()),
            None => attempt.outcome.reason(),
        };
        if let Some(known) = self.reasons.iter_mut().find(|r| r.reason == reason) {
            known.count += 1;
        } else if self.reasons.len() < REASONS_KEPT {
            self.reasons.push(ReasonCount { reason, count: 1 });
        } else {
            self.other += 1;
        }
    }
}

/// One population being sent: where each request goes, and the tally of what came back.
/// Cloned into every task that sends; [`Run::finish`] judges it.
#[derive(Clone)]
pub(crate) struct Run {
    shared: Arc<Shared>,
}

struct Shared {
    routes: Routes,
    tally: Mutex<Tally>,
    sent: AtomicU64,
    started: Instant,
    /// Whether the check has routes (reported per route).
    routed: bool,
}

impl Run {
    pub(crate) fn new(check: &Check) -> Self {
        let routes = Routes::of(check);
        let tally = Tally {
            per_route: vec![(0, 0); routes.targets.len()],
            ..Tally::default()
        };
        Run {
            shared: Arc::new(Shared {
                routes,
                tally: Mutex::new(tally),
                sent: AtomicU64::new(0),
                started: Instant::now(),
                routed: !check.routes.is_empty(),
            }),
        }
    }

    /// The `n`th request's route (its index) and request.
    pub(crate) fn pick(&self, n: u64) -> (usize, Arc<Check>) {
        let (route, check) = self.shared.routes.pick(n);
        (route, Arc::clone(check))
    }

    /// Counts a request as sent (before it is).
    pub(crate) fn sending(&self) {
        self.shared.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds what one request to `route` measured.
    pub(crate) fn record(&self, route: usize, attempt: &Attempt) {
        let label = self.shared.routes.label(route);
        lock(&self.shared.tally).add(route, label, attempt);
    }

    /// Judges the population by `thresholds`: the check's report.
    pub(crate) fn finish(
        self,
        check: &Check,
        sending: Sending,
        thresholds: &Thresholds,
        ending: Ending,
    ) -> CheckReport {
        let shared = &self.shared;
        let elapsed = shared.started.elapsed();
        let tally = std::mem::take(&mut *lock(&shared.tally));
        let sent = shared.sent.load(Ordering::Relaxed);
        let (outcome, mut population) = judge(sending, thresholds, &tally, sent, &ending, elapsed);
        if shared.routed {
            population.routes = shared
                .routes
                .targets
                .iter()
                .zip(&tally.per_route)
                .map(|((route, weight), (sent, errors))| RouteTally {
                    request: route.request_line.clone(),
                    weight: *weight,
                    sent: *sent,
                    errors: *errors,
                })
                .collect();
        }
        CheckReport {
            name: check.name.clone(),
            request: check.request_line.clone(),
            outcome,
            attempts: sent.min(u64::from(u32::MAX)) as u32,
            measured: super::Measured::Population {
                samples: Box::new(population),
            },
            elapsed,
            ready: false,
            captured: Vec::new(),
        }
    }
}

/// Where each sample goes: the check itself, or its routes in proportion to their weights, in
/// a fixed interleaved order (smooth weighted round robin: weights 3 and 1 give a a b a, …).
struct Routes {
    targets: Vec<(Arc<Check>, u32)>,
    schedule: Vec<usize>,
}

impl Routes {
    fn of(check: &Check) -> Self {
        if check.routes.is_empty() {
            return Routes {
                targets: vec![(Arc::new(check.clone()), 1)],
                schedule: vec![0],
            };
        }
        let targets = check.routes.clone();
        let total: i64 = targets.iter().map(|(_, w)| i64::from(*w)).sum();
        let mut current = vec![0i64; targets.len()];
        let mut schedule = Vec::with_capacity(total as usize);
        for _ in 0..total {
            for (c, (_, w)) in current.iter_mut().zip(&targets) {
                *c += i64::from(*w);
            }
            let (best, _) = current
                .iter()
                .enumerate()
                .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
                .expect("at least one route");
            current[best] -= total;
            schedule.push(best);
        }
        Routes { targets, schedule }
    }

    fn label(&self, route: usize) -> Option<&str> {
        (self.targets.len() > 1).then(|| self.targets[route].0.request_line.as_str())
    }

    fn pick(&self, n: u64) -> (usize, &Arc<Check>) {
        let index = self.schedule[(n % self.schedule.len() as u64) as usize];
        (index, &self.targets[index].0)
    }
}

/// The lock's value, also after a panic while it was held (what it holds stays consistent).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn judge(
    sending: Sending,
    thresholds: &Thresholds,
    tally: &Tally,
    sent: u64,
    ending: &Ending,
    elapsed: Duration,
) -> (Outcome, Population) {
    let Ending {
        dropped,
        late,
        stopped_early,
    } = *ending;
    // Requests the deadline cut short measured nothing: they count neither way.
    let judged_count = sent - tally.cut_short.min(sent);
    let error_rate = tally.errors as f64 / judged_count.max(1) as f64;
    let mut judged = vec![Judged {
        name: "errors".into(),
        threshold: thresholds.errors.to_string(),
        measured: format!(
            "{} ({} of {})",
            format_percent(error_rate),
            tally.errors,
            judged_count
        ),
        passed: judged_count > 0 && thresholds.errors.holds(tally.errors, judged_count),
    }];
    let mut latency_ms = Vec::new();
    for statistic in Statistic::ALL {
        if let Some(value) = tally.latencies.percentile(statistic.percent()) {
            latency_ms.push((statistic.name().to_string(), value.as_secs_f64() * 1000.0));
        }
    }
    for (statistic, limit) in &thresholds.latency {
        let measured = tally.latencies.percentile(statistic.percent());
        judged.push(Judged {
            name: statistic.name().into(),
            threshold: limit.to_string(),
            measured: measured.map_or("no answers".into(), format_duration),
            passed: measured.is_some_and(|m| limit.holds(m)),
        });
    }
    let (requested_rate, achieved_rate) = match sending.rate {
        Some(rate) => (
            Some(rate),
            Some(sent as f64 / elapsed.as_secs_f64().max(1e-3)),
        ),
        None => (None, None),
    };
    let population = Population {
        planned: sending.planned,
        sent,
        answered: tally.answered,
        cut_short: tally.cut_short,
        errors: tally.errors,
        error_rate,
        failures: tally.reasons.clone(),
        other_failures: (tally.other > 0).then_some(tally.other),
        latency_ms,
        thresholds: judged,
        requested_rate,
        achieved_rate,
        dropped,
        late,
        routes: Vec::new(),
    };

    let min_samples = thresholds
        .min_samples
        .unwrap_or(match sending.rate {
            // Open model: the arrivals that fit the duration, less a tenth for timing.
            Some(_) => (sending.planned as f64 * 0.9).floor() as u64,
            None => sending.planned,
        })
        .max(1);
    let mut failures: Vec<Failure> = population
        .thresholds
        .iter()
        .filter(|t| !t.passed && judged_count > 0)
        .map(|t| Failure {
            expectation: t.name.clone(),
            expected: t.threshold.clone(),
            measured: if t.name == "errors" {
                with_reasons(&t.measured, &population)
            } else {
                t.measured.clone()
            },
        })
        .collect();
    if dropped > 0 {
        failures.push(Failure {
            expectation: "rate".into(),
            expected: format!(
                "{:.1}/s with at most {} in flight",
                sending.rate.unwrap_or_default(),
                sending.concurrency
            ),
            measured: format!(
                "green could not keep up: {dropped} arrivals found {} requests already in flight (achieved {:.1}/s)",
                sending.concurrency,
                population.achieved_rate.unwrap_or_default()
            ),
        });
    }
    // Failures measured on what was sent stand even if fewer were sent than planned: they can
    // only get worse. Passing needs enough samples.
    let outcome = if !failures.is_empty() {
        Outcome::Failed { failures }
    } else if tally.answered < min_samples {
        let why = if stopped_early {
            "time ran out"
        } else {
            "too few answers"
        };
        Outcome::Inconclusive {
            cause: format!(
                "{why}: {} of {} samples answered, at least {min_samples} needed to judge the thresholds",
                tally.answered, sending.planned
            ),
        }
    } else if late > sent / 10 && late > 0 {
        Outcome::Inconclusive {
            cause: format!(
                "the load generator could not keep up: {late} of {sent} arrivals were sent late (achieved {:.1}/s of {:.1}/s) while green had room; give the function more CPU or ask for a lower rate",
                population.achieved_rate.unwrap_or_default(),
                sending.rate.unwrap_or_default()
            ),
        }
    } else {
        Outcome::Passed
    };
    (outcome, population)
}

fn with_reasons(measured: &str, population: &Population) -> String {
    if population.failures.is_empty() {
        return measured.to_string();
    }
    let reasons: Vec<String> = population
        .failures
        .iter()
        .map(|r| format!("{} ({}×)", r.reason, r.count))
        .collect();
    let other = population
        .other_failures
        .map(|n| format!("; {n} more with other reasons"))
        .unwrap_or_default();
    format!("{measured}: {}{other}", reasons.join("; "))
}

/// `thresholds:` as written.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ThresholdsDocument {
    #[serde(default)]
    pub errors: Option<String>,
    #[serde(default)]
    pub p50: Option<String>,
    #[serde(default)]
    pub p90: Option<String>,
    #[serde(default)]
    pub p95: Option<String>,
    #[serde(default)]
    pub p99: Option<String>,
    #[serde(default)]
    pub max: Option<String>,
    #[serde(default)]
    pub min_samples: Option<u64>,
}

/// A population's `thresholds:`; `planned` requests bound `min_samples`.
pub(crate) fn validate_thresholds(
    value: Option<serde_json::Value>,
    at: &str,
    planned: u64,
    p: &mut Problems,
) -> Thresholds {
    let Some(doc) = value.and_then(|v| p.read::<ThresholdsDocument>(v, at)) else {
        return Thresholds::default();
    };
    let mut thresholds = Thresholds::default();
    if let Some(text) = &doc.errors {
        match RateLimit::parse(text) {
            Ok(limit) => thresholds.errors = limit,
            Err(message) => p.error(format!("{at}.errors"), message),
        }
    }
    for (statistic, text) in [
        (Statistic::P50, &doc.p50),
        (Statistic::P90, &doc.p90),
        (Statistic::P95, &doc.p95),
        (Statistic::P99, &doc.p99),
        (Statistic::Max, &doc.max),
    ] {
        if let Some(text) = text {
            match LatencyLimit::parse(text) {
                Ok(limit) => thresholds.latency.push((statistic, limit)),
                Err(message) => p.error(format!("{at}.{}", statistic.name()), message),
            }
        }
    }
    if let Some(min) = doc.min_samples {
        if min == 0 || min > planned {
            p.error(
                format!("{at}.min_samples"),
                format!("must be between 1 and the {planned} samples planned, found {min}"),
            );
        } else {
            thresholds.min_samples = Some(min);
        }
    }
    thresholds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::threshold::RateLimit;

    fn answered(outcome: Outcome, ms: u64) -> Attempt {
        Attempt {
            outcome,
            status: Some(200),
            latency: Some(Duration::from_millis(ms)),
            cut_short: false,
            captured: Vec::new(),
            kept: None,
        }
    }

    fn failed(reason: &str) -> Outcome {
        Outcome::Failed {
            failures: vec![Failure {
                expectation: "status".into(),
                expected: "200".into(),
                measured: reason.into(),
            }],
        }
    }

    fn tally(passed: u64, failed_with: &[&str]) -> Tally {
        let mut tally = Tally {
            per_route: vec![(0, 0)],
            ..Tally::default()
        };
        for _ in 0..passed {
            tally.add(0, None, &answered(Outcome::Passed, 10));
        }
        for reason in failed_with {
            tally.add(0, None, &answered(failed(reason), 10));
        }
        tally
    }

    fn closed(planned: u64) -> Sending {
        Sending {
            planned,
            concurrency: 1,
            rate: None,
        }
    }

    fn strict() -> Thresholds {
        Thresholds {
            errors: RateLimit::parse("< 1%").unwrap(),
            ..Thresholds::default()
        }
    }

    #[test]
    fn an_error_rate_over_its_threshold_fails_with_its_reasons() {
        let tally = tally(95, &["500", "500", "503", "504", "502"]);
        let (outcome, population) = judge(
            closed(100),
            &strict(),
            &tally,
            100,
            &Ending::default(),
            Duration::from_secs(1),
        );
        assert_eq!(population.errors, 5);
        let reason = outcome.reason();
        assert!(
            reason.starts_with(
                "errors: expected < 1%, got 5% (5 of 100): status: expected 200, got 500 (2×); "
            ),
            "{reason}"
        );
        assert!(reason.ends_with("; 1 more with other reasons"), "{reason}");
    }

    #[test]
    fn too_few_answers_is_inconclusive_but_failures_stand() {
        let (outcome, _) = judge(
            closed(100),
            &strict(),
            &tally(40, &[]),
            40,
            &Ending {
                stopped_early: true,
                ..Ending::default()
            },
            Duration::from_secs(1),
        );
        assert_eq!(
            outcome,
            Outcome::Inconclusive {
                cause: "time ran out: 40 of 100 samples answered, at least 100 needed to judge the thresholds".into()
            }
        );
        let (outcome, _) = judge(
            closed(100),
            &strict(),
            &tally(30, &["500", "500"]),
            32,
            &Ending::default(),
            Duration::from_secs(1),
        );
        assert_eq!(
            outcome.label(),
            "failed",
            "fewer samples cannot make it better"
        );
    }

    #[test]
    fn a_load_run_fails_when_green_cannot_keep_up_and_is_inconclusive_when_the_generator_cannot() {
        let sending = Sending {
            planned: 100,
            concurrency: 4,
            rate: Some(100.0),
        };
        let ending = Ending {
            dropped: 10,
            ..Ending::default()
        };
        let (outcome, _) = judge(
            sending,
            &strict(),
            &tally(90, &[]),
            90,
            &ending,
            Duration::from_secs(1),
        );
        assert!(
            outcome
                .reason()
                .contains("green could not keep up: 10 arrivals"),
            "{}",
            outcome.reason()
        );
        let ending = Ending {
            late: 20,
            ..Ending::default()
        };
        let (outcome, _) = judge(
            sending,
            &strict(),
            &tally(100, &[]),
            100,
            &ending,
            Duration::from_secs(1),
        );
        assert_eq!(outcome.label(), "inconclusive");
        assert!(outcome
            .reason()
            .starts_with("the load generator could not keep up: 20 of 100"));
    }
}
