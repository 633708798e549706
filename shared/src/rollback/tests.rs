//! The decision logic in-process, against the in-memory controllers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::controller::memory::World;
use super::*;
use crate::env::Env;

const ALARM_ARN: &str = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-5xx";

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
}

fn event(state: &str, seconds: u64) -> AlarmEvent {
    parse_alarm_event(&json!({
        "detail-type": "CloudWatch Alarm State Change",
        "resources": [ALARM_ARN],
        "detail": {"alarmName": "checkout-5xx", "state": {"value": state, "reason": "r",
            "timestamp": crate::timestamp::format(at(seconds))}}
    }))
    .unwrap()
}

fn group() -> Target {
    Target::parse("codedeploy:checkout/checkout-prod").unwrap()
}

fn ecs() -> Target {
    Target::parse("ecs:prod/checkout").unwrap()
}

fn rollback(world: &World, env: &[(&str, &str)]) -> AlarmRollback {
    AlarmRollback::with_ports(
        RollbackSettings::read(&Env::from_pairs(env.iter().copied())),
        world.ports(),
    )
}

fn tagged(world: &World) {
    world.tag(
        ALARM_ARN,
        &[
            ("greenlight:codedeploy-application", "checkout"),
            ("greenlight:codedeploy-deployment-group", "checkout-prod"),
        ],
    );
}

fn soon() -> Deadline {
    Deadline::after(Duration::from_secs(5))
}

#[tokio::test]
async fn a_replayed_alarm_never_stops_a_deployment_created_after_it() {
    let world = World::default();
    tagged(&world);
    world.deploy(&group(), "d-OLD", at(0));
    let r = rollback(&world, &[("GREENLIGHT_DISCOVERY_APPLICATIONS", "off")]);
    // ALARM at 100 stops d-OLD.
    let first = r.decide_and_act(&event("ALARM", 100), soon()).await;
    assert_eq!(first.count("stopped"), 1);
    // The alarm returns to OK; a new deployment starts; the first ALARM is delivered again.
    r.decide_and_act(&event("OK", 200), soon()).await;
    world.deploy(&group(), "d-NEW", at(300));
    let replay = r.decide_and_act(&event("ALARM", 100), soon()).await;
    assert_eq!(
        world.stops(),
        vec!["d-OLD"],
        "the new deployment is untouched"
    );
    assert!(
        matches!(replay.ignored, Some(Ignored::Superseded { .. })),
        "{replay:?}"
    );
    assert!(serde_json::to_string(&replay)
        .unwrap()
        .contains("superseded: this ALARM is from"));
}

#[tokio::test]
async fn a_late_alarm_skips_a_deployment_that_started_after_it() {
    let world = World::default();
    tagged(&world);
    world.deploy(&group(), "d-NEW", at(500));
    let r = rollback(&world, &[("GREENLIGHT_DISCOVERY_APPLICATIONS", "off")]);
    let decision = r.decide_and_act(&event("ALARM", 100), soon()).await;
    assert!(world.stops().is_empty());
    let record = serde_json::to_value(&decision).unwrap();
    assert_eq!(record["actions"][0]["action"], "skipped");
    assert_eq!(record["actions"][0]["skip"], "stale");
    assert!(
        record["actions"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("after the alarm entered ALARM"),
        "{record}"
    );
}

#[tokio::test]
async fn one_hanging_target_never_starves_another() {
    let world = World::default();
    world.hang(&group());
    world.deploy(&ecs(), "arn:ecs-green", at(0));
    let r = rollback(
        &world,
        &[
            (
                "GREENLIGHT_ALARM_TARGETS",
                "checkout-5xx: [codedeploy:checkout/checkout-prod, ecs:prod/checkout]",
            ),
            ("GREENLIGHT_DISCOVERY_APPLICATIONS", "off"),
        ],
    );
    let deadline = Deadline::after(Duration::from_secs(3));
    let started = tokio::time::Instant::now();
    let run = tokio::spawn({
        let r = r.clone();
        async move { r.decide_and_act(&event("ALARM", 100), deadline).await }
    });
    // The ECS stop happens long before the hanging CodeDeploy listing gives up.
    let until = started + Duration::from_secs(1);
    while world.stops().is_empty() && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        world.stops(),
        vec!["arn:ecs-green"],
        "stopped within a second"
    );
    let decision = run.await.unwrap();
    assert_eq!(decision.count("stopped"), 1);
    assert_eq!(
        decision.count("failed"),
        1,
        "the hanging target is reported"
    );
}

#[tokio::test]
async fn discovery_is_partial_and_on_by_default() {
    let world = World::default();
    world.group_watches(&group(), &["checkout-5xx"]);
    world.group_watches(
        &Target::parse("codedeploy:payments/prod").unwrap(),
        &["checkout-5xx"],
    );
    world.unreadable_application("payments");
    world.deploy(&group(), "d-GREEN", at(0));
    let r = rollback(&world, &[]);
    let decision = r.decide_and_act(&event("ALARM", 100), soon()).await;
    assert_eq!(
        world.stops(),
        vec!["d-GREEN"],
        "the readable application is still acted on"
    );
    assert!(
        decision
            .problems
            .iter()
            .any(|p| p.contains("could not read the deployment groups of payments")),
        "{:?}",
        decision.problems
    );
    assert_eq!(decision.targets[0].source, Source::Discovery);
    let off = rollback(&world, &[("GREENLIGHT_DISCOVERY_APPLICATIONS", "off")]);
    let decision = off.decide_and_act(&event("ALARM", 100), soon()).await;
    assert!(decision.targets.is_empty());
}

#[tokio::test]
async fn an_unclear_dry_run_stops_nothing_and_says_why() {
    let world = World::default();
    tagged(&world);
    world.deploy(&group(), "d-GREEN", at(0));
    let r = rollback(
        &world,
        &[
            ("GREENLIGHT_DRY_RUN", "ture"),
            ("GREENLIGHT_DISCOVERY_APPLICATIONS", "off"),
        ],
    );
    let decision = r.decide_and_act(&event("ALARM", 100), soon()).await;
    assert!(world.stops().is_empty());
    assert_eq!(decision.count("would-stop"), 1);
    assert!(
        decision.problems[0].contains("GREENLIGHT_DRY_RUN=\"ture\""),
        "{:?}",
        decision.problems
    );
}

#[tokio::test]
async fn targets_outside_the_allow_list_are_never_stopped() {
    let world = World::default();
    tagged(&world);
    world.deploy(&group(), "d-GREEN", at(0));
    let r = rollback(
        &world,
        &[
            ("GREENLIGHT_ALLOWED_TARGETS", "ecs:prod/*"),
            ("GREENLIGHT_DISCOVERY_APPLICATIONS", "off"),
        ],
    );
    let decision = r.decide_and_act(&event("ALARM", 100), soon()).await;
    assert!(world.stops().is_empty());
    assert_eq!(decision.actions[0].act, Act::Skipped(Skip::NotAllowed));
}

#[tokio::test]
async fn duplicate_events_stop_once() {
    let world = World::default();
    tagged(&world);
    world.deploy(&group(), "d-GREEN", at(0));
    let r = rollback(&world, &[("GREENLIGHT_DISCOVERY_APPLICATIONS", "off")]);
    r.decide_and_act(&event("ALARM", 100), soon()).await;
    r.decide_and_act(&event("ALARM", 100), soon()).await;
    assert_eq!(world.stops(), vec!["d-GREEN"]);
}

/// The same alarm, raised in `account`.
fn event_in(account: &str) -> AlarmEvent {
    parse_alarm_event(&json!({
        "detail-type": "CloudWatch Alarm State Change",
        "account": account,
        "resources": [ALARM_ARN.replace("123456789012", account)],
        "detail": {"alarmName": "checkout-5xx", "state": {"value": "ALARM", "reason": "r",
            "timestamp": crate::timestamp::format(at(100))}}
    }))
    .unwrap()
}

#[tokio::test]
async fn another_accounts_alarm_of_the_same_name_never_stops_this_accounts_deployment() {
    let world = World::default();
    world.tag(
        &ALARM_ARN.replace("123456789012", "999999999999"),
        &[
            ("greenlight:codedeploy-application", "checkout"),
            ("greenlight:codedeploy-deployment-group", "checkout-prod"),
        ],
    );
    tagged(&world);
    world.deploy(&group(), "d-MINE", at(0));
    let env = [
        ("GREENLIGHT_DISCOVERY_APPLICATIONS", "off"),
        ("GREENLIGHT_ACCOUNT_ID", "123456789012"),
    ];
    let r = rollback(&world, &env);
    let foreign = r.decide_and_act(&event_in("999999999999"), soon()).await;
    assert!(world.stops().is_empty());
    assert_eq!(
        foreign.ignored,
        Some(Ignored::OtherAccount(Some("999999999999".into())))
    );
    assert!(serde_json::to_string(&foreign)
        .unwrap()
        .contains("the alarm is in account 999999999999, not this one"));
    // A central monitoring account, listed, is acted on; so is this account's own alarm.
    let r = rollback(
        &world,
        &[
            ("GREENLIGHT_DISCOVERY_APPLICATIONS", "off"),
            ("GREENLIGHT_ACCOUNT_ID", "123456789012"),
            ("GREENLIGHT_ALARM_ACCOUNTS", "999999999999"),
        ],
    );
    assert_eq!(
        r.decide_and_act(&event_in("999999999999"), soon())
            .await
            .count("stopped"),
        1
    );
    world.deploy(&group(), "d-MINE-2", at(0));
    let r = rollback(&world, &env);
    assert_eq!(
        r.decide_and_act(&event_in("123456789012"), soon())
            .await
            .count("stopped"),
        1
    );
    assert_eq!(world.stops(), vec!["d-MINE", "d-MINE-2"]);
}
