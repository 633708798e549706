//! A demo service that plays blue or green on 127.0.0.1, healthy or misbehaving on purpose.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::server::{respond, HttpResponse, LoopbackServer};

/// How the service answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// `/health` → 200 `UP`; `/api/version` → `{"color": "green", "version": "2.0.0"}`.
    Healthy,
    /// Every request → this status.
    Status(u16),
    /// Healthy, but it is blue: `{"color": "blue", "version": "1.0.0"}`.
    ServesBlue,
    /// The first `n` requests → 503, then healthy.
    FailsFirst(u32),
    /// Healthy after this delay.
    Slow(Duration),
    /// Accepts the connection and never answers.
    Hangs,
    /// 200 with every request header echoed in the body, as a debugging endpoint might.
    EchoesHeaders,
    /// 200 with the request headers echoed as a JSON object (so values appear JSON-escaped).
    EchoesHeadersAsJson,
    /// Fixed answers by path (anything else → 404): `(path, status, content type, body)`.
    Routes(Arc<Vec<Route>>),
    /// Each answer decided by a script from the request's number, path and the requests in
    /// flight: error rates, warm-ups, latency leaks, bugs under concurrency.
    Scripted(Script),
}

/// What a scripted green is asked about each request.
#[derive(Debug, Clone)]
pub struct Call {
    /// 0 for the first request.
    pub n: u32,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// Requests being answered at this moment, this one included.
    pub in_flight: u32,
    /// Since the server started.
    pub since_start: Duration,
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
    pub content_type: &'static str,
    pub body: bytes::Bytes,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<bytes::Bytes>) -> Self {
        Reply {
            status,
            delay: Duration::ZERO,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// The script of [`Behaviour::Scripted`].
#[derive(Clone)]
pub struct Script(pub Arc<dyn Fn(&Call) -> Reply + Send + Sync>);

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Script")
    }
}

impl Behaviour {
    pub fn scripted(script: impl Fn(&Call) -> Reply + Send + Sync + 'static) -> Self {
        Behaviour::Scripted(Script(Arc::new(script)))
    }
}

/// One fixed answer of [`Behaviour::Routes`].
#[derive(Debug, Clone)]
pub struct Route {
    pub path: String,
    pub status: u16,
    pub content_type: &'static str,
    pub body: bytes::Bytes,
}

impl Route {
    pub fn new(
        path: &str,
        status: u16,
        content_type: &'static str,
        body: impl Into<bytes::Bytes>,
    ) -> Self {
        Route {
            path: path.into(),
            status,
            content_type,
            body: body.into(),
        }
    }
}

impl Behaviour {
    /// Fixed answers by path.
    pub fn routes(routes: impl IntoIterator<Item = Route>) -> Self {
        Behaviour::Routes(Arc::new(routes.into_iter().collect()))
    }
}

/// One request the service received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

pub struct GreenServer {
    server: LoopbackServer,
    received: Arc<Mutex<Vec<Received>>>,
    /// How long the server itself took to answer each request.
    busy: Arc<Mutex<Vec<Duration>>>,
}

impl GreenServer {
    pub async fn start(behaviour: Behaviour) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicU32::new(0));
        let log = received.clone();
        let busy = Arc::new(Mutex::new(Vec::new()));
        let busy_log = busy.clone();
        let in_flight = Arc::new(AtomicU32::new(0));
        let born = std::time::Instant::now();
        let server = LoopbackServer::start(move |request| {
            let behaviour = behaviour.clone();
            let n = count.fetch_add(1, Ordering::SeqCst);
            log.lock().unwrap().push(Received {
                method: request.method().to_string(),
                path: request
                    .uri()
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                headers: request
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                    .collect(),
            });
            let path = request.uri().path().to_string();
            let echoed: String = request
                .headers()
                .iter()
                .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or_default()))
                .collect();
            let echoed_json = serde_json::Value::Object(
                request
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().into()))
                    .collect(),
            )
            .to_string();
            let busy_log = busy_log.clone();
            let started = std::time::Instant::now();
            let in_flight = in_flight.clone();
            let now_in_flight = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            let call = Call {
                n,
                method: request.method().to_string(),
                path: path.clone(),
                headers: request
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                    .collect(),
                in_flight: now_in_flight,
                since_start: born.elapsed(),
            };
            async move {
                let response = match behaviour {
                    Behaviour::Healthy => healthy(&path, "green", "2.0.0"),
                    Behaviour::ServesBlue => healthy(&path, "blue", "1.0.0"),
                    Behaviour::Status(code) => respond(code, "text/plain", "internal error"),
                    Behaviour::FailsFirst(k) if n < k => respond(503, "text/plain", "warming up"),
                    Behaviour::FailsFirst(_) => healthy(&path, "green", "2.0.0"),
                    Behaviour::Slow(delay) => {
                        tokio::time::sleep(delay).await;
                        healthy(&path, "green", "2.0.0")
                    }
                    Behaviour::Hangs => std::future::pending().await,
                    Behaviour::EchoesHeaders => respond(200, "text/plain", echoed),
                    Behaviour::EchoesHeadersAsJson => respond(200, "application/json", echoed_json),
                    Behaviour::Routes(routes) => match routes.iter().find(|r| r.path == path) {
                        Some(r) => respond(r.status, r.content_type, r.body.clone()),
                        None => respond(404, "text/plain", "no such route"),
                    },
                    Behaviour::Scripted(script) => {
                        let reply = (script.0)(&call);
                        if !reply.delay.is_zero() {
                            tokio::time::sleep(reply.delay).await;
                        }
                        let mut response = respond(reply.status, reply.content_type, reply.body);
                        for (name, value) in reply.headers {
                            if let Ok(value) = hyper::header::HeaderValue::from_str(&value) {
                                response.headers_mut().insert(name, value);
                            }
                        }
                        response
                    }
                };
                in_flight.fetch_sub(1, Ordering::SeqCst);
                busy_log.lock().unwrap().push(started.elapsed());
                response
            }
        })
        .await
        .expect("start the green server on 127.0.0.1");
        GreenServer {
            server,
            received,
            busy,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.server.connections()
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The time the server itself spent answering, summed over every request so far.
    pub fn busy_time(&self) -> Duration {
        self.busy.lock().unwrap().iter().sum()
    }
}

fn healthy(path: &str, color: &str, version: &str) -> HttpResponse {
    match path {
        "/health" => respond(200, "text/plain", "UP"),
        "/api/version" => respond(
            200,
            "application/json",
            format!(r#"{{"color":"{color}","version":"{version}","status":"UP"}}"#),
        ),
        _ => respond(200, "text/plain", format!("hello from {color}")),
    }
}
