//! `expect.assert`: assertions that say what users mean, in Hurl's vocabulary. Each names a
//! subject (a JSONPath into the body, or a header) and one or more predicates, all of which must
//! hold for every value selected; `not:` holds when its predicates do not.
//!
//! ```yaml
//! assert:
//!   - {json: "$.version", semver: "2.0.0"}            # 2.0.0+build.7 is 2.0.0
//!   - {json: "$.items", length: ">= 1"}
//!   - {json: "$.error", absent: true}
//!   - {json: "$.id", type: string, matches: "^[0-9a-f-]{36}$"}
//!   - {json: "$.total", ">=": 0, "<": 10000}
//!   - {json: "$.state", not: {one_of: [failed, error]}}
//!   - {header: x-debug-token, absent: true}
//!   - {header: location, matches: "^/orders/[0-9]+$"}
//! ```
//!
//! A selection that finds nothing fails every predicate but `absent`: an assertion never passes
//! on missing data.

use reqwest::header::{HeaderMap, HeaderName};
use serde_json::{Map, Value};

use crate::judge::{jsonpath::values_equal, Budget, Exhausted, JsonPath, Pattern};

/// What an assertion looks at.
#[derive(Debug, Clone)]
pub enum Subject {
    Json(JsonPath),
    Header(HeaderName),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
        }
    }
}

/// A regular expression, compiled once its `${VAR}`s are filled in.
#[derive(Debug, Clone)]
pub enum Regex {
    Pending(String),
    Ready(Pattern),
}

#[derive(Debug, Clone)]
pub enum Predicate {
    Exists,
    Absent,
    Type(&'static str),
    Equals(Value),
    Matches(Regex),
    Compare(Op, f64),
    Length(Op, u64),
    Contains(Value),
    OneOf(Vec<Value>),
    Semver(Version),
}

/// A version, parsed once its `${VAR}`s are filled in.
#[derive(Debug, Clone)]
pub enum Version {
    Pending(String),
    Ready(Semver),
}

#[derive(Debug, Clone)]
pub struct Assertion {
    pub subject: Subject,
    /// The subject as written, for messages: `json $.version`, `header location`.
    pub label: String,
    pub predicates: Vec<Predicate>,
    pub negated: Vec<Predicate>,
}

const KINDS: [&str; 6] = ["number", "string", "bool", "array", "object", "null"];

impl Assertion {
    /// Reads one item of `assert:`; problems are `(field, message)` pairs. Regular expressions
    /// are compiled by `compile` (the plan's, which bounds their memory).
    pub fn parse(
        value: &Value,
        compile: &mut dyn FnMut(&str) -> Result<Pattern, String>,
    ) -> Result<Self, Vec<(String, String)>> {
        let Value::Object(map) = value else {
            return Err(vec![(
                String::new(),
                "an assertion is a map such as {json: \"$.status\", equals: UP}".into(),
            )]);
        };
        let mut problems = Vec::new();
        let subject = match (map.get("json"), map.get("header")) {
            (Some(Value::String(path)), None) => match JsonPath::parse(path) {
                Ok(p) => Some((Subject::Json(p), format!("json {path}"))),
                Err(e) => {
                    problems.push(("json".into(), e));
                    None
                }
            },
            (None, Some(Value::String(name))) => match HeaderName::from_bytes(name.as_bytes()) {
                Ok(h) => Some((
                    Subject::Header(h),
                    format!("header {}", name.to_ascii_lowercase()),
                )),
                Err(_) => {
                    problems.push((
                        "header".into(),
                        format!("\"{name}\" is not a valid header name"),
                    ));
                    None
                }
            },
            (Some(_), Some(_)) => {
                problems.push((
                    String::new(),
                    "name one subject: `json` or `header`, not both".into(),
                ));
                None
            }
            (None, None) => {
                problems.push((
                    String::new(),
                    "name what to check: `json: <JSONPath>` or `header: <name>`".into(),
                ));
                None
            }
            _ => {
                problems.push((String::new(), "`json` and `header` take text".into()));
                None
            }
        };
        let is_header = matches!(subject, Some((Subject::Header(_), _)));
        let held = predicates(
            map,
            &["json", "header", "not"],
            "",
            is_header,
            compile,
            &mut problems,
        );
        let negated = match map.get("not") {
            None => Vec::new(),
            Some(Value::Object(inner)) => {
                predicates(inner, &[], "not.", is_header, compile, &mut problems)
            }
            Some(_) => {
                problems.push((
                    "not".into(),
                    "expected a map of predicates, such as {one_of: [a, b]}".into(),
                ));
                Vec::new()
            }
        };
        if held.is_empty() && negated.is_empty() && problems.is_empty() {
            problems.push((
                String::new(),
                format!("say what must hold: one of {}", PREDICATES.join(", ")),
            ));
        }
        match (subject, problems.is_empty()) {
            (Some((subject, label)), true) => Ok(Assertion {
                subject,
                label,
                predicates: held,
                negated,
            }),
            _ => Err(problems),
        }
    }

    /// The texts that may hold `${VAR}`s, to fill in when the plan is resolved.
    pub fn texts_mut(&mut self) -> Vec<&mut String> {
        let mut out = Vec::new();
        for p in self.predicates.iter_mut().chain(self.negated.iter_mut()) {
            match p {
                Predicate::Equals(Value::String(s)) | Predicate::Contains(Value::String(s)) => {
                    out.push(s)
                }
                Predicate::Matches(Regex::Pending(s)) => out.push(s),
                Predicate::Semver(Version::Pending(s)) => out.push(s),
                Predicate::OneOf(items) => {
                    for item in items {
                        if let Value::String(s) = item {
                            out.push(s);
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Compiles regular expressions whose variables are filled in.
    pub fn compile(&mut self) -> Result<(), String> {
        for p in self.predicates.iter_mut().chain(self.negated.iter_mut()) {
            match p {
                Predicate::Matches(Regex::Pending(text)) => {
                    *p = Predicate::Matches(Regex::Ready(Pattern::new(text)?));
                }
                Predicate::Semver(Version::Pending(text)) => {
                    *p = Predicate::Semver(Version::Ready(Semver::parse(text)?));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `None` when it holds, else what was expected and what was found.
    pub fn judge(
        &self,
        document: Option<&Value>,
        headers: &HeaderMap,
        budget: &mut Budget,
    ) -> Result<Option<(String, String)>, Exhausted> {
        let header_values: Vec<Value>;
        let selected: Vec<&Value> = match &self.subject {
            Subject::Json(path) => match document {
                Some(document) => path.query(document, budget)?,
                None => Vec::new(),
            },
            Subject::Header(name) => {
                header_values = headers
                    .get_all(name)
                    .iter()
                    .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
                    .collect();
                header_values.iter().collect()
            }
        };
        for predicate in &self.predicates {
            if let Some(found) = check(predicate, &selected, budget)? {
                return Ok(Some((describe(predicate, false), found)));
            }
        }
        for predicate in &self.negated {
            let on_nothing =
                selected.is_empty() && !matches!(predicate, Predicate::Exists | Predicate::Absent);
            if on_nothing {
                return Ok(Some((
                    describe(predicate, true),
                    "nothing (no such value)".into(),
                )));
            }
            if check(predicate, &selected, budget)?.is_none() {
                let found = if selected.is_empty() {
                    "nothing".to_string()
                } else {
                    super::compact(&selected)
                };
                return Ok(Some((describe(predicate, true), found)));
            }
        }
        Ok(None)
    }
}

const PREDICATES: [&str; 14] = [
    "exists", "absent", "type", "equals", "matches", "<", "<=", ">", ">=", "length", "contains",
    "one_of", "semver", "not",
];

/// The predicates of `map`: its keys other than `skip`, each read by [`predicate`].
fn predicates(
    map: &Map<String, Value>,
    skip: &[&str],
    prefix: &str,
    header: bool,
    compile: &mut dyn FnMut(&str) -> Result<Pattern, String>,
    problems: &mut Vec<(String, String)>,
) -> Vec<Predicate> {
    map.iter()
        .filter(|(key, _)| !skip.contains(&key.as_str()))
        .filter_map(|(key, value)| predicate(key, value, prefix, header, compile, problems))
        .collect()
}

fn predicate(
    key: &str,
    value: &Value,
    prefix: &str,
    header: bool,
    compile: &mut dyn FnMut(&str) -> Result<Pattern, String>,
    problems: &mut Vec<(String, String)>,
) -> Option<Predicate> {
    let at = format!("{prefix}{key}");
    let mut problem = |message: String| {
        problems.push((at.clone(), message));
        None
    };
    let flag = |value: &Value| value.as_bool();
    match key {
        "exists" | "absent" => match flag(value) {
            Some(true) if key == "exists" => Some(Predicate::Exists),
            Some(true) => Some(Predicate::Absent),
            Some(false) => problem(format!(
                "write `{}: true` (or leave it out); `{key}: false` is ambiguous",
                if key == "exists" { "absent" } else { "exists" }
            )),
            None => problem("expected true".into()),
        },
        "type" if header => problem("headers are text; `type` is for json".into()),
        "type" => match value
            .as_str()
            .map(|t| if t == "boolean" { "bool" } else { t })
        {
            Some(t) => match KINDS.iter().find(|k| **k == t) {
                Some(kind) => Some(Predicate::Type(kind)),
                None => problem(format!("\"{t}\" is not one of {}", KINDS.join(", "))),
            },
            None => problem(format!("expected one of {}", KINDS.join(", "))),
        },
        "equals" => Some(Predicate::Equals(value.clone())),
        "matches" => match value.as_str() {
            Some(text) if text.contains("${") => {
                Some(Predicate::Matches(Regex::Pending(text.into())))
            }
            Some(text) => match compile(text) {
                Ok(p) => Some(Predicate::Matches(Regex::Ready(p))),
                Err(e) => problem(e),
            },
            None => problem("expected a regular expression (text)".into()),
        },
        "<" | "<=" | ">" | ">=" if header => {
            problem("headers are text; compare numbers selected with `json`".into())
        }
        "<" | "<=" | ">" | ">=" => match value.as_f64() {
            Some(n) => Some(Predicate::Compare(op_of(key), n)),
            None => problem("expected a number".into()),
        },
        "length" => match length(value) {
            Ok((op, n)) => Some(Predicate::Length(op, n)),
            Err(e) => problem(e),
        },
        "contains" => Some(Predicate::Contains(value.clone())),
        "one_of" => match value {
            Value::Array(items) if !items.is_empty() => Some(Predicate::OneOf(items.clone())),
            _ => problem("expected a list of values".into()),
        },
        "semver" => match value.as_str() {
            Some(text) if text.contains("${") => {
                Some(Predicate::Semver(Version::Pending(text.into())))
            }
            Some(text) => match Semver::parse(text) {
                Ok(v) => Some(Predicate::Semver(Version::Ready(v))),
                Err(e) => problem(e),
            },
            None => problem("expected a version such as \"2.0.0\"".into()),
        },
        other => {
            let nearest = PREDICATES
                .iter()
                .find(|p| crate::suggest::similar(other, p))
                .map(|p| format!("; did you mean `{p}`?"))
                .unwrap_or_default();
            problem(format!(
                "unknown predicate `{other}`{nearest} (known: {})",
                PREDICATES.join(", ")
            ))
        }
    }
}

fn op_of(key: &str) -> Op {
    match key {
        "<" => Op::Lt,
        "<=" => Op::Le,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        _ => Op::Eq,
    }
}

/// `length: 3` or `length: ">= 1"`.
fn length(value: &Value) -> Result<(Op, u64), String> {
    if let Some(n) = value.as_u64() {
        return Ok((Op::Eq, n));
    }
    let Some(text) = value.as_str() else {
        return Err("expected a whole number, or a comparison such as \">= 1\"".into());
    };
    let text = text.trim();
    for symbol in ["<=", ">=", "==", "<", ">"] {
        if let Some(rest) = text.strip_prefix(symbol) {
            return rest
                .trim()
                .parse::<u64>()
                .map(|n| (op_of(symbol), n))
                .map_err(|_| format!("\"{text}\" is not a comparison such as \">= 1\""));
        }
    }
    text.parse::<u64>()
        .map(|n| (Op::Eq, n))
        .map_err(|_| format!("\"{text}\" is not a length or a comparison such as \">= 1\""))
}

/// The JSON type of `value`, as assertions and diffs name it.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn describe(predicate: &Predicate, negated: bool) -> String {
    let text = match predicate {
        Predicate::Exists => "a value".to_string(),
        Predicate::Absent => "no value".to_string(),
        Predicate::Type(k) => format!("a {k}"),
        Predicate::Equals(v) => format!("equal to {v}"),
        Predicate::Matches(Regex::Ready(p)) => format!("matching /{}/", p.as_str()),
        Predicate::Matches(Regex::Pending(t)) => format!("matching /{t}/"),
        Predicate::Compare(op, n) => format!("{} {n}", op.symbol()),
        Predicate::Length(Op::Eq, n) => format!("length {n}"),
        Predicate::Length(op, n) => format!("length {} {n}", op.symbol()),
        Predicate::Contains(v) => format!("containing {v}"),
        Predicate::OneOf(items) => format!("one of {}", Value::Array(items.clone())),
        Predicate::Semver(Version::Ready(v)) => format!("version {v} (build metadata ignored)"),
        Predicate::Semver(Version::Pending(t)) => format!("version {t}"),
    };
    if negated {
        format!("not {text}")
    } else {
        text
    }
}

/// `None` when `predicate` holds for the selection, else what was found.
fn check(
    predicate: &Predicate,
    selected: &[&Value],
    budget: &mut Budget,
) -> Result<Option<String>, Exhausted> {
    match predicate {
        Predicate::Absent => {
            return Ok((!selected.is_empty()).then(|| super::compact(selected)));
        }
        _ if selected.is_empty() => return Ok(Some("nothing (no such value)".into())),
        Predicate::Exists => return Ok(None),
        _ => {}
    }
    for &value in selected {
        let holds = match predicate {
            Predicate::Type(k) => json_type(value) == *k,
            Predicate::Equals(expected) => values_equal(value, expected),
            Predicate::Matches(Regex::Ready(pattern)) => match value {
                Value::String(s) => pattern.is_match_str(s, budget)?,
                _ => false,
            },
            Predicate::Matches(Regex::Pending(_)) => false,
            Predicate::Compare(op, n) => value.as_f64().is_some_and(|v| op.holds(v, *n)),
            Predicate::Length(op, n) => {
                let len = match value {
                    Value::String(s) => Some(s.chars().count()),
                    Value::Array(a) => Some(a.len()),
                    Value::Object(o) => Some(o.len()),
                    _ => None,
                };
                len.is_some_and(|len| op.holds(len as f64, *n as f64))
            }
            Predicate::Contains(needle) => match (value, needle) {
                (Value::Array(items), _) => items.iter().any(|i| values_equal(i, needle)),
                (Value::String(s), Value::String(n)) => s.contains(n.as_str()),
                _ => false,
            },
            Predicate::OneOf(items) => items.iter().any(|i| values_equal(value, i)),
            Predicate::Semver(Version::Ready(expected)) => value
                .as_str()
                .and_then(|s| Semver::parse(s).ok())
                .is_some_and(|v| v == *expected),
            Predicate::Semver(Version::Pending(_)) => false,
            Predicate::Exists | Predicate::Absent => true,
        };
        if !holds {
            return Ok(Some(match predicate {
                Predicate::Length(..) => match value {
                    Value::String(s) => format!("length {}", s.chars().count()),
                    Value::Array(a) => format!("length {}", a.len()),
                    Value::Object(o) => format!("length {}", o.len()),
                    other => format!("{}, which has no length", super::compact(&[other])),
                },
                Predicate::Type(_) => {
                    format!("a {}: {}", json_type(value), super::compact(&[value]))
                }
                _ => super::compact(&[value]),
            }));
        }
    }
    Ok(None)
}

/// A semantic version; equality ignores build metadata (`2.0.0+build.7` is `2.0.0`), as
/// semver.org says precedence does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Semver {
    core: (u64, u64, u64),
    pre: Option<String>,
}

impl Semver {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("\"{text}\" is not a semantic version such as 2.0.0 or 2.1.0-rc.1");
        let t = text.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let t = t.split_once('+').map_or(t, |(v, _)| v);
        let (core, pre) = match t.split_once('-') {
            Some((core, pre)) if !pre.is_empty() => (core, Some(pre.to_string())),
            Some(_) => return Err(bad()),
            None => (t, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        let [major, minor, patch] = parts.as_slice() else {
            return Err(bad());
        };
        let number = |s: &str| {
            if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
                None
            } else {
                s.parse::<u64>().ok()
            }
        };
        match (number(major), number(minor), number(patch)) {
            (Some(a), Some(b), Some(c)) => Ok(Semver {
                core: (a, b, c),
                pre,
            }),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Semver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, b, c) = self.core;
        write!(f, "{a}.{b}.{c}")?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: &Value) -> Result<Assertion, Vec<(String, String)>> {
        Assertion::parse(value, &mut |text| Pattern::new(text))
    }

    fn judge(assertion: Value, body: Value) -> Option<(String, String)> {
        let a = parse(&assertion).unwrap_or_else(|e| panic!("{e:?}"));
        a.judge(Some(&body), &HeaderMap::new(), &mut Budget::unlimited())
            .unwrap()
    }

    #[test]
    fn semver_ignores_build_metadata_only() {
        assert_eq!(Semver::parse("2.0.0+build.7"), Semver::parse("2.0.0"));
        assert_ne!(Semver::parse("2.0.0-rc.1"), Semver::parse("2.0.0"));
        assert!(Semver::parse("2.0").is_err());
        assert!(Semver::parse("2.x.0").is_err());
        assert_eq!(
            judge(
                json!({"json": "$.v", "semver": "2.0.0"}),
                json!({"v": "2.0.0+build.7"})
            ),
            None
        );
        assert!(judge(
            json!({"json": "$.v", "semver": "2.0.0"}),
            json!({"v": "1.9.9"})
        )
        .is_some());
    }

    #[test]
    fn each_predicate_holds_and_fails() {
        let body =
            json!({"items": [1, 2], "id": "ab12", "total": 40, "state": "ok", "error": null});
        for (assertion, holds) in [
            (json!({"json": "$.items", "length": ">= 1"}), true),
            (json!({"json": "$.items", "length": 3}), false),
            (
                json!({"json": "$.id", "type": "string", "matches": "^[a-z0-9]{4}$"}),
                true,
            ),
            (json!({"json": "$.id", "type": "number"}), false),
            (json!({"json": "$.total", ">=": 0, "<": 100}), true),
            (json!({"json": "$.total", ">": 40}), false),
            (json!({"json": "$.items", "contains": 2}), true),
            (
                json!({"json": "$.state", "one_of": ["ok", "degraded"]}),
                true,
            ),
            (
                json!({"json": "$.state", "not": {"one_of": ["failed", "ok"]}}),
                false,
            ),
            (json!({"json": "$.missing", "absent": true}), true),
            (json!({"json": "$.id", "absent": true}), false),
            (json!({"json": "$.error", "exists": true}), true),
            (json!({"json": "$.error", "type": "null"}), true),
        ] {
            assert_eq!(
                judge(assertion.clone(), body.clone()).is_none(),
                holds,
                "{assertion}"
            );
        }
    }

    #[test]
    fn missing_data_never_passes() {
        let found = judge(json!({"json": "$.nope", "not": {"equals": 1}}), json!({}));
        assert!(found.is_some(), "a negation over nothing is not a pass");
        let (expected, measured) = judge(json!({"json": "$.nope", "<": 5}), json!({})).unwrap();
        assert_eq!(expected, "< 5");
        assert_eq!(measured, "nothing (no such value)");
    }

    #[test]
    fn headers_can_be_absent_or_match() {
        let mut headers = HeaderMap::new();
        headers.insert("location", "/orders/12".parse().unwrap());
        let check = |a: Value| {
            parse(&a)
                .unwrap()
                .judge(None, &headers, &mut Budget::unlimited())
                .unwrap()
        };
        assert!(check(json!({"header": "location", "matches": "^/orders/[0-9]+$"})).is_none());
        assert!(check(json!({"header": "x-debug", "absent": true})).is_none());
        assert!(check(json!({"header": "location", "absent": true})).is_some());
    }

    #[test]
    fn mistakes_are_named() {
        let e = parse(&json!({"json": "$.a", "lenght": 1})).unwrap_err();
        assert!(e[0].1.contains("did you mean `length`"), "{e:?}");
        let e = parse(&json!({"equals": 1})).unwrap_err();
        assert!(
            e[0].1.contains("`json: <JSONPath>` or `header: <name>`"),
            "{e:?}"
        );
        let e = parse(&json!({"header": "x", "type": "number"})).unwrap_err();
        assert!(e[0].1.contains("headers are text"), "{e:?}");
        let e = parse(&json!({"json": "$.a", "absent": false})).unwrap_err();
        assert!(e[0].1.contains("ambiguous"), "{e:?}");
    }
}
