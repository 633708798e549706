//! One rehearsed deployment: the stand-ins, the lifecycle walk, and its outcome.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use greenlight_demo_app::{DemoApp, Mode, Running};
use greenlight_fakes::alb::{Listener, Side};
use greenlight_fakes::codedeploy::EcsBlueGreen;
use greenlight_fakes::{
    FakeCloudWatch, FakeCodeDeploy, FakeEcs, FakeElb, FunctionProcess, InvocationResult, RuntimeApi,
};
use serde::Serialize;
use serde_json::{json, Value};

use super::binaries::Binaries;
use super::timeline::{Entry, Timeline};
use super::Scenario;

/// The service every scenario deploys.
const CHECKOUT: ServiceSpec = ServiceSpec {
    application: "checkout",
    group: "checkout-prod",
    deployment_id: "d-REHEARSAL1",
    alarm: "checkout-5xx",
    green_target_group: "targetgroup/checkout-green/5e1c0a7f3b2d4c6a",
    load_balancer: "app/checkout/0f9e8d7c6b5a4321",
};
/// The second service of the fleet scenario, deployed through the same greenlight.
const PAYMENTS: ServiceSpec = ServiceSpec {
    application: "payments",
    group: "payments-prod",
    deployment_id: "d-REHEARSAL2",
    alarm: "payments-5xx",
    green_target_group: "targetgroup/payments-green/7a6b5c4d3e2f1a0b",
    load_balancer: "app/payments/1a2b3c4d5e6f7a8b",
};
/// payments' own plan in the fleet scenario (checkout keeps the rehearsal plan).
const PAYMENTS_PLAN: &str = "version: 1\nbudget: 20s\ndefaults: {timeout: 2s}\nchecks:\n  - {name: payments-health, path: /health, expect: {status: 200}}\n  - {name: payments-orders, path: /api/orders, expect: {status: 200}}\n";

/// One service of a rehearsal: its names, and the ids its deployment and load balancer have.
#[derive(Debug, Clone, Copy)]
struct ServiceSpec {
    application: &'static str,
    group: &'static str,
    deployment_id: &'static str,
    alarm: &'static str,
    /// Green's target group and the load balancer, as the ALB publishes their metrics' dimensions.
    green_target_group: &'static str,
    load_balancer: &'static str,
}

/// The hooks' Lambda timeout in the rehearsal.
const HOOK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the termination wait (with production traffic) lasts before blue is terminated.
const TERMINATION_WAIT: Duration = Duration::from_secs(3);
/// The 5xx alarm: more than this many 5xx answers from green in one evaluation period.
const ALARM_THRESHOLD: u64 = 5;
const ALARM_PERIOD: Duration = Duration::from_millis(500);
/// One production request every so often, for the whole rehearsal.
const LOAD_INTERVAL: Duration = Duration::from_millis(20);
/// A bound on the production traffic of one rehearsal (ten minutes' worth).
const MAX_PRODUCTION_REQUESTS: usize = 30_000;
/// The plan the rehearsal's hooks run (the same file users can read).
const PLAN: &str = include_str!("../../../examples/plans/rehearsal.yaml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Result {
    /// Production traffic ended on green.
    Promoted,
    /// Traffic went back to blue.
    RolledBack,
}

impl Result {
    pub fn describe(self) -> &'static str {
        match self {
            Result::Promoted => "promoted: production is on green 2.0.0",
            Result::RolledBack => "rolled back: production is on blue 1.0.0",
        }
    }
}

/// How a rehearsal ended, and why: for its first service at the top level (checkout), and for
/// each service it deployed in `services`.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub scenario: Scenario,
    pub result: Result,
    pub reason: String,
    /// Checks that did not pass in the hook that stopped the deployment.
    pub failing_checks: Vec<String>,
    /// Requests production served from each side.
    pub production_requests: ProductionRequests,
    pub services: Vec<ServiceOutcome>,
    pub timeline: Vec<Entry>,
}

/// How one service's deployment ended.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceOutcome {
    /// `APPLICATION/GROUP`.
    pub service: String,
    pub result: Result,
    pub reason: String,
    pub failing_checks: Vec<String>,
    pub production_requests: ProductionRequests,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct ProductionRequests {
    pub blue: u64,
    pub green: u64,
    pub green_5xx: u64,
}

/// A function binary running under its own Runtime API emulator.
struct Function {
    binary: &'static str,
    api: RuntimeApi,
    process: FunctionProcess,
}

impl Function {
    async fn start(
        binaries: &Binaries,
        binary: &'static str,
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let Some(path) = binaries.path(binary) else {
            bail!("cannot find the {binary} binary any more; build the functions again");
        };
        let api = RuntimeApi::start().await;
        let process = FunctionProcess::spawn(&path, &api, env)
            .with_context(|| format!("starting {}", path.display()))?;
        Ok(Function {
            binary,
            api,
            process,
        })
    }
}

/// One service's blue, green and listeners; dropping it stops its servers and its traffic.
struct Service {
    spec: ServiceSpec,
    blue: Option<Running>,
    green: Option<Running>,
    production: Listener,
    test: Listener,
    _traffic: AbortOnDrop,
}

/// Everything one rehearsal runs; dropping it stops every server and process.
struct Stack {
    services: Vec<Service>,
    codedeploy: FakeCodeDeploy,
    _ecs: FakeEcs,
    _elb: FakeElb,
    _cloudwatch: Arc<FakeCloudWatch>,
    /// The hooks before the production shift, in lifecycle order.
    hooks: Vec<(&'static str, Function)>,
    /// AfterAllowTraffic: after the production shift, green's metrics.
    after_traffic: Function,
    alarm_rollback: Function,
}

impl Stack {
    /// A timeline step of `spec`'s deployment: named with the service when there are several.
    fn label(&self, spec: ServiceSpec, step: &str) -> String {
        if self.services.len() > 1 {
            format!("{} {step}", spec.application)
        } else {
            step.to_string()
        }
    }
}

pub async fn rehearse(
    scenario: Scenario,
    functions_dir: &Binaries,
    live: bool,
    verbose: bool,
) -> anyhow::Result<Outcome> {
    let mut t = Timeline::new(live);
    let specs: &[ServiceSpec] = if scenario == Scenario::Fleet {
        &[CHECKOUT, PAYMENTS]
    } else {
        &[CHECKOUT]
    };
    let mut stack = start_stack(functions_dir, specs).await?;
    for service in &stack.services {
        t.step(
            "start",
            format!(
                "{}: blue 1.0.0 serves production listener {} and test listener {}",
                service.spec.application,
                service.production.url(),
                service.test.url()
            ),
        );
    }
    if scenario == Scenario::Fleet {
        t.step(
            "greenlight",
            "one set of hook functions for both services: no URL configured, GREENLIGHT_PLANS gives each service its plan, and each hook finds the service's test listener from its deployment",
        );
    }
    let mut services = Vec::new();
    for index in 0..stack.services.len() {
        let mode = match (scenario, index) {
            (Scenario::Healthy, _) | (Scenario::Fleet, 0) => Mode::Healthy,
            (Scenario::Broken, _) | (Scenario::Fleet, _) => Mode::Broken,
            (Scenario::Alarm, _) => Mode::FailsAfter(20),
            (Scenario::Slow, _) => Mode::SlowsAfter(20),
        };
        let (result, reason, failing_checks) = walk(mode, &mut stack, index, &mut t).await?;
        let counts = stack.services[index].production.counts();
        let spec = stack.services[index].spec;
        services.push(ServiceOutcome {
            service: format!("{}/{}", spec.application, spec.group),
            result,
            reason,
            failing_checks,
            production_requests: ProductionRequests {
                blue: counts.blue,
                green: counts.green,
                green_5xx: counts.green_5xx,
            },
        });
    }
    if verbose {
        for function in stack
            .hooks
            .iter()
            .map(|(_, f)| f)
            .chain([&stack.after_traffic, &stack.alarm_rollback])
        {
            crate::output::line(format!(
                "--- {} logged:\n{}",
                function.binary,
                function.process.output()
            ));
        }
    }
    let first = services[0].clone();
    Ok(Outcome {
        scenario,
        result: first.result,
        reason: first.reason,
        failing_checks: first.failing_checks,
        production_requests: first.production_requests,
        services,
        timeline: t.entries,
    })
}

/// Blue and the listeners of `spec`; its deployment in the CodeDeploy stand-in, with the
/// listeners the load balancer stand-in knows; production traffic from the start.
async fn start_service(
    spec: ServiceSpec,
    codedeploy: &FakeCodeDeploy,
    elb: &FakeElb,
    cloudwatch: &Arc<FakeCloudWatch>,
) -> anyhow::Result<Service> {
    let blue = DemoApp {
        color: "blue".into(),
        version: "1.0.0".into(),
        mode: Mode::Healthy,
    }
    .serve("127.0.0.1:0")
    .await
    .with_context(|| format!("starting {}'s blue", spec.application))?;
    let production = Listener::start(&blue.url()).await;
    let test = Listener::start(&blue.url()).await;
    // What an ALB publishes for green's target group: every answer through the production
    // listener, by the second.
    let metrics = cloudwatch.clone();
    production.observe(Arc::new(move |side, status, took| {
        if side != Side::Green {
            return;
        }
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let dimensions = [
            ("TargetGroup", spec.green_target_group),
            ("LoadBalancer", spec.load_balancer),
        ];
        let namespace = "AWS/ApplicationELB";
        metrics.put(namespace, "RequestCount", &dimensions, at, 1.0);
        let five_xx = f64::from(u8::from(status >= 500));
        metrics.put(
            namespace,
            "HTTPCode_Target_5XX_Count",
            &dimensions,
            at,
            five_xx,
        );
        metrics.put(
            namespace,
            "TargetResponseTime",
            &dimensions,
            at,
            took.as_secs_f64(),
        );
    }));
    // The deployment group's listeners, as CodeDeploy and the load balancer know them: a hook
    // with no URL finds the test listener from them.
    let listener = |name: &str| {
        format!(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/{}/{}",
            spec.load_balancer, name
        )
    };
    let (production_arn, test_arn) = (listener("80production"), listener("8080test"));
    codedeploy.add_ecs_blue_green(
        spec.deployment_id,
        spec.application,
        spec.group,
        EcsBlueGreen {
            cluster: "rehearsal".into(),
            service: spec.application.into(),
            production_listener: production_arn.clone(),
            test_listener: test_arn.clone(),
            target_groups: [
                format!("{}-blue", spec.application),
                format!("{}-green", spec.application),
            ],
            task_sets: Vec::new(),
        },
    );
    for (arn, url) in [(&production_arn, production.url()), (&test_arn, test.url())] {
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .context("a listener's port")?;
        elb.set_listener_address(arn, "HTTP", port, "127.0.0.1");
    }
    let traffic = production_traffic(&production.url());
    Ok(Service {
        spec,
        blue: Some(blue),
        green: None,
        production,
        test,
        _traffic: traffic,
    })
}

async fn start_stack(functions_dir: &Binaries, specs: &[ServiceSpec]) -> anyhow::Result<Stack> {
    let codedeploy = FakeCodeDeploy::start().await;
    let ecs = FakeEcs::start().await;
    let elb = FakeElb::start().await;
    let cloudwatch = Arc::new(FakeCloudWatch::start().await);
    let mut services = Vec::new();
    for spec in specs {
        services.push(start_service(*spec, &codedeploy, &elb, &cloudwatch).await?);
    }
    let aws = vec![
        ("AWS_ENDPOINT_URL", codedeploy.url()),
        ("AWS_ENDPOINT_URL_CODEDEPLOY", codedeploy.url()),
        ("AWS_ENDPOINT_URL_ECS", ecs.url()),
        ("AWS_ENDPOINT_URL_CLOUDWATCH", cloudwatch.url()),
        ("AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2", elb.url()),
    ];
    let mut hook_env = aws.clone();
    hook_env.extend([
        ("EXPECTED_VERSION", "2.0.0".to_string()),
        (
            "GREEN_TARGET_GROUP",
            CHECKOUT.green_target_group.to_string(),
        ),
        ("LOAD_BALANCER", CHECKOUT.load_balancer.to_string()),
    ]);
    if specs.len() == 1 {
        hook_env.extend([
            ("GREENLIGHT_TEST_URL", services[0].test.url()),
            ("GREENLIGHT_PLAN", PLAN.to_string()),
            ("GREENLIGHT_PRODUCTION_URL", services[0].production.url()),
        ]);
    } else {
        // One greenlight for the fleet: each service's own plan, and no URL: each hook finds the
        // route to the service's green from its deployment.
        let plans = serde_json::json!({
            format!("{}/{}", CHECKOUT.application, CHECKOUT.group): PLAN,
            format!("{}/{}", PAYMENTS.application, PAYMENTS.group): PAYMENTS_PLAN,
        });
        hook_env.push(("GREENLIGHT_PLANS", plans.to_string()));
    }
    let hooks = vec![
        (
            "AfterAllowTestTraffic",
            Function::start(functions_dir, "after-allow-test-traffic", &hook_env).await?,
        ),
        (
            "BeforeAllowTraffic",
            Function::start(functions_dir, "before-allow-traffic", &hook_env).await?,
        ),
    ];
    let after_traffic = Function::start(functions_dir, "after-allow-traffic", &hook_env).await?;
    let alarm_rollback = Function::start(functions_dir, "alarm-rollback", &aws).await?;
    Ok(Stack {
        services,
        codedeploy,
        _ecs: ecs,
        _elb: elb,
        _cloudwatch: cloudwatch,
        hooks,
        after_traffic,
        alarm_rollback,
    })
}

type Walked = anyhow::Result<(Result, String, Vec<String>)>;

/// The ECS lifecycle as CodeDeploy runs it, for service `index` with a green that behaves as
/// `mode`.
async fn walk(mode: Mode, stack: &mut Stack, index: usize, t: &mut Timeline) -> Walked {
    let spec = stack.services[index].spec;
    let label = |step: &str| stack.label(spec, step);
    let (install, after_install, allow_test, allow, wait, succeeded) = (
        label("Install"),
        label("AfterInstall"),
        label("AllowTestTraffic"),
        label("AllowTraffic"),
        label("termination wait"),
        label("Succeeded"),
    );
    t.step(&label("BeforeInstall"), "no hook configured");
    let green = DemoApp {
        color: "green".into(),
        version: "2.0.0".into(),
        mode,
    }
    .serve("127.0.0.1:0")
    .await
    .context("starting green")?;
    let service = &mut stack.services[index];
    service.production.set_green(Some(&green.url()));
    service.test.set_green(Some(&green.url()));
    t.step(
        &install,
        format!(
            "green 2.0.0 task set started on {} (target group 2)",
            green.url()
        ),
    );
    service.green = Some(green);
    t.step(&after_install, "no hook configured");
    service.test.shift_to_green(100);
    t.step(
        &allow_test,
        "test listener -> green 100%; production stays on blue",
    );

    for hook in 0..stack.hooks.len() {
        let (event, function) = &stack.hooks[hook];
        if let Some((reason, failing)) = run_hook(stack, spec, (event, function), t).await? {
            let event = *event;
            roll_back(stack, index, t, "the deployment failed");
            stack.codedeploy.world(|w| set_status(w, spec, "Failed"));
            return Ok((
                Result::RolledBack,
                format!("{event} hook reported Failed: {reason}"),
                failing,
            ));
        }
    }

    stack.services[index].production.shift_to_green(100);
    t.step(&allow, "production listener -> green 100%");
    let after_traffic = ("AfterAllowTraffic", &stack.after_traffic);
    if let Some((reason, failing)) = run_hook(stack, spec, after_traffic, t).await? {
        roll_back(stack, index, t, "the deployment failed");
        stack.codedeploy.world(|w| set_status(w, spec, "Failed"));
        return Ok((
            Result::RolledBack,
            format!("AfterAllowTraffic hook reported Failed: {reason}"),
            failing,
        ));
    }
    t.step(
        &wait,
        format!(
            "blue kept for {}s while production traffic flows; alarm {} watches green",
            TERMINATION_WAIT.as_secs(),
            spec.alarm
        ),
    );
    if let Some(reason) = bake(stack, index, t).await? {
        roll_back(stack, index, t, "the deployment was stopped");
        return Ok((Result::RolledBack, reason, Vec::new()));
    }
    stack.codedeploy.world(|w| set_status(w, spec, "Succeeded"));
    stack.services[index].blue = None;
    t.step(
        &succeeded,
        "blue task set terminated; production is on green 2.0.0",
    );
    Ok((
        Result::Promoted,
        "every hook passed and no alarm fired".into(),
        Vec::new(),
    ))
}

/// Invokes one hook and waits for the status it reports to CodeDeploy. `Some` means it did not
/// report `Succeeded`: the reason and the checks that did not pass.
async fn run_hook(
    stack: &Stack,
    spec: ServiceSpec,
    (event, function): (&str, &Function),
    t: &mut Timeline,
) -> anyhow::Result<Option<(String, Vec<String>)>> {
    let execution_id = format!("rehearsal-{}-{event}-execution", spec.application);
    let step = stack.label(spec, event);
    let event = step.as_str();
    t.step(
        event,
        format!(
            "invoking the {} binary through the Lambda Runtime API",
            function.binary
        ),
    );
    let answer = function
        .api
        .invoke(
            json!({"DeploymentId": spec.deployment_id, "LifecycleEventHookExecutionId": execution_id}),
            HOOK_TIMEOUT,
        )
        .await;
    // CodeDeploy goes by the status reported through its API, not by the function's answer.
    let reported = stack
        .codedeploy
        .wait_until(Duration::from_secs(2), |w| {
            w.hook_reports.get(&execution_id).cloned()
        })
        .await;
    let verdict = match &answer {
        InvocationResult::Response(body) => body.clone(),
        _ => Value::Null,
    };
    let reason = verdict["reason"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{answer:?}"));
    let failing: Vec<String> = verdict["checks"]
        .as_array()
        .map(|checks| {
            checks
                .iter()
                .filter(|c| c["outcome"] != "passed")
                .map(|c| c["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    match reported.as_deref() {
        Some("Succeeded") => {
            t.step(event, format!("hook reported Succeeded: {reason}"));
            Ok(None)
        }
        Some(status) => {
            let total = verdict["checks"].as_array().map_or(0, Vec::len);
            let summary = if total == 0 {
                reason.clone()
            } else {
                format!("{} of {total} checks did not pass", failing.len())
            };
            t.step(event, format!("hook reported {status}: {summary}"));
            for check in verdict["checks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["outcome"] != "passed")
            {
                t.step(
                    "",
                    format!(
                        "  {} {}: {}",
                        check["name"].as_str().unwrap_or_default(),
                        check["outcome"].as_str().unwrap_or_default(),
                        check_reason(check)
                    ),
                );
            }
            Ok(Some((reason, failing)))
        }
        None => {
            t.step(
                event,
                "the hook never reported: CodeDeploy would wait an hour, then fail the deployment",
            );
            Ok(Some(("the hook never reported its status".into(), failing)))
        }
    }
}

fn check_reason(check: &Value) -> String {
    if let Some(cause) = check["cause"].as_str() {
        return cause.to_string();
    }
    check["failures"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .map(|f| {
                    format!(
                        "{}: expected {}, got {}",
                        f["expectation"].as_str().unwrap_or_default(),
                        f["expected"].as_str().unwrap_or_default(),
                        f["measured"].as_str().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// Production traffic through the production listener for the whole rehearsal: requests start at
/// a steady rate whatever their latency, as real traffic does, and stop (in-flight ones too) when
/// the returned guard is dropped. Bounded: at most one rehearsal's worth of requests.
fn production_traffic(listener: &str) -> AbortOnDrop {
    let client = reqwest::Client::new();
    let url = format!("{listener}/api/orders");
    AbortOnDrop(tokio::spawn(async move {
        let mut tick = tokio::time::interval(LOAD_INTERVAL);
        let mut in_flight = tokio::task::JoinSet::new();
        for _ in 0..MAX_PRODUCTION_REQUESTS {
            tick.tick().await;
            let request = client.get(&url).timeout(Duration::from_secs(2));
            in_flight.spawn(async move {
                let _ = request.send().await;
            });
            while in_flight.try_join_next().is_some() {}
        }
    }))
}

/// The termination wait: production traffic reaches green while a 5xx alarm on green is evaluated
/// every period. `Some(reason)` when the deployment was stopped.
async fn bake(stack: &Stack, index: usize, t: &mut Timeline) -> anyhow::Result<Option<String>> {
    let service = &stack.services[index];
    let spec = service.spec;
    let mut previous = service.production.counts().green_5xx;
    let periods = (TERMINATION_WAIT.as_millis() / ALARM_PERIOD.as_millis()) as usize;
    for _ in 0..periods {
        tokio::time::sleep(ALARM_PERIOD).await;
        let now = service.production.counts().green_5xx;
        let datapoint = now - previous;
        previous = now;
        if datapoint > ALARM_THRESHOLD {
            t.step("CloudWatch", format!("alarm {} -> ALARM: {datapoint} 5xx answers from green in {}ms (threshold {ALARM_THRESHOLD})", spec.alarm, ALARM_PERIOD.as_millis()));
            return alarm_rollback(stack, spec, t, datapoint).await.map(Some);
        }
    }
    Ok(None)
}

/// EventBridge delivers the alarm's state change to the real alarm-rollback binary.
async fn alarm_rollback(
    stack: &Stack,
    spec: ServiceSpec,
    t: &mut Timeline,
    datapoint: u64,
) -> anyhow::Result<String> {
    t.step(
        "EventBridge",
        "CloudWatch Alarm State Change -> alarm-rollback (Lambda Runtime API)",
    );
    let answer = stack
        .alarm_rollback
        .api
        .invoke(alarm_event(spec, datapoint), Duration::from_secs(30))
        .await;
    let decision = match &answer {
        InvocationResult::Response(decision) => decision.clone(),
        other => bail!("alarm-rollback did not decide: {other:?}"),
    };
    for action in decision["actions"].as_array().into_iter().flatten() {
        t.step(
            "alarm-rollback",
            format!(
                "{} {}: {}",
                action["action"].as_str().unwrap_or_default(),
                action["deployment"].as_str().unwrap_or_default(),
                action["detail"].as_str().unwrap_or_default()
            ),
        );
    }
    let id = spec.deployment_id;
    let stopped = stack
        .codedeploy
        .wait_until(Duration::from_secs(2), |w| {
            w.deployments
                .iter()
                .any(|d| d.id == id && d.status == "Stopped")
                .then_some(())
        })
        .await;
    if stopped.is_none() {
        bail!("alarm-rollback answered, but deployment {id} was not stopped: {decision}");
    }
    Ok(format!(
        "alarm {} fired after the production shift; alarm-rollback stopped {id} with rollback",
        spec.alarm
    ))
}

fn alarm_event(spec: ServiceSpec, datapoint: u64) -> Value {
    let reason_data = json!({"version": "1.0", "statistic": "Sum", "period": 60, "recentDatapoints": [datapoint as f64], "threshold": ALARM_THRESHOLD as f64});
    json!({
        "version": "0",
        "id": "rehearsal-alarm",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "region": "us-east-1",
        "resources": [format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{}", spec.alarm)],
        "detail": {
            "alarmName": spec.alarm,
            "alarmTags": {"greenlight:codedeploy-application": spec.application, "greenlight:codedeploy-deployment-group": spec.group},
            "state": {
                "value": "ALARM",
                "reason": format!("Threshold Crossed: 1 datapoint [{datapoint}.0] was greater than the threshold ({ALARM_THRESHOLD}.0)."),
                "reasonData": reason_data.to_string(),
                "timestamp": greenlight::timestamp::format(std::time::SystemTime::now())
            },
            "previousState": {"value": "OK", "reason": "", "timestamp": greenlight::timestamp::format(std::time::SystemTime::now() - Duration::from_secs(60))}
        }
    })
}

/// What CodeDeploy does on a failed or stopped ECS deployment: traffic back to blue, green removed.
fn roll_back(stack: &mut Stack, index: usize, t: &mut Timeline, why: &str) {
    let label = stack.label(stack.services[index].spec, "rollback");
    let service = &mut stack.services[index];
    service.production.shift_to_green(0);
    service.test.shift_to_green(0);
    service.production.set_green(None);
    service.test.set_green(None);
    service.green = None;
    t.step(
        &label,
        format!("{why}: production and test listeners -> blue 100%; green task set removed"),
    );
}

fn set_status(
    world: &mut greenlight_fakes::codedeploy::CodeDeployWorld,
    spec: ServiceSpec,
    status: &str,
) {
    for d in world
        .deployments
        .iter_mut()
        .filter(|d| d.id == spec.deployment_id)
    {
        d.status = status.into();
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
