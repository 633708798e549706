//! `greenlight rehearse`: a CodeDeploy ECS blue/green deployment on 127.0.0.1.
//!
//! Blue and green are two instances of the demo service (`examples/demo-app`); a production and a
//! test listener stand in for the load balancer; a CodeDeploy stand-in walks the ECS lifecycle,
//! invokes the real hook binaries through the Lambda Runtime API, receives their
//! `PutLifecycleEventHookExecutionStatus` through the real AWS SDK, and shifts or rolls back
//! traffic. After the shift the real after-allow-traffic binary judges green's metrics, which
//! the production listener publishes to a CloudWatch stand-in as an ALB would (the slow
//! scenario fails there); in the alarm scenario a 5xx alarm fires and the real alarm-rollback
//! binary stops the deployment. Every server and process stops when the rehearsal
//! ends, also on Ctrl-C.

mod binaries;
mod deployment;
mod timeline;

use std::path::PathBuf;

use clap::ValueEnum;
use serde::Serialize;

use crate::{output, style, Format};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Green is healthy: the hooks pass and production moves to green.
    Healthy,
    /// Green's orders API is broken: AfterAllowTestTraffic catches it and CodeDeploy rolls back.
    Broken,
    /// Green passes the hooks but fails under production traffic: a 5xx alarm rolls it back.
    Alarm,
    /// Green passes the hooks but slows down under production traffic: the AfterAllowTraffic
    /// hook's metric gate (green's p90 response time) rolls it back.
    Slow,
}

impl Scenario {
    /// What greenlight must make of this scenario.
    pub fn expected(self) -> deployment::Result {
        match self {
            Scenario::Healthy => deployment::Result::Promoted,
            Scenario::Broken | Scenario::Alarm | Scenario::Slow => deployment::Result::RolledBack,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Scenario::Healthy => "green 2.0.0 is healthy",
            Scenario::Broken => "green 2.0.0's orders API answers 500",
            Scenario::Alarm => "green 2.0.0 passes the hooks, then fails under production traffic",
            Scenario::Slow => {
                "green 2.0.0 passes the hooks, then slows down under production traffic (orders take 400ms)"
            }
        }
    }
}

pub async fn run(
    mut scenarios: Vec<Scenario>,
    functions_dir: Option<PathBuf>,
    format: Format,
    verbose: bool,
) -> u8 {
    if scenarios.is_empty() {
        scenarios = vec![Scenario::Healthy, Scenario::Broken];
    }
    let functions_dir = match binaries::Binaries::find(functions_dir) {
        Ok(binaries) => binaries,
        Err(message) => {
            output::error(format!("greenlight: {message}"));
            return 2;
        }
    };
    // Ctrl-C is caught from here on, before anything starts: the rehearsal can start its processes
    // within its first poll, and an interrupt must never leave them running.
    let mut interrupt = match Interrupt::catch() {
        Ok(interrupt) => interrupt,
        Err(e) => {
            output::error(format!("greenlight: cannot catch Ctrl-C: {e}"));
            return 2;
        }
    };
    let live = format == Format::Text;
    let mut outcomes = Vec::new();
    for scenario in scenarios {
        if live {
            output::line(format!(
                "\n{} {:?}: {}",
                style::dim("scenario"),
                scenario,
                scenario.describe()
            ));
        }
        let rehearsal = deployment::rehearse(scenario, &functions_dir, live, verbose);
        let outcome = tokio::select! {
            biased;
            _ = interrupt.recv() => {
                // Leaving the select drops the rehearsal: servers close, function processes are killed.
                output::error("\ngreenlight: interrupted; every server and function process of the rehearsal is stopped");
                return 130;
            }
            outcome = rehearsal => outcome,
        };
        match outcome {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => {
                output::error(format!("greenlight: the rehearsal could not run: {e:#}"));
                return 2;
            }
        }
    }
    let as_expected = outcomes.iter().all(|o| o.result == o.scenario.expected());
    if format == Format::Json {
        if let Err(e) = output::json(&outcomes) {
            output::error(format!(
                "greenlight: cannot print the outcomes as JSON: {e}"
            ));
            return 2;
        }
    } else {
        output::line("");
        for o in &outcomes {
            let mark = if o.result == o.scenario.expected() {
                style::good("as expected")
            } else {
                style::bad("NOT AS EXPECTED")
            };
            output::line(format!(
                "{:<8} {}: {} ({mark})",
                format!("{:?}", o.scenario).to_lowercase(),
                o.result.describe(),
                o.reason
            ));
            let p = o.production_requests;
            output::line(format!(
                "         production traffic: {} to blue, {} to green ({} of them 5xx)",
                p.blue, p.green, p.green_5xx
            ));
        }
    }
    if as_expected {
        0
    } else {
        1
    }
}

/// Ctrl-C, caught from the moment this is created.
struct Interrupt {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupt {
    fn catch() -> std::io::Result<Self> {
        #[cfg(unix)]
        return Ok(Interrupt {
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?,
        });
        #[cfg(not(unix))]
        return Ok(Interrupt {});
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        self.signal.recv().await;
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
