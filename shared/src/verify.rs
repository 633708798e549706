//! Running a whole plan: first the `ready:` checks, each retried until it passes or its time is
//! up; then the checks, started in plan order with at most `concurrency` in flight (so
//! `concurrency: 1` runs them one after another, in the order written), each under the one
//! verification deadline. A check that panics or overruns is reported `Errored`; it never takes
//! the verification down with it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::check::run_check_with;
use crate::deadline::Deadline;
use crate::green::FindGreen;
use crate::plan::Plan;
use crate::probe::metric::MetricSource;
use crate::probe::target_health::LoadBalancers;
use crate::verdict::{CheckReport, Outcome, Verdict};

/// How long past the deadline stragglers may take before they are abandoned.
const STRAGGLER_GRACE: Duration = Duration::from_millis(100);

/// What a verification reaches out with: the HTTP client that asks green (and blue), CloudWatch
/// for metric checks, and when the verification started (an ECS stage that continues across
/// invocations started at its first).
#[derive(Clone)]
pub struct Tools {
    pub http: reqwest::Client,
    /// Sampled and load checks may open their workers' own connections for `http://` URLs
    /// (see `crate::lane`): set for a run whose plan has no TLS options and no compression.
    pub lanes: bool,
    pub metrics: Option<Arc<dyn MetricSource>>,
    /// Finds green's target group (`target_group: green`): the deployment's, in a CodeDeploy hook.
    pub green: Option<Arc<dyn FindGreen>>,
    /// The load balancer, for target_health checks.
    pub load_balancers: Option<Arc<dyn LoadBalancers>>,
    /// When the verification started; `None`: now.
    pub since: Option<SystemTime>,
}

impl Tools {
    /// Only HTTP: a plan with metric checks gets them `Errored`, saying CloudWatch is missing.
    pub fn http(http: reqwest::Client) -> Self {
        Tools {
            http,
            lanes: false,
            metrics: None,
            green: None,
            load_balancers: None,
            since: None,
        }
    }

    /// Metric checks read `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn MetricSource>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// target_health checks ask `load_balancers`.
    pub fn with_load_balancers(mut self, load_balancers: Arc<dyn LoadBalancers>) -> Self {
        self.load_balancers = Some(load_balancers);
        self
    }

    /// `target_group: green` is found by `green`.
    pub fn with_green(mut self, green: Arc<dyn FindGreen>) -> Self {
        self.green = Some(green);
        self
    }

    /// The verification continues one that started at `since`.
    pub fn started_at(mut self, since: SystemTime) -> Self {
        self.since = Some(since);
        self
    }
}

impl std::fmt::Debug for Tools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tools")
            .field("metrics", &self.metrics.is_some())
            .field("since", &self.since)
            .finish_non_exhaustive()
    }
}

/// Runs every check of `plan` and returns the verdict by `deadline` (plus a small grace).
pub async fn verify(tools: &Tools, plan: Arc<Plan>, deadline: Deadline) -> Verdict {
    verify_observed(tools, plan, deadline, |_| {}).await
}

/// [`verify`], calling `observer` with each check's report as soon as that check ends.
pub async fn verify_observed(
    tools: &Tools,
    plan: Arc<Plan>,
    deadline: Deadline,
    observer: impl Fn(&CheckReport),
) -> Verdict {
    let started = Instant::now();
    let tools = match crate::http::client_for(&plan, &tools.http).await {
        Ok(http) => Tools {
            http,
            lanes: crate::http::asks_nothing_of_the_client(&plan),
            metrics: tools.metrics.clone(),
            green: tools.green.clone(),
            load_balancers: tools.load_balancers.clone(),
            since: Some(tools.since.unwrap_or_else(SystemTime::now)),
        },
        Err(e) => return Verdict::not_run(e),
    };
    let client = &tools.http;

    let mut ready_reports = Vec::new();
    if let Some(ready) = &plan.ready {
        for check in &ready.checks {
            let report = crate::probe::exchange::run_until_ready(
                client,
                check,
                ready.within,
                ready.interval,
                deadline,
            )
            .await;
            observer(&report);
            let passed = report.outcome == Outcome::Passed;
            ready_reports.push(report);
            if !passed {
                let mut verdict = Verdict::from_checks(ready_reports, started.elapsed());
                if let Some(last) = verdict.checks.last() {
                    let why = match &last.outcome {
                        Outcome::Failed { failures } => failures
                            .iter()
                            .map(|f| f.measured.clone())
                            .collect::<Vec<_>>()
                            .join("; "),
                        other => other.reason(),
                    };
                    verdict.reason = format!(
                        "green was not ready after {}, so nothing else was checked: {}: {why}",
                        crate::duration::format_duration(ready.within),
                        last.name
                    );
                }
                return verdict;
            }
        }
    }

    let board = Arc::new(crate::plan::capture::Board::default());
    // What each check captures is published when it ends; a check that did not pass leaves its
    // captures without a value, and says why to the checks that wanted them.
    let publish = |index: usize, report: &CheckReport| {
        for capture in plan.checks[index].probe.captures() {
            let value = report
                .captured
                .iter()
                .find(|(name, _)| *name == capture.name)
                .map(|(_, value)| value.clone())
                .ok_or_else(|| {
                    format!(
                        "{} {}: {}",
                        report.name,
                        report.outcome.label(),
                        report.outcome.reason()
                    )
                });
            board.publish(&capture.name, value);
        }
    };
    let permits = Arc::new(tokio::sync::Semaphore::new(plan.concurrency));
    let mut tasks = JoinSet::new();
    let mut index_of_task = std::collections::HashMap::new();
    let mut reports: Vec<Option<CheckReport>> = vec![None; plan.checks.len()];
    let collect = async {
        // Checks start in plan order: each waits for a permit before the next is started.
        let mut next = 0;
        loop {
            tokio::select! {
                biased;
                joined = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    let Some(joined) = joined else { continue };
                    match joined {
                        Ok((_, (index, report))) => {
                            publish(index, &report);
                            observer(&report);
                            reports[index] = Some(report);
                        }
                        Err(error) => {
                            if let Some(&index) = index_of_task.get(&error.id()) {
                                let cause = if error.is_panic() {
                                    format!("the check panicked: {}", panic_message(error.into_panic()))
                                } else {
                                    "the check was cancelled".to_string()
                                };
                                let report = unfinished(&plan, index, cause, started);
                                publish(index, &report);
                                observer(&report);
                                reports[index] = Some(report);
                            }
                        }
                    }
                }
                permit = permits.clone().acquire_owned(), if next < plan.checks.len() => {
                    let index = next;
                    next += 1;
                    let (tools, plan, board) = (tools.clone(), plan.clone(), board.clone());
                    let handle = tasks.spawn(async move {
                        let _permit = permit;
                        let check = &plan.checks[index];
                        (index, run_check_with(&tools, check, deadline, &board).await)
                    });
                    index_of_task.insert(handle.id(), index);
                }
                else => break,
            }
        }
    };
    let finished = tokio::time::timeout_at(deadline.instant() + STRAGGLER_GRACE, collect)
        .await
        .is_ok();
    if !finished {
        tasks.abort_all();
    }
    let reports = reports
        .into_iter()
        .enumerate()
        .map(|(index, report)| {
            report.unwrap_or_else(|| {
                unfinished(
                    &plan,
                    index,
                    "did not finish before the verification deadline".into(),
                    started,
                )
            })
        })
        .collect::<Vec<_>>();
    ready_reports.extend(reports);
    Verdict::from_checks(ready_reports, started.elapsed())
}

/// Runs the verification on its own task, so that even a panic outside a check ends in a
/// `Failed` verdict rather than an unreported hook.
pub async fn verify_isolated(tools: Tools, plan: Arc<Plan>, verify_by: Deadline) -> Verdict {
    let task = tokio::spawn(async move { verify(&tools, plan, verify_by).await });
    let abort = task.abort_handle();
    match tokio::time::timeout_at(verify_by.instant() + Duration::from_secs(1), task).await {
        Ok(Ok(verdict)) => verdict,
        Ok(Err(e)) => Verdict::not_run(format!("the verification crashed: {e}")),
        Err(_) => {
            abort.abort();
            Verdict::not_run("the verification did not finish by its deadline")
        }
    }
}

fn unfinished(plan: &Plan, index: usize, cause: String, started: Instant) -> CheckReport {
    let check = &plan.checks[index];
    CheckReport::errored(&check.name, &check.request_line, cause, started.elapsed())
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_string()
    }
}
