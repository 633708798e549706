//! Expectations on one HTTP answer and how they are judged. A failed expectation carries what
//! was expected and what was measured, so the verdict explains itself. Judging works within a
//! [`Budget`] (see `crate::judge`), and every excerpt of what green sent is redacted before it is
//! cut (see `crate::secrets`).

use std::io::Write;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName};
use serde::Serialize;
use serde_json::Value;

use crate::duration::format_duration;
use crate::judge::{jsonpath::values_equal, Budget, Exhausted, JsonPath, Pattern};
use crate::secrets;

pub mod assertion;
pub mod status;
use assertion::Assertion;
use status::StatusMatcher;

/// What a check expects of an answer. The default accepts any 2xx or 3xx status.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub status: StatusMatcher,
    pub latency: Option<Duration>,
    pub body_contains: Vec<String>,
    pub body_matches: Option<Pattern>,
    /// Header name and a substring its value must contain.
    pub headers: Vec<(HeaderName, String)>,
    pub json: Vec<JsonExpectation>,
    /// Texts the body must not contain (a stack trace, "Exception", a debug banner).
    pub body_not_contains: Vec<String>,
    pub assertions: Vec<Assertion>,
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
            body_not_contains: Vec::new(),
            assertions: Vec::new(),
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
        Ok(JsonExpectation {
            expression: expression.to_string(),
            path: JsonPath::parse(expression)?,
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

/// Judging could not finish: which expectation, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unjudged {
    pub expectation: String,
    pub why: Exhausted,
}

impl std::fmt::Display for Unjudged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.why {
            Exhausted::Steps(_) => write!(
                f,
                "judging {} on this body was stopped: {}; select less (a narrower JSONPath)",
                self.expectation, self.why
            ),
            Exhausted::Time => write!(f, "judging {} was stopped: {}", self.expectation, self.why),
        }
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

/// Excerpts of what green sent are at most this many characters.
pub const EXCERPT_CHARS: usize = 160;

impl Expectations {
    /// Every expectation the answer does not meet (empty means it passed), or why judging
    /// could not finish within `budget`.
    pub fn judge(
        &self,
        seen: &Observed<'_>,
        budget: &mut Budget,
    ) -> Result<Vec<Failure>, Unjudged> {
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
        if let Some(pattern) = &self.body_matches {
            let matched = pattern
                .is_match(seen.body, budget)
                .map_err(|why| Unjudged {
                    expectation: "body_matches".into(),
                    why,
                })?;
            if !matched {
                fail(
                    "body_matches",
                    format!("the body to match /{}/", pattern.as_str()),
                    describe_body(seen, &text),
                );
            }
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
                    format!(
                        "\"{}\"",
                        secrets::global().excerpt(&values.join(", "), EXCERPT_CHARS)
                    )
                };
                fail(
                    &format!("header {name}"),
                    format!("a value containing \"{substring}\""),
                    measured,
                );
            }
        }
        for needle in &self.body_not_contains {
            if let Some(at) = text.find(needle.as_str()) {
                let start = text[..at]
                    .char_indices()
                    .rev()
                    .nth(40)
                    .map_or(0, |(i, _)| i);
                failures.push(Failure {
                    expectation: "body_not_contains".into(),
                    expected: format!("the body not to contain \"{needle}\""),
                    measured: format!(
                        "it at byte {at}: \"…{}\"",
                        secrets::global().excerpt(&text[start..], EXCERPT_CHARS)
                    ),
                });
            }
        }
        let document = if !self.json.is_empty() {
            self.judge_json(seen, &text, budget, &mut failures)?
        } else if self
            .assertions
            .iter()
            .any(|a| matches!(a.subject, assertion::Subject::Json(_)))
        {
            serde_json::from_slice::<Value>(seen.body).ok()
        } else {
            None
        };
        for a in &self.assertions {
            let judged = a
                .judge(document.as_ref(), seen.headers, budget)
                .map_err(|why| Unjudged {
                    expectation: a.label.clone(),
                    why,
                })?;
            if let Some((expected, mut measured)) = judged {
                if document.is_none() && matches!(a.subject, assertion::Subject::Json(_)) {
                    measured = if seen.body_truncated {
                        "nothing: the body is longer than the 1 MiB cap, so it could not be read as JSON".into()
                    } else {
                        format!(
                            "nothing: the body is not JSON: {}",
                            describe_body(seen, &text)
                        )
                    };
                }
                failures.push(Failure {
                    expectation: a.label.clone(),
                    expected,
                    measured,
                });
            }
        }
        Ok(failures)
    }

    fn judge_json(
        &self,
        seen: &Observed<'_>,
        text: &str,
        budget: &mut Budget,
        failures: &mut Vec<Failure>,
    ) -> Result<Option<Value>, Unjudged> {
        let document: Value = match serde_json::from_slice(seen.body) {
            Ok(document) => document,
            Err(e) => {
                let why = if seen.body_truncated {
                    "the body is longer than the 1 MiB cap, so it could not be read as JSON"
                        .to_string()
                } else {
                    format!(
                        "a body that is not JSON ({}): {}",
                        json_error(&e),
                        secrets::global().excerpt(text, EXCERPT_CHARS)
                    )
                };
                for j in &self.json {
                    failures.push(Failure {
                        expectation: format!("json {}", j.expression),
                        expected: compact(&[&j.expected]),
                        measured: why.clone(),
                    });
                }
                return Ok(None);
            }
        };
        for j in &self.json {
            let found = j.path.query(&document, budget).map_err(|why| Unjudged {
                expectation: format!("json {}", j.expression),
                why,
            })?;
            let measured = match found.as_slice() {
                [] => Some("nothing (the path matched no value)".to_string()),
                [one] if values_equal(one, &j.expected) => None,
                [one] => Some(compact(&[one])),
                many => {
                    let equal = match &j.expected {
                        Value::Array(expected) => {
                            expected.len() == many.len()
                                && many.iter().zip(expected).all(|(a, b)| values_equal(a, b))
                        }
                        _ => false,
                    };
                    (!equal).then(|| format!("{} values: {}", many.len(), compact(many)))
                }
            };
            if let Some(measured) = measured {
                failures.push(Failure {
                    expectation: format!("json {}", j.expression),
                    expected: compact(&[&j.expected]),
                    measured,
                });
            }
        }
        Ok(Some(document))
    }
}

/// serde_json's message without its position noise for a one-line reason.
fn json_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rsplit_once(" at line ") {
        Some((what, _)) if error.line() == 1 && error.column() <= 1 => what.to_string(),
        _ => text,
    }
}

/// One value (or several, as a list) as compact JSON, excerpted. Serialisation stops as soon as
/// the excerpt is full, so a huge selection is never written out whole.
fn compact(values: &[&Value]) -> String {
    struct Capped {
        out: Vec<u8>,
        cap: usize,
    }
    impl Write for Capped {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let room = self.cap.saturating_sub(self.out.len());
            if room == 0 {
                return Err(std::io::Error::other("full"));
            }
            let n = buf.len().min(room);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // Room for the excerpt plus the longest secret, so masking happens before the cut.
    let mut capped = Capped {
        out: Vec::new(),
        cap: EXCERPT_CHARS * 4 + 4096,
    };
    let _ = if let [one] = values {
        serde_json::to_writer(&mut capped, one)
    } else {
        serde_json::to_writer(&mut capped, values)
    };
    let text = String::from_utf8_lossy(&capped.out);
    secrets::global().excerpt(&text, EXCERPT_CHARS)
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
        secrets::global().excerpt(text, EXCERPT_CHARS)
    )
}

fn excerpt_suffix(seen: &Observed<'_>) -> String {
    if seen.body.is_empty() {
        String::new()
    } else {
        format!(
            " (body: \"{}\")",
            secrets::global().excerpt(&String::from_utf8_lossy(seen.body), EXCERPT_CHARS)
        )
    }
}

#[cfg(test)]
mod tests;
