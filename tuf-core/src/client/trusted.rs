//! The trusted metadata set: TUF's client workflow (specification §5) as a state machine
//! with no I/O.
//!
//! Callers feed it the bytes they fetched; it decides whether they become trusted. Each
//! method enforces the order of the workflow (root chain, then timestamp, snapshot,
//! targets, delegated targets) and every check of its step, citing the step's section.
//! Expiry is judged against the reference time given at construction (§5.1: "record the
//! time at which the update began"), never the system clock.
//!
//! The design follows python-tuf's `ngclient/_internal/trusted_metadata_set.py`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::hash::{verify_length_and_hashes, HashError};
use crate::keys::Key;
use crate::metadata::{
    format_expires, Metadata, MetadataError, Role, Root, Snapshot, Targets, Timestamp,
};
use crate::verify::{Delegator, VerificationError};

/// Why fetched metadata was not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The bytes are not valid metadata of the expected type.
    #[error("{role}: {source}")]
    Invalid {
        /// The role being loaded.
        role: String,
        /// Why it was refused.
        source: MetadataError,
    },
    /// The signatures do not meet the delegator's threshold (arbitrary software attack).
    #[error("{role}: {source}")]
    Signatures {
        /// The role being loaded.
        role: String,
        /// The threshold failure.
        source: VerificationError,
    },
    /// The bytes do not match the length or hashes their referrer signed.
    #[error("{role}: {source} (against {referrer})")]
    Hashes {
        /// The role being loaded.
        role: String,
        /// The role whose meta entry was checked (`timestamp` or `snapshot`).
        referrer: &'static str,
        /// The mismatch.
        source: HashError,
    },
    /// A version went backwards (rollback attack).
    #[error("{role}: version {new} is older than the trusted version {trusted} (rollback)")]
    Rollback {
        /// The role (or the meta entry, e.g. `snapshot.json in timestamp`).
        role: String,
        /// The trusted version.
        trusted: u64,
        /// The version offered.
        new: u64,
    },
    /// A version differs from the one its referrer names (mix-and-match attack), or a new
    /// root is not exactly the next version.
    #[error("{role}: version {found}, but {expected} was expected")]
    VersionMismatch {
        /// The role being loaded.
        role: String,
        /// The expected version.
        expected: u64,
        /// The version found.
        found: u64,
    },
    /// The new timestamp has the same version as the trusted one: it is discarded and the
    /// trusted one kept (§5.4.3.1). Not a failure of the update.
    #[error("timestamp: version {0} is already trusted")]
    EqualTimestampVersion(u64),
    /// A new snapshot no longer lists a role the trusted snapshot listed (rollback).
    #[error("snapshot: new version no longer lists {0}, which the trusted snapshot lists")]
    MissingFromSnapshot(String),
    /// The snapshot does not list a targets role being loaded.
    #[error("{0}: not listed in snapshot")]
    NotInSnapshot(String),
    /// The metadata has expired (freeze attack).
    #[error("{role}: expired at {expires}")]
    Expired {
        /// The role.
        role: String,
        /// Its expiry date.
        expires: String,
    },
    /// A method was called out of the workflow's order (a caller bug, not an attack).
    #[error("client workflow order: {0}")]
    Order(&'static str),
}

fn invalid(role: &str) -> impl FnOnce(MetadataError) -> TrustError + '_ {
    move |source| TrustError::Invalid {
        role: role.to_owned(),
        source,
    }
}

fn signatures(role: &str) -> impl FnOnce(VerificationError) -> TrustError + '_ {
    move |source| TrustError::Signatures {
        role: role.to_owned(),
        source,
    }
}

fn expired<T: Role>(role: &str, metadata: &Metadata<T>) -> TrustError {
    TrustError::Expired {
        role: role.to_owned(),
        expires: format_expires(&metadata.signed().expires()),
    }
}

/// Size limits on each download (the §5 "endless data" defence), in bytes. Roles whose
/// referrer signs a length are bounded by that length instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of a root file.
    pub max_root_length: u64,
    /// Maximum size of timestamp.json.
    pub max_timestamp_length: u64,
    /// Maximum size of snapshot when timestamp does not sign its length.
    pub max_snapshot_length: u64,
    /// Maximum size of a targets role when snapshot does not sign its length.
    pub max_targets_length: u64,
    /// Maximum number of root rotations followed in one update (§5.3.1 step cap).
    pub max_root_rotations: u64,
    /// Maximum number of targets roles visited in one target lookup (§5.6.7).
    pub max_delegations: usize,
}

impl Default for Limits {
    /// python-tuf's defaults.
    fn default() -> Self {
        Self {
            max_root_length: 512_000,
            max_timestamp_length: 16_384,
            max_snapshot_length: 2_000_000,
            max_targets_length: 5_000_000,
            max_root_rotations: 256,
            max_delegations: 32,
        }
    }
}

/// A targets role's metadata that passed every check of §5.6 against a
/// [`TrustedMetadataSet`] but is not trusted yet: made only by
/// [`TrustedMetadataSet::verify_delegated_targets`], consumed by
/// [`TrustedMetadataSet::trust_verified_targets`].
#[derive(Debug)]
pub struct VerifiedTargets {
    role: String,
    delegator: String,
    /// What the checks ran against.
    checked_against: CheckedAgainst,
    metadata: Metadata<Targets>,
}

/// What a delegated role's checks depended on: its snapshot entry, and the keys and
/// threshold its delegator authorises for it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CheckedAgainst {
    snapshot_entry: Option<crate::metadata::MetaFile>,
    keys: Vec<(crate::KeyId, Option<crate::keys::Key>)>,
    threshold: Option<u64>,
}

impl VerifiedTargets {
    /// The role it is the metadata of.
    pub fn role(&self) -> &str {
        &self.role
    }
}

/// The metadata a client currently trusts, and the rules for trusting more.
#[derive(Debug, Clone)]
pub struct TrustedMetadataSet {
    reference_time: DateTime<Utc>,
    root: Metadata<Root>,
    timestamp: Option<Metadata<Timestamp>>,
    snapshot: Option<Metadata<Snapshot>>,
    /// `targets` and every delegated role loaded so far, by role name.
    targets: HashMap<String, Metadata<Targets>>,
    /// For each loaded targets role, the delegators whose threshold it has met.
    verified_by: HashMap<String, HashSet<String>>,
}

impl TrustedMetadataSet {
    /// Starts from a trusted root (§5.2). The root must be signed by a threshold of its
    /// own root keys; its expiry is checked once the root chain is complete (§5.3.10).
    pub fn new(
        root_bytes: &[u8],
        reference_time: DateTime<Utc>,
        limits: &Limits,
    ) -> Result<Self, TrustError> {
        let root = parse::<Root>("root", root_bytes, limits.max_root_length)?;
        root.verify_delegate("root", &root)
            .map_err(signatures("root"))?;
        Ok(Self {
            reference_time,
            root,
            timestamp: None,
            snapshot: None,
            targets: HashMap::new(),
            verified_by: HashMap::new(),
        })
    }

    /// The time expiry is judged against.
    pub fn reference_time(&self) -> DateTime<Utc> {
        self.reference_time
    }

    /// The trusted root.
    pub fn root(&self) -> &Metadata<Root> {
        &self.root
    }

    /// The trusted timestamp, if loaded.
    pub fn timestamp(&self) -> Option<&Metadata<Timestamp>> {
        self.timestamp.as_ref()
    }

    /// The trusted snapshot, if loaded.
    pub fn snapshot(&self) -> Option<&Metadata<Snapshot>> {
        self.snapshot.as_ref()
    }

    /// A trusted targets role (`targets` or a delegated role), if loaded.
    pub fn targets(&self, role: &str) -> Option<&Metadata<Targets>> {
        self.targets.get(role)
    }

    /// The keys `delegator` authorises to sign `role` (root's keys for the top-level
    /// roles, when `delegator` is `root`), if `delegator` is trusted and delegates
    /// `role`. Keys are listed once each, in keyid order.
    pub fn authorised_keys(&self, role: &str, delegator: &str) -> Option<Vec<Key>> {
        let authorization = if delegator == "root" {
            self.root.signed().authorization(role)
        } else {
            self.targets.get(delegator)?.signed().authorization(role)
        }?;
        let mut keys: Vec<Key> = authorization
            .keyids
            .iter()
            .filter_map(|keyid| authorization.keys.get(keyid).cloned())
            .collect();
        keys.sort_by_key(Key::keyid);
        keys.dedup_by_key(|key| key.keyid());
        Some(keys)
    }

    /// Verifies `bytes` as the next root version and trusts it (§5.3).
    pub fn update_root(
        &mut self,
        bytes: &[u8],
        limits: &Limits,
    ) -> Result<&Metadata<Root>, TrustError> {
        if self.timestamp.is_some() {
            return Err(TrustError::Order(
                "root cannot change after timestamp is loaded",
            ));
        }
        let new_root = parse::<Root>("root", bytes, limits.max_root_length)?;
        // §5.3.3: signed by a threshold of the trusted root's root keys...
        self.root
            .verify_delegate("root", &new_root)
            .map_err(signatures("root"))?;
        // §5.3.4: exactly the next version (rollback, and no skipped rotations).
        let expected = self.root.signed().version.saturating_add(1);
        if new_root.signed().version != expected {
            return Err(TrustError::VersionMismatch {
                role: "root".into(),
                expected,
                found: new_root.signed().version,
            });
        }
        // §5.3.3: ...and by a threshold of its own root keys.
        new_root
            .verify_delegate("root", &new_root)
            .map_err(signatures("root"))?;
        // §5.3.5: the expiry of an intermediate root does not matter yet.
        self.root = new_root;
        Ok(&self.root)
    }

    /// Verifies `bytes` as timestamp metadata and trusts it (§5.4).
    ///
    /// On [`TrustError::EqualTimestampVersion`] the trusted timestamp is kept. An expired
    /// timestamp is kept as trusted (it still guards against rollback of the next one) but
    /// reported as [`TrustError::Expired`], and snapshot cannot be loaded after it.
    pub fn update_timestamp(
        &mut self,
        bytes: &[u8],
        limits: &Limits,
    ) -> Result<&Metadata<Timestamp>, TrustError> {
        if self.snapshot.is_some() {
            return Err(TrustError::Order(
                "timestamp cannot change after snapshot is loaded",
            ));
        }
        // §5.3.10: the root chain is complete; the final root must not be expired.
        if self.root.signed().is_expired(self.reference_time) {
            return Err(expired("root", &self.root));
        }
        let new = parse::<Timestamp>("timestamp", bytes, limits.max_timestamp_length)?;
        // §5.4.2: signed by a threshold of root's timestamp keys.
        self.root
            .verify_delegate("timestamp", &new)
            .map_err(signatures("timestamp"))?;
        if let Some(trusted) = &self.timestamp {
            // §5.4.3.1: version must not decrease; an equal version is discarded.
            let (old_version, new_version) = (trusted.signed().version, new.signed().version);
            if new_version < old_version {
                return Err(TrustError::Rollback {
                    role: "timestamp".into(),
                    trusted: old_version,
                    new: new_version,
                });
            }
            if new_version == old_version {
                return Err(TrustError::EqualTimestampVersion(new_version));
            }
            // §5.4.3.2: the snapshot version it names must not decrease.
            let old_snapshot = snapshot_version(trusted)?;
            let new_snapshot = snapshot_version(&new)?;
            if new_snapshot < old_snapshot {
                return Err(TrustError::Rollback {
                    role: "snapshot.json in timestamp".into(),
                    trusted: old_snapshot,
                    new: new_snapshot,
                });
            }
        }
        let timestamp = self.timestamp.insert(new);
        // §5.4.4: freeze attack. Kept as trusted for rollback checks even if expired.
        if timestamp.signed().is_expired(self.reference_time) {
            return Err(expired("timestamp", timestamp));
        }
        Ok(timestamp)
    }

    fn final_timestamp(&self) -> Result<&Metadata<Timestamp>, TrustError> {
        let timestamp = self
            .timestamp
            .as_ref()
            .ok_or(TrustError::Order("snapshot needs a trusted timestamp"))?;
        // §5.4.4, re-checked: snapshot is only loaded under a valid final timestamp.
        if timestamp.signed().is_expired(self.reference_time) {
            return Err(expired("timestamp", timestamp));
        }
        Ok(timestamp)
    }

    /// Verifies `bytes` as snapshot metadata and trusts it (§5.5).
    ///
    /// `from_local_cache` skips the hash check against timestamp (§5.5.2): a snapshot the
    /// client stored earlier was checked when it was downloaded, and timestamp's hashes
    /// may already name a newer one. Every other check still applies.
    pub fn update_snapshot(
        &mut self,
        bytes: &[u8],
        from_local_cache: bool,
        limits: &Limits,
    ) -> Result<&Metadata<Snapshot>, TrustError> {
        if self.targets.contains_key("targets") {
            return Err(TrustError::Order(
                "snapshot cannot change after targets is loaded",
            ));
        }
        let meta = snapshot_meta(self.final_timestamp()?)?.clone();
        // §5.5.1: bounded by the signed length, or the configured maximum. A stored copy
        // is an older version whose length timestamp no longer names: it is bounded by
        // the maximum (and must still parse, verify and pass every other check, so it can
        // serve as the rollback baseline of §5.5.5).
        let max = match meta.length {
            Some(length) if !from_local_cache => length,
            _ => limits.max_snapshot_length,
        };
        if !from_local_cache {
            // §5.5.2: length and hashes as timestamp signed them.
            verify_length_and_hashes(bytes, meta.length, meta.hashes.as_ref()).map_err(
                |source| TrustError::Hashes {
                    role: "snapshot".into(),
                    referrer: "timestamp",
                    source,
                },
            )?;
        }
        let new = parse::<Snapshot>("snapshot", bytes, max)?;
        // §5.5.3: signed by a threshold of root's snapshot keys.
        self.root
            .verify_delegate("snapshot", &new)
            .map_err(signatures("snapshot"))?;
        // §5.5.5: no targets role may roll back or disappear.
        if let Some(trusted) = &self.snapshot {
            for (name, old) in &trusted.signed().meta {
                let Some(entry) = new.signed().meta.get(name) else {
                    return Err(TrustError::MissingFromSnapshot(name.clone()));
                };
                if entry.version < old.version {
                    return Err(TrustError::Rollback {
                        role: format!("{name} in snapshot"),
                        trusted: old.version,
                        new: entry.version,
                    });
                }
            }
        }
        let snapshot = self.snapshot.insert(new);
        // Kept as trusted for rollback checks; targets load only under a valid final one.
        check_final_snapshot(snapshot, &meta, self.reference_time)?;
        Ok(snapshot)
    }

    fn final_snapshot(&self) -> Result<&Metadata<Snapshot>, TrustError> {
        let snapshot = self
            .snapshot
            .as_ref()
            .ok_or(TrustError::Order("targets need a trusted snapshot"))?;
        let meta = snapshot_meta(self.final_timestamp()?)?;
        check_final_snapshot(snapshot, meta, self.reference_time)?;
        Ok(snapshot)
    }

    /// Verifies `bytes` as the top-level targets metadata and trusts it (§5.6).
    pub fn update_targets(
        &mut self,
        bytes: &[u8],
        limits: &Limits,
    ) -> Result<&Metadata<Targets>, TrustError> {
        self.update_delegated_targets(bytes, "targets", "root", limits)
    }

    /// Verifies `bytes` as the metadata of targets role `role`, delegated by `delegator`
    /// (`root` for the top-level targets, else a trusted targets role), and trusts it
    /// (§5.6, and §5.6.7.2 for delegated roles).
    pub fn update_delegated_targets(
        &mut self,
        bytes: &[u8],
        role: &str,
        delegator: &str,
        limits: &Limits,
    ) -> Result<&Metadata<Targets>, TrustError> {
        // Checked against this set just now, and nothing changed it since: trusted as is.
        let verified = self.verify_delegated_targets(bytes, role, delegator, limits)?;
        Ok(self.trust_checked_targets(verified))
    }

    /// The checks of [`Self::update_delegated_targets`], without trusting the result:
    /// it reads the set only, so many roles can be checked at once (on several threads)
    /// and then trusted one by one with [`Self::trust_verified_targets`].
    pub fn verify_delegated_targets(
        &self,
        bytes: &[u8],
        role: &str,
        delegator: &str,
        limits: &Limits,
    ) -> Result<VerifiedTargets, TrustError> {
        let snapshot = self.final_snapshot()?;
        let meta = snapshot
            .signed()
            .role_meta(role)
            .ok_or_else(|| TrustError::NotInSnapshot(role.to_owned()))?;
        // §5.6.2: length and hashes as snapshot signed them (when it signs them).
        verify_length_and_hashes(bytes, meta.length, meta.hashes.as_ref()).map_err(|source| {
            TrustError::Hashes {
                role: role.to_owned(),
                referrer: "snapshot",
                source,
            }
        })?;
        let max = meta.length.unwrap_or(limits.max_targets_length);
        let expected_version = meta.version;
        let new = parse::<Targets>(role, bytes, max)?;
        // §5.6.3: signed by a threshold of the keys the delegator authorises for the role.
        self.verify_against_delegator(role, delegator, &new)?;
        // §5.6.4: exactly the version snapshot names (mix-and-match).
        if new.signed().version != expected_version {
            return Err(TrustError::VersionMismatch {
                role: role.to_owned(),
                expected: expected_version,
                found: new.signed().version,
            });
        }
        // §5.6.5: freeze attack.
        if new.signed().is_expired(self.reference_time) {
            return Err(expired(role, &new));
        }
        Ok(VerifiedTargets {
            role: role.to_owned(),
            delegator: delegator.to_owned(),
            checked_against: self.checked_against(role, delegator),
            metadata: new,
        })
    }

    /// Trusts a role [`Self::verify_delegated_targets`] checked, provided this set still
    /// holds what it was checked against: the same snapshot entry for it, and the same
    /// keys and threshold authorised by its delegator (otherwise [`TrustError::Order`]:
    /// verify it again). So a role verified against another set, or before the
    /// delegator was replaced, is refused.
    pub fn trust_verified_targets(
        &mut self,
        verified: VerifiedTargets,
    ) -> Result<&Metadata<Targets>, TrustError> {
        if verified.checked_against != self.checked_against(&verified.role, &verified.delegator) {
            return Err(TrustError::Order(
                "the snapshot or the delegator changed since the role was verified",
            ));
        }
        Ok(self.trust_checked_targets(verified))
    }

    /// Trusts `verified`, known to have been checked against this set as it is now.
    fn trust_checked_targets(&mut self, verified: VerifiedTargets) -> &Metadata<Targets> {
        self.verified_by
            .insert(verified.role.clone(), HashSet::from([verified.delegator]));
        self.targets
            .entry(verified.role)
            .insert_entry(verified.metadata)
            .into_mut()
    }

    /// What the checks of `role` through `delegator` depend on in this set.
    fn checked_against(&self, role: &str, delegator: &str) -> CheckedAgainst {
        let snapshot_entry = self
            .snapshot
            .as_ref()
            .and_then(|s| s.signed().role_meta(role))
            .cloned();
        let authorization = if delegator == "root" {
            self.root.signed().authorization(role)
        } else {
            self.targets
                .get(delegator)
                .and_then(|t| t.signed().authorization(role))
        };
        CheckedAgainst {
            snapshot_entry,
            keys: authorization.as_ref().map_or_else(Vec::new, |a| {
                a.keyids
                    .iter()
                    .map(|id| (id.clone(), a.keys.get(id).cloned()))
                    .collect()
            }),
            threshold: authorization.map(|a| a.threshold),
        }
    }

    /// A targets role already trusted through `delegator` (its threshold met, §5.6.3).
    /// Unlike [`Self::trusted_targets_via`] it checks nothing new: a role trusted only
    /// through another delegator is `None` here.
    pub fn targets_via(&self, role: &str, delegator: &str) -> Option<&Metadata<Targets>> {
        self.targets_entry_via(role, delegator)
            .map(|(_, targets)| targets)
    }

    /// [`Self::targets_via`], with the role's name as this set holds it (borrowed for as
    /// long as the set is, unlike the caller's).
    pub fn targets_entry_via(
        &self,
        role: &str,
        delegator: &str,
    ) -> Option<(&str, &Metadata<Targets>)> {
        let through = self
            .verified_by
            .get(role)
            .is_some_and(|delegators| delegators.contains(delegator));
        through
            .then(|| self.targets.get_key_value(role))
            .flatten()
            .map(|(name, targets)| (name.as_str(), targets))
    }

    /// Returns an already trusted targets role reached through `delegator`, after
    /// checking that it meets that delegator's threshold too (§5.6.3).
    ///
    /// A role can be delegated by several roles (a diamond), each authorising its own
    /// keys. Metadata trusted through one delegator is not thereby trusted through
    /// another: without this check, a role signed only for one parent could list targets
    /// in the other parent's namespace.
    pub fn trusted_targets_via(
        &mut self,
        role: &str,
        delegator: &str,
    ) -> Result<Option<&Metadata<Targets>>, TrustError> {
        let Some(cached) = self.targets.get(role) else {
            return Ok(None);
        };
        let already = self
            .verified_by
            .get(role)
            .is_some_and(|delegators| delegators.contains(delegator));
        if !already {
            self.verify_against_delegator(role, delegator, cached)?;
            self.verified_by
                .entry(role.to_owned())
                .or_default()
                .insert(delegator.to_owned());
        }
        Ok(self.targets.get(role))
    }

    fn verify_against_delegator(
        &self,
        role: &str,
        delegator: &str,
        metadata: &Metadata<Targets>,
    ) -> Result<(), TrustError> {
        if delegator == "root" {
            self.root
                .verify_delegate(role, metadata)
                .map_err(signatures(role))?;
        } else {
            let parent = self.targets.get(delegator).ok_or(TrustError::Order(
                "the delegating role must be trusted first",
            ))?;
            parent
                .verify_delegate(role, metadata)
                .map_err(signatures(role))?;
        }
        Ok(())
    }
}

fn parse<T: Role>(role: &str, bytes: &[u8], max: u64) -> Result<Metadata<T>, TrustError> {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    Metadata::<T>::from_bytes_with_limit(bytes, max).map_err(invalid(role))
}

fn snapshot_meta(
    timestamp: &Metadata<Timestamp>,
) -> Result<&crate::metadata::MetaFile, TrustError> {
    // Validated on load: a timestamp always lists snapshot.json.
    timestamp
        .signed()
        .snapshot_meta()
        .ok_or_else(|| TrustError::Invalid {
            role: "timestamp".into(),
            source: MetadataError::Schema {
                path: "signed.meta".into(),
                message: "no snapshot.json entry".into(),
            },
        })
}

fn snapshot_version(timestamp: &Metadata<Timestamp>) -> Result<u64, TrustError> {
    snapshot_meta(timestamp).map(|meta| meta.version)
}

fn check_final_snapshot(
    snapshot: &Metadata<Snapshot>,
    meta: &crate::metadata::MetaFile,
    reference_time: DateTime<Utc>,
) -> Result<(), TrustError> {
    // §5.5.6: freeze attack.
    if snapshot.signed().is_expired(reference_time) {
        return Err(expired("snapshot", snapshot));
    }
    // §5.5.4: exactly the version timestamp names (mix-and-match).
    if snapshot.signed().version != meta.version {
        return Err(TrustError::VersionMismatch {
            role: "snapshot".into(),
            expected: meta.version,
            found: snapshot.signed().version,
        });
    }
    Ok(())
}
