//! Public keys as TUF metadata describes them, signature verification, and keyids.
//!
//! Supported (TUF specification §4.2 "File formats: general principles", KEYTYPE/SCHEME):
//!
//! | keytype                         | scheme                | `keyval.public`                | signature       |
//! |---------------------------------|-----------------------|--------------------------------|-----------------|
//! | `ed25519`                       | `ed25519`             | hex of the 32 raw bytes        | hex, 64 bytes   |
//! | `ecdsa` / `ecdsa-sha2-nistp256` | `ecdsa-sha2-nistp256` | PEM SubjectPublicKeyInfo       | hex of DER      |
//! | `rsa`                           | `rsassa-pss-sha256`   | PEM SubjectPublicKeyInfo       | hex             |
//!
//! A key of any other type still loads (so metadata carrying it round-trips), but can
//! verify nothing: its signatures simply do not count toward a threshold.
//!
//! A key may carry a human label (`"x-tuf-crates-label": "alice"`, see [`LABEL_FIELD`]),
//! an extension field like any other: it is not part of the keyid, so the same key
//! material has the same keyid with any label or none. Trust is by key; the label is for
//! messages.

use std::collections::BTreeMap;
use std::fmt;

use ed25519_dalek::Verifier as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use spki::DecodePublicKey;

use crate::json::{self, Map, Value};

/// A key identifier: lowercase hex of the SHA-256 of the key's canonical JSON.
pub type KeyId = String;

/// The extension field of a key object holding its human label.
pub const LABEL_FIELD: &str = "x-tuf-crates-label";

/// Longest label accepted, in bytes of UTF-8.
pub const MAX_LABEL_LEN: usize = 128;

/// Why a text cannot be a key's label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelError {
    /// The label is empty.
    #[error("a label must not be empty")]
    Empty,
    /// The label is longer than [`MAX_LABEL_LEN`] bytes.
    #[error("a label is at most {MAX_LABEL_LEN} bytes, this one is {len}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The label holds a character that could disguise a message it is shown in: a
    /// control character (line breaks, terminal escapes), a line or paragraph separator,
    /// or a bidirectional formatting character.
    #[error("a label must not contain the character {character:?}")]
    ForbiddenCharacter {
        /// The character.
        character: char,
    },
    /// The label starts or ends with white space.
    #[error("a label must not start or end with white space")]
    Whitespace,
}

/// Checks that `label` can be shown in messages as it is: 1 to [`MAX_LABEL_LEN`] bytes,
/// no control or bidirectional formatting characters, no leading or trailing white space.
pub fn validate_label(label: &str) -> Result<(), LabelError> {
    if label.is_empty() {
        return Err(LabelError::Empty);
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(LabelError::TooLong { len: label.len() });
    }
    if let Some(character) = label.chars().find(|&c| disguises_text(c)) {
        return Err(LabelError::ForbiddenCharacter { character });
    }
    if label.trim() != label {
        return Err(LabelError::Whitespace);
    }
    Ok(())
}

/// Control characters (C0, DEL, C1), the line and paragraph separators, and Unicode's
/// bidirectional formatting characters (marks, embeddings, overrides, isolates), which
/// break or reorder the text shown around them.
fn disguises_text(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{61c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// A public key entry of root or delegations metadata (`{"keytype", "scheme", "keyval"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Key {
    /// Key type, e.g. `ed25519`, `ecdsa`, `rsa`.
    pub keytype: String,
    /// Signature scheme, e.g. `ed25519`, `ecdsa-sha2-nistp256`, `rsassa-pss-sha256`.
    pub scheme: String,
    /// Key value; `public` holds the public key for the supported types.
    pub keyval: Map<String, Value>,
    /// Fields this implementation does not know, kept verbatim.
    #[serde(flatten)]
    pub unrecognized_fields: BTreeMap<String, Value>,
}

/// Why a key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The keytype/scheme pair is not one this implementation verifies.
    #[error("unsupported key type {keytype:?} with scheme {scheme:?}")]
    Unsupported {
        /// Declared keytype.
        keytype: String,
        /// Declared scheme.
        scheme: String,
    },
    /// `keyval.public` is missing or not a string.
    #[error("key has no string `keyval.public`")]
    MissingPublic,
    /// The public key bytes or PEM could not be decoded.
    #[error("malformed {keytype} public key: {reason}")]
    Malformed {
        /// Declared keytype.
        keytype: String,
        /// What was wrong.
        reason: String,
    },
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The key itself is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The signature is not hex, or not a valid encoding for the scheme.
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// The signature does not match the message under this key.
    #[error("signature does not verify")]
    Invalid,
}

/// A decoded public key, ready to verify.
#[derive(Clone)]
pub enum VerifyingKey {
    /// Ed25519 (RFC 8032).
    Ed25519(ed25519_dalek::VerifyingKey),
    /// ECDSA over NIST P-256 with SHA-256, DER signatures.
    EcdsaP256(p256::ecdsa::VerifyingKey),
    /// RSASSA-PSS with SHA-256 and MGF1-SHA-256.
    RsaPssSha256(rsa::RsaPublicKey),
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ed25519(_) => f.write_str("VerifyingKey::Ed25519"),
            Self::EcdsaP256(_) => f.write_str("VerifyingKey::EcdsaP256"),
            Self::RsaPssSha256(_) => f.write_str("VerifyingKey::RsaPssSha256"),
        }
    }
}

impl VerifyingKey {
    /// Verifies `signature` (raw bytes, already hex-decoded) over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        match self {
            Self::Ed25519(key) => {
                let sig = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|e| SignatureError::Malformed(e.to_string()))?;
                // verify_strict: no small-order keys or malleable signatures.
                key.verify_strict(message, &sig)
                    .map_err(|_| SignatureError::Invalid)
            }
            Self::EcdsaP256(key) => {
                let sig = p256::ecdsa::Signature::from_der(signature)
                    .map_err(|e| SignatureError::Malformed(e.to_string()))?;
                key.verify(message, &sig)
                    .map_err(|_| SignatureError::Invalid)
            }
            Self::RsaPssSha256(key) => {
                // securesystemslib signs with salt length = digest length (32) and
                // verifies with automatic detection; other signers (OpenSSL's default,
                // older securesystemslib) use the maximum salt length. rsa 0.9 checks one
                // exact salt length, so accept either of the two standard ones.
                use rsa::traits::PublicKeyParts;
                let hashed = Sha256::digest(message);
                let em_len = (key.n().bits() - 1).div_ceil(8);
                let max_salt = em_len.saturating_sub(Sha256::output_size() + 2);
                [Sha256::output_size(), max_salt]
                    .into_iter()
                    .any(|salt_len| {
                        key.verify(
                            rsa::Pss::new_with_salt::<Sha256>(salt_len),
                            &hashed,
                            signature,
                        )
                        .is_ok()
                    })
                    .then_some(())
                    .ok_or(SignatureError::Invalid)
            }
        }
    }

    /// Bytes identifying the key material independently of how metadata spells it
    /// (keytype aliases, PEM formatting, hex case): two keyids naming the same key have the
    /// same identity, so a threshold counts them once.
    pub fn identity(&self) -> Vec<u8> {
        match self {
            Self::Ed25519(key) => [b"ed25519:".as_slice(), key.as_bytes()].concat(),
            Self::EcdsaP256(key) => {
                [b"p256:".as_slice(), key.to_encoded_point(true).as_bytes()].concat()
            }
            Self::RsaPssSha256(key) => {
                use rsa::traits::PublicKeyParts;
                let mut id = b"rsa:".to_vec();
                id.extend_from_slice(&key.n().to_bytes_be());
                id.push(b':');
                id.extend_from_slice(&key.e().to_bytes_be());
                id
            }
        }
    }
}

/// Keytype spellings accepted for ECDSA P-256 keys (python-tuf writes `ecdsa`).
const ECDSA_KEYTYPES: [&str; 2] = ["ecdsa", "ecdsa-sha2-nistp256"];

impl Key {
    /// Builds a key entry from a keytype, scheme and public value, with no extra fields.
    pub fn new(keytype: &str, scheme: &str, public: String) -> Self {
        let mut keyval = Map::new();
        keyval.insert("public".to_owned(), Value::String(public));
        Self {
            keytype: keytype.to_owned(),
            scheme: scheme.to_owned(),
            keyval,
            unrecognized_fields: BTreeMap::new(),
        }
    }

    /// The key's human label ([`LABEL_FIELD`]), if it has one that [`validate_label`]
    /// accepts; a label of another JSON type or with forbidden characters is `None`.
    pub fn label(&self) -> Option<&str> {
        self.unrecognized_fields
            .get(LABEL_FIELD)
            .and_then(Value::as_str)
            .filter(|label| validate_label(label).is_ok())
    }

    /// Sets the key's human label. The keyid does not change.
    pub fn set_label(&mut self, label: &str) -> Result<(), LabelError> {
        validate_label(label)?;
        self.unrecognized_fields
            .insert(LABEL_FIELD.to_owned(), Value::String(label.to_owned()));
        Ok(())
    }

    /// `keyval.public`, if present and a string.
    pub fn public(&self) -> Option<&str> {
        self.keyval.get("public").and_then(Value::as_str)
    }

    /// The keyid of this key: hex SHA-256 of the canonical JSON of
    /// `{"keytype", "scheme", "keyval"}`, as securesystemslib computes it (fields beyond
    /// those three do not change a keyid).
    pub fn keyid(&self) -> KeyId {
        let mut object = Map::new();
        object.insert("keytype".into(), Value::String(self.keytype.clone()));
        object.insert("scheme".into(), Value::String(self.scheme.clone()));
        object.insert("keyval".into(), Value::Object(self.keyval.clone()));
        let mut bytes = Vec::with_capacity(256);
        // Fails only on a float inside `keyval`, which strict parsing never produces; such
        // a key then hashes what was written before the float and matches no real keyid.
        let _ = json::write_canonical(&Value::Object(object), &mut bytes);
        hex::encode(Sha256::digest(bytes))
    }

    /// Decodes the key for verification.
    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        let public = self.public().ok_or(KeyError::MissingPublic)?;
        let malformed = |reason: String| KeyError::Malformed {
            keytype: self.keytype.clone(),
            reason,
        };
        match (self.keytype.as_str(), self.scheme.as_str()) {
            ("ed25519", "ed25519") => {
                let bytes = hex::decode(public).map_err(|e| malformed(e.to_string()))?;
                let bytes: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| malformed("expected 32 bytes".into()))?;
                ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map(VerifyingKey::Ed25519)
                    .map_err(|e| malformed(e.to_string()))
            }
            (keytype, "ecdsa-sha2-nistp256") if ECDSA_KEYTYPES.contains(&keytype) => {
                p256::ecdsa::VerifyingKey::from_public_key_pem(public)
                    .map(VerifyingKey::EcdsaP256)
                    .map_err(|e| malformed(e.to_string()))
            }
            ("rsa", "rsassa-pss-sha256") => rsa::RsaPublicKey::from_public_key_pem(public)
                .map(VerifyingKey::RsaPssSha256)
                .map_err(|e| malformed(e.to_string())),
            (keytype, scheme) => Err(KeyError::Unsupported {
                keytype: keytype.to_owned(),
                scheme: scheme.to_owned(),
            }),
        }
    }

    /// Verifies a hex-encoded signature over `message` with this key.
    pub fn verify(&self, message: &[u8], signature_hex: &str) -> Result<(), SignatureError> {
        let key = self.verifying_key()?;
        let signature =
            hex::decode(signature_hex).map_err(|e| SignatureError::Malformed(e.to_string()))?;
        key.verify(message, &signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyid_is_sha256_of_canonical_json() {
        // Canonical form: {"keytype":"ed25519","keyval":{"public":"..."},"scheme":"ed25519"}
        let key = Key::new("ed25519", "ed25519", "ab".repeat(32));
        let canonical = format!(
            r#"{{"keytype":"ed25519","keyval":{{"public":"{}"}},"scheme":"ed25519"}}"#,
            "ab".repeat(32)
        );
        assert_eq!(key.keyid(), hex::encode(Sha256::digest(canonical)));
    }

    #[test]
    fn a_label_is_kept_apart_from_the_keyid() {
        let mut key = Key::new("ed25519", "ed25519", "ab".repeat(32));
        let keyid = key.keyid();
        assert_eq!(key.label(), None);
        key.set_label("alice").expect("valid");
        assert_eq!(key.label(), Some("alice"));
        assert_eq!(key.unrecognized_fields[LABEL_FIELD], "alice");
        assert_eq!(key.keyid(), keyid);
        // A label of the wrong type, or one that could not be shown as it is, is no label.
        key.unrecognized_fields
            .insert(LABEL_FIELD.into(), Value::Bool(true));
        assert_eq!(key.label(), None);
        key.unrecognized_fields
            .insert(LABEL_FIELD.into(), "al\u{1b}[2Jice".into());
        assert_eq!(key.label(), None);
        // A refused label leaves the key as it was.
        assert_eq!(key.set_label(""), Err(LabelError::Empty));
        assert_eq!(key.unrecognized_fields[LABEL_FIELD], "al\u{1b}[2Jice");
    }

    #[test]
    fn labels_that_could_disguise_a_message_are_refused() {
        for ok in [
            "alice",
            "Alice Liddell",
            "ä-π 名前",
            &"x".repeat(MAX_LABEL_LEN),
        ] {
            assert_eq!(validate_label(ok), Ok(()), "{ok:?}");
        }
        assert_eq!(validate_label(""), Err(LabelError::Empty));
        assert_eq!(
            validate_label(&"é".repeat(65)),
            Err(LabelError::TooLong { len: 130 })
        );
        for (bad, character) in [
            ("ali\nce", '\n'),
            ("alice\r", '\r'),
            ("\u{1b}[31malice", '\u{1b}'),
            ("alice\u{7f}", '\u{7f}'),
            ("alice\u{85}", '\u{85}'),
            ("ecila\u{202e}", '\u{202e}'),
            ("a\u{2066}b", '\u{2066}'),
            ("a\u{2069}b", '\u{2069}'),
            ("a\u{200f}b", '\u{200f}'),
            ("a\u{61c}b", '\u{61c}'),
            ("a\u{2028}b", '\u{2028}'),
        ] {
            assert_eq!(
                validate_label(bad),
                Err(LabelError::ForbiddenCharacter { character }),
                "{bad:?}"
            );
        }
        for bad in [" alice", "alice ", "alice\u{3000}"] {
            assert_eq!(validate_label(bad), Err(LabelError::Whitespace), "{bad:?}");
        }
    }

    #[test]
    fn unsupported_and_malformed_keys_are_errors() {
        let key = Key::new("ed448", "ed448", "00".into());
        assert!(matches!(
            key.verifying_key(),
            Err(KeyError::Unsupported { .. })
        ));
        let key = Key::new("ed25519", "ed25519", "zz".into());
        assert!(matches!(
            key.verifying_key(),
            Err(KeyError::Malformed { .. })
        ));
        let key = Key::new("ecdsa", "ecdsa-sha2-nistp256", "not pem".into());
        assert!(matches!(
            key.verifying_key(),
            Err(KeyError::Malformed { .. })
        ));
        assert!(matches!(
            key.verify(b"m", "00"),
            Err(SignatureError::Key(KeyError::Malformed { .. }))
        ));
    }
}
