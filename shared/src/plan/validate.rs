//! Checking a plan's meaning where serde cannot: version, names, methods, headers, `${VAR}`
//! syntax, literal URLs, regular expressions, JSONPaths and limits. Every problem is collected,
//! with its field path; nothing here depends on the environment.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::HeaderName;
use reqwest::Method;
use serde_json::Value;

use super::document::{
    read, CheckDocument, DefaultsDocument, ExpectDocument, PlanDocument, ReadyDocument,
    RouteDocument, SamplesDocument, StageDocument, ThresholdsDocument, TlsDocument,
};
use super::target::{has_scheme, parse_absolute, Target};
use super::*;
use crate::duration::format_duration;
use crate::expect::{Expectations, JsonExpectation};
use crate::sample::threshold::{LatencyLimit, RateLimit, Statistic, Thresholds};
use crate::sample::{Sampling, MAX_RATE, MAX_SAMPLES, MAX_SAMPLE_CONCURRENCY};

/// Collects problems with their paths.
#[derive(Default)]
struct Problems {
    errors: Vec<FieldError>,
    warnings: Vec<FieldError>,
    patterns: Patterns,
}

/// The plan's compiled regular expressions: one copy of each text, however many checks use it,
/// and no more compiling once they hold `MAX_PATTERN_MEMORY` (so that a hostile plan cannot take
/// the function's memory while it is being read).
#[derive(Default)]
struct Patterns {
    compiled: std::collections::HashMap<String, crate::judge::Pattern>,
    memory: usize,
    over: bool,
}

/// Compiled regular expressions stay in memory for the life of the function: all of a plan's
/// together may take at most this much, beside the bodies and the runtime in a 128 MB function.
const MAX_PATTERN_MEMORY: usize = 24 * 1024 * 1024;

impl Problems {
    /// The compiled form of `text`, shared by every check and assertion that uses it, within the
    /// plan's memory for patterns; why not, in one line.
    fn compile(&mut self, text: &str) -> Result<crate::judge::Pattern, String> {
        if let Some(compiled) = self.patterns.compiled.get(text) {
            return Ok(compiled.clone());
        }
        let too_much = || {
            format!(
                "with this one, the plan's regular expressions take more than {} MiB once compiled, more than fits beside the work in a 128 MB function; simplify them (for example (?-u:\\w) instead of \\w, smaller repetitions) or use fewer distinct ones",
                MAX_PATTERN_MEMORY >> 20
            )
        };
        if self.patterns.over {
            return Err(too_much());
        }
        let compiled = crate::judge::Pattern::new(text)?;
        self.patterns.memory += compiled.memory_usage();
        if self.patterns.memory > MAX_PATTERN_MEMORY {
            self.patterns.over = true;
            self.patterns.compiled.clear();
            return Err(too_much());
        }
        self.patterns
            .compiled
            .insert(text.to_string(), compiled.clone());
        Ok(compiled)
    }

    /// [`Problems::compile`], the reason recorded at `path` (once, when the plan's patterns
    /// outgrow their memory).
    fn pattern(&mut self, path: &str, text: &str) -> Option<crate::judge::Pattern> {
        let was_over = self.patterns.over;
        match self.compile(text) {
            Ok(compiled) => Some(compiled),
            Err(_) if was_over => None,
            Err(message) => {
                self.error(path, message);
                None
            }
        }
    }

    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// A template, with its syntax checked.
    fn template(&mut self, path: &str, text: &str) -> Option<Template> {
        match Template::parse(text) {
            Ok(t) => Some(t),
            Err(message) => {
                self.error(path, message);
                None
            }
        }
    }
}

pub(super) fn validate(value: Value) -> Result<PlanSpec, PlanError> {
    let mut p = Problems::default();
    let Some(document) = read::<PlanDocument>(value, "", &mut p.errors) else {
        return Err(PlanError::Invalid(p.errors));
    };

    if document.version != serde_json::json!(1) {
        p.error(
            "version",
            format!(
                "this greenlight reads plan version 1; found {}",
                document.version
            ),
        );
    }
    let budget = document.budget.unwrap_or(DEFAULT_BUDGET);
    if budget.is_zero() {
        p.error("budget", "must be longer than 0s");
    } else if budget > LAMBDA_MAX {
        p.warn(
            "budget",
            format!(
                "{} is longer than a Lambda invocation can run ({}); the invocation's deadline will end verification first",
                format_duration(budget),
                format_duration(LAMBDA_MAX)
            ),
        );
    }
    let concurrency = document.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
        p.error(
            "concurrency",
            format!("must be between 1 and {MAX_CONCURRENCY}, found {concurrency}"),
        );
    }
    let target = document
        .target
        .as_deref()
        .and_then(|t| target_template(&mut p, "target", t));
    let tls = document
        .tls
        .and_then(|t| read::<TlsDocument>(t, "tls", &mut p.errors))
        .map(|t| validate_tls(t, &mut p))
        .unwrap_or_default();
    for (i, name) in document.not_secret.iter().enumerate() {
        if name.trim().is_empty() {
            p.error(
                format!("not_secret[{i}]"),
                "must name a variable or a header",
            );
        }
    }

    let defaults_document = document
        .defaults
        .and_then(|d| read::<DefaultsDocument>(d, "defaults", &mut p.errors))
        .unwrap_or_default();
    let defaults_expect = defaults_document
        .expect
        .and_then(|e| read::<ExpectDocument>(e, "defaults.expect", &mut p.errors));
    if let Some(expect) = &defaults_expect {
        build_expectations(expect, "defaults.expect", &mut p);
    }
    check_limits(
        "defaults",
        defaults_document.timeout,
        defaults_document.retries,
        &mut p,
    );
    let default_retry_on = defaults_document
        .retry_on
        .as_deref()
        .and_then(|items| retry_on(items, "defaults.retry_on", &mut p));
    let defaults = Defaults {
        retry_on: default_retry_on,
        headers: validate_headers(&defaults_document.headers, "defaults.headers", &mut p),
        expect: defaults_expect.unwrap_or_default(),
        timeout: defaults_document.timeout,
        retries: defaults_document.retries,
        retry_delay: defaults_document.retry_delay,
    };

    let ready = document
        .ready
        .and_then(|r| read::<ReadyDocument>(r, "ready", &mut p.errors))
        .map(|r| validate_ready(r, &defaults, &mut p));
    let checks = validate_checks(
        document.checks.unwrap_or_default(),
        "checks",
        &defaults,
        &mut p,
    );
    let mut stages = BTreeMap::new();
    for (stage, value) in document.stages.unwrap_or_default() {
        let at = format!("stages.{stage}");
        if !ECS_STAGES.contains(&stage.as_str()) {
            p.error(
                at.clone(),
                format!(
                    "\"{stage}\" is not an ECS lifecycle stage with hooks; use one of {}",
                    ECS_STAGES.join(", ")
                ),
            );
        }
        let Some(doc) = read::<StageDocument>(value, &at, &mut p.errors) else {
            continue;
        };
        if doc.attempts == Some(0) {
            p.error(format!("{at}.attempts"), "must be at least 1");
        }
        let stage_target = doc
            .target
            .as_deref()
            .and_then(|t| target_template(&mut p, &format!("{at}.target"), t));
        let stage_checks = doc
            .checks
            .map(|c| validate_checks(c, &format!("{at}.checks"), &defaults, &mut p));
        stages.insert(
            stage,
            StageSpec {
                target: stage_target,
                checks: stage_checks,
                attempts: doc.attempts.unwrap_or(1),
                within: doc.within,
                retry_after: doc.retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            },
        );
    }
    let stage_checks = stages
        .values()
        .any(|s| s.checks.as_ref().is_some_and(|c| !c.is_empty()));
    if checks.is_empty() && !stage_checks && p.errors.is_empty() {
        p.error("checks", "a plan needs at least one check");
    }
    if p.errors.is_empty() {
        Ok(PlanSpec {
            budget,
            concurrency,
            target,
            not_secret: document.not_secret,
            tls,
            compression: document.compression.unwrap_or(false),
            ready,
            checks,
            stages,
            warnings: p.warnings,
        })
    } else {
        Err(PlanError::Invalid(p.errors))
    }
}

fn validate_tls(doc: TlsDocument, p: &mut Problems) -> TlsSpec {
    if let Some(name) = &doc.server_name {
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !valid {
            p.error("tls.server_name", format!("\"{name}\" is not a DNS name (the name the certificate is for, such as checkout.example.com)"));
        }
    }
    if doc.ca_file.as_deref().is_some_and(|f| f.trim().is_empty()) {
        p.error("tls.ca_file", "must name a PEM file of CA certificates");
    }
    let insecure = doc.insecure_skip_verify.unwrap_or(false);
    if insecure {
        p.warn(
            "tls.insecure_skip_verify",
            "certificates are NOT verified: anyone between greenlight and the target could answer for green; prefer tls.ca_file and tls.server_name",
        );
    }
    TlsSpec {
        ca_file: doc.ca_file,
        server_name: doc.server_name.map(|n| n.to_ascii_lowercase()),
        insecure_skip_verify: insecure,
    }
}

/// A target as written: its `${VAR}` syntax, and, when it is literal, the URL itself.
fn target_template(p: &mut Problems, path: &str, text: &str) -> Option<Template> {
    let template = p.template(path, text)?;
    if let Some(literal) = template.literal() {
        if let Err(message) = Target::parse(&literal, &literal, "") {
            p.error(path, message.trim_start().to_string());
            return None;
        }
    }
    Some(template)
}

/// What `defaults` gives every check.
struct Defaults {
    retry_on: Option<RetryOn>,
    headers: Vec<(HeaderName, Template)>,
    expect: ExpectDocument,
    timeout: Option<Duration>,
    retries: Option<u32>,
    retry_delay: Option<Duration>,
}

fn validate_checks(
    documents: Vec<Value>,
    prefix: &str,
    defaults: &Defaults,
    p: &mut Problems,
) -> Vec<CheckSpec> {
    if documents.len() > MAX_CHECKS {
        p.error(
            prefix,
            format!("at most {MAX_CHECKS} checks, found {}", documents.len()),
        );
        return Vec::new();
    }
    let mut names = std::collections::HashSet::new();
    let mut captured_before: std::collections::HashSet<String> = Default::default();
    let mut checks = Vec::new();
    for (i, value) in documents.into_iter().enumerate() {
        let at = format!("{prefix}[{i}]");
        let Some(check) = read::<CheckDocument>(value, &at, &mut p.errors) else {
            continue;
        };
        let CheckDocument {
            name,
            method,
            path,
            headers,
            body,
            routes: route_documents,
            timeout,
            retries,
            retry_delay,
            retry_on: check_retry_on,
            flaky,
            samples,
            thresholds,
            capture,
            expect,
        } = check;
        if name.trim().is_empty() {
            p.error(format!("{at}.name"), "must not be empty");
        } else if !names.insert(name.clone()) {
            p.error(
                format!("{at}.name"),
                format!("\"{name}\" is used by an earlier check; names must be unique"),
            );
        }
        let method = parse_method(method.as_deref(), &format!("{at}.method"), p);
        let mut merged = defaults.headers.clone();
        for (name, value) in validate_headers(&headers, &format!("{at}.headers"), p) {
            merged.retain(|(n, _)| *n != name);
            merged.push((name, value));
        }
        let body = body.and_then(|b| p.template(&format!("{at}.body"), &b));
        let routes = route_documents
            .map(|documents| validate_routes(documents, &at, &method, &merged, body.as_ref(), p))
            .unwrap_or_default();
        let path = match (&path, routes.first()) {
            (Some(path), _) => validate_path(path, &format!("{at}.path"), p),
            (None, Some(first)) => Some(first.path.clone()),
            (None, None) => {
                p.error(
                    at.clone(),
                    "missing field `path` (or `routes`, for a sampled check)",
                );
                None
            }
        };
        check_limits(&at, timeout, retries, p);
        let expect_document = expect
            .and_then(|e| read::<ExpectDocument>(e, &format!("{at}.expect"), &mut p.errors))
            .unwrap_or_default()
            .over(&defaults.expect);
        let expect = build_expectations(&expect_document, &format!("{at}.expect"), p);
        let retry_on_value = match check_retry_on.as_deref() {
            Some(items) => retry_on(items, &format!("{at}.retry_on"), p).unwrap_or_default(),
            None => defaults.retry_on.clone().unwrap_or_default(),
        };
        let flaky = match flaky.as_deref() {
            None | Some("pass") => Flaky::Pass,
            Some("fail") => Flaky::Fail,
            Some(other) => {
                p.error(
                    format!("{at}.flaky"),
                    format!("\"{other}\" is not `pass` or `fail`"),
                );
                Flaky::Pass
            }
        };
        let sampling = samples.and_then(|v| validate_samples(v, &format!("{at}.samples"), p));
        if !routes.is_empty() && sampling.is_none() {
            p.error(
                format!("{at}.routes"),
                "routes spread a sampled check's requests; add `samples:` (for example `samples: {rate: 50/s, duration: 30s}`)",
            );
        }
        let thresholds_value = match thresholds {
            Some(v) if sampling.is_some() => {
                validate_thresholds(v, &format!("{at}.thresholds"), sampling.as_ref(), p)
            }
            Some(_) => {
                p.error(
                    format!("{at}.thresholds"),
                    "thresholds judge a population: add `samples:` to this check (for example `samples: 100`)",
                );
                Thresholds::default()
            }
            None => Thresholds::default(),
        };
        if sampling.is_some() && retries.is_some() {
            p.error(
                format!("{at}.retries"),
                "a sampled check is never retried: every sample counts, and its thresholds say how many may fail",
            );
        }
        let mut captures = Vec::new();
        for (capture_name, source) in capture.iter().flatten() {
            let capture_at = format!("{at}.capture.{capture_name}");
            if sampling.is_some() {
                p.error(
                    &capture_at,
                    "a sampled check sends many requests; capture from a check that sends one",
                );
                continue;
            }
            match capture::Capture::parse(capture_name, source, &mut |text| p.compile(text)) {
                Ok(c) => captures.push(c),
                Err(message) => p.error(capture_at, message),
            }
        }
        let mut uses_captures = captured_names(path.as_ref(), &merged, body.as_ref(), &expect);
        for route in &routes {
            for name in captured_names(
                Some(&route.path),
                &route.headers,
                route.body.as_ref(),
                &Expectations::default(),
            ) {
                if !uses_captures.contains(&name) {
                    uses_captures.push(name);
                }
            }
        }
        for used in &uses_captures {
            if !captured_before.contains(used) {
                p.error(
                    at.clone(),
                    format!("uses ${{captured.{used}}}, but no earlier check captures `{used}` (a check captures with `capture: {{{used}: {{json: $.id}}}}`)"),
                );
            }
        }
        captured_before.extend(captures.iter().map(|c| c.name.clone()));
        let Some(path) = path else { continue };
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
            retry_on: retry_on_value,
            flaky,
            sampling,
            thresholds: thresholds_value,
            routes,
            captures,
            uses_captures,
            expect,
        });
    }
    checks
}

/// A check's path: `/…` joined to the target, or a full http(s) URL. When it has `${VAR}`s,
/// what can be known without the environment is checked (its syntax, and the text before the
/// first variable).
fn validate_path(path: &str, at: &str, p: &mut Problems) -> Option<Template> {
    if path.trim().is_empty() {
        p.error(at, "must not be empty; use \"/\" for the target itself");
        return None;
    }
    let template = p.template(at, path)?;
    let prefix = template.literal_prefix();
    let problem = if let Some(literal) = template.literal() {
        if literal.starts_with('/') {
            literal.contains('#').then(|| {
                format!("\"{literal}\" has a fragment (#…): fragments are never sent to the server; write # as %23 if it belongs in the path")
            })
        } else if has_scheme(&literal) {
            parse_absolute(&literal, &literal).err()
        } else {
            Some(format!(
                "\"{literal}\" must start with \"/\" or be a full http(s) URL"
            ))
        }
    } else if prefix.is_empty() || prefix.starts_with('/') {
        None
    } else if has_scheme(&prefix) || "https://".starts_with(&prefix.to_ascii_lowercase()) {
        let scheme = prefix
            .split("://")
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        (prefix.contains("://") && !matches!(scheme.as_str(), "http" | "https"))
            .then(|| format!("\"{path}\" uses {scheme}: only http and https are supported"))
    } else {
        Some(format!(
            "\"{path}\" must start with \"/\" or be a full http(s) URL"
        ))
    };
    match problem {
        Some(message) => {
            p.error(at, message);
            None
        }
        None => Some(template),
    }
}

fn parse_method(method: Option<&str>, at: &str, p: &mut Problems) -> Method {
    match method.map(str::to_ascii_uppercase).as_deref() {
        None | Some("GET") => Method::GET,
        Some("HEAD") => Method::HEAD,
        Some("POST") => Method::POST,
        Some("PUT") => Method::PUT,
        Some("PATCH") => Method::PATCH,
        Some("DELETE") => Method::DELETE,
        Some("OPTIONS") => Method::OPTIONS,
        Some(other) => {
            p.error(
                at,
                format!("\"{other}\" is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
            );
            Method::GET
        }
    }
}

const MAX_ROUTES: usize = 20;
const MAX_WEIGHT: u32 = 100;

/// A sampled check's routes: each inherits the check's method, headers and body unless it says
/// otherwise.
fn validate_routes(
    documents: Vec<Value>,
    at: &str,
    method: &Method,
    headers: &[(HeaderName, Template)],
    body: Option<&Template>,
    p: &mut Problems,
) -> Vec<RouteSpec> {
    if documents.is_empty() || documents.len() > MAX_ROUTES {
        p.error(
            format!("{at}.routes"),
            format!(
                "between 1 and {MAX_ROUTES} routes, found {}",
                documents.len()
            ),
        );
        return Vec::new();
    }
    let mut routes = Vec::new();
    for (i, value) in documents.into_iter().enumerate() {
        let route_at = format!("{at}.routes[{i}]");
        let Some(doc) = read::<RouteDocument>(value, &route_at, &mut p.errors) else {
            continue;
        };
        let route_method = match doc.method.as_deref() {
            Some(m) => parse_method(Some(m), &format!("{route_at}.method"), p),
            None => method.clone(),
        };
        let mut merged = headers.to_vec();
        for (name, value) in validate_headers(&doc.headers, &format!("{route_at}.headers"), p) {
            merged.retain(|(n, _)| *n != name);
            merged.push((name, value));
        }
        let route_body = match doc.body {
            Some(b) => p.template(&format!("{route_at}.body"), &b),
            None => body.cloned(),
        };
        let weight = doc.weight.unwrap_or(1);
        if !(1..=MAX_WEIGHT).contains(&weight) {
            p.error(
                format!("{route_at}.weight"),
                format!("must be between 1 and {MAX_WEIGHT}, found {weight}"),
            );
        }
        let Some(path) = validate_path(&doc.path, &format!("{route_at}.path"), p) else {
            continue;
        };
        routes.push(RouteSpec {
            method: route_method,
            path,
            headers: merged,
            body: route_body,
            weight: weight.clamp(1, MAX_WEIGHT),
        });
    }
    routes
}

/// The `${captured.NAME}`s a check uses, wherever it may use them.
fn captured_names(
    path: Option<&Template>,
    headers: &[(HeaderName, Template)],
    body: Option<&Template>,
    expect: &Expectations,
) -> Vec<String> {
    let mut texts: Vec<String> = Vec::new();
    texts.extend(path.map(|t| t.written().to_string()));
    texts.extend(headers.iter().map(|(_, t)| t.written().to_string()));
    texts.extend(body.map(|t| t.written().to_string()));
    texts.extend(expect.body_contains.iter().cloned());
    texts.extend(expect.body_not_contains.iter().cloned());
    texts.extend(
        expect
            .json
            .iter()
            .filter_map(|j| j.expected.as_str().map(str::to_string)),
    );
    for assertion in &expect.assertions {
        let mut copy = assertion.clone();
        texts.extend(copy.texts_mut().into_iter().map(|t| t.clone()));
    }
    let mut names = Vec::new();
    for text in texts {
        if let Ok(template) = Template::parse(&text) {
            for name in template.names() {
                if let Some(captured) = name.strip_prefix(capture::PREFIX) {
                    if !names.iter().any(|n| n == captured) {
                        names.push(captured.to_string());
                    }
                }
            }
        }
    }
    names
}

fn validate_ready(doc: ReadyDocument, defaults: &Defaults, p: &mut Problems) -> ReadySpec {
    let within = doc.within.unwrap_or(DEFAULT_READY_WITHIN);
    if within.is_zero() {
        p.error("ready.within", "must be longer than 0s");
    }
    let interval = doc.interval.unwrap_or(DEFAULT_READY_INTERVAL);
    if interval.is_zero() {
        p.error("ready.interval", "must be longer than 0s");
    }
    let documents = doc.checks.unwrap_or_default();
    if documents.is_empty() {
        p.error(
            "ready.checks",
            "list at least one check that passes once green is ready (for example GET /health)",
        );
    }
    let checks = validate_checks(documents, "ready.checks", defaults, p);
    for (i, check) in checks.iter().enumerate() {
        if !check.captures.is_empty() || !check.uses_captures.is_empty() {
            p.error(
                format!("ready.checks[{i}]"),
                "readiness checks neither capture nor use captured values",
            );
        }
        if check.sampling.is_some() {
            p.error(
                format!("ready.checks[{i}].samples"),
                "a readiness check is one request, repeated until it passes; sample in `checks`",
            );
        }
    }
    ReadySpec {
        within,
        interval,
        checks,
    }
}

fn retry_on(items: &[Value], at: &str, p: &mut Problems) -> Option<RetryOn> {
    RetryOn::from_values(items)
        .map_err(|message| p.error(at, message))
        .ok()
}

fn validate_samples(value: Value, at: &str, p: &mut Problems) -> Option<Sampling> {
    let doc = match value {
        Value::Number(n) => SamplesDocument {
            count: Some(n.as_u64().unwrap_or(0)),
            ..Default::default()
        },
        other => read::<SamplesDocument>(other, at, &mut p.errors)?,
    };
    let rate = match &doc.rate {
        None => None,
        Some(value) => match parse_rate(value) {
            Ok(rate) if rate > 0.0 && rate <= MAX_RATE => Some(rate),
            Ok(rate) => {
                p.error(
                    format!("{at}.rate"),
                    format!("must be above 0/s and at most {MAX_RATE}/s, found {rate}/s"),
                );
                return None;
            }
            Err(message) => {
                p.error(format!("{at}.rate"), message);
                return None;
            }
        },
    };
    let concurrency = doc
        .concurrency
        .unwrap_or(if rate.is_some() { 16 } else { 1 });
    if !(1..=MAX_SAMPLE_CONCURRENCY).contains(&concurrency) {
        p.error(
            format!("{at}.concurrency"),
            format!("must be between 1 and {MAX_SAMPLE_CONCURRENCY}, found {concurrency}"),
        );
        return None;
    }
    let count = match (doc.count, rate, doc.duration) {
        (Some(count), None, None) => count,
        (None, Some(rate), Some(duration)) if !duration.is_zero() => {
            (rate * duration.as_secs_f64()).ceil() as u64
        }
        (None, Some(_), Some(_)) => {
            p.error(format!("{at}.duration"), "must be longer than 0s");
            return None;
        }
        (None, None, None) => {
            p.error(
                at,
                "say how many: a number (`samples: 200`), `count:`, or `rate:` with `duration:`",
            );
            return None;
        }
        (Some(_), _, _) => {
            p.error(
                at,
                "either `count` (requests one after another, at a concurrency) or `rate` with `duration` (arrivals on a schedule), not both",
            );
            return None;
        }
        (None, Some(_), None) => {
            p.error(
                format!("{at}.duration"),
                "a rate needs a duration (for example `duration: 30s`)",
            );
            return None;
        }
        (None, None, Some(_)) => {
            p.error(
                format!("{at}.rate"),
                "a duration needs a rate (for example `rate: 50/s`)",
            );
            return None;
        }
    };
    if !(1..=MAX_SAMPLES).contains(&count) {
        p.error(
            at,
            format!("between 1 and {MAX_SAMPLES} samples, found {count}"),
        );
        return None;
    }
    Some(Sampling {
        count,
        concurrency,
        rate,
        duration: doc.duration,
    })
}

/// `50`, `50/s`, `3000/m`.
fn parse_rate(value: &Value) -> Result<f64, String> {
    match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is not a rate")),
        Value::String(text) => {
            let t = text.trim();
            let (number, per) = match t.split_once('/') {
                Some((n, "s")) => (n, 1.0),
                Some((n, "m")) => (n, 60.0),
                None => (t, 1.0),
                Some(_) => {
                    return Err(format!(
                        "\"{text}\" is not a rate; write it as 50/s or 3000/m"
                    ))
                }
            };
            number
                .trim()
                .parse::<f64>()
                .map(|n| n / per)
                .map_err(|_| format!("\"{text}\" is not a rate; write it as 50/s or 3000/m"))
        }
        other => Err(format!(
            "expected a rate such as 50/s, found {}",
            super::document::kind_of(other)
        )),
    }
}

fn validate_thresholds(
    value: Value,
    at: &str,
    sampling: Option<&Sampling>,
    p: &mut Problems,
) -> Thresholds {
    let Some(doc) = read::<ThresholdsDocument>(value, at, &mut p.errors) else {
        return Thresholds::default();
    };
    let mut thresholds = Thresholds::default();
    if let Some(text) = &doc.errors {
        match RateLimit::parse(text) {
            Ok(limit) => thresholds.errors = limit,
            Err(message) => p.error(format!("{at}.errors"), message),
        }
    }
    for (statistic, text) in [
        (Statistic::P50, &doc.p50),
        (Statistic::P90, &doc.p90),
        (Statistic::P95, &doc.p95),
        (Statistic::P99, &doc.p99),
        (Statistic::Max, &doc.max),
    ] {
        if let Some(text) = text {
            match LatencyLimit::parse(text) {
                Ok(limit) => thresholds.latency.push((statistic, limit)),
                Err(message) => p.error(format!("{at}.{}", statistic.name()), message),
            }
        }
    }
    if let Some(min) = doc.min_samples {
        let planned = sampling.map_or(u64::MAX, |s| s.count);
        if min == 0 || min > planned {
            p.error(
                format!("{at}.min_samples"),
                format!("must be between 1 and the {planned} samples planned, found {min}"),
            );
        } else {
            thresholds.min_samples = Some(min);
        }
    }
    thresholds
}

fn check_limits(at: &str, timeout: Option<Duration>, retries: Option<u32>, p: &mut Problems) {
    if timeout.is_some_and(|t| t.is_zero()) {
        p.error(format!("{at}.timeout"), "must be longer than 0s");
    }
    if let Some(r) = retries.filter(|r| *r > MAX_RETRIES) {
        p.error(
            format!("{at}.retries"),
            format!("at most {MAX_RETRIES}, found {r}"),
        );
    }
}

fn validate_headers(
    headers: &BTreeMap<String, String>,
    at: &str,
    p: &mut Problems,
) -> Vec<(HeaderName, Template)> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            let path = format!("{at}.{name}");
            let header = match HeaderName::from_bytes(name.as_bytes()) {
                Ok(header) => header,
                Err(_) => {
                    p.error(&path, format!("\"{name}\" is not a valid header name"));
                    return None;
                }
            };
            let template = p.template(&path, value)?;
            if let Some(literal) = template.literal() {
                if reqwest::header::HeaderValue::from_str(&literal).is_err() {
                    p.error(
                        &path,
                        "the value is not a valid header value (control characters or line breaks)",
                    );
                    return None;
                }
            }
            Some((header, template))
        })
        .collect()
}

fn build_expectations(doc: &ExpectDocument, at: &str, p: &mut Problems) -> Expectations {
    let mut expect = Expectations::default();
    if let Some(status) = &doc.status {
        match StatusMatcher::from_value(status) {
            Ok(matcher) => expect.status = matcher,
            Err(message) => p.error(format!("{at}.status"), message),
        }
    }
    expect.latency = doc.latency;
    if doc.latency.is_some_and(|l| l.is_zero()) {
        p.error(format!("{at}.latency"), "must be longer than 0s");
    }
    expect.body_contains = doc.body_contains.clone().unwrap_or_default();
    for (i, needle) in expect.body_contains.iter().enumerate() {
        p.template(&format!("{at}.body_contains[{i}]"), needle);
    }
    if let Some(pattern) = &doc.body_matches {
        expect.body_matches = p.pattern(&format!("{at}.body_matches"), pattern);
    }
    for (name, substring) in doc.headers.iter().flatten() {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(header) => expect.headers.push((header, substring.clone())),
            Err(_) => p.error(
                format!("{at}.headers.{name}"),
                format!("\"{name}\" is not a valid header name"),
            ),
        }
    }
    expect.body_not_contains = doc.body_not_contains.clone().unwrap_or_default();
    for (i, needle) in expect.body_not_contains.iter().enumerate() {
        if needle.is_empty() {
            p.error(
                format!("{at}.body_not_contains[{i}]"),
                "must not be empty (every body contains \"\")",
            );
        }
        p.template(&format!("{at}.body_not_contains[{i}]"), needle);
    }
    for (i, item) in doc.assert.iter().flatten().enumerate() {
        let path = format!("{at}.assert[{i}]");
        match crate::expect::assertion::Assertion::parse(item, &mut |text| p.compile(text)) {
            Ok(mut assertion) => {
                for text in assertion.texts_mut() {
                    p.template(&path, text);
                }
                expect.assertions.push(assertion);
            }
            Err(problems) => {
                for (field, message) in problems {
                    let field_path = if field.is_empty() {
                        path.clone()
                    } else {
                        format!("{path}.{field}")
                    };
                    p.error(field_path, message);
                }
            }
        }
    }
    for (expression, expected) in doc.json.iter().flatten() {
        let path = format!("{at}.json.{expression}");
        if let Value::String(text) = expected {
            p.template(&path, text);
        }
        match JsonExpectation::new(expression, expected.clone()) {
            Ok(j) => expect.json.push(j),
            Err(message) => p.error(path, message),
        }
    }
    expect
}
