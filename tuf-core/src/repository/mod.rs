//! The repository editor: creates and keeps the TUF repository of a crate registry's
//! releases, in the role layout of [`crate::layout`] (`spec/role-layout.md`).
//!
//! A [`Repository`] is a working directory:
//!
//! ```text
//! repository.json               settings: expiry periods, fallback bin count
//! staged/<role>.json            pending metadata: edited, waiting for signatures
//! staged/targets/…              release tarballs added but not yet published
//! published/metadata/           what clients read (a symlink to the current generation)
//! published/targets/…           hash-prefixed release tarballs (consistent snapshots)
//! ```
//!
//! Edits (keys, thresholds, namespace delegations, releases) change *staged* metadata: a
//! copy of the published role with its version increased and a fresh expiry. Key holders
//! add signatures to staged metadata, on this machine ([`Repository::sign`]) or another
//! ([`Repository::detached_signature`], [`Repository::import_signature`]).
//! [`Repository::publish`] signs the online roles, writes snapshot and timestamp, checks
//! that a client holding the published root would accept the result, and only then
//! switches `published/metadata` to the new generation in one atomic rename.
//!
//! Every file is written atomically (temporary file in the same directory, fsync,
//! rename, directory fsync), and a lock file keeps two processes from editing at once.

mod audit;
mod content;
mod editor;
mod index_files;
mod lock;
mod publish;
mod published_store;
mod settings;
mod signing;
mod source;
mod status;

use std::path::PathBuf;

pub use audit::{
    audit_repository, AuditOptions, AuditReport, Problem, Severity, UpstreamReleaseFile,
};
pub use content::{NamespaceEdit, ReleaseAdded, UpstreamRelease};
pub use editor::{InitOptions, Repository, RoleAuthorization, RoleKeySpec, FALLBACK_BINS_ALIAS};
pub use index_files::{AttestationAdded, YankOutcome};
pub use publish::{PublishReport, PublishedRole};
pub use settings::{
    format_duration, parse_duration, DurationError, ExpiryPolicy, Settings,
    DEFAULT_FALLBACK_BIN_BITS, SETTINGS_FORMAT,
};
pub use signing::{Change, DetachedSignature, RoleSignatures, SignatureOutcome};
pub use source::{DirectorySource, MetadataSource, OverlaySource, SourceError};
pub use status::{RoleStatus, Status};

use crate::layout::LayoutError;
use crate::metadata::MetadataError;
use crate::signer::PrivateKeyError;
use crate::verify::{SignatureReport, VerificationError};

/// Something that reports progress of a long operation (a progress bar, or nothing).
pub trait Progress {
    /// Sets the number of steps.
    fn set_length(&self, length: u64);
    /// Advances by `steps`.
    fn advance(&self, steps: u64);
}

/// No progress reporting.
impl Progress for () {
    fn set_length(&self, _length: u64) {}
    fn advance(&self, _steps: u64) {}
}

/// How an index entry disagrees with the release it is given for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexEntryMismatch {
    /// It names another crate or version.
    #[error("it is the entry of {name} {version}")]
    OtherRelease {
        /// The name it gives.
        name: String,
        /// The version it gives.
        version: String,
    },
    /// Its `cksum` is not the tarball's sha256.
    #[error("its cksum {cksum} is not the tarball's sha256 {sha256}")]
    Checksum {
        /// The entry's cksum.
        cksum: String,
        /// The tarball's.
        sha256: String,
    },
}

/// Why a repository operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepositoryError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A file is longer than the most this repository reads of it: not a file it wrote.
    #[error("{path}: longer than the maximum of {max} bytes")]
    TooLong {
        /// The file.
        path: PathBuf,
        /// The maximum.
        max: u64,
    },
    /// A metadata file could not be read or written.
    #[error("{path}: {source}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: MetadataError,
    },
    /// The settings file is unreadable.
    #[error("{path}: {message}")]
    Settings {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The journal of an interrupted save is not one this editor wrote.
    #[error(
        "{path}: not the journal of a save by tuf-signer (line {line:?}); remove staged/.saving \
         to undo the interrupted save"
    )]
    SaveJournal {
        /// The journal's commit file.
        path: PathBuf,
        /// The line not understood.
        line: String,
    },
    /// The directory is not a repository made by this editor.
    #[error("{0}: not a tuf-signer repository (no repository.json); create one with `init`")]
    NotARepository(PathBuf),
    /// `init` was pointed at an existing repository.
    #[error("{0}: a repository already exists here")]
    AlreadyExists(PathBuf),
    /// Another process holds the repository lock.
    #[error("{0}: another tuf-signer process has held this repository for over a minute; wait for it to finish")]
    Locked(PathBuf),
    /// A name, version or namespace outside the layout.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A role this repository does not have.
    #[error("no role {0:?} in this repository")]
    UnknownRole(String),
    /// A role whose keys this operation cannot change.
    #[error("{role}: {message}")]
    InvalidEdit {
        /// The role.
        role: String,
        /// Why the edit is refused.
        message: String,
    },
    /// A key is not authorised for a role.
    #[error("{role}: key {keyid} is not authorised to sign this role")]
    KeyNotAuthorized {
        /// The role.
        role: String,
        /// The key.
        keyid: String,
    },
    /// The namespace is already delegated.
    #[error("namespace {0:?} is already delegated; undelegate it first or change its keys")]
    NamespaceClaimed(String),
    /// The namespace is not delegated.
    #[error("namespace {0:?} is not delegated")]
    NamespaceNotDelegated(String),
    /// The release is already listed with other content.
    #[error(
        "{path} is already signed with different content (length {listed_length}, sha256 {listed_sha256}); \
         a published version is immutable: remove it first if this is really intended"
    )]
    ReleaseConflict {
        /// The target path.
        path: String,
        /// Length listed.
        listed_length: u64,
        /// sha256 listed.
        listed_sha256: String,
    },
    /// The release is not listed.
    #[error("{name} {version} is not in the repository ({path})")]
    ReleaseNotFound {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
        /// Its target path.
        path: String,
    },
    /// The index entry given for a release is not that release's.
    #[error("the index entry for {name} {version} is not that release's: {reason}")]
    IndexEntryNotForRelease {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
        /// What disagrees.
        reason: IndexEntryMismatch,
    },
    /// The release's index entry is already signed with other content.
    #[error(
        "{name} {version}: its index entry is already signed with other {}; a published \
         entry is immutable (only yanked changes): remove the release first if this is really \
         intended",
        fields.join(", ")
    )]
    IndexEntryConflict {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
        /// The fields that differ.
        fields: Vec<&'static str>,
    },
    /// A crate's signed index file (staged or published) is unreadable.
    #[error("{path}: {source}")]
    CrateIndex {
        /// The target path.
        path: String,
        /// Why.
        source: crate::crate_index::CrateIndexError,
    },
    /// A crate's signed index file on disk is not the one its role lists.
    #[error("{path}: the file on disk does not match its signed target: {source}")]
    CrateIndexFile {
        /// The target path.
        path: String,
        /// How.
        source: crate::hash::HashError,
    },
    /// An attestation is refused.
    #[error("{name} {version}: attestation refused: {source}")]
    Attestation {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
        /// Why.
        source: crate::attestation::AttestationError,
    },
    /// The role has no pending changes.
    #[error("{0}: nothing staged for this role")]
    NotStaged(String),
    /// A detached signature is for other content than the staged role.
    #[error(
        "{role}: the signature was made over different content (staged version {staged_version}, \
         sha256 {staged_sha256}; signature is for version {signed_version}, sha256 {signed_sha256}); \
         export a new signature over the current staged metadata"
    )]
    SignatureMismatch {
        /// The role.
        role: String,
        /// Staged version.
        staged_version: u64,
        /// sha256 of the staged canonical bytes.
        staged_sha256: String,
        /// Version the signature claims.
        signed_version: u64,
        /// sha256 the signature claims.
        signed_sha256: String,
    },
    /// A signature does not verify.
    #[error("{role}: the signature by key {keyid} does not verify: {reason}")]
    BadSignature {
        /// The role.
        role: String,
        /// The key.
        keyid: String,
        /// Why.
        reason: String,
    },
    /// Publishing was refused: roles lack signatures.
    #[error("cannot publish: {}", joined(.0))]
    NotSigned(Vec<MissingSignatures>),
    /// Publishing was refused: a client would not accept the result (or a release
    /// tarball to publish is missing or does not match its entry).
    #[error("cannot publish: a client would not accept the result: {}", joined(.0))]
    WouldNotVerify(Vec<Problem>),
    /// Nothing to publish.
    #[error("nothing is staged: there is nothing to publish")]
    NothingToPublish,
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(#[from] PrivateKeyError),
    /// A signature could not be checked.
    #[error(transparent)]
    Verification(#[from] VerificationError),
}

/// A role that publish would send out without the signatures clients need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSignatures {
    /// The role.
    pub role: String,
    /// Whose keys fall short.
    pub keys: RequiredKeys,
    /// How the role's signatures stand against those keys.
    pub report: SignatureReport,
}

/// The keys a [`MissingSignatures`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequiredKeys {
    /// The keys that authorise the role after the publish (its key holders sign).
    Role,
    /// For a new root: the keys of the root clients hold now (TUF §5.3.4).
    PreviousRoot,
    /// The online keys publish signs the role with, and which were not given.
    Online,
}

impl std::fmt::Display for MissingSignatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let report = &self.report;
        write!(
            f,
            "{} has {} of {} signatures",
            self.role,
            report.valid.len(),
            report.threshold
        )?;
        if self.keys == RequiredKeys::PreviousRoot {
            f.write_str(" of the previous root's keys")?;
        }
        write!(f, " (not yet signed by: {}", report.missing.join(", "))?;
        if self.keys == RequiredKeys::Online {
            f.write_str("; give its key with the online keys")?;
        }
        f.write_str(")")
    }
}

/// `items` joined with `"; "`.
fn joined<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn io_error(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> RepositoryError + '_ {
    move |source| RepositoryError::Io {
        path: path.to_owned(),
        source,
    }
}
