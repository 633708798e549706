//! `GREENLIGHT_PLANS`: one greenlight for many services, each with its own plan. A map from a
//! service to its plan, YAML or JSON:
//!
//! ```yaml
//! checkout/checkout-prod: {version: 1, checks: [{name: health, path: /health}]}
//! payments/*: {file: /var/task/plans/payments.yaml}
//! ```
//!
//! Keys are CodeDeploy `APPLICATION/GROUP` or ECS `ecs/CLUSTER/SERVICE`, a trailing `*` matching any rest (the longest match
//! wins, an exact key first). A value is the plan itself (a map), plan text (a string), or
//! `{file: PATH}`. Each plan is read and validated when the function starts; a broken one fails
//! only its service's deployments, with the reason.

use std::path::PathBuf;

use serde_json::Value;

use super::{PlanError, PlanSpec, MAX_PLAN_BYTES};
use crate::env::Env;

/// At most this many services in one mapping.
const MAX_SERVICES: usize = 500;
/// Plan files read for one mapping, together: each may be 1 MiB, and hundreds of them would not
/// fit, parsed, in a 128 MB function.
const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// The services and their plans (the order does not matter: the exact key, else the longest
/// prefix, chooses).
#[derive(Debug)]
pub struct ServicePlans {
    pub entries: Vec<ServicePlan>,
}

/// One key of `GREENLIGHT_PLANS` and its plan (or why it is unusable).
#[derive(Debug)]
pub struct ServicePlan {
    pub pattern: String,
    pub spec: Result<PlanSpec, PlanError>,
}

impl ServicePlans {
    /// `GREENLIGHT_PLANS`, when set.
    pub fn from_env(env: &Env) -> Result<Option<Self>, PlanError> {
        let text = env
            .setting("GREENLIGHT_PLANS")
            .map_err(|e| PlanError::Source(e.to_string()))?;
        text.map(|text| Self::parse(&text)).transpose()
    }

    /// Reads the mapping; an unusable mapping as a whole is an error, an unusable plan is kept
    /// with its key.
    pub fn parse(text: &str) -> Result<Self, PlanError> {
        let problem = |message: String| PlanError::Source(format!("GREENLIGHT_PLANS: {message}"));
        let value = crate::config_text::parse(text).map_err(problem)?;
        let Value::Object(map) = value else {
            return Err(problem(
                "a map from APPLICATION/GROUP or ecs/CLUSTER/SERVICE (a trailing * matches any rest) to a plan, plan text or {file: PATH}".into(),
            ));
        };
        if map.len() > MAX_SERVICES {
            return Err(problem(format!(
                "at most {MAX_SERVICES} services, found {}",
                map.len()
            )));
        }
        let mut entries = Vec::new();
        let mut file_bytes = 0;
        for (pattern, value) in map {
            let star = pattern.find('*');
            if !pattern.contains('/') || star.is_some_and(|at| at != pattern.len() - 1) {
                return Err(problem(format!(
                    "\"{pattern}\" is not APPLICATION/GROUP or ecs/CLUSTER/SERVICE (a * is allowed only at the end, such as checkout/*)"
                )));
            }
            let spec = plan_of(value, &mut file_bytes)
                .map_err(|e| e.of(&format!("GREENLIGHT_PLANS[{pattern}]")));
            entries.push(ServicePlan { pattern, spec });
        }
        Ok(ServicePlans { entries })
    }

    /// The entry for `service` (`APPLICATION/GROUP`): the exact key, else the longest `prefix*`.
    pub fn find(&self, service: &str) -> Option<usize> {
        best_match(self.entries.iter().map(|e| e.pattern.as_str()), service)
    }
}

/// Which of `patterns` names `service`: the exact one, else the longest `prefix*`.
pub fn best_match<'a>(
    patterns: impl Iterator<Item = &'a str> + Clone,
    service: &str,
) -> Option<usize> {
    if let Some(exact) = patterns.clone().position(|p| p == service) {
        return Some(exact);
    }
    patterns
        .enumerate()
        .filter_map(|(i, pattern)| {
            let prefix = pattern.strip_suffix('*')?;
            service.starts_with(prefix).then_some((prefix.len(), i))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, i)| i)
}

/// `file_bytes`: what plan files read so far hold; a file past [`MAX_FILE_BYTES`] in all is an
/// error of its entry.
fn plan_of(value: Value, file_bytes: &mut usize) -> Result<PlanSpec, PlanError> {
    match value {
        Value::String(text) => PlanSpec::parse(&text),
        Value::Object(map) if map.len() == 1 && map.contains_key("file") => {
            let Some(path) = map.get("file").and_then(Value::as_str) else {
                return Err(PlanError::Source("`file` is a path".into()));
            };
            let text = crate::files::read_text(
                &PathBuf::from(path),
                MAX_PLAN_BYTES,
                crate::files::READ_TIME_LIMIT,
            )
            .map_err(|e| PlanError::Source(format!("{path}: {e}")))?;
            *file_bytes += text.len();
            if *file_bytes > MAX_FILE_BYTES {
                return Err(PlanError::Source(format!(
                    "{path}: the plan files of GREENLIGHT_PLANS hold more than {} MiB together; share plans between services with a `*` key",
                    MAX_FILE_BYTES / (1024 * 1024)
                )));
            }
            PlanSpec::parse(&text)
        }
        Value::Object(map) => PlanSpec::parse(&Value::Object(map).to_string()),
        other => Err(PlanError::Source(format!(
            "a plan (a map), plan text, or {{file: PATH}}, found {}",
            super::document::kind_of(&other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exact_key_then_the_longest_prefix_chooses() {
        let plans = ServicePlans::parse(
            r#"
checkout/checkout-prod: {version: 1, checks: [{name: a, path: /a}]}
checkout/*: "version: 1\nchecks: [{name: b, path: /b}]"
"*/*": {version: 2}
"#,
        );
        // `*/*` is refused: a * only at the end.
        assert!(plans
            .unwrap_err()
            .to_string()
            .contains("\"*/*\" is not APPLICATION/GROUP"));
        let plans = ServicePlans::parse(
            r#"
checkout/checkout-prod: {version: 1, checks: [{name: a, path: /a}]}
checkout/*: "version: 1\nchecks: [{name: b, path: /b}]"
check/*: {version: 2}
"#,
        )
        .unwrap();
        let chosen = |service: &str| {
            plans
                .find(service)
                .map(|i| plans.entries[i].pattern.as_str())
        };
        assert_eq!(
            chosen("checkout/checkout-prod"),
            Some("checkout/checkout-prod")
        );
        assert_eq!(chosen("checkout/checkout-staging"), Some("checkout/*"));
        assert_eq!(chosen("check/x"), Some("check/*"));
        assert_eq!(chosen("payments/prod"), None);
        // A broken plan stays with its key.
        let spec = |pattern: &str| {
            &plans
                .entries
                .iter()
                .find(|e| e.pattern == pattern)
                .unwrap()
                .spec
        };
        assert!(spec("check/*").is_err());
        assert!(spec("checkout/checkout-prod").is_ok());
    }

    #[test]
    fn plan_files_are_bounded_together() {
        let dir = std::env::temp_dir().join(format!("greenlight-plans-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Five valid plans of 900 KB each (a comment pads them): the fifth passes 4 MiB.
        let plan = format!(
            "version: 1\nchecks: [{{name: h, path: /}}]\n# {}\n",
            "x".repeat(900_000)
        );
        let mut mapping = String::new();
        for i in 0..5 {
            let path = dir.join(format!("p{i}.yaml"));
            std::fs::write(&path, &plan).unwrap();
            mapping.push_str(&format!("a/s{i}: {{file: {}}}\n", path.display()));
        }
        let plans = ServicePlans::parse(&mapping).unwrap();
        let usable = plans.entries.iter().filter(|e| e.spec.is_ok()).count();
        assert_eq!(usable, 4);
        let refused = plans
            .entries
            .iter()
            .find_map(|e| e.spec.as_ref().err())
            .unwrap();
        assert!(
            refused
                .to_string()
                .contains("hold more than 4 MiB together"),
            "{refused}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn what_is_wrong_is_named() {
        assert!(ServicePlans::parse("[1, 2]")
            .unwrap_err()
            .to_string()
            .contains("GREENLIGHT_PLANS: a map from APPLICATION/GROUP or ecs/CLUSTER/SERVICE"));
        assert!(ServicePlans::parse("checkout: {version: 1}")
            .unwrap_err()
            .to_string()
            .contains("\"checkout\" is not APPLICATION/GROUP"));
        let plans = ServicePlans::parse("a/b: {file: /nonexistent/plan.yaml}\nc/d: 7").unwrap();
        assert_eq!(plans.entries[0].pattern, "a/b");
        assert!(plans.entries[0]
            .spec
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("GREENLIGHT_PLANS[a/b]: /nonexistent/plan.yaml"));
        assert!(plans.entries[1]
            .spec
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("a plan (a map), plan text, or {file: PATH}, found"));
    }
}
