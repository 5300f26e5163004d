//! A crate's signed index file: every version's index entry, the owners' yank marks and
//! the developers' attestations, in one TUF target beside the crate's release tarballs
//! (`crates/<namespace>/<leaf>/index`, [`crate::layout::crate_index_path`]).
//!
//! The file is cargo's sparse index format: one line per version, each the canonical JSON
//! of the normalised entry ([`IndexEntry::to_canonical_line`]), `yanked` being the
//! owners' signed mark. A version's attestations ride in its line under
//! [`ATTESTATIONS_FIELD`], which cargo would ignore; the proxy removes it before it serves
//! the line.
//!
//! Because it is a target, the role that signs the crate's releases signs it, snapshot
//! pins its version, and a client always learns the newest: an upstream index that drops
//! a line or serves an old file cannot hide a signed release, and a yank the owners signed
//! cannot be undone upstream.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::attestation::Attestation;
use crate::index_entry::{IndexEntry, IndexEntryError};

/// The field of a version's line that holds its attestations.
pub use crate::attestation::INDEX_FIELD as ATTESTATIONS_FIELD;

/// Largest signed index file read.
pub const MAX_CRATE_INDEX_BYTES: u64 = 32 * 1024 * 1024;

/// Why a signed index file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrateIndexError {
    /// A line is not an index entry.
    #[error("line {line}: {error}")]
    Entry {
        /// 1-based line number.
        line: usize,
        /// Why.
        error: IndexEntryError,
    },
    /// A line's attestations are not attestations.
    #[error("line {line}: {ATTESTATIONS_FIELD}: {message}")]
    Attestation {
        /// 1-based line number.
        line: usize,
        /// Why.
        message: String,
    },
    /// A line is about another crate.
    #[error("line {line}: an entry of {found}, in the index file of {expected}")]
    OtherCrate {
        /// 1-based line number.
        line: usize,
        /// The crate the file is for.
        expected: String,
        /// The crate the line names.
        found: String,
    },
    /// A version appears twice.
    #[error("version {0} appears twice")]
    DuplicateVersion(String),
    /// The file is not UTF-8 or too long.
    #[error("not a signed index file: {0}")]
    Malformed(&'static str),
}

/// One version in a crate's signed index file.
#[derive(Debug, Clone)]
pub struct SignedIndexLine {
    /// The entry as signed; `yanked` is the owners' mark.
    pub entry: IndexEntry,
    /// Developers' attestations of this release, as stored (check each with
    /// [`Attestation::verify_for`]).
    pub attestations: Vec<Attestation>,
}

impl SignedIndexLine {
    /// The entry as cargo gets it: without the attestations, yanked if the owners or
    /// `yanked_upstream` say so.
    pub fn line_for_cargo(&self, yanked_upstream: bool) -> Vec<u8> {
        let mut entry = self.entry.clone();
        entry.unrecognized_fields.remove(ATTESTATIONS_FIELD);
        entry.yanked |= yanked_upstream;
        entry.to_canonical_line()
    }
}

/// A crate's signed index file.
#[derive(Debug, Clone, Default)]
pub struct CrateIndexFile {
    /// The versions, in the order they were added.
    pub lines: Vec<SignedIndexLine>,
}

impl CrateIndexFile {
    /// Parses the file of crate `name` (compared case-insensitively, as cargo does).
    pub fn parse(name: &str, bytes: &[u8]) -> Result<Self, CrateIndexError> {
        Self::parse_lines(Some(name), bytes).map(|(_, file)| file)
    }

    /// Parses a file whose crate is the one its first entry names (for a reader that
    /// knows only the file, such as an audit, which then checks the file's path): that
    /// name and the file, or `None` when the file has no entries.
    pub fn parse_unnamed(bytes: &[u8]) -> Result<Option<(String, Self)>, CrateIndexError> {
        Self::parse_lines(None, bytes).map(|(name, file)| name.map(|name| (name, file)))
    }

    /// The file, every line about the crate `expected`, or else about the crate the
    /// first entry names, with that name as the first entry writes it.
    fn parse_lines(
        expected: Option<&str>,
        bytes: &[u8],
    ) -> Result<(Option<String>, Self), CrateIndexError> {
        if bytes.len() as u64 > MAX_CRATE_INDEX_BYTES {
            return Err(CrateIndexError::Malformed("longer than the limit"));
        }
        let mut lines = Vec::new();
        let mut versions = BTreeSet::new();
        let mut first_name: Option<String> = None;
        for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let number = index + 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let mut entry =
                IndexEntry::parse_line(line).map_err(|error| CrateIndexError::Entry {
                    line: number,
                    error,
                })?;
            if expected.is_none() && first_name.is_none() {
                first_name = Some(entry.name.clone());
            }
            let name = expected.or(first_name.as_deref()).unwrap_or_default();
            if !entry.name.eq_ignore_ascii_case(name) {
                return Err(CrateIndexError::OtherCrate {
                    line: number,
                    expected: name.to_owned(),
                    found: entry.name,
                });
            }
            if !versions.insert(entry.vers.to_ascii_lowercase()) {
                return Err(CrateIndexError::DuplicateVersion(entry.vers));
            }
            let attestations = match entry.unrecognized_fields.remove(ATTESTATIONS_FIELD) {
                None => Vec::new(),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(Attestation::from_value)
                    .collect::<Result<_, _>>()
                    .map_err(|e| CrateIndexError::Attestation {
                        line: number,
                        message: e.to_string(),
                    })?,
                Some(_) => {
                    return Err(CrateIndexError::Attestation {
                        line: number,
                        message: "not an array".into(),
                    })
                }
            };
            lines.push(SignedIndexLine {
                entry,
                attestations,
            });
        }
        Ok((first_name, Self { lines }))
    }

    /// The file's bytes: one canonical line per version, attestations included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in &self.lines {
            let mut entry = line.entry.normalized();
            if !line.attestations.is_empty() {
                entry.unrecognized_fields.insert(
                    ATTESTATIONS_FIELD.into(),
                    Value::Array(
                        line.attestations
                            .iter()
                            .map(Attestation::to_value)
                            .collect(),
                    ),
                );
            }
            out.extend_from_slice(&entry.to_canonical_line());
            out.push(b'\n');
        }
        out
    }

    /// The line of `version`.
    pub fn get(&self, version: &str) -> Option<&SignedIndexLine> {
        self.lines
            .iter()
            .find(|l| l.entry.vers.eq_ignore_ascii_case(version))
    }

    /// The line of `version`, to change it.
    pub fn get_mut(&mut self, version: &str) -> Option<&mut SignedIndexLine> {
        self.lines
            .iter_mut()
            .find(|l| l.entry.vers.eq_ignore_ascii_case(version))
    }

    /// Removes the line of `version`; whether there was one.
    pub fn remove(&mut self, version: &str) -> bool {
        let before = self.lines.len();
        self.lines
            .retain(|l| !l.entry.vers.eq_ignore_ascii_case(version));
        self.lines.len() != before
    }
}
