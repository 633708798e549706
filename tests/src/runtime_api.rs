//! A Lambda Runtime API emulator on 127.0.0.1, and a way to run a function binary under it, as
//! Lambda does: the binary polls `GET /2018-06-01/runtime/invocation/next` and posts its answer.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::Request;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::sync::{oneshot, Notify};

use crate::server::{respond, HttpResponse, LoopbackServer};

const PREFIX: &str = "/2018-06-01/runtime";

/// What the function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum InvocationResult {
    Response(Value),
    Error {
        error_type: String,
        error_message: String,
    },
    /// No answer within the limit given to `invoke`.
    NoAnswer,
}

struct Pending {
    id: String,
    event: Value,
    deadline_ms: u128,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    waiting: HashMap<String, oneshot::Sender<InvocationResult>>,
    init_error: Option<String>,
    next_id: u64,
    /// When the function first asked for an invocation: the end of its initialisation.
    first_poll: Option<std::time::Instant>,
}

pub struct RuntimeApi {
    server: LoopbackServer,
    state: Arc<Mutex<State>>,
    queued: Arc<Notify>,
    polled: Arc<Notify>,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let (queued, polled) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (s, q, p) = (state.clone(), queued.clone(), polled.clone());
        let server =
            LoopbackServer::start(move |request| route(request, s.clone(), q.clone(), p.clone()))
                .await
                .expect("start the Runtime API emulator on 127.0.0.1");
        RuntimeApi {
            server,
            state,
            queued,
            polled,
        }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.server.addr().to_string()
    }

    /// Queues one invocation with `timeout` as its Lambda deadline and waits for the answer
    /// (at most `timeout` plus a second).
    pub async fn invoke(&self, event: Value, timeout: Duration) -> InvocationResult {
        let (sender, receiver) = oneshot::channel();
        {
            let mut state = self.state.lock().unwrap();
            state.next_id += 1;
            let id = format!("invocation-{}", state.next_id);
            let deadline_ms = (SystemTime::now() + timeout)
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            state.waiting.insert(id.clone(), sender);
            state.queue.push_back(Pending {
                id,
                event,
                deadline_ms,
            });
        }
        self.queued.notify_waiters();
        match tokio::time::timeout(timeout + Duration::from_secs(1), receiver).await {
            Ok(Ok(result)) => result,
            _ => InvocationResult::NoAnswer,
        }
    }

    /// When the function first polled `GET /invocation/next`, i.e. finished initialising.
    pub fn first_poll(&self) -> Option<std::time::Instant> {
        self.state.lock().unwrap().first_poll
    }

    /// Waits (at most `limit`) for the function's first poll.
    pub async fn wait_for_first_poll(&self, limit: Duration) -> Option<std::time::Instant> {
        let until = tokio::time::Instant::now() + limit;
        loop {
            if let Some(at) = self.first_poll() {
                return Some(at);
            }
            if tokio::time::Instant::now() >= until {
                return None;
            }
            let notified = self.polled.notified();
            if self.first_poll().is_some() {
                continue;
            }
            let _ = tokio::time::timeout_at(until, notified).await;
        }
    }

    /// The error the function reported during initialisation, if any.
    pub fn init_error(&self) -> Option<String> {
        self.state.lock().unwrap().init_error.clone()
    }
}

async fn route(
    request: Request<Bytes>,
    state: Arc<Mutex<State>>,
    queued: Arc<Notify>,
    polled: Arc<Notify>,
) -> HttpResponse {
    let path = request.uri().path().to_string();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return respond(404, "text/plain", "not a Runtime API path");
    };
    if rest == "/invocation/next" {
        state
            .lock()
            .unwrap()
            .first_poll
            .get_or_insert_with(std::time::Instant::now);
        polled.notify_waiters();
        polled.notify_waiters();
        loop {
            let notified = queued.notified();
            if let Some(next) = state.lock().unwrap().queue.pop_front() {
                let mut response = respond(200, "application/json", next.event.to_string());
                let headers = response.headers_mut();
                headers.insert(
                    "lambda-runtime-aws-request-id",
                    next.id.parse().expect("id is a header value"),
                );
                headers.insert(
                    "lambda-runtime-deadline-ms",
                    next.deadline_ms.to_string().parse().expect("number"),
                );
                headers.insert(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:greenlight-local"
                        .parse()
                        .expect("arn"),
                );
                headers.insert(
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000;Sampled=0"
                        .parse()
                        .expect("trace"),
                );
                return response;
            }
            notified.await;
        }
    }
    if rest == "/init/error" {
        state.lock().unwrap().init_error =
            Some(String::from_utf8_lossy(request.body()).to_string());
        return respond(202, "application/json", "{}");
    }
    let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    if let ["invocation", id, kind @ ("response" | "error")] = parts.as_slice() {
        let body: Value = serde_json::from_slice(request.body()).unwrap_or(Value::Null);
        let result = if *kind == "response" {
            InvocationResult::Response(body)
        } else {
            InvocationResult::Error {
                error_type: body["errorType"].as_str().unwrap_or_default().to_string(),
                error_message: body["errorMessage"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            }
        };
        if let Some(sender) = state.lock().unwrap().waiting.remove(*id) {
            let _ = sender.send(result);
        }
        return respond(202, "application/json", "{}");
    }
    respond(404, "text/plain", "unknown Runtime API path")
}

/// A function binary running under a [`RuntimeApi`]. Killed when dropped; its output is kept.
pub struct FunctionProcess {
    child: tokio::process::Child,
    output: Arc<Mutex<String>>,
}

impl FunctionProcess {
    /// Starts `binary` with the Lambda environment pointing at `api`, plus `env`.
    pub fn spawn(binary: &Path, api: &RuntimeApi, env: &[(&str, String)]) -> std::io::Result<Self> {
        Self::spawn_with_args(binary, &[], api, env)
    }

    /// Like [`FunctionProcess::spawn`], with values that need not be UTF-8.
    pub fn spawn_os(
        binary: &Path,
        api: &RuntimeApi,
        env: &[(&str, std::ffi::OsString)],
    ) -> std::io::Result<Self> {
        Self::spawn_prepared(binary, &[], api, &[], |command| {
            for (name, value) in env {
                command.env(name, value);
            }
        })
    }

    /// Like [`FunctionProcess::spawn`], for a program that needs arguments (an interpreter and
    /// its script, say).
    pub fn spawn_with_args(
        program: &Path,
        args: &[&str],
        api: &RuntimeApi,
        env: &[(&str, String)],
    ) -> std::io::Result<Self> {
        Self::spawn_prepared(program, args, api, env, |_| {})
    }

    fn spawn_prepared(
        program: &Path,
        args: &[&str],
        api: &RuntimeApi,
        env: &[(&str, String)],
        prepare: impl FnOnce(&mut tokio::process::Command),
    ) -> std::io::Result<Self> {
        let mut command = tokio::process::Command::new(program);
        command.args(args);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", "greenlight-local")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "AKIDLOCAL")
            .env("AWS_SECRET_ACCESS_KEY", "local-secret")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        prepare(&mut command);
        let mut child = command.spawn()?;
        let output = Arc::new(Mutex::new(String::new()));
        for mut pipe in [
            child.stdout.take().map(Pipe::Out),
            child.stderr.take().map(Pipe::Err),
        ]
        .into_iter()
        .flatten()
        {
            let output = output.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buffer).await {
                    if n == 0 {
                        break;
                    }
                    output
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buffer[..n]));
                }
            });
        }
        Ok(FunctionProcess { child, output })
    }

    /// Everything the function printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Peak resident memory so far (VmHWM), in KiB; Linux only.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

enum Pipe {
    Out(tokio::process::ChildStdout),
    Err(tokio::process::ChildStderr),
}

impl Pipe {
    async fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Pipe::Out(p) => p.read(buffer).await,
            Pipe::Err(p) => p.read(buffer).await,
        }
    }
}
