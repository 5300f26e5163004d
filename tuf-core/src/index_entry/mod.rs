//! One line of cargo's sparse index: one version of a crate, as cargo reads it.
//!
//! The TUF repository signs a crate's index entries, and the verifier compares the lines
//! upstream serves with the signed ones. Both need one reading of a line, and one normal
//! form that survives what mirrors do to lines (re-serialising them with spaces, in
//! another key order), so this module gives:
//!
//! * [`IndexEntry::parse_line`]: a line read strictly (the workspace's strict JSON, so a
//!   repeated key anywhere is refused, and a size cap), then with cargo's field rules.
//! * [`IndexEntry::normalized`], [`IndexEntry::differing_fields`],
//!   [`IndexEntry::signed_digest`]: the normal form, the comparison, and the digest a
//!   signature over "this release's index entry" covers.
//! * [`IndexEntry::to_canonical_line`]: the normal form as a line cargo accepts.
//! * [`IndexEntry::from_manifest`]: the entry the public registry publishes for a
//!   `.crate`, computed from its normalised `Cargo.toml` and its sha256.
//!
//! # How cargo reads a line
//!
//! From cargo's schema (`IndexPackage` and `RegistryDependency` in the crate
//! cargo-util-schemas, `src/index.rs`) and the code that turns a line into a summary
//! (cargo, `src/cargo/sources/registry/index/mod.rs`: `IndexSummary::parse`,
//! `index_package_to_summary`, `registry_dependency_into_dep`):
//!
//! * Required: `name`, `vers` (a semantic version), `deps`, `cksum`. A missing one, or a
//!   field of the wrong type anywhere, makes the whole line unreadable: cargo keeps only
//!   `name` and `vers` and never offers that version. [`IndexEntry::parse_line`] refuses
//!   such lines, naming the field.
//! * Defaults: `features` `{}`; `yanked` false (also when `null`); `v` 1. In a
//!   dependency: `features` `[]`, `optional` false, `default_features` true, `lib` false;
//!   `target`, `kind`, `registry`, `package`, `public`, `artifact`, `bindep_target` may be
//!   absent or `null`. A `null` where a default applies to a non-optional field
//!   (`"optional": null`) is an error to serde, so to cargo, and so here.
//! * `kind`: `"dev"` and `"build"`; anything else, absence included, is a normal
//!   dependency. This module reads `"normal"`, absence and `null` as
//!   [`DependencyKind::Normal`] and refuses other strings: no registry writes them, and
//!   accepting them would make two different lines one entry.
//! * `rust_version` is cargo's `RustVersion` (one to three numbers, no pre-release);
//!   `pubtime` is `YYYY-MM-DDTHH:MM:SSZ` exactly. Either malformed fails the line.
//! * `features2` is merged into `features` by cargo; `v` above 2 (3 with `-Zbindeps`) makes
//!   cargo skip the version as "unsupported". Fields cargo does not know are ignored; this
//!   module keeps them in `unrecognized_fields` and never compares them.
//!
//! # How the public registry builds a line (what [`IndexEntry::from_manifest`] reproduces)
//!
//! `cargo publish` sends JSON metadata (cargo, `src/cargo/ops/registry/publish.rs`,
//! `prepare_transmit`: a `NewCrate` whose dependencies carry the real crate name in `name`,
//! the name written in `Cargo.toml` in `explicit_name_in_toml`, `version_req` as cargo's
//! `VersionReq` displays it, `kind` `"normal"`/`"build"`/`"dev"`, `target` as cargo's
//! `Platform` displays it, and `registry` only for a dependency from another registry than
//! the one published to) together with the `.crate`, whose `Cargo.toml` `cargo package`
//! normalised (cargo, `src/cargo/util/toml/mod.rs`, `prepare_for_publish`: path and git
//! keys removed, `registry = "name"` turned into `registry-index = "URL"`, dev-dependencies
//! without a version dropped, `[target]` keys kept as written).
//!
//! crates.io (rust-lang/crates.io, read at commit 57fa0006 of August 2026:
//! `src/controllers/krate/publish.rs`, `publish`) has, since October 2023 (commits
//! "publish: Read `features` metadata from embedded `Cargo.toml` file" and "publish: Read
//! dependencies metadata from embedded `Cargo.toml` file"), taken only `name` and `vers`
//! from that JSON, checked them against the tarball's `Cargo.toml`, and read everything
//! else from the `Cargo.toml` (parsed with its `crates_io_cargo_toml` crate):
//!
//! * `convert_dependencies` / `convert_dependency`: `[dependencies]`,
//!   `[dev-dependencies]`, `[build-dependencies]` (also spelled with `_`), and the same
//!   three under each `[target.KEY]`, with `target` the key **as written** and `kind`
//!   normal, dev, build. A table's `package` becomes the crate name and its key the
//!   `explicit_name_in_toml`; `version` (default `*`) is normalised by a
//!   `semver::VersionReq` parse-and-display round trip (`"1.0"` becomes `"^1.0"`);
//!   `optional` defaults to false, `default-features` (or `default_features`) to true,
//!   `features` to `[]`, each as written.
//! * `validate_dependency` refuses a `registry` name (crates.io allows no cross-registry
//!   dependencies; it does not look at `registry-index`), an invalid requirement and `*`;
//!   `add_dependencies` requires the crate name to match an existing crate exactly, so
//!   the index names it as `Cargo.toml` does.
//! * `links` and `rust-version` come from `[package]` (`rust-version` must be digits and
//!   dots); the `[features]` table is stored as written.
//!
//! The index writer (`src/index.rs`, `index_metadata`, with the `crates_io_index` crate:
//! `src/data.rs`, `src/features.rs`, `src/ser.rs`) then writes, per version:
//!
//! * for each dependency `name` = the explicit name in `Cargo.toml` when there is one, with
//!   `package` = the crate name, else `name` = the crate name and no `package`; `req`,
//!   `features`, `optional`, `default_features`, `target` (`null` when none) and `kind`
//!   (always present) as stored. Its `Dependency` has no `registry`, `public`,
//!   `artifact`, `bindep_target` or `lib` field: a crates.io line never has them;
//! * `deps` sorted by (name, kind, req, optional, default_features, target, package,
//!   features), kind ordered normal < build < dev;
//! * `features` split by `split_features`: a feature whose values use `dep:` or `?/` goes
//!   to `features2`, then, repeatedly (at most 100 rounds), every feature naming a feature
//!   already in `features2`; `features2` and `v: 2` only when `features2` is not empty;
//! * `cksum` the sha256 of the uploaded tarball, `yanked`, `links` and `rust_version` only
//!   when set, and `pubtime` (the publication time, whole seconds).
//!
//! Before October 2023 the dependencies and features crates.io stored, and so wrote, were
//! those of cargo's JSON, so old lines carry the spellings of the cargo that published
//! them: cargo before its move to semver 1.0 (2021) displayed requirements as `"= 0.1.9"`
//! and `">= 0.7, < 0.10"`, where a `semver::VersionReq` round trip now gives `"=0.1.9"`
//! and `">=0.7, <0.10"`, and targets as `Platform` displays them (`", "` between items),
//! where the `[target]` key may be spelled otherwise. [`IndexEntry::normalized`] rewrites
//! every requirement the same round trip can parse, and every `cfg(...)` target as cargo's
//! `Platform` displays it, so old and new spellings of one requirement or one platform
//! compare equal. On the fixture corpus (tests/fixtures/crates-io: 51 releases from 2018
//! to 2026) [`IndexEntry::from_manifest`] gives 48 lines exactly, dependency order
//! included, and the other three differ in those spellings only.
//!
//! Lines of releases published before crates.io stored `rust_version` (April 2023) have
//! it too, as in their manifests (`clap` 4.0.0 of September 2022 among the fixtures): it
//! was filled in afterwards. `links` was recorded from early 2018 on (the cargo-util-schemas
//! documentation of `IndexPackage::links`), so an older release's line may lack the
//! `links` of its manifest; no fixture is that old.
//!
//! A dependency of the normalised manifest with a `registry-index` other than crates.io's
//! own index becomes `registry` = that URL, as cargo's `NewCrate` states it (and as a
//! registry that publishes cargo's metadata writes it). crates.io itself never publishes
//! one: cargo refuses to upload such a crate to crates.io, and crates.io's index has no
//! `registry` field.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::json::{self, JsonError};

mod manifest;
mod parse;
mod platform;
#[cfg(test)]
mod tests;

/// The longest line [`IndexEntry::parse_line`] reads, in bytes (1 MiB). The largest lines
/// of the public registry (crates with hundreds of features, such as `web-sys`) are
/// under 64 KiB even with a mirror's added spaces.
pub const MAX_LINE_LEN: usize = 1 << 20;

/// The largest `Cargo.toml` [`IndexEntry::from_manifest`] reads, in bytes (1 MiB, the
/// same cap as [`crate::crate_archive::ArchiveLimits::max_manifest_bytes`]).
pub const MAX_MANIFEST_LEN: usize = 1 << 20;

/// The longest excerpt of an offending value an error quotes, in characters.
const MAX_QUOTED: usize = 80;

/// The path of a crate's file in a sparse index, as cargo computes it from the
/// lowercased name: `1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd…`.
pub fn sparse_index_path(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    format!("{}/{lower}", sparse_index_prefix(&lower))
}

/// The directory part of [`sparse_index_path`], of `name` as given (the `{prefix}` of a
/// registry's download template; lowercase it for `{lowerprefix}`). Crate names are never
/// empty.
pub fn sparse_index_prefix(name: &str) -> String {
    match name.len() {
        1 => "1".into(),
        2 => "2".into(),
        3 => format!("3/{}", name.get(..1).unwrap_or_default()),
        _ => format!(
            "{}/{}",
            name.get(..2).unwrap_or_default(),
            name.get(2..4).unwrap_or_default()
        ),
    }
}

/// The download URL of a crate version from a registry's `dl` template (cargo's rules:
/// the markers `{crate}`, `{version}`, `{prefix}`, `{lowerprefix}`, `{sha256-checksum}`;
/// without any, `/{crate}/{version}/download` is appended).
pub fn download_url(dl: &str, name: &str, version: &str, sha256: &str) -> String {
    const MARKERS: [&str; 5] = [
        "{crate}",
        "{version}",
        "{prefix}",
        "{lowerprefix}",
        "{sha256-checksum}",
    ];
    if !MARKERS.iter().any(|m| dl.contains(m)) {
        return format!("{}/{name}/{version}/download", dl.trim_end_matches('/'));
    }
    dl.replace("{crate}", name)
        .replace("{version}", version)
        .replace("{prefix}", &sparse_index_prefix(name))
        .replace(
            "{lowerprefix}",
            &sparse_index_prefix(&name.to_ascii_lowercase()),
        )
        .replace("{sha256-checksum}", sha256)
}

/// One version of a crate, as cargo reads its index line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The crate name.
    pub name: String,
    /// The version, a semantic version.
    pub vers: String,
    /// Every dependency, of every kind.
    pub deps: Vec<IndexDependency>,
    /// The sha256 of the `.crate`, hex.
    pub cksum: String,
    /// The features, without those in `features2`.
    pub features: BTreeMap<String, Vec<String>>,
    /// The features whose values use `dep:` or `?/` syntax (or name such a feature), kept
    /// apart so that cargo before 1.19 can still read the line. Cargo merges them into
    /// `features`.
    pub features2: Option<BTreeMap<String, Vec<String>>>,
    /// The native library the package links, `package.links`.
    pub links: Option<String>,
    /// The oldest Rust the package supports, `package.rust-version`.
    pub rust_version: Option<String>,
    /// The schema version of the entry (absent means 1; 2 when `features2` is used).
    pub v: Option<u32>,
    /// Whether the version is yanked: the one field that changes after publication.
    pub yanked: bool,
    /// When the version was published, `YYYY-MM-DDTHH:MM:SSZ`.
    pub pubtime: Option<String>,
    /// Fields cargo does not know, kept as they were and never compared.
    pub unrecognized_fields: BTreeMap<String, Value>,
}

/// One dependency in an index line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDependency {
    /// The name the depending crate uses: the crate's own name, or its rename.
    pub name: String,
    /// The version requirement.
    pub req: String,
    /// Features of the dependency switched on.
    pub features: Vec<String>,
    /// Whether the dependency is optional.
    pub optional: bool,
    /// Whether the dependency's default features are on.
    pub default_features: bool,
    /// The platform (`cfg(...)` or a target triple) the dependency is for, if only one.
    pub target: Option<String>,
    /// Normal, build or dev dependency.
    pub kind: DependencyKind,
    /// The index URL of the registry the dependency comes from, when not the same one.
    pub registry: Option<String>,
    /// The crate's real name, when `name` is a rename.
    pub package: Option<String>,
    /// Whether the dependency is public (unstable in cargo).
    pub public: Option<bool>,
    /// The artifacts to build of an artifact dependency (unstable in cargo).
    pub artifact: Option<Vec<String>>,
    /// The target of an artifact dependency (unstable in cargo).
    pub bindep_target: Option<String>,
    /// Whether an artifact dependency is also a library dependency (unstable in cargo).
    pub lib: bool,
    /// Fields cargo does not know, kept as they were and never compared.
    pub unrecognized_fields: BTreeMap<String, Value>,
}

/// The kind of a dependency. Ordered as the public registry sorts them: normal, build,
/// dev.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DependencyKind {
    /// A normal dependency: `"normal"`, or no `kind` at all, as cargo reads it.
    #[default]
    Normal,
    /// A build dependency, `"build"`.
    Build,
    /// A dev dependency, `"dev"`.
    Dev,
}

impl DependencyKind {
    /// The `kind` string of an index line.
    pub fn as_str(self) -> &'static str {
        match self {
            DependencyKind::Normal => "normal",
            DependencyKind::Build => "build",
            DependencyKind::Dev => "dev",
        }
    }
}

/// Why an index line or a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexEntryError {
    /// The line is not strict JSON: a syntax error, a repeated key, a non-integer number,
    /// or more than [`MAX_LINE_LEN`] bytes.
    #[error("index line: {0}")]
    Json(#[from] JsonError),
    /// A required field of the line is missing.
    #[error("index line: `{field}` is required")]
    MissingField {
        /// Where, as `deps[2].req`.
        field: String,
    },
    /// A field of the line has the wrong JSON type (the line itself, when not an object).
    #[error("index line: `{field}` must be {expected}")]
    WrongType {
        /// Where, as `deps[2].optional` (empty for the line itself).
        field: String,
        /// What cargo expects there.
        expected: &'static str,
    },
    /// A field of the line has a value cargo refuses.
    #[error("index line: `{field}` is {value:?}, {problem}")]
    InvalidValue {
        /// Where, as `vers`.
        field: String,
        /// The value (its first 80 characters).
        value: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The manifest is larger than [`MAX_MANIFEST_LEN`].
    #[error("manifest is {len} bytes, over the limit of {max} bytes")]
    ManifestTooLarge {
        /// Size of the manifest.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The manifest is not TOML.
    #[error("manifest is not valid TOML: {message}")]
    ManifestSyntax {
        /// The parser's description (bounded).
        message: String,
    },
    /// A required field of the manifest is missing.
    #[error("manifest: `{field}` is required")]
    ManifestMissingField {
        /// Where, as `package.version`.
        field: String,
    },
    /// A field of the manifest has the wrong type.
    #[error("manifest: `{field}` must be {expected}")]
    ManifestWrongType {
        /// Where, as `dependencies.serde.optional`.
        field: String,
        /// What is expected there.
        expected: &'static str,
    },
    /// A field of the manifest has a value the registry refuses, or one a normalised
    /// manifest never has.
    #[error("manifest: `{field}` is {value:?}, {problem}")]
    ManifestInvalidValue {
        /// Where, as `package.rust-version`.
        field: String,
        /// The value (its first 80 characters).
        value: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// The first [`MAX_QUOTED`] characters of `text`, for an error message.
fn quoted(text: &str) -> String {
    text.chars().take(MAX_QUOTED).collect()
}

/// The top-level fields this module reads; anything else is unrecognized.
const ENTRY_FIELDS: [&str; 11] = [
    "name",
    "vers",
    "deps",
    "cksum",
    "features",
    "features2",
    "links",
    "rust_version",
    "v",
    "yanked",
    "pubtime",
];

/// The dependency fields this module reads; anything else is unrecognized.
const DEPENDENCY_FIELDS: [&str; 13] = [
    "name",
    "req",
    "features",
    "optional",
    "default_features",
    "target",
    "kind",
    "registry",
    "package",
    "public",
    "artifact",
    "bindep_target",
    "lib",
];

impl IndexEntry {
    /// The entry of release `name` `vers` with no dependencies and no features, for the
    /// tarball `tarball`: what a `.crate` whose manifest declares none gets, and what
    /// tests that sign stand-in bytes use.
    pub fn without_dependencies(name: &str, vers: &str, tarball: &[u8]) -> Self {
        use sha2::Digest;
        Self {
            name: name.to_owned(),
            vers: vers.to_owned(),
            deps: Vec::new(),
            cksum: hex::encode(sha2::Sha256::digest(tarball)),
            features: BTreeMap::new(),
            features2: None,
            links: None,
            rust_version: None,
            v: None,
            yanked: false,
            pubtime: None,
            unrecognized_fields: BTreeMap::new(),
        }
    }

    /// Parses one line strictly: the workspace's strict JSON ([`json::parse_strict`]:
    /// duplicate keys anywhere refused, at most [`MAX_LINE_LEN`] bytes), then cargo's
    /// field rules (`deps` required; defaults as cargo applies them; see the module
    /// documentation). The error names the field.
    pub fn parse_line(line: &[u8]) -> Result<Self, IndexEntryError> {
        parse::parse_line(line)
    }

    /// The same entry in the one normal form: deps sorted (by name, kind, target,
    /// package, req, then everything else), every feature list as given, defaults
    /// explicit (`v` 1 when absent, `features2` empty when absent), every version
    /// requirement that `semver` parses written as it displays it (`"= 0.1.9"` becomes
    /// `"=0.1.9"`) and every `cfg(...)` target that parses written as cargo displays it
    /// (`cfg(any(unix,windows))` becomes `cfg(any(unix, windows))`), so that two lines
    /// cargo reads the same way normalise to equal values whatever their key order and
    /// spacing.
    ///
    /// Everything else is kept as written: the order of feature lists (cargo treats a
    /// dependency's features as a set), a `registry` URL, an empty `""` feature of a
    /// dependency (which cargo drops), and `features` apart from `features2` (cargo
    /// merges them). Lines that differ only there are reported as different: the
    /// comparison errs on the side of a difference.
    pub fn normalized(&self) -> Self {
        let mut entry = self.clone();
        for dep in &mut entry.deps {
            dep.req = normalized_req(&dep.req);
            dep.target = dep.target.as_deref().map(platform::normalized_target);
        }
        entry.deps.sort_by_cached_key(|dep| {
            (
                dep.name.clone(),
                dep.kind,
                dep.target.clone(),
                dep.package.clone(),
                dep.req.clone(),
                canonical_bytes(&dep.to_value(true)),
            )
        });
        entry.features2 = Some(entry.features2.unwrap_or_default());
        entry.v = Some(entry.v.unwrap_or(1));
        entry
    }

    /// Canonical JSON bytes (the [`json`] canonical writer: sorted keys, no spaces) of the
    /// normalised entry, including `yanked`, `pubtime` and the unrecognized fields: a line
    /// cargo accepts. Fields that are `None` are left out.
    ///
    /// Two departures from the canonical writer make it a line: control characters in
    /// strings, which it writes raw and JSON forbids (a raw newline would also split the
    /// line), are written as `\u00XX`; and an unrecognized field holding a number that is
    /// not an integer (which [`IndexEntry::parse_line`] never produces) is left out.
    pub fn to_canonical_line(&self) -> Vec<u8> {
        let mut value = self.normalized().to_value(true);
        if let Value::Object(map) = &mut value {
            // The dependencies' fields first: a float in one of them must not take the
            // whole `deps` array with it.
            if let Some(Value::Array(deps)) = map.get_mut("deps") {
                for dep in deps {
                    if let Value::Object(dep) = dep {
                        dep.retain(|_, field| is_canonical(field));
                    }
                }
            }
            map.retain(|_, field| is_canonical(field));
        }
        escape_control_characters(&canonical_bytes(&value))
    }

    /// The sha256 (hex) of the canonical JSON of the normalised entry **without**
    /// `yanked`, `pubtime` and unrecognized fields (of the entry and of its
    /// dependencies): what a signature over "this release's index entry" covers. Two
    /// entries have the same digest exactly when [`IndexEntry::differing_fields`] finds
    /// nothing between them.
    pub fn signed_digest(&self) -> String {
        let bytes = canonical_bytes(&self.comparable().to_value(false));
        hex::encode(Sha256::digest(&bytes))
    }

    /// The top-level fields (by their JSON names: `"deps"`, `"features"`, `"features2"`,
    /// `"links"`, `"rust_version"`, `"cksum"`, `"name"`, `"vers"`, `"v"`, in that order)
    /// whose normalised values differ, ignoring `yanked`, `pubtime` and unrecognized
    /// fields. Empty when cargo would resolve the two alike.
    pub fn differing_fields(&self, other: &IndexEntry) -> Vec<&'static str> {
        let (a, b) = (self.comparable(), other.comparable());
        let mut fields = Vec::new();
        let mut check = |name: &'static str, same: bool| {
            if !same {
                fields.push(name);
            }
        };
        check("deps", a.deps == b.deps);
        check("features", a.features == b.features);
        check("features2", a.features2 == b.features2);
        check("links", a.links == b.links);
        check("rust_version", a.rust_version == b.rust_version);
        check("cksum", a.cksum == b.cksum);
        check("name", a.name == b.name);
        check("vers", a.vers == b.vers);
        check("v", a.v == b.v);
        fields
    }

    /// The entry the public registry publishes for a `.crate` whose normalised
    /// `Cargo.toml` (the one `cargo package` writes into the tarball) is `manifest`, and
    /// whose sha256 (hex) is `cksum`: dependencies, renames, targets, kinds, features
    /// split into `features2` with `v: 2`, `links` and `rust-version`, as the module
    /// documentation describes. `yanked` is false, `pubtime` absent, and the dependencies
    /// are in the registry's order.
    pub fn from_manifest(manifest: &str, cksum: &str) -> Result<Self, IndexEntryError> {
        manifest::from_manifest(manifest, cksum)
    }

    /// The normal form without what is never compared: `yanked`, `pubtime`, and the
    /// unrecognized fields of the entry and of its dependencies.
    fn comparable(&self) -> Self {
        let mut entry = self.clone();
        entry.yanked = false;
        entry.pubtime = None;
        entry.unrecognized_fields.clear();
        for dep in &mut entry.deps {
            dep.unrecognized_fields.clear();
        }
        entry.normalized()
    }

    /// The entry as a JSON object; with `volatile`, also `yanked`, `pubtime` and the
    /// unrecognized fields. `None` fields are left out. An unrecognized field never
    /// overrides, or stands in for, a field this module knows.
    fn to_value(&self, volatile: bool) -> Value {
        let mut map = Map::new();
        if volatile {
            for (key, value) in &self.unrecognized_fields {
                if !ENTRY_FIELDS.contains(&key.as_str()) {
                    map.insert(key.clone(), value.clone());
                }
            }
            map.insert("yanked".into(), Value::Bool(self.yanked));
            insert_some(&mut map, "pubtime", self.pubtime.as_deref().map(string));
        }
        map.insert("name".into(), string(&self.name));
        map.insert("vers".into(), string(&self.vers));
        map.insert(
            "deps".into(),
            Value::Array(self.deps.iter().map(|d| d.to_value(volatile)).collect()),
        );
        map.insert("cksum".into(), string(&self.cksum));
        map.insert("features".into(), features_value(&self.features));
        insert_some(
            &mut map,
            "features2",
            self.features2.as_ref().map(features_value),
        );
        insert_some(&mut map, "links", self.links.as_deref().map(string));
        insert_some(
            &mut map,
            "rust_version",
            self.rust_version.as_deref().map(string),
        );
        insert_some(&mut map, "v", self.v.map(|v| Value::from(u64::from(v))));
        Value::Object(map)
    }
}

impl IndexDependency {
    /// The dependency as a JSON object; with `unrecognized`, also its unrecognized
    /// fields (never overriding, or standing in for, a known one). `None` fields are
    /// left out.
    fn to_value(&self, unrecognized: bool) -> Value {
        let mut map = Map::new();
        if unrecognized {
            for (key, value) in &self.unrecognized_fields {
                if !DEPENDENCY_FIELDS.contains(&key.as_str()) {
                    map.insert(key.clone(), value.clone());
                }
            }
        }
        map.insert("name".into(), string(&self.name));
        map.insert("req".into(), string(&self.req));
        map.insert("features".into(), strings(&self.features));
        map.insert("optional".into(), Value::Bool(self.optional));
        map.insert(
            "default_features".into(),
            Value::Bool(self.default_features),
        );
        insert_some(&mut map, "target", self.target.as_deref().map(string));
        map.insert("kind".into(), string(self.kind.as_str()));
        insert_some(&mut map, "registry", self.registry.as_deref().map(string));
        insert_some(&mut map, "package", self.package.as_deref().map(string));
        insert_some(&mut map, "public", self.public.map(Value::Bool));
        insert_some(&mut map, "artifact", self.artifact.as_deref().map(strings));
        insert_some(
            &mut map,
            "bindep_target",
            self.bindep_target.as_deref().map(string),
        );
        map.insert("lib".into(), Value::Bool(self.lib));
        Value::Object(map)
    }
}

/// `req` as `semver` displays it, when `semver` parses it; else `req` unchanged.
fn normalized_req(req: &str) -> String {
    semver::VersionReq::parse(req)
        .map(|parsed| parsed.to_string())
        .unwrap_or_else(|_| req.to_owned())
}

fn string(text: &str) -> Value {
    Value::String(text.to_owned())
}

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().map(|item| string(item)).collect())
}

fn features_value(features: &BTreeMap<String, Vec<String>>) -> Value {
    Value::Object(
        features
            .iter()
            .map(|(name, values)| (name.clone(), strings(values)))
            .collect(),
    )
}

fn insert_some(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), value);
    }
}

/// True when the canonical writer can write `value`: every number in it is an integer.
fn is_canonical(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_i64() || n.is_u64(),
        Value::Array(items) => items.iter().all(is_canonical),
        Value::Object(map) => map.values().all(is_canonical),
        Value::Null | Value::Bool(_) | Value::String(_) => true,
    }
}

/// The canonical bytes of `value`, which holds only integers: the known fields are
/// strings, booleans and a `u32`, and [`IndexEntry::to_canonical_line`] removes other
/// numbers first. So the canonical writer's only error cannot happen here.
fn canonical_bytes(value: &Value) -> Vec<u8> {
    json::to_canonical(value).unwrap_or_default()
}

/// `bytes` with every control character (U+0000 to U+001F) written as `\u00XX`. In
/// canonical JSON these occur only inside strings, raw; everything else is unchanged.
fn escape_control_characters(bytes: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len());
    for &byte in bytes {
        if byte < 0x20 {
            out.extend_from_slice(b"\\u00");
            out.push(if byte < 0x10 { b'0' } else { b'1' });
            out.push(HEX.get(usize::from(byte & 0x0f)).copied().unwrap_or(b'0'));
        } else {
            out.push(byte);
        }
    }
    out
}
