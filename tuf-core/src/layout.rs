//! The role layout and target path scheme of a crate registry's TUF repository, shared by
//! the signer (which lists releases) and the verifier (which looks them up). The reference
//! is `spec/role-layout.md`.
//!
//! A release `NAME VERSION` is the target
//!
//! ```text
//! crates/<namespace>/<leaf>/<leaf>-<version>.crate
//! ```
//!
//! * `<leaf>` is the crate name in ASCII lowercase, with the namespace separator `::`
//!   written `~` (`serde::derive` → `serde~derive`). Lowercase, because crate names are
//!   case-insensitive on crates.io and paths must not collide on case-insensitive file
//!   systems; `~` because `:` is not allowed in Windows file names and `~` is never part
//!   of a crate name.
//! * `<namespace>` is the part of the name before `::` (the whole name for a crate outside
//!   any namespace), lowercased and with `-` folded to `_`: crates.io treats `foo-bar` and
//!   `foo_bar` as the same name, so one namespace owns both spellings.
//! * `<version>` is the semantic version, lowercased.
//!
//! The namespace `serde` is the delegation `ns-serde` with the single path pattern
//! `crates/serde/*/*`. TUF matches patterns one path segment at a time, so that pattern
//! covers `serde` and every `serde::*` crate and nothing else: not `serde_json`
//! (`crates/serde_json/…`), `serde-json` (also `crates/serde_json/…`) or `serdex`.
//! Every crate no namespace claims falls to the role `unclaimed` (pattern
//! `crates/*/*/*`), listed after every namespace, which hands its targets to succinct hash
//! bins (TAP 15). Namespace delegations are terminating, so `unclaimed` is never consulted
//! for a path inside a claimed namespace.

use crate::metadata::Targets;

/// The directory all release tarballs live under.
pub const CRATES_DIR: &str = "crates";

/// The role that signs every crate no namespace claims.
pub const FALLBACK_ROLE: &str = "unclaimed";

/// The path pattern delegated to [`FALLBACK_ROLE`].
pub const FALLBACK_PATH_PATTERN: &str = "crates/*/*/*";

/// Prefix of the hash bins [`FALLBACK_ROLE`] delegates to (`unclaimed-00`, …).
pub const FALLBACK_BIN_PREFIX: &str = "unclaimed";

/// Prefix of namespace role names (`ns-serde`).
pub const NAMESPACE_ROLE_PREFIX: &str = "ns-";

/// Longest crate name crates.io accepts (each part of a namespaced name).
pub const MAX_CRATE_NAME_LEN: usize = 64;

/// Longest version string accepted.
pub const MAX_VERSION_LEN: usize = 128;

/// `text` quoted and escaped as `{:?}` shows it, cut after `max` characters with how many
/// there were: a name from a request or a file may be any length, and a message about it
/// must not be.
pub fn quoted_bounded(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return format!("{text:?}");
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept:?}… ({total} characters)")
}

/// Why a crate name, version or target path does not fit the layout.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// Not a valid crate name.
    #[error(
        "invalid crate name {}: {reason}",
        quoted_bounded(name, MAX_CRATE_NAME_LEN)
    )]
    CrateName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not a valid namespace.
    #[error(
        "invalid namespace {}: {reason}",
        quoted_bounded(name, MAX_CRATE_NAME_LEN)
    )]
    Namespace {
        /// The namespace given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not a semantic version.
    #[error("invalid version {}: {reason}{}", quoted_bounded(version, MAX_VERSION_LEN), source.as_ref().map(|e| format!(" ({e})")).unwrap_or_default())]
    Version {
        /// The version given.
        version: String,
        /// What is wrong with it.
        reason: &'static str,
        /// The version parser's account, when it was parsed.
        #[source]
        source: Option<semver::Error>,
    },
}

/// Names Windows reserves for devices in every directory; crates.io refuses them too.
const WINDOWS_RESERVED: [&str; 22] = [
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

fn check_name_part(full: &str, part: &str) -> Result<(), LayoutError> {
    let err = |reason| LayoutError::CrateName {
        name: full.to_owned(),
        reason,
    };
    if part.is_empty() {
        return Err(err("empty name"));
    }
    if part.len() > MAX_CRATE_NAME_LEN {
        return Err(err("longer than 64 characters"));
    }
    if !part.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(err("must start with an ASCII letter"));
    }
    if !part
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(err(
            "only ASCII letters, digits, `-` and `_` are allowed (and `::` once, for a namespace)",
        ));
    }
    if WINDOWS_RESERVED.contains(&part.to_ascii_lowercase().as_str()) {
        return Err(err("reserved device name on Windows"));
    }
    Ok(())
}

/// Checks a crate name: crates.io's rules (ASCII letters, digits, `-`, `_`, starting with
/// a letter, at most 64 characters, no Windows device names), optionally as a namespaced
/// name `parent::child` (RFC 3243, one level).
pub fn validate_crate_name(name: &str) -> Result<(), LayoutError> {
    match name.split_once("::") {
        Some((parent, child)) => {
            check_name_part(name, parent)?;
            if child.contains("::") {
                return Err(LayoutError::CrateName {
                    name: name.to_owned(),
                    reason: "only one level of namespace is allowed",
                });
            }
            check_name_part(name, child)
        }
        None => check_name_part(name, name),
    }
}

/// Checks a namespace name: a valid crate name without `::`.
pub fn validate_namespace(namespace: &str) -> Result<(), LayoutError> {
    if namespace.contains("::") {
        return Err(LayoutError::Namespace {
            name: namespace.to_owned(),
            reason: "a namespace is a single crate name, without `::`",
        });
    }
    check_name_part(namespace, namespace).map_err(|err| match err {
        LayoutError::CrateName { reason, .. } => LayoutError::Namespace {
            name: namespace.to_owned(),
            reason,
        },
        other => other,
    })
}

/// Checks a semantic version (`MAJOR.MINOR.PATCH[-PRE][+BUILD]`) with the `semver`
/// crate's parser, the one cargo uses: numbers without leading zeros that fit in a
/// `u64`, pre-release identifiers of ASCII letters, digits and `-` (numeric ones without
/// leading zeros), build identifiers likewise (leading zeros allowed). At most
/// [`MAX_VERSION_LEN`] characters.
pub fn validate_version(version: &str) -> Result<(), LayoutError> {
    if version.len() > MAX_VERSION_LEN {
        return Err(LayoutError::Version {
            version: version.to_owned(),
            reason: "longer than 128 characters",
            source: None,
        });
    }
    semver::Version::parse(version)
        .map(drop)
        .map_err(|source| LayoutError::Version {
            version: version.to_owned(),
            reason: "not a semantic version MAJOR.MINOR.PATCH[-PRE][+BUILD]",
            source: Some(source),
        })
}

/// The namespace a crate belongs to: its name before `::`, lowercased, `-` folded to `_`.
pub fn namespace_of(name: &str) -> Result<String, LayoutError> {
    validate_crate_name(name)?;
    let parent = name.split_once("::").map_or(name, |(parent, _)| parent);
    Ok(canonical_namespace(parent))
}

/// The canonical form of a namespace: lowercased, `-` folded to `_`.
pub fn canonical_namespace(namespace: &str) -> String {
    namespace.to_ascii_lowercase().replace('-', "_")
}

/// The target path of the release `name` `version` (see the module documentation).
pub fn crate_target_path(name: &str, version: &str) -> Result<String, LayoutError> {
    let namespace = namespace_of(name)?;
    validate_version(version)?;
    let leaf = name.to_ascii_lowercase().replace("::", "~");
    let version = version.to_ascii_lowercase();
    Ok(format!(
        "{CRATES_DIR}/{namespace}/{leaf}/{leaf}-{version}.crate"
    ))
}

/// The file name of a crate's signed index file, beside its release tarballs.
pub const CRATE_INDEX_FILE: &str = "index";

/// The target path of the signed index file of crate `name`:
/// `crates/<namespace>/<leaf>/index`, signed by the role that signs the crate's releases
/// (spec/role-layout.md, "Signed index entries"). No release path can be it: releases
/// end in `.crate`.
pub fn crate_index_path(name: &str) -> Result<String, LayoutError> {
    let namespace = namespace_of(name)?;
    let leaf = name.to_ascii_lowercase().replace("::", "~");
    Ok(format!(
        "{CRATES_DIR}/{namespace}/{leaf}/{CRATE_INDEX_FILE}"
    ))
}

/// The field of top-level `targets` (signed by the targets keys) that says how this
/// repository is laid out beyond the specification: `{"signed_index_entries": true}` when
/// every crate has a signed index file. Repositories made before signed index entries
/// lack it.
pub const LAYOUT_FIELD: &str = "x-tuf-crates-layout";

/// Whether top-level targets declares that every crate has a signed index file.
pub fn signs_index_entries(targets: &crate::metadata::Targets) -> bool {
    targets
        .unrecognized_fields
        .get(LAYOUT_FIELD)
        .and_then(|layout| layout.get("signed_index_entries"))
        .and_then(serde_json::Value::as_bool)
        == Some(true)
}

/// The key, in a release target's `custom` object, that says where its tarball is:
/// `{"x-tuf-crates-tarball": "upstream"}` for a release signed from an upstream registry
/// without its tarball being stored in the TUF repository (a vetted mirror:
/// `tuf-signer release import`). The proxy fetches every tarball from upstream and checks
/// it against the signed length and hashes in any case; the mark tells `publish` and
/// `verify` not to look for the file among the repository's targets, and other TUF
/// clients that the repository's targets URL does not serve it.
pub const TARBALL_LOCATION_FIELD: &str = "x-tuf-crates-tarball";

/// The value of [`TARBALL_LOCATION_FIELD`] for a tarball only upstream serves.
pub const TARBALL_UPSTREAM: &str = "upstream";

/// Whether the target `path` is a release tarball that only the upstream registry
/// serves ([`TARBALL_LOCATION_FIELD`]). Only a `.crate` target can be: a signed index
/// file is always stored.
pub fn tarball_is_upstream(path: &str, info: &crate::metadata::TargetFile) -> bool {
    path.ends_with(".crate")
        && info
            .custom()
            .and_then(|custom| custom.get(TARBALL_LOCATION_FIELD))
            .and_then(serde_json::Value::as_str)
            == Some(TARBALL_UPSTREAM)
}

/// Marks a release target as served only upstream ([`TARBALL_LOCATION_FIELD`]).
pub fn mark_tarball_upstream(info: &mut crate::metadata::TargetFile) {
    if let Some(custom) = custom_object(info) {
        custom.insert(
            TARBALL_LOCATION_FIELD.to_owned(),
            serde_json::Value::String(TARBALL_UPSTREAM.to_owned()),
        );
    }
}

/// The target's `custom` object, made one if it is missing or not an object.
fn custom_object(
    info: &mut crate::metadata::TargetFile,
) -> Option<&mut serde_json::Map<String, serde_json::Value>> {
    let custom = info
        .unrecognized_fields
        .entry("custom".to_owned())
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    if !custom.is_object() {
        *custom = serde_json::Value::Object(serde_json::Map::new());
    }
    custom.as_object_mut()
}

/// The key, in a release target's `custom` object, of the release scanner's recorded
/// result ([`RecordedScan`]), signed with the target by the role that lists it.
pub const SCAN_FIELD: &str = "x-tuf-crates-scan";

/// Most flags recorded with a scan, and the longest each may be.
pub const MAX_RECORDED_FLAGS: usize = 64;
/// ... the longest flag recorded, in bytes.
pub const MAX_RECORDED_FLAG_BYTES: usize = 256;

/// The release scanner's result as recorded in a release's signed target: what the
/// proxy holds a release by (`[scan] hold-above` in the trust policy).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordedScan {
    /// The score.
    pub score: u32,
    /// The version it was compared with (`None`: a first release).
    pub against: Option<String>,
    /// The weighed findings, in words (`build.rs: a build script appears (20)`).
    pub flags: Vec<String>,
}

/// The scan recorded in a release target, if any and well-formed.
pub fn recorded_scan(info: &crate::metadata::TargetFile) -> Option<RecordedScan> {
    let value = info.custom()?.get(SCAN_FIELD)?;
    let scan: RecordedScan = serde_json::from_value(value.clone()).ok()?;
    (scan.flags.len() <= MAX_RECORDED_FLAGS
        && scan
            .flags
            .iter()
            .all(|f| f.len() <= MAX_RECORDED_FLAG_BYTES))
    .then_some(scan)
}

/// Records `scan` in a release target (flags beyond the caps are cut), keeping its
/// other custom fields.
pub fn record_scan(info: &mut crate::metadata::TargetFile, scan: &RecordedScan) {
    let mut scan = scan.clone();
    scan.flags.truncate(MAX_RECORDED_FLAGS);
    for flag in &mut scan.flags {
        if flag.len() > MAX_RECORDED_FLAG_BYTES {
            let mut end = MAX_RECORDED_FLAG_BYTES;
            while !flag.is_char_boundary(end) {
                end -= 1;
            }
            flag.truncate(end);
        }
    }
    if let (Ok(value), Some(custom)) = (serde_json::to_value(&scan), custom_object(info)) {
        custom.insert(SCAN_FIELD.to_owned(), value);
    }
}

/// The role that owns a namespace.
pub fn namespace_role_name(namespace: &str) -> Result<String, LayoutError> {
    validate_namespace(namespace)?;
    Ok(format!(
        "{NAMESPACE_ROLE_PREFIX}{}",
        canonical_namespace(namespace)
    ))
}

/// The path pattern delegated to a namespace's role.
pub fn namespace_path_pattern(namespace: &str) -> Result<String, LayoutError> {
    validate_namespace(namespace)?;
    Ok(format!(
        "{CRATES_DIR}/{}/*/*",
        canonical_namespace(namespace)
    ))
}

/// Whether `role` is a namespace role name.
pub fn is_namespace_role(role: &str) -> bool {
    role.strip_prefix(NAMESPACE_ROLE_PREFIX)
        .is_some_and(|namespace| validate_namespace(namespace).is_ok())
}

/// The kind of a role in the layout, which decides its expiry and who signs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    /// `root`.
    Root,
    /// The top-level `targets` role.
    Targets,
    /// `snapshot`.
    Snapshot,
    /// `timestamp`.
    Timestamp,
    /// A namespace role (`ns-serde`), signed by the namespace's owners.
    Namespace,
    /// The fallback role [`FALLBACK_ROLE`].
    Fallback,
    /// One of the fallback role's succinct hash bins (`unclaimed-0a`).
    FallbackBin,
    /// A name this layout does not give out.
    Other,
}

impl RoleKind {
    /// The kind of the role named `role`.
    pub fn of(role: &str) -> Self {
        match role {
            "root" => Self::Root,
            "targets" => Self::Targets,
            "snapshot" => Self::Snapshot,
            "timestamp" => Self::Timestamp,
            FALLBACK_ROLE => Self::Fallback,
            _ if is_namespace_role(role) => Self::Namespace,
            _ if is_fallback_bin(role) => Self::FallbackBin,
            _ => Self::Other,
        }
    }

    /// Whether the repository signs this role with its online keys when it publishes.
    pub fn is_online(self) -> bool {
        matches!(
            self,
            Self::Snapshot | Self::Timestamp | Self::Fallback | Self::FallbackBin
        )
    }
}

/// Whether `role` is the name of a fallback hash bin: [`FALLBACK_BIN_PREFIX`], `-`, hex.
fn is_fallback_bin(role: &str) -> bool {
    role.strip_prefix(FALLBACK_BIN_PREFIX)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The role the top-level `targets` delegates `target_path` to: the first of its
/// delegations whose patterns cover the path (namespaces are listed before
/// [`FALLBACK_ROLE`]), or `None` if none does. For [`FALLBACK_ROLE`], the path's bin is
/// [`SuccinctRoles::role_for_target`](crate::metadata::SuccinctRoles::role_for_target)
/// of the fallback role's delegation.
pub fn delegated_role_for_path<'a>(targets: &'a Targets, target_path: &str) -> Option<&'a str> {
    targets
        .delegations
        .as_ref()?
        .roles
        .as_ref()?
        .iter()
        .find(|r| r.is_delegated_path(target_path))
        .map(|r| r.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::path_matches_pattern;

    #[test]
    fn role_kinds_follow_the_names() {
        for (role, kind) in [
            ("root", RoleKind::Root),
            ("targets", RoleKind::Targets),
            ("snapshot", RoleKind::Snapshot),
            ("timestamp", RoleKind::Timestamp),
            ("unclaimed", RoleKind::Fallback),
            ("unclaimed-0a", RoleKind::FallbackBin),
            ("unclaimed-FF", RoleKind::FallbackBin),
            ("ns-serde", RoleKind::Namespace),
            ("unclaimed-", RoleKind::Other),
            ("unclaimed-xy", RoleKind::Other),
            ("ns-", RoleKind::Other),
            ("ns-a::b", RoleKind::Other),
            ("release", RoleKind::Other),
        ] {
            assert_eq!(RoleKind::of(role), kind, "{role}");
        }
        let online: Vec<&str> = ["root", "targets", "snapshot", "timestamp", "unclaimed"]
            .into_iter()
            .chain(["unclaimed-00", "ns-serde"])
            .filter(|r| RoleKind::of(r).is_online())
            .collect();
        assert_eq!(
            online,
            ["snapshot", "timestamp", "unclaimed", "unclaimed-00"]
        );
    }

    #[test]
    fn paths_follow_the_scheme() {
        assert_eq!(
            crate_target_path("serde", "1.0.200").unwrap(),
            "crates/serde/serde/serde-1.0.200.crate"
        );
        assert_eq!(
            crate_target_path("serde::derive", "1.0.0-RC.1+Build.5").unwrap(),
            "crates/serde/serde~derive/serde~derive-1.0.0-rc.1+build.5.crate"
        );
        assert_eq!(
            crate_target_path("Serde-JSON", "1.0.0").unwrap(),
            "crates/serde_json/serde-json/serde-json-1.0.0.crate"
        );
        for name in ["serde", "serde::derive", "serde-json", "a_b::c-d"] {
            let path = crate_target_path(name, "0.1.0").unwrap();
            assert!(!path.contains(':') && !path.contains('\\'), "{path}");
        }
    }

    #[test]
    fn a_crate_index_file_sits_beside_its_releases_in_the_same_roles() {
        assert_eq!(
            crate_index_path("Serde::Derive").unwrap(),
            "crates/serde/serde~derive/index"
        );
        let pattern = namespace_path_pattern("serde").unwrap();
        assert!(path_matches_pattern(
            &crate_index_path("serde").unwrap(),
            &pattern
        ));
        assert!(!path_matches_pattern(
            &crate_index_path("serde_json").unwrap(),
            &pattern
        ));
        assert!(crate_index_path("../x").is_err());
    }

    #[test]
    fn a_namespace_pattern_covers_its_crates_and_nothing_else() {
        let pattern = namespace_path_pattern("serde").unwrap();
        let covered =
            |name: &str| path_matches_pattern(&crate_target_path(name, "1.0.0").unwrap(), &pattern);
        assert!(covered("serde"));
        assert!(covered("serde::derive"));
        assert!(covered("SERDE::Derive"));
        for other in [
            "serde_json",
            "serde-json",
            "serdex",
            "xserde",
            "serde_json::x",
        ] {
            assert!(
                !covered(other),
                "{other} must not be in the serde namespace"
            );
        }
        // Both spellings of a hyphenated namespace fall in one namespace.
        let pattern = namespace_path_pattern("foo-bar").unwrap();
        for name in ["foo-bar", "foo_bar", "foo_bar::baz", "Foo-Bar"] {
            assert!(path_matches_pattern(
                &crate_target_path(name, "1.0.0").unwrap(),
                &pattern
            ));
        }
        // The fallback pattern covers every crate path.
        for name in ["serde", "serde::derive", "x"] {
            assert!(path_matches_pattern(
                &crate_target_path(name, "1.0.0").unwrap(),
                FALLBACK_PATH_PATTERN
            ));
        }
    }

    #[test]
    fn names_are_checked_as_crates_io_does() {
        for good in ["a", "serde", "a-b_c9", "serde::derive", &"a".repeat(64)] {
            validate_crate_name(good).unwrap();
        }
        for bad in [
            "",
            "1abc",
            "_a",
            "a b",
            "a/b",
            "a.b",
            "a:b",
            "::a",
            "a::",
            "a::b::c",
            "con",
            "a::nul",
            "é",
            &"a".repeat(65),
        ] {
            assert!(validate_crate_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_namespace("serde::derive").is_err());
        assert!(namespace_role_name("../x").is_err());
        assert_eq!(namespace_role_name("Foo-Bar").unwrap(), "ns-foo_bar");
        assert!(is_namespace_role("ns-serde"));
        assert!(!is_namespace_role("unclaimed-0a"));
        assert!(!is_namespace_role("ns-"));
    }

    #[test]
    fn versions_are_semver() {
        for good in [
            "0.0.0",
            "1.2.3",
            "1.0.0-alpha.1",
            "1.0.0+build.7",
            "10.20.30-rc-1+x",
        ] {
            validate_version(good).unwrap();
        }
        for bad in [
            "1.0",
            "1.0.0.0",
            "01.0.0",
            "1.0.0-",
            "1.0.0+",
            "1.0.0-01",
            "1.0.0-a..b",
            "1.0.0-a/b",
            "v1.0.0",
            "99999999999999999999.0.0",
            " 1.0.0",
            "1.0.0 ",
            "=1.0.0",
            "1.0.0-é",
        ] {
            assert!(validate_version(bad).is_err(), "{bad:?} accepted");
        }
        // Leading zeros are allowed in build metadata only; u64::MAX is a valid number.
        for good in [
            "1.0.0+001",
            "1.0.0-0a.0",
            "18446744073709551615.0.0",
            "1.0.0--",
        ] {
            validate_version(good).unwrap();
        }
        let err = validate_version("1.0.0-01").unwrap_err();
        assert!(err.to_string().contains("leading zero"), "{err}");
        let long = format!("1.0.0-{}", "a".repeat(123));
        assert!(validate_version(&long[..128]).is_ok());
        assert!(matches!(
            validate_version(&long),
            Err(LayoutError::Version { source: None, .. })
        ));
    }

    #[test]
    fn the_upstream_mark_and_a_recorded_scan_live_side_by_side_within_their_caps() {
        let path = "crates/a/a/a-1.0.0.crate";
        let mut info = crate::metadata::TargetFile::from_bytes(b"tarball");
        // Another tool's custom field is kept.
        info.unrecognized_fields
            .insert("custom".into(), serde_json::json!({"other": 1}));
        assert!(!tarball_is_upstream(path, &info));
        mark_tarball_upstream(&mut info);
        assert!(tarball_is_upstream(path, &info));
        assert!(
            !tarball_is_upstream("crates/a/a/index", &info),
            "only a .crate is upstream's"
        );
        let scan = RecordedScan {
            score: 45,
            against: Some("0.9.0".into()),
            flags: vec!["x".repeat(MAX_RECORDED_FLAG_BYTES + 10); MAX_RECORDED_FLAGS + 3],
        };
        record_scan(&mut info, &scan);
        assert!(tarball_is_upstream(path, &info), "recording keeps the mark");
        assert_eq!(info.custom().unwrap()["other"], 1);
        let recorded = recorded_scan(&info).unwrap();
        assert_eq!(recorded.score, 45);
        assert_eq!(recorded.flags.len(), MAX_RECORDED_FLAGS);
        assert!(recorded
            .flags
            .iter()
            .all(|f| f.len() == MAX_RECORDED_FLAG_BYTES));
        // A custom that is not an object is replaced; an ill-formed or oversized scan in
        // signed metadata reads as none.
        info.unrecognized_fields
            .insert("custom".into(), serde_json::json!("text"));
        mark_tarball_upstream(&mut info);
        assert!(tarball_is_upstream(path, &info));
        info.unrecognized_fields.insert(
            "custom".into(),
            serde_json::json!({SCAN_FIELD: {"score": "high", "against": null, "flags": []}}),
        );
        assert_eq!(recorded_scan(&info), None);
        let too_many: Vec<String> = vec!["f".into(); MAX_RECORDED_FLAGS + 1];
        info.unrecognized_fields.insert(
            "custom".into(),
            serde_json::json!({SCAN_FIELD: {"score": 1, "against": null, "flags": too_many}}),
        );
        assert_eq!(recorded_scan(&info), None);
        let long = vec!["é".repeat(MAX_RECORDED_FLAG_BYTES)];
        info.unrecognized_fields.insert(
            "custom".into(),
            serde_json::json!({SCAN_FIELD: {"score": 1, "against": null, "flags": long}}),
        );
        assert_eq!(recorded_scan(&info), None);
        // Truncation keeps UTF-8 whole.
        let mut fresh = crate::metadata::TargetFile::from_bytes(b"t");
        record_scan(
            &mut fresh,
            &RecordedScan {
                score: 1,
                against: None,
                // Byte 256 falls inside a two-byte character.
                flags: vec![format!("a{}", "é".repeat(MAX_RECORDED_FLAG_BYTES))],
            },
        );
        let flag = &recorded_scan(&fresh).unwrap().flags[0];
        assert_eq!(flag.len(), MAX_RECORDED_FLAG_BYTES - 1);
        assert!(flag.len() <= MAX_RECORDED_FLAG_BYTES && flag.len() >= MAX_RECORDED_FLAG_BYTES - 1);
    }

    #[test]
    fn a_name_in_an_error_is_quoted_and_bounded() {
        assert_eq!(quoted_bounded("serde", 64), "\"serde\"");
        assert_eq!(quoted_bounded("a\nb", 64), "\"a\\nb\"");
        let long = "x".repeat(5000);
        let error = crate_target_path(&long, "1.0.0").unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "invalid crate name \"{}\"… (5000 characters): longer than 64 characters",
                "x".repeat(64)
            )
        );
        assert_eq!(
            quoted_bounded(&long[..64], 64),
            format!("\"{}\"", &long[..64])
        );
        let version = format!("1.0.0-{}", "y".repeat(300));
        let error = crate_target_path("serde", &version)
            .unwrap_err()
            .to_string();
        assert!(error.len() < 250, "{error}");
        assert!(error.contains("(306 characters)"), "{error}");
    }
}
