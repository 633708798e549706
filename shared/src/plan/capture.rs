//! Captures: a check takes a value from its answer (a JSONPath, a header such as `Location`, a
//! regular expression's first group) and later checks use it as `${captured.NAME}`, so a flow
//! (POST, GET what was created, DELETE it) can be verified. Captured values are secrets unless
//! `not_secret` lists `captured.NAME`.
//!
//! A check that uses a capture waits for the check that captures it (always an earlier one), and
//! is filled in only then; if that check did not pass, it does not run, and says why.

use std::collections::HashMap;

use reqwest::header::{HeaderMap, HeaderName};
use serde_json::Value;

use crate::judge::{Budget, Exhausted, JsonPath, Pattern};

/// How captured variables are written: `${captured.order_id}`.
pub const PREFIX: &str = "captured.";

#[derive(Debug, Clone)]
pub enum Source {
    Json(JsonPath),
    Header(HeaderName),
    /// The first group of the pattern (the whole match when it has none).
    Body(Pattern),
}

#[derive(Debug, Clone)]
pub struct Capture {
    /// `order_id` (used as `${captured.order_id}`).
    pub name: String,
    pub source: Source,
    /// As written, for messages: `json $.id`.
    pub label: String,
    /// Masked in output: true unless `not_secret` lists `captured.NAME`.
    pub secret: bool,
}

impl Capture {
    /// Reads `name: {json|header|body: …}`; a `body` pattern is compiled by `compile` (the
    /// plan's, which bounds its memory).
    pub fn parse(
        name: &str,
        value: &Value,
        compile: &mut dyn FnMut(&str) -> Result<Pattern, String>,
    ) -> Result<Self, String> {
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(format!(
                "\"{name}\" is not a capture name: letters, digits and _ (used as ${{captured.{name}}})"
            ));
        }
        let map = value.as_object().filter(|m| m.len() == 1).ok_or_else(|| {
            "a capture is one of {json: <JSONPath>}, {header: <name>}, {body: <regular expression>}"
                .to_string()
        })?;
        let (kind, what) = map.iter().next().expect("one entry");
        let Some(text) = what.as_str() else {
            return Err(format!("`{kind}` takes text"));
        };
        let source = match kind.as_str() {
            "json" => Source::Json(JsonPath::parse(text)?),
            "header" => Source::Header(
                HeaderName::from_bytes(text.as_bytes())
                    .map_err(|_| format!("\"{text}\" is not a valid header name"))?,
            ),
            "body" => Source::Body(compile(text)?),
            other => {
                return Err(format!(
                    "unknown capture source `{other}`; use `json`, `header` or `body`"
                ))
            }
        };
        Ok(Capture {
            name: name.to_string(),
            label: format!("{kind} {text}"),
            source,
            secret: true,
        })
    }

    /// The value captured from an answer, `None` when there is none.
    pub fn take(
        &self,
        document: Option<&Value>,
        headers: &HeaderMap,
        body: &str,
        budget: &mut Budget,
    ) -> Result<Option<String>, Exhausted> {
        Ok(match &self.source {
            Source::Json(path) => match document {
                Some(document) => path.query(document, budget)?.first().map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }),
                None => None,
            },
            Source::Header(name) => headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            Source::Body(pattern) => pattern.first_group(body, budget)?,
        })
    }
}

/// What the checks of one run have captured so far: a value, or why there is none.
#[derive(Debug, Default)]
pub struct Board {
    values: std::sync::Mutex<HashMap<String, Result<String, String>>>,
    changed: tokio::sync::Notify,
}

impl Board {
    pub fn publish(&self, name: &str, value: Result<String, String>) {
        self.values
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), value);
        self.changed.notify_waiters();
    }

    /// Waits until every name in `names` has a value or a reason.
    pub async fn wait_for(&self, names: &[String]) -> Vec<(String, Result<String, String>)> {
        loop {
            let notified = self.changed.notified();
            {
                let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
                if names.iter().all(|n| values.contains_key(n)) {
                    return names
                        .iter()
                        .map(|n| (n.clone(), values[n].clone()))
                        .collect();
                }
            }
            notified.await;
        }
    }
}
