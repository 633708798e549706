//! Sampled checks: one request is an anecdote, a population has an error rate and percentiles.
//! A check with `samples:` sends many requests, judges each by the check's expectations, and
//! judges the population by its thresholds (see [`threshold`]).
//!
//! Two ways to send them:
//! - closed: `count` requests, at most `concurrency` in flight, each sent when one ends;
//! - open: requests arrive at a `rate` for a `duration` whatever green does, at most
//!   `concurrency` in flight. An arrival that finds the ceiling reached is dropped and counted:
//!   green could not keep up. Arrivals sent late with room to spare mean the load generator
//!   could not keep up, and the result is inconclusive rather than wrong.
//!
//! Memory stays flat however many requests are sent: latencies go into a fixed-size
//! [`histogram::Histogram`], failure reasons into a few counters.

pub mod histogram;
pub mod threshold;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::check::{exchange, Attempt, MIN_ATTEMPT};
use crate::deadline::Deadline;
use crate::duration::format_duration;
use crate::expect::Failure;
use crate::plan::Check;
use crate::verdict::Outcome;
use histogram::Histogram;
use threshold::{format_percent, Judged, Statistic, Thresholds};

/// How a sampled check sends its requests.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// Requests to send (closed), or arrivals planned (open: rate × duration).
    pub count: u64,
    pub concurrency: usize,
    /// Open model: arrivals per second, for `duration`.
    pub rate: Option<f64>,
    pub duration: Option<Duration>,
}

pub const MAX_SAMPLES: u64 = 1_000_000;
pub const MAX_SAMPLE_CONCURRENCY: usize = 256;
pub const MAX_RATE: f64 = 20_000.0;
/// Distinct failure reasons kept with their counts; the rest are counted together.
const REASONS_KEPT: usize = 3;
/// An open-model arrival sent later than this after its time counts as late (timers on a busy
/// machine run a few milliseconds behind; that is not the generator failing).
const LATE: Duration = Duration::from_millis(20);

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

/// Sends `check`'s samples within `deadline` and judges them; the outcome and what was
/// measured.
pub async fn run_samples(
    client: &reqwest::Client,
    check: &Check,
    sampling: &Sampling,
    thresholds: &Thresholds,
    deadline: Deadline,
) -> (Outcome, Population) {
    let routes = Arc::new(Routes::of(check));
    let tally = Arc::new(Mutex::new(Tally {
        per_route: vec![(0, 0); routes.targets.len()],
        ..Tally::default()
    }));
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut dropped = 0;
    let mut late = 0;
    let stopped_early = match (sampling.rate, sampling.duration) {
        (Some(rate), Some(duration)) => {
            let run = open(
                client, &routes, sampling, rate, duration, deadline, &tally, &sent,
            )
            .await;
            dropped = run.dropped;
            late = run.late;
            run.stopped_early
        }
        _ => closed(client, &routes, sampling, deadline, &tally, &sent).await,
    };
    let elapsed = started.elapsed();
    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
    let sent = sent.load(Ordering::Relaxed);
    let (outcome, mut population) = judge(
        sampling,
        thresholds,
        &tally,
        sent,
        dropped,
        late,
        stopped_early,
        elapsed,
    );
    if !check.routes.is_empty() {
        population.routes = routes
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
    (outcome, population)
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

/// Closed model: `concurrency` workers, each sending the next sample when its last one ends.
async fn closed(
    client: &reqwest::Client,
    routes: &Arc<Routes>,
    sampling: &Sampling,
    deadline: Deadline,
    tally: &Arc<Mutex<Tally>>,
    sent: &Arc<AtomicU64>,
) -> bool {
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    // Each worker is a task of its own, so the workers spread over the runtime's threads.
    for _ in 0..sampling.concurrency.max(1) {
        let (client, routes, tally, sent, next) = (
            client.clone(),
            routes.clone(),
            tally.clone(),
            sent.clone(),
            next.clone(),
        );
        let count = sampling.count;
        workers.spawn(async move {
            loop {
                if deadline.remaining() < MIN_ATTEMPT {
                    return true;
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return false;
                }
                sent.fetch_add(1, Ordering::Relaxed);
                let (route, check) = routes.pick(n);
                let attempt = exchange(&client, check, deadline, 1).await;
                lock(&tally).add(route, routes.label(route), &attempt);
            }
        });
    }
    let mut stopped_early = false;
    while let Some(ended) = workers.join_next().await {
        // A worker that panicked stopped early; the others carry on.
        stopped_early |= ended.unwrap_or(true);
    }
    stopped_early
}

struct OpenRun {
    dropped: u64,
    late: u64,
    stopped_early: bool,
}

/// Open model: arrivals on a fixed schedule, whatever green does, at most `concurrency` in
/// flight.
#[allow(clippy::too_many_arguments)]
async fn open(
    client: &reqwest::Client,
    routes: &Routes,
    sampling: &Sampling,
    rate: f64,
    duration: Duration,
    deadline: Deadline,
    tally: &Arc<Mutex<Tally>>,
    sent: &Arc<AtomicU64>,
) -> OpenRun {
    let permits = Arc::new(tokio::sync::Semaphore::new(sampling.concurrency.max(1)));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut in_flight = tokio::task::JoinSet::new();
    let mut run = OpenRun {
        dropped: 0,
        late: 0,
        stopped_early: false,
    };
    for i in 0..sampling.count {
        let due = start + interval.mul_f64(i as f64);
        if due > start + duration {
            break;
        }
        if deadline.instant() < due + MIN_ATTEMPT {
            run.stopped_early = true;
            break;
        }
        tokio::time::sleep_until(due).await;
        // Reap what ended, so the set stays as small as what is in flight.
        while in_flight.try_join_next().is_some() {}
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            run.dropped += 1;
            continue;
        };
        if Instant::now().saturating_duration_since(due) > LATE {
            run.late += 1;
        }
        sent.fetch_add(1, Ordering::Relaxed);
        let (route, check) = routes.pick(i);
        let label = routes.label(route).map(str::to_string);
        let (client, check, tally) = (client.clone(), Arc::clone(check), tally.clone());
        in_flight.spawn(async move {
            let attempt = exchange(&client, &check, deadline, 1).await;
            lock(&tally).add(route, label.as_deref(), &attempt);
            drop(permit);
        });
    }
    // The last requests end by their own time limits, which end at the deadline at the latest.
    while in_flight.join_next().await.is_some() {}
    run
}

fn lock(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(|e| e.into_inner())
}

#[allow(clippy::too_many_arguments)]
fn judge(
    sampling: &Sampling,
    thresholds: &Thresholds,
    tally: &Tally,
    sent: u64,
    dropped: u64,
    late: u64,
    stopped_early: bool,
    elapsed: Duration,
) -> (Outcome, Population) {
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
    let (requested_rate, achieved_rate) = match sampling.rate {
        Some(rate) => (
            Some(rate),
            Some(sent as f64 / elapsed.as_secs_f64().max(1e-3)),
        ),
        None => (None, None),
    };
    let population = Population {
        planned: sampling.count,
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
        .unwrap_or(match sampling.rate {
            // Open model: the arrivals that fit the duration, less a tenth for timing.
            Some(_) => (sampling.count as f64 * 0.9).floor() as u64,
            None => sampling.count,
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
                sampling.rate.unwrap_or_default(),
                sampling.concurrency
            ),
            measured: format!(
                "green could not keep up: {dropped} arrivals found {} requests already in flight (achieved {:.1}/s)",
                sampling.concurrency,
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
                tally.answered, sampling.count
            ),
        }
    } else if late > sent / 10 && late > 0 {
        Outcome::Inconclusive {
            cause: format!(
                "the load generator could not keep up: {late} of {sent} arrivals were sent late (achieved {:.1}/s of {:.1}/s) while green had room; give the function more CPU or ask for a lower rate",
                population.achieved_rate.unwrap_or_default(),
                sampling.rate.unwrap_or_default()
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
