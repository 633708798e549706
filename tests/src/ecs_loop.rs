//! ECS's side of a native lifecycle hook: invoke, and while the answer is `IN_PROGRESS`, merge
//! the returned `hookDetails` into the event and invoke again — as ECS does after
//! `callBackDelay` seconds. The emulator records the delay instead of waiting it out.

use std::future::Future;

use serde_json::Value;

/// Every answer of one stage, in order; stops at the first final status or after `max`.
pub async fn drive_stage<F, Fut>(mut invoke: F, mut event: Value, max: usize) -> Vec<Value>
where
    F: FnMut(Value) -> Fut,
    Fut: Future<Output = Value>,
{
    let mut answers = Vec::new();
    for _ in 0..max {
        let answer = invoke(event.clone()).await;
        let again = answer["hookStatus"] == "IN_PROGRESS";
        if let Some(details) = answer["hookDetails"].as_object() {
            let merged = event["hookDetails"]
                .as_object()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .chain(details.clone())
                .collect();
            event["hookDetails"] = Value::Object(merged);
        }
        answers.push(answer);
        if !again {
            break;
        }
    }
    answers
}
