//! Alarm → targets → stop. An EventBridge "CloudWatch Alarm State Change" event that enters
//! `ALARM` rolls back the in-flight deployments of every target the alarm guards, found from (in
//! order) the alarm's tags, `GREENLIGHT_ALARM_TARGETS`, and CodeDeploy deployment groups that list
//! the alarm. Every event produces one decision record.
//!
//! Stops are idempotent: a deployment this process already stopped is not stopped again, and
//! "already completed", "already rolling back" and "not found" answers count as done.

mod codedeploy;
mod ecs;
pub mod targets;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::alarm::{parse_alarm_event, AlarmEvent, AlarmEventError, STATE_CHANGE};
use crate::aws::{call_until, AwsError, Prepared};
use crate::deadline::Deadline;
pub use codedeploy::CodeDeployController;
pub use ecs::EcsController;
pub use targets::{AlarmMapping, Source, Target};

/// A deployment stopped by this process is not stopped again for this long.
const REMEMBER_STOPS: Duration = Duration::from_secs(30 * 60);
/// AWS calls stop this long before the Lambda deadline.
const RETURN_MARGIN: Duration = Duration::from_millis(300);

/// A deployment that a stop can still affect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// CodeDeploy deployment id, or ECS service deployment ARN.
    pub id: String,
    pub status: Option<String>,
}

/// What a stop request achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopOutcome {
    /// The controller accepted the stop; its status (`Pending`, `Succeeded`, `ROLLBACK_REQUESTED`).
    Requested(String),
    /// Already finished, stopping, or rolling back.
    AlreadyCompleted,
    /// The deployment no longer exists.
    NotFound,
}

/// Configuration of the alarm-rollback function.
#[derive(Debug, Clone, Default)]
pub struct RollbackSettings {
    /// `GREENLIGHT_DRY_RUN=true`: decide and log, stop nothing.
    pub dry_run: bool,
    /// `GREENLIGHT_ALARM_TARGETS`, parsed (or why it could not be).
    pub mapping: Option<Result<AlarmMapping, String>>,
    /// `GREENLIGHT_DISCOVERY_APPLICATIONS`: `None` = discovery off; `Some(None)` = every
    /// application (`*`); `Some(Some(list))` = these applications.
    pub discovery: Option<Option<Vec<String>>>,
}

impl RollbackSettings {
    pub fn from_env() -> Self {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let dry_run = get("GREENLIGHT_DRY_RUN").is_some_and(|v| {
            matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on")
        });
        let mapping = get("GREENLIGHT_ALARM_TARGETS").map(|text| AlarmMapping::parse(&text));
        let discovery = get("GREENLIGHT_DISCOVERY_APPLICATIONS").map(|list| {
            if list == "*" {
                None
            } else {
                Some(
                    list.split(',')
                        .map(|a| a.trim().to_string())
                        .filter(|a| !a.is_empty())
                        .collect(),
                )
            }
        });
        RollbackSettings {
            dry_run,
            mapping,
            discovery,
        }
    }
}

/// What happened to one deployment.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub target: Target,
    pub deployment: String,
    /// `stopped`, `would-stop`, `skipped`, `failed`.
    pub action: &'static str,
    pub detail: String,
}

/// A target and the source that named it.
#[derive(Debug, Clone, Serialize)]
pub struct FoundTarget {
    pub target: Target,
    pub source: Source,
}

/// The one record each event produces.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub alarm: String,
    pub state: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_data: Option<Value>,
    pub dry_run: bool,
    /// Why nothing was done, when the event does not call for a rollback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    pub targets: Vec<FoundTarget>,
    pub actions: Vec<Action>,
    /// Things that went wrong or look wrong (missing tags, AWS errors).
    pub problems: Vec<String>,
}

impl Decision {
    fn new(event: &AlarmEvent, dry_run: bool) -> Self {
        Decision {
            alarm: event.alarm_name.clone(),
            state: event.state.clone(),
            reason: event.reason.clone(),
            reason_data: event.reason_data.clone(),
            dry_run,
            ignored: None,
            targets: Vec::new(),
            actions: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// A rollback that should have happened did not (a stop failed, or a source could not be read).
    pub fn has_failures(&self) -> bool {
        self.actions.iter().any(|a| a.action == "failed") || !self.problems.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error(transparent)]
    Event(#[from] AlarmEventError),
    /// The decision is logged in full; this says what failed.
    #[error("alarm {alarm}: {summary}")]
    Incomplete { alarm: String, summary: String },
}

impl From<RollbackError> for lambda_runtime::Diagnostic {
    fn from(error: RollbackError) -> Self {
        let error_type = match &error {
            RollbackError::Event(_) => "InvalidEvent",
            RollbackError::Incomplete { .. } => "RollbackIncomplete",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

/// The AWS clients alarm-rollback calls.
struct Clients {
    codedeploy: CodeDeployController,
    ecs: EcsController,
    cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Clients {
    fn new(sdk_config: &aws_config::SdkConfig) -> Self {
        let cloudwatch = aws_sdk_cloudwatch::Client::from_conf(
            aws_sdk_cloudwatch::config::Builder::from(sdk_config)
                .retry_config(crate::aws::retry_config())
                .timeout_config(crate::aws::timeout_config())
                .build(),
        );
        Clients {
            codedeploy: CodeDeployController::new(sdk_config),
            ecs: EcsController::new(sdk_config),
            cloudwatch,
        }
    }
}

/// The alarm-rollback function, set up once per process.
pub struct AlarmRollback {
    settings: RollbackSettings,
    clients: Prepared<Clients>,
    stopped: Mutex<HashMap<String, Instant>>,
}

impl AlarmRollback {
    /// Reads the settings now; the AWS clients are built in the background meanwhile.
    pub fn from_env() -> Self {
        let clients = Prepared::in_background(|| async {
            Clients::new(&crate::aws::load_sdk_config().await)
        });
        Self::with_clients(RollbackSettings::from_env(), clients)
    }

    pub fn new(settings: RollbackSettings, sdk_config: &aws_config::SdkConfig) -> Self {
        Self::with_clients(settings, Prepared::Ready(Clients::new(sdk_config)))
    }

    fn with_clients(settings: RollbackSettings, clients: Prepared<Clients>) -> Self {
        if let Some(Err(problem)) = &settings.mapping {
            tracing::error!(error = %problem, "the alarm mapping is unusable; tags and discovery still apply");
        }
        AlarmRollback {
            settings,
            clients,
            stopped: Mutex::new(HashMap::new()),
        }
    }

    /// Handles one EventBridge event; the decision is logged whatever the result.
    pub async fn handle(
        &self,
        payload: Value,
        lambda_deadline: SystemTime,
    ) -> Result<Decision, RollbackError> {
        let event = parse_alarm_event(&payload)
            .inspect_err(|e| tracing::error!(error = %e, "malformed alarm event"))?;
        let deadline = Deadline::at_system_time(lambda_deadline).minus(RETURN_MARGIN);
        let deadline = if deadline.is_past() {
            Deadline::after(Duration::from_secs(30))
        } else {
            deadline
        };
        let decision = self.decide_and_act(&event, deadline).await;
        log_decision(&decision);
        if decision.has_failures() {
            let failed: Vec<String> = decision
                .actions
                .iter()
                .filter(|a| a.action == "failed")
                .map(|a| format!("{} {}: {}", a.target, a.deployment, a.detail))
                .chain(decision.problems.iter().cloned())
                .collect();
            return Err(RollbackError::Incomplete {
                alarm: decision.alarm.clone(),
                summary: failed.join("; "),
            });
        }
        Ok(decision)
    }

    async fn decide_and_act(&self, event: &AlarmEvent, deadline: Deadline) -> Decision {
        let mut decision = Decision::new(event, self.settings.dry_run);
        if event.detail_type != STATE_CHANGE {
            decision.ignored = Some(format!(
                "detail-type is \"{}\", not \"{STATE_CHANGE}\"",
                event.detail_type
            ));
            return decision;
        }
        if !event.is_alarm() {
            decision.ignored = Some(format!(
                "the alarm entered {}; only ALARM rolls back",
                event.state
            ));
            return decision;
        }
        if let Some(by) = &event.actions_suppressed_by {
            decision.ignored = Some(format!("CloudWatch suppressed this alarm's actions ({by}), so greenlight does not act either"));
            return decision;
        }
        self.find_targets(event, deadline, &mut decision).await;
        if decision.targets.is_empty() && decision.problems.is_empty() {
            decision.ignored = Some("no deployment is guarded by this alarm (no greenlight tags, mapping entry or deployment group lists it)".into());
            return decision;
        }
        let targets: Vec<Target> = decision.targets.iter().map(|t| t.target.clone()).collect();
        for target in targets {
            self.roll_back(&target, deadline, &mut decision).await;
        }
        decision
    }

    /// Every source that applies, in order; a target named twice is kept once, with its first source.
    async fn find_targets(&self, event: &AlarmEvent, deadline: Deadline, decision: &mut Decision) {
        let add = |decision: &mut Decision, targets: Vec<Target>, source: Source| {
            for target in targets {
                if !decision.targets.iter().any(|t| t.target == target) {
                    decision.targets.push(FoundTarget { target, source });
                }
            }
        };

        let tags = match (&event.tags, &event.alarm_arn) {
            (Some(tags), _) => Some((tags.clone(), Source::EventTags)),
            (None, Some(arn)) => match self.alarm_tags(arn, deadline).await {
                Ok(tags) => Some((tags, Source::AlarmTags)),
                Err(e) => {
                    decision.problems.push(format!("could not read the alarm's tags (cloudwatch:ListTagsForResource on {arn}): {e}"));
                    None
                }
            },
            (None, None) => None,
        };
        if let Some((tags, source)) = tags {
            let (targets, problems) = targets::targets_from_tags(&tags);
            decision.problems.extend(problems);
            add(decision, targets, source);
        }

        match &self.settings.mapping {
            Some(Ok(mapping)) => add(
                decision,
                mapping.targets_for(&event.alarm_name),
                Source::Mapping,
            ),
            Some(Err(problem)) => decision.problems.push(problem.clone()),
            None => {}
        }

        if let Some(applications) = &self.settings.discovery {
            match self
                .clients
                .get()
                .await
                .codedeploy
                .groups_watching(&event.alarm_name, applications.as_deref(), deadline)
                .await
            {
                Ok(groups) => {
                    let targets = groups
                        .into_iter()
                        .map(|(application, deployment_group)| Target::CodeDeploy {
                            application,
                            deployment_group,
                        })
                        .collect();
                    add(decision, targets, Source::Discovery);
                }
                Err(e) => decision
                    .problems
                    .push(format!("discovery of deployment groups failed: {e}")),
            }
        }
    }

    async fn alarm_tags(
        &self,
        arn: &str,
        deadline: Deadline,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        let cloudwatch = &self.clients.get().await.cloudwatch;
        let out = call_until("ListTagsForResource", deadline, || {
            cloudwatch.list_tags_for_resource().resource_arn(arn).send()
        })
        .await?;
        Ok(out
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect())
    }

    async fn roll_back(&self, target: &Target, deadline: Deadline, decision: &mut Decision) {
        let in_flight = match target {
            Target::CodeDeploy {
                application,
                deployment_group,
            } => {
                self.clients
                    .get()
                    .await
                    .codedeploy
                    .in_flight(application, deployment_group, deadline)
                    .await
            }
            Target::Ecs { cluster, service } => {
                self.clients
                    .get()
                    .await
                    .ecs
                    .in_flight(cluster, service, deadline)
                    .await
            }
        };
        let deployments = match in_flight {
            Ok(d) => d,
            Err(e) => {
                decision.actions.push(Action {
                    target: target.clone(),
                    deployment: String::new(),
                    action: "failed",
                    detail: format!("could not list in-flight deployments: {e}"),
                });
                return;
            }
        };
        if deployments.is_empty() {
            decision.actions.push(Action {
                target: target.clone(),
                deployment: String::new(),
                action: "skipped",
                detail: "no deployment in flight".into(),
            });
        }
        for deployment in deployments {
            let key = format!("{target}#{}", deployment.id);
            let action = |action: &'static str, detail: String| Action {
                target: target.clone(),
                deployment: deployment.id.clone(),
                action,
                detail,
            };
            if let Some(at) = self.stopped_recently(&key) {
                decision.actions.push(action(
                    "skipped",
                    format!(
                        "this function already requested its stop {}s ago",
                        at.as_secs()
                    ),
                ));
                continue;
            }
            if self.settings.dry_run {
                decision.actions.push(action(
                    "would-stop",
                    "dry run (GREENLIGHT_DRY_RUN): nothing was stopped".into(),
                ));
                continue;
            }
            let stopped = match target {
                Target::CodeDeploy { .. } => {
                    self.clients
                        .get()
                        .await
                        .codedeploy
                        .stop(&deployment.id, deadline)
                        .await
                }
                Target::Ecs { .. } => {
                    self.clients
                        .get()
                        .await
                        .ecs
                        .stop(&deployment.id, deadline)
                        .await
                }
            };
            match stopped {
                Ok(StopOutcome::Requested(status)) => {
                    self.remember(key);
                    decision.actions.push(action("stopped", format!("stop with rollback requested ({status})")));
                }
                Ok(StopOutcome::AlreadyCompleted) => {
                    self.remember(key);
                    decision.actions.push(action("skipped", "already completed, stopping or rolling back".into()));
                }
                Ok(StopOutcome::NotFound) => decision.actions.push(action("skipped", "the deployment no longer exists".into())),
                Err(e) if e.is_access_denied() => decision.actions.push(action("failed", format!("access denied: {e}; the function's role needs the stop permission on this target"))),
                Err(e) => decision.actions.push(action("failed", e.to_string())),
            }
        }
    }

    fn stopped_recently(&self, key: &str) -> Option<Duration> {
        let stopped = self.stopped.lock().ok()?;
        stopped
            .get(key)
            .map(|at| at.elapsed())
            .filter(|age| *age < REMEMBER_STOPS)
    }

    fn remember(&self, key: String) {
        if let Ok(mut stopped) = self.stopped.lock() {
            stopped.retain(|_, at| at.elapsed() < REMEMBER_STOPS);
            stopped.insert(key, Instant::now());
        }
    }
}

impl crate::lambda::Handler for AlarmRollback {
    type Response = Decision;
    type Error = RollbackError;

    fn handle(
        &self,
        payload: Value,
        deadline: SystemTime,
    ) -> impl std::future::Future<Output = Result<Decision, RollbackError>> + Send {
        AlarmRollback::handle(self, payload, deadline)
    }
}

fn log_decision(decision: &Decision) {
    let record = serde_json::to_string(decision).unwrap_or_default();
    let stopped = decision
        .actions
        .iter()
        .filter(|a| a.action == "stopped")
        .count() as u64;
    let summary = match (&decision.ignored, stopped, decision.dry_run) {
        (Some(why), _, _) => format!("alarm {}: nothing to do: {why}", decision.alarm),
        (None, _, true) => format!(
            "alarm {}: dry run, would stop {} deployment(s)",
            decision.alarm,
            decision
                .actions
                .iter()
                .filter(|a| a.action == "would-stop")
                .count()
        ),
        (None, n, false) => format!("alarm {}: stopped {n} deployment(s)", decision.alarm),
    };
    if decision.has_failures() {
        tracing::error!(alarm = %decision.alarm, stopped, decision = %record, "{summary}");
    } else {
        tracing::info!(alarm = %decision.alarm, stopped, decision = %record, "{summary}");
    }
}
