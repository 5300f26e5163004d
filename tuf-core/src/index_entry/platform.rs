//! Dependency targets in the one spelling cargo displays them in.
//!
//! Cargo parses a dependency's `target` into a `Platform` (the crate cargo-platform,
//! `src/lib.rs` and `src/cfg.rs`): `cfg(EXPR)` with `EXPR` one of `all(...)`, `any(...)`,
//! `not(...)`, `name`, `key = "value"`; tokens separated by spaces, a trailing comma
//! allowed in `all` and `any`, strings without escapes, raw identifiers `r#name`. It
//! displays one as `cfg(all(unix, target_os = "linux"))`: `", "` between items, `" = "`
//! in pairs. The public registry wrote that display until October 2023, and writes the
//! `[target]` key as written since then, so one platform reaches the index spelled in
//! more than one way.

/// Deepest nesting of `all`, `any` and `not` read; anything deeper is left as written
/// (cargo-platform has no limit, but a line has at most [`super::MAX_LINE_LEN`] bytes,
/// and this parser recurses).
const MAX_DEPTH: usize = 32;

/// `target` as cargo displays it: a `cfg(...)` expression that parses rewritten in
/// cargo's spelling; a target triple, or anything that does not parse, as written.
pub(super) fn normalized_target(target: &str) -> String {
    target
        .strip_prefix("cfg(")
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|inner| {
            let mut parser = Parser {
                tokens: Tokens { rest: inner },
            };
            let expr = parser.expr(0)?;
            parser.tokens.at_end().then_some(expr)
        })
        .map_or_else(
            || target.to_owned(),
            |expr| format!("cfg({})", expr.display()),
        )
}

enum Expr<'a> {
    Not(Box<Expr<'a>>),
    All(Vec<Expr<'a>>),
    Any(Vec<Expr<'a>>),
    Name(Ident<'a>),
    Pair(Ident<'a>, &'a str),
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Ident<'a> {
    name: &'a str,
    raw: bool,
}

impl Ident<'_> {
    fn display(self) -> String {
        if self.raw {
            format!("r#{}", self.name)
        } else {
            self.name.to_owned()
        }
    }
}

impl Expr<'_> {
    fn display(&self) -> String {
        let list = |items: &[Expr<'_>]| {
            items
                .iter()
                .map(Expr::display)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Expr::Not(inner) => format!("not({})", inner.display()),
            Expr::All(items) => format!("all({})", list(items)),
            Expr::Any(items) => format!("any({})", list(items)),
            Expr::Name(name) => name.display(),
            Expr::Pair(key, value) => format!("{} = \"{value}\"", key.display()),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    LeftParen,
    RightParen,
    Comma,
    Equals,
    Str(&'a str),
    Ident(Ident<'a>),
}

#[derive(Clone, Copy)]
struct Tokens<'a> {
    rest: &'a str,
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_ident_rest(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

impl<'a> Tokens<'a> {
    /// The next token; `None` at the end or on a character cargo refuses.
    fn next(&mut self) -> Option<Token<'a>> {
        let rest = self.rest.trim_start_matches(' ');
        let first = rest.chars().next()?;
        let (token, len) = match first {
            '(' => (Token::LeftParen, 1),
            ')' => (Token::RightParen, 1),
            ',' => (Token::Comma, 1),
            '=' => (Token::Equals, 1),
            '"' => {
                let body = rest.get(1..)?;
                let end = body.find('"')?;
                (Token::Str(body.get(..end)?), end + 2)
            }
            c if is_ident_start(c) => {
                let (raw, start) = match rest.strip_prefix("r#") {
                    Some(after) if after.chars().next().is_some_and(is_ident_start) => (true, 2),
                    Some(_) => return None,
                    None => (false, 0),
                };
                let body = rest.get(start..)?;
                let len = body.find(|c: char| !is_ident_rest(c)).unwrap_or(body.len());
                let name = body.get(..len)?;
                (Token::Ident(Ident { name, raw }), start + len)
            }
            _ => return None,
        };
        self.rest = rest.get(len..)?;
        Some(token)
    }

    fn peek(&self) -> Option<Token<'a>> {
        let mut ahead = *self;
        ahead.next()
    }

    fn at_end(&self) -> bool {
        self.rest.trim_start_matches(' ').is_empty()
    }
}

struct Parser<'a> {
    tokens: Tokens<'a>,
}

impl<'a> Parser<'a> {
    fn eat(&mut self, token: Token<'a>) -> Option<()> {
        (self.tokens.next()? == token).then_some(())
    }

    fn eat_if(&mut self, token: Token<'a>) -> bool {
        if self.tokens.peek() == Some(token) {
            self.tokens.next();
            true
        } else {
            false
        }
    }

    fn expr(&mut self, depth: usize) -> Option<Expr<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.tokens.peek()? {
            Token::Ident(Ident {
                name: op @ ("all" | "any"),
                raw: false,
            }) => {
                self.tokens.next();
                self.eat(Token::LeftParen)?;
                let mut items = Vec::new();
                while !self.eat_if(Token::RightParen) {
                    items.push(self.expr(depth + 1)?);
                    if !self.eat_if(Token::Comma) {
                        self.eat(Token::RightParen)?;
                        break;
                    }
                }
                Some(if op == "all" {
                    Expr::All(items)
                } else {
                    Expr::Any(items)
                })
            }
            Token::Ident(Ident {
                name: "not",
                raw: false,
            }) => {
                self.tokens.next();
                self.eat(Token::LeftParen)?;
                let inner = self.expr(depth + 1)?;
                self.eat(Token::RightParen)?;
                Some(Expr::Not(Box::new(inner)))
            }
            _ => {
                let Token::Ident(name) = self.tokens.next()? else {
                    return None;
                };
                if self.eat_if(Token::Equals) {
                    match self.tokens.next()? {
                        Token::Str(value) => Some(Expr::Pair(name, value)),
                        _ => None,
                    }
                } else {
                    Some(Expr::Name(name))
                }
            }
        }
    }
}
