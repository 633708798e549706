//! Problems found while reading a plan, each at its field path, and the plan's compiled regular
//! expressions (shared, and bounded in memory). Every part of the plan that validates fields
//! (the plan itself, each probe kind) records into one `Problems`.

use super::{FieldError, Template};

/// Collects problems with their paths.
#[derive(Default)]
pub(crate) struct Problems {
    pub(crate) errors: Vec<FieldError>,
    pub(crate) warnings: Vec<FieldError>,
    patterns: Patterns,
}

/// The plan's compiled regular expressions: one copy of each text, however many checks use it,
/// and no more compiling once they hold `MAX_PATTERN_MEMORY` (so that a hostile plan cannot take
/// the function's memory while it is being read).
#[derive(Default)]
struct Patterns {
    compiled: std::collections::HashMap<String, crate::judge::Pattern>,
    memory: usize,
    over: bool,
}

/// Compiled regular expressions stay in memory for the life of the function: all of a plan's
/// together may take at most this much, beside the bodies and the runtime in a 128 MB function.
const MAX_PATTERN_MEMORY: usize = 24 * 1024 * 1024;

impl Problems {
    /// The compiled form of `text`, shared by every check and assertion that uses it, within the
    /// plan's memory for patterns; why not, in one line.
    pub(crate) fn compile(&mut self, text: &str) -> Result<crate::judge::Pattern, String> {
        if let Some(compiled) = self.patterns.compiled.get(text) {
            return Ok(compiled.clone());
        }
        let too_much = || {
            format!(
                "with this one, the plan's regular expressions take more than {} MiB once compiled, more than fits beside the work in a 128 MB function; simplify them (for example (?-u:\\w) instead of \\w, smaller repetitions) or use fewer distinct ones",
                MAX_PATTERN_MEMORY >> 20
            )
        };
        if self.patterns.over {
            return Err(too_much());
        }
        let compiled = crate::judge::Pattern::new(text)?;
        self.patterns.memory += compiled.memory_usage();
        if self.patterns.memory > MAX_PATTERN_MEMORY {
            self.patterns.over = true;
            self.patterns.compiled.clear();
            return Err(too_much());
        }
        self.patterns
            .compiled
            .insert(text.to_string(), compiled.clone());
        Ok(compiled)
    }

    /// [`Problems::compile`], the reason recorded at `path` (once, when the plan's patterns
    /// outgrow their memory).
    pub(crate) fn pattern(&mut self, path: &str, text: &str) -> Option<crate::judge::Pattern> {
        let was_over = self.patterns.over;
        match self.compile(text) {
            Ok(compiled) => Some(compiled),
            Err(_) if was_over => None,
            Err(message) => {
                self.error(path, message);
                None
            }
        }
    }

    pub(crate) fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    pub(crate) fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Each field given (`(name, given)`) that does not belong where it is: `{at}.{name}: why`.
    pub(crate) fn refuse(&mut self, at: &str, fields: &[(&str, bool)], why: &str) {
        for (field, _) in fields.iter().filter(|(_, given)| *given) {
            self.error(format!("{at}.{field}"), why);
        }
    }

    /// Reads one object of the plan at `at`, recording what is wrong with it.
    pub(crate) fn read<T: serde::de::DeserializeOwned>(
        &mut self,
        value: serde_json::Value,
        at: &str,
    ) -> Option<T> {
        super::document::read(value, at, &mut self.errors)
    }

    /// A template, with its syntax checked.
    pub(crate) fn template(&mut self, path: &str, text: &str) -> Option<Template> {
        match Template::parse(text) {
            Ok(t) => Some(t),
            Err(message) => {
                self.error(path, message);
                None
            }
        }
    }
}
