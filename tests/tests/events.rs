//! Every file in `events/` is a valid sample of the event its name says, so the README's
//! `cargo lambda invoke --data-file events/…` examples work.

use greenlight::alarm::parse_alarm_event;
use greenlight::codedeploy::parse_lifecycle_event;
use greenlight::ecs_hook::parse_ecs_hook_event;

#[test]
fn every_sample_event_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("events/ exists") {
        let path = entry.expect("readable entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(&path).expect("readable event");
        let value: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        if name.starts_with("after-allow-test-traffic")
            || name.starts_with("before-allow-traffic")
            || name.starts_with("after-allow-traffic")
        {
            parse_lifecycle_event(&value).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else if name.starts_with("alarm-rollback") {
            let event = parse_alarm_event(&value).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                event.is_alarm(),
                !name.contains("-ok"),
                "{name}: the name says which state it is in"
            );
        } else if name.starts_with("ecs-lifecycle-hook") {
            let event = parse_ecs_hook_event(&value).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                event.is_rollback(),
                name.contains("rollback"),
                "{name}: the name says whether it is a rollback"
            );
            assert!(
                event.target_service_revision_arn.is_some(),
                "{name}: names the target revision"
            );
        } else {
            panic!(
                "{name}: no test knows this kind of event; name it after the function it is for"
            );
        }
        seen += 1;
    }
    assert!(seen >= 12, "events/ holds the sample events");
}
