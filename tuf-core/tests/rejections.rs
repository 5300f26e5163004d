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
