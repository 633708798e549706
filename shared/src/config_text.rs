//! Configuration text (a plan, `GREENLIGHT_ALARM_TARGETS`) read as YAML or JSON, strictly: a
//! key written twice is an error naming the key and where it is (JSON parsers usually keep the
//! last one, which let `"status": 200, "status": 500` accept a 500), sizes are bounded (YAML
//! aliases cannot expand into millions of values), and errors are said in plain words, not in
//! the parser's.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Text longer than this is refused before parsing.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;

/// Parses YAML, or JSON when the text starts with `{` (or `[`).
pub fn parse(text: &str) -> Result<Value, String> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "the text is {} bytes; at most {MAX_TEXT_BYTES} are read",
            text.len()
        ));
    }
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        parse_json(trimmed)
    } else {
        parse_yaml(text)
    }
}

/// JSON with duplicate keys refused.
pub fn parse_json(text: &str) -> Result<Value, String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = StrictValue { path: "" }
        .deserialize(&mut deserializer)
        .map_err(|e| json_message(&e))?;
    deserializer.end().map_err(|e| json_message(&e))?;
    Ok(value)
}

fn json_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    // serde_json says "… at line 1 column 9"; keep that, drop its internal wording.
    text.replace("EOF while parsing", "the text ends in the middle of")
        .replace("trailing characters", "unexpected text after the end")
}

fn parse_yaml(text: &str) -> Result<Value, String> {
    serde_saphyr::from_str::<Value>(text).map_err(|e| yaml_message(&e))
}

fn yaml_message(error: &serde_saphyr::Error) -> String {
    let mut inner = error;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = inner
    {
        inner = error;
    }
    let at = error
        .location()
        .or_else(|| inner.location())
        .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
        .unwrap_or_default();
    let what = match inner {
        serde_saphyr::Error::DuplicateMappingKey { key: Some(key), .. } => {
            format!("the key `{key}` is written twice in the same map; keep one")
        }
        serde_saphyr::Error::DuplicateMappingKey { key: None, .. } => {
            "a key is written twice in the same map; keep one".to_string()
        }
        serde_saphyr::Error::Budget { breach, .. } => budget_message(breach),
        other => {
            // "error: line 2 column 1: message\n --> snippet…": keep only the message.
            let text = other.to_string();
            let first = text.lines().next().unwrap_or_default();
            let first = first.trim_start_matches("error: ");
            let message = match first.split_once(": ") {
                Some((place, message)) if place.starts_with("line ") => message,
                _ => first,
            };
            // Some messages carry their own position; the one added below is enough.
            match message.rsplit_once(" at line ") {
                Some((what, _)) => what.to_string(),
                None => message.to_string(),
            }
        }
    };
    format!("{what}{at}")
}

fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Nodes { .. } | B::Events { .. } | B::ScalarBytes { .. } => {
            "the text expands to too many values (YAML aliases are counted each time they are used); a plan never needs that many".into()
        }
        B::Aliases { .. } | B::Anchors { .. } | B::AliasAnchorRatio { .. } | B::MergeKeys { .. } => {
            "the text uses too many YAML anchors, aliases or merge keys".into()
        }
        B::Depth { .. } => "the text nests maps and lists too deeply".into(),
        B::Documents { .. } => "the text holds more than one YAML document; a plan is one".into(),
        _ => "the text is too large or too complex to read safely".into(),
    }
}

/// Builds a [`Value`] like serde_json does, but refuses a key written twice, naming it and the
/// path of the map it is in.
struct StrictValue<'p> {
    path: &'p str,
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let path = format!("{}[{}]", self.path, items.len());
            match seq.next_element_seed(StrictValue { path: &path })? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if object.contains_key(&key) {
                let place = if self.path.is_empty() {
                    "at the top level".to_string()
                } else {
                    format!("in {}", self.path)
                };
                return Err(de::Error::custom(format!(
                    "the key \"{key}\" is written twice {place}; keep one"
                )));
            }
            let value = map.next_value_seed(StrictValue { path: &path })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_key_written_twice_is_an_error_naming_it_and_its_map() {
        let err = parse(r#"{"version": 1, "checks": [{"name": "a", "expect": {"status": 200, "status": 500}}]}"#)
            .unwrap_err();
        assert!(
            err.starts_with("the key \"status\" is written twice in checks[0].expect; keep one"),
            "{err}"
        );
        let err = parse(r#"{"checks": [], "checks": [1]}"#).unwrap_err();
        assert!(
            err.contains("\"checks\" is written twice at the top level"),
            "{err}"
        );
    }

    #[test]
    fn a_yaml_key_written_twice_is_said_in_plain_words() {
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(
            err,
            "the key `a` is written twice in the same map; keep one (line 2, column 1)"
        );
        assert!(!err.contains("DuplicateKeyPolicy"));
    }

    #[test]
    fn an_alias_bomb_is_refused_in_plain_words() {
        let mut text = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        for (name, prev) in [("b", "a"), ("c", "b"), ("d", "c"), ("e", "d"), ("f", "e")] {
            text.push_str(&format!(
                "{name}: &{name} [{}]\n",
                vec![format!("*{prev}"); 10].join(",")
            ));
        }
        let err = parse(&text).unwrap_err();
        assert!(
            err.starts_with("the text expands to too many values"),
            "{err}"
        );
        assert!(!err.contains("budget breached"), "{err}");
    }

    #[test]
    fn syntax_errors_keep_their_place_and_lose_the_snippet() {
        let err = parse("a: [1,\n").unwrap_err();
        assert_eq!(err, "unclosed bracket '[' (line 1, column 4)");
        let err = parse("{\"a\": 1,").unwrap_err();
        assert_eq!(
            err,
            "the text ends in the middle of a value at line 1 column 8"
        );
        assert!(parse(&"x".repeat(MAX_TEXT_BYTES + 1)).is_err());
    }

    #[test]
    fn values_come_out_as_serde_json_makes_them() {
        let text = r#"{"a": [1, -2, 2.5, "x", true, null, {"b": {}}]}"#;
        assert_eq!(
            parse(text).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
    }
}
