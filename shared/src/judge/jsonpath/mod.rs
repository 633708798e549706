//! JSONPath as RFC 9535 defines it (`$.items[?@.price > 10].name`, `$..id`, `length()`,
//! `match()`, …), evaluated within a [`Budget`]: every node visited or selected costs a step, the
//! document is borrowed rather than copied, and filters cannot nest deeper than 32. So a query
//! ends, with a reason, in bounded time and memory whatever the body and the expression.

mod ast;
mod eval;
mod parse;

use std::sync::Arc;

use serde_json::Value;

use super::budget::{Budget, Exhausted};
pub use eval::values_equal;

/// A parsed JSONPath query.
#[derive(Debug, Clone)]
pub struct JsonPath {
    text: String,
    query: Arc<ast::Query>,
}

impl PartialEq for JsonPath {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl JsonPath {
    /// Parses `text`; the error says where and what was expected, in words.
    pub fn parse(text: &str) -> Result<Self, String> {
        match parse::parse(text) {
            Ok(query) => Ok(JsonPath {
                text: text.to_string(),
                query: Arc::new(query),
            }),
            Err(e) => Err(format!(
                "\"{text}\" is not a valid JSONPath (RFC 9535): at character {}: {}",
                e.position, e.message
            )),
        }
    }

    /// The values the query selects in `document`, in document order.
    pub fn query<'a>(
        &self,
        document: &'a Value,
        budget: &mut Budget,
    ) -> Result<Vec<&'a Value>, Exhausted> {
        eval::Evaluator::new(budget).query(&self.query, document, document)
    }

    /// True when the query can select at most one value (`$.a.b[0]`).
    pub fn is_singular(&self) -> bool {
        self.query.is_singular()
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for JsonPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests;
