//! `greenlight-fuzz`: runs the property loops for a chosen time (see the crate's docs).
//!
//! ```text
//! greenlight-fuzz [TARGET…|all] [--seconds N] [--execs N] [--seed N] [--replay FILE]
//! ```
//! Prints one line per target (executions, failures, slowest input, most memory held) and
//! writes each failing input to `target/fuzz-failures/`. Exit 1 when any property failed.

use std::time::Duration;

use greenlight_fuzz::{all, run, Limit};

#[global_allocator]
static ALLOCATOR: greenlight_fuzz::memory::Counting = greenlight_fuzz::memory::Counting;

fn main() -> std::process::ExitCode {
    let mut names = Vec::new();
    let mut seconds = 10u64;
    let mut execs = u64::MAX;
    let mut seed = 1u64;
    let mut replay = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |what: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&format!("{what} needs a number")))
        };
        match arg.as_str() {
            "--seconds" => seconds = number("--seconds"),
            "--execs" => execs = number("--execs"),
            "--seed" => seed = number("--seed"),
            "--replay" => {
                replay = Some(
                    args.next()
                        .unwrap_or_else(|| usage("--replay needs a file")),
                )
            }
            "-h" | "--help" => usage(""),
            other if other.starts_with('-') => usage(&format!("unknown option {other}")),
            other => names.push(other.to_string()),
        }
    }
    let targets = all();
    if names.is_empty() || names.iter().any(|n| n == "all") {
        names = targets.iter().map(|t| t.name.to_string()).collect();
    }
    for name in &names {
        if !targets.iter().any(|t| t.name == name) {
            usage(&format!("no target {name}"));
        }
    }
    if let Some(file) = replay {
        let input = std::fs::read(&file).unwrap_or_else(|e| usage(&format!("{file}: {e}")));
        for target in targets
            .iter()
            .filter(|t| names.contains(&t.name.to_string()))
        {
            println!("replaying {file} on {}", target.name);
            (target.run)(&input, seed);
        }
        return std::process::ExitCode::SUCCESS;
    }
    let limit = Limit {
        time: Duration::from_secs(seconds),
        execs,
    };
    let mut failed = false;
    println!(
        "{:<17} {:>12} {:>9} {:>10} {:>10}  about",
        "target", "execs", "failures", "slowest", "peak"
    );
    for target in targets
        .iter()
        .filter(|t| names.contains(&t.name.to_string()))
    {
        let report = run(target, limit, seed);
        println!(
            "{:<17} {:>12} {:>9} {:>8.1}ms {:>7.1}MiB  {}",
            report.target,
            report.execs,
            report.failures.len(),
            report.slowest.as_secs_f64() * 1000.0,
            report.peak_bytes as f64 / (1024.0 * 1024.0),
            target.about
        );
        for (i, failure) in report.failures.iter().enumerate() {
            failed = true;
            println!("  failure: {}", failure.message);
            if !failure.input.is_empty() {
                let dir = std::path::Path::new("target/fuzz-failures");
                let _ = std::fs::create_dir_all(dir);
                let path = dir.join(format!("{}-{i}", report.target));
                if std::fs::write(&path, &failure.input).is_ok() {
                    println!(
                        "  input saved: {} (replay: greenlight-fuzz {} --replay {})",
                        path.display(),
                        report.target,
                        path.display()
                    );
                }
            }
        }
    }
    if failed {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    }
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("greenlight-fuzz: {problem}");
    }
    eprintln!(
        "usage: greenlight-fuzz [TARGET…|all] [--seconds N] [--execs N] [--seed N] [--replay FILE]"
    );
    eprintln!(
        "targets: {}",
        all().iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
    );
    std::process::exit(2)
}
