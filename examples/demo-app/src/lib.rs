//! A small checkout-style HTTP service that can play blue or green, healthy or not:
//!
//! - `GET /health` → `200 UP`
//! - `GET /api/version` → `{"service": "checkout", "version": "2.0.0", "color": "green"}`
//! - `GET /api/orders` → `{"items": [{"id": 1, …}]}`
//! - `POST /api/orders` → `201` with the order, or `422` when `items` is empty
//!
//! Green can be told to misbehave (`Mode`), so a rehearsal can show what greenlight catches.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// How the service behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Everything works.
    Healthy,
    /// The orders API answers 500 (its database is unreachable); health and version still look fine.
    Broken,
    /// Works for the first `n` requests, then the orders API answers 500: a bug that only shows
    /// under production traffic.
    FailsAfter(u64),
    /// Works for the first `n` requests, then the orders API takes 400 ms to answer (still 200):
    /// a regression no single smoke test flags, which shows in the response-time metric.
    SlowsAfter(u64),
}

/// How long a slowed orders API takes.
pub const SLOW_ANSWER: std::time::Duration = std::time::Duration::from_millis(400);

impl FromStr for Mode {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "healthy" => Ok(Mode::Healthy),
            "broken" => Ok(Mode::Broken),
            other => {
                let count = |prefix: &str| other.strip_prefix(prefix).and_then(|n| n.parse().ok());
                match (count("fails-after-"), count("slows-after-")) {
                    (Some(n), _) => Ok(Mode::FailsAfter(n)),
                    (_, Some(n)) => Ok(Mode::SlowsAfter(n)),
                    _ => Err(format!(
                        "unknown mode \"{other}\": use healthy, broken, fails-after-N or slows-after-N"
                    )),
                }
            }
        }
    }
}

/// What one instance is.
#[derive(Debug, Clone)]
pub struct DemoApp {
    pub color: String,
    pub version: String,
    pub mode: Mode,
}

/// A running instance; stops (with every open connection) when dropped.
pub struct Running {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DemoApp {
    /// Serves on `address` (e.g. `127.0.0.1:0` for any free port).
    pub async fn serve(self, address: &str) -> std::io::Result<Running> {
        let listener = TcpListener::bind(address).await?;
        let addr = listener.local_addr()?;
        let app = Arc::new((self, AtomicU64::new(0)));
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                };
                let Ok((stream, _)) = accepted else { continue };
                let app = app.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let app = app.clone();
                        async move {
                            let served = app.1.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, Infallible>(app.0.answer(request, served).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Running { addr, task })
    }

    async fn answer(&self, request: Request<Incoming>, served: u64) -> Response<Full<Bytes>> {
        let (method, path) = (request.method().clone(), request.uri().path().to_string());
        let orders_fail = match self.mode {
            Mode::Healthy => false,
            Mode::Broken => true,
            Mode::FailsAfter(n) => served >= n,
            Mode::SlowsAfter(_) => false,
        };
        if matches!(self.mode, Mode::SlowsAfter(n) if served >= n) && path == "/api/orders" {
            tokio::time::sleep(SLOW_ANSWER).await;
        }
        match (method, path.as_str()) {
            (Method::GET, "/health") => text(200, "UP"),
            (Method::GET, "/api/version") => json_answer(
                200,
                json!({"service": "checkout", "version": self.version, "color": self.color}),
            ),
            (_, "/api/orders") if orders_fail => {
                json_answer(500, json!({"error": "database connection refused"}))
            }
            (Method::GET, "/api/orders") => json_answer(
                200,
                json!({"items": [{"id": 1, "total": 42.5, "served_by": self.color}]}),
            ),
            (Method::POST, "/api/orders") => {
                let body = request
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let order: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                match order["items"].as_array() {
                    Some(items) if !items.is_empty() => {
                        json_answer(201, json!({"id": 2, "items": items}))
                    }
                    _ => json_answer(422, json!({"error": "items must not be empty"})),
                }
            }
            (_, "/") => text(200, &format!("checkout {} ({})", self.version, self.color)),
            _ => json_answer(404, json!({"error": "not found"})),
        }
    }
}

fn text(status: u16, body: &str) -> Response<Full<Bytes>> {
    respond(status, "text/plain", Bytes::from(body.to_string()))
}

fn json_answer(status: u16, body: Value) -> Response<Full<Bytes>> {
    respond(status, "application/json", Bytes::from(body.to_string()))
}

fn respond(status: u16, content_type: &str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert("content-type", value);
    }
    response
}
