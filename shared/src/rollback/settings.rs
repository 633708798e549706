//! alarm-rollback's configuration, read strictly from `GREENLIGHT_*` variables. Anything that
//! cannot be read or understood is a problem reported with every decision, and fails safe: an
//! unclear dry-run setting stops nothing.

use super::targets::{AlarmMapping, Target};
use crate::env::Env;

/// `GREENLIGHT_DRY_RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DryRun {
    Off,
    On,
    /// A value that is neither true nor false: nothing is stopped, and the value is named.
    Unclear(String),
}

impl DryRun {
    pub fn parse(value: Option<&str>) -> Self {
        match value.map(|v| v.trim().to_ascii_lowercase()) {
            None => DryRun::Off,
            Some(v) => match v.as_str() {
                "" | "false" | "0" | "no" | "off" | "n" | "f" => DryRun::Off,
                "true" | "1" | "yes" | "on" | "y" | "t" => DryRun::On,
                _ => DryRun::Unclear(value.unwrap_or_default().to_string()),
            },
        }
    }

    /// True unless dry run is clearly off.
    pub fn stops_nothing(&self) -> bool {
        !matches!(self, DryRun::Off)
    }
}

/// `GREENLIGHT_DISCOVERY_APPLICATIONS`: which CodeDeploy applications' deployment groups are
/// searched for the alarm. On by default, for every application the role may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    Off,
    All,
    Only(Vec<String>),
}

impl Discovery {
    pub fn parse(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            None | Some("") | Some("*") => Discovery::All,
            Some(v) if v.eq_ignore_ascii_case("off") || v.eq_ignore_ascii_case("none") => {
                Discovery::Off
            }
            Some(list) => Discovery::Only(
                list.split(',')
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.is_empty())
                    .collect(),
            ),
        }
    }

    pub fn includes(&self, application: &str) -> bool {
        match self {
            Discovery::Off => false,
            Discovery::All => true,
            Discovery::Only(list) => list.iter().any(|a| a == application),
        }
    }
}

/// `GREENLIGHT_ALLOWED_TARGETS`: the only targets this function may stop, whatever an alarm's
/// tags say. Comma-separated `codedeploy:APPLICATION/GROUP` or `ecs:CLUSTER/SERVICE`, where
/// either name may be `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList(Vec<(String, String, String)>);

impl AllowList {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (kind, rest) = item
                .split_once(':')
                .ok_or_else(|| format!("GREENLIGHT_ALLOWED_TARGETS: \"{item}\" is not codedeploy:APPLICATION/GROUP or ecs:CLUSTER/SERVICE"))?;
            let (first, second) = rest
                .split_once('/')
                .filter(|(a, b)| !a.is_empty() && !b.is_empty())
                .ok_or_else(|| format!("GREENLIGHT_ALLOWED_TARGETS: \"{item}\" needs two names separated by \"/\" (either may be *)"))?;
            if !matches!(kind, "codedeploy" | "ecs") {
                return Err(format!("GREENLIGHT_ALLOWED_TARGETS: \"{item}\": unknown kind \"{kind}\"; use codedeploy or ecs"));
            }
            entries.push((kind.to_string(), first.to_string(), second.to_string()));
        }
        Ok(AllowList(entries))
    }

    pub fn allows(&self, target: &Target) -> bool {
        let (kind, first, second) = match target {
            Target::CodeDeploy {
                application,
                deployment_group,
            } => ("codedeploy", application, deployment_group),
            Target::Ecs { cluster, service } => ("ecs", cluster, service),
        };
        self.0.iter().any(|(k, a, b)| {
            k == kind
                && (a == "*" || a == first)
                && (b == "*" || b == second.rsplit('/').next().unwrap_or(second))
        })
    }
}

/// Configuration of the alarm-rollback function.
#[derive(Debug, Clone)]
pub struct RollbackSettings {
    pub dry_run: DryRun,
    /// `GREENLIGHT_ALARM_TARGETS`, parsed (or why it could not be).
    pub mapping: Option<Result<AlarmMapping, String>>,
    pub discovery: Discovery,
    /// `None`: every target the role may stop.
    pub allowed: Option<AllowList>,
    /// `GREENLIGHT_ACCOUNT_ID` and `GREENLIGHT_ALARM_ACCOUNTS`: the accounts whose alarms may
    /// roll back this account's deployments (`None`: not known, every alarm).
    pub alarm_accounts: Option<Vec<String>>,
    /// Settings that could not be read; reported with every decision.
    pub problems: Vec<String>,
}

impl Default for RollbackSettings {
    fn default() -> Self {
        RollbackSettings {
            dry_run: DryRun::Off,
            mapping: None,
            discovery: Discovery::All,
            allowed: None,
            alarm_accounts: None,
            problems: Vec::new(),
        }
    }
}

impl RollbackSettings {
    pub fn from_env() -> Self {
        Self::read(&Env::process())
    }

    pub fn read(env: &Env) -> Self {
        let mut problems = Vec::new();
        let dry_run = match env.setting("GREENLIGHT_DRY_RUN") {
            Ok(value) => DryRun::parse(value.as_deref()),
            Err(e) => DryRun::Unclear(e.to_string()),
        };
        if let DryRun::Unclear(value) = &dry_run {
            problems.push(format!(
                "GREENLIGHT_DRY_RUN={value:?} is neither true nor false; nothing is stopped until it is one of them"
            ));
        }
        let mapping = match env.setting("GREENLIGHT_ALARM_TARGETS") {
            Ok(value) => value.map(|text| AlarmMapping::parse(&text)),
            Err(e) => Some(Err(e.to_string())),
        };
        let discovery = match env.setting("GREENLIGHT_DISCOVERY_APPLICATIONS") {
            Ok(value) => Discovery::parse(value.as_deref()),
            Err(e) => {
                problems.push(format!("{e}; discovery is off until it is fixed"));
                Discovery::Off
            }
        };
        let allowed = match env.setting("GREENLIGHT_ALLOWED_TARGETS") {
            Ok(None) => None,
            Ok(Some(text)) => Some(AllowList::parse(&text).unwrap_or_else(|e| {
                problems.push(format!("{e}; nothing is stopped until it is fixed"));
                AllowList(Vec::new())
            })),
            Err(e) => {
                // Fail safe: an allow-list that cannot be read allows nothing.
                problems.push(format!("{e}; nothing is stopped until it is fixed"));
                Some(AllowList(Vec::new()))
            }
        };
        let alarm_accounts = alarm_accounts(env, &mut problems);
        RollbackSettings {
            dry_run,
            mapping,
            discovery,
            allowed,
            alarm_accounts,
            problems,
        }
    }
}

/// The function's own account (`GREENLIGHT_ACCOUNT_ID`, which the template sets) and the
/// accounts whose alarms it also acts on (`GREENLIGHT_ALARM_ACCOUNTS`, comma-separated: a central
/// monitoring account whose alarms are forwarded here). A value that is not a 12-digit account
/// id accepts no alarm at all until it is fixed.
fn alarm_accounts(env: &Env, problems: &mut Vec<String>) -> Option<Vec<String>> {
    let read = |name: &str| -> Result<Vec<String>, String> {
        let text = env.setting(name).map_err(|e| e.to_string())?;
        text.iter()
            .flat_map(|t| t.split(','))
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| {
                if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) {
                    Ok(a.to_string())
                } else {
                    Err(format!("{name}: {a:?} is not a 12-digit AWS account id"))
                }
            })
            .collect()
    };
    match (
        read("GREENLIGHT_ACCOUNT_ID"),
        read("GREENLIGHT_ALARM_ACCOUNTS"),
    ) {
        (Ok(own), _) if own.is_empty() => None,
        (Ok(mut own), Ok(others)) => {
            own.extend(others);
            Some(own)
        }
        (Err(e), _) | (_, Err(e)) => {
            problems.push(format!("{e}; no alarm is acted on until it is fixed"));
            Some(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_accounts_are_this_one_and_those_listed_and_garbage_accepts_none() {
        let read = |pairs: &[(&str, &str)]| {
            let mut problems = Vec::new();
            let accounts = alarm_accounts(&Env::from_pairs(pairs.iter().copied()), &mut problems);
            (accounts, problems)
        };
        assert_eq!(read(&[]), (None, vec![]));
        assert_eq!(
            read(&[
                ("GREENLIGHT_ACCOUNT_ID", "111111111111"),
                ("GREENLIGHT_ALARM_ACCOUNTS", "222222222222, 333333333333")
            ])
            .0,
            Some(vec![
                "111111111111".into(),
                "222222222222".into(),
                "333333333333".into()
            ])
        );
        let (accounts, problems) = read(&[
            ("GREENLIGHT_ACCOUNT_ID", "111111111111"),
            ("GREENLIGHT_ALARM_ACCOUNTS", "prod"),
        ]);
        assert_eq!(accounts, Some(vec![]));
        assert!(
            problems[0]
                .contains("GREENLIGHT_ALARM_ACCOUNTS: \"prod\" is not a 12-digit AWS account id"),
            "{problems:?}"
        );
    }

    #[test]
    fn dry_run_accepts_the_usual_spellings_and_fails_safe() {
        for on in ["true", "TRUE", "Yes", "1", "on"] {
            assert_eq!(DryRun::parse(Some(on)), DryRun::On, "{on}");
        }
        for off in ["false", "False", "no", "0", "off", ""] {
            assert_eq!(DryRun::parse(Some(off)), DryRun::Off, "{off}");
        }
        assert_eq!(DryRun::parse(None), DryRun::Off);
        let unclear = DryRun::parse(Some("treu"));
        assert_eq!(unclear, DryRun::Unclear("treu".into()));
        assert!(unclear.stops_nothing());
        let settings = RollbackSettings::read(&Env::from_pairs([("GREENLIGHT_DRY_RUN", "treu")]));
        assert!(
            settings.problems[0].contains("GREENLIGHT_DRY_RUN=\"treu\""),
            "{:?}",
            settings.problems
        );
    }

    #[test]
    fn discovery_is_on_by_default_and_off_when_told() {
        assert_eq!(Discovery::parse(None), Discovery::All);
        assert_eq!(Discovery::parse(Some("*")), Discovery::All);
        assert_eq!(Discovery::parse(Some("OFF")), Discovery::Off);
        assert_eq!(
            Discovery::parse(Some("checkout, payments")),
            Discovery::Only(vec!["checkout".into(), "payments".into()])
        );
    }

    #[test]
    fn the_allow_list_matches_names_and_wildcards() {
        let list = AllowList::parse("codedeploy:checkout/*, ecs:prod/payments").unwrap();
        assert!(list.allows(&Target::parse("codedeploy:checkout/checkout-prod").unwrap()));
        assert!(!list.allows(&Target::parse("codedeploy:other/prod").unwrap()));
        assert!(list.allows(&Target::parse("ecs:prod/payments").unwrap()));
        assert!(!list.allows(&Target::parse("ecs:prod/checkout").unwrap()));
        assert!(AllowList::parse("lambda:x/y").is_err());
        let broken = RollbackSettings::read(&Env::from_pairs([(
            "GREENLIGHT_ALLOWED_TARGETS",
            "nonsense",
        )]));
        assert_eq!(
            broken.allowed,
            Some(AllowList(Vec::new())),
            "fails safe: allows nothing"
        );
    }
}
