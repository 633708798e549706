//! A sampling worker's own connections to green: plain HTTP/1.1, driven by the worker itself.
//!
//! Sampled and load checks send thousands of requests. Through the shared client each one passes
//! a connection pool and a channel to the connection's task and back. A lane is one worker's
//! own connection, polled inside that worker's task: no pool, no hand-off, so on a machine green
//! shares with the load generator, the generator leaves more of it to green (the load benchmark
//! in bench/ is a ratio to wrk's rate against the same server).
//!
//! Only what the shared client would send the same way goes through a lane: `http://` URLs of a
//! plan without TLS options or compression. The server sees the same thing either way: the
//! request line, `Host`, `User-Agent: greenlight/…` and `Accept: */*` unless the check sets them,
//! the check's headers and body; no proxy, no redirect followed. A connection is used again only
//! after an answer was read to its end; one cut short (a timeout, a body over the cap) is closed.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1;
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::http::describe_cause;
use crate::plan::Check;

/// As long as the shared client waits for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections a lane keeps open (one per origin; a check's routes rarely have more).
const KEPT: usize = 4;
const USER_AGENT_VALUE: &str = concat!("greenlight/", env!("CARGO_PKG_VERSION"));

type Connection = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// One worker's connections.
#[derive(Default)]
pub(crate) struct Lane {
    open: Vec<Open>,
}

/// An open connection to `origin`.
struct Open {
    origin: (String, u16),
    sender: http1::SendRequest<Full<Bytes>>,
    /// `None` once the connection has ended.
    connection: Option<Pin<Box<Connection>>>,
}

/// Polls `work` until it ends, driving `connection` (which reads and writes for it) meanwhile.
/// A connection that ends is dropped, which ends whatever waits on it.
async fn drive<F: Future>(connection: &mut Option<Pin<Box<Connection>>>, work: F) -> F::Output {
    let mut work = pin!(work);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        if let Some(c) = connection {
            if c.as_mut().poll(cx).is_ready() {
                *connection = None;
                return work.as_mut().poll(cx);
            }
        }
        Poll::Pending
    })
    .await
}

/// Whether `check` can go through a lane (a plain `http://` URL).
pub(crate) fn carries(check: &Check) -> bool {
    check.url.scheme() == "http" && check.url.host().is_some()
}

/// An answer arriving through a lane; its connection returns to the lane once the body was read
/// to its end.
pub(crate) struct Answer<'a> {
    lane: &'a mut Lane,
    open: Option<Open>,
    pub status: u16,
    pub headers: HeaderMap,
    body: Incoming,
}

impl Answer<'_> {
    /// The body's length when the server said it.
    pub fn content_length(&self) -> Option<u64> {
        self.body.size_hint().exact()
    }

    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            let Some(open) = self.open.as_mut() else {
                return Ok(None);
            };
            match drive(&mut open.connection, self.body.frame()).await {
                None => {
                    // Read to its end: the connection may carry the next request.
                    let open = self.open.take();
                    if let Some(open) =
                        open.filter(|o| o.connection.is_some() && !o.sender.is_closed())
                    {
                        self.lane.keep(open);
                    }
                    return Ok(None);
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
                Some(Err(e)) => {
                    self.open = None;
                    return Err(describe_cause(&e, "reading the answer failed"));
                }
            }
        }
    }
}

impl Lane {
    /// Sends `check`'s request on a connection of this lane (a kept one when there is one).
    pub(crate) async fn send(&mut self, check: &Check) -> Result<Answer<'_>, String> {
        let url = &check.url;
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        let kept = self
            .open
            .iter()
            .position(|o| o.origin.0 == host && o.origin.1 == port);
        let mut reused = kept.is_some();
        let mut open = match kept {
            Some(i) => self.open.swap_remove(i),
            None => connect(url, host, port).await?,
        };
        let mut message = request(check)?;
        loop {
            let (unsent, error) = match drive(&mut open.connection, open.sender.ready()).await {
                Ok(()) => {
                    let sending = open.sender.try_send_request(message);
                    match drive(&mut open.connection, sending).await {
                        Ok(response) => {
                            let (parts, body) = response.into_parts();
                            return Ok(Answer {
                                lane: self,
                                open: Some(open),
                                status: parts.status.as_u16(),
                                headers: parts.headers,
                                body,
                            });
                        }
                        Err(mut failed) => match failed.take_message() {
                            Some(unsent) => (unsent, failed.into_error()),
                            None => {
                                return Err(describe_cause(failed.error(), "the request failed"))
                            }
                        },
                    }
                }
                Err(e) => (message, e),
            };
            // A kept connection that closed while it waited (green's idle timeout) or as it was
            // taken: nothing was sent, so the request goes once more, on a new connection.
            if !reused {
                return Err(describe_cause(&error, "the request failed"));
            }
            reused = false;
            message = unsent;
            open = connect(url, host, port).await?;
        }
    }

    fn keep(&mut self, open: Open) {
        if self.open.len() >= KEPT {
            self.open.remove(0);
        }
        self.open.push(open);
    }
}

/// The request the shared client would send for `check`.
fn request(check: &Check) -> Result<hyper::Request<Full<Bytes>>, String> {
    let url = &check.url;
    let target = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    };
    let mut headers = HeaderMap::with_capacity(check.headers.len() + 3);
    if !check.headers.contains_key(HOST) {
        let host = url.host_str().unwrap_or_default();
        let value = match url.port() {
            Some(port) => HeaderValue::from_str(&format!("{host}:{port}")),
            None => HeaderValue::from_str(host),
        };
        headers.insert(
            HOST,
            value.map_err(|_| format!("the host {host} cannot be sent in a Host header"))?,
        );
    }
    if !check.headers.contains_key(USER_AGENT) {
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    }
    if !check.headers.contains_key(ACCEPT) {
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
    }
    for (name, value) in &check.headers {
        headers.append(name, value.clone());
    }
    let body = check.body.clone().map(Bytes::from).unwrap_or_default();
    let mut request = hyper::Request::new(Full::new(body));
    *request.method_mut() = check.method.clone();
    *request.uri_mut() = target
        .parse()
        .map_err(|_| format!("the path {target} cannot be sent"))?;
    *request.headers_mut() = headers;
    Ok(request)
}

/// A new connection to `url`'s host, within [`CONNECT_TIMEOUT`].
async fn connect(url: &url::Url, host: &str, port: u16) -> Result<Open, String> {
    let addresses: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::from((ip, port))],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::from((ip, port))],
        Some(url::Host::Domain(name)) => {
            match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((name, port))).await
            {
                Ok(Ok(found)) => found.collect(),
                Ok(Err(_)) => return Err(crate::http::DNS_FAILED.into()),
                Err(_) => {
                    return Err(format!(
                        "could not resolve the host name (DNS) within {}s",
                        CONNECT_TIMEOUT.as_secs()
                    ))
                }
            }
        }
        None => return Err("the URL has no host".into()),
    };
    let connecting = async {
        let mut last = None;
        for address in &addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no address")))
    };
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(describe_cause(&e, "could not connect")),
        Err(_) => {
            return Err(format!(
                "could not connect: no connection within {}s",
                CONNECT_TIMEOUT.as_secs()
            ))
        }
    };
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| describe_cause(&e, "could not connect"))?;
    Ok(Open {
        origin: (host.to_string(), port),
        sender,
        connection: Some(Box::pin(connection)),
    })
}
