//! The EventBridge "CloudWatch Alarm State Change" event, for metric and composite alarms. Read
//! tolerantly (new fields appear over time), but the fields a decision rests on must be there.

use std::collections::BTreeMap;

use serde_json::Value;

pub const STATE_CHANGE: &str = "CloudWatch Alarm State Change";

/// The event could not be read as an alarm state change.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("not a CloudWatch alarm state change event: {0}")]
pub struct AlarmEventError(pub String);

/// What an alarm event says.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlarmEvent {
    pub detail_type: String,
    pub alarm_name: String,
    /// `resources[0]`: the alarm's ARN, used to read its tags.
    pub alarm_arn: Option<String>,
    /// The event's `account`: where the alarm is (forwarded events keep it).
    pub account: Option<String>,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    pub previous_state: Option<String>,
    pub reason: String,
    /// `state.reasonData`, decoded from its JSON string when it is JSON.
    pub reason_data: Option<Value>,
    /// `state.timestamp` as sent, e.g. `2019-10-02T17:04:40.989+0000`.
    pub timestamp: Option<String>,
    /// When the alarm entered this state: `state.timestamp`, else the event's `time`.
    #[serde(skip)]
    pub entered_at: Option<std::time::SystemTime>,
    /// `detail.alarmTags`, when CloudWatch propagates tags into the event.
    pub tags: Option<BTreeMap<String, String>>,
    /// A composite alarm (it has an `alarmRule`).
    pub composite: bool,
    /// Why CloudWatch suppressed the alarm's actions, if it did (composite alarms).
    pub actions_suppressed_by: Option<String>,
}

impl AlarmEvent {
    /// The account the alarm is in: its ARN's, else the event's.
    pub fn alarm_account(&self) -> Option<&str> {
        self.alarm_arn
            .as_deref()
            .and_then(|arn| arn.split(':').nth(4))
            .filter(|a| !a.is_empty())
            .or(self.account.as_deref())
    }

    pub fn is_alarm(&self) -> bool {
        self.state == "ALARM"
    }
}

pub fn parse_alarm_event(payload: &Value) -> Result<AlarmEvent, AlarmEventError> {
    let error = |m: String| AlarmEventError(m);
    if !payload.is_object() {
        return Err(error(format!(
            "expected a JSON object, got {}",
            kind(payload)
        )));
    }
    let text = |v: &Value| v.as_str().map(str::to_string);
    let detail_type =
        text(&payload["detail-type"]).ok_or_else(|| error("`detail-type` is missing".into()))?;
    let detail = &payload["detail"];
    if !detail.is_object() {
        return Err(error(format!(
            "`detail` is missing or not an object (detail-type: {detail_type})"
        )));
    }
    let alarm_name = text(&detail["alarmName"])
        .filter(|n| !n.is_empty())
        .ok_or_else(|| error("`detail.alarmName` is missing".into()))?;
    let state = &detail["state"];
    let state_value = text(&state["value"]).ok_or_else(|| {
        error(format!(
            "`detail.state.value` is missing for alarm {alarm_name}"
        ))
    })?;
    let reason_data = match &state["reasonData"] {
        Value::String(s) => {
            Some(serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())))
        }
        Value::Null => None,
        other => Some(other.clone()),
    };
    let tags = match &detail["alarmTags"] {
        Value::Object(map) => Some(
            map.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect(),
        ),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|t| {
                    Some((
                        text(&t["Key"]).or_else(|| text(&t["key"]))?,
                        text(&t["Value"])
                            .or_else(|| text(&t["value"]))
                            .unwrap_or_default(),
                    ))
                })
                .collect(),
        ),
        _ => None,
    };
    Ok(AlarmEvent {
        detail_type,
        alarm_arn: payload["resources"].get(0).and_then(text),
        account: text(&payload["account"]),
        state: state_value,
        previous_state: text(&detail["previousState"]["value"]),
        reason: text(&state["reason"]).unwrap_or_default(),
        reason_data,
        timestamp: text(&state["timestamp"]),
        entered_at: text(&state["timestamp"])
            .and_then(|t| crate::timestamp::parse(&t))
            .or_else(|| text(&payload["time"]).and_then(|t| crate::timestamp::parse(&t))),
        tags,
        composite: detail["configuration"]["alarmRule"].is_string(),
        actions_suppressed_by: text(&state["actionsSuppressedBy"]),
        alarm_name,
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_metric_alarm_with_its_double_encoded_reason_data() {
        let event = parse_alarm_event(&json!({
            "detail-type": "CloudWatch Alarm State Change",
            "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:api-5xx"],
            "detail": {"alarmName": "api-5xx", "state": {"value": "ALARM", "reason": "Threshold Crossed",
                "reasonData": "{\"threshold\":5.0}", "timestamp": "2019-10-02T17:04:40.989+0000"},
                "previousState": {"value": "OK"}}
        }))
        .unwrap();
        assert!(event.is_alarm());
        assert_eq!(
            event.alarm_arn.as_deref(),
            Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:api-5xx")
        );
        assert_eq!(event.reason_data, Some(json!({"threshold": 5.0})));
        assert_eq!(event.previous_state.as_deref(), Some("OK"));
        assert!(!event.composite);
    }

    #[test]
    fn names_the_missing_field() {
        let err = parse_alarm_event(&json!({"detail-type": "CloudWatch Alarm State Change", "detail": {"state": {"value": "ALARM"}}})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "not a CloudWatch alarm state change event: `detail.alarmName` is missing"
        );
        let err = parse_alarm_event(&json!({"detail-type": "x", "detail": {"alarmName": "a"}}))
            .unwrap_err();
        assert!(
            err.0
                .contains("`detail.state.value` is missing for alarm a"),
            "{err}"
        );
        assert!(parse_alarm_event(&json!("ALARM"))
            .unwrap_err()
            .0
            .contains("expected a JSON object"));
    }
}
