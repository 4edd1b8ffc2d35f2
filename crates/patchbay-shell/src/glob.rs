//! Site-name globs, checked before use so that a typo is an error line, not a silent "matches
//! nothing".
//!
//! | syntax | matches |
//! |---|---|
//! | `*` | any run of characters, also none |
//! | `?` | one character |
//! | `[abc]`, `[a-z0-9]` | one character of the set or ranges |
//! | `[!a-z]` | one character not in the set |
//! | `\x` | `x` itself (`\*` is a star) |
//!
//! As in `patch::sites::glob`, a pattern containing `::` is matched against the full path
//! (`patchbay::subjects::leaf`), any other pattern against the short name (`leaf`).

use alloc::{string::String, vec::Vec};
use core::fmt;

/// Longest pattern accepted (the longest site name is far shorter).
pub const MAX_LEN: usize = 256;

/// Why a pattern is not a glob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GlobError {
    Empty,
    TooLong {
        len: usize,
    },
    /// `[` at byte offset `at` has no `]`.
    UnclosedClass {
        at: usize,
    },
    /// `[]` or `[!]` at `at`: a class of nothing.
    EmptyClass {
        at: usize,
    },
    /// A range whose end is before its start (`[z-a]`).
    BackwardRange {
        at: usize,
        from: char,
        to: char,
    },
    /// The pattern ends in a lone `\`.
    TrailingEscape,
    /// A control character, a space or a non-ASCII character: no site name has one.
    BadChar {
        at: usize,
        c: char,
    },
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlobError::Empty => write!(f, "empty pattern"),
            GlobError::TooLong { len } => {
                write!(f, "pattern of {len} characters (at most {MAX_LEN})")
            }
            GlobError::UnclosedClass { at } => {
                write!(f, "'[' at column {} has no closing ']'", at + 1)
            }
            GlobError::EmptyClass { at } => {
                write!(f, "the class at column {} is empty", at + 1)
            }
            GlobError::BackwardRange { at, from, to } => write!(
                f,
                "range {from}-{to} at column {} runs backwards (write {to}-{from})",
                at + 1
            ),
            GlobError::TrailingEscape => write!(f, "the pattern ends in a lone '\\'"),
            GlobError::BadChar { at, c } => write!(
                f,
                "character {:?} at column {} cannot occur in a site name",
                c,
                at + 1
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(u8),
    AnyOne,
    AnyRun,
    Class {
        negated: bool,
        ranges: Vec<(u8, u8)>,
    },
}

impl Token {
    /// Does this single-character token accept `c`? (`AnyRun` is handled by the matcher.)
    fn accepts(&self, c: u8) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::AnyOne | Token::AnyRun => true,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c)) != *negated
            }
        }
    }
}

/// A checked glob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    tokens: Vec<Token>,
    full_path: bool,
}

impl Glob {
    /// Check and compile `pattern`.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        if pattern.len() > MAX_LEN {
            return Err(GlobError::TooLong { len: pattern.len() });
        }
        if let Some((at, c)) = pattern.char_indices().find(|&(_, c)| !c.is_ascii_graphic()) {
            return Err(GlobError::BadChar { at, c });
        }
        let b = pattern.as_bytes();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'*' => {
                    // `**` is `*`.
                    if tokens.last() != Some(&Token::AnyRun) {
                        tokens.push(Token::AnyRun);
                    }
                    i += 1;
                }
                b'?' => {
                    tokens.push(Token::AnyOne);
                    i += 1;
                }
                b'\\' => {
                    let c = *b.get(i + 1).ok_or(GlobError::TrailingEscape)?;
                    tokens.push(Token::Literal(c));
                    i += 2;
                }
                b'[' => {
                    let (token, next) = class(b, i)?;
                    tokens.push(token);
                    i = next;
                }
                c => {
                    tokens.push(Token::Literal(c));
                    i += 1;
                }
            }
        }
        Ok(Glob {
            pattern: pattern.into(),
            tokens,
            full_path: pattern.contains("::"),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Does the site called `full_name` (e.g. `patchbay::subjects::leaf`) match?
    pub fn matches(&self, full_name: &str) -> bool {
        let name = if self.full_path {
            full_name
        } else {
            short_name(full_name)
        };
        self.matches_text(name.as_bytes())
    }

    /// Iterative matching with one backtrack point: the last `*` and where it resumed. Linear
    /// in practice, `O(len(text) * len(pattern))` at worst; never recursive.
    fn matches_text(&self, text: &[u8]) -> bool {
        let (mut t, mut p) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.tokens.get(p) {
                Some(Token::AnyRun) => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(tok) if tok.accepts(text[t]) => {
                    t += 1;
                    p += 1;
                }
                _ => match star {
                    // Let the last star swallow one more character and retry.
                    Some((sp, st)) => {
                        p = sp + 1;
                        t = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(|t| *t == Token::AnyRun)
    }

    /// The literal text before the first wildcard: what every match starts with.
    pub fn literal_prefix(&self) -> String {
        self.tokens
            .iter()
            .map_while(|t| match t {
                Token::Literal(c) => Some(*c as char),
                _ => None,
            })
            .collect()
    }
}

/// The last `::` segment of a path.
pub fn short_name(full: &str) -> &str {
    full.rsplit("::").next().unwrap_or(full)
}

/// Parse the class starting at `b[start] == b'['`; returns it and the index after its `]`.
fn class(b: &[u8], start: usize) -> Result<(Token, usize), GlobError> {
    let mut i = start + 1;
    let negated = b.get(i) == Some(&b'!');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        let c = *b.get(i).ok_or(GlobError::UnclosedClass { at: start })?;
        match c {
            b']' => {
                if ranges.is_empty() {
                    return Err(GlobError::EmptyClass { at: start });
                }
                return Ok((Token::Class { negated, ranges }, i + 1));
            }
            b'\\' => {
                let e = *b.get(i + 1).ok_or(GlobError::TrailingEscape)?;
                ranges.push((e, e));
                i += 2;
            }
            lo => {
                if b.get(i + 1) == Some(&b'-') && b.get(i + 2).is_some_and(|&h| h != b']') {
                    let hi = b[i + 2];
                    if hi < lo {
                        return Err(GlobError::BackwardRange {
                            at: i,
                            from: lo as char,
                            to: hi as char,
                        });
                    }
                    ranges.push((lo, hi));
                    i += 3;
                } else {
                    ranges.push((lo, lo));
                    i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn m(p: &str, name: &str) -> bool {
        Glob::new(p).unwrap().matches(name)
    }

    #[test]
    fn stars_and_questions() {
        assert!(m("*", "patchbay::subjects::leaf"));
        assert!(m("leaf", "patchbay::subjects::leaf"));
        assert!(!m("lea", "patchbay::subjects::leaf"));
        assert!(m("gen_00*", "patchbay::subjects::gen_0012"));
        assert!(!m("gen_00*", "patchbay::subjects::gen_0112"));
        assert!(m("gen_00?2", "x::gen_0012"));
        assert!(!m("gen_00?2", "x::gen_00123"));
        assert!(m("*_*_*", "a_b_c"));
        assert!(m("a**b", "ab"));
        assert!(m("*b*b*", "abab"));
        assert!(!m("*b*b*", "ab"));
    }

    #[test]
    fn full_path_with_double_colon() {
        assert!(m("patchbay::subjects::*", "patchbay::subjects::fib"));
        assert!(!m("subjects::*", "patchbay::subjects::fib"));
        assert!(m("*::fib", "patchbay::subjects::fib"));
        // Short-name patterns never see the path.
        assert!(!m("patchbay*", "patchbay::subjects::fib"));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(m("gen_000[0-3]", "gen_0002"));
        assert!(!m("gen_000[0-3]", "gen_0004"));
        assert!(m("gen_000[!0-3]", "gen_0004"));
        assert!(m("[fl]*", "fib") && m("[fl]*", "leaf") && !m("[fl]*", "args8"));
        assert!(m("a\\*", "a*") && !m("a\\*", "ab"));
        assert!(m("[\\]]", "]"));
        assert!(m("[a-]", "-"), "a trailing '-' is literal");
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert_eq!(Glob::new(""), Err(GlobError::Empty));
        assert_eq!(
            Glob::new("gen_[0-9"),
            Err(GlobError::UnclosedClass { at: 4 })
        );
        assert_eq!(Glob::new("x[]"), Err(GlobError::EmptyClass { at: 1 }));
        assert_eq!(Glob::new("x[!]"), Err(GlobError::EmptyClass { at: 1 }));
        assert_eq!(Glob::new("ab\\"), Err(GlobError::TrailingEscape));
        assert_eq!(
            Glob::new("[9-0]"),
            Err(GlobError::BackwardRange {
                at: 1,
                from: '9',
                to: '0'
            })
        );
        assert_eq!(Glob::new("a b"), Err(GlobError::BadChar { at: 1, c: ' ' }));
        assert_eq!(Glob::new("é"), Err(GlobError::BadChar { at: 0, c: 'é' }));
        let long = "a".repeat(MAX_LEN + 1);
        assert_eq!(
            Glob::new(&long),
            Err(GlobError::TooLong { len: MAX_LEN + 1 })
        );
        assert_eq!(
            GlobError::UnclosedClass { at: 4 }.to_string(),
            "'[' at column 5 has no closing ']'"
        );
    }

    #[test]
    fn literal_prefix_stops_at_the_first_wildcard() {
        assert_eq!(Glob::new("gen_00*").unwrap().literal_prefix(), "gen_00");
        assert_eq!(Glob::new("*x").unwrap().literal_prefix(), "");
        assert_eq!(Glob::new("a\\*b?").unwrap().literal_prefix(), "a*b");
    }
}
