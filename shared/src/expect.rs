//! Expectations on one HTTP answer and how they are judged. A failed expectation carries what
//! was expected and what was measured, so the verdict explains itself.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName};
use serde::Serialize;
use serde_json::Value;
use serde_json_path::JsonPath;

use crate::duration::format_duration;
use crate::plan::StatusMatcher;

/// What a check expects of an answer. The default accepts any 2xx or 3xx status.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub status: StatusMatcher,
    pub latency: Option<Duration>,
    pub body_contains: Vec<String>,
    pub body_matches: Option<regex::Regex>,
    /// Header name and a substring its value must contain.
    pub headers: Vec<(HeaderName, String)>,
    pub json: Vec<JsonExpectation>,
}

impl Default for Expectations {
    fn default() -> Self {
        Expectations {
            status: StatusMatcher::success_or_redirect(),
            latency: None,
            body_contains: Vec::new(),
            body_matches: None,
            headers: Vec::new(),
            json: Vec::new(),
        }
    }
}

/// `json: {"$.color": green}`: the JSONPath must select a value equal to `expected`.
#[derive(Debug, Clone)]
pub struct JsonExpectation {
    pub expression: String,
    path: JsonPath,
    pub expected: Value,
}

impl JsonExpectation {
    pub fn new(expression: &str, expected: Value) -> Result<Self, String> {
        let path = JsonPath::parse(expression)
            .map_err(|e| format!("\"{expression}\" is not a valid JSONPath (RFC 9535): {e}"))?;
        Ok(JsonExpectation {
            expression: expression.to_string(),
            path,
            expected,
        })
    }
}

/// One expectation that an answer did not meet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Which expectation: `status`, `latency`, `body_contains`, `json $.color`, …
    pub expectation: String,
    pub expected: String,
    pub measured: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.expectation, self.expected, self.measured
        )
    }
}

/// The parts of an answer that expectations look at.
#[derive(Debug)]
pub struct Observed<'a> {
    pub status: u16,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// The body was longer than the cap and was cut.
    pub body_truncated: bool,
    pub latency: Duration,
}

const EXCERPT_CHARS: usize = 160;

impl Expectations {
    /// Every expectation the answer does not meet; empty means it passed.
    pub fn judge(&self, seen: &Observed<'_>) -> Vec<Failure> {
        let mut failures = Vec::new();
        let mut fail = |expectation: &str, expected: String, measured: String| {
            failures.push(Failure {
                expectation: expectation.into(),
                expected,
                measured,
            })
        };
        if !self.status.matches(seen.status) {
            fail(
                "status",
                self.status.to_string(),
                format!("{}{}", seen.status, excerpt_suffix(seen)),
            );
        }
        if let Some(limit) = self.latency.filter(|limit| seen.latency > *limit) {
            fail(
                "latency",
                format!("at most {}", format_duration(limit)),
                format_duration(seen.latency),
            );
        }
        let text = String::from_utf8_lossy(seen.body);
        for needle in &self.body_contains {
            if !text.contains(needle.as_str()) {
                fail(
                    "body_contains",
                    format!("the body to contain \"{needle}\""),
                    describe_body(seen, &text),
                );
            }
        }
        if let Some(re) = self.body_matches.as_ref().filter(|re| !re.is_match(&text)) {
            fail(
                "body_matches",
                format!("the body to match /{}/", re.as_str()),
                describe_body(seen, &text),
            );
        }
        for (name, substring) in &self.headers {
            let values: Vec<&str> = seen
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            if !values.iter().any(|v| v.contains(substring.as_str())) {
                let measured = if values.is_empty() {
                    "no such header".to_string()
                } else {
                    format!("\"{}\"", values.join(", "))
                };
                fail(
                    &format!("header {name}"),
                    format!("a value containing \"{substring}\""),
                    measured,
                );
            }
        }
        if !self.json.is_empty() {
            self.judge_json(seen, &text, &mut failures);
        }
        failures
    }

    fn judge_json(&self, seen: &Observed<'_>, text: &str, failures: &mut Vec<Failure>) {
        let document: Value = match serde_json::from_str(text) {
            Ok(document) => document,
            Err(e) => {
                let why = if seen.body_truncated {
                    "the body is longer than the 1 MiB cap, so it could not be read as JSON"
                        .to_string()
                } else {
                    format!("a body that is not JSON ({e}): {}", excerpt(text))
                };
                for j in &self.json {
                    failures.push(Failure {
                        expectation: format!("json {}", j.expression),
                        expected: compact(&j.expected),
                        measured: why.clone(),
                    });
                }
                return;
            }
        };
        for j in &self.json {
            let found = j.path.query(&document).all();
            let measured = match found.as_slice() {
                [] => Some("nothing (the path matched no value)".to_string()),
                [one] if json_equal(one, &j.expected) => None,
                [one] => Some(compact(one)),
                many => {
                    let all = Value::Array(many.iter().map(|v| (*v).clone()).collect());
                    (!json_equal(&all, &j.expected))
                        .then(|| format!("{} values: {}", many.len(), compact(&all)))
                }
            };
            if let Some(measured) = measured {
                failures.push(Failure {
                    expectation: format!("json {}", j.expression),
                    expected: compact(&j.expected),
                    measured,
                });
            }
        }
    }
}

/// JSON equality where numbers compare by value (YAML `2` equals JSON `2.0`).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn compact(value: &Value) -> String {
    let text = value.to_string();
    excerpt(&text)
}

fn excerpt(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > EXCERPT_CHARS {
        format!(
            "{}…",
            one_line.chars().take(EXCERPT_CHARS).collect::<String>()
        )
    } else {
        one_line
    }
}

fn describe_body(seen: &Observed<'_>, text: &str) -> String {
    if seen.body.is_empty() {
        return "an empty body".into();
    }
    let cut = if seen.body_truncated {
        ", cut at the 1 MiB cap"
    } else {
        ""
    };
    format!(
        "a body of {} bytes{cut}: \"{}\"",
        seen.body.len(),
        excerpt(text)
    )
}

fn excerpt_suffix(seen: &Observed<'_>) -> String {
    if seen.body.is_empty() {
        String::new()
    } else {
        format!(
            " (body: \"{}\")",
            excerpt(&String::from_utf8_lossy(seen.body))
        )
    }
}

#[cfg(test)]
mod tests;
