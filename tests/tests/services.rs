//! One greenlight for many services: GREENLIGHT_PLANS gives each CodeDeploy application/group
//! its own plan in one function instance; a broken plan fails only its service's deployments;
//! a service it does not name gets the plan of every deployment. Real greens, real SDK,
//! loopback stand-in.

use std::time::{Duration, SystemTime};

use greenlight::hook::CodeDeployHook;
use greenlight::Env;
use greenlight_fakes::standin::AwsStandIn;
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
            .starts_with("GREENLIGHT_PLANS chooses the plan by service, and this deployment's service could not be read: GetDeployment"),
        "{answer:#}"
    );
}
