//! CodeDeploy deployments: which are in flight for a deployment group, when each was created,
//! stopping them with rollback, and finding the deployment groups whose alarm configuration
//! lists an alarm (partially: an application that cannot be read is a problem, not an end).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_codedeploy::types::DeploymentStatus;
use tokio::time::Instant;

use super::controller::{DeploymentController, InFlight, Pending, StopOutcome};
use super::settings::Discovery;
use super::targets::Target;
use crate::aws::{all_pages, call_until, AwsError};
use crate::deadline::Deadline;

/// Deployment states in which a stop still changes something.
const IN_FLIGHT: [DeploymentStatus; 5] = [
    DeploymentStatus::Created,
    DeploymentStatus::Queued,
    DeploymentStatus::InProgress,
    DeploymentStatus::Baking,
    DeploymentStatus::Ready,
];

/// Deployment groups' alarm lists change rarely: keep them this long across warm invocations.
const DISCOVERY_TTL: Duration = Duration::from_secs(60);
/// BatchGetDeploymentGroups takes at most this many names, BatchGetDeployments this many ids.
const GROUPS_PER_BATCH: usize = 100;
const DEPLOYMENTS_PER_BATCH: usize = 25;

#[derive(Clone)]
pub struct CodeDeployController {
    client: aws_sdk_codedeploy::Client,
    groups: Arc<Mutex<GroupCache>>,
}

/// application → (when read, its groups with their alarm lists)
type GroupCache = HashMap<String, (Instant, Vec<GroupAlarms>)>;

#[derive(Debug, Clone)]
struct GroupAlarms {
    group: String,
    alarms: Vec<String>,
    enabled: bool,
}

impl CodeDeployController {
    pub fn new(sdk_config: &aws_config::SdkConfig) -> Self {
        CodeDeployController {
            client: crate::codedeploy::client(sdk_config),
            groups: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    async fn list(
        &self,
        application: &str,
        group: &str,
        deadline: Deadline,
    ) -> Result<Vec<InFlight>, AwsError> {
        let ids: Vec<String> = all_pages(|token| async move {
            let page = call_until("ListDeployments", deadline, || {
                self.client
                    .list_deployments()
                    .application_name(application)
                    .deployment_group_name(group)
                    .set_include_only_statuses(Some(IN_FLIGHT.to_vec()))
                    .set_next_token(token.clone())
                    .send()
            })
            .await?;
            Ok((
                page.deployments().to_vec(),
                page.next_token().map(str::to_string),
            ))
        })
        .await?;
        let mut created: HashMap<String, SystemTime> = HashMap::new();
        let mut unknown = None;
        for chunk in ids.chunks(DEPLOYMENTS_PER_BATCH) {
            let answer = call_until("BatchGetDeployments", deadline, || {
                self.client
                    .batch_get_deployments()
                    .set_deployment_ids(Some(chunk.to_vec()))
                    .send()
            })
            .await;
            match answer {
                Ok(out) => {
                    for info in out.deployments_info() {
                        if let (Some(id), Some(time)) = (info.deployment_id(), info.create_time()) {
                            if let Ok(time) = SystemTime::try_from(*time) {
                                created.insert(id.to_string(), time);
                            }
                        }
                    }
                }
                Err(e) => {
                    unknown = Some(format!(
                        "could not read when it was created (codedeploy:GetDeployment): {e}"
                    ))
                }
            }
        }
        Ok(ids
            .into_iter()
            .map(|id| InFlight {
                created: created.get(&id).copied().ok_or_else(|| {
                    unknown
                        .clone()
                        .unwrap_or_else(|| "CodeDeploy did not say when it was created".into())
                }),
                status: None,
                id,
            })
            .collect())
    }

    async fn stop_one(
        &self,
        deployment_id: &str,
        deadline: Deadline,
    ) -> Result<StopOutcome, AwsError> {
        let result = call_until("StopDeployment", deadline, || {
            self.client
                .stop_deployment()
                .deployment_id(deployment_id)
                .auto_rollback_enabled(true)
                .send()
        })
        .await;
        match result {
            Ok(out) => Ok(StopOutcome::Requested(
                out.status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "Pending".into()),
            )),
            Err(e) if e.code() == Some("DeploymentAlreadyCompletedException") => {
                Ok(StopOutcome::AlreadyCompleted)
            }
            Err(e) if e.code() == Some("DeploymentDoesNotExistException") => {
                Ok(StopOutcome::NotFound)
            }
            Err(e) => Err(e),
        }
    }

    /// Deployment groups whose enabled alarm configuration lists `alarm_name`. An application
    /// that cannot be read is a problem; the others are still searched.
    pub async fn groups_watching(
        &self,
        alarm_name: &str,
        discovery: &Discovery,
        deadline: Deadline,
    ) -> (Vec<Target>, Vec<String>) {
        let mut problems = Vec::new();
        let applications = match discovery {
            Discovery::Off => return (Vec::new(), problems),
            Discovery::Only(list) => list.clone(),
            Discovery::All => match self.all_applications(deadline).await {
                Ok(names) => names,
                Err(e) => {
                    problems.push(format!("discovery: could not list the CodeDeploy applications (codedeploy:ListApplications): {e}"));
                    return (Vec::new(), problems);
                }
            },
        };
        let reads = applications.iter().map(|application| async move {
            (application, self.alarm_lists(application, deadline).await)
        });
        let mut watching = Vec::new();
        for (application, read) in crate::aws::join_all(reads).await {
            match read {
                Ok(groups) => watching.extend(
                    groups
                        .into_iter()
                        .filter(|g| g.enabled && g.alarms.iter().any(|a| a == alarm_name))
                        .map(|g| Target::CodeDeploy {
                            application: application.clone(),
                            deployment_group: g.group,
                        }),
                ),
                Err(e) => problems.push(format!(
                    "discovery: could not read the deployment groups of {application}: {e}"
                )),
            }
        }
        (watching, problems)
    }

    async fn all_applications(&self, deadline: Deadline) -> Result<Vec<String>, AwsError> {
        all_pages(|token| async move {
            let page = call_until("ListApplications", deadline, || {
                self.client
                    .list_applications()
                    .set_next_token(token.clone())
                    .send()
            })
            .await?;
            Ok((
                page.applications().to_vec(),
                page.next_token().map(str::to_string),
            ))
        })
        .await
    }

    async fn alarm_lists(
        &self,
        application: &str,
        deadline: Deadline,
    ) -> Result<Vec<GroupAlarms>, AwsError> {
        let cached = self
            .groups
            .lock()
            .ok()
            .and_then(|c| c.get(application).cloned());
        if let Some((read, groups)) = cached {
            if read.elapsed() < DISCOVERY_TTL {
                return Ok(groups);
            }
        }
        let names: Vec<String> = all_pages(|token| async move {
            let page = call_until("ListDeploymentGroups", deadline, || {
                self.client
                    .list_deployment_groups()
                    .application_name(application)
                    .set_next_token(token.clone())
                    .send()
            })
            .await?;
            Ok((
                page.deployment_groups().to_vec(),
                page.next_token().map(str::to_string),
            ))
        })
        .await?;
        let mut groups = Vec::new();
        for chunk in names.chunks(GROUPS_PER_BATCH) {
            let out = call_until("BatchGetDeploymentGroups", deadline, || {
                self.client
                    .batch_get_deployment_groups()
                    .application_name(application)
                    .set_deployment_group_names(Some(chunk.to_vec()))
                    .send()
            })
            .await?;
            for info in out.deployment_groups_info() {
                let config = info.alarm_configuration();
                groups.push(GroupAlarms {
                    group: info.deployment_group_name().unwrap_or_default().to_string(),
                    alarms: config
                        .map(|c| {
                            c.alarms()
                                .iter()
                                .filter_map(|a| a.name().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                    enabled: config.is_some_and(|c| c.enabled()),
                });
            }
        }
        if let Ok(mut cache) = self.groups.lock() {
            cache.insert(application.to_string(), (Instant::now(), groups.clone()));
        }
        Ok(groups)
    }
}

impl DeploymentController for CodeDeployController {
    fn in_flight<'a>(
        &'a self,
        target: &'a Target,
        deadline: Deadline,
    ) -> Pending<'a, Result<Vec<InFlight>, AwsError>> {
        Box::pin(async move {
            match target {
                Target::CodeDeploy {
                    application,
                    deployment_group,
                } => self.list(application, deployment_group, deadline).await,
                Target::Ecs { .. } => Ok(Vec::new()),
            }
        })
    }

    fn stop<'a>(
        &'a self,
        deployment: &'a str,
        deadline: Deadline,
    ) -> Pending<'a, Result<StopOutcome, AwsError>> {
        Box::pin(self.stop_one(deployment, deadline))
    }
}
