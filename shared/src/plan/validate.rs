//! Checking a plan's meaning where serde cannot: version, names, methods, headers, regular
//! expressions, JSONPaths and limits. Every problem is collected, with its field path.

use std::time::Duration;

use reqwest::header::HeaderName;
use reqwest::Method;

use super::document::{CheckDocument, ExpectDocument, PlanDocument};
use super::resolve::is_absolute;
use super::*;
use crate::expect::{Expectations, JsonExpectation};

pub(super) fn validate(document: PlanDocument) -> Result<PlanSpec, PlanError> {
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
    let stage_checks = document
        .stages
        .values()
        .any(|s| s.checks.as_ref().is_some_and(|c| !c.is_empty()));
    if document.checks.is_empty() && !stage_checks {
        error("checks".into(), "a plan needs at least one check".into());
    }
    let defaults = Defaults {
        headers: validate_headers(&document.defaults.headers, "defaults.headers", &mut error),
        expect: document.defaults.expect.clone().unwrap_or_default(),
        timeout: document.defaults.timeout,
        retries: document.defaults.retries,
        retry_delay: document.defaults.retry_delay,
    };
    if let Some(expect) = &document.defaults.expect {
        build_expectations(expect, "defaults.expect", &mut error);
    }
    check_limits("defaults", defaults.timeout, defaults.retries, &mut error);
    let checks = validate_checks(document.checks, "checks", &defaults, &mut error);

    let mut stages = std::collections::BTreeMap::new();
    for (stage, doc) in document.stages {
        let at = format!("stages.{stage}");
        if !ECS_STAGES.contains(&stage.as_str()) {
            error(
                at.clone(),
                format!(
                    "\"{stage}\" is not an ECS lifecycle stage with hooks; use one of {}",
                    ECS_STAGES.join(", ")
                ),
            );
        }
        if doc.attempts == Some(0) {
            error(format!("{at}.attempts"), "must be at least 1".into());
        }
        let checks = doc
            .checks
            .map(|c| validate_checks(c, &format!("{at}.checks"), &defaults, &mut error));
        stages.insert(
            stage,
            StageSpec {
                target: doc.target,
                checks,
                attempts: doc.attempts.unwrap_or(1),
                within: doc.within,
                retry_after: doc.retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            },
        );
    }
    if errors.is_empty() {
        Ok(PlanSpec {
            budget,
            concurrency,
            target: document.target,
            checks,
            stages,
        })
    } else {
        Err(PlanError::Invalid(errors))
    }
}

/// What `defaults` gives every check.
struct Defaults {
    headers: Vec<(HeaderName, String)>,
    expect: ExpectDocument,
    timeout: Option<Duration>,
    retries: Option<u32>,
    retry_delay: Option<Duration>,
}

fn validate_checks(
    documents: Vec<CheckDocument>,
    prefix: &str,
    defaults: &Defaults,
    error: &mut impl FnMut(String, String),
) -> Vec<CheckSpec> {
    if documents.len() > MAX_CHECKS {
        error(
            prefix.into(),
            format!("at most {MAX_CHECKS} checks, found {}", documents.len()),
        );
    }
    let mut names = std::collections::HashSet::new();
    let mut checks = Vec::new();
    for (i, check) in documents.into_iter().enumerate() {
        let at = format!("{prefix}[{i}]");
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
        let mut merged = defaults.headers.clone();
        for (name, value) in validate_headers(&headers, &format!("{at}.headers"), error) {
            merged.retain(|(n, _)| n != name);
            merged.push((name, value));
        }
        check_limits(&at, timeout, retries, error);
        let expect_document = expect.unwrap_or_default().over(&defaults.expect);
        let expect = build_expectations(&expect_document, &format!("{at}.expect"), error);
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
    checks
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
