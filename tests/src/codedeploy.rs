//! A fake of the CodeDeploy API on 127.0.0.1: awsJson1.1 over HTTP, dispatched on
//! `X-Amz-Target`, recording every call, with scriptable answers. The real SDK reaches it through
//! `AWS_ENDPOINT_URL_CODEDEPLOY` (or an explicit endpoint in tests).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::server::{respond, HttpResponse, LoopbackServer};

const TARGET_PREFIX: &str = "CodeDeploy_20141006.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// How the fake answers one call.
#[derive(Debug, Clone)]
pub enum FakeAnswer {
    /// The operation succeeds.
    Ok,
    /// An AWS error: HTTP status, error code (`__type`) and message.
    Error {
        status: u16,
        code: String,
        message: String,
    },
    /// Never answers.
    Hang,
}

impl FakeAnswer {
    pub fn error(status: u16, code: &str) -> Self {
        FakeAnswer::Error {
            status,
            code: code.into(),
            message: format!("{code} (scripted by the fake)"),
        }
    }
    pub fn throttled() -> Self {
        Self::error(400, "ThrottlingException")
    }
    pub fn internal_error() -> Self {
        Self::error(500, "InternalFailure")
    }
    pub fn access_denied() -> Self {
        Self::error(400, "AccessDeniedException")
    }
    pub fn already_completed() -> Self {
        Self::error(400, "LifecycleEventAlreadyCompletedException")
    }
}

/// One call the fake received.
#[derive(Debug, Clone)]
pub struct AwsCall {
    /// The operation, e.g. `PutLifecycleEventHookExecutionStatus`.
    pub operation: String,
    pub body: Value,
    pub at: Instant,
}

#[derive(Default)]
struct State {
    calls: Vec<AwsCall>,
    script: VecDeque<FakeAnswer>,
    always: Option<FakeAnswer>,
}

pub struct FakeCodeDeploy {
    server: LoopbackServer,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
}

impl FakeCodeDeploy {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let changed = Arc::new(Notify::new());
        let (s, n) = (state.clone(), changed.clone());
        let server = LoopbackServer::start(move |request| {
            let target = request
                .headers()
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body: Value = serde_json::from_slice(request.body()).unwrap_or(Value::Null);
            let answer = {
                let mut state = s.lock().unwrap();
                let operation = target
                    .strip_prefix(TARGET_PREFIX)
                    .unwrap_or(&target)
                    .to_string();
                state.calls.push(AwsCall {
                    operation,
                    body: body.clone(),
                    at: Instant::now(),
                });
                state
                    .script
                    .pop_front()
                    .or_else(|| state.always.clone())
                    .unwrap_or(FakeAnswer::Ok)
            };
            n.notify_waiters();
            async move { answer_call(&target, &body, answer).await }
        })
        .await
        .expect("start the fake CodeDeploy on 127.0.0.1");
        FakeCodeDeploy {
            server,
            state,
            changed,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The next calls get these answers, in order; then the default answer applies again.
    pub fn answer_next(&self, answers: impl IntoIterator<Item = FakeAnswer>) {
        self.state.lock().unwrap().script.extend(answers);
    }

    /// Every call without a scripted answer gets this one.
    pub fn answer_always(&self, answer: FakeAnswer) {
        self.state.lock().unwrap().always = Some(answer);
    }

    pub fn calls(&self) -> Vec<AwsCall> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The `status` of every `PutLifecycleEventHookExecutionStatus` call, in order.
    pub fn reported_statuses(&self) -> Vec<String> {
        self.calls()
            .iter()
            .filter(|c| c.operation == "PutLifecycleEventHookExecutionStatus")
            .map(|c| c.body["status"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Waits until at least `count` calls arrived, or `limit` passes; returns the calls so far.
    pub async fn wait_for_calls(&self, count: usize, limit: Duration) -> Vec<AwsCall> {
        let until = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            let calls = self.calls();
            if calls.len() >= count || tokio::time::Instant::now() >= until {
                return calls;
            }
            let _ = tokio::time::timeout_at(until, notified).await;
        }
    }

    /// An SDK configuration that reaches this fake with dummy credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(self.url())
            .credentials_provider(aws_credential_types::Credentials::for_tests())
            .load()
            .await
    }
}

async fn answer_call(target: &str, body: &Value, answer: FakeAnswer) -> HttpResponse {
    match answer {
        FakeAnswer::Hang => std::future::pending().await,
        FakeAnswer::Error {
            status,
            code,
            message,
        } => aws_error(status, &code, &message),
        FakeAnswer::Ok => match target.strip_prefix(TARGET_PREFIX) {
            Some("PutLifecycleEventHookExecutionStatus") => {
                let status = body["status"].as_str().unwrap_or_default();
                if !matches!(status, "Succeeded" | "Failed") {
                    return aws_error(
                        400,
                        "InvalidLifecycleEventHookExecutionStatusException",
                        "status must be Succeeded or Failed",
                    );
                }
                if body["deploymentId"].as_str().unwrap_or_default().is_empty() {
                    return aws_error(
                        400,
                        "DeploymentIdRequiredException",
                        "deploymentId is required",
                    );
                }
                respond(
                    200,
                    CONTENT_TYPE,
                    json!({"lifecycleEventHookExecutionId": body["lifecycleEventHookExecutionId"]})
                        .to_string(),
                )
            }
            _ => aws_error(
                400,
                "UnknownOperationException",
                &format!("the fake does not implement {target}"),
            ),
        },
    }
}

fn aws_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let mut response = respond(
        status,
        CONTENT_TYPE,
        json!({"__type": code, "message": message}).to_string(),
    );
    response.headers_mut().insert(
        "x-amzn-errortype",
        code.parse().expect("error code is a header value"),
    );
    response
}
