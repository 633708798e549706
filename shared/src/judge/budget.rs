//! A bound on one piece of judging work: a number of steps and a point in time. Work that may
//! be large (a JSONPath over a big body, a regular expression over 1 MiB) spends steps as it
//! goes and stops, with a reason, when either runs out, so judging never holds a check past its
//! time limit and never grows without bound.

use std::time::Instant;

/// How often, in steps, the clock is read.
const CLOCK_EVERY: u64 = 4096;

/// Why work stopped before it was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// More than this many steps were needed.
    Steps(u64),
    /// The time limit came first.
    Time,
}

impl std::fmt::Display for Exhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exhausted::Steps(limit) => write!(f, "it needed more than {limit} steps"),
            Exhausted::Time => f.write_str("the check's time limit was reached while judging"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Budget {
    limit: u64,
    spent: u64,
    next_clock: u64,
    deadline: Option<Instant>,
}

impl Budget {
    pub fn new(steps: u64, deadline: Option<Instant>) -> Self {
        Budget {
            limit: steps,
            spent: 0,
            next_clock: CLOCK_EVERY,
            deadline,
        }
    }

    /// Effectively unbounded: for tests and tiny inputs.
    pub fn unlimited() -> Self {
        Self::new(u64::MAX, None)
    }

    /// Spends `steps`; an error once the steps or the time are used up.
    pub fn spend(&mut self, steps: u64) -> Result<(), Exhausted> {
        self.spent = self.spent.saturating_add(steps);
        if self.spent > self.limit {
            return Err(Exhausted::Steps(self.limit));
        }
        if self.spent >= self.next_clock {
            self.next_clock = self.spent.saturating_add(CLOCK_EVERY);
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Exhausted::Time);
            }
        }
        Ok(())
    }

    pub fn spent(&self) -> u64 {
        self.spent
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}
