//! The plan as written: serde types that mirror the YAML/JSON document field for field, read
//! one object at a time so that every problem is found in one pass: every unknown field (with a
//! suggestion for a typo), and the first wrong value of each object. Meaning is checked in
//! `plan::validate`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::FieldError;
use crate::duration::serde_text as duration;
use crate::suggest::edit_distance;

#[derive(Debug, Deserialize)]
pub(crate) struct PlanDocument {
    pub version: Value,
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub budget: Option<Duration>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Ask for gzip and brotli answers, and judge them decoded.
    #[serde(default)]
    pub compression: Option<bool>,
    /// Variables and headers whose values may be shown in output.
    #[serde(default)]
    pub not_secret: Vec<String>,
    /// How HTTPS targets are trusted.
    #[serde(default)]
    pub tls: Option<Value>,
    #[serde(default)]
    pub defaults: Option<Value>,
    /// Blue, for compare checks: a URL, or `{url, safe_methods}`.
    #[serde(default)]
    pub baseline: Option<Value>,
    /// Checks retried until they pass, before any other check runs.
    #[serde(default)]
    pub ready: Option<Value>,
    #[serde(default)]
    pub checks: Option<Vec<Value>>,
    /// ECS-native lifecycle stages (`POST_TEST_TRAFFIC_SHIFT`, …) and what to verify at each.
    #[serde(default)]
    pub stages: Option<BTreeMap<String, Value>>,
}

/// `baseline:` as a map.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct BaselineDocument {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub safe_methods: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReadyDocument {
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub within: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub checks: Option<Vec<Value>>,
}

/// One route of a sampled check.
#[derive(Debug, Deserialize)]
pub(crate) struct RouteDocument {
    pub path: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default, deserialize_with = "scalar_map")]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub weight: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TlsDocument {
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct StageDocument {
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub checks: Option<Vec<Value>>,
    #[serde(default)]
    pub attempts: Option<u32>,
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub within: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub retry_after: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DefaultsDocument {
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub retry_delay: Option<Duration>,
    #[serde(default)]
    pub retry_on: Option<Vec<Value>>,
    #[serde(default, deserialize_with = "scalar_map")]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub expect: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CheckDocument {
    pub name: String,
    #[serde(default)]
    pub method: Option<String>,
    /// Required unless the check has `routes`.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default, deserialize_with = "scalar_map")]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    /// A sampled check's requests spread over several routes, by weight.
    #[serde(default)]
    pub routes: Option<Vec<Value>>,
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub retry_delay: Option<Duration>,
    /// Which failed attempts are retried.
    #[serde(default)]
    pub retry_on: Option<Vec<Value>>,
    /// `fail`: passing only after failed attempts is a failure.
    #[serde(default)]
    pub flaky: Option<String>,
    #[serde(default)]
    pub samples: Option<Value>,
    #[serde(default)]
    pub thresholds: Option<Value>,
    /// Green against blue: `true`, or `{samples, concurrency, latency, errors, diff}`.
    #[serde(default)]
    pub compare: Option<Value>,
    /// A CloudWatch gate: `{namespace, name, dimensions, stat, threshold, …}`.
    #[serde(default)]
    pub metric: Option<Value>,
    /// The load balancer's view: `{target_group, min_healthy, production_listener}`.
    #[serde(default)]
    pub target_health: Option<Value>,
    /// Short for routes of weight 1: `paths: [/a, /b]`.
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    /// Values taken from the answer for later checks: `{order_id: {json: $.id}}`.
    #[serde(default)]
    pub capture: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub expect: Option<Value>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct ExpectDocument {
    #[serde(default)]
    pub status: Option<Value>,
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub latency: Option<Duration>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub body_contains: Option<Vec<String>>,
    #[serde(default)]
    pub body_matches: Option<String>,
    #[serde(default, deserialize_with = "scalar_map_opt")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub json: Option<BTreeMap<String, Value>>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub body_not_contains: Option<Vec<String>>,
    /// Assertions on JSON values and headers (see `crate::expect::assertion`).
    #[serde(default)]
    pub assert: Option<Vec<Value>>,
}

impl ExpectDocument {
    /// Field-by-field: what the check says wins over what `defaults.expect` says.
    pub fn over(self, defaults: &ExpectDocument) -> ExpectDocument {
        let d = defaults.clone();
        ExpectDocument {
            status: self.status.or(d.status),
            latency: self.latency.or(d.latency),
            body_contains: self.body_contains.or(d.body_contains),
            body_matches: self.body_matches.or(d.body_matches),
            headers: self.headers.or(d.headers),
            json: self.json.or(d.json),
            body_not_contains: self.body_not_contains.or(d.body_not_contains),
            assert: self.assert.or(d.assert),
        }
    }
}

/// Reads one object of the plan at `at` (a field path such as `checks[2]`): every field it does
/// not know is reported (with the nearest known name), then the first wrong value, if any.
pub(crate) fn read<T: DeserializeOwned>(
    value: Value,
    at: &str,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    let value = match value {
        Value::Object(mut map) => {
            let known = fields_of::<T>();
            let unknown: Vec<String> = map
                .keys()
                .filter(|k| !known.contains(&k.as_str()))
                .cloned()
                .collect();
            for key in &unknown {
                map.remove(key);
                errors.push(FieldError {
                    path: join(at, key),
                    message: unknown_field(key, known),
                });
            }
            Value::Object(map)
        }
        other => other,
    };
    // One wrong value stops serde; drop it and read again, so every wrong value is reported.
    // The document read from the fields that remain still goes on to be validated, so problems
    // of meaning are found too; the errors recorded here already make the plan invalid.
    let mut value = value;
    for _ in 0..=known_len::<T>() {
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(document) => return Some(document),
            Err(e) => {
                let inner = e.path().to_string();
                let field = e.path().iter().next().and_then(|segment| match segment {
                    serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                    _ => None,
                });
                let path = if inner == "." {
                    at.to_string()
                } else if at.is_empty() {
                    inner
                } else if inner.starts_with('[') {
                    format!("{at}{inner}")
                } else {
                    format!("{at}.{inner}")
                };
                errors.push(FieldError {
                    path,
                    message: plain(&e.into_inner().to_string()),
                });
                let removed = match (field, value.as_object_mut()) {
                    (Some(field), Some(map)) => map.remove(&field).is_some(),
                    _ => false,
                };
                if !removed {
                    return None;
                }
            }
        }
    }
    None
}

fn known_len<T: DeserializeOwned>() -> usize {
    fields_of::<T>().len()
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

fn unknown_field(key: &str, known: &[&str]) -> String {
    let nearest = known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min();
    let list = known
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match nearest {
        Some((_, k)) => format!("unknown field `{key}`; did you mean `{k}`? (known: {list})"),
        None => format!("unknown field `{key}` (known: {list})"),
    }
}

/// serde's wording, made readable: "invalid type: integer `5`, expected a string" → "expected
/// text, found the number 5".
fn plain(message: &str) -> String {
    let Some(rest) = message.strip_prefix("invalid type: ") else {
        return message.to_string();
    };
    let Some((found, expected)) = rest.split_once(", expected ") else {
        return message.to_string();
    };
    let expected = match expected {
        "a string" => "text",
        "u32" | "usize" | "u64" => "a whole number",
        "a sequence" => "a list",
        "a map"
        | "struct CheckDocument"
        | "struct ExpectDocument"
        | "struct StageDocument"
        | "struct DefaultsDocument"
        | "struct ReadyDocument"
        | "struct BaselineDocument"
        | "struct CompareDocument"
        | "struct LatencyDocument"
        | "struct ErrorsDocument"
        | "struct DiffDocument"
        | "struct RouteDocument"
        | "struct SamplesDocument"
        | "struct ThresholdsDocument"
        | "struct PlanDocument" => "a map",
        other => other,
    };
    let found = found
        .replace("integer ", "the number ")
        .replace("floating point ", "the number ")
        .replace("string ", "the text ")
        .replace("boolean ", "the boolean ")
        .replace("sequence", "a list")
        .replace("unit value", "nothing (null)");
    format!("expected {expected}, found {found}")
}

/// The names of a struct's fields, asked of its `Deserialize` implementation.
fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> Deserializer<'de> for &mut Probe {
        type Error = Stop;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut probe = Probe(None);
    let _ = T::deserialize(&mut probe);
    probe.0.unwrap_or(&[])
}

/// Header maps accept any scalar (YAML `x-smoke: 1` is a number) and keep it as text.
pub(crate) fn scalar_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(n) => Ok((k, n.to_string())),
            Value::Bool(b) => Ok((k, b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "header \"{k}\" must be text, found {}",
                kind_of(&other)
            ))),
        })
        .collect()
}

fn scalar_map_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    scalar_map(d).map(Some)
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(Some(vec![s])),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(serde::de::Error::custom(format!(
                    "expected text, found {}",
                    kind_of(&other)
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        other => Err(serde::de::Error::custom(format!(
            "expected text or a list of texts, found {}",
            kind_of(&other)
        ))),
    }
}

pub(crate) fn kind_of(value: &Value) -> String {
    match value {
        Value::Null => "nothing (null)".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) => format!("text (\"{s}\")"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a map".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unknown_field_is_named_with_a_suggestion() {
        let mut errors = Vec::new();
        let doc: Option<ExpectDocument> = read(
            serde_json::json!({"stauts": 200, "latncy": "1s", "zzz": 1}),
            "checks[0].expect",
            &mut errors,
        );
        assert!(doc.is_some(), "the known fields still read");
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            text[0].starts_with(
                "checks[0].expect.latncy: unknown field `latncy`; did you mean `latency`?"
            ),
            "{text:?}"
        );
        assert!(
            text[1].starts_with(
                "checks[0].expect.stauts: unknown field `stauts`; did you mean `status`?"
            ),
            "{text:?}"
        );
        assert!(
            text[2].starts_with("checks[0].expect.zzz: unknown field `zzz` (known:"),
            "{text:?}"
        );
    }

    #[test]
    fn wrong_types_are_said_plainly() {
        let mut errors = Vec::new();
        let _: Option<CheckDocument> = read(
            serde_json::json!({"name": 5, "path": "/"}),
            "checks[1]",
            &mut errors,
        );
        assert_eq!(
            errors[0].to_string(),
            "checks[1].name: expected text, found the number `5`"
        );
    }

    #[test]
    fn struct_fields_are_found() {
        assert_eq!(
            fields_of::<StageDocument>(),
            &["target", "checks", "attempts", "within", "retry_after"]
        );
    }
}
