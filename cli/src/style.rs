//! Terminal output: colour only when stdout is a terminal, NO_COLOR is unset and TERM is not
//! `dumb`; colours come from what a line reports, never from parsing its text.

use std::io::IsTerminal;

use greenlight::Outcome;

pub fn colour_enabled() -> bool {
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

fn paint(code: &str, text: &str) -> String {
    if colour_enabled() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

pub fn good(text: &str) -> String {
    paint("32", text)
}

pub fn bad(text: &str) -> String {
    paint("31", text)
}

pub fn warn(text: &str) -> String {
    paint("33", text)
}

pub fn dim(text: &str) -> String {
    paint("2", text)
}

/// A check's report line, its outcome word coloured by the outcome.
pub fn check_line(line: &str, outcome: &Outcome) -> String {
    let word = outcome.label().to_uppercase();
    let painter: fn(&str) -> String = match outcome {
        Outcome::Passed => good,
        Outcome::Failed { .. } => bad,
        Outcome::Errored { .. } | Outcome::Inconclusive { .. } => warn,
    };
    match line.find(&word) {
        Some(at) => format!(
            "{}{}{}",
            &line[..at],
            painter(&word),
            &line[at + word.len()..]
        ),
        None => line.to_string(),
    }
}
