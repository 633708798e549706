//! Turning a validated plan into runnable checks: `${VAR}` substitution, joining paths to the
//! target, building headers, and registering the values that must never be shown.

use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::Url;

use super::target::{has_scheme, parse_absolute, Target};
use super::*;
use crate::secrets;

/// The values of one plan that are secret, gathered while it is filled in.
#[derive(Default)]
struct Found {
    secrets: Vec<String>,
    userinfo: Vec<(String, Option<String>)>,
    errors: Vec<FieldError>,
}

impl Found {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }
}

/// What may be shown: variables and headers the plan lists in `not_secret`.
struct Visible<'a>(&'a [String]);

impl Visible<'_> {
    fn variable(&self, name: &str) -> bool {
        self.0.iter().any(|n| n == name)
    }
    /// The check's probe, its captures each secret unless `not_secret` lists `captured.NAME`.
    fn probe(&self, probe: &Probe) -> Probe {
        let mut probe = probe.clone();
        if let Probe::Exchange(exchange) = &mut probe {
            for c in &mut exchange.captures {
                c.secret = !self.variable(&format!("{}{}", capture::PREFIX, c.name));
            }
        }
        probe
    }
    fn header(&self, name: &str) -> bool {
        self.0.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

pub(super) fn resolve(
    spec: &PlanSpec,
    target_override: Option<&Setting>,
    env: &Env,
    registry: &secrets::Secrets,
) -> Result<Plan, PlanError> {
    let visible = Visible(&spec.not_secret);
    let mut found = Found::default();
    let target = match target_override {
        Some(setting) => match Target::parse(&setting.value, &setting.value, &setting.from) {
            Ok(t) => Some(t),
            Err(message) => {
                found.error("", message);
                None
            }
        },
        None => spec
            .target
            .as_ref()
            .and_then(|t| fill_target(t, "target", env, &visible, &mut found)),
    };
    if let Some((user, password)) = target.as_ref().and_then(Target::userinfo) {
        found
            .userinfo
            .push((user.to_string(), password.map(str::to_string)));
    }
    let tls = resolve_tls(&spec.tls, target.as_ref(), &mut found);
    let server_name = tls.as_ref().and_then(|t| t.server_name.clone());
    let context = Context {
        target: target.clone(),
        not_secret: spec.not_secret.clone(),
        server_name: server_name.clone(),
        env: env.clone(),
    };
    let compares = spec
        .checks
        .iter()
        .any(|c| matches!(c.probe, Probe::Compare(_)));
    let baseline = if compares {
        resolve_baseline(&spec.baseline, target.as_ref(), env, &visible, &mut found)
    } else {
        None
    };
    let resolve_all = |specs: &[CheckSpec], prefix: &str, found: &mut Found| {
        let mut checks = Vec::with_capacity(specs.len());
        for (i, check_spec) in specs.iter().enumerate() {
            let at = format!("{prefix}[{i}]");
            if !check_spec.uses_captures.is_empty() {
                checks.push(deferred_check(check_spec, at, target.as_ref(), &context));
                continue;
            }
            if let Some(mut check) =
                resolve_check(check_spec, &at, target.as_ref(), env, &visible, found)
            {
                send_to_server_name(&mut check, server_name.as_ref());
                if let (Probe::Compare(_), Some(baseline)) = (&check_spec.probe, &baseline) {
                    let blue =
                        blue_requests(check_spec, &check, &at, baseline, env, &visible, found);
                    if let Probe::Compare(compare) = &mut check.probe {
                        compare.blue = blue;
                    }
                }
                checks.push(check);
            }
        }
        checks
    };
    let ready = spec.ready.as_ref().map(|r| Ready {
        within: r.within,
        interval: r.interval,
        checks: resolve_all(&r.checks, "ready.checks", &mut found),
    });
    let checks = resolve_all(&spec.checks, "checks", &mut found);
    // Secrets are registered whatever happens, before any message about this plan is shown.
    registry.add(&found.secrets);
    for (user, password) in &found.userinfo {
        registry.add_userinfo(user, password.as_deref());
    }
    if !found.errors.is_empty() {
        return Err(PlanError::Unresolved(found.errors));
    }
    Ok(Plan {
        budget: spec.budget,
        concurrency: spec.concurrency,
        compression: spec.compression,
        ready,
        checks,
        warnings: spec.warnings.clone(),
        tls: tls.map(Arc::new),
    })
}

/// Blue's address for compare checks: the plan's `baseline`, else `GREENLIGHT_PRODUCTION_URL`.
/// Never the target itself: green compared with green would pass whatever green does.
fn resolve_baseline(
    spec: &BaselineSpec,
    target: Option<&Target>,
    env: &Env,
    visible: &Visible<'_>,
    found: &mut Found,
) -> Option<Target> {
    let baseline = match &spec.url {
        Some(template) => fill_target(template, "baseline.url", env, visible, found)?,
        None => {
            let url = match env.setting("GREENLIGHT_PRODUCTION_URL") {
                Ok(Some(url)) => url,
                Ok(None) => {
                    found.error(
                        "baseline",
                        "compare checks send the same requests to blue: set GREENLIGHT_PRODUCTION_URL (the production listener, which still reaches blue) or the plan's `baseline:`",
                    );
                    return None;
                }
                Err(e) => {
                    found.error("baseline", e.to_string());
                    return None;
                }
            };
            match Target::parse(&url, &url, "GREENLIGHT_PRODUCTION_URL") {
                Ok(t) => t,
                Err(message) => {
                    found.error("baseline", message.trim_start().to_string());
                    return None;
                }
            }
        }
    };
    if let Some((user, password)) = baseline.userinfo() {
        found
            .userinfo
            .push((user.to_string(), password.map(str::to_string)));
    }
    if target.is_some_and(|t| t.url() == baseline.url()) {
        found.error(
            "baseline",
            "blue's address is the target's own: green would be compared with itself; the baseline is the production listener, the target the test listener",
        );
        return None;
    }
    Some(baseline)
}

/// Blue's copy of a compare check's requests (the check itself, or each route), sent to the
/// baseline.
fn blue_requests(
    spec: &CheckSpec,
    green: &Check,
    at: &str,
    baseline: &Target,
    env: &Env,
    visible: &Visible<'_>,
    found: &mut Found,
) -> Vec<Arc<Check>> {
    let Some(blue) = resolve_check(spec, at, Some(baseline), env, visible, found) else {
        return Vec::new();
    };
    let pairs: Vec<(Arc<Check>, Arc<Check>)> = if blue.routes.is_empty() {
        vec![(Arc::new(green.clone()), Arc::new(blue))]
    } else {
        green
            .routes
            .iter()
            .map(|(g, _)| Arc::clone(g))
            .zip(blue.routes.iter().map(|(b, _)| Arc::clone(b)))
            .collect()
    };
    for (g, b) in &pairs {
        if g.url == b.url {
            found.error(
                format!("{at}.path"),
                format!(
                    "{} goes to the same address for blue and green (a full URL); a compared path is relative to the target and the baseline",
                    b.request_line
                ),
            );
        }
    }
    pairs.into_iter().map(|(_, b)| b).collect()
}

/// What filling in a deferred check needs of the plan it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    target: Option<Target>,
    not_secret: Vec<String>,
    server_name: Option<(String, String, u16)>,
    env: Env,
}

/// Requests to the target carry the certificate's name; the client sends them to the target's
/// own address (see `crate::http::client_for`).
fn send_to_server_name(check: &mut Check, server_name: Option<&(String, String, u16)>) {
    for (route, _) in &mut check.routes {
        send_to_server_name(Arc::make_mut(route), server_name);
    }
    if let Some((name, host, port)) = server_name {
        if check.url.scheme() == "https"
            && check.url.host_str() == Some(host.as_str())
            && check.url.port_or_known_default() == Some(*port)
        {
            let _ = check.url.set_host(Some(name));
        }
    }
}

/// A check that asks CloudWatch or the load balancer, not green: its `${VAR}`s filled in; its URL
/// only names what it asks, and its request line is what it asks, as written.
fn resolve_not_http(
    spec: &CheckSpec,
    at: &str,
    env: &Env,
    visible: &Visible<'_>,
    found: &mut Found,
) -> Check {
    let mut probe = spec.probe.clone();
    let (url, request_line) = match &mut probe {
        Probe::Metric(metric) => {
            metric.fill_in(&mut |template, field| {
                fill(
                    template,
                    &format!("{at}.metric.{field}"),
                    env,
                    visible,
                    found,
                )
                .map(|s| s.value)
            });
            (
                "cloudwatch:metrics",
                format!("CloudWatch {}", metric.query_line()),
            )
        }
        Probe::TargetHealth(health) => {
            health.fill_in(&mut |template, field| {
                fill(
                    template,
                    &format!("{at}.target_health.{field}"),
                    env,
                    visible,
                    found,
                )
                .map(|s| s.value)
            });
            (
                "elasticloadbalancing:targets",
                format!("ELB target health of {}", health.target_group_line()),
            )
        }
        _ => ("about:blank", String::new()),
    };
    Check {
        name: spec.name.clone(),
        method: spec.method.clone(),
        url: Url::parse(url).expect("a valid URL"),
        request_line,
        headers: HeaderMap::new(),
        body: None,
        timeout: spec.timeout,
        probe,
        routes: Vec::new(),
        deferred: None,
        expect: Arc::new(spec.expect.clone()),
    }
}

/// A check that uses captured values, until they are known: its name and request as written,
/// and what it takes to fill it in.
fn deferred_check(
    spec: &CheckSpec,
    at: String,
    target: Option<&Target>,
    context: &Context,
) -> Check {
    let url = target
        .map(|t| t.url().clone())
        .unwrap_or_else(|| Url::parse("http://captured.invalid/").expect("a valid URL"));
    Check {
        name: spec.name.clone(),
        method: spec.method.clone(),
        request_line: format!("{} {}", spec.method, spec.path.written()),
        url,
        headers: HeaderMap::new(),
        body: None,
        timeout: spec.timeout,
        probe: Visible(&context.not_secret).probe(&spec.probe),
        routes: Vec::new(),
        deferred: Some(Arc::new(Deferred {
            spec: spec.clone(),
            at,
            names: spec.uses_captures.clone(),
            context: context.clone(),
        })),
        expect: Arc::new(spec.expect.clone()),
    }
}

/// Fills in a deferred check with the captured values; their secrets go to the process's
/// registry before anything of the check can be shown.
pub(super) fn resolve_deferred(
    deferred: &Deferred,
    captured: Vec<(String, String)>,
) -> Result<Check, String> {
    let context = &deferred.context;
    let env = context.env.with_values(
        captured
            .into_iter()
            .map(|(name, value)| (format!("{}{name}", capture::PREFIX), value))
            .collect(),
    );
    let visible = Visible(&context.not_secret);
    let mut found = Found::default();
    let check = resolve_check(
        &deferred.spec,
        &deferred.at,
        context.target.as_ref(),
        &env,
        &visible,
        &mut found,
    );
    secrets::global().add(&found.secrets);
    for (user, password) in &found.userinfo {
        secrets::global().add_userinfo(user, password.as_deref());
    }
    match check {
        Some(mut check) if found.errors.is_empty() => {
            send_to_server_name(&mut check, context.server_name.as_ref());
            Ok(check)
        }
        _ => Err(found
            .errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

/// Reads the CA bundle and finds the target `server_name` stands for.
fn resolve_tls(spec: &TlsSpec, target: Option<&Target>, found: &mut Found) -> Option<Tls> {
    if spec == &TlsSpec::default() {
        return None;
    }
    let mut extra_roots = Vec::new();
    if let Some(file) = &spec.ca_file {
        match crate::files::read_bytes(
            std::path::Path::new(file),
            1024 * 1024,
            crate::files::READ_TIME_LIMIT,
        ) {
            Ok(pem) => match reqwest::Certificate::from_pem_bundle(&pem) {
                Ok(certs) if !certs.is_empty() => extra_roots = certs,
                _ => found.error(
                    "tls.ca_file",
                    format!("{file}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
                ),
            },
            Err(e) => found.error("tls.ca_file", e.to_string()),
        }
    }
    let server_name = spec.server_name.as_ref().and_then(|name| {
        let url = target.map(Target::url)?;
        Some((
            name.clone(),
            url.host_str()?.to_string(),
            url.port_or_known_default()?,
        ))
    });
    if spec.server_name.is_some() && server_name.is_none() {
        found.error("tls.server_name", "needs a target (GREENLIGHT_TEST_URL, --target or the plan's target) whose address it stands for");
    }
    Some(Tls {
        extra_roots,
        server_name,
        insecure_skip_verify: spec.insecure_skip_verify,
    })
}

/// Fills in a template; inserted values are secret unless their variable is visible.
fn fill(
    template: &Template,
    path: &str,
    env: &Env,
    visible: &Visible<'_>,
    found: &mut Found,
) -> Option<vars::Substituted> {
    fill_in(template, path, env, &|name| visible.variable(name), found)
}

/// Fills in the `${VAR}`s of a text of the plan in place (left as written on error).
fn fill_text(text: &mut String, path: &str, env: &Env, visible: &Visible<'_>, found: &mut Found) {
    if let Some(s) = Template::parse(text)
        .map_err(|m| found.error(path, m))
        .ok()
        .and_then(|t| fill(&t, path, env, visible, found))
    {
        *text = s.value;
    }
}

fn fill_in(
    template: &Template,
    path: &str,
    env: &Env,
    shown: &dyn Fn(&str) -> bool,
    found: &mut Found,
) -> Option<vars::Substituted> {
    match template.substitute(env) {
        Ok(s) => {
            found.secrets.extend(
                s.inserted
                    .iter()
                    .filter(|(name, _)| !shown(name))
                    .map(|(_, value)| value.clone()),
            );
            Some(s)
        }
        Err(message) => {
            found.error(path, message);
            None
        }
    }
}

fn fill_target(
    template: &Template,
    path: &str,
    env: &Env,
    visible: &Visible<'_>,
    found: &mut Found,
) -> Option<Target> {
    let s = fill(template, path, env, visible, found)?;
    match Target::parse(&s.value, &s.display, "") {
        Ok(t) => Some(t),
        Err(message) => {
            found.error(path, message.trim_start().to_string());
            None
        }
    }
}

fn resolve_check(
    spec: &CheckSpec,
    at: &str,
    target: Option<&Target>,
    env: &Env,
    visible: &Visible<'_>,
    found: &mut Found,
) -> Option<Check> {
    if !spec.probe.asks_over_http() {
        return Some(resolve_not_http(spec, at, env, visible, found));
    }
    let errors_before = found.errors.len();
    let path_at = format!("{at}.path");
    let joined = fill(&spec.path, &path_at, env, visible, found).and_then(|path| {
        let result = if has_scheme(&path.value) {
            parse_absolute(&path.value, &path.display)
        } else {
            match target {
                Some(target) => target.join(&path.value, &path.display),
                None => Err(format!(
                    "\"{}\" is relative but no target is set: set GREENLIGHT_TEST_URL (or the plan's `target`, or --target)",
                    path.display
                )),
            }
        };
        result.map_err(|message| found.error(&path_at, message)).ok()
    });
    if let Some((url, _)) = &joined {
        if url.username() != "" || url.password().is_some() {
            found.userinfo.push((
                url.username().to_string(),
                url.password().map(str::to_string),
            ));
        }
    }

    let mut headers = HeaderMap::new();
    for (name, template) in &spec.headers {
        let path = format!("{at}.headers.{name}");
        // A header listed in `not_secret` may be shown whole, variables in it included.
        let header_visible = visible.header(name.as_str());
        let shown = |variable: &str| header_visible || visible.variable(variable);
        let Some(s) = fill_in(template, &path, env, &shown, found) else {
            continue;
        };
        match HeaderValue::from_str(&s.value) {
            Ok(mut value) => {
                value.set_sensitive(!header_visible);
                if !header_visible {
                    found.secrets.push(s.value.clone());
                    push_credential_token(&s.value, &mut found.secrets);
                }
                headers.insert(name.clone(), value);
            }
            Err(_) => found.error(
                path,
                "the value (after substitution) is not a valid header value (control characters or line breaks)",
            ),
        }
    }

    let body = spec.body.as_ref().and_then(|template| {
        let s = fill(template, &format!("{at}.body"), env, visible, found)?;
        found.secrets.push(s.value.clone());
        Some(s.value)
    });

    let mut expect = spec.expect.clone();
    for (i, needle) in expect.body_contains.iter_mut().enumerate() {
        fill_text(
            needle,
            &format!("{at}.expect.body_contains[{i}]"),
            env,
            visible,
            found,
        );
    }
    for (i, needle) in expect.body_not_contains.iter_mut().enumerate() {
        fill_text(
            needle,
            &format!("{at}.expect.body_not_contains[{i}]"),
            env,
            visible,
            found,
        );
    }
    for (i, assertion) in expect.assertions.iter_mut().enumerate() {
        let path = format!("{at}.expect.assert[{i}]");
        for text in assertion.texts_mut() {
            fill_text(text, &path, env, visible, found);
        }
        if let Err(message) = assertion.compile() {
            found.error(&path, message);
        }
    }
    for j in &mut expect.json {
        let path = format!("{at}.expect.json.{}", j.expression);
        if let serde_json::Value::String(text) = &mut j.expected {
            fill_text(text, &path, env, visible, found);
        }
    }

    let mut routes = Vec::with_capacity(spec.routes.len());
    for (i, route) in spec.routes.iter().enumerate() {
        let route_spec = CheckSpec {
            method: route.method.clone(),
            path: route.path.clone(),
            headers: route.headers.clone(),
            body: route.body.clone(),
            routes: Vec::new(),
            // A route is one request of the population, judged once.
            probe: Probe::Exchange(crate::probe::exchange::Exchange {
                retries: 0,
                ..Default::default()
            }),
            ..spec.clone()
        };
        let route_at = format!("{at}.routes[{i}]");
        if let Some(check) = resolve_check(&route_spec, &route_at, target, env, visible, found) {
            routes.push((Arc::new(check), route.weight));
        }
    }
    let (url, display) = joined?;
    (found.errors.len() == errors_before).then(|| Check {
        name: spec.name.clone(),
        request_line: format!("{} {display}", spec.method),
        method: spec.method.clone(),
        url,
        headers,
        body,
        timeout: spec.timeout,
        probe: visible.probe(&spec.probe),
        routes,
        deferred: None,
        expect: Arc::new(expect),
    })
}

/// `Bearer abc…` → also `abc…`, and a `Basic` credential decoded, so that the token is
/// recognised when it is echoed on its own.
fn push_credential_token(value: &str, secrets: &mut Vec<String>) {
    let Some((scheme, token)) = value.split_once(' ') else {
        return;
    };
    let token = token.trim();
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return;
    }
    secrets.push(token.to_string());
    if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine;
        if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(token) {
            if let Ok(pair) = String::from_utf8(decoded) {
                if let Some((_, password)) = pair.split_once(':') {
                    secrets.push(password.to_string());
                }
                secrets.push(pair);
            }
        }
    }
}
