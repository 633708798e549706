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

// ECS-native: the route found from the service revision's listener rules.

use greenlight::ecs_hook::EcsHook;
use greenlight::ecs_route::EcsRoutes;
use greenlight_fakes::FakeAnswer;

const REVISION: &str =
    "arn:aws:ecs:us-east-1:123456789012:service-revision/prod/checkout/9313423515462893900";
const LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2";
const TEST_RULE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/1111111111111111";
const PRODUCTION_RULE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9999999999999999";

fn ecs_event() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events/ecs-lifecycle-hook-post-test-traffic-shift.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The stand-in with the sample event's service revision: its test rule on the production
/// listener (which answers on green's port at 127.0.0.1) with `conditions`, and the production
/// rule the listener's default.
async fn ecs_stand_in(green: &GreenServer, test_rule: &str, conditions: Value) -> AwsStandIn {
    let standin = AwsStandIn::start("127.0.0.1:0", None).await.unwrap();
    standin
        .ecs
        .add_service_revision(REVISION, test_rule, PRODUCTION_RULE);
    standin.elb.add_rule(TEST_RULE, conditions, false);
    standin.elb.add_rule(PRODUCTION_RULE, json!([]), true);
    standin
        .elb
        .set_listener_address(LISTENER, "HTTP", port_of(&green.url()), "127.0.0.1");
    standin
}

async fn invoke_ecs(standin: &AwsStandIn, vars: &[(&str, &str)]) -> Value {
    let hook = EcsHook::new(&Env::from_pairs(vars.iter().copied()))
        .with_routes(EcsRoutes::new(&standin.sdk_config().await));
    serde_json::to_value(
        hook.handle(ecs_event(), SystemTime::now() + Duration::from_secs(10))
            .await,
    )
    .unwrap()
}

fn last_reason(answer: &Value) -> String {
    answer["hookDetails"]["greenlight"]["lastReason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn header_rule() -> Value {
    json!([{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Greenlight-Test", "Values": ["true"]}},
           {"Field": "host-header", "HostHeaderConfig": {"Values": ["*.shop.example.com"]}}])
}

#[tokio::test]
async fn an_ecs_test_rule_is_found_and_its_header_and_host_sent() {
    let green = GreenServer::start(Behaviour::Healthy).await;
    let standin = ecs_stand_in(&green, TEST_RULE, header_rule()).await;
    // The plan's own value of the rule's header would miss the rule: the rule's wins.
    let plan = "version: 1\ndefaults: {headers: {x-greenlight-test: 'false'}}\nchecks: [{name: health, path: /health, expect: {body_contains: UP}}]";
    let answer = invoke_ecs(&standin, &[("GREENLIGHT_PLAN", plan)]).await;
    assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer:#}");
    let received = green.received();
    assert_eq!(received.len(), 1);
    let header = |name: &str| {
        received[0]
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("x-greenlight-test").as_deref(), Some("true"));
    assert_eq!(
        header("host").as_deref(),
        Some("greenlight.shop.example.com")
    );
    assert_eq!(
        standin.ecs.calls_to("DescribeServiceRevisions")[0].body["serviceRevisionArns"],
        json!([REVISION])
    );

    // No plan at all: the default plan through the found rule.
    let answer = invoke_ecs(&standin, &[]).await;
    assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer:#}");
    assert_eq!(green.received().len(), 2);
}

#[tokio::test]
async fn a_check_the_rule_does_not_match_is_refused_before_anything_is_sent() {
    let green = GreenServer::start(Behaviour::Healthy).await;
    let conditions = json!([{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}},
                            {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["GET", "HEAD"]}}]);
    let standin = ecs_stand_in(&green, TEST_RULE, conditions).await;
    let plan =
        "version: 1\nchecks: [{name: version, path: /api/version}, {name: health, path: /health}]";
    let answer = invoke_ecs(&standin, &[("GREENLIGHT_PLAN", plan)]).await;
    assert_eq!(answer["hookStatus"], "FAILED", "{answer:#}");
    let reason = last_reason(&answer);
    assert!(
        reason.contains("check health (GET /health) would not reach green through")
            && reason.contains("the test rule matches only the paths /api/*"),
        "{reason}"
    );
    assert!(green.received().is_empty());
    let plan = "version: 1\nchecks: [{name: order, method: POST, path: /api/orders, body: '{}'}]";
    let answer = invoke_ecs(&standin, &[("GREENLIGHT_PLAN", plan)]).await;
    assert!(
        last_reason(&answer).contains("only GET, HEAD requests"),
        "{answer:#}"
    );
}

#[tokio::test]
async fn a_test_route_that_reaches_blue_is_refused() {
    let green = GreenServer::start(Behaviour::Healthy).await;
    // The test rule is the production rule.
    let standin = ecs_stand_in(&green, PRODUCTION_RULE, json!([])).await;
    let answer = invoke_ecs(&standin, &[]).await;
    assert_eq!(answer["hookStatus"], "FAILED");
    assert!(
        last_reason(&answer).contains("is its production rule"),
        "{answer:#}"
    );
    // The test rule is the production listener's default rule.
    let standin = ecs_stand_in(&green, TEST_RULE, json!([])).await;
    let answer = invoke_ecs(&standin, &[]).await;
    assert!(
        last_reason(&answer)
            .contains("is the default rule of the production listener, which reaches blue"),
        "{answer:#}"
    );
    // A condition greenlight cannot satisfy is named.
    let regex = json!([{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "x-canary", "RegexValues": ["^t.*"]}}]);
    let standin = ecs_stand_in(&green, TEST_RULE, regex).await;
    let answer = invoke_ecs(&standin, &[]).await;
    assert!(
        last_reason(&answer).contains("matches http-header by regular expression"),
        "{answer:#}"
    );
    assert!(green.received().is_empty());
}

#[tokio::test]
async fn an_nlb_test_listener_is_a_route_by_itself_and_a_refusal_names_the_permission() {
    let green = GreenServer::start(Behaviour::Healthy).await;
    let nlb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/net/shop/1234/5678";
    let standin = ecs_stand_in(&green, nlb, json!([])).await;
    standin
        .elb
        .set_listener_address(nlb, "HTTP", port_of(&green.url()), "127.0.0.1");
    let answer = invoke_ecs(&standin, &[]).await;
    assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer:#}");
    assert!(standin.elb.calls_to("DescribeRules").is_empty());

    standin.ecs.answer_always(FakeAnswer::access_denied());
    let answer = invoke_ecs(&standin, &[]).await;
    assert_eq!(answer["hookStatus"], "FAILED");
    assert!(
        last_reason(&answer).contains("the function's role needs ecs:DescribeServiceRevisions"),
        "{answer:#}"
    );
}

#[tokio::test]
async fn a_hanging_ecs_api_still_leaves_the_answer_its_time() {
    let green = GreenServer::start(Behaviour::Healthy).await;
    let standin = ecs_stand_in(&green, TEST_RULE, header_rule()).await;
    standin.ecs.answer_always(FakeAnswer::Hang);
    let hook =
        EcsHook::new(&Env::from_pairs([])).with_routes(EcsRoutes::new(&standin.sdk_config().await));
    let started = std::time::Instant::now();
    let answer = hook
        .handle(ecs_event(), SystemTime::now() + Duration::from_secs(5))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let answer = serde_json::to_value(answer).unwrap();
    assert_eq!(answer["hookStatus"], "FAILED", "{answer:#}");
    assert!(
        last_reason(&answer).contains("DescribeServiceRevisions"),
        "{answer:#}"
    );
}

#[tokio::test]
async fn after_the_shift_an_ecs_stage_goes_through_the_production_rule() {
    let green = GreenServer::start(Behaviour::Healthy).await;
    let standin = ecs_stand_in(&green, TEST_RULE, header_rule()).await;
    let plan = "version: 1\nchecks: [{name: health, path: /health}]\nstages: {POST_PRODUCTION_TRAFFIC_SHIFT: {}}";
    let hook = EcsHook::new(&Env::from_pairs([("GREENLIGHT_PLAN", plan)]))
        .with_routes(EcsRoutes::new(&standin.sdk_config().await));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events/ecs-lifecycle-hook-post-production-traffic-shift.json");
    let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let answer = serde_json::to_value(
        hook.handle(event, SystemTime::now() + Duration::from_secs(10))
            .await,
    )
    .unwrap();
    assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer:#}");
    // The production rule (the listener's default), not the test rule: no test header is sent.
    let rules = standin.elb.calls_to("DescribeRules");
    assert_eq!(rules[0].body["RuleArns.member.1"], PRODUCTION_RULE);
    let received = green.received();
    assert_eq!(received.len(), 1);
    assert!(!received[0]
        .headers
        .iter()
        .any(|(name, _)| name == "x-greenlight-test"));
}
