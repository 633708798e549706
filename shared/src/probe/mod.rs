//! The probe seam. A check is what it asks green (method, path or weighted routes, headers,
//! body) and what a good answer looks like (`expect`); its probe is how it asks and what it
//! measures. Each kind is one file that owns its plan fields, their validation, its run and its
//! judgment, with its tests beside it:
//!
//! - [`exchange`]: one request, retried as the plan allows (`retries`, `retry_on`, `flaky`,
//!   `capture`); measures the last answer and every earlier attempt;
//! - [`samples`]: `samples: N` requests, one after another or N at a time (closed model),
//!   judged as a population by `thresholds`;
//! - [`load`]: arrivals at a `rate` for a `duration` (open model) under a concurrency ceiling,
//!   judged by the same thresholds, and by whether green (or the generator) kept up.
//!
//! - [`compare`]: the same requests to blue and to green, judged side by side (latency shift,
//!   error rates, response diffs with noise learnt from blue);
//! - [`metric`]: no request to green at all: CloudWatch's datapoints over a window, each judged
//!   against a threshold, with missing data never a pass by accident.
//!
//! [`population`] is what samples and load share: the tally, the route schedule, the thresholds and
//! the judgment of a population. Data flows one way: plan → probe → measurements
//! ([`Measured`]) → verdict.

pub mod compare;
pub mod exchange;
pub mod histogram;
pub mod load;
pub mod metric;
pub mod population;
pub mod samples;
pub mod target_health;
pub mod threshold;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::plan::problems::Problems;
use crate::plan::RetryOn;
use crate::verdict::AttemptRecord;
pub use population::Population;

/// How a check asks green, and how it judges what it measured.
#[derive(Debug, Clone)]
pub enum Probe {
    Exchange(exchange::Exchange),
    Samples(samples::Samples),
    Load(load::Load),
    Compare(compare::Compare),
    Metric(metric::Metric),
    TargetHealth(target_health::TargetHealth),
}

impl Probe {
    /// One sentence for `greenlight plan check`: how the check sends its requests.
    pub fn describe(&self) -> String {
        match self {
            Probe::Exchange(e) => e.describe(),
            Probe::Samples(s) => s.describe(),
            Probe::Load(l) => l.describe(),
            Probe::Compare(c) => c.describe(),
            Probe::Metric(m) => m.describe(),
            Probe::TargetHealth(t) => t.describe(),
        }
    }

    /// A probe that sends many requests and judges them together (samples, a load run, a
    /// comparison), as opposed to one exchange.
    pub fn sends_many(&self) -> bool {
        !matches!(
            self,
            Probe::Exchange(_) | Probe::Metric(_) | Probe::TargetHealth(_)
        )
    }

    /// The probe asks green (or blue) over HTTP; a metric check asks only CloudWatch, a target
    /// health check only the load balancer.
    pub fn asks_over_http(&self) -> bool {
        !matches!(self, Probe::Metric(_) | Probe::TargetHealth(_))
    }

    /// The probe needs green's target group, found from the deployment.
    pub fn uses_green(&self) -> bool {
        match self {
            Probe::Metric(m) => m.uses_green_target_group(),
            Probe::TargetHealth(t) => t.uses_green(),
            _ => false,
        }
    }

    /// What the check captures for later checks (only a single exchange captures).
    pub fn captures(&self) -> &[crate::plan::capture::Capture] {
        match self {
            Probe::Exchange(e) => &e.captures,
            _ => &[],
        }
    }
}

/// What a probe measured, carried by the check's report.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Measured {
    /// One exchange: the last attempt's status and latency, and the attempts before it.
    Exchange {
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(
            rename = "latency_ms",
            serialize_with = "crate::verdict::millis_opt",
            skip_serializing_if = "Option::is_none"
        )]
        latency: Option<Duration>,
        /// The attempts before the last, oldest first: what retrying went through.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        earlier: Vec<AttemptRecord>,
    },
    /// Samples or a load run: counts, percentiles, each threshold next to its measurement.
    Population { samples: Box<Population> },
    /// Green against blue: both populations, the latency shift, error rates, response diffs.
    Comparison {
        comparison: Box<compare::Comparison>,
    },
    /// CloudWatch's datapoints over the window judged.
    Metric {
        metric: Box<metric::MetricMeasurement>,
    },
    /// The load balancer's view of a target group (and of the production listener).
    TargetHealth {
        target_health: Box<target_health::TargetHealthMeasurement>,
    },
}

impl Measured {
    /// One exchange's last status.
    pub fn status(&self) -> Option<u16> {
        match self {
            Measured::Exchange { status, .. } => *status,
            _ => None,
        }
    }

    /// A population's measurements.
    pub fn population(&self) -> Option<&Population> {
        match self {
            Measured::Population { samples } => Some(samples),
            _ => None,
        }
    }

    /// One exchange's attempts before the last, oldest first.
    pub fn earlier(&self) -> &[AttemptRecord] {
        match self {
            Measured::Exchange { earlier, .. } => earlier,
            _ => &[],
        }
    }

    /// One exchange's last latency.
    pub fn latency(&self) -> Option<Duration> {
        match self {
            Measured::Exchange { latency, .. } => *latency,
            _ => None,
        }
    }

    /// What was measured, in a few words for a report line: `200 in 12ms, 1 attempt`, or a
    /// population's counts and percentiles. `attempts`: requests sent.
    pub fn summary(&self, attempts: u32, passed: bool) -> String {
        match self {
            Measured::Population { samples } => samples.line(),
            Measured::Comparison { comparison } => comparison.line(),
            Measured::Metric { metric } => metric.line(),
            Measured::TargetHealth { target_health } => target_health.line(),
            Measured::Exchange {
                status,
                latency,
                earlier,
            } => {
                let answer = match (status, latency) {
                    (Some(s), Some(l)) => {
                        format!("{s} in {}", crate::duration::format_duration(*l))
                    }
                    _ => "no answer".to_string(),
                };
                if passed && !earlier.is_empty() {
                    format!(
                        "{answer}, passed at attempt {attempts} after {} that did not",
                        earlier.len()
                    )
                } else if attempts == 1 {
                    format!("{answer}, 1 attempt")
                } else {
                    format!("{answer}, {attempts} attempts")
                }
            }
        }
    }

    /// Nothing measured (the check could not run).
    pub fn nothing() -> Self {
        Measured::Exchange {
            status: None,
            latency: None,
            earlier: Vec::new(),
        }
    }
}

/// A check's probe fields as written: each kind takes its own and says which do not belong.
pub(crate) struct Fields {
    pub retries: Option<u32>,
    pub retry_delay: Option<Duration>,
    pub retry_on: Option<Vec<Value>>,
    pub flaky: Option<String>,
    pub capture: Option<BTreeMap<String, Value>>,
    pub samples: Option<Value>,
    pub thresholds: Option<Value>,
    pub compare: Option<Value>,
    pub metric: Option<Value>,
    pub target_health: Option<Value>,
}

/// Why a field of a request does not belong in a metric or target_health check.
pub(crate) const NOT_A_REQUEST: &str = "a metric or target_health check sends no request to green: it asks CloudWatch or the load balancer; remove this field, or make it a check of its own";

/// What the plan's `defaults` give every check's probe.
#[derive(Debug, Clone, Default)]
pub(crate) struct Defaults {
    pub retries: Option<u32>,
    pub retry_delay: Option<Duration>,
    pub retry_on: Option<RetryOn>,
}

/// `samples: 200`, or a map (closed model: `count`, `concurrency`; open: `rate`, `duration`,
/// `concurrency`).
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct SamplesDocument {
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Arrivals per second: `50` or `"50/s"`.
    #[serde(default)]
    pub rate: Option<Value>,
    #[serde(default, deserialize_with = "crate::duration::serde_text::deserialize")]
    pub duration: Option<Duration>,
}

/// The probe a check's fields describe: `samples:` with a `rate` is a load run, `samples:`
/// without one are samples, and a check without `samples:` is one exchange. `at` is the check's
/// field path; `has_routes`: the check spreads its requests over `routes`.
pub(crate) fn validate(
    fields: Fields,
    at: &str,
    defaults: &Defaults,
    has_routes: bool,
    p: &mut Problems,
) -> Option<Probe> {
    let Fields {
        retries,
        retry_delay,
        retry_on,
        flaky,
        capture,
        samples,
        thresholds,
        compare,
        metric,
        target_health,
    } = fields;
    if metric.is_some() || target_health.is_some() {
        // A metric or target_health check asks once: nothing of a request's probe applies.
        p.refuse(
            at,
            &[
                ("samples", samples.is_some()),
                ("thresholds", thresholds.is_some()),
                ("compare", compare.is_some()),
                ("retries", retries.is_some()),
                ("retry_delay", retry_delay.is_some()),
                ("retry_on", retry_on.is_some()),
                ("flaky", flaky.is_some()),
                ("capture", capture.is_some()),
            ],
            NOT_A_REQUEST,
        );
        return match (metric, target_health) {
            (Some(_), Some(_)) => {
                p.error(
                    format!("{at}.target_health"),
                    "a check is either a metric check or a target_health check: make two checks",
                );
                None
            }
            (Some(metric), None) => {
                metric::validate(metric, &format!("{at}.metric"), p).map(Probe::Metric)
            }
            (None, Some(health)) => {
                target_health::validate(health, &format!("{at}.target_health"), p)
                    .map(Probe::TargetHealth)
            }
            (None, None) => None,
        };
    }
    if let Some(compare) = compare {
        // A comparison sends its pairs once each: no retries, no thresholds of its own, and
        // nothing captured.
        p.refuse(
            at,
            &[
            ("samples", samples.is_some()),
            ("thresholds", thresholds.is_some()),
            ("retries", retries.is_some()),
            ("retry_delay", retry_delay.is_some()),
            ("retry_on", retry_on.is_some()),
            ("flaky", flaky.is_some()),
            ("capture", capture.is_some()),
            ],
            "a compare check judges blue and green side by side by its own rules (compare.samples, compare.latency, compare.errors, compare.diff); remove this field",
        );
        return compare::validate(compare, &format!("{at}.compare"), p).map(Probe::Compare);
    }
    let Some(samples) = samples else {
        if has_routes {
            p.error(
                format!("{at}.routes"),
                "routes (and paths) spread a sampled or compared check's requests; add `samples:` (for example `samples: {rate: 50/s, duration: 30s}`) or `compare:`",
            );
        }
        if thresholds.is_some() {
            p.error(
                format!("{at}.thresholds"),
                "thresholds judge a population: add `samples:` to this check (for example `samples: 100`)",
            );
        }
        return exchange::validate(
            exchange::Fields {
                retries,
                retry_delay,
                retry_on,
                flaky,
                capture,
            },
            at,
            defaults,
            p,
        )
        .map(Probe::Exchange);
    };
    // A population is judged by its thresholds, never retried, and captures nothing.
    if retries.is_some() {
        p.error(
            format!("{at}.retries"),
            "a sampled check is never retried: every sample counts, and its thresholds say how many may fail",
        );
    }
    p.refuse(
        at,
        &[
        ("retry_delay", retry_delay.is_some()),
        ("retry_on", retry_on.is_some()),
        ("flaky", flaky.is_some()),
        ],
        "a sampled check is never retried: every sample counts, and its thresholds say how many may fail",
    );
    for name in capture.iter().flatten().map(|(name, _)| name) {
        p.error(
            format!("{at}.capture.{name}"),
            "a sampled check sends many requests; capture from a check that sends one",
        );
    }
    let samples_at = format!("{at}.samples");
    let document = match samples {
        Value::Number(n) => SamplesDocument {
            count: Some(n.as_u64().unwrap_or(0)),
            ..Default::default()
        },
        other => p.read::<SamplesDocument>(other, &samples_at)?,
    };
    let thresholds_at = format!("{at}.thresholds");
    if document.rate.is_some() || document.duration.is_some() {
        let load = load::validate(document, &samples_at, p)?;
        let thresholds =
            population::validate_thresholds(thresholds, &thresholds_at, load.arrivals, p);
        Some(Probe::Load(load::Load { thresholds, ..load }))
    } else {
        let samples = samples::validate(document, &samples_at, p)?;
        let thresholds =
            population::validate_thresholds(thresholds, &thresholds_at, samples.count, p);
        Some(Probe::Samples(samples::Samples {
            thresholds,
            ..samples
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(fields: Fields, has_routes: bool) -> (Option<Probe>, Vec<String>) {
        let mut p = Problems::default();
        let probe = validate(
            fields,
            "checks[0]",
            &Defaults::default(),
            has_routes,
            &mut p,
        );
        (probe, p.errors.iter().map(|e| e.to_string()).collect())
    }

    fn fields() -> Fields {
        Fields {
            retries: None,
            retry_delay: None,
            retry_on: None,
            flaky: None,
            capture: None,
            samples: None,
            thresholds: None,
            compare: None,
            metric: None,
            target_health: None,
        }
    }

    #[test]
    fn the_fields_choose_the_kind() {
        assert!(matches!(probe(fields(), false).0, Some(Probe::Exchange(_))));
        let sampled = Fields {
            samples: Some(serde_json::json!(50)),
            ..fields()
        };
        assert!(matches!(probe(sampled, false).0, Some(Probe::Samples(_))));
        let loaded = Fields {
            samples: Some(serde_json::json!({"rate": "20/s", "duration": "2s"})),
            ..fields()
        };
        assert!(matches!(probe(loaded, true).0, Some(Probe::Load(_))));
    }

    #[test]
    fn fields_of_another_kind_are_named_with_the_reason() {
        let (_, errors) = probe(
            Fields {
                samples: Some(serde_json::json!(50)),
                retry_on: Some(vec![serde_json::json!("5xx")]),
                capture: Some(BTreeMap::from([(
                    "id".to_string(),
                    serde_json::json!({"json": "$.id"}),
                )])),
                ..fields()
            },
            false,
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("checks[0].retry_on: a sampled check is never retried"));
        assert!(errors[1].starts_with("checks[0].capture.id: a sampled check sends many"));
        let (_, errors) = probe(
            Fields {
                thresholds: Some(serde_json::json!({"p99": "1s"})),
                ..fields()
            },
            true,
        );
        assert!(errors[0].starts_with("checks[0].routes: routes (and paths) spread"));
        assert!(errors[1].starts_with("checks[0].thresholds: thresholds judge a population"));
    }
}
