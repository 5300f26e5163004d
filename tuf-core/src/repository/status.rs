//! Status: every role's versions, expiry and signatures.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::editor::{expires_at, Repository};
use super::signing::RoleSignatures;
use super::RepositoryError;
use crate::layout::RoleKind;
use crate::metadata::{format_expires, whole_seconds, Metadata, Role, TOP_LEVEL_ROLE_NAMES};
use crate::verify::SignatureReport;

/// One role in [`Status`].
#[derive(Debug, Clone, Serialize)]
pub struct RoleStatus {
    /// Role name.
    pub role: String,
    /// Whether publish signs the role with online keys.
    pub online: bool,
    /// Published version.
    pub published_version: Option<u64>,
    /// Published expiry.
    pub published_expires: Option<String>,
    /// Whether the published version expires within the window asked about (for online
    /// roles, which `refresh` renews: within that window and within half their validity
    /// period, i.e. a refresh is overdue).
    pub expires_soon: bool,
    /// Staged version, if the role has pending changes.
    pub staged_version: Option<u64>,
    /// Staged expiry.
    pub staged_expires: Option<String>,
    /// For staged roles: the signatures against the authorising keys.
    pub signatures: Option<SignatureReport>,
    /// For a staged root: the signatures against the previous root's keys.
    pub previous_root_signatures: Option<SignatureReport>,
    /// Whether the staged role has all the signatures publish needs (online roles are
    /// signed by publish itself).
    pub ready: bool,
}

/// The state of every role.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// When the status was taken.
    pub now: String,
    /// The window for `expires_soon`, in seconds.
    pub within_seconds: u64,
    /// Roles, top-level first.
    pub roles: Vec<RoleStatus>,
}

impl Repository {
    // ----- status --------------------------------------------------------------------

    /// Every role's version, expiry and signatures; `expires_soon` marks published roles
    /// expiring within `within_seconds` of `now`.
    pub fn status(
        &mut self,
        now: DateTime<Utc>,
        within_seconds: u64,
    ) -> Result<Status, RepositoryError> {
        let soon = expires_at(now, within_seconds);
        let mut names: Vec<String> = TOP_LEVEL_ROLE_NAMES
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let mut others: BTreeSet<String> = self.published.targets_roles().into_iter().collect();
        others.extend(self.staged.keys().cloned());
        others.remove("targets");
        names.extend(others);
        let mut roles = Vec::new();
        for role in names {
            let (published_version, published_expires) = match role.as_str() {
                "root" => meta_of(self.published.root.as_ref()),
                "timestamp" => meta_of(self.published.timestamp.as_ref()),
                "snapshot" => meta_of(self.published.snapshot.as_ref()),
                _ => meta_of(self.published.targets(&role)?),
            };
            let (staged_version, staged_expires) = match role.as_str() {
                "root" => meta_of(self.staged_root.as_ref()),
                _ => meta_of(self.staged.get(&role)),
            };
            let staged = staged_version.is_some();
            let staged_signatures = if staged {
                Some(self.signatures_of(&role)?)
            } else {
                None
            };
            let online = RoleKind::of(&role).is_online();
            let ready = !staged
                || online
                || staged_signatures
                    .as_ref()
                    .is_some_and(RoleSignatures::threshold_met);
            let (signatures, previous_root_signatures) = match staged_signatures {
                Some(s) => (Some(s.report), s.previous_root),
                None => (None, None),
            };
            roles.push(RoleStatus {
                expires_soon: published_expires.is_some_and(|e| {
                    // Online roles are refreshed automatically: flag them only when a
                    // refresh is overdue (less than half their validity left).
                    let limit = if online {
                        expires_at(now, within_seconds.min(self.expiry_for(&role) / 2))
                    } else {
                        soon
                    };
                    e <= limit
                }),
                role,
                online,
                published_version,
                published_expires: published_expires.map(|e| format_expires(&e)),
                staged_version,
                staged_expires: staged_expires.map(|e| format_expires(&e)),
                signatures,
                previous_root_signatures,
                ready,
            });
        }
        Ok(Status {
            now: format_expires(&whole_seconds(now)),
            within_seconds,
            roles,
        })
    }
}

fn meta_of<T: Role>(doc: Option<&Metadata<T>>) -> (Option<u64>, Option<DateTime<Utc>>) {
    doc.map_or((None, None), |d| {
        (Some(d.signed().version()), Some(d.signed().expires()))
    })
}
