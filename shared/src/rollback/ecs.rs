//! Amazon ECS native (blue/green, linear, canary) service deployments: which are in flight, when
//! each was created, and stopping them with rollback.

use aws_sdk_ecs::types::{ServiceDeploymentStatus, StopServiceDeploymentStopType};

use super::controller::{DeploymentController, InFlight, Pending, StopOutcome};
use super::targets::Target;
use crate::aws::{all_pages, call_until, AwsError};
use crate::deadline::Deadline;

pub struct EcsController {
    client: aws_sdk_ecs::Client,
}

impl EcsController {
    pub fn new(sdk_config: &aws_config::SdkConfig) -> Self {
        EcsController {
            client: crate::aws_client!(aws_sdk_ecs, sdk_config),
        }
    }

    /// Service deployments still PENDING or IN_PROGRESS.
    async fn list(
        &self,
        cluster: &str,
        service: &str,
        deadline: Deadline,
    ) -> Result<Vec<InFlight>, AwsError> {
        all_pages(|token| async move {
            let page = call_until("ListServiceDeployments", deadline, || {
                self.client
                    .list_service_deployments()
                    .cluster(cluster)
                    .service(service)
                    .status(ServiceDeploymentStatus::Pending)
                    .status(ServiceDeploymentStatus::InProgress)
                    .set_next_token(token.clone())
                    .send()
            })
            .await?;
            let found = page
                .service_deployments()
                .iter()
                .filter_map(|d| {
                    Some(InFlight {
                        id: d.service_deployment_arn()?.to_string(),
                        status: d.status().map(|s| s.as_str().to_string()),
                        created: d
                            .created_at()
                            .and_then(|t| std::time::SystemTime::try_from(*t).ok())
                            .ok_or_else(|| "ECS did not say when it was created".to_string()),
                    })
                })
                .collect();
            Ok((found, page.next_token().map(str::to_string)))
        })
        .await
    }

    async fn stop_one(
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

impl DeploymentController for EcsController {
    fn in_flight<'a>(
        &'a self,
        target: &'a Target,
        deadline: Deadline,
    ) -> Pending<'a, Result<Vec<InFlight>, AwsError>> {
        Box::pin(async move {
            match target {
                Target::Ecs { cluster, service } => self.list(cluster, service, deadline).await,
                Target::CodeDeploy { .. } => Ok(Vec::new()),
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
