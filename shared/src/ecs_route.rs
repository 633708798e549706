//! The route to green of an ECS-native blue/green deployment, found from the service revision
//! the deployment rolls out: `DescribeServiceRevisions` → `loadBalancers[].advancedConfiguration`
//! (`testListenerRule`, or `productionListenerRule` after the shift: an ALB listener rule ARN or
//! an NLB listener ARN) → ELB `DescribeRules` (the rule's conditions: the header, host, paths and
//! methods a request needs to match it) → `DescribeListeners` / `DescribeLoadBalancers` (scheme,
//! DNS name, port).
//!
//! A test route that is the production rule, or the production listener's default rule, reaches
//! blue until the shift: it is refused. A rule that matches on what greenlight cannot produce
//! (regular expressions, query strings) is refused with the reason; checks whose paths or methods
//! the rule does not match would reach the listener's other rules, and are refused by
//! [`RuleRequest::admits`].

use std::sync::Arc;

use crate::aws::{call_until, LazyClient};
use crate::deadline::Deadline;
use crate::green::{listener_url, refused, Route};

/// What a request must carry to reach green through the found rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleRequest {
    /// Headers to send (`host` among them for a host-header condition).
    pub headers: Vec<(String, String)>,
    /// Path patterns (`*`, `?`) one of which a check's path must match; empty: any path.
    pub paths: Vec<String>,
    /// Methods a check must use; empty: any.
    pub methods: Vec<String>,
}

/// The route found: where to send requests, and what they must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRoute {
    /// `http(s)://DNS:PORT`.
    pub url: String,
    pub request: RuleRequest,
    /// The rule (or listener) it goes through, for messages.
    pub rule: String,
}

/// The ECS and ELB clients, built on first use.
pub struct EcsRoutes {
    ecs: LazyClient<aws_sdk_ecs::Client>,
    elb: LazyClient<aws_sdk_elasticloadbalancingv2::Client>,
}

impl EcsRoutes {
    pub fn from_env() -> Arc<Self> {
        Self::with(None)
    }

    pub fn new(sdk_config: &aws_config::SdkConfig) -> Arc<Self> {
        Self::with(Some(sdk_config))
    }

    fn with(config: Option<&aws_config::SdkConfig>) -> Arc<Self> {
        Arc::new(EcsRoutes {
            ecs: LazyClient::new(config, |c| crate::aws_client!(aws_sdk_ecs, c)),
            elb: LazyClient::new(config, |c| {
                crate::aws_client!(aws_sdk_elasticloadbalancingv2, c)
            }),
        })
    }

    /// The route to `revision_arn`'s green: its test rule before the shift, its production rule
    /// after it.
    pub async fn route(
        &self,
        revision_arn: &str,
        route: Route,
        deadline: Deadline,
    ) -> Result<FoundRoute, String> {
        let (ecs, elb) = (self.ecs.get().await, self.elb.get().await);
        let described = call_until("DescribeServiceRevisions", deadline, || {
            ecs.describe_service_revisions()
                .service_revision_arns(revision_arn)
                .send()
        })
        .await
        .map_err(|e| {
            refused(
                "DescribeServiceRevisions",
                "ecs:DescribeServiceRevisions",
                e,
            )
        })?;
        let revision = described.service_revisions().first().ok_or_else(|| {
            match described.failures().first() {
                Some(f) => format!(
                    "ECS does not describe service revision {revision_arn}: {}",
                    f.reason().unwrap_or("no reason given")
                ),
                None => format!("ECS does not describe service revision {revision_arn}"),
            }
        })?;
        let advanced = revision
            .load_balancers()
            .iter()
            .find_map(|lb| lb.advanced_configuration())
            .ok_or_else(|| {
                format!("service revision {revision_arn} has no load balancer with blue/green listener rules (loadBalancers[].advancedConfiguration): set GREENLIGHT_TEST_URL")
            })?;
        let production = advanced.production_listener_rule().unwrap_or_default();
        let rule = match route {
            Route::Production => production.to_string(),
            Route::Test => match advanced.test_listener_rule() {
                None | Some("") => {
                    return Err(format!("service revision {revision_arn} has no testListenerRule, so nothing reaches green before the shift: give the service a test listener rule, or set GREENLIGHT_TEST_URL"))
                }
                Some(test) if test == production => {
                    return Err(format!("service revision {revision_arn}'s test listener rule is its production rule ({test}), which reaches blue until the shift: give the service a test rule of its own"))
                }
                Some(test) => test.to_string(),
            },
        };
        if rule.is_empty() {
            return Err(format!(
                "service revision {revision_arn} has no productionListenerRule"
            ));
        }
        let (listener, request) = match listener_of_rule(&rule) {
            // An NLB (or a whole ALB listener): no conditions.
            None => (rule.clone(), RuleRequest::default()),
            Some(listener) => {
                let rules = call_until("DescribeRules", deadline, || {
                    elb.describe_rules().rule_arns(&rule).send()
                })
                .await
                .map_err(|e| refused("DescribeRules", "elasticloadbalancing:DescribeRules", e))?;
                let found = rules
                    .rules()
                    .first()
                    .ok_or_else(|| format!("the load balancer does not know rule {rule}"))?;
                let production_listener =
                    listener_of_rule(production).unwrap_or_else(|| production.to_string());
                let is_default = found.is_default() == Some(true) || found.conditions().is_empty();
                if route == Route::Test && is_default && listener == production_listener {
                    return Err(format!("the test listener rule {rule} is the default rule of the production listener, which reaches blue until the shift: give the test rule a condition (a header) or a listener of its own"));
                }
                (listener, rule_request(&rule, found.conditions())?)
            }
        };
        let url = listener_url(elb, &listener, deadline).await?;
        tracing::info!(revision = revision_arn, route = ?route, rule, url, headers = ?request.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(), "found the route to green");
        Ok(FoundRoute { url, request, rule })
    }
}

/// `arn:…:listener-rule/app/LB/ID/LISTENER/RULE` → `arn:…:listener/app/LB/ID/LISTENER`; `None`
/// for anything else (an NLB listener ARN is a route by itself).
pub fn listener_of_rule(arn: &str) -> Option<String> {
    let (head, path) = arn.split_once(":listener-rule/")?;
    let (listener, rule) = path.rsplit_once('/')?;
    (!rule.is_empty() && listener.split('/').count() == 4)
        .then(|| format!("{head}:listener/{listener}"))
}

/// What a request needs to match the rule's conditions.
fn rule_request(
    rule: &str,
    conditions: &[aws_sdk_elasticloadbalancingv2::types::RuleCondition],
) -> Result<RuleRequest, String> {
    let mut request = RuleRequest::default();
    let cannot = |what: &str| {
        Err(format!(
            "the listener rule {rule} matches {what}, which greenlight cannot produce: set GREENLIGHT_TEST_URL, and the plan's headers"
        ))
    };
    for condition in conditions {
        let field = condition.field().unwrap_or_default();
        let has_regex = !condition.regex_values().is_empty()
            || condition
                .host_header_config()
                .is_some_and(|c| !c.regex_values().is_empty())
            || condition
                .path_pattern_config()
                .is_some_and(|c| !c.regex_values().is_empty())
            || condition
                .http_header_config()
                .is_some_and(|c| !c.regex_values().is_empty());
        if has_regex {
            return cannot(&format!("{field} by regular expression"));
        }
        match field {
            "http-header" => {
                let config = condition.http_header_config();
                let name = config
                    .and_then(|c| c.http_header_name())
                    .unwrap_or_default();
                let value = config
                    .map(|c| c.values())
                    .and_then(pick_value)
                    .ok_or_else(|| {
                        format!("the listener rule {rule}'s header condition names no value")
                    })?;
                if name.is_empty() {
                    return Err(format!(
                        "the listener rule {rule}'s header condition names no header"
                    ));
                }
                request.headers.push((name.to_ascii_lowercase(), value));
            }
            "host-header" => {
                let values = condition
                    .host_header_config()
                    .map(|c| c.values())
                    .filter(|v| !v.is_empty())
                    .unwrap_or(condition.values());
                let host = pick_value(values).ok_or_else(|| {
                    format!("the listener rule {rule}'s host condition names no host")
                })?;
                request.headers.push(("host".into(), host));
            }
            "path-pattern" => {
                let values = condition
                    .path_pattern_config()
                    .map(|c| c.values())
                    .filter(|v| !v.is_empty())
                    .unwrap_or(condition.values());
                request.paths.extend(values.iter().cloned());
            }
            "http-request-method" => {
                request.methods.extend(
                    condition
                        .http_request_method_config()
                        .map(|c| c.values())
                        .unwrap_or_default()
                        .iter()
                        .cloned(),
                );
            }
            "source-ip" => {
                tracing::warn!(rule, "the test listener rule matches source addresses: the function's address must be among them");
            }
            "query-string" => return cannot("query strings"),
            other => return cannot(&format!("a condition greenlight does not know ({other:?})")),
        }
    }
    Ok(request)
}

/// A literal value from a condition's values (`*` and `?` are wildcards in ALB conditions): the
/// first without one, else the first with each `*` made `greenlight` and each `?` made `x`.
fn pick_value(values: &[String]) -> Option<String> {
    values
        .iter()
        .find(|v| !v.contains(['*', '?']))
        .cloned()
        .or_else(|| {
            values
                .first()
                .map(|v| v.replace('*', "greenlight").replace('?', "x"))
        })
}

impl RuleRequest {
    /// Why a check asking `method path` would not reach green through this rule (`None`: it
    /// would).
    pub fn admits(&self, method: &str, path: &str) -> Option<String> {
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m == method) {
            return Some(format!(
                "the test rule matches only {} requests",
                self.methods.join(", ")
            ));
        }
        if !self.paths.is_empty() && !self.paths.iter().any(|p| glob_matches(p, path)) {
            return Some(format!(
                "the test rule matches only the paths {}",
                self.paths.join(", ")
            ));
        }
        None
    }
}

/// ALB's path patterns: `*` any run of characters, `?` one, case-sensitive. Linear in the input
/// for each pattern position (no backtracking blow-up).
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_arn_names_its_listener() {
        assert_eq!(
            listener_of_rule("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee").as_deref(),
            Some("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2")
        );
        assert_eq!(
            listener_of_rule(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/net/shop/1/2"
            ),
            None
        );
        assert_eq!(
            listener_of_rule("arn:aws:elasticloadbalancing:x:listener-rule/app/shop/"),
            None
        );
    }

    #[test]
    fn path_patterns_match_as_the_load_balancer_does() {
        assert!(glob_matches("/api/*", "/api/version"));
        assert!(glob_matches("/api/*", "/api/"));
        assert!(!glob_matches("/api/*", "/health"));
        assert!(glob_matches("/v?/health", "/v2/health"));
        assert!(!glob_matches("/v?/health", "/v10/health"));
        assert!(glob_matches("*", ""));
        // A `*` in the path is no reason to stop being a wildcard (found by the route-rule fuzz target).
        assert!(glob_matches("/a*", "/a*/b"));
        assert!(!glob_matches("/API/*", "/api/x"), "case-sensitive");
        // A hostile pattern stays fast.
        let pattern = "*a".repeat(60);
        assert!(!glob_matches(&pattern, &"a".repeat(59)));
        assert!(glob_matches(&pattern, &"a".repeat(2000)));
    }

    #[test]
    fn wildcard_values_are_made_literal() {
        assert_eq!(
            pick_value(&["*.example.com".into(), "green.example.com".into()]).unwrap(),
            "green.example.com"
        );
        assert_eq!(
            pick_value(&["*.example.com".into()]).unwrap(),
            "greenlight.example.com"
        );
        assert_eq!(pick_value(&["v?".into()]).unwrap(), "vx");
        assert_eq!(pick_value(&[]), None);
    }

    #[test]
    fn checks_outside_the_rule_are_named() {
        let request = RuleRequest {
            headers: vec![],
            paths: vec!["/api/*".into()],
            methods: vec!["GET".into(), "HEAD".into()],
        };
        assert_eq!(request.admits("GET", "/api/version"), None);
        assert!(request
            .admits("GET", "/health")
            .unwrap()
            .contains("only the paths /api/*"));
        assert!(request
            .admits("POST", "/api/orders")
            .unwrap()
            .contains("only GET, HEAD requests"));
    }
}
