//! Where green is: the target group green's tasks are registered in, and the load balancer in
//! front of it, as CloudWatch names them in the `AWS/ApplicationELB` dimensions
//! (`TargetGroup=targetgroup/NAME/ID`, `LoadBalancer=app/NAME/ID`), found from a CodeDeploy
//! deployment, so a plan's metric checks can say `target_group: green` instead of a value that
//! changes with every deployment (CodeDeploy alternates the two target groups).
//!
//! The path, in documented API fields only: `GetDeployment` (application and group) →
//! `GetDeploymentGroup` (the production listener, whose ARN names the load balancer) →
//! `ListDeploymentTargets` / `GetDeploymentTarget` (the task set labelled `Green`) → ELB
//! `DescribeTargetGroups` (that task set's target group, by name: its ARN, with its id). Found
//! once per invocation; every call is retried until the verification deadline.
//!
//! The route to green, when no URL is configured: the group's test listener (production after
//! the shift) → ELB `DescribeListeners` (protocol, port, load balancer) → `DescribeLoadBalancers`
//! (its DNS name).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::aws::{call_until, LazyClient};
use crate::deadline::Deadline;

/// Green's target group and its load balancer, as CloudWatch dimension values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GreenTargetGroup {
    /// `targetgroup/NAME/ID`.
    pub target_group: String,
    /// `app/NAME/ID`.
    pub load_balancer: String,
    /// The target group's ARN (for `DescribeTargetHealth`).
    pub target_group_arn: String,
    /// The deployment group's production listener.
    pub production_listener_arn: String,
}

/// Finds green's target group (or says why it cannot).
pub trait FindGreen: Send + Sync {
    fn find(
        &self,
        deadline: Deadline,
    ) -> Pin<Box<dyn Future<Output = Result<GreenTargetGroup, String>> + Send + '_>>;
}

/// The CodeDeploy and ELB clients discovery uses: built on first use, once per process.
#[derive(Debug)]
pub struct DeploymentClients {
    codedeploy: LazyClient<aws_sdk_codedeploy::Client>,
    elb: LazyClient<aws_sdk_elasticloadbalancingv2::Client>,
}

/// The clients, once built.
struct Clients<'a> {
    codedeploy: &'a aws_sdk_codedeploy::Client,
    elb: &'a aws_sdk_elasticloadbalancingv2::Client,
}

impl DeploymentClients {
    /// From the process's AWS configuration, loaded when first needed.
    pub fn from_env() -> Self {
        Self::with(None)
    }

    pub fn new(sdk_config: &aws_config::SdkConfig) -> Self {
        Self::with(Some(sdk_config))
    }

    fn with(config: Option<&aws_config::SdkConfig>) -> Self {
        DeploymentClients {
            codedeploy: LazyClient::new(config, crate::codedeploy::client),
            elb: LazyClient::new(config, |c| {
                crate::aws_client!(aws_sdk_elasticloadbalancingv2, c)
            }),
        }
    }

    async fn get(&self) -> Clients<'_> {
        Clients {
            codedeploy: self.codedeploy.get().await,
            elb: self.elb.get().await,
        }
    }
}

/// What a deployment's group says: its listeners.
#[derive(Debug, Clone)]
struct GroupFacts {
    application: String,
    group: String,
    production_listener: String,
    test_listener: Option<String>,
}

/// Which listener a hook verifies through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The test listener: green before the production shift.
    Test,
    /// The production listener: green after the shift.
    Production,
}

/// Green of one CodeDeploy deployment (its target group, the routes to it), each found at most
/// once.
pub struct CodeDeployGreen {
    clients: Arc<DeploymentClients>,
    deployment_id: String,
    group: tokio::sync::OnceCell<Result<GroupFacts, String>>,
    found: tokio::sync::OnceCell<Result<GreenTargetGroup, String>>,
}

pub(crate) fn refused(call: &str, permission: &str, e: crate::aws::AwsError) -> String {
    if e.is_access_denied() {
        format!("{call} was refused ({e}): the function's role needs {permission}")
    } else {
        format!("{call}: {e}")
    }
}

impl CodeDeployGreen {
    pub fn new(clients: Arc<DeploymentClients>, deployment_id: &str) -> Self {
        CodeDeployGreen {
            clients,
            deployment_id: deployment_id.to_string(),
            group: tokio::sync::OnceCell::new(),
            found: tokio::sync::OnceCell::new(),
        }
    }

    /// The deployment's `APPLICATION/GROUP` (`GetDeployment` only).
    pub async fn service(&self, deadline: Deadline) -> Result<String, String> {
        let codedeploy = &self.clients.get().await.codedeploy;
        let id = self.deployment_id.as_str();
        let deployment = call_until("GetDeployment", deadline, || {
            codedeploy.get_deployment().deployment_id(id).send()
        })
        .await
        .map_err(|e| refused("GetDeployment", "codedeploy:GetDeployment", e))?;
        match deployment
            .deployment_info()
            .map(|info| (info.application_name(), info.deployment_group_name()))
        {
            Some((Some(application), Some(group))) => Ok(format!("{application}/{group}")),
            _ => Err(format!(
                "deployment {id} names no application and deployment group"
            )),
        }
    }

    async fn group(&self, deadline: Deadline) -> Result<GroupFacts, String> {
        self.group
            .get_or_init(|| self.look_up_group(deadline))
            .await
            .clone()
    }

    async fn look_up_group(&self, deadline: Deadline) -> Result<GroupFacts, String> {
        let codedeploy = &self.clients.get().await.codedeploy;
        let id = self.deployment_id.as_str();
        let deployment = call_until("GetDeployment", deadline, || {
            codedeploy.get_deployment().deployment_id(id).send()
        })
        .await
        .map_err(|e| refused("GetDeployment", "codedeploy:GetDeployment", e))?;
        let info = deployment
            .deployment_info()
            .ok_or_else(|| format!("GetDeployment told nothing of deployment {id}"))?;
        let (Some(application), Some(group)) =
            (info.application_name(), info.deployment_group_name())
        else {
            return Err(format!(
                "deployment {id} names no application and deployment group"
            ));
        };
        let group_info = call_until("GetDeploymentGroup", deadline, || {
            codedeploy
                .get_deployment_group()
                .application_name(application)
                .deployment_group_name(group)
                .send()
        })
        .await
        .map_err(|e| refused("GetDeploymentGroup", "codedeploy:GetDeploymentGroup", e))?;
        let group_info = group_info
            .deployment_group_info()
            .ok_or_else(|| format!("GetDeploymentGroup told nothing of {application}/{group}"))?;
        let pair = group_info
            .load_balancer_info()
            .and_then(|lb| lb.target_group_pair_info_list().first());
        let listener = |route: Option<&aws_sdk_codedeploy::types::TrafficRoute>| {
            route
                .and_then(|r| r.listener_arns().first())
                .map(String::to_string)
        };
        let production_listener = listener(pair.and_then(|p| p.prod_traffic_route()))
            .ok_or_else(|| {
                format!("deployment group {application}/{group} has no target group pair with a production listener (an ECS blue/green group behind a load balancer has one)")
            })?;
        Ok(GroupFacts {
            application: application.to_string(),
            group: group.to_string(),
            production_listener,
            test_listener: listener(pair.and_then(|p| p.test_traffic_route())),
        })
    }

    async fn look_up(&self, deadline: Deadline) -> Result<GreenTargetGroup, String> {
        let facts = self.group(deadline).await?;
        let Clients {
            codedeploy, elb, ..
        } = self.clients.get().await;
        let id = self.deployment_id.as_str();
        let listener = &facts.production_listener;
        let load_balancer = load_balancer_of_listener(listener).ok_or_else(|| {
            format!("the production listener {listener} is not an Application Load Balancer's (its metrics are not in AWS/ApplicationELB)")
        })?;
        let targets = call_until("ListDeploymentTargets", deadline, || {
            codedeploy
                .list_deployment_targets()
                .deployment_id(id)
                .send()
        })
        .await
        .map_err(|e| {
            refused(
                "ListDeploymentTargets",
                "codedeploy:ListDeploymentTargets",
                e,
            )
        })?;
        let target_id = targets
            .target_ids()
            .first()
            .ok_or_else(|| format!("deployment {id} has no targets yet"))?;
        let target = call_until("GetDeploymentTarget", deadline, || {
            codedeploy
                .get_deployment_target()
                .deployment_id(id)
                .target_id(target_id)
                .send()
        })
        .await
        .map_err(|e| refused("GetDeploymentTarget", "codedeploy:GetDeploymentTarget", e))?;
        let green_target_group = target
            .deployment_target()
            .and_then(|t| t.ecs_target())
            .map(|t| t.task_sets_info())
            .unwrap_or_default()
            .iter()
            .find(|set| {
                set.task_set_label()
                    .is_some_and(|label| label.as_str().eq_ignore_ascii_case("green"))
            })
            .ok_or_else(|| format!("deployment {id} has no task set labelled Green yet"))?
            .target_group()
            .and_then(|group| group.name())
            .ok_or_else(|| format!("deployment {id}'s Green task set names no target group"))?;
        // The target group's ARN (and so its id) by its name; ELB's client is linked anyway, ECS's
        // would add its large service shapes to every hook's package.
        let groups = call_until("DescribeTargetGroups", deadline, || {
            elb.describe_target_groups()
                .names(green_target_group)
                .send()
        })
        .await
        .map_err(|e| {
            refused(
                "DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetGroups",
                e,
            )
        })?;
        let target_group_arn = groups
            .target_groups()
            .first()
            .and_then(|group| group.target_group_arn())
            .ok_or_else(|| {
                format!("the load balancer does not know target group {green_target_group}")
            })?;
        let target_group = target_group_of_arn(target_group_arn)
            .ok_or_else(|| format!("{target_group_arn} is not a target group ARN"))?;
        tracing::info!(
            deployment_id = id,
            target_group,
            load_balancer,
            "found green's target group"
        );
        Ok(GreenTargetGroup {
            target_group,
            load_balancer,
            target_group_arn: target_group_arn.to_string(),
            production_listener_arn: listener.clone(),
        })
    }

    /// The URL a hook reaches green through: the deployment group's test listener (or, after the
    /// shift, its production listener), as the load balancer names it: `http://DNS:PORT`. A test
    /// route that is the production listener is refused: before the shift it reaches blue.
    pub async fn route(&self, route: Route, deadline: Deadline) -> Result<String, String> {
        let facts = self.group(deadline).await?;
        let (application, group) = (&facts.application, &facts.group);
        let listener = match route {
            Route::Production => facts.production_listener.clone(),
            Route::Test => match &facts.test_listener {
                None => return Err(format!("deployment group {application}/{group} has no test listener (testTrafficRoute), so nothing reaches green before the shift: add one to the group, or set GREENLIGHT_TEST_URL")),
                Some(test) if *test == facts.production_listener => return Err(format!("deployment group {application}/{group}'s test listener is its production listener ({test}), which reaches blue until the shift: give the group a test listener of its own")),
                Some(test) => test.clone(),
            },
        };
        let elb = &self.clients.get().await.elb;
        let url = listener_url(elb, &listener, deadline).await?;
        tracing::info!(
            deployment_id = self.deployment_id,
            route = ?route,
            listener,
            url,
            "found the route to green"
        );
        Ok(url)
    }
}

/// `http(s)://DNS:PORT` of a listener, as the load balancer names it (`DescribeListeners`,
/// `DescribeLoadBalancers`); a listener that is not HTTP or HTTPS is refused.
pub(crate) async fn listener_url(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    listener: &str,
    deadline: Deadline,
) -> Result<String, String> {
    let listeners = call_until("DescribeListeners", deadline, || {
        elb.describe_listeners().listener_arns(listener).send()
    })
    .await
    .map_err(|e| {
        refused(
            "DescribeListeners",
            "elasticloadbalancing:DescribeListeners",
            e,
        )
    })?;
    let found = listeners
        .listeners()
        .first()
        .ok_or_else(|| format!("the load balancer does not know listener {listener}"))?;
    let scheme = match found.protocol().map(|p| p.as_str()) {
            Some("HTTPS") => "https",
            Some("HTTP") => "http",
            other => {
                return Err(format!(
                    "listener {listener} speaks {}, not HTTP or HTTPS: set GREENLIGHT_TEST_URL to reach green",
                    other.unwrap_or("an unknown protocol")
                ))
            }
        };
    let port = found
        .port()
        .ok_or_else(|| format!("listener {listener} has no port"))?;
    let balancer_arn = found
        .load_balancer_arn()
        .ok_or_else(|| format!("listener {listener} names no load balancer"))?;
    let balancers = call_until("DescribeLoadBalancers", deadline, || {
        elb.describe_load_balancers()
            .load_balancer_arns(balancer_arn)
            .send()
    })
    .await
    .map_err(|e| {
        refused(
            "DescribeLoadBalancers",
            "elasticloadbalancing:DescribeLoadBalancers",
            e,
        )
    })?;
    let dns = balancers
        .load_balancers()
        .first()
        .and_then(|b| b.dns_name())
        .ok_or_else(|| format!("load balancer {balancer_arn} has no DNS name"))?;
    Ok(format!("{scheme}://{dns}:{port}"))
}

impl FindGreen for CodeDeployGreen {
    fn find(
        &self,
        deadline: Deadline,
    ) -> Pin<Box<dyn Future<Output = Result<GreenTargetGroup, String>> + Send + '_>> {
        Box::pin(async move {
            self.found
                .get_or_init(|| self.look_up(deadline))
                .await
                .clone()
        })
    }
}

/// `spec`'s plan for `stage` through the found `url` (named `what` in messages): its own checks
/// for the stage, relative paths joined to the URL.
pub(crate) fn resolve_at(
    spec: &crate::plan::PlanSpec,
    stage: &str,
    route: Route,
    url: &str,
    what: &str,
    env: &crate::env::Env,
) -> Result<crate::plan::Plan, String> {
    let setting = crate::plan::Setting::new(url, what);
    spec.for_stage(
        stage,
        route == Route::Production,
        Some(&setting),
        Some(&setting),
        env,
    )
    .unwrap_or_else(|| {
        Err(crate::plan::PlanError::Source(format!(
            "the plan has no checks for {stage}"
        )))
    })
    .map_err(|e| e.to_string())
}

/// The plan resolved for the last route found (a function mostly serves one route), resolved
/// again when the route changes.
pub(crate) struct LastResolved<K> {
    last: std::sync::Mutex<Option<(K, Arc<crate::plan::Plan>)>>,
}

impl<K: PartialEq + Clone> LastResolved<K> {
    pub(crate) fn new() -> Self {
        LastResolved {
            last: std::sync::Mutex::new(None),
        }
    }

    /// The plan for `route`: the last one when the route is the same, else `resolve`'s.
    pub(crate) fn get_or_resolve(
        &self,
        route: &K,
        resolve: impl FnOnce() -> Result<crate::plan::Plan, String>,
    ) -> Result<Arc<crate::plan::Plan>, String> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((known, plan)) = last.as_ref() {
            if known == route {
                return Ok(plan.clone());
            }
        }
        let plan = Arc::new(resolve()?);
        *last = Some((route.clone(), plan.clone()));
        Ok(plan)
    }
}

/// `arn:…:listener/app/NAME/ID/LISTENER` → `app/NAME/ID` (an ALB; a network load balancer's
/// `net/…` is not one).
pub fn load_balancer_of_listener(arn: &str) -> Option<String> {
    let (_, path) = arn.split_once(":listener/")?;
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["app", name, id, _listener] if !name.is_empty() && !id.is_empty() => {
            Some(format!("app/{name}/{id}"))
        }
        _ => None,
    }
}

/// `arn:…:targetgroup/NAME/ID` → `targetgroup/NAME/ID`.
pub fn target_group_of_arn(arn: &str) -> Option<String> {
    let (_, path) = arn.split_once(":targetgroup/")?;
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        [name, id] if !name.is_empty() && !id.is_empty() => {
            Some(format!("targetgroup/{name}/{id}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_come_from_the_arns() {
        assert_eq!(
            load_balancer_of_listener("arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2").as_deref(),
            Some("app/shop/50dc6c495c0c9188")
        );
        assert_eq!(
            load_balancer_of_listener("arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/net/shop/50dc6c495c0c9188/f2f7dc8efc522ab2"),
            None,
            "a network load balancer's metrics are elsewhere"
        );
        assert_eq!(
            load_balancer_of_listener("arn:aws:elasticloadbalancing:x:listener/app//1/2"),
            None
        );
        assert_eq!(
            target_group_of_arn("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop-green/73e2d6bc24d8a067").as_deref(),
            Some("targetgroup/shop-green/73e2d6bc24d8a067")
        );
        assert_eq!(target_group_of_arn("arn:aws:ecs:x:service/a/b"), None);
    }
}
