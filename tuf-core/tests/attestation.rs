#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Release attestations: signed and verified with ed25519 and P-256 keys, round-tripped
//! through JSON, and refused, each with its own error, when anything about them is off:
//! a changed byte, another key, a keyid that is not the key's, another release, a
//! duplicated signature, an unsupported key, a missing field, a TUF role's signature
//! replayed as one.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use tuf_core::attestation::{
    Attestation, AttestationError, AttestationKind, ReleaseStatement, ATTESTATION_TYPE,
    MAX_ATTESTATION_BYTES,
};
use tuf_core::hash::{sha256_hashes, Hashes};
use tuf_core::keys::{KeyError, SignatureError};
use tuf_core::metadata::{Metadata, MetadataError, TargetFile, Targets};
use tuf_core::signer::PrivateKeyError;
use tuf_core::{Key, KeyAlgorithm, KeyId, PrivateKey, Signer};

const INDEX_DIGEST: &str = "5f1c0b6d6e8f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b";

fn date() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()
}

fn tarball_hashes() -> Hashes {
    sha256_hashes(b"the .crate tarball")
}

fn statement() -> ReleaseStatement {
    ReleaseStatement {
        kind: AttestationKind::Release,
        name: "serde".into(),
        version: "1.0.203".into(),
        length: 18,
        hashes: tarball_hashes(),
        index_entry_sha256: INDEX_DIGEST.into(),
        date: date(),
        label: "alice".into(),
        unrecognized_fields: Default::default(),
    }
}

fn keys() -> [PrivateKey; 2] {
    [
        PrivateKey::generate(KeyAlgorithm::Ed25519),
        PrivateKey::generate(KeyAlgorithm::EcdsaP256),
    ]
}

fn signed(key: &PrivateKey) -> Attestation {
    Attestation::sign(statement(), key).unwrap()
}

/// `verify_for` the release `statement()` describes.
fn verify_for_release(attestation: &Attestation) -> Result<(), AttestationError> {
    attestation.verify_for("serde", "1.0.203", 18, &tarball_hashes(), INDEX_DIGEST)
}

/// Parses `value` and verifies the result.
fn parse_and_verify(value: &Value) -> Result<Attestation, AttestationError> {
    let attestation = Attestation::from_value(value)?;
    attestation.verify()?;
    Ok(attestation)
}

#[test]
fn signs_and_verifies_with_ed25519_and_p256() {
    for key in keys() {
        let attestation = signed(&key);
        assert_eq!(attestation.key, *key.public_key());
        assert_eq!(attestation.signature.keyid, *key.keyid());
        attestation.verify().unwrap();
        verify_for_release(&attestation).unwrap();
        // The signature covers the canonical JSON of the statement, and nothing else.
        let bytes = attestation.statement.canonical_bytes().unwrap();
        key.public_key()
            .verify(&bytes, &attestation.signature.sig)
            .unwrap();
    }
}

#[test]
fn p256_signatures_are_der_as_tuf_expects() {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let mut attestation = signed(&key);
    let der = hex::decode(&attestation.signature.sig).unwrap();
    assert_eq!(der.first(), Some(&0x30), "a DER SEQUENCE");
    // The same signature as raw r || s, which TUF does not use, is refused.
    let signature = p256::ecdsa::Signature::from_der(&der).unwrap();
    attestation.signature.sig = hex::encode(signature.to_bytes());
    assert!(matches!(
        attestation.verify(),
        Err(AttestationError::BadSignature(SignatureError::Malformed(_)))
    ));
}

#[test]
fn the_json_form_is_as_documented_and_round_trips() {
    let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let mut statement = statement();
    statement.kind = AttestationKind::Review;
    statement.unrecognized_fields.insert(
        "x-comment".into(),
        json!({"reviewed": ["src/lib.rs"], "n": 3}),
    );
    let attestation = Attestation::sign(statement, &key).unwrap();
    let value = attestation.to_value();
    let public = key.public_key().public().unwrap();
    assert_eq!(
        value,
        json!({
            "signed": {
                "_type": "tuf-crates/release-attestation",
                "spec_version": "1",
                "kind": "review",
                "name": "serde",
                "version": "1.0.203",
                "length": 18,
                "hashes": tarball_hashes(),
                "index_entry_sha256": INDEX_DIGEST,
                "date": "2025-01-02T03:04:05Z",
                "label": "alice",
                "x-comment": {"reviewed": ["src/lib.rs"], "n": 3},
            },
            "key": {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": public}},
            "signatures": [{"keyid": key.keyid(), "sig": attestation.signature.sig}],
        })
    );
    // The signed bytes are the canonical JSON of `signed`, byte for byte.
    let expected = format!(
        concat!(
            r#"{{"_type":"tuf-crates/release-attestation","date":"2025-01-02T03:04:05Z","#,
            r#""hashes":{{"sha256":"{}"}},"index_entry_sha256":"{}","kind":"review","#,
            r#""label":"alice","length":18,"name":"serde","spec_version":"1","#,
            r#""version":"1.0.203","x-comment":{{"n":3,"reviewed":["src/lib.rs"]}}}}"#
        ),
        &tarball_hashes()["sha256"],
        INDEX_DIGEST
    );
    assert_eq!(
        String::from_utf8(attestation.statement.canonical_bytes().unwrap()).unwrap(),
        expected
    );
    // Through a value and through text, the extension field kept.
    let parsed = parse_and_verify(&value).unwrap();
    assert_eq!(parsed, attestation);
    assert_eq!(parsed.to_value(), value);
    let text = serde_json::to_vec(&value).unwrap();
    let parsed = Attestation::from_bytes(&text).unwrap();
    assert_eq!(parsed, attestation);
    parsed.verify().unwrap();
    // A changed extension field is a changed statement.
    let mut changed = value.clone();
    changed["signed"]["x-comment"]["n"] = json!(4);
    assert!(matches!(
        parse_and_verify(&changed),
        Err(AttestationError::BadSignature(SignatureError::Invalid))
    ));
}

#[test]
fn signing_cuts_the_date_to_whole_seconds() {
    let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let mut statement = statement();
    statement.date = date() + chrono::Duration::milliseconds(750);
    let attestation = Attestation::sign(statement, &key).unwrap();
    assert_eq!(attestation.statement.date, date());
    assert_eq!(
        Attestation::from_value(&attestation.to_value()).unwrap(),
        attestation
    );
}

#[test]
fn a_changed_byte_of_the_statement_is_a_bad_signature() {
    for key in keys() {
        let value = signed(&key).to_value();
        for (field, changed) in [
            ("label", json!("alicf")),
            ("version", json!("1.0.204")),
            ("length", json!(19)),
            ("kind", json!("review")),
            ("date", json!("2025-01-02T03:04:06Z")),
        ] {
            let mut value = value.clone();
            value["signed"][field] = changed;
            assert!(
                matches!(
                    parse_and_verify(&value),
                    Err(AttestationError::BadSignature(SignatureError::Invalid))
                ),
                "{field}"
            );
        }
        // An added field, too.
        let mut value = value.clone();
        value["signed"]["x-added"] = json!(true);
        assert!(matches!(
            parse_and_verify(&value),
            Err(AttestationError::BadSignature(SignatureError::Invalid))
        ));
    }
}

#[test]
fn a_signature_by_another_key_is_a_bad_signature() {
    let [alice, bob] = keys();
    let mut attestation = signed(&alice);
    // Bob's key and keyid, Alice's signature (an Ed25519 one, not even DER).
    attestation.key = bob.public_key().clone();
    attestation.signature.keyid = bob.keyid().clone();
    assert!(matches!(
        attestation.verify(),
        Err(AttestationError::BadSignature(SignatureError::Malformed(_)))
    ));
    // Another Ed25519 key, so the signature at least has the right shape.
    let carol = PrivateKey::generate(KeyAlgorithm::Ed25519);
    attestation.key = carol.public_key().clone();
    attestation.signature.keyid = carol.keyid().clone();
    assert!(matches!(
        attestation.verify(),
        Err(AttestationError::BadSignature(SignatureError::Invalid))
    ));
    // The same with P-256 keys.
    let dave = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let mut attestation = signed(&bob);
    attestation.key = dave.public_key().clone();
    attestation.signature.keyid = dave.keyid().clone();
    assert!(matches!(
        attestation.verify(),
        Err(AttestationError::BadSignature(SignatureError::Invalid))
    ));
    // A signature that is not hex.
    let mut attestation = signed(&alice);
    attestation.signature.sig = "not hex".into();
    assert!(matches!(
        attestation.verify(),
        Err(AttestationError::BadSignature(SignatureError::Malformed(_)))
    ));
}

#[test]
fn a_keyid_that_is_not_the_keys_is_a_key_mismatch() {
    for key in keys() {
        let mut value = signed(&key).to_value();
        value["signatures"][0]["keyid"] = json!("ab".repeat(32));
        let err = parse_and_verify(&value).unwrap_err();
        let AttestationError::KeyMismatch {
            signature_keyid,
            key_keyid,
        } = err
        else {
            panic!("{err:?}")
        };
        assert_eq!(signature_keyid, "ab".repeat(32));
        assert_eq!(key_keyid, *key.keyid());
    }
    // The key swapped for another, the signature's keyid left: also a mismatch, found
    // before any signature is checked.
    let [alice, bob] = keys();
    let mut attestation = signed(&alice);
    attestation.key = bob.public_key().clone();
    assert!(matches!(
        attestation.verify(),
        Err(AttestationError::KeyMismatch { signature_keyid, key_keyid })
            if signature_keyid == *alice.keyid() && key_keyid == *bob.keyid()
    ));
}

#[test]
fn a_key_label_does_not_change_what_verifies() {
    let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let mut attestation = signed(&key);
    attestation.key.set_label("alice").unwrap();
    attestation.verify().unwrap();
    let parsed = parse_and_verify(&attestation.to_value()).unwrap();
    assert_eq!(parsed.key.label(), Some("alice"));
}

fn other_release_field(result: Result<(), AttestationError>) -> (String, String, String) {
    match result {
        Err(AttestationError::OtherRelease {
            field,
            attested,
            expected,
        }) => (field, attested, expected),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_statement_about_another_release_is_refused_naming_the_field() {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let attestation = signed(&key);
    let hashes = tarball_hashes();
    let sha256 = hashes["sha256"].to_owned();
    let check = |name: &str, version: &str, length: u64, hashes: &Hashes, entry: &str| {
        other_release_field(attestation.verify_for(name, version, length, hashes, entry))
    };
    assert_eq!(
        check("serde_json", "1.0.203", 18, &hashes, INDEX_DIGEST),
        ("name".into(), "serde".into(), "serde_json".into())
    );
    assert_eq!(
        check("serde", "1.0.204", 18, &hashes, INDEX_DIGEST),
        ("version".into(), "1.0.203".into(), "1.0.204".into())
    );
    assert_eq!(
        check("serde", "1.0.203", 17, &hashes, INDEX_DIGEST),
        ("length".into(), "18".into(), "17".into())
    );
    let other = sha256_hashes(b"another tarball");
    assert_eq!(
        check("serde", "1.0.203", 18, &other, INDEX_DIGEST),
        (
            "hashes.sha256".into(),
            sha256.clone(),
            other["sha256"].to_owned()
        )
    );
    // A digest the release has and the statement lacks, and the other way round.
    let mut more = hashes.clone();
    more.insert("sha512".into(), "00".repeat(64));
    assert_eq!(
        check("serde", "1.0.203", 18, &more, INDEX_DIGEST),
        ("hashes.sha512".into(), "(none)".into(), "00".repeat(64))
    );
    assert_eq!(
        check("serde", "1.0.203", 18, &Hashes::new(), INDEX_DIGEST),
        ("hashes.sha256".into(), sha256.clone(), "(none)".into())
    );
    let entry = "0".repeat(64);
    assert_eq!(
        check("serde", "1.0.203", 18, &hashes, &entry),
        ("index_entry_sha256".into(), INDEX_DIGEST.into(), entry)
    );
    // Hex is compared without regard to case; names and versions exactly.
    let upper: Hashes = [("sha256".to_owned(), sha256.to_ascii_uppercase())].into();
    attestation
        .verify_for(
            "serde",
            "1.0.203",
            18,
            &upper,
            &INDEX_DIGEST.to_ascii_uppercase(),
        )
        .unwrap();
    assert_eq!(
        check("Serde", "1.0.203", 18, &hashes, INDEX_DIGEST).0,
        "name"
    );
    // verify_for verifies the signature first.
    let mut forged = attestation.clone();
    forged.statement.version = "1.0.204".into();
    assert!(matches!(
        forged.verify_for("serde", "1.0.204", 18, &hashes, INDEX_DIGEST),
        Err(AttestationError::BadSignature(SignatureError::Invalid))
    ));
}

#[test]
fn exactly_one_signature_no_duplicates() {
    let [alice, bob] = keys();
    let value = signed(&alice).to_value();
    let signature = value["signatures"][0].clone();
    let mut twice = value.clone();
    twice["signatures"] = json!([signature, signature]);
    assert!(matches!(
        Attestation::from_value(&twice),
        Err(AttestationError::DuplicateSignature { keyid }) if keyid == *alice.keyid()
    ));
    let other = signed(&bob).to_value()["signatures"][0].clone();
    let mut two = value.clone();
    two["signatures"] = json!([signature, other]);
    assert!(matches!(
        Attestation::from_value(&two),
        Err(AttestationError::SignatureCount { count: 2 })
    ));
    let mut none = value.clone();
    none["signatures"] = json!([]);
    assert!(matches!(
        Attestation::from_value(&none),
        Err(AttestationError::SignatureCount { count: 0 })
    ));
    let mut not_a_list = value;
    not_a_list["signatures"] = signature;
    assert!(matches!(
        Attestation::from_value(&not_a_list),
        Err(AttestationError::Malformed { path, .. }) if path == "signatures"
    ));
}

#[test]
fn an_unsupported_key_type_verifies_nothing() {
    let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let mut value = signed(&key).to_value();
    value["key"] = json!({"keytype": "ed448", "scheme": "ed448", "keyval": {"public": "00"}});
    let ed448_keyid = Key::new("ed448", "ed448", "00".into()).keyid();
    value["signatures"][0]["keyid"] = json!(ed448_keyid);
    // It loads, and verifies nothing.
    let attestation = Attestation::from_value(&value).unwrap();
    assert!(matches!(
        attestation.verify(),
        Err(AttestationError::UnsupportedKey { keytype, scheme })
            if keytype == "ed448" && scheme == "ed448"
    ));
    // A supported type with an undecodable key is a bad key.
    value["key"] = json!({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "zz"}});
    assert!(matches!(
        Attestation::from_value(&value).unwrap().verify(),
        Err(AttestationError::BadKey(KeyError::Malformed { .. }))
    ));
    // Nor does anything sign with one.
    let signer = FakeSigner::new(Key::new("ed448", "ed448", "00".into()), vec![0; 57]);
    assert!(matches!(
        Attestation::sign(statement(), &signer),
        Err(AttestationError::UnsupportedKey { .. })
    ));
}

fn malformed_path(result: Result<Attestation, AttestationError>) -> String {
    match result {
        Err(AttestationError::Malformed { path, .. }) => path,
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_field_is_required() {
    let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let value = signed(&key).to_value();
    for field in [
        "_type",
        "spec_version",
        "kind",
        "name",
        "version",
        "length",
        "hashes",
        "index_entry_sha256",
        "date",
        "label",
    ] {
        let mut missing = value.clone();
        missing["signed"].as_object_mut().unwrap().remove(field);
        assert_eq!(
            malformed_path(Attestation::from_value(&missing)),
            format!("signed.{field}")
        );
    }
    for field in ["signed", "key", "signatures"] {
        let mut missing = value.clone();
        missing.as_object_mut().unwrap().remove(field);
        assert_eq!(malformed_path(Attestation::from_value(&missing)), field);
    }
    for field in ["keytype", "scheme", "keyval"] {
        let mut missing = value.clone();
        missing["key"].as_object_mut().unwrap().remove(field);
        assert_eq!(
            malformed_path(Attestation::from_value(&missing)),
            format!("key.{field}")
        );
    }
    for field in ["keyid", "sig"] {
        let mut missing = value.clone();
        missing["signatures"][0]
            .as_object_mut()
            .unwrap()
            .remove(field);
        assert_eq!(
            malformed_path(Attestation::from_value(&missing)),
            format!("signatures[0].{field}")
        );
    }
}

#[test]
fn malformed_fields_are_named() {
    let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let value = signed(&key).to_value();
    let sha256 = tarball_hashes()["sha256"].to_owned();
    for (path, changed) in [
        ("signed.kind", json!("approval")),
        ("signed.kind", json!(1)),
        ("signed.name", json!("not a crate")),
        ("signed.name", json!(["serde"])),
        ("signed.version", json!("1.0")),
        ("signed.length", json!(-1)),
        ("signed.length", json!("18")),
        ("signed.hashes", json!({})),
        ("signed.hashes", json!([sha256])),
        ("signed.hashes.sha256", json!(sha256.to_ascii_uppercase())),
        ("signed.hashes.sha256", json!("abc")),
        ("signed.hashes.sha256", json!(5)),
        ("signed.hashes", json!({"SHA256": sha256})),
        ("signed.index_entry_sha256", json!(&INDEX_DIGEST[..62])),
        (
            "signed.index_entry_sha256",
            json!(INDEX_DIGEST.to_ascii_uppercase()),
        ),
        ("signed.date", json!("2025-01-02T03:04:05.5Z")),
        ("signed.date", json!("2025-01-02 03:04:05")),
        ("signed.label", json!("")),
        ("signed.label", json!("alice\u{1b}[2J")),
        ("signed.label", json!(null)),
        ("signed.spec_version", json!(1)),
        ("signed._type", json!(null)),
    ] {
        let mut bad = value.clone();
        let (_, name) = path.split_once('.').unwrap();
        match name.split_once('.') {
            Some((parent, child)) => bad["signed"][parent][child] = changed.clone(),
            None => bad["signed"][name] = changed.clone(),
        }
        assert_eq!(
            malformed_path(Attestation::from_value(&bad)),
            path,
            "{path} = {changed}"
        );
    }
    let mut bad = value.clone();
    bad["extra"] = json!(1);
    assert_eq!(malformed_path(Attestation::from_value(&bad)), "extra");
    let mut bad = value.clone();
    bad["key"]["keyval"] = json!("00");
    assert_eq!(malformed_path(Attestation::from_value(&bad)), "key.keyval");
    assert_eq!(malformed_path(Attestation::from_value(&json!([]))), "");
    // Another version of this format, and another type of document.
    let mut bad = value.clone();
    bad["signed"]["spec_version"] = json!("2");
    assert!(matches!(
        Attestation::from_value(&bad),
        Err(AttestationError::UnsupportedVersion { found }) if found == "2"
    ));
    let mut bad = value;
    bad["signed"]["_type"] = json!("tuf-crates/yank-attestation");
    assert!(matches!(
        Attestation::from_value(&bad),
        Err(AttestationError::WrongType { found }) if found == "tuf-crates/yank-attestation"
    ));
}

#[test]
fn text_input_is_strict_and_bounded() {
    let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let text = serde_json::to_string(&signed(&key).to_value()).unwrap();
    let duplicated = text.replacen(r#""label":"alice""#, r#""label":"alice","label":"bob""#, 1);
    assert_ne!(duplicated, text);
    assert!(matches!(
        Attestation::from_bytes(duplicated.as_bytes()),
        Err(AttestationError::Json(_))
    ));
    let long = format!("{text:width$}", width = MAX_ATTESTATION_BYTES + 1);
    assert!(matches!(
        Attestation::from_bytes(long.as_bytes()),
        Err(AttestationError::Json(_))
    ));
    // A value over the limit, however it was parsed.
    let mut value = signed(&key).to_value();
    value["signed"]["x-padding"] = json!("x".repeat(MAX_ATTESTATION_BYTES));
    assert!(matches!(
        Attestation::from_value(&value),
        Err(AttestationError::TooLarge {
            max: MAX_ATTESTATION_BYTES,
            ..
        })
    ));
    // Nor is one signed.
    let mut statement = statement();
    statement
        .unrecognized_fields
        .insert("x-padding".into(), json!("x".repeat(MAX_ATTESTATION_BYTES)));
    assert!(matches!(
        Attestation::sign(statement, &key),
        Err(AttestationError::TooLarge { .. })
    ));
}

#[test]
fn a_tuf_roles_signature_is_not_an_attestation() {
    let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let mut role = Metadata::new(Targets::new(date()));
    role.signed_mut().targets.insert(
        "crates/serde/serde/serde-1.0.203.crate".into(),
        TargetFile::from_bytes(b"the .crate tarball"),
    );
    role.sign(&key, false).unwrap();
    let role_value = role.to_value().unwrap();
    let role_signature = role_value["signatures"][0].clone();
    let genuine = signed(&key).to_value();

    // The role's signed object with its signature, dressed as an attestation.
    let mut replay = genuine.clone();
    replay["signed"] = role_value["signed"].clone();
    replay["signatures"] = json!([role_signature]);
    assert!(matches!(
        Attestation::from_value(&replay),
        Err(AttestationError::WrongType { found }) if found == "targets"
    ));
    // ... with the role's fields renamed to pass as a statement: the signature covers
    // the role's bytes, not these.
    let mut replay = genuine.clone();
    replay["signatures"] = json!([role_signature]);
    assert!(matches!(
        parse_and_verify(&replay),
        Err(AttestationError::BadSignature(SignatureError::Invalid))
    ));
    // The role's exact canonical bytes, re-signed with the statement's `_type` spliced
    // in, are a different message.
    let role_bytes = role.signed_bytes().unwrap().to_vec();
    let mut replay = genuine.clone();
    replay["signatures"][0]["sig"] = json!(hex::encode(key.sign(&role_bytes).unwrap()));
    assert!(matches!(
        parse_and_verify(&replay),
        Err(AttestationError::BadSignature(SignatureError::Invalid))
    ));
    // And the other way round: an attestation is not a role.
    assert!(matches!(
        Metadata::<Targets>::from_value(&genuine),
        Err(MetadataError::WrongType { found, .. }) if found == ATTESTATION_TYPE
    ));
}

/// A signer answering with fixed bytes, under a key and keyid of the test's choosing.
#[derive(Debug)]
struct FakeSigner {
    key: Key,
    keyid: KeyId,
    signature: Vec<u8>,
}

impl FakeSigner {
    fn new(key: Key, signature: Vec<u8>) -> Self {
        Self {
            keyid: key.keyid(),
            key,
            signature,
        }
    }
}

impl Signer for FakeSigner {
    fn public_key(&self) -> &Key {
        &self.key
    }
    fn keyid(&self) -> &KeyId {
        &self.keyid
    }
    fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, PrivateKeyError> {
        Ok(self.signature.clone())
    }
}

#[test]
fn signing_refuses_what_verifying_would() {
    let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    // A signer whose signatures do not match its public key.
    let wrong = FakeSigner::new(key.public_key().clone(), vec![0; 64]);
    assert!(matches!(
        Attestation::sign(statement(), &wrong),
        Err(AttestationError::BadSignature(_))
    ));
    // A signer whose keyid is not its key's TUF keyid.
    let mut renamed = FakeSigner::new(key.public_key().clone(), vec![0; 64]);
    renamed.keyid = "legacy-id".into();
    assert!(matches!(
        Attestation::sign(statement(), &renamed),
        Err(AttestationError::KeyMismatch { signature_keyid, .. }) if signature_keyid == "legacy-id"
    ));
    // Statements that break the rules.
    let mut bad = statement();
    bad.name = "../serde".into();
    assert!(matches!(
        Attestation::sign(bad, &key),
        Err(AttestationError::Malformed { path, .. }) if path == "signed.name"
    ));
    let mut bad = statement();
    bad.unrecognized_fields
        .insert("version".into(), json!("9.9.9"));
    assert!(matches!(
        Attestation::sign(bad, &key),
        Err(AttestationError::Malformed { path, .. }) if path == "signed.version"
    ));
    let mut bad = statement();
    bad.label = "alice\nverified: yes".into();
    assert!(matches!(
        Attestation::sign(bad, &key),
        Err(AttestationError::Malformed { path, .. }) if path == "signed.label"
    ));
    let mut bad = statement();
    bad.date = Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
    assert!(matches!(
        Attestation::sign(bad, &key),
        Err(AttestationError::Malformed { path, .. }) if path == "signed.date"
    ));
    let mut bad = statement();
    bad.unrecognized_fields.insert("x-float".into(), json!(0.5));
    assert!(matches!(
        Attestation::sign(bad, &key),
        Err(AttestationError::Canonical(_))
    ));
    let mut bad = statement();
    bad.hashes = (0..9).map(|i| (format!("sha{i}"), "00".into())).collect();
    assert!(matches!(
        Attestation::sign(bad, &key),
        Err(AttestationError::Malformed { path, .. }) if path == "signed.hashes"
    ));
    // A hand-edited attestation that breaks them does not verify either.
    let mut edited = signed(&key);
    edited.statement.hashes.clear();
    assert!(matches!(
        edited.verify(),
        Err(AttestationError::Malformed { path, .. }) if path == "signed.hashes"
    ));
}
