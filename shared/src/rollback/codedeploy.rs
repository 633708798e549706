//! Stopping CodeDeploy deployments (with rollback), and finding the deployment groups whose alarm
//! configuration lists an alarm.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_codedeploy::types::DeploymentStatus;
use tokio::time::Instant;

use super::{InFlight, StopOutcome};
use crate::aws::{call_until, AwsError};
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
/// BatchGetDeploymentGroups takes at most this many names.
const BATCH: usize = 100;

pub struct CodeDeployController {
    client: aws_sdk_codedeploy::Client,
    /// application → (when read, [(group, alarm names, alarms enabled)])
    groups: Mutex<HashMap<String, (Instant, Vec<GroupAlarms>)>>,
}

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
            groups: Mutex::new(HashMap::new()),
        }
    }

    pub async fn in_flight(
        &self,
        application: &str,
        group: &str,
        deadline: Deadline,
    ) -> Result<Vec<InFlight>, AwsError> {
        let mut found = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let page = call_until("ListDeployments", deadline, || {
                self.client
                    .list_deployments()
                    .application_name(application)
                    .deployment_group_name(group)
                    .set_include_only_statuses(Some(IN_FLIGHT.to_vec()))
                    .set_next_token(next_token.clone())
                    .send()
            })
            .await?;
            found.extend(page.deployments().iter().map(|id| InFlight {
                id: id.clone(),
                status: None,
            }));
            next_token = page.next_token().map(str::to_string);
            if next_token.is_none() {
                return Ok(found);
            }
        }
    }

    pub async fn stop(
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

    /// Deployment groups (in `applications`, or in every application when `None`) whose enabled
    /// alarm configuration lists `alarm_name`.
    pub async fn groups_watching(
        &self,
        alarm_name: &str,
        applications: Option<&[String]>,
        deadline: Deadline,
    ) -> Result<Vec<(String, String)>, AwsError> {
        let applications = match applications {
            Some(list) => list.to_vec(),
            None => self.all_applications(deadline).await?,
        };
        let mut watching = Vec::new();
        for application in applications {
            for group in self.alarm_lists(&application, deadline).await? {
                if group.enabled && group.alarms.iter().any(|a| a == alarm_name) {
                    watching.push((application.clone(), group.group.clone()));
                }
            }
        }
        Ok(watching)
    }

    async fn all_applications(&self, deadline: Deadline) -> Result<Vec<String>, AwsError> {
        let mut names = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let page = call_until("ListApplications", deadline, || {
                self.client
                    .list_applications()
                    .set_next_token(next_token.clone())
                    .send()
            })
            .await?;
            names.extend(page.applications().iter().cloned());
            next_token = page.next_token().map(str::to_string);
            if next_token.is_none() {
                return Ok(names);
            }
        }
    }

    async fn alarm_lists(
        &self,
        application: &str,
        deadline: Deadline,
    ) -> Result<Vec<GroupAlarms>, AwsError> {
        if let Some((read, groups)) = self
            .groups
            .lock()
            .ok()
            .and_then(|c| c.get(application).cloned())
        {
            if read.elapsed() < DISCOVERY_TTL {
                return Ok(groups);
            }
        }
        let mut names = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let page = call_until("ListDeploymentGroups", deadline, || {
                self.client
                    .list_deployment_groups()
                    .application_name(application)
                    .set_next_token(next_token.clone())
                    .send()
            })
            .await?;
            names.extend(page.deployment_groups().iter().cloned());
            next_token = page.next_token().map(str::to_string);
            if next_token.is_none() {
                break;
            }
        }
        let mut groups = Vec::new();
        for chunk in names.chunks(BATCH) {
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
