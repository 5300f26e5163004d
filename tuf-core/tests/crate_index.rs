#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! A crate's signed index file: what cargo gets of a line (no attestations; yanked by the
//! owners or upstream), the bytes written back, its size cap at the boundary, the line
//! numbers errors name, and finding, changing and removing a version.

use chrono::{TimeZone, Utc};
use tuf_core::attestation::{Attestation, AttestationKind, ReleaseStatement};
use tuf_core::crate_index::{
    CrateIndexError, CrateIndexFile, SignedIndexLine, ATTESTATIONS_FIELD, MAX_CRATE_INDEX_BYTES,
};
use tuf_core::hash::sha256_hashes;
use tuf_core::index_entry::{IndexEntry, IndexEntryError};
use tuf_core::{KeyAlgorithm, PrivateKey};

fn entry(version: &str) -> IndexEntry {
    IndexEntry::without_dependencies("demo", version, format!("demo {version}").as_bytes())
}

fn attested(version: &str) -> SignedIndexLine {
    let tarball = format!("demo {version}");
    let statement = ReleaseStatement {
        kind: AttestationKind::Release,
        name: "demo".into(),
        version: version.into(),
        length: tarball.len() as u64,
        hashes: sha256_hashes(tarball.as_bytes()),
        index_entry_sha256: "00".repeat(32),
        date: Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap(),
        label: "alice".into(),
        unrecognized_fields: Default::default(),
    };
    let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    SignedIndexLine {
        entry: entry(version),
        attestations: vec![Attestation::sign(statement, &key).unwrap()],
    }
}

fn has_attestations_field(line: &[u8]) -> bool {
    let value: serde_json::Value = serde_json::from_slice(line).unwrap();
    value.get(ATTESTATIONS_FIELD).is_some()
}

#[test]
fn cargo_gets_the_entry_without_attestations_yanked_by_the_owners_or_upstream() {
    let line = attested("1.0.0");
    let expected = entry("1.0.0").to_canonical_line();
    assert_eq!(line.line_for_cargo(false), expected);
    let yanked_upstream = line.line_for_cargo(true);
    let mut yanked = entry("1.0.0");
    yanked.yanked = true;
    assert_eq!(yanked_upstream, yanked.to_canonical_line());
    // The owners' yank holds whatever upstream says.
    let mut owners_yanked = line.clone();
    owners_yanked.entry.yanked = true;
    assert_eq!(
        owners_yanked.line_for_cargo(false),
        yanked.to_canonical_line()
    );
    assert_eq!(
        owners_yanked.line_for_cargo(true),
        yanked.to_canonical_line()
    );
    assert!(!has_attestations_field(&line.line_for_cargo(false)));
}

#[test]
fn the_file_keeps_attestations_only_on_the_lines_that_have_them() {
    let file = CrateIndexFile {
        lines: vec![
            attested("1.0.0"),
            SignedIndexLine {
                entry: entry("1.1.0"),
                attestations: Vec::new(),
            },
        ],
    };
    let bytes = file.to_bytes();
    let lines: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(has_attestations_field(lines[0]));
    assert!(!has_attestations_field(lines[1]));
    assert!(bytes.ends_with(b"\n"));
    let parsed = CrateIndexFile::parse("demo", &bytes).unwrap();
    assert_eq!(parsed.lines.len(), 2);
    assert_eq!(parsed.lines[0].attestations, file.lines[0].attestations);
    assert!(parsed.lines[1].attestations.is_empty());
    assert_eq!(parsed.to_bytes(), bytes);
}

#[test]
fn a_file_of_exactly_the_cap_is_read_and_one_byte_more_is_refused() {
    let cap = usize::try_from(MAX_CRATE_INDEX_BYTES).unwrap();
    assert_eq!(cap, 32 * 1024 * 1024);
    let mut bytes = entry("1.0.0").to_canonical_line();
    bytes.resize(cap, b'\n');
    assert_eq!(
        CrateIndexFile::parse("demo", &bytes).unwrap().lines.len(),
        1
    );
    for extra in [1, 2] {
        bytes.resize(cap + extra, b'\n');
        assert!(matches!(
            CrateIndexFile::parse("demo", &bytes),
            Err(CrateIndexError::Malformed(_))
        ));
    }
}

/// A reader that knows only the file (an audit) takes the crate from the first entry, as
/// written there, and holds every later line to it, case-insensitively as cargo does.
#[test]
fn a_file_read_without_its_crates_name_is_the_crate_its_first_entry_names() {
    let mut bytes = b"\n".to_vec();
    let first = IndexEntry::without_dependencies("Demo", "1.0.0", b"one");
    bytes.extend_from_slice(&first.to_canonical_line());
    bytes.push(b'\n');
    bytes.extend_from_slice(&entry("1.1.0").to_canonical_line());
    let (name, file) = CrateIndexFile::parse_unnamed(&bytes).unwrap().unwrap();
    assert_eq!(name, "Demo");
    assert_eq!(file.lines.len(), 2);
    assert_eq!(file.lines[1].entry.vers, "1.1.0");
    // A later line of another crate is refused, naming the first entry's crate.
    bytes.push(b'\n');
    bytes.extend_from_slice(
        &IndexEntry::without_dependencies("evil", "1.0.0", b"x").to_canonical_line(),
    );
    match CrateIndexFile::parse_unnamed(&bytes) {
        Err(CrateIndexError::OtherCrate {
            line: 4,
            expected,
            found,
        }) if expected == "Demo" && found == "evil" => {}
        other => panic!("expected another crate on line 4, got {other:?}"),
    }
    // A blank file names no crate; a first line that is no entry is that line's error.
    assert!(CrateIndexFile::parse_unnamed(b" \n\n").unwrap().is_none());
    assert!(matches!(
        CrateIndexFile::parse_unnamed(b"\nnot json\n"),
        Err(CrateIndexError::Entry { line: 2, .. })
    ));
}

#[test]
fn errors_name_the_line_counted_from_one() {
    let mut bytes = entry("1.0.0").to_canonical_line();
    bytes.extend_from_slice(b"\n\nnot json\n");
    match CrateIndexFile::parse("demo", &bytes) {
        Err(CrateIndexError::Entry {
            line: 3,
            error: IndexEntryError::Json(_),
        }) => {}
        other => panic!("expected an error on line 3, got {other:?}"),
    }
    let mut other = entry("1.0.0").to_canonical_line();
    other.push(b'\n');
    other.extend_from_slice(
        &IndexEntry::without_dependencies("evil", "1.0.0", b"x").to_canonical_line(),
    );
    match CrateIndexFile::parse("demo", &other) {
        Err(CrateIndexError::OtherCrate { line: 2, found, .. }) if found == "evil" => {}
        other => panic!("expected another crate on line 2, got {other:?}"),
    }
}

#[test]
fn versions_are_found_changed_and_removed_whatever_their_case() {
    let mut file = CrateIndexFile {
        lines: vec![attested("1.0.0-RC1"), attested("1.0.0")],
    };
    assert_eq!(file.get("1.0.0-rc1").unwrap().entry.vers, "1.0.0-RC1");
    assert_eq!(file.get("1.0.0").unwrap().entry.vers, "1.0.0");
    assert!(file.get("2.0.0").is_none());
    file.get_mut("1.0.0").unwrap().entry.yanked = true;
    assert!(file.get("1.0.0").unwrap().entry.yanked);
    assert!(!file.get("1.0.0-RC1").unwrap().entry.yanked);
    assert!(file.get_mut("2.0.0").is_none());
    assert!(!file.remove("2.0.0"));
    assert_eq!(file.lines.len(), 2);
    assert!(file.remove("1.0.0-rc1"));
    assert_eq!(file.lines.len(), 1);
    assert_eq!(file.lines[0].entry.vers, "1.0.0");
}
