//! One greenlight for many services: GREENLIGHT_PLANS, then Parameter Store, give each CodeDeploy
//! application/group and each ECS cluster/service its own plan in one function instance; a
//! broken plan fails only its service's deployments; a service neither names gets the plan of
//! every deployment. Real greens, real SDK, loopback stand-in.

use std::time::{Duration, SystemTime};

use std::sync::Arc;

use greenlight::ecs_hook::EcsHook;
use greenlight::ecs_route::EcsRoutes;
use greenlight::hook::CodeDeployHook;
use greenlight::plan::catalog::SsmParameters;
use greenlight::Env;
use greenlight_fakes::standin::AwsStandIn;
use greenlight_fakes::FakeAnswer;
use greenlight_fakes::{Behaviour, GreenServer};
use serde_json::{json, Value};

async fn invoke(hook: &CodeDeployHook, deployment_id: &str) -> Value {
    let response = hook
        .handle(
            json!({"DeploymentId": deployment_id, "LifecycleEventHookExecutionId": format!("exec-{deployment_id}")}),
            SystemTime::now() + Duration::from_secs(10),
        )
        .await
        .expect("the hook reports");
    serde_json::to_value(response).unwrap()
}

#[tokio::test]
async fn two_services_get_their_own_plans_and_a_broken_one_fails_only_its_own() {
    let standin = AwsStandIn::start("127.0.0.1:0", None).await.unwrap();
    // d-AB12CD34E is checkout/checkout-prod (the stand-in's sample deployment).
    standin
        .codedeploy
        .add_deployment("d-PAYMENTS1", "payments", "payments-prod", "InProgress");
    standin
        .codedeploy
        .add_deployment("d-SEARCH1", "search", "search-prod", "InProgress");
    let checkout = GreenServer::start(Behaviour::Healthy).await;
    let search = GreenServer::start(Behaviour::Healthy).await;
    let plans = format!(
        r#"
checkout/checkout-prod:
  version: 1
  target: {}
  checks: [{{name: checkout-health, path: /health, expect: {{body_contains: UP}}}}]
"payments/*": {{version: 2, checks: []}}
"#,
        checkout.url()
    );
    let env = Env::from_pairs([
        ("GREENLIGHT_PLANS", plans.as_str()),
        ("GREENLIGHT_TEST_URL", search.url().as_str()),
        (
            "GREENLIGHT_PLAN",
            "version: 1\nchecks: [{name: every-service, path: /api/version}]",
        ),
    ]);
    let hook =
        CodeDeployHook::from_settings("AfterAllowTestTraffic", &standin.sdk_config().await, &env);

    let checkout_answer = invoke(&hook, "d-AB12CD34E").await;
    let payments_answer = invoke(&hook, "d-PAYMENTS1").await;
    let search_answer = invoke(&hook, "d-SEARCH1").await;
    assert_eq!(
        standin.codedeploy.reported_statuses(),
        vec!["Succeeded", "Failed", "Succeeded"],
        "{checkout_answer:#} {payments_answer:#} {search_answer:#}"
    );
    assert_eq!(checkout_answer["checks"][0]["name"], "checkout-health");
    assert!(
        payments_answer["reason"]
            .as_str()
            .unwrap()
            .contains("this greenlight reads plan version 1; found 2"),
        "{payments_answer:#}"
    );
    assert_eq!(search_answer["checks"][0]["name"], "every-service");
    // Each service's green was asked, and only its own.
    assert_eq!(checkout.received().len(), 1);
    assert_eq!(checkout.received()[0].path, "/health");
    assert_eq!(search.received().len(), 1);
    assert_eq!(search.received()[0].path, "/api/version");
}

#[tokio::test]
async fn an_unreadable_mapping_or_service_fails_with_the_reason() {
    let standin = AwsStandIn::start("127.0.0.1:0", None).await.unwrap();
    let env = Env::from_pairs([
        ("GREENLIGHT_PLANS", "checkout: {version: 1}"),
        ("GREENLIGHT_TEST_URL", "http://127.0.0.1:9/"),
    ]);
    let hook =
        CodeDeployHook::from_settings("AfterAllowTestTraffic", &standin.sdk_config().await, &env);
    let answer = invoke(&hook, "d-AB12CD34E").await;
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("GREENLIGHT_PLANS: \"checkout\" is not APPLICATION/GROUP"),
        "{answer:#}"
    );

    // A deployment CodeDeploy does not know: the plan cannot be chosen, and that is the reason.
    let standin = AwsStandIn::start("127.0.0.1:0", None).await.unwrap();
    let env = Env::from_pairs([
        (
            "GREENLIGHT_PLANS",
            "checkout/*: {version: 1, checks: [{name: h, path: /}]}",
        ),
        ("GREENLIGHT_TEST_URL", "http://127.0.0.1:9/"),
    ]);
    let hook =
        CodeDeployHook::from_settings("AfterAllowTestTraffic", &standin.sdk_config().await, &env);
    let answer = invoke(&hook, "d-UNKNOWN").await;
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .starts_with("plans are chosen by service (GREENLIGHT_PLANS, Parameter Store), and this deployment's service could not be read: GetDeployment"),
        "{answer:#}"
    );
}

fn plan_for(green: &GreenServer, check: &str) -> String {
    format!(
        "version: 1\ntarget: {}\nchecks: [{{name: {check}, path: /health}}]\n",
        green.url()
    )
}

#[tokio::test]
async fn parameter_store_plans_come_after_the_mapping_are_cached_and_fail_only_their_service() {
    let standin = AwsStandIn::start("127.0.0.1:0", None).await.unwrap();
    for (id, app) in [
        ("d-PAY1", "payments"),
        ("d-PAY2", "payments"),
        ("d-SHOP1", "shop"),
        ("d-OTHER1", "other"),
    ] {
        standin
            .codedeploy
            .add_deployment(id, app, &format!("{app}-prod"), "InProgress");
    }
    let (checkout, payments, every) = (
        GreenServer::start(Behaviour::Healthy).await,
        GreenServer::start(Behaviour::Healthy).await,
        GreenServer::start(Behaviour::Healthy).await,
    );
    // checkout is both mapped and in Parameter Store: the mapping wins.
    standin.ssm.put(
        "/greenlight/plans/checkout/checkout-prod",
        "version: 1\nchecks: [{name: never, path: /never}]",
    );
    standin.ssm.put(
        "/greenlight/plans/payments/payments-prod",
        &plan_for(&payments, "from-parameter-store"),
    );
    standin.ssm.put_typed(
        "/greenlight/plans/shop/shop-prod",
        "SecureString",
        "version: 1\nchecks: [{name: x, expect: {status: 999}}]",
    );
    let mapping = format!(
        "checkout/*: {{file: /dev/null}}\ncheckout/checkout-prod: |\n  {}",
        plan_for(&checkout, "from-mapping").replace('\n', "\n  ")
    );
    let env = Env::from_pairs([
        ("GREENLIGHT_PLANS", mapping.as_str()),
        ("GREENLIGHT_PLANS_PARAMETER_PREFIX", "/greenlight/plans"),
        ("GREENLIGHT_TEST_URL", every.url().as_str()),
    ]);
    let hook =
        CodeDeployHook::from_settings("AfterAllowTestTraffic", &standin.sdk_config().await, &env);

    let answers = [
        invoke(&hook, "d-AB12CD34E").await,
        invoke(&hook, "d-PAY1").await,
        invoke(&hook, "d-PAY2").await,
        invoke(&hook, "d-SHOP1").await,
        invoke(&hook, "d-OTHER1").await,
    ];
    assert_eq!(
        standin.codedeploy.reported_statuses(),
        vec!["Succeeded", "Succeeded", "Succeeded", "Failed", "Succeeded"],
        "{answers:#?}"
    );
    assert_eq!(answers[0]["checks"][0]["name"], "from-mapping");
    assert_eq!(answers[1]["checks"][0]["name"], "from-parameter-store");
    let shop = answers[3]["reason"].as_str().unwrap();
    assert!(
        shop.contains("parameter /greenlight/plans/shop/shop-prod: "),
        "{shop}"
    );
    assert!(shop.contains("999 is not a status code"), "{shop}");
    // A service with no parameter gets the plan of every deployment (the default plan here).
    assert_eq!(every.received().len(), 1);
    assert_eq!(
        (checkout.received().len(), payments.received().len()),
        (1, 2)
    );
    // payments was read once for both deployments (cached); the mapped service never.
    let reads: Vec<String> = standin
        .ssm
        .calls_to("GetParameter")
        .iter()
        .map(|c| c.body["Name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        reads,
        [
            "/greenlight/plans/payments/payments-prod",
            "/greenlight/plans/shop/shop-prod",
            "/greenlight/plans/other/other-prod"
        ]
    );
    assert!(standin
        .ssm
        .calls_to("GetParameter")
        .iter()
        .all(|c| c.body["WithDecryption"] == true));
}

#[tokio::test]
async fn parameter_store_refusing_fails_the_deployment_with_the_permission_it_needs() {
    let standin = AwsStandIn::start("127.0.0.1:0", None).await.unwrap();
    standin.ssm.answer_always(FakeAnswer::access_denied());
    let green = GreenServer::start(Behaviour::Healthy).await;
    let env = Env::from_pairs([
        ("GREENLIGHT_PLANS_PARAMETER_PREFIX", "/greenlight/plans"),
        ("GREENLIGHT_TEST_URL", green.url().as_str()),
    ]);
    let hook =
        CodeDeployHook::from_settings("AfterAllowTestTraffic", &standin.sdk_config().await, &env);
    let answer = invoke(&hook, "d-AB12CD34E").await;
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    let reason = answer["reason"].as_str().unwrap();
    assert!(
        reason.contains(
            "parameter /greenlight/plans/checkout/checkout-prod, which could not be read"
        ) && reason.contains("needs ssm:GetParameter on /greenlight/plans/checkout/checkout-prod"),
        "{reason}"
    );
    assert!(
        green.received().is_empty(),
        "the plan of every deployment never stands in for a service's own"
    );

    // A garbage TTL is named, and fails every deployment.
    let env = Env::from_pairs([
        ("GREENLIGHT_PLANS_PARAMETER_PREFIX", "/greenlight/plans"),
        ("GREENLIGHT_PLANS_TTL", "soon"),
        ("GREENLIGHT_TEST_URL", green.url().as_str()),
    ]);
    let hook =
        CodeDeployHook::from_settings("AfterAllowTestTraffic", &standin.sdk_config().await, &env);
    let answer = invoke(&hook, "d-AB12CD34E").await;
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("GREENLIGHT_PLANS_TTL: \"soon\" is not a duration"),
        "{answer:#}"
    );
}

fn ecs_event(cluster: &str, service: &str, hook_details: Value) -> Value {
    let revision =
        format!("arn:aws:ecs:us-east-1:123456789012:service-revision/{cluster}/{service}/1");
    json!({
        "executionId": format!("exec-{service}"),
        "lifecycleStage": "POST_TEST_TRAFFIC_SHIFT",
        "resourceArn": format!("arn:aws:ecs:us-east-1:123456789012:service-deployment/{cluster}/{service}/x"),
        "executionDetails": {
            "serviceArn": format!("arn:aws:ecs:us-east-1:123456789012:service/{cluster}/{service}"),
            "targetServiceRevisionArn": revision,
            "testTrafficWeights": {revision.clone(): 100},
            "productionTrafficWeights": {revision: 0},
        },
        "hookDetails": hook_details,
    })
}

async fn invoke_ecs(hook: &EcsHook, event: Value) -> Value {
    serde_json::to_value(
        hook.handle(event, SystemTime::now() + Duration::from_secs(10))
            .await,
    )
    .unwrap()
}

#[tokio::test]
async fn ecs_services_get_their_own_plans_by_cluster_and_service() {
    let standin = AwsStandIn::start("127.0.0.1:0", None).await.unwrap();
    let (checkout, payments, shared) = (
        GreenServer::start(Behaviour::Healthy).await,
        GreenServer::start(Behaviour::Status(500)).await,
        GreenServer::start(Behaviour::Healthy).await,
    );
    standin.ssm.put(
        "/greenlight/plans/ecs/prod/payments",
        &plan_for(&payments, "payments-health"),
    );
    let mapping = format!(
        "ecs/prod/checkout: {}\nshared/web: {}\n",
        serde_json::to_string(&plan_for(&checkout, "checkout-health")).unwrap(),
        serde_json::to_string(&plan_for(&shared, "shared-health")).unwrap(),
    );
    let hook = EcsHook::new(&Env::from_pairs([
        ("GREENLIGHT_PLANS", mapping.as_str()),
        ("GREENLIGHT_PLANS_PARAMETER_PREFIX", "/greenlight/plans/"),
    ]))
    .with_parameter_store(Arc::new(SsmParameters::new(&standin.sdk_config().await)))
    // A service with no plan of its own gets the default plan through the route found from its
    // revision: here the stand-in, which knows no revision.
    .with_routes(EcsRoutes::new(&standin.sdk_config().await));

    let answer = invoke_ecs(
        &hook,
        ecs_event("prod", "checkout", json!({"team": "checkout"})),
    )
    .await;
    assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer:#}");
    assert_eq!(checkout.received().len(), 1);
    let answer = invoke_ecs(&hook, ecs_event("prod", "payments", json!(null))).await;
    assert_eq!(answer["hookStatus"], "FAILED", "{answer:#}");
    assert_eq!(payments.received().len(), 1);
    // hookDetails.greenlightPlan chooses a plan by name, for services that share one.
    let answer = invoke_ecs(
        &hook,
        ecs_event("prod", "search", json!({"greenlightPlan": "shared/web"})),
    )
    .await;
    assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer:#}");
    assert_eq!(shared.received().len(), 1);
    // A service neither names gets the default plan, through the route found from its revision;
    // none is found here: FAILED, with the reason, never a pass.
    let answer = invoke_ecs(&hook, ecs_event("prod", "unknown", json!(null))).await;
    assert_eq!(answer["hookStatus"], "FAILED", "{answer:#}");
    assert!(
        answer["hookDetails"]["greenlight"]["lastReason"]
            .as_str()
            .unwrap_or_default()
            .contains("ECS does not describe service revision"),
        "{answer:#}"
    );
    // A hostile name in hookDetails is refused, not looked up.
    let calls = standin.ssm.calls().len();
    let answer = invoke_ecs(
        &hook,
        ecs_event("prod", "x", json!({"greenlightPlan": "../../etc/passwd x"})),
    )
    .await;
    assert_eq!(answer["hookStatus"], "FAILED", "{answer:#}");
    assert_eq!(standin.ssm.calls().len(), calls);
    assert_eq!(checkout.received().len() + shared.received().len(), 2);
}

#[tokio::test]
async fn static_hook_details_go_back_to_ecs_with_the_progress() {
    let green = GreenServer::start(Behaviour::Status(503)).await;
    let plan = format!(
        "version: 1\ntarget: {}\nchecks: [{{name: h, path: /health}}]\nstages: {{POST_TEST_TRAFFIC_SHIFT: {{attempts: 3, retry_after: 1s}}}}\n",
        green.url()
    );
    let hook = EcsHook::new(&Env::from_pairs([(
        "GREENLIGHT_PLANS",
        format!("ecs/prod/*: {}", serde_json::to_string(&plan).unwrap()).as_str(),
    )]));
    let answer = invoke_ecs(
        &hook,
        ecs_event(
            "prod",
            "checkout",
            json!({"team": "checkout", "greenlightPlan": "ecs/prod/checkout"}),
        ),
    )
    .await;
    assert_eq!(answer["hookStatus"], "IN_PROGRESS", "{answer:#}");
    assert_eq!(answer["hookDetails"]["team"], "checkout");
    assert_eq!(answer["hookDetails"]["greenlightPlan"], "ecs/prod/checkout");
    assert_eq!(answer["hookDetails"]["greenlight"]["attempts"], 1);
}

#[tokio::test]
async fn a_hanging_parameter_store_still_leaves_the_report_its_time() {
    let standin = AwsStandIn::start("127.0.0.1:0", None).await.unwrap();
    standin.ssm.answer_always(FakeAnswer::Hang);
    let green = GreenServer::start(Behaviour::Healthy).await;
    let env = Env::from_pairs([
        ("GREENLIGHT_PLANS_PARAMETER_PREFIX", "/greenlight/plans"),
        ("GREENLIGHT_TEST_URL", green.url().as_str()),
    ]);
    let hook =
        CodeDeployHook::from_settings("AfterAllowTestTraffic", &standin.sdk_config().await, &env);
    let started = std::time::Instant::now();
    let deadline = SystemTime::now() + Duration::from_secs(6);
    let response = hook
        .handle(
            json!({"DeploymentId": "d-AB12CD34E", "LifecycleEventHookExecutionId": "exec-hang"}),
            deadline,
        )
        .await
        .expect("reported");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    // The report went out with its reserve (a fifth of the invocation) still ahead of it, not in
    // the last moments a hanging call left.
    let reported_at = standin
        .codedeploy
        .calls_to("PutLifecycleEventHookExecutionStatus")[0]
        .at;
    assert!(
        reported_at.duration_since(started) < Duration::from_millis(5_000),
        "{:?}",
        reported_at.duration_since(started)
    );
    let answer = serde_json::to_value(response).unwrap();
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("could not be read"),
        "{answer:#}"
    );
}
