//! The verification plan: where it comes from (`GREENLIGHT_PLAN`, `GREENLIGHT_PLAN_FILE`, or the
//! default plan built from `GREENLIGHT_TEST_URL`), how it is parsed and validated, and how it is
//! resolved against the environment into checks that can run. `${VAR}` references are
//! substituted in the target, paths, header values, bodies, `body_contains` and string values of
//! `json` expectations.
//!
//! Parsing is strict: unknown fields are errors, and every error names the field's path
//! (`checks[2].expect.status: "abc" is not a status code`).

mod document;
mod resolve;
pub mod status;
mod validate;
pub mod vars;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName};
use reqwest::{Method, Url};

use crate::expect::Expectations;
use crate::redact::Redactor;
use document::PlanDocument;
pub use status::StatusMatcher;

/// Limits that keep a plan from exhausting a small Lambda function.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(60);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRIES: u32 = 2;
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(200);
pub const DEFAULT_CONCURRENCY: usize = 8;
/// How long ECS waits before invoking a stage's hook again after `IN_PROGRESS`.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);
const MAX_RETRIES: u32 = 20;

/// The ECS lifecycle stages that can invoke a Lambda hook.
pub const ECS_STAGES: [&str; 8] = [
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
];
const MAX_CONCURRENCY: usize = 64;
const MAX_CHECKS: usize = 500;

/// One problem in a plan, at a field path such as `checks[0].expect.status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why there is no runnable plan. A plan error always fails verification; it never passes it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("plan: no plan configured: set GREENLIGHT_TEST_URL (for the default plan), GREENLIGHT_PLAN or GREENLIGHT_PLAN_FILE")]
    Missing,
    #[error("plan: {0}")]
    Source(String),
    #[error("plan: not valid YAML or JSON: {0}")]
    Syntax(String),
    #[error("plan: {}", join(.0))]
    Invalid(Vec<FieldError>),
}

impl PlanError {
    /// Each problem on its own, for listing one per line.
    pub fn problems(&self) -> Vec<String> {
        match self {
            PlanError::Invalid(errors) => errors.iter().map(|e| e.to_string()).collect(),
            other => vec![other.to_string().trim_start_matches("plan: ").to_string()],
        }
    }
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where the plan comes from, read from `GREENLIGHT_*` variables. Empty values count as unset
/// (SAM passes empty parameters as empty strings).
#[derive(Debug, Clone, Default)]
pub struct PlanSettings {
    pub test_url: Option<String>,
    pub inline: Option<String>,
    pub file: Option<PathBuf>,
}

impl PlanSettings {
    pub fn from_env() -> Self {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        PlanSettings {
            test_url: get("GREENLIGHT_TEST_URL"),
            inline: get("GREENLIGHT_PLAN"),
            file: get("GREENLIGHT_PLAN_FILE").map(PathBuf::from),
        }
    }

    /// Reads and validates the configured plan, or builds the default plan.
    pub fn load_spec(&self) -> Result<PlanSpec, PlanError> {
        match (&self.inline, &self.file) {
            (Some(_), Some(_)) => Err(PlanError::Source(
                "both GREENLIGHT_PLAN and GREENLIGHT_PLAN_FILE are set; set only one".into(),
            )),
            (Some(text), None) => PlanSpec::parse(text),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    PlanError::Source(format!(
                        "GREENLIGHT_PLAN_FILE={}: cannot read it: {e}",
                        path.display()
                    ))
                })?;
                PlanSpec::parse(&text)
            }
            (None, None) if self.test_url.is_some() => Ok(PlanSpec::default_plan()),
            (None, None) => Err(PlanError::Missing),
        }
    }

    /// Loads the plan and resolves it against the environment: the whole set-up a hook needs.
    pub fn load(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Plan, PlanError> {
        self.load_spec()?.resolve(self.test_url.as_deref(), lookup)
    }
}

/// A parsed and validated plan whose `${VAR}` references and target are not yet resolved.
#[derive(Debug, Clone)]
pub struct PlanSpec {
    pub budget: Duration,
    pub concurrency: usize,
    pub target: Option<String>,
    pub checks: Vec<CheckSpec>,
    /// ECS-native stages with their own settings (and optionally their own checks).
    pub stages: std::collections::BTreeMap<String, StageSpec>,
}

/// What the ECS-native hook does at one lifecycle stage.
#[derive(Debug, Clone)]
pub struct StageSpec {
    /// Where this stage's checks go; defaults depend on the stage (see `ecs_hook`).
    pub target: Option<String>,
    /// This stage's checks; `None` means the plan's top-level checks.
    pub checks: Option<Vec<CheckSpec>>,
    /// Invocations allowed before a failing verification becomes `FAILED` (1 = no second chance).
    pub attempts: u32,
    /// How long after the first failure further attempts are still allowed.
    pub within: Option<Duration>,
    /// The `callBackDelay` returned with `IN_PROGRESS`.
    pub retry_after: Duration,
}

/// One check as the plan describes it, defaults applied.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub name: String,
    pub method: Method,
    pub path: String,
    pub headers: Vec<(HeaderName, String)>,
    pub body: Option<String>,
    pub timeout: Duration,
    pub retries: u32,
    pub retry_delay: Duration,
    pub expect: Expectations,
}

impl PlanSpec {
    /// The plan used when only `GREENLIGHT_TEST_URL` is set: GET it and expect 200-399.
    pub fn default_plan() -> Self {
        PlanSpec {
            budget: DEFAULT_BUDGET,
            concurrency: DEFAULT_CONCURRENCY,
            target: None,
            checks: vec![CheckSpec {
                name: "test-listener".into(),
                method: Method::GET,
                path: String::new(),
                headers: Vec::new(),
                body: None,
                timeout: DEFAULT_TIMEOUT,
                retries: DEFAULT_RETRIES,
                retry_delay: DEFAULT_RETRY_DELAY,
                expect: Expectations::default(),
            }],
            stages: Default::default(),
        }
    }

    /// Parses plan text (YAML or JSON) and validates every field.
    pub fn parse(text: &str) -> Result<Self, PlanError> {
        let value: serde_json::Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| PlanError::Syntax(e.to_string()))?
        } else {
            serde_saphyr::from_str(text)
                .map_err(|e| PlanError::Syntax(first_line(&e.to_string())))?
        };
        if !value.is_object() {
            return Err(PlanError::Invalid(vec![FieldError {
                path: String::new(),
                message: format!(
                    "a plan is a map with `version` and `checks`, found {}",
                    document::kind_of(&value)
                ),
            }]));
        }
        let document: PlanDocument = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            PlanError::Invalid(vec![FieldError {
                path: if path == "." { String::new() } else { path },
                message: e.into_inner().to_string(),
            }])
        })?;
        validate::validate(document)
    }

    /// Substitutes `${VAR}`s and joins each path to the target, producing runnable checks.
    /// `target_override` (GREENLIGHT_TEST_URL or `--target`) wins over the plan's `target`.
    pub fn resolve(
        &self,
        target_override: Option<&str>,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Plan, PlanError> {
        let mut errors = Vec::new();
        let mut secrets = Vec::new();
        let target = match target_override
            .map(str::to_string)
            .or_else(|| self.target.clone())
        {
            Some(t) => match vars::substitute(&t, lookup) {
                Ok(s) => {
                    secrets.extend(s.inserted);
                    Some((s.value, s.display))
                }
                Err(message) => {
                    errors.push(FieldError {
                        path: "target".into(),
                        message,
                    });
                    None
                }
            },
            None => None,
        };
        let mut checks = Vec::with_capacity(self.checks.len());
        for (i, spec) in self.checks.iter().enumerate() {
            match resolve::resolve_check(spec, target.as_ref(), lookup, &mut secrets) {
                Ok(check) => checks.push(check),
                Err(mut found) => {
                    for e in &mut found {
                        e.path = format!("checks[{i}]{}", e.path);
                    }
                    errors.extend(found);
                }
            }
        }
        if !errors.is_empty() {
            return Err(PlanError::Invalid(errors));
        }
        for check in &checks {
            secrets.extend(
                check
                    .headers
                    .values()
                    .filter_map(|v| v.to_str().ok().map(str::to_string)),
            );
        }
        Ok(Plan {
            budget: self.budget,
            concurrency: self.concurrency,
            checks,
            redactor: Arc::new(Redactor::new(secrets)),
        })
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

/// A plan ready to run: every check has a full URL and concrete headers.
#[derive(Debug, Clone)]
pub struct Plan {
    pub budget: Duration,
    pub concurrency: usize,
    pub checks: Vec<Check>,
    /// Scrubs header values and substituted variables from anything shown to people.
    pub redactor: Arc<Redactor>,
}

/// One runnable HTTP check.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub method: Method,
    pub url: Url,
    /// `METHOD url` with `${VAR}`s as written: safe to log.
    pub request_line: String,
    pub headers: HeaderMap,
    pub body: Option<String>,
    pub timeout: Duration,
    pub retries: u32,
    pub retry_delay: Duration,
    pub expect: Expectations,
}

#[cfg(test)]
mod tests;
