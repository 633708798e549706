//! Evaluating a JSONPath over a document, borrowing (never cloning) the document's values and
//! spending a step of the budget for every node visited or selected, so that `$..*..*` on a deep,
//! wide body stops with a reason instead of filling the function's memory.

use std::collections::HashMap;

use serde_json::Value;

use super::ast::*;
use crate::judge::budget::{Budget, Exhausted};

/// A regular expression in `match()` or `search()` may compile to at most this much.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

pub struct Evaluator<'b> {
    budget: &'b mut Budget,
    regexes: HashMap<(String, bool), Option<regex::Regex>>,
}

/// A value produced while evaluating a filter: borrowed from the document, computed, or
/// nothing (RFC 9535's "Nothing").
enum Val<'a> {
    Nothing,
    Ref(&'a Value),
    Owned(Value),
}

impl Val<'_> {
    fn get(&self) -> Option<&Value> {
        match self {
            Val::Nothing => None,
            Val::Ref(v) => Some(v),
            Val::Owned(v) => Some(v),
        }
    }
}

impl<'b> Evaluator<'b> {
    pub fn new(budget: &'b mut Budget) -> Self {
        Evaluator {
            budget,
            regexes: HashMap::new(),
        }
    }

    pub fn query<'a>(
        &mut self,
        query: &Query,
        current: &'a Value,
        root: &'a Value,
    ) -> Result<Vec<&'a Value>, Exhausted> {
        let mut nodes = vec![if query.root { root } else { current }];
        for segment in &query.segments {
            let mut next = Vec::new();
            for node in nodes {
                if segment.descendant {
                    // Pre-order, document order: the node, then its descendants.
                    let mut stack = vec![node];
                    while let Some(visited) = stack.pop() {
                        self.budget.spend(1)?;
                        for selector in &segment.selectors {
                            self.select(selector, visited, root, &mut next)?;
                        }
                        match visited {
                            Value::Array(items) => stack.extend(items.iter().rev()),
                            Value::Object(map) => {
                                let children: Vec<&Value> = map.values().collect();
                                stack.extend(children.into_iter().rev());
                            }
                            _ => {}
                        }
                    }
                } else {
                    for selector in &segment.selectors {
                        self.select(selector, node, root, &mut next)?;
                    }
                }
            }
            nodes = next;
        }
        Ok(nodes)
    }

    fn push<'a>(&mut self, out: &mut Vec<&'a Value>, value: &'a Value) -> Result<(), Exhausted> {
        self.budget.spend(1)?;
        out.push(value);
        Ok(())
    }

    fn select<'a>(
        &mut self,
        selector: &Selector,
        node: &'a Value,
        root: &'a Value,
        out: &mut Vec<&'a Value>,
    ) -> Result<(), Exhausted> {
        match selector {
            Selector::Name(name) => {
                if let Some(v) = node.as_object().and_then(|m| m.get(name)) {
                    self.push(out, v)?;
                }
            }
            Selector::Wildcard => match node {
                Value::Array(items) => {
                    for v in items {
                        self.push(out, v)?;
                    }
                }
                Value::Object(map) => {
                    for v in map.values() {
                        self.push(out, v)?;
                    }
                }
                _ => {}
            },
            Selector::Index(i) => {
                if let Some(items) = node.as_array() {
                    let len = items.len() as i64;
                    let at = if *i < 0 { len + i } else { *i };
                    if (0..len).contains(&at) {
                        self.push(out, &items[at as usize])?;
                    }
                }
            }
            Selector::Slice { start, end, step } => {
                if let Some(items) = node.as_array() {
                    for at in slice_indices(items.len() as i64, *start, *end, *step) {
                        self.push(out, &items[at as usize])?;
                    }
                }
            }
            Selector::Filter(logical) => match node {
                Value::Array(items) => {
                    for v in items {
                        self.budget.spend(1)?;
                        if self.test(logical, v, root)? {
                            self.push(out, v)?;
                        }
                    }
                }
                Value::Object(map) => {
                    for v in map.values() {
                        self.budget.spend(1)?;
                        if self.test(logical, v, root)? {
                            self.push(out, v)?;
                        }
                    }
                }
                _ => {}
            },
        }
        Ok(())
    }

    fn test(
        &mut self,
        logical: &Logical,
        current: &Value,
        root: &Value,
    ) -> Result<bool, Exhausted> {
        Ok(match logical {
            Logical::Or(terms) => {
                for term in terms {
                    if self.test(term, current, root)? {
                        return Ok(true);
                    }
                }
                false
            }
            Logical::And(terms) => {
                for term in terms {
                    if !self.test(term, current, root)? {
                        return Ok(false);
                    }
                }
                true
            }
            Logical::Not(inner) => !self.test(inner, current, root)?,
            Logical::Exists(query) => !self.query(query, current, root)?.is_empty(),
            Logical::Function(function) => match function.returns() {
                Type::Logical => self.logical_function(function, current, root)?,
                Type::Nodes | Type::Value => false,
            },
            Logical::Compare(left, op, right) => {
                let a = self.comparable(left, current, root)?;
                let b = self.comparable(right, current, root)?;
                self.budget.spend(1)?;
                compare(a.get(), *op, b.get())
            }
        })
    }

    fn comparable<'a>(
        &mut self,
        c: &Comparable,
        current: &'a Value,
        root: &'a Value,
    ) -> Result<Val<'a>, Exhausted> {
        match c {
            Comparable::Literal(v) => Ok(Val::Owned(v.clone())),
            Comparable::Query(q) => Ok(self
                .query(q, current, root)?
                .first()
                .map_or(Val::Nothing, |v| Val::Ref(v))),
            Comparable::Function(f) => self.value_function(f, current, root),
        }
    }

    fn value_argument<'a>(
        &mut self,
        arg: &Argument,
        current: &'a Value,
        root: &'a Value,
    ) -> Result<Val<'a>, Exhausted> {
        match arg {
            Argument::Literal(v) => Ok(Val::Owned(v.clone())),
            Argument::Query(q) => Ok(self
                .query(q, current, root)?
                .first()
                .map_or(Val::Nothing, |v| Val::Ref(v))),
            Argument::Function(f) => self.value_function(f, current, root),
            Argument::Logical(_) => Ok(Val::Nothing),
        }
    }

    fn nodes_argument<'a>(
        &mut self,
        arg: &Argument,
        current: &'a Value,
        root: &'a Value,
    ) -> Result<Vec<&'a Value>, Exhausted> {
        match arg {
            Argument::Query(q) => self.query(q, current, root),
            _ => Ok(Vec::new()),
        }
    }

    fn value_function<'a>(
        &mut self,
        f: &Function,
        current: &'a Value,
        root: &'a Value,
    ) -> Result<Val<'a>, Exhausted> {
        self.budget.spend(1)?;
        Ok(match f.name {
            FunctionName::Length => {
                let v = self.value_argument(&f.args[0], current, root)?;
                match v.get() {
                    Some(Value::String(s)) => Val::Owned(Value::from(s.chars().count())),
                    Some(Value::Array(a)) => Val::Owned(Value::from(a.len())),
                    Some(Value::Object(o)) => Val::Owned(Value::from(o.len())),
                    _ => Val::Nothing,
                }
            }
            FunctionName::Count => {
                let nodes = self.nodes_argument(&f.args[0], current, root)?;
                Val::Owned(Value::from(nodes.len()))
            }
            FunctionName::Value => {
                let nodes = self.nodes_argument(&f.args[0], current, root)?;
                match nodes.as_slice() {
                    [one] => Val::Ref(one),
                    _ => Val::Nothing,
                }
            }
            FunctionName::Match | FunctionName::Search => Val::Nothing,
        })
    }

    fn logical_function(
        &mut self,
        f: &Function,
        current: &Value,
        root: &Value,
    ) -> Result<bool, Exhausted> {
        self.budget.spend(1)?;
        let whole = match f.name {
            FunctionName::Match => true,
            FunctionName::Search => false,
            _ => return Ok(false),
        };
        let text = self.value_argument(&f.args[0], current, root)?;
        let pattern = self.value_argument(&f.args[1], current, root)?;
        let (Some(Value::String(text)), Some(Value::String(pattern))) = (text.get(), pattern.get())
        else {
            return Ok(false);
        };
        let key = (pattern.clone(), whole);
        if !self.regexes.contains_key(&key) {
            // Compiling is the expensive part; it is done once per pattern and evaluation.
            self.budget.spend(64 + 16 * pattern.len() as u64)?;
            let compiled = compile_iregexp(pattern, whole);
            self.regexes.insert(key.clone(), compiled);
        }
        self.budget.spend(1 + text.len() as u64 / 16)?;
        Ok(self
            .regexes
            .get(&key)
            .and_then(Option::as_ref)
            .is_some_and(|re| re.is_match(text)))
    }
}

/// RFC 9535 §2.3.5.2.2: comparisons of values and "Nothing" (`None`).
fn compare(a: Option<&Value>, op: CompareOp, b: Option<&Value>) -> bool {
    match op {
        CompareOp::Eq => equal(a, b),
        CompareOp::Ne => !equal(a, b),
        CompareOp::Lt => less(a, b),
        CompareOp::Le => less(a, b) || equal(a, b),
        CompareOp::Gt => less(b, a),
        CompareOp::Ge => less(b, a) || equal(a, b),
    }
}

fn equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => values_equal(a, b),
        _ => false,
    }
}

/// JSON equality where numbers compare by value (`2` equals `2.0`).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}

fn numbers_equal(x: &serde_json::Number, y: &serde_json::Number) -> bool {
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return a == b;
    }
    if let (Some(a), Some(b)) = (x.as_u64(), y.as_u64()) {
        return a == b;
    }
    x.as_f64() == y.as_f64()
}

fn less(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
                return a < b;
            }
            match (x.as_f64(), y.as_f64()) {
                (Some(a), Some(b)) => a < b,
                _ => false,
            }
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x < y,
        _ => false,
    }
}

/// RFC 9535 §2.3.4.2.2: the indices a slice selects, in order.
fn slice_indices(len: i64, start: Option<i64>, end: Option<i64>, step: Option<i64>) -> Vec<i64> {
    let step = step.unwrap_or(1);
    if step == 0 {
        return Vec::new();
    }
    let normalize = |i: i64| if i >= 0 { i } else { len + i };
    let mut out = Vec::new();
    if step > 0 {
        let lower = start.map_or(0, normalize).clamp(0, len);
        let upper = end.map_or(len, normalize).clamp(0, len);
        let mut i = lower;
        while i < upper {
            out.push(i);
            i += step;
        }
    } else {
        let upper = start.map_or(len - 1, normalize).clamp(-1, len - 1);
        let lower = end.map_or(-len - 1, normalize).clamp(-1, len - 1);
        let mut i = upper;
        while lower < i {
            out.push(i);
            i += step;
        }
    }
    out
}

/// An I-Regexp (RFC 9485) as a Rust regular expression: `.` matches any character but line
/// breaks (\n and \r); `match()` must match the whole text.
fn compile_iregexp(pattern: &str, whole: bool) -> Option<regex::Regex> {
    let mut translated = String::with_capacity(pattern.len() + 8);
    let mut in_class = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                translated.push('\\');
                translated.push(chars.next()?);
            }
            '[' if !in_class => {
                in_class = true;
                translated.push('[');
            }
            ']' if in_class => {
                in_class = false;
                translated.push(']');
            }
            '.' if !in_class => translated.push_str("[^\\n\\r]"),
            c => translated.push(c),
        }
    }
    let full = if whole {
        format!("\\A(?:{translated})\\z")
    } else {
        translated
    };
    regex::RegexBuilder::new(&full)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_follow_the_rfc() {
        assert_eq!(slice_indices(5, Some(1), Some(3), None), vec![1, 2]);
        assert_eq!(slice_indices(5, None, None, Some(2)), vec![0, 2, 4]);
        assert_eq!(slice_indices(5, None, None, Some(-1)), vec![4, 3, 2, 1, 0]);
        assert_eq!(slice_indices(5, Some(-2), None, None), vec![3, 4]);
        assert_eq!(slice_indices(5, Some(3), Some(0), Some(-2)), vec![3, 1]);
        assert!(slice_indices(5, None, None, Some(0)).is_empty());
        assert!(slice_indices(0, None, None, Some(-1)).is_empty());
    }
}
