//! Probe kind `compare`: green judged against blue. The same requests go to blue (the plan's
//! `baseline`, by default `GREENLIGHT_PRODUCTION_URL`: production still reaches blue while the
//! test listener reaches green) and to green, in pairs whose order alternates so that time
//! effects fall on both sides, and the two populations are judged together:
//!
//! - latency: is green slower than blue by more than the allowed increase? Mann-Whitney with the
//!   Hodges-Lehmann shift and its confidence interval (see [`stats`]): the whole interval above
//!   the allowance fails, the whole interval within it passes, an interval across it is
//!   inconclusive, with how many more samples would decide;
//! - errors: are green's errors more frequent than blue's, beyond the allowed increase? Fisher's
//!   exact test;
//! - responses: does green answer as blue does (status, chosen headers, the JSON document)? Places
//!   where two of blue's answers to the same request differ are noise and left out (see [`diff`]).
//!
//! ```yaml
//! - name: same-as-blue
//!   paths: [/api/orders, /api/orders/42]
//!   compare:
//!     samples: 200                         # per side (default 100)
//!     latency: {max_increase: 20%, confidence: 99%, ignore_below: 1ms}
//!     errors: {max_increase: 1%, confidence: 99%}
//!     diff: {ignore: [$.meta], tolerance: {$.total: 0.01}, headers: [content-type]}
//! ```
//!
//! Only methods the plan marks safe (`baseline.safe_methods`, GET and HEAD by default) are ever
//! sent to blue: that is checked when the plan is read.

pub mod diff;
pub mod stats;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::population::lock;
use super::Measured;
use crate::check::{attempt_keeping, Attempt, MIN_ATTEMPT};
use crate::deadline::Deadline;
use crate::duration::format_duration;
use crate::expect::Failure;
use crate::plan::problems::Problems;
use crate::plan::Check;
use crate::verdict::{CheckReport, Outcome};

/// Pairs per comparison at most: the n·m differences of the latency estimate stay a few MB.
pub const MAX_COMPARE_SAMPLES: u64 = 500;
const DEFAULT_SAMPLES: u64 = 100;
const DEFAULT_CONCURRENCY: usize = 4;
const MAX_CONCURRENCY: usize = 32;
/// Fewer answers than this a side, and latency is not judged.
const MIN_ANSWERS: usize = 20;
/// A latency comparison that does not show green slower passes only if it could have: it had
/// at least this chance of detecting an increase of the allowed size.
const MIN_POWER: f64 = 0.8;
/// Entries in each of `diff.ignore`, `diff.tolerance` and `diff.headers`.
const MAX_PLACES: usize = 100;
/// Requests named in the report for each differing place.
const PLACES_KEPT: usize = 12;

/// Green against blue.
#[derive(Debug, Clone)]
pub struct Compare {
    /// Pairs (one request to each side).
    pub samples: u64,
    pub concurrency: usize,
    pub latency: Option<LatencyRule>,
    pub errors: Option<ErrorRule>,
    pub diff: Option<diff::Options>,
    /// Blue's copy of each request (the check itself, or each route, in order), filled in when
    /// the plan is resolved against its baseline.
    pub blue: Vec<Arc<Check>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LatencyRule {
    /// Allowed increase of green's latency, as a fraction of blue's median (0.2 for 20%).
    pub max_increase: f64,
    /// Increases below this are never a failure (loopback-fast services jitter by more than
    /// 20% of nothing).
    pub ignore_below: Duration,
    pub confidence: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRule {
    /// Allowed increase of green's error rate over blue's, in points (0.01 for 1%).
    pub max_increase: f64,
    pub confidence: f64,
}

impl Compare {
    pub fn describe(&self) -> String {
        let mut judged = Vec::new();
        if self.latency.is_some() {
            judged.push("latency");
        }
        if self.errors.is_some() {
            judged.push("errors");
        }
        if self.diff.is_some() {
            judged.push("responses");
        }
        format!(
            "{} pairs against blue, {} at a time, judging {}",
            self.samples,
            self.concurrency,
            judged.join(", ")
        )
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct CompareDocument {
    #[serde(default)]
    pub samples: Option<u64>,
    #[serde(default)]
    pub concurrency: Option<usize>,
    #[serde(default)]
    pub latency: Option<Value>,
    #[serde(default)]
    pub errors: Option<Value>,
    #[serde(default)]
    pub diff: Option<Value>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct LatencyDocument {
    #[serde(default)]
    pub max_increase: Option<String>,
    #[serde(default)]
    pub confidence: Option<String>,
    #[serde(default, deserialize_with = "crate::duration::serde_text::deserialize")]
    pub ignore_below: Option<Duration>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ErrorsDocument {
    #[serde(default)]
    pub max_increase: Option<String>,
    #[serde(default)]
    pub confidence: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct DiffDocument {
    #[serde(default)]
    pub ignore: Vec<String>,
    #[serde(default)]
    pub tolerance: BTreeMap<String, f64>,
    #[serde(default)]
    pub headers: Option<Vec<String>>,
}

/// `compare:` at `at`: `true`, or a map.
pub(crate) fn validate(value: Value, at: &str, p: &mut Problems) -> Option<Compare> {
    let doc = match value {
        Value::Bool(true) | Value::Null => CompareDocument::default(),
        other => p.read::<CompareDocument>(other, at)?,
    };
    let samples = doc.samples.unwrap_or(DEFAULT_SAMPLES);
    if !(MIN_ANSWERS as u64..=MAX_COMPARE_SAMPLES).contains(&samples) {
        p.error(
            format!("{at}.samples"),
            format!("between {MIN_ANSWERS} and {MAX_COMPARE_SAMPLES} pairs, found {samples}"),
        );
    }
    let concurrency = doc.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
        p.error(
            format!("{at}.concurrency"),
            format!("must be between 1 and {MAX_CONCURRENCY}, found {concurrency}"),
        );
    }
    let latency = rule(
        doc.latency,
        &format!("{at}.latency"),
        p,
        |doc: LatencyDocument, at, p| {
            Some(LatencyRule {
                max_increase: percent(
                    doc.max_increase.as_deref(),
                    "20%",
                    &format!("{at}.max_increase"),
                    p,
                )?,
                confidence: confidence(doc.confidence.as_deref(), &format!("{at}.confidence"), p)?,
                ignore_below: doc.ignore_below.unwrap_or(Duration::from_millis(1)),
            })
        },
    );
    let errors = rule(
        doc.errors,
        &format!("{at}.errors"),
        p,
        |doc: ErrorsDocument, at, p| {
            Some(ErrorRule {
                max_increase: percent(
                    doc.max_increase.as_deref(),
                    "1%",
                    &format!("{at}.max_increase"),
                    p,
                )?,
                confidence: confidence(doc.confidence.as_deref(), &format!("{at}.confidence"), p)?,
            })
        },
    );
    let diff = rule(
        doc.diff,
        &format!("{at}.diff"),
        p,
        |doc: DiffDocument, at, p| {
            let mut ok = true;
            // Every node of every answer is looked up in these lists: they stay short.
            let lengths = [
                ("ignore", doc.ignore.len()),
                ("tolerance", doc.tolerance.len()),
                ("headers", doc.headers.as_ref().map_or(0, Vec::len)),
            ];
            for (field, length) in lengths {
                if length > MAX_PLACES {
                    p.error(
                        format!("{at}.{field}"),
                        format!("at most {MAX_PLACES} entries, found {length}; a place covers everything below it ($.meta), and $..name every depth"),
                    );
                    ok = false;
                }
            }
            for (i, place) in doc.ignore.iter().chain(doc.tolerance.keys()).enumerate() {
                if let Err(message) = diff::check_place(place) {
                    let field = if i < doc.ignore.len() {
                        "ignore"
                    } else {
                        "tolerance"
                    };
                    p.error(format!("{at}.{field}"), message);
                    ok = false;
                }
            }
            for (place, tolerance) in &doc.tolerance {
                if !(tolerance.is_finite() && *tolerance >= 0.0) {
                    p.error(
                        format!("{at}.tolerance"),
                        format!(
                            "{place}: a tolerance is a number of at least 0, found {tolerance}"
                        ),
                    );
                    ok = false;
                }
            }
            let mut headers = Vec::new();
            for name in doc.headers.unwrap_or_else(|| vec!["content-type".into()]) {
                match reqwest::header::HeaderName::from_bytes(name.as_bytes()) {
                    Ok(header) => headers.push(header.as_str().to_string()),
                    Err(_) => {
                        p.error(
                            format!("{at}.headers"),
                            format!("\"{name}\" is not a header name"),
                        );
                        ok = false;
                    }
                }
            }
            ok.then(|| diff::Options {
                ignore: doc.ignore,
                tolerance: doc.tolerance.into_iter().collect(),
                headers,
            })
        },
    );
    Some(Compare {
        samples: samples.clamp(MIN_ANSWERS as u64, MAX_COMPARE_SAMPLES),
        concurrency: concurrency.clamp(1, MAX_CONCURRENCY),
        latency: latency?,
        errors: errors?,
        diff: diff?,
        blue: Vec::new(),
    })
}

/// A judged part: absent (its defaults), `false` (not judged), or its map. `None` when wrong.
fn rule<D, T>(
    value: Option<Value>,
    at: &str,
    p: &mut Problems,
    read: impl FnOnce(D, &str, &mut Problems) -> Option<T>,
) -> Option<Option<T>>
where
    D: serde::de::DeserializeOwned + Default,
{
    match value {
        Some(Value::Bool(false)) => Some(None),
        None | Some(Value::Bool(true)) => read(D::default(), at, p).map(Some),
        Some(other) => {
            let doc = p.read::<D>(other, at)?;
            read(doc, at, p).map(Some)
        }
    }
}

/// `20%` → 0.2.
fn percent(text: Option<&str>, default: &str, at: &str, p: &mut Problems) -> Option<f64> {
    let text = text.unwrap_or(default).trim();
    match text
        .strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|n| n.is_finite() && *n >= 0.0 && *n <= 10_000.0)
    {
        Some(n) => Some(n / 100.0),
        None => {
            p.error(at, format!("\"{text}\" is not a percentage such as 20%"));
            None
        }
    }
}

/// `99%` → 0.99, between 50% and 99.99%.
fn confidence(text: Option<&str>, at: &str, p: &mut Problems) -> Option<f64> {
    let value = percent(Some(text.unwrap_or("99%")), "99%", at, p)?;
    if (0.5..=0.9999).contains(&value) {
        Some(value)
    } else {
        p.error(
            at,
            format!("must be between 50% and 99.99%, found {}%", value * 100.0),
        );
        None
    }
}

/// What a comparison measured, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub planned: u64,
    pub pairs: u64,
    pub blue: Side,
    pub green: Side,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyFinding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<ErrorFinding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responses: Option<DiffFinding>,
    /// Time the latency and error statistics took (the percentiles, Mann-Whitney with the
    /// Hodges-Lehmann interval, Fisher's test).
    pub statistics_ms: f64,
}

/// One side's population.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Side {
    pub answered: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub latency_ms: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencyFinding {
    /// Hodges-Lehmann estimate of green − blue, and its confidence interval.
    pub shift_ms: f64,
    pub low_ms: f64,
    pub high_ms: f64,
    pub allowed_ms: f64,
    pub confidence: f64,
    pub p_slower: f64,
    /// The chance the test had of detecting an increase of the allowed size.
    pub power: f64,
    pub decision: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorFinding {
    pub p_value: f64,
    pub allowed_increase: f64,
    pub decision: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffFinding {
    pub compared: u64,
    pub differing: u64,
    pub places: Vec<PlaceTally>,
    /// Places where blue differed from itself, left out.
    pub noise: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlaceTally {
    pub place: String,
    pub kind: &'static str,
    pub count: u64,
    pub blue: String,
    pub green: String,
    pub request: String,
}

impl Comparison {
    /// One line for the report.
    pub fn line(&self) -> String {
        let mut parts = vec![format!("{} of {} pairs", self.pairs, self.planned)];
        let p50 = |side: &Side| {
            side.latency_ms
                .iter()
                .find(|(n, _)| n == "p50")
                .map_or("-".to_string(), |(_, ms)| format_ms(*ms))
        };
        parts.push(format!(
            "p50 blue {} green {}",
            p50(&self.blue),
            p50(&self.green)
        ));
        if let Some(l) = &self.latency {
            parts.push(format!(
                "shift {} ({:.0}% CI {}…{}, allowed {})",
                signed_ms(l.shift_ms),
                l.confidence * 100.0,
                signed_ms(l.low_ms),
                signed_ms(l.high_ms),
                signed_ms(l.allowed_ms)
            ));
        }
        parts.push(format!(
            "errors blue {} green {}",
            crate::probe::threshold::format_percent(self.blue.error_rate),
            crate::probe::threshold::format_percent(self.green.error_rate)
        ));
        if let Some(d) = &self.responses {
            parts.push(format!("{} of {} answers differ", d.differing, d.compared));
        }
        parts.join(", ")
    }
}

fn format_ms(ms: f64) -> String {
    format_duration(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
}

fn signed_ms(ms: f64) -> String {
    if ms <= -0.005 {
        format!("-{}", format_ms(-ms))
    } else {
        format!("+{}", format_ms(ms))
    }
}

/// What the pairs found, gathered as they end.
#[derive(Default)]
struct Tally {
    blue_ms: Vec<f64>,
    green_ms: Vec<f64>,
    blue_errors: u64,
    green_errors: u64,
    blue_answered: u64,
    green_answered: u64,
    pairs: u64,
    /// Per route: blue's first whole answer (to learn noise from every later one), and the
    /// places where blue differed from itself.
    first_blue: Vec<Option<Arc<FirstBlue>>>,
    noise: Vec<std::collections::BTreeSet<String>>,
    /// Each compared pair's differing places, with its route; judged against the noise at the
    /// end (noise learnt later still counts).
    compared: Vec<(usize, Vec<diff::Difference>)>,
}

/// Sends the pairs and judges them.
pub(crate) async fn run(
    client: &reqwest::Client,
    check: &Check,
    compare: &Compare,
    deadline: Deadline,
) -> CheckReport {
    let started = tokio::time::Instant::now();
    let greens: Vec<Arc<Check>> = if check.routes.is_empty() {
        vec![Arc::new(check.clone())]
    } else {
        check.routes.iter().map(|(c, _)| Arc::clone(c)).collect()
    };
    if compare.blue.len() != greens.len() {
        return CheckReport::errored(
            &check.name,
            &check.request_line,
            "compare has no baseline to send blue's requests to".into(),
            started.elapsed(),
        );
    }
    let tally = Arc::new(Mutex::new(Tally {
        first_blue: (0..greens.len()).map(|_| None).collect(),
        noise: vec![Default::default(); greens.len()],
        ..Tally::default()
    }));
    let options = compare.diff.clone().map(Arc::new);
    let mut learning = 0;
    if let Some(options) = &options {
        learning = learn_noise(client, &compare.blue, options, &tally, deadline).await;
    }
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..compare.concurrency {
        let (client, tally, next, options) =
            (client.clone(), tally.clone(), next.clone(), options.clone());
        let (greens, blues) = (greens.clone(), compare.blue.clone());
        let samples = compare.samples;
        workers.spawn(async move {
            loop {
                if deadline.remaining() < MIN_ATTEMPT * 2 {
                    return;
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= samples {
                    return;
                }
                let route = (n % greens.len() as u64) as usize;
                // Blue first in even pairs, green first in odd ones.
                let (blue, green) = if n % 2 == 0 {
                    let blue = attempt_keeping(&client, &blues[route], deadline).await;
                    let green = attempt_keeping(&client, &greens[route], deadline).await;
                    (blue, green)
                } else {
                    let green = attempt_keeping(&client, &greens[route], deadline).await;
                    let blue = attempt_keeping(&client, &blues[route], deadline).await;
                    (blue, green)
                };
                record(&tally, route, blue, green, options.as_ref()).await;
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let tally = std::mem::take(&mut *lock(&tally));
    let requests: Vec<String> = greens.iter().map(|g| g.request_line.clone()).collect();
    let (outcome, comparison) = judge(compare, tally, &requests);
    CheckReport {
        name: check.name.clone(),
        request: check.request_line.clone(),
        outcome,
        attempts: (comparison.pairs * 2 + learning).min(u64::from(u32::MAX)) as u32,
        measured: Measured::Comparison {
            comparison: Box::new(comparison),
        },
        elapsed: started.elapsed(),
        ready: false,
        captured: Vec::new(),
    }
}

/// Asks blue each request twice before the pairs: where the two answers differ is noise. Returns
/// the requests sent.
async fn learn_noise(
    client: &reqwest::Client,
    blues: &[Arc<Check>],
    options: &Arc<diff::Options>,
    tally: &Mutex<Tally>,
    deadline: Deadline,
) -> u64 {
    let mut sent = 0;
    for (route, blue) in blues.iter().enumerate() {
        if deadline.remaining() < MIN_ATTEMPT * 4 {
            break;
        }
        let first = attempt_keeping(client, blue, deadline).await;
        sent += 1;
        if first.latency.is_none() {
            // Blue does not answer: the pairs will show it; the budget is not spent here.
            break;
        }
        let second = attempt_keeping(client, blue, deadline).await;
        sent += 1;
        let options = Arc::clone(options);
        let learnt = tokio::task::spawn_blocking(move || {
            let (Some(a), Some(b)) = (seen(&first), seen(&second)) else {
                return (Vec::new(), None);
            };
            let noise: Vec<String> = diff::differences(&a, &b, &options)
                .into_iter()
                .map(|d| d.place)
                .collect();
            let kept = (b.body.len() <= FIRST_BLUE_MAX).then(|| FirstBlue {
                status: b.status,
                headers: b.headers.clone(),
                body: b.body.to_vec(),
            });
            (noise, kept)
        })
        .await;
        if let Ok((noise, kept)) = learnt {
            let mut t = lock(tally);
            t.noise[route].extend(noise);
            t.first_blue[route] = kept.map(Arc::new);
        }
    }
    sent
}

fn seen(attempt: &Attempt) -> Option<diff::Seen<'_>> {
    let kept = attempt.kept.as_ref()?;
    Some(diff::Seen {
        status: attempt.status?,
        headers: &kept.headers,
        body: &kept.body,
    })
}

/// Blue's first whole answer to a request, kept (as a copy, when small) to learn noise from
/// every later one.
struct FirstBlue {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

/// Blue's answers larger than this are not kept between pairs: their noise is what the two
/// answers asked before the pairs showed. Bounds what a comparison holds beside the body memory.
const FIRST_BLUE_MAX: usize = 256 * 1024;
/// Pairs whose answers together are larger than this are diffed on the blocking pool.
const INLINE_DIFF_BYTES: usize = 8 * 1024;

/// What diffing one pair found: differences, noise, and blue's answer if it is the first kept.
type Diffed = (
    Option<Vec<diff::Difference>>,
    Vec<String>,
    Option<FirstBlue>,
);

fn diff_pair(
    blue: &Attempt,
    green: &Attempt,
    first: Option<&FirstBlue>,
    options: &diff::Options,
) -> Diffed {
    let found = match (seen(blue), seen(green)) {
        (Some(b), Some(g)) => Some(diff::differences(&b, &g, options)),
        _ => None,
    };
    let Some(now) = seen(blue) else {
        return (found, Vec::new(), None);
    };
    match first {
        // Blue against blue: where it differs from its own first answer is noise.
        Some(first) => {
            let then = diff::Seen {
                status: first.status,
                headers: &first.headers,
                body: &first.body,
            };
            let noise = diff::differences(&then, &now, options)
                .into_iter()
                .map(|d| d.place)
                .collect();
            (found, noise, None)
        }
        None if now.body.len() <= FIRST_BLUE_MAX => (
            found,
            Vec::new(),
            Some(FirstBlue {
                status: now.status,
                headers: now.headers.clone(),
                body: now.body.to_vec(),
            }),
        ),
        None => (found, Vec::new(), None),
    }
}

/// Adds one pair. Diffing is linear in the answers' size (at most 1 MiB each); large answers
/// are diffed off the async workers.
async fn record(
    tally: &Mutex<Tally>,
    route: usize,
    blue: Attempt,
    green: Attempt,
    options: Option<&Arc<diff::Options>>,
) {
    if blue.cut_short || green.cut_short {
        // The deadline ended the pair: it measured nothing.
        return;
    }
    let measured = [&blue, &green].map(|a| (a.latency, a.outcome == Outcome::Passed));
    let diffed = match options {
        None => (None, Vec::new(), None),
        Some(options) => {
            let first = lock(tally).first_blue[route].clone();
            let size = |a: &Attempt| a.kept.as_ref().map_or(0, |k| k.body.len());
            if size(&blue) + size(&green) <= INLINE_DIFF_BYTES {
                diff_pair(&blue, &green, first.as_deref(), options)
            } else {
                let options = Arc::clone(options);
                tokio::task::spawn_blocking(move || {
                    diff_pair(&blue, &green, first.as_deref(), &options)
                })
                .await
                // Diffing panicked: the pair still counts, without a diff.
                .unwrap_or((None, Vec::new(), None))
            }
        }
    };
    let (found, noise, first) = diffed;
    let mut t = lock(tally);
    t.pairs += 1;
    let [(blue_latency, blue_ok), (green_latency, green_ok)] = measured;
    if let Some(latency) = blue_latency {
        t.blue_ms.push(latency.as_secs_f64() * 1000.0);
        t.blue_answered += 1;
    }
    if let Some(latency) = green_latency {
        t.green_ms.push(latency.as_secs_f64() * 1000.0);
        t.green_answered += 1;
    }
    t.blue_errors += u64::from(!blue_ok);
    t.green_errors += u64::from(!green_ok);
    if let Some(found) = found {
        t.compared.push((route, found));
    }
    t.noise[route].extend(noise);
    if t.first_blue[route].is_none() {
        t.first_blue[route] = first.map(Arc::new);
    }
}

fn side(ms: &mut [f64], answered: u64, errors: u64, pairs: u64) -> Side {
    ms.sort_by(f64::total_cmp);
    let mut latency_ms = Vec::new();
    for (name, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0)] {
        if !ms.is_empty() {
            let index = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1;
            latency_ms.push((name.to_string(), ms[index]));
        }
    }
    Side {
        answered,
        errors,
        error_rate: errors as f64 / pairs.max(1) as f64,
        latency_ms,
    }
}

fn judge(compare: &Compare, mut t: Tally, requests: &[String]) -> (Outcome, Comparison) {
    let pairs = t.pairs;
    let blue = side(&mut t.blue_ms, t.blue_answered, t.blue_errors, pairs);
    let green = side(&mut t.green_ms, t.green_answered, t.green_errors, pairs);
    let mut failures = Vec::new();
    let mut undecided = Vec::new();

    let statistics = std::time::Instant::now();
    let latency = compare.latency.as_ref().and_then(|rule| {
        if t.blue_ms.len() < MIN_ANSWERS || t.green_ms.len() < MIN_ANSWERS {
            undecided.push(format!(
                "latency: too few answers to compare ({} from blue, {} from green; at least {MIN_ANSWERS} each)",
                t.blue_ms.len(),
                t.green_ms.len()
            ));
            return None;
        }
        let shift = stats::shift(&t.blue_ms, &t.green_ms, rule.confidence)?;
        let blue_median = blue.latency_ms.first().map_or(0.0, |(_, ms)| *ms);
        let allowed = (rule.max_increase * blue_median).max(rule.ignore_below.as_secs_f64() * 1000.0);
        let described = format!(
            "{} (green − blue, Hodges-Lehmann; {:.0}% interval {}…{}; blue p50 {}, green p50 {})",
            signed_ms(shift.estimate),
            rule.confidence * 100.0,
            signed_ms(shift.low),
            signed_ms(shift.high),
            format_ms(blue_median),
            green.latency_ms.first().map_or("-".into(), |(_, ms)| format_ms(*ms)),
        );
        let expected = format!(
            "green at most {:.0}% slower than blue ({})",
            rule.max_increase * 100.0,
            signed_ms(allowed)
        );
        // The test's power to detect an increase of exactly the allowed size: with the
        // interval's spread, how often the interval would lie wholly above zero.
        let z = stats::normal_quantile(0.5 + rule.confidence / 2.0);
        let spread = ((shift.high - shift.low) / (2.0 * z)).max(f64::MIN_POSITIVE);
        let power = stats::normal_cdf(allowed / spread - z);
        let decision = if shift.low > allowed {
            failures.push(Failure {
                expectation: "latency vs blue".into(),
                expected,
                measured: described,
            });
            "slower than allowed"
        } else if shift.high <= allowed {
            "within the allowed increase"
        } else if power >= MIN_POWER {
            // Not shown slower than allowed, by a test that would have shown it.
            "not shown slower than allowed"
        } else {
            // Samples needed for the spread that gives the test its minimum power.
            let wanted = allowed / (z + stats::normal_quantile(MIN_POWER));
            let needed = (pairs as f64 * (spread / wanted).powi(2)).ceil() as u64;
            undecided.push(format!(
                "latency vs blue: {pairs} pairs cannot tell whether {expected}: {described}; the test had {:.0}% power to detect that increase, and about {} more samples a side would detect it",
                power * 100.0,
                needed.saturating_sub(pairs).max(1)
            ));
            "undecided"
        };
        Some(LatencyFinding {
            shift_ms: shift.estimate,
            low_ms: shift.low,
            high_ms: shift.high,
            allowed_ms: allowed,
            confidence: rule.confidence,
            p_slower: shift.p_slower,
            power,
            decision: decision.into(),
        })
    });

    let errors = compare.errors.as_ref().map(|rule| {
        let p = stats::fisher_greater(t.green_errors, pairs, t.blue_errors, pairs);
        let increase = green.error_rate - blue.error_rate;
        let worse = p < 1.0 - rule.confidence && increase > rule.max_increase;
        if worse {
            failures.push(Failure {
                expectation: "errors vs blue".into(),
                expected: format!(
                    "an error rate at most {} above blue's {}",
                    crate::probe::threshold::format_percent(rule.max_increase),
                    crate::probe::threshold::format_percent(blue.error_rate)
                ),
                measured: format!(
                    "{} ({} of {pairs}; Fisher p = {p:.2e})",
                    crate::probe::threshold::format_percent(green.error_rate),
                    t.green_errors
                ),
            });
        }
        ErrorFinding {
            p_value: p,
            allowed_increase: rule.max_increase,
            decision: if worse {
                "more errors than allowed"
            } else {
                "within the allowed increase"
            }
            .into(),
        }
    });

    let statistics_ms = statistics.elapsed().as_secs_f64() * 1000.0;
    let responses = compare.diff.as_ref().map(|_| {
        let mut places: BTreeMap<(String, diff::Kind), PlaceTally> = BTreeMap::new();
        let mut differing = 0;
        for (route, found) in &t.compared {
            let real: Vec<&diff::Difference> = found
                .iter()
                .filter(|d| !t.noise[*route].contains(&d.place))
                .collect();
            if real.is_empty() {
                continue;
            }
            differing += 1;
            for d in real {
                let kept = places.len() < PLACES_KEPT;
                match places.get_mut(&(d.place.clone(), d.kind)) {
                    Some(tally) => tally.count += 1,
                    None if kept => {
                        places.insert(
                            (d.place.clone(), d.kind),
                            PlaceTally {
                                place: d.place.clone(),
                                kind: d.kind.label(),
                                count: 1,
                                blue: d.blue.clone(),
                                green: d.green.clone(),
                                request: requests[*route].clone(),
                            },
                        );
                    }
                    None => {}
                }
            }
        }
        let mut places: Vec<PlaceTally> = places.into_values().collect();
        places.sort_by_key(|p| std::cmp::Reverse(p.count));
        let noise: std::collections::BTreeSet<String> = t.noise.iter().flatten().cloned().collect();
        let compared = t.compared.len() as u64;
        if differing > 0 {
            let shown: Vec<String> = places
                .iter()
                .take(3)
                .map(|p| {
                    let what = match p.kind {
                        "value" | "type" | "status" | "header" | "length" | "body" => {
                            format!("{} → {}", p.blue, p.green)
                        }
                        other => other.to_string(),
                    };
                    format!("{} ({what}) in {}", p.place, p.request)
                })
                .collect();
            failures.push(Failure {
                expectation: "answers vs blue".into(),
                expected: "green to answer as blue does".into(),
                measured: format!(
                    "{differing} of {compared} answers differ: {}",
                    shown.join("; ")
                ),
            });
        }
        DiffFinding {
            compared,
            differing,
            places,
            noise: noise.into_iter().collect(),
        }
    });

    let comparison = Comparison {
        planned: compare.samples,
        pairs,
        blue,
        green,
        latency,
        errors,
        responses,
        statistics_ms,
    };
    let outcome = if !failures.is_empty() {
        Outcome::Failed { failures }
    } else if !undecided.is_empty() {
        Outcome::Inconclusive {
            cause: undecided.join("; "),
        }
    } else if pairs < compare.samples {
        Outcome::Inconclusive {
            cause: format!(
                "time ran out: {pairs} of {} pairs compared",
                compare.samples
            ),
        }
    } else {
        Outcome::Passed
    };
    (outcome, comparison)
}

#[cfg(test)]
mod tests {
    use super::stats::Rng;
    use super::*;

    fn read(value: Value) -> Result<Compare, Vec<String>> {
        let mut p = Problems::default();
        validate(value, "checks[0].compare", &mut p)
            .filter(|_| p.errors.is_empty())
            .ok_or_else(|| p.errors.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn true_means_every_default_and_false_turns_a_judgement_off() {
        let all = read(Value::Bool(true)).unwrap();
        assert_eq!(all.samples, 100);
        assert_eq!(
            all.latency,
            Some(LatencyRule {
                max_increase: 0.2,
                ignore_below: Duration::from_millis(1),
                confidence: 0.99
            })
        );
        assert_eq!(all.diff.as_ref().unwrap().headers, ["content-type"]);
        assert_eq!(
            all.describe(),
            "100 pairs against blue, 4 at a time, judging latency, errors, responses"
        );
        let some = read(
            serde_json::json!({"samples": 200, "diff": false, "latency": {"max_increase": "50%"}}),
        )
        .unwrap();
        assert!(some.diff.is_none());
        assert_eq!(some.latency.unwrap().max_increase, 0.5);
    }

    #[test]
    fn wrong_values_are_named_at_their_paths() {
        let errors = read(serde_json::json!({
            "samples": 5000,
            "latency": {"max_increase": "lots", "confidence": "30%"},
            "diff": {"ignore": ["meta"], "tolerance": {"$.total": -1.0}},
            "errros": {}
        }))
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "checks[0].compare.errros: unknown field `errros`; did you mean `errors`? (known: `samples`, `concurrency`, `latency`, `errors`, `diff`)",
                "checks[0].compare.samples: between 20 and 500 pairs, found 5000",
                "checks[0].compare.latency.max_increase: \"lots\" is not a percentage such as 20%",
                "checks[0].compare.diff.ignore: \"meta\" is not a place in the answer; write it as the report does: $.meta, $.items[*].total, $..updated_at, $['odd key']",
                "checks[0].compare.diff.tolerance: $.total: a tolerance is a number of at least 0, found -1",
            ]
        );
    }

    #[test]
    fn long_place_lists_are_refused() {
        let ignore: Vec<String> = (0..101).map(|i| format!("$.k{i}")).collect();
        let errors = read(serde_json::json!({"diff": {"ignore": ignore}})).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("checks[0].compare.diff.ignore: at most 100 entries, found 101"),
            "{}",
            errors[0]
        );
    }

    fn tally(blue: &[f64], green: &[f64], blue_errors: u64, green_errors: u64) -> Tally {
        Tally {
            blue_ms: blue.to_vec(),
            green_ms: green.to_vec(),
            blue_answered: blue.len() as u64,
            green_answered: green.len() as u64,
            blue_errors,
            green_errors,
            pairs: blue.len() as u64,
            noise: vec![Default::default()],
            first_blue: vec![None],
            ..Tally::default()
        }
    }

    fn compare(samples: u64) -> Compare {
        Compare {
            samples,
            ..read(Value::Bool(true)).unwrap()
        }
    }

    /// The whole decision, by seeded simulation with 200 samples a side: an identical green
    /// passes in at least 99% of runs, a doubled median fails in at least 99%.
    #[test]
    fn identical_greens_pass_and_doubled_medians_fail_at_the_default_confidence() {
        let (runs, mut passed, mut failed) = (200, 0, 0);
        for seed in 0..runs {
            let mut rng = Rng::new(1000 + seed);
            let blue: Vec<f64> = (0..200).map(|_| rng.latency(5.0, 0.3)).collect();
            let same: Vec<f64> = (0..200).map(|_| rng.latency(5.0, 0.3)).collect();
            let slow: Vec<f64> = (0..200).map(|_| rng.latency(10.0, 0.3)).collect();
            if judge(&compare(200), tally(&blue, &same, 0, 0), &["GET /".into()]).0
                == Outcome::Passed
            {
                passed += 1;
            }
            let (outcome, _) = judge(&compare(200), tally(&blue, &slow, 0, 0), &["GET /".into()]);
            if outcome.label() == "failed" {
                failed += 1;
            }
        }
        assert!(
            passed * 100 >= runs * 99,
            "identical passed {passed} of {runs}"
        );
        assert!(
            failed * 100 >= runs * 99,
            "doubled failed {failed} of {runs}"
        );
    }

    #[test]
    fn a_verdict_shows_both_sides_the_estimate_and_its_interval() {
        let blue: Vec<f64> = (0..100).map(|i| 5.0 + f64::from(i % 10) * 0.1).collect();
        let slow: Vec<f64> = blue.iter().map(|v| v * 8.0).collect();
        let (outcome, comparison) =
            judge(&compare(100), tally(&blue, &slow, 0, 0), &["GET /".into()]);
        let reason = outcome.reason();
        assert!(
            reason.starts_with(
                "latency vs blue: expected green at most 20% slower than blue (+1ms), got +38ms (green − blue, Hodges-Lehmann; 99% interval +"
            ) && reason.ends_with("blue p50 5ms, green p50 43ms)"),
            "{reason}"
        );
        let line = comparison.line();
        assert!(
            line.starts_with("100 of 100 pairs, p50 blue 5ms green 43ms, shift +38ms (99% CI +"),
            "{line}"
        );
    }

    #[test]
    fn noisy_latencies_with_few_samples_are_inconclusive_and_say_how_many_more() {
        let mut rng = Rng::new(7);
        let blue: Vec<f64> = (0..30).map(|_| rng.latency(5.0, 1.2)).collect();
        let green: Vec<f64> = (0..30).map(|_| rng.latency(5.5, 1.2)).collect();
        let (outcome, _) = judge(&compare(30), tally(&blue, &green, 0, 0), &["GET /".into()]);
        let Outcome::Inconclusive { cause } = outcome else {
            panic!("{outcome:?}")
        };
        assert!(
            cause.starts_with(
                "latency vs blue: 30 pairs cannot tell whether green at most 20% slower than blue"
            ),
            "{cause}"
        );
        assert!(
            cause.contains("% power to detect that increase, and about "),
            "{cause}"
        );
        assert!(
            cause.ends_with("more samples a side would detect it"),
            "{cause}"
        );
    }

    #[test]
    fn errors_fail_only_when_significantly_and_materially_more_frequent() {
        let blue: Vec<f64> = vec![5.0; 200];
        let judged = |blue_errors, green_errors| {
            judge(
                &compare(200),
                tally(&blue, &blue, blue_errors, green_errors),
                &["GET /".into()],
            )
            .0
        };
        let Outcome::Failed { failures } = judged(0, 20) else {
            panic!("10% against 0% must fail")
        };
        assert_eq!(failures[0].expectation, "errors vs blue");
        assert!(
            failures[0]
                .measured
                .starts_with("10% (20 of 200; Fisher p = "),
            "{}",
            failures[0].measured
        );
        assert_eq!(judged(1, 2), Outcome::Passed, "one more error is noise");
        assert_eq!(
            judged(30, 31),
            Outcome::Passed,
            "as broken as blue is no regression"
        );
    }
}
