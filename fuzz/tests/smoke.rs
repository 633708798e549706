//! Every fuzz target for a moment, in the test suite, so that the targets keep building and a
//! property broken by a change shows up in CI. Longer runs: `scripts/fuzz` (see the README).

use std::time::Duration;

use greenlight_fuzz::{all, run, Limit};

#[global_allocator]
static ALLOCATOR: greenlight_fuzz::memory::Counting = greenlight_fuzz::memory::Counting;

#[test]
fn every_property_holds_for_a_few_thousand_inputs_per_target() {
    let limit = Limit {
        time: Duration::from_millis(1500),
        execs: 200_000,
    };
    let mut broken = Vec::new();
    for target in all() {
        let report = run(&target, limit, 20261123);
        assert!(
            report.execs > 100,
            "{} ran only {} inputs",
            target.name,
            report.execs
        );
        for failure in &report.failures {
            broken.push(format!(
                "{}: {} (input: {:?})",
                target.name,
                failure.message,
                String::from_utf8_lossy(&failure.input)
            ));
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
}
