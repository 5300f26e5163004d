//! Per-release developer attestations: one developer's own signature over a canonical
//! statement about one crate release.
//!
//! A namespace role's signature covers the whole role, so when several owners share it
//! nothing in TUF records which of them released or reviewed a given version. An
//! attestation does: it says "the key `K` (labelled `alice`) vouches that it released (or
//! reviewed) `NAME VERSION`, the `.crate` of this length and these hashes, with this
//! index entry". It never authorises a release: the TUF delegation does that. It records
//! who vouched for it, for people to read and for trust policies to count.
//!
//! # The JSON form
//!
//! ```json
//! {
//!   "signed": {
//!     "_type": "tuf-crates/release-attestation",
//!     "spec_version": "1",
//!     "kind": "release",
//!     "name": "serde",
//!     "version": "1.0.203",
//!     "length": 77935,
//!     "hashes": {"sha256": "…64 hex digits…"},
//!     "index_entry_sha256": "…64 hex digits…",
//!     "date": "2025-01-02T03:04:05Z",
//!     "label": "alice"
//!   },
//!   "key": {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "…"}},
//!   "signatures": [{"keyid": "…", "sig": "…"}]
//! }
//! ```
//!
//! * The signature covers the canonical JSON ([`crate::json::to_canonical`], the form
//!   securesystemslib's `encode_canonical` writes) of `signed`, exactly as TUF metadata
//!   signatures cover theirs, and is made and checked by the same code
//!   ([`Signature::create`], [`Key::verify`]).
//! * `_type` is [`ATTESTATION_TYPE`], which no TUF role has, and every TUF role's
//!   `_type` is refused here: a signature over a role can never be replayed as an
//!   attestation, nor an attestation's as a role's. `spec_version` is
//!   [`ATTESTATION_SPEC_VERSION`], the version of this format (not of TUF's).
//! * `kind` is `release` (by an author) or `review` (by a reviewer).
//! * `name` and `version` are the release (a crate name and a semantic version as
//!   [`crate::layout`] checks them); `length` and `hashes` are those of the `.crate`
//!   tarball as its TUF target lists them; `index_entry_sha256` is the lowercase hex
//!   SHA-256 of the release's canonical index entry, computed by the caller (without the
//!   attestations themselves, which the entry may carry under [`INDEX_FIELD`]).
//! * `date` is when the statement was made, in TUF's `YYYY-MM-DDTHH:MM:SSZ`.
//! * `label` is the signer's human label ([`crate::keys::validate_label`]): for messages,
//!   never for trust, which is by key.
//! * Any other field of `signed` is kept and signed, as TUF keeps extension fields.
//! * `key` is the signing key as a TUF key object (extension fields such as its label
//!   kept), and `signatures` holds exactly one signature, whose keyid must be that key's
//!   TUF keyid ([`Key::keyid`]).
//!
//! Parsing is strict: every field is required and of its type, the envelope has no other
//! fields, digests are lowercase hex, and the whole attestation is at most
//! [`MAX_ATTESTATION_BYTES`] in canonical form. Parsing is also lossless: every field of
//! `signed` is either modelled exactly (the date only in the form that re-serialises to
//! the same text) or kept in [`ReleaseStatement::unrecognized_fields`], so the bytes
//! [`Attestation::verify`] checks are the canonical bytes of `signed` as received.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::hash::Hashes;
use crate::json::{self, CanonicalError, JsonError, Map, Value};
use crate::keys::{self, Key, KeyError, KeyId, LabelError, SignatureError};
use crate::layout::{self, LayoutError};
use crate::metadata::{format_expires, parse_expires, whole_seconds, Signature};
use crate::signer::{PrivateKeyError, Signer};

/// `signed._type` of an attestation.
pub const ATTESTATION_TYPE: &str = "tuf-crates/release-attestation";

/// `signed.spec_version` of an attestation: the version of this format.
pub const ATTESTATION_SPEC_VERSION: &str = "1";

/// The field of a release's index entry under which its attestations are stored, as a
/// JSON array.
pub const INDEX_FIELD: &str = "x-tuf-crates-attestations";

/// Largest attestation accepted, in bytes of its canonical form (and of its JSON text, for
/// [`Attestation::from_bytes`]).
pub const MAX_ATTESTATION_BYTES: usize = 32 * 1024;

/// Most digests a statement may list.
pub const MAX_HASHES: usize = 8;

/// Longest hash algorithm name accepted.
const MAX_ALGORITHM_LEN: usize = 32;

/// Longest digest accepted, in hex digits (SHA-512's is 128).
const MAX_DIGEST_LEN: usize = 128;

/// The fields of `signed` this module models; extension fields must not reuse them.
const SIGNED_FIELDS: [&str; 10] = [
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
];

/// The fields of the envelope.
const ENVELOPE_FIELDS: [&str; 3] = ["signed", "key", "signatures"];

/// What the signer of an attestation vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttestationKind {
    /// The signer, an author, released this version (JSON `"release"`).
    Release,
    /// The signer, a reviewer, reviewed this version (JSON `"review"`).
    Review,
}

impl AttestationKind {
    /// The JSON spelling: `release` or `review`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Review => "review",
        }
    }

    /// Reads the JSON spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "release" => Some(Self::Release),
            "review" => Some(Self::Review),
            _ => None,
        }
    }
}

impl std::fmt::Display for AttestationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an attestation says: who vouches for which release, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseStatement {
    /// Released or reviewed.
    pub kind: AttestationKind,
    /// The crate's name.
    pub name: String,
    /// The release's version.
    pub version: String,
    /// Length of the `.crate` tarball, as its TUF target signs it.
    pub length: u64,
    /// Digests of the `.crate` tarball, as its TUF target signs them.
    pub hashes: Hashes,
    /// Lowercase hex SHA-256 of the release's canonical index entry (computed by the
    /// caller).
    pub index_entry_sha256: String,
    /// When the statement was made; whole seconds ([`Attestation::sign`] drops any
    /// fraction).
    pub date: DateTime<Utc>,
    /// The signer's human label, e.g. `alice`: for messages, never for trust.
    pub label: String,
    /// Extension fields of `signed`, kept and signed.
    pub unrecognized_fields: BTreeMap<String, Value>,
}

/// A signed [`ReleaseStatement`] with the key that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// What is attested.
    pub statement: ReleaseStatement,
    /// The signing key.
    pub key: Key,
    /// The signature: the key's keyid and the hex signature over the canonical JSON of
    /// the statement.
    pub signature: Signature,
}

/// Why an attestation was refused, or could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationError {
    /// A field is missing, of the wrong type, or breaks a rule of the format.
    #[error("malformed attestation at `{path}`: {message}")]
    Malformed {
        /// Where, as `signed.hashes.sha256` (empty for the whole document).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// `signed._type` is not [`ATTESTATION_TYPE`]: a TUF role or another kind of
    /// statement.
    #[error("`signed._type` is {found:?}: not a release attestation ({ATTESTATION_TYPE:?})")]
    WrongType {
        /// The `_type` found.
        found: String,
    },
    /// `signed.spec_version` is not [`ATTESTATION_SPEC_VERSION`].
    #[error(
        "unsupported attestation spec_version {found:?} (this implementation reads \
         {ATTESTATION_SPEC_VERSION:?})"
    )]
    UnsupportedVersion {
        /// The version found.
        found: String,
    },
    /// The attestation is larger than [`MAX_ATTESTATION_BYTES`].
    #[error("the attestation is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// Its size in canonical form (or as text).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not strict JSON ([`Attestation::from_bytes`]).
    #[error(transparent)]
    Json(#[from] JsonError),
    /// There is not exactly one signature.
    #[error("an attestation has exactly one signature, this one has {count}")]
    SignatureCount {
        /// Signatures found.
        count: usize,
    },
    /// The same keyid signs more than once.
    #[error("keyid {keyid} signs the attestation more than once")]
    DuplicateSignature {
        /// The repeated keyid.
        keyid: KeyId,
    },
    /// The signature's keyid is not the TUF keyid of the attestation's key (or, when
    /// signing, the signer's keyid is not its key's).
    #[error("the signature is by keyid {signature_keyid}, but the key's keyid is {key_keyid}")]
    KeyMismatch {
        /// The keyid the signature names.
        signature_keyid: KeyId,
        /// The keyid of the key.
        key_keyid: KeyId,
    },
    /// The key's type and scheme are not ones this implementation verifies.
    #[error(
        "unsupported key type {keytype:?} with scheme {scheme:?} (attestations are verified \
         with ed25519, ecdsa-sha2-nistp256 and rsassa-pss-sha256 keys)"
    )]
    UnsupportedKey {
        /// Declared keytype.
        keytype: String,
        /// Declared scheme.
        scheme: String,
    },
    /// The key's public value cannot be decoded.
    #[error("the attestation's key is unusable: {0}")]
    BadKey(#[source] KeyError),
    /// The signature is malformed or does not verify over the statement under the key.
    #[error("the attestation's signature does not verify: {0}")]
    BadSignature(#[source] SignatureError),
    /// The statement is about another release than the one asked about.
    #[error("the attestation is about another release: its {field} is {attested}, not {expected}")]
    OtherRelease {
        /// The field that differs: `name`, `version`, `length`, `hashes.ALGORITHM` or
        /// `index_entry_sha256`.
        field: String,
        /// What the attestation says (`(none)` for a digest it does not list).
        attested: String,
        /// What the release has (`(none)` for a digest it does not list).
        expected: String,
    },
    /// An extension field holds a value canonical JSON cannot represent.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    /// The signer failed.
    #[error("signing the attestation failed: {0}")]
    Signer(#[source] PrivateKeyError),
}

impl AttestationError {
    fn malformed(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Malformed {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Why a digest text is not a lowercase hex digest, if it is not.
fn digest_problem(digest: &str) -> Option<&'static str> {
    if digest.is_empty() || digest.len() > MAX_DIGEST_LEN || !digest.len().is_multiple_of(2) {
        Some("must be an even number of hex digits, at most 128")
    } else if !digest
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        Some("must be lowercase hex")
    } else {
        None
    }
}

impl ReleaseStatement {
    /// The `signed` object: the statement with its `_type` and `spec_version`.
    pub fn to_value(&self) -> Value {
        let mut signed: Map<String, Value> = self
            .unrecognized_fields
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let hashes: Map<String, Value> = self
            .hashes
            .iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect();
        // The modelled fields last, so that they win over an extension field of the same
        // name (which `validate` refuses anyway).
        for (name, value) in [
            ("_type", Value::from(ATTESTATION_TYPE)),
            ("spec_version", Value::from(ATTESTATION_SPEC_VERSION)),
            ("kind", Value::from(self.kind.as_str())),
            ("name", Value::from(self.name.as_str())),
            ("version", Value::from(self.version.as_str())),
            ("length", Value::from(self.length)),
            ("hashes", Value::Object(hashes)),
            (
                "index_entry_sha256",
                Value::from(self.index_entry_sha256.as_str()),
            ),
            ("date", Value::from(format_expires(&self.date))),
            ("label", Value::from(self.label.as_str())),
        ] {
            signed.insert(name.to_owned(), value);
        }
        Value::Object(signed)
    }

    /// The canonical JSON of [`ReleaseStatement::to_value`]: the bytes the signature
    /// covers.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, AttestationError> {
        Ok(json::to_canonical(&self.to_value())?)
    }

    /// Checks the rules of the format and returns the canonical bytes.
    fn validate(&self) -> Result<Vec<u8>, AttestationError> {
        let layout_error = |path: &str, err: LayoutError| {
            AttestationError::malformed(format!("signed.{path}"), err.to_string())
        };
        layout::validate_crate_name(&self.name).map_err(|e| layout_error("name", e))?;
        layout::validate_version(&self.version).map_err(|e| layout_error("version", e))?;
        if self.hashes.is_empty() {
            return Err(AttestationError::malformed(
                "signed.hashes",
                "must list at least one digest",
            ));
        }
        if self.hashes.len() > MAX_HASHES {
            return Err(AttestationError::malformed(
                "signed.hashes",
                format!("lists {} digests, at most {MAX_HASHES}", self.hashes.len()),
            ));
        }
        for (algorithm, digest) in &self.hashes {
            if algorithm.is_empty()
                || algorithm.len() > MAX_ALGORITHM_LEN
                || !algorithm
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(AttestationError::malformed(
                    "signed.hashes",
                    format!(
                        "{algorithm:?} is not an algorithm name (lowercase ASCII letters, \
                         digits and `-`, at most {MAX_ALGORITHM_LEN})"
                    ),
                ));
            }
            if let Some(problem) = digest_problem(digest) {
                return Err(AttestationError::malformed(
                    format!("signed.hashes.{algorithm}"),
                    problem,
                ));
            }
        }
        if self.index_entry_sha256.len() != 64 || digest_problem(&self.index_entry_sha256).is_some()
        {
            return Err(AttestationError::malformed(
                "signed.index_entry_sha256",
                "must be 64 lowercase hex digits",
            ));
        }
        if parse_expires(&format_expires(&self.date)) != Some(self.date) {
            return Err(AttestationError::malformed(
                "signed.date",
                "must be whole seconds in the years 0000 to 9999",
            ));
        }
        keys::validate_label(&self.label)
            .map_err(|e: LabelError| AttestationError::malformed("signed.label", e.to_string()))?;
        if let Some(name) = self
            .unrecognized_fields
            .keys()
            .find(|name| SIGNED_FIELDS.contains(&name.as_str()))
        {
            return Err(AttestationError::malformed(
                format!("signed.{name}"),
                "an extension field must not reuse the name of a field of the statement",
            ));
        }
        let bytes = self.canonical_bytes()?;
        if bytes.len() > MAX_ATTESTATION_BYTES {
            return Err(AttestationError::TooLarge {
                len: bytes.len(),
                max: MAX_ATTESTATION_BYTES,
            });
        }
        Ok(bytes)
    }

    /// Reads `signed`, strictly and losslessly.
    fn from_value(value: &Value) -> Result<Self, AttestationError> {
        let signed = value
            .as_object()
            .ok_or_else(|| AttestationError::malformed("signed", "must be an object"))?;
        let field = |name: &str| {
            signed.get(name).ok_or_else(|| {
                AttestationError::malformed(format!("signed.{name}"), "missing field")
            })
        };
        let string = |name: &str| {
            field(name)?.as_str().ok_or_else(|| {
                AttestationError::malformed(format!("signed.{name}"), "must be a string")
            })
        };
        let found = string("_type")?;
        if found != ATTESTATION_TYPE {
            return Err(AttestationError::WrongType {
                found: found.to_owned(),
            });
        }
        let spec_version = string("spec_version")?;
        if spec_version != ATTESTATION_SPEC_VERSION {
            return Err(AttestationError::UnsupportedVersion {
                found: spec_version.to_owned(),
            });
        }
        let kind = string("kind")?;
        let kind = AttestationKind::parse(kind).ok_or_else(|| {
            AttestationError::malformed(
                "signed.kind",
                format!("{kind:?} is neither \"release\" nor \"review\""),
            )
        })?;
        let length = field("length")?.as_u64().ok_or_else(|| {
            AttestationError::malformed("signed.length", "must be a non-negative integer")
        })?;
        let hashes = field("hashes")?
            .as_object()
            .ok_or_else(|| AttestationError::malformed("signed.hashes", "must be an object"))?;
        if hashes.len() > MAX_HASHES {
            return Err(AttestationError::malformed(
                "signed.hashes",
                format!("lists {} digests, at most {MAX_HASHES}", hashes.len()),
            ));
        }
        let hashes = hashes
            .iter()
            .map(|(algorithm, digest)| {
                digest
                    .as_str()
                    .map(|digest| (algorithm.clone(), digest.to_owned()))
                    .ok_or_else(|| {
                        AttestationError::malformed(
                            format!("signed.hashes.{algorithm}"),
                            "must be a string",
                        )
                    })
            })
            .collect::<Result<Hashes, _>>()?;
        let date = string("date")?;
        let date = parse_expires(date).ok_or_else(|| {
            AttestationError::malformed(
                "signed.date",
                format!("{date:?} is not YYYY-MM-DDTHH:MM:SSZ"),
            )
        })?;
        let statement = Self {
            kind,
            name: string("name")?.to_owned(),
            version: string("version")?.to_owned(),
            length,
            hashes,
            index_entry_sha256: string("index_entry_sha256")?.to_owned(),
            date,
            label: string("label")?.to_owned(),
            unrecognized_fields: signed
                .iter()
                .filter(|(name, _)| !SIGNED_FIELDS.contains(&name.as_str()))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        };
        statement.validate()?;
        Ok(statement)
    }
}

/// Reads a string field of a key or signature object.
fn string_field(
    object: &Map<String, Value>,
    path: &str,
    name: &str,
) -> Result<String, AttestationError> {
    object
        .get(name)
        .ok_or_else(|| AttestationError::malformed(format!("{path}.{name}"), "missing field"))?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| AttestationError::malformed(format!("{path}.{name}"), "must be a string"))
}

/// The fields of `object` other than `known`.
fn other_fields(object: &Map<String, Value>, known: &[&str]) -> BTreeMap<String, Value> {
    object
        .iter()
        .filter(|(name, _)| !known.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

fn key_from_value(value: &Value) -> Result<Key, AttestationError> {
    let object = value
        .as_object()
        .ok_or_else(|| AttestationError::malformed("key", "must be an object"))?;
    let keyval = object
        .get("keyval")
        .ok_or_else(|| AttestationError::malformed("key.keyval", "missing field"))?
        .as_object()
        .ok_or_else(|| AttestationError::malformed("key.keyval", "must be an object"))?;
    Ok(Key {
        keytype: string_field(object, "key", "keytype")?,
        scheme: string_field(object, "key", "scheme")?,
        keyval: keyval.clone(),
        unrecognized_fields: other_fields(object, &["keytype", "scheme", "keyval"]),
    })
}

fn key_to_value(key: &Key) -> Value {
    let mut object: Map<String, Value> = key
        .unrecognized_fields
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    object.insert("keytype".into(), Value::from(key.keytype.as_str()));
    object.insert("scheme".into(), Value::from(key.scheme.as_str()));
    object.insert("keyval".into(), Value::Object(key.keyval.clone()));
    Value::Object(object)
}

fn signature_from_value(path: &str, value: &Value) -> Result<Signature, AttestationError> {
    let object = value
        .as_object()
        .ok_or_else(|| AttestationError::malformed(path, "must be an object"))?;
    let mut signature = Signature::new(
        string_field(object, path, "keyid")?,
        string_field(object, path, "sig")?,
    );
    signature.unrecognized_fields = other_fields(object, &["keyid", "sig"]);
    Ok(signature)
}

fn signature_to_value(signature: &Signature) -> Value {
    let mut object: Map<String, Value> = signature
        .unrecognized_fields
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    object.insert("keyid".into(), Value::from(signature.keyid.as_str()));
    object.insert("sig".into(), Value::from(signature.sig.as_str()));
    Value::Object(object)
}

/// Checks that `key` is of a type and scheme this implementation verifies, and decodes.
fn check_key(key: &Key) -> Result<(), AttestationError> {
    key.verifying_key().map(drop).map_err(|err| match err {
        KeyError::Unsupported { keytype, scheme } => {
            AttestationError::UnsupportedKey { keytype, scheme }
        }
        other => AttestationError::BadKey(other),
    })
}

impl Attestation {
    /// Signs `statement` with `signer`. The date is cut to whole seconds; the statement
    /// must follow the rules of the format (see the module documentation), the signer's
    /// key must be one attestations are verified with, and the signer's keyid must be its
    /// key's TUF keyid. The new signature is verified before it is returned, so a signer
    /// whose signatures do not match its public key fails here.
    pub fn sign(
        mut statement: ReleaseStatement,
        signer: &dyn Signer,
    ) -> Result<Self, AttestationError> {
        let key = signer.public_key().clone();
        check_key(&key)?;
        let key_keyid = key.keyid();
        if *signer.keyid() != key_keyid {
            return Err(AttestationError::KeyMismatch {
                signature_keyid: signer.keyid().clone(),
                key_keyid,
            });
        }
        statement.date = whole_seconds(statement.date);
        let bytes = statement.validate()?;
        let signature = Signature::create(signer, &bytes).map_err(AttestationError::Signer)?;
        let attestation = Self {
            statement,
            key,
            signature,
        };
        attestation.verify()?;
        Ok(attestation)
    }

    /// Checks that the signature is by `key` (its keyid is the key's TUF keyid) over the
    /// canonical JSON of the statement (whose `_type` and `spec_version` are inside the
    /// signed object, so a signature over a TUF role or another kind of statement can
    /// never be replayed as one), that the key type and scheme are ones this
    /// implementation verifies (ed25519, ecdsa-sha2-nistp256 with DER signatures as TUF
    /// expects, rsassa-pss-sha256), and that the statement follows the rules of the
    /// format.
    pub fn verify(&self) -> Result<(), AttestationError> {
        check_key(&self.key)?;
        let key_keyid = self.key.keyid();
        if self.signature.keyid != key_keyid {
            return Err(AttestationError::KeyMismatch {
                signature_keyid: self.signature.keyid.clone(),
                key_keyid,
            });
        }
        let bytes = self.statement.validate()?;
        self.key
            .verify(&bytes, &self.signature.sig)
            .map_err(AttestationError::BadSignature)
    }

    /// [`Attestation::verify`], and the statement is about exactly this release: the same
    /// name and version, the same length, the same digests (every digest given, and no
    /// other; hex compared without regard to case), the same index entry digest.
    pub fn verify_for(
        &self,
        name: &str,
        version: &str,
        length: u64,
        hashes: &Hashes,
        index_entry_sha256: &str,
    ) -> Result<(), AttestationError> {
        self.verify()?;
        let statement = &self.statement;
        let differs = |field: &str, attested: &str, expected: &str| {
            Err(AttestationError::OtherRelease {
                field: field.to_owned(),
                attested: attested.to_owned(),
                expected: expected.to_owned(),
            })
        };
        if statement.name != name {
            return differs("name", &statement.name, name);
        }
        if statement.version != version {
            return differs("version", &statement.version, version);
        }
        if statement.length != length {
            return differs("length", &statement.length.to_string(), &length.to_string());
        }
        const NONE: &str = "(none)";
        for algorithm in hashes.keys().chain(statement.hashes.keys()) {
            let attested = statement.hashes.get(algorithm);
            let expected = hashes.get(algorithm);
            let same =
                matches!((attested, expected), (Some(a), Some(e)) if a.eq_ignore_ascii_case(e));
            if !same {
                return differs(
                    &format!("hashes.{algorithm}"),
                    attested.unwrap_or(NONE),
                    expected.unwrap_or(NONE),
                );
            }
        }
        if !statement
            .index_entry_sha256
            .eq_ignore_ascii_case(index_entry_sha256)
        {
            return differs(
                "index_entry_sha256",
                &statement.index_entry_sha256,
                index_entry_sha256,
            );
        }
        Ok(())
    }

    /// Reads an attestation from a strictly parsed JSON value (see the module
    /// documentation for the rules). The signature is not checked: call
    /// [`Attestation::verify`] or [`Attestation::verify_for`].
    pub fn from_value(value: &Value) -> Result<Self, AttestationError> {
        let object = value
            .as_object()
            .ok_or_else(|| AttestationError::malformed("", "an attestation is a JSON object"))?;
        if let Some(name) = object
            .keys()
            .find(|name| !ENVELOPE_FIELDS.contains(&name.as_str()))
        {
            return Err(AttestationError::malformed(
                name.as_str(),
                "unknown field (an attestation has only `signed`, `key` and `signatures`)",
            ));
        }
        let len = json::to_canonical(value)?.len();
        if len > MAX_ATTESTATION_BYTES {
            return Err(AttestationError::TooLarge {
                len,
                max: MAX_ATTESTATION_BYTES,
            });
        }
        let field = |name: &str| {
            object
                .get(name)
                .ok_or_else(|| AttestationError::malformed(name, "missing field"))
        };
        let statement = ReleaseStatement::from_value(field("signed")?)?;
        let key = key_from_value(field("key")?)?;
        let signatures = field("signatures")?
            .as_array()
            .ok_or_else(|| AttestationError::malformed("signatures", "must be an array"))?;
        let signatures = signatures
            .iter()
            .enumerate()
            .map(|(i, value)| signature_from_value(&format!("signatures[{i}]"), value))
            .collect::<Result<Vec<_>, _>>()?;
        let [signature] = <[Signature; 1]>::try_from(signatures)
            .map_err(|signatures| duplicate_or_count(&signatures))?;
        Ok(Self {
            statement,
            key,
            signature,
        })
    }

    /// Parses JSON text of at most [`MAX_ATTESTATION_BYTES`] strictly
    /// ([`crate::json::parse_strict`]) and reads it with [`Attestation::from_value`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AttestationError> {
        Self::from_value(&json::parse_strict(bytes, MAX_ATTESTATION_BYTES)?)
    }

    /// The attestation as JSON (see the module documentation).
    pub fn to_value(&self) -> Value {
        let mut object = Map::new();
        object.insert("signed".into(), self.statement.to_value());
        object.insert("key".into(), key_to_value(&self.key));
        object.insert(
            "signatures".into(),
            Value::Array(vec![signature_to_value(&self.signature)]),
        );
        Value::Object(object)
    }
}

/// The error for a `signatures` array that does not hold exactly one signature: a keyid
/// repeated, else the count.
fn duplicate_or_count(signatures: &[Signature]) -> AttestationError {
    let mut seen = std::collections::BTreeSet::new();
    for signature in signatures {
        if !seen.insert(signature.keyid.as_str()) {
            return AttestationError::DuplicateSignature {
                keyid: signature.keyid.clone(),
            };
        }
    }
    AttestationError::SignatureCount {
        count: signatures.len(),
    }
}
