//! One rehearsed deployment: the stand-ins, the lifecycle walk, and its outcome.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use greenlight_demo_app::{DemoApp, Mode, Running};
use greenlight_fakes::alb::{Listener, Side};
use greenlight_fakes::{
    FakeCloudWatch, FakeCodeDeploy, FakeEcs, FunctionProcess, InvocationResult, RuntimeApi,
};
use serde::Serialize;
use serde_json::{json, Value};

use super::binaries::Binaries;
use super::timeline::{Entry, Timeline};
use super::Scenario;

const APPLICATION: &str = "checkout";
const DEPLOYMENT_GROUP: &str = "checkout-prod";
const DEPLOYMENT_ID: &str = "d-REHEARSAL1";
const ALARM_NAME: &str = "checkout-5xx";
/// Green's target group and the load balancer, as the ALB publishes their metrics' dimensions.
const GREEN_TARGET_GROUP: &str = "targetgroup/checkout-green/5e1c0a7f3b2d4c6a";
const LOAD_BALANCER: &str = "app/checkout/0f9e8d7c6b5a4321";
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

/// How a rehearsed deployment ended, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub scenario: Scenario,
    pub result: Result,
    pub reason: String,
    /// Checks that did not pass in the hook that stopped the deployment.
    pub failing_checks: Vec<String>,
    /// Requests production served from each side.
    pub production_requests: ProductionRequests,
    pub timeline: Vec<Entry>,
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

/// Everything one rehearsal runs; dropping it stops every server and process.
struct Stack {
    blue: Option<Running>,
    green: Option<Running>,
    production: Listener,
    test: Listener,
    codedeploy: FakeCodeDeploy,
    _ecs: FakeEcs,
    _cloudwatch: Arc<FakeCloudWatch>,
    /// The hooks before the production shift, in lifecycle order.
    hooks: Vec<(&'static str, Function)>,
    /// AfterAllowTraffic: after the production shift, green's metrics.
    after_traffic: Function,
    alarm_rollback: Function,
}

pub async fn rehearse(
    scenario: Scenario,
    functions_dir: &Binaries,
    live: bool,
    verbose: bool,
) -> anyhow::Result<Outcome> {
    let mut t = Timeline::new(live);
    let mut stack = start_stack(functions_dir).await?;
    t.step(
        "start",
        format!(
            "blue 1.0.0 serves production listener {} and test listener {}",
            stack.production.url(),
            stack.test.url()
        ),
    );
    let _traffic = production_traffic(&stack.production.url());
    let outcome = walk(scenario, &mut stack, &mut t).await;
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
    let counts = stack.production.counts();
    let (result, reason, failing_checks) = outcome?;
    Ok(Outcome {
        scenario,
        result,
        reason,
        failing_checks,
        production_requests: ProductionRequests {
            blue: counts.blue,
            green: counts.green,
            green_5xx: counts.green_5xx,
        },
        timeline: t.entries,
    })
}

async fn start_stack(functions_dir: &Binaries) -> anyhow::Result<Stack> {
    let blue = DemoApp {
        color: "blue".into(),
        version: "1.0.0".into(),
        mode: Mode::Healthy,
    }
    .serve("127.0.0.1:0")
    .await
    .context("starting blue")?;
    let production = Listener::start(&blue.url()).await;
    let test = Listener::start(&blue.url()).await;
    let codedeploy = FakeCodeDeploy::start().await;
    let ecs = FakeEcs::start().await;
    let cloudwatch = Arc::new(FakeCloudWatch::start().await);
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
            ("TargetGroup", GREEN_TARGET_GROUP),
            ("LoadBalancer", LOAD_BALANCER),
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
    codedeploy.add_deployment(DEPLOYMENT_ID, APPLICATION, DEPLOYMENT_GROUP, "InProgress");
    let aws = vec![
        ("AWS_ENDPOINT_URL", codedeploy.url()),
        ("AWS_ENDPOINT_URL_CODEDEPLOY", codedeploy.url()),
        ("AWS_ENDPOINT_URL_ECS", ecs.url()),
        ("AWS_ENDPOINT_URL_CLOUDWATCH", cloudwatch.url()),
    ];
    let mut hook_env = aws.clone();
    hook_env.extend([
        ("GREENLIGHT_TEST_URL", test.url()),
        ("GREENLIGHT_PLAN", PLAN.to_string()),
        ("EXPECTED_VERSION", "2.0.0".to_string()),
        ("GREENLIGHT_PRODUCTION_URL", production.url()),
        ("GREEN_TARGET_GROUP", GREEN_TARGET_GROUP.to_string()),
        ("LOAD_BALANCER", LOAD_BALANCER.to_string()),
    ]);
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
        blue: Some(blue),
        green: None,
        production,
        test,
        codedeploy,
        _ecs: ecs,
        _cloudwatch: cloudwatch,
        hooks,
        after_traffic,
        alarm_rollback,
    })
}

type Walked = anyhow::Result<(Result, String, Vec<String>)>;

/// The ECS lifecycle as CodeDeploy runs it.
async fn walk(scenario: Scenario, stack: &mut Stack, t: &mut Timeline) -> Walked {
    t.step("BeforeInstall", "no hook configured");
    let mode = match scenario {
        Scenario::Healthy => Mode::Healthy,
        Scenario::Broken => Mode::Broken,
        Scenario::Alarm => Mode::FailsAfter(20),
        Scenario::Slow => Mode::SlowsAfter(20),
    };
    let green = DemoApp {
        color: "green".into(),
        version: "2.0.0".into(),
        mode,
    }
    .serve("127.0.0.1:0")
    .await
    .context("starting green")?;
    stack.production.set_green(Some(&green.url()));
    stack.test.set_green(Some(&green.url()));
    t.step(
        "Install",
        format!(
            "green 2.0.0 task set started on {} (target group 2)",
            green.url()
        ),
    );
    stack.green = Some(green);
    t.step("AfterInstall", "no hook configured");
    stack.test.shift_to_green(100);
    t.step(
        "AllowTestTraffic",
        "test listener -> green 100%; production stays on blue",
    );

    for index in 0..stack.hooks.len() {
        let (event, _) = &stack.hooks[index];
        let event = *event;
        let (_, function) = &stack.hooks[index];
        if let Some((reason, failing)) = run_hook(stack, (event, function), t).await? {
            roll_back(stack, t, "the deployment failed");
            stack.codedeploy.world(|w| set_status(w, "Failed"));
            return Ok((
                Result::RolledBack,
                format!("{event} hook reported Failed: {reason}"),
                failing,
            ));
        }
    }

    stack.production.shift_to_green(100);
    t.step("AllowTraffic", "production listener -> green 100%");
    let after_traffic = ("AfterAllowTraffic", &stack.after_traffic);
    if let Some((reason, failing)) = run_hook(stack, after_traffic, t).await? {
        roll_back(stack, t, "the deployment failed");
        stack.codedeploy.world(|w| set_status(w, "Failed"));
        return Ok((
            Result::RolledBack,
            format!("AfterAllowTraffic hook reported Failed: {reason}"),
            failing,
        ));
    }
    t.step(
        "termination wait",
        format!(
            "blue kept for {}s while production traffic flows; alarm {ALARM_NAME} watches green",
            TERMINATION_WAIT.as_secs()
        ),
    );
    if let Some(reason) = bake(stack, t).await? {
        roll_back(stack, t, "the deployment was stopped");
        return Ok((Result::RolledBack, reason, Vec::new()));
    }
    stack.codedeploy.world(|w| set_status(w, "Succeeded"));
    stack.blue = None;
    t.step(
        "Succeeded",
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
    (event, function): (&str, &Function),
    t: &mut Timeline,
) -> anyhow::Result<Option<(String, Vec<String>)>> {
    let execution_id = format!("rehearsal-{event}-execution");
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
            json!({"DeploymentId": DEPLOYMENT_ID, "LifecycleEventHookExecutionId": execution_id}),
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
async fn bake(stack: &Stack, t: &mut Timeline) -> anyhow::Result<Option<String>> {
    let mut previous = stack.production.counts().green_5xx;
    let periods = (TERMINATION_WAIT.as_millis() / ALARM_PERIOD.as_millis()) as usize;
    for _ in 0..periods {
        tokio::time::sleep(ALARM_PERIOD).await;
        let now = stack.production.counts().green_5xx;
        let datapoint = now - previous;
        previous = now;
        if datapoint > ALARM_THRESHOLD {
            t.step("CloudWatch", format!("alarm {ALARM_NAME} -> ALARM: {datapoint} 5xx answers from green in {}ms (threshold {ALARM_THRESHOLD})", ALARM_PERIOD.as_millis()));
            return alarm_rollback(stack, t, datapoint).await.map(Some);
        }
    }
    Ok(None)
}

/// EventBridge delivers the alarm's state change to the real alarm-rollback binary.
async fn alarm_rollback(stack: &Stack, t: &mut Timeline, datapoint: u64) -> anyhow::Result<String> {
    t.step(
        "EventBridge",
        "CloudWatch Alarm State Change -> alarm-rollback (Lambda Runtime API)",
    );
    let answer = stack
        .alarm_rollback
        .api
        .invoke(alarm_event(datapoint), Duration::from_secs(30))
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
    let stopped = stack
        .codedeploy
        .wait_until(Duration::from_secs(2), |w| {
            w.deployments
                .iter()
                .any(|d| d.id == DEPLOYMENT_ID && d.status == "Stopped")
                .then_some(())
        })
        .await;
    if stopped.is_none() {
        bail!(
            "alarm-rollback answered, but deployment {DEPLOYMENT_ID} was not stopped: {decision}"
        );
    }
    Ok(format!("alarm {ALARM_NAME} fired after the production shift; alarm-rollback stopped {DEPLOYMENT_ID} with rollback"))
}

fn alarm_event(datapoint: u64) -> Value {
    let reason_data = json!({"version": "1.0", "statistic": "Sum", "period": 60, "recentDatapoints": [datapoint as f64], "threshold": ALARM_THRESHOLD as f64});
    json!({
        "version": "0",
        "id": "rehearsal-alarm",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "region": "us-east-1",
        "resources": [format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{ALARM_NAME}")],
        "detail": {
            "alarmName": ALARM_NAME,
            "alarmTags": {"greenlight:codedeploy-application": APPLICATION, "greenlight:codedeploy-deployment-group": DEPLOYMENT_GROUP},
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
fn roll_back(stack: &mut Stack, t: &mut Timeline, why: &str) {
    stack.production.shift_to_green(0);
    stack.test.shift_to_green(0);
    stack.production.set_green(None);
    stack.test.set_green(None);
    stack.green = None;
    t.step(
        "rollback",
        format!("{why}: production and test listeners -> blue 100%; green task set removed"),
    );
}

fn set_status(world: &mut greenlight_fakes::codedeploy::CodeDeployWorld, status: &str) {
    for d in world
        .deployments
        .iter_mut()
        .filter(|d| d.id == DEPLOYMENT_ID)
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
