//! The CodeDeploy lifecycle hook: event → deadline → verification → verdict → report.
//!
//! Whatever happens after the event parses (a bad plan, green unreachable or hanging, a panic
//! in a check, CodeDeploy throttling), the hook reports `Succeeded` or `Failed` before its
//! Lambda deadline; `Succeeded` only when every check passed.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;

use crate::aws::Prepared;
use crate::codedeploy::{
    parse_lifecycle_event, CodeDeployReporter, EventError, ReportError, Reported,
};
use crate::continuation::{Continue, Progress, SelfInvoke, MAX_HOPS};
use crate::deadline::Deadline;
use crate::env::Env;
use crate::green::{resolve_at, CodeDeployGreen, DeploymentClients, LastResolved, Route};
use crate::plan::catalog::{Catalog, ParameterSettings, ParameterStore, SsmParameters};
use crate::plan::services::ServicePlans;
use crate::plan::{Plan, PlanError, PlanSettings, Setting};
use crate::probe::metric::{CloudWatchMetrics, MetricSource};
use crate::probe::target_health::{ElbLoadBalancers, LoadBalancers};
use crate::verdict::Verdict;
use crate::verify::{verify_isolated, Tools};

/// Reporting stops this long before the Lambda deadline, so the invocation can still return.
const RETURN_MARGIN: Duration = Duration::from_millis(200);

/// Why a hook invocation ended in error (the verdict may still have been reported).
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error(transparent)]
    Event(#[from] EventError),
    #[error("verdict {status} for deployment {deployment_id} was not reported: {source}")]
    Report {
        deployment_id: String,
        status: crate::verdict::VerdictStatus,
        #[source]
        source: ReportError,
    },
}

impl From<HookError> for lambda_runtime::Diagnostic {
    fn from(error: HookError) -> Self {
        let error_type = match &error {
            HookError::Event(_) => "InvalidEvent",
            HookError::Report { .. } => "ReportFailed",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

/// What the invocation returns (CodeDeploy ignores it; people running the hook locally read it).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookResponse {
    pub lifecycle_event: String,
    pub deployment_id: String,
    pub reported: Reported,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// A CodeDeploy hook function, set up once per process and reused for every invocation.
pub struct CodeDeployHook {
    lifecycle_event: String,
    /// The plan of every deployment, and each service's own (`GREENLIGHT_PLANS`, Parameter
    /// Store).
    plans: Catalog<PlanSetup>,
    /// Reads which service a deployment is, when plans are chosen per service.
    service_lookup: Option<Arc<DeploymentClients>>,
    /// What every plan reads through.
    sources: Sources,
    reporter: Prepared<CodeDeployReporter>,
    /// Where Failed verdicts are announced (`GREENLIGHT_NOTIFY_TOPIC_ARN`).
    notifier: Option<Prepared<crate::notify::Notifier>>,
    /// How a bake longer than one invocation goes on in a new one.
    continuation: Option<Arc<dyn Continue>>,
}

/// A metric check judged after a wait needs this long once the wait is over.
const JUDGING_TIME: Duration = Duration::from_secs(3);
/// A verification continues in a new invocation this long before it must report.
const HAND_OVER_MARGIN: Duration = Duration::from_secs(2);

/// What one plan gives a hook: its tools and plan (or why it is unusable), and the clients that
/// find green from a deployment when the plan needs them.
struct PlanSetup {
    setup: Result<(Tools, Staged), String>,
    deployments: Option<Arc<DeploymentClients>>,
}

/// What every plan of a hook reads through, built once (each AWS client on first use): the one
/// HTTP client (each holds its own TLS configuration: hundreds would not fit in 128 MB),
/// CloudWatch, the load balancer, what finds green from a deployment, and Parameter Store (where
/// services' plans may be kept).
#[derive(Clone)]
struct Sources {
    http: Result<reqwest::Client, String>,
    metrics: Arc<dyn MetricSource>,
    load_balancers: Arc<dyn LoadBalancers>,
    deployments: Arc<DeploymentClients>,
    parameters: Arc<dyn ParameterStore>,
}

impl Sources {
    fn new(sdk_config: Option<&aws_config::SdkConfig>) -> Self {
        let http = crate::http::build_check_client()
            .map_err(|e| format!("could not build the HTTP client: {e}"));
        match sdk_config {
            Some(config) => Sources {
                http,
                metrics: Arc::new(CloudWatchMetrics::new(config)),
                load_balancers: Arc::new(ElbLoadBalancers::new(config)),
                deployments: Arc::new(DeploymentClients::new(config)),
                parameters: Arc::new(SsmParameters::new(config)),
            },
            None => Sources {
                http,
                metrics: Arc::new(CloudWatchMetrics::from_env()),
                load_balancers: Arc::new(ElbLoadBalancers::from_env()),
                deployments: Arc::new(DeploymentClients::from_env()),
                parameters: Arc::new(SsmParameters::from_env()),
            },
        }
    }
}

impl PlanSetup {
    /// The tools `plan` needs, taken from `sources`.
    fn prepare(
        lifecycle_event: &str,
        plan: Result<StagePlan, PlanError>,
        sources: &Sources,
    ) -> Self {
        let mut deployments = None;
        let setup = match (plan, sources.http.clone()) {
            (Ok(StagePlan::FindRoute(find)), Ok(client)) => {
                tracing::info!(lifecycle_event, route = ?find.route, "no URL reaches green: the route will be found from each deployment");
                // Every source: which checks run is known only once the plan is resolved for
                // the route.
                let tools = Tools::http(client)
                    .with_metrics(sources.metrics.clone())
                    .with_load_balancers(sources.load_balancers.clone());
                deployments = Some(sources.deployments.clone());
                Ok((tools, Staged::FindRoute(find)))
            }
            (Ok(StagePlan::Ready(plan)), Ok(client)) => {
                let plan = *plan;
                tracing::info!(lifecycle_event, checks = plan.checks.len(), "plan loaded");
                for warning in &plan.warnings {
                    tracing::warn!(lifecycle_event, warning = %warning, "plan warning");
                }
                let mut tools = Tools::http(client);
                if plan.reads_metrics() {
                    tools = tools.with_metrics(sources.metrics.clone());
                }
                if plan.asks_load_balancer() {
                    tools = tools.with_load_balancers(sources.load_balancers.clone());
                }
                if plan.uses_green_target_group() {
                    deployments = Some(sources.deployments.clone());
                }
                Ok((tools, Staged::Ready(Arc::new(plan))))
            }
            (Err(e), _) => {
                tracing::error!(lifecycle_event, error = %e, "the plan is unusable; every deployment will be reported Failed until it is fixed");
                Err(e.to_string())
            }
            (_, Err(e)) => Err(e),
        };
        PlanSetup { setup, deployments }
    }
}

/// A hook's plan: resolved once, or, when no URL reaches green, resolved per deployment for the
/// route found from it.
pub enum Staged {
    Ready(Arc<Plan>),
    FindRoute(Box<FindRoute>),
}

/// No `GREENLIGHT_TEST_URL` (after the shift: `GREENLIGHT_PRODUCTION_URL`) and no target in the
/// plan: the route to green is found from each deployment, and the plan resolved against it.
pub struct FindRoute {
    spec: crate::plan::PlanSpec,
    env: Env,
    lifecycle_event: String,
    route: Route,
    resolved: LastResolved<String>,
}

impl FindRoute {
    fn plan_for(&self, url: &str) -> Result<Arc<Plan>, String> {
        let what = match self.route {
            Route::Test => "the deployment's test listener",
            Route::Production => "the deployment's production listener",
        };
        self.resolved.get_or_resolve(&url.to_string(), || {
            resolve_at(
                &self.spec,
                &self.lifecycle_event,
                self.route,
                url,
                what,
                &self.env,
            )
        })
    }
}

/// The lifecycle event that verifies production after the shift.
pub const AFTER_ALLOW_TRAFFIC: &str = "AfterAllowTraffic";

impl CodeDeployHook {
    /// Reads the plan and AWS configuration from the environment. Never fails: a set-up problem
    /// (such as a bad plan) fails every verification with that problem as the reason.
    /// Needs a Tokio runtime: the AWS client is built on a background task.
    pub fn from_env(lifecycle_event: &str) -> Self {
        let reporter = Prepared::in_background(|| async {
            CodeDeployReporter::new(&crate::aws::load_sdk_config().await)
        });
        let env = Env::process();
        let mut hook = Self::with_reporter(
            lifecycle_event,
            reporter,
            stage_plan(lifecycle_event, &env),
            None,
        )
        .with_services(&env);
        hook.notifier = crate::notify::Notifier::from_env(&env);
        // Its client is built only when a bake outlasts an invocation.
        hook.continuation = SelfInvoke::from_env().map(|c| Arc::new(c) as Arc<dyn Continue>);
        hook
    }

    /// A bake that outlasts an invocation continues through `continuation`.
    pub fn continuing(mut self, continuation: Arc<dyn Continue>) -> Self {
        self.continuation = Some(continuation);
        self
    }

    /// The hook with the plan `env` gives `lifecycle_event` (its own `stages:` entry, else the
    /// plan's checks; `AfterAllowTraffic` through `GREENLIGHT_PRODUCTION_URL`), reporting with
    /// and reading metrics through `sdk_config`.
    pub fn from_settings(
        lifecycle_event: &str,
        sdk_config: &aws_config::SdkConfig,
        env: &Env,
    ) -> Self {
        let reporter = Prepared::Ready(CodeDeployReporter::new(sdk_config));
        Self::with_reporter(
            lifecycle_event,
            reporter,
            stage_plan(lifecycle_event, env),
            Some(sdk_config),
        )
        .with_services(env)
    }

    /// Each service's own plan: `GREENLIGHT_PLANS` from `env`, prepared now, and Parameter Store
    /// under `GREENLIGHT_PLANS_PARAMETER_PREFIX`, read when a deployment needs it. A setting that
    /// cannot be read fails every deployment with the reason.
    fn with_services(mut self, env: &Env) -> Self {
        let unusable = |e: PlanError, what: &str| {
            tracing::error!(error = %e, "{what} is unusable; every deployment will be reported Failed until it is fixed");
            PlanSetup {
                setup: Err(e.to_string()),
                deployments: None,
            }
        };
        match ServicePlans::from_env(env) {
            Ok(None) => {}
            Err(e) => {
                self.plans.set_every(unusable(e, "GREENLIGHT_PLANS"));
                return self;
            }
            Ok(Some(plans)) => {
                for entry in plans.entries {
                    let staged = entry
                        .spec
                        .and_then(|spec| stage_plan_of(&self.lifecycle_event, spec, env, true));
                    tracing::info!(
                        service = entry.pattern,
                        usable = staged.is_ok(),
                        "service plan"
                    );
                    let setup = PlanSetup::prepare(&self.lifecycle_event, staged, &self.sources);
                    self.plans.add_mapped(entry.pattern, setup);
                }
            }
        }
        match ParameterSettings::from_env(env) {
            Ok(None) => {}
            Err(e) => {
                self.plans
                    .set_every(unusable(e, "the Parameter Store setting"));
                return self;
            }
            Ok(Some(settings)) => {
                tracing::info!(
                    prefix = settings.prefix,
                    ttl_s = settings.ttl.as_secs(),
                    "services' plans may be kept in Parameter Store"
                );
                let (lifecycle_event, env, sources) = (
                    self.lifecycle_event.clone(),
                    env.clone(),
                    self.sources.clone(),
                );
                let prepare = Box::new(move |spec: Result<crate::plan::PlanSpec, PlanError>| {
                    let staged =
                        spec.and_then(|spec| stage_plan_of(&lifecycle_event, spec, &env, true));
                    PlanSetup::prepare(&lifecycle_event, staged, &sources)
                });
                let store = self.sources.parameters.clone();
                self.plans.set_parameters(settings, store, prepare);
            }
        }
        if self.plans.per_service() {
            self.service_lookup = Some(self.sources.deployments.clone());
        }
        self
    }

    pub fn new(
        lifecycle_event: &str,
        sdk_config: &aws_config::SdkConfig,
        plan: Result<Plan, PlanError>,
    ) -> Self {
        let reporter = Prepared::Ready(CodeDeployReporter::new(sdk_config));
        Self::with_reporter(
            lifecycle_event,
            reporter,
            plan.map(|p| StagePlan::Ready(Box::new(p))),
            Some(sdk_config),
        )
    }

    /// Announces Failed verdicts on this topic.
    pub fn notifying(mut self, notifier: crate::notify::Notifier) -> Self {
        self.notifier = Some(Prepared::Ready(notifier));
        self
    }

    fn with_reporter(
        lifecycle_event: &str,
        reporter: Prepared<CodeDeployReporter>,
        plan: Result<StagePlan, PlanError>,
        sdk_config: Option<&aws_config::SdkConfig>,
    ) -> Self {
        let sources = Sources::new(sdk_config);
        let plans = Catalog::single(PlanSetup::prepare(lifecycle_event, plan, &sources));
        CodeDeployHook {
            lifecycle_event: lifecycle_event.to_string(),
            plans,
            service_lookup: None,
            sources,
            reporter,
            notifier: None,
            continuation: None,
        }
    }

    /// Handles one invocation. `lambda_deadline` is the invocation's deadline from the Lambda context.
    pub async fn handle(
        &self,
        payload: Value,
        lambda_deadline: SystemTime,
    ) -> Result<HookResponse, HookError> {
        let event = parse_lifecycle_event(&payload).inspect_err(|e| {
            tracing::error!(lifecycle_event = %self.lifecycle_event, error = %e, "cannot report this event to CodeDeploy");
        })?;
        let lambda = Deadline::of_invocation(lambda_deadline);
        let report_by = lambda.minus(RETURN_MARGIN);
        let deployment_id = event.deployment_id.clone();
        tracing::info!(lifecycle_event = %self.lifecycle_event, deployment_id, remaining_ms = lambda.remaining().as_millis() as u64, "verifying green");

        let progress = Progress::of(&payload, now_ms());
        // Choosing the plan and finding the route read AWS; they end where verification would,
        // so the report always has its reserve, however long those calls hang.
        let prepare_by = lambda.before_answer();
        let chosen = self.plan_setup(&deployment_id, prepare_by).await;
        let green = chosen
            .as_ref()
            .ok()
            .and_then(|c| c.deployments.as_ref())
            .map(|clients| Arc::new(CodeDeployGreen::new(clients.clone(), &deployment_id)));
        let setup = match &chosen {
            Ok(chosen) => chosen.setup.as_ref().map_err(Clone::clone),
            Err(problem) => Err(problem.clone()),
        };
        let prepared = match setup {
            Err(problem) => Err(problem.clone()),
            Ok((tools, Staged::Ready(plan))) => Ok((tools, plan.clone())),
            Ok((tools, Staged::FindRoute(find))) => match &green {
                Some(green) => green
                    .route(find.route, prepare_by)
                    .await
                    .map_err(|e| format!("no URL reaches green (GREENLIGHT_TEST_URL, GREENLIGHT_PRODUCTION_URL or the plan's target), and it could not be found from the deployment: {e}"))
                    .and_then(|url| find.plan_for(&url))
                    .map(|plan| (tools, plan)),
                None => Err("no URL reaches green, and nothing can find it".into()),
            },
        };
        let verdict = match prepared {
            Err(problem) => Verdict::not_run(problem),
            Ok((tools, plan)) => {
                let mut tools = tools.clone().started_at(progress.started());
                if let Some(green) = &green {
                    tools = tools.with_green(green.clone());
                }
                match self
                    .bake(tools, &plan, progress, &payload, lambda, report_by)
                    .await
                {
                    Baked::Verdict(verdict) => verdict,
                    Baked::Continued(verdict) => {
                        tracing::info!(deployment_id, hop = progress.hop + 1, reason = %verdict.reason, "the bake goes on in a new invocation, which will report");
                        return Ok(HookResponse {
                            lifecycle_event: self.lifecycle_event.clone(),
                            deployment_id,
                            reported: Reported::Continued,
                            verdict,
                        });
                    }
                }
            }
        };
        crate::report::log_verdict(
            &format!("{} {deployment_id}", self.lifecycle_event),
            &verdict,
        );

        let reported = self
            .reporter
            .get()
            .await
            .report_status(&event, verdict.status, report_by)
            .await;
        // After the report, never before it: owners hear of a Failed verdict.
        if let (Some(notifier), false) = (&self.notifier, verdict.succeeded()) {
            let subject = format!(
                "greenlight: {} FAILED for deployment {deployment_id}",
                self.lifecycle_event
            );
            let message = format!(
                "{}\n\n{}",
                verdict.summary(&format!("{} {deployment_id}", self.lifecycle_event)),
                serde_json::to_string_pretty(&verdict).unwrap_or_default()
            );
            notifier
                .get()
                .await
                .publish(&subject, &message, report_by)
                .await;
        }
        match reported {
            Ok(reported) => {
                tracing::info!(deployment_id, status = %verdict.status, reported = ?reported, "reported to CodeDeploy");
                Ok(HookResponse {
                    lifecycle_event: self.lifecycle_event.clone(),
                    deployment_id,
                    reported,
                    verdict,
                })
            }
            Err(source) => {
                tracing::error!(deployment_id, status = %verdict.status, error = %source, "REPORT FAILED: CodeDeploy does not have this hook's status");
                Err(HookError::Report {
                    deployment_id,
                    status: verdict.status,
                    source,
                })
            }
        }
    }
}

/// What a hook's settings give it: a plan, or a plan to resolve per deployment.
pub enum StagePlan {
    Ready(Box<Plan>),
    FindRoute(Box<FindRoute>),
}

/// The plan `lifecycle_event` runs, from the settings in `env`. When no URL reaches green (no
/// `GREENLIGHT_TEST_URL`, or `GREENLIGHT_PRODUCTION_URL` after the shift, no target in the plan or
/// the stage) and the stage's checks ask green over HTTP, the route is found from each deployment;
/// without any plan at all, that route gets the default plan.
fn stage_plan(lifecycle_event: &str, env: &Env) -> Result<StagePlan, PlanError> {
    let spec = match PlanSettings::from_env(env)?.load_spec() {
        // Nothing configured but where green is: the default plan (GET it, expect 200-399).
        Err(PlanError::Missing) => crate::plan::PlanSpec::default_plan(),
        other => other?,
    };
    stage_plan_of(lifecycle_event, spec, env, false)
}

/// [`stage_plan`] for a plan already read. `own_target_wins`: a service's plan (from
/// `GREENLIGHT_PLANS`) that names its target goes there, whatever URL the function is given for
/// every service.
fn stage_plan_of(
    lifecycle_event: &str,
    spec: crate::plan::PlanSpec,
    env: &Env,
    own_target_wins: bool,
) -> Result<StagePlan, PlanError> {
    let mut settings = PlanSettings::from_env(env)?;
    let mut production_url = env
        .setting("GREENLIGHT_PRODUCTION_URL")
        .map_err(|e| PlanError::Source(e.to_string()))?
        .map(|url| Setting::new(url, "GREENLIGHT_PRODUCTION_URL"));
    if own_target_wins && spec.target.is_some() {
        settings.test_url = None;
        production_url = None;
    }
    let production = lifecycle_event == AFTER_ALLOW_TRAFFIC;
    let configured = if production {
        production_url.is_some()
    } else {
        settings.test_url.is_some()
    };
    let stage = spec.stages.get(lifecycle_event);
    let checks = stage
        .and_then(|s| s.checks.as_ref())
        .unwrap_or(&spec.checks);
    let needs_route = !configured
        && spec.target.is_none()
        && stage.and_then(|s| s.target.as_ref()).is_none()
        && checks.iter().any(|c| c.probe.asks_over_http());
    if needs_route {
        return Ok(StagePlan::FindRoute(Box::new(FindRoute {
            spec,
            env: env.clone(),
            lifecycle_event: lifecycle_event.to_string(),
            route: if production {
                Route::Production
            } else {
                Route::Test
            },
            resolved: LastResolved::new(),
        })));
    }
    spec.for_stage(
        lifecycle_event,
        production,
        settings.test_url.as_ref(),
        production_url.as_ref(),
        env,
    )
    .unwrap_or_else(|| {
        Err(PlanError::Source(format!(
            "the plan has no checks for {lifecycle_event}{}: give `stages.{lifecycle_event}.checks`",
            if production {
                " (compare checks cannot run once production reaches green)"
            } else {
                ""
            }
        )))
    })
    .map(|plan| StagePlan::Ready(Box::new(plan)))
}

/// How a verification with waits ended in one invocation.
enum Baked {
    /// Decided (or undecidable): report it.
    Verdict(Verdict),
    /// Handed on to a new invocation; this verdict is only this invocation's view.
    Continued(Verdict),
}

impl CodeDeployHook {
    /// The plan this deployment gets: its service's own (`GREENLIGHT_PLANS`, Parameter Store),
    /// else the plan of every deployment.
    async fn plan_setup(
        &self,
        deployment_id: &str,
        deadline: Deadline,
    ) -> Result<Arc<PlanSetup>, String> {
        let Some(clients) = self
            .plans
            .per_service()
            .then_some(self.service_lookup.as_ref())
            .flatten()
        else {
            return Ok(self.plans.every().clone());
        };
        let service = CodeDeployGreen::new(clients.clone(), deployment_id)
            .service(deadline)
            .await
            .map_err(|e| format!("plans are chosen by service (GREENLIGHT_PLANS, Parameter Store), and this deployment's service could not be read: {e}"))?;
        let (setup, origin) = self.plans.choose(&service, deadline).await?;
        tracing::info!(deployment_id, service, plan = %origin, "the plan for this service");
        Ok(setup)
    }

    /// Verifies; while metric checks are still waiting, waits in this invocation when their
    /// window ends before it does, else hands the verification on to a new invocation shortly
    /// before this one's deadline.
    async fn bake(
        &self,
        tools: Tools,
        plan: &Arc<Plan>,
        progress: Progress,
        payload: &Value,
        lambda: Deadline,
        report_by: Deadline,
    ) -> Baked {
        loop {
            let verify_by = lambda.for_verification(plan.budget);
            let verdict = verify_isolated(tools.clone(), plan.clone(), verify_by).await;
            let Some(until) = plan.longest_wait().map(|w| progress.started() + w) else {
                return Baked::Verdict(verdict);
            };
            let left = until.duration_since(SystemTime::now()).unwrap_or_default();
            if !verdict.undecided() || left.is_zero() {
                return Baked::Verdict(verdict);
            }
            if left + JUDGING_TIME <= report_by.remaining() {
                // The window ends in this invocation: wait for it, then verify again.
                tokio::time::sleep(left).await;
                continue;
            }
            let Some(continuation) = &self.continuation else {
                return Baked::Verdict(verdict);
            };
            if progress.hop.saturating_add(1) >= MAX_HOPS {
                return Baked::Verdict(Verdict::not_run(format!(
                    "the bake has used {MAX_HOPS} invocations and still waits {}: raise the hook's timeout",
                    crate::duration::format_duration(left)
                )));
            }
            // Use this invocation to the end, then hand over.
            let hand_over = report_by.minus(HAND_OVER_MARGIN);
            tokio::time::sleep_until(hand_over.instant()).await;
            let next = progress.next_event(payload);
            return match continuation
                .continue_with(next, report_by.minus(HAND_OVER_MARGIN / 2))
                .await
            {
                Ok(()) => Baked::Continued(verdict),
                Err(why) => Baked::Verdict(Verdict::not_run(format!(
                    "the bake outlasts this invocation and could not go on in a new one: {why}"
                ))),
            };
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl crate::lambda::Handler for CodeDeployHook {
    type Response = HookResponse;
    type Error = HookError;

    fn handle(
        &self,
        payload: Value,
        deadline: SystemTime,
    ) -> impl std::future::Future<Output = Result<HookResponse, HookError>> + Send {
        CodeDeployHook::handle(self, payload, deadline)
    }
}
