//! The route to green found from the deployment itself: with no GREENLIGHT_TEST_URL (after the
//! shift: GREENLIGHT_PRODUCTION_URL) and no target in the plan, a CodeDeploy hook asks CodeDeploy
//! for the deployment group's test (or production) listener and the load balancer for its
//! protocol, port and DNS name, then verifies green there. A test route that is the production
//! listener is refused. Real green server, real SDK, loopback stand-in.

use std::time::{Duration, SystemTime};

use greenlight::hook::CodeDeployHook;
use greenlight::Env;
use greenlight_fakes::standin::{AwsStandIn, BlueGreenArns};
use greenlight_fakes::{Behaviour, GreenServer};
use serde_json::{json, Value};

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// The stand-in with the deployment; the given listener answers on green's port at 127.0.0.1.
async fn stand_in(green: &GreenServer, listener: fn(&BlueGreenArns) -> &String) -> AwsStandIn {
    let standin = AwsStandIn::start("127.0.0.1:0", None).await.unwrap();
    let arns = standin.seed_blue_green("d-AB12CD34E", true);
    standin
        .elb
        .set_listener_address(listener(&arns), "HTTP", port_of(&green.url()), "127.0.0.1");
    standin
}

async fn invoke(standin: &AwsStandIn, event: &str, vars: &[(&str, &str)]) -> Value {
    let hook = CodeDeployHook::from_settings(
        event,
        &standin.sdk_config().await,
        &Env::from_pairs(vars.iter().copied()),
    );
    let response = hook
        .handle(
            json!({"DeploymentId": "d-AB12CD34E", "LifecycleEventHookExecutionId": "exec-route"}),
            SystemTime::now() + Duration::from_secs(10),
        )
        .await
        .expect("the hook reports");
    serde_json::to_value(response).unwrap()
}

#[tokio::test]
async fn the_test_listener_is_found_from_the_deployment_and_green_verified_there() {
    let green = GreenServer::start(Behaviour::Healthy).await;
    let standin = stand_in(&green, |a| &a.test_listener).await;
    let plan = "version: 1\nchecks: [{name: health, path: /health, expect: {body_contains: UP}}]";
    let response = invoke(
        &standin,
        "AfterAllowTestTraffic",
        &[("GREENLIGHT_PLAN", plan)],
    )
    .await;
    assert_eq!(
        standin.codedeploy.reported_statuses(),
        vec!["Succeeded"],
        "{response:#}"
    );
    assert_eq!(green.received().len(), 1);
    assert_eq!(green.received()[0].path, "/health");
    assert_eq!(
        response["checks"][0]["request"],
        format!("GET {}/health", green.url().trim_end_matches('/'))
    );
    assert_eq!(standin.elb.calls_to("DescribeLoadBalancers").len(), 1);

    // With nothing configured at all, the found route gets the default plan.
    let standin = stand_in(&green, |a| &a.test_listener).await;
    invoke(&standin, "BeforeAllowTraffic", &[]).await;
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Succeeded"]);
}

#[tokio::test]
async fn after_the_shift_the_production_listener_is_found() {
    let green = GreenServer::start(Behaviour::Healthy).await;
    let standin = stand_in(&green, |a| &a.production_listener).await;
    let plan = "version: 1\nchecks: [{name: health, path: /health}]";
    let response = invoke(&standin, "AfterAllowTraffic", &[("GREENLIGHT_PLAN", plan)]).await;
    assert_eq!(
        standin.codedeploy.reported_statuses(),
        vec!["Succeeded"],
        "{response:#}"
    );
    assert_eq!(green.received().len(), 1);
}

#[tokio::test]
async fn a_test_route_that_is_the_production_listener_is_refused() {
    let green = GreenServer::start(Behaviour::Healthy).await;
    let standin = stand_in(&green, |a| &a.production_listener).await;
    standin.codedeploy.world(|w| {
        for set_up in w.blue_green.values_mut() {
            set_up.test_listener = set_up.production_listener.clone();
        }
    });
    let response = invoke(&standin, "AfterAllowTestTraffic", &[]).await;
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    let reason = response["reason"].as_str().unwrap();
    assert!(
        reason.contains("test listener is its production listener")
            && reason.contains("which reaches blue until the shift"),
        "{reason}"
    );
    assert!(green.received().is_empty(), "blue's route was never asked");
}

#[tokio::test]
async fn a_route_that_cannot_be_found_fails_with_what_to_set() {
    // The stand-in's sample deployment has no blue/green set-up: no group to ask.
    let standin = AwsStandIn::start("127.0.0.1:0", None).await.unwrap();
    let response = invoke(&standin, "AfterAllowTestTraffic", &[]).await;
    assert_eq!(standin.codedeploy.reported_statuses(), vec!["Failed"]);
    let reason = response["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("no URL reaches green (GREENLIGHT_TEST_URL, GREENLIGHT_PRODUCTION_URL or the plan's target), and it could not be found from the deployment: GetDeploymentGroup"),
        "{reason}"
    );

    // A listener that is not HTTP(S) (a network load balancer's TCP listener) says so.
    let green = GreenServer::start(Behaviour::Healthy).await;
    let standin = AwsStandIn::start("127.0.0.1:0", None).await.unwrap();
    let arns = standin.seed_blue_green("d-AB12CD34E", true);
    standin.elb.set_listener_address(
        &arns.test_listener,
        "TCP",
        port_of(&green.url()),
        "127.0.0.1",
    );
    let response = invoke(&standin, "AfterAllowTestTraffic", &[]).await;
    assert!(
        response["reason"]
            .as_str()
            .unwrap()
            .contains("speaks TCP, not HTTP or HTTPS: set GREENLIGHT_TEST_URL"),
        "{response:#}"
    );
}
