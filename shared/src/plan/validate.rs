//! Checking a plan's meaning where serde cannot: version, names, methods, headers, `${VAR}`
//! syntax, literal URLs, regular expressions, JSONPaths and limits. Every problem is collected,
//! with its field path; nothing here depends on the environment.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::HeaderName;
use reqwest::Method;
use serde_json::Value;

use super::document::{
    read, BaselineDocument, CheckDocument, DefaultsDocument, ExpectDocument, PlanDocument,
    ReadyDocument, RouteDocument, StageDocument, TlsDocument,
};
use super::problems::Problems;
use super::target::{has_scheme, parse_absolute, Target};
use super::*;
use crate::duration::format_duration;
use crate::expect::{Expectations, JsonExpectation};

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
    let default_retry_on = defaults_document.retry_on.as_deref().and_then(|items| {
        RetryOn::from_values(items)
            .map_err(|message| p.error("defaults.retry_on", message))
            .ok()
    });
    let defaults = Defaults {
        headers: validate_headers(&defaults_document.headers, "defaults.headers", &mut p),
        expect: defaults_expect.unwrap_or_default(),
        timeout: defaults_document.timeout,
        probe: crate::probe::Defaults {
            retries: defaults_document.retries,
            retry_delay: defaults_document.retry_delay,
            retry_on: default_retry_on,
        },
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
    let baseline = validate_baseline(document.baseline, &mut p);
    let mut stages = BTreeMap::new();
    for (stage, value) in document.stages.unwrap_or_default() {
        let at = format!("stages.{stage}");
        let codedeploy = CODEDEPLOY_HOOKS.contains(&stage.as_str());
        if !ECS_STAGES.contains(&stage.as_str()) && !codedeploy {
            p.error(
                at.clone(),
                format!(
                    "\"{stage}\" is neither an ECS lifecycle stage with hooks ({}) nor a CodeDeploy hook of greenlight's ({})",
                    ECS_STAGES.join(", "),
                    CODEDEPLOY_HOOKS.join(", ")
                ),
            );
        }
        let Some(doc) = read::<StageDocument>(value, &at, &mut p.errors) else {
            continue;
        };
        if codedeploy {
            p.refuse(
                &at,
                &[
                ("attempts", doc.attempts.is_some()),
                ("within", doc.within.is_some()),
                ("retry_after", doc.retry_after.is_some()),
                ],
                "CodeDeploy invokes each hook once and waits for one report; attempts, within and retry_after are for ECS stages",
            );
        }
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
    // A CodeDeploy hook reports within the hour CodeDeploy waits for it.
    waits_within_an_hour(&checks, "checks", false, &mut p);
    for (stage, spec) in &stages {
        if let (Some(checks), true) = (&spec.checks, CODEDEPLOY_HOOKS.contains(&stage.as_str())) {
            waits_within_an_hour(checks, &format!("stages.{stage}.checks"), true, &mut p);
        }
    }
    only_safe_methods_to_blue(&checks, "checks", &baseline, &mut p);
    for (stage, spec) in &stages {
        if let Some(checks) = &spec.checks {
            only_safe_methods_to_blue(checks, &format!("stages.{stage}.checks"), &baseline, &mut p);
        }
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
            baseline,
            ready,
            checks,
            stages,
            warnings: p.warnings,
        })
    } else {
        Err(PlanError::Invalid(p.errors))
    }
}

/// `baseline:` a URL (with `${VAR}`s), or `{url, safe_methods}`.
fn validate_baseline(value: Option<Value>, p: &mut Problems) -> BaselineSpec {
    let doc = match value {
        None => BaselineDocument::default(),
        Some(Value::String(url)) => BaselineDocument {
            url: Some(url),
            safe_methods: None,
        },
        Some(other) => p
            .read::<BaselineDocument>(other, "baseline")
            .unwrap_or_default(),
    };
    let url = doc
        .url
        .as_deref()
        .and_then(|u| target_template(p, "baseline.url", u));
    let safe_methods = match doc.safe_methods {
        None => vec![Method::GET, Method::HEAD],
        Some(names) => names
            .iter()
            .enumerate()
            .map(|(i, m)| parse_method(Some(m), &format!("baseline.safe_methods[{i}]"), p))
            .collect(),
    };
    BaselineSpec { url, safe_methods }
}

/// A CodeDeploy hook waits across invocations, but reports within the hour CodeDeploy waits for
/// a hook: a longer wait would never be judged (an error for a CodeDeploy stage's checks, a
/// warning for the plan's own, which ECS stages may wait for as long as their hook allows).
fn waits_within_an_hour(checks: &[CheckSpec], prefix: &str, codedeploy: bool, p: &mut Problems) {
    let longest = crate::continuation::LONGEST_BAKE;
    for (i, check) in checks.iter().enumerate() {
        if let Probe::Metric(metric) = &check.probe {
            if let Some(wait) = metric.wait.filter(|wait| *wait > longest) {
                let message = format!(
                    "{} is longer than a CodeDeploy hook can wait ({}; CodeDeploy fails a hook that has not reported within an hour): shorten the wait, or bake longer with CodeDeploy's termination wait and an alarm on alarm-rollback",
                    format_duration(wait),
                    format_duration(longest)
                );
                let at = format!("{prefix}[{i}].metric.wait");
                if codedeploy {
                    p.error(at, message);
                } else {
                    p.warn(at, message);
                }
            }
        }
    }
}

/// Compare checks send every request to blue too, through the production listener: only the
/// methods the plan marks safe.
fn only_safe_methods_to_blue(
    checks: &[CheckSpec],
    prefix: &str,
    baseline: &BaselineSpec,
    p: &mut Problems,
) {
    for (i, check) in checks.iter().enumerate() {
        if !matches!(check.probe, Probe::Compare(_)) {
            continue;
        }
        let methods = std::iter::once(&check.method).chain(check.routes.iter().map(|r| &r.method));
        for method in methods {
            if !baseline.safe_methods.contains(method) {
                let listed: Vec<String> = baseline
                    .safe_methods
                    .iter()
                    .map(Method::to_string)
                    .collect();
                p.error(
                    format!("{prefix}[{i}].method"),
                    format!(
                        "a compare check sends each request to blue too, through the production listener; {method} is not among the methods sent there ({}); list it in `baseline.safe_methods` only if it changes nothing",
                        listed.join(", ")
                    ),
                );
                break;
            }
        }
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
    headers: Vec<(HeaderName, Template)>,
    expect: ExpectDocument,
    timeout: Option<Duration>,
    probe: crate::probe::Defaults,
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
            paths,
            compare,
            metric,
            target_health,
            timeout,
            retries,
            retry_delay,
            retry_on,
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
        let asks_green = metric.is_none() && target_health.is_none();
        let fields = crate::probe::Fields {
            retries,
            retry_delay,
            retry_on,
            flaky,
            capture,
            samples,
            thresholds,
            compare,
            metric,
            target_health,
        };
        if !asks_green {
            // A metric or target_health check asks CloudWatch or the load balancer, not green:
            // none of a request's fields apply.
            p.refuse(
                &at,
                &[
                    ("method", method.is_some()),
                    ("path", path.is_some()),
                    ("paths", paths.is_some()),
                    ("routes", route_documents.is_some()),
                    ("headers", !headers.is_empty()),
                    ("body", body.is_some()),
                    ("timeout", timeout.is_some()),
                    ("expect", expect.is_some()),
                ],
                crate::probe::NOT_A_REQUEST,
            );
            if let Some(probe) = crate::probe::validate(fields, &at, &defaults.probe, false, p) {
                checks.push(CheckSpec {
                    name,
                    method: Method::GET,
                    path: Template::empty(),
                    headers: Vec::new(),
                    body: None,
                    timeout: DEFAULT_TIMEOUT,
                    probe,
                    routes: Vec::new(),
                    uses_captures: Vec::new(),
                    expect: Expectations::default(),
                });
            }
            continue;
        }
        let method = parse_method(method.as_deref(), &format!("{at}.method"), p);
        let mut merged = defaults.headers.clone();
        for (name, value) in validate_headers(&headers, &format!("{at}.headers"), p) {
            merged.retain(|(n, _)| *n != name);
            merged.push((name, value));
        }
        let body = body.and_then(|b| p.template(&format!("{at}.body"), &b));
        let route_documents = match (route_documents, paths) {
            (Some(_), Some(_)) => {
                p.error(
                    format!("{at}.paths"),
                    "either `paths` (routes of weight 1) or `routes`, not both",
                );
                None
            }
            (None, Some(paths)) => Some(
                paths
                    .into_iter()
                    .map(|path| serde_json::json!({ "path": path }))
                    .collect(),
            ),
            (routes, None) => routes,
        };
        let routes = route_documents
            .map(|documents| validate_routes(documents, &at, &method, &merged, body.as_ref(), p))
            .unwrap_or_default();
        let path = match (&path, routes.first()) {
            (Some(path), _) => validate_path(path, &format!("{at}.path"), p),
            (None, Some(first)) => Some(first.path.clone()),
            (None, None) => {
                p.error(
                    at.clone(),
                    "missing field `path` (or `paths`/`routes`, for a sampled or compared check)",
                );
                None
            }
        };
        check_limits(&at, timeout, None, p);
        let expect_document = expect
            .and_then(|e| read::<ExpectDocument>(e, &format!("{at}.expect"), &mut p.errors))
            .unwrap_or_default()
            .over(&defaults.expect);
        let expect = build_expectations(&expect_document, &format!("{at}.expect"), p);
        let probe = crate::probe::validate(fields, &at, &defaults.probe, !routes.is_empty(), p);
        let captures = probe.as_ref().map(Probe::captures).unwrap_or_default();
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
        if probe
            .as_ref()
            .is_some_and(|probe| matches!(probe, Probe::Compare(_)))
            && !uses_captures.is_empty()
        {
            p.error(
                at.clone(),
                "a compare check sends the same requests to blue, which knows nothing of values captured from green; compare requests that stand on their own",
            );
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
        let (Some(path), Some(probe)) = (path, probe) else {
            continue;
        };
        checks.push(CheckSpec {
            name,
            method,
            path,
            headers: merged,
            body,
            timeout: timeout.or(defaults.timeout).unwrap_or(DEFAULT_TIMEOUT),
            probe,
            routes,
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
        if !check.probe.captures().is_empty() || !check.uses_captures.is_empty() {
            p.error(
                format!("ready.checks[{i}]"),
                "readiness checks neither capture nor use captured values",
            );
        }
        if !check.probe.asks_over_http() {
            p.error(
                format!("ready.checks[{i}].metric"),
                "a readiness check asks green until it answers; metric and target_health checks belong in `checks`",
            );
        } else if check.probe.sends_many() {
            p.error(
                format!("ready.checks[{i}].samples"),
                "a readiness check is one request, repeated until it passes; samples, load and comparisons belong in `checks`",
            );
        }
    }
    ReadySpec {
        within,
        interval,
        checks,
    }
}

fn check_limits(at: &str, timeout: Option<Duration>, retries: Option<u32>, p: &mut Problems) {
    if timeout.is_some_and(|t| t.is_zero()) {
        p.error(format!("{at}.timeout"), "must be longer than 0s");
    }
    let most = crate::probe::exchange::MAX_RETRIES;
    if let Some(r) = retries.filter(|r| *r > most) {
        p.error(
            format!("{at}.retries"),
            format!("at most {most}, found {r}"),
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
