//! CodeDeploy, the controller of ECS blue/green deployments: the lifecycle hook event it sends,
//! and `PutLifecycleEventHookExecutionStatus`, retried until the deadline.

use aws_lambda_events::event::codedeploy::CodeDeployLifecycleEvent;
use aws_sdk_codedeploy::types::LifecycleEventStatus;
use serde_json::Value;

use crate::aws::{call_until, AwsError};
use crate::deadline::Deadline;
use crate::verdict::VerdictStatus;

/// The event could not be read as a CodeDeploy lifecycle hook event, so it cannot be reported.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("not a CodeDeploy lifecycle hook event: {0}")]
pub struct EventError(pub String);

/// Reads `{"DeploymentId", "LifecycleEventHookExecutionId"}`; both must be present and non-empty.
pub fn parse_lifecycle_event(payload: &Value) -> Result<CodeDeployLifecycleEvent, EventError> {
    let Some(object) = payload.as_object() else {
        return Err(EventError(format!(
            "expected a JSON object, got {}",
            short(payload)
        )));
    };
    let mut missing = Vec::new();
    for key in ["DeploymentId", "LifecycleEventHookExecutionId"] {
        match object.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            Some(Value::String(_)) => missing.push(format!("{key} is empty")),
            Some(other) => missing.push(format!("{key} must be a string, got {}", short(other))),
            None => missing.push(format!("{key} is missing")),
        }
    }
    if !missing.is_empty() {
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        return Err(EventError(format!(
            "{} (the event has keys: [{}])",
            missing.join(", "),
            keys.join(", ")
        )));
    }
    serde_json::from_value(payload.clone()).map_err(|e| EventError(e.to_string()))
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 80 {
        format!(
            "{}…",
            &text[..text.char_indices().nth(80).map_or(text.len(), |(i, _)| i)]
        )
    } else {
        text
    }
}

/// How reporting ended when CodeDeploy has the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reported {
    /// CodeDeploy accepted the status.
    Recorded,
    /// CodeDeploy already had a status for this hook (a duplicate invocation, or the deployment was
    /// stopped meanwhile): nothing left to do.
    AlreadyCompleted,
    /// Not reported yet: a metric check's bake outlasts this invocation, and a new invocation of
    /// the function carries the verification on (and reports).
    Continued,
}

/// Reporting failed: CodeDeploy does not have the status, and will wait up to an hour.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ReportError {
    #[error("access denied reporting to CodeDeploy ({0}): the function's role needs codedeploy:PutLifecycleEventHookExecutionStatus on this deployment group; the deployment will wait up to an hour for this hook")]
    AccessDenied(String),
    #[error("the status could not be reported to CodeDeploy: {code}: {message}")]
    Rejected { code: String, message: String },
    #[error("could not report to CodeDeploy before the deadline after {attempts} attempts; last error: {last_error}")]
    OutOfTime { attempts: u32, last_error: String },
}

/// Calls `PutLifecycleEventHookExecutionStatus`. The SDK's own retries are off: this type retries
/// throttling, 5xx and network errors itself, until the deadline it is given.
#[derive(Debug, Clone)]
pub struct CodeDeployReporter {
    client: aws_sdk_codedeploy::Client,
}

impl CodeDeployReporter {
    /// Builds the client from the shared AWS configuration (region, credentials, endpoint from
    /// `AWS_ENDPOINT_URL_CODEDEPLOY` / `AWS_ENDPOINT_URL`).
    pub fn new(sdk_config: &aws_config::SdkConfig) -> Self {
        CodeDeployReporter {
            client: client(sdk_config),
        }
    }

    pub async fn report_status(
        &self,
        event: &CodeDeployLifecycleEvent,
        status: VerdictStatus,
        deadline: Deadline,
    ) -> Result<Reported, ReportError> {
        let status = match status {
            VerdictStatus::Succeeded => LifecycleEventStatus::Succeeded,
            VerdictStatus::Failed => LifecycleEventStatus::Failed,
        };
        let call = || {
            self.client
                .put_lifecycle_event_hook_execution_status()
                .deployment_id(&event.deployment_id)
                .lifecycle_event_hook_execution_id(&event.lifecycle_event_hook_execution_id)
                .status(status.clone())
                .send()
        };
        match call_until("PutLifecycleEventHookExecutionStatus", deadline, call).await {
            Ok(_) => Ok(Reported::Recorded),
            Err(e) if e.code() == Some("LifecycleEventAlreadyCompletedException") => {
                Ok(Reported::AlreadyCompleted)
            }
            Err(e) if e.is_access_denied() => Err(ReportError::AccessDenied(e.to_string())),
            Err(AwsError::Service { code, message }) => {
                Err(ReportError::Rejected { code, message })
            }
            Err(AwsError::OutOfTime {
                attempts,
                last_error,
            }) => Err(ReportError::OutOfTime {
                attempts,
                last_error,
            }),
        }
    }
}

/// A CodeDeploy client with greenlight's retry and timeout settings.
pub fn client(sdk_config: &aws_config::SdkConfig) -> aws_sdk_codedeploy::Client {
    crate::aws_client!(aws_sdk_codedeploy, sdk_config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_both_ids_from_a_hook_event() {
        let event = parse_lifecycle_event(
            &json!({"DeploymentId": "d-1", "LifecycleEventHookExecutionId": "e-1"}),
        )
        .unwrap();
        assert_eq!(event.deployment_id, "d-1");
        assert_eq!(event.lifecycle_event_hook_execution_id, "e-1");
    }

    #[test]
    fn names_what_is_missing_and_what_was_there() {
        let err = parse_lifecycle_event(&json!({"DeploymentId": "d-1", "detail": {}})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "not a CodeDeploy lifecycle hook event: LifecycleEventHookExecutionId is missing (the event has keys: [DeploymentId, detail])"
        );
        let err =
            parse_lifecycle_event(&json!({"DeploymentId": "", "LifecycleEventHookExecutionId": 7}))
                .unwrap_err();
        assert!(err.0.contains("DeploymentId is empty"), "{err}");
        assert!(
            err.0
                .contains("LifecycleEventHookExecutionId must be a string, got 7"),
            "{err}"
        );
        assert!(parse_lifecycle_event(&json!([1, 2]))
            .unwrap_err()
            .0
            .contains("expected a JSON object"));
    }
}
