//! Everything the command prints goes through here: secrets are masked by the one rule
//! (`greenlight::secrets`), and a closed pipe (`greenlight verify … | head -1`) ends the output
//! quietly instead of panicking; the command still finishes its work and cleans up.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Prints a line on standard output.
pub fn line(text: impl AsRef<str>) {
    write_out(&format!("{}\n", redact(text.as_ref())));
}

/// Prints text on standard output without a line break, and flushes it (a live status line).
pub fn inline(text: impl AsRef<str>) {
    write_out(&redact(text.as_ref()));
}

/// Prints a line on standard error.
pub fn error(text: impl AsRef<str>) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", redact(text.as_ref()));
}

/// Prints a value as pretty JSON, its string values masked.
pub fn json(value: &impl Serialize) -> Result<(), String> {
    let mut document = serde_json::to_value(value).map_err(|e| e.to_string())?;
    greenlight::secrets::global().redact_json(&mut document);
    let text = serde_json::to_string_pretty(&document).map_err(|e| e.to_string())?;
    write_out(&format!("{text}\n"));
    Ok(())
}

fn redact(text: &str) -> String {
    greenlight::secrets::global().redact(text).into_owned()
}

fn write_out(text: &str) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let written = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
        }
    }
}
