//! Reading `.crate` release tarballs: what a release says about itself.
//!
//! A `.crate` is a gzip-compressed tar archive, as `cargo package` makes it: every entry
//! lives under one top-level directory `NAME-VERSION/`, and `NAME-VERSION/Cargo.toml` is
//! the normalized manifest. Before a maintainer signs a release, the file name, the
//! top-level directory and the manifest's `[package] name` and `version` must all agree,
//! so a signature can never vouch for a tarball that claims to be something else.
//!
//! The input is untrusted: the file, the gzip stream and the manifest are each read
//! under a size cap ([`ArchiveLimits`]), and paths that could escape the top-level
//! directory or make the manifest ambiguous are refused.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path};

use flate2::read::GzDecoder;
use serde::Deserialize;

use crate::repository::layout::{self, LayoutError};

#[cfg(test)]
mod tests;

/// Size caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Largest tarball file accepted, in bytes (default 64 MiB).
    pub max_tarball_bytes: u64,
    /// Total bytes read out of the gzip stream before we stop (default 512 MiB): the
    /// decompression-bomb defence.
    pub max_unpacked_bytes: u64,
    /// Largest `Cargo.toml` accepted, in bytes (default 1 MiB).
    pub max_manifest_bytes: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_tarball_bytes: 64 * 1024 * 1024,
            max_unpacked_bytes: 512 * 1024 * 1024,
            max_manifest_bytes: 1024 * 1024,
        }
    }
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
    /// The gzip stream or the tar archive inside it is malformed.
    #[error("{file} is not a well-formed gzip-compressed tar archive ({source}); is this a .crate made by `cargo package`?")]
    Archive {
        /// The tarball.
        file: String,
        /// What the decoder said.
        #[source]
        source: io::Error,
    },
    /// An entry's path is absolute, empty, not UTF-8 at the top, or has `.`/`..` components.
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
    #[error("{file}: cannot read `{entry}`: {message}")]
    Manifest {
        /// The tarball.
        file: String,
        /// The manifest's path.
        entry: String,
        /// What the TOML parser (or the check for required keys) said.
        message: String,
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

/// Reads the release tarball at `path`, bounded by `limits`, and checks what it says
/// about itself: see [`parse_crate_release`].
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
    let mut bytes = Vec::new();
    handle
        .take(limits.max_tarball_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    parse_named(&file, file_name, bytes, limits)
}

/// Checks a release tarball given as bytes; `file_name` is its basename.
///
/// The tarball must be a gzip-compressed tar archive whose entries all live under one
/// top-level directory `NAME-VERSION/`, with exactly one `NAME-VERSION/Cargo.toml`;
/// that manifest's `[package] name` and `version` must be a valid crate name and
/// semver version, and must agree with the directory and with `file_name`
/// (`NAME-VERSION.crate`).
pub fn parse_crate_release(
    file_name: &str,
    bytes: Vec<u8>,
    limits: &ArchiveLimits,
) -> Result<CrateRelease, ArchiveError> {
    parse_named(file_name, file_name, bytes, limits)
}

/// [`parse_crate_release`], naming the tarball `file` in errors.
fn parse_named(
    file: &str,
    file_name: &str,
    bytes: Vec<u8>,
    limits: &ArchiveLimits,
) -> Result<CrateRelease, ArchiveError> {
    let too_large = u64::try_from(bytes.len()).map_or(true, |len| len > limits.max_tarball_bytes);
    if too_large {
        return Err(ArchiveError::TooLarge {
            file: file.to_owned(),
            max: limits.max_tarball_bytes,
        });
    }
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(ArchiveError::NotGzip {
            file: file.to_owned(),
        });
    }

    let mut unpacked =
        CappedReader::new(GzDecoder::new(bytes.as_slice()), limits.max_unpacked_bytes);
    let walked = walk(file, &mut unpacked, limits);
    // The cap shows up inside tar's error as an I/O error; name it for what it is.
    if unpacked.exceeded {
        return Err(ArchiveError::UnpackedTooLarge {
            file: file.to_owned(),
            max: limits.max_unpacked_bytes,
        });
    }
    let (top, manifest_path, manifest) = walked?;

    let (name, version) = read_manifest(file, &manifest_path, &manifest)?;
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
    check_names(file, file_name, &top, &name, &version)?;

    Ok(CrateRelease {
        name,
        version,
        bytes,
    })
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

/// Walks every entry; returns the top-level directory, the manifest's path and the
/// manifest's bytes. Drains the gzip stream to its end, so a corrupt stream is caught.
fn walk<R: Read>(
    file: &str,
    reader: &mut CappedReader<R>,
    limits: &ArchiveLimits,
) -> Result<(String, String, Vec<u8>), ArchiveError> {
    let archive_error = |source| ArchiveError::Archive {
        file: file.to_owned(),
        source,
    };
    let mut archive = tar::Archive::new(&mut *reader);
    let mut top: Option<String> = None;
    let mut manifest: Option<(String, Vec<u8>)> = None;

    for entry in archive.entries().map_err(archive_error)? {
        let mut entry = entry.map_err(archive_error)?;
        let path = entry.path().map_err(archive_error)?.into_owned();
        let shown = path.display().to_string();
        let unsafe_path = |reason| ArchiveError::UnsafePath {
            file: file.to_owned(),
            entry: shown.clone(),
            reason,
        };

        let mut parts = Vec::new();
        for component in path.components() {
            match component {
                Component::Normal(part) => parts.push(part),
                Component::ParentDir => return Err(unsafe_path("`..` component")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(unsafe_path("absolute path"))
                }
                Component::CurDir => return Err(unsafe_path("`.` component")),
            }
        }
        let Some((first, rest)) = parts.split_first() else {
            return Err(unsafe_path("empty path"));
        };
        let first = first
            .to_str()
            .ok_or_else(|| unsafe_path("top-level directory name is not UTF-8"))?;
        let is_dir = entry.header().entry_type().is_dir();

        match &top {
            None if rest.is_empty() && !is_dir => {
                return Err(ArchiveError::OutsideTopDirectory {
                    file: file.to_owned(),
                    top: first.to_owned(),
                    entry: shown,
                });
            }
            None => top = Some(first.to_owned()),
            Some(top) if top != first || (rest.is_empty() && !is_dir) => {
                return Err(ArchiveError::OutsideTopDirectory {
                    file: file.to_owned(),
                    top: top.clone(),
                    entry: shown,
                });
            }
            Some(_) => {}
        }

        if matches!(rest, [only] if *only == "Cargo.toml") {
            if manifest.is_some() {
                return Err(ArchiveError::DuplicateManifest {
                    file: file.to_owned(),
                    entry: shown,
                });
            }
            if !entry.header().entry_type().is_file() {
                return Err(ArchiveError::ManifestNotFile {
                    file: file.to_owned(),
                    entry: shown,
                });
            }
            let too_large = || ArchiveError::ManifestTooLarge {
                file: file.to_owned(),
                entry: shown.clone(),
                max: limits.max_manifest_bytes,
            };
            if entry.size() > limits.max_manifest_bytes {
                return Err(too_large());
            }
            let mut contents = Vec::new();
            (&mut entry)
                .take(limits.max_manifest_bytes.saturating_add(1))
                .read_to_end(&mut contents)
                .map_err(archive_error)?;
            if u64::try_from(contents.len()).map_or(true, |len| len > limits.max_manifest_bytes) {
                return Err(too_large());
            }
            manifest = Some((shown.clone(), contents));
        }
    }
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(archive_error)?;

    let Some(top) = top else {
        return Err(ArchiveError::Empty {
            file: file.to_owned(),
        });
    };
    match manifest {
        Some((path, contents)) => Ok((top, path, contents)),
        None => Err(ArchiveError::MissingManifest {
            file: file.to_owned(),
            top,
        }),
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
    let manifest_error = |message: String| ArchiveError::Manifest {
        file: file.to_owned(),
        entry: entry.to_owned(),
        message,
    };
    let text = std::str::from_utf8(contents)
        .map_err(|error| manifest_error(format!("not UTF-8: {error}")))?;
    let manifest: Manifest = toml::from_str(text).map_err(|error| {
        manifest_error(format!("not valid TOML: {}", error.to_string().trim_end()))
    })?;
    let package = manifest
        .package
        .ok_or_else(|| manifest_error("no [package] table".to_owned()))?;
    let string = |value: Option<toml::Value>, field: &'static str| match value {
        Some(toml::Value::String(value)) => Ok(value),
        Some(_) => Err(ArchiveError::ManifestField {
            file: file.to_owned(),
            entry: entry.to_owned(),
            field,
        }),
        None => Err(manifest_error(format!("no `{field}` in [package]"))),
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

