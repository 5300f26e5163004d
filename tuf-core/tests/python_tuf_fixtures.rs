//! Test code: panicking on a broken expectation is how a test fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

//! Metadata written by python-tuf (tests/python/generate_fixtures.py) loads, verifies and
//! re-serialises byte-exactly; documents python-tuf or the specification refuse are
//! refused here with a typed error naming the place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tuf_core::json::JsonError;
use tuf_core::metadata::{Metadata, MetadataError, Role, Root, Snapshot, Targets, Timestamp};
use tuf_core::verify::VerificationError;
use tuf_core::Delegator;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/python-tuf")
}

fn read(relative: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn manifest() -> Vec<Value> {
    let bytes = read("manifest.json");
    let value: Value = serde_json::from_slice(&bytes).expect("manifest is JSON");
    value.as_array().expect("manifest is a list").clone()
}

fn field<'a>(entry: &'a Value, name: &str) -> &'a str {
    entry[name]
        .as_str()
        .unwrap_or_else(|| panic!("manifest entry lacks {name}: {entry}"))
}

/// Loads `bytes` as `T`, checks canonical bytes and re-serialisation against python's,
/// and returns the metadata.
fn check_round_trip<T: Role>(entry: &Value, bytes: &[u8]) -> Metadata<T> {
    let file = field(entry, "file");
    let metadata = Metadata::<T>::from_bytes(bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
    let canonical = metadata.signed_bytes().expect("canonical");
    assert_eq!(
        hex::encode(Sha256::digest(canonical)),
        field(entry, "signed_canonical_sha256"),
        "{file}: our canonical bytes of `signed` differ from securesystemslib's"
    );
    assert_eq!(
        canonical.len() as u64,
        entry["signed_canonical_length"].as_u64().expect("length")
    );
    assert_eq!(
        metadata.to_bytes().expect("serialises"),
        bytes,
        "{file}: re-serialisation is not byte-identical to python-tuf's to_file()"
    );
    // Canonical bytes recomputed from the typed model (not the cached received bytes)
    // must be the same: nothing was dropped or reordered.
    let mut edited = metadata.clone();
    let _ = edited.signed_mut();
    assert_eq!(
        edited.signed_bytes().expect("canonical"),
        canonical,
        "{file}"
    );
    assert_eq!(
        metadata.signed().version(),
        entry["version"].as_u64().expect("version")
    );
    metadata
}

fn verify_with<T: Role>(delegator_file: &str, role: &str, metadata: &Metadata<T>) {
    let bytes = read(delegator_file);
    let report = if delegator_file.ends_with("root.json") {
        let delegator = Metadata::<Root>::from_bytes(&bytes).expect("delegator loads");
        delegator.verify_delegate(role, metadata)
    } else {
        let delegator = Metadata::<Targets>::from_bytes(&bytes).expect("delegator loads");
        delegator.verify_delegate(role, metadata)
    };
    let report = report.unwrap_or_else(|e| panic!("{role} against {delegator_file}: {e}"));
    assert!(report.threshold_met());
    assert!(report.invalid.is_empty(), "{role}: {:?}", report.invalid);
}

#[test]
fn every_python_tuf_file_loads_verifies_and_round_trips() {
    let entries = manifest();
    assert!(
        entries.len() >= 29,
        "the generator wrote {} files",
        entries.len()
    );
    let mut high_s_seen = 0;
    for entry in &entries {
        let file = field(entry, "file");
        let role = field(entry, "role");
        let bytes = read(file);
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            field(entry, "file_sha256")
        );
        let delegators: Vec<&str> = ["delegator", "also_delegator"]
            .iter()
            .filter_map(|key| entry[*key].as_str())
            .collect();
        match field(entry, "type") {
            "root" => {
                let md = check_round_trip::<Root>(entry, &bytes);
                delegators.iter().for_each(|d| verify_with(d, role, &md));
            }
            "timestamp" => {
                let md = check_round_trip::<Timestamp>(entry, &bytes);
                delegators.iter().for_each(|d| verify_with(d, role, &md));
            }
            "snapshot" => {
                let md = check_round_trip::<Snapshot>(entry, &bytes);
                delegators.iter().for_each(|d| verify_with(d, role, &md));
            }
            "targets" => {
                let md = check_round_trip::<Targets>(entry, &bytes);
                delegators.iter().for_each(|d| verify_with(d, role, &md));
            }
            other => panic!("{file}: unknown type {other}"),
        }
        high_s_seen += entry["ecdsa_signatures"].as_array().map_or(0, |sigs| {
            sigs.iter().filter(|s| s["high_s"] == true).count()
        });
    }
    assert!(
        high_s_seen > 0,
        "fixtures must include a high-S ECDSA signature"
    );
}

#[test]
fn unknown_fields_survive_everywhere() {
    let root = Metadata::<Root>::from_bytes(&read("full/metadata/2.root.json")).expect("root");
    assert!(
        !root.signed().unrecognized_fields.is_empty(),
        "root signed extras"
    );
    assert!(root
        .signed()
        .keys
        .values()
        .any(|k| !k.unrecognized_fields.is_empty()));
    assert!(root
        .signed()
        .roles
        .values()
        .any(|r| !r.unrecognized_fields.is_empty()));

    let targets =
        Metadata::<Targets>::from_bytes(&read("full/metadata/1.targets.json")).expect("targets");
    assert!(targets
        .unrecognized_fields
        .contains_key("x-tuf-crates-envelope-extra"));
    let delegations = targets.signed().delegations.as_ref().expect("delegations");
    assert!(!delegations.unrecognized_fields.is_empty());
    let roles = delegations.roles.as_ref().expect("roles");
    assert!(roles.iter().any(|r| !r.unrecognized_fields.is_empty()));
    assert!(targets
        .signed()
        .targets
        .values()
        .any(|t| t.custom().is_some()));
    assert!(targets
        .signed()
        .targets
        .keys()
        .any(|path| path.contains('\t') && path.contains("tab")));
    assert!(targets
        .signed()
        .targets
        .keys()
        .any(|path| path.contains('🦀')));

    let snapshot =
        Metadata::<Snapshot>::from_bytes(&read("full/metadata/1.snapshot.json")).expect("snap");
    assert!(snapshot
        .signed()
        .meta
        .values()
        .any(|m| !m.unrecognized_fields.is_empty()));
    let any_signature_extra = [&root.signatures, &targets.signatures, &snapshot.signatures]
        .iter()
        .any(|sigs| sigs.iter().any(|s| !s.unrecognized_fields.is_empty()));
    assert!(
        any_signature_extra,
        "a signature object with an extension field"
    );
}

#[test]
fn delegations_resolve_like_python_tuf() {
    let targets =
        Metadata::<Targets>::from_bytes(&read("full/metadata/1.targets.json")).expect("targets");
    let roles = targets
        .signed()
        .delegations
        .as_ref()
        .and_then(|d| d.roles.as_ref());
    let roles: BTreeMap<&str, _> = roles
        .expect("roles")
        .iter()
        .map(|r| (r.name.as_str(), r))
        .collect();
    assert!(roles["serde"].is_delegated_path("crates/se/rd/serde/serde-1.0.0.crate"));
    assert!(!roles["serde"].is_delegated_path("crates/se/rd/serdex/serdex-1.0.0.crate"));
    assert!(roles["unclaimed"].is_delegated_path("crates/ra/nd/rand-0.8.5.crate"));

    let unclaimed = Metadata::<Targets>::from_bytes(&read("full/metadata/1.unclaimed.json"))
        .expect("unclaimed");
    let succinct = unclaimed
        .signed()
        .delegations
        .as_ref()
        .and_then(|d| d.succinct_roles.as_ref())
        .expect("succinct roles");
    // Every target a bin lists must hash into that bin, as python-tuf computed it.
    let mut listed = 0;
    for bin in succinct.role_names() {
        let bytes = read(&format!("full/metadata/1.{bin}.json"));
        let md = Metadata::<Targets>::from_bytes(&bytes).expect("bin loads");
        unclaimed.verify_delegate(&bin, &md).expect("bin verifies");
        assert!(unclaimed.signed().authorization(&bin).is_some());
        for path in md.signed().targets.keys() {
            assert_eq!(succinct.role_for_target(path), bin, "{path}");
            listed += 1;
        }
    }
    assert!(listed > 0);
    assert!(unclaimed
        .signed()
        .authorization("unclaimed-bin-10")
        .is_none());
}

#[test]
fn a_delegate_signed_by_the_wrong_keys_is_refused() {
    let root = Metadata::<Root>::from_bytes(&read("full/metadata/2.root.json")).expect("root");
    let targets =
        Metadata::<Targets>::from_bytes(&read("full/metadata/1.targets.json")).expect("targets");
    let serde = Metadata::<Targets>::from_bytes(&read("full/metadata/1.serde.json")).expect("s");
    // serde's file is not signed by the keys root gives `targets`...
    assert!(matches!(
        root.verify_delegate("targets", &serde),
        Err(VerificationError::ThresholdNotMet { .. })
    ));
    // ...nor by the keys targets gives `hashed`; and root delegates no `serde`.
    assert!(matches!(
        targets.verify_delegate("hashed", &serde),
        Err(VerificationError::ThresholdNotMet { .. })
    ));
    assert!(matches!(
        root.verify_delegate("serde", &serde),
        Err(VerificationError::UnknownRole { .. })
    ));
    // Changing one byte of what was signed breaks the signature.
    let mut edited = serde.clone();
    edited.signed_mut().version += 1;
    assert!(matches!(
        targets.verify_delegate("serde", &edited),
        Err(VerificationError::ThresholdNotMet { role, valid: 0, .. }) if role == "serde"
    ));
    // The old root (v1) does not authorise v2's new root key alone: v2 is signed by both.
    let root_v1 = Metadata::<Root>::from_bytes(&read("full/metadata/1.root.json")).expect("v1");
    root_v1
        .verify_delegate("root", &root)
        .expect("v1 threshold signed v2");
}

/// What each invalid fixture must be refused with.
fn expected_rejection(file: &str, err: &MetadataError) -> bool {
    use MetadataError as E;
    let schema_at = |want: &str| matches!(err, E::Schema { path, .. } if path.contains(want));
    match file {
        "invalid/duplicate-key-in-signed.json" => matches!(
            err, E::Json(JsonError::DuplicateKey { path, key }) if path == "signed" && key == "version"
        ),
        "invalid/duplicate-key-same-value.json" => matches!(
            err, E::Json(JsonError::DuplicateKey { path, key }) if path == "signed" && key == "_type"
        ),
        "invalid/float-version.json" | "invalid/version-above-u64.json" => matches!(
            err, E::Json(JsonError::NotAnInteger { path }) if path == "signed.version"
        ),
        "invalid/type-mismatch-wrong-case.json"
        | "invalid/type-mismatch-snapshot-as-targets.json" => {
            matches!(err, E::WrongType { path, expected: "targets", .. } if path == "signed._type")
        }
        "invalid/spec-version-2.json" => {
            matches!(err, E::UnsupportedSpecVersion { found, .. } if found == "2.0.0")
        }
        "invalid/expires-no-z.json"
        | "invalid/expires-fractional-seconds.json"
        | "invalid/expires-offset.json" => {
            matches!(err, E::InvalidDate { path, .. } if path == "signed.expires")
        }
        "invalid/negative-version.json" | "invalid/zero-version.json" => {
            schema_at("signed.version")
        }
        "invalid/negative-target-length.json" => schema_at("signed.targets") && schema_at("length"),
        "invalid/empty-target-hashes.json" => schema_at("hashes"),
        "invalid/duplicate-signature-keyid.json" => schema_at("signatures[1].keyid"),
        "invalid/delegation-paths-and-prefixes.json" => schema_at("signed.delegations.roles[0]"),
        "invalid/delegation-threshold-zero.json" => schema_at("threshold"),
        "invalid/delegation-nonunique-keyids.json" => schema_at("keyids[1]"),
        "invalid/delegation-top-level-name.json" => schema_at("roles[0].name"),
        "invalid/succinct-bit-length-33.json" => schema_at("succinct_roles.bit_length"),
        "invalid/root-missing-role.json" => schema_at("signed.roles"),
        "invalid/root-threshold-zero.json" => schema_at("threshold"),
        _ => false,
    }
}

#[test]
fn every_invalid_fixture_is_refused_with_a_typed_error() {
    let index: Value = serde_json::from_slice(&read("invalid/index.json")).expect("index");
    let cases = index.as_array().expect("list");
    assert!(cases.len() >= 20);
    for case in cases {
        let file = field(case, "file");
        let bytes = read(file);
        let err = if field(case, "role") == "root" {
            Metadata::<Root>::from_bytes(&bytes).err()
        } else {
            Metadata::<Targets>::from_bytes(&bytes).err()
        };
        let err = err.unwrap_or_else(|| panic!("{file} was accepted"));
        assert!(
            expected_rejection(file, &err),
            "{file} refused for the wrong reason: {err:?}"
        );
    }
}
