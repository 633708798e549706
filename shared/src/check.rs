//! Running one check: waiting for the values it uses (captured by earlier checks), handing it
//! to its probe (see `crate::probe`), and the one thing every probe does: an attempt, one
//! exchange with green, sent and judged under its own time limit inside the verification
//! deadline.
//!
//! An attempt's time limit covers the whole of it: sending, reading the body, and judging the
//! answer. Judging runs off the async workers (so timers and the reporting path keep running)
//! and within a budget that ends at the same limit (see `crate::judge`), so a CPU-heavy
//! expectation ends `Errored` in time instead of holding the hook past its deadline.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::deadline::Deadline;
use crate::duration::format_duration;
use crate::expect::Observed;
use crate::judge::{Budget, STEPS_PER_CHECK};
use crate::plan::Check;
use crate::probe::Probe;
use crate::verdict::{CheckReport, Outcome};
use crate::verify::Tools;

/// Bodies are read up to this size, so a huge answer cannot exhaust a 128 MB function.
pub const BODY_CAP: usize = 1024 * 1024;
/// An attempt shorter than this is not worth starting.
pub(crate) const MIN_ATTEMPT: Duration = Duration::from_millis(20);

/// Bodies being read or judged, by every check and sample together, hold at most this many KiB:
/// 64 checks with 256 samples each in flight, all sending 1 MiB, would otherwise need gigabytes.
/// A read that would go past it waits for room (within its own time limit).
const BODY_MEMORY_KIB: usize = 32 * 1024;
static BODY_MEMORY: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(BODY_MEMORY_KIB);

/// KiB of bodies held right now (for tests and diagnostics).
pub fn body_memory_in_use_kib() -> usize {
    BODY_MEMORY_KIB - BODY_MEMORY.available_permits()
}

/// At most this many answers are judged at once: a parsed 1 MiB JSON body can take tens of
/// megabytes, and the function has 128.
static JUDGING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// A complete answer kept for comparing; its body's memory is counted until it is dropped.
#[derive(Debug)]
pub(crate) struct Kept {
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
    _room: tokio::sync::SemaphorePermit<'static>,
}

/// One exchange with green, judged.
#[derive(Debug)]
pub(crate) struct Attempt {
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub latency: Option<Duration>,
    /// The verification deadline ended it before an answer was complete: nothing was measured.
    pub cut_short: bool,
    /// What the check's `capture:` took from a passing answer.
    pub captured: Vec<(String, String)>,
    /// The answer itself, when it was asked to be kept and arrived whole.
    pub kept: Option<Kept>,
}

impl Attempt {
    /// An attempt that never started, for `cause`.
    pub(crate) fn none(cause: &str) -> Self {
        Attempt {
            outcome: Outcome::Errored {
                cause: cause.to_string(),
            },
            status: None,
            latency: None,
            cut_short: true,
            captured: Vec::new(),
            kept: None,
        }
    }
}

/// Runs `check` until it passes, runs out of attempts, or reaches `deadline`.
pub async fn run_check(tools: &Tools, check: &Check, deadline: Deadline) -> CheckReport {
    run_check_with(
        tools,
        check,
        deadline,
        &crate::plan::capture::Board::default(),
    )
    .await
}

/// [`run_check`] in a run whose checks capture values: a check that uses captured values waits
/// for them on `board`, and is filled in with them.
pub async fn run_check_with(
    tools: &Tools,
    check: &Check,
    deadline: Deadline,
    board: &crate::plan::capture::Board,
) -> CheckReport {
    let Some(deferred) = &check.deferred else {
        return run_filled(tools, check, deadline).await;
    };
    let started = Instant::now();
    let not_run = |cause: String| {
        CheckReport::errored(&check.name, &check.request_line, cause, started.elapsed())
    };
    let waited = tokio::time::timeout_at(deadline.instant(), board.wait_for(&deferred.names)).await;
    let Ok(values) = waited else {
        return not_run(
            "the verification deadline was reached while waiting for captured values".into(),
        );
    };
    let mut captured = Vec::new();
    for (name, value) in values {
        match value {
            Ok(value) => captured.push((name, value)),
            Err(why) => {
                return not_run(format!(
                    "not run: ${{captured.{name}}} has no value ({why})"
                ))
            }
        }
    }
    match deferred.fill(captured) {
        Ok(filled) => {
            let mut report = run_filled(tools, &filled, deadline).await;
            report.elapsed = started.elapsed();
            report
        }
        Err(message) => not_run(format!(
            "not run: filled in with the captured values, {message}"
        )),
    }
}

async fn run_filled(tools: &Tools, check: &Check, deadline: Deadline) -> CheckReport {
    let client = &tools.http;
    // Debug builds only (tests and the rehearsal): a check named `failpoint:panic…` panics, to
    // prove that a panic is caught and reported. A cfg, not a feature, so that tests and the
    // rehearsal share one build of every crate.
    #[cfg(debug_assertions)]
    if check.name.starts_with("failpoint:panic") {
        panic!("failpoint: check {} panics on purpose", check.name);
    }
    match &check.probe {
        Probe::Exchange(exchange) => {
            crate::probe::exchange::run(client, check, exchange, deadline).await
        }
        Probe::Samples(samples) => {
            crate::probe::samples::run(client, tools.lanes, check, samples, deadline).await
        }
        Probe::Load(load) => {
            crate::probe::load::run(client, tools.lanes, check, load, deadline).await
        }
        Probe::Compare(compare) => {
            crate::probe::compare::run(client, check, compare, deadline).await
        }
        Probe::Metric(metric) => {
            let since = tools.since.unwrap_or_else(std::time::SystemTime::now);
            crate::probe::metric::run(
                tools.metrics.as_deref(),
                tools.green.as_deref(),
                since,
                check,
                metric,
                deadline,
            )
            .await
        }
        Probe::TargetHealth(health) => {
            crate::probe::target_health::run(
                tools.load_balancers.as_deref(),
                tools.green.as_deref(),
                check,
                health,
                deadline,
            )
            .await
        }
    }
}

/// How far an attempt got, for saying what its time limit cut short.
const SENDING: u8 = 0;
const JUDGING_ANSWER: u8 = 1;

/// One exchange with green, judged: attempt `number` of `check`, within its timeout and
/// `deadline`.
pub(crate) async fn attempt(
    client: &reqwest::Client,
    check: &Check,
    deadline: Deadline,
    number: u32,
) -> Attempt {
    exchange(client, None, check, deadline, number, false).await
}

/// [`attempt`] for a sampling worker: through `lane`, the worker's own connection, when the
/// check's URL allows it (see `crate::lane`).
pub(crate) async fn attempt_on(
    lane: Option<&mut crate::lane::Lane>,
    client: &reqwest::Client,
    check: &Check,
    deadline: Deadline,
) -> Attempt {
    exchange(client, lane, check, deadline, 1, false).await
}

/// [`attempt`], keeping the complete answer (its body within the body-memory bound until it is
/// dropped), for probes that compare answers.
pub(crate) async fn attempt_keeping(
    client: &reqwest::Client,
    check: &Check,
    deadline: Deadline,
) -> Attempt {
    exchange(client, None, check, deadline, 1, true).await
}

async fn exchange(
    client: &reqwest::Client,
    lane: Option<&mut crate::lane::Lane>,
    check: &Check,
    deadline: Deadline,
    number: u32,
    keep: bool,
) -> Attempt {
    let limit = check.timeout.min(deadline.remaining());
    let cut_by_deadline = limit < check.timeout;
    let started = Instant::now();
    let phase = AtomicU8::new(SENDING);
    let judge_by = (started + limit).into_std();
    let exchange = async {
        let mut response = match lane {
            Some(lane) if crate::lane::carries(check) => Arriving::Lane(lane.send(check).await?),
            _ => {
                let mut request = client
                    .request(check.method.clone(), check.url.clone())
                    .headers(check.headers.clone());
                if let Some(body) = &check.body {
                    request = request.body(body.clone());
                }
                let response = request
                    .send()
                    .await
                    .map_err(|e| crate::http::describe_error(&e))?;
                Arriving::Shared(response)
            }
        };
        let status = response.status();
        // Taken, not copied: the body is read from `response` without them.
        let headers = response.take_headers();
        let mut body = Vec::new();
        let mut truncated = false;
        // Room for the whole body is taken before reading it, all at once: taking it piece by
        // piece would let many half-read bodies wait on each other for ever.
        let room_kib = response
            .content_length()
            .map_or(BODY_CAP, |n| (n as usize).min(BODY_CAP))
            .div_ceil(1024)
            .max(1);
        let held = BODY_MEMORY
            .acquire_many(room_kib as u32)
            .await
            .map_err(|_| "reading the body is unavailable".to_string())?;
        let room_bytes = room_kib * 1024;
        while let Some(chunk) = response.chunk().await? {
            let room = BODY_CAP.min(room_bytes) - body.len();
            let take = chunk.len().min(room);
            body.extend_from_slice(&chunk[..take]);
            if take < chunk.len() {
                truncated = true;
                break;
            }
        }
        let latency = started.elapsed();
        phase.store(JUDGING_ANSWER, Ordering::Relaxed);
        let secret_captures: Vec<String> = check
            .probe
            .captures()
            .iter()
            .filter(|c| c.secret)
            .map(|c| c.name.clone())
            .collect();
        let answer = Answer {
            status,
            headers,
            body,
            truncated,
            latency,
        };
        let judged = if answer.body.len() <= INLINE_JUDGING_BYTES {
            // A small answer is judged where it arrived: handing it to another thread would cost
            // more than judging it, and its work is bounded by the budget.
            let judged = answer.judge(
                &check.expect,
                check.probe.captures(),
                &secret_captures,
                judge_by,
            );
            (judged, answer, held)
        } else {
            let permit = JUDGING
                .acquire()
                .await
                .map_err(|_| "judging is unavailable".to_string())?;
            let expect = check.expect.clone();
            let captures = check.probe.captures().to_vec();
            tokio::task::spawn_blocking(move || {
                // The body's memory is given back when the body itself is dropped, even if the
                // attempt's time limit ended first.
                let _permit = permit;
                let judged = answer.judge(&expect, &captures, &secret_captures, judge_by);
                (judged, answer, held)
            })
            .await
            .map_err(|e| format!("judging the answer failed: {e}"))?
        };
        let (judged, answer, held) = judged;
        let kept = (keep && !answer.truncated).then(|| Kept {
            headers: answer.headers,
            body: answer.body,
            _room: held,
        });
        Ok::<_, String>((status, latency, judged, kept))
    };
    match tokio::time::timeout(limit, exchange).await {
        Err(_) => {
            let cause = if phase.load(Ordering::Relaxed) == JUDGING_ANSWER {
                format!(
                    "the answer arrived, but judging it did not finish within {} ({})",
                    format_duration(limit),
                    if cut_by_deadline {
                        "the verification deadline"
                    } else {
                        "the check's timeout"
                    }
                )
            } else if cut_by_deadline {
                format!(
                    "the verification deadline was reached during attempt {number} (no answer after {})",
                    format_duration(started.elapsed())
                )
            } else {
                format!(
                    "timed out: no complete answer within {} (the check's timeout)",
                    format_duration(limit)
                )
            };
            Attempt {
                outcome: Outcome::Errored { cause },
                status: None,
                latency: None,
                cut_short: cut_by_deadline,
                captured: Vec::new(),
                kept: None,
            }
        }
        Ok(Err(cause)) => Attempt {
            outcome: Outcome::Errored { cause },
            status: None,
            latency: None,
            cut_short: false,
            captured: Vec::new(),
            kept: None,
        },
        Ok(Ok((status, latency, judged, kept))) => {
            let (outcome, captured) = match judged {
                Ok((failures, captured)) if failures.is_empty() => (Outcome::Passed, captured),
                Ok((failures, _)) => (Outcome::Failed { failures }, Vec::new()),
                Err(unjudged) => (
                    Outcome::Errored {
                        cause: unjudged.to_string(),
                    },
                    Vec::new(),
                ),
            };
            Attempt {
                outcome,
                status: Some(status),
                latency: Some(latency),
                cut_short: false,
                captured,
                kept,
            }
        }
    }
}

/// An answer being read: from the shared client, or from a sampling worker's own connection.
enum Arriving<'a> {
    Shared(reqwest::Response),
    Lane(crate::lane::Answer<'a>),
}

impl Arriving<'_> {
    fn status(&self) -> u16 {
        match self {
            Arriving::Shared(response) => response.status().as_u16(),
            Arriving::Lane(answer) => answer.status,
        }
    }

    fn take_headers(&mut self) -> reqwest::header::HeaderMap {
        match self {
            Arriving::Shared(response) => std::mem::take(response.headers_mut()),
            Arriving::Lane(answer) => std::mem::take(&mut answer.headers),
        }
    }

    fn content_length(&self) -> Option<u64> {
        match self {
            Arriving::Shared(response) => response.content_length(),
            Arriving::Lane(answer) => answer.content_length(),
        }
    }

    /// The next piece of the body; `None` at its end.
    async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, String> {
        match self {
            Arriving::Shared(response) => response
                .chunk()
                .await
                .map_err(|e| crate::http::describe_error(&e)),
            Arriving::Lane(answer) => answer.chunk().await,
        }
    }
}

/// Answers up to this size are judged on the async worker that read them (at most a few
/// milliseconds of bounded work); larger ones on the blocking pool, two at a time.
const INLINE_JUDGING_BYTES: usize = 4 * 1024;

/// The expectations an answer did not meet, and what the check captured from it.
type Judged = (Vec<crate::expect::Failure>, Vec<(String, String)>);

/// What came back, to be judged.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
    truncated: bool,
    latency: Duration,
}

impl Answer {
    /// The expectations not met, and (when they all were) what the check captures.
    fn judge(
        &self,
        expect: &crate::expect::Expectations,
        captures: &[crate::plan::capture::Capture],
        secret_captures: &[String],
        judge_by: std::time::Instant,
    ) -> Result<Judged, crate::expect::Unjudged> {
        let seen = Observed {
            status: self.status,
            headers: &self.headers,
            body: &self.body,
            body_truncated: self.truncated,
            latency: self.latency,
        };
        let mut budget = Budget::new(STEPS_PER_CHECK, Some(judge_by));
        let mut failures = expect.judge(&seen, &mut budget)?;
        let mut captured = Vec::new();
        if failures.is_empty() && !captures.is_empty() {
            let text = String::from_utf8_lossy(&self.body);
            let document = serde_json::from_slice::<serde_json::Value>(&self.body).ok();
            for capture in captures {
                let taken = capture
                    .take(document.as_ref(), &self.headers, &text, &mut budget)
                    .map_err(|why| crate::expect::Unjudged {
                        expectation: format!("capture {}", capture.name),
                        why,
                    })?;
                match taken {
                    Some(value) => captured.push((capture.name.clone(), value)),
                    None => failures.push(crate::expect::Failure {
                        expectation: format!("capture {}", capture.name),
                        expected: format!("a value at {}", capture.label),
                        measured: "nothing".into(),
                    }),
                }
            }
            if !failures.is_empty() {
                captured.clear();
            }
            // Captured values are secrets unless the plan lists `captured.NAME` in
            // `not_secret`: registered before any report can show them.
            crate::secrets::global().add(
                captured
                    .iter()
                    .filter(|(name, _)| secret_captures.contains(name))
                    .map(|(_, v)| v.as_str()),
            );
        }
        Ok((failures, captured))
    }
}
