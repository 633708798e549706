//! A point in time by which work must be finished, on tokio's clock.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// Longest a Lambda invocation can run; a deadline further away than this is not trusted.
const LAMBDA_MAX: Duration = Duration::from_secs(15 * 60);
/// The deadline assumed when an invocation has none.
const DEFAULT_FALLBACK: Duration = Duration::from_secs(60);

/// `GREENLIGHT_INVOCATION_TIMEOUT` (a duration such as `30s`, at most 15 minutes), else 60 s.
fn fallback_timeout() -> Duration {
    static FALLBACK: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *FALLBACK.get_or_init(|| {
        match crate::env::Env::process().setting("GREENLIGHT_INVOCATION_TIMEOUT") {
            Ok(Some(text)) => match crate::duration::parse_duration(&text) {
                Ok(d) if !d.is_zero() && d <= LAMBDA_MAX => d,
                _ => {
                    tracing::warn!(value = %text, "GREENLIGHT_INVOCATION_TIMEOUT is not a duration between 0s and 15m; using 60s");
                    DEFAULT_FALLBACK
                }
            },
            Ok(None) => DEFAULT_FALLBACK,
            Err(e) => {
                tracing::warn!(error = %e, "using 60s");
                DEFAULT_FALLBACK
            }
        }
    })
}
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
    /// emulators, which give none or days): then a short one, 60 s unless
    /// `GREENLIGHT_INVOCATION_TIMEOUT` says otherwise, so a local run never waits 15 minutes. Said
    /// once in the log.
    pub fn of_invocation(lambda_deadline: SystemTime) -> Self {
        match lambda_deadline.duration_since(SystemTime::now()) {
            Ok(remaining) if remaining <= LAMBDA_MAX && !remaining.is_zero() => {
                Self::after(remaining)
            }
            _ => {
                let fallback = fallback_timeout();
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    tracing::warn!(
                        timeout_ms = fallback.as_millis() as u64,
                        "the invocation has no plausible deadline (a local emulator?); using {} (GREENLIGHT_INVOCATION_TIMEOUT)",
                        crate::duration::format_duration(fallback)
                    )
                });
                Self::after(fallback)
            }
        }
    }

    /// When verification inside this invocation must end: at the plan's `budget`, or earlier, so
    /// that a fifth of the invocation (1 to 5 seconds) is left to report or answer.
    pub fn for_verification(self, budget: Duration) -> Self {
        self.before_answer().earliest(Self::after(budget))
    }

    /// When any work before the report or answer (verification, choosing the plan, finding the
    /// route) must end: a fifth of the invocation (1 to 5 seconds) before this deadline.
    pub fn before_answer(self) -> Self {
        let reserve = (self.remaining() / 5).clamp(MIN_ANSWER_RESERVE, MAX_ANSWER_RESERVE);
        self.minus(reserve)
    }

    /// The same deadline moved earlier by `margin` (never before now).
    pub fn minus(self, margin: Duration) -> Deadline {
        let now = Instant::now();
        Deadline(self.0.checked_sub(margin).unwrap_or(now).max(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_absurd_invocation_deadline_becomes_a_short_one() {
        for absurd in [
            std::time::UNIX_EPOCH,
            SystemTime::now() + Duration::from_secs(86_400),
        ] {
            let remaining = Deadline::of_invocation(absurd).remaining();
            assert!(
                remaining <= DEFAULT_FALLBACK && remaining > Duration::from_secs(50),
                "{remaining:?}"
            );
        }
        let real = Deadline::of_invocation(SystemTime::now() + Duration::from_secs(5)).remaining();
        assert!(
            real <= Duration::from_secs(5) && real > Duration::from_secs(4),
            "{real:?}"
        );
    }
}
