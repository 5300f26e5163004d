//! One pass over a metadata document that checks the strict rules of [`super::parse_strict`]
//! and writes the canonical JSON of its `signed` value, with no tree in between.
//!
//! This is the fast path of [`crate::Metadata::from_bytes`]. It answers only "strict, and
//! here are the canonical bytes of `signed`" or "no": on "no" the caller runs the full
//! parser, which finds the same fault and reports it with its path. So this module carries
//! no error detail, and a fault it reports where the full parser would not costs time,
//! never correctness. The reverse would be a hole: every document it accepts must be one
//! [`super::parse_strict`] accepts, with the canonical bytes [`super::to_canonical`] writes.
//! The property tests at the end hold it to that.
//!
//! The rules, as serde_json and the strict visitor apply them:
//! * JSON per RFC 8259: whitespace is space, tab, line feed and carriage return; no
//!   trailing data; strings are UTF-8 with no raw control characters and valid escapes
//!   (`\uXXXX` surrogates only in pairs);
//! * numbers are integers that fit `i64` or `u64` (no fraction, no exponent, no `-0`, no
//!   leading zeros);
//! * no object has the same key twice (keys compared after unescaping);
//! * at most 127 nested arrays and objects (serde_json's recursion limit).
//!
//! Canonical form (securesystemslib's `encode_canonical`): keys sorted by code point, no
//! whitespace, strings escaping only `"` and `\` and holding every other character as raw
//! UTF-8. Objects whose keys arrive sorted (python-tuf and this crate write them so) are
//! written as they are read; an object whose keys do not is sorted when it closes.

use std::borrow::Cow;
use std::cmp::Ordering;

/// The deepest nesting of arrays and objects serde_json accepts.
const MAX_DEPTH: usize = 127;

/// The document is not strict JSON, or not an object with a `signed` member. Why is for
/// the full parser to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotStrict;

/// Why a scan stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The document breaks a rule.
    NotStrict,
    /// A check-only scan found something canonical JSON writes differently (whitespace,
    /// an escape it writes raw, keys out of order): the canonical bytes must be written.
    Rewrite,
}

type Scan<T = ()> = Result<T, Stop>;

/// Checks the whole document strictly and returns the canonical JSON of its top-level
/// `signed` value.
///
/// A document written in canonical layout (python-tuf's compact files of ASCII text, and
/// ours) holds the canonical bytes of `signed` as they are: one check-only pass proves it
/// and they are borrowed. Any other layout takes a second pass that writes them.
pub(crate) fn canonical_signed(bytes: &[u8]) -> Result<Cow<'_, [u8]>, NotStrict> {
    match scan_envelope::<false>(bytes) {
        Ok(SignedValue::InInput(start, end)) => {
            bytes.get(start..end).map(Cow::Borrowed).ok_or(NotStrict)
        }
        Ok(SignedValue::Written(canonical)) => Ok(Cow::Owned(canonical)),
        Err(Stop::NotStrict) => Err(NotStrict),
        Err(Stop::Rewrite) => match scan_envelope::<true>(bytes) {
            Ok(SignedValue::Written(canonical)) => Ok(Cow::Owned(canonical)),
            _ => Err(NotStrict),
        },
    }
}

/// Where the canonical bytes of `signed` are.
enum SignedValue {
    /// `bytes[start..end]`: the text is already canonical (check-only scan).
    InInput(usize, usize),
    /// Written by the scan.
    Written(Vec<u8>),
}

/// Scans the envelope: an object whose members are checked, and whose `signed` value is
/// checked to be canonical as it is (`WRITE` false) or written canonically (`WRITE` true).
fn scan_envelope<const WRITE: bool>(bytes: &[u8]) -> Scan<SignedValue> {
    let mut scanner = Scanner::<WRITE> { bytes, pos: 0 };
    scanner.skip_whitespace();
    scanner.expect(b'{')?;
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut signed = None;
    // The canonical form of the other members, which nothing needs.
    let mut scratch = Vec::new();
    loop {
        scanner.skip_whitespace();
        // Keys are compared as text: decode this one in a writing scanner of its own.
        let key_start = scanner.pos;
        let mut key_scanner = Scanner::<true> {
            bytes,
            pos: key_start,
        };
        let mut quoted = Vec::new();
        key_scanner.string(&mut quoted)?;
        scanner.pos = key_scanner.pos;
        let key = unescape_canonical_string(&quoted).into_owned();
        scanner.skip_whitespace();
        scanner.expect(b':')?;
        if key == b"signed" && signed.is_none() {
            scanner.skip_whitespace();
            let start = scanner.pos;
            if WRITE {
                // Canonical bytes are never longer than the text they come from.
                let mut out = Vec::with_capacity(bytes.len().saturating_sub(start));
                scanner.value(&mut out, 1)?;
                out.shrink_to_fit();
                signed = Some(SignedValue::Written(out));
            } else {
                scanner.value(&mut scratch, 1)?;
                signed = Some(SignedValue::InInput(start, scanner.pos));
            }
        } else {
            // Checked in full, written to scratch: its layout does not matter.
            scratch.clear();
            let mut member_scanner = Scanner::<true> {
                bytes,
                pos: scanner.pos,
            };
            member_scanner.value(&mut scratch, 1)?;
            scanner.pos = member_scanner.pos;
        }
        keys.push(key);
        scanner.skip_whitespace();
        match scanner.next_byte()? {
            b',' => {}
            b'}' => break,
            _ => return Err(Stop::NotStrict),
        }
    }
    scanner.skip_whitespace();
    if scanner.pos != bytes.len() {
        return Err(Stop::NotStrict);
    }
    keys.sort_unstable();
    if keys.windows(2).any(|pair| pair.first() == pair.get(1)) {
        return Err(Stop::NotStrict);
    }
    signed.ok_or(Stop::NotStrict)
}

/// A position in the document being checked. With `WRITE`, every value is written
/// canonically to the output given; without, nothing is written and anything canonical
/// JSON would write differently stops the scan with [`Stop::Rewrite`].
struct Scanner<'a, const WRITE: bool> {
    bytes: &'a [u8],
    pos: usize,
}

impl<const WRITE: bool> Scanner<'_, WRITE> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next_byte(&mut self) -> Scan<u8> {
        let byte = self.peek().ok_or(Stop::NotStrict)?;
        self.pos += 1;
        Ok(byte)
    }

    fn expect(&mut self, wanted: u8) -> Scan {
        if self.next_byte()? == wanted {
            Ok(())
        } else {
            Err(Stop::NotStrict)
        }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Whitespace inside a value: skipped when writing, a reason to write otherwise.
    fn skip_inner_whitespace(&mut self) -> Scan {
        if let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            if !WRITE {
                return Err(Stop::Rewrite);
            }
            self.skip_whitespace();
        }
        Ok(())
    }

    fn push(out: &mut Vec<u8>, byte: u8) {
        if WRITE {
            out.push(byte);
        }
    }

    fn extend(out: &mut Vec<u8>, bytes: &[u8]) {
        if WRITE {
            out.extend_from_slice(bytes);
        }
    }

    /// One value, written canonically to `out`. `depth` is the number of arrays and
    /// objects around it.
    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Scan {
        self.skip_inner_whitespace()?;
        match self.peek().ok_or(Stop::NotStrict)? {
            b'{' => self.object(out, depth + 1),
            b'[' => self.array(out, depth + 1),
            b'"' => self.string(out),
            b't' => self.literal(b"true", out),
            b'f' => self.literal(b"false", out),
            b'n' => self.literal(b"null", out),
            b'-' | b'0'..=b'9' => self.integer(out),
            _ => Err(Stop::NotStrict),
        }
    }

    fn literal(&mut self, word: &[u8], out: &mut Vec<u8>) -> Scan {
        let end = self.pos.checked_add(word.len()).ok_or(Stop::NotStrict)?;
        if self.bytes.get(self.pos..end) != Some(word) {
            return Err(Stop::NotStrict);
        }
        self.pos = end;
        Self::extend(out, word);
        Ok(())
    }

    /// An integer within `i64` or `u64`, copied as it is (with no leading zeros and no
    /// `-0` allowed, the text is already the canonical form).
    fn integer(&mut self, out: &mut Vec<u8>) -> Scan {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let digits_start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        let digits = self
            .bytes
            .get(digits_start..self.pos)
            .ok_or(Stop::NotStrict)?;
        match digits {
            [] => return Err(Stop::NotStrict),
            // A leading zero, or `-0` (serde_json reads it as a float).
            [b'0', _, ..] => return Err(Stop::NotStrict),
            [b'0'] if negative => return Err(Stop::NotStrict),
            _ => {}
        }
        // A fraction or an exponent makes it a float.
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return Err(Stop::NotStrict);
        }
        let mut magnitude: u64 = 0;
        for digit in digits {
            magnitude = magnitude
                .checked_mul(10)
                .and_then(|m| m.checked_add(u64::from(digit - b'0')))
                .ok_or(Stop::NotStrict)?;
        }
        if negative && magnitude > i64::MIN.unsigned_abs() {
            return Err(Stop::NotStrict);
        }
        Self::extend(out, self.bytes.get(start..self.pos).ok_or(Stop::NotStrict)?);
        Ok(())
    }

    /// A string, written with only `"` and `\` escaped.
    fn string(&mut self, out: &mut Vec<u8>) -> Scan {
        self.expect(b'"')?;
        Self::push(out, b'"');
        loop {
            // The run of bytes that are copied as they are.
            let run_start = self.pos;
            let rest = self.bytes.get(run_start..).unwrap_or_default();
            let run_len = memchr::memchr2(b'"', b'\\', rest).ok_or(Stop::NotStrict)?;
            let run = rest.get(..run_len).ok_or(Stop::NotStrict)?;
            // No raw control characters; UTF-8 (a run ends at an ASCII byte, so it never
            // splits a UTF-8 sequence).
            if run.iter().any(|&byte| byte < 0x20) || std::str::from_utf8(run).is_err() {
                return Err(Stop::NotStrict);
            }
            self.pos += run_len;
            Self::extend(out, run);
            match self.next_byte()? {
                b'"' => {
                    Self::push(out, b'"');
                    return Ok(());
                }
                _ => self.escape(out)?,
            }
        }
    }

    /// The escape after a `\`, decoded and written canonically.
    fn escape(&mut self, out: &mut Vec<u8>) -> Scan {
        let decoded = match self.next_byte()? {
            b'"' => '"',
            b'\\' => '\\',
            _ if !WRITE => return Err(Stop::Rewrite),
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                // A high surrogate must be followed by the escape of a low one.
                let second = if (0xD800..=0xDBFF).contains(&first) {
                    self.expect(b'\\')?;
                    self.expect(b'u')?;
                    Some(self.hex4()?)
                } else {
                    None
                };
                // A lone or unpaired surrogate is an error, as serde_json makes it.
                char::decode_utf16(std::iter::once(first).chain(second))
                    .next()
                    .and_then(Result::ok)
                    .ok_or(Stop::NotStrict)?
            }
            _ => return Err(Stop::NotStrict),
        };
        if decoded == '"' || decoded == '\\' {
            Self::push(out, b'\\');
        }
        let mut buf = [0u8; 4];
        Self::extend(out, decoded.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    /// The four hex digits of a `\\u` escape, as a UTF-16 code unit.
    fn hex4(&mut self) -> Scan<u16> {
        let mut unit: u32 = 0;
        for _ in 0..4 {
            let digit = char::from(self.next_byte()?)
                .to_digit(16)
                .ok_or(Stop::NotStrict)?;
            unit = unit * 16 + digit;
        }
        u16::try_from(unit).map_err(|_| Stop::NotStrict)
    }

    fn array(&mut self, out: &mut Vec<u8>, depth: usize) -> Scan {
        if depth > MAX_DEPTH {
            return Err(Stop::NotStrict);
        }
        self.expect(b'[')?;
        Self::push(out, b'[');
        self.skip_inner_whitespace()?;
        if self.peek() == Some(b']') {
            self.pos += 1;
            Self::push(out, b']');
            return Ok(());
        }
        loop {
            self.value(out, depth)?;
            self.skip_inner_whitespace()?;
            match self.next_byte()? {
                b',' => Self::push(out, b','),
                b']' => {
                    Self::push(out, b']');
                    return Ok(());
                }
                _ => return Err(Stop::NotStrict),
            }
        }
    }

    fn object(&mut self, out: &mut Vec<u8>, depth: usize) -> Scan {
        if depth > MAX_DEPTH {
            return Err(Stop::NotStrict);
        }
        self.expect(b'{')?;
        let object_start = out.len();
        Self::push(out, b'{');
        self.skip_inner_whitespace()?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            Self::push(out, b'}');
            return Ok(());
        }
        // The previous key, as its range of the output when writing and of the input when
        // not (the two are the same text then). Nothing before the current member is
        // rewritten while the member is read, so the range stays valid.
        let mut previous_key: Option<(usize, usize)> = None;
        let mut sorted = true;
        loop {
            self.skip_inner_whitespace()?;
            let key_start = if WRITE { out.len() } else { self.pos };
            self.string(out)?;
            let key = (key_start, if WRITE { out.len() } else { self.pos });
            if let (true, Some(previous)) = (sorted, previous_key) {
                let text = if WRITE { &out[..] } else { self.bytes };
                match compare_keys(text, previous, key) {
                    Ordering::Less => {}
                    Ordering::Equal => return Err(Stop::NotStrict),
                    Ordering::Greater if WRITE => sorted = false,
                    Ordering::Greater => return Err(Stop::Rewrite),
                }
            }
            previous_key = Some(key);
            self.skip_inner_whitespace()?;
            self.expect(b':')?;
            Self::push(out, b':');
            self.value(out, depth)?;
            self.skip_inner_whitespace()?;
            match self.next_byte()? {
                b',' => Self::push(out, b','),
                b'}' => break,
                _ => return Err(Stop::NotStrict),
            }
        }
        Self::push(out, b'}');
        if sorted {
            Ok(())
        } else {
            sort_members(out, object_start)
        }
    }
}

/// Orders two keys, given as ranges of canonical strings in `text`, by the code points of
/// their text.
fn compare_keys(text: &[u8], a: (usize, usize), b: (usize, usize)) -> Ordering {
    let key = |(start, end): (usize, usize)| {
        unescape_canonical_string(text.get(start..end).unwrap_or_default())
    };
    key(a).cmp(&key(b))
}

/// The text of a canonical string (quotes included): only `\"` and `\\` to undo.
fn unescape_canonical_string(quoted: &[u8]) -> Cow<'_, [u8]> {
    let inner = quoted
        .get(1..quoted.len().saturating_sub(1))
        .unwrap_or_default();
    if !inner.contains(&b'\\') {
        return Cow::Borrowed(inner);
    }
    let mut text = Vec::with_capacity(inner.len());
    let mut bytes = inner.iter();
    while let Some(&byte) = bytes.next() {
        if byte == b'\\' {
            if let Some(&escaped) = bytes.next() {
                text.push(escaped);
            }
        } else {
            text.push(byte);
        }
    }
    Cow::Owned(text)
}

/// Sorts the members of the canonical object that starts at `out[start]` and runs to the
/// end of `out`, refusing a key that appears twice.
fn sort_members(out: &mut Vec<u8>, start: usize) -> Scan {
    let object = out.get(start..).ok_or(Stop::NotStrict)?;
    let mut members: Vec<(Cow<'_, [u8]>, &[u8])> = Vec::new();
    // Past the `{`, members `"key":value`, each followed by `,` or the final `}`. (The
    // object was written with at least two members: it is sorted only when a key came
    // out of order.)
    let mut pos = 1;
    loop {
        let key_end = skip_canonical_string(object, pos)?;
        // From the `:`, which the value's scan steps over like any byte outside a string.
        let value_end = skip_canonical_value(object, key_end)?;
        let key = unescape_canonical_string(object.get(pos..key_end).ok_or(Stop::NotStrict)?);
        members.push((key, object.get(pos..value_end).ok_or(Stop::NotStrict)?));
        match object.get(value_end) {
            Some(b',') => pos = value_end + 1,
            _ => break,
        }
    }
    members.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if members.windows(2).any(|pair| match pair {
        [a, b] => a.0 == b.0,
        _ => false,
    }) {
        return Err(Stop::NotStrict);
    }
    let mut sorted = Vec::with_capacity(object.len());
    sorted.push(b'{');
    for (i, (_, member)) in members.iter().enumerate() {
        if i > 0 {
            sorted.push(b',');
        }
        sorted.extend_from_slice(member);
    }
    sorted.push(b'}');
    out.truncate(start);
    out.extend_from_slice(&sorted);
    Ok(())
}

/// The end (exclusive) of the canonical string starting at `text[pos]`.
fn skip_canonical_string(text: &[u8], pos: usize) -> Scan<usize> {
    let mut i = pos + 1;
    loop {
        match text.get(i).ok_or(Stop::NotStrict)? {
            b'"' => return Ok(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The end (exclusive) of the canonical value starting at `text[pos]`: the `,` or the
/// closing bracket of its parent that follows it.
fn skip_canonical_value(text: &[u8], pos: usize) -> Scan<usize> {
    let mut depth = 0usize;
    let mut i = pos;
    loop {
        match text.get(i).ok_or(Stop::NotStrict)? {
            b'"' => i = skip_canonical_string(text, i)?,
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' | b',' if depth == 0 => return Ok(i),
            b'}' | b']' => {
                depth -= 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{parse_strict, to_canonical};
    use proptest::prelude::*;

    /// What the full parser says: the canonical `signed`, or that the document is refused
    /// (or has no `signed` object member at the top).
    fn reference(doc: &[u8]) -> Option<Vec<u8>> {
        let value = parse_strict(doc, usize::MAX).ok()?;
        to_canonical(value.as_object()?.get("signed")?).ok()
    }

    fn check(doc: &str) {
        assert_eq!(
            canonical_signed(doc.as_bytes()).ok().map(Cow::into_owned),
            reference(doc.as_bytes()),
            "{doc}"
        );
    }

    #[test]
    fn agrees_with_the_full_parser_on_hand_picked_documents() {
        for doc in [
            r#"{"signed":{"b":1,"a":[true,null,-3],"é":{},"Z":""}}"#,
            r#"{"signed":1}"#,
            r#"{"signatures":[],"signed":{}}"#,
            r#"{ "signed" : { "a" : [ 1 , 2 ] } , "x" : null } "#,
            "{\"signed\":\"a\\\"b\\\\c\\n\\t\\u00e9\\ud83d\\ude00\\/\\u0000\"}",
            r#"{"signed":{"a\"":1,"a#":2,"a\\":3,"a":4}}"#,
            r#"{"signed":{"b":{"d":1,"c":2},"a":{"f":[{"h":1,"g":2}],"e":3}}}"#,
            r#"{"signed":[18446744073709551615,-9223372036854775808,0]}"#,
            // Refused, one rule each.
            r#"{"signed":18446744073709551616}"#,
            r#"{"signed":-9223372036854775809}"#,
            r#"{"signed":-0}"#,
            r#"{"signed":01}"#,
            r#"{"signed":1.0}"#,
            r#"{"signed":1e3}"#,
            r#"{"signed":-}"#,
            r#"{"signed":{"a":1,"a":2}}"#,
            r#"{"signed":{"b":1,"a":2,"b":3}}"#,
            r#"{"signed":{"\u0061":1,"a":2}}"#,
            r#"{"signed":1,"signed":1}"#,
            r#"{"signed":1,"x":1,"x":2}"#,
            r#"{"signed":1,"x":{"y":1,"y":2}}"#,
            r#"{"signed":[1,]}"#,
            r#"{"signed":{"a":1,}}"#,
            r#"{"signed":1} {}"#,
            r#"{"signed":"\ud800"}"#,
            r#"{"signed":"\udc00"}"#,
            r#"{"signed":"\ud800\u0041"}"#,
            r#"{"signed":"\x"}"#,
            "{\"signed\":\"\t\"}",
            r#"{"signed":tru}"#,
            r#"{"signed":nulll}"#,
            "\u{feff}{\"signed\":1}",
            r#"{"other":1}"#,
            r#"{}"#,
            r#"[]"#,
            "",
        ] {
            check(doc);
        }
        assert_eq!(canonical_signed(b"{\"signed\":\"\xff\"}"), Err(NotStrict));
        assert_eq!(reference(b"{\"signed\":\"\xff\"}"), None);
    }

    #[test]
    fn canonical_text_is_borrowed_and_anything_else_is_written() {
        let borrowed = [
            r#"{"signatures":[ ],"signed":{"a":"x\"y\\z","b":[1,{}],"é":null}}"#,
            r#" { "signed" : {"a":1} } "#,
        ];
        for doc in borrowed {
            assert!(
                matches!(canonical_signed(doc.as_bytes()), Ok(Cow::Borrowed(_))),
                "{doc}"
            );
            check(doc);
        }
        let written = [
            r#"{"signed":{"a": 1}}"#,
            r#"{"signed":{"b":1,"a":2}}"#,
            r#"{"signed":"\u00e9"}"#,
            r#"{"signed":"\/"}"#,
            r#"{"signed":"\n"}"#,
            r#"{"signed":[1 ,2]}"#,
        ];
        for doc in written {
            assert!(
                matches!(canonical_signed(doc.as_bytes()), Ok(Cow::Owned(_))),
                "{doc}"
            );
            check(doc);
        }
    }

    #[test]
    fn nesting_stops_where_serde_json_stops() {
        for depth in [125, 126, 127, 128] {
            // The envelope is one level; `signed` holds the rest.
            let inner = depth - 1;
            let doc = format!("{{\"signed\":{}{}}}", "[".repeat(inner), "]".repeat(inner));
            check(&doc);
        }
        for depth in [126, 127, 128] {
            let inner = depth - 1;
            let doc = format!(
                "{{\"signed\":{}1{}}}",
                "{\"a\":".repeat(inner),
                "}".repeat(inner)
            );
            check(&doc);
        }
        // Nesting far past the limit is refused, not a stack overflow, in either layout.
        for deep in [
            format!("{{\"signed\":{}", "[".repeat(100_000)),
            format!("{{\"signed\":{}", "{\"a\":".repeat(100_000)),
            format!("{{\"signed\":{}", "{\"a\": [".repeat(50_000)),
        ] {
            assert_eq!(canonical_signed(deep.as_bytes()), Err(NotStrict));
        }
    }

    /// Arbitrary JSON text: values of every kind, keys drawn from a small set (so that
    /// duplicates and unsorted objects are common), escapes and whitespace.
    fn json_text() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just("\\u0061".to_owned()),
            Just("\\\"".to_owned()),
            Just("\\\\".to_owned()),
            Just("é".to_owned()),
            Just("\\u00e9".to_owned()),
            Just("signed".to_owned()),
            "[a-c]{0,3}",
        ];
        let valid_leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            Just("18446744073709551615".to_owned()),
            Just("-9223372036854775808".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            "\"([a-z é\\\\\"/]|\\\\[nrtbf/\\\\\"]|\\\\u00[0-7][0-9a-f]|\\\\ud83d\\\\ude00)*\"",
        ];
        let invalid_leaf = prop_oneof![
            Just("-0".to_owned()),
            Just("1.5".to_owned()),
            Just("007".to_owned()),
            Just("18446744073709551616".to_owned()),
            Just("-9223372036854775809".to_owned()),
            Just("\"\\ud800\"".to_owned()),
            Just("\"\t\"".to_owned()),
        ];
        let leaf = prop_oneof![20 => valid_leaf, 1 => invalid_leaf];
        let space = prop_oneof![Just(""), Just(" "), Just("\n\t ")];
        leaf.prop_recursive(4, 40, 6, move |inner| {
            prop_oneof![
                prop::collection::vec((inner.clone(), space.clone()), 0..5).prop_map(|items| {
                    let body: Vec<String> = items
                        .into_iter()
                        .map(|(value, space)| format!("{space}{value}{space}"))
                        .collect();
                    format!("[{}]", body.join(","))
                }),
                prop::collection::vec((key.clone(), inner, space.clone()), 0..5).prop_map(
                    |members| {
                        let body: Vec<String> = members
                            .into_iter()
                            .map(|(key, value, space)| format!("{space}\"{key}\"{space}:{value}"))
                            .collect();
                        format!("{{{}}}", body.join(","))
                    }
                ),
            ]
        })
    }

    /// The generated documents are not mostly refusals: a property that only ever saw
    /// refused documents would prove little.
    #[test]
    fn the_generated_documents_are_often_accepted_and_often_unsorted() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = json_text();
        let (mut accepted, mut reordered) = (0, 0);
        for _ in 0..2000 {
            let signed = strategy.new_tree(&mut runner).expect("tree").current();
            let doc = format!("{{\"signed\":{signed}}}");
            if let Some(canonical) = reference(doc.as_bytes()) {
                accepted += 1;
                let compact: String = signed.split_whitespace().collect();
                if canonical != compact.as_bytes() {
                    reordered += 1;
                }
            }
        }
        eprintln!("{accepted} of 2000 accepted, {reordered} rewritten");
        assert!(accepted > 600, "{accepted} of 2000 accepted");
        assert!(reordered > 200, "{reordered} of 2000 rewritten");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn accepts_exactly_what_the_full_parser_accepts(
            signed in json_text(),
            other in json_text(),
            order in 0..3u8,
        ) {
            let doc = match order {
                0 => format!("{{\"signed\":{signed}}}"),
                1 => format!("{{\"signatures\":{other},\"signed\":{signed}}}"),
                _ => format!("{{\"x\":{other}, \"signed\" : {signed} }}"),
            };
            prop_assert_eq!(
                canonical_signed(doc.as_bytes()).ok().map(Cow::into_owned),
                reference(doc.as_bytes()),
                "{}",
                doc
            );
        }
    }
}
