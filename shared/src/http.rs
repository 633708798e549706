//! The one HTTP client a process uses for checks, built once at start-up, and what its errors
//! mean in words a user can act on.

use std::time::Duration;

/// Builds the check client: rustls, no redirects followed (a redirect from the test listener to
/// production would test blue), no proxies, connection reuse across checks and invocations.
pub fn build_check_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("greenlight/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(30))
        .no_proxy()
        .tcp_nodelay(true)
        // Answers are judged as sent unless a plan asks for compression (see `client_for`).
        .no_gzip()
        .no_brotli()
        .build()
}

/// Whether `plan` leaves the client as it is (no TLS options, no compression): the process's own
/// client serves it, and sampling workers may send on connections of their own (`crate::lane`).
pub(crate) fn asks_nothing_of_the_client(plan: &crate::plan::Plan) -> bool {
    plan.tls.is_none() && !plan.compression
}

/// The client for one run of `plan`: the process's own, unless the plan says how to trust
/// HTTPS targets or asks for compressed answers; then one built for it, with `server_name`
/// resolved to the target's address now (load balancer addresses change, so this is done for
/// every run).
pub async fn client_for(
    plan: &crate::plan::Plan,
    base: &reqwest::Client,
) -> Result<reqwest::Client, String> {
    if asks_nothing_of_the_client(plan) {
        return Ok(base.clone());
    }
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("greenlight/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .no_proxy()
        .tcp_nodelay(true)
        .gzip(plan.compression)
        .brotli(plan.compression);
    let Some(tls) = &plan.tls else {
        return builder
            .build()
            .map_err(|e| format!("could not build the HTTP client: {e}"));
    };
    builder = builder.tls_certs_merge(tls.extra_roots.iter().cloned());
    if tls.insecure_skip_verify {
        tracing::warn!("tls.insecure_skip_verify: certificates are NOT verified for this run");
        builder = builder.danger_accept_invalid_certs(true);
    }
    if let Some((name, host, port)) = &tls.server_name {
        let lookup = tokio::net::lookup_host((host.as_str(), *port));
        let addresses: Vec<std::net::SocketAddr> =
            match tokio::time::timeout(Duration::from_secs(2), lookup).await {
                Ok(Ok(found)) => found.collect(),
                Ok(Err(e)) => {
                    return Err(format!("tls.server_name: could not resolve {host}: {e}"))
                }
                Err(_) => {
                    return Err(format!(
                        "tls.server_name: resolving {host} took longer than 2s"
                    ))
                }
            };
        builder = builder.resolve_to_addrs(name, &addresses);
    }
    builder
        .build()
        .map_err(|e| format!("could not build the HTTPS client for tls: {e}"))
}

/// Names what went wrong (without the URL, which the report already shows) in words, with what
/// to do where that is clear: "the certificate is for checkout.example.com, not
/// internal-alb-1.elb.amazonaws.com" rather than a TLS library's variant name.
pub fn describe_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "reading the answer failed"
    } else {
        "the request failed"
    };
    // reqwest's own message names the URL; what it wraps does not.
    match std::error::Error::source(error) {
        Some(cause) => describe_cause(cause, kind),
        None => format!("{kind}: {error}"),
    }
}

/// The DNS failure, in words.
pub(crate) const DNS_FAILED: &str = "could not resolve the host name (DNS): check the URL's host, and that the function's network (VPC) can resolve it";

/// [`describe_error`] for an error of the HTTP stack itself (not naming the URL): `kind` says
/// what failed when nothing more telling is found.
pub(crate) fn describe_cause(first: &(dyn std::error::Error + 'static), kind: &str) -> String {
    let mut chain: Vec<&(dyn std::error::Error + 'static)> = Vec::new();
    let mut source = Some(first);
    while let Some(cause) = source {
        chain.push(cause);
        source = cause.source();
    }
    // An io::Error's source() skips the error it wraps; look inside, however deep it nests.
    let mut inner_chain = Vec::new();
    for cause in &chain {
        let mut current: &(dyn std::error::Error + 'static) = *cause;
        inner_chain.push(current);
        while let Some(io) = current.downcast_ref::<std::io::Error>() {
            match io.get_ref() {
                Some(inner) => {
                    current = inner;
                    inner_chain.push(current);
                }
                None => break,
            }
        }
    }
    for cause in &inner_chain {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return describe_tls(tls);
        }
    }
    for cause in &inner_chain {
        if let Some(text) = cause.downcast_ref::<std::io::Error>().and_then(describe_io) {
            return text;
        }
    }
    let text: Vec<String> = chain.iter().map(|c| c.to_string()).collect();
    let root = text.last().cloned().unwrap_or_default();
    let all = text.join(": ").to_ascii_lowercase();
    if all.contains("dns error") || all.contains("failed to lookup address") {
        return DNS_FAILED.into();
    }
    if all.contains("invalid http version")
        || all.contains("invalid status line")
        || all.contains("http/0.9")
        || all.contains("parse error")
    {
        return "the server did not answer in HTTP; if it serves HTTPS on this port, use https://"
            .into();
    }
    if all.contains("connection closed before message completed")
        || all.contains("incompletemessage")
    {
        return "the server closed the connection before it finished answering".into();
    }
    format!("{kind}: {root}")
}

fn describe_io(io: &std::io::Error) -> Option<String> {
    use std::io::ErrorKind::*;
    Some(match io.kind() {
        ConnectionRefused => {
            "could not connect: connection refused (nothing listens on that host and port)".into()
        }
        ConnectionReset => "the server reset the connection".into(),
        ConnectionAborted => "the connection was aborted".into(),
        TimedOut => "could not connect: the connection timed out".into(),
        HostUnreachable | NetworkUnreachable => {
            "could not connect: the host or network is unreachable (check the function's VPC routes and security groups)".into()
        }
        UnexpectedEof => "the server closed the connection before it finished answering".into(),
        _ => return None,
    })
}

fn describe_tls(error: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::NotValidForNameContext { expected, presented } => {
                let names = if presented.is_empty() {
                    "no name at all".to_string()
                } else {
                    presented.iter().map(|p| plain_name(p)).collect::<Vec<_>>().join(", ")
                };
                format!(
                    "TLS: the certificate is for {names}, not {}; send the name the certificate has (tls.server_name) or use a URL with it",
                    expected.to_str()
                )
            }
            C::NotValidForName => "TLS: the certificate is not for this host name; send the name the certificate has (tls.server_name)".into(),
            C::UnknownIssuer => "TLS: the certificate is signed by an authority this function does not trust; name your CA bundle in tls.ca_file".into(),
            C::Expired | C::ExpiredContext { .. } => "TLS: the server's certificate has expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => "TLS: the server's certificate is not valid yet (check the clocks)".into(),
            C::BadSignature => "TLS: the certificate's signature does not verify".into(),
            C::Other(other) if other.to_string().contains("CaUsedAsEndEntity") => {
                "TLS: the server presents a CA certificate as its own certificate; its certificate chain is set up wrongly".into()
            }
            other => format!("TLS: the server's certificate is not acceptable ({other:?})"),
        },
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "TLS: the server answered in plain HTTP, not TLS; use http://, or the port that serves HTTPS".into()
        }
        rustls::Error::AlertReceived(alert) => {
            format!("TLS: the server refused the handshake ({alert:?}); it may need a client certificate or another server name")
        }
        rustls::Error::NoCertificatesPresented => "TLS: the server sent no certificate".into(),
        other => format!("TLS: the handshake failed ({other})"),
    }
}

/// `DnsName("checkout.example.com")` → `checkout.example.com`, as rustls presents names.
fn plain_name(presented: &str) -> String {
    match (presented.find('('), presented.rfind(')')) {
        (Some(open), Some(close)) if open < close => {
            presented[open + 1..close].trim_matches('"').to_string()
        }
        _ => presented.to_string(),
    }
}
