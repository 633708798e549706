//! What a parsed JSONPath is made of, following RFC 9535's grammar and type system.

use serde_json::Value;

/// `$…` (root) or `@…` (the current node, inside filters).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub root: bool,
    pub segments: Vec<Segment>,
}

impl Query {
    /// Selects at most one node: only name and index selectors, one per segment, no `..`.
    pub fn is_singular(&self) -> bool {
        self.segments.iter().all(|s| {
            !s.descendant
                && s.selectors.len() == 1
                && matches!(s.selectors[0], Selector::Name(_) | Selector::Index(_))
        })
    }
}

/// `.name`, `[…]` (child), or `..name`, `..[…]` (descendant).
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub descendant: bool,
    pub selectors: Vec<Selector>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    Name(String),
    Wildcard,
    Index(i64),
    Slice {
        start: Option<i64>,
        end: Option<i64>,
        step: Option<i64>,
    },
    Filter(Box<Logical>),
}

/// A filter's logical expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Logical {
    Or(Vec<Logical>),
    And(Vec<Logical>),
    Not(Box<Logical>),
    Compare(Box<Comparable>, CompareOp, Box<Comparable>),
    /// A query used as a test: true when it selects something.
    Exists(Query),
    /// A function whose result is logical (or a node list, true when non-empty).
    Function(Function),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Comparable {
    Literal(Value),
    /// A singular query.
    Query(Query),
    /// A function whose result is a value.
    Function(Function),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub name: FunctionName,
    pub args: Vec<Argument>,
}

impl Function {
    pub fn returns(&self) -> Type {
        self.name.returns()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Argument {
    Literal(Value),
    Query(Query),
    Logical(Logical),
    Function(Function),
}

impl Argument {
    /// RFC 9535 §2.4.3: which arguments a parameter of each type accepts.
    pub fn fits(&self, param: Type) -> bool {
        match (self, param) {
            (Argument::Literal(_), Type::Value) => true,
            (Argument::Query(q), Type::Value) => q.is_singular(),
            (Argument::Query(_), Type::Nodes | Type::Logical) => true,
            (Argument::Logical(_), Type::Logical) => true,
            (Argument::Function(f), Type::Value) => f.returns() == Type::Value,
            (Argument::Function(f), Type::Logical) => {
                matches!(f.returns(), Type::Logical | Type::Nodes)
            }
            (Argument::Function(f), Type::Nodes) => f.returns() == Type::Nodes,
            _ => false,
        }
    }
}

/// The three types of RFC 9535's function extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Value,
    Logical,
    Nodes,
}

impl Type {
    pub fn describe(self) -> &'static str {
        match self {
            Type::Value => "a value (a literal, a query selecting at most one value, or length(), count() or value())",
            Type::Logical => "true or false (a test or a comparison)",
            Type::Nodes => "a query",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionName {
    Length,
    Count,
    Match,
    Search,
    Value,
}

impl FunctionName {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "length" => FunctionName::Length,
            "count" => FunctionName::Count,
            "match" => FunctionName::Match,
            "search" => FunctionName::Search,
            "value" => FunctionName::Value,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FunctionName::Length => "length",
            FunctionName::Count => "count",
            FunctionName::Match => "match",
            FunctionName::Search => "search",
            FunctionName::Value => "value",
        }
    }

    pub fn params(self) -> &'static [Type] {
        match self {
            FunctionName::Length => &[Type::Value],
            FunctionName::Count | FunctionName::Value => &[Type::Nodes],
            FunctionName::Match | FunctionName::Search => &[Type::Value, Type::Value],
        }
    }

    pub fn returns(self) -> Type {
        match self {
            FunctionName::Length | FunctionName::Count | FunctionName::Value => Type::Value,
            FunctionName::Match | FunctionName::Search => Type::Logical,
        }
    }
}
