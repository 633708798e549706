//! The loop: pick a seed, mutate it, run the target under `catch_unwind`, and keep count of
//! executions, failures, the slowest input and the most memory one input held.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::memory;
use crate::targets::Target;

/// When a run stops: after this long, or this many executions, whichever comes first.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub time: Duration,
    pub execs: u64,
}

/// One input that broke a property.
#[derive(Debug, Clone)]
pub struct Failure {
    pub input: Vec<u8>,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub target: &'static str,
    pub execs: u64,
    pub elapsed: Duration,
    pub failures: Vec<Failure>,
    /// The longest one execution took.
    pub slowest: Duration,
    /// The most bytes one execution held live (0 without the counting allocator).
    pub peak_bytes: usize,
}

/// One execution longer than this is a failure: the code under test has no such case.
const SLOW: Duration = Duration::from_secs(2);
/// One execution holding more than this is a failure: a 128 MB function could not afford it.
const HEAVY: usize = 64 * 1024 * 1024;
/// Failures kept per run (the first ones; the count goes on).
const KEEP: usize = 10;

/// A small, fast, seedable random number generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Changes `input` by one to eight random mutations.
pub fn mutate(input: &mut Vec<u8>, rng: &mut Rng, dictionary: &[&str], corpus: &[Vec<u8>]) {
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next_u64() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                input.insert(i, rng.next_u64() as u8);
            }
            3 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                input.drain(start..end);
            }
            4 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(32)).min(len);
                let piece: Vec<u8> = input[start..end].to_vec();
                let at = rng.below(input.len() + 1);
                for _ in 0..1 + rng.below(3) {
                    input.splice(at..at, piece.iter().copied());
                }
            }
            5 | 6 if !dictionary.is_empty() => {
                let token = rng.pick(dictionary).as_bytes();
                let at = rng.below(len + 1);
                input.splice(at..at, token.iter().copied());
            }
            7 if !corpus.is_empty() => {
                let other = rng.pick(corpus);
                if !other.is_empty() {
                    let start = rng.below(other.len());
                    let end = (start + 1 + rng.below(64)).min(other.len());
                    let at = rng.below(len + 1);
                    input.splice(at..at, other[start..end].iter().copied());
                }
            }
            _ => {}
        }
        input.truncate(8 * 1024);
    }
}

/// Runs `target` until `limit`, starting from `seed`.
pub fn run(target: &Target, limit: Limit, seed: u64) -> Report {
    let corpus = (target.seeds)();
    let mut rng = Rng::new(seed ^ fnv(target.name));
    let message = Arc::new(Mutex::new(String::new()));
    let previous_hook = std::panic::take_hook();
    {
        let message = message.clone();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(mut m) = message.lock() {
                *m = info.to_string();
            }
        }));
    }
    let started = Instant::now();
    let mut report = Report {
        target: target.name,
        execs: 0,
        elapsed: Duration::ZERO,
        failures: Vec::new(),
        slowest: Duration::ZERO,
        peak_bytes: 0,
    };
    let mut failure_count = 0u64;
    while report.execs < limit.execs && started.elapsed() < limit.time {
        // A few rounds per clock check keep the loop cheap for fast targets.
        for _ in 0..64 {
            let mut input = if corpus.is_empty() || rng.chance(16) {
                Vec::new()
            } else {
                rng.pick(&corpus).clone()
            };
            if !rng.chance(8) {
                mutate(&mut input, &mut rng, target.dictionary, &corpus);
            }
            let case_seed = rng.next_u64();
            let base = memory::reset_peak();
            let began = Instant::now();
            let outcome =
                std::panic::catch_unwind(AssertUnwindSafe(|| (target.run)(&input, case_seed)));
            let took = began.elapsed();
            let held = memory::peak().saturating_sub(base);
            report.execs += 1;
            report.slowest = report.slowest.max(took);
            report.peak_bytes = report.peak_bytes.max(held);
            let problem = match outcome {
                Err(_) => Some(message.lock().map(|m| m.clone()).unwrap_or_default()),
                Ok(()) if took > SLOW => Some(format!("one execution took {took:?}")),
                Ok(()) if held > HEAVY => Some(format!("one execution held {} MiB", held >> 20)),
                Ok(()) => None,
            };
            if let Some(message) = problem {
                failure_count += 1;
                if report.failures.len() < KEEP {
                    report.failures.push(Failure { input, message });
                }
            }
        }
    }
    std::panic::set_hook(previous_hook);
    report.elapsed = started.elapsed();
    if failure_count > report.failures.len() as u64 {
        let more = failure_count - report.failures.len() as u64;
        report.failures.push(Failure {
            input: Vec::new(),
            message: format!("… and {more} more failing inputs"),
        });
    }
    report
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
