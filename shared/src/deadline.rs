//! A point in time by which work must be finished, on tokio's clock.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(duration: Duration) -> Self {
        Deadline(Instant::now() + duration)
    }

    /// Converts a wall-clock deadline (such as the Lambda invocation deadline) to this clock.
    pub fn at_system_time(when: SystemTime) -> Self {
        let remaining = when
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Self::after(remaining)
    }

    pub fn instant(self) -> Instant {
        self.0
    }

    pub fn remaining(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    pub fn is_past(self) -> bool {
        self.remaining().is_zero()
    }

    pub fn earliest(self, other: Deadline) -> Deadline {
        self.min(other)
    }

    /// The same deadline moved earlier by `margin` (never before now).
    pub fn minus(self, margin: Duration) -> Deadline {
        let now = Instant::now();
        Deadline(self.0.checked_sub(margin).unwrap_or(now).max(now))
    }
}
