//! The `expect.status` matcher: a code (`200`), a class (`"2xx"`), a range (`"200-399"`), or a list.

use std::fmt;

/// Inclusive range of HTTP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StatusRange {
    low: u16,
    high: u16,
}

/// Which status codes an answer may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMatcher {
    ranges: Vec<StatusRange>,
    text: String,
}

impl StatusMatcher {
    /// What the default plan and checks without `expect.status` accept: any 2xx or 3xx answer.
    pub fn success_or_redirect() -> Self {
        StatusMatcher {
            ranges: vec![StatusRange {
                low: 200,
                high: 399,
            }],
            text: "200-399".into(),
        }
    }

    pub fn matches(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|r| (r.low..=r.high).contains(&status))
    }

    /// Parses the value written in a plan (already decoded from YAML or JSON).
    pub fn from_value(value: &serde_json::Value) -> Result<Self, String> {
        let items: Vec<&serde_json::Value> = match value {
            serde_json::Value::Array(items) if items.is_empty() => {
                return Err("an empty list matches no status; list at least one".into())
            }
            serde_json::Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        let ranges = items
            .into_iter()
            .map(parse_one)
            .collect::<Result<Vec<_>, _>>()?;
        let text = match value {
            serde_json::Value::Array(_) => format!(
                "one of [{}]",
                ranges
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => ranges[0].to_string(),
        };
        Ok(StatusMatcher { ranges, text })
    }
}

fn parse_one(value: &serde_json::Value) -> Result<StatusRange, String> {
    match value {
        serde_json::Value::Number(n) => {
            let code = n
                .as_u64()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| format!("{n} is not a status code (100-599)"))?;
            Ok(StatusRange {
                low: code as u16,
                high: code as u16,
            })
        }
        serde_json::Value::String(text) => parse_text(text.trim()).ok_or_else(|| {
            format!("\"{text}\" is not a status code, class (\"2xx\") or range (\"200-299\")")
        }),
        other => Err(format!(
            "{other} is not a status code, class (\"2xx\") or range (\"200-299\")"
        )),
    }
}

fn parse_text(text: &str) -> Option<StatusRange> {
    let code = |t: &str| {
        t.trim()
            .parse::<u16>()
            .ok()
            .filter(|c| (100..=599).contains(c))
    };
    let lower = text.to_ascii_lowercase();
    if lower.len() == 3 && lower.ends_with("xx") {
        let class = lower[..1]
            .parse::<u16>()
            .ok()
            .filter(|c| (1..=5).contains(c))?;
        return Some(StatusRange {
            low: class * 100,
            high: class * 100 + 99,
        });
    }
    if let Some((low, high)) = text.split_once('-') {
        let (low, high) = (code(low)?, code(high)?);
        return (low <= high).then_some(StatusRange { low, high });
    }
    code(text).map(|c| StatusRange { low: c, high: c })
}

impl fmt::Display for StatusRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else if self.low.is_multiple_of(100) && self.high == self.low + 99 {
            write!(f, "{}xx", self.low / 100)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

impl fmt::Display for StatusMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matcher(v: serde_json::Value) -> StatusMatcher {
        StatusMatcher::from_value(&v).unwrap()
    }

    #[test]
    fn a_code_matches_only_itself() {
        let m = matcher(json!(200));
        assert!(m.matches(200));
        assert!(!m.matches(201));
        assert_eq!(m.to_string(), "200");
    }

    #[test]
    fn a_class_matches_its_hundred() {
        let m = matcher(json!("2xx"));
        assert!(m.matches(200) && m.matches(299));
        assert!(!m.matches(300));
        assert_eq!(m.to_string(), "2xx");
    }

    #[test]
    fn ranges_and_lists_mix() {
        let m = matcher(json!([204, "3xx", "200-201"]));
        assert!(m.matches(204) && m.matches(301) && m.matches(201));
        assert!(!m.matches(202));
        assert_eq!(m.to_string(), "one of [204, 3xx, 200-201]");
    }

    #[test]
    fn nonsense_is_rejected_with_what_was_written() {
        assert!(StatusMatcher::from_value(&json!("abc"))
            .unwrap_err()
            .contains("\"abc\" is not a status code"));
        assert!(StatusMatcher::from_value(&json!(700))
            .unwrap_err()
            .contains("700 is not a status code"));
        assert!(StatusMatcher::from_value(&json!("6xx")).is_err());
        assert!(StatusMatcher::from_value(&json!("399-200")).is_err());
        assert!(StatusMatcher::from_value(&json!([]))
            .unwrap_err()
            .contains("empty list"));
        assert!(StatusMatcher::from_value(&json!(true)).is_err());
    }
}
