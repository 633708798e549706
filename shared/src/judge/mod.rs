//! Bounded judging: the parts of judging an answer whose cost depends on the body and the plan
//! (JSONPath queries, regular expressions) work within a [`Budget`] of steps and time, and stop
//! with a reason when it is spent. Together with the body cap, this keeps every check's judging
//! inside its attempt's time limit and a 128 MB function's memory.

pub mod budget;
pub mod jsonpath;
pub mod pattern;

pub use budget::{Budget, Exhausted};
pub use jsonpath::JsonPath;
pub use pattern::Pattern;

/// Steps one check's judging may spend: about a million JSONPath nodes.
pub const STEPS_PER_CHECK: u64 = 2_000_000;
