//! A CodeDeploy hook binary under the Runtime API emulator, reporting to a fake CodeDeploy: start
//! it with an environment, invoke it with a Lambda deadline, and see what CodeDeploy received,
//! when, what the invocation answered, and what the process logged.

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{FakeCodeDeploy, FunctionProcess, InvocationResult, RuntimeApi};

/// A hook process and the fake CodeDeploy it reports to. Stops when dropped.
pub struct HookHarness {
    pub codedeploy: FakeCodeDeploy,
    pub api: RuntimeApi,
    pub function: FunctionProcess,
}

/// What one invocation produced.
#[derive(Debug)]
pub struct HookRun {
    pub answer: InvocationResult,
    /// The statuses CodeDeploy received during this invocation, in order.
    pub reported: Vec<String>,
    /// When the first status reached CodeDeploy.
    pub reported_at: Option<Instant>,
    /// The invocation's Lambda deadline.
    pub deadline: Instant,
    /// When the invocation answered.
    pub answered_at: Instant,
}

impl HookRun {
    /// The invocation's answer (the verdict), or a panic naming what came instead.
    pub fn response(&self) -> &Value {
        match &self.answer {
            InvocationResult::Response(body) => body,
            other => panic!("expected a hook response, got {other:?}"),
        }
    }

    /// The verdict's reason.
    pub fn reason(&self) -> String {
        self.response()["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// True when a status reached CodeDeploy, and the invocation answered, before the deadline.
    pub fn in_time(&self) -> bool {
        self.reported_at.is_some_and(|at| at < self.deadline) && self.answered_at < self.deadline
    }
}

impl HookHarness {
    /// Starts `binary` reporting to a new fake CodeDeploy, with `env` added to the Lambda
    /// environment.
    pub async fn start(binary: &Path, env: &[(&str, OsString)]) -> Self {
        let codedeploy = FakeCodeDeploy::start().await;
        let api = RuntimeApi::start().await;
        let mut all: Vec<(&str, OsString)> =
            vec![("AWS_ENDPOINT_URL_CODEDEPLOY", codedeploy.url().into())];
        all.extend(env.iter().cloned());
        let function =
            FunctionProcess::spawn_os(binary, &api, &all).expect("start the function binary");
        HookHarness {
            codedeploy,
            api,
            function,
        }
    }

    /// Invokes once with a Lambda deadline `timeout` away.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> HookRun {
        let before = self.codedeploy.calls().len();
        let deadline = Instant::now() + timeout;
        let answer = self.api.invoke(event, timeout).await;
        let answered_at = Instant::now();
        let accepted: Vec<_> = self.codedeploy.calls()[before..]
            .iter()
            .filter(|c| c.operation == "PutLifecycleEventHookExecutionStatus")
            .cloned()
            .collect();
        HookRun {
            answer,
            reported: accepted
                .iter()
                .map(|c| c.body["status"].as_str().unwrap_or_default().to_string())
                .collect(),
            reported_at: accepted.first().map(|c| c.at),
            deadline,
            answered_at,
        }
    }

    /// Everything the process printed so far.
    pub fn logs(&self) -> String {
        self.function.output()
    }
}

/// The sample CodeDeploy hook event.
pub fn sample_event() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/after-allow-test-traffic.json");
    let text = std::fs::read_to_string(&path).expect("read the sample event");
    serde_json::from_str(&text).expect("the sample event is JSON")
}
