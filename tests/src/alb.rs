//! A load balancer listener stand-in: a reverse proxy on 127.0.0.1 that splits requests between a
//! blue and a green target by weight, as CodeDeploy and ECS change listener weights during a
//! blue/green deployment. It counts what each target answered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};

use crate::server::{respond, HttpResponse, LoopbackServer};

/// Which target group a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Blue,
    Green,
}

/// Requests and 5xx answers per target since the listener started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub blue: u64,
    pub green: u64,
    pub blue_5xx: u64,
    pub green_5xx: u64,
}

/// Told of every answer a target gave through the listener: which side, its status, how long
/// the target took (what an ALB publishes as `TargetResponseTime`).
pub type AnswerObserver = Arc<dyn Fn(Side, u16, Duration) + Send + Sync>;

struct State {
    blue: String,
    green: Option<String>,
    /// Percentage of requests that go to green.
    green_weight: u8,
    counts: Counts,
    observer: Option<AnswerObserver>,
}

pub struct Listener {
    server: LoopbackServer,
    state: Arc<Mutex<State>>,
}

impl Listener {
    /// A listener that forwards everything to `blue`.
    pub async fn start(blue: &str) -> Self {
        let state = Arc::new(Mutex::new(State {
            blue: blue.into(),
            green: None,
            green_weight: 0,
            counts: Counts::default(),
            observer: None,
        }));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let sequence = Arc::new(AtomicU64::new(0));
        let s = state.clone();
        let server = LoopbackServer::start(move |request| {
            let n = sequence.fetch_add(1, Ordering::SeqCst);
            let (side, target) = {
                let st = s.lock().unwrap();
                // Spread green's share evenly: request n goes to green when its slot in each
                // hundred falls under the weight.
                match &st.green {
                    Some(green) if (n % 100) < u64::from(st.green_weight) => {
                        (Side::Green, green.clone())
                    }
                    _ => (Side::Blue, st.blue.clone()),
                }
            };
            let (client, state) = (client.clone(), s.clone());
            async move {
                let started = Instant::now();
                let response = forward(&client, &target, request).await;
                let took = started.elapsed();
                let mut st = state.lock().unwrap();
                if let Some(observer) = &st.observer {
                    observer(side, response.status().as_u16(), took);
                }
                let failed = response.status().is_server_error();
                match side {
                    Side::Blue => {
                        st.counts.blue += 1;
                        st.counts.blue_5xx += u64::from(failed);
                    }
                    Side::Green => {
                        st.counts.green += 1;
                        st.counts.green_5xx += u64::from(failed);
                    }
                }
                response
            }
        })
        .await
        .expect("start a listener on 127.0.0.1");
        Listener { server, state }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Registers green's target (weight unchanged).
    pub fn set_green(&self, green: Option<&str>) {
        self.state.lock().unwrap().green = green.map(str::to_string);
    }

    /// Sends `percent` of the requests to green.
    pub fn shift_to_green(&self, percent: u8) {
        self.state.lock().unwrap().green_weight = percent.min(100);
    }

    pub fn green_weight(&self) -> u8 {
        self.state.lock().unwrap().green_weight
    }

    pub fn counts(&self) -> Counts {
        self.state.lock().unwrap().counts
    }

    /// `observer` is told of every answer from now on.
    pub fn observe(&self, observer: AnswerObserver) {
        self.state.lock().unwrap().observer = Some(observer);
    }
}

async fn forward(client: &reqwest::Client, target: &str, request: Request<Bytes>) -> HttpResponse {
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut outgoing = client.request(request.method().clone(), format!("{target}{path}"));
    for (name, value) in request.headers() {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name, value);
        }
    }
    match outgoing.body(request.into_body()).send().await {
        Err(_) => respond(
            502,
            "text/plain",
            "502 Bad Gateway: the target did not answer",
        ),
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            let body = answer.bytes().await.unwrap_or_default();
            let mut response = Response::new(Full::new(body));
            *response.status_mut() = status;
            for (name, value) in headers.iter() {
                if name != "content-length" && name != "transfer-encoding" && name != "connection" {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
    }
}
