//! # tuf-core
//!
//! The Update Framework (TUF) for crate registries: typed metadata, canonical JSON, keys
//! and signatures, byte-compatible with python-tuf and go-tuf.
//!
//! * [`json`]: strict parsing (no duplicate keys, integers only, size caps) and the
//!   canonical form signatures cover.
//! * [`metadata`]: root, targets (with delegations and succinct hash bins), snapshot and
//!   timestamp, inside a signed envelope that keeps the exact canonical bytes received.
//! * [`keys`] and [`signer`]: ed25519, ecdsa-sha2-nistp256 and rsassa-pss-sha256 public
//!   keys; ed25519 and P-256 private keys stored as encrypted PKCS#8.
//! * [`verify`]: threshold verification counting each distinct key once.
//! * [`attestation`]: per-release developer attestations: one developer's signature
//!   over a canonical statement that they released or reviewed one crate release.
//! * [`hash`]: lengths and digests over exact bytes, also while streaming.
//! * [`crate_archive`]: `.crate` release tarballs read under strict rules: size caps,
//!   one top-level directory, no path that could escape it, one manifest.
//! * [`crate_index`]: a crate's signed index file: every version's entry, the owners'
//!   yanks and the developers' attestations, as one TUF target.
//! * [`fs`]: bounded reads, atomic writes, and world-readable files for what is served.
//! * [`index_entry`]: one line of cargo's sparse index: read strictly, in one normal form,
//!   compared and digested for signing, and computed from a release's `Cargo.toml` as the
//!   public registry computes it.
//! * [`layout`]: the crate registry's role layout: target paths of releases, namespace
//!   and fallback role names, and which kind of role a name is.
//! * [`client`]: the client workflow of §5 as a sans-I/O state machine, and an updater
//!   driving it over a narrow fetch trait.
//! * [`repository`]: the repository editor: staged edits, multi-party signing,
//!   publishing with consistent snapshots, and verification of a whole repository as a
//!   client sees it.
//!
//! Section numbers in comments refer to the TUF specification
//! (<https://theupdateframework.github.io/specification/latest/>).
#![forbid(unsafe_code)]

pub mod attestation;
pub mod client;
pub mod clock;
pub mod crate_archive;
pub mod crate_index;
pub mod error_chain;
pub mod fs;
pub mod hash;
pub mod index_entry;
pub mod json;
pub mod keys;
pub mod layout;
pub mod metadata;
pub mod policy;
pub mod repository;
#[cfg(feature = "scan")]
pub mod scan;
pub mod signer;
pub mod typosquat;
pub mod verify;

pub use clock::{Clock, FixedClock, SystemClock};
pub use keys::{Key, KeyId};
pub use metadata::{Metadata, MetadataError, Role, Root, Snapshot, Targets, Timestamp};
pub use signer::{KeyAlgorithm, KeyEncryption, PrivateKey, Signer};
pub use verify::{Delegator, SignatureReport, VerificationError};
