//! Label selectors and field selectors, as the Kubernetes API understands them.
//!
//! A [`Selector`] is a conjunction of [`Requirement`]s, written as a
//! comma-separated string:
//!
//! | syntax | operator | matches when |
//! |---|---|---|
//! | `env=prod`, `env==prod` | [`Operator::Equals`], [`Operator::DoubleEquals`] | the label exists and equals the value |
//! | `env!=prod` | [`Operator::NotEquals`] | the label is absent or differs |
//! | `env in (prod,staging)` | [`Operator::In`] | the label exists and is one of the values |
//! | `env notin (dev)` | [`Operator::NotIn`] | the label is absent or none of the values |
//! | `env` | [`Operator::Exists`] | the label exists |
//! | `!env` | [`Operator::DoesNotExist`] | the label is absent |
//! | `replicas>2`, `replicas<5` | [`Operator::GreaterThan`], [`Operator::LessThan`] | the label is an integer beyond the bound |
//!
//! Parsing follows `k8s.io/apimachinery/pkg/labels.Parse` token for token
//! (including its corner cases: `env=` means "equals the empty string",
//! `env in ()` means "in the set {\"\"}"). Keys are validated as qualified
//! names and values as label values with [`crate::names`]. Requirements are
//! kept sorted by key and set values sorted and de-duplicated, so
//! [`Display`](std::fmt::Display) prints the same canonical string the Go
//! client sends.
//!
//! [`FieldSelector`] renders (and parses) field selectors such as
//! `metadata.name=foo,status.phase!=Running`, escaping `\`, `,` and `=` in
//! values.
//!
//! ```
//! use std::collections::BTreeMap;
//! use kubepkg_util::selector::Selector;
//!
//! let sel: Selector = "tier notin (cache), env in (staging,prod),app=web".parse()?;
//! assert_eq!(sel.to_string(), "app=web,env in (prod,staging),tier notin (cache)");
//!
//! let labels = BTreeMap::from([
//!     ("app".to_string(), "web".to_string()),
//!     ("env".to_string(), "prod".to_string()),
//! ]);
//! assert!(sel.matches(&labels));
//!
//! let built = Selector::builder().eq("app", "web").exists("team").build()?;
//! assert_eq!(built.to_string(), "app=web,team");
//! # Ok::<(), kubepkg_util::Error>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::names;

const WHAT: &str = "label selector";
const FIELD_WHAT: &str = "field selector";

/// Read access to a set of labels (or fields), for matching.
///
/// Implemented for the usual maps of strings; implement it for your own
/// types (e.g. an object's metadata) to match without copying.
pub trait Labels {
    /// The value of `key`, if present.
    fn get_label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn get_label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: BuildHasher> Labels for HashMap<String, String, S> {
    fn get_label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl Labels for BTreeMap<&str, &str> {
    fn get_label(&self, key: &str) -> Option<&str> {
        self.get(key).copied()
    }
}

impl<S: BuildHasher> Labels for HashMap<&str, &str, S> {
    fn get_label(&self, key: &str) -> Option<&str> {
        self.get(key).copied()
    }
}

impl Labels for [(&str, &str)] {
    fn get_label(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

impl<const N: usize> Labels for [(&str, &str); N] {
    fn get_label(&self, key: &str) -> Option<&str> {
        self.as_slice().get_label(key)
    }
}

impl<L: Labels + ?Sized> Labels for &L {
    fn get_label(&self, key: &str) -> Option<&str> {
        (**self).get_label(key)
    }
}

/// The operator of a label-selector [`Requirement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operator {
    /// `key=value`.
    Equals,
    /// `key==value` (same meaning as `=`; printed as written).
    DoubleEquals,
    /// `key!=value`.
    NotEquals,
    /// `key in (v1,v2)`.
    In,
    /// `key notin (v1,v2)`.
    NotIn,
    /// `key`.
    Exists,
    /// `!key`.
    DoesNotExist,
    /// `key>n` (integer comparison).
    GreaterThan,
    /// `key<n` (integer comparison).
    LessThan,
}

impl Operator {
    /// The name apimachinery gives the operator (`"="`, `"in"`, `"exists"`, `"!"`, `"gt"`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// One condition of a label [`Selector`]: a key, an operator and values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted and de-duplicated for `In`/`NotIn`; exactly one for the
    /// equality and comparison operators; empty for the existence ones.
    values: Vec<String>,
}

impl Requirement {
    /// Builds and validates a requirement, with the checks of
    /// apimachinery's `NewRequirement`: the key must be a qualified name,
    /// every value a label value, `in`/`notin` need at least one value,
    /// equality and comparison exactly one (an integer for comparisons),
    /// existence none.
    pub fn new<K, I, V>(key: K, operator: Operator, values: I) -> Result<Requirement>
    where
        K: Into<String>,
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        let key = key.into();
        let mut values: Vec<String> = values.into_iter().map(Into::into).collect();
        let mut problems = Vec::new();
        let key_messages = names::qualified_name_messages(&key);
        if !key_messages.is_empty() {
            problems.push(format!("key {key:?}: {}", key_messages.join("; ")));
        }
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    problems
                        .push("for 'in', 'notin' operators, values set can't be empty".to_owned());
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    problems.push("exact-match compatibility requires one single value".to_owned());
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    problems
                        .push("values set must be empty for exists and does not exist".to_owned());
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    problems
                        .push("for 'Gt', 'Lt' operators, exactly one value is required".to_owned());
                }
                for v in &values {
                    if v.parse::<i64>().is_err() {
                        problems.push(format!(
                            "value {v:?}: for 'Gt', 'Lt' operators, the value must be an integer"
                        ));
                    }
                }
            }
        }
        for v in &values {
            let messages = names::label_value_messages(v);
            if !messages.is_empty() {
                problems.push(format!("value {v:?}: {}", messages.join("; ")));
            }
        }
        if !problems.is_empty() {
            return Err(Error::invalid(WHAT, problems.join(", ")));
        }
        if matches!(operator, Operator::In | Operator::NotIn) {
            values.sort_unstable();
            values.dedup();
        }
        Ok(Requirement {
            key,
            operator,
            values,
        })
    }

    /// `key=value`.
    pub fn equals(key: impl Into<String>, value: impl Into<String>) -> Result<Requirement> {
        Requirement::new(key, Operator::Equals, [value.into()])
    }

    /// `key!=value`.
    pub fn not_equals(key: impl Into<String>, value: impl Into<String>) -> Result<Requirement> {
        Requirement::new(key, Operator::NotEquals, [value.into()])
    }

    /// `key in (values)`.
    pub fn is_in<I, V>(key: impl Into<String>, values: I) -> Result<Requirement>
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        Requirement::new(key, Operator::In, values)
    }

    /// `key notin (values)`.
    pub fn not_in<I, V>(key: impl Into<String>, values: I) -> Result<Requirement>
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        Requirement::new(key, Operator::NotIn, values)
    }

    /// `key` (the label exists).
    pub fn exists(key: impl Into<String>) -> Result<Requirement> {
        Requirement::new(key, Operator::Exists, Vec::<String>::new())
    }

    /// `!key` (the label does not exist).
    pub fn does_not_exist(key: impl Into<String>) -> Result<Requirement> {
        Requirement::new(key, Operator::DoesNotExist, Vec::<String>::new())
    }

    /// `key>bound` (the label is an integer greater than `bound`).
    ///
    /// A negative bound cannot be written in selector syntax (it is not a
    /// valid label value), so it is rejected.
    pub fn greater_than(key: impl Into<String>, bound: i64) -> Result<Requirement> {
        Requirement::new(key, Operator::GreaterThan, [bound.to_string()])
    }

    /// `key<bound` (the label is an integer less than `bound`).
    pub fn less_than(key: impl Into<String>, bound: i64) -> Result<Requirement> {
        Requirement::new(key, Operator::LessThan, [bound.to_string()])
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values (sorted for `in`/`notin`).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether `labels` satisfy this requirement.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let value = labels.get_label(&self.key);
        match self.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => {
                value.is_some_and(|v| self.values.iter().any(|x| x == v))
            }
            Operator::NotEquals | Operator::NotIn => {
                !value.is_some_and(|v| self.values.iter().any(|x| x == v))
            }
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(actual), [bound]) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.as_slice(),
                ) else {
                    return false;
                };
                let Ok(bound) = bound.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > bound
                } else {
                    actual < bound
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let (op, parens) = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => ("=", false),
            Operator::DoubleEquals => ("==", false),
            Operator::NotEquals => ("!=", false),
            Operator::In => (" in ", true),
            Operator::NotIn => (" notin ", true),
            Operator::GreaterThan => (">", false),
            Operator::LessThan => ("<", false),
        };
        f.write_str(op)?;
        if parens {
            f.write_str("(")?;
        }
        for (i, v) in self.values.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(v)?;
        }
        if parens {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A label selector: every [`Requirement`] must match. The empty selector
/// matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    /// Sorted by key (stable, so same-key requirements keep their order).
    requirements: Vec<Requirement>,
}

impl Selector {
    /// The selector that matches everything (renders as `""`).
    pub fn everything() -> Selector {
        Selector::default()
    }

    /// Parses a selector string such as `app=web,env in (prod,staging)`.
    pub fn parse(s: &str) -> Result<Selector> {
        let tokens = lex(s)?;
        let requirements = Parser { tokens, pos: 0 }.parse()?;
        Ok(Selector::from_requirements(requirements))
    }

    /// A selector from requirements (sorted by key).
    pub fn from_requirements(requirements: impl IntoIterator<Item = Requirement>) -> Selector {
        let mut requirements: Vec<Requirement> = requirements.into_iter().collect();
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Selector { requirements }
    }

    /// An equality-based selector matching every `key=value` of a map.
    pub fn from_labels<'a, I>(labels: I) -> Result<Selector>
    where
        I: IntoIterator<Item = (&'a String, &'a String)>,
    {
        let requirements = labels
            .into_iter()
            .map(|(k, v)| Requirement::equals(k.as_str(), v.as_str()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Selector::from_requirements(requirements))
    }

    /// Starts a [`SelectorBuilder`].
    pub fn builder() -> SelectorBuilder {
        SelectorBuilder::default()
    }

    /// This selector with one more requirement.
    pub fn with(mut self, requirement: Requirement) -> Selector {
        let at = self
            .requirements
            .partition_point(|r| r.key <= requirement.key);
        self.requirements.insert(at, requirement);
        self
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether this selector has no requirement (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            fmt::Display::fmt(r, f)?;
        }
        Ok(())
    }
}

impl FromStr for Selector {
    type Err = Error;

    fn from_str(s: &str) -> Result<Selector> {
        Selector::parse(s)
    }
}

impl serde::Serialize for Selector {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Selector {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Selector::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Builds a [`Selector`] requirement by requirement; the first invalid
/// requirement is reported by [`build`](SelectorBuilder::build).
#[derive(Debug, Default)]
#[must_use]
pub struct SelectorBuilder {
    requirements: Vec<Requirement>,
    error: Option<Error>,
}

impl SelectorBuilder {
    fn push(mut self, requirement: Result<Requirement>) -> Self {
        match requirement {
            Ok(r) => self.requirements.push(r),
            Err(e) => {
                if self.error.is_none() {
                    self.error = Some(e);
                }
            }
        }
        self
    }

    /// Adds a prepared requirement.
    pub fn requirement(mut self, requirement: Requirement) -> Self {
        self.requirements.push(requirement);
        self
    }

    /// Adds `key=value`.
    pub fn eq(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.push(Requirement::equals(key, value))
    }

    /// Adds `key!=value`.
    pub fn ne(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.push(Requirement::not_equals(key, value))
    }

    /// Adds `key in (values)`.
    pub fn is_in<I, V>(self, key: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        self.push(Requirement::is_in(key, values))
    }

    /// Adds `key notin (values)`.
    pub fn not_in<I, V>(self, key: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        self.push(Requirement::not_in(key, values))
    }

    /// Adds `key` (exists).
    pub fn exists(self, key: impl Into<String>) -> Self {
        self.push(Requirement::exists(key))
    }

    /// Adds `!key` (does not exist).
    pub fn does_not_exist(self, key: impl Into<String>) -> Self {
        self.push(Requirement::does_not_exist(key))
    }

    /// Adds `key>bound`.
    pub fn gt(self, key: impl Into<String>, bound: i64) -> Self {
        self.push(Requirement::greater_than(key, bound))
    }

    /// Adds `key<bound`.
    pub fn lt(self, key: impl Into<String>, bound: i64) -> Self {
        self.push(Requirement::less_than(key, bound))
    }

    /// The selector, or the first validation error.
    pub fn build(self) -> Result<Selector> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(Selector::from_requirements(self.requirements)),
        }
    }
}

// ---------------------------------------------------------------------------
// Lexer and parser (the grammar of apimachinery's labels.Parse).

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    End,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier(String),
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

impl Token {
    fn literal(&self) -> &str {
        match self {
            Token::End => "",
            Token::ClosedPar => ")",
            Token::Comma => ",",
            Token::DoesNotExist => "!",
            Token::DoubleEquals => "==",
            Token::Equals => "=",
            Token::GreaterThan => ">",
            Token::Identifier(s) => s,
            Token::In => "in",
            Token::LessThan => "<",
            Token::NotEquals => "!=",
            Token::NotIn => "notin",
            Token::OpenPar => "(",
        }
    }

    /// In value position the keywords `in` and `notin` are plain words.
    fn as_value(&self) -> Token {
        match self {
            Token::In => Token::Identifier("in".to_owned()),
            Token::NotIn => Token::Identifier("notin".to_owned()),
            other => other.clone(),
        }
    }
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn symbol(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn lex(s: &str) -> Result<Vec<Token>> {
    let b = s.as_bytes();
    let mut tokens = Vec::new();
    let mut pos = 0;
    loop {
        while pos < b.len() && is_space(b[pos]) {
            pos += 1;
        }
        if pos >= b.len() {
            tokens.push(Token::End);
            return Ok(tokens);
        }
        if is_special(b[pos]) {
            // The longest run of special characters that is a token.
            let start = pos;
            let mut best: Option<(Token, usize)> = None;
            while pos < b.len() && is_special(b[pos]) {
                match symbol(&b[start..=pos]) {
                    Some(t) => best = Some((t, pos + 1)),
                    None if best.is_some() => break,
                    None => {}
                }
                pos += 1;
            }
            match best {
                Some((t, end)) => {
                    tokens.push(t);
                    pos = end;
                }
                None => {
                    return Err(Error::invalid(
                        WHAT,
                        format!("error expected: keyword found '{}'", &s[start..pos]),
                    ));
                }
            }
        } else {
            let start = pos;
            while pos < b.len() && !is_special(b[pos]) && !is_space(b[pos]) {
                pos += 1;
            }
            // Both ends are ASCII boundaries, so this slice is valid UTF-8.
            let word = &s[start..pos];
            tokens.push(match word {
                "in" => Token::In,
                "notin" => Token::NotIn,
                _ => Token::Identifier(word.to_owned()),
            });
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

fn parse_error(message: String) -> Error {
    Error::invalid(WHAT, message)
}

impl Parser {
    /// The next token, keywords read as identifiers when `as_value`.
    fn peek(&self, as_value: bool) -> Token {
        let t = self.tokens.get(self.pos).unwrap_or(&Token::End);
        if as_value { t.as_value() } else { t.clone() }
    }

    fn next(&mut self, as_value: bool) -> Token {
        let t = self.peek(as_value);
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn parse(mut self) -> Result<Vec<Requirement>> {
        let mut requirements = Vec::new();
        loop {
            match self.peek(true) {
                Token::Identifier(_) | Token::DoesNotExist => {
                    let r = self.requirement().map_err(|e| {
                        parse_error(format!("unable to parse requirement: {}", message_of(e)))
                    })?;
                    requirements.push(r);
                    match self.next(true) {
                        Token::End => return Ok(requirements),
                        Token::Comma => match self.peek(true) {
                            Token::Identifier(_) | Token::DoesNotExist => {}
                            t => {
                                return Err(parse_error(format!(
                                    "found '{}', expected: identifier after ','",
                                    t.literal()
                                )));
                            }
                        },
                        t => {
                            return Err(parse_error(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.literal()
                            )));
                        }
                    }
                }
                Token::End => return Ok(requirements),
                t => {
                    return Err(parse_error(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.literal()
                    )));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement> {
        let mut operator = None;
        let mut token = self.next(true);
        if token == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            token = self.next(true);
        }
        let Token::Identifier(key) = token else {
            return Err(parse_error(format!(
                "found '{}', expected: identifier",
                token.literal()
            )));
        };
        let key_messages = names::qualified_name_messages(&key);
        if !key_messages.is_empty() {
            return Err(parse_error(format!(
                "key {key:?}: {}",
                key_messages.join("; ")
            )));
        }
        if matches!(self.peek(true), Token::End | Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        if let Some(op) = operator {
            return Requirement::new(key, op, Vec::<String>::new());
        }
        let operator = match self.next(false) {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            t => {
                return Err(parse_error(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    t.literal()
                )));
            }
        };
        let values = match operator {
            Operator::In | Operator::NotIn => self.set_values()?,
            _ => self.exact_value()?,
        };
        Requirement::new(key, operator, values)
    }

    fn set_values(&mut self) -> Result<Vec<String>> {
        let open = self.next(true);
        if open != Token::OpenPar {
            return Err(parse_error(format!(
                "found '{}' expected: '('",
                open.literal()
            )));
        }
        match self.peek(true) {
            Token::Identifier(_) | Token::Comma => {
                let values = self.identifier_list()?;
                let close = self.next(true);
                if close != Token::ClosedPar {
                    return Err(parse_error(format!(
                        "found '{}', expected: ')'",
                        close.literal()
                    )));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.next(true);
                Ok(vec![String::new()])
            }
            t => Err(parse_error(format!(
                "found '{}', expected: ',', ')' or identifier",
                t.literal()
            ))),
        }
    }

    fn identifier_list(&mut self) -> Result<Vec<String>> {
        let mut values: Vec<String> = Vec::new();
        loop {
            match self.next(true) {
                Token::Identifier(v) => {
                    values.push(v);
                    match self.peek(true) {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(values),
                        t => {
                            return Err(parse_error(format!(
                                "found '{}', expected: ',' or ')'",
                                t.literal()
                            )));
                        }
                    }
                }
                Token::Comma => {
                    // Empty entries (`(,a)`, `(a,)`, `(a,,b)`) are empty strings.
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    match self.peek(true) {
                        Token::ClosedPar => {
                            values.push(String::new());
                            return Ok(values);
                        }
                        Token::Comma => values.push(String::new()),
                        _ => {}
                    }
                }
                t => {
                    return Err(parse_error(format!(
                        "found '{}', expected: ',', or identifier",
                        t.literal()
                    )));
                }
            }
        }
    }

    fn exact_value(&mut self) -> Result<Vec<String>> {
        if matches!(self.peek(true), Token::End | Token::Comma) {
            return Ok(vec![String::new()]);
        }
        match self.next(true) {
            Token::Identifier(v) => Ok(vec![v]),
            t => Err(parse_error(format!(
                "found '{}', expected: identifier",
                t.literal()
            ))),
        }
    }
}

fn message_of(e: Error) -> String {
    match e {
        Error::Invalid { message, .. } => message,
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Field selectors.

/// The operator of a [`FieldSelector`] term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `field=value` (`==` is read as `=`).
    Equals,
    /// `field!=value`.
    NotEquals,
}

/// One `field=value` or `field!=value` term of a [`FieldSelector`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldTerm {
    /// The field path, e.g. `metadata.name`.
    pub field: String,
    /// `=` or `!=`.
    pub operator: FieldOperator,
    /// The value, unescaped.
    pub value: String,
}

/// A field selector such as `metadata.name=foo,status.phase!=Running`.
///
/// Terms print in the order they were added (parsing sorts them, as the
/// API server does). Values are escaped on output (`\` → `\\`, `,` → `\,`,
/// `=` → `\=`) and unescaped on input.
///
/// ```
/// use kubepkg_util::selector::FieldSelector;
///
/// let fs = FieldSelector::new().eq("metadata.name", "foo").ne("status.phase", "Running");
/// assert_eq!(fs.to_string(), "metadata.name=foo,status.phase!=Running");
/// assert_eq!(FieldSelector::new().eq("spec.x", "a,b").to_string(), r"spec.x=a\,b");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// The empty field selector (matches everything).
    pub fn new() -> FieldSelector {
        FieldSelector::default()
    }

    /// Adds `field=value`.
    #[must_use]
    pub fn eq(mut self, field: impl Into<String>, value: impl Into<String>) -> FieldSelector {
        self.terms.push(FieldTerm {
            field: field.into(),
            operator: FieldOperator::Equals,
            value: value.into(),
        });
        self
    }

    /// Adds `field!=value`.
    #[must_use]
    pub fn ne(mut self, field: impl Into<String>, value: impl Into<String>) -> FieldSelector {
        self.terms.push(FieldTerm {
            field: field.into(),
            operator: FieldOperator::NotEquals,
            value: value.into(),
        });
        self
    }

    /// The terms.
    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }

    /// Whether there is no term.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether `fields` satisfy every term (a missing field reads as `""`,
    /// as in apimachinery).
    pub fn matches<L: Labels + ?Sized>(&self, fields: &L) -> bool {
        self.terms.iter().all(|t| {
            let actual = fields.get_label(&t.field).unwrap_or("");
            (actual == t.value) == (t.operator == FieldOperator::Equals)
        })
    }

    /// Parses `field=value,field!=value`; terms are sorted as the API server
    /// sorts them.
    pub fn parse(s: &str) -> Result<FieldSelector> {
        let mut parts = split_unescaped_commas(s);
        parts.sort_unstable();
        let mut terms = Vec::with_capacity(parts.len());
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let (field, operator, raw) = split_field_term(part).ok_or_else(|| {
                Error::invalid(FIELD_WHAT, format!("{s:?}: can't understand {part:?}"))
            })?;
            terms.push(FieldTerm {
                field: field.to_owned(),
                operator,
                value: unescape_field_value(raw)?,
            });
        }
        Ok(FieldSelector { terms })
    }
}

fn split_unescaped_commas(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b',' {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Splits at the first operator (`!=`, `==` or `=`).
fn split_field_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        if let Some(v) = rest.strip_prefix("!=") {
            return Some((&term[..i], FieldOperator::NotEquals, v));
        }
        if let Some(v) = rest.strip_prefix("==") {
            return Some((&term[..i], FieldOperator::Equals, v));
        }
        if let Some(v) = rest.strip_prefix('=') {
            return Some((&term[..i], FieldOperator::Equals, v));
        }
    }
    None
}

fn unescape_field_value(raw: &str) -> Result<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(other) => {
                    return Err(Error::invalid(
                        FIELD_WHAT,
                        format!("invalid escape sequence: \\{other}"),
                    ));
                }
                None => return Err(Error::invalid(FIELD_WHAT, "invalid escape sequence: \\")),
            },
            ',' | '=' => {
                return Err(Error::invalid(
                    FIELD_WHAT,
                    format!("unescaped character in value: {c}"),
                ));
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&t.field)?;
            f.write_str(match t.operator {
                FieldOperator::Equals => "=",
                FieldOperator::NotEquals => "!=",
            })?;
            for c in t.value.chars() {
                if matches!(c, '\\' | ',' | '=') {
                    f.write_str("\\")?;
                }
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

impl FromStr for FieldSelector {
    type Err = Error;

    fn from_str(s: &str) -> Result<FieldSelector> {
        FieldSelector::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(s: &str) -> Selector {
        match Selector::parse(s) {
            Ok(v) => v,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn parses_and_renders_canonically() {
        for (input, want) in [
            ("", ""),
            ("a=b", "a=b"),
            ("a==b", "a==b"),
            ("a!=b", "a!=b"),
            (" b in ( y , x , y ) , a ", "a,b in (x,y)"),
            ("!c,a notin (z)", "a notin (z),!c"),
            ("x>1,x<10", "x>1,x<10"),
            ("a=", "a="),
            ("a in ()", "a in ()"),
            ("a in (,b)", "a in (,b)"),
            ("in in (in,notin)", "in in (in,notin)"),
            ("example.com/key=Value_1", "example.com/key=Value_1"),
        ] {
            assert_eq!(sel(input).to_string(), want, "input {input:?}");
        }
    }

    #[test]
    fn rejects_bad_selectors() {
        for bad in [
            "a b",
            "a=b c",
            "a in",
            "a in (b",
            "a in b",
            "=a",
            "a,",
            ",a",
            "a==b==c",
            "x>a",
            "x>-1",
            "!a=b",
            "a=b!",
            "-a=b",
            "a=-b",
            "a/b/c=d",
            "a in (b c)",
            "a<<b",
        ] {
            let err = Selector::parse(bad).expect_err(bad);
            assert_eq!(err.kind(), crate::ErrorKind::Invalid, "{bad}");
        }
    }

    #[test]
    fn matching_semantics() {
        let labels = BTreeMap::from([
            ("app".to_owned(), "web".to_owned()),
            ("n".to_owned(), "5".to_owned()),
        ]);
        for (s, want) in [
            ("", true),
            ("app=web", true),
            ("app=db", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("app in (db,web)", true),
            ("app notin (web)", false),
            ("missing notin (x)", true),
            ("missing in (x)", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("n>4", true),
            ("n>5", false),
            ("n<6", true),
            ("app>1", false),
            ("missing<1", false),
            ("app=web,n>10", false),
        ] {
            assert_eq!(sel(s).matches(&labels), want, "{s}");
        }
        assert!(sel("a=b").matches(&[("a", "b")]));
        let hm: HashMap<&str, &str> = HashMap::from([("a", "b")]);
        assert!(sel("a in (b)").matches(&hm));
    }

    #[test]
    fn builder_validates() {
        let s = Selector::builder()
            .not_in("tier", ["x"])
            .is_in("env", ["b", "a", "a"])
            .gt("n", 3)
            .build()
            .expect("valid");
        assert_eq!(s.to_string(), "env in (a,b),n>3,tier notin (x)");
        assert!(Selector::builder().eq("bad key", "v").build().is_err());
        assert!(
            Selector::builder()
                .is_in("k", Vec::<String>::new())
                .build()
                .is_err()
        );
        assert!(Selector::builder().eq("k", "bad value!").build().is_err());
        assert!(Selector::builder().gt("k", -1).build().is_err());
        let added = Selector::everything()
            .with(Requirement::exists("b").expect("ok"))
            .with(Requirement::exists("a").expect("ok"));
        assert_eq!(added.to_string(), "a,b");
    }

    #[test]
    fn serde_as_string() {
        let s: Selector = serde_json::from_str("\"b=1,a=2\"").expect("parse");
        assert_eq!(serde_json::to_string(&s).expect("ser"), "\"a=2,b=1\"");
    }

    #[test]
    fn field_selectors() {
        let fs = FieldSelector::parse("status.phase!=Running,metadata.name==foo").expect("parse");
        assert_eq!(fs.to_string(), "metadata.name=foo,status.phase!=Running");
        let escaped = FieldSelector::new().eq("a", r"x\y,z=w");
        let text = escaped.to_string();
        assert_eq!(text, r"a=x\\y\,z\=w");
        assert_eq!(FieldSelector::parse(&text).expect("round trip"), escaped);
        assert!(FieldSelector::parse("novalue").is_err());
        assert!(FieldSelector::parse(r"a=b\q").is_err());
        let fields = BTreeMap::from([("metadata.name".to_owned(), "foo".to_owned())]);
        assert!(fs.matches(&fields));
        assert!(
            !FieldSelector::new()
                .eq("metadata.name", "bar")
                .matches(&fields)
        );
    }
}
