//! The one HTTP client a process uses for checks, built once at start-up.

use std::time::Duration;

/// Builds the check client: rustls, no redirects followed (a redirect from the test listener to
/// production would test blue), no proxies, connection reuse across checks and invocations.
pub fn build_check_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("greenlight/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()
}
