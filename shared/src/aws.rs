//! What every AWS call shares: the configuration, loaded once at start-up through the standard
//! chain (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`), and calls
//! retried until a deadline. The SDK's own retries are turned off for our clients, so that the
//! deadline, not a retry count, decides when to give up.

use std::future::Future;
use std::time::Duration;

use aws_sdk_codedeploy::config::http::HttpResponse;
use aws_sdk_codedeploy::error::{ProvideErrorMetadata, SdkError};

use crate::deadline::Deadline;

/// Credentials and region come from where Lambda puts them, and nowhere else: the environment
/// (`AWS_ACCESS_KEY_ID`, …; `AWS_REGION`), or the container credentials endpoint Lambda names
/// in `AWS_CONTAINER_CREDENTIALS_FULL_URI` (SnapStart). The default chain would go on to the EC2
/// instance metadata service, which a function never needs and which, off Lambda, means network
/// calls to 169.254.169.254 and seconds of waiting before the hook could report.
///
/// Nothing in the environment can stop this from finishing: the retry settings are greenlight's
/// own (`AWS_MAX_ATTEMPTS=abc` made the SDK's loader panic; such variables are ignored with a
/// warning), and the AWS config file is read here, as a regular file of bounded size within a
/// time limit, so `AWS_CONFIG_FILE` naming a FIFO or a stuck mount cannot block start-up.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    use aws_config::meta::credentials::CredentialsProviderChain;
    use aws_config::meta::region::RegionProviderChain;
    let env = crate::env::Env::process();
    for (name, what) in [
        (
            "AWS_MAX_ATTEMPTS",
            "greenlight retries AWS calls itself until its deadline",
        ),
        (
            "AWS_RETRY_MODE",
            "greenlight retries AWS calls itself until its deadline",
        ),
    ] {
        if env.is_present(name) {
            tracing::warn!(variable = name, "{name} is ignored: {what}");
        }
    }
    let region = RegionProviderChain::first_try(
        aws_config::environment::EnvironmentVariableRegionProvider::new(),
    );
    let region = match region.region().await {
        Some(region) => region,
        None => {
            tracing::warn!("AWS_REGION is not set; using us-east-1");
            aws_config::Region::new("us-east-1")
        }
    };
    let credentials = CredentialsProviderChain::first_try(
        "Environment",
        aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else(
        "LambdaContainer",
        aws_config::ecs::EcsCredentialsProvider::builder().build(),
    );
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(region)
        .credentials_provider(credentials)
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .profile_files(config_files(&env))
        .load()
        .await
}

/// The AWS config file (`AWS_CONFIG_FILE`, default `~/.aws/config`), read with bounds. The
/// credentials file is not read: credentials come only from the environment.
fn config_files(env: &crate::env::Env) -> aws_runtime::env_config::file::EnvConfigFiles {
    use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
    let configured = match env.setting("AWS_CONFIG_FILE") {
        Ok(path) => path,
        Err(e) => {
            tracing::warn!(error = %e, "the AWS config file is not read");
            None
        }
    };
    let explicit = configured.is_some();
    let path = configured.map(std::path::PathBuf::from).or_else(|| {
        env.setting("HOME")
            .ok()
            .flatten()
            .map(|home| std::path::Path::new(&home).join(".aws").join("config"))
    });
    let contents = match path {
        None => String::new(),
        Some(path) => {
            match crate::files::read_text(&path, CONFIG_FILE_LIMIT, crate::files::READ_TIME_LIMIT) {
                Ok(text) => text,
                Err(crate::files::FileError::NotFound { .. }) if !explicit => String::new(),
                Err(e) => {
                    tracing::warn!(error = %e, "the AWS config file (AWS_CONFIG_FILE) is not read");
                    String::new()
                }
            }
        }
    };
    EnvConfigFiles::builder()
        .with_contents(EnvConfigFileKind::Config, contents)
        .build()
}

/// An AWS config file larger than this is not read.
const CONFIG_FILE_LIMIT: usize = 256 * 1024;

/// Retry off (we retry to a deadline), a short connect timeout.
pub fn retry_config() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::disabled()
}

pub fn timeout_config() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
}

/// One attempt never waits longer than this.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// An attempt gets at least this long, when there is that much time at all.
const MIN_ATTEMPT: Duration = Duration::from_millis(150);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// An AWS call that did not succeed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AwsError {
    /// The service answered with an error that retrying will not fix.
    #[error("{code}: {message}")]
    Service { code: String, message: String },
    /// Throttling, 5xx or network errors until the deadline.
    #[error("no success before the deadline after {attempts} attempts; last error: {last_error}")]
    OutOfTime { attempts: u32, last_error: String },
}

impl AwsError {
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Service { code, .. } => Some(code),
            AwsError::OutOfTime { .. } => None,
        }
    }

    /// The caller's credentials or policy do not allow the call.
    pub fn is_access_denied(&self) -> bool {
        matches!(
            self.code(),
            Some(
                "AccessDeniedException"
                    | "AccessDenied"
                    | "UnrecognizedClientException"
                    | "InvalidSignatureException"
                    | "ExpiredTokenException"
                    | "InvalidClientTokenId"
            )
        )
    }
}

/// Calls `call` until it succeeds, fails for good, or `deadline` comes; `what` names the call in
/// retry warnings.
pub async fn call_until<T, E, F, Fut>(
    what: &str,
    deadline: Deadline,
    mut call: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let mut attempts = 0;
    let mut backoff = FIRST_BACKOFF;
    loop {
        attempts += 1;
        let limit = attempt_limit(deadline.remaining(), backoff);
        let last_error = match tokio::time::timeout(limit, call()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => match classify(&error) {
                Err(terminal) => return Err(terminal),
                Ok(retryable) => retryable,
            },
            Err(_) => format!("no answer within {}ms", limit.as_millis()),
        };
        if deadline.remaining() <= backoff {
            return Err(AwsError::OutOfTime {
                attempts,
                last_error,
            });
        }
        tracing::warn!(call = what, attempt = attempts, error = %last_error, "AWS call failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A client of an AWS service with greenlight's retry and timeout settings: the one way every
/// client is built. `aws_client!(aws_sdk_ecs, &sdk_config)`.
#[macro_export]
macro_rules! aws_client {
    ($sdk:ident, $config:expr) => {
        $sdk::Client::from_conf(
            $sdk::config::Builder::from($config)
                .retry_config($crate::aws::retry_config())
                .timeout_config($crate::aws::timeout_config())
                .build(),
        )
    };
}

/// Every page of a paginated AWS listing: `page(token)` fetches one page and returns its items
/// and the next token.
pub async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>, AwsError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), AwsError>>,
{
    let mut items = Vec::new();
    let mut token = None;
    // A bound on pages, so a service that keeps returning a token cannot loop forever.
    for _ in 0..1000 {
        let (found, next) = page(token).await?;
        items.extend(found);
        match next.filter(|t| !t.is_empty()) {
            Some(next) => token = Some(next),
            None => return Ok(items),
        }
    }
    Ok(items)
}

/// How long one attempt may wait with `remaining` time left: at most half of what is left after
/// the next back-off, so that a slow first answer always leaves room for a second attempt.
fn attempt_limit(remaining: Duration, backoff: Duration) -> Duration {
    if remaining >= MIN_ATTEMPT * 2 + backoff {
        ATTEMPT_TIMEOUT.min((remaining - backoff) / 2)
    } else {
        remaining
    }
}

/// `Ok(description)` when retrying may help, `Err(error)` when it will not.
fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(
    error: &SdkError<E, HttpResponse>,
) -> Result<String, AwsError> {
    match error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown").to_string();
            let message = service.err().message().unwrap_or_default().to_string();
            let http = service.raw().status().as_u16();
            let throttled = matches!(
                code.as_str(),
                "ThrottlingException"
                    | "Throttling"
                    | "TooManyRequestsException"
                    | "RequestLimitExceeded"
                    | "ThrottledException"
            );
            if throttled || http >= 500 {
                Ok(format!("HTTP {http} {code}: {message}"))
            } else {
                Err(AwsError::Service { code, message })
            }
        }
        SdkError::TimeoutError(_) => Ok("timed out".into()),
        // The request could not even be built. Retrying will not help.
        SdkError::ConstructionFailure(_) => Err(AwsError::Service {
            code: "RequestNotSent".into(),
            message: root_cause(error),
        }),
        // No credentials to sign with: nothing was sent, and nothing will change before the deadline.
        SdkError::DispatchFailure(failure)
            if !failure.is_io()
                && !failure.is_timeout()
                && root_cause(error).contains("credential") =>
        {
            Err(AwsError::Service {
                code: "NoCredentials".into(),
                message: root_cause(error),
            })
        }
        other => Ok(root_cause(other)),
    }
}

fn root_cause(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// An AWS client built on first use, from the given configuration or else the process's: a hook
/// whose plans never need it never loads it.
pub struct LazyClient<T> {
    client: tokio::sync::OnceCell<T>,
    config: Option<aws_config::SdkConfig>,
    build: fn(&aws_config::SdkConfig) -> T,
}

impl<T> LazyClient<T> {
    /// With `config`, or (`None`) the process's AWS configuration, loaded when first needed.
    pub fn new(
        config: Option<&aws_config::SdkConfig>,
        build: fn(&aws_config::SdkConfig) -> T,
    ) -> Self {
        LazyClient {
            client: tokio::sync::OnceCell::new(),
            config: config.cloned(),
            build,
        }
    }

    pub async fn get(&self) -> &T {
        self.client
            .get_or_init(|| async {
                match &self.config {
                    Some(config) => (self.build)(config),
                    None => (self.build)(&load_sdk_config().await),
                }
            })
            .await
    }
}

impl<T> std::fmt::Debug for LazyClient<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyClient")
            .field("built", &self.client.initialized())
            .finish()
    }
}

type Build<T> =
    std::sync::Arc<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = T> + Send>> + Send + Sync>;

/// Something built once, in the background from start-up: loading the AWS configuration and the
/// TLS roots then overlaps the wait for the first event instead of delaying it. The first use
/// waits for it; if the background build failed, it is built again where it is needed.
pub enum Prepared<T> {
    /// Already built (tests, or when there is nothing to overlap).
    Ready(T),
    Background {
        value: tokio::sync::OnceCell<T>,
        pending: std::sync::Mutex<Option<tokio::task::JoinHandle<T>>>,
        build: Build<T>,
    },
}

impl<T: Send + Sync + 'static> Prepared<T> {
    /// Starts building now, on the runtime's worker threads. Needs a Tokio runtime.
    pub fn in_background<F, Fut>(build: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let build: Build<T> = std::sync::Arc::new(move || Box::pin(build()));
        let task = tokio::spawn(build());
        Prepared::Background {
            value: tokio::sync::OnceCell::new(),
            pending: std::sync::Mutex::new(Some(task)),
            build,
        }
    }

    pub async fn get(&self) -> &T {
        match self {
            Prepared::Ready(value) => value,
            Prepared::Background { value, pending, build } => {
                value
                    .get_or_init(|| async {
                        let task = pending.lock().ok().and_then(|mut p| p.take());
                        if let Some(task) = task {
                            match task.await {
                                Ok(built) => return built,
                                Err(e) => tracing::error!(error = %e, "building an AWS client in the background failed; building it again"),
                            }
                        }
                        build().await
                    })
                    .await
            }
        }
    }
}

/// Runs futures concurrently and returns their results in order.
pub async fn join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, future) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => results[i] = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_window_still_fits_two_attempts() {
        let first = attempt_limit(Duration::from_millis(800), FIRST_BACKOFF);
        assert_eq!(first, Duration::from_millis(350));
        let second = attempt_limit(
            Duration::from_millis(800) - first - FIRST_BACKOFF,
            FIRST_BACKOFF * 2,
        );
        assert!(second >= Duration::from_millis(150), "{second:?}");
        assert_eq!(
            attempt_limit(Duration::from_secs(60), FIRST_BACKOFF),
            ATTEMPT_TIMEOUT
        );
        assert_eq!(
            attempt_limit(Duration::from_millis(200), FIRST_BACKOFF),
            Duration::from_millis(200)
        );
    }
}
