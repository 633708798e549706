//! Terminal output: colour only when stdout is a terminal (and NO_COLOR is unset).

use std::io::IsTerminal;

pub fn colour_enabled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
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

/// Colours the outcome word at the start of a check line.
pub fn check_line(line: &str) -> String {
    for (word, painter) in [
        ("PASSED", good as fn(&str) -> String),
        ("FAILED", bad),
        ("ERRORED", warn),
    ] {
        if let Some(rest) = line.trim_start().strip_prefix(word) {
            let indent = &line[..line.len() - line.trim_start().len()];
            return format!("{indent}{}{rest}", painter(word));
        }
    }
    line.to_string()
}
