//! When a check's attempt is worth repeating. Retrying hides what it retries, so by default only
//! what a healthy green can still show while it settles is retried: a failed connection or a
//! timeout, and the load balancer's 502, 503 and 504. A 500 or a wrong body is a finding, not
//! noise; `retry_on: [any]` restores retrying everything.

use serde_json::Value;

use super::StatusMatcher;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOn {
    /// Connection failures and timeouts (no answer at all).
    pub transport: bool,
    /// Answers with these statuses, whatever else was wrong with them.
    pub statuses: Option<StatusMatcher>,
    /// Any attempt that did not pass (the behaviour before `retry_on` existed).
    pub any: bool,
}

impl Default for RetryOn {
    fn default() -> Self {
        RetryOn {
            transport: true,
            statuses: StatusMatcher::from_value(&serde_json::json!([502, 503, 504])).ok(),
            any: false,
        }
    }
}

impl RetryOn {
    /// `[transport, 502, "5xx", any]`.
    pub fn from_values(items: &[Value]) -> Result<Self, String> {
        let mut retry = RetryOn {
            transport: false,
            statuses: None,
            any: false,
        };
        let mut statuses = Vec::new();
        for item in items {
            match item {
                Value::String(word) if word.eq_ignore_ascii_case("transport") => {
                    retry.transport = true
                }
                Value::String(word) if word.eq_ignore_ascii_case("any") => retry.any = true,
                Value::String(word) if word.eq_ignore_ascii_case("none") => {}
                other => statuses.push(other.clone()),
            }
        }
        if !statuses.is_empty() {
            retry.statuses = Some(
                StatusMatcher::from_value(&Value::Array(statuses))
                    .map_err(|e| format!("{e} (retry_on lists `transport`, `any`, `none`, status codes, classes such as \"5xx\" and ranges)"))?,
            );
        }
        Ok(retry)
    }

    /// Whether an attempt that ended with `status` (`None`: no answer) is retried.
    pub fn retries(&self, status: Option<u16>) -> bool {
        self.any
            || match status {
                None => self.transport,
                Some(code) => self.statuses.as_ref().is_some_and(|s| s.matches(code)),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn by_default_only_what_a_settling_green_shows_is_retried() {
        let d = RetryOn::default();
        assert!(d.retries(None));
        assert!(d.retries(Some(503)));
        assert!(!d.retries(Some(500)));
        assert!(!d.retries(Some(200)), "a wrong body is a finding");
    }

    #[test]
    fn lists_read_words_and_statuses() {
        let r = RetryOn::from_values(&[json!("transport"), json!("5xx")]).unwrap();
        assert!(r.retries(Some(500)) && r.retries(None) && !r.retries(Some(404)));
        let any = RetryOn::from_values(&[json!("any")]).unwrap();
        assert!(any.retries(Some(200)));
        let none = RetryOn::from_values(&[json!("none")]).unwrap();
        assert!(!none.retries(None) && !none.retries(Some(503)));
        assert!(RetryOn::from_values(&[json!("sometimes")])
            .unwrap_err()
            .contains("retry_on lists"));
    }
}
