//! Alarm → targets → stop. An EventBridge "CloudWatch Alarm State Change" event that enters
//! `ALARM` rolls back the in-flight deployments of every target the alarm guards, found from the
//! alarm's tags, `GREENLIGHT_ALARM_TARGETS`, and the CodeDeploy deployment groups that list the
//! alarm. Every event produces one decision record (`decision`).
//!
//! What makes it trustworthy at fleet scale:
//! - **Late events never act on newer state**: a deployment created after the alarm entered
//!   ALARM is not stopped by that event, and an ALARM older than a later OK this instance saw is
//!   ignored (`history`).
//! - **One slow target never starves another**: targets are acted on concurrently, as soon as a
//!   source names them; tag lookup and discovery are bounded and run beside the stops.
//! - **Idempotent**: a deployment this instance stopped is not stopped again; "already
//!   completed", "already rolling back" and "not found" answers count as done.
//! - **Safe defaults**: an unclear `GREENLIGHT_DRY_RUN` stops nothing; `GREENLIGHT_ALLOWED_TARGETS`
//!   limits what any alarm can stop.
//!
//! The controllers and the alarm directory are ports (`controller`), with AWS adapters
//! (`codedeploy`, `ecs`) and an in-memory one for tests.

mod codedeploy;
pub mod controller;
pub mod decision;
mod directory;
mod ecs;
mod history;
pub mod settings;
mod sources;
pub mod targets;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::alarm::{parse_alarm_event, AlarmEvent, AlarmEventError, STATE_CHANGE};
use crate::aws::Prepared;
use crate::deadline::Deadline;
pub use codedeploy::CodeDeployController;
pub use controller::{InFlight, Ports, StopOutcome};
pub use decision::{Act, Action, Decision, FoundTarget, Ignored, Skip};
pub use directory::AwsDirectory;
pub use ecs::EcsController;
use history::History;
pub use settings::{AllowList, Discovery, DryRun, RollbackSettings};
pub use targets::{AlarmMapping, Source, Target};

/// AWS calls stop this long before the Lambda deadline.
const RETURN_MARGIN: Duration = Duration::from_millis(300);
/// Reading an alarm's tags may take at most this long, so the targets they name can still be
/// acted on.
const TAG_LOOKUP_LIMIT: Duration = Duration::from_secs(5);
/// Discovery ends this long before the deadline, leaving time to stop what it finds.
const ACT_RESERVE: Duration = Duration::from_secs(2);

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

/// The AWS adapters behind the ports.
fn aws_ports(sdk_config: &aws_config::SdkConfig) -> Ports {
    let codedeploy = CodeDeployController::new(sdk_config);
    Ports {
        codedeploy: Box::new(codedeploy.clone()),
        ecs: Box::new(EcsController::new(sdk_config)),
        directory: Box::new(AwsDirectory {
            cloudwatch: crate::aws_client!(aws_sdk_cloudwatch, sdk_config),
            codedeploy,
        }),
    }
}

/// The alarm-rollback function, set up once per process.
#[derive(Clone)]
pub struct AlarmRollback {
    inner: Arc<Inner>,
}

struct Inner {
    settings: RollbackSettings,
    ports: Prepared<Ports>,
    history: History,
    /// Where stops and failed stops are announced (`GREENLIGHT_NOTIFY_TOPIC_ARN`).
    notifier: Option<Prepared<crate::notify::Notifier>>,
}

impl AlarmRollback {
    /// Reads the settings now; the AWS clients are built in the background meanwhile.
    pub fn from_env() -> Self {
        let ports =
            Prepared::in_background(|| async { aws_ports(&crate::aws::load_sdk_config().await) });
        let mut rollback = Self::with(RollbackSettings::from_env(), ports);
        if let Some(inner) = Arc::get_mut(&mut rollback.inner) {
            inner.notifier = crate::notify::Notifier::from_env(&crate::env::Env::process());
        }
        rollback
    }

    /// Announces decisions that stopped or failed to stop a deployment on this topic.
    pub fn notifying(mut self, notifier: crate::notify::Notifier) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.notifier = Some(Prepared::Ready(notifier));
        }
        self
    }

    /// With AWS clients built from `sdk_config`.
    pub fn new(settings: RollbackSettings, sdk_config: &aws_config::SdkConfig) -> Self {
        Self::with(settings, Prepared::Ready(aws_ports(sdk_config)))
    }

    /// With any implementation of the ports (an in-memory one in tests).
    pub fn with_ports(settings: RollbackSettings, ports: Ports) -> Self {
        Self::with(settings, Prepared::Ready(ports))
    }

    fn with(settings: RollbackSettings, ports: Prepared<Ports>) -> Self {
        if let Some(Err(problem)) = &settings.mapping {
            tracing::error!(error = %problem, "the alarm mapping is unusable; tags and discovery still apply");
        }
        for problem in &settings.problems {
            tracing::error!(problem = %problem, "alarm-rollback setting");
        }
        AlarmRollback {
            inner: Arc::new(Inner {
                settings,
                ports,
                history: History::default(),
                notifier: None,
            }),
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
        let deadline = Deadline::of_invocation(lambda_deadline).minus(RETURN_MARGIN);
        let decision = self.decide_and_act(&event, deadline).await;
        decision.log();
        if let Some(notifier) = &self.inner.notifier {
            if decision.count("stopped") > 0 || decision.count("failed") > 0 {
                let subject = if decision.count("failed") > 0 {
                    format!("greenlight: alarm {} - a rollback FAILED", decision.alarm)
                } else {
                    format!(
                        "greenlight: alarm {} rolled back {} deployment(s)",
                        decision.alarm,
                        decision.count("stopped")
                    )
                };
                let record = serde_json::to_string_pretty(&decision).unwrap_or_default();
                notifier
                    .get()
                    .await
                    .publish(&subject, &record, deadline)
                    .await;
            }
        }
        if decision.has_failures() {
            return Err(RollbackError::Incomplete {
                alarm: decision.alarm.clone(),
                summary: decision.failures(),
            });
        }
        Ok(decision)
    }

    /// The whole decision for one event.
    pub async fn decide_and_act(&self, event: &AlarmEvent, deadline: Deadline) -> Decision {
        let inner = &self.inner;
        let settings = &inner.settings;
        let mut decision = Decision::new(event, settings.dry_run.stops_nothing());
        decision.problems.extend(settings.problems.iter().cloned());
        if event.detail_type != STATE_CHANGE {
            decision.ignored = Some(Ignored::NotAStateChange(event.detail_type.clone()));
            return decision;
        }
        // Before anything is recorded: another account's alarm of the same name says nothing of
        // this account's.
        if let Some(accounts) = &settings.alarm_accounts {
            let account = event.alarm_account();
            if !account.is_some_and(|a| accounts.iter().any(|known| known == a)) {
                decision.ignored = Some(Ignored::OtherAccount(account.map(str::to_string)));
                return decision;
            }
        }
        if let Some(at) = event.entered_at {
            inner
                .history
                .record_state(&event.alarm_name, &event.state, at);
        }
        if !event.is_alarm() {
            decision.ignored = Some(Ignored::NotAlarm(event.state.clone()));
            return decision;
        }
        if let Some(by) = &event.actions_suppressed_by {
            decision.ignored = Some(Ignored::Suppressed(by.clone()));
            return decision;
        }
        if let Some(alarm_at) = event.entered_at {
            if let Some((later_state, later_at)) =
                inner.history.left_alarm_after(&event.alarm_name, alarm_at)
            {
                decision.ignored = Some(Ignored::Superseded {
                    alarm_at,
                    later_state,
                    later_at,
                });
                return decision;
            }
        } else {
            decision.problems.push(
                "the event says neither when the alarm entered ALARM (state.timestamp) nor when it was sent (time); deployments are stopped without checking that they started before the alarm".into(),
            );
        }

        self.find_and_act(event, deadline, &mut decision).await;
        if decision.targets.is_empty() && decision.problems.is_empty() {
            decision.ignored = Some(Ignored::NothingGuarded);
        }
        decision
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

#[cfg(test)]
mod tests;
