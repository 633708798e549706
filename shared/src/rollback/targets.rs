//! What an alarm guards: CodeDeploy deployment groups and ECS services, and the sources that say
//! so — tags on the alarm, an explicit mapping, discovery.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

pub const TAG_CODEDEPLOY_APPLICATION: &str = "greenlight:codedeploy-application";
pub const TAG_CODEDEPLOY_GROUP: &str = "greenlight:codedeploy-deployment-group";
pub const TAG_ECS_CLUSTER: &str = "greenlight:ecs-cluster";
pub const TAG_ECS_SERVICE: &str = "greenlight:ecs-service";

/// Something whose in-flight deployment can be stopped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    CodeDeploy {
        application: String,
        deployment_group: String,
    },
    Ecs {
        cluster: String,
        service: String,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::CodeDeploy {
                application,
                deployment_group,
            } => write!(f, "codedeploy:{application}/{deployment_group}"),
            Target::Ecs { cluster, service } => write!(f, "ecs:{cluster}/{service}"),
        }
    }
}

impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Target {
    /// Parses `codedeploy:APPLICATION/GROUP` or `ecs:CLUSTER/SERVICE`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (kind, rest) = text
            .split_once(':')
            .ok_or_else(|| format!("\"{text}\" is not a target; write codedeploy:APPLICATION/GROUP or ecs:CLUSTER/SERVICE"))?;
        let (first, second) = rest
            .split_once('/')
            .filter(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('/'))
            .ok_or_else(|| format!("\"{text}\" needs two names separated by \"/\""))?;
        match kind {
            "codedeploy" => Ok(Target::CodeDeploy {
                application: first.into(),
                deployment_group: second.into(),
            }),
            "ecs" => Ok(Target::Ecs {
                cluster: first.into(),
                service: second.into(),
            }),
            other => Err(format!(
                "\"{text}\": unknown kind \"{other}\"; use codedeploy or ecs"
            )),
        }
    }
}

/// Where a target came from, in the order sources are consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `detail.alarmTags` in the event.
    EventTags,
    /// CloudWatch `ListTagsForResource` on the alarm.
    AlarmTags,
    /// `GREENLIGHT_ALARM_TARGETS`.
    Mapping,
    /// A CodeDeploy deployment group whose alarm configuration lists the alarm.
    Discovery,
}

/// Targets named by greenlight's tags; a half-written pair is a problem, not a target.
pub fn targets_from_tags(tags: &BTreeMap<String, String>) -> (Vec<Target>, Vec<String>) {
    let mut targets = Vec::new();
    let mut problems = Vec::new();
    let pairs = [
        (TAG_CODEDEPLOY_APPLICATION, TAG_CODEDEPLOY_GROUP, true),
        (TAG_ECS_CLUSTER, TAG_ECS_SERVICE, false),
    ];
    for (first, second, codedeploy) in pairs {
        let a = tags.get(first).filter(|v| !v.trim().is_empty());
        let b = tags.get(second).filter(|v| !v.trim().is_empty());
        match (a, b) {
            (Some(a), Some(b)) if codedeploy => targets.push(Target::CodeDeploy {
                application: a.clone(),
                deployment_group: b.clone(),
            }),
            (Some(a), Some(b)) => targets.push(Target::Ecs {
                cluster: a.clone(),
                service: b.clone(),
            }),
            (Some(_), None) => problems.push(format!("the alarm has tag {first} but not {second}")),
            (None, Some(_)) => problems.push(format!("the alarm has tag {second} but not {first}")),
            (None, None) => {}
        }
    }
    (targets, problems)
}

/// `GREENLIGHT_ALARM_TARGETS`: alarm name (or prefix ending in `*`) → one target or a list.
///
/// ```yaml
/// checkout-5xx: codedeploy:checkout/checkout-prod
/// "payments-*": [ecs:prod/payments, codedeploy:payments/payments-prod]
/// ```
#[derive(Debug, Clone, Default)]
pub struct AlarmMapping {
    entries: Vec<(String, Vec<Target>)>,
}

impl AlarmMapping {
    pub fn parse(text: &str) -> Result<Self, String> {
        let value = crate::config_text::parse(text)
            .map_err(|e| format!("GREENLIGHT_ALARM_TARGETS is not valid YAML or JSON: {e}"))?;
        let serde_json::Value::Object(map) = value else {
            return Err("GREENLIGHT_ALARM_TARGETS must map alarm names (or prefixes ending in *) to targets".into());
        };
        let mut entries = Vec::new();
        let mut problems = Vec::new();
        for (pattern, targets) in map {
            let texts: Vec<serde_json::Value> = match targets {
                serde_json::Value::Array(items) => items,
                single => vec![single],
            };
            let mut parsed = Vec::new();
            for t in texts {
                match t.as_str().map(Target::parse) {
                    Some(Ok(target)) => parsed.push(target),
                    Some(Err(e)) => problems.push(format!("{pattern}: {e}")),
                    None => problems.push(format!("{pattern}: {t} is not a target string")),
                }
            }
            entries.push((pattern, parsed));
        }
        if problems.is_empty() {
            Ok(AlarmMapping { entries })
        } else {
            Err(format!("GREENLIGHT_ALARM_TARGETS: {}", problems.join("; ")))
        }
    }

    /// Targets of every entry that matches the alarm: exact names and `prefix*` patterns.
    pub fn targets_for(&self, alarm_name: &str) -> Vec<Target> {
        self.entries
            .iter()
            .filter(|(pattern, _)| match pattern.strip_suffix('*') {
                Some(prefix) => alarm_name.starts_with(prefix),
                None => pattern == alarm_name,
            })
            .flat_map(|(_, targets)| targets.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_print_the_same_way() {
        for text in ["codedeploy:app/group", "ecs:prod/web"] {
            assert_eq!(Target::parse(text).unwrap().to_string(), text);
        }
        assert!(Target::parse("codedeploy:app")
            .unwrap_err()
            .contains("two names"));
        assert!(Target::parse("lambda:a/b")
            .unwrap_err()
            .contains("unknown kind"));
        assert!(Target::parse("nothing").is_err());
    }

    #[test]
    fn tags_name_targets_in_pairs() {
        let tags: BTreeMap<String, String> = [
            (TAG_CODEDEPLOY_APPLICATION, "app"),
            (TAG_CODEDEPLOY_GROUP, "group"),
            (TAG_ECS_CLUSTER, "prod"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (targets, problems) = targets_from_tags(&tags);
        assert_eq!(
            targets,
            vec![Target::parse("codedeploy:app/group").unwrap()]
        );
        assert_eq!(
            problems,
            vec![format!(
                "the alarm has tag {TAG_ECS_CLUSTER} but not {TAG_ECS_SERVICE}"
            )]
        );
    }

    #[test]
    fn the_mapping_matches_names_and_prefixes() {
        let mapping = AlarmMapping::parse(
            "checkout-5xx: codedeploy:checkout/prod\n'checkout-*': [ecs:prod/checkout]\n",
        )
        .unwrap();
        assert_eq!(mapping.targets_for("checkout-5xx").len(), 2);
        assert_eq!(
            mapping.targets_for("checkout-latency"),
            vec![Target::parse("ecs:prod/checkout").unwrap()]
        );
        assert!(mapping.targets_for("payments-5xx").is_empty());
        let err = AlarmMapping::parse("a: [codedeploy:x]").unwrap_err();
        assert!(err.contains("a: \"codedeploy:x\" needs two names"), "{err}");
        assert!(AlarmMapping::parse("[1, 2]").is_err());
        let err = AlarmMapping::parse(r#"{"a": "ecs:x/y", "a": "ecs:x/z"}"#).unwrap_err();
        assert!(err.contains("the key \"a\" is written twice"), "{err}");
    }
}
