//! Each crate's signed index file ([`crate::crate_index`]): kept by the editor beside the
//! crate's release tarballs, in the role that signs them, and changed with every release
//! added or removed, every yank and every attestation.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::content::hashed_target_path;
use super::editor::{PUBLISHED_DIR, STAGED_DIR};
use super::published_store::TARGETS_DIR;
use super::{io_error, IndexEntryMismatch, Repository, RepositoryError};
use crate::attestation::{Attestation, AttestationKind, ReleaseStatement};
use crate::crate_index::{CrateIndexFile, SignedIndexLine, MAX_CRATE_INDEX_BYTES};
use crate::fs::write_atomic_readable;
use crate::hash::verify_length_and_hashes;
use crate::index_entry::IndexEntry;
use crate::layout::{crate_index_path, crate_target_path};
use crate::metadata::TargetFile;

/// What a yank or unyank changed.
#[derive(Debug, Clone, Serialize)]
pub struct YankOutcome {
    /// The crate.
    pub name: String,
    /// The version.
    pub version: String,
    /// Whether it is yanked now.
    pub yanked: bool,
    /// The role whose signature the change needs.
    pub role: String,
    /// Whether it already was (nothing staged).
    pub unchanged: bool,
}

/// What adding an attestation changed.
#[derive(Debug, Clone, Serialize)]
pub struct AttestationAdded {
    /// The crate.
    pub name: String,
    /// The version.
    pub version: String,
    /// `release` or `review`.
    pub kind: String,
    /// The attesting key's label.
    pub label: String,
    /// The attesting key's id.
    pub keyid: String,
    /// The role whose signature the change needs.
    pub role: String,
    /// Whether the same key's attestation of that kind replaced an older one.
    pub replaced: bool,
}

impl Repository {
    /// The signed index file of crate `name` as it stands with the staged changes (empty
    /// when the crate has none yet), and the role that signs it.
    pub fn crate_index(&mut self, name: &str) -> Result<(CrateIndexFile, String), RepositoryError> {
        let path = crate_index_path(name)?;
        let role = self.role_for_path(&path)?;
        let listed = self
            .current_targets(&role)?
            .and_then(|doc| doc.signed().targets.get(&path).cloned());
        let Some(info) = listed else {
            return Ok((CrateIndexFile::default(), role));
        };
        let relative = hashed_target_path(&path, &info)?;
        let staged = self.dir.join(STAGED_DIR).join(TARGETS_DIR).join(&relative);
        let file = if staged.exists() {
            staged
        } else {
            self.dir
                .join(PUBLISHED_DIR)
                .join(TARGETS_DIR)
                .join(&relative)
        };
        let bytes = crate::fs::read_bounded(
            std::fs::File::open(&file).map_err(io_error(&file))?,
            MAX_CRATE_INDEX_BYTES,
        )
        .map_err(|e| RepositoryError::Io {
            path: file.clone(),
            source: std::io::Error::other(e),
        })?;
        verify_length_and_hashes(&bytes, Some(info.length), Some(&info.hashes)).map_err(
            |source| RepositoryError::CrateIndexFile {
                path: path.clone(),
                source,
            },
        )?;
        let index = CrateIndexFile::parse(name, &bytes)
            .map_err(|source| RepositoryError::CrateIndex { path, source })?;
        Ok((index, role))
    }

    /// Stages `index` as the signed index file of crate `name` (in `role`, which
    /// [`Self::crate_index`] named).
    pub(crate) fn stage_crate_index(
        &mut self,
        name: &str,
        role: &str,
        index: &CrateIndexFile,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let path = crate_index_path(name)?;
        let bytes = index.to_bytes();
        let info = TargetFile::from_bytes(&bytes);
        let staged = self.staged_target_file(&path, &info)?;
        if let Some(parent) = staged.parent() {
            std::fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        write_atomic_readable(&staged, &bytes).map_err(io_error(&staged))?;
        let targets = self.stage_targets(role, now)?;
        if index.lines.is_empty() {
            targets.targets.remove(&path);
        } else {
            targets.targets.insert(path, info);
        }
        Ok(())
    }

    /// Puts `entry` (the release's index entry) into the crate's signed index file: a
    /// new line, or nothing when the same entry is there already. A different entry for
    /// a version already signed is refused: an entry is immutable but for `yanked`.
    pub(crate) fn record_index_entry(
        &mut self,
        name: &str,
        version: &str,
        sha256: &str,
        entry: IndexEntry,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        check_entry_is_for(name, version, sha256, &entry)?;
        let (mut index, role) = self.crate_index(name)?;
        if !add_index_line(&mut index, name, version, entry)? {
            return Ok(false);
        }
        self.stage_crate_index(name, &role, &index, now)?;
        Ok(true)
    }

    /// Removes the line of `version` from the crate's signed index file, if it has one.
    pub(crate) fn forget_index_entry(
        &mut self,
        name: &str,
        version: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let (mut index, role) = self.crate_index(name)?;
        if index.remove(version) {
            self.stage_crate_index(name, &role, &index, now)?;
        }
        Ok(())
    }

    fn signed_line<'a>(
        index: &'a mut CrateIndexFile,
        name: &str,
        version: &str,
    ) -> Result<&'a mut SignedIndexLine, RepositoryError> {
        let path = crate_target_path(name, version)?;
        index
            .get_mut(version)
            .ok_or_else(|| RepositoryError::ReleaseNotFound {
                name: name.to_owned(),
                version: version.to_owned(),
                path,
            })
    }

    /// Sets the owners' yank mark of `name` `version` (stages the role that signs the
    /// crate, whose keys must then sign).
    pub fn set_yanked(
        &mut self,
        name: &str,
        version: &str,
        yanked: bool,
        now: DateTime<Utc>,
    ) -> Result<YankOutcome, RepositoryError> {
        let (mut index, role) = self.crate_index(name)?;
        let line = Self::signed_line(&mut index, name, version)?;
        let unchanged = line.entry.yanked == yanked;
        line.entry.yanked = yanked;
        if !unchanged {
            self.stage_crate_index(name, &role, &index, now)?;
        }
        Ok(YankOutcome {
            name: name.to_owned(),
            version: version.to_owned(),
            yanked,
            role,
            unchanged,
        })
    }

    /// The statement a developer signs to attest `name` `version`: the release's signed
    /// length and hashes and its index entry's digest, as they stand now.
    pub fn release_statement(
        &mut self,
        name: &str,
        version: &str,
        kind: AttestationKind,
        label: &str,
        date: DateTime<Utc>,
    ) -> Result<ReleaseStatement, RepositoryError> {
        let path = crate_target_path(name, version)?;
        let role = self.role_for_path(&path)?;
        let info = self
            .current_targets(&role)?
            .and_then(|doc| doc.signed().targets.get(&path).cloned())
            .ok_or_else(|| RepositoryError::ReleaseNotFound {
                name: name.to_owned(),
                version: version.to_owned(),
                path: path.clone(),
            })?;
        let (mut index, _) = self.crate_index(name)?;
        let line = Self::signed_line(&mut index, name, version)?;
        Ok(ReleaseStatement {
            kind,
            name: line.entry.name.clone(),
            version: line.entry.vers.clone(),
            length: info.length,
            hashes: info.hashes,
            index_entry_sha256: line.entry.signed_digest(),
            date,
            label: label.to_owned(),
            unrecognized_fields: Default::default(),
        })
    }

    /// Adds a developer's attestation to the release it is about, after checking that it
    /// verifies and is about that release as signed now. An attestation by the same key
    /// of the same kind replaces the older one.
    pub fn add_attestation(
        &mut self,
        attestation: Attestation,
        now: DateTime<Utc>,
    ) -> Result<AttestationAdded, RepositoryError> {
        let name = attestation.statement.name.clone();
        let version = attestation.statement.version.clone();
        let expected = self.release_statement(
            &name,
            &version,
            attestation.statement.kind,
            &attestation.statement.label,
            now,
        )?;
        let refused = |source| RepositoryError::Attestation {
            name: name.clone(),
            version: version.clone(),
            source,
        };
        attestation
            .verify_for(
                &expected.name,
                &expected.version,
                expected.length,
                &expected.hashes,
                &expected.index_entry_sha256,
            )
            .map_err(refused)?;
        let (mut index, role) = self.crate_index(&name)?;
        let line = Self::signed_line(&mut index, &name, &version)?;
        let keyid = attestation.key.keyid();
        let kind = attestation.statement.kind;
        let before = line.attestations.len();
        line.attestations
            .retain(|a| !(a.key.keyid() == keyid && a.statement.kind == kind));
        let replaced = line.attestations.len() != before;
        let label = attestation.statement.label.clone();
        line.attestations.push(attestation);
        self.stage_crate_index(&name, &role, &index, now)?;
        Ok(AttestationAdded {
            name,
            version,
            kind: kind.as_str().to_owned(),
            label,
            keyid: keyid.as_str().to_owned(),
            role,
            replaced,
        })
    }
}

/// Refuses an index entry that is not the one of `name` `version` whose tarball has the
/// sha256 `sha256`.
pub(crate) fn check_entry_is_for(
    name: &str,
    version: &str,
    sha256: &str,
    entry: &IndexEntry,
) -> Result<(), RepositoryError> {
    let not_for = |reason| RepositoryError::IndexEntryNotForRelease {
        name: name.to_owned(),
        version: version.to_owned(),
        reason,
    };
    if !entry.name.eq_ignore_ascii_case(name) || !entry.vers.eq_ignore_ascii_case(version) {
        return Err(not_for(IndexEntryMismatch::OtherRelease {
            name: entry.name.clone(),
            version: entry.vers.clone(),
        }));
    }
    if !entry.cksum.eq_ignore_ascii_case(sha256) {
        return Err(not_for(IndexEntryMismatch::Checksum {
            cksum: entry.cksum.clone(),
            sha256: sha256.to_owned(),
        }));
    }
    Ok(())
}

/// Adds the line of `entry` (checked with [`check_entry_is_for`]) to `index`, normalised
/// and not yanked (the owners' mark starts unset, whatever the registry's line said).
/// `false` when the same entry is there already; a different one is refused.
pub(crate) fn add_index_line(
    index: &mut CrateIndexFile,
    name: &str,
    version: &str,
    entry: IndexEntry,
) -> Result<bool, RepositoryError> {
    let mut entry = entry.normalized();
    if let Some(line) = index.get(version) {
        let fields = line.entry.differing_fields(&entry);
        if fields.is_empty() {
            return Ok(false);
        }
        return Err(RepositoryError::IndexEntryConflict {
            name: name.to_owned(),
            version: version.to_owned(),
            fields,
        });
    }
    entry.yanked = false;
    index.lines.push(SignedIndexLine {
        entry,
        attestations: Vec::new(),
    });
    Ok(true)
}
