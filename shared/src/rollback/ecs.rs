//! Stopping Amazon ECS native (blue/green, linear, canary) service deployments with rollback.

use aws_sdk_ecs::types::{ServiceDeploymentStatus, StopServiceDeploymentStopType};

use super::{InFlight, StopOutcome};
use crate::aws::{call_until, AwsError};
use crate::deadline::Deadline;

pub struct EcsController {
    client: aws_sdk_ecs::Client,
}

impl EcsController {
    pub fn new(sdk_config: &aws_config::SdkConfig) -> Self {
        let config = aws_sdk_ecs::config::Builder::from(sdk_config)
            .retry_config(crate::aws::retry_config())
            .timeout_config(crate::aws::timeout_config())
            .build();
        EcsController {
            client: aws_sdk_ecs::Client::from_conf(config),
        }
    }

    /// Service deployments still PENDING or IN_PROGRESS.
    pub async fn in_flight(
        &self,
        cluster: &str,
        service: &str,
        deadline: Deadline,
    ) -> Result<Vec<InFlight>, AwsError> {
        let mut found = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let page = call_until("ListServiceDeployments", deadline, || {
                self.client
                    .list_service_deployments()
                    .cluster(cluster)
                    .service(service)
                    .status(ServiceDeploymentStatus::Pending)
                    .status(ServiceDeploymentStatus::InProgress)
                    .set_next_token(next_token.clone())
                    .send()
            })
            .await?;
            found.extend(page.service_deployments().iter().filter_map(|d| {
                Some(InFlight {
                    id: d.service_deployment_arn()?.to_string(),
                    status: d.status().map(|s| s.as_str().to_string()),
                })
            }));
            next_token = page.next_token().map(str::to_string);
            if next_token.is_none() {
                return Ok(found);
            }
        }
    }

    pub async fn stop(
        &self,
        service_deployment_arn: &str,
        deadline: Deadline,
    ) -> Result<StopOutcome, AwsError> {
        let result = call_until("StopServiceDeployment", deadline, || {
            self.client
                .stop_service_deployment()
                .service_deployment_arn(service_deployment_arn)
                .stop_type(StopServiceDeploymentStopType::Rollback)
                .send()
        })
        .await;
        match result {
            Ok(_) => Ok(StopOutcome::Requested("ROLLBACK_REQUESTED".into())),
            // The deployment is already stopping or rolling back.
            Err(e) if e.code() == Some("ConflictException") => Ok(StopOutcome::AlreadyCompleted),
            Err(e) if e.code() == Some("ServiceDeploymentNotFoundException") => {
                Ok(StopOutcome::NotFound)
            }
            Err(e) => Err(e),
        }
    }
}
