//! A point in time by which work must be finished, on tokio's clock.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// Longest a Lambda invocation can run; a deadline further away than this is not trusted.
const LAMBDA_MAX: Duration = Duration::from_secs(15 * 60);
/// Time kept after verification for reporting or answering: a fifth of the invocation, within these bounds.
const MIN_ANSWER_RESERVE: Duration = Duration::from_secs(1);
const MAX_ANSWER_RESERVE: Duration = Duration::from_secs(5);

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

    /// The deadline of a Lambda invocation, unless it is missing or absurd (as under some local
    /// emulators): then the longest invocation Lambda allows.
    pub fn of_invocation(lambda_deadline: SystemTime) -> Self {
        match lambda_deadline.duration_since(SystemTime::now()) {
            Ok(remaining) if remaining <= LAMBDA_MAX => Self::after(remaining),
            _ => {
                tracing::warn!(
                    "the invocation deadline is missing or implausible; assuming 15 minutes"
                );
                Self::after(LAMBDA_MAX)
            }
        }
    }

    /// When verification inside this invocation must end: at the plan's `budget`, or earlier, so
    /// that a fifth of the invocation (1 to 5 seconds) is left to report or answer.
    pub fn for_verification(self, budget: Duration) -> Self {
        let reserve = (self.remaining() / 5).clamp(MIN_ANSWER_RESERVE, MAX_ANSWER_RESERVE);
        self.minus(reserve).earliest(Self::after(budget))
    }

    /// The same deadline moved earlier by `margin` (never before now).
    pub fn minus(self, margin: Duration) -> Deadline {
        let now = Instant::now();
        Deadline(self.0.checked_sub(margin).unwrap_or(now).max(now))
    }
}
