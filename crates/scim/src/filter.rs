//! SCIM filter expressions (RFC 7644 §3.4.2.2): parsing and evaluation
//! against JSON resources.
//!
//! ```
//! use scimbridge_scim::filter::{parse, quote};
//! let f = parse(&format!("userName eq {}", quote("Bjensen"))).unwrap();
//! assert!(f.matches(&serde_json::json!({"userName": "bjensen"})));
//! ```

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

use crate::json::{get_ci, is_core_urn};

/// Parenthesis / `not` / value-path nesting allowed in one filter; filters
/// arrive from untrusted query strings and evaluation is recursive.
const MAX_DEPTH: usize = 32;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// All sub-filters match (`a and b and c`).
    And(Vec<Filter>),
    /// Any sub-filter matches (`a or b or c`).
    Or(Vec<Filter>),
    /// `not (filter)`.
    Not(Box<Filter>),
    /// `path pr`.
    Present(AttrPath),
    /// `path op value`.
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: Value,
    },
    /// `path[filter]`: some value of the multi-valued attribute matches
    /// `filter`, whose paths are relative to that value.
    ValuePath { path: AttrPath, filter: Box<Filter> },
}

/// An attribute path: `[urn:]name[.subAttr]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// Schema URN prefix, e.g. the enterprise extension URN.
    pub urn: Option<String>,
    pub name: String,
    pub sub_attr: Option<String>,
}

impl AttrPath {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            urn: None,
            name: name.into(),
            sub_attr: None,
        }
    }

    pub fn with_sub(name: impl Into<String>, sub: impl Into<String>) -> Self {
        Self {
            urn: None,
            name: name.into(),
            sub_attr: Some(sub.into()),
        }
    }

    /// True when the path lives in an extension schema (not at top level).
    pub fn is_extension(&self) -> bool {
        self.urn.as_deref().is_some_and(|u| !is_core_urn(u))
    }

    /// True if this path is the top-level attribute `name` (no sub-attribute,
    /// no extension), compared case-insensitively.
    pub fn is_simple(&self, name: &str) -> bool {
        !self.is_extension() && self.sub_attr.is_none() && self.name.eq_ignore_ascii_case(name)
    }

    /// Values addressed by this path in `node`, flattening multi-valued
    /// attributes. Complex values are returned as objects.
    fn resolve<'a>(&self, node: &'a Value) -> Vec<&'a Value> {
        let base = match &self.urn {
            Some(urn) if !is_core_urn(urn) => match get_ci(node, urn) {
                Some(ext) => ext,
                None => return Vec::new(),
            },
            _ => node,
        };
        let Some(attr) = get_ci(base, &self.name) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match &self.sub_attr {
            None => push_flat(&mut out, attr),
            Some(sub) => match attr {
                Value::Array(items) => {
                    for item in items {
                        if let Some(v) = get_ci(item, sub) {
                            push_flat(&mut out, v);
                        }
                    }
                }
                other => {
                    if let Some(v) = get_ci(other, sub) {
                        push_flat(&mut out, v);
                    }
                }
            },
        }
        out
    }
}

fn push_flat<'a>(out: &mut Vec<&'a Value>, v: &'a Value) {
    match v {
        Value::Array(items) => out.extend(items.iter()),
        other => out.push(other),
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// Comparison operators (RFC 7644 §3.4.2.2, Table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    fn from_keyword(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }
}

/// Why a filter failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter at position {position}: expected {expected}, found {found}")]
pub struct FilterError {
    /// 0-based character (not byte) offset into the filter.
    pub position: usize,
    /// What the parser expected there.
    pub expected: String,
    /// What it found instead.
    pub found: String,
}

/// Parses a filter expression.
pub fn parse(input: &str) -> Result<Filter, FilterError> {
    let mut p = Parser::new(input);
    p.skip_ws();
    if p.at_end() {
        return Err(p.error("filter expression"));
    }
    let f = p.parse_or(0)?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.error("'and', 'or' or end of filter"));
    }
    Ok(f)
}

/// Parses a bare attribute path (`[urn:]name[.subAttr]`), as used in the
/// `attributes` / `excludedAttributes` query parameters.
pub fn parse_attr_path(input: &str) -> Result<AttrPath, FilterError> {
    let mut p = Parser::new(input);
    p.skip_ws();
    let path = p.parse_attr_path()?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.error("end of attribute path"));
    }
    Ok(path)
}

/// Parses a PATCH path: `attrPath`, or `attrPath[valFilter]` optionally
/// followed by `.subAttr` (RFC 7644 §3.5.2). A trailing sub-attribute after a
/// filter is returned in the path's `sub_attr`.
pub fn parse_patch_path(input: &str) -> Result<(AttrPath, Option<Filter>), FilterError> {
    let mut p = Parser::new(input);
    p.skip_ws();
    let mut path = p.parse_attr_path()?;
    let mut filter = None;
    if p.peek() == Some('[') {
        if path.sub_attr.is_some() {
            return Err(p.error("'[' only after an attribute without sub-attribute"));
        }
        p.pos += 1;
        filter = Some(p.parse_or(1)?);
        p.skip_ws();
        p.expect_char(']')?;
        if p.peek() == Some('.') {
            p.pos += 1;
            let start = p.pos;
            let name = p.take_while(is_name_char);
            if !valid_name(&name) {
                p.pos = start;
                return Err(p.error("sub-attribute name"));
            }
            path.sub_attr = Some(name);
        }
    }
    p.skip_ws();
    if !p.at_end() {
        return Err(p.error("end of path"));
    }
    Ok((path, filter))
}

/// Turns any string into a filter string literal: JSON-escaped and
/// double-quoted, so it cannot break out of the comparison value.
pub fn quote(value: &str) -> String {
    Value::String(value.to_owned()).to_string()
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$')
}

fn is_path_char(c: char) -> bool {
    is_name_char(c) || matches!(c, ':' | '.')
}

/// ATTRNAME = ALPHA *(nameChar), plus `$ref`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => chars.all(is_name_char),
        Some('$') => name.eq_ignore_ascii_case("$ref"),
        _ => false,
    }
}

impl Parser {
    fn new(input: &str) -> Self {
        Self {
            chars: input.chars().collect(),
            pos: 0,
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, pred: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "end of input".to_owned(),
            Some(c) if is_path_char(c) => {
                let word: String = self.chars[self.pos..]
                    .iter()
                    .take_while(|c| is_path_char(**c))
                    .take(40)
                    .collect();
                format!("'{word}'")
            }
            Some(c) => format!("'{c}'"),
        }
    }

    fn error(&self, expected: &str) -> FilterError {
        FilterError {
            position: self.pos,
            expected: expected.to_owned(),
            found: self.found(),
        }
    }

    fn expect_char(&mut self, c: char) -> Result<(), FilterError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("'{c}'")))
        }
    }

    /// Consumes `kw` (case-insensitive) if it is the next whole word.
    fn eat_keyword(&mut self, kw: &str) -> bool {
        let save = self.pos;
        self.skip_ws();
        let end = self.pos + kw.len();
        let matches = end <= self.chars.len()
            && self.chars[self.pos..end]
                .iter()
                .zip(kw.chars())
                .all(|(a, b)| a.eq_ignore_ascii_case(&b))
            && !self.chars.get(end).is_some_and(|c| is_path_char(*c));
        if matches {
            self.pos = end;
        } else {
            self.pos = save;
        }
        matches
    }

    fn check_depth(&self, depth: usize) -> Result<(), FilterError> {
        if depth > MAX_DEPTH {
            Err(self.error(&format!("at most {MAX_DEPTH} levels of nesting")))
        } else {
            Ok(())
        }
    }

    fn parse_or(&mut self, depth: usize) -> Result<Filter, FilterError> {
        let mut terms = vec![self.parse_and(depth)?];
        while self.eat_keyword("or") {
            terms.push(self.parse_and(depth)?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Filter::Or(terms)
        })
    }

    fn parse_and(&mut self, depth: usize) -> Result<Filter, FilterError> {
        let mut terms = vec![self.parse_unary(depth)?];
        while self.eat_keyword("and") {
            terms.push(self.parse_unary(depth)?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Filter::And(terms)
        })
    }

    fn parse_unary(&mut self, depth: usize) -> Result<Filter, FilterError> {
        self.skip_ws();
        if self.peek() == Some('(') {
            self.check_depth(depth + 1)?;
            self.pos += 1;
            let inner = self.parse_or(depth + 1)?;
            self.skip_ws();
            self.expect_char(')')?;
            return Ok(inner);
        }
        let save = self.pos;
        if self.eat_keyword("not") {
            self.skip_ws();
            if self.peek() == Some('(') {
                self.check_depth(depth + 1)?;
                self.pos += 1;
                let inner = self.parse_or(depth + 1)?;
                self.skip_ws();
                self.expect_char(')')?;
                return Ok(Filter::Not(Box::new(inner)));
            }
            return Err(self.error("'(' after 'not'"));
        }
        self.pos = save;
        self.parse_attr_exp(depth)
    }

    fn parse_attr_exp(&mut self, depth: usize) -> Result<Filter, FilterError> {
        let path = self.parse_attr_path()?;
        if self.peek() == Some('[') {
            if path.sub_attr.is_some() {
                return Err(self.error("comparison operator"));
            }
            self.check_depth(depth + 1)?;
            self.pos += 1;
            let inner = self.parse_or(depth + 1)?;
            self.skip_ws();
            self.expect_char(']')?;
            return Ok(Filter::ValuePath {
                path,
                filter: Box::new(inner),
            });
        }
        if !self.peek().is_some_and(char::is_whitespace) {
            return Err(self.error("whitespace and an operator after the attribute path"));
        }
        self.skip_ws();
        let op_start = self.pos;
        let word = self.take_while(|c| c.is_ascii_alphabetic());
        if word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let Some(op) = CompareOp::from_keyword(&word) else {
            self.pos = op_start;
            return Err(self.error("operator (eq, ne, co, sw, ew, gt, ge, lt, le or pr)"));
        };
        if self.at_end() {
            return Err(self.error("comparison value (string, number, true, false or null)"));
        }
        if !self.peek().is_some_and(char::is_whitespace) {
            return Err(self.error("whitespace after the operator"));
        }
        self.skip_ws();
        let value = self.parse_value()?;
        Ok(Filter::Compare { path, op, value })
    }

    fn parse_attr_path(&mut self) -> Result<AttrPath, FilterError> {
        let start = self.pos;
        let token = self.take_while(is_path_char);
        if token.is_empty() {
            return Err(self.error("attribute path"));
        }
        let fail = |offset: usize, expected: &str, this: &mut Self| {
            this.pos = start + offset;
            this.error(expected)
        };
        let (urn, rest, rest_offset) = match token.rfind(':') {
            Some(idx) => {
                let urn = &token[..idx];
                if !urn.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
                    return Err(fail(0, "attribute name or 'urn:' schema prefix", self));
                }
                // Paths are ASCII up to here, so byte and char offsets agree.
                (Some(urn.to_owned()), &token[idx + 1..], idx + 1)
            }
            None => (None, token.as_str(), 0),
        };
        let mut parts = rest.splitn(3, '.');
        let name = parts.next().unwrap_or_default();
        if !valid_name(name) {
            return Err(fail(rest_offset, "attribute name", self));
        }
        let sub = parts.next();
        if let Some(sub) = sub
            && !valid_name(sub)
        {
            return Err(fail(
                rest_offset + name.len() + 1,
                "sub-attribute name",
                self,
            ));
        }
        if parts.next().is_some() {
            let off = rest_offset + name.len() + 1 + sub.map_or(0, str::len);
            return Err(fail(off, "at most one sub-attribute", self));
        }
        Ok(AttrPath {
            urn,
            name: name.to_owned(),
            sub_attr: sub.map(str::to_owned),
        })
    }

    fn parse_value(&mut self) -> Result<Value, FilterError> {
        match self.peek() {
            Some('"') => self.parse_string(),
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let start = self.pos;
                let text = self
                    .take_while(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'));
                match serde_json::from_str::<serde_json::Number>(&text) {
                    Ok(n) => Ok(Value::Number(n)),
                    Err(_) => {
                        self.pos = start;
                        Err(self.error("number"))
                    }
                }
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                let word = self.take_while(|c| c.is_ascii_alphabetic());
                match word.to_ascii_lowercase().as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    "null" => Ok(Value::Null),
                    _ => {
                        self.pos = start;
                        Err(self.error("comparison value (string, number, true, false or null)"))
                    }
                }
            }
            _ => Err(self.error("comparison value (string, number, true, false or null)")),
        }
    }

    fn parse_string(&mut self) -> Result<Value, FilterError> {
        let start = self.pos;
        let mut i = start + 1;
        loop {
            match self.chars.get(i) {
                None => {
                    self.pos = self.chars.len();
                    return Err(self.error(&format!(
                        "closing '\"' of the string started at position {start}"
                    )));
                }
                Some('\\') => i += 2,
                Some('"') => break,
                Some(_) => i += 1,
            }
        }
        let literal: String = self.chars[start..=i].iter().collect();
        match serde_json::from_str::<String>(&literal) {
            Ok(s) => {
                self.pos = i + 1;
                Ok(Value::String(s))
            }
            Err(e) => {
                // serde_json columns are 1-based byte offsets; report chars.
                let byte_col = e.column().saturating_sub(1);
                self.pos = start
                    + literal
                        .char_indices()
                        .take_while(|(b, _)| *b < byte_col)
                        .count();
                Err(self.error("valid JSON string content"))
            }
        }
    }
}

impl Filter {
    /// Evaluates the filter against a resource (a JSON object).
    pub fn matches(&self, resource: &Value) -> bool {
        self.eval(resource, None)
    }

    /// `parent` is the multi-valued attribute inside whose `[...]` we are;
    /// needed to recognise case-exact attributes such as `meta.version`.
    fn eval(&self, node: &Value, parent: Option<&AttrPath>) -> bool {
        match self {
            Filter::And(terms) => terms.iter().all(|t| t.eval(node, parent)),
            Filter::Or(terms) => terms.iter().any(|t| t.eval(node, parent)),
            Filter::Not(inner) => !inner.eval(node, parent),
            Filter::Present(path) => path.resolve(node).into_iter().any(is_present),
            Filter::Compare { path, op, value } => {
                let case_exact = is_case_exact(parent, path);
                let values = path.resolve(node);
                match op {
                    CompareOp::Ne => !values
                        .into_iter()
                        .any(|v| compare(CompareOp::Eq, v, value, case_exact)),
                    CompareOp::Eq if value.is_null() => !values.into_iter().any(is_present),
                    op => values
                        .into_iter()
                        .any(|v| compare(*op, v, value, case_exact)),
                }
            }
            Filter::ValuePath { path, filter } => {
                let base = AttrPath {
                    urn: path.urn.clone(),
                    name: path.name.clone(),
                    sub_attr: None,
                };
                base.resolve(node)
                    .into_iter()
                    .any(|elem| elem.is_object() && filter.eval(elem, Some(path)))
            }
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            Filter::Or(_) => 1,
            Filter::And(_) => 2,
            _ => 3,
        }
    }

    fn fmt_child(&self, child: &Filter, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if child.precedence() < self.precedence() {
            write!(f, "({child})")
        } else {
            write!(f, "{child}")
        }
    }
}

/// Canonical text form; parsing it yields an equal filter.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::And(terms) | Filter::Or(terms) => {
                let sep = if matches!(self, Filter::And(_)) {
                    " and "
                } else {
                    " or "
                };
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    self.fmt_child(t, f)?;
                }
                Ok(())
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::Present(path) => write!(f, "{path} pr"),
            // Value's Display is JSON, so strings come out escaped and quoted.
            Filter::Compare { path, op, value } => write!(f, "{path} {} {value}", op.as_str()),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

/// RFC 7643 declares `id`, `externalId` and `meta.version` caseExact; every
/// other string attribute compares case-insensitively here.
fn is_case_exact(parent: Option<&AttrPath>, path: &AttrPath) -> bool {
    if path.is_extension() {
        return false;
    }
    let (top, sub) = match parent {
        Some(p) if p.is_extension() => return false,
        Some(p) => (p.name.as_str(), Some(path.name.as_str())),
        None => (path.name.as_str(), path.sub_attr.as_deref()),
    };
    match sub {
        None => top.eq_ignore_ascii_case("id") || top.eq_ignore_ascii_case("externalId"),
        Some(sub) => top.eq_ignore_ascii_case("meta") && sub.eq_ignore_ascii_case("version"),
    }
}

/// `pr`: a non-empty value (RFC 7644 §3.4.2.2).
fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn compare(op: CompareOp, attr: &Value, filter_value: &Value, case_exact: bool) -> bool {
    // A complex value compared directly stands for its "value" sub-attribute.
    let attr = match attr {
        Value::Object(_) => match get_ci(attr, "value") {
            Some(v) => v,
            None => return false,
        },
        other => other,
    };
    match (attr, filter_value) {
        (Value::String(a), Value::String(b)) => {
            let (a, b) = if case_exact {
                (a.clone(), b.clone())
            } else {
                (a.to_lowercase(), b.to_lowercase())
            };
            match op {
                CompareOp::Eq => a == b,
                CompareOp::Ne => a != b,
                CompareOp::Co => a.contains(&b),
                CompareOp::Sw => a.starts_with(&b),
                CompareOp::Ew => a.ends_with(&b),
                CompareOp::Gt => a > b,
                CompareOp::Ge => a >= b,
                CompareOp::Lt => a < b,
                CompareOp::Le => a <= b,
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            let ord = match (a.as_i64(), b.as_i64()) {
                (Some(x), Some(y)) => Some(x.cmp(&y)),
                _ => a
                    .as_f64()
                    .zip(b.as_f64())
                    .and_then(|(x, y)| x.partial_cmp(&y)),
            };
            let Some(ord) = ord else { return false };
            match op {
                CompareOp::Eq => ord == Ordering::Equal,
                CompareOp::Ne => ord != Ordering::Equal,
                CompareOp::Gt => ord == Ordering::Greater,
                CompareOp::Ge => ord != Ordering::Less,
                CompareOp::Lt => ord == Ordering::Less,
                CompareOp::Le => ord != Ordering::Greater,
                CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
            }
        }
        (Value::Bool(a), Value::Bool(b)) => match op {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cmp(path: AttrPath, op: CompareOp, value: Value) -> Filter {
        Filter::Compare { path, op, value }
    }

    fn user() -> Value {
        json!({
            "schemas": [crate::USER_SCHEMA, crate::ENTERPRISE_USER_SCHEMA],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "BJensen",
            "userName": "bjensen@example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "title": "Tour Guide",
            "active": true,
            "loginCount": 42,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "nickName": "",
            "meta": {"lastModified": "2011-05-13T04:42:34Z", "version": "W/\"3694e05e9dff590\""},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
            }
        })
    }

    fn m(filter: &str) -> bool {
        parse(filter).unwrap().matches(&user())
    }

    #[test]
    fn parses_simple_comparison() {
        assert_eq!(
            parse("userName Eq \"john\"").unwrap(),
            cmp(AttrPath::new("userName"), CompareOp::Eq, json!("john"))
        );
        assert_eq!(
            parse("name.givenName sw \"J\"").unwrap(),
            cmp(
                AttrPath::with_sub("name", "givenName"),
                CompareOp::Sw,
                json!("J")
            )
        );
        assert_eq!(
            parse("title PR").unwrap(),
            Filter::Present(AttrPath::new("title"))
        );
        assert_eq!(
            parse("loginCount ge -1.5e2").unwrap(),
            cmp(AttrPath::new("loginCount"), CompareOp::Ge, json!(-150.0))
        );
        assert_eq!(
            parse("active eq TRUE").unwrap(),
            cmp(AttrPath::new("active"), CompareOp::Eq, json!(true))
        );
        assert_eq!(
            parse("x eq null").unwrap(),
            cmp(AttrPath::new("x"), CompareOp::Eq, Value::Null)
        );
    }

    #[test]
    fn parses_urn_paths() {
        let f = parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"1\"",
        )
        .unwrap();
        let Filter::Compare { path, .. } = f else {
            panic!()
        };
        assert_eq!(path.urn.as_deref(), Some(crate::ENTERPRISE_USER_SCHEMA));
        assert_eq!(path.name, "employeeNumber");
        assert!(path.is_extension());
        let f =
            parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value pr")
                .unwrap();
        assert_eq!(
            f,
            Filter::Present(AttrPath {
                urn: Some(crate::ENTERPRISE_USER_SCHEMA.into()),
                name: "manager".into(),
                sub_attr: Some("value".into())
            })
        );
        let f = parse("urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"a\"").unwrap();
        let Filter::Compare { path, .. } = f else {
            panic!()
        };
        assert!(!path.is_extension());
        assert!(path.is_simple("username"));
    }

    #[test]
    fn string_escapes() {
        assert_eq!(
            parse(r#"userName eq "a\"b\\c\u00e9""#).unwrap(),
            cmp(AttrPath::new("userName"), CompareOp::Eq, json!("a\"b\\cé"))
        );
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let f = parse("a pr or b pr and c pr").unwrap();
        assert_eq!(
            f,
            Filter::Or(vec![
                Filter::Present(AttrPath::new("a")),
                Filter::And(vec![
                    Filter::Present(AttrPath::new("b")),
                    Filter::Present(AttrPath::new("c"))
                ])
            ])
        );
        let f = parse("a pr and b pr or c pr").unwrap();
        assert_eq!(
            f,
            Filter::Or(vec![
                Filter::And(vec![
                    Filter::Present(AttrPath::new("a")),
                    Filter::Present(AttrPath::new("b"))
                ]),
                Filter::Present(AttrPath::new("c"))
            ])
        );
        let f = parse("(a pr or b pr) and c pr").unwrap();
        assert_eq!(
            f,
            Filter::And(vec![
                Filter::Or(vec![
                    Filter::Present(AttrPath::new("a")),
                    Filter::Present(AttrPath::new("b"))
                ]),
                Filter::Present(AttrPath::new("c"))
            ])
        );
        let f = parse("NOT (a pr) AND not(b pr)").unwrap();
        assert_eq!(
            f,
            Filter::And(vec![
                Filter::Not(Box::new(Filter::Present(AttrPath::new("a")))),
                Filter::Not(Box::new(Filter::Present(AttrPath::new("b"))))
            ])
        );
    }

    #[test]
    fn parses_value_paths() {
        let f = parse(r#"emails[type eq "work" and value co "@example"]"#).unwrap();
        assert_eq!(
            f,
            Filter::ValuePath {
                path: AttrPath::new("emails"),
                filter: Box::new(Filter::And(vec![
                    cmp(AttrPath::new("type"), CompareOp::Eq, json!("work")),
                    cmp(AttrPath::new("value"), CompareOp::Co, json!("@example")),
                ]))
            }
        );
        let f = parse(r#"userType eq "Employee" and emails[type eq "work"] or x pr"#).unwrap();
        assert!(matches!(f, Filter::Or(ref t) if t.len() == 2));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            r#"userName eq "a\"b""#,
            "a pr or b pr and c pr",
            "(a pr or b pr) and not (c.d gt 5)",
            r#"emails[type eq "work" and value co "@x"] and urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7""#,
        ] {
            let f = parse(s).unwrap();
            assert_eq!(parse(&f.to_string()).unwrap(), f, "{s}");
        }
        assert_eq!(
            parse("(a pr or b pr) and c pr").unwrap().to_string(),
            "(a pr or b pr) and c pr"
        );
    }

    fn err(s: &str) -> FilterError {
        parse(s).unwrap_err()
    }

    #[test]
    fn errors_name_position_and_expectation() {
        let e = err("userName xx \"a\"");
        assert_eq!(e.position, 9);
        assert!(e.expected.contains("operator"), "{e}");
        assert_eq!(err("userName eq").position, 11);
        let e = err("userName eq ");
        assert_eq!(e.position, 12);
        assert!(e.expected.contains("comparison value"));
        let e = err("userName eq \"abc");
        assert_eq!(e.position, 16);
        assert!(e.expected.contains("closing"));
        let e = err("(a pr");
        assert_eq!((e.position, e.expected.as_str()), (5, "')'"));
        let e = err("a pr b pr");
        assert_eq!(e.position, 5);
        assert!(e.expected.contains("'and', 'or'"));
        assert_eq!(err("").position, 0);
        assert_eq!(err("a pr and").position, 8);
        assert_eq!(err("not a pr").position, 4);
        assert_eq!(err("a.b.c pr").position, 3);
        assert_eq!(err("emails[type eq \"x\"").position, 18);
        assert_eq!(err("x eq bogus").position, 5);
        assert_eq!(err("x eq 1.2.3").position, 5);
        assert_eq!(err("1abc eq 1").position, 0);
        assert_eq!(err("foo:bar eq 1").position, 0);
        // Positions count characters, not bytes.
        assert_eq!(err("x eq \"é\" zz").position, 9);
        let deep = "(".repeat(100) + "a pr" + &")".repeat(100);
        assert!(err(&deep).expected.contains("nesting"));
        let e = err("userName eq \"a\" or");
        assert_eq!(
            e.to_string(),
            "invalid filter at position 18: expected attribute path, found end of input"
        );
    }

    #[test]
    fn long_flat_chains_do_not_nest() {
        let s = vec!["a pr"; 5000].join(" or ");
        let f = parse(&s).unwrap();
        assert!(matches!(f, Filter::Or(ref t) if t.len() == 5000));
    }

    #[test]
    fn matches_strings_case_insensitively() {
        assert!(m(r#"userName eq "BJENSEN@example.com""#));
        assert!(m(r#"USERNAME eq "bjensen@example.com""#));
        assert!(m(r#"name.GIVENNAME sw "bar""#));
        assert!(m(r#"title co "our g""#));
        assert!(m(r#"title ew "GUIDE""#));
        assert!(!m(r#"title ew "tour""#));
        assert!(m(r#"userName ne "other""#));
        assert!(!m(r#"userName ne "BJensen@example.com""#));
        assert!(m(r#"nonexistent ne "x""#));
    }

    #[test]
    fn case_exact_attributes() {
        assert!(m(r#"externalId eq "BJensen""#));
        assert!(!m(r#"externalId eq "bjensen""#));
        assert!(m(r#"id eq "2819c223-7f76-453a-919d-413861904646""#));
        assert!(!m(r#"id eq "2819C223-7F76-453A-919D-413861904646""#));
        assert!(!m(r#"meta.version eq "w/\"3694E05E9DFF590\"""#));
        assert!(m(r#"meta.version eq "W/\"3694e05e9dff590\"""#));
    }

    #[test]
    fn matches_multi_valued_and_complex() {
        assert!(m(r#"emails eq "babs@jensen.org""#));
        assert!(m(r#"emails co "JENSEN.org""#));
        assert!(m(r#"emails.type eq "home""#));
        assert!(!m(r#"emails.type eq "other""#));
        assert!(m(r#"emails[type eq "work" and value co "@example"]"#));
        assert!(!m(r#"emails[type eq "home" and value co "@example"]"#));
        assert!(m(r#"emails[primary eq true]"#));
        assert!(m(r#"emails[not (type eq "home")]"#));
        assert!(!m(r#"emails eq "nobody@example.com""#));
        assert!(m(r#"emails ne "nobody@example.com""#));
    }

    #[test]
    fn matches_ordering_numbers_and_booleans() {
        assert!(m(r#"meta.lastModified gt "2011-05-13T04:42:33Z""#));
        assert!(m(r#"meta.lastModified ge "2011-05-13T04:42:34Z""#));
        assert!(!m(r#"meta.lastModified lt "2011-05-13T04:42:34Z""#));
        assert!(m(r#"meta.lastModified le "2011-05-13T04:42:34Z""#));
        assert!(m("loginCount gt 41"));
        assert!(m("loginCount eq 42.0"));
        assert!(!m("loginCount lt 42"));
        assert!(m("loginCount le 42"));
        assert!(!m(r#"loginCount eq "42""#));
        assert!(m("active eq true"));
        assert!(!m("active eq false"));
        assert!(!m("active gt false"));
    }

    #[test]
    fn matches_presence_and_null() {
        assert!(m("title pr"));
        assert!(!m("nickName pr"));
        assert!(!m("missing pr"));
        assert!(m("emails pr"));
        assert!(m("missing eq null"));
        assert!(m("nickName eq null"));
        assert!(!m("title eq null"));
        assert!(m("title ne null"));
    }

    #[test]
    fn matches_extension_and_logic() {
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#
        ));
        assert!(m(
            r#"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:EMPLOYEENUMBER eq "701984""#
        ));
        assert!(m(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value pr"
        ));
        assert!(!m(
            r#"urn:ietf:params:scim:schemas:extension:other:2.0:User:employeeNumber eq "701984""#
        ));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen@example.com""#
        ));
        assert!(m(r#"title pr and (userName eq "x" or userName sw "bj")"#));
        assert!(!m(r#"title pr and userName eq "x" or userName sw "zz""#));
        assert!(m(r#"userName eq "x" or title pr and active eq true"#));
        assert!(m(r#"not (userName eq "x")"#));
    }

    #[test]
    fn quote_is_safe() {
        for s in [
            "plain",
            "with \"quotes\"",
            "back\\slash",
            "new\nline",
            "x\" or id pr or \"",
            "ünï\u{1}",
        ] {
            let q = quote(s);
            let f = parse(&format!("userName eq {q}")).unwrap();
            assert_eq!(f, cmp(AttrPath::new("userName"), CompareOp::Eq, json!(s)));
        }
    }

    #[test]
    fn bare_attribute_paths() {
        assert_eq!(
            parse_attr_path(" name.givenName ").unwrap(),
            AttrPath::with_sub("name", "givenName")
        );
        let p = parse_attr_path(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        )
        .unwrap();
        assert!(p.is_extension());
        assert_eq!(parse_attr_path("a b").unwrap_err().position, 2);
    }

    #[test]
    fn patch_paths() {
        let (p, f) = parse_patch_path("name.givenName").unwrap();
        assert_eq!(p, AttrPath::with_sub("name", "givenName"));
        assert!(f.is_none());
        let (p, f) = parse_patch_path(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(p, AttrPath::with_sub("emails", "value"));
        assert_eq!(
            f.unwrap(),
            cmp(AttrPath::new("type"), CompareOp::Eq, json!("work"))
        );
        let (p, f) = parse_patch_path(r#"members[value eq "abc"]"#).unwrap();
        assert_eq!(p, AttrPath::new("members"));
        assert!(f.is_some());
        assert!(parse_patch_path("emails[type eq \"work\"]x").is_err());
        assert!(parse_patch_path("name.givenName[x pr]").is_err());
        assert!(parse_patch_path("").is_err());
    }
}
