//! Serving one function under the Lambda Runtime API, the same way for every function: logging
//! first (`crate::logging`), the handler built once, and every answer, error messages included,
//! passed through the secrets rule (`crate::secrets`) before Lambda sees it.

use std::future::Future;
use std::time::SystemTime;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::Value;

/// What a function does with one event. Built once per process; `handle` runs per invocation
/// with the invocation's deadline.
pub trait Handler: Send + Sync + 'static {
    type Response: Serialize + Send;
    type Error: Into<Diagnostic> + Send;

    fn handle(
        &self,
        payload: Value,
        deadline: SystemTime,
    ) -> impl Future<Output = Result<Self::Response, Self::Error>> + Send;
}

/// Sets up logging, builds the handler with `build`, and serves events until the runtime stops.
pub async fn serve<H: Handler>(build: impl FnOnce() -> H) -> Result<(), lambda_runtime::Error> {
    crate::logging::init();
    let handler = build();
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = event.context.deadline();
        answer(handler.handle(event.payload, deadline).await)
    }))
    .await
}

/// The answer as Lambda gets it: masked.
pub fn answer<R: Serialize, E: Into<Diagnostic>>(
    result: Result<R, E>,
) -> Result<Value, Diagnostic> {
    let secrets = crate::secrets::global();
    match result {
        Ok(response) => {
            let mut value = serde_json::to_value(response).map_err(|e| Diagnostic {
                error_type: "ResponseNotSerializable".into(),
                error_message: e.to_string(),
            })?;
            secrets.redact_json(&mut value);
            Ok(value)
        }
        Err(error) => {
            let mut diagnostic: Diagnostic = error.into();
            diagnostic.error_message = secrets.redact(&diagnostic.error_message).into_owned();
            Err(diagnostic)
        }
    }
}
