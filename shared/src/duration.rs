//! Human-readable durations as written in plans: `250ms`, `5s`, `1m`, `1m30s`, `1.5s`.

use std::time::Duration;

/// Parses a duration written with units. Bare numbers are rejected so that `timeout: 5`
/// cannot silently mean five milliseconds or five minutes.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration; write it with a unit, such as 250ms, 5s or 1m".into());
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(format!(
                "\"{text}\" is not a duration; write it with a unit, such as 250ms, 5s or 1m"
            ));
        }
        let number: f64 = rest[..number_len].parse().map_err(|_| {
            format!(
                "\"{text}\" is not a duration: bad number \"{}\"",
                &rest[..number_len]
            )
        })?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!(
                    "\"{text}\" has no unit; write it with one, such as {number}ms or {number}s"
                ))
            }
            other => {
                return Err(format!(
                    "\"{text}\" has an unknown unit \"{other}\"; use ms, s, m or h"
                ))
            }
        };
        total += number * seconds_per_unit;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > 86_400.0 {
        return Err(format!("\"{text}\" is longer than a day"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Formats a duration the way plans write them, for messages: `850ms`, `2.5s`, `1m30s`.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1_000 {
        if duration.as_micros() < 1_000 && !duration.is_zero() {
            return format!("{:.2}ms", duration.as_secs_f64() * 1000.0);
        }
        return format!("{millis}ms");
    }
    if millis < 60_000 {
        let seconds = duration.as_secs_f64();
        return if millis.is_multiple_of(1000) {
            format!("{}s", millis / 1000)
        } else {
            format!("{}s", format!("{seconds:.2}").trim_end_matches('0'))
        };
    }
    let minutes = millis / 60_000;
    let seconds = (millis % 60_000) / 1000;
    if seconds == 0 {
        format!("{minutes}m")
    } else {
        format!("{minutes}m{seconds}s")
    }
}

/// Serde adapter: a duration field in a plan.
pub(crate) mod serde_text {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        match value {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::String(text) => super::parse_duration(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
            serde_json::Value::Number(n) => Err(serde::de::Error::custom(format!(
                "{n} has no unit; write it as a string with one, such as \"{n}s\" or \"{n}ms\""
            ))),
            other => Err(serde::de::Error::custom(format!(
                "expected a duration such as \"250ms\" or \"5s\", found {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit_and_compounds() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn rejects_missing_or_unknown_units_with_a_hint() {
        assert!(parse_duration("5").unwrap_err().contains("no unit"));
        assert!(parse_duration("5sec")
            .unwrap_err()
            .contains("unknown unit \"sec\""));
        assert!(parse_duration("fast")
            .unwrap_err()
            .contains("not a duration"));
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("2d").is_err());
    }

    #[test]
    fn formats_like_plans_are_written() {
        assert_eq!(format_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(format_duration(Duration::from_secs(5)), "5s");
        assert_eq!(format_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_micros(420)), "0.42ms");
    }
}
