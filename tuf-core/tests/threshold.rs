//! Threshold verification: distinct keys count once however they are named; bad
//! signatures beside enough good ones do not fail a role.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use tuf_core::keys::Key;
use tuf_core::metadata::{Metadata, RoleKeys, Root, Signature, Targets};
use tuf_core::signer::{KeyAlgorithm, PrivateKey, Signer};
use tuf_core::verify::{check_signatures, Authorization, VerificationError};

fn expires() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
}

/// A root whose `targets` role lists `keys` (by the given keyids) with `threshold`.
fn root_with(keys: &[(String, Key)], threshold: u64) -> Metadata<Root> {
    let mut root = Root::new(expires());
    for (keyid, key) in keys {
        root.keys.insert(keyid.clone(), key.clone());
    }
    root.roles.insert(
        "targets".into(),
        RoleKeys::new(keys.iter().map(|(id, _)| id.clone()).collect(), threshold),
    );
    Metadata::new(root)
}

fn signed_targets(signers: &[&PrivateKey]) -> Metadata<Targets> {
    let mut targets = Metadata::new(Targets::new(expires()));
    for signer in signers {
        targets.sign(*signer, true).unwrap();
    }
    targets
}

#[test]
fn threshold_of_distinct_keys_is_met() {
    let a = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let b = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let root = root_with(
        &[
            (a.keyid().clone(), a.public_key().clone()),
            (b.keyid().clone(), b.public_key().clone()),
        ],
        2,
    );
    let report = root
        .verify_delegate("targets", &signed_targets(&[&a, &b]))
        .expect("2 of 2");
    assert_eq!(report.valid.len(), 2);
    assert!(matches!(
        root.verify_delegate("targets", &signed_targets(&[&a])),
        Err(VerificationError::ThresholdNotMet {
            valid: 1,
            threshold: 2,
            ..
        })
    ));
}

#[test]
fn one_key_under_two_keyids_counts_once() {
    // The same P-256 key listed twice: once under its real keyid, once under the keyid of
    // the alternative keytype spelling. Both signatures verify; only one may count.
    let a = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let mut alias = a.public_key().clone();
    alias.keytype = "ecdsa-sha2-nistp256".into();
    let alias_id = alias.keyid();
    assert_ne!(&alias_id, a.keyid());
    let root = root_with(
        &[
            (a.keyid().clone(), a.public_key().clone()),
            (alias_id.clone(), alias),
        ],
        2,
    );
    let mut targets = signed_targets(&[&a]);
    let mut copy = targets.signatures[0].clone();
    copy.keyid = alias_id.clone();
    targets.signatures.push(copy);
    let err = root.verify_delegate("targets", &targets).unwrap_err();
    assert!(
        matches!(
            err,
            VerificationError::ThresholdNotMet {
                valid: 1,
                threshold: 2,
                ..
            }
        ),
        "{err:?}"
    );

    // And the same key under an arbitrary second keyid.
    let root = root_with(
        &[
            (a.keyid().clone(), a.public_key().clone()),
            ("ff".repeat(32), a.public_key().clone()),
        ],
        2,
    );
    let mut targets = signed_targets(&[&a]);
    let mut copy = targets.signatures[0].clone();
    copy.keyid = "ff".repeat(32);
    targets.signatures.push(copy);
    let report = root
        .signed()
        .roles
        .get("targets")
        .map(|role| {
            check_signatures(
                &Authorization {
                    keys: &root.signed().keys,
                    keyids: &role.keyids,
                    threshold: role.threshold,
                },
                &targets.signatures,
                targets.signed_bytes().unwrap(),
            )
        })
        .unwrap();
    assert_eq!(report.valid.len(), 1);
    assert_eq!(report.duplicate_keys, vec!["ff".repeat(32)]);
    assert!(!report.threshold_met());
}

#[test]
fn a_keyid_listed_twice_and_signatures_repeated_count_once() {
    let a = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let keys: BTreeMap<String, Key> = [(a.keyid().clone(), a.public_key().clone())].into();
    let keyids = vec![a.keyid().clone(), a.keyid().clone()];
    let targets = signed_targets(&[&a]);
    let mut signatures = targets.signatures.clone();
    signatures.push(signatures[0].clone());
    let report = check_signatures(
        &Authorization {
            keys: &keys,
            keyids: &keyids,
            threshold: 2,
        },
        &signatures,
        targets.signed_bytes().unwrap(),
    );
    assert_eq!(report.valid, vec![a.keyid().clone()]);
    assert!(!report.threshold_met());
}

#[test]
fn bad_signatures_beside_enough_good_ones_do_not_fail_the_role() {
    let a = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let b = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let c = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let outsider = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let unsupported = Key::new("ed448", "ed448", "00".repeat(57));
    let root = root_with(
        &[
            (a.keyid().clone(), a.public_key().clone()),
            (b.keyid().clone(), b.public_key().clone()),
            (c.keyid().clone(), c.public_key().clone()),
            ("ee".repeat(32), unsupported),
        ],
        1,
    );
    let mut targets = signed_targets(&[&a, &outsider]);
    // b signs something else; c's signature is not hex; the unsupported key "signs".
    let mut other = Metadata::new(Targets::new(expires()));
    other.signed_mut().version = 2;
    other.sign(&b, false).unwrap();
    targets.signatures.push(other.signatures[0].clone());
    targets
        .signatures
        .push(Signature::new(c.keyid().clone(), "not hex".into()));
    targets
        .signatures
        .push(Signature::new("ee".repeat(32), "00".repeat(114)));
    let report = root
        .verify_delegate("targets", &targets)
        .expect("a alone meets 1");
    assert_eq!(report.valid, vec![a.keyid().clone()]);
    assert_eq!(report.unauthorized, vec![outsider.keyid().clone()]);
    assert_eq!(report.invalid.len(), 3, "{:?}", report.invalid);
}

#[test]
fn signatures_cover_exactly_the_canonical_bytes_received() {
    // A document whose file layout differs from ours (whitespace, key order) verifies,
    // because signatures are checked over the canonical form of what was received.
    let a = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let root = root_with(&[(a.keyid().clone(), a.public_key().clone())], 1);
    let targets = signed_targets(&[&a]);
    let value = targets.to_value().unwrap();
    let pretty = serde_json::to_vec_pretty(&value).unwrap();
    let reloaded = Metadata::<Targets>::from_bytes(&pretty).unwrap();
    root.verify_delegate("targets", &reloaded)
        .expect("verifies");
    // An extension field added after signing is part of `signed`: it breaks the signature.
    let mut value = value;
    value["signed"]["x-added"] = serde_json::json!(1);
    let tampered = Metadata::<Targets>::from_value(&value).unwrap();
    assert!(matches!(
        root.verify_delegate("targets", &tampered),
        Err(VerificationError::ThresholdNotMet { role, valid: 0, .. }) if role == "targets"
    ));
}
