//! Typed TUF metadata (specification §4): the signed envelope and the four role types.
//!
//! [`Metadata<T>`] is a parsed document. Loading it keeps the canonical bytes of `signed`
//! exactly as received, so signatures are checked over what was signed, not over a
//! re-serialisation; fields this implementation does not know survive load and save.

/// The [`Role`] accessors shared by every role type, whose fields have the same names.
macro_rules! role_accessors {
    () => {
        fn version(&self) -> u64 {
            self.version
        }
        fn expires(&self) -> chrono::DateTime<chrono::Utc> {
            self.expires
        }
        fn spec_version(&self) -> &str {
            &self.spec_version
        }
    };
}

mod common;
mod deserialize;
mod root;
mod snapshot;
mod targets;
mod timestamp;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use common::{
    format_expires, parse_expires, whole_seconds, MetaFile, RoleKeys, RootType, SharedFields,
    SnapshotType, TargetsType, TimestampType, UnrecognizedFields, EXPIRES_FORMAT,
};
pub use root::Root;
pub use snapshot::Snapshot;
pub use targets::{
    path_matches_pattern, DelegatedRole, DelegationStep, Delegations, SuccinctRoles, TargetFile,
    Targets,
};
pub use timestamp::Timestamp;

use crate::json::{self, CanonicalError, JsonError, Map, PythonLayout, Value};
use crate::keys::KeyId;
use crate::signer::{PrivateKeyError, Signer};

/// The specification version written into new metadata.
pub const SPEC_VERSION: &str = "1.0.31";

/// Major version of the specification this implementation reads.
pub const SUPPORTED_SPEC_MAJOR: &str = "1";

/// Default cap on a metadata document's size when the caller sets none (TUF §5 "endless
/// data"); clients pass tighter per-role limits.
pub const DEFAULT_MAX_METADATA_BYTES: usize = 128 * 1024 * 1024;

/// The names of the four top-level roles.
pub const TOP_LEVEL_ROLE_NAMES: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];

/// Why a metadata document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// Not strict JSON (duplicate keys, floats, syntax, size).
    #[error(transparent)]
    Json(#[from] JsonError),
    /// `_type` names another role.
    #[error("wrong _type at `{path}`: expected {expected:?}, found {found:?}")]
    WrongType {
        /// Path of the `_type` field.
        path: String,
        /// The type the caller asked for.
        expected: &'static str,
        /// The type the document declares.
        found: String,
    },
    /// `spec_version` is malformed or of an unsupported major version.
    #[error("unsupported spec_version {found:?} at `{path}`: this implementation reads 1.x")]
    UnsupportedSpecVersion {
        /// Path of the field.
        path: String,
        /// The declared version.
        found: String,
    },
    /// A date is not `YYYY-MM-DDTHH:MM:SSZ`.
    #[error("invalid date {found:?} at `{path}`: expected YYYY-MM-DDTHH:MM:SSZ")]
    InvalidDate {
        /// Path of the field.
        path: String,
        /// The text found.
        found: String,
    },
    /// A field is missing, of the wrong type, or breaks a rule of the specification.
    #[error("invalid metadata at `{path}`: {message}")]
    Schema {
        /// Path of the offending value.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The document holds a value canonical JSON cannot represent.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
}

impl MetadataError {
    pub(crate) fn schema(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Schema {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The `signed` part of a metadata document of one role type.
pub trait Role: Serialize + DeserializeOwned + Clone {
    /// The `_type` value of this role type.
    const TYPE: &'static str;
    /// `signed.version`.
    fn version(&self) -> u64;
    /// `signed.expires`.
    fn expires(&self) -> DateTime<Utc>;
    /// `signed.spec_version`.
    fn spec_version(&self) -> &str;
    /// Checks the rules serde cannot express; errors carry paths from the document root.
    fn validate(&self) -> Result<(), MetadataError>;
    /// Whether the metadata has expired at `now` (TUF §5: expired when `expires <= now`).
    fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires() <= now
    }
}

/// One signature of the envelope (`{"keyid", "sig"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    /// The keyid of the signing key.
    pub keyid: KeyId,
    /// Hex-encoded signature over the canonical JSON of `signed`.
    pub sig: String,
    /// Extension fields, kept verbatim.
    #[serde(flatten)]
    pub unrecognized_fields: UnrecognizedFields,
}

impl Signature {
    /// A signature with no extension fields.
    pub fn new(keyid: KeyId, sig: String) -> Self {
        Self {
            keyid,
            sig,
            unrecognized_fields: UnrecognizedFields::new(),
        }
    }

    /// Signs `message` with `signer`: the signer's keyid, and the hex of the bytes it
    /// returns.
    pub fn create(signer: &dyn Signer, message: &[u8]) -> Result<Self, PrivateKeyError> {
        let bytes = signer.sign(message)?;
        Ok(Self::new(signer.keyid().clone(), hex::encode(bytes)))
    }
}

/// The document as read (its `Deserialize` is in `deserialize.rs`).
struct Envelope<T> {
    signatures: Vec<Signature>,
    signed: T,
    unrecognized_fields: UnrecognizedFields,
}

#[derive(Serialize)]
struct EnvelopeRef<'a, T> {
    signatures: &'a [Signature],
    signed: &'a T,
    #[serde(flatten)]
    unrecognized_fields: &'a UnrecognizedFields,
}

/// A metadata document: signatures over a role's `signed` content.
#[derive(Debug, Clone)]
pub struct Metadata<T: Role> {
    /// The signatures, in document order.
    pub signatures: Vec<Signature>,
    /// Extension fields of the envelope, kept verbatim.
    pub unrecognized_fields: UnrecognizedFields,
    signed: T,
    /// Canonical bytes of `signed`: as received for parsed documents, computed on demand
    /// after any change.
    canonical_signed: OnceLock<Vec<u8>>,
}

impl<T: Role> Metadata<T> {
    /// Wraps new `signed` content with no signatures.
    pub fn new(signed: T) -> Self {
        Self {
            signatures: Vec::new(),
            unrecognized_fields: UnrecognizedFields::new(),
            signed,
            canonical_signed: OnceLock::new(),
        }
    }

    /// Parses a document of at most [`DEFAULT_MAX_METADATA_BYTES`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetadataError> {
        Self::from_bytes_with_limit(bytes, DEFAULT_MAX_METADATA_BYTES)
    }

    /// Parses a document, refusing it unread if it is longer than `max_len` bytes.
    ///
    /// A valid document is read in two passes over its bytes and no tree: typed
    /// deserialisation, then one strict pass (duplicate keys, integers, syntax) that writes
    /// the canonical bytes of `signed`. When either pass refuses the document, the full
    /// strict parser reads it again to say exactly what is wrong and where: the same
    /// errors, with the same paths, as [`Metadata::from_value`] after
    /// [`json::parse_strict`].
    pub fn from_bytes_with_limit(bytes: &[u8], max_len: usize) -> Result<Self, MetadataError> {
        if bytes.len() > max_len {
            return Err(JsonError::TooLarge {
                len: bytes.len(),
                max: max_len,
            }
            .into());
        }
        if let Some(metadata) = Self::load_valid(bytes) {
            return Ok(metadata);
        }
        let value = json::parse_strict(bytes, max_len)?;
        Self::from_value(&value)
    }

    /// The fast path of [`Metadata::from_bytes_with_limit`]: the metadata if the document
    /// passes every check, `None` if any check fails (the full parser then says which).
    fn load_valid(bytes: &[u8]) -> Option<Self> {
        let (envelope, canonical) = if read_on_two_threads(bytes.len(), cores()) {
            // The typed read and the strict pass share nothing but the input: a large
            // document is read on two cores.
            std::thread::scope(|scope| {
                let strict = std::thread::Builder::new()
                    .name("tuf-core strict pass".into())
                    .spawn_scoped(scope, || json::strict_scan::canonical_signed(bytes));
                let envelope = serde_json::from_slice::<Envelope<T>>(bytes).ok();
                let canonical = match strict {
                    Ok(handle) => handle.join().ok().and_then(Result::ok),
                    Err(_) => json::strict_scan::canonical_signed(bytes).ok(),
                };
                (envelope, canonical)
            })
        } else {
            let envelope = serde_json::from_slice::<Envelope<T>>(bytes).ok()?;
            (
                Some(envelope),
                json::strict_scan::canonical_signed(bytes).ok(),
            )
        };
        let (envelope, canonical) = (envelope?, canonical?);
        // `_type` is checked by the typed read, `expires` by its date parser; the header
        // check of the full path also covers `spec_version`.
        if !spec_version_supported(envelope.signed.spec_version()) {
            return None;
        }
        envelope.signed.validate().ok()?;
        check_signature_keyids(&envelope.signatures).ok()?;
        Some(Self {
            signatures: envelope.signatures,
            unrecognized_fields: envelope.unrecognized_fields,
            signed: envelope.signed,
            canonical_signed: OnceLock::from(canonical.into_owned()),
        })
    }

    /// Builds typed metadata from a strictly parsed JSON value.
    pub fn from_value(value: &Value) -> Result<Self, MetadataError> {
        let signed = value
            .as_object()
            .ok_or_else(|| MetadataError::schema("", "metadata must be a JSON object"))?
            .get("signed")
            .ok_or_else(|| MetadataError::schema("signed", "missing field `signed`"))?;
        check_signed_header(signed, T::TYPE)?;
        let canonical = json::to_canonical(signed)?;
        let envelope: Envelope<T> = serde_path_to_error::deserialize(value).map_err(|err| {
            MetadataError::schema(json::display_path(err.path()), err.inner().to_string())
        })?;
        envelope.signed.validate()?;
        check_signature_keyids(&envelope.signatures)?;
        Ok(Self {
            signatures: envelope.signatures,
            unrecognized_fields: envelope.unrecognized_fields,
            signed: envelope.signed,
            canonical_signed: OnceLock::from(canonical),
        })
    }

    /// The signed content.
    pub fn signed(&self) -> &T {
        &self.signed
    }

    /// The signed content, for editing. Existing signatures stay in place (they no longer
    /// verify once the content changes) until replaced by [`Metadata::sign`].
    pub fn signed_mut(&mut self) -> &mut T {
        self.canonical_signed = OnceLock::new();
        &mut self.signed
    }

    /// Takes the signed content out of the envelope.
    pub fn into_signed(self) -> T {
        self.signed
    }

    /// The canonical JSON bytes of `signed`: what every signature covers.
    pub fn signed_bytes(&self) -> Result<&[u8], MetadataError> {
        if let Some(bytes) = self.canonical_signed.get() {
            return Ok(bytes);
        }
        let value = serde_json::to_value(&self.signed)
            .map_err(|e| MetadataError::schema("signed", e.to_string()))?;
        let bytes = json::to_canonical(&value)?;
        Ok(self.canonical_signed.get_or_init(|| bytes))
    }

    /// Signs the content with `signer`. With `append`, other keys' signatures are kept
    /// (a previous signature by the same keyid is replaced); otherwise they are dropped.
    pub fn sign(&mut self, signer: &dyn Signer, append: bool) -> Result<Signature, SignError> {
        let signature = Signature::create(signer, self.signed_bytes()?)?;
        if append {
            self.signatures.retain(|s| s.keyid != signature.keyid);
        } else {
            self.signatures.clear();
        }
        self.signatures.push(signature.clone());
        Ok(signature)
    }

    /// The whole document as a JSON value.
    pub fn to_value(&self) -> Result<Value, MetadataError> {
        serde_json::to_value(EnvelopeRef {
            signatures: &self.signatures,
            signed: &self.signed,
            unrecognized_fields: &self.unrecognized_fields,
        })
        .map_err(|e| MetadataError::schema("", e.to_string()))
    }

    /// The document exactly as python-tuf's `Metadata.to_file()` writes it (compact,
    /// sorted keys, ASCII-escaped).
    pub fn to_bytes(&self) -> Result<Vec<u8>, MetadataError> {
        Ok(json::to_python_json(
            &self.to_value()?,
            PythonLayout::Compact,
        )?)
    }

    /// The document indented as python-tuf's `JSONSerializer(compact=False)` writes it,
    /// for files people read and diff.
    pub fn to_pretty_bytes(&self) -> Result<Vec<u8>, MetadataError> {
        Ok(json::to_python_json(
            &self.to_value()?,
            PythonLayout::Pretty,
        )?)
    }

    /// The whole document in canonical JSON.
    pub fn to_canonical_bytes(&self) -> Result<Vec<u8>, MetadataError> {
        Ok(json::to_canonical(&self.to_value()?)?)
    }
}

/// Documents at least this large are read on two threads when the machine has two cores.
const PARALLEL_LOAD_BYTES: usize = 4 << 20;

/// Whether a document of `len` bytes is read on two threads, with `cores` available.
fn read_on_two_threads(len: usize, cores: usize) -> bool {
    len >= PARALLEL_LOAD_BYTES && cores > 1
}

/// The number of cores this process may use, asked once.
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The content could not be canonicalised.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// The signer failed.
    #[error(transparent)]
    Signer(#[from] PrivateKeyError),
}

/// Checks `_type`, `spec_version` and `expires` before typed parsing, so these common
/// failures get their own error kinds.
fn check_signed_header(signed: &Value, expected: &'static str) -> Result<(), MetadataError> {
    let signed: &Map<String, Value> = signed
        .as_object()
        .ok_or_else(|| MetadataError::schema("signed", "`signed` must be an object"))?;
    let string_field = |name: &str| -> Result<&str, MetadataError> {
        signed
            .get(name)
            .ok_or_else(|| MetadataError::schema(format!("signed.{name}"), "missing field"))?
            .as_str()
            .ok_or_else(|| MetadataError::schema(format!("signed.{name}"), "must be a string"))
    };
    let found = string_field("_type")?;
    if found != expected {
        return Err(MetadataError::WrongType {
            path: "signed._type".into(),
            expected,
            found: found.into(),
        });
    }
    let spec_version = string_field("spec_version")?;
    if !spec_version_supported(spec_version) {
        return Err(MetadataError::UnsupportedSpecVersion {
            path: "signed.spec_version".into(),
            found: spec_version.into(),
        });
    }
    let expires = string_field("expires")?;
    if parse_expires(expires).is_none() {
        return Err(MetadataError::InvalidDate {
            path: "signed.expires".into(),
            found: expires.into(),
        });
    }
    Ok(())
}

/// `spec_version` is `MAJOR.MINOR` or `MAJOR.MINOR.PATCH` of digits, with major 1 (as
/// python-tuf checks).
fn spec_version_supported(version: &str) -> bool {
    let parts: Vec<&str> = version.split('.').collect();
    (parts.len() == 2 || parts.len() == 3)
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && parts.first() == Some(&SUPPORTED_SPEC_MAJOR)
}

/// Common checks of `version` for every role.
pub(crate) fn validate_version(version: u64) -> Result<(), MetadataError> {
    if version < 1 {
        return Err(MetadataError::schema(
            "signed.version",
            "version must be at least 1",
        ));
    }
    Ok(())
}

/// python-tuf refuses documents where two signatures claim the same keyid; so do we (a
/// threshold would count them once anyway).
fn check_signature_keyids(signatures: &[Signature]) -> Result<(), MetadataError> {
    let mut seen = BTreeMap::new();
    for (i, signature) in signatures.iter().enumerate() {
        if let Some(first) = seen.insert(signature.keyid.as_str(), i) {
            return Err(MetadataError::schema(
                format!("signatures[{i}].keyid"),
                format!(
                    "keyid {} already signed at signatures[{first}]",
                    signature.keyid
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Key;

    /// An external signer (an HSM, say) that answers with fixed bytes.
    #[derive(Debug)]
    struct FixedSigner {
        key: Key,
        keyid: KeyId,
    }

    impl Signer for FixedSigner {
        fn public_key(&self) -> &Key {
            &self.key
        }
        fn keyid(&self) -> &KeyId {
            &self.keyid
        }
        fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, PrivateKeyError> {
            Ok(vec![0x00, 0xab, 0xff])
        }
    }

    /// An external signer whose device is unreachable.
    #[derive(Debug)]
    struct FailingSigner(FixedSigner);

    impl Signer for FailingSigner {
        fn public_key(&self) -> &Key {
            self.0.public_key()
        }
        fn keyid(&self) -> &KeyId {
            self.0.keyid()
        }
        fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, PrivateKeyError> {
            let unreachable = std::io::Error::new(std::io::ErrorKind::TimedOut, "HSM timed out");
            Err(PrivateKeyError::Sign(
                crate::signer::SigningError::from_source(unreachable),
            ))
        }
    }

    #[test]
    fn a_signers_failure_reaches_the_caller_with_its_source() {
        let key = Key::new("ed25519", "ed25519", "00".repeat(32));
        let signer = FailingSigner(FixedSigner {
            keyid: key.keyid(),
            key,
        });
        let mut metadata = Metadata::new(Root::new(chrono::DateTime::UNIX_EPOCH));
        let err = metadata.sign(&signer, false).unwrap_err();
        let SignError::Signer(PrivateKeyError::Sign(failure)) = &err else {
            panic!("{err:?}")
        };
        let source = std::error::Error::source(failure)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .expect("the HSM's error is kept");
        assert_eq!(source.kind(), std::io::ErrorKind::TimedOut);
        assert!(metadata.signatures.is_empty());
    }

    #[test]
    fn sign_builds_the_envelope_entry_from_the_signers_bytes() {
        let key = Key::new("ed25519", "ed25519", "00".repeat(32));
        let signer = FixedSigner {
            keyid: key.keyid(),
            key,
        };
        let mut metadata = Metadata::new(Root::new(chrono::DateTime::UNIX_EPOCH));
        let other = Signature::new("other".into(), "11".into());
        metadata.signatures.push(other.clone());
        let signature = metadata.sign(&signer, true).expect("signs");
        assert_eq!(signature.keyid, signer.keyid);
        assert_eq!(signature.sig, "00abff");
        assert_eq!(metadata.signatures, vec![other, signature.clone()]);
        // Signing again with the same key replaces its signature; without `append`
        // every other signature goes.
        metadata.sign(&signer, true).expect("signs");
        assert_eq!(metadata.signatures.len(), 2);
        metadata.sign(&signer, false).expect("signs");
        assert_eq!(metadata.signatures, vec![signature]);
    }

    #[test]
    fn large_documents_are_read_on_two_threads_when_there_are_two_cores() {
        assert!(!read_on_two_threads(PARALLEL_LOAD_BYTES - 1, 2));
        assert!(read_on_two_threads(PARALLEL_LOAD_BYTES, 2));
        assert!(!read_on_two_threads(PARALLEL_LOAD_BYTES, 1));
        assert!(!read_on_two_threads(1 << 20, 8));
        assert_eq!(PARALLEL_LOAD_BYTES, 4 * 1024 * 1024);
        assert_eq!(
            cores(),
            std::thread::available_parallelism().map_or(1, usize::from)
        );
    }

    #[test]
    fn a_valid_document_takes_the_fast_path_in_either_layout() {
        let mut metadata = Metadata::new(Targets::new(chrono::DateTime::UNIX_EPOCH));
        metadata
            .signatures
            .push(Signature::new("ab".into(), "cd".into()));
        for bytes in [
            metadata.to_bytes().expect("compact"),
            metadata.to_pretty_bytes().expect("pretty"),
        ] {
            let loaded = Metadata::<Targets>::load_valid(&bytes).expect("fast path");
            assert_eq!(
                loaded.signed_bytes().expect("canonical"),
                metadata.signed_bytes().expect("canonical")
            );
        }
        // A refused document is for the full parser to explain.
        assert!(Metadata::<Targets>::load_valid(b"{\"signed\":1}").is_none());
    }

    #[test]
    fn spec_versions() {
        for ok in ["1.0", "1.0.31", "1.2.3"] {
            assert!(spec_version_supported(ok), "{ok}");
        }
        for bad in [
            "2.0.0", "1", "1.0.0.0", "1.x.0", "", "01.0", "1..0", "v1.0.0",
        ] {
            assert!(!spec_version_supported(bad), "{bad}");
        }
    }
}
