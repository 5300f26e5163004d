//! Reading `.crate` release tarballs: what a release says about itself.
//!
//! A `.crate` is a gzip-compressed tar archive, as `cargo package` makes it: every entry
//! lives under one top-level directory `NAME-VERSION/`, and `NAME-VERSION/Cargo.toml` is
//! the normalized manifest. Before a maintainer signs a release, the file name, the
//! top-level directory and the manifest's `[package] name` and `version` must all agree,
//! so a signature can never vouch for a tarball that claims to be something else.
//!
//! The input is untrusted: the file, the gzip stream and the manifest are each read
//! under a size cap ([`TarballLimits`]), and paths that could escape the top-level
//! directory or make the manifest ambiguous are refused.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path};
use tuf_core::layout::{self, LayoutError};

use flate2::read::GzDecoder;
use serde::Deserialize;

/// Size caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TarballLimits {
    /// Largest tarball file accepted, in bytes (default 64 MiB).
    pub max_tarball_bytes: u64,
    /// Total bytes read out of the gzip stream before we stop (default 512 MiB): the
    /// decompression-bomb defence.
    pub max_unpacked_bytes: u64,
    /// Largest `Cargo.toml` accepted, in bytes (default 1 MiB).
    pub max_manifest_bytes: u64,
}

impl Default for TarballLimits {
    fn default() -> Self {
        TarballLimits {
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
pub enum TarballError {
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
    /// The tarball is larger than [`TarballLimits::max_tarball_bytes`].
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
    /// More than [`TarballLimits::max_unpacked_bytes`] came out of the gzip stream.
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
    /// `<top>/Cargo.toml` is larger than [`TarballLimits::max_manifest_bytes`].
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
    limits: &TarballLimits,
) -> Result<CrateRelease, TarballError> {
    let file = path.display().to_string();
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| TarballError::FileName { file: file.clone() })?;
    let io_error = |source| TarballError::Io {
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
#[cfg(test)]
pub fn parse_crate_release(
    file_name: &str,
    bytes: Vec<u8>,
    limits: &TarballLimits,
) -> Result<CrateRelease, TarballError> {
    parse_named(file_name, file_name, bytes, limits)
}

/// [`parse_crate_release`], naming the tarball `file` in errors.
fn parse_named(
    file: &str,
    file_name: &str,
    bytes: Vec<u8>,
    limits: &TarballLimits,
) -> Result<CrateRelease, TarballError> {
    let too_large = u64::try_from(bytes.len()).map_or(true, |len| len > limits.max_tarball_bytes);
    if too_large {
        return Err(TarballError::TooLarge {
            file: file.to_owned(),
            max: limits.max_tarball_bytes,
        });
    }
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(TarballError::NotGzip {
            file: file.to_owned(),
        });
    }

    let mut unpacked =
        CappedReader::new(GzDecoder::new(bytes.as_slice()), limits.max_unpacked_bytes);
    let walked = walk(file, &mut unpacked, limits);
    // The cap shows up inside tar's error as an I/O error; name it for what it is.
    if unpacked.exceeded {
        return Err(TarballError::UnpackedTooLarge {
            file: file.to_owned(),
            max: limits.max_unpacked_bytes,
        });
    }
    let (top, manifest_path, manifest) = walked?;

    let (name, version) = read_manifest(file, &manifest_path, &manifest)?;
    validate_crate_name(&name).map_err(|reason| TarballError::InvalidName {
        file: file.to_owned(),
        name: name.clone(),
        reason,
    })?;
    validate_version(&version).map_err(|reason| TarballError::InvalidVersion {
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
    limits: &TarballLimits,
) -> Result<(String, String, Vec<u8>), TarballError> {
    let archive_error = |source| TarballError::Archive {
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
        let unsafe_path = |reason| TarballError::UnsafePath {
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
                return Err(TarballError::OutsideTopDirectory {
                    file: file.to_owned(),
                    top: first.to_owned(),
                    entry: shown,
                });
            }
            None => top = Some(first.to_owned()),
            Some(top) if top != first || (rest.is_empty() && !is_dir) => {
                return Err(TarballError::OutsideTopDirectory {
                    file: file.to_owned(),
                    top: top.clone(),
                    entry: shown,
                });
            }
            Some(_) => {}
        }

        if matches!(rest, [only] if *only == "Cargo.toml") {
            if manifest.is_some() {
                return Err(TarballError::DuplicateManifest {
                    file: file.to_owned(),
                    entry: shown,
                });
            }
            if !entry.header().entry_type().is_file() {
                return Err(TarballError::ManifestNotFile {
                    file: file.to_owned(),
                    entry: shown,
                });
            }
            let too_large = || TarballError::ManifestTooLarge {
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
        return Err(TarballError::Empty {
            file: file.to_owned(),
        });
    };
    match manifest {
        Some((path, contents)) => Ok((top, path, contents)),
        None => Err(TarballError::MissingManifest {
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
) -> Result<(String, String), TarballError> {
    let manifest_error = |message: String| TarballError::Manifest {
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
        Some(_) => Err(TarballError::ManifestField {
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
) -> Result<(), TarballError> {
    let claimed = format!("{name}-{version}");
    let stem = file_name.strip_suffix(".crate");
    let mismatch = |what, expected: String, found: String| TarballError::NameMismatch {
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
        // A kind of refusal added later: still a refusal.
        _ => "not allowed by the registry layout",
    })
}

/// The layout's semantic-version check, with its reason.
fn validate_version(version: &str) -> Result<(), &'static str> {
    layout::validate_version(version).map_err(|e| match e {
        LayoutError::CrateName { reason, .. }
        | LayoutError::Namespace { reason, .. }
        | LayoutError::Version { reason, .. } => reason,
        // A kind of refusal added later: still a refusal.
        _ => "not allowed by the registry layout",
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::Compression;
    use tar::{EntryType, Header};

    use super::*;

    /// One tar entry; the path goes into the header byte for byte, so tests can write
    /// paths `tar::Builder` would refuse (`..`, absolute).
    struct Item<'a> {
        path: &'a str,
        kind: EntryType,
        data: &'a [u8],
    }

    fn file<'a>(path: &'a str, data: &'a [u8]) -> Item<'a> {
        Item {
            path,
            kind: EntryType::Regular,
            data,
        }
    }

    fn dir(path: &str) -> Item<'_> {
        Item {
            path,
            kind: EntryType::Directory,
            data: b"",
        }
    }

    fn tar_bytes(items: &[Item<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for item in items {
            let mut header = Header::new_gnu();
            let name = &mut header.as_gnu_mut().unwrap().name;
            name[..item.path.len()].copy_from_slice(item.path.as_bytes());
            header.set_entry_type(item.kind);
            header.set_size(item.data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_cksum();
            builder.append(&header, item.data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn tarball(items: &[Item<'_>]) -> Vec<u8> {
        gzip(&tar_bytes(items))
    }

    fn manifest(name: &str, version: &str) -> String {
        format!(
            "[package]\nedition = \"2021\"\nname = \"{name}\"\nversion = \"{version}\"\n\
             description = \"test\"\nlicense = \"MIT\"\n\n[dependencies]\n"
        )
    }

    /// A well-formed release of `name`/`version`, under the directory `top`.
    fn release(top: &str, name: &str, version: &str) -> Vec<u8> {
        let toml = manifest(name, version);
        let cargo_toml = format!("{top}/Cargo.toml");
        let lib_rs = format!("{top}/src/lib.rs");
        tarball(&[
            file(&cargo_toml, toml.as_bytes()),
            file(&lib_rs, b"pub fn f() {}\n"),
        ])
    }

    fn parse(file_name: &str, bytes: Vec<u8>) -> Result<CrateRelease, TarballError> {
        parse_crate_release(file_name, bytes, &TarballLimits::default())
    }

    fn mismatch(error: TarballError) -> (String, String, Disagreement) {
        match error {
            TarballError::NameMismatch {
                expected,
                found,
                what,
                ..
            } => (expected, found, what),
            other => panic!("expected NameMismatch, got {other:?}"),
        }
    }

    #[test]
    fn good_tarball_is_read() {
        let bytes = release("foo-bar-1.2.3", "foo-bar", "1.2.3");
        let release = parse("foo-bar-1.2.3.crate", bytes.clone()).unwrap();
        assert_eq!(release.name, "foo-bar");
        assert_eq!(release.version, "1.2.3");
        assert_eq!(release.bytes, bytes);
    }

    #[test]
    fn good_tarball_with_prerelease_build_and_directory_entries() {
        let top = "foo_bar-0.10.0-alpha.1-x.0+build.007";
        let toml = manifest("foo_bar", "0.10.0-alpha.1-x.0+build.007");
        let bytes = tarball(&[
            dir(&format!("{top}/")),
            file(&format!("{top}/Cargo.toml"), toml.as_bytes()),
            dir(&format!("{top}/src/")),
            file(&format!("{top}/src/lib.rs"), b""),
        ]);
        let release = parse(&format!("{top}.crate"), bytes).unwrap();
        assert_eq!(release.version, "0.10.0-alpha.1-x.0+build.007");
    }

    #[test]
    fn read_crate_release_reads_a_file_up_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("foo-1.0.0.crate");
        let bytes = release("foo-1.0.0", "foo", "1.0.0");
        std::fs::write(&path, &bytes).unwrap();
        let limits = TarballLimits {
            max_tarball_bytes: bytes.len() as u64,
            ..TarballLimits::default()
        };
        let release = read_crate_release(&path, &limits).unwrap();
        assert_eq!(release.name, "foo");
        assert_eq!(release.bytes, bytes);
    }

    #[test]
    fn oversized_tarball_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("foo-1.0.0.crate");
        let bytes = release("foo-1.0.0", "foo", "1.0.0");
        std::fs::write(&path, &bytes).unwrap();
        let limits = TarballLimits {
            max_tarball_bytes: bytes.len() as u64 - 1,
            ..TarballLimits::default()
        };
        let error = read_crate_release(&path, &limits).unwrap_err();
        match &error {
            TarballError::TooLarge { file, max } => {
                assert_eq!(file, &path.display().to_string());
                assert_eq!(*max, bytes.len() as u64 - 1);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert!(error.to_string().contains("foo-1.0.0.crate"));

        let error = parse_crate_release("foo-1.0.0.crate", bytes, &limits).unwrap_err();
        assert!(matches!(error, TarballError::TooLarge { .. }), "{error:?}");
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("foo-1.0.0.crate");
        let error = read_crate_release(&path, &TarballLimits::default()).unwrap_err();
        assert!(matches!(error, TarballError::Io { .. }), "{error:?}");
    }

    #[test]
    fn file_name_mismatch_is_refused() {
        let bytes = release("foo-1.0.0", "foo", "1.0.0");
        let error = parse("foo-1.0.1.crate", bytes.clone()).unwrap_err();
        assert!(
            error.to_string().contains("the file name disagrees"),
            "{error}"
        );
        assert_eq!(
            mismatch(error),
            (
                "foo-1.0.0.crate".to_owned(),
                "foo-1.0.1.crate".to_owned(),
                Disagreement::FileName
            )
        );
        // The right stem with the wrong extension is still the wrong file name.
        let error = parse("foo-1.0.0.tar.gz", bytes).unwrap_err();
        assert_eq!(mismatch(error).2, Disagreement::FileName);
    }

    #[test]
    fn directory_mismatch_is_refused() {
        let bytes = release("foo-1.0.1", "foo", "1.0.0");
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(
            error.to_string().contains("top-level directory disagrees"),
            "{error}"
        );
        assert_eq!(
            mismatch(error),
            (
                "foo-1.0.0".to_owned(),
                "foo-1.0.1".to_owned(),
                Disagreement::Directory
            )
        );
    }

    #[test]
    fn manifest_mismatch_is_refused() {
        let bytes = release("foo-1.0.0", "bar", "1.0.0");
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(
            error.to_string().contains("Cargo.toml's [package]"),
            "{error}"
        );
        assert_eq!(
            mismatch(error),
            (
                "foo-1.0.0".to_owned(),
                "bar-1.0.0".to_owned(),
                Disagreement::Manifest
            )
        );
        let bytes = release("foo-1.0.0", "foo", "1.0.1");
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert_eq!(mismatch(error).2, Disagreement::Manifest);
    }

    #[test]
    fn three_way_mismatch_is_refused() {
        let bytes = release("foo-2.0.0", "foo", "1.0.0");
        let error = parse("foo-3.0.0.crate", bytes).unwrap_err();
        assert_eq!(mismatch(error).2, Disagreement::AllThree);
    }

    #[test]
    fn missing_manifest_is_refused() {
        let bytes = tarball(&[file("foo-1.0.0/src/lib.rs", b"")]);
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(
            matches!(&error, TarballError::MissingManifest { top, .. } if top == "foo-1.0.0"),
            "{error:?}"
        );
        // A Cargo.toml deeper down is not the crate's manifest.
        let toml = manifest("foo", "1.0.0");
        let bytes = tarball(&[file("foo-1.0.0/src/Cargo.toml", toml.as_bytes())]);
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(
            matches!(error, TarballError::MissingManifest { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn duplicate_manifest_is_refused() {
        let first = manifest("foo", "1.0.0");
        let second = manifest("foo", "1.0.0").replace("test", "other");
        let bytes = tarball(&[
            file("foo-1.0.0/Cargo.toml", first.as_bytes()),
            file("foo-1.0.0/src/lib.rs", b""),
            file("foo-1.0.0/Cargo.toml", second.as_bytes()),
        ]);
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(
            matches!(&error, TarballError::DuplicateManifest { entry, .. }
                if entry == "foo-1.0.0/Cargo.toml"),
            "{error:?}"
        );
    }

    #[test]
    fn duplicate_manifest_spelled_differently_is_refused() {
        let toml = manifest("foo", "1.0.0");
        let bytes = tarball(&[
            file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
            file("foo-1.0.0//Cargo.toml", toml.as_bytes()),
        ]);
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(
            matches!(error, TarballError::DuplicateManifest { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn parent_dir_path_is_refused() {
        let toml = manifest("foo", "1.0.0");
        let bytes = tarball(&[
            file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
            file("foo-1.0.0/../evil.rs", b""),
        ]);
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(
            matches!(&error, TarballError::UnsafePath { entry, reason, .. }
                if entry == "foo-1.0.0/../evil.rs" && reason.contains("..")),
            "{error:?}"
        );
    }

    #[test]
    fn absolute_path_is_refused() {
        let toml = manifest("foo", "1.0.0");
        let bytes = tarball(&[file("/foo-1.0.0/Cargo.toml", toml.as_bytes())]);
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(
            matches!(&error, TarballError::UnsafePath { reason, .. } if reason.contains("absolute")),
            "{error:?}"
        );
    }

    #[test]
    fn current_dir_component_is_refused() {
        let toml = manifest("foo", "1.0.0");
        let bytes = tarball(&[file("./foo-1.0.0/Cargo.toml", toml.as_bytes())]);
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(
            matches!(error, TarballError::UnsafePath { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn two_top_level_dirs_are_refused() {
        let toml = manifest("foo", "1.0.0");
        let bytes = tarball(&[
            file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
            file("bar-1.0.0/src/lib.rs", b""),
        ]);
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(
            matches!(&error, TarballError::OutsideTopDirectory { top, entry, .. }
                if top == "foo-1.0.0" && entry == "bar-1.0.0/src/lib.rs"),
            "{error:?}"
        );
    }

    #[test]
    fn top_level_file_is_refused() {
        let toml = manifest("foo", "1.0.0");
        let after = tarball(&[
            file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
            file("README.md", b""),
        ]);
        let error = parse("foo-1.0.0.crate", after).unwrap_err();
        assert!(
            matches!(error, TarballError::OutsideTopDirectory { .. }),
            "{error:?}"
        );
        let before = tarball(&[
            file("foo-1.0.0", b""),
            file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
        ]);
        let error = parse("foo-1.0.0.crate", before).unwrap_err();
        assert!(
            matches!(error, TarballError::OutsideTopDirectory { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn gzip_bomb_is_refused() {
        let toml = manifest("foo", "1.0.0");
        let zeros = vec![0u8; 2 * 1024 * 1024];
        let bytes = tarball(&[
            file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
            file("foo-1.0.0/src/zeros", &zeros),
        ]);
        assert!(bytes.len() < 64 * 1024, "zeros compress well");
        let limits = TarballLimits {
            max_unpacked_bytes: 1024 * 1024,
            ..TarballLimits::default()
        };
        let error = parse_crate_release("foo-1.0.0.crate", bytes.clone(), &limits).unwrap_err();
        assert!(
            matches!(error, TarballError::UnpackedTooLarge { max, .. } if max == 1024 * 1024),
            "{error:?}"
        );
        // The same tarball under the default cap is fine.
        parse("foo-1.0.0.crate", bytes).unwrap();
    }

    #[test]
    fn unpacked_cap_counts_every_byte_of_the_stream() {
        let unpacked = tar_bytes(&[file(
            "foo-1.0.0/Cargo.toml",
            manifest("foo", "1.0.0").as_bytes(),
        )]);
        let bytes = gzip(&unpacked);
        let exact = TarballLimits {
            max_unpacked_bytes: unpacked.len() as u64,
            ..TarballLimits::default()
        };
        parse_crate_release("foo-1.0.0.crate", bytes.clone(), &exact).unwrap();
        let short = TarballLimits {
            max_unpacked_bytes: unpacked.len() as u64 - 1,
            ..TarballLimits::default()
        };
        let error = parse_crate_release("foo-1.0.0.crate", bytes, &short).unwrap_err();
        assert!(
            matches!(error, TarballError::UnpackedTooLarge { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn not_gzip_is_refused() {
        let plain_tar = tar_bytes(&[file(
            "foo-1.0.0/Cargo.toml",
            manifest("foo", "1.0.0").as_bytes(),
        )]);
        for bytes in [plain_tar, b"hello".to_vec(), Vec::new(), vec![0x1f]] {
            let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
            assert!(matches!(error, TarballError::NotGzip { .. }), "{error:?}");
            assert!(error.to_string().contains("cargo package"), "{error}");
        }
    }

    #[test]
    fn corrupt_gzip_or_tar_is_refused() {
        let good = release("foo-1.0.0", "foo", "1.0.0");
        let truncated = good[..good.len() / 2].to_vec();
        let mut bad_crc = good.clone();
        let crc_at = bad_crc.len() - 8;
        bad_crc[crc_at] ^= 0xff;
        let garbage = {
            let mut bytes = vec![0x1f, 0x8b];
            bytes.extend_from_slice(&[0x55; 64]);
            bytes
        };
        let not_tar = gzip(&[b'x'; 1500]);
        for bytes in [truncated, bad_crc, garbage, not_tar] {
            let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
            assert!(matches!(error, TarballError::Archive { .. }), "{error:?}");
        }
    }

    #[test]
    fn empty_archive_is_refused() {
        let error = parse("foo-1.0.0.crate", tarball(&[])).unwrap_err();
        assert!(matches!(error, TarballError::Empty { .. }), "{error:?}");
    }

    #[test]
    fn invalid_crate_names_are_refused() {
        let long = "a".repeat(65);
        for name in [
            "1abc",
            "a b",
            long.as_str(),
            "",
            "_abc",
            "-abc",
            "caf\u{e9}",
            "a.b",
        ] {
            let top = format!("{name}-1.0.0");
            let error = parse(&format!("{top}.crate"), release(&top, name, "1.0.0")).unwrap_err();
            assert!(
                matches!(&error, TarballError::InvalidName { name: found, .. } if found == name),
                "{name:?}: {error:?}"
            );
        }
        let longest = "a".repeat(64);
        let top = format!("{longest}-1.0.0");
        parse(&format!("{top}.crate"), release(&top, &longest, "1.0.0")).unwrap();
    }

    #[test]
    fn invalid_versions_are_refused() {
        for version in [
            "1.0",
            "01.0.0",
            "1.0.0-",
            "1.0.0+",
            "1.0.0.0",
            "1.00.0",
            "1.0.01",
            "v1.0.0",
            "1.0.0-a..b",
            "1.0.0-01",
            "1.0.0-a_b",
            "1.0.0+a+b",
            "1..0",
            "18446744073709551616.0.0",
        ] {
            let top = format!("foo-{version}");
            let error = parse(&format!("{top}.crate"), release(&top, "foo", version)).unwrap_err();
            assert!(
                matches!(&error, TarballError::InvalidVersion { version: found, .. }
                    if found == version),
                "{version:?}: {error:?}"
            );
        }
    }

    #[test]
    fn version_validator_accepts_semver() {
        for version in [
            "0.0.0",
            "1.2.3",
            "10.20.30",
            "1.0.0-0",
            "1.0.0-rc.1",
            "1.0.0-x-y.0a",
            "1.0.0+001",
            "1.0.0-alpha+build.1-2",
            "18446744073709551615.0.0",
        ] {
            assert_eq!(validate_version(version), Ok(()), "{version}");
        }
    }

    #[test]
    fn workspace_inherited_fields_are_refused() {
        let toml = "[package]\nname = \"foo\"\nversion = { workspace = true }\n";
        let bytes = tarball(&[file("foo-1.0.0/Cargo.toml", toml.as_bytes())]);
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(
            matches!(
                error,
                TarballError::ManifestField {
                    field: "version",
                    ..
                }
            ),
            "{error:?}"
        );
        let toml = "[package]\nname.workspace = true\nversion = \"1.0.0\"\n";
        let bytes = tarball(&[file("foo-1.0.0/Cargo.toml", toml.as_bytes())]);
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(
            matches!(error, TarballError::ManifestField { field: "name", .. }),
            "{error:?}"
        );
    }

    #[test]
    fn malformed_manifests_are_refused() {
        for toml in [
            &b"[package\nname = \"foo\"\n"[..],
            b"[package]\nversion = \"1.0.0\"\n",
            b"[package]\nname = \"foo\"\n",
            b"[dependencies]\n",
            b"[package]\nname = \"f\xffo\"\nversion = \"1.0.0\"\n",
        ] {
            let bytes = tarball(&[file("foo-1.0.0/Cargo.toml", toml)]);
            let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
            assert!(matches!(error, TarballError::Manifest { .. }), "{error:?}");
        }
    }

    #[test]
    fn oversized_manifest_is_refused() {
        let toml = manifest("foo", "1.0.0");
        let bytes = tarball(&[file("foo-1.0.0/Cargo.toml", toml.as_bytes())]);
        let exact = TarballLimits {
            max_manifest_bytes: toml.len() as u64,
            ..TarballLimits::default()
        };
        parse_crate_release("foo-1.0.0.crate", bytes.clone(), &exact).unwrap();
        let short = TarballLimits {
            max_manifest_bytes: toml.len() as u64 - 1,
            ..TarballLimits::default()
        };
        let error = parse_crate_release("foo-1.0.0.crate", bytes, &short).unwrap_err();
        assert!(
            matches!(error, TarballError::ManifestTooLarge { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn manifest_that_is_not_a_regular_file_is_refused() {
        let bytes = tarball(&[
            Item {
                path: "foo-1.0.0/Cargo.toml",
                kind: EntryType::Symlink,
                data: b"",
            },
            file(
                "foo-1.0.0/Cargo.toml.orig",
                manifest("foo", "1.0.0").as_bytes(),
            ),
        ]);
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(
            matches!(error, TarballError::ManifestNotFile { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn capped_reader_stops_at_the_cap() {
        let data = [7u8; 10];
        let mut reader = CappedReader::new(&data[..], 10);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 10);
        assert!(!reader.exceeded);

        let mut reader = CappedReader::new(&data[..], 9);
        let mut out = Vec::new();
        assert!(reader.read_to_end(&mut out).is_err());
        assert!(reader.exceeded);
        assert_eq!(out.len(), 9);
    }

    #[test]
    fn errors_name_the_file() {
        let bytes = release("foo-1.0.0", "foo", "1.0.0");
        let error = parse("foo-9.0.0.crate", bytes).unwrap_err();
        assert!(
            error.to_string().starts_with("foo-9.0.0.crate: "),
            "{error}"
        );
        let error = parse("nope.crate", b"nope".to_vec()).unwrap_err();
        assert!(error.to_string().starts_with("nope.crate "), "{error}");
    }
}
