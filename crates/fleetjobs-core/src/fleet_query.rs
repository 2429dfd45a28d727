//! The fleet-indexing query language of dynamic thing groups, parsed and evaluated over a thing's registry fields.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// AWS's limit on a query string.
pub const MAX_QUERY_LEN: usize = 1024;
/// How deep parentheses and `NOT`s may nest: the parser recurses, so a hostile query must not
/// reach the stack's end.
pub const MAX_NESTING: usize = 32;

/// What a query looks at: a thing's registry fields (shadows and connectivity are not indexed
/// here).
#[derive(Debug, Clone)]
pub struct ThingView<'a> {
    pub name: &'a str,
    pub thing_type: Option<&'a str>,
    pub attributes: &'a BTreeMap<String, String>,
    pub group_names: Vec<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError(pub String);

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QueryError {}

fn err<T>(m: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError(m.into()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    ThingName,
    ThingTypeName,
    ThingGroupNames,
    Attribute(String),
}

impl Field {
    fn parse(s: &str) -> Result<Field, QueryError> {
        match s {
            "thingName" => Ok(Field::ThingName),
            "thingTypeName" => Ok(Field::ThingTypeName),
            "thingGroupNames" => Ok(Field::ThingGroupNames),
            _ => match s.strip_prefix("attributes.") {
                Some(a) if !a.is_empty() => Ok(Field::Attribute(a.to_string())),
                _ => err(format!(
                    "Unsupported field: {s} (indexed: thingName, thingTypeName, thingGroupNames, attributes.<name>)"
                )),
            },
        }
    }

    /// The field's values for a thing (none when it has no such field).
    fn values<'a>(&self, t: &ThingView<'a>) -> Vec<&'a str> {
        match self {
            Field::ThingName => vec![t.name],
            Field::ThingTypeName => t.thing_type.into_iter().collect(),
            Field::ThingGroupNames => t.group_names.clone(),
            Field::Attribute(a) => t.attributes.get(a).map(String::as_str).into_iter().collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
}

/// One bound of a range; `None` is `*` (open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    pub value: Option<String>,
    pub inclusive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    /// A term: `*` and `?` wildcards unless it was quoted.
    Value {
        pattern: String,
        quoted: bool,
    },
    Range {
        low: Bound,
        high: Bound,
    },
    Compare(Cmp, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `None`: a bare term, looked for in every field.
    Term(Option<Field>, Test),
    And(Vec<Query>),
    Or(Vec<Query>),
    Not(Box<Query>),
}

// --- lexer ---------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Colon,
    Cmp(Cmp),
    Minus,
    Word(String),
    Quoted(String),
}

/// Characters AWS refuses anywhere (its "special characters", `,` only in geo queries).
const FORBIDDEN: &[char] = &['`', '@', '#', '%', '/', '\'', ';', ','];

fn is_delim(c: char) -> bool {
    c.is_whitespace() || "():[]{}<>=\"".contains(c)
}

fn lex(s: &str) -> Result<Vec<Tok>, QueryError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if FORBIDDEN.contains(&c) {
            return err(format!("Unsupported character in query: {c}"));
        }
        chars.next();
        let tok = match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            ':' => Tok::Colon,
            '<' | '>' => {
                let eq = chars.next_if_eq(&'=').is_some();
                Tok::Cmp(match (c, eq) {
                    ('<', false) => Cmp::Lt,
                    ('<', true) => Cmp::Le,
                    ('>', false) => Cmp::Gt,
                    _ => Cmp::Ge,
                })
            }
            '=' => return err("Unexpected '=' in query"),
            '-' if chars.peek().is_some_and(|n| !n.is_whitespace() && !n.is_ascii_digit()) => Tok::Minus,
            '"' => {
                let mut v = String::new();
                loop {
                    match chars.next() {
                        None => return err("Unterminated quoted string in query"),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e) => v.push(e),
                            None => return err("Dangling escape in query"),
                        },
                        Some(x) => v.push(x),
                    }
                }
                Tok::Quoted(v)
            }
            _ => {
                let mut v = String::new();
                let mut next = Some(c);
                while let Some(x) = next {
                    if x == '\\' {
                        match chars.next() {
                            // An escaped wildcard stays escaped for the matcher.
                            Some(e @ ('*' | '?' | '\\')) => {
                                v.push('\\');
                                v.push(e);
                            }
                            Some(e) => v.push(e),
                            None => return err("Dangling escape in query"),
                        }
                    } else {
                        if FORBIDDEN.contains(&x) {
                            return err(format!("Unsupported character in query: {x}"));
                        }
                        v.push(x);
                    }
                    next = chars.next_if(|n| !is_delim(*n));
                }
                Tok::Word(v)
            }
        };
        out.push(tok);
    }
    Ok(out)
}

// --- parser --------------------------------------------------------------------------------

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

fn is_op(t: Option<&Tok>, op: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w == op)
}

/// Parse a query string (AWS's `2017-09-30` query version).
pub fn parse(s: &str) -> Result<Query, QueryError> {
    if s.len() > MAX_QUERY_LEN {
        return err(format!("A query can have at most {MAX_QUERY_LEN} characters"));
    }
    let toks = lex(s)?;
    if toks.is_empty() {
        return err("The query is empty");
    }
    let mut p = Parser { toks, pos: 0, depth: 0 };
    let q = p.or(None)?;
    match p.peek() {
        None => Ok(q),
        Some(t) => err(format!("Unexpected {} in query", describe(t))),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("'{w}'"),
        Tok::Quoted(w) => format!("\"{w}\""),
        other => format!("{other:?}"),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn enter(&mut self) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return err(format!("A query can nest at most {MAX_NESTING} levels"));
        }
        Ok(())
    }

    /// `and (OR and)*`. `field`: the field of an enclosing field group (`thingName:(a OR b)`).
    fn or(&mut self, field: Option<&Field>) -> Result<Query, QueryError> {
        let mut parts = vec![self.and(field)?];
        while is_op(self.peek(), "OR") {
            self.next();
            parts.push(self.and(field)?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Query::Or(parts) })
    }

    /// Clauses joined by `AND`, by nothing (the default operator is AND), or by `NOT` (and not).
    fn and(&mut self, field: Option<&Field>) -> Result<Query, QueryError> {
        let mut parts = vec![self.unary(field)?];
        loop {
            match self.peek() {
                None | Some(Tok::RParen) => break,
                t if is_op(t, "OR") => break,
                t if is_op(t, "AND") => {
                    self.next();
                    parts.push(self.unary(field)?);
                }
                _ => parts.push(self.unary(field)?),
            }
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Query::And(parts) })
    }

    fn unary(&mut self, field: Option<&Field>) -> Result<Query, QueryError> {
        if is_op(self.peek(), "NOT") || self.peek() == Some(&Tok::Minus) {
            self.next();
            self.enter()?;
            let q = self.unary(field)?;
            self.depth -= 1;
            return Ok(Query::Not(Box::new(q)));
        }
        self.primary(field)
    }

    fn group(&mut self, field: Option<&Field>) -> Result<Query, QueryError> {
        self.enter()?;
        let q = self.or(field)?;
        self.depth -= 1;
        match self.next() {
            Some(Tok::RParen) => Ok(q),
            _ => err("Missing ')' in query"),
        }
    }

    fn primary(&mut self, field: Option<&Field>) -> Result<Query, QueryError> {
        match self.next() {
            Some(Tok::LParen) => self.group(field),
            Some(Tok::Quoted(v)) => Ok(Query::Term(field.cloned(), Test::Value { pattern: v, quoted: true })),
            Some(Tok::Word(w)) if matches!(w.as_str(), "AND" | "OR" | "NOT" | "TO") => {
                err(format!("Unexpected operator {w} in query"))
            }
            Some(Tok::Word(w)) => match self.peek() {
                Some(Tok::Colon) if field.is_none() => {
                    self.next();
                    let f = Field::parse(&w)?;
                    self.field_value(f)
                }
                Some(Tok::Cmp(c)) if field.is_none() => {
                    let c = *c;
                    self.next();
                    let f = Field::parse(&w)?;
                    Ok(Query::Term(Some(f), Test::Compare(c, self.scalar()?)))
                }
                _ => Ok(Query::Term(field.cloned(), Test::Value { pattern: w, quoted: false })),
            },
            Some(Tok::LBracket | Tok::LBrace) if field.is_some() => {
                self.pos -= 1;
                Ok(Query::Term(field.cloned(), self.range()?))
            }
            Some(t) => err(format!("Unexpected {} in query", describe(&t))),
            None => err("Unexpected end of query"),
        }
    }

    /// What follows `field:`: a value, a range, or a field group.
    fn field_value(&mut self, f: Field) -> Result<Query, QueryError> {
        match self.peek() {
            Some(Tok::LParen) => {
                self.next();
                self.group(Some(&f))
            }
            Some(Tok::LBracket | Tok::LBrace) => Ok(Query::Term(Some(f), self.range()?)),
            Some(Tok::Word(_)) => match self.next() {
                Some(Tok::Word(w)) => Ok(Query::Term(Some(f), Test::Value { pattern: w, quoted: false })),
                _ => err("Missing value in query"),
            },
            Some(Tok::Quoted(_)) => match self.next() {
                Some(Tok::Quoted(w)) => Ok(Query::Term(Some(f), Test::Value { pattern: w, quoted: true })),
                _ => err("Missing value in query"),
            },
            _ => err("Missing value after ':' in query"),
        }
    }

    fn scalar(&mut self) -> Result<String, QueryError> {
        match self.next() {
            Some(Tok::Word(w)) if w != "TO" => Ok(w),
            Some(Tok::Quoted(w)) => Ok(w),
            _ => err("Missing value in query"),
        }
    }

    /// `[a TO b]`, `{a TO b}` and mixes (`{a TO b]`); `*` is an open end.
    fn range(&mut self) -> Result<Test, QueryError> {
        let low_inclusive = match self.next() {
            Some(Tok::LBracket) => true,
            Some(Tok::LBrace) => false,
            _ => return err("Missing '[' or '{' in range"),
        };
        let low = self.scalar()?;
        if !is_op(self.peek(), "TO") {
            return err("Missing TO in range");
        }
        self.next();
        let high = self.scalar()?;
        let high_inclusive = match self.next() {
            Some(Tok::RBracket) => true,
            Some(Tok::RBrace) => false,
            _ => return err("Missing ']' or '}' in range"),
        };
        let open = |v: String| (v != "*").then_some(v);
        Ok(Test::Range {
            low: Bound { value: open(low), inclusive: low_inclusive },
            high: Bound { value: open(high), inclusive: high_inclusive },
        })
    }
}

// --- evaluation ----------------------------------------------------------------------------

/// Numbers compare as numbers, anything else as case-insensitive text.
fn compare(value: &str, bound: &str) -> Ordering {
    match (value.parse::<f64>(), bound.parse::<f64>()) {
        (Ok(a), Ok(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        _ => value.to_lowercase().cmp(&bound.to_lowercase()),
    }
}

/// Case-insensitive glob: `*` any run, `?` one character, `\x` a literal x.
fn glob(pattern: &str, value: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Any,
        One,
        Lit(char),
    }
    let mut ps = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        ps.push(match c {
            '*' => P::Any,
            '?' => P::One,
            '\\' => P::Lit(it.next().unwrap_or('\\')),
            c => P::Lit(c),
        });
    }
    let v: Vec<char> = value.chars().collect();
    let eq = |p: char, c: char| p == c || p.to_lowercase().eq(c.to_lowercase());
    // Iterative matching with one backtrack point: linear in practice, never exponential.
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        match ps.get(pi) {
            Some(P::Any) => {
                star = Some((pi, vi));
                pi += 1;
            }
            Some(P::One) => {
                pi += 1;
                vi += 1;
            }
            Some(P::Lit(c)) if eq(*c, v[vi]) => {
                pi += 1;
                vi += 1;
            }
            _ => match star {
                Some((sp, sv)) => {
                    pi = sp + 1;
                    vi = sv + 1;
                    star = Some((sp, sv + 1));
                }
                None => return false,
            },
        }
    }
    ps[pi..].iter().all(|p| *p == P::Any)
}

impl Test {
    fn matches(&self, value: &str) -> bool {
        match self {
            Test::Value { pattern, quoted: true } => pattern.to_lowercase() == value.to_lowercase(),
            Test::Value { pattern, quoted: false } => glob(pattern, value),
            Test::Range { low, high } => {
                let above = low.value.as_ref().is_none_or(|l| match compare(value, l) {
                    Ordering::Greater => true,
                    Ordering::Equal => low.inclusive,
                    Ordering::Less => false,
                });
                let below = high.value.as_ref().is_none_or(|h| match compare(value, h) {
                    Ordering::Less => true,
                    Ordering::Equal => high.inclusive,
                    Ordering::Greater => false,
                });
                above && below
            }
            Test::Compare(c, bound) => {
                let o = compare(value, bound);
                match c {
                    Cmp::Lt => o == Ordering::Less,
                    Cmp::Le => o != Ordering::Greater,
                    Cmp::Gt => o == Ordering::Greater,
                    Cmp::Ge => o != Ordering::Less,
                }
            }
        }
    }
}

impl Query {
    pub fn matches(&self, t: &ThingView<'_>) -> bool {
        match self {
            Query::Term(Some(f), test) => f.values(t).into_iter().any(|v| test.matches(v)),
            Query::Term(None, test) => std::iter::once(t.name)
                .chain(t.thing_type)
                .chain(t.attributes.values().map(String::as_str))
                .chain(t.group_names.iter().copied())
                .any(|v| test.matches(v)),
            Query::And(qs) => qs.iter().all(|q| q.matches(t)),
            Query::Or(qs) => qs.iter().any(|q| q.matches(t)),
            Query::Not(q) => !q.matches(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thing<'a>(
        name: &'a str,
        ty: Option<&'a str>,
        attributes: &'a BTreeMap<String, String>,
        groups: &[&'a str],
    ) -> ThingView<'a> {
        ThingView { name, thing_type: ty, attributes, group_names: groups.to_vec() }
    }

    fn attrs(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn m(q: &str, t: &ThingView<'_>) -> bool {
        parse(q).unwrap_or_else(|e| panic!("{q}: {e}")).matches(t)
    }

    /// AWS's example thing queries (developer guide, "Example thing queries"), each with a
    /// thing it selects and one it does not.
    #[test]
    fn aws_example_table() {
        let none = attrs(&[]);
        let a75 = attrs(&[("myAttribute", "75")]);
        let a80 = attrs(&[("myAttribute", "80")]);
        let a81 = attrs(&[("myAttribute", "81")]);
        let it = attrs(&[("myAttribute", "ibbbt")]);
        let serial = attrs(&[("serialNumber", "abce")]);
        let serial_g = attrs(&[("serialNumber", "abcg")]);
        let cde = attrs(&[("myAttribute", "cde")]);
        let upper = attrs(&[("k", "ABC")]);
        let cases: Vec<(&str, ThingView<'_>, bool)> = vec![
            ("abc", thing("abc", None, &none, &[]), true),
            ("abc", thing("x", None, &upper, &[]), true),
            ("abc", thing("x", None, &none, &[]), false),
            ("thingName:myThingName", thing("myThingName", None, &none, &[]), true),
            ("thingName:myThingName", thing("other", None, &none, &[]), false),
            ("thingName:my*", thing("myThing", None, &none, &[]), true),
            ("thingName:my*", thing("yourThing", None, &none, &[]), false),
            ("thingName:*my", thing("itsmy", None, &none, &[]), true),
            ("thingName:*my", thing("mything", None, &none, &[]), false),
            ("thingName:*my*", thing("xmyx", None, &none, &[]), true),
            ("thingName:ab?", thing("abc", None, &none, &[]), true),
            ("thingName:ab?", thing("abcd", None, &none, &[]), false),
            ("thingName:ab?", thing("ab", None, &none, &[]), false),
            ("thingTypeName:aa", thing("t", Some("aa"), &none, &[]), true),
            ("thingTypeName:aa", thing("t", None, &none, &[]), false),
            ("thingGroupNames:a", thing("t", None, &none, &["b", "a"]), true),
            ("thingGroupNames:a", thing("t", None, &none, &["ab"]), false),
            ("thingGroupNames:a*", thing("t", None, &none, &["ab"]), true),
            ("attributes.myAttribute:75", thing("t", None, &a75, &[]), true),
            ("attributes.myAttribute:75", thing("t", None, &a80, &[]), false),
            ("attributes.myAttribute:[75 TO 80]", thing("t", None, &a75, &[]), true),
            ("attributes.myAttribute:[75 TO 80]", thing("t", None, &a80, &[]), true),
            ("attributes.myAttribute:[75 TO 80]", thing("t", None, &a81, &[]), false),
            ("attributes.myAttribute:{75 TO 80]", thing("t", None, &a75, &[]), false),
            ("attributes.myAttribute:{75 TO 80]", thing("t", None, &a80, &[]), true),
            ("attributes.myAttribute:{75 TO 80}", thing("t", None, &a80, &[]), false),
            ("attributes.serialNumber:[\"abcd\" TO \"abcf\"]", thing("t", None, &serial, &[]), true),
            ("attributes.serialNumber:[\"abcd\" TO \"abcf\"]", thing("t", None, &serial_g, &[]), false),
            ("attributes.myAttribute:i*t", thing("t", None, &it, &[]), true),
            ("attributes.myAttribute:i*t", thing("t", None, &a75, &[]), false),
            ("NOT attributes.myAttribute:cde", thing("t", None, &a75, &[]), true),
            ("NOT attributes.myAttribute:cde", thing("t", None, &cde, &[]), false),
            ("thingName:(tv* AND -plasma)", thing("tv1", None, &none, &[]), true),
            ("thingName:(tv* AND -plasma)", thing("plasma", None, &none, &[]), false),
            ("thingName:(tv* AND -tvplasma)", thing("tvplasma", None, &none, &[]), false),
            ("attributes.myAttribute:*", thing("t", None, &a75, &[]), true),
            ("attributes.myAttribute:*", thing("t", None, &none, &[]), false),
            ("thingName:*", thing("any", None, &none, &[]), true),
        ];
        for (q, t, want) in cases {
            assert_eq!(m(q, &t), want, "{q} on {t:?}");
        }
    }

    #[test]
    fn boolean_operators_and_precedence() {
        let a = attrs(&[("attr1", "abc"), ("attr2", "4"), ("attr3", "11")]);
        let t = thing("t", None, &a, &[]);
        // AWS's example: attr1 is abc, attr2 < 5 and not attr3 > 10.
        assert!(!m("attributes.attr1:abc AND attributes.attr2<5 NOT attributes.attr3>10", &t));
        assert!(m("attributes.attr1:abc AND attributes.attr2<5 NOT attributes.attr3>12", &t));
        // The default operator is AND.
        assert!(m("attributes.attr1:abc attributes.attr2:4", &t));
        assert!(!m("attributes.attr1:abc attributes.attr2:5", &t));
        // AND binds tighter than OR.
        assert!(m("thingName:x AND attributes.attr2:9 OR attributes.attr1:abc", &t));
        assert!(!m("thingName:x AND (attributes.attr2:9 OR attributes.attr1:abc)", &t));
        assert!(m("thingGroupNames:(a OR b) OR thingName:t", &t));
        assert!(m("NOT NOT thingName:t", &t));
        assert!(m("-thingName:x", &t));
        // Operators are upper case; lower case words are terms (here: absent ones).
        assert!(!m("thingName:t and", &t));
    }

    #[test]
    fn comparisons_numeric_and_text() {
        let a = attrs(&[("n", "10"), ("s", "beta")]);
        let t = thing("t", None, &a, &[]);
        assert!(m("attributes.n>9", &t));
        assert!(!m("attributes.n>10", &t));
        assert!(m("attributes.n>=10", &t));
        assert!(m("attributes.n<10.5", &t));
        assert!(!m("attributes.n<10", &t));
        assert!(m("attributes.n<=10", &t));
        assert!(m("attributes.n:[-5 TO 10]", &t));
        assert!(m("attributes.n:[* TO 10]", &t));
        assert!(!m("attributes.n:{10 TO *]", &t));
        // 10 > 9 as numbers, though "10" < "9" as text.
        assert!(m("attributes.n:[9 TO 100]", &t));
        assert!(m("attributes.s>alpha", &t));
        assert!(!m("attributes.missing>0", &t));
    }

    #[test]
    fn values_are_case_insensitive_and_quoted_values_literal() {
        let a = attrs(&[("loc", "Building 7"), ("star", "a*b")]);
        let t = thing("Sensor-1", None, &a, &[]);
        assert!(m("thingName:sensor-1", &t));
        assert!(m("attributes.loc:\"building 7\"", &t));
        assert!(!m("attributes.loc:\"building\"", &t));
        assert!(m("attributes.star:\"a*b\"", &t));
        assert!(!m("attributes.star:\"a*\"", &t));
        assert!(m("attributes.star:a\\*b", &t));
    }

    #[test]
    fn malformed_queries_are_refused() {
        for q in [
            "",
            "   ",
            "thingName:",
            "thingName:(a",
            "thingName:a)",
            "(thingName:a",
            "attributes.x:[1 TO 2",
            "attributes.x:[1 2]",
            "attributes.x:[1 TO]",
            "attributes.x>",
            "thingName:a AND",
            "OR thingName:a",
            "NOT",
            "thingName:\"open",
            "unknownField:x",
            "attributes.:x",
            "thingName:a@b",
            "thingName:a,b",
            "thingName:a/b",
            "thingName=a",
            "thingName:a\\",
        ] {
            assert!(parse(q).is_err(), "{q:?} should be refused");
        }
    }

    #[test]
    fn hostile_queries_are_bounded() {
        assert!(parse(&format!("thingName:{}", "a".repeat(MAX_QUERY_LEN))).is_err());
        let deep = format!("{}thingName:a{}", "(".repeat(MAX_NESTING + 1), ")".repeat(MAX_NESTING + 1));
        assert!(deep.len() <= MAX_QUERY_LEN);
        assert!(parse(&deep).is_err());
        let nots = format!("{}thingName:a", "NOT ".repeat(200));
        assert!(parse(&nots).is_err());
        let ok = format!("{}thingName:a{}", "(".repeat(MAX_NESTING - 1), ")".repeat(MAX_NESTING - 1));
        assert!(parse(&ok).is_ok());
        // A pathological glob stays fast.
        let a = attrs(&[]);
        let name = "a".repeat(128);
        let t = thing(&name, None, &a, &[]);
        assert!(!m(&format!("thingName:{}b", "*a".repeat(40)), &t));
    }
}
