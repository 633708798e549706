//! The rehearsal's running commentary: one line per step, printed as it happens and kept for the
//! outcome.

use std::time::Instant;

use serde::Serialize;

use crate::{output, style};

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub at_ms: u64,
    pub step: String,
    pub message: String,
}

pub struct Timeline {
    started: Instant,
    live: bool,
    pub entries: Vec<Entry>,
}

impl Timeline {
    pub fn new(live: bool) -> Self {
        Timeline {
            started: Instant::now(),
            live,
            entries: Vec::new(),
        }
    }

    pub fn step(&mut self, step: &str, message: impl Into<String>) {
        let entry = Entry {
            at_ms: self.started.elapsed().as_millis() as u64,
            step: step.into(),
            message: message.into(),
        };
        if self.live {
            let at = format!("{:>6.2}s", entry.at_ms as f64 / 1000.0);
            output::line(format!(
                "  {}  {:<30} {}",
                style::dim(&at),
                entry.step,
                entry.message
            ));
        }
        self.entries.push(entry);
    }
}
