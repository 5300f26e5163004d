#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! securesystemslib verifies tuf-core's release attestations: it computes the same keyid
//! for the attestation's key and the same canonical bytes of `signed`, and its
//! `Key.verify_signature` accepts the signature, Ed25519 and P-256 alike. An attestation
//! whose statement was changed after signing, or whose signature names another keyid,
//! fails there as it fails here.
//!
//! Runs `tests/python/keys_and_attestations.py attestation` with the python-tuf venv;
//! like every interop test this fails, not skips, when that python is missing.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tuf_core::attestation::{Attestation, AttestationKind, ReleaseStatement};
use tuf_core::hash::sha256_hashes;
use tuf_core::{KeyAlgorithm, PrivateKey, Signer};
use tuf_crates_tests::{describe_output, python_tuf, run, workspace_root};

fn statement(kind: AttestationKind) -> ReleaseStatement {
    ReleaseStatement {
        kind,
        name: "serde::derive".into(),
        version: "1.0.203-rc.1+build.5".into(),
        length: 77_935,
        hashes: sha256_hashes(b"tarball"),
        index_entry_sha256: hex::encode(Sha256::digest(b"index entry")),
        date: Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap(),
        // Non-ASCII, a quote and a backslash: canonical JSON writes the first raw and
        // escapes the other two.
        label: "Zoë \"zed\" O\\Brien 名前".into(),
        unrecognized_fields: [(
            "x-review".to_owned(),
            json!({"files": ["src/lib.rs", "ü"], "lines": 1234, "ok": true, "note": null}),
        )]
        .into(),
    }
}

#[test]
fn securesystemslib_verifies_our_attestation_signatures() {
    let python = python_tuf();
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<(String, Value, Attestation, bool)> = Vec::new();
    for (algorithm, kind) in [
        (KeyAlgorithm::Ed25519, AttestationKind::Release),
        (KeyAlgorithm::EcdsaP256, AttestationKind::Review),
    ] {
        let key = PrivateKey::generate(algorithm);
        let attestation = Attestation::sign(statement(kind), &key).unwrap();
        let value = attestation.to_value();
        let name = format!("{algorithm:?}");
        cases.push((name.clone(), value.clone(), attestation.clone(), true));
        // Changed after signing: one character of the label.
        let mut changed = value.clone();
        changed["signed"]["label"] = json!("Zoë \"zed\" O\\Brien 名前!");
        cases.push((
            format!("{name}-changed"),
            changed,
            attestation.clone(),
            false,
        ));
        // The signature names another keyid.
        let mut renamed = value;
        renamed["signatures"][0]["keyid"] = json!("ab".repeat(32));
        cases.push((format!("{name}-renamed"), renamed, attestation, false));
        assert_eq!(*key.keyid(), key.public_key().keyid());
    }
    let files: Vec<_> = cases
        .iter()
        .map(|(name, value, _, _)| {
            let path = dir.path().join(format!("{name}.json"));
            std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
            path
        })
        .collect();
    let script = workspace_root()
        .join("tests")
        .join("python")
        .join("keys_and_attestations.py");
    let mut args = vec![script.into_os_string(), "attestation".into()];
    args.extend(files.iter().map(|p| p.clone().into_os_string()));
    let output = run(&python, &args);
    assert!(output.status.success(), "{}", describe_output(&output));
    let reports: Vec<Value> = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", describe_output(&output)));
    assert_eq!(reports.len(), cases.len());
    for ((name, value, attestation, genuine), report) in cases.iter().zip(&reports) {
        // The same keyid and the same signed bytes, on both sides.
        assert_eq!(report["keyid"], json!(attestation.key.keyid()), "{name}");
        let ours = Attestation::from_value(value).unwrap();
        assert_eq!(
            report["signed_canonical_sha256"],
            json!(hex::encode(Sha256::digest(
                ours.statement.canonical_bytes().unwrap()
            ))),
            "{name}"
        );
        // And the same verdict.
        assert_eq!(report["verified"], json!(genuine), "{name}: {report}");
        assert_eq!(ours.verify().is_ok(), *genuine, "{name}");
    }
}
