//! `target_health:` — before production traffic moves (`BeforeAllowTraffic`, ECS
//! `PRODUCTION_TRAFFIC_SHIFT`), ask the load balancer itself: does green's target group have at
//! least `min_healthy` healthy targets, and does the production listener still forward only to
//! target groups with a healthy target? Users report production pointed at a target group with
//! zero healthy targets, and CodeDeploy's all-at-once shift does not wait for green's health checks.
//!
//! ```yaml
//! - name: green is healthy behind the load balancer
//!   target_health: {target_group: green, min_healthy: 2, production_listener: true}
//! ```

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde_json::Value;

use crate::deadline::Deadline;
use crate::expect::Failure;
use crate::green::FindGreen;
use crate::plan::problems::Problems;
use crate::plan::vars::Template;
use crate::plan::Check;
use crate::probe::metric::Filled;
use crate::verdict::{CheckReport, Outcome};

/// Targets named in a failure (the rest are counted).
const NAMED_TARGETS: usize = 5;

/// What a `target_health` check asks the load balancer.
#[derive(Debug, Clone)]
pub struct TargetHealth {
    pub target_group: TargetGroupRef,
    pub min_healthy: u32,
    /// Also check what the production listener forwards to.
    pub production_listener: Option<ListenerRef>,
}

#[derive(Debug, Clone)]
pub enum TargetGroupRef {
    /// Green's, found from the CodeDeploy deployment.
    Green,
    Arn(Filled),
}

#[derive(Debug, Clone)]
pub enum ListenerRef {
    /// The deployment group's production listener.
    OfTheDeployment,
    Arn(Filled),
}

#[derive(Debug, serde::Deserialize)]
struct TargetHealthDocument {
    #[serde(default)]
    target_group: Option<String>,
    #[serde(default)]
    min_healthy: Option<u32>,
    #[serde(default)]
    production_listener: Option<Value>,
}

/// Reads `target_health:` at `at`.
pub(crate) fn validate(value: Value, at: &str, p: &mut Problems) -> Option<TargetHealth> {
    let document: TargetHealthDocument = p.read(value, at)?;
    let errors_before = p.errors.len();
    let target_group = match document.target_group.as_deref() {
        None => {
            p.error(
                format!("{at}.target_group"),
                "missing: `green` (found from the CodeDeploy deployment) or a target group ARN",
            );
            None
        }
        Some("green") => Some(TargetGroupRef::Green),
        Some(arn) => {
            arn_ref(arn, ":targetgroup/", &format!("{at}.target_group"), p).map(TargetGroupRef::Arn)
        }
    };
    let min_healthy = document.min_healthy.unwrap_or(1);
    if !(1..=1000).contains(&min_healthy) {
        p.error(
            format!("{at}.min_healthy"),
            "between 1 and 1000: a target group with no healthy target is what this check is for",
        );
    }
    let listener_at = format!("{at}.production_listener");
    let production_listener = match document.production_listener {
        None | Some(Value::Bool(false)) => None,
        Some(Value::Bool(true)) => Some(ListenerRef::OfTheDeployment),
        Some(Value::String(arn)) => {
            arn_ref(&arn, ":listener/", &listener_at, p).map(ListenerRef::Arn)
        }
        Some(other) => {
            p.error(
                &listener_at,
                format!("`true` (the deployment group's production listener) or a listener ARN, got {other}"),
            );
            None
        }
    };
    if p.errors.len() > errors_before {
        return None;
    }
    Some(TargetHealth {
        target_group: target_group?,
        min_healthy,
        production_listener,
    })
}

/// An ARN (with `${VAR}`s allowed) whose literal part, when it has one, is of the right kind.
fn arn_ref(text: &str, kind: &str, at: &str, p: &mut Problems) -> Option<Filled> {
    let template = p.template(at, text)?;
    if let Some(literal) = template.literal() {
        if !(literal.starts_with("arn:") && literal.contains(kind)) {
            p.error(
                at,
                format!(
                    "\"{literal}\" is not an Elastic Load Balancing{} ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT{kind}…)",
                    if kind.contains("listener") { " listener" } else { " target group" }
                ),
            );
            return None;
        }
    }
    Some(Filled::new(template))
}

impl TargetHealth {
    pub fn describe(&self) -> String {
        let listener = match &self.production_listener {
            None => String::new(),
            Some(_) => ", and that the production listener forwards only to target groups with a healthy target".into(),
        };
        format!(
            "asks the load balancer that {} has at least {} healthy target{}{listener}",
            self.target_group_line(),
            self.min_healthy,
            if self.min_healthy == 1 { "" } else { "s" }
        )
    }

    /// The target group as written.
    pub fn target_group_line(&self) -> String {
        match &self.target_group {
            TargetGroupRef::Green => "green's target group".into(),
            TargetGroupRef::Arn(arn) => arn.template.written().to_string(),
        }
    }

    pub fn uses_green(&self) -> bool {
        matches!(self.target_group, TargetGroupRef::Green)
            || matches!(self.production_listener, Some(ListenerRef::OfTheDeployment))
    }

    pub(crate) fn fill_in(&mut self, fill: &mut dyn FnMut(&Template, &str) -> Option<String>) {
        if let TargetGroupRef::Arn(arn) = &mut self.target_group {
            arn.value = fill(&arn.template, "target_group");
        }
        if let Some(ListenerRef::Arn(arn)) = &mut self.production_listener {
            arn.value = fill(&arn.template, "production_listener");
        }
    }
}

/// One target and its state, as `DescribeTargetHealth` tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetState {
    /// `10.0.1.7:8080`.
    pub target: String,
    /// `healthy`, `unhealthy`, `initial`, `draining`, `unused`, `unavailable`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An answer from the load balancer, by a deadline.
pub type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// A target group's ARN and the weight a listener forwards to it with.
pub type Forward = (String, i32);

/// The load balancer's answers: target health and a listener's forward targets.
pub trait LoadBalancers: Send + Sync {
    fn target_health<'a>(
        &'a self,
        target_group_arn: &'a str,
        deadline: Deadline,
    ) -> Answer<'a, Vec<TargetState>>;

    /// The target groups the listener's default action forwards to, with their weights.
    fn forwards<'a>(
        &'a self,
        listener_arn: &'a str,
        deadline: Deadline,
    ) -> Answer<'a, Vec<Forward>>;
}

/// Elastic Load Balancing v2 through the SDK, its client built on first use.
#[derive(Debug)]
pub struct ElbLoadBalancers {
    client: crate::aws::LazyClient<aws_sdk_elasticloadbalancingv2::Client>,
}

impl ElbLoadBalancers {
    pub fn from_env() -> Self {
        Self::with(None)
    }

    pub fn new(sdk_config: &aws_config::SdkConfig) -> Self {
        Self::with(Some(sdk_config))
    }

    fn with(config: Option<&aws_config::SdkConfig>) -> Self {
        ElbLoadBalancers {
            client: crate::aws::LazyClient::new(config, |c| {
                crate::aws_client!(aws_sdk_elasticloadbalancingv2, c)
            }),
        }
    }

    async fn client(&self) -> &aws_sdk_elasticloadbalancingv2::Client {
        self.client.get().await
    }
}

fn refused(call: &str, e: crate::aws::AwsError) -> String {
    if e.is_access_denied() {
        format!("{call} was refused ({e}): the function's role needs elasticloadbalancing:{call}")
    } else {
        format!("{call}: {e}")
    }
}

impl LoadBalancers for ElbLoadBalancers {
    fn target_health<'a>(
        &'a self,
        target_group_arn: &'a str,
        deadline: Deadline,
    ) -> Answer<'a, Vec<TargetState>> {
        Box::pin(async move {
            let client = self.client().await;
            let answer = crate::aws::call_until("DescribeTargetHealth", deadline, || {
                client
                    .describe_target_health()
                    .target_group_arn(target_group_arn)
                    .send()
            })
            .await
            .map_err(|e| refused("DescribeTargetHealth", e))?;
            Ok(answer
                .target_health_descriptions()
                .iter()
                .map(|d| {
                    let target = d.target();
                    let id = target.and_then(|t| t.id()).unwrap_or("?");
                    let health = d.target_health();
                    TargetState {
                        target: match target.and_then(|t| t.port()) {
                            Some(port) => format!("{id}:{port}"),
                            None => id.to_string(),
                        },
                        state: health
                            .and_then(|h| h.state())
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_else(|| "unknown".into()),
                        reason: health.and_then(|h| {
                            let reason = h.reason().map(|r| r.as_str().to_string());
                            match (reason, h.description()) {
                                (Some(r), Some(d)) => Some(format!("{r}: {d}")),
                                (r, d) => r.or(d.map(str::to_string)),
                            }
                        }),
                    }
                })
                .collect())
        })
    }

    fn forwards<'a>(
        &'a self,
        listener_arn: &'a str,
        deadline: Deadline,
    ) -> Answer<'a, Vec<Forward>> {
        Box::pin(async move {
            let client = self.client().await;
            let answer = crate::aws::call_until("DescribeListeners", deadline, || {
                client
                    .describe_listeners()
                    .listener_arns(listener_arn)
                    .send()
            })
            .await
            .map_err(|e| refused("DescribeListeners", e))?;
            let mut forwards = Vec::new();
            for action in answer.listeners().iter().flat_map(|l| l.default_actions()) {
                let groups = action
                    .forward_config()
                    .map(|f| f.target_groups())
                    .unwrap_or_default();
                if groups.is_empty() {
                    // The plain form: one target group, all of the traffic.
                    if let Some(arn) = action.target_group_arn() {
                        forwards.push((arn.to_string(), 1));
                    }
                }
                for group in groups {
                    if let Some(arn) = group.target_group_arn() {
                        forwards.push((arn.to_string(), group.weight().unwrap_or(1)));
                    }
                }
            }
            Ok(forwards)
        })
    }
}

/// What a target-health check saw.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TargetHealthMeasurement {
    pub target_group: String,
    pub healthy: u64,
    pub targets: Vec<TargetState>,
    /// The production listener's forward targets: target group, weight, healthy, total.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub production_listener: Vec<ListenerTarget>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ListenerTarget {
    pub target_group: String,
    pub weight: i32,
    pub healthy: u64,
    pub total: u64,
}

impl TargetHealthMeasurement {
    pub fn line(&self) -> String {
        format!("{} of {} targets healthy", self.healthy, self.targets.len())
    }
}

/// The short name of a target group ARN, for messages: `targetgroup/NAME/ID`.
fn short(arn: &str) -> String {
    crate::green::target_group_of_arn(arn).unwrap_or_else(|| arn.to_string())
}

fn healthy(targets: &[TargetState]) -> u64 {
    targets.iter().filter(|t| t.state == "healthy").count() as u64
}

/// Runs a target-health check.
pub async fn run(
    load_balancers: Option<&dyn LoadBalancers>,
    green: Option<&dyn FindGreen>,
    check: &Check,
    spec: &TargetHealth,
    deadline: Deadline,
) -> CheckReport {
    let started = tokio::time::Instant::now();
    let report = |outcome: Outcome, measured: crate::probe::Measured| CheckReport {
        name: check.name.clone(),
        request: check.request_line.clone(),
        outcome,
        attempts: 1,
        measured,
        elapsed: started.elapsed(),
        ready: false,
        captured: Vec::new(),
    };
    let errored = |cause: String| {
        report(
            Outcome::Errored { cause },
            crate::probe::Measured::nothing(),
        )
    };
    let Some(load_balancers) = load_balancers else {
        return errored("target_health checks ask the load balancer, and this run has no Elastic Load Balancing client".into());
    };
    // Green's target group and production listener, when the check names them so.
    let found = match (spec.uses_green(), green) {
        (false, _) => None,
        (true, None) => {
            return errored("green's target group and production listener are found from a CodeDeploy deployment, and this run has none: name them by ARN".into())
        }
        (true, Some(green)) => match green.find(deadline).await {
            Ok(found) => Some(found),
            Err(cause) => {
                return errored(format!("green's target group could not be found: {cause}"))
            }
        },
    };
    let of_green = |pick: fn(&crate::green::GreenTargetGroup) -> &String| {
        found.as_ref().map(|f| pick(f).clone()).unwrap_or_default()
    };
    let target_group_arn = match &spec.target_group {
        TargetGroupRef::Arn(arn) => arn.value().to_string(),
        TargetGroupRef::Green => of_green(|f| &f.target_group_arn),
    };
    let targets = match load_balancers
        .target_health(&target_group_arn, deadline)
        .await
    {
        Ok(targets) => targets,
        Err(cause) => return errored(cause),
    };
    let mut failures = Vec::new();
    let healthy_count = healthy(&targets);
    if healthy_count < u64::from(spec.min_healthy) {
        let not_healthy: Vec<String> = targets
            .iter()
            .filter(|t| t.state != "healthy")
            .take(NAMED_TARGETS)
            .map(|t| match &t.reason {
                Some(reason) => format!("{} {} ({reason})", t.target, t.state),
                None => format!("{} {}", t.target, t.state),
            })
            .collect();
        failures.push(Failure {
            expectation: format!("healthy targets in {}", spec.target_group_line()),
            expected: format!("at least {}", spec.min_healthy),
            measured: if targets.is_empty() {
                format!("no target registered in {}", short(&target_group_arn))
            } else {
                format!(
                    "{healthy_count} of {} healthy in {}: {}",
                    targets.len(),
                    short(&target_group_arn),
                    not_healthy.join("; ")
                )
            },
        });
    }
    let mut listener_targets = Vec::new();
    if let Some(listener) = &spec.production_listener {
        let listener_arn = match listener {
            ListenerRef::Arn(arn) => arn.value().to_string(),
            ListenerRef::OfTheDeployment => of_green(|f| &f.production_listener_arn),
        };
        let forwards = match load_balancers.forwards(&listener_arn, deadline).await {
            Ok(forwards) => forwards,
            Err(cause) => return errored(cause),
        };
        let mut bad = Vec::new();
        for (arn, weight) in forwards.iter().filter(|(_, w)| *w > 0) {
            let targets = match load_balancers.target_health(arn, deadline).await {
                Ok(targets) => targets,
                Err(cause) => return errored(cause),
            };
            let healthy = healthy(&targets);
            if healthy == 0 {
                bad.push(format!(
                    "{} (weight {weight}): 0 of {} healthy",
                    short(arn),
                    targets.len()
                ));
            }
            listener_targets.push(ListenerTarget {
                target_group: short(arn),
                weight: *weight,
                healthy,
                total: targets.len() as u64,
            });
        }
        if listener_targets.is_empty() {
            bad.push("it forwards to no target group with a weight above 0".into());
        }
        if !bad.is_empty() {
            failures.push(Failure {
                expectation: "production listener".into(),
                expected: "forwards only to target groups with a healthy target".into(),
                measured: bad.join("; "),
            });
        }
    }
    let measured = crate::probe::Measured::TargetHealth {
        target_health: Box::new(TargetHealthMeasurement {
            target_group: short(&target_group_arn),
            healthy: healthy_count,
            targets: targets.into_iter().take(50).collect(),
            production_listener: listener_targets,
        }),
    };
    if failures.is_empty() {
        report(Outcome::Passed, measured)
    } else {
        report(Outcome::Failed { failures }, measured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: Value) -> Result<TargetHealth, Vec<String>> {
        let mut p = Problems::default();
        let spec = validate(value, "checks[0].target_health", &mut p);
        if p.errors.is_empty() {
            Ok(spec.unwrap())
        } else {
            Err(p.errors.iter().map(|e| e.to_string()).collect())
        }
    }

    #[test]
    fn green_or_an_arn_and_what_is_wrong_is_named() {
        let spec =
            read(json!({"target_group": "green", "min_healthy": 2, "production_listener": true}))
                .unwrap();
        assert!(spec.uses_green());
        assert_eq!(
            spec.describe(),
            "asks the load balancer that green's target group has at least 2 healthy targets, and that the production listener forwards only to target groups with a healthy target"
        );
        let spec = read(json!({"target_group": "${GREEN_TG_ARN}"})).unwrap();
        assert!(!spec.uses_green());
        let errors = read(json!({"target_group": "shop-green", "min_healthy": 0, "production_listener": "arn:aws:elasticloadbalancing:x:1:targetgroup/a/b"})).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].contains("\"shop-green\" is not an Elastic Load Balancing target group ARN"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("checks[0].target_health.min_healthy: between 1 and 1000"),
            "{errors:?}"
        );
        assert!(
            errors[2].contains("is not an Elastic Load Balancing listener ARN"),
            "{errors:?}"
        );
        assert!(read(json!({})).unwrap_err()[0]
            .starts_with("checks[0].target_health.target_group: missing"));
    }
}
