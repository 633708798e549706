//! Probe kind `load` (open model): `samples: {rate: 50/s, duration: 30s, concurrency: 16}`.
//! Requests arrive on a fixed schedule whatever green does, at most `concurrency` in flight,
//! spread over the check's weighted `routes` when it has them. An arrival that finds the
//! ceiling reached is dropped and counted: green could not keep up, a failure. Arrivals sent
//! late with room to spare mean the load generator could not keep up: the result is
//! inconclusive rather than wrong. The population is judged by the same thresholds as samples.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::population::{lock, Ending, Run, Sending, MAX_SAMPLES, MAX_SAMPLE_CONCURRENCY};
use super::threshold::Thresholds;
use super::SamplesDocument;
use crate::check::{attempt_on, MIN_ATTEMPT};
use crate::deadline::Deadline;
use crate::lane::Lane;
use crate::plan::problems::Problems;
use crate::plan::Check;
use crate::verdict::CheckReport;

pub const MAX_RATE: f64 = 20_000.0;
/// The concurrency ceiling when the plan names none.
const DEFAULT_CEILING: usize = 16;
/// An arrival sent later than this after its time counts as late (timers on a busy machine run
/// a few milliseconds behind; that is not the generator failing).
const LATE: Duration = Duration::from_millis(20);

/// Arrivals at `rate` per second for `duration`, at most `ceiling` in flight.
#[derive(Debug, Clone)]
pub struct Load {
    pub rate: f64,
    pub duration: Duration,
    pub ceiling: usize,
    /// Arrivals planned: rate × duration.
    pub arrivals: u64,
    pub thresholds: Thresholds,
}

impl Load {
    pub fn describe(&self) -> String {
        format!(
            "{}/s for {} ({} arrivals), at most {} in flight",
            self.rate,
            crate::duration::format_duration(self.duration),
            self.arrivals,
            self.ceiling
        )
    }
}

/// The open-model fields of `samples:` at `at` (a document with `rate` or `duration`).
pub(crate) fn validate(doc: SamplesDocument, at: &str, p: &mut Problems) -> Option<Load> {
    if doc.count.is_some() {
        p.error(
            at,
            "either `count` (requests one after another, at a concurrency) or `rate` with `duration` (arrivals on a schedule), not both",
        );
        return None;
    }
    let (rate, duration) = match (&doc.rate, doc.duration) {
        (Some(rate), Some(duration)) => (rate, duration),
        (Some(_), None) => {
            p.error(
                format!("{at}.duration"),
                "a rate needs a duration (for example `duration: 30s`)",
            );
            return None;
        }
        (None, _) => {
            p.error(
                format!("{at}.rate"),
                "a duration needs a rate (for example `rate: 50/s`)",
            );
            return None;
        }
    };
    let rate = match parse_rate(rate) {
        Ok(rate) if rate > 0.0 && rate <= MAX_RATE => rate,
        Ok(rate) => {
            p.error(
                format!("{at}.rate"),
                format!("must be above 0/s and at most {MAX_RATE}/s, found {rate}/s"),
            );
            return None;
        }
        Err(message) => {
            p.error(format!("{at}.rate"), message);
            return None;
        }
    };
    if duration.is_zero() {
        p.error(format!("{at}.duration"), "must be longer than 0s");
        return None;
    }
    let ceiling = doc.concurrency.unwrap_or(DEFAULT_CEILING);
    if !(1..=MAX_SAMPLE_CONCURRENCY).contains(&ceiling) {
        p.error(
            format!("{at}.concurrency"),
            format!("must be between 1 and {MAX_SAMPLE_CONCURRENCY}, found {ceiling}"),
        );
        return None;
    }
    let arrivals = (rate * duration.as_secs_f64()).ceil();
    if !(1.0..=MAX_SAMPLES as f64).contains(&arrivals) {
        p.error(
            at,
            format!("between 1 and {MAX_SAMPLES} samples, found {arrivals}"),
        );
        return None;
    }
    Some(Load {
        rate,
        duration,
        ceiling,
        arrivals: arrivals as u64,
        thresholds: Thresholds::default(),
    })
}

/// `50`, `50/s`, `3000/m`.
fn parse_rate(value: &Value) -> Result<f64, String> {
    match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is not a rate")),
        Value::String(text) => {
            let t = text.trim();
            let (number, per) = match t.split_once('/') {
                Some((n, "s")) => (n, 1.0),
                Some((n, "m")) => (n, 60.0),
                None => (t, 1.0),
                Some(_) => {
                    return Err(format!(
                        "\"{text}\" is not a rate; write it as 50/s or 3000/m"
                    ))
                }
            };
            number
                .trim()
                .parse::<f64>()
                .map(|n| n / per)
                .map_err(|_| format!("\"{text}\" is not a rate; write it as 50/s or 3000/m"))
        }
        other => Err(format!(
            "expected a rate such as 50/s, found {}",
            crate::plan::document::kind_of(other)
        )),
    }
}

/// Sends the arrivals on their schedule within `deadline` and judges the population.
pub(crate) async fn run(
    client: &reqwest::Client,
    lanes: bool,
    check: &Check,
    load: &Load,
    deadline: Deadline,
) -> CheckReport {
    let run = Run::new(check);
    let permits = Arc::new(tokio::sync::Semaphore::new(load.ceiling.max(1)));
    let interval = Duration::from_secs_f64(1.0 / load.rate);
    let start = Instant::now();
    let mut in_flight = tokio::task::JoinSet::new();
    // Connections of their own for the requests in flight (see `crate::lane`): an arrival takes
    // a free one and gives it back, so there are never more than the ceiling.
    let free: Arc<Mutex<Vec<Lane>>> = Arc::default();
    let mut ending = Ending::default();
    for i in 0..load.arrivals {
        let due = start + interval.mul_f64(i as f64);
        if due > start + load.duration {
            break;
        }
        if deadline.instant() < due + MIN_ATTEMPT {
            ending.stopped_early = true;
            break;
        }
        tokio::time::sleep_until(due).await;
        // Reap what ended, so the set stays as small as what is in flight.
        while in_flight.try_join_next().is_some() {}
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            ending.dropped += 1;
            continue;
        };
        if Instant::now().saturating_duration_since(due) > LATE {
            ending.late += 1;
        }
        run.sending();
        let (route, request) = run.pick(i);
        let (client, run, free) = (client.clone(), run.clone(), free.clone());
        in_flight.spawn(async move {
            let mut lane = lanes.then(|| lock(&free).pop().unwrap_or_default());
            let measured = attempt_on(lane.as_mut(), &client, &request, deadline).await;
            if let Some(lane) = lane {
                lock(&free).push(lane);
            }
            run.record(route, &measured);
            drop(permit);
        });
    }
    // The last requests end by their own time limits, which end at the deadline at the latest.
    while in_flight.join_next().await.is_some() {}
    let sending = Sending {
        planned: load.arrivals,
        concurrency: load.ceiling,
        rate: Some(load.rate),
    };
    run.finish(check, sending, &load.thresholds, ending)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(value: serde_json::Value) -> Result<Load, Vec<String>> {
        let mut p = Problems::default();
        let doc: SamplesDocument = p.read(value, "checks[0].samples").unwrap_or_default();
        validate(doc, "checks[0].samples", &mut p)
            .filter(|_| p.errors.is_empty())
            .ok_or_else(|| p.errors.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn a_rate_and_a_duration_plan_the_arrivals() {
        let load = read(serde_json::json!({"rate": "3000/m", "duration": "10s"})).unwrap();
        assert_eq!((load.rate, load.arrivals, load.ceiling), (50.0, 500, 16));
        assert_eq!(
            load.describe(),
            "50/s for 10s (500 arrivals), at most 16 in flight"
        );
        let numeric = read(serde_json::json!({"rate": 20, "duration": "1s", "concurrency": 4}));
        assert_eq!(numeric.unwrap().ceiling, 4);
    }

    #[test]
    fn incomplete_or_mixed_models_say_what_is_missing() {
        assert_eq!(
            read(serde_json::json!({"rate": "50/s"})).unwrap_err(),
            ["checks[0].samples.duration: a rate needs a duration (for example `duration: 30s`)"]
        );
        assert_eq!(
            read(serde_json::json!({"duration": "5s"})).unwrap_err(),
            ["checks[0].samples.rate: a duration needs a rate (for example `rate: 50/s`)"]
        );
        assert!(
            read(serde_json::json!({"count": 5, "rate": 1, "duration": "5s"})).unwrap_err()[0]
                .contains("not both")
        );
        assert_eq!(
            read(serde_json::json!({"rate": "fast", "duration": "5s"})).unwrap_err(),
            ["checks[0].samples.rate: \"fast\" is not a rate; write it as 50/s or 3000/m"]
        );
        assert!(
            read(serde_json::json!({"rate": "1e9/s", "duration": "5s"})).unwrap_err()[0]
                .contains("at most 20000/s")
        );
        assert!(
            read(serde_json::json!({"rate": 10000, "duration": "1h"})).unwrap_err()[0]
                .contains("between 1 and 1000000 samples")
        );
    }
}
