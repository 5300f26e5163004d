//! Rules of the metadata format that each reject or accept something precise: the meta
//! entries of snapshot and timestamp, digests, glob classes in delegation paths, target
//! custom data, the size cap, and the bytes we write. Each was found by mutation testing
//! (scripts/mutants): removing the rule left every other test green.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use tuf_core::metadata::{
    path_matches_pattern, Metadata, MetadataError, Snapshot, TargetFile, Timestamp,
    DEFAULT_MAX_METADATA_BYTES,
};

fn timestamp_doc(meta: &str) -> String {
    format!(
        r#"{{"signatures":[],"signed":{{"_type":"timestamp","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","meta":{meta}}}}}"#
    )
}

fn snapshot_doc(meta: &str) -> String {
    format!(
        r#"{{"signatures":[],"signed":{{"_type":"snapshot","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","meta":{meta}}}}}"#
    )
}

fn schema_path(result: Result<impl std::fmt::Debug, MetadataError>) -> String {
    match result {
        Err(MetadataError::Schema { path, .. }) => path,
        other => panic!("expected a schema error, got {other:?}"),
    }
}

#[test]
fn timestamp_meta_must_list_exactly_snapshot_json() {
    let ok = timestamp_doc(r#"{"snapshot.json":{"version":1}}"#);
    assert!(Metadata::<Timestamp>::from_bytes(ok.as_bytes()).is_ok());
    for meta in [
        r#"{}"#,
        r#"{"targets.json":{"version":1}}"#,
        r#"{"snapshot.json":{"version":1},"targets.json":{"version":1}}"#,
    ] {
        let doc = timestamp_doc(meta);
        assert_eq!(
            schema_path(Metadata::<Timestamp>::from_bytes(doc.as_bytes())),
            "signed.meta",
            "{meta}"
        );
    }
}

#[test]
fn meta_entries_need_a_version_of_at_least_one_and_hex_digests() {
    let cases = [
        (r#"{"version":0}"#, "signed.meta.snapshot.json.version"),
        (
            r#"{"version":1,"hashes":{}}"#,
            "signed.meta.snapshot.json.hashes",
        ),
        (
            r#"{"version":1,"hashes":{"sha256":""}}"#,
            "signed.meta.snapshot.json.hashes.sha256",
        ),
        (
            r#"{"version":1,"hashes":{"sha256":"abz"}}"#,
            "signed.meta.snapshot.json.hashes.sha256",
        ),
    ];
    for (entry, path) in cases {
        let doc = timestamp_doc(&format!(r#"{{"snapshot.json":{entry}}}"#));
        assert_eq!(
            schema_path(Metadata::<Timestamp>::from_bytes(doc.as_bytes())),
            path,
            "timestamp {entry}"
        );
        let doc = snapshot_doc(&format!(r#"{{"targets.json":{entry}}}"#));
        assert_eq!(
            schema_path(Metadata::<Snapshot>::from_bytes(doc.as_bytes())),
            path.replace("snapshot.json", "targets.json"),
            "snapshot {entry}"
        );
    }
    let fine =
        snapshot_doc(r#"{"targets.json":{"version":1,"length":2,"hashes":{"sha256":"aB09"}}}"#);
    assert!(Metadata::<Snapshot>::from_bytes(fine.as_bytes()).is_ok());
}

#[test]
fn a_glob_class_matches_only_its_members_and_ranges() {
    for (path, pattern, expected) in [
        ("xb", "x[a-c]", true),
        ("xz", "x[a-c]", false),
        ("x0", "x[a-c]", false),
        ("xq", "x[pqr]", true),
        ("xs", "x[pqr]", false),
        ("xz", "x[!a-c]", true),
        ("xb", "x[!a-c]", false),
        ("x-", "x[a-]", true),
    ] {
        assert_eq!(
            path_matches_pattern(path, pattern),
            expected,
            "{path} {pattern}"
        );
    }
}

#[test]
fn target_custom_data_is_none_unless_given() {
    let plain = TargetFile::from_bytes(b"abc");
    assert_eq!(plain.custom(), None);
    let mut with_custom = plain.clone();
    with_custom
        .unrecognized_fields
        .insert("custom".into(), serde_json::json!({"k": 1}));
    assert_eq!(with_custom.custom(), Some(&serde_json::json!({"k": 1})));
}

#[test]
fn documents_up_to_128_mib_parse_and_larger_ones_are_refused_unread() {
    assert_eq!(DEFAULT_MAX_METADATA_BYTES, 128 * 1024 * 1024);
    // A 2 MiB document: over any small cap, well under the default.
    let padding = " ".repeat(2 * 1024 * 1024);
    let doc = format!(
        "{padding}{}",
        timestamp_doc(r#"{"snapshot.json":{"version":1}}"#)
    );
    assert!(Metadata::<Timestamp>::from_bytes(doc.as_bytes()).is_ok());
    let too_big = vec![b' '; DEFAULT_MAX_METADATA_BYTES + 1];
    assert!(matches!(
        Metadata::<Timestamp>::from_bytes(&too_big),
        Err(MetadataError::Json(
            tuf_core::json::JsonError::TooLarge { .. }
        ))
    ));
}

#[test]
fn documents_are_written_as_python_tuf_writes_them() {
    let doc = timestamp_doc(r#"{"snapshot.json":{"version":1}}"#);
    let md = Metadata::<Timestamp>::from_bytes(doc.as_bytes()).unwrap();
    // json.dumps(value, sort_keys=True, separators=(",", ":")) and with indent=1.
    let canonical = r#"{"signatures":[],"signed":{"_type":"timestamp","expires":"2030-01-01T00:00:00Z","meta":{"snapshot.json":{"version":1}},"spec_version":"1.0.31","version":1}}"#;
    assert_eq!(
        String::from_utf8(md.to_canonical_bytes().unwrap()).unwrap(),
        canonical
    );
    assert_eq!(
        String::from_utf8(md.to_bytes().unwrap()).unwrap(),
        canonical
    );
    let pretty = "{\n \"signatures\": [],\n \"signed\": {\n  \"_type\": \"timestamp\",\n  \"expires\": \"2030-01-01T00:00:00Z\",\n  \"meta\": {\n   \"snapshot.json\": {\n    \"version\": 1\n   }\n  },\n  \"spec_version\": \"1.0.31\",\n  \"version\": 1\n }\n}";
    assert_eq!(
        String::from_utf8(md.to_pretty_bytes().unwrap()).unwrap(),
        pretty
    );
}

/// Only the exact form python-tuf writes: chrono alone would also take a space-padded
/// hour, a signed year or a one-digit month, which would not re-serialise to the bytes
/// that were signed.
#[test]
fn expiry_dates_have_exactly_one_spelling() {
    assert!(tuf_core::metadata::parse_expires("2030-01-01T00:00:00Z").is_some());
    for other in [
        "2030-01-01T 0:00:00Z",
        "+030-01-01T00:00:00Z",
        "2030-1-01T00:00:00Z",
        "2030-01-01T00:00:00",
        "2030-01-01T00:00:00+00:00",
        "2030-01-01t00:00:00Z",
    ] {
        assert_eq!(tuf_core::metadata::parse_expires(other), None, "{other}");
    }
}
