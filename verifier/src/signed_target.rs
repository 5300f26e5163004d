//! A target as the TUF repository signed it (a release tarball, or a crate's signed index
//! file): what every check of the proxy and the offline verbs compares bytes with.

use chrono::{DateTime, Utc};
use tuf_core::hash::Hashes;

/// A target as the TUF repository signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTarget {
    /// The target path (`crates/<ns>/<leaf>/<leaf>-<version>.crate` for a release,
    /// `crates/<ns>/<leaf>/index` for a crate's index file).
    pub target: String,
    /// The role that signed it.
    pub role: String,
    /// The role that delegated `role` on the search path (`root` for top-level targets):
    /// whose keys for `role` sign it ([`crate::trust::TrustStore::authorised_keys`]).
    pub delegator: String,
    /// The signed length.
    pub length: u64,
    /// The signed sha256, lowercase hex.
    pub sha256: String,
    /// Every signed digest (all are checked).
    pub hashes: Hashes,
    /// Until when this answer holds (earliest expiry along its delegation path).
    pub valid_until: DateTime<Utc>,
    /// The release scanner's result recorded in the signed target, if any.
    pub scan: Option<tuf_core::layout::RecordedScan>,
}
