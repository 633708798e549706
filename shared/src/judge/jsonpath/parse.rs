//! The JSONPath grammar of RFC 9535, parsed into [`Query`], with the RFC's type rules for
//! function expressions checked here, so a query that parses is one that can be evaluated.

use super::ast::*;

/// Why an expression is not a JSONPath: where, and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based character position.
    pub position: usize,
    pub message: String,
}

/// Integers in JSONPath stay within I-JSON's exact range.
const MAX_INT: i64 = (1 << 53) - 1;
/// Filters nest at most this deep (`?(@[?(@[?…`), so parsing and evaluation cannot overflow
/// the stack.
const MAX_NESTING: usize = 32;

pub fn parse(text: &str) -> Result<Query, ParseError> {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
        depth: 0,
    };
    if p.peek() != Some('$') {
        return Err(p.error("a JSONPath starts with $ (the root), for example $.status"));
    }
    p.pos += 1;
    let segments = p.segments()?;
    if p.pos < p.chars.len() {
        let what = match p.peek() {
            Some(c) if c.is_whitespace() => "whitespace at the end".to_string(),
            Some(c) => format!("unexpected \"{c}\""),
            None => "the end".to_string(),
        };
        return Err(p.error(&format!("{what}; a segment starts with . or [")));
    }
    Ok(Query {
        root: true,
        segments,
    })
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn error(&self, message: &str) -> ParseError {
        ParseError {
            position: self.pos + 1,
            message: message.to_string(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_str(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        if self.chars[self.pos..].iter().take(n).copied().eq(s.chars())
            && self.pos + n <= self.chars.len()
        {
            self.pos += n;
            true
        } else {
            false
        }
    }

    fn blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: char, what: &str) -> Result<(), ParseError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {what}{}", self.found())))
        }
    }

    fn found(&self) -> String {
        match self.peek() {
            Some(c) => format!(", found \"{c}\""),
            None => ", found the end of the expression".to_string(),
        }
    }

    fn segments(&mut self) -> Result<Vec<Segment>, ParseError> {
        let mut segments = Vec::new();
        loop {
            let save = self.pos;
            self.blanks();
            match self.peek() {
                Some('.') | Some('[') => segments.push(self.segment()?),
                _ => {
                    self.pos = save;
                    return Ok(segments);
                }
            }
        }
    }

    fn segment(&mut self) -> Result<Segment, ParseError> {
        if self.eat_str("..") {
            let selectors = match self.peek() {
                Some('[') => self.bracketed()?,
                Some('*') => {
                    self.pos += 1;
                    vec![Selector::Wildcard]
                }
                Some(c) if is_name_first(c) => vec![Selector::Name(self.member_name())],
                _ => {
                    return Err(
                        self.error(&format!("expected a name, * or [ after ..{}", self.found()))
                    )
                }
            };
            return Ok(Segment {
                descendant: true,
                selectors,
            });
        }
        if self.eat('.') {
            let selectors = match self.peek() {
                Some('*') => {
                    self.pos += 1;
                    vec![Selector::Wildcard]
                }
                Some(c) if is_name_first(c) => vec![Selector::Name(self.member_name())],
                _ => {
                    return Err(self.error(&format!(
                        "expected a name or * after .{} (names with other characters go in brackets: ['my-name'])",
                        self.found()
                    )))
                }
            };
            return Ok(Segment {
                descendant: false,
                selectors,
            });
        }
        Ok(Segment {
            descendant: false,
            selectors: self.bracketed()?,
        })
    }

    fn member_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek().filter(|c| is_name_char(*c)) {
            name.push(c);
            self.pos += 1;
        }
        name
    }

    fn bracketed(&mut self) -> Result<Vec<Selector>, ParseError> {
        self.expect('[', "[")?;
        let mut selectors = Vec::new();
        loop {
            self.blanks();
            selectors.push(self.selector()?);
            self.blanks();
            if self.eat(',') {
                continue;
            }
            if self.eat(']') {
                return Ok(selectors);
            }
            return Err(self.error(&format!(
                "expected , or ] in a bracketed selection{}",
                self.found()
            )));
        }
    }

    fn selector(&mut self) -> Result<Selector, ParseError> {
        match self.peek() {
            Some('\'' | '"') => Ok(Selector::Name(self.string_literal()?)),
            Some('*') => {
                self.pos += 1;
                Ok(Selector::Wildcard)
            }
            Some('?') => {
                self.pos += 1;
                self.blanks();
                self.enter()?;
                let filter = self.logical_or()?;
                self.depth -= 1;
                Ok(Selector::Filter(Box::new(filter)))
            }
            Some(c) if c == ':' || c == '-' || c.is_ascii_digit() => self.index_or_slice(),
            _ => Err(self.error(&format!(
                "expected a selector: a name in quotes, an index, *, a slice (1:3) or a filter (?@.x){}",
                self.found()
            ))),
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error(&format!("filters nest more than {MAX_NESTING} deep")));
        }
        Ok(())
    }

    fn index_or_slice(&mut self) -> Result<Selector, ParseError> {
        let start = if self.peek() == Some(':') {
            None
        } else {
            Some(self.int()?)
        };
        self.blanks();
        if !self.eat(':') {
            return match start {
                Some(i) => Ok(Selector::Index(i)),
                None => Err(self.error("expected an index")),
            };
        }
        self.blanks();
        let end = match self.peek() {
            Some(c) if c == '-' || c.is_ascii_digit() => Some(self.int()?),
            _ => None,
        };
        self.blanks();
        let step = if self.eat(':') {
            self.blanks();
            match self.peek() {
                Some(c) if c == '-' || c.is_ascii_digit() => Some(self.int()?),
                _ => None,
            }
        } else {
            None
        };
        Ok(Selector::Slice { start, end, step })
    }

    fn int(&mut self) -> Result<i64, ParseError> {
        let begin = self.pos;
        let negative = self.eat('-');
        let digits_start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits: String = self.chars[digits_start..self.pos].iter().collect();
        if digits.is_empty() {
            self.pos = begin;
            return Err(self.error("expected an integer"));
        }
        if (digits.len() > 1 && digits.starts_with('0')) || (negative && digits == "0") {
            self.pos = begin;
            return Err(self.error("an integer has no leading zeros (and no -0)"));
        }
        let value: i64 = digits
            .parse()
            .ok()
            .filter(|v| *v <= MAX_INT)
            .ok_or_else(|| {
                let mut e = self.error("the integer is out of range (±9007199254740991)");
                e.position = begin + 1;
                e
            })?;
        Ok(if negative { -value } else { value })
    }

    fn string_literal(&mut self) -> Result<String, ParseError> {
        let quote = self.peek().unwrap_or('\'');
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error(&format!("the string has no closing {quote}")));
            };
            self.pos += 1;
            match c {
                c if c == quote => return Ok(out),
                '\\' => out.push(self.escape(quote)?),
                c if (c as u32) < 0x20 => {
                    self.pos -= 1;
                    return Err(self.error("a control character in a string must be escaped"));
                }
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self, quote: char) -> Result<char, ParseError> {
        let Some(c) = self.peek() else {
            return Err(self.error("the string ends in an escape"));
        };
        self.pos += 1;
        Ok(match c {
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '/' => '/',
            '\\' => '\\',
            c if c == quote => quote,
            'u' => {
                let high = self.hex4()?;
                if (0xD800..0xDC00).contains(&high) {
                    if !(self.eat('\\') && self.eat('u')) {
                        return Err(self.error(
                            "a high surrogate must be followed by \\u and a low surrogate",
                        ));
                    }
                    let low = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(self.error("expected a low surrogate"));
                    }
                    let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                    char::from_u32(code).ok_or_else(|| self.error("not a character"))?
                } else if (0xDC00..0xE000).contains(&high) {
                    return Err(self.error("a low surrogate without a high one"));
                } else {
                    char::from_u32(high).ok_or_else(|| self.error("not a character"))?
                }
            }
            other => {
                self.pos -= 1;
                return Err(self.error(&format!("\\{other} is not an escape")));
            }
        })
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let mut value = 0;
        for _ in 0..4 {
            let digit = self
                .peek()
                .and_then(|c| c.to_digit(16))
                .ok_or_else(|| self.error("expected four hex digits after \\u"))?;
            value = value * 16 + digit;
            self.pos += 1;
        }
        Ok(value)
    }

    // Filters.

    fn logical_or(&mut self) -> Result<Logical, ParseError> {
        let mut terms = vec![self.logical_and()?];
        loop {
            let save = self.pos;
            self.blanks();
            if self.eat_str("||") {
                self.blanks();
                terms.push(self.logical_and()?);
            } else {
                self.pos = save;
                break;
            }
        }
        Ok(if terms.len() == 1 {
            terms.pop().unwrap_or(Logical::Or(Vec::new()))
        } else {
            Logical::Or(terms)
        })
    }

    fn logical_and(&mut self) -> Result<Logical, ParseError> {
        let mut terms = vec![self.basic()?];
        loop {
            let save = self.pos;
            self.blanks();
            if self.eat_str("&&") {
                self.blanks();
                terms.push(self.basic()?);
            } else {
                self.pos = save;
                break;
            }
        }
        Ok(if terms.len() == 1 {
            terms.pop().unwrap_or(Logical::And(Vec::new()))
        } else {
            Logical::And(terms)
        })
    }

    fn basic(&mut self) -> Result<Logical, ParseError> {
        let start = self.pos;
        let not = self.eat('!');
        if not {
            self.blanks();
        }
        if self.peek() == Some('(') {
            self.pos += 1;
            self.blanks();
            self.enter()?;
            let inner = self.logical_or()?;
            self.depth -= 1;
            self.blanks();
            self.expect(')', ")")?;
            return Ok(negate(inner, not));
        }
        let left = self.comparable_or_test()?;
        let save = self.pos;
        self.blanks();
        if let Some(op) = self.comparison_op() {
            if not {
                self.pos = start;
                return Err(self
                    .error("! applies to a test or a parenthesised expression; write !(a == b)"));
            }
            self.blanks();
            let right = self.comparable_or_test()?;
            let left = self.as_comparable(left)?;
            let right = self.as_comparable(right)?;
            return Ok(Logical::Compare(Box::new(left), op, Box::new(right)));
        }
        self.pos = save;
        let test = match left {
            Operand::Query(q) => Logical::Exists(q),
            Operand::Function(f) => match f.returns() {
                Type::Logical | Type::Nodes => Logical::Function(f),
                Type::Value => {
                    return Err(self.error(&format!(
                        "{}() gives a value, not true or false: compare it (for example {}(…) > 0)",
                        f.name.name(),
                        f.name.name()
                    )))
                }
            },
            Operand::Literal(_) => {
                return Err(
                    self.error("a literal on its own is not a test: compare it with something")
                )
            }
        };
        Ok(negate(test, not))
    }

    fn comparison_op(&mut self) -> Option<CompareOp> {
        for (text, op) in [
            ("==", CompareOp::Eq),
            ("!=", CompareOp::Ne),
            ("<=", CompareOp::Le),
            (">=", CompareOp::Ge),
            ("<", CompareOp::Lt),
            (">", CompareOp::Gt),
        ] {
            if self.eat_str(text) {
                return Some(op);
            }
        }
        None
    }

    fn as_comparable(&self, operand: Operand) -> Result<Comparable, ParseError> {
        match operand {
            Operand::Literal(v) => Ok(Comparable::Literal(v)),
            Operand::Query(q) if q.is_singular() => Ok(Comparable::Query(q)),
            Operand::Query(_) => Err(self.error(
                "only a query that selects at most one value (names and indexes, no *, .. or filters) can be compared",
            )),
            Operand::Function(f) if f.returns() == Type::Value => Ok(Comparable::Function(f)),
            Operand::Function(f) => Err(self.error(&format!(
                "{}() gives true or false and cannot be compared",
                f.name.name()
            ))),
        }
    }

    fn comparable_or_test(&mut self) -> Result<Operand, ParseError> {
        match self.peek() {
            Some('@') => {
                self.pos += 1;
                Ok(Operand::Query(Query {
                    root: false,
                    segments: self.segments()?,
                }))
            }
            Some('$') => {
                self.pos += 1;
                Ok(Operand::Query(Query {
                    root: true,
                    segments: self.segments()?,
                }))
            }
            Some('\'' | '"') => Ok(Operand::Literal(serde_json::Value::String(
                self.string_literal()?,
            ))),
            Some(c) if c == '-' || c.is_ascii_digit() => Ok(Operand::Literal(self.number()?)),
            Some(c) if c.is_ascii_lowercase() => {
                let word_start = self.pos;
                let mut word = String::new();
                while let Some(c) = self
                    .peek()
                    .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                {
                    word.push(c);
                    self.pos += 1;
                }
                match word.as_str() {
                    "true" if self.peek() != Some('(') => Ok(Operand::Literal(true.into())),
                    "false" if self.peek() != Some('(') => Ok(Operand::Literal(false.into())),
                    "null" if self.peek() != Some('(') => {
                        Ok(Operand::Literal(serde_json::Value::Null))
                    }
                    _ => {
                        self.pos = word_start;
                        Ok(Operand::Function(self.function()?))
                    }
                }
            }
            _ => Err(self.error(&format!(
                "expected @, $, a literal or a function{}",
                self.found()
            ))),
        }
    }

    fn number(&mut self) -> Result<serde_json::Value, ParseError> {
        let start = self.pos;
        self.eat('-');
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return Err(self.error("expected a number"));
        }
        if self.eat('0') {
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.error("a number has no leading zeros"));
            }
        } else {
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        if self.peek() == Some('.') {
            self.pos += 1;
            let digits = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
            if self.pos == digits {
                return Err(self.error("expected digits after the decimal point"));
            }
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.pos += 1;
            }
            let digits = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
            if self.pos == digits {
                return Err(self.error("expected digits in the exponent"));
            }
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        serde_json::from_str::<serde_json::Number>(&text)
            .map(serde_json::Value::Number)
            .or_else(|_| {
                text.parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(serde_json::Value::Number)
                    .ok_or(())
            })
            .map_err(|_| {
                let mut e = self.error("the number is out of range");
                e.position = start + 1;
                e
            })
    }

    fn function(&mut self) -> Result<Function, ParseError> {
        let start = self.pos;
        let mut name = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
        {
            name.push(c);
            self.pos += 1;
        }
        let Some(function) = FunctionName::from_name(&name) else {
            self.pos = start;
            return Err(self.error(&format!(
                "\"{name}\" is not a function; the functions are length, count, match, search and value"
            )));
        };
        self.expect('(', &format!("( after {name}"))?;
        self.enter()?;
        let mut args = Vec::new();
        self.blanks();
        if !self.eat(')') {
            loop {
                self.blanks();
                args.push(self.argument()?);
                self.blanks();
                if self.eat(',') {
                    continue;
                }
                self.expect(')', &format!(", or ) in the arguments of {name}()"))?;
                break;
            }
        }
        self.depth -= 1;
        let params = function.params();
        if args.len() != params.len() {
            self.pos = start;
            return Err(self.error(&format!(
                "{name}() takes {} argument{}, found {}",
                params.len(),
                if params.len() == 1 { "" } else { "s" },
                args.len()
            )));
        }
        for (i, (arg, param)) in args.iter().zip(params).enumerate() {
            if !arg.fits(*param) {
                self.pos = start;
                return Err(self.error(&format!(
                    "argument {} of {name}() must be {}",
                    i + 1,
                    param.describe()
                )));
            }
        }
        Ok(Function {
            name: function,
            args,
        })
    }

    fn argument(&mut self) -> Result<Argument, ParseError> {
        let start = self.pos;
        if matches!(self.peek(), Some('(' | '!')) {
            return Ok(Argument::Logical(self.logical_or()?));
        }
        let operand = self.comparable_or_test()?;
        let after = self.pos;
        self.blanks();
        let rest: String = self.chars[self.pos..].iter().take(2).collect();
        let continues = rest.starts_with(['=', '<', '>'])
            || rest.starts_with("!=")
            || rest == "&&"
            || rest == "||";
        if continues {
            // A comparison or a combination: the argument is a logical expression.
            self.pos = start;
            return Ok(Argument::Logical(self.logical_or()?));
        }
        self.pos = after;
        Ok(match operand {
            Operand::Literal(v) => Argument::Literal(v),
            Operand::Query(q) => Argument::Query(q),
            Operand::Function(f) => Argument::Function(f),
        })
    }
}

enum Operand {
    Literal(serde_json::Value),
    Query(Query),
    Function(Function),
}

fn negate(logical: Logical, not: bool) -> Logical {
    if not {
        Logical::Not(Box::new(logical))
    } else {
        logical
    }
}

fn is_name_first(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (c as u32) >= 0x80
}

fn is_name_char(c: char) -> bool {
    is_name_first(c) || c.is_ascii_digit()
}
