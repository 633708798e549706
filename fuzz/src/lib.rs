//! Property loops over greenlight's parsers and its secrets rule.
//!
//! Each target takes arbitrary bytes and checks properties that must hold for every input (no
//! panic; what parses is well-formed; no secret survives in any output form). Inputs are seeds
//! (the repository's example plans and sample events, and hand-written cases) changed by random
//! mutations: bit flips, inserted dictionary tokens, deleted and repeated ranges, splices.
//! Everything is seeded, so a run can be repeated exactly; a failing input is kept for replay.
//!
//! Without coverage feedback this finds less than a coverage-guided fuzzer would; it runs on
//! the stable toolchain, in the test suite, and under a time limit, which a fuzzer of that kind
//! here could not.

pub mod engine;
pub mod memory;
pub mod targets;

pub use engine::{run, Limit, Report};
pub use targets::{all, Target};
