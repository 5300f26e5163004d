//! Targets metadata (TUF §4.5): target files and delegations, including succinct hash bin
//! delegations (TAP 15).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::common::{
    expires_serde, validate_role_keys, SharedFields, TargetsType, UnrecognizedFields,
};
use super::{validate_version, MetadataError, Role, SPEC_VERSION, TOP_LEVEL_ROLE_NAMES};
use crate::hash::Hashes;
use crate::json::Value;
use crate::keys::{Key, KeyId};

/// The `signed` content of targets metadata (top-level or delegated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Targets {
    /// Always `"targets"`.
    #[serde(rename = "_type")]
    pub type_tag: TargetsType,
    /// Specification version the metadata follows.
    pub spec_version: String,
    /// Metadata version.
    pub version: u64,
    /// When the metadata stops being trusted.
    #[serde(with = "expires_serde")]
    pub expires: DateTime<Utc>,
    /// Target path to its length, hashes and custom data.
    pub targets: BTreeMap<String, TargetFile>,
    /// Roles this role delegates to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Delegations>,
    /// Extension fields, kept verbatim.
    #[serde(flatten)]
    pub unrecognized_fields: UnrecognizedFields,
}

impl Targets {
    /// A version 1 targets role with no targets and no delegations.
    pub fn new(expires: DateTime<Utc>) -> Self {
        Self {
            type_tag: TargetsType,
            spec_version: SPEC_VERSION.to_owned(),
            version: 1,
            expires,
            targets: BTreeMap::new(),
            delegations: None,
            unrecognized_fields: UnrecognizedFields::new(),
        }
    }
}

/// Where a target search goes from one targets role (§5.6.7.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DelegationStep<'a> {
    /// The delegated roles trusted for the path, in priority order: borrowed from the
    /// role's delegations, or the name of the one hash bin that holds the path.
    pub roles: Vec<Cow<'a, str>>,
    /// Whether the search ends with these roles: the last of them is a terminating
    /// delegation, or a hash bin (TAP 15 bins are terminating), so no role still waiting
    /// in the search is consulted.
    pub terminating: bool,
}

impl Targets {
    /// The roles this role hands the search for `target_path` to (§5.6.7.2): its
    /// delegations whose `paths` or `path_hash_prefixes` cover the path, up to and
    /// including the first terminating one, or the one hash bin that holds the path.
    pub fn delegations_for_path(&self, target_path: &str) -> DelegationStep<'_> {
        let mut step = DelegationStep::default();
        let Some(delegations) = &self.delegations else {
            return step;
        };
        if let Some(roles) = &delegations.roles {
            for child in roles.iter().filter(|r| r.is_delegated_path(target_path)) {
                step.roles.push(Cow::Borrowed(&child.name));
                if child.terminating {
                    step.terminating = true;
                    break;
                }
            }
        } else if let Some(bins) = &delegations.succinct_roles {
            step.roles
                .push(Cow::Owned(bins.role_for_target(target_path)));
            step.terminating = true;
        }
        step
    }
}

impl Role for Targets {
    const TYPE: &'static str = "targets";

    role_accessors!();

    fn validate(&self) -> Result<(), MetadataError> {
        validate_version(self.version)?;
        // Each target's `hashes` was checked as it was read (see `Hashes`).
        if let Some(delegations) = &self.delegations {
            delegations.validate("signed.delegations")?;
        }
        Ok(())
    }
}

/// A target file entry (TUF §4.5, TARGETS): exact length and digests, plus optional custom
/// data (kept among the extension fields, as python-tuf does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetFile {
    /// Exact length in bytes.
    pub length: u64,
    /// At least one digest of the file.
    pub hashes: Hashes,
    /// `custom` and any other extension fields, kept verbatim (and held once for
    /// neighbouring entries of a loaded document that carry the same ones).
    #[serde(flatten)]
    pub unrecognized_fields: SharedFields,
}

impl TargetFile {
    /// An entry for `bytes` with its length and sha256 and sha512 digests.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut hashes = crate::hash::sha256_hashes(bytes);
        hashes.insert(
            "sha512".to_owned(),
            hex::encode(sha2::Sha512::digest(bytes)),
        );
        Self {
            length: bytes.len() as u64,
            hashes,
            unrecognized_fields: SharedFields::new(),
        }
    }

    /// The `custom` object, if any.
    pub fn custom(&self) -> Option<&Value> {
        self.unrecognized_fields.get("custom")
    }
}

/// The delegations of a targets role: keys, and either named roles or succinct hash bins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delegations {
    /// Keys of the delegated roles, by keyid.
    pub keys: BTreeMap<KeyId, Key>,
    /// Delegated roles in priority order (mutually exclusive with `succinct_roles`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<DelegatedRole>>,
    /// Hash bin delegation (TAP 15; mutually exclusive with `roles`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succinct_roles: Option<SuccinctRoles>,
    /// Extension fields, kept verbatim.
    #[serde(flatten)]
    pub unrecognized_fields: UnrecognizedFields,
}

impl Delegations {
    fn validate(&self, path: &str) -> Result<(), MetadataError> {
        match (&self.roles, &self.succinct_roles) {
            (Some(roles), None) => {
                let mut names = BTreeSet::new();
                for (i, role) in roles.iter().enumerate() {
                    let role_path = format!("{path}.roles[{i}]");
                    if TOP_LEVEL_ROLE_NAMES.contains(&role.name.as_str()) {
                        return Err(MetadataError::schema(
                            format!("{role_path}.name"),
                            format!("{:?} is a top-level role name", role.name),
                        ));
                    }
                    if !names.insert(role.name.as_str()) {
                        return Err(MetadataError::schema(
                            format!("{role_path}.name"),
                            format!("role {:?} is delegated twice", role.name),
                        ));
                    }
                    role.validate(&role_path)?;
                }
                Ok(())
            }
            (None, Some(succinct)) => succinct.validate(&format!("{path}.succinct_roles")),
            _ => Err(MetadataError::schema(
                path,
                "exactly one of `roles` and `succinct_roles` must be set",
            )),
        }
    }

    /// Whether `name` is a role these delegations define.
    pub fn contains_role(&self, name: &str) -> bool {
        self.roles
            .as_ref()
            .is_some_and(|roles| roles.iter().any(|r| r.name == name))
            || self
                .succinct_roles
                .as_ref()
                .is_some_and(|s| s.is_delegated_role(name))
    }
}

/// A delegated role (TUF §4.5, DELEGATIONS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DelegatedRole {
    /// Role name; its metadata is `NAME.json`.
    pub name: String,
    /// Keyids authorised to sign the role.
    pub keyids: Vec<KeyId>,
    /// How many distinct authorised keys must sign.
    pub threshold: u64,
    /// When true, a target matching this role's paths is looked up nowhere after it.
    pub terminating: bool,
    /// Glob patterns of the target paths the role may sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Hex prefixes of the SHA-256 of target paths the role may sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
    /// Extension fields, kept verbatim.
    #[serde(flatten)]
    pub unrecognized_fields: UnrecognizedFields,
}

impl DelegatedRole {
    fn validate(&self, path: &str) -> Result<(), MetadataError> {
        validate_role_keys(path, &self.keyids, self.threshold)?;
        if self.paths.is_some() == self.path_hash_prefixes.is_some() {
            return Err(MetadataError::schema(
                path,
                "exactly one of `paths` and `path_hash_prefixes` must be set",
            ));
        }
        Ok(())
    }

    /// Whether the role is trusted for `target_path` (TUF §5.6.7.2): a `paths` pattern
    /// matches it, or its SHA-256 hex digest starts with one of `path_hash_prefixes`.
    pub fn is_delegated_path(&self, target_path: &str) -> bool {
        if let Some(patterns) = &self.paths {
            return patterns
                .iter()
                .any(|pattern| path_matches_pattern(target_path, pattern));
        }
        if let Some(prefixes) = &self.path_hash_prefixes {
            let digest = hex::encode(Sha256::digest(target_path.as_bytes()));
            return prefixes
                .iter()
                .any(|prefix| digest.starts_with(prefix.as_str()));
        }
        false
    }
}

/// Whether `target_path` matches a delegation `pattern`: both split on `/` into the same
/// number of segments, each segment matched as a shell glob (`*`, `?`, `[seq]`,
/// `[!seq]`), so `*` never crosses a `/`. This is python-tuf's rule.
pub fn path_matches_pattern(target_path: &str, pattern: &str) -> bool {
    let mut targets = target_path.split('/');
    let mut patterns = pattern.split('/');
    loop {
        match (targets.next(), patterns.next()) {
            (None, None) => return true,
            (Some(t), Some(p)) => {
                if !glob_segment_matches(t, p) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// One `fnmatch` segment, in time O(len(text) × len(pattern)) at worst.
fn glob_segment_matches(text: &str, pattern: &str) -> bool {
    // Most segments of real patterns are literal (`crates`, `ab`) or a lone `*`: those
    // are answered without the character vectors below (a registry audit matches
    // hundreds of millions of segments).
    if !pattern.contains(['*', '?', '[']) {
        return text == pattern;
    }
    if pattern == "*" {
        return true;
    }
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    let (mut t, mut p) = (0usize, 0usize);
    // Pattern position after the last `*` seen, and the text position it absorbs up to.
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = text.get(t) {
        let step = match pattern.get(p) {
            Some('*') => {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => match CharClass::parse(pattern.get(p..).unwrap_or_default()) {
                Some((class, len)) => class.matches(c).then_some(len),
                None => (c == '[').then_some(1),
            },
            Some(&literal) => (literal == c).then_some(1),
            None => None,
        };
        match (step, star) {
            (Some(len), _) => {
                t += 1;
                p += len;
            }
            (None, Some((star_p, star_t))) => {
                p = star_p;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            }
            (None, None) => return false,
        }
    }
    pattern
        .get(p..)
        .unwrap_or_default()
        .iter()
        .all(|c| *c == '*')
}

/// A `[...]` set of fnmatch: `!` negates, a leading `]` is a member, `a-z` is a range.
struct CharClass<'a> {
    negate: bool,
    members: &'a [char],
}

impl<'a> CharClass<'a> {
    /// Parses the class at the start of `pattern` (which begins with `[`); returns it and
    /// its length, or `None` when there is no closing `]` (then `[` is a literal).
    fn parse(pattern: &'a [char]) -> Option<(Self, usize)> {
        let negate = pattern.get(1) == Some(&'!');
        let body_start = if negate { 2 } else { 1 };
        let body = pattern.get(body_start..)?;
        let search_from = usize::from(body.first() == Some(&']'));
        let close = body.get(search_from..)?.iter().position(|c| *c == ']')? + search_from;
        let members = body.get(..close)?;
        Some((Self { negate, members }, body_start + close + 1))
    }

    fn matches(&self, c: char) -> bool {
        let mut rest = self.members;
        let mut hit = false;
        loop {
            rest = match rest {
                [low, '-', high, tail @ ..] => {
                    hit |= *low <= c && c <= *high;
                    tail
                }
                [member, tail @ ..] => {
                    hit |= *member == c;
                    tail
                }
                [] => break,
            };
        }
        hit != self.negate
    }
}

/// Succinct hash bin delegation (TAP 15): `2^bit_length` roles named
/// `NAME_PREFIX-XX`, each trusted for the targets whose SHA-256 path digest falls in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuccinctRoles {
    /// Keyids authorised to sign every bin.
    pub keyids: Vec<KeyId>,
    /// Signatures needed per bin.
    pub threshold: u64,
    /// Number of leading bits of the path digest that select the bin (1 to 32).
    pub bit_length: u32,
    /// Bin role names are `{name_prefix}-{bin as lowercase hex}`.
    pub name_prefix: String,
    /// Extension fields, kept verbatim.
    #[serde(flatten)]
    pub unrecognized_fields: UnrecognizedFields,
}

impl SuccinctRoles {
    /// A hash bin delegation with no extension fields.
    pub fn new(keyids: Vec<KeyId>, threshold: u64, bit_length: u32, name_prefix: &str) -> Self {
        Self {
            keyids,
            threshold,
            bit_length,
            name_prefix: name_prefix.to_owned(),
            unrecognized_fields: UnrecognizedFields::new(),
        }
    }

    fn validate(&self, path: &str) -> Result<(), MetadataError> {
        validate_role_keys(path, &self.keyids, self.threshold)?;
        if !(1..=32).contains(&self.bit_length) {
            return Err(MetadataError::schema(
                format!("{path}.bit_length"),
                "bit_length must be between 1 and 32",
            ));
        }
        Ok(())
    }

    /// How many bins there are.
    pub fn bin_count(&self) -> u64 {
        1u64 << self.bit_length.min(32)
    }

    /// Hex digits in a bin suffix: those of the largest bin number.
    pub fn suffix_len(&self) -> usize {
        format!("{:x}", self.bin_count() - 1).len()
    }

    /// The name of bin `bin`.
    pub fn bin_name(&self, bin: u64) -> String {
        format!(
            "{}-{:0width$x}",
            self.name_prefix,
            bin,
            width = self.suffix_len()
        )
    }

    /// The bin role trusted for `target_path`: the first `bit_length` bits of the
    /// SHA-256 of the path.
    pub fn role_for_target(&self, target_path: &str) -> String {
        let digest = Sha256::digest(target_path.as_bytes());
        let first = digest
            .iter()
            .take(4)
            .fold(0u32, |acc, byte| (acc << 8) | u32::from(*byte));
        let bin = u64::from(first) >> (32 - self.bit_length.clamp(1, 32));
        self.bin_name(bin)
    }

    /// Whether `name` is one of the bins (exact lowercase form only).
    pub fn is_delegated_role(&self, name: &str) -> bool {
        let Some(suffix) = name
            .strip_prefix(self.name_prefix.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
        else {
            return false;
        };
        suffix.len() == self.suffix_len()
            && suffix
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && u64::from_str_radix(suffix, 16).is_ok_and(|bin| bin < self.bin_count())
    }

    /// Every bin name, in bin order.
    pub fn role_names(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.bin_count()).map(|bin| self.bin_name(bin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_rules_follow_fnmatch_per_segment() {
        let cases = [
            (
                "crates/se/rd/serde/serde-1.0.0.crate",
                "crates/se/rd/serde/*",
                true,
            ),
            (
                "crates/se/rd/serde/x/serde-1.0.0.crate",
                "crates/se/rd/serde/*",
                false,
            ),
            ("a/b.txt", "*", false),
            ("a.txt", "*", true),
            ("a/b.txt", "*/*", true),
            ("a/b.txt", "a/?.txt", true),
            ("a/bc.txt", "a/?.txt", false),
            ("a/b.txt", "a/[abc].txt", true),
            ("a/d.txt", "a/[!abc].txt", true),
            ("a/b.txt", "a/[!abc].txt", false),
            ("a/m.txt", "a/[a-z].txt", true),
            ("a/[.txt", "a/[.txt", true),
            ("a/].txt", "a/[]].txt", true),
            ("serde::derive", "serde::*", true),
            ("serdex", "serde*", true),
            ("", "", true),
            ("abc", "a*b*c*", true),
            ("ünï", "?n?", true),
            (
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
                "*a*a*a*a*a*a*a*a*c",
                false,
            ),
        ];
        for (path, pattern, expected) in cases {
            assert_eq!(
                path_matches_pattern(path, pattern),
                expected,
                "{path} ~ {pattern}"
            );
        }
    }

    #[test]
    fn succinct_bins_name_and_select_like_python_tuf() {
        let bins = SuccinctRoles::new(vec![], 1, 4, "bin");
        assert_eq!(bins.bin_count(), 16);
        assert_eq!(bins.suffix_len(), 1);
        assert_eq!(bins.role_names().last().as_deref(), Some("bin-f"));
        assert!(bins.is_delegated_role("bin-a"));
        for bad in [
            "bin-A", "bin-10", "bin-", "bin-g", "bin", "bins-a", "bin--1",
        ] {
            assert!(!bins.is_delegated_role(bad), "{bad}");
        }
        let bins = SuccinctRoles::new(vec![], 1, 9, "b");
        assert_eq!(bins.suffix_len(), 3);
        assert_eq!(bins.bin_name(5), "b-005");
        assert!(bins.is_delegated_role("b-1ff"));
        assert!(!bins.is_delegated_role("b-200"));
        // sha256("") starts e3b0c442: top 4 bits 0xe, top 9 bits 0x1c7.
        assert_eq!(
            SuccinctRoles::new(vec![], 1, 4, "bin").role_for_target(""),
            "bin-e"
        );
        assert_eq!(bins.role_for_target(""), "b-1c7");
        let all = SuccinctRoles::new(vec![], 1, 32, "x");
        assert_eq!(all.role_for_target(""), "x-e3b0c442");
    }
}
