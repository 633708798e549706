//! A fake Amazon ECS (awsJson1.1, `X-Amz-Target: AmazonEC2ContainerServiceV20141113.*`): service
//! deployments that can be listed and stopped with rollback.

use serde_json::{json, Value};

use crate::aws_fake::{AwsFault, FakeService, Protocol, World};

pub type FakeEcs = FakeService<EcsWorld>;

#[derive(Debug, Clone)]
pub struct ServiceDeployment {
    pub arn: String,
    pub cluster: String,
    pub service: String,
    /// `PENDING`, `IN_PROGRESS`, `SUCCESSFUL`, `ROLLBACK_REQUESTED`, …
    pub status: String,
    /// When it was created, in seconds since the epoch.
    pub created: f64,
}

#[derive(Debug, Default)]
pub struct EcsWorld {
    pub deployments: Vec<ServiceDeployment>,
    /// (cluster, service) → its task sets: id and target group ARN.
    pub task_sets: std::collections::BTreeMap<(String, String), Vec<(String, String)>>,
    /// Service revision ARN → its `loadBalancers` (as DescribeServiceRevisions answers them).
    pub revisions: std::collections::BTreeMap<String, Value>,
}

impl FakeEcs {
    pub async fn start() -> Self {
        Self::launch(
            Protocol::AwsJson11 {
                target_prefix: "AmazonEC2ContainerServiceV20141113",
            },
            EcsWorld::default(),
        )
        .await
    }

    pub fn add_deployment(&self, cluster: &str, service: &str, id: &str, status: &str) -> String {
        self.add_deployment_created(cluster, service, id, status, crate::codedeploy::LONG_AGO)
    }

    /// A service deployment created at `created` (seconds since the epoch); returns its ARN.
    pub fn add_deployment_created(
        &self,
        cluster: &str,
        service: &str,
        id: &str,
        status: &str,
        created: f64,
    ) -> String {
        let arn = format!(
            "arn:aws:ecs:us-east-1:123456789012:service-deployment/{cluster}/{service}/{id}"
        );
        self.world(|w| {
            w.deployments.push(ServiceDeployment {
                arn: arn.clone(),
                cluster: cluster.into(),
                service: service.into(),
                status: status.into(),
                created,
            })
        });
        arn
    }

    /// The task sets of a service (CodeDeploy-controlled): id and target group ARN each.
    pub fn add_task_sets(&self, cluster: &str, service: &str, sets: &[(&str, &str)]) {
        self.world(|w| {
            w.task_sets.insert(
                (cluster.to_string(), service.to_string()),
                sets.iter()
                    .map(|(id, tg)| (id.to_string(), tg.to_string()))
                    .collect(),
            )
        });
    }

    /// A service revision behind an ALB or NLB with ECS blue/green's advanced configuration: its
    /// test and production listener rules (ALB rule ARNs, or NLB listener ARNs).
    pub fn add_service_revision(&self, arn: &str, test_rule: &str, production_rule: &str) {
        self.set_revision_load_balancers(
            arn,
            json!([{
                "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/1111111111111111",
                "containerName": "web",
                "containerPort": 8080,
                "advancedConfiguration": {
                    "alternateTargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/green/2222222222222222",
                    "productionListenerRule": production_rule,
                    "testListenerRule": test_rule,
                    "roleArn": "arn:aws:iam::123456789012:role/ecs-infrastructure",
                },
            }]),
        );
    }

    /// A service revision with these `loadBalancers`.
    pub fn set_revision_load_balancers(&self, arn: &str, load_balancers: Value) {
        self.world(|w| w.revisions.insert(arn.to_string(), load_balancers));
    }

    pub fn deployment_status(&self, arn: &str) -> Option<String> {
        self.world(|w| {
            w.deployments
                .iter()
                .find(|d| d.arn == arn)
                .map(|d| d.status.clone())
        })
    }
}

/// ECS accepts names or ARNs; the fake compares the last path segment.
fn name(value: &Value) -> &str {
    let text = value.as_str().unwrap_or_default();
    text.rsplit('/').next().unwrap_or(text)
}

impl World for EcsWorld {
    fn call(&mut self, operation: &str, input: &Value) -> Result<Value, AwsFault> {
        match operation {
            "DescribeServices" => {
                let cluster = name(&input["cluster"]).to_string();
                let mut services = Vec::new();
                let mut failures = Vec::new();
                for service in input["services"].as_array().into_iter().flatten() {
                    let service = name(service).to_string();
                    match self.task_sets.get(&(cluster.clone(), service.clone())) {
                        Some(sets) => services.push(json!({
                            "serviceName": service,
                            "clusterArn": format!("arn:aws:ecs:us-east-1:123456789012:cluster/{cluster}"),
                            "deploymentController": {"type": "CODE_DEPLOY"},
                            "taskSets": sets.iter().map(|(id, tg)| json!({
                                "id": id,
                                "status": "ACTIVE",
                                "loadBalancers": [{"targetGroupArn": tg, "containerName": "web", "containerPort": 8080}],
                            })).collect::<Vec<_>>(),
                        })),
                        None => failures.push(json!({"arn": service, "reason": "MISSING"})),
                    }
                }
                Ok(json!({"services": services, "failures": failures}))
            }
            "DescribeServiceRevisions" => {
                let mut revisions = Vec::new();
                let mut failures = Vec::new();
                for arn in input["serviceRevisionArns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let arn = arn.as_str().unwrap_or_default();
                    match self.revisions.get(arn) {
                        Some(load_balancers) => revisions.push(json!({
                            "serviceRevisionArn": arn,
                            "loadBalancers": load_balancers,
                        })),
                        None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
                    }
                }
                Ok(json!({"serviceRevisions": revisions, "failures": failures}))
            }
            "ListServiceDeployments" => {
                if input["service"].as_str().unwrap_or_default().is_empty() {
                    return Err(AwsFault::new(
                        400,
                        "InvalidParameterException",
                        "service is required",
                    ));
                }
                let (cluster, service) = (name(&input["cluster"]), name(&input["service"]));
                let wanted: Vec<&str> = input["status"]
                    .as_array()
                    .map(|s| s.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let briefs: Vec<Value> = self
                    .deployments
                    .iter()
                    .filter(|d| d.cluster == cluster && d.service == service)
                    .filter(|d| wanted.is_empty() || wanted.contains(&d.status.as_str()))
                    .map(|d| json!({"serviceDeploymentArn": d.arn, "status": d.status, "createdAt": d.created,
                        "serviceArn": format!("arn:aws:ecs:us-east-1:123456789012:service/{}/{}", d.cluster, d.service)}))
                    .collect();
                Ok(json!({"serviceDeployments": briefs}))
            }
            "StopServiceDeployment" => {
                let arn = input["serviceDeploymentArn"].as_str().unwrap_or_default();
                if input["stopType"] != "ROLLBACK" {
                    return Err(AwsFault::new(
                        400,
                        "InvalidParameterException",
                        "stopType must be ROLLBACK",
                    ));
                }
                let deployment = self
                    .deployments
                    .iter_mut()
                    .find(|d| d.arn == arn)
                    .ok_or_else(|| {
                        AwsFault::new(
                            400,
                            "ServiceDeploymentNotFoundException",
                            format!("{arn} not found"),
                        )
                    })?;
                if !matches!(deployment.status.as_str(), "PENDING" | "IN_PROGRESS") {
                    return Err(AwsFault::new(
                        400,
                        "ConflictException",
                        format!("the service deployment is {}", deployment.status),
                    ));
                }
                deployment.status = "ROLLBACK_REQUESTED".into();
                Ok(json!({"serviceDeploymentArn": arn}))
            }
            other => Err(AwsFault::new(
                400,
                "UnknownOperationException",
                format!("the fake ECS does not implement {other}"),
            )),
        }
    }
}
