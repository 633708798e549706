//! The machinery every fake AWS service shares: an HTTP server on 127.0.0.1 that decodes calls in
//! the service's wire protocol, records them, answers from a scripted queue or from the service's
//! simulated state ("world"), and lets tests wait for calls instead of sleeping.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Request;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::server::{respond, HttpResponse, LoopbackServer};

/// The wire protocol of a service, as the AWS SDK for Rust speaks it.
#[derive(Debug, Clone, Copy)]
pub enum Protocol {
    /// `POST /`, JSON body, operation in `X-Amz-Target: <prefix>.<Operation>` (CodeDeploy, ECS).
    AwsJson11 { target_prefix: &'static str },
    /// `POST /service/<Service>/operation/<Operation>`, CBOR body (CloudWatch).
    RpcV2Cbor,
    /// `POST /`, form-encoded `Action=<Operation>&…`, XML answers (SNS).
    AwsQuery,
    /// Lambda's `Invoke` (REST-JSON): `POST /2015-03-31/functions/<name>/invocations`, the
    /// payload as the body, `X-Amz-Invocation-Type` in a header.
    LambdaInvoke,
}

/// An AWS error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsFault {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl AwsFault {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        AwsFault {
            status,
            code: code.into(),
            message: message.into(),
        }
    }
}

/// The simulated state of a service: answers operations that are not scripted.
pub trait World: Send + 'static {
    fn call(&mut self, operation: &str, input: &Value) -> Result<Value, AwsFault>;
}

/// How the fake answers one call, overriding the world.
#[derive(Debug, Clone)]
pub enum FakeAnswer {
    /// Let the world answer.
    Ok,
    /// An AWS error.
    Error(AwsFault),
    /// Never answer.
    Hang,
}

impl FakeAnswer {
    pub fn error(status: u16, code: &str) -> Self {
        FakeAnswer::Error(AwsFault::new(
            status,
            code,
            format!("{code} (scripted by the fake)"),
        ))
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

struct Inner<W> {
    calls: Vec<AwsCall>,
    scripted: VecDeque<(Option<String>, FakeAnswer)>,
    always: Option<FakeAnswer>,
    world: W,
}

/// Told of every call a service receives.
pub type CallObserver = Box<dyn Fn(&AwsCall) + Send + Sync>;

struct Shared<W> {
    inner: Mutex<Inner<W>>,
    changed: Notify,
    protocol: Protocol,
    /// Told of every call as it arrives (the stand-in prints them).
    observer: Option<CallObserver>,
}

/// A running fake AWS service. Stops when dropped.
pub struct FakeService<W> {
    server: Option<LoopbackServer>,
    shared: Arc<Shared<W>>,
}

impl<W: World> FakeService<W> {
    pub async fn launch(protocol: Protocol, world: W) -> Self {
        let mut service = Self::detached(protocol, world, None);
        let s = service.shared.clone();
        let server = LoopbackServer::start(move |request| {
            let response = answer(request, &s);
            async move {
                match response {
                    Some(response) => response,
                    None => std::future::pending().await,
                }
            }
        })
        .await
        .expect("start a fake AWS service on 127.0.0.1");
        service.server = Some(server);
        service
    }

    /// The service without a server of its own: requests reach it through [`FakeService::handle`]
    /// (the stand-in serves several services on one port). `observer` is told of every call.
    pub fn detached(protocol: Protocol, world: W, observer: Option<CallObserver>) -> Self {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                calls: Vec::new(),
                scripted: VecDeque::new(),
                always: None,
                world,
            }),
            changed: Notify::new(),
            protocol,
            observer,
        });
        FakeService {
            server: None,
            shared,
        }
    }

    /// Answers one request, as the service's own server would.
    pub fn handle(
        &self,
        request: Request<Bytes>,
    ) -> impl std::future::Future<Output = HttpResponse> + Send + 'static {
        let response = answer(request, &self.shared);
        async move {
            match response {
                Some(response) => response,
                None => std::future::pending().await,
            }
        }
    }

    /// The service's own URL (a detached service has none: use the stand-in's).
    pub fn url(&self) -> String {
        self.server
            .as_ref()
            .map(LoopbackServer::url)
            .unwrap_or_default()
    }

    /// The next calls (to any operation) get these answers, in order.
    pub fn answer_next(&self, answers: impl IntoIterator<Item = FakeAnswer>) {
        self.lock()
            .scripted
            .extend(answers.into_iter().map(|a| (None, a)));
    }

    /// The next calls to `operation` get these answers, in order.
    pub fn answer_next_for(&self, operation: &str, answers: impl IntoIterator<Item = FakeAnswer>) {
        self.lock().scripted.extend(
            answers
                .into_iter()
                .map(|a| (Some(operation.to_string()), a)),
        );
    }

    /// Every call without a scripted answer gets this one.
    pub fn answer_always(&self, answer: FakeAnswer) {
        self.lock().always = Some(answer);
    }

    pub fn calls(&self) -> Vec<AwsCall> {
        self.lock().calls.clone()
    }

    pub fn calls_to(&self, operation: &str) -> Vec<AwsCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.operation == operation)
            .collect()
    }

    /// Reads or changes the simulated state.
    pub fn world<R>(&self, f: impl FnOnce(&mut W) -> R) -> R {
        f(&mut self.lock().world)
    }

    /// Waits until at least `count` calls arrived, or `limit` passes; returns the calls so far.
    pub async fn wait_for_calls(&self, count: usize, limit: Duration) -> Vec<AwsCall> {
        let until = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.shared.changed.notified();
            let calls = self.calls();
            if calls.len() >= count || tokio::time::Instant::now() >= until {
                return calls;
            }
            let _ = tokio::time::timeout_at(until, notified).await;
        }
    }

    /// Waits until `check` finds what it looks for in the simulated state, or `limit` passes.
    pub async fn wait_until<R>(
        &self,
        limit: Duration,
        check: impl Fn(&W) -> Option<R>,
    ) -> Option<R> {
        let until = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.shared.changed.notified();
            if let Some(found) = check(&self.lock().world) {
                return Some(found);
            }
            if tokio::time::Instant::now() >= until {
                return None;
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<W>> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `None` means: never answer.
fn answer<W: World>(request: Request<Bytes>, shared: &Shared<W>) -> Option<HttpResponse> {
    let protocol = shared.protocol;
    let (operation, input) = match decode(protocol, &request) {
        Ok(decoded) => decoded,
        Err(fault) => return Some(encode_fault(protocol, &fault)),
    };
    let result = {
        let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
        let call = AwsCall {
            operation: operation.clone(),
            body: input.clone(),
            at: Instant::now(),
        };
        if let Some(observer) = &shared.observer {
            observer(&call);
        }
        inner.calls.push(call);
        let position = inner
            .scripted
            .iter()
            .position(|(op, _)| op.as_deref().is_none_or(|o| o == operation));
        let scripted = position
            .and_then(|i| inner.scripted.remove(i))
            .map(|(_, a)| a);
        match scripted
            .or_else(|| inner.always.clone())
            .unwrap_or(FakeAnswer::Ok)
        {
            FakeAnswer::Hang => None,
            FakeAnswer::Error(fault) => Some(Err(fault)),
            FakeAnswer::Ok => Some(inner.world.call(&operation, &input)),
        }
    };
    shared.changed.notify_waiters();
    result.map(|r| match r {
        Ok(output) => encode_output(protocol, &operation, &output),
        Err(fault) => encode_fault(protocol, &fault),
    })
}

fn decode(protocol: Protocol, request: &Request<Bytes>) -> Result<(String, Value), AwsFault> {
    match protocol {
        Protocol::AwsJson11 { target_prefix } => {
            let target = request
                .headers()
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let operation = target
                .strip_prefix(target_prefix)
                .and_then(|t| t.strip_prefix('.'))
                .ok_or_else(|| {
                    AwsFault::new(
                        400,
                        "UnknownOperationException",
                        format!("unexpected X-Amz-Target \"{target}\""),
                    )
                })?;
            let input = if request.body().is_empty() {
                json!({})
            } else {
                serde_json::from_slice(request.body())
                    .map_err(|e| AwsFault::new(400, "SerializationException", e.to_string()))?
            };
            Ok((operation.to_string(), input))
        }
        Protocol::RpcV2Cbor => {
            let path = request.uri().path();
            let operation = path
                .rsplit_once("/operation/")
                .map(|(_, op)| op.to_string())
                .ok_or_else(|| {
                    AwsFault::new(
                        404,
                        "UnknownOperationException",
                        format!("unexpected path {path}"),
                    )
                })?;
            let input = if request.body().is_empty() {
                json!({})
            } else {
                ciborium::from_reader::<ciborium::Value, _>(request.body().as_ref())
                    .map(from_cbor)
                    .map_err(|e| AwsFault::new(400, "SerializationException", e.to_string()))?
            };
            Ok((operation, input))
        }
        Protocol::LambdaInvoke => {
            let path = request.uri().path();
            let name = path
                .strip_prefix("/2015-03-31/functions/")
                .and_then(|rest| rest.strip_suffix("/invocations"))
                .ok_or_else(|| {
                    AwsFault::new(
                        404,
                        "UnknownOperationException",
                        format!("unexpected path {path}"),
                    )
                })?;
            let payload: Value = if request.body().is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(request.body()).map_err(|e| {
                    AwsFault::new(400, "InvalidRequestContentException", e.to_string())
                })?
            };
            let invocation_type = request
                .headers()
                .get("x-amz-invocation-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("RequestResponse");
            Ok((
                "Invoke".to_string(),
                json!({"FunctionName": form_decode(name), "InvocationType": invocation_type, "Payload": payload}),
            ))
        }
        Protocol::AwsQuery => {
            let text = String::from_utf8_lossy(request.body());
            let mut input = serde_json::Map::new();
            for pair in text.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                input.insert(form_decode(key), Value::String(form_decode(value)));
            }
            let operation = input
                .get("Action")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| AwsFault::new(400, "MissingAction", "no Action in the query"))?;
            Ok((operation, Value::Object(input)))
        }
    }
}

/// A CBOR request as JSON: a tagged value (a timestamp, tag 1) becomes the value it tags.
fn from_cbor(value: ciborium::Value) -> Value {
    use ciborium::Value as C;
    match value {
        C::Null => Value::Null,
        C::Bool(b) => Value::Bool(b),
        C::Integer(i) => json!(i128::from(i)),
        C::Float(f) => json!(f),
        C::Text(t) => Value::String(t),
        C::Bytes(b) => Value::String(String::from_utf8_lossy(&b).into_owned()),
        C::Array(items) => Value::Array(items.into_iter().map(from_cbor).collect()),
        C::Map(entries) => Value::Object(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        C::Text(t) => t,
                        other => from_cbor(other).to_string(),
                    };
                    (key, from_cbor(v))
                })
                .collect(),
        ),
        C::Tag(_, inner) => from_cbor(*inner),
        _ => Value::Null,
    }
}

/// A JSON answer as CBOR; `{"$timestamp": seconds}` becomes a timestamp (tag 1), as Smithy's
/// RPC v2 CBOR writes them.
fn to_cbor(value: &Value) -> ciborium::Value {
    use ciborium::Value as C;
    match value {
        Value::Null => C::Null,
        Value::Bool(b) => C::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => C::Integer(i.into()),
            None => C::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => C::Text(s.clone()),
        Value::Array(items) => C::Array(items.iter().map(to_cbor).collect()),
        Value::Object(map) => {
            if let (1, Some(seconds)) = (map.len(), map.get("$timestamp")) {
                return C::Tag(1, Box::new(C::Float(seconds.as_f64().unwrap_or_default())));
            }
            C::Map(
                map.iter()
                    .map(|(k, v)| (C::Text(k.clone()), to_cbor(v)))
                    .collect(),
            )
        }
    }
}

/// `application/x-www-form-urlencoded` text: `+` is a space, `%XX` a byte.
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query-protocol answer: `<OpResponse><OpResult>…</OpResult></OpResponse>`; objects become
/// nested elements and lists `<member>` elements, as the query protocol writes them.
fn query_xml(operation: &str, output: &Value) -> String {
    format!(
        "<{operation}Response xmlns=\"http://fake/\"><{operation}Result>{}</{operation}Result><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></{operation}Response>",
        xml_fields(output)
    )
}

fn xml_fields(value: &Value) -> String {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("<{k}>{}</{k}>", xml_fields(v)))
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|v| format!("<member>{}</member>", xml_fields(v)))
            .collect(),
        Value::String(text) => xml_escape(text),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn encode_output(protocol: Protocol, operation: &str, output: &Value) -> HttpResponse {
    match protocol {
        Protocol::AwsJson11 { .. } => {
            respond(200, "application/x-amz-json-1.1", output.to_string())
        }
        Protocol::RpcV2Cbor => cbor(200, output),
        Protocol::AwsQuery => respond(200, "text/xml", query_xml(operation, output)),
        // An asynchronous invocation is accepted with 202 and no body.
        Protocol::LambdaInvoke => respond(202, "application/json", ""),
    }
}

fn encode_fault(protocol: Protocol, fault: &AwsFault) -> HttpResponse {
    let body = json!({"__type": fault.code, "message": fault.message});
    let mut response = match protocol {
        Protocol::AwsJson11 { .. } => {
            respond(fault.status, "application/x-amz-json-1.1", body.to_string())
        }
        Protocol::LambdaInvoke => respond(fault.status, "application/json", body.to_string()),
        Protocol::RpcV2Cbor => cbor(fault.status, &body),
        Protocol::AwsQuery => respond(
            fault.status,
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>fake</RequestId></ErrorResponse>",
                xml_escape(&fault.code),
                xml_escape(&fault.message)
            ),
        ),
    };
    if let Ok(code) = fault.code.parse() {
        response.headers_mut().insert("x-amzn-errortype", code);
    }
    response
}

fn cbor(status: u16, value: &Value) -> HttpResponse {
    let mut bytes = Vec::new();
    ciborium::into_writer(&to_cbor(value), &mut bytes).expect("a JSON value encodes as CBOR");
    let mut response = respond(status, "application/cbor", bytes);
    response.headers_mut().insert(
        "smithy-protocol",
        "rpc-v2-cbor".parse().expect("header value"),
    );
    response
}
