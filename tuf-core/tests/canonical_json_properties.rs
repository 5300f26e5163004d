//! Property tests of canonical JSON: output parses back to the same value, is stable
//! under re-serialisation, and sorts and escapes as the OLPC form requires.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use serde_json::{Map, Value};
use tuf_core::json::{parse_strict, to_canonical, to_python_json, PythonLayout};

const LIMIT: usize = 1 << 24;

/// Strings mixing ASCII, the two escaped characters, control characters, non-ASCII and
/// astral code points.
fn any_string() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::char::range('a', 'z'),
            2 => Just('"'),
            2 => Just('\\'),
            1 => prop::char::range('\u{0}', '\u{1f}'),
            1 => Just('\u{7f}'),
            2 => prop::char::range('\u{80}', '\u{7ff}'),
            2 => prop::char::range('\u{800}', '\u{d7ff}'),
            1 => prop::char::range('\u{10000}', '\u{10ffff}'),
        ],
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Strings as above without control characters: canonical JSON writes those raw, which
/// makes the output not JSON (an OLPC quirk securesystemslib shares).
fn json_safe_string() -> impl Strategy<Value = String> {
    any_string().prop_map(|s| s.chars().filter(|c| !c.is_control()).collect())
}

fn any_value(strings: BoxedStrategy<String>) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        strings.clone().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((strings.clone(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Checks that every object in `bytes` (canonical output without control characters)
/// lists its keys in strictly increasing code point order.
fn keys_sorted(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            let keys: Vec<&String> = map.keys().collect();
            keys.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes())
                && map.values().all(keys_sorted)
        }
        Value::Array(items) => items.iter().all(keys_sorted),
        _ => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn canonical_output_parses_back_to_the_same_value(value in any_value(json_safe_string().boxed())) {
        let canonical = to_canonical(&value).unwrap();
        let reparsed = parse_strict(&canonical, LIMIT).unwrap();
        prop_assert_eq!(&reparsed, &value);
        prop_assert_eq!(to_canonical(&reparsed).unwrap(), canonical.clone());
        prop_assert!(keys_sorted(&reparsed));
        // No insignificant whitespace: the only bytes outside strings are structure,
        // digits, `-` and the literals.
        let text = String::from_utf8(canonical).unwrap();
        let mut in_string = false;
        let mut escaped = false;
        for c in text.chars() {
            if in_string {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => in_string = false,
                    _ => {}
                }
            } else {
                prop_assert!(!c.is_whitespace(), "whitespace outside a string in {text}");
                in_string = c == '"';
            }
        }
    }

    #[test]
    fn canonical_form_is_stable_through_python_serialisation(value in any_value(any_string().boxed())) {
        // Any value, control characters included, survives the python-tuf file layouts,
        // and its canonical bytes do not change on the way.
        let canonical = to_canonical(&value).unwrap();
        for layout in [PythonLayout::Compact, PythonLayout::Pretty] {
            let written = to_python_json(&value, layout).unwrap();
            prop_assert!(written.is_ascii());
            let reparsed = parse_strict(&written, LIMIT).unwrap();
            prop_assert_eq!(&reparsed, &value);
            prop_assert_eq!(to_canonical(&reparsed).unwrap(), canonical.clone());
        }
    }

    #[test]
    fn only_quote_and_backslash_are_escaped(s in any_string()) {
        let canonical = to_canonical(&Value::String(s.clone())).unwrap();
        let expected = format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        prop_assert_eq!(canonical, expected.into_bytes());
    }

    #[test]
    fn parse_strict_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_strict(&bytes, LIMIT);
    }

    #[test]
    fn parse_strict_never_panics_on_mutated_json(
        value in any_value(json_safe_string().boxed()),
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = to_canonical(&value).unwrap();
        if !bytes.is_empty() {
            let i = position.index(bytes.len());
            bytes[i] = byte;
        }
        let _ = parse_strict(&bytes, LIMIT);
    }
}
