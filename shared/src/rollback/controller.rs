//! The ports alarm-rollback works against: deployment controllers (what is in flight for a
//! target, and how to stop it) and the alarm directory (an alarm's tags, the deployment groups
//! that list it). CodeDeploy, ECS and CloudWatch adapters live beside this file; `memory` is an
//! in-process implementation of both, for testing the decision logic without a network.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use super::settings::Discovery;
use super::targets::Target;
use crate::aws::AwsError;
use crate::deadline::Deadline;

/// A boxed future, so the ports can be used as trait objects.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A deployment that a stop can still affect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// CodeDeploy deployment id, or ECS service deployment ARN.
    pub id: String,
    pub status: Option<String>,
    /// When the controller created it; `Err` says why that could not be read.
    pub created: Result<SystemTime, String>,
}

/// What a stop request achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopOutcome {
    /// The controller accepted the stop; its status (`Pending`, `ROLLBACK_REQUESTED`).
    Requested(String),
    /// Already finished, stopping, or rolling back.
    AlreadyCompleted,
    /// The deployment no longer exists.
    NotFound,
}

/// CodeDeploy or ECS: one adapter per kind of target.
pub trait DeploymentController: Send + Sync {
    /// The target's deployments that a stop can still affect, with their creation times.
    fn in_flight<'a>(
        &'a self,
        target: &'a Target,
        deadline: Deadline,
    ) -> Pending<'a, Result<Vec<InFlight>, AwsError>>;

    /// Stops one deployment with rollback.
    fn stop<'a>(
        &'a self,
        deployment: &'a str,
        deadline: Deadline,
    ) -> Pending<'a, Result<StopOutcome, AwsError>>;
}

/// What is known about alarms: their tags, and which deployment groups list them.
pub trait AlarmDirectory: Send + Sync {
    fn tags<'a>(
        &'a self,
        alarm_arn: &'a str,
        deadline: Deadline,
    ) -> Pending<'a, Result<BTreeMap<String, String>, AwsError>>;

    /// Deployment groups whose enabled alarm configuration lists the alarm. Partial: what
    /// could not be read is a problem, and everything else is still searched.
    fn groups_watching<'a>(
        &'a self,
        alarm_name: &'a str,
        discovery: &'a Discovery,
        deadline: Deadline,
    ) -> Pending<'a, (Vec<Target>, Vec<String>)>;
}

/// Everything alarm-rollback talks to.
pub struct Ports {
    pub codedeploy: Box<dyn DeploymentController>,
    pub ecs: Box<dyn DeploymentController>,
    pub directory: Box<dyn AlarmDirectory>,
}

impl Ports {
    pub fn controller(&self, target: &Target) -> &dyn DeploymentController {
        match target {
            Target::CodeDeploy { .. } => self.codedeploy.as_ref(),
            Target::Ecs { .. } => self.ecs.as_ref(),
        }
    }
}

/// In-process controllers and directory, for tests of the decision logic.
pub mod memory {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use std::time::SystemTime;

    use super::*;

    /// One simulated deployment.
    #[derive(Debug, Clone)]
    pub struct Simulated {
        pub target: Target,
        pub id: String,
        pub created: SystemTime,
        pub in_flight: bool,
    }

    #[derive(Default)]
    struct State {
        deployments: Vec<Simulated>,
        tags: BTreeMap<String, BTreeMap<String, String>>,
        groups: Vec<(Target, Vec<String>)>,
        unreadable_applications: Vec<String>,
        hanging_targets: Vec<Target>,
        stops: Vec<String>,
    }

    /// A world of deployments and alarms, shared by the ports built from it.
    #[derive(Clone, Default)]
    pub struct World(Arc<Mutex<State>>);

    impl World {
        fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
            f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
        }

        pub fn deploy(&self, target: &Target, id: &str, created: SystemTime) {
            self.with(|s| {
                s.deployments.push(Simulated {
                    target: target.clone(),
                    id: id.into(),
                    created,
                    in_flight: true,
                })
            });
        }

        pub fn tag(&self, alarm_arn: &str, tags: &[(&str, &str)]) {
            self.with(|s| {
                s.tags.insert(
                    alarm_arn.into(),
                    tags.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                )
            });
        }

        pub fn group_watches(&self, group: &Target, alarms: &[&str]) {
            self.with(|s| {
                s.groups.push((
                    group.clone(),
                    alarms.iter().map(|a| a.to_string()).collect(),
                ))
            });
        }

        /// Reading this application's deployment groups fails.
        pub fn unreadable_application(&self, application: &str) {
            self.with(|s| s.unreadable_applications.push(application.into()));
        }

        /// Listing this target's deployments never answers.
        pub fn hang(&self, target: &Target) {
            self.with(|s| s.hanging_targets.push(target.clone()));
        }

        /// The deployments stopped, in order.
        pub fn stops(&self) -> Vec<String> {
            self.with(|s| s.stops.clone())
        }

        pub fn ports(&self) -> Ports {
            Ports {
                codedeploy: Box::new(self.clone()),
                ecs: Box::new(self.clone()),
                directory: Box::new(self.clone()),
            }
        }
    }

    impl DeploymentController for World {
        fn in_flight<'a>(
            &'a self,
            target: &'a Target,
            deadline: Deadline,
        ) -> Pending<'a, Result<Vec<InFlight>, AwsError>> {
            Box::pin(async move {
                if self.with(|s| s.hanging_targets.contains(target)) {
                    tokio::time::sleep_until(deadline.instant()).await;
                    return Err(AwsError::OutOfTime {
                        attempts: 1,
                        last_error: "no answer".into(),
                    });
                }
                Ok(self.with(|s| {
                    s.deployments
                        .iter()
                        .filter(|d| &d.target == target && d.in_flight)
                        .map(|d| InFlight {
                            id: d.id.clone(),
                            status: Some("InProgress".into()),
                            created: Ok(d.created),
                        })
                        .collect()
                }))
            })
        }

        fn stop<'a>(
            &'a self,
            deployment: &'a str,
            _: Deadline,
        ) -> Pending<'a, Result<StopOutcome, AwsError>> {
            Box::pin(async move {
                Ok(self.with(|s| {
                    s.stops.push(deployment.to_string());
                    match s.deployments.iter_mut().find(|d| d.id == deployment) {
                        Some(d) if d.in_flight => {
                            d.in_flight = false;
                            StopOutcome::Requested("Pending".into())
                        }
                        Some(_) => StopOutcome::AlreadyCompleted,
                        None => StopOutcome::NotFound,
                    }
                }))
            })
        }
    }

    impl AlarmDirectory for World {
        fn tags<'a>(
            &'a self,
            alarm_arn: &'a str,
            _: Deadline,
        ) -> Pending<'a, Result<BTreeMap<String, String>, AwsError>> {
            Box::pin(async move {
                Ok(self.with(|s| s.tags.get(alarm_arn).cloned().unwrap_or_default()))
            })
        }

        fn groups_watching<'a>(
            &'a self,
            alarm_name: &'a str,
            discovery: &'a Discovery,
            _: Deadline,
        ) -> Pending<'a, (Vec<Target>, Vec<String>)> {
            Box::pin(async move {
                self.with(|s| {
                    let mut found = Vec::new();
                    let mut problems = Vec::new();
                    for (group, alarms) in &s.groups {
                        let Target::CodeDeploy { application, .. } = group else {
                            continue;
                        };
                        if !discovery.includes(application) {
                            continue;
                        }
                        if s.unreadable_applications.contains(application) {
                            let problem = format!("discovery: could not read the deployment groups of {application}: AccessDeniedException");
                            if !problems.contains(&problem) {
                                problems.push(problem);
                            }
                            continue;
                        }
                        if alarms.iter().any(|a| a == alarm_name) {
                            found.push(group.clone());
                        }
                    }
                    (found, problems)
                })
            })
        }
    }
}
