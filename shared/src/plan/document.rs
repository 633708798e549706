//! The plan as written: serde types that mirror the YAML/JSON document field for field.
//! Unknown fields are rejected here; meaning is checked in `plan::validate`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::duration::serde_text as duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanDocument {
    pub version: serde_json::Value,
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub budget: Option<Duration>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub concurrency: Option<usize>,
    #[serde(default)]
    pub defaults: DefaultsDocument,
    #[serde(default)]
    pub checks: Vec<CheckDocument>,
    /// ECS-native lifecycle stages (`POST_TEST_TRAFFIC_SHIFT`, …) and what to verify at each.
    #[serde(default)]
    pub stages: BTreeMap<String, StageDocument>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StageDocument {
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub checks: Option<Vec<CheckDocument>>,
    #[serde(default)]
    pub attempts: Option<u32>,
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub within: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub retry_after: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefaultsDocument {
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub retry_delay: Option<Duration>,
    #[serde(default, deserialize_with = "scalar_map")]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub expect: Option<ExpectDocument>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckDocument {
    pub name: String,
    #[serde(default)]
    pub method: Option<String>,
    pub path: String,
    #[serde(default, deserialize_with = "scalar_map")]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub retry_delay: Option<Duration>,
    #[serde(default)]
    pub expect: Option<ExpectDocument>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpectDocument {
    #[serde(default)]
    pub status: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub latency: Option<Duration>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub body_contains: Option<Vec<String>>,
    #[serde(default)]
    pub body_matches: Option<String>,
    #[serde(default, deserialize_with = "scalar_map_opt")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub json: Option<BTreeMap<String, serde_json::Value>>,
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
        }
    }
}

/// Header maps accept any scalar (YAML `x-smoke: 1` is a number) and keep it as text.
fn scalar_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            serde_json::Value::Number(n) => Ok((k, n.to_string())),
            serde_json::Value::Bool(b) => Ok((k, b.to_string())),
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
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(Some(vec![s])),
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::String(s) => Ok(s),
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

pub(crate) fn kind_of(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "nothing (null)".into(),
        serde_json::Value::Bool(b) => format!("a boolean ({b})"),
        serde_json::Value::Number(n) => format!("a number ({n})"),
        serde_json::Value::String(s) => format!("text (\"{s}\")"),
        serde_json::Value::Array(_) => "a list".into(),
        serde_json::Value::Object(_) => "a map".into(),
    }
}
