//! A CodeDeploy hook whose bake (a metric check's `wait`) outlasts one Lambda invocation (at most
//! 15 minutes) continues in a new invocation of the same function, invoked asynchronously with
//! the event and its progress (`{"greenlight": {"startedAtMs", "hop"}}`), and reports once, at
//! the end, inside CodeDeploy's one-hour limit for a hook.
//!
//! Why self-invocation and not a Step Functions workflow: it needs nothing beyond the function
//! (no state machine, no extra role), keeps the one code path that always reports, and a failed
//! hand-over is seen by the invocation that tried it, which then reports `Failed` itself. Its cost
//! is that each invocation waits (billed) until shortly before its deadline.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::deadline::Deadline;

/// The key of the event that carries the progress.
pub const PROGRESS_KEY: &str = "greenlight";
/// Invocations one verification may span: a bake of 50 minutes in invocations of 3 minutes.
pub const MAX_HOPS: u32 = 20;
/// The longest bake a CodeDeploy hook may wait: CodeDeploy fails a hook that has not reported
/// within an hour.
pub const LONGEST_BAKE: Duration = Duration::from_secs(50 * 60);

/// How far a verification has come, carried from one invocation to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// When the first invocation started: a metric check's `wait` counts from here.
    pub started_at_ms: u64,
    /// Invocations before this one.
    pub hop: u32,
}

impl Progress {
    /// The progress an event carries; a first invocation (or a start in the future, which no
    /// continuation writes) starts now.
    pub fn of(payload: &Value, now_ms: u64) -> Self {
        payload
            .get(PROGRESS_KEY)
            .and_then(|p| serde_json::from_value::<Progress>(p.clone()).ok())
            // A start in the future, or a hop count no chain reaches, was not written by one.
            .filter(|p| p.started_at_ms <= now_ms && p.hop < MAX_HOPS)
            .unwrap_or(Progress {
                started_at_ms: now_ms,
                hop: 0,
            })
    }

    pub fn started(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.started_at_ms)
    }

    /// The event for the next invocation: `payload` with the progress one hop further.
    pub fn next_event(&self, payload: &Value) -> Value {
        let mut next = payload.clone();
        if let Some(object) = next.as_object_mut() {
            object.insert(
                PROGRESS_KEY.to_string(),
                serde_json::to_value(Progress {
                    hop: self.hop.saturating_add(1),
                    ..*self
                })
                .unwrap_or(Value::Null),
            );
        }
        next
    }
}

/// Hands a verification on to a new invocation.
pub trait Continue: Send + Sync {
    fn continue_with(
        &self,
        event: Value,
        deadline: Deadline,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
}

/// Invokes this very function asynchronously (`lambda:InvokeFunction`, `InvocationType: Event`).
#[derive(Debug)]
pub struct SelfInvoke {
    client: crate::aws::LazyClient<aws_sdk_lambda::Client>,
    function: String,
}

impl SelfInvoke {
    /// The function Lambda runs this process as (`AWS_LAMBDA_FUNCTION_NAME`); `None` outside
    /// Lambda.
    pub fn from_env() -> Option<Self> {
        let function = crate::env::Env::process()
            .setting("AWS_LAMBDA_FUNCTION_NAME")
            .ok()
            .flatten()?;
        Some(SelfInvoke {
            client: crate::aws::LazyClient::new(None, lambda_client),
            function,
        })
    }

    pub fn new(sdk_config: &aws_config::SdkConfig, function: &str) -> Self {
        SelfInvoke {
            client: crate::aws::LazyClient::new(Some(sdk_config), lambda_client),
            function: function.to_string(),
        }
    }
}

fn lambda_client(config: &aws_config::SdkConfig) -> aws_sdk_lambda::Client {
    crate::aws_client!(aws_sdk_lambda, config)
}

impl Continue for SelfInvoke {
    fn continue_with(
        &self,
        event: Value,
        deadline: Deadline,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            let client = self.client.get().await;
            let payload = aws_sdk_lambda::primitives::Blob::new(event.to_string());
            crate::aws::call_until("Invoke", deadline, || {
                client
                    .invoke()
                    .function_name(&self.function)
                    .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
                    .payload(payload.clone())
                    .send()
            })
            .await
            .map(|_| ())
            .map_err(|e| {
                if e.is_access_denied() {
                    format!("invoking {} was refused ({e}): the function's role needs lambda:InvokeFunction on itself", self.function)
                } else {
                    format!("invoking {}: {e}", self.function)
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn progress_travels_in_the_event_and_a_future_start_is_now() {
        let event = json!({"DeploymentId": "d-1", "LifecycleEventHookExecutionId": "e-1"});
        let first = Progress::of(&event, 5_000);
        assert_eq!(
            first,
            Progress {
                started_at_ms: 5_000,
                hop: 0
            }
        );
        let next = first.next_event(&event);
        assert_eq!(next["DeploymentId"], "d-1");
        assert_eq!(next["greenlight"], json!({"startedAtMs": 5_000, "hop": 1}));
        assert_eq!(Progress::of(&next, 9_000).hop, 1);
        let forged = json!({"greenlight": {"startedAtMs": 99_000, "hop": 3}});
        assert_eq!(Progress::of(&forged, 9_000).started_at_ms, 9_000);
        let garbage = json!({"greenlight": "soon"});
        assert_eq!(Progress::of(&garbage, 9_000).hop, 0);
        let endless = json!({"greenlight": {"startedAtMs": 1_000, "hop": u32::MAX}});
        assert_eq!(
            Progress::of(&endless, 9_000).hop,
            0,
            "a chain never wraps around"
        );
    }
}
