//! `greenlight rehearse`: a CodeDeploy ECS blue/green deployment on 127.0.0.1.
//!
//! Blue and green are two instances of the demo service (`examples/demo-app`); a production and a
//! test listener stand in for the load balancer; a CodeDeploy stand-in walks the ECS lifecycle,
//! invokes the real hook binaries through the Lambda Runtime API, receives their
//! `PutLifecycleEventHookExecutionStatus` through the real AWS SDK, and shifts or rolls back
//! traffic. After the shift the real after-allow-traffic binary judges green's metrics, which
//! the production listener publishes to a CloudWatch stand-in as an ALB would (the slow
//! scenario fails there); in the alarm scenario a 5xx alarm fires and the real alarm-rollback
//! binary stops the deployment. The fleet scenario deploys two services through one set of hook
//! processes, each with its own plan (`GREENLIGHT_PLANS`) and the route to its green found from
//! its deployment. Every server and process stops when the rehearsal ends, also on Ctrl-C.

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
    /// Two services through one greenlight, each with its own plan and the route found from its
    /// deployment: checkout's green is healthy and promoted, payments' is broken and rolled back.
    Fleet,
}

impl Scenario {
    /// What greenlight must make of each service this scenario deploys.
    pub fn expected(self) -> Vec<deployment::Result> {
        use deployment::Result::{Promoted, RolledBack};
        match self {
            Scenario::Healthy => vec![Promoted],
            Scenario::Broken | Scenario::Alarm | Scenario::Slow => vec![RolledBack],
            Scenario::Fleet => vec![Promoted, RolledBack],
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
            Scenario::Fleet => {
                "checkout and payments deploy through one greenlight; checkout's green is healthy, payments' orders API answers 500"
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
    let met = |o: &deployment::Outcome| {
        o.services.iter().map(|s| s.result).collect::<Vec<_>>() == o.scenario.expected()
    };
    let as_expected = outcomes.iter().all(met);
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
            let mark = if met(o) {
                style::good("as expected")
            } else {
                style::bad("NOT AS EXPECTED")
            };
            let scenario = format!("{:?}", o.scenario).to_lowercase();
            for (i, s) in o.services.iter().enumerate() {
                let who = if o.services.len() > 1 {
                    format!("{}: ", s.service)
                } else {
                    String::new()
                };
                output::line(format!(
                    "{:<8} {who}{}: {}{}",
                    if i == 0 { scenario.as_str() } else { "" },
                    s.result.describe(),
                    s.reason,
                    if i + 1 == o.services.len() {
                        format!(" ({mark})")
                    } else {
                        String::new()
                    }
                ));
                let p = s.production_requests;
                output::line(format!(
                    "         production traffic: {} to blue, {} to green ({} of them 5xx)",
                    p.blue, p.green, p.green_5xx
                ));
            }
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
