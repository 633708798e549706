//! Regular expressions that can be stopped. A search over a 1 MiB body with a pattern such as
//! `(\w+\s?){1,100}X` takes seconds even in a linear-time engine; run to completion, four of
//! them made a hook miss its deadline. Here the search steps a lazy DFA byte by byte, reading
//! the clock as it goes, and stops at the budget's deadline with a reason.
//!
//! The one case the lazy DFA cannot handle on its own is a Unicode word boundary (`\b`) over
//! non-ASCII text; then the search falls back to the full engine, whose work is still linear
//! in the body and bounded by the compiled size limit, but cannot be interrupted.

use std::sync::Arc;

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::{meta, Input};

use super::budget::{Budget, Exhausted};

/// A pattern's automaton may take at most this much, so that compiling and matching stay
/// bounded (`(\w+\s?){1,100}X`, Unicode-aware, takes about 5.5 MiB in all); `crate::plan` also
/// bounds a whole plan's patterns.
const SIZE_LIMIT: usize = 8 * 1024 * 1024;
/// The lazy DFA's state cache, per search.
const CACHE_CAPACITY: usize = 512 * 1024;
/// How many bytes are stepped between two looks at the clock.
const CLOCK_EVERY_BYTES: usize = 16 * 1024;

/// A compiled regular expression (the `regex` crate's syntax).
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    full: Arc<meta::Regex>,
    dfa: Option<Arc<DFA>>,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Pattern {
    /// Compiles `text`; the error says what is wrong in one line.
    pub fn new(text: &str) -> Result<Self, String> {
        let full = meta::Regex::builder()
            .configure(
                meta::Config::new()
                    .nfa_size_limit(Some(SIZE_LIMIT))
                    .hybrid_cache_capacity(CACHE_CAPACITY),
            )
            .build(text)
            .map_err(|e| describe_error(text, &e))?;
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .cache_capacity(CACHE_CAPACITY)
                    .skip_cache_capacity_check(true)
                    .unicode_word_boundary(true),
            )
            .thompson(thompson::Config::new().nfa_size_limit(Some(SIZE_LIMIT)))
            .build(text)
            .ok()
            .map(Arc::new);
        Ok(Pattern {
            text: text.to_string(),
            full: Arc::new(full),
            dfa,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Heap memory the compiled pattern holds.
    pub fn memory_usage(&self) -> usize {
        self.full.memory_usage() + self.dfa.as_ref().map_or(0, |d| d.memory_usage())
    }

    /// Whether the pattern matches anywhere in `haystack`, within `budget`'s time.
    pub fn is_match(&self, haystack: &[u8], budget: &mut Budget) -> Result<bool, Exhausted> {
        if let Some(dfa) = &self.dfa {
            let mut cache = dfa.create_cache();
            if let Some(found) = step(dfa, &mut cache, haystack, budget)? {
                return Ok(found);
            }
        }
        budget.spend(1 + haystack.len() as u64 / 64)?;
        Ok(self.full.is_match(haystack))
    }

    /// The text of the first group of the leftmost match (all of the match when the pattern has
    /// no group), for `capture: {body: …}`. Searched by the full engine: linear in the text and
    /// bounded by the compiled size, not interruptible (bodies are at most 1 MiB).
    pub fn first_group(
        &self,
        text: &str,
        budget: &mut Budget,
    ) -> Result<Option<String>, Exhausted> {
        budget.spend(1 + text.len() as u64 / 64)?;
        let mut found = self.full.create_captures();
        self.full.search_captures(&Input::new(text), &mut found);
        Ok(found
            .get_group(1)
            .or_else(|| found.get_group(0))
            .map(|span| text[span.range()].to_string()))
    }

    /// Whether `text` matches, for short texts (header values, JSON strings).
    pub fn is_match_str(&self, text: &str, budget: &mut Budget) -> Result<bool, Exhausted> {
        self.is_match(text.as_bytes(), budget)
    }
}

/// `Some(answer)`, or `None` when the lazy DFA gave up (a Unicode word boundary met a non-ASCII
/// byte, or its cache could not cope).
fn step(
    dfa: &DFA,
    cache: &mut Cache,
    haystack: &[u8],
    budget: &mut Budget,
) -> Result<Option<bool>, Exhausted> {
    let Ok(mut state) = dfa.start_state_forward(cache, &Input::new(haystack)) else {
        return Ok(None);
    };
    for chunk in haystack.chunks(CLOCK_EVERY_BYTES) {
        budget.spend(1 + chunk.len() as u64 / 64)?;
        check_clock(budget)?;
        for &byte in chunk {
            state = match dfa.next_state(cache, state, byte) {
                Ok(next) => next,
                Err(_) => return Ok(None),
            };
            if state.is_tagged() {
                if state.is_match() {
                    return Ok(Some(true));
                }
                if state.is_dead() {
                    return Ok(Some(false));
                }
                if state.is_quit() {
                    return Ok(None);
                }
            }
        }
    }
    match dfa.next_eoi_state(cache, state) {
        Ok(end) if end.is_quit() => Ok(None),
        Ok(end) => Ok(Some(end.is_match())),
        Err(_) => Ok(None),
    }
}

fn check_clock(budget: &Budget) -> Result<(), Exhausted> {
    match budget.deadline() {
        Some(deadline) if std::time::Instant::now() >= deadline => Err(Exhausted::Time),
        _ => Ok(()),
    }
}

/// The regex crate's multi-line error ("regex parse error:\n    ((\n    ^\nerror: unclosed
/// group") as one line that says what and where.
fn describe_error(text: &str, error: &meta::BuildError) -> String {
    if let Some(limit) = error.size_limit() {
        return format!(
            "\"{text}\" is not usable as a regular expression: compiled, it would be larger than {} MiB; simplify it (fewer or smaller repetitions such as {{1,100}}, or (?-u:\\w) for ASCII word characters)",
            limit / (1024 * 1024)
        );
    }
    let Some(syntax) = error.syntax_error() else {
        return format!("\"{text}\" is not a valid regular expression: {error}");
    };
    let message = syntax.to_string();
    let what = message
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or("it does not parse");
    let caret = message
        .lines()
        .find(|l| l.trim_start().starts_with('^'))
        .map(|l| l.len() - l.trim_start().len());
    // The pattern is printed indented by four spaces above the caret line.
    let at = caret
        .and_then(|c| c.checked_sub(4))
        .map(|c| format!(" at character {}", c + 1))
        .unwrap_or_default();
    format!("\"{text}\" is not a valid regular expression: {what}{at}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn matches_like_the_regex_crate() {
        for (pattern, text, expected) in [
            ("UP", "status: UP", true),
            ("^UP$", "status: UP", false),
            (r#""status":\s*"UP""#, r#"{"status":  "UP"}"#, true),
            (r"\bcafé\b", "le café noir", true),
            (r"\bcafé\b", "lecafénoir", false),
            ("(?i)up", "UP", true),
            ("", "", true),
            ("a$", "ba", true),
        ] {
            let p = Pattern::new(pattern).unwrap();
            assert_eq!(
                p.is_match(text.as_bytes(), &mut Budget::unlimited()),
                Ok(expected),
                "{pattern} on {text}"
            );
        }
    }

    #[test]
    fn a_slow_search_stops_at_the_deadline() {
        let p = Pattern::new(r"(\w+\s?){1,100}X").unwrap();
        let body = "word ".repeat(200_000);
        let started = Instant::now();
        let mut budget = Budget::new(u64::MAX, Some(started + Duration::from_millis(100)));
        let result = p.is_match(body.as_bytes(), &mut budget);
        assert!(
            result == Err(Exhausted::Time) || result == Ok(false),
            "{result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn errors_say_what_and_where_in_one_line() {
        let err = Pattern::new("a(b").unwrap_err();
        assert_eq!(
            err,
            "\"a(b\" is not a valid regular expression: unclosed group at character 2"
        );
        let err = Pattern::new(r"(\w{1,1000}){1,1000}").unwrap_err();
        assert!(err.contains("(?-u:\\w)"), "{err}");
        assert!(err.contains("compiled, it would be larger than"), "{err}");
        assert!(!err.contains('\n'));
    }
}
