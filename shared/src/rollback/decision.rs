//! The one record each alarm event produces: what was found, what was done to each deployment
//! and why, and what went wrong. Every state is a type; the record is what the logs, the
//! invocation's answer and the README describe.

use std::time::{Duration, SystemTime};

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::targets::{Source, Target};
use crate::alarm::AlarmEvent;
use crate::timestamp;

/// Why an event called for no action at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    NotAStateChange(String),
    NotAlarm(String),
    Suppressed(String),
    /// This instance saw the alarm leave ALARM after this event's ALARM.
    Superseded {
        alarm_at: SystemTime,
        later_state: String,
        later_at: SystemTime,
    },
    NothingGuarded,
    /// The alarm is in an account whose alarms this function does not act on.
    OtherAccount(Option<String>),
}

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ignored::NotAStateChange(kind) => write!(
                f,
                "detail-type is \"{kind}\", not \"{}\"",
                crate::alarm::STATE_CHANGE
            ),
            Ignored::NotAlarm(state) => write!(f, "the alarm entered {state}; only ALARM rolls back"),
            Ignored::Suppressed(by) => write!(
                f,
                "CloudWatch suppressed this alarm's actions ({by}), so greenlight does not act either"
            ),
            Ignored::Superseded { alarm_at, later_state, later_at } => write!(
                f,
                "superseded: this ALARM is from {}, and the alarm entered {later_state} later, at {}",
                timestamp::format(*alarm_at),
                timestamp::format(*later_at)
            ),
            Ignored::OtherAccount(Some(account)) => write!(
                f,
                "the alarm is in account {account}, not this one (list it in GREENLIGHT_ALARM_ACCOUNTS to act on its alarms)"
            ),
            Ignored::OtherAccount(None) => f.write_str(
                "the event does not say which account the alarm is in, so it cannot be this account's",
            ),
            Ignored::NothingGuarded => f.write_str(
                "no deployment is guarded by this alarm (no greenlight tags, mapping entry or deployment group lists it)",
            ),
        }
    }
}

/// Why a deployment (or a target) was left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    NothingInFlight,
    /// The deployment started after the alarm entered ALARM: a late event must not stop it.
    CreatedAfterAlarm {
        created: SystemTime,
        alarm_at: SystemTime,
    },
    StoppedEarlier(Duration),
    AlreadyCompleted,
    Gone,
    NotAllowed,
}

impl Skip {
    /// A short code for queries: `stale`, `not-allowed`, …
    pub fn code(&self) -> &'static str {
        match self {
            Skip::NothingInFlight => "nothing-in-flight",
            Skip::CreatedAfterAlarm { .. } => "stale",
            Skip::StoppedEarlier(_) => "already-stopped",
            Skip::AlreadyCompleted => "already-completed",
            Skip::Gone => "gone",
            Skip::NotAllowed => "not-allowed",
        }
    }
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::NothingInFlight => f.write_str("no deployment in flight"),
            Skip::CreatedAfterAlarm { created, alarm_at } => write!(
                f,
                "created at {}, after the alarm entered ALARM at {}: this event is older than the deployment",
                timestamp::format(*created),
                timestamp::format(*alarm_at)
            ),
            Skip::StoppedEarlier(ago) => write!(f, "this function already requested its stop {}s ago", ago.as_secs()),
            Skip::AlreadyCompleted => f.write_str("already completed, stopping or rolling back"),
            Skip::Gone => f.write_str("the deployment no longer exists"),
            Skip::NotAllowed => f.write_str("not in GREENLIGHT_ALLOWED_TARGETS; this function may not stop it"),
        }
    }
}

/// What happened to one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// The controller accepted the stop, with this status.
    Stopped(String),
    WouldStop,
    Skipped(Skip),
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct Action {
    pub target: Target,
    /// Empty when the action concerns the whole target.
    pub deployment: String,
    pub act: Act,
}

impl Action {
    pub fn label(&self) -> &'static str {
        match self.act {
            Act::Stopped(_) => "stopped",
            Act::WouldStop => "would-stop",
            Act::Skipped(_) => "skipped",
            Act::Failed(_) => "failed",
        }
    }

    pub fn detail(&self) -> String {
        match &self.act {
            Act::Stopped(status) => format!("stop with rollback requested ({status})"),
            Act::WouldStop => "dry run (GREENLIGHT_DRY_RUN): nothing was stopped".into(),
            Act::Skipped(skip) => skip.to_string(),
            Act::Failed(why) => why.clone(),
        }
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let skip = match &self.act {
            Act::Skipped(skip) => Some(skip.code()),
            _ => None,
        };
        let mut out = s.serialize_struct("Action", 5)?;
        out.serialize_field("target", &self.target)?;
        out.serialize_field("deployment", &self.deployment)?;
        out.serialize_field("action", self.label())?;
        if let Some(code) = skip {
            out.serialize_field("skip", code)?;
        }
        out.serialize_field("detail", &self.detail())?;
        out.end()
    }
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
    /// When the alarm entered that state (`state.timestamp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entered_at: Option<String>,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_data: Option<Value>,
    pub dry_run: bool,
    /// Why nothing was done, when the event does not call for a rollback.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "as_text")]
    pub ignored: Option<Ignored>,
    pub targets: Vec<FoundTarget>,
    pub actions: Vec<Action>,
    /// Things that went wrong or look wrong (missing tags, AWS errors, settings).
    pub problems: Vec<String>,
}

fn as_text<S: Serializer>(value: &Option<Ignored>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(ignored) => s.collect_str(ignored),
        None => s.serialize_none(),
    }
}

impl Decision {
    pub fn new(event: &AlarmEvent, dry_run: bool) -> Self {
        Decision {
            alarm: event.alarm_name.clone(),
            state: event.state.clone(),
            entered_at: event.entered_at.map(timestamp::format),
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
        self.actions.iter().any(|a| matches!(a.act, Act::Failed(_))) || !self.problems.is_empty()
    }

    pub fn count(&self, label: &str) -> usize {
        self.actions.iter().filter(|a| a.label() == label).count()
    }

    /// What failed, in one line, for the invocation's error.
    pub fn failures(&self) -> String {
        self.actions
            .iter()
            .filter(|a| matches!(a.act, Act::Failed(_)))
            .map(|a| format!("{} {}: {}", a.target, a.deployment, a.detail()))
            .chain(self.problems.iter().cloned())
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The record in the logs: one line, error level when something failed.
    pub fn log(&self) {
        let record = serde_json::to_string(self).unwrap_or_default();
        let stopped = self.count("stopped") as u64;
        let summary = match (&self.ignored, self.dry_run) {
            (Some(why), _) => format!("alarm {}: nothing to do: {why}", self.alarm),
            (None, true) => format!(
                "alarm {}: dry run, would stop {} deployment(s)",
                self.alarm,
                self.count("would-stop")
            ),
            (None, false) => format!("alarm {}: stopped {stopped} deployment(s)", self.alarm),
        };
        if self.has_failures() {
            tracing::error!(alarm = %self.alarm, stopped, decision = %record, "{summary}");
        } else {
            tracing::info!(alarm = %self.alarm, stopped, decision = %record, "{summary}");
        }
    }
}
