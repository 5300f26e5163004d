//! What the proxy answers for one crate's index file, version by version, and why: the
//! judgement behind the index path (spec/proxy.md, "Index files") and behind
//! `tuf-verifier explain`, so the two can never tell different stories.
//!
//! A crate whose role signs an index file ([`tuf_core::crate_index`]) is answered from
//! that file: every version it lists whose release is signed with the same `cksum`, as
//! signed, whatever upstream sends or omits. Upstream's lines are evidence only: a line
//! that differs from the signed entry, or a signed version upstream does not list, is
//! recorded, and upstream's `yanked: true` is honoured (upstream may always refuse to
//! serve a version; it can never unyank what the owners yanked). A version upstream lists
//! that the file does not (a release signed before signed index entries) is judged by its
//! `cksum` alone, unless signed entries are required.
//!
//! Every line served, signed or not, must keep cargo on the proxy
//! ([`crate::index_line`]). Blocking: it may fetch metadata and the signed index file.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use tuf_core::attestation::Attestation;
use tuf_core::crate_index::CrateIndexFile;
use tuf_core::index_entry::IndexEntry;

use crate::index_line::{entry_escape, Escape, IndexLine, RegistryAllowlist};
use crate::signed_index::SignedIndexFiles;
use crate::signed_target::SignedTarget;
use crate::trust::{Lookup, Refusal, TrustStore};

/// What upstream answered for the crate's index file.
#[derive(Debug, Clone)]
pub enum UpstreamIndex {
    /// Its lines.
    Listed(Bytes),
    /// It has no such crate.
    NotFound,
    /// It could not be asked (the reason).
    Unavailable(String),
    /// It was not asked.
    NotAsked,
}

/// How a version's line is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryAuth {
    /// By the crate's signed index file: every field cargo reads is the owners'.
    Signed,
    /// By `cksum` alone (a release signed before signed index entries): the other fields
    /// are upstream's.
    ChecksumOnly,
    /// Not at all: no signed release has this version.
    None,
}

/// How upstream's line of a version compares with what is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamLine {
    /// The same entry.
    Same,
    /// A different entry: these fields differ (`deps`, `features`, ...).
    Differs(Vec<&'static str>),
    /// Upstream does not list the version, or has no such crate: a withheld version.
    Missing,
    /// Upstream was not asked, or could not be.
    Unknown,
}

/// Why a version is not served.
#[derive(Debug, Clone)]
pub enum Dropped {
    /// A dependency would take cargo past the proxy.
    Escape(Escape),
    /// No key authorised for the version signed it.
    NotSigned(Refusal),
    /// The line's `cksum` is not the sha256 of the signed release.
    ChecksumMismatch {
        /// The line's `cksum`.
        cksum: String,
        /// The signed sha256.
        sha256: String,
    },
    /// The crate has no signed entry for it, and signed entries are required.
    EntryNotSigned,
    /// The trust policy does not trust it.
    Policy {
        /// The crate.
        crate_name: String,
        /// Why.
        why: Box<crate::policy::judge::Untrusted>,
    },
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Escape(escape) => write!(f, "{escape}"),
            Self::NotSigned(refusal) => write!(f, "{refusal}"),
            Self::ChecksumMismatch { cksum, sha256 } => write!(
                f,
                "its cksum {cksum} is not the sha256 of the signed release, {sha256}"
            ),
            Self::EntryNotSigned => f.write_str(
                "its index entry is not signed (the crate's role signs no entry for it) and \
                 require_signed_index_entries is on",
            ),
            Self::Policy { crate_name, why } => write!(
                f,
                "the trust policy does not trust it: {}",
                crate::policy::judge::reason(crate_name, why)
            ),
        }
    }
}

/// One version: what is served, and why.
#[derive(Debug, Clone)]
pub struct VersionAnswer {
    /// The version, as the line spells it.
    pub version: String,
    /// How its line is authenticated.
    pub entry: EntryAuth,
    /// Its signed release, when it has one.
    pub release: Option<Arc<SignedTarget>>,
    /// Upstream's line compared with the served one.
    pub upstream: UpstreamLine,
    /// Yanked by the owners' signed mark.
    pub yanked_by_owners: bool,
    /// Yanked by upstream's line.
    pub yanked_upstream: bool,
    /// The line served to cargo, or why none is.
    pub outcome: Result<Vec<u8>, Dropped>,
    /// The developers' attestations stored with the signed entry.
    pub attestations: Vec<Attestation>,
    /// The digest of the signed entry, which attestations sign
    /// ([`IndexEntry::signed_digest`]).
    pub entry_digest: Option<String>,
    /// The dependencies of the signed entry (`None` for a line that has none: upstream's
    /// dependencies are never the owners' word).
    pub signed_dependencies: Option<Vec<tuf_core::index_entry::IndexDependency>>,
    /// The trust policy's verdict, when a policy is in force and the version passed
    /// every other check ([`crate::policy::enforce`]).
    pub policy: Option<crate::policy::judge::Verdict>,
}

impl VersionAnswer {
    /// Whether a line is served.
    pub fn served(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// The whole answer for one crate.
#[derive(Debug)]
pub struct CrateAnswer {
    /// The crate's signed index file, if its role signs one.
    pub index_file: Option<Arc<SignedTarget>>,
    /// Every version: the signed file's in its order, then upstream's others in theirs.
    pub versions: Vec<VersionAnswer>,
    /// Upstream lines that are not entries of this crate.
    pub unreadable_upstream_lines: u64,
    /// A refusal that makes the whole answer impossible (metadata refused, expired or
    /// unreachable on a delegation path the crate needs).
    pub blocking: Option<Refusal>,
    /// Until when this answer holds.
    pub valid_until: DateTime<Utc>,
}

impl CrateAnswer {
    /// The index file served to cargo: every line served, each ending in `\n`.
    pub fn body(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for line in self.versions.iter().filter_map(|v| v.outcome.as_ref().ok()) {
            body.extend_from_slice(line);
            body.push(b'\n');
        }
        body
    }
}

/// What judging needs from the proxy's configuration and state.
pub struct Judge<'a> {
    /// The trusted metadata.
    pub trust: &'a TrustStore,
    /// Where signed index files come from.
    pub index_files: &'a SignedIndexFiles,
    /// Registries a dependency may come from.
    pub allowed_registries: &'a RegistryAllowlist,
    /// Whether a version without a signed entry is refused.
    pub signed_entries_required: bool,
}

/// A version of upstream's file, parsed both strictly (as a signed entry is) and as
/// cargo reads a line.
struct UpstreamVersion<'a> {
    bytes: &'a [u8],
    line: IndexLine<'a>,
    entry: Option<IndexEntry>,
}

/// A crate's index file lookup, with "its role signs no index file" as `None`.
fn signed_or_none(
    lookup: Result<Arc<SignedTarget>, Refusal>,
) -> Result<Option<Arc<SignedTarget>>, Refusal> {
    match lookup {
        Ok(target) => Ok(Some(target)),
        Err(refusal) if refusal.is_unsigned() => Ok(None),
        Err(refusal) => Err(refusal),
    }
}

impl Judge<'_> {
    /// The signed index file of `name`: `Ok(None)` when its role signs none. Blocking.
    pub fn index_file(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<SignedTarget>>, Refusal> {
        signed_or_none(self.trust.lookup_index_file(name, now))
    }

    /// [`Self::index_file`] if the answer needs no metadata (a refusal of everything, or
    /// a lookup already made under this snapshot): `None` means call
    /// [`Self::index_file`] on a blocking thread. Takes short locks only.
    pub fn index_file_cached(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Option<Result<Option<Arc<SignedTarget>>, Refusal>> {
        self.trust
            .lookup_index_file_cached(name, now)
            .map(signed_or_none)
    }

    /// Judges every version of crate `name`, with `index_file` from [`Self::index_file`]
    /// and what upstream answered. `Err` when the signed index file cannot be read.
    /// Blocking.
    pub fn judge(
        &self,
        name: &str,
        index_file: Option<Arc<SignedTarget>>,
        upstream: &UpstreamIndex,
        now: DateTime<Utc>,
    ) -> Result<CrateAnswer, Refusal> {
        let mut answer = CrateAnswer {
            index_file: index_file.clone(),
            versions: Vec::new(),
            unreadable_upstream_lines: 0,
            blocking: None,
            valid_until: DateTime::<Utc>::MAX_UTC,
        };
        let body = match upstream {
            UpstreamIndex::Listed(body) => body.as_ref(),
            _ => &[],
        };
        // Upstream's versions by lowercase version, in its order.
        let mut order: Vec<String> = Vec::new();
        let mut theirs: HashMap<String, UpstreamVersion<'_>> = HashMap::new();
        for bytes in body.split(|&b| b == b'\n') {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Some(line) = IndexLine::parse(bytes) else {
                tracing::debug!(
                    crate_name = name,
                    "dropping an index line that is not a version entry"
                );
                answer.unreadable_upstream_lines += 1;
                continue;
            };
            if !line.name.eq_ignore_ascii_case(name) {
                tracing::warn!(crate_name = name, line_name = %line.name, "dropping an index line for another crate");
                answer.unreadable_upstream_lines += 1;
                continue;
            }
            let key = line.vers.to_ascii_lowercase();
            if theirs.contains_key(&key) {
                tracing::warn!(crate_name = name, version = %line.vers, "dropping a second index line for the same version");
                answer.unreadable_upstream_lines += 1;
                continue;
            }
            let entry = IndexEntry::parse_line(bytes).ok();
            order.push(key.clone());
            theirs.insert(key, UpstreamVersion { bytes, line, entry });
        }
        if let Some(target) = &index_file {
            answer.valid_until = answer.valid_until.min(target.valid_until);
            let bytes = self
                .index_files
                .get(target, self.trust.consistent_snapshot())
                .map_err(|error| Refusal::IndexFile(Arc::new(error)))?;
            let file = CrateIndexFile::parse(name, &bytes).map_err(|error| {
                Refusal::IndexFileUnreadable {
                    target: target.target.clone(),
                    error: Arc::new(error),
                }
            })?;
            let upstream_listed =
                matches!(upstream, UpstreamIndex::Listed(_) | UpstreamIndex::NotFound);
            for line in file.lines {
                let key = line.entry.vers.to_ascii_lowercase();
                let upstream_version = theirs.remove(&key);
                order.retain(|k| *k != key);
                let release = self.trust.lookup(name, &line.entry.vers, now);
                let version = self.signed_version(
                    name,
                    line,
                    upstream_version,
                    upstream_listed,
                    release,
                    &mut answer,
                );
                answer.versions.push(version);
            }
        }
        for key in order {
            let Some(upstream_version) = theirs.remove(&key) else {
                continue;
            };
            let release = self.trust.lookup(name, &upstream_version.line.vers, now);
            let version = self.checksum_only_version(name, upstream_version, release, &mut answer);
            answer.versions.push(version);
        }
        Ok(answer)
    }

    /// A version the signed index file lists.
    fn signed_version(
        &self,
        name: &str,
        line: tuf_core::crate_index::SignedIndexLine,
        upstream_version: Option<UpstreamVersion<'_>>,
        upstream_listed: bool,
        release: Lookup,
        answer: &mut CrateAnswer,
    ) -> VersionAnswer {
        let entry = &line.entry;
        let upstream = match &upstream_version {
            None if upstream_listed => UpstreamLine::Missing,
            None => UpstreamLine::Unknown,
            Some(UpstreamVersion {
                entry: Some(theirs),
                ..
            }) => {
                let fields = entry.differing_fields(theirs);
                if fields.is_empty() {
                    UpstreamLine::Same
                } else {
                    UpstreamLine::Differs(fields)
                }
            }
            // Upstream's line is not even a valid entry: every field differs as far as
            // the owners' entry is concerned.
            Some(UpstreamVersion { entry: None, .. }) => {
                UpstreamLine::Differs(vec!["(the whole line: not a valid entry)"])
            }
        };
        let yanked_upstream = upstream_version
            .as_ref()
            .and_then(|v| v.entry.as_ref())
            .is_some_and(|e| e.yanked);
        let mut release_target = None;
        let outcome = match release {
            Ok(release) => {
                answer.valid_until = answer.valid_until.min(release.valid_until);
                let matches = release.sha256.eq_ignore_ascii_case(&entry.cksum);
                release_target = Some(Arc::clone(&release));
                if !matches {
                    tracing::warn!(crate_name = name, version = %entry.vers, entry_cksum = %entry.cksum, signed_sha256 = %release.sha256, "dropping a signed entry whose cksum is not the signed release's digest");
                    Err(Dropped::ChecksumMismatch {
                        cksum: entry.cksum.clone(),
                        sha256: release.sha256.clone(),
                    })
                } else if let Some(escape) = entry_escape(entry, self.allowed_registries) {
                    // A second line of defence: even a signed entry may not send cargo
                    // elsewhere.
                    log_escape(name, &entry.vers, &escape);
                    Err(Dropped::Escape(escape))
                } else {
                    Ok(line.line_for_cargo(yanked_upstream))
                }
            }
            Err(refusal) if refusal.is_unsigned() => {
                tracing::warn!(crate_name = name, version = %entry.vers, "dropping a signed entry whose release is not signed");
                Err(Dropped::NotSigned(refusal))
            }
            Err(refusal) => {
                answer.blocking.get_or_insert(refusal.clone());
                Err(Dropped::NotSigned(refusal))
            }
        };
        if outcome.is_ok() {
            match &upstream {
                UpstreamLine::Missing => {
                    tracing::warn!(crate_name = name, version = %entry.vers, "upstream does not list a signed version: serving the signed entry")
                }
                UpstreamLine::Differs(fields) => {
                    tracing::warn!(crate_name = name, version = %entry.vers, fields = %fields.join(","), "upstream's index line differs from the signed entry: serving the signed entry")
                }
                UpstreamLine::Same | UpstreamLine::Unknown => {}
            }
        }
        VersionAnswer {
            version: entry.vers.clone(),
            entry: EntryAuth::Signed,
            release: release_target,
            upstream,
            yanked_by_owners: entry.yanked,
            yanked_upstream,
            entry_digest: Some(entry.signed_digest()),
            signed_dependencies: Some(entry.deps.clone()),
            policy: None,
            outcome,
            attestations: line.attestations,
        }
    }

    /// A version upstream lists that the signed index file does not: judged by `cksum`.
    fn checksum_only_version(
        &self,
        name: &str,
        upstream_version: UpstreamVersion<'_>,
        release: Lookup,
        answer: &mut CrateAnswer,
    ) -> VersionAnswer {
        let line = &upstream_version.line;
        let mut version = VersionAnswer {
            version: line.vers.to_string(),
            entry: EntryAuth::None,
            release: None,
            upstream: UpstreamLine::Same,
            yanked_by_owners: false,
            yanked_upstream: upstream_version.entry.as_ref().is_some_and(|e| e.yanked),
            outcome: Err(Dropped::EntryNotSigned),
            attestations: Vec::new(),
            entry_digest: None,
            signed_dependencies: None,
            policy: None,
        };
        // Before the signature: a line that sends cargo elsewhere is dropped whoever
        // signed the release (spec/proxy.md, "Dependencies from other registries").
        if let Some(escape) = line.escape(self.allowed_registries) {
            log_escape(name, &line.vers, &escape);
            version.outcome = Err(Dropped::Escape(escape));
            if let Ok(release) = release {
                version.release = Some(release);
            }
            return version;
        }
        match release {
            Ok(release) if release.sha256.eq_ignore_ascii_case(&line.cksum) => {
                answer.valid_until = answer.valid_until.min(release.valid_until);
                version.release = Some(release);
                if self.signed_entries_required {
                    tracing::debug!(crate_name = name, version = %line.vers, "dropping a version without a signed index entry");
                } else {
                    version.entry = EntryAuth::ChecksumOnly;
                    version.outcome = Ok(upstream_version.bytes.to_vec());
                }
            }
            Ok(release) => {
                tracing::warn!(crate_name = name, version = %line.vers, index_cksum = %line.cksum, signed_sha256 = %release.sha256, "dropping an index line whose cksum is not the signed digest");
                version.outcome = Err(Dropped::ChecksumMismatch {
                    cksum: line.cksum.to_string(),
                    sha256: release.sha256.clone(),
                });
                version.release = Some(release);
            }
            Err(refusal) if refusal.is_unsigned() => {
                tracing::debug!(crate_name = name, version = %line.vers, "dropping an unsigned version");
                version.outcome = Err(Dropped::NotSigned(refusal));
            }
            Err(refusal) => {
                answer.blocking.get_or_insert(refusal.clone());
                version.outcome = Err(Dropped::NotSigned(refusal));
            }
        }
        version
    }
}

/// Logs a line dropped because it would send cargo past the proxy.
fn log_escape(crate_name: &str, version: &str, escape: &Escape) {
    if let Escape::ForeignRegistry {
        dependency,
        registry,
    } = escape
    {
        tracing::warn!(crate_name, version, %dependency, %registry, "dropping an index line with a dependency from another registry");
    } else {
        tracing::warn!(crate_name, version, %escape, "dropping an index line with a dependency that is not a crate name");
    }
}
