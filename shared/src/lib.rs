//! greenlight: verify the green side of an Amazon ECS blue/green deployment, and report the
//! verdict to the deployment's controller.
//!
//! Data flows one way: event → context (deployment, plan, deadline) → [`verify`] → [`Verdict`] →
//! report. The Lambda function crates are thin wrappers around [`hook::CodeDeployHook`].

pub mod alarm;
pub mod aws;
pub mod check;
pub mod codedeploy;
pub mod config_text;
pub mod continuation;
pub mod deadline;
pub mod duration;
pub mod ecs_hook;
pub mod ecs_route;
pub mod env;
pub mod expect;
pub mod files;
pub mod green;
pub mod hook;
pub mod http;
pub mod judge;
pub mod lambda;
pub(crate) mod lane;
pub mod logging;
pub mod notify;
pub mod plan;
pub mod probe;
pub mod report;
pub mod rollback;
pub mod secrets;
pub mod suggest;
pub mod timestamp;
pub mod verdict;
pub mod verify;

pub use deadline::Deadline;
pub use env::Env;
pub use plan::{Plan, PlanError, PlanSettings, PlanSpec};
pub use verdict::{CheckReport, Outcome, Verdict, VerdictStatus};
pub use verify::{verify, verify_observed, Tools};
