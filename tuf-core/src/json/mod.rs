//! Strict JSON parsing and the two serialisations TUF needs.
//!
//! * [`parse_strict`] reads untrusted bytes into a [`Value`] tree, refusing what a TUF
//!   document must never contain: duplicate object keys (which different parsers resolve
//!   differently, so a signature could cover one reading and a client act on another),
//!   numbers that are not 64-bit integers, trailing data, and documents over a size cap.
//! * [`write_canonical`] produces the OLPC canonical form exactly as securesystemslib's
//!   `encode_canonical` does: object keys sorted by code point, no whitespace, only `"` and
//!   `\` escaped, every other character (control characters and non-ASCII included) written
//!   as raw UTF-8, integers only. These are the bytes every signature covers.
//! * [`write_python_json`] produces the bytes python-tuf's `JSONSerializer` writes
//!   (`json.dumps(sort_keys=True)`, ASCII-only, compact as `Metadata.to_file()` writes or
//!   indented), so files we write are byte-identical to the reference implementation's.

pub(crate) mod strict_scan;

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
pub use serde_json::{Map, Number, Value};

/// Where in a document something was found, in `a.b[3].c` form (empty for the root).
pub type JsonPath = String;

/// Why a document could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The document is larger than the caller allows (the TUF "endless data" defence).
    #[error("document is {len} bytes, over the limit of {max} bytes")]
    TooLarge {
        /// Size of the document.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// An object has the same key twice.
    #[error("duplicate key {key:?} in the object at `{path}`")]
    DuplicateKey {
        /// Path of the object holding the duplicate.
        path: JsonPath,
        /// The repeated key.
        key: String,
    },
    /// A number is a float, or an integer outside the signed/unsigned 64-bit range.
    #[error(
        "number at `{path}` is not an integer within 64 bits (canonical JSON allows integers only)"
    )]
    NotAnInteger {
        /// Path of the number.
        path: JsonPath,
    },
    /// The bytes are not valid JSON (or not UTF-8, or have trailing data).
    #[error("invalid JSON at `{path}`: {message}")]
    Syntax {
        /// Path of the value being read when the error was found.
        path: JsonPath,
        /// The parser's description, with line and column.
        message: String,
    },
}

/// Why a value cannot be written in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CanonicalError {
    /// Canonical JSON has no representation for non-integer numbers.
    #[error("canonical JSON cannot represent the non-integer number {0}")]
    Float(String),
}

/// What went wrong while parsing, recorded by the visitor where serde's error type would
/// only carry a string.
#[derive(Debug)]
enum StrictViolation {
    DuplicateKey(String),
    NotAnInteger,
}

/// Parses `bytes` as one JSON document, strictly (see the module documentation).
///
/// `max_len` bounds the input before any parsing happens. Nesting depth is bounded by
/// serde_json's recursion limit (128), so hostile input cannot exhaust the stack.
pub fn parse_strict(bytes: &[u8], max_len: usize) -> Result<Value, JsonError> {
    if bytes.len() > max_len {
        return Err(JsonError::TooLarge {
            len: bytes.len(),
            max: max_len,
        });
    }
    let violation = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut track = serde_path_to_error::Track::new();
    let result = StrictSeed {
        violation: &violation,
    }
    .deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track));
    let value = match result {
        Ok(value) => value,
        Err(err) => {
            let path = display_path(&track.path());
            return Err(match violation.take() {
                Some(StrictViolation::DuplicateKey(key)) => JsonError::DuplicateKey { path, key },
                Some(StrictViolation::NotAnInteger) => JsonError::NotAnInteger { path },
                None => JsonError::Syntax {
                    path,
                    message: err.to_string(),
                },
            });
        }
    };
    de.end().map_err(|err| JsonError::Syntax {
        path: String::new(),
        message: err.to_string(),
    })?;
    Ok(value)
}

/// Renders a serde_path_to_error path as `a.b[3].c`.
pub(crate) fn display_path(path: &serde_path_to_error::Path) -> JsonPath {
    let rendered = path.to_string();
    if rendered == "." {
        String::new()
    } else {
        rendered
    }
}

struct StrictSeed<'a> {
    violation: &'a Cell<Option<StrictViolation>>,
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, _v: f64) -> Result<Value, E> {
        // serde_json reports both fractional/exponent literals and integers beyond 64 bits
        // as f64; canonical JSON accepts neither.
        self.violation.set(Some(StrictViolation::NotAnInteger));
        Err(E::custom("number is not a 64-bit integer"))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    // serde_json's `deserialize_any` hands strings to `visit_str` (the default
    // `visit_string` forwards there too) and `null` to `visit_unit`; it never calls
    // `visit_none` or `visit_some`.
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(StrictSeed {
            violation: self.violation,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value_seed(StrictSeed {
                violation: self.violation,
            })?;
            match map.entry(key) {
                serde_json::map::Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                serde_json::map::Entry::Occupied(slot) => {
                    self.violation
                        .set(Some(StrictViolation::DuplicateKey(slot.key().clone())));
                    return Err(serde::de::Error::custom("duplicate object key"));
                }
            }
        }
        Ok(Value::Object(map))
    }
}

/// An object key read by a typed deserialiser: borrowed from the document when it has no
/// escapes, owned otherwise, so that matching field names allocates nothing.
pub(crate) enum FieldName<'de> {
    /// A key borrowed from the input.
    Borrowed(&'de str),
    /// A key that had to be unescaped (or came from a transient buffer).
    Owned(String),
}

impl FieldName<'_> {
    /// The key as an owned string, for a map of extension fields.
    pub(crate) fn into_string(self) -> String {
        match self {
            Self::Borrowed(name) => name.to_owned(),
            Self::Owned(name) => name,
        }
    }
}

impl std::ops::Deref for FieldName<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Self::Borrowed(name) => name,
            Self::Owned(name) => name,
        }
    }
}

impl<'de> serde::Deserialize<'de> for FieldName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldNameVisitor;
        impl<'de> Visitor<'de> for FieldNameVisitor {
            type Value = FieldName<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(FieldName::Borrowed(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(FieldName::Owned(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(FieldName::Owned(v))
            }
        }
        deserializer.deserialize_str(FieldNameVisitor)
    }
}

/// Returns the canonical JSON bytes of `value`.
pub fn to_canonical(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out)?;
    Ok(out)
}

/// Appends the canonical JSON form of `value` to `out` (see the module documentation).
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_integer(n, out)?,
        Value::String(s) => write_canonical_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in sorted_entries(map).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical_string(key, out);
                out.push(b':');
                write_canonical(item, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_integer(n: &Number, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    let mut buf = itoa::Buffer::new();
    if let Some(u) = n.as_u64() {
        out.extend_from_slice(buf.format(u).as_bytes());
    } else if let Some(i) = n.as_i64() {
        out.extend_from_slice(buf.format(i).as_bytes());
    } else {
        return Err(CanonicalError::Float(n.to_string()));
    }
    Ok(())
}

/// Writes `"s"` escaping only `"` and `\`, as securesystemslib does.
fn write_canonical_string(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut rest = bytes;
    while let Some(pos) = memchr::memchr2(b'"', b'\\', rest) {
        let (plain, tail) = rest.split_at(pos);
        out.extend_from_slice(plain);
        out.push(b'\\');
        // `tail` starts with the byte memchr found.
        out.extend_from_slice(tail.get(..1).unwrap_or_default());
        rest = tail.get(1..).unwrap_or_default();
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Iterates an object's entries in code point order of their keys.
///
/// serde_json's `Map` is a `BTreeMap` (UTF-8 byte order, which is code point order)
/// unless some crate in the build enables its `preserve_order` feature. Rather than trust
/// feature unification, this checks the order as it goes and sorts only when needed.
fn sorted_entries(map: &Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    let already_sorted = map
        .keys()
        .zip(map.keys().skip(1))
        .all(|(a, b)| a.as_bytes() < b.as_bytes());
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    if !already_sorted {
        entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    }
    entries.into_iter()
}

/// The two layouts of python-tuf's `JSONSerializer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PythonLayout {
    /// `compact=True`, what `Metadata.to_file()` writes: `separators=(",", ":")`.
    Compact,
    /// `compact=False`: `indent=1, separators=(",", ": ")`.
    Pretty,
}

/// Returns `value` as python-tuf's `JSONSerializer` writes it in the given layout.
pub fn to_python_json(value: &Value, layout: PythonLayout) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(512);
    write_python_json(value, layout, 0, &mut out)?;
    Ok(out)
}

/// Appends `value` as `json.dumps(value, sort_keys=True, ...)` formats it in Python, with
/// `ensure_ascii` on and no trailing newline; `level` is the current indentation depth.
pub fn write_python_json(
    value: &Value,
    layout: PythonLayout,
    level: usize,
    out: &mut Vec<u8>,
) -> Result<(), CanonicalError> {
    let pretty = layout == PythonLayout::Pretty;
    let newline = |level: usize, out: &mut Vec<u8>| {
        if pretty {
            out.push(b'\n');
            indent(level, out);
        }
    };
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => write_canonical(value, out)?,
        Value::String(s) => write_ascii_string(s, out),
        Value::Array(items) if items.is_empty() => out.extend_from_slice(b"[]"),
        Value::Object(map) if map.is_empty() => out.extend_from_slice(b"{}"),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(level + 1, out);
                write_python_json(item, layout, level + 1, out)?;
            }
            newline(level, out);
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in sorted_entries(map).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(level + 1, out);
                write_ascii_string(key, out);
                out.extend_from_slice(if pretty { b": " } else { b":" });
                write_python_json(item, layout, level + 1, out)?;
            }
            newline(level, out);
            out.push(b'}');
        }
    }
    Ok(())
}

fn indent(level: usize, out: &mut Vec<u8>) {
    out.resize(out.len() + level, b' ');
}

/// Python's `json.encoder.py_encode_basestring_ascii`.
fn write_ascii_string(s: &str, out: &mut Vec<u8>) {
    let push_u = |unit: u16, out: &mut Vec<u8>| {
        out.extend_from_slice(b"\\u");
        for shift in [12u16, 8, 4, 0] {
            let digit = char::from_digit(u32::from((unit >> shift) & 0xf), 16).unwrap_or('0');
            out.push(digit as u8);
        }
    };
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            ' '..='~' => out.push(c as u8),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    push_u(*unit, out);
                }
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        let value = parse_strict(text.as_bytes(), 1 << 20).expect("parses");
        String::from_utf8(to_canonical(&value).expect("canonical")).expect("utf8")
    }

    #[test]
    fn canonical_sorts_keys_by_code_point_and_strips_whitespace() {
        assert_eq!(
            canon(r#"{ "b": 1, "a": [true, null, -3], "é": {}, "Z": "" }"#),
            r#"{"Z":"","a":[true,null,-3],"b":1,"é":{}}"#
        );
    }

    #[test]
    fn canonical_escapes_only_quote_and_backslash() {
        assert_eq!(
            canon("{\"k\": \"a\\\"b\\\\c\\n\\t\\u00e9\\ud83d\\ude00\"}"),
            "{\"k\":\"a\\\"b\\\\c\n\t\u{e9}\u{1F600}\"}"
        );
    }

    #[test]
    fn rejects_duplicate_keys_with_their_path() {
        let err = parse_strict(br#"{"signed": {"roles": [{"a": 1, "a": 2}]}}"#, 1024)
            .expect_err("duplicate");
        assert_eq!(
            err,
            JsonError::DuplicateKey {
                path: "signed.roles[0]".into(),
                key: "a".into()
            }
        );
    }

    #[test]
    fn rejects_floats_and_overflow_with_their_path() {
        for doc in [
            r#"{"signed": {"version": 1.0}}"#,
            r#"{"signed": {"version": 1e3}}"#,
            r#"{"signed": {"version": 18446744073709551616}}"#,
            r#"{"signed": {"version": -9223372036854775809}}"#,
        ] {
            let err = parse_strict(doc.as_bytes(), 1024).expect_err(doc);
            assert_eq!(
                err,
                JsonError::NotAnInteger {
                    path: "signed.version".into()
                },
                "{doc}"
            );
        }
    }

    #[test]
    fn accepts_64_bit_extremes() {
        assert_eq!(
            canon(r#"[18446744073709551615, -9223372036854775808, 0]"#),
            "[18446744073709551615,-9223372036854775808,0]"
        );
    }

    #[test]
    fn rejects_oversize_trailing_data_and_bad_utf8() {
        assert!(matches!(
            parse_strict(b"[1,2,3]", 6),
            Err(JsonError::TooLarge { len: 7, max: 6 })
        ));
        assert!(matches!(
            parse_strict(b"{} {}", 100),
            Err(JsonError::Syntax { .. })
        ));
        assert!(matches!(
            parse_strict(b"\"\xff\"", 100),
            Err(JsonError::Syntax { .. })
        ));
        assert!(matches!(
            parse_strict(b"\"\\ud800\"", 100),
            Err(JsonError::Syntax { .. })
        ));
    }

    #[test]
    fn a_document_exactly_at_the_size_cap_is_read() {
        assert!(parse_strict(b"[1,2,3]", 7).is_ok());
    }

    #[test]
    fn field_names_borrow_when_they_can_and_refuse_what_is_not_a_string() {
        use serde::Deserialize;
        let mut de = serde_json::Deserializer::from_str(r#""plain""#);
        assert!(matches!(
            FieldName::deserialize(&mut de),
            Ok(FieldName::Borrowed("plain"))
        ));
        let mut de = serde_json::Deserializer::from_str(r#""esc\u0061ped""#);
        let name = FieldName::deserialize(&mut de).expect("a string");
        assert!(matches!(&name, FieldName::Owned(_)));
        assert_eq!(name.into_string(), "escaped");
        let err = FieldName::deserialize(Value::from(1))
            .err()
            .expect("not a string");
        assert!(err.to_string().contains("expected an object key"), "{err}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let doc = "[".repeat(100_000);
        assert!(matches!(
            parse_strict(doc.as_bytes(), 1 << 20),
            Err(JsonError::Syntax { .. })
        ));
    }

    #[test]
    fn python_pretty_matches_json_dumps() {
        // json.dumps({"b": [1, {}], "a": "é\u0001\"", "c": {"x": []}}, indent=1,
        //            separators=(",", ": "), sort_keys=True)
        let value = parse_strict(
            "{\"b\": [1, {}], \"a\": \"\u{e9}\\u0001\\\"\u{1F600}\", \"c\": {\"x\": []}}"
                .as_bytes(),
            1024,
        )
        .expect("parses");
        let pretty = to_python_json(&value, PythonLayout::Pretty).expect("ok");
        assert_eq!(
            String::from_utf8(pretty).expect("utf8"),
            "{\n \"a\": \"\\u00e9\\u0001\\\"\\ud83d\\ude00\",\n \"b\": [\n  1,\n  {}\n ],\n \"c\": {\n  \"x\": []\n }\n}"
        );
        let compact = to_python_json(&value, PythonLayout::Compact).expect("ok");
        assert_eq!(
            String::from_utf8(compact).expect("utf8"),
            "{\"a\":\"\\u00e9\\u0001\\\"\\ud83d\\ude00\",\"b\":[1,{}],\"c\":{\"x\":[]}}"
        );
    }

    #[test]
    fn python_pretty_indents_nested_arrays_and_objects_by_depth() {
        // json.dumps({"a": [{"b": 1, "c": [2, [3]]}], "d": {}}, indent=1,
        //            separators=(",", ": "), sort_keys=True)
        let value =
            parse_strict(br#"{"a": [{"b": 1, "c": [2, [3]]}], "d": {}}"#, 1024).expect("parses");
        let pretty = to_python_json(&value, PythonLayout::Pretty).expect("ok");
        assert_eq!(
            String::from_utf8(pretty).expect("utf8"),
            "{\n \"a\": [\n  {\n   \"b\": 1,\n   \"c\": [\n    2,\n    [\n     3\n    ]\n   ]\n  }\n ],\n \"d\": {}\n}"
        );
    }
}
