//! `greenlight`: run a verification plan from a laptop or a pipeline, check a plan, and rehearse a
//! whole blue/green deployment locally with the real function binaries.
//!
//! Exit codes: 0 passed, 1 verification failed (or a rehearsal ended unlike it should), 2 usage or
//! configuration error.

mod output;
mod plan_cmd;
mod rehearse;
mod standin_cmd;
mod style;
mod verify_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Verify the green side of an ECS blue/green deployment, or rehearse one locally.
#[derive(Parser)]
#[command(name = "greenlight", version, about, long_about = None, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  greenlight rehearse                       a healthy and a broken green, back to back, on 127.0.0.1
  greenlight verify --target http://internal-alb:8080 --plan examples/plans/api.yaml
  greenlight plan check examples/plans/api.yaml
  greenlight aws-standin                    CodeDeploy, ECS, CloudWatch, SNS, Lambda on 127.0.0.1:4566, for cargo lambda watch";

#[derive(Subcommand)]
enum Command {
    /// Run a plan once against a target and print the verdict (exit 0 passed, 1 failed).
    ///
    /// The plan comes from --plan, else GREENLIGHT_PLAN / GREENLIGHT_PLAN_FILE, else the default
    /// plan (GET the target, expect 200-399). The target comes from --target, else
    /// GREENLIGHT_TEST_URL, else the plan's `target`.
    Verify {
        /// The plan file (YAML or JSON).
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
        /// Base URL that reaches green, e.g. the test listener: http://my-alb:8080
        #[arg(long, value_name = "URL")]
        target: Option<String>,
        /// Base URL that reaches blue, for compare checks (the production listener); sets
        /// GREENLIGHT_PRODUCTION_URL for this run.
        #[arg(long, value_name = "URL")]
        baseline: Option<String>,
        /// `text` shows each check as it ends and a verdict table; `json` prints the verdict for pipelines.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Work with plans.
    Plan {
        #[command(subcommand)]
        command: PlanCommand,
    },
    /// Serve local stand-ins of CodeDeploy, ECS, CloudWatch, SNS, ELB, Parameter Store and Lambda (Invoke) on one port (state in memory,
    /// each call printed), for running the functions with `cargo lambda watch` and no AWS account.
    AwsStandin {
        /// Address to listen on.
        #[arg(long, value_name = "HOST:PORT", default_value = greenlight_fakes::standin::DEFAULT_ADDRESS)]
        bind: String,
    },
    /// Print shell completions: `greenlight completions bash > /etc/bash_completion.d/greenlight`,
    /// `greenlight completions zsh > "${fpath[1]}/_greenlight"`, `greenlight completions fish >
    /// ~/.config/fish/completions/greenlight.fish`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Rehearse a CodeDeploy ECS blue/green deployment on 127.0.0.1, with the real hook and
    /// alarm-rollback binaries under a Lambda Runtime API emulator. No AWS account, no Docker.
    ///
    /// Scenarios: `healthy` (green is promoted), `broken` (a hook catches green and CodeDeploy
    /// rolls back), `alarm` (green passes the hooks, fails under production traffic, and a 5xx alarm
    /// rolls it back), `slow` (green passes the hooks, slows down under production traffic, and the
    /// AfterAllowTraffic metric gate rolls it back). Without arguments: healthy, then broken.
    Rehearse {
        /// Which scenarios to run, in order.
        #[arg(value_enum)]
        scenarios: Vec<rehearse::Scenario>,
        /// Where the function binaries are: cargo's layout (DIR/<function>) or cargo-lambda's
        /// (DIR/<function>/bootstrap). Default: next to this `greenlight`, else ./target/debug,
        /// else ./target/lambda.
        #[arg(long, value_name = "DIR", env = "GREENLIGHT_FUNCTIONS_DIR")]
        functions_dir: Option<PathBuf>,
        /// `json` prints each scenario's outcome and timeline as JSON.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Also print what each function logged.
        #[arg(long)]
        verbose: bool,
    },
}

#[derive(Subcommand)]
enum PlanCommand {
    /// Validate a plan exactly as the hooks do, and explain each problem with its field path.
    ///
    /// Exit 0: valid, and this shell's environment fills in every ${VAR}. Exit 1: valid, but
    /// in this shell the hooks would reject it (an unset variable, a value that is not a URL);
    /// the function's environment must supply what is listed. Exit 2: the plan itself is invalid.
    Check {
        /// The plan file (YAML or JSON), or - for standard input.
        file: PathBuf,
        /// The base URL relative paths are joined to (default: GREENLIGHT_TEST_URL, else a placeholder).
        #[arg(long, value_name = "URL")]
        target: Option<String>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        let mut command = <Cli as clap::CommandFactory>::command();
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut command, "greenlight", &mut script);
        output::inline(String::from_utf8_lossy(&script));
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            output::error(format!("greenlight: cannot start the async runtime: {e}"));
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Verify {
                plan,
                target,
                baseline,
                format,
            } => verify_cmd::run(plan, target, baseline, format).await,
            Command::Plan {
                command: PlanCommand::Check { file, target },
            } => plan_cmd::check(&file, target),
            Command::Rehearse {
                scenarios,
                functions_dir,
                format,
                verbose,
            } => rehearse::run(scenarios, functions_dir, format, verbose).await,
            Command::Completions { .. } => 0,
            Command::AwsStandin { bind } => standin_cmd::run(bind).await,
        }
    });
    // Judging that is still winding down (it stops at its own deadline) must not hold the exit.
    runtime.shutdown_background();
    ExitCode::from(code)
}
