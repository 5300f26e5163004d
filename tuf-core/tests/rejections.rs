//! One named test per rejection: each malformed document is refused with a typed error
//! that names the place in the document.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use tuf_core::json::JsonError;
use tuf_core::metadata::{Metadata, MetadataError, Root, Snapshot, Targets, Timestamp};

/// A valid targets document (unsigned: parsing does not need signatures) with `signed`
/// given as the fields between the braces.
fn targets_doc(signed_fields: &str) -> String {
    format!(r#"{{"signatures":[],"signed":{{{signed_fields}}}}}"#)
}

const VALID: &str = r#""_type":"targets","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","targets":{"a.crate":{"length":3,"hashes":{"sha256":"ab"}}}"#;

fn parse(doc: &str) -> Result<Metadata<Targets>, MetadataError> {
    Metadata::<Targets>::from_bytes(doc.as_bytes())
}

#[test]
fn the_baseline_document_is_valid() {
    let md = parse(&targets_doc(VALID)).expect("valid");
    assert_eq!(md.signed().version, 1);
}

#[test]
fn duplicate_keys_are_refused_anywhere() {
    let cases = [
        (
            targets_doc(&format!(r#"{VALID},"version":2"#)),
            "signed",
            "version",
        ),
        (
            targets_doc(&VALID.replace(r#""length":3"#, r#""length":3,"length":4"#)),
            "signed.targets.a.crate",
            "length",
        ),
        (
            format!(r#"{{"signatures":[],"signatures":[],"signed":{{{VALID}}}}}"#),
            "",
            "signatures",
        ),
    ];
    for (doc, want_path, want_key) in cases {
        match parse(&doc) {
            Err(MetadataError::Json(JsonError::DuplicateKey { path, key })) => {
                assert_eq!((path.as_str(), key.as_str()), (want_path, want_key));
            }
            other => panic!("{doc}: {other:?}"),
        }
    }
}

#[test]
fn floats_are_refused() {
    for number in ["3.0", "3e0", "3E+0", "0.5"] {
        let doc = targets_doc(&VALID.replace(r#""length":3"#, &format!(r#""length":{number}"#)));
        assert_eq!(
            parse(&doc).err(),
            Some(MetadataError::Json(JsonError::NotAnInteger {
                path: "signed.targets.a.crate.length".into()
            })),
            "{number}"
        );
    }
}

#[test]
fn overflowing_numbers_are_refused() {
    let doc = targets_doc(&VALID.replace(r#""version":1"#, r#""version":18446744073709551616"#));
    assert_eq!(
        parse(&doc).err(),
        Some(MetadataError::Json(JsonError::NotAnInteger {
            path: "signed.version".into()
        }))
    );
}

#[test]
fn negative_numbers_are_refused_where_the_spec_wants_naturals() {
    for (from, to, want_path) in [
        (r#""version":1"#, r#""version":-1"#, "signed.version"),
        (
            r#""length":3"#,
            r#""length":-3"#,
            "signed.targets.a.crate.length",
        ),
    ] {
        match parse(&targets_doc(&VALID.replace(from, to))) {
            Err(MetadataError::Schema { path, message }) => {
                assert_eq!(path, want_path);
                assert!(message.contains("-"), "{message}");
            }
            other => panic!("{to}: {other:?}"),
        }
    }
}

#[test]
fn a_wrong_type_is_refused() {
    let doc = targets_doc(VALID);
    assert_eq!(
        Metadata::<Snapshot>::from_bytes(doc.as_bytes()).err(),
        Some(MetadataError::WrongType {
            path: "signed._type".into(),
            expected: "snapshot",
            found: "targets".into()
        })
    );
    assert!(matches!(
        Metadata::<Timestamp>::from_bytes(doc.as_bytes()),
        Err(MetadataError::WrongType { .. })
    ));
    assert!(matches!(
        Metadata::<Root>::from_bytes(doc.as_bytes()),
        Err(MetadataError::WrongType { .. })
    ));
}

#[test]
fn an_unsupported_spec_version_major_is_refused() {
    for version in ["2.0.0", "0.9", "1", "one"] {
        let doc = targets_doc(&VALID.replace("1.0.31", version));
        assert!(
            matches!(
                parse(&doc),
                Err(MetadataError::UnsupportedSpecVersion { ref path, ref found })
                    if path == "signed.spec_version" && found == version
            ),
            "{version}"
        );
    }
    assert!(parse(&targets_doc(&VALID.replace("1.0.31", "1.999"))).is_ok());
}

#[test]
fn malformed_dates_are_refused() {
    for date in [
        "2030-01-01T00:00:00",
        "2030-01-01T00:00:00.000Z",
        "2030-01-01 00:00:00Z",
        "2030-02-31T00:00:00Z",
        "2030-01-01T25:00:00Z",
        "tomorrow",
    ] {
        let doc = targets_doc(&VALID.replace("2030-01-01T00:00:00Z", date));
        assert_eq!(
            parse(&doc).err(),
            Some(MetadataError::InvalidDate {
                path: "signed.expires".into(),
                found: date.into()
            }),
            "{date}"
        );
    }
}

#[test]
fn documents_over_the_size_cap_are_refused_unread() {
    let doc = targets_doc(VALID);
    let limit = doc.len() - 1;
    assert_eq!(
        Metadata::<Targets>::from_bytes_with_limit(doc.as_bytes(), limit).err(),
        Some(MetadataError::Json(JsonError::TooLarge {
            len: doc.len(),
            max: limit
        }))
    );
    Metadata::<Targets>::from_bytes_with_limit(doc.as_bytes(), doc.len()).expect("at the cap");
}

#[test]
fn missing_and_mistyped_fields_name_their_place() {
    let doc = targets_doc(&VALID.replace(r#","hashes":{"sha256":"ab"}"#, ""));
    assert!(matches!(
        parse(&doc),
        Err(MetadataError::Schema { path, message })
            if path == "signed.targets.a.crate" && message.contains("hashes")
    ));
    let doc = targets_doc(&VALID.replace(r#""length":3"#, r#""length":"3""#));
    assert!(matches!(
        parse(&doc),
        Err(MetadataError::Schema { path, .. }) if path == "signed.targets.a.crate.length"
    ));
    assert!(matches!(
        Metadata::<Targets>::from_bytes(b"[]"),
        Err(MetadataError::Schema { .. })
    ));
}

#[test]
fn hashes_must_list_hex_digests() {
    let cases = [
        (
            r#""hashes":{}"#,
            "signed.targets.a.crate.hashes",
            "hashes must not be empty",
        ),
        (
            r#""hashes":{"sha256":""}"#,
            "signed.targets.a.crate.hashes.sha256",
            "digest must be a hex string",
        ),
        (
            r#""hashes":{"sha256":"xy"}"#,
            "signed.targets.a.crate.hashes.sha256",
            "digest must be a hex string",
        ),
        (
            r#""hashes":{"sha256":"ab","sha512":"ab cd"}"#,
            "signed.targets.a.crate.hashes.sha512",
            "digest must be a hex string",
        ),
    ];
    for (hashes, want_path, want_message) in cases {
        let doc = targets_doc(&VALID.replace(r#""hashes":{"sha256":"ab"}"#, hashes));
        match parse(&doc) {
            Err(MetadataError::Schema { path, message }) => {
                assert_eq!(
                    (path.as_str(), message.as_str()),
                    (want_path, want_message),
                    "{doc}"
                );
            }
            other => panic!("{doc}: {other:?}"),
        }
    }
    // Either case of hex is a digest; the case is kept as written.
    let doc = targets_doc(&VALID.replace(r#""sha256":"ab""#, r#""sha256":"AB""#));
    assert_eq!(
        parse(&doc).unwrap().signed().targets["a.crate"]
            .hashes
            .get("sha256"),
        Some("AB")
    );
}

#[test]
fn snapshot_meta_hashes_follow_the_same_rules() {
    let doc = r#"{"signatures":[],"signed":{"_type":"snapshot","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","meta":{"targets.json":{"version":1,"hashes":{"sha256":"zz"}}}}}"#;
    match Metadata::<Snapshot>::from_bytes(doc.as_bytes()) {
        Err(MetadataError::Schema { path, message }) => {
            assert_eq!(path, "signed.meta.targets.json.hashes.sha256");
            assert_eq!(message, "digest must be a hex string");
        }
        other => panic!("{other:?}"),
    }
}

/// Many targets, as a registry's documents have: a duplicate late in a large map is found
/// with its path, whichever way the document is laid out.
#[test]
fn a_duplicate_deep_in_a_large_targets_map_is_refused() {
    let mut entries: Vec<String> = (0..5000)
        .map(|i| format!(r#""t/{i:05}.crate":{{"hashes":{{"sha256":"ab"}},"length":{i}}}"#))
        .collect();
    entries.push(r#""t/04321.crate":{"hashes":{"sha256":"cd"},"length":1}"#.to_owned());
    let sorted_but_repeated = entries.join(",");
    entries.reverse();
    let unsorted = entries.join(",");
    for body in [sorted_but_repeated, unsorted] {
        let doc = format!(
            r#"{{"signatures":[],"signed":{{"_type":"targets","expires":"2030-01-01T00:00:00Z","spec_version":"1.0.31","targets":{{{body}}},"version":1}}}}"#
        );
        assert_eq!(
            parse(&doc).err(),
            Some(MetadataError::Json(JsonError::DuplicateKey {
                path: "signed.targets".into(),
                key: "t/04321.crate".into()
            }))
        );
    }
}

/// The canonical bytes of `signed` do not depend on how the document was laid out: keys
/// in any order, whitespace, escapes of characters canonical JSON writes raw.
#[test]
fn the_signed_bytes_do_not_depend_on_the_layout() {
    let compact = r#"{"signatures":[],"signed":{"_type":"targets","expires":"2030-01-01T00:00:00Z","spec_version":"1.0.31","targets":{"caf\u00e9.crate":{"hashes":{"sha256":"ab"},"length":3},"z.crate":{"custom":{"b":[1,{"y":2,"x":1}],"a":"\"\\\/"},"hashes":{"sha256":"cd"},"length":4}},"version":1}}"#;
    let laid_out = "{ \"signed\" : {\n \"version\": 1,\n \"targets\": {\"z.crate\": {\"length\": 4, \"hashes\": {\"sha256\": \"cd\"}, \"custom\": {\"a\": \"\\\"\\\\/\", \"b\": [1, {\"x\": 1, \"y\": 2}]}}, \"café.crate\": {\"length\": 3, \"hashes\": {\"sha256\": \"ab\"}}},\n \"spec_version\": \"1.0.31\", \"expires\": \"2030-01-01T00:00:00Z\", \"_type\": \"targets\"}, \"signatures\": [] }";
    let want = "{\"_type\":\"targets\",\"expires\":\"2030-01-01T00:00:00Z\",\"spec_version\":\"1.0.31\",\"targets\":{\"café.crate\":{\"hashes\":{\"sha256\":\"ab\"},\"length\":3},\"z.crate\":{\"custom\":{\"a\":\"\\\"\\\\/\",\"b\":[1,{\"x\":1,\"y\":2}]},\"hashes\":{\"sha256\":\"cd\"},\"length\":4}},\"version\":1}";
    for doc in [compact, laid_out] {
        let md = parse(doc).unwrap();
        assert_eq!(
            String::from_utf8(md.signed_bytes().unwrap().to_vec()).unwrap(),
            want,
            "{doc}"
        );
        assert_eq!(md.signed().targets.len(), 2);
    }
}
