#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! tuf-core's canonical JSON is byte for byte securesystemslib's `encode_canonical`, the
//! form python-tuf signs, on a corpus of documents chosen to trip an implementation up:
//! unicode (astral plane, control characters, combining marks, no normalisation), the
//! two escapes `"` and `\`, nested empty objects and arrays, integers at the edges of
//! i64 and u64, keys whose order differs between UTF-16 code units and code points,
//! booleans and null. Floats, which neither accepts, are refused by both.
//!
//! The corpus is generated here, written to a file, and canonicalised by
//! `tests/python/encode_canonical.py` with the python-tuf venv's securesystemslib. Like
//! every interop test this fails, not skips, when that python is missing.

use serde_json::{json, Map, Value};
use tuf_core::json::to_canonical;
use tuf_crates_tests::{describe_output, python_tuf, run, workspace_root};

/// An object with `keys` in the order given (serde_json keeps them sorted anyway; the
/// canonical form must sort them itself either way).
fn object(keys: &[&str]) -> Value {
    let mut map = Map::new();
    for (i, key) in keys.iter().enumerate() {
        map.insert((*key).to_owned(), json!(i));
    }
    Value::Object(map)
}

fn corpus() -> Vec<Value> {
    let mut corpus = vec![
        // Scalars and empties.
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(""),
        json!({}),
        json!([]),
        json!({"": ""}),
        json!([[], {}, [[]], [{}], {"a": {}}, {"a": []}]),
        json!({"a": {"b": {"c": {"d": {}}}}, "e": [[[[]]]]}),
        // Integers at the edges.
        json!(-1),
        json!(i64::MIN),
        json!(i64::MAX),
        json!(u64::MAX),
        json!([i64::MIN, -0, 0, 1, 9_007_199_254_740_993_u64, u64::MAX]),
        json!({"version": 18_446_744_073_709_551_615_u64, "n": -9_223_372_036_854_775_808_i64}),
        // The two escapes, and backslash sequences that must stay literal.
        json!("\""),
        json!("\\"),
        json!("\\\""),
        json!("a\"b\\c"),
        json!("\\u0041 \\n \\t"),
        json!({"\"": "\\", "\\": "\""}),
        json!({"path/with \"quotes\" and \\backslashes\\": ["\"", "\\"]}),
        // Control characters go out raw: only `"` and `\` are escaped.
        json!("\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1b}\u{1f}\u{7f}"),
        json!({"\n": "\r\n", "\t": "\u{0}"}),
        json!("\u{80}\u{9f}\u{a0}\u{ad}"),
        // Unicode: BMP, astral plane, combining marks (no NFC normalisation), BOM,
        // line and paragraph separators, noncharacters.
        json!("é e\u{301} ñ ß 中文 עברית العربية"),
        json!("\u{1F600}\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467} \u{10FFFF} \u{10000}"),
        json!("\u{FEFF}\u{2028}\u{2029}\u{FFFE}\u{FFFF}\u{FFFD}"),
        json!({"é": 1, "e\u{301}": 2}),
        json!(["𝄞", {"𝄞": "𝄞"}]),
        // Booleans and null inside structures.
        json!({"t": true, "f": false, "n": null, "l": [true, false, null]}),
        // Keys whose order differs by UTF-16 code units and by code points: U+FFFF and
        // U+E000 sort before U+10000 and U+1F600 by code point, after them in UTF-16.
        object(&["\u{FFFF}", "\u{10000}"]),
        object(&["\u{E000}", "\u{1F600}", "\u{FF61}", "\u{20000}", "z"]),
        object(&["\u{1F600}a", "\u{1F600}", "\u{FFFD}", "\u{D7FF}"]),
        // Keys by byte order vs. case and length.
        object(&[
            "b", "B", "a", "A", "aa", "a ", "a\u{0}", "_", "~", "0", "10", "9",
        ]),
        // A shape like TUF metadata, with unrecognised fields.
        json!({
            "signatures": [{"keyid": "ab", "sig": "cd", "x-ext": {"\u{1F511}": []}}],
            "signed": {
                "_type": "targets",
                "expires": "2030-01-01T00:00:00Z",
                "spec_version": "1.0.31",
                "targets": {
                    "crates/ü/ü-1.0.0.crate": {
                        "custom": {"nested": {"": [{}, [], "\""]}},
                        "hashes": {"sha256": "00"},
                        "length": 18_446_744_073_709_551_615_u64
                    }
                },
                "version": 1
            }
        }),
    ];
    // Every character from U+0000 to U+00FF as a key and a value, and a sample across the
    // planes, in one object each.
    let mut latin = Map::new();
    for c in (0u32..=0xff).filter_map(char::from_u32) {
        latin.insert(c.to_string(), Value::String(format!("{c}{c}")));
    }
    corpus.push(Value::Object(latin));
    let mut planes = Map::new();
    for code in (0u32..=0x10FFFF).step_by(0x1111).filter_map(char::from_u32) {
        planes.insert(code.to_string(), json!(u32::from(code)));
    }
    corpus.push(Value::Object(planes));
    corpus
}

#[test]
fn canonical_json_equals_securesystemslib_encode_canonical() {
    let python = python_tuf();
    let mut corpus = corpus();
    // Documents both must refuse: floats anywhere.
    let floats = [json!(1.5), json!({"a": [0.1]}), json!([1e300])];
    corpus.extend(floats.iter().cloned());
    let dir = tempfile::tempdir().unwrap();
    let corpus_file = dir.path().join("corpus.json");
    std::fs::write(&corpus_file, serde_json::to_vec(&corpus).unwrap()).unwrap();
    let script = workspace_root()
        .join("tests")
        .join("python")
        .join("encode_canonical.py");
    let output = run(&python, [script.as_os_str(), corpus_file.as_os_str()]);
    assert!(output.status.success(), "{}", describe_output(&output));
    let theirs: Vec<Option<String>> = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", describe_output(&output)));
    assert_eq!(theirs.len(), corpus.len());

    let mut mismatches = Vec::new();
    for (i, (document, theirs)) in corpus.iter().zip(&theirs).enumerate() {
        let ours = to_canonical(document).ok().map(hex::encode);
        if ours != *theirs {
            let show = |hex: &Option<String>| match hex {
                Some(hex) => format!("{:?}", String::from_utf8_lossy(&hex::decode(hex).unwrap())),
                None => "(refused)".to_owned(),
            };
            mismatches.push(format!(
                "document {i} {document}:\n  ours:            {}\n  securesystemslib: {}",
                show(&ours),
                show(theirs)
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // The floats were refused by both, not accepted by both.
    let refused = theirs.iter().filter(|t| t.is_none()).count();
    assert_eq!(refused, floats.len());
}
