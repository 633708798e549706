//! A fake CodeDeploy (awsJson1.1, `X-Amz-Target: CodeDeploy_20141006.*`): hook status reports,
//! deployments that can be listed and stopped, deployment groups with alarm configurations.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::aws_fake::{AwsFault, FakeService, Protocol, World};

pub type FakeCodeDeploy = FakeService<CodeDeployWorld>;

/// One simulated deployment.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub id: String,
    pub application: String,
    pub group: String,
    /// `Created`, `Queued`, `InProgress`, `Baking`, `Ready`, `Succeeded`, `Failed`, `Stopped`.
    pub status: String,
    /// When it was created, in seconds since the epoch.
    pub created: f64,
}

/// Deployments added without a creation time were created here: 2019-01-01, before every
/// sample event.
pub const LONG_AGO: f64 = 1_546_300_800.0;

/// One simulated deployment group and the alarms its alarm configuration lists.
#[derive(Debug, Clone)]
pub struct DeploymentGroup {
    pub application: String,
    pub name: String,
    pub alarms: Vec<String>,
    pub alarms_enabled: bool,
}

/// An ECS blue/green deployment group's service and load balancer, and a deployment's task sets.
#[derive(Debug, Clone)]
pub struct EcsBlueGreen {
    pub cluster: String,
    pub service: String,
    pub production_listener: String,
    pub test_listener: String,
    /// The group's two target group names.
    pub target_groups: [String; 2],
    /// Task set id, label (`Blue`/`Green`), target group name.
    pub task_sets: Vec<(String, String, String)>,
}

#[derive(Debug, Default)]
pub struct CodeDeployWorld {
    pub deployments: Vec<Deployment>,
    pub groups: Vec<DeploymentGroup>,
    /// (application, group) → its ECS blue/green set-up; its deployments' task sets.
    pub blue_green: std::collections::BTreeMap<(String, String), EcsBlueGreen>,
    /// Hook statuses reported, by lifecycle event hook execution id.
    pub hook_reports: std::collections::BTreeMap<String, String>,
    /// When true, a stopped deployment stays `InProgress` (as it does for a while in AWS while
    /// the rollback runs), so a second stop request would reach CodeDeploy.
    pub stopping_takes_time: bool,
}

impl FakeCodeDeploy {
    pub async fn start() -> Self {
        Self::launch(
            Protocol::AwsJson11 {
                target_prefix: "CodeDeploy_20141006",
            },
            CodeDeployWorld::default(),
        )
        .await
    }

    /// The `status` of every `PutLifecycleEventHookExecutionStatus` call, in order.
    pub fn reported_statuses(&self) -> Vec<String> {
        self.calls_to("PutLifecycleEventHookExecutionStatus")
            .iter()
            .map(|c| c.body["status"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    pub fn add_deployment(&self, id: &str, application: &str, group: &str, status: &str) {
        self.add_deployment_created(id, application, group, status, LONG_AGO);
    }

    /// A deployment created at `created` (seconds since the epoch).
    pub fn add_deployment_created(
        &self,
        id: &str,
        application: &str,
        group: &str,
        status: &str,
        created: f64,
    ) {
        self.world(|w| {
            w.deployments.push(Deployment {
                id: id.into(),
                application: application.into(),
                group: group.into(),
                status: status.into(),
                created,
            })
        });
    }

    pub fn add_group(&self, application: &str, name: &str, alarms: &[&str]) {
        self.world(|w| {
            w.groups.push(DeploymentGroup {
                application: application.into(),
                name: name.into(),
                alarms: alarms.iter().map(|a| a.to_string()).collect(),
                alarms_enabled: true,
            })
        });
    }

    /// An ECS blue/green deployment `id` of `application`/`group`, with its service, listeners
    /// and task sets, for `GetDeployment`, `GetDeploymentGroup`, `ListDeploymentTargets` and
    /// `GetDeploymentTarget`.
    pub fn add_ecs_blue_green(
        &self,
        id: &str,
        application: &str,
        group: &str,
        set_up: EcsBlueGreen,
    ) {
        if self.deployment_status(id).is_none() {
            self.add_deployment(id, application, group, "InProgress");
        }
        self.world(|w| {
            w.blue_green
                .insert((application.to_string(), group.to_string()), set_up)
        });
    }

    pub fn deployment_status(&self, id: &str) -> Option<String> {
        self.world(|w| {
            w.deployments
                .iter()
                .find(|d| d.id == id)
                .map(|d| d.status.clone())
        })
    }

    /// The deployment ids of every `StopDeployment` call, in order.
    pub fn stopped(&self) -> Vec<String> {
        self.calls_to("StopDeployment")
            .iter()
            .map(|c| {
                c.body["deploymentId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }
}

impl CodeDeployWorld {
    fn deployment(&self, id: &str) -> Result<&Deployment, AwsFault> {
        self.deployments.iter().find(|d| d.id == id).ok_or_else(|| {
            AwsFault::new(
                400,
                "DeploymentDoesNotExistException",
                format!("deployment {id} does not exist"),
            )
        })
    }
}

fn text<'a>(input: &'a Value, field: &str) -> Result<&'a str, AwsFault> {
    input[field]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AwsFault::new(400, "ValidationException", format!("{field} is required")))
}

impl World for CodeDeployWorld {
    fn call(&mut self, operation: &str, input: &Value) -> Result<Value, AwsFault> {
        match operation {
            "PutLifecycleEventHookExecutionStatus" => {
                let status = input["status"].as_str().unwrap_or_default();
                if !matches!(status, "Succeeded" | "Failed") {
                    return Err(AwsFault::new(
                        400,
                        "InvalidLifecycleEventHookExecutionStatusException",
                        "status must be Succeeded or Failed",
                    ));
                }
                if input["deploymentId"]
                    .as_str()
                    .unwrap_or_default()
                    .is_empty()
                {
                    return Err(AwsFault::new(
                        400,
                        "DeploymentIdRequiredException",
                        "deploymentId is required",
                    ));
                }
                let execution = input["lifecycleEventHookExecutionId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if self.hook_reports.contains_key(&execution) {
                    return Err(AwsFault::new(
                        400,
                        "LifecycleEventAlreadyCompletedException",
                        "the lifecycle event is already completed",
                    ));
                }
                self.hook_reports.insert(execution, status.to_string());
                Ok(json!({"lifecycleEventHookExecutionId": input["lifecycleEventHookExecutionId"]}))
            }
            "ListDeployments" => {
                let (application, group) = (
                    text(input, "applicationName")?,
                    text(input, "deploymentGroupName")?,
                );
                let wanted: Option<HashSet<&str>> = input["includeOnlyStatuses"]
                    .as_array()
                    .map(|s| s.iter().filter_map(Value::as_str).collect());
                let ids: Vec<&str> = self
                    .deployments
                    .iter()
                    .filter(|d| d.application == application && d.group == group)
                    .filter(|d| {
                        wanted
                            .as_ref()
                            .is_none_or(|w| w.contains(d.status.as_str()))
                    })
                    .map(|d| d.id.as_str())
                    .collect();
                Ok(json!({"deployments": ids}))
            }
            "BatchGetDeployments" => {
                let ids: Vec<&str> = input["deploymentIds"]
                    .as_array()
                    .map(|ids| ids.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if ids.len() > 25 {
                    return Err(AwsFault::new(
                        400,
                        "BatchLimitExceededException",
                        "at most 25 ids",
                    ));
                }
                let infos: Vec<Value> = self
                    .deployments
                    .iter()
                    .filter(|d| ids.contains(&d.id.as_str()))
                    .map(|d| json!({"deploymentId": d.id, "applicationName": d.application,
                        "deploymentGroupName": d.group, "status": d.status, "createTime": d.created}))
                    .collect();
                Ok(json!({"deploymentsInfo": infos}))
            }
            "StopDeployment" => {
                let id = text(input, "deploymentId")?;
                let takes_time = self.stopping_takes_time;
                let deployment = self
                    .deployments
                    .iter_mut()
                    .find(|d| d.id == id)
                    .ok_or_else(|| {
                        AwsFault::new(
                            400,
                            "DeploymentDoesNotExistException",
                            format!("deployment {id} does not exist"),
                        )
                    })?;
                if matches!(
                    deployment.status.as_str(),
                    "Succeeded" | "Failed" | "Stopped"
                ) {
                    return Err(AwsFault::new(
                        400,
                        "DeploymentAlreadyCompletedException",
                        format!("deployment {id} is already completed"),
                    ));
                }
                if !takes_time {
                    deployment.status = "Stopped".into();
                }
                Ok(json!({"status": "Pending", "statusMessage": "Stopping and rolling back"}))
            }
            "GetDeployment" => {
                let id = text(input, "deploymentId")?;
                let d = self.deployment(id)?;
                Ok(
                    json!({"deploymentInfo": {"deploymentId": d.id, "applicationName": d.application,
                    "deploymentGroupName": d.group, "status": d.status, "createTime": d.created,
                    "computePlatform": "ECS"}}),
                )
            }
            "GetDeploymentGroup" => {
                let application = text(input, "applicationName")?;
                let group = text(input, "deploymentGroupName")?;
                let set_up = self
                    .blue_green
                    .get(&(application.to_string(), group.to_string()))
                    .ok_or_else(|| {
                        AwsFault::new(
                            400,
                            "DeploymentGroupDoesNotExistException",
                            format!("no deployment group {application}/{group}"),
                        )
                    })?;
                Ok(json!({"deploymentGroupInfo": {
                    "applicationName": application,
                    "deploymentGroupName": group,
                    "computePlatform": "ECS",
                    "ecsServices": [{"serviceName": set_up.service, "clusterName": set_up.cluster}],
                    "loadBalancerInfo": {"targetGroupPairInfoList": [{
                        "targetGroups": set_up.target_groups.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
                        "prodTrafficRoute": {"listenerArns": [set_up.production_listener]},
                        "testTrafficRoute": {"listenerArns": [set_up.test_listener]},
                    }]},
                }}))
            }
            "ListDeploymentTargets" => {
                let id = text(input, "deploymentId")?;
                let d = self.deployment(id)?;
                let targets: Vec<String> = self
                    .blue_green
                    .get(&(d.application.clone(), d.group.clone()))
                    .map(|b| format!("{}:{}", b.cluster, b.service))
                    .into_iter()
                    .collect();
                Ok(json!({"targetIds": targets}))
            }
            "GetDeploymentTarget" => {
                let id = text(input, "deploymentId")?;
                let target_id = text(input, "targetId")?;
                let d = self.deployment(id)?;
                let set_up = self
                    .blue_green
                    .get(&(d.application.clone(), d.group.clone()))
                    .filter(|b| format!("{}:{}", b.cluster, b.service) == target_id)
                    .ok_or_else(|| {
                        AwsFault::new(
                            400,
                            "DeploymentTargetDoesNotExistException",
                            format!("no target {target_id} in {id}"),
                        )
                    })?;
                let task_sets: Vec<Value> = set_up
                    .task_sets
                    .iter()
                    .map(|(set, label, target_group)| {
                        json!({"identifer": set, "taskSetLabel": label, "status": "ACTIVE",
                            "trafficWeight": 0.0, "targetGroup": {"name": target_group}})
                    })
                    .collect();
                Ok(
                    json!({"deploymentTarget": {"deploymentTargetType": "ECSTarget", "ecsTarget": {
                    "deploymentId": id, "targetId": target_id, "status": "InProgress",
                    "taskSetsInfo": task_sets}}}),
                )
            }
            "ListApplications" => {
                let mut names: Vec<&str> =
                    self.groups.iter().map(|g| g.application.as_str()).collect();
                names.dedup();
                Ok(json!({"applications": names}))
            }
            "ListDeploymentGroups" => {
                let application = text(input, "applicationName")?;
                let names: Vec<&str> = self
                    .groups
                    .iter()
                    .filter(|g| g.application == application)
                    .map(|g| g.name.as_str())
                    .collect();
                Ok(json!({"applicationName": application, "deploymentGroups": names}))
            }
            "BatchGetDeploymentGroups" => {
                let application = text(input, "applicationName")?;
                let names: Vec<&str> = input["deploymentGroupNames"]
                    .as_array()
                    .map(|n| n.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let infos: Vec<Value> = self
                    .groups
                    .iter()
                    .filter(|g| g.application == application && names.contains(&g.name.as_str()))
                    .map(|g| {
                        json!({
                            "applicationName": g.application,
                            "deploymentGroupName": g.name,
                            "alarmConfiguration": {"enabled": g.alarms_enabled, "alarms": g.alarms.iter().map(|a| json!({"name": a})).collect::<Vec<_>>()}
                        })
                    })
                    .collect();
                Ok(json!({"deploymentGroupsInfo": infos, "errorMessage": ""}))
            }
            other => Err(AwsFault::new(
                400,
                "UnknownOperationException",
                format!("the fake CodeDeploy does not implement {other}"),
            )),
        }
    }
}
