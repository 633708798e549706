//! The verification plan: where it comes from (`GREENLIGHT_PLAN`, `GREENLIGHT_PLAN_FILE`, or the
//! default plan built from `GREENLIGHT_TEST_URL`), how it is parsed and validated, and how it is
//! resolved against the environment into checks that can run.
//!
//! Two steps, and `greenlight plan check` runs both exactly as the hooks do:
//! - [`PlanSpec::parse`] checks everything that does not depend on the environment (structure,
//!   types, durations, `${VAR}` syntax, literal URLs) and reports every problem at once with its
//!   field path (`checks[2].expect.status: "abc" is not a status code`);
//! - [`PlanSpec::resolve`] fills in `${VAR}`s, joins paths to the target, and registers the
//!   plan's secrets (see `crate::secrets`) before anything of it can run or be shown.

pub mod capture;
pub mod catalog;
pub(crate) mod document;
pub(crate) mod problems;
mod resolve;
pub mod retry;
pub mod services;
pub mod target;
mod validate;
pub mod vars;

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName};
use reqwest::{Method, Url};

use crate::env::Env;
pub use crate::expect::status::StatusMatcher;
use crate::expect::Expectations;
pub use crate::probe::Probe;
pub use retry::RetryOn;
pub use vars::Template;

/// Limits that keep a plan from exhausting a small Lambda function.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(60);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRIES: u32 = 2;
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(200);
pub const DEFAULT_CONCURRENCY: usize = 8;
/// How long ECS waits before invoking a stage's hook again after `IN_PROGRESS`.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);
/// The longest a Lambda invocation can run; a longer budget is allowed but never reached.
pub const LAMBDA_MAX: Duration = Duration::from_secs(15 * 60);
/// A plan file (or inline plan) longer than this is refused.
pub const MAX_PLAN_BYTES: usize = crate::config_text::MAX_TEXT_BYTES;
/// How long `ready:` checks may take to pass by default, and how often they are tried.
pub const DEFAULT_READY_WITHIN: Duration = Duration::from_secs(10);
pub const DEFAULT_READY_INTERVAL: Duration = Duration::from_millis(500);

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
/// The CodeDeploy lifecycle events greenlight has hooks for: a plan's `stages:` may give each
/// its own checks (and `AfterAllowTraffic` verifies production, after the shift).
pub const CODEDEPLOY_HOOKS: [&str; 3] = [
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
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
    /// Problems in the plan itself, whatever the environment.
    #[error("plan: {}", join(.0))]
    Invalid(Vec<FieldError>),
    /// Problems filling the plan in from this environment: unset variables, values that do not
    /// make a URL.
    #[error("plan: {}", join(.0))]
    Unresolved(Vec<FieldError>),
}

impl PlanError {
    /// Each problem on its own, for listing one per line.
    pub fn problems(&self) -> Vec<String> {
        match self {
            PlanError::Invalid(errors) | PlanError::Unresolved(errors) => {
                errors.iter().map(|e| e.to_string()).collect()
            }
            other => vec![other.to_string().trim_start_matches("plan: ").to_string()],
        }
    }

    /// The same problems, said of the plan from `origin` (a key, a parameter).
    pub fn of(self, origin: &str) -> PlanError {
        PlanError::Source(format!("{origin}: {}", self.problems().join("; ")))
    }
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A value and where it came from (`GREENLIGHT_TEST_URL`, `--target`, …), so messages can
/// name what the user actually typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub from: String,
}

impl Setting {
    pub fn new(value: impl Into<String>, from: impl Into<String>) -> Self {
        Setting {
            value: value.into(),
            from: from.into(),
        }
    }
}

/// Where the plan comes from. Empty values count as unset (SAM passes empty parameters as
/// empty strings); a value that is not UTF-8 is an error, never unset.
#[derive(Debug, Clone, Default)]
pub struct PlanSettings {
    pub test_url: Option<Setting>,
    pub inline: Option<Setting>,
    pub file: Option<Setting>,
}

impl PlanSettings {
    /// Reads `GREENLIGHT_TEST_URL`, `GREENLIGHT_PLAN` and `GREENLIGHT_PLAN_FILE`.
    pub fn from_env(env: &Env) -> Result<Self, PlanError> {
        let get = |name: &str| -> Result<Option<Setting>, PlanError> {
            env.setting(name)
                .map(|v| v.map(|value| Setting::new(value, name)))
                .map_err(|e| PlanError::Source(e.to_string()))
        };
        Ok(PlanSettings {
            test_url: get("GREENLIGHT_TEST_URL")?,
            inline: get("GREENLIGHT_PLAN")?,
            file: get("GREENLIGHT_PLAN_FILE")?,
        })
    }

    /// Reads and validates the configured plan, or builds the default plan.
    pub fn load_spec(&self) -> Result<PlanSpec, PlanError> {
        match (&self.inline, &self.file) {
            (Some(inline), Some(file)) => Err(PlanError::Source(format!(
                "both {} and {} are set; set only one",
                inline.from, file.from
            ))),
            (Some(inline), None) => PlanSpec::parse(&inline.value),
            (None, Some(file)) => {
                let text = crate::files::read_text(
                    &PathBuf::from(&file.value),
                    MAX_PLAN_BYTES,
                    crate::files::READ_TIME_LIMIT,
                )
                .map_err(|e| PlanError::Source(format!("{}: {e}", file.from)))?;
                PlanSpec::parse(&text)
            }
            (None, None) if self.test_url.is_some() => Ok(PlanSpec::default_plan()),
            (None, None) => Err(PlanError::Missing),
        }
    }

    /// Loads the plan and resolves it against the environment: the whole set-up a hook needs.
    pub fn load(&self, env: &Env) -> Result<Plan, PlanError> {
        self.load_spec()?.resolve(self.test_url.as_ref(), env)
    }
}

/// A parsed and validated plan whose `${VAR}` references and target are not yet filled in.
#[derive(Debug, Clone)]
pub struct PlanSpec {
    pub budget: Duration,
    pub concurrency: usize,
    /// `compression: true`: requests say `accept-encoding: gzip, br`; answers are decoded (the
    /// 1 MiB cap applies to the decoded body).
    pub compression: bool,
    pub target: Option<Template>,
    /// Variables and header names whose values may be shown (see `crate::secrets`).
    pub not_secret: Vec<String>,
    /// How HTTPS targets are trusted (`tls:`).
    pub tls: TlsSpec,
    /// Blue, for compare checks (`baseline:`).
    pub baseline: BaselineSpec,
    /// Checks that must pass before any other runs, retried until they do.
    pub ready: Option<ReadySpec>,
    pub checks: Vec<CheckSpec>,
    /// ECS-native stages with their own settings (and optionally their own checks).
    pub stages: std::collections::BTreeMap<String, StageSpec>,
    /// Things that work but are probably not what was meant.
    pub warnings: Vec<FieldError>,
}

/// `ready:` as written, defaults applied.
#[derive(Debug, Clone)]
pub struct ReadySpec {
    pub within: Duration,
    pub interval: Duration,
    pub checks: Vec<CheckSpec>,
}

/// `ready:` made runnable.
#[derive(Debug, Clone)]
pub struct Ready {
    pub within: Duration,
    pub interval: Duration,
    pub checks: Vec<Check>,
}

/// `baseline:` as written: where blue answers (default: `GREENLIGHT_PRODUCTION_URL`), and the
/// methods that may be sent there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineSpec {
    pub url: Option<Template>,
    pub safe_methods: Vec<Method>,
}

impl Default for BaselineSpec {
    fn default() -> Self {
        BaselineSpec {
            url: None,
            safe_methods: vec![Method::GET, Method::HEAD],
        }
    }
}

/// What a check that passed only after failed attempts counts as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Flaky {
    /// Passed (the report still shows every attempt).
    #[default]
    Pass,
    /// Failed: a green that needs retries is not healthy.
    Fail,
}

/// `tls:` as written: an extra CA bundle, the name certificates must have, or (explicitly, and
/// loudly) no verification at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSpec {
    pub ca_file: Option<String>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
}

/// `tls:` made ready: the CA bundle read, the target whose address `server_name` stands for.
#[derive(Debug, Clone)]
pub struct Tls {
    pub extra_roots: Vec<reqwest::Certificate>,
    /// The name certificates must have, and the host and port requests really go to.
    pub server_name: Option<(String, String, u16)>,
    pub insecure_skip_verify: bool,
}

/// What the ECS-native hook does at one lifecycle stage.
#[derive(Debug, Clone)]
pub struct StageSpec {
    /// Where this stage's checks go; defaults depend on the stage (see `ecs_hook`).
    pub target: Option<Template>,
    /// This stage's checks; `None` means the plan's top-level checks.
    pub checks: Option<Vec<CheckSpec>>,
    /// Invocations allowed before a failing verification becomes `FAILED` (1 = no second chance).
    pub attempts: u32,
    /// How long after the first failure further attempts are still allowed.
    pub within: Option<Duration>,
    /// The `callBackDelay` returned with `IN_PROGRESS`.
    pub retry_after: Duration,
}

/// One route of a sampled check, as written (headers merged over the check's).
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub method: Method,
    pub path: Template,
    pub headers: Vec<(HeaderName, Template)>,
    pub body: Option<Template>,
    pub weight: u32,
}

/// One check as the plan describes it, defaults applied.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub name: String,
    pub method: Method,
    pub path: Template,
    pub headers: Vec<(HeaderName, Template)>,
    pub body: Option<Template>,
    pub timeout: Duration,
    /// How the check asks and what it measures: one exchange, samples or a load run.
    pub probe: Probe,
    /// A sampled check's routes (empty: every sample goes to `path`).
    pub routes: Vec<RouteSpec>,
    /// The `${captured.NAME}`s this check uses (captured by earlier checks).
    pub uses_captures: Vec<String>,
    /// Expectations with `${VAR}`s still in `body_contains` and `json` texts.
    pub expect: Expectations,
}

impl PlanSpec {
    /// The plan used when only `GREENLIGHT_TEST_URL` is set: GET it and expect 200-399.
    pub fn default_plan() -> Self {
        PlanSpec {
            budget: DEFAULT_BUDGET,
            concurrency: DEFAULT_CONCURRENCY,
            compression: false,
            target: None,
            not_secret: Vec::new(),
            tls: TlsSpec::default(),
            baseline: BaselineSpec::default(),
            checks: vec![CheckSpec {
                name: "test-listener".into(),
                method: Method::GET,
                path: Template::empty(),
                headers: Vec::new(),
                body: None,
                timeout: DEFAULT_TIMEOUT,
                probe: Probe::Exchange(Default::default()),
                routes: Vec::new(),
                uses_captures: Vec::new(),
                expect: Expectations::default(),
            }],
            ready: None,
            stages: Default::default(),
            warnings: Vec::new(),
        }
    }

    /// Parses plan text (YAML or JSON) and validates everything that does not depend on the
    /// environment, reporting every problem found.
    pub fn parse(text: &str) -> Result<Self, PlanError> {
        let value = crate::config_text::parse(text).map_err(PlanError::Syntax)?;
        if !value.is_object() {
            return Err(PlanError::Invalid(vec![FieldError {
                path: String::new(),
                message: format!(
                    "a plan is a map with `version` and `checks`, found {}",
                    document::kind_of(&value)
                ),
            }]));
        }
        validate::validate(value)
    }

    /// Fills in `${VAR}`s from `env` and joins each path to the target, producing runnable
    /// checks, and registers the plan's secrets. `target_override` (GREENLIGHT_TEST_URL or
    /// `--target`) wins over the plan's `target`.
    pub fn resolve(&self, target_override: Option<&Setting>, env: &Env) -> Result<Plan, PlanError> {
        resolve::resolve(self, target_override, env, crate::secrets::global())
    }

    /// The plan one stage runs (an ECS lifecycle stage, or a CodeDeploy hook such as
    /// `AfterAllowTraffic`): the stage's own checks and target when `stages:` gives them, else
    /// the plan's checks. Where no target is given, a `production` stage goes through
    /// `production_url` (production reaches green there, so compare checks are left out, with a
    /// log line saying why), any other stage through `test_url`. `None`: nothing to verify.
    pub fn for_stage(
        &self,
        stage: &str,
        production: bool,
        test_url: Option<&Setting>,
        production_url: Option<&Setting>,
        env: &Env,
    ) -> Option<Result<Plan, PlanError>> {
        let stage_spec = self.stages.get(stage);
        let mut checks = stage_spec
            .and_then(|s| s.checks.clone())
            .unwrap_or_else(|| self.checks.clone());
        if production {
            checks.retain(|check| {
                let compares = matches!(check.probe, Probe::Compare(_));
                if compares {
                    tracing::warn!(
                        stage,
                        check = check.name.as_str(),
                        "compare check not run at this stage: production traffic reaches green here, so blue can no longer be asked; compare runs before the production shift"
                    );
                }
                !compares
            });
        }
        if checks.is_empty() {
            return None;
        }
        let own_target = stage_spec.and_then(|s| s.target.clone());
        let (target, setting) = match own_target {
            Some(own) => (Some(own), None),
            None if production => {
                let asks_green = checks.iter().any(|c| c.probe.asks_over_http());
                if production_url.is_none() && self.target.is_none() && asks_green {
                    return Some(Err(PlanError::Source(format!(
                        "{stage} verifies production after the shift: set GREENLIGHT_PRODUCTION_URL (the production listener), or give `stages.{stage}` its own target or only metric checks"
                    ))));
                }
                (self.target.clone(), production_url)
            }
            None => (self.target.clone(), test_url),
        };
        let stage_plan = PlanSpec {
            checks,
            target,
            stages: std::collections::BTreeMap::new(),
            ..self.clone()
        };
        Some(stage_plan.resolve(setting, env))
    }

    /// Every HTTP request of the plan (checks, their routes, `ready:`, stages' own checks) sends
    /// these headers, in place of the plan's own of the same name: what a load balancer rule
    /// needs to route the request to green.
    pub fn send_headers(&mut self, headers: &[(String, String)]) -> Result<(), String> {
        let mut parsed = Vec::new();
        for (name, value) in headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{name:?} is not a header name"))?;
            reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| format!("the value of header {name} cannot be sent"))?;
            let template = Template::parse(&value.replace('$', "$$"))?;
            parsed.push((header, template));
        }
        let set = |own: &mut Vec<(HeaderName, Template)>| {
            own.retain(|(name, _)| !parsed.iter().any(|(p, _)| p == name));
            own.extend(parsed.iter().cloned());
        };
        let stage_checks = self.stages.values_mut().filter_map(|s| s.checks.as_mut());
        let ready_checks = self.ready.iter_mut().map(|r| &mut r.checks);
        for checks in std::iter::once(&mut self.checks)
            .chain(ready_checks)
            .chain(stage_checks)
        {
            for check in checks.iter_mut() {
                set(&mut check.headers);
                for route in &mut check.routes {
                    set(&mut route.headers);
                }
            }
        }
        Ok(())
    }

    /// [`PlanSpec::resolve`], registering the plan's secrets with `registry` instead of the
    /// process's: for tools that resolve many unrelated plans (the fuzzer), whose secrets must
    /// not pile up in one matcher.
    pub fn resolve_with(
        &self,
        target_override: Option<&Setting>,
        env: &Env,
        registry: &crate::secrets::Secrets,
    ) -> Result<Plan, PlanError> {
        resolve::resolve(self, target_override, env, registry)
    }
}

/// A plan ready to run: every check has a full URL and concrete headers.
#[derive(Debug, Clone)]
pub struct Plan {
    pub budget: Duration,
    pub concurrency: usize,
    pub compression: bool,
    pub ready: Option<Ready>,
    pub checks: Vec<Check>,
    /// The plan's warnings (see [`PlanSpec::warnings`]), to log where it runs.
    pub warnings: Vec<FieldError>,
    /// Set when the plan says how to trust HTTPS targets; `None`: the system's trust store.
    pub tls: Option<std::sync::Arc<Tls>>,
}

impl Plan {
    /// Some check reads CloudWatch metrics.
    pub fn reads_metrics(&self) -> bool {
        self.checks
            .iter()
            .any(|c| matches!(c.probe, Probe::Metric(_)))
    }

    /// Some check asks the load balancer for target health.
    pub fn asks_load_balancer(&self) -> bool {
        self.checks
            .iter()
            .any(|c| matches!(c.probe, Probe::TargetHealth(_)))
    }

    /// Some metric check reads green's target group (`target_group: green`).
    pub fn uses_green_target_group(&self) -> bool {
        self.checks.iter().any(|c| c.probe.uses_green())
    }

    /// The longest `metric.wait` of its checks: how long after its start the plan can be judged.
    pub fn longest_wait(&self) -> Option<Duration> {
        self.checks
            .iter()
            .filter_map(|c| match &c.probe {
                Probe::Metric(m) => m.wait,
                _ => None,
            })
            .max()
    }
}

/// One runnable HTTP check.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub method: Method,
    pub url: Url,
    /// `METHOD url` with `${VAR}`s as written and userinfo masked: safe to log.
    pub request_line: String,
    pub headers: HeaderMap,
    pub body: Option<String>,
    pub timeout: Duration,
    /// How the check asks and what it measures (see `crate::probe`).
    pub probe: Probe,
    /// A sampled check's routes, each a runnable request with its weight.
    pub routes: Vec<(std::sync::Arc<Check>, u32)>,
    /// Set when the check uses captured values: it is filled in when they are known, and until
    /// then its URL is only the target's.
    pub deferred: Option<std::sync::Arc<Deferred>>,
    pub expect: std::sync::Arc<Expectations>,
}

/// What it takes to fill a check in once the values it uses are captured.
#[derive(Debug)]
pub struct Deferred {
    pub spec: CheckSpec,
    /// `checks[3]`, for messages.
    pub at: String,
    pub names: Vec<String>,
    pub(crate) context: resolve::Context,
}

impl Deferred {
    /// The check, filled in with `captured` values (registered as secrets unless listed in
    /// `not_secret`).
    pub fn fill(&self, captured: Vec<(String, String)>) -> Result<Check, String> {
        resolve::resolve_deferred(self, captured)
    }
}

#[cfg(test)]
mod tests;
