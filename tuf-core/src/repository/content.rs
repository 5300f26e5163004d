//! Namespaces and releases: what each role lists.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::editor::{
    check_threshold, key_map, prune_delegation_keys, remove_if_exists, Repository, RoleKeySpec,
};
use super::{io_error, RepositoryError};
use crate::fs::write_atomic_readable;
use crate::keys::{Key, KeyId};
use crate::layout::{
    self, crate_target_path, namespace_path_pattern, namespace_role_name, FALLBACK_ROLE,
};
use crate::metadata::{DelegatedRole, Delegations, SuccinctRoles, TargetFile, UnrecognizedFields};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// A release signed from an upstream registry without its tarball being kept: the
/// tarball's length, sha256 and sha512, and the registry's index entry (a vetted mirror,
/// spec/role-layout.md, "Releases that stay upstream").
#[derive(Debug, Clone)]
pub struct UpstreamRelease {
    /// Crate name.
    pub name: String,
    /// Version.
    pub version: String,
    /// The signed target: length and digests, marked as served only upstream.
    pub target: TargetFile,
    /// The registry's index entry; its `cksum` must be the tarball's sha256.
    pub entry: crate::index_entry::IndexEntry,
}

impl UpstreamRelease {
    /// The release `name` `version` whose tarball, as upstream serves it, is `tarball`.
    /// Only its length and digests are kept.
    pub fn new(
        name: &str,
        version: &str,
        tarball: &[u8],
        entry: crate::index_entry::IndexEntry,
    ) -> Self {
        let mut target = TargetFile::from_bytes(tarball);
        layout::mark_tarball_upstream(&mut target);
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            target,
            entry,
        }
    }

    fn sha256(&self) -> &str {
        self.target.hashes.get("sha256").unwrap_or("")
    }
}

/// What a namespace delegation did.
#[derive(Debug, Clone, Serialize)]
pub struct NamespaceEdit {
    /// The namespace (canonical form).
    pub namespace: String,
    /// Its role.
    pub role: String,
    /// Releases moved between the fallback bins and the namespace role.
    pub releases_moved: Vec<String>,
}

/// A release added to staged metadata.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseAdded {
    /// Its target path.
    pub path: String,
    /// The role that lists it.
    pub role: String,
    /// Whether it was already listed with the same content (nothing changed).
    pub unchanged: bool,
}

impl Repository {
    // ----- namespaces ----------------------------------------------------------------

    /// The namespaces delegated, as they will be after the next publish (staged edits
    /// included), in delegation order.
    pub fn namespaces(&mut self) -> Result<Vec<String>, RepositoryError> {
        let Some(targets) = self.current_targets("targets")? else {
            return Ok(Vec::new());
        };
        Ok(targets
            .signed()
            .delegations
            .iter()
            .flat_map(|d| d.roles.iter().flatten())
            .filter(|r| layout::is_namespace_role(&r.name))
            .filter_map(|r| r.name.strip_prefix(layout::NAMESPACE_ROLE_PREFIX))
            .map(str::to_owned)
            .collect())
    }

    /// Delegates `namespace` (the crate of that name and every `namespace::*` crate) to
    /// `spec`'s keys with a terminating delegation placed before the fallback role.
    /// Releases of the namespace already signed in the fallback bins move into the new
    /// role, so they stay available once its owners sign it.
    pub fn delegate_namespace(
        &mut self,
        namespace: &str,
        spec: &RoleKeySpec,
        now: DateTime<Utc>,
    ) -> Result<NamespaceEdit, RepositoryError> {
        let role = namespace_role_name(namespace)?;
        let pattern = namespace_path_pattern(namespace)?;
        check_threshold(&role, spec)?;
        let targets = self
            .current_targets("targets")?
            .ok_or_else(|| RepositoryError::UnknownRole("targets".into()))?
            .signed()
            .clone();
        let mut delegations = targets.delegations.clone().unwrap_or(Delegations {
            keys: BTreeMap::new(),
            roles: Some(Vec::new()),
            succinct_roles: None,
            unrecognized_fields: UnrecognizedFields::new(),
        });
        let roles = delegations.roles.get_or_insert_with(Vec::new);
        if roles.iter().any(|r| r.name == role) {
            return Err(RepositoryError::NamespaceClaimed(
                layout::canonical_namespace(namespace),
            ));
        }
        let keyids: BTreeSet<KeyId> = spec.keys.iter().map(Key::keyid).collect();
        let entry = DelegatedRole {
            name: role.clone(),
            keyids: keyids.into_iter().collect(),
            threshold: spec.threshold,
            terminating: true,
            paths: Some(vec![pattern.clone()]),
            path_hash_prefixes: None,
            unrecognized_fields: UnrecognizedFields::new(),
        };
        // Namespaces before the fallback role, so the fallback is never consulted for a
        // claimed path.
        let at = roles
            .iter()
            .position(|r| r.name == FALLBACK_ROLE)
            .unwrap_or(roles.len());
        roles.insert(at, entry);
        delegations.keys.extend(key_map(&spec.keys));
        // Move the namespace's releases out of the fallback bins.
        let moved = self.take_from_bins(&pattern, now)?;
        let ns_doc = self.stage_targets(&role, now)?;
        for (path, info) in &moved {
            ns_doc.targets.insert(path.clone(), info.clone());
        }
        self.stage_targets("targets", now)?.delegations = Some(delegations);
        Ok(NamespaceEdit {
            namespace: layout::canonical_namespace(namespace),
            role,
            releases_moved: moved.into_iter().map(|(p, _)| p).collect(),
        })
    }

    /// Removes the delegation of `namespace`. Its releases move to the fallback bins
    /// (signed from then on by the online key) so they stay available; its metadata
    /// stays listed in snapshot, as clients refuse a snapshot that drops a role.
    pub fn undelegate_namespace(
        &mut self,
        namespace: &str,
        now: DateTime<Utc>,
    ) -> Result<NamespaceEdit, RepositoryError> {
        let role = namespace_role_name(namespace)?;
        let targets = self
            .current_targets("targets")?
            .ok_or_else(|| RepositoryError::UnknownRole("targets".into()))?
            .signed()
            .clone();
        let mut delegations = targets
            .delegations
            .clone()
            .ok_or_else(|| RepositoryError::NamespaceNotDelegated(namespace.to_owned()))?;
        let roles = delegations.roles.get_or_insert_with(Vec::new);
        let before = roles.len();
        roles.retain(|r| r.name != role);
        if roles.len() == before {
            return Err(RepositoryError::NamespaceNotDelegated(
                layout::canonical_namespace(namespace),
            ));
        }
        prune_delegation_keys(&mut delegations);
        let releases: Vec<(String, TargetFile)> = self
            .current_targets(&role)?
            .map(|doc| doc.signed().targets.clone().into_iter().collect())
            .unwrap_or_default();
        self.stage_targets("targets", now)?.delegations = Some(delegations);
        for (path, info) in &releases {
            let bin = self.bin_for(path)?;
            self.stage_targets(&bin, now)?
                .targets
                .insert(path.clone(), info.clone());
        }
        Ok(NamespaceEdit {
            namespace: layout::canonical_namespace(namespace),
            role,
            releases_moved: releases.into_iter().map(|(p, _)| p).collect(),
        })
    }

    pub(crate) fn bins(&mut self) -> Result<SuccinctRoles, RepositoryError> {
        self.current_targets(FALLBACK_ROLE)?
            .and_then(|doc| doc.signed().delegations.as_ref())
            .and_then(|d| d.succinct_roles.clone())
            .ok_or_else(|| RepositoryError::UnknownRole(FALLBACK_ROLE.into()))
    }

    pub(crate) fn bin_for(&mut self, target_path: &str) -> Result<String, RepositoryError> {
        Ok(self.bins()?.role_for_target(target_path))
    }

    /// Removes from the fallback bins every release whose path matches `pattern`.
    fn take_from_bins(
        &mut self,
        pattern: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, TargetFile)>, RepositoryError> {
        let bins = self.bins()?;
        let mut moved = Vec::new();
        for bin in bins.role_names() {
            let matching: Vec<(String, TargetFile)> = match self.current_targets(&bin)? {
                Some(doc) => doc
                    .signed()
                    .targets
                    .iter()
                    .filter(|(path, _)| crate::metadata::path_matches_pattern(path, pattern))
                    .map(|(p, t)| (p.clone(), t.clone()))
                    .collect(),
                None => continue,
            };
            if matching.is_empty() {
                continue;
            }
            let doc = self.stage_targets(&bin, now)?;
            for (path, _) in &matching {
                doc.targets.remove(path);
            }
            moved.extend(matching);
        }
        Ok(moved)
    }

    // ----- releases ------------------------------------------------------------------

    /// The role a release path is signed by: the first namespace whose pattern covers it,
    /// else the fallback bin for its hash.
    pub fn role_for_path(&mut self, target_path: &str) -> Result<String, RepositoryError> {
        let targets = self
            .current_targets("targets")?
            .ok_or_else(|| RepositoryError::UnknownRole("targets".into()))?;
        let delegated =
            layout::delegated_role_for_path(targets.signed(), target_path).map(str::to_owned);
        match delegated.as_deref() {
            Some(FALLBACK_ROLE) => self.bin_for(target_path),
            Some(role) => Ok(role.to_owned()),
            None => Err(RepositoryError::InvalidEdit {
                role: "targets".into(),
                message: format!("no role is delegated the path {target_path}"),
            }),
        }
    }

    /// Adds the release `name` `version` with the tarball `bytes` (whose name and version
    /// the caller has read from its Cargo.toml) to the role that owns it, keeps a copy of
    /// the tarball to publish, and puts `entry`, the release's index entry (from the
    /// registry that serves it, or computed from the tarball's Cargo.toml), into the
    /// crate's signed index file (spec/role-layout.md, "Signed index entries").
    pub fn add_release(
        &mut self,
        name: &str,
        version: &str,
        bytes: &[u8],
        entry: crate::index_entry::IndexEntry,
        now: DateTime<Utc>,
    ) -> Result<ReleaseAdded, RepositoryError> {
        let path = crate_target_path(name, version)?;
        let role = self.role_for_path(&path)?;
        let info = TargetFile::from_bytes(bytes);
        let sha256 = info.hashes.get("sha256").unwrap_or_default().to_owned();
        if let Some(existing) = self
            .current_targets(&role)?
            .and_then(|doc| doc.signed().targets.get(&path))
        {
            if existing.length == info.length
                && existing.hashes.get("sha256") == info.hashes.get("sha256")
            {
                // Signed before its crate had a signed index file: the entry is added.
                let recorded = self.record_index_entry(name, version, &sha256, entry, now)?;
                return Ok(ReleaseAdded {
                    path,
                    role,
                    unchanged: !recorded,
                });
            }
            return Err(RepositoryError::ReleaseConflict {
                path,
                listed_length: existing.length,
                listed_sha256: existing.hashes.get("sha256").unwrap_or_default().to_owned(),
            });
        }
        // The entry first: a refused entry leaves nothing staged.
        self.record_index_entry(name, version, &sha256, entry, now)?;
        let staged_file = self.staged_target_file(&path, &info)?;
        if let Some(parent) = staged_file.parent() {
            std::fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        // Published as it is (renamed into published/targets): readable by a web server.
        write_atomic_readable(&staged_file, bytes).map_err(io_error(&staged_file))?;
        self.stage_targets(&role, now)?
            .targets
            .insert(path.clone(), info);
        Ok(ReleaseAdded {
            path,
            role,
            unchanged: false,
        })
    }

    /// Whether the release `name` `version` is signed (staged edits included) with a
    /// line in its crate's signed index file: what a resumed import skips.
    pub fn release_is_listed(
        &mut self,
        name: &str,
        version: &str,
    ) -> Result<bool, RepositoryError> {
        let path = crate_target_path(name, version)?;
        let role = self.role_for_path(&path)?;
        let listed = self
            .current_targets(&role)?
            .is_some_and(|doc| doc.signed().targets.contains_key(&path));
        if !listed {
            return Ok(false);
        }
        let (index, _) = self.crate_index(name)?;
        Ok(index.get(version).is_some())
    }

    /// Adds releases whose tarballs stay upstream ([`UpstreamRelease`]): each to the role
    /// that owns it (its namespace role, else its bin), with its entry in its crate's
    /// signed index file, which is staged once per crate. No tarball is stored; the
    /// target is marked as served only upstream. Each release succeeds or fails on its
    /// own (a different entry or tarball for a version already signed, an entry that is
    /// not the release's), and a failed one stages nothing; the result gives, per
    /// release in the order given, what was added or why not. Call [`Self::save`] to
    /// keep them: one save stages them all or none.
    pub fn add_upstream_releases(
        &mut self,
        releases: Vec<UpstreamRelease>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<ReleaseAdded, RepositoryError>>, RepositoryError> {
        // By position given: every position gets its outcome.
        let mut results: BTreeMap<usize, Result<ReleaseAdded, RepositoryError>> = BTreeMap::new();
        // By crate, keeping the order given within each crate.
        let mut by_crate: BTreeMap<String, Vec<(usize, UpstreamRelease)>> = BTreeMap::new();
        for (at, release) in releases.into_iter().enumerate() {
            match crate::layout::crate_index_path(&release.name) {
                Ok(index_path) => by_crate.entry(index_path).or_default().push((at, release)),
                Err(e) => {
                    results.insert(at, Err(e.into()));
                }
            }
        }
        for group in by_crate.into_values() {
            let Some(name) = group.first().map(|(_, r)| r.name.clone()) else {
                continue;
            };
            // An unreadable signed index file is the repository's fault, not a release's.
            let (mut index, index_role) = self.crate_index(&name)?;
            let mut index_changed = false;
            for (at, release) in group {
                let outcome = self.stage_upstream_release(&mut index, release, now);
                if let Ok((_, line_added)) = &outcome {
                    index_changed |= line_added;
                }
                results.insert(at, outcome.map(|(added, _)| added));
            }
            if index_changed {
                self.stage_crate_index(&name, &index_role, &index, now)?;
            }
        }
        Ok(results.into_values().collect())
    }

    /// Stages one upstream release into its role and its line into `index`; returns
    /// what was added and whether `index` gained a line.
    fn stage_upstream_release(
        &mut self,
        index: &mut crate::crate_index::CrateIndexFile,
        release: UpstreamRelease,
        now: DateTime<Utc>,
    ) -> Result<(ReleaseAdded, bool), RepositoryError> {
        let path = crate_target_path(&release.name, &release.version)?;
        let role = self.role_for_path(&path)?;
        super::index_files::check_entry_is_for(
            &release.name,
            &release.version,
            release.sha256(),
            &release.entry,
        )?;
        let existing = self
            .current_targets(&role)?
            .and_then(|doc| doc.signed().targets.get(&path))
            .cloned();
        if let Some(existing) = &existing {
            if existing.length != release.target.length
                || existing.hashes.get("sha256") != release.target.hashes.get("sha256")
            {
                return Err(RepositoryError::ReleaseConflict {
                    path,
                    listed_length: existing.length,
                    listed_sha256: existing.hashes.get("sha256").unwrap_or_default().to_owned(),
                });
            }
        }
        let line_added = super::index_files::add_index_line(
            index,
            &release.name,
            &release.version,
            release.entry,
        )?;
        if existing.is_none() {
            self.stage_targets(&role, now)?
                .targets
                .insert(path.clone(), release.target);
        }
        Ok((
            ReleaseAdded {
                path,
                role,
                unchanged: existing.is_some() && !line_added,
            },
            line_added,
        ))
    }

    /// The tarball of `name` `version` as this repository stores it (staged or
    /// published), checked against its signed length and hashes; `None` when the
    /// release is not signed here or its tarball stays upstream.
    pub fn stored_release(
        &mut self,
        name: &str,
        version: &str,
    ) -> Result<Option<Vec<u8>>, RepositoryError> {
        let path = crate_target_path(name, version)?;
        let role = self.role_for_path(&path)?;
        let Some(info) = self
            .current_targets(&role)?
            .and_then(|doc| doc.signed().targets.get(&path).cloned())
        else {
            return Ok(None);
        };
        if layout::tarball_is_upstream(&path, &info) {
            return Ok(None);
        }
        for dir in [
            self.staged_dir().join("targets"),
            self.published_dir().join("targets"),
        ] {
            if dir.join(hashed_target_path(&path, &info)?).exists() {
                return super::audit::check_target_file(&dir, &path, &info, true)
                    .map(Some)
                    .map_err(|e| RepositoryError::InvalidEdit {
                        role,
                        message: e.to_string(),
                    });
            }
        }
        Ok(None)
    }

    /// Records the release scanner's result in the signed target of `name` `version`
    /// ([`layout::RecordedScan`]); the role that lists it is staged for its keys. Returns
    /// that role, and whether anything changed.
    pub fn record_scan(
        &mut self,
        name: &str,
        version: &str,
        scan: &layout::RecordedScan,
        now: DateTime<Utc>,
    ) -> Result<(String, bool), RepositoryError> {
        let path = crate_target_path(name, version)?;
        let role = self.role_for_path(&path)?;
        let Some(mut info) = self
            .current_targets(&role)?
            .and_then(|doc| doc.signed().targets.get(&path).cloned())
        else {
            return Err(RepositoryError::ReleaseNotFound {
                name: name.to_owned(),
                version: version.to_owned(),
                path,
            });
        };
        if layout::recorded_scan(&info).as_ref() == Some(scan) {
            return Ok((role, false));
        }
        layout::record_scan(&mut info, scan);
        self.stage_targets(&role, now)?.targets.insert(path, info);
        Ok((role, true))
    }

    /// Removes the release `name` `version` from the role that lists it. Published
    /// tarballs stay on disk (older snapshots refer to them).
    pub fn remove_release(
        &mut self,
        name: &str,
        version: &str,
        now: DateTime<Utc>,
    ) -> Result<String, RepositoryError> {
        let path = crate_target_path(name, version)?;
        let role = self.role_for_path(&path)?;
        let listed = self
            .current_targets(&role)?
            .and_then(|doc| doc.signed().targets.get(&path).cloned());
        let Some(info) = listed else {
            return Err(RepositoryError::ReleaseNotFound {
                name: name.to_owned(),
                version: version.to_owned(),
                path,
            });
        };
        self.stage_targets(&role, now)?.targets.remove(&path);
        let staged_file = self.staged_target_file(&path, &info)?;
        remove_if_exists(&staged_file)?;
        self.forget_index_entry(name, version, now)?;
        Ok(path)
    }

    /// Where a staged tarball waits for publish: `staged/targets/<dir>/<sha256>.<file>`.
    pub(crate) fn staged_target_file(
        &self,
        path: &str,
        info: &TargetFile,
    ) -> Result<PathBuf, RepositoryError> {
        Ok(self
            .staged_dir()
            .join("targets")
            .join(hashed_target_path(path, info)?))
    }
}

/// The consistent-snapshot file path of a target: `<dir>/<sha256>.<file>` (§5.7.2).
pub(crate) fn hashed_target_path(path: &str, info: &TargetFile) -> Result<String, RepositoryError> {
    check_relative_target_path(path)?;
    let hash = info
        .hashes
        .get("sha256")
        .ok_or_else(|| RepositoryError::InvalidEdit {
            role: "targets".into(),
            message: format!("{path} has no sha256"),
        })?;
    Ok(match path.rsplit_once('/') {
        Some((dir, file)) => format!("{dir}/{hash}.{file}"),
        None => format!("{hash}.{path}"),
    })
}

/// Refuses a target path that could leave the targets directory when joined to it:
/// empty, absolute, with `.` or `..` segments, empty segments or backslashes.
pub(crate) fn check_relative_target_path(path: &str) -> Result<(), RepositoryError> {
    let bad = path.is_empty()
        || path.contains('\\')
        || path.contains('\0')
        || path
            .split('/')
            .any(|segment| segment.is_empty() || segment == "." || segment == "..");
    if bad {
        return Err(RepositoryError::InvalidEdit {
            role: "targets".into(),
            message: format!("{path:?} is not a safe relative target path"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_paths_cannot_leave_the_targets_directory() {
        let info = TargetFile::from_bytes(b"x");
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a\\b",
            "a/.",
        ] {
            assert!(hashed_target_path(bad, &info).is_err(), "{bad:?}");
        }
        let good = hashed_target_path("crates/a/a/a-1.0.0.crate", &info).unwrap();
        assert!(good.starts_with("crates/a/a/") && good.ends_with(".a-1.0.0.crate"));
    }
}
