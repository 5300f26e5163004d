//! `.crate` release tarballs, read under strict rules.
//!
//! A `.crate` is a gzip-compressed tar archive, as `cargo package` makes it: every entry
//! lives under one top-level directory `NAME-VERSION/`, and `NAME-VERSION/Cargo.toml` is
//! the normalized manifest. Before a maintainer signs a release, the file name, the
//! top-level directory and the manifest's `[package] name` and `version` must all agree,
//! so a signature can never vouch for a tarball that claims to be something else; a
//! verifier comparing files with a signed tarball reads it under the same rules.
//!
//! # Rules
//!
//! The input is untrusted. Every reader here walks the archive once and refuses it, with
//! an [`ArchiveError`] naming the tarball and the entry, unless:
//!
//! * **it fits the caps** of [`ArchiveLimits`]: the tarball's size; the bytes out of the
//!   gzip stream, every one of them (headers, padding and anything after the archive,
//!   which is read to the end so a corrupt stream is caught); the number of entries; each
//!   file's size; the manifest's size;
//! * **every path is safe**: UTF-8, relative, without `.` or `..` components, without
//!   `\`, `:` or NUL (`cargo package` refuses `\` and `:` in file names; on Windows they
//!   are a separator and a drive prefix). Empty components (`a//b`, a trailing `/`) are
//!   ignored, as tar does;
//! * **the layout is a crate's**: one top-level directory and no file beside it; exactly
//!   one `Cargo.toml` under it, a regular file, and no other entry there named so in
//!   another case; no two files with the same path;
//! * **every entry is a directory or a regular file**. Symbolic and hard links are refused
//!   ([`ArchiveError::Link`]), not skipped: `cargo package` stores the contents of a
//!   linked file, never a link, and crates.io refuses tarballs with links, so a link in a
//!   `.crate` is a hand-made archive at best; unpacked, it can make later entries write
//!   (or a build read) outside the crate. Devices, FIFOs, sparse files and the like are
//!   refused too ([`ArchiveError::UnsupportedEntry`]);
//! * **the manifest names the release**: `[package] name` and `version` are strings, a
//!   valid crate name and a semantic version, and `NAME-VERSION` is both the top-level
//!   directory and the file name's stem (`NAME-VERSION.crate`).
//!
//! # Readers
//!
//! * [`read_crate_release`], [`parse_crate_release`]: the release's name, version and
//!   bytes, as `tuf-signer release add` signs them.
//! * [`crate_file_digests`]: every regular file's sha256, by path below the top-level
//!   directory, as `tuf-verifier verify-vendor` compares them with a vendored crate.
//! * [`read_crate_files`]: every regular file's bytes (each at most
//!   [`ArchiveLimits::max_file_bytes`], all together at most
//!   [`ArchiveLimits::max_unpacked_bytes`]), to compare two releases file by file.
//! * [`visit_crate_files`]: each regular file in turn, as a reader, for a caller that
//!   streams rather than holds a whole release in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use flate2::read::GzDecoder;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tar::EntryType;

use crate::fs::{read_bounded, BoundedReadError};
use crate::layout::{self, LayoutError};

#[cfg(test)]
mod tests;

/// The manifest's path below the top-level directory.
const MANIFEST: &str = "Cargo.toml";

/// Size and count caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Largest tarball accepted, in bytes (default 64 MiB).
    pub max_tarball_bytes: u64,
    /// Total bytes read out of the gzip stream before we stop (default 512 MiB, the cap
    /// crates.io puts on an unpacked upload): the decompression-bomb defence. Every byte
    /// of the tar stream counts, so this also bounds all files' sizes added up.
    pub max_unpacked_bytes: u64,
    /// Most entries accepted, directories included (default 100,000).
    pub max_entries: u64,
    /// Largest file accepted, in bytes (default 256 MiB): the most a visitor may have to
    /// hold of one file.
    pub max_file_bytes: u64,
    /// Largest `Cargo.toml` accepted, in bytes (default 1 MiB).
    pub max_manifest_bytes: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_tarball_bytes: 64 * 1024 * 1024,
            max_unpacked_bytes: 512 * 1024 * 1024,
            max_entries: 100_000,
            max_file_bytes: 256 * 1024 * 1024,
            max_manifest_bytes: 1024 * 1024,
        }
    }
}

/// A release's name and version, from its `Cargo.toml` (with which its file name and
/// top-level directory agree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseId {
    /// The crate name, from `[package] name`.
    pub name: String,
    /// The version, from `[package] version`.
    pub version: String,
}

/// What a release tarball says about itself.
#[derive(Clone, PartialEq, Eq)]
pub struct CrateRelease {
    /// The crate name, from `[package] name`.
    pub name: String,
    /// The version, from `[package] version`.
    pub version: String,
    /// The tarball, byte for byte as read.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for CrateRelease {
    // The tarball may be megabytes: show its length, not its bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrateRelease")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .finish()
    }
}

impl CrateRelease {
    fn new(release: ReleaseId, bytes: Vec<u8>) -> Self {
        CrateRelease {
            name: release.name,
            version: release.version,
            bytes,
        }
    }
}

/// Every regular file of a release, by its path below the top-level directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateFiles<T> {
    /// The release's name and version.
    pub release: ReleaseId,
    /// Each file, by its `/`-separated path below `NAME-VERSION/` (`Cargo.toml`,
    /// `src/lib.rs`): what [`ArchiveFile::path`] gives.
    pub files: BTreeMap<String, T>,
}

/// One regular file of an archive, handed to the visitor of [`visit_crate_files`].
/// Reading it reads the archive: at most [`ArchiveFile::size`] bytes.
pub struct ArchiveFile<'a> {
    /// The tarball, for errors.
    archive: &'a str,
    path: &'a str,
    size: u64,
    contents: &'a mut dyn Read,
}

impl fmt::Debug for ArchiveFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArchiveFile")
            .field("path", &self.path)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl ArchiveFile<'_> {
    /// The file's path below the top-level directory, `/`-separated (`src/lib.rs`):
    /// UTF-8 and relative, without empty, `.` or `..` components, without `\`, `:` or
    /// NUL.
    pub fn path(&self) -> &str {
        self.path
    }

    /// The file's size as its header gives it, at most [`ArchiveLimits::max_file_bytes`].
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The file's bytes.
    pub fn read_to_vec(&mut self) -> Result<Vec<u8>, ArchiveError> {
        let mut bytes = Vec::new();
        let read = (&mut *self.contents)
            .take(self.size)
            .read_to_end(&mut bytes)
            .map_err(|source| self.archive_error(source))?;
        self.check_complete(read as u64)?;
        Ok(bytes)
    }

    /// The sha256 of the file's bytes, read as a stream.
    pub fn sha256(&mut self) -> Result<[u8; 32], ArchiveError> {
        let mut hasher = Sha256::new();
        let read = io::copy(&mut (&mut *self.contents).take(self.size), &mut hasher)
            .map_err(|source| self.archive_error(source))?;
        self.check_complete(read)?;
        Ok(hasher.finalize().into())
    }

    fn archive_error(&self, source: io::Error) -> ArchiveError {
        ArchiveError::Archive {
            file: self.archive.to_owned(),
            source,
        }
    }

    /// The tar stream may end inside a file (a valid gzip of a cut archive): then the
    /// file reads short rather than failing.
    fn check_complete(&self, read: u64) -> Result<(), ArchiveError> {
        if read == self.size {
            return Ok(());
        }
        Err(ArchiveError::TruncatedEntry {
            file: self.archive.to_owned(),
            entry: self.path.to_owned(),
        })
    }
}

impl Read for ArchiveFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.contents.read(buf)
    }
}

/// A link's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// A symbolic link.
    Symbolic,
    /// A hard link.
    Hard,
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkKind::Symbolic => "symbolic link",
            LinkKind::Hard => "hard link",
        })
    }
}

/// What is wrong with a `Cargo.toml`.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestProblem {
    /// It is not UTF-8.
    #[error("not UTF-8: {0}")]
    NotUtf8(std::str::Utf8Error),
    /// It is not TOML.
    #[error("not valid TOML: {}", .0.to_string().trim_end())]
    Toml(Box<toml::de::Error>),
    /// It has no `[package]` table.
    #[error("no [package] table")]
    NoPackage,
    /// `[package]` lacks `name` or `version`.
    #[error("no `{0}` in [package]")]
    MissingField(&'static str),
}

/// Which of the three places naming a release disagrees with the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disagreement {
    /// The file name disagrees with the top-level directory and `Cargo.toml`.
    FileName,
    /// The top-level directory disagrees with the file name and `Cargo.toml`.
    Directory,
    /// `Cargo.toml` disagrees with the file name and the top-level directory.
    Manifest,
    /// The file name, the top-level directory and `Cargo.toml` all disagree.
    AllThree,
}

impl fmt::Display for Disagreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Disagreement::FileName => {
                "the file name disagrees with the tarball's top-level directory and Cargo.toml"
            }
            Disagreement::Directory => {
                "the tarball's top-level directory disagrees with the file name and Cargo.toml"
            }
            Disagreement::Manifest => {
                "Cargo.toml's [package] name and version disagree with the file name and the \
                 tarball's top-level directory"
            }
            Disagreement::AllThree => {
                "the file name, the tarball's top-level directory and Cargo.toml all disagree"
            }
        })
    }
}

/// Why a release tarball was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The file could not be opened or read.
    #[error("cannot read {file}: {source}")]
    Io {
        /// The tarball.
        file: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The path has no file name, or it is not UTF-8.
    #[error("{file}: cannot take a UTF-8 file name from this path; name the tarball NAME-VERSION.crate, as `cargo package` does")]
    FileName {
        /// The tarball.
        file: String,
    },
    /// The tarball is larger than [`ArchiveLimits::max_tarball_bytes`].
    #[error("{file} is larger than the cap of {max} bytes on release tarballs; is this a .crate made by `cargo package`?")]
    TooLarge {
        /// The tarball.
        file: String,
        /// The cap, in bytes.
        max: u64,
    },
    /// The file does not start with the gzip magic bytes.
    #[error("{file} is not gzip-compressed; is this a .crate made by `cargo package`?")]
    NotGzip {
        /// The tarball.
        file: String,
    },
    /// More than [`ArchiveLimits::max_unpacked_bytes`] came out of the gzip stream.
    #[error("{file} unpacks to more than {max} bytes; refused as a possible decompression bomb (raise the cap only if the crate really is that large)")]
    UnpackedTooLarge {
        /// The tarball.
        file: String,
        /// The cap, in bytes.
        max: u64,
    },
    /// The archive has more than [`ArchiveLimits::max_entries`] entries.
    #[error("{file} has more than {max} entries; refused (raise the cap only if the crate really has that many files)")]
    TooManyEntries {
        /// The tarball.
        file: String,
        /// The cap.
        max: u64,
    },
    /// The gzip stream or the tar archive inside it is malformed.
    #[error("{file} is not a well-formed gzip-compressed tar archive ({source}); is this a .crate made by `cargo package`?")]
    Archive {
        /// The tarball.
        file: String,
        /// What the decoder said.
        #[source]
        source: io::Error,
    },
    /// An entry's path is absolute, empty or not UTF-8, has a `.` or `..` component, or
    /// holds a character that means something else on Windows (`\`, `:`) or NUL.
    #[error("{file}: entry `{entry}` has an unsafe path ({reason}); a .crate holds only relative paths under NAME-VERSION/")]
    UnsafePath {
        /// The tarball.
        file: String,
        /// The entry's path, as the archive gives it.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An entry is not under the single top-level directory.
    #[error("{file}: entry `{entry}` is not under the top-level directory `{top}/`; a .crate holds a single NAME-VERSION/ directory")]
    OutsideTopDirectory {
        /// The tarball.
        file: String,
        /// The top-level directory, from the first entry.
        top: String,
        /// The stray entry's path.
        entry: String,
    },
    /// An entry is a symbolic or hard link.
    #[error("{file}: entry `{entry}` is a {kind} to `{target}`; a .crate holds no links (`cargo package` stores the contents of a linked file)")]
    Link {
        /// The tarball.
        file: String,
        /// The link's path, as the archive gives it.
        entry: String,
        /// Which kind of link.
        kind: LinkKind,
        /// Where it points, as the archive gives it.
        target: String,
    },
    /// An entry is neither a directory nor a regular file nor a link (a device, a FIFO,
    /// a sparse file, a pax global header, …).
    #[error(
        "{file}: entry `{entry}` is a {kind}; a .crate holds only directories and regular files"
    )]
    UnsupportedEntry {
        /// The tarball.
        file: String,
        /// The entry's path, as the archive gives it.
        entry: String,
        /// What it is.
        kind: &'static str,
    },
    /// A file is larger than [`ArchiveLimits::max_file_bytes`].
    #[error("{file}: `{entry}` is {size} bytes, larger than the cap of {max} bytes on one file")]
    FileTooLarge {
        /// The tarball.
        file: String,
        /// The file's path, as the archive gives it.
        entry: String,
        /// Its size, from its header.
        size: u64,
        /// The cap, in bytes.
        max: u64,
    },
    /// Two regular files have the same path below the top-level directory.
    #[error("{file} has more than one `{entry}` entry; refused as ambiguous (tools may disagree on which one counts)")]
    DuplicatePath {
        /// The tarball.
        file: String,
        /// The second entry's path, as the archive gives it.
        entry: String,
    },
    /// A file's data ends before the size its header gives.
    #[error("{file}: `{entry}` ends before the size its header gives; is this a .crate made by `cargo package`?")]
    TruncatedEntry {
        /// The tarball.
        file: String,
        /// The file's path below the top-level directory.
        entry: String,
    },
    /// The archive has no entries at all.
    #[error("{file} is an empty archive; is this a .crate made by `cargo package`?")]
    Empty {
        /// The tarball.
        file: String,
    },
    /// There is no `<top>/Cargo.toml`.
    #[error("{file} has no {top}/Cargo.toml; is this a .crate made by `cargo package`?")]
    MissingManifest {
        /// The tarball.
        file: String,
        /// The top-level directory.
        top: String,
    },
    /// More than one entry has the path `<top>/Cargo.toml`.
    #[error("{file} has more than one `{entry}` entry; refused as ambiguous (tools may disagree on which one counts)")]
    DuplicateManifest {
        /// The tarball.
        file: String,
        /// The repeated path.
        entry: String,
    },
    /// An entry at the top of the crate is named `Cargo.toml` in another case
    /// (`cargo.toml`, `CARGO.TOML`): on a case-insensitive file system it is the manifest.
    #[error("{file}: `{entry}` differs from Cargo.toml only in case; refused as ambiguous (on a case-insensitive file system it is the manifest)")]
    ManifestCase {
        /// The tarball.
        file: String,
        /// The entry's path, as the archive gives it.
        entry: String,
    },
    /// `<top>/Cargo.toml` is not a regular file (a link, a directory, …).
    #[error("{file}: `{entry}` is not a regular file; is this a .crate made by `cargo package`?")]
    ManifestNotFile {
        /// The tarball.
        file: String,
        /// The manifest's path.
        entry: String,
    },
    /// `<top>/Cargo.toml` is larger than [`ArchiveLimits::max_manifest_bytes`].
    #[error("{file}: `{entry}` is larger than the cap of {max} bytes on manifests")]
    ManifestTooLarge {
        /// The tarball.
        file: String,
        /// The manifest's path.
        entry: String,
        /// The cap, in bytes.
        max: u64,
    },
    /// `Cargo.toml` is not UTF-8 TOML, or lacks `[package] name` or `version`.
    #[error("{file}: cannot read `{entry}`: {problem}")]
    Manifest {
        /// The tarball.
        file: String,
        /// The manifest's path.
        entry: String,
        /// What is wrong with it.
        problem: ManifestProblem,
    },
    /// `[package] name` or `version` is not a string, e.g. `{ workspace = true }`.
    #[error("{file}: `[package] {field}` in `{entry}` is not a string; `cargo package` writes concrete values (is this the original Cargo.toml rather than the packaged one?)")]
    ManifestField {
        /// The tarball.
        file: String,
        /// The manifest's path.
        entry: String,
        /// `name` or `version`.
        field: &'static str,
    },
    /// The crate name is not one crates.io accepts.
    #[error("{file}: invalid crate name `{name}`: {reason}")]
    InvalidName {
        /// The tarball.
        file: String,
        /// The name from `Cargo.toml`.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The version is not a semver version.
    #[error("{file}: invalid version `{version}`: {reason}")]
    InvalidVersion {
        /// The tarball.
        file: String,
        /// The version from `Cargo.toml`.
        version: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The file name, the top-level directory and `Cargo.toml` do not agree.
    #[error("{file}: {what}: expected `{expected}`, found `{found}`; sign the tarball `cargo package` made, under the name it gave it")]
    NameMismatch {
        /// The tarball.
        file: String,
        /// What the others agree on (or what `Cargo.toml` implies when all differ).
        expected: String,
        /// What the odd one out says.
        found: String,
        /// Which one disagrees.
        what: Disagreement,
    },
}

/// Reads the release tarball at `path`, bounded by `limits`, and checks it: see
/// [`parse_crate_release`]. Errors name the tarball by `path`.
pub fn read_crate_release(
    path: &Path,
    limits: &ArchiveLimits,
) -> Result<CrateRelease, ArchiveError> {
    let file = path.display().to_string();
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| ArchiveError::FileName { file: file.clone() })?;
    let io_error = |source| ArchiveError::Io {
        file: file.clone(),
        source,
    };
    let handle = File::open(path).map_err(io_error)?;
    let bytes = read_bounded(handle, limits.max_tarball_bytes).map_err(|e| match e {
        BoundedReadError::TooLong { max } => ArchiveError::TooLarge {
            file: file.clone(),
            max,
        },
        BoundedReadError::Io(source) => io_error(source),
    })?;
    let release = visit_named::<ArchiveError, _>(&file, file_name, &bytes, limits, |_| Ok(()))?;
    Ok(CrateRelease::new(release, bytes))
}

/// Checks a release tarball given as bytes; `file_name` is its basename, which should
/// be `NAME-VERSION.crate`.
///
/// The tarball must follow the rules of this module: a gzip-compressed tar archive
/// within the caps, whose entries are directories and regular files at safe paths under
/// one top-level directory `NAME-VERSION/`, with exactly one `NAME-VERSION/Cargo.toml`;
/// that manifest's `[package] name` and `version` must be a valid crate name and
/// semver version, and must agree with the directory and with `file_name`.
pub fn parse_crate_release(
    file_name: &str,
    bytes: Vec<u8>,
    limits: &ArchiveLimits,
) -> Result<CrateRelease, ArchiveError> {
    let release = visit_named::<ArchiveError, _>(file_name, file_name, &bytes, limits, |_| Ok(()))?;
    Ok(CrateRelease::new(release, bytes))
}

/// The release's `Cargo.toml` (the normalised manifest `cargo package` wrote), after
/// every check of [`parse_crate_release`]: what its index entry is computed from
/// ([`crate::index_entry::IndexEntry::from_manifest`]).
pub fn release_manifest(
    file_name: &str,
    bytes: &[u8],
    limits: &ArchiveLimits,
) -> Result<String, ArchiveError> {
    let mut manifest = None;
    visit_named::<ArchiveError, _>(file_name, file_name, bytes, limits, |mut file| {
        if file.path() == MANIFEST {
            manifest = Some(file.read_to_vec()?);
        }
        Ok(())
    })?;
    let contents = manifest.ok_or_else(|| ArchiveError::MissingManifest {
        file: file_name.to_owned(),
        top: file_name.trim_end_matches(".crate").to_owned(),
    })?;
    String::from_utf8(contents).map_err(|error| ArchiveError::Manifest {
        file: file_name.to_owned(),
        entry: MANIFEST.to_owned(),
        problem: ManifestProblem::NotUtf8(error.utf8_error()),
    })
}

/// Why a release's index entry could not be computed from its tarball.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseEntryError {
    /// The tarball is refused.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Its manifest does not make an index entry.
    #[error("{file}: Cargo.toml: {error}")]
    Manifest {
        /// The tarball.
        file: String,
        /// Why.
        error: crate::index_entry::IndexEntryError,
    },
}

/// The index entry the public registry would publish for the release tarball `bytes`
/// (basename `file_name`): computed from its `Cargo.toml` ([`release_manifest`]) and its
/// sha256, as `cargo publish` and crates.io would
/// ([`crate::index_entry::IndexEntry::from_manifest`]).
pub fn release_index_entry(
    file_name: &str,
    bytes: &[u8],
    limits: &ArchiveLimits,
) -> Result<crate::index_entry::IndexEntry, ReleaseEntryError> {
    let manifest = release_manifest(file_name, bytes, limits)?;
    let cksum = hex::encode(Sha256::digest(bytes));
    crate::index_entry::IndexEntry::from_manifest(&manifest, &cksum).map_err(|error| {
        ReleaseEntryError::Manifest {
            file: file_name.to_owned(),
            error,
        }
    })
}

/// Walks the release tarball `bytes` (basename `file_name`) under the rules of
/// [`parse_crate_release`], handing each regular file to `visit` in archive order,
/// `Cargo.toml` included; returns the release's name and version.
///
/// The walk stops at the first error, the visitor's included (which comes back as it
/// is). Files reach the visitor before the whole archive has been checked: whatever it
/// gathered is for nothing unless the walk returns `Ok`.
pub fn visit_crate_files<E, F>(
    file_name: &str,
    bytes: &[u8],
    limits: &ArchiveLimits,
    visit: F,
) -> Result<ReleaseId, E>
where
    E: From<ArchiveError>,
    F: FnMut(ArchiveFile<'_>) -> Result<(), E>,
{
    visit_named(file_name, file_name, bytes, limits, visit)
}

/// The sha256 of every regular file of the release tarball `bytes` (basename
/// `file_name`), checked as [`parse_crate_release`] checks it.
pub fn crate_file_digests(
    file_name: &str,
    bytes: &[u8],
    limits: &ArchiveLimits,
) -> Result<CrateFiles<[u8; 32]>, ArchiveError> {
    let mut files = BTreeMap::new();
    let release = visit_crate_files(file_name, bytes, limits, |mut file| {
        let digest = file.sha256()?;
        files.insert(file.path().to_owned(), digest);
        Ok::<(), ArchiveError>(())
    })?;
    Ok(CrateFiles { release, files })
}

/// The bytes of every regular file of the release tarball `bytes` (basename
/// `file_name`), checked as [`parse_crate_release`] checks it. Each file is at most
/// [`ArchiveLimits::max_file_bytes`], and all of them at most
/// [`ArchiveLimits::max_unpacked_bytes`]: that is what this may hold in memory.
pub fn read_crate_files(
    file_name: &str,
    bytes: &[u8],
    limits: &ArchiveLimits,
) -> Result<CrateFiles<Vec<u8>>, ArchiveError> {
    let mut files = BTreeMap::new();
    let release = visit_crate_files(file_name, bytes, limits, |mut file| {
        let contents = file.read_to_vec()?;
        files.insert(file.path().to_owned(), contents);
        Ok::<(), ArchiveError>(())
    })?;
    Ok(CrateFiles { release, files })
}

/// [`visit_crate_files`], naming the tarball `file` in errors.
fn visit_named<E, F>(
    file: &str,
    file_name: &str,
    bytes: &[u8],
    limits: &ArchiveLimits,
    mut visit: F,
) -> Result<ReleaseId, E>
where
    E: From<ArchiveError>,
    F: FnMut(ArchiveFile<'_>) -> Result<(), E>,
{
    if bytes.len() as u64 > limits.max_tarball_bytes {
        return Err(ArchiveError::TooLarge {
            file: file.to_owned(),
            max: limits.max_tarball_bytes,
        }
        .into());
    }
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(ArchiveError::NotGzip {
            file: file.to_owned(),
        }
        .into());
    }

    let mut unpacked = CappedReader::new(GzDecoder::new(bytes), limits.max_unpacked_bytes);
    let walked = walk(file, &mut unpacked, limits, &mut visit);
    // The cap shows up as an I/O error inside tar's error, or inside whatever the
    // visitor made of it; name it for what it is.
    if unpacked.exceeded {
        return Err(ArchiveError::UnpackedTooLarge {
            file: file.to_owned(),
            max: limits.max_unpacked_bytes,
        }
        .into());
    }
    let walked = walked?;

    let (name, version) = read_manifest(file, &walked.manifest_entry, &walked.manifest)?;
    validate_crate_name(&name).map_err(|reason| ArchiveError::InvalidName {
        file: file.to_owned(),
        name: name.clone(),
        reason,
    })?;
    validate_version(&version).map_err(|reason| ArchiveError::InvalidVersion {
        file: file.to_owned(),
        version: version.clone(),
        reason,
    })?;
    check_names(file, file_name, &walked.top, &name, &version)?;
    Ok(ReleaseId { name, version })
}

/// A reader that lets through at most `max` bytes, then fails (and says so in
/// `exceeded`) rather than end early: a truncated stream must not pass for a short one.
struct CappedReader<R> {
    inner: R,
    remaining: u64,
    exceeded: bool,
}

impl<R: Read> CappedReader<R> {
    fn new(inner: R, max: u64) -> Self {
        CappedReader {
            inner,
            remaining: max,
            exceeded: false,
        }
    }
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            // At the cap: the stream is fine only if it ends here.
            let mut probe = [0u8; 1];
            let n = self.inner.read(&mut probe)?;
            if n == 0 {
                return Ok(0);
            }
            self.exceeded = true;
            return Err(io::Error::other("unpacked size cap exceeded"));
        }
        let want = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let n = match buf.get_mut(..want) {
            Some(window) => self.inner.read(window)?,
            None => self.inner.read(buf)?,
        };
        self.remaining = self
            .remaining
            .saturating_sub(u64::try_from(n).unwrap_or(u64::MAX));
        Ok(n)
    }
}

/// An entry's path: its first component and the others, `/`-joined (empty for the
/// top-level directory itself).
#[derive(Debug, PartialEq, Eq)]
struct EntryPath {
    top: String,
    relative: String,
}

/// Splits an entry's path as the archive gives it, or says why it is unsafe.
fn split_path(raw: &[u8]) -> Result<EntryPath, &'static str> {
    let text = std::str::from_utf8(raw).map_err(|_| "not UTF-8")?;
    if text.starts_with('/') {
        return Err("absolute path");
    }
    if text.contains('\\') {
        return Err("`\\`, a separator on Windows");
    }
    if text.contains(':') {
        return Err("`:`, a drive prefix on Windows");
    }
    if text.contains('\0') {
        return Err("NUL character");
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" => {}
            "." => return Err("`.` component"),
            ".." => return Err("`..` component"),
            _ => parts.push(part),
        }
    }
    let Some((top, rest)) = parts.split_first() else {
        return Err("empty path");
    };
    Ok(EntryPath {
        top: (*top).to_owned(),
        relative: rest.join("/"),
    })
}

/// What an entry type is called in errors.
fn entry_kind(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Fifo => "FIFO",
        EntryType::Continuous => "contiguous file",
        EntryType::GNUSparse => "sparse file",
        EntryType::XGlobalHeader => "pax global header",
        EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink => {
            "stray extension header"
        }
        _ => "entry of an unknown type",
    }
}

/// What a walk found besides the files it handed to the visitor.
struct Walked {
    /// The top-level directory.
    top: String,
    /// The manifest's path, as the archive gives it.
    manifest_entry: String,
    /// The manifest's bytes.
    manifest: Vec<u8>,
}

/// Walks every entry under the rules of this module, handing each regular file to
/// `visit`; drains the gzip stream to its end, so a corrupt stream is caught.
fn walk<R, E, F>(
    file: &str,
    reader: &mut CappedReader<R>,
    limits: &ArchiveLimits,
    visit: &mut F,
) -> Result<Walked, E>
where
    R: Read,
    E: From<ArchiveError>,
    F: FnMut(ArchiveFile<'_>) -> Result<(), E>,
{
    let archive_error = |source| ArchiveError::Archive {
        file: file.to_owned(),
        source,
    };
    let mut archive = tar::Archive::new(&mut *reader);
    let mut top: Option<String> = None;
    let mut manifest: Option<(String, Vec<u8>)> = None;
    let mut files = BTreeSet::new();
    let mut entries: u64 = 0;

    for entry in archive.entries().map_err(archive_error)? {
        entries = entries.saturating_add(1);
        if entries > limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                file: file.to_owned(),
                max: limits.max_entries,
            }
            .into());
        }
        let mut entry = entry.map_err(archive_error)?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let path = split_path(&raw).map_err(|reason| ArchiveError::UnsafePath {
            file: file.to_owned(),
            entry: shown.clone(),
            reason,
        })?;
        let kind = entry.header().entry_type();

        let outside = |top: &str| ArchiveError::OutsideTopDirectory {
            file: file.to_owned(),
            top: top.to_owned(),
            entry: shown.clone(),
        };
        let at_top = path.relative.is_empty();
        match &top {
            None if at_top && !kind.is_dir() => return Err(outside(&path.top).into()),
            None => top = Some(path.top),
            Some(top) if *top != path.top || (at_top && !kind.is_dir()) => {
                return Err(outside(top).into());
            }
            Some(_) => {}
        }
        let relative = path.relative;

        if relative == MANIFEST {
            if manifest.is_some() {
                return Err(ArchiveError::DuplicateManifest {
                    file: file.to_owned(),
                    entry: shown,
                }
                .into());
            }
            if !kind.is_file() {
                return Err(ArchiveError::ManifestNotFile {
                    file: file.to_owned(),
                    entry: shown,
                }
                .into());
            }
            let too_large = || ArchiveError::ManifestTooLarge {
                file: file.to_owned(),
                entry: shown.clone(),
                max: limits.max_manifest_bytes,
            };
            if entry.size() > limits.max_manifest_bytes {
                return Err(too_large().into());
            }
            let contents = match read_bounded(&mut entry, limits.max_manifest_bytes) {
                Ok(contents) => contents,
                Err(BoundedReadError::Io(e)) => return Err(archive_error(e).into()),
                Err(_) => return Err(too_large().into()),
            };
            visit(ArchiveFile {
                archive: file,
                path: MANIFEST,
                size: contents.len() as u64,
                contents: &mut contents.as_slice(),
            })?;
            files.insert(relative);
            manifest = Some((shown, contents));
            continue;
        }
        if relative.eq_ignore_ascii_case(MANIFEST) {
            return Err(ArchiveError::ManifestCase {
                file: file.to_owned(),
                entry: shown,
            }
            .into());
        }
        if kind.is_dir() {
            continue;
        }
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|target| String::from_utf8_lossy(&target).into_owned())
                .unwrap_or_default();
            return Err(ArchiveError::Link {
                file: file.to_owned(),
                entry: shown,
                kind: if kind.is_symlink() {
                    LinkKind::Symbolic
                } else {
                    LinkKind::Hard
                },
                target,
            }
            .into());
        }
        if !kind.is_file() {
            return Err(ArchiveError::UnsupportedEntry {
                file: file.to_owned(),
                entry: shown,
                kind: entry_kind(kind),
            }
            .into());
        }
        let size = entry.size();
        if size > limits.max_file_bytes {
            return Err(ArchiveError::FileTooLarge {
                file: file.to_owned(),
                entry: shown,
                size,
                max: limits.max_file_bytes,
            }
            .into());
        }
        if files.contains(&relative) {
            return Err(ArchiveError::DuplicatePath {
                file: file.to_owned(),
                entry: shown,
            }
            .into());
        }
        visit(ArchiveFile {
            archive: file,
            path: &relative,
            size,
            contents: &mut entry,
        })?;
        files.insert(relative);
    }
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(archive_error)?;

    let Some(top) = top else {
        return Err(ArchiveError::Empty {
            file: file.to_owned(),
        }
        .into());
    };
    match manifest {
        Some((manifest_entry, manifest)) => Ok(Walked {
            top,
            manifest_entry,
            manifest,
        }),
        None => Err(ArchiveError::MissingManifest {
            file: file.to_owned(),
            top,
        }
        .into()),
    }
}

/// The parts of `Cargo.toml` we read. Values stay [`toml::Value`] so a table such as
/// `{ workspace = true }` gets its own error rather than a generic type mismatch.
#[derive(Deserialize)]
struct Manifest {
    package: Option<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: Option<toml::Value>,
    version: Option<toml::Value>,
}

/// `[package] name` and `version` of the manifest, which must be strings.
fn read_manifest(
    file: &str,
    entry: &str,
    contents: &[u8],
) -> Result<(String, String), ArchiveError> {
    let manifest_error = |problem| ArchiveError::Manifest {
        file: file.to_owned(),
        entry: entry.to_owned(),
        problem,
    };
    let text = std::str::from_utf8(contents)
        .map_err(|error| manifest_error(ManifestProblem::NotUtf8(error)))?;
    let manifest: Manifest = toml::from_str(text)
        .map_err(|error| manifest_error(ManifestProblem::Toml(Box::new(error))))?;
    let package = manifest
        .package
        .ok_or_else(|| manifest_error(ManifestProblem::NoPackage))?;
    let string = |value: Option<toml::Value>, field: &'static str| match value {
        Some(toml::Value::String(value)) => Ok(value),
        Some(_) => Err(ArchiveError::ManifestField {
            file: file.to_owned(),
            entry: entry.to_owned(),
            field,
        }),
        None => Err(manifest_error(ManifestProblem::MissingField(field))),
    };
    Ok((
        string(package.name, "name")?,
        string(package.version, "version")?,
    ))
}

/// Checks that the file name is `NAME-VERSION.crate` and the top-level directory is
/// `NAME-VERSION`, and if not, says which one is the odd one out.
fn check_names(
    file: &str,
    file_name: &str,
    top: &str,
    name: &str,
    version: &str,
) -> Result<(), ArchiveError> {
    let claimed = format!("{name}-{version}");
    let stem = file_name.strip_suffix(".crate");
    let mismatch = |what, expected: String, found: String| ArchiveError::NameMismatch {
        file: file.to_owned(),
        expected,
        found,
        what,
    };
    if top == claimed {
        if stem == Some(claimed.as_str()) {
            return Ok(());
        }
        return Err(mismatch(
            Disagreement::FileName,
            format!("{claimed}.crate"),
            file_name.to_owned(),
        ));
    }
    if stem == Some(top) {
        Err(mismatch(Disagreement::Manifest, top.to_owned(), claimed))
    } else if stem == Some(claimed.as_str()) {
        Err(mismatch(Disagreement::Directory, claimed, top.to_owned()))
    } else {
        Err(mismatch(
            Disagreement::AllThree,
            format!("{claimed}.crate with directory {claimed}/"),
            format!("file name {file_name} with directory {top}/"),
        ))
    }
}

/// The layout's crate-name check (crates.io rules), with its reason.
fn validate_crate_name(name: &str) -> Result<(), &'static str> {
    if name.contains("::") {
        return Err("a Cargo.toml package name cannot contain `::`");
    }
    layout::validate_crate_name(name).map_err(|e| match e {
        LayoutError::CrateName { reason, .. }
        | LayoutError::Namespace { reason, .. }
        | LayoutError::Version { reason, .. } => reason,
    })
}

/// The layout's semantic-version check, with its reason.
fn validate_version(version: &str) -> Result<(), &'static str> {
    layout::validate_version(version).map_err(|e| match e {
        LayoutError::CrateName { reason, .. }
        | LayoutError::Namespace { reason, .. }
        | LayoutError::Version { reason, .. } => reason,
    })
}
