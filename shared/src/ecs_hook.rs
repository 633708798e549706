//! The ECS-native lifecycle hook (blue/green, linear and canary deployments run by ECS itself).
//! ECS invokes the function at lifecycle stages and reads the returned `hookStatus`:
//! `SUCCEEDED` continues, `FAILED` rolls back, `IN_PROGRESS` asks to be invoked again after
//! `callBackDelay` seconds with the returned `hookDetails` merged into the next event.
//!
//! The same plan and engine as the CodeDeploy hooks. By default the plan's checks run at
//! `POST_TEST_TRAFFIC_SHIFT` through `GREENLIGHT_TEST_URL`, and at `POST_PRODUCTION_TRAFFIC_SHIFT`
//! through `GREENLIGHT_PRODUCTION_URL` when it is set; a plan's `stages:` map chooses otherwise.
//! Stages without checks, unknown stages and rollback invocations succeed at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::deadline::Deadline;
use crate::ecs_route::{EcsRoutes, FoundRoute};
use crate::env::Env;
use crate::green::{resolve_at, LastResolved, Route};
use crate::plan::catalog::{Catalog, ParameterSettings, ParameterStore, SsmParameters};
use crate::plan::services::ServicePlans;
use crate::plan::{Plan, PlanError, PlanSettings, PlanSpec, Setting, StageSpec};
use crate::probe::metric::{CloudWatchMetrics, MetricSource};
use crate::probe::target_health::{ElbLoadBalancers, LoadBalancers};
use crate::verdict::Verdict;
use crate::verify::{verify_isolated, Tools};

pub const POST_TEST_TRAFFIC_SHIFT: &str = "POST_TEST_TRAFFIC_SHIFT";
pub const POST_PRODUCTION_TRAFFIC_SHIFT: &str = "POST_PRODUCTION_TRAFFIC_SHIFT";
/// The key under `hookDetails` where greenlight keeps its progress across invocations.
const PROGRESS_KEY: &str = "greenlight";

/// `SUCCEEDED`, `FAILED` or `IN_PROGRESS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HookStatus {
    Succeeded,
    Failed,
    InProgress,
}

/// What ECS reads back.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookResponse {
    pub hook_status: HookStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_back_delay: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook_details: Option<Value>,
}

impl HookResponse {
    fn done(status: HookStatus) -> Self {
        HookResponse {
            hook_status: status,
            call_back_delay: None,
            hook_details: None,
        }
    }
}

/// The invocation payload, in the current (wrapped) or launch-era (flat) shape.
#[derive(Debug, Clone, PartialEq)]
pub struct EcsHookEvent {
    pub execution_id: String,
    pub lifecycle_stage: String,
    pub resource_arn: String,
    pub service_arn: Option<String>,
    pub target_service_revision_arn: Option<String>,
    pub test_traffic_weights: BTreeMap<String, f64>,
    pub production_traffic_weights: BTreeMap<String, f64>,
    pub hook_details: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    execution_id: Option<String>,
    lifecycle_stage: Option<String>,
    resource_arn: Option<String>,
    execution_details: Option<RawDetails>,
    #[serde(flatten)]
    flat: RawDetails,
    hook_details: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawDetails {
    service_arn: Option<String>,
    target_service_revision_arn: Option<String>,
    test_traffic_weights: Option<BTreeMap<String, f64>>,
    production_traffic_weights: Option<BTreeMap<String, f64>>,
}

/// Reads the event; the stage is required, everything else is best effort.
pub fn parse_ecs_hook_event(payload: &Value) -> Result<EcsHookEvent, String> {
    if !payload.is_object() {
        return Err(format!(
            "not an ECS lifecycle hook event: expected a JSON object, got {payload}"
        ));
    }
    let raw: RawEvent = serde_json::from_value(payload.clone())
        .map_err(|e| format!("not an ECS lifecycle hook event: {e}"))?;
    let lifecycle_stage = raw
        .lifecycle_stage
        .filter(|s| !s.is_empty())
        .ok_or("not an ECS lifecycle hook event: `lifecycleStage` is missing")?;
    let details = raw.execution_details.unwrap_or(raw.flat);
    Ok(EcsHookEvent {
        execution_id: raw.execution_id.unwrap_or_default(),
        lifecycle_stage,
        resource_arn: raw.resource_arn.unwrap_or_default(),
        service_arn: details.service_arn,
        target_service_revision_arn: details.target_service_revision_arn,
        test_traffic_weights: details.test_traffic_weights.unwrap_or_default(),
        production_traffic_weights: details.production_traffic_weights.unwrap_or_default(),
        hook_details: raw.hook_details,
    })
}

impl EcsHookEvent {
    /// `ecs/CLUSTER/SERVICE`, from `serviceArn` (`arn:…:service/CLUSTER/SERVICE`).
    pub fn service_key(&self) -> Option<String> {
        let arn = self.service_arn.as_deref()?;
        let resource = arn.split(':').nth(5)?;
        let mut parts = resource.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("service"), Some(cluster), Some(service), None)
                if !cluster.is_empty() && !service.is_empty() =>
            {
                Some(format!("ecs/{cluster}/{service}"))
            }
            _ => None,
        }
    }

    /// During a rollback ECS re-invokes the traffic-shift stages with the target revision's weight
    /// at 0: that is not a deployment to verify.
    pub fn is_rollback(&self) -> bool {
        let weights = match self.lifecycle_stage.as_str() {
            "TEST_TRAFFIC_SHIFT" => &self.test_traffic_weights,
            "PRODUCTION_TRAFFIC_SHIFT" => &self.production_traffic_weights,
            _ => return false,
        };
        let Some(target) = &self.target_service_revision_arn else {
            return false;
        };
        weights.get(target).is_some_and(|w| *w == 0.0)
    }
}

/// greenlight's progress, kept in `hookDetails.greenlight` between invocations of one stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reason: Option<String>,
    /// When the stage was first invoked: metric checks' `wait` counts from here, so a bake can
    /// span invocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
}

/// A stage with checks, ready to verify (or why it is not).
type StageSetup = Result<(StagePlan, StageSpec), PlanError>;

/// A stage's plan: resolved once, or, when no URL reaches green, resolved per invocation for the
/// route found from the service revision.
#[derive(Clone)]
pub enum StagePlan {
    Ready(Arc<Plan>),
    FindRoute(Arc<RoutedPlan>),
}

/// A stage's plan waiting for the route to green.
pub struct RoutedPlan {
    spec: PlanSpec,
    env: Env,
    stage: String,
    route: Route,
    resolved: LastResolved<FoundRoute>,
}

impl RoutedPlan {
    /// The plan for `found`: its URL, the headers its rule needs; refused when a check would not
    /// match the rule (and so reach blue, or nothing).
    fn plan_for(&self, found: &FoundRoute) -> Result<Arc<Plan>, String> {
        self.resolved.get_or_resolve(found, || self.resolve(found))
    }

    fn resolve(&self, found: &FoundRoute) -> Result<Plan, String> {
        let mut spec = self.spec.clone();
        spec.send_headers(&found.request.headers)?;
        let what = match self.route {
            Route::Test => "the service revision's test listener rule",
            Route::Production => "the service revision's production listener rule",
        };
        let plan = resolve_at(&spec, &self.stage, self.route, &found.url, what, &self.env)?;
        let origin = |url: &reqwest::Url| {
            (
                url.scheme().to_string(),
                url.host_str().map(str::to_string),
                url.port_or_known_default(),
            )
        };
        let route_origin = reqwest::Url::parse(&found.url).map(|u| origin(&u)).ok();
        let ready = plan.ready.iter().flat_map(|r| r.checks.iter());
        for check in plan.checks.iter().chain(ready) {
            if matches!(check.probe, crate::probe::Probe::Compare(_))
                && !found.request.headers.is_empty()
            {
                return Err(format!("check {} compares green with blue, but green is reached by the rule {}'s header, which the same request to blue would carry too: set GREENLIGHT_TEST_URL and GREENLIGHT_PRODUCTION_URL for compare checks", check.name, found.rule));
            }
            let requests =
                std::iter::once(check).chain(check.routes.iter().map(|(r, _)| r.as_ref()));
            for request in requests {
                if !check.probe.asks_over_http() || Some(origin(&request.url)) != route_origin {
                    continue;
                }
                if let Some(why) = found
                    .request
                    .admits(request.method.as_str(), request.url.path())
                {
                    return Err(format!("check {} ({} {}) would not reach green through {}: {why}; give it a path and method the rule matches, or set GREENLIGHT_TEST_URL", check.name, request.method, request.url.path(), found.rule));
                }
            }
        }
        Ok(plan)
    }
}
/// Stage → its plan, for the stages that verify; a plan error applies to every stage.
type Stages = Result<HashMap<String, StageSetup>, PlanError>;

/// The key of `hookDetails` (static configuration on the service's hook) that chooses a plan as
/// if the service were the one named (`ecs/CLUSTER/SERVICE` or `APPLICATION/GROUP`), so services
/// can share one.
pub const PLAN_KEY: &str = "greenlightPlan";

/// The ECS-native hook function, set up once per process.
pub struct EcsHook {
    http: Result<reqwest::Client, String>,
    /// Where metric checks read CloudWatch (its client is built on first use).
    metrics: Arc<dyn MetricSource>,
    /// Where target_health checks ask the load balancer (likewise).
    load_balancers: Arc<dyn LoadBalancers>,
    /// The plan of every service, and each service's own (`GREENLIGHT_PLANS`, Parameter Store).
    plans: Catalog<Stages>,
    /// Finds the route to green when no URL is configured (its clients are built on first use).
    routes: Arc<EcsRoutes>,
}

impl EcsHook {
    pub fn from_env() -> Self {
        Self::new(&Env::process())
    }

    /// Reads the plan settings, `GREENLIGHT_PRODUCTION_URL`, `GREENLIGHT_PLANS`, the Parameter
    /// Store setting and the variables plans refer to from `env`.
    pub fn new(env: &Env) -> Self {
        let base = PlanSettings::from_env(env).and_then(|settings| {
            let production_url = env
                .setting("GREENLIGHT_PRODUCTION_URL")
                .map_err(|e| PlanError::Source(e.to_string()))?
                .map(|url| Setting::new(url, "GREENLIGHT_PRODUCTION_URL"));
            Ok((settings, production_url))
        });
        let every = base.clone().and_then(|(settings, production_url)| {
            let spec = match settings.load_spec() {
                // Nothing configured but where green is (or not even that: then it is found from
                // each service revision): the default plan, GET it and expect 200-399.
                Err(PlanError::Missing) => PlanSpec::default_plan(),
                other => other?,
            };
            for warning in &spec.warnings {
                tracing::warn!(warning = %warning, "plan warning");
            }
            Ok(stage_plans(
                &spec,
                &settings,
                production_url.as_ref(),
                env,
                false,
            ))
        });
        log_stages("every service", &every);
        let mut plans = Catalog::single(every);
        let services = ServicePlans::from_env(env)
            .and_then(|mapped| Ok((mapped, ParameterSettings::from_env(env)?)));
        match (services, base) {
            (Err(e), _) | (Ok(_), Err(e)) => {
                tracing::error!(error = %e, "the plan settings are unusable; every verifying stage will answer FAILED");
                plans.set_every(Err(e));
            }
            (Ok((mapped, parameter_settings)), Ok((settings, production_url))) => {
                let env = env.clone();
                let prepare = move |spec: Result<PlanSpec, PlanError>| {
                    spec.map(|spec| {
                        stage_plans(&spec, &settings, production_url.as_ref(), &env, true)
                    })
                };
                for entry in mapped.map(|m| m.entries).unwrap_or_default() {
                    let stages = prepare(entry.spec);
                    log_stages(&entry.pattern, &stages);
                    plans.add_mapped(entry.pattern, stages);
                }
                if let Some(parameter_settings) = parameter_settings {
                    tracing::info!(
                        prefix = parameter_settings.prefix,
                        ttl_s = parameter_settings.ttl.as_secs(),
                        "services' plans may be kept in Parameter Store"
                    );
                    plans.set_parameters(
                        parameter_settings,
                        Arc::new(SsmParameters::from_env()),
                        Box::new(prepare),
                    );
                }
            }
        }
        let http = crate::http::build_check_client()
            .map_err(|e| format!("could not build the HTTP client: {e}"));
        EcsHook {
            http,
            plans,
            metrics: Arc::new(CloudWatchMetrics::from_env()),
            load_balancers: Arc::new(ElbLoadBalancers::from_env()),
            routes: EcsRoutes::from_env(),
        }
    }

    /// Routes to green are found through `routes` instead of the process's AWS configuration.
    pub fn with_routes(mut self, routes: Arc<EcsRoutes>) -> Self {
        self.routes = routes;
        self
    }

    /// Parameter Store plans are read through `store` instead of the process's.
    pub fn with_parameter_store(mut self, store: Arc<dyn ParameterStore>) -> Self {
        self.plans.use_store(store);
        self
    }

    /// target_health checks ask `load_balancers` instead of the process's.
    pub fn with_load_balancers(mut self, load_balancers: Arc<dyn LoadBalancers>) -> Self {
        self.load_balancers = load_balancers;
        self
    }

    /// Metric checks read `metrics` instead of the process's CloudWatch.
    pub fn with_metrics(mut self, metrics: Arc<dyn MetricSource>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Handles one invocation. Never returns an error: a malformed event is answered `FAILED`.
    pub async fn handle(&self, payload: Value, lambda_deadline: SystemTime) -> HookResponse {
        let event = match parse_ecs_hook_event(&payload) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(error = %e, "malformed ECS hook event; answering FAILED so ECS rolls back");
                return HookResponse::done(HookStatus::Failed);
            }
        };
        let stage = event.lifecycle_stage.as_str();
        let ids = (&event.execution_id, &event.resource_arn);
        if event.is_rollback() {
            tracing::info!(
                stage,
                execution_id = ids.0,
                deployment = ids.1,
                "rollback invocation (target revision at weight 0): SUCCEEDED"
            );
            return HookResponse::done(HookStatus::Succeeded);
        }
        let stages = match self.stages_of(&event, lambda_deadline).await {
            Ok(stages) => stages,
            Err(problem) => {
                tracing::error!(stage, execution_id = ids.0, error = %problem, "no plan for this service: FAILED, ECS rolls back");
                return HookResponse::done(HookStatus::Failed);
            }
        };
        let setup = match stages.as_ref() {
            Err(e) => Err(e.clone()),
            Ok(stages) => match stages.get(stage) {
                Some(setup) => setup.clone(),
                None => {
                    if !crate::plan::ECS_STAGES.contains(&stage) {
                        tracing::warn!(stage, "unknown lifecycle stage; nothing to verify");
                    }
                    tracing::info!(
                        stage,
                        execution_id = ids.0,
                        "no checks for this stage: SUCCEEDED"
                    );
                    return HookResponse::done(HookStatus::Succeeded);
                }
            },
        };
        let previous: Progress = event
            .hook_details
            .as_ref()
            .and_then(|d| d.get(PROGRESS_KEY))
            .and_then(|p| serde_json::from_value(p.clone()).ok())
            .unwrap_or_default();
        let now = now_ms();
        // A start in the future (hookDetails are the service owner's to write) is now.
        let started_at_ms = previous.started_at_ms.filter(|s| *s <= now).unwrap_or(now);
        let previous = Progress {
            started_at_ms: Some(started_at_ms),
            ..previous
        };
        let http = self.http.as_ref().map_err(Clone::clone);
        let (verdict, stage_spec, longest_wait) = match (setup, http) {
            (Err(e), _) => (Verdict::not_run(e.to_string()), None, None),
            (_, Err(problem)) => (Verdict::not_run(problem), None, None),
            (Ok((staged, spec)), Ok(client)) => {
                let plan = match self.plan_of(&staged, &event, lambda_deadline).await {
                    Ok(plan) => plan,
                    Err(problem) => {
                        let verdict = Verdict::not_run(problem);
                        crate::report::log_verdict(
                            &format!("{stage} {}", event.resource_arn),
                            &verdict,
                        );
                        let response = decide(&verdict, Some(&spec), previous, now_ms());
                        return keep_static_details(response, event.hook_details.as_ref());
                    }
                };
                let verify_by =
                    Deadline::of_invocation(lambda_deadline).for_verification(plan.budget);
                let tools = Tools::http(client.clone())
                    .with_metrics(self.metrics.clone())
                    .with_load_balancers(self.load_balancers.clone())
                    .started_at(UNIX_EPOCH + std::time::Duration::from_millis(started_at_ms));
                let longest_wait = plan.longest_wait();
                (
                    verify_isolated(tools, plan, verify_by).await,
                    Some(spec),
                    longest_wait,
                )
            }
        };
        crate::report::log_verdict(&format!("{stage} {}", event.resource_arn), &verdict);
        let waiting_until = longest_wait
            .map(|wait| started_at_ms + wait.as_millis() as u64)
            .filter(|until| *until > now_ms() && verdict.undecided());
        let response = match waiting_until {
            Some(until) => wait_for_metrics(previous, until, now_ms()),
            None => decide(&verdict, stage_spec.as_ref(), previous, now_ms()),
        };
        let response = keep_static_details(response, event.hook_details.as_ref());
        tracing::info!(stage, execution_id = ids.0, hook_status = ?response.hook_status, call_back_delay = response.call_back_delay, "answering ECS");
        response
    }

    /// The stage's plan, resolved for the route found from the event's service revision when it
    /// needs one.
    async fn plan_of(
        &self,
        staged: &StagePlan,
        event: &EcsHookEvent,
        lambda_deadline: SystemTime,
    ) -> Result<Arc<Plan>, String> {
        let routed = match staged {
            StagePlan::Ready(plan) => return Ok(plan.clone()),
            StagePlan::FindRoute(routed) => routed,
        };
        let revision = event.target_service_revision_arn.as_deref().ok_or(
            "no URL reaches green (GREENLIGHT_TEST_URL or the plan's target), and the event names no targetServiceRevisionArn to find it from",
        )?;
        let deadline = Deadline::of_invocation(lambda_deadline).before_answer();
        let found = self
            .routes
            .route(revision, routed.route, deadline)
            .await
            .map_err(|e| format!("no URL reaches green (GREENLIGHT_TEST_URL or the plan's target), and it could not be found from the service revision: {e}"))?;
        routed.plan_for(&found)
    }

    /// The stages of this service's plan: `hookDetails.greenlightPlan`, else the service in the
    /// event, chooses it when plans are kept per service.
    async fn stages_of(
        &self,
        event: &EcsHookEvent,
        lambda_deadline: SystemTime,
    ) -> Result<Arc<Stages>, String> {
        if !self.plans.per_service() {
            return Ok(self.plans.every().clone());
        }
        let chosen = event
            .hook_details
            .as_ref()
            .and_then(|d| d.get(PLAN_KEY))
            .map(|named| match named.as_str() {
                Some(name) if valid_service_name(name) => Ok(name.to_string()),
                _ => Err(format!("hookDetails.{PLAN_KEY} is {named}: it names a plan as ecs/CLUSTER/SERVICE or APPLICATION/GROUP (letters, digits, _.-/)")),
            });
        let service = match chosen {
            Some(named) => named?,
            None => event.service_key().ok_or_else(|| {
                format!(
                    "plans are chosen by service (GREENLIGHT_PLANS, Parameter Store), and the event names no service (serviceArn is {:?})",
                    event.service_arn
                )
            })?,
        };
        let deadline = Deadline::of_invocation(lambda_deadline).before_answer();
        let (stages, origin) = self.plans.choose(&service, deadline).await?;
        tracing::info!(service, plan = %origin, "the plan for this service");
        Ok(stages)
    }
}

/// A name a plan can be chosen by: `ecs/CLUSTER/SERVICE` or `APPLICATION/GROUP`.
fn valid_service_name(name: &str) -> bool {
    name.contains('/')
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
}

/// ECS may replace `hookDetails` with what a response returns: the service's static keys go back
/// with greenlight's progress, so they reach the next invocation too.
fn keep_static_details(mut response: HookResponse, incoming: Option<&Value>) -> HookResponse {
    let (Some(Value::Object(ours)), Some(Value::Object(theirs))) =
        (response.hook_details.as_mut(), incoming)
    else {
        return response;
    };
    for (key, value) in theirs {
        if key != PROGRESS_KEY {
            ours.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    response
}

fn log_stages(whose: &str, stages: &Stages) {
    match stages {
        Err(e) => {
            tracing::error!(plan = whose, error = %e, "the plan is unusable; every verifying stage will answer FAILED")
        }
        Ok(map) => {
            for (stage, setup) in map {
                match setup {
                    Ok((StagePlan::Ready(plan), _)) => tracing::info!(
                        plan = whose,
                        stage,
                        checks = plan.checks.len(),
                        "stage will be verified"
                    ),
                    Ok((StagePlan::FindRoute(_), _)) => tracing::info!(
                        plan = whose,
                        stage,
                        "stage will be verified through the route found from each service revision"
                    ),
                    Err(e) => {
                        tracing::error!(plan = whose, stage, error = %e, "this stage's plan is unusable; it will answer FAILED")
                    }
                }
            }
        }
    }
}

impl crate::lambda::Handler for EcsHook {
    type Response = HookResponse;
    type Error = std::convert::Infallible;

    async fn handle(
        &self,
        payload: Value,
        deadline: SystemTime,
    ) -> Result<HookResponse, std::convert::Infallible> {
        Ok(EcsHook::handle(self, payload, deadline).await)
    }
}

/// A metric check is still waiting (its bake window is not over): `IN_PROGRESS` until then,
/// without spending one of the stage's attempts.
fn wait_for_metrics(previous: Progress, until_ms: u64, now_ms: u64) -> HookResponse {
    let delay = until_ms
        .saturating_sub(now_ms)
        .div_ceil(1000)
        .clamp(1, MAX_CALL_BACK_DELAY);
    tracing::info!(
        call_back_delay = delay,
        "metric checks wait for their window; ECS will invoke again"
    );
    HookResponse {
        hook_status: HookStatus::InProgress,
        call_back_delay: Some(delay),
        hook_details: Some(json!({ PROGRESS_KEY: previous })),
    }
}

/// The longest `callBackDelay` greenlight asks for while metrics bake (ECS invokes again then,
/// and the wait goes on).
const MAX_CALL_BACK_DELAY: u64 = 900;

/// Passed → `SUCCEEDED`; not passed → `IN_PROGRESS` while the stage allows another attempt, then
/// `FAILED`.
fn decide(
    verdict: &Verdict,
    stage: Option<&StageSpec>,
    previous: Progress,
    now_ms: u64,
) -> HookResponse {
    let attempts = previous.attempts + 1;
    if verdict.succeeded() {
        let details = json!({PROGRESS_KEY: Progress { attempts, first_failure_at_ms: previous.first_failure_at_ms, last_reason: Some(verdict.reason.clone()), started_at_ms: previous.started_at_ms }});
        return HookResponse {
            hook_status: HookStatus::Succeeded,
            call_back_delay: None,
            hook_details: Some(details),
        };
    }
    let first_failure_at_ms = previous.first_failure_at_ms.unwrap_or(now_ms);
    let progress = Progress {
        attempts,
        first_failure_at_ms: Some(first_failure_at_ms),
        last_reason: Some(verdict.reason.clone()),
        started_at_ms: previous.started_at_ms,
    };
    let details = Some(json!({PROGRESS_KEY: progress}));
    let Some(stage) = stage else {
        return HookResponse {
            hook_status: HookStatus::Failed,
            call_back_delay: None,
            hook_details: details,
        };
    };
    let within_window = stage.within.is_none_or(|w| {
        now_ms.saturating_sub(first_failure_at_ms) + stage.retry_after.as_millis() as u64
            <= w.as_millis() as u64
    });
    if attempts < stage.attempts && within_window {
        tracing::warn!(attempt = attempts, allowed = stage.attempts, reason = %verdict.reason, "verification did not pass; ECS will invoke again");
        HookResponse {
            hook_status: HookStatus::InProgress,
            call_back_delay: Some(stage.retry_after.as_secs().max(1)),
            hook_details: details,
        }
    } else {
        let why = if attempts >= stage.attempts {
            format!("{attempts} of {} attempts used", stage.attempts)
        } else {
            "the stage's time window is spent".to_string()
        };
        tracing::error!(attempts, reason = %verdict.reason, "verification failed ({why}): FAILED, ECS rolls back");
        HookResponse {
            hook_status: HookStatus::Failed,
            call_back_delay: None,
            hook_details: details,
        }
    }
}

/// Which stages verify, with which checks and target.
fn stage_plans(
    spec: &PlanSpec,
    settings: &PlanSettings,
    production_url: Option<&Setting>,
    env: &Env,
    own_target_wins: bool,
) -> HashMap<String, StageSetup> {
    // A service's plan (GREENLIGHT_PLANS, Parameter Store) that names its target goes there,
    // whatever URL the function is given for every service.
    let (test_url, production_url) = if own_target_wins && spec.target.is_some() {
        (None, None)
    } else {
        (settings.test_url.as_ref(), production_url)
    };
    let mut stages: Vec<(String, StageSpec)> = spec
        .stages
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if stages.is_empty() {
        let default = StageSpec {
            target: None,
            checks: None,
            attempts: 1,
            within: None,
            retry_after: crate::plan::DEFAULT_RETRY_AFTER,
        };
        stages.push((POST_TEST_TRAFFIC_SHIFT.into(), default.clone()));
        if production_url.is_some() {
            stages.push((POST_PRODUCTION_TRAFFIC_SHIFT.into(), default));
        }
    }
    stages
        .into_iter()
        .filter(|(stage, _)| !crate::plan::CODEDEPLOY_HOOKS.contains(&stage.as_str()))
        .filter_map(|(stage, stage_spec)| {
            let production = stage.contains("PRODUCTION");
            let spec = PlanSpec {
                stages: BTreeMap::from([(stage.clone(), stage_spec.clone())]),
                ..spec.clone()
            };
            // ECS keeps the test rule on green after the shift: without a production URL,
            // production stages go through the test URL.
            let stage_url = if production {
                production_url.or(test_url)
            } else {
                test_url
            };
            let checks = stage_spec.checks.as_ref().unwrap_or(&spec.checks);
            let needs_route = stage_url.is_none()
                && spec.target.is_none()
                && stage_spec.target.is_none()
                && checks.iter().any(|c| c.probe.asks_over_http());
            if needs_route {
                tracing::info!(
                    stage,
                    "no URL reaches green: the route will be found from each service revision"
                );
                let routed = RoutedPlan {
                    spec,
                    env: env.clone(),
                    stage: stage.clone(),
                    route: if production {
                        Route::Production
                    } else {
                        Route::Test
                    },
                    resolved: LastResolved::new(),
                };
                return Some((
                    stage,
                    Ok((StagePlan::FindRoute(Arc::new(routed)), stage_spec)),
                ));
            }
            let resolved = spec.for_stage(
                &stage,
                production,
                test_url,
                production_url.or(test_url),
                env,
            )?;
            Some((
                stage,
                resolved.map(|plan| (StagePlan::Ready(Arc::new(plan)), stage_spec)),
            ))
        })
        .collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Probe;
    use std::time::Duration;

    #[test]
    fn compare_runs_against_blue_before_the_production_shift_and_never_after() {
        let plan = "version: 1\nchecks:\n  - {name: health, path: /health}\n  - {name: same-as-blue, path: /api, compare: true}\n";
        let hook = EcsHook::new(&Env::from_pairs([
            ("GREENLIGHT_TEST_URL", "http://green.test:8080"),
            ("GREENLIGHT_PRODUCTION_URL", "http://prod.test"),
            ("GREENLIGHT_PLAN", plan),
        ]));
        let stages = hook.plans.every().as_ref().as_ref().expect("a usable plan");
        let names = |stage: &str| -> Vec<String> {
            let Ok((StagePlan::Ready(plan), _)) = &stages[stage] else {
                panic!("resolved")
            };
            plan.checks.iter().map(|c| c.name.clone()).collect()
        };
        assert_eq!(names(POST_TEST_TRAFFIC_SHIFT), ["health", "same-as-blue"]);
        let Ok((StagePlan::Ready(plan), _)) = &stages[POST_TEST_TRAFFIC_SHIFT] else {
            panic!("resolved")
        };
        let Probe::Compare(compare) = &plan.checks[1].probe else {
            panic!("a compare probe")
        };
        assert_eq!(compare.blue[0].url.as_str(), "http://prod.test/api");
        assert_eq!(plan.checks[1].url.as_str(), "http://green.test:8080/api");
        // Once production traffic reaches green, there is no blue behind the production URL.
        assert_eq!(names(POST_PRODUCTION_TRAFFIC_SHIFT), ["health"]);
    }

    #[test]
    fn reads_the_wrapped_and_the_flat_shape() {
        let wrapped = parse_ecs_hook_event(&json!({"executionId": "e", "lifecycleStage": "POST_TEST_TRAFFIC_SHIFT", "resourceArn": "arn:d",
            "executionDetails": {"targetServiceRevisionArn": "arn:green", "testTrafficWeights": {"arn:green": 100}}})).unwrap();
        let flat = parse_ecs_hook_event(&json!({"executionId": "e", "lifecycleStage": "POST_TEST_TRAFFIC_SHIFT", "resourceArn": "arn:d",
            "targetServiceRevisionArn": "arn:green", "testTrafficWeights": {"arn:green": 100}})).unwrap();
        assert_eq!(wrapped, flat);
        assert_eq!(wrapped.test_traffic_weights["arn:green"], 100.0);
    }

    #[test]
    fn a_traffic_shift_with_the_target_at_zero_is_a_rollback() {
        let event = |stage: &str, weight: u32| {
            parse_ecs_hook_event(&json!({"lifecycleStage": stage, "executionDetails": {"targetServiceRevisionArn": "g",
                "productionTrafficWeights": {"g": weight, "b": 100 - weight}, "testTrafficWeights": {"g": weight}}})).unwrap()
        };
        assert!(event("PRODUCTION_TRAFFIC_SHIFT", 0).is_rollback());
        assert!(event("TEST_TRAFFIC_SHIFT", 0).is_rollback());
        assert!(!event("PRODUCTION_TRAFFIC_SHIFT", 10).is_rollback());
        assert!(!event("POST_PRODUCTION_TRAFFIC_SHIFT", 0).is_rollback());
    }

    #[test]
    fn a_malformed_event_names_what_is_missing() {
        assert!(parse_ecs_hook_event(&json!({"executionId": "e"}))
            .unwrap_err()
            .contains("`lifecycleStage` is missing"));
        assert!(parse_ecs_hook_event(&json!(42))
            .unwrap_err()
            .contains("expected a JSON object"));
        assert!(parse_ecs_hook_event(&json!({"lifecycleStage": 7})).is_err());
    }

    fn stage(attempts: u32, within: Option<Duration>) -> StageSpec {
        StageSpec {
            target: None,
            checks: None,
            attempts,
            within,
            retry_after: Duration::from_secs(20),
        }
    }

    #[test]
    fn failing_verifications_retry_until_the_attempts_are_spent() {
        let failed = Verdict::not_run("status: expected 200, got 500");
        let first = decide(&failed, Some(&stage(3, None)), Progress::default(), 1_000);
        assert_eq!(first.hook_status, HookStatus::InProgress);
        assert_eq!(first.call_back_delay, Some(20));
        let progress: Progress =
            serde_json::from_value(first.hook_details.unwrap()[PROGRESS_KEY].clone()).unwrap();
        assert_eq!(
            progress,
            Progress {
                attempts: 1,
                first_failure_at_ms: Some(1_000),
                last_reason: Some("status: expected 200, got 500".into()),
                started_at_ms: None,
            }
        );
        let second = decide(&failed, Some(&stage(3, None)), progress.clone(), 21_000);
        assert_eq!(second.hook_status, HookStatus::InProgress);
        let third = decide(
            &failed,
            Some(&stage(3, None)),
            Progress {
                attempts: 2,
                ..progress
            },
            41_000,
        );
        assert_eq!(third.hook_status, HookStatus::Failed);
    }

    #[test]
    fn the_time_window_ends_retries() {
        let failed = Verdict::not_run("x");
        let progress = Progress {
            attempts: 1,
            first_failure_at_ms: Some(0),
            last_reason: None,
            started_at_ms: None,
        };
        let within = Some(Duration::from_secs(60));
        assert_eq!(
            decide(&failed, Some(&stage(10, within)), progress.clone(), 30_000).hook_status,
            HookStatus::InProgress
        );
        assert_eq!(
            decide(&failed, Some(&stage(10, within)), progress, 50_000).hook_status,
            HookStatus::Failed
        );
    }

    #[test]
    fn an_inconclusive_verification_is_asked_again_within_the_stages_bounds() {
        let report = crate::verdict::CheckReport {
            name: "load".into(),
            request: "GET /".into(),
            outcome: crate::Outcome::Inconclusive {
                cause: "time ran out: 40 of 200 samples answered".into(),
            },
            attempts: 40,
            measured: crate::probe::Measured::nothing(),
            elapsed: Duration::from_secs(5),
            ready: false,
            captured: Vec::new(),
        };
        let verdict = Verdict::from_checks(vec![report], Duration::from_secs(5));
        assert!(!verdict.succeeded(), "inconclusive never passes");
        assert!(
            verdict.reason.contains("load inconclusive: time ran out"),
            "{}",
            verdict.reason
        );
        let again = decide(&verdict, Some(&stage(2, None)), Progress::default(), 0);
        assert_eq!(again.hook_status, HookStatus::InProgress);
        assert_eq!(again.call_back_delay, Some(20));
        let spent = Progress {
            attempts: 1,
            first_failure_at_ms: Some(0),
            last_reason: None,
            started_at_ms: None,
        };
        assert_eq!(
            decide(&verdict, Some(&stage(2, None)), spent, 20_000).hook_status,
            HookStatus::Failed
        );
    }
}
