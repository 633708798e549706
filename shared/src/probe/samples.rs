//! Probe kind `samples` (closed model): `samples: N` or `samples: {count: N, concurrency: C}`.
//! `count` requests, at most `concurrency` in flight, each sent when one ends; every answer is
//! judged by the check's expectations, the population by its `thresholds`. Passing needs every
//! planned sample answered, unless `min_samples` says fewer will do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::population::{Ending, Run, Sending, MAX_SAMPLES, MAX_SAMPLE_CONCURRENCY};
use super::threshold::Thresholds;
use super::SamplesDocument;
use crate::check::{attempt_on, MIN_ATTEMPT};
use crate::deadline::Deadline;
use crate::lane::Lane;
use crate::plan::problems::Problems;
use crate::plan::Check;
use crate::verdict::CheckReport;

/// `count` requests, `concurrency` at a time.
#[derive(Debug, Clone)]
pub struct Samples {
    pub count: u64,
    pub concurrency: usize,
    pub thresholds: Thresholds,
}

impl Samples {
    pub fn describe(&self) -> String {
        match self.concurrency {
            1 => format!("{} samples, one after another", self.count),
            n => format!("{} samples, {n} at a time", self.count),
        }
    }
}

/// The closed-model fields of `samples:` at `at` (a document without `rate` or `duration`).
pub(crate) fn validate(doc: SamplesDocument, at: &str, p: &mut Problems) -> Option<Samples> {
    let concurrency = doc.concurrency.unwrap_or(1);
    if !(1..=MAX_SAMPLE_CONCURRENCY).contains(&concurrency) {
        p.error(
            format!("{at}.concurrency"),
            format!("must be between 1 and {MAX_SAMPLE_CONCURRENCY}, found {concurrency}"),
        );
        return None;
    }
    let Some(count) = doc.count else {
        p.error(
            at,
            "say how many: a number (`samples: 200`), `count:`, or `rate:` with `duration:`",
        );
        return None;
    };
    if !(1..=MAX_SAMPLES).contains(&count) {
        p.error(
            at,
            format!("between 1 and {MAX_SAMPLES} samples, found {count}"),
        );
        return None;
    }
    Some(Samples {
        count,
        concurrency,
        thresholds: Thresholds::default(),
    })
}

/// Sends the samples within `deadline` and judges them.
pub(crate) async fn run(
    client: &reqwest::Client,
    lanes: bool,
    check: &Check,
    samples: &Samples,
    deadline: Deadline,
) -> CheckReport {
    let run = Run::new(check);
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    // Each worker is a task of its own, so the workers spread over the runtime's threads.
    for _ in 0..samples.concurrency.max(1) {
        let (client, run, next) = (client.clone(), run.clone(), next.clone());
        let count = samples.count;
        workers.spawn(async move {
            // The worker's own connection (see `crate::lane`).
            let mut lane = lanes.then(Lane::default);
            loop {
                if deadline.remaining() < MIN_ATTEMPT {
                    return true;
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return false;
                }
                run.sending();
                let (route, request) = run.pick(n);
                let measured = attempt_on(lane.as_mut(), &client, &request, deadline).await;
                run.record(route, &measured);
            }
        });
    }
    let mut stopped_early = false;
    while let Some(ended) = workers.join_next().await {
        // A worker that panicked stopped early; the others carry on.
        stopped_early |= ended.unwrap_or(true);
    }
    let sending = Sending {
        planned: samples.count,
        concurrency: samples.concurrency,
        rate: None,
    };
    run.finish(
        check,
        sending,
        &samples.thresholds,
        Ending {
            stopped_early,
            ..Ending::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(value: serde_json::Value) -> Result<Samples, Vec<String>> {
        let mut p = Problems::default();
        let doc = match value {
            serde_json::Value::Number(n) => SamplesDocument {
                count: n.as_u64(),
                ..Default::default()
            },
            other => p.read(other, "checks[0].samples").unwrap_or_default(),
        };
        validate(doc, "checks[0].samples", &mut p)
            .filter(|_| p.errors.is_empty())
            .ok_or_else(|| p.errors.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn a_number_or_a_count_with_a_concurrency() {
        let one_by_one = read(serde_json::json!(200)).unwrap();
        assert_eq!((one_by_one.count, one_by_one.concurrency), (200, 1));
        assert_eq!(one_by_one.describe(), "200 samples, one after another");
        let parallel = read(serde_json::json!({"count": 50, "concurrency": 8})).unwrap();
        assert_eq!(parallel.describe(), "50 samples, 8 at a time");
    }

    #[test]
    fn counts_and_concurrency_out_of_range_are_named() {
        assert_eq!(
            read(serde_json::json!(0)).unwrap_err(),
            ["checks[0].samples: between 1 and 1000000 samples, found 0"]
        );
        assert_eq!(
            read(serde_json::json!({"count": 10, "concurrency": 1000})).unwrap_err(),
            ["checks[0].samples.concurrency: must be between 1 and 256, found 1000"]
        );
        assert!(
            read(serde_json::json!({"concurrency": 4})).unwrap_err()[0].contains("say how many")
        );
        assert!(
            read(serde_json::json!({"cuont": 4})).unwrap_err()[0].contains("did you mean `count`?")
        );
    }
}
