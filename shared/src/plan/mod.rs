//! The verification plan: where it comes from (`GREENLIGHT_PLAN`, `GREENLIGHT_PLAN_FILE`, or the
//! default plan built from `GREENLIGHT_TEST_URL`), how it is parsed and validated, and how it is
//! resolved against the environment into checks that can run. `${VAR}` references are
//! substituted in the target, paths, header values, bodies, `body_contains` and string values of
//! `json` expectations.
//!
//! Parsing is strict: unknown fields are errors, and every error names the field's path
//! (`checks[2].expect.status: "abc" is not a status code`).

mod document;
pub mod status;
pub mod vars;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};

use crate::expect::{Expectations, JsonExpectation};
use crate::redact::Redactor;
use document::{CheckDocument, ExpectDocument, PlanDocument};
pub use status::StatusMatcher;

/// Limits that keep a plan from exhausting a small Lambda function.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(60);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRIES: u32 = 2;
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(200);
pub const DEFAULT_CONCURRENCY: usize = 8;
const MAX_RETRIES: u32 = 20;
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
        validate(document)
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
            match resolve_check(spec, target.as_ref(), lookup, &mut secrets) {
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

fn resolve_check(
    spec: &CheckSpec,
    target: Option<&(String, String)>,
    lookup: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Vec<String>,
) -> Result<Check, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut error = |path: &str, message: String| {
        errors.push(FieldError {
            path: path.into(),
            message,
        })
    };

    let (url, display) = match vars::substitute(&spec.path, lookup) {
        Err(message) => {
            error(".path", message);
            (None, String::new())
        }
        Ok(path) => {
            secrets.extend(path.inserted);
            let joined = if is_absolute(&path.value) {
                Some((path.value.clone(), path.display.clone()))
            } else {
                target.map(|(value, display)| {
                    (
                        join_url(value, &path.value),
                        join_url(display, &path.display),
                    )
                })
            };
            match joined {
                None => {
                    error(
                        ".path",
                        format!(
                            "\"{}\" is relative but no target is set: set GREENLIGHT_TEST_URL (or the plan's `target`, or --target)",
                            spec.path
                        ),
                    );
                    (None, String::new())
                }
                Some((value, display)) => match Url::parse(&value) {
                    Ok(url) if matches!(url.scheme(), "http" | "https") => (Some(url), display),
                    Ok(url) => {
                        error(
                            ".path",
                            format!(
                                "\"{display}\" uses {}: only http and https are supported",
                                url.scheme()
                            ),
                        );
                        (None, display)
                    }
                    Err(e) => {
                        error(".path", format!("\"{display}\" is not a valid URL: {e}"));
                        (None, display)
                    }
                },
            }
        }
    };

    let mut headers = HeaderMap::new();
    for (name, template) in &spec.headers {
        match vars::substitute(template, lookup) {
            Ok(s) => match HeaderValue::from_str(&s.value) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    secrets.extend(s.inserted);
                    headers.insert(name.clone(), value);
                }
                Err(_) => error(
                    &format!(".headers.{name}"),
                    "the value (after substitution) is not a valid header value".into(),
                ),
            },
            Err(message) => error(&format!(".headers.{name}"), message),
        }
    }

    let body = match &spec.body {
        None => None,
        Some(template) => match vars::substitute(template, lookup) {
            Ok(s) => {
                secrets.extend(s.inserted);
                Some(s.value)
            }
            Err(message) => {
                error(".body", message);
                None
            }
        },
    };

    let mut expect = spec.expect.clone();
    for (i, needle) in expect.body_contains.iter_mut().enumerate() {
        match vars::substitute(needle, lookup) {
            Ok(s) => *needle = s.value,
            Err(message) => error(&format!(".expect.body_contains[{i}]"), message),
        }
    }
    for j in &mut expect.json {
        if let serde_json::Value::String(text) = &j.expected {
            match vars::substitute(text, lookup) {
                Ok(s) => j.expected = serde_json::Value::String(s.value),
                Err(message) => error(&format!(".expect.json.{}", j.expression), message),
            }
        }
    }

    match (url, errors.is_empty()) {
        (Some(url), true) => Ok(Check {
            name: spec.name.clone(),
            request_line: format!("{} {display}", spec.method),
            method: spec.method.clone(),
            url,
            headers,
            body,
            timeout: spec.timeout,
            retries: spec.retries,
            retry_delay: spec.retry_delay,
            expect,
        }),
        _ => Err(errors),
    }
}

fn is_absolute(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.contains("://")
}

/// Joins without dropping a base path: `http://h:8080/base` + `/health` = `http://h:8080/base/health`.
fn join_url(base: &str, path: &str) -> String {
    if path.is_empty() {
        return base.to_string();
    }
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Checks meaning that serde cannot: version, names, methods, headers, regexes, JSONPaths, limits.
fn validate(document: PlanDocument) -> Result<PlanSpec, PlanError> {
    let mut errors = Vec::new();
    let mut error = |path: String, message: String| errors.push(FieldError { path, message });

    if document.version != serde_json::json!(1) {
        error(
            "version".into(),
            format!(
                "this greenlight reads plan version 1; found {}",
                document.version
            ),
        );
    }
    let budget = document.budget.unwrap_or(DEFAULT_BUDGET);
    if budget.is_zero() {
        error("budget".into(), "must be longer than 0s".into());
    }
    let concurrency = document.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
        error(
            "concurrency".into(),
            format!("must be between 1 and {MAX_CONCURRENCY}, found {concurrency}"),
        );
    }
    if document.checks.is_empty() {
        error("checks".into(), "a plan needs at least one check".into());
    }
    if document.checks.len() > MAX_CHECKS {
        error(
            "checks".into(),
            format!(
                "at most {MAX_CHECKS} checks, found {}",
                document.checks.len()
            ),
        );
    }
    let defaults = document.defaults;
    let default_headers = validate_headers(&defaults.headers, "defaults.headers", &mut error);
    let default_expect = defaults.expect.clone().unwrap_or_default();
    if let Some(expect) = &defaults.expect {
        build_expectations(expect, "defaults.expect", &mut error);
    }
    check_limits("defaults", defaults.timeout, defaults.retries, &mut error);

    let mut names = std::collections::HashSet::new();
    let mut checks = Vec::new();
    for (i, check) in document.checks.into_iter().enumerate() {
        let at = format!("checks[{i}]");
        let CheckDocument {
            name,
            method,
            path,
            headers,
            body,
            timeout,
            retries,
            retry_delay,
            expect,
        } = check;
        if name.trim().is_empty() {
            error(format!("{at}.name"), "must not be empty".into());
        } else if !names.insert(name.clone()) {
            error(
                format!("{at}.name"),
                format!("\"{name}\" is used by an earlier check; names must be unique"),
            );
        }
        let method = match method.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("GET") => Method::GET,
            Some("HEAD") => Method::HEAD,
            Some("POST") => Method::POST,
            Some("PUT") => Method::PUT,
            Some("PATCH") => Method::PATCH,
            Some("DELETE") => Method::DELETE,
            Some("OPTIONS") => Method::OPTIONS,
            Some(other) => {
                error(
                    format!("{at}.method"),
                    format!(
                        "\"{other}\" is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
                    ),
                );
                Method::GET
            }
        };
        if path.trim().is_empty() {
            error(
                format!("{at}.path"),
                "must not be empty; use \"/\" for the target itself".into(),
            );
        } else if !path.starts_with('/') && !is_absolute(&path) && !path.starts_with("${") {
            error(
                format!("{at}.path"),
                format!("\"{path}\" must start with \"/\" or be a full http(s) URL"),
            );
        }
        let mut merged = default_headers.clone();
        for (name, value) in validate_headers(&headers, &format!("{at}.headers"), &mut error) {
            merged.retain(|(n, _)| n != name);
            merged.push((name, value));
        }
        check_limits(&at, timeout, retries, &mut error);
        let expect_document = expect.unwrap_or_default().over(&default_expect);
        let expect = build_expectations(&expect_document, &format!("{at}.expect"), &mut error);
        checks.push(CheckSpec {
            name,
            method,
            path,
            headers: merged,
            body,
            timeout: timeout.or(defaults.timeout).unwrap_or(DEFAULT_TIMEOUT),
            retries: retries.or(defaults.retries).unwrap_or(DEFAULT_RETRIES),
            retry_delay: retry_delay
                .or(defaults.retry_delay)
                .unwrap_or(DEFAULT_RETRY_DELAY),
            expect,
        });
    }
    if errors.is_empty() {
        Ok(PlanSpec {
            budget,
            concurrency,
            target: document.target,
            checks,
        })
    } else {
        Err(PlanError::Invalid(errors))
    }
}

fn check_limits(
    at: &str,
    timeout: Option<Duration>,
    retries: Option<u32>,
    error: &mut impl FnMut(String, String),
) {
    if timeout.is_some_and(|t| t.is_zero()) {
        error(format!("{at}.timeout"), "must be longer than 0s".into());
    }
    if let Some(r) = retries.filter(|r| *r > MAX_RETRIES) {
        error(
            format!("{at}.retries"),
            format!("at most {MAX_RETRIES}, found {r}"),
        );
    }
}

fn validate_headers(
    headers: &std::collections::BTreeMap<String, String>,
    at: &str,
    error: &mut impl FnMut(String, String),
) -> Vec<(HeaderName, String)> {
    headers
        .iter()
        .filter_map(
            |(name, value)| match HeaderName::from_bytes(name.as_bytes()) {
                Ok(header) => Some((header, value.clone())),
                Err(_) => {
                    error(
                        format!("{at}.{name}"),
                        format!("\"{name}\" is not a valid header name"),
                    );
                    None
                }
            },
        )
        .collect()
}

fn build_expectations(
    doc: &ExpectDocument,
    at: &str,
    error: &mut impl FnMut(String, String),
) -> Expectations {
    let mut expect = Expectations::default();
    if let Some(status) = &doc.status {
        match StatusMatcher::from_value(status) {
            Ok(matcher) => expect.status = matcher,
            Err(message) => error(format!("{at}.status"), message),
        }
    }
    expect.latency = doc.latency;
    if doc.latency.is_some_and(|l| l.is_zero()) {
        error(format!("{at}.latency"), "must be longer than 0s".into());
    }
    expect.body_contains = doc.body_contains.clone().unwrap_or_default();
    if let Some(pattern) = &doc.body_matches {
        match regex::Regex::new(pattern) {
            Ok(re) => expect.body_matches = Some(re),
            Err(e) => error(
                format!("{at}.body_matches"),
                format!(
                    "\"{pattern}\" is not a valid regular expression: {}",
                    first_line(&e.to_string())
                ),
            ),
        }
    }
    for (name, substring) in doc.headers.iter().flatten() {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(header) => expect.headers.push((header, substring.clone())),
            Err(_) => error(
                format!("{at}.headers.{name}"),
                format!("\"{name}\" is not a valid header name"),
            ),
        }
    }
    for (expression, expected) in doc.json.iter().flatten() {
        match JsonExpectation::new(expression, expected.clone()) {
            Ok(j) => expect.json.push(j),
            Err(message) => error(format!("{at}.json.{expression}"), message),
        }
    }
    expect
}

#[cfg(test)]
mod tests;
