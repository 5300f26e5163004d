//! A crate release as the TUF repository signed it: what every check of the proxy and the
//! offline verbs compares upstream's bytes with.

use chrono::{DateTime, Utc};
use tuf_core::hash::Hashes;

/// A release as the TUF repository signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRelease {
    /// The target path (`crates/<ns>/<leaf>/<leaf>-<version>.crate`).
    pub target: String,
    /// The role that signed it.
    pub role: String,
    /// The signed length.
    pub length: u64,
    /// The signed sha256, lowercase hex.
    pub sha256: String,
    /// Every signed digest (all are checked).
    pub hashes: Hashes,
    /// Until when this answer holds (earliest expiry along its delegation path).
    pub valid_until: DateTime<Utc>,
}
