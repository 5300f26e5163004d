//! The published-directory store: reading the current generation of published metadata,
//! and writing a publish into it so that readers switch from the old publish to the new
//! one in one atomic rename. (The publish operation itself, which decides what is
//! written, is `publish.rs`.)
//!
//! `published/metadata` is a symbolic link to `published/.generations/<N>`, where `N` is
//! the timestamp version of the publish that made the generation. Published files are
//! never changed; a publish only adds files, and replaces `timestamp.json`.
//!
//! * A publish that carries no root adds its versioned files to the current generation
//!   (no published metadata names them yet), then renames the new `timestamp.json` over
//!   the old one. That rename is the switch, and the cost of the publish follows what it
//!   changed, not how many files the repository has.
//! * A publish that carries a root makes a new generation: hard links to every file of
//!   the current one (sharing them is safe, as they never change), its new files written
//!   beside them, synced, then swapped in by renaming a fresh symbolic link over
//!   `published/metadata`. This is what makes a root rotation that changes the online
//!   keys safe to publish, where writing `N.root.json` and `timestamp.json` one after the
//!   other would leave a window in which they disagree.
//!
//! A crash at any point leaves the old publish or the new one in force, each complete.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{io_error, RepositoryError};
use crate::client::quote_role_name;
use crate::fs::{
    create_dir_all_readable, make_readable, read_bounded, write_atomic_readable, BoundedReadError,
};
use crate::metadata::{
    Metadata, Role, Root, Snapshot, Targets, Timestamp, DEFAULT_MAX_METADATA_BYTES,
};

/// `published/metadata`: the link clients read through.
pub(crate) const METADATA_LINK: &str = "metadata";
/// `published/.generations`: one directory per root publish, named by its timestamp
/// version.
pub(crate) const GENERATIONS_DIR: &str = ".generations";
/// `published/targets`: hash-prefixed release tarballs.
pub(crate) const TARGETS_DIR: &str = "targets";
/// The one unversioned file a publish that carries no root replaces: the switch.
const TIMESTAMP_FILE: &str = "timestamp.json";

/// The file name of `role` at `version` under consistent snapshots.
pub(crate) fn versioned_file_name(role: &str, version: u64) -> String {
    format!("{version}.{}.json", quote_role_name(role))
}

/// Reads a whole file, refusing one longer than `max` bytes without reading past it.
pub(crate) fn read_file(path: &Path, max: u64) -> Result<Vec<u8>, RepositoryError> {
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    read_bounded(file, max).map_err(|e| match e {
        BoundedReadError::TooLong { max } => RepositoryError::TooLong {
            path: path.to_owned(),
            max,
        },
        BoundedReadError::Io(source) => RepositoryError::Io {
            path: path.to_owned(),
            source,
        },
    })
}

/// Reads and parses one metadata file.
pub(crate) fn read_metadata<T: Role>(path: &Path) -> Result<Metadata<T>, RepositoryError> {
    let bytes = read_file(path, DEFAULT_MAX_METADATA_BYTES as u64)?;
    Metadata::<T>::from_bytes(&bytes).map_err(|source| RepositoryError::Metadata {
        path: path.to_owned(),
        source,
    })
}

/// Reads a metadata file if it exists.
pub(crate) fn read_metadata_if_exists<T: Role>(
    path: &Path,
) -> Result<Option<Metadata<T>>, RepositoryError> {
    match std::fs::metadata(path) {
        Ok(_) => read_metadata(path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RepositoryError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Serialises metadata as python-tuf's `to_file()` does.
pub(crate) fn metadata_bytes<T: Role>(
    metadata: &Metadata<T>,
    path: &Path,
) -> Result<Vec<u8>, RepositoryError> {
    metadata
        .to_bytes()
        .map_err(|source| RepositoryError::Metadata {
            path: path.to_owned(),
            source,
        })
}

/// The currently published metadata, loaded lazily role by role.
#[derive(Debug)]
pub(crate) struct PublishedStore {
    /// `published/metadata`.
    pub metadata_dir: PathBuf,
    /// The newest root, if anything was published.
    pub root: Option<Metadata<Root>>,
    /// The published timestamp.
    pub timestamp: Option<Metadata<Timestamp>>,
    /// The published snapshot.
    pub snapshot: Option<Metadata<Snapshot>>,
    targets: HashMap<String, Metadata<Targets>>,
}

impl PublishedStore {
    /// Reads root, timestamp and snapshot of the current generation under
    /// `published_dir` (nothing, before the first publish).
    pub fn load(published_dir: &Path) -> Result<Self, RepositoryError> {
        let metadata_dir = published_dir.join(METADATA_LINK);
        let mut published = Self {
            metadata_dir: metadata_dir.clone(),
            root: None,
            timestamp: None,
            snapshot: None,
            targets: HashMap::new(),
        };
        if !metadata_dir.exists() {
            return Ok(published);
        }
        let mut newest_root = 0;
        for entry in std::fs::read_dir(&metadata_dir).map_err(io_error(&metadata_dir))? {
            let entry = entry.map_err(io_error(&metadata_dir))?;
            let name = entry.file_name();
            let Some(version) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".root.json"))
                .and_then(|v| v.parse::<u64>().ok())
            else {
                continue;
            };
            newest_root = newest_root.max(version);
        }
        if newest_root > 0 {
            published.root = Some(read_metadata(
                &metadata_dir.join(versioned_file_name("root", newest_root)),
            )?);
        }
        published.timestamp = read_metadata_if_exists(&metadata_dir.join("timestamp.json"))?;
        if let Some(timestamp) = &published.timestamp {
            if let Some(meta) = timestamp.signed().snapshot_meta() {
                published.snapshot = Some(read_metadata(
                    &metadata_dir.join(versioned_file_name("snapshot", meta.version)),
                )?);
            }
        }
        Ok(published)
    }

    /// Records what a publish just wrote to the new generation (and audited from its
    /// bytes): what [`Self::load`] would read back, without reading and parsing it again.
    /// Targets roles read before and not changed by the publish stay cached.
    pub fn record_publish(
        &mut self,
        root: Metadata<Root>,
        timestamp: Metadata<Timestamp>,
        snapshot: Option<Metadata<Snapshot>>,
        targets: impl IntoIterator<Item = (String, Metadata<Targets>)>,
    ) {
        self.root = Some(root);
        self.timestamp = Some(timestamp);
        if let Some(snapshot) = snapshot {
            self.snapshot = Some(snapshot);
        }
        self.targets.extend(targets);
    }

    /// The published version of a targets role, from snapshot.
    pub fn targets_version(&self, role: &str) -> Option<u64> {
        self.snapshot
            .as_ref()?
            .signed()
            .role_meta(role)
            .map(|meta| meta.version)
    }

    /// The published metadata of a targets role, read on first use.
    pub fn targets(&mut self, role: &str) -> Result<Option<&Metadata<Targets>>, RepositoryError> {
        if !self.targets.contains_key(role) {
            let Some(version) = self.targets_version(role) else {
                return Ok(None);
            };
            let path = self.metadata_dir.join(versioned_file_name(role, version));
            let metadata = read_metadata::<Targets>(&path)?;
            self.targets.insert(role.to_owned(), metadata);
        }
        Ok(self.targets.get(role))
    }

    /// The names of every targets role snapshot lists.
    pub fn targets_roles(&self) -> Vec<String> {
        self.snapshot
            .as_ref()
            .map(|s| {
                s.signed()
                    .meta
                    .keys()
                    .filter_map(|name| name.strip_suffix(".json").map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Publishes `files` (name → bytes) under `published/metadata`, so that a reader sees
/// the old publish or the new one, never a mixture, and returns whether it made a new
/// generation.
///
/// * A publish that carries a root (a first publish, a root rotation) gets a new
///   generation, switched to in one rename ([`write_generation`]): the new
///   `<V>.root.json` and the `timestamp.json` signed by the keys it names appear
///   together.
/// * Any other publish adds its files to the current generation ([`add_to_generation`]):
///   first the versioned files, which nothing references yet, then `timestamp.json`,
///   replaced in one rename. That rename is the switch. Its cost follows what changed,
///   not the size or the history of the repository.
pub(crate) fn write_published(
    published_dir: &Path,
    timestamp_version: u64,
    files: &[(String, Vec<u8>)],
    progress: &dyn super::Progress,
) -> Result<bool, RepositoryError> {
    let link = published_dir.join(METADATA_LINK);
    let carries_root = files
        .iter()
        .any(|(name, _)| name == "root.json" || name.ends_with(".root.json"));
    if carries_root || !link.exists() {
        write_generation(published_dir, timestamp_version, files, progress)?;
        Ok(true)
    } else {
        add_to_generation(&link, files, progress)?;
        Ok(false)
    }
}

/// Adds `files` to the generation `metadata_dir` names: every file but `timestamp.json`
/// first, then `timestamp.json`. Each is written to a temporary file, synced and renamed,
/// and the directory synced after each rename ([`write_atomic_readable`]), so the new
/// versioned files are durable before the timestamp that names them replaces the old
/// one.
///
/// A crash before the last rename leaves the old timestamp in force. The files written
/// before it are versions no published metadata names: the next publish computes the
/// same version numbers from the old timestamp and writes them again. The publish
/// decides versions so that no file a published timestamp reaches is ever replaced
/// (a staged role is only kept while its version is above the published one; snapshot
/// and timestamp are the published version plus one).
fn add_to_generation(
    metadata_dir: &Path,
    files: &[(String, Vec<u8>)],
    progress: &dyn super::Progress,
) -> Result<(), RepositoryError> {
    let generation_dir = std::fs::canonicalize(metadata_dir).map_err(io_error(metadata_dir))?;
    progress.set_length(files.len() as u64);
    let (timestamp, versioned): (Vec<_>, Vec<_>) =
        files.iter().partition(|(name, _)| name == TIMESTAMP_FILE);
    for (name, bytes) in versioned.into_iter().chain(timestamp) {
        let path = generation_dir.join(name);
        write_atomic_readable(&path, bytes).map_err(io_error(&path))?;
        progress.advance(1);
    }
    Ok(())
}

/// Writes a new generation of `published/metadata` and switches to it atomically.
///
/// `files` are the new files (name → bytes); every other file of the current generation
/// is carried over as a hard link. `generation` names the new directory.
fn write_generation(
    published_dir: &Path,
    generation: u64,
    files: &[(String, Vec<u8>)],
    progress: &dyn super::Progress,
) -> Result<(), RepositoryError> {
    let generations = published_dir.join(GENERATIONS_DIR);
    create_dir_all_readable(&generations).map_err(io_error(&generations))?;
    let new_dir = generations.join(generation.to_string());
    // A directory of this name can only be left over from an interrupted publish that
    // never switched to it (the link is switched last): start it again.
    if new_dir.exists() {
        std::fs::remove_dir_all(&new_dir).map_err(io_error(&new_dir))?;
    }
    create_dir_all_readable(&new_dir).map_err(io_error(&new_dir))?;
    let link = published_dir.join(METADATA_LINK);
    let replaced: std::collections::HashSet<&str> =
        files.iter().map(|(name, _)| name.as_str()).collect();
    if link.exists() {
        for entry in std::fs::read_dir(&link).map_err(io_error(&link))? {
            let entry = entry.map_err(io_error(&link))?;
            let name = entry.file_name();
            let Some(name_str) = name.to_str() else {
                continue;
            };
            if replaced.contains(name_str) || name_str.starts_with(".tmp-") {
                continue;
            }
            let target = new_dir.join(&name);
            std::fs::hard_link(entry.path(), &target).map_err(io_error(&target))?;
            // Files published before files were made world-readable become so now.
            make_readable(&target).map_err(io_error(&target))?;
        }
    }
    progress.set_length(files.len() as u64);
    for (name, bytes) in files {
        let path = new_dir.join(name);
        write_atomic_readable(&path, bytes).map_err(io_error(&path))?;
        progress.advance(1);
    }
    sync_dir(&new_dir)?;
    switch_link(published_dir, generation)?;
    prune_generations(&generations, generation)
}

fn sync_dir(dir: &Path) -> Result<(), RepositoryError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_error(dir))
}

#[cfg(unix)]
fn switch_link(published_dir: &Path, generation: u64) -> Result<(), RepositoryError> {
    let target = Path::new(GENERATIONS_DIR).join(generation.to_string());
    let temp = published_dir.join(format!(".{METADATA_LINK}.{generation}.tmp"));
    if std::fs::symlink_metadata(&temp).is_ok() {
        std::fs::remove_file(&temp).map_err(io_error(&temp))?;
    }
    std::os::unix::fs::symlink(&target, &temp).map_err(io_error(&temp))?;
    let link = published_dir.join(METADATA_LINK);
    // rename(2) replaces the old link atomically: readers see one generation or the other.
    std::fs::rename(&temp, &link).map_err(io_error(&link))?;
    sync_dir(published_dir)
}

#[cfg(not(unix))]
fn switch_link(published_dir: &Path, _generation: u64) -> Result<(), RepositoryError> {
    Err(RepositoryError::Io {
        path: published_dir.join(METADATA_LINK),
        source: std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "publishing switches generations with a symbolic link, which needs a Unix file system",
        ),
    })
}

/// Keeps the new generation and the one before it (clients may be reading it), removes
/// older ones.
fn prune_generations(generations: &Path, current: u64) -> Result<(), RepositoryError> {
    let mut found: Vec<u64> = Vec::new();
    for entry in std::fs::read_dir(generations).map_err(io_error(generations))? {
        let entry = entry.map_err(io_error(generations))?;
        if let Some(n) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
            found.push(n);
        }
    }
    found.sort_unstable();
    let previous = found.iter().copied().filter(|n| *n < current).max();
    for n in found {
        if n != current && Some(n) != previous {
            let dir = generations.join(n.to_string());
            std::fs::remove_dir_all(&dir).map_err(io_error(&dir))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::cell::RefCell;
    use std::path::{Path, PathBuf};

    use super::{write_published, GENERATIONS_DIR, METADATA_LINK};
    use crate::repository::Progress;

    /// After each file written, what `published/metadata` shows a reader: the timestamp's
    /// bytes and which of the new versioned files are there.
    struct Watcher {
        metadata: PathBuf,
        names: Vec<&'static str>,
        seen: RefCell<Vec<(Vec<u8>, Vec<bool>)>>,
    }

    impl Progress for Watcher {
        fn set_length(&self, _length: u64) {}
        fn advance(&self, _steps: u64) {
            let timestamp = std::fs::read(self.metadata.join("timestamp.json")).unwrap();
            let present = self
                .names
                .iter()
                .map(|n| self.metadata.join(n).exists())
                .collect();
            self.seen.borrow_mut().push((timestamp, present));
        }
    }

    fn files(names: &[&str], tag: &str) -> Vec<(String, Vec<u8>)> {
        names
            .iter()
            .map(|n| ((*n).to_owned(), format!("{n} {tag}").into_bytes()))
            .collect()
    }

    fn generation_names(published: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(published.join(GENERATIONS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn without_a_root_the_timestamp_is_replaced_after_every_file_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let published = dir.path();
        let first = files(&["1.root.json", "root.json", "timestamp.json"], "one");
        assert!(write_published(published, 1, &first, &()).unwrap());
        // Timestamp listed first: the order of `files` does not decide the order written.
        let names = vec!["timestamp.json", "2.snapshot.json", "2.bin.json"];
        let watcher = Watcher {
            metadata: published.join(METADATA_LINK),
            names: names.clone(),
            seen: RefCell::new(Vec::new()),
        };
        assert!(!write_published(published, 2, &files(&names, "two"), &watcher).unwrap());
        let seen = watcher.seen.into_inner();
        let old = b"timestamp.json one".to_vec();
        let new = b"timestamp.json two".to_vec();
        assert_eq!(
            seen,
            [
                (old.clone(), vec![true, true, false]),
                (old, vec![true, true, true]),
                (new, vec![true, true, true]),
            ]
        );
        // Still the one generation, and the first publish's files are untouched.
        assert_eq!(generation_names(published), ["1"]);
        assert_eq!(
            std::fs::read(published.join("metadata/1.root.json")).unwrap(),
            b"1.root.json one"
        );
        // A root makes a new generation holding the old files and the new.
        let third = files(&["2.root.json", "root.json", "timestamp.json"], "three");
        assert!(write_published(published, 3, &third, &()).unwrap());
        assert_eq!(generation_names(published), ["1", "3"]);
        let metadata = published.join(METADATA_LINK);
        assert_eq!(
            std::fs::read(metadata.join("2.bin.json")).unwrap(),
            b"2.bin.json two"
        );
        assert_eq!(
            std::fs::read(metadata.join("timestamp.json")).unwrap(),
            b"timestamp.json three"
        );
    }
}
