//! The index entry of every fixture release, computed from its normalised `Cargo.toml` as
//! the public registry computes it, against the line the registry serves for it.
//!
//! The fixtures (tests/fixtures/crates-io, fetched by `fetch.sh` there) are real releases:
//! each directory holds the `Cargo.toml` of the `.crate` and the index line of that
//! version.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::path::{Path, PathBuf};

use tuf_core::index_entry::{DependencyKind, IndexEntry};

/// Releases published before October 2023, whose lines crates.io built from the JSON the
/// publishing cargo sent rather than from `Cargo.toml`, and whose cargo spelled something
/// otherwise than a round trip through today's parsers does. Cargo reads both spellings
/// alike, and the normal form rewrites them (see the module documentation of
/// `tuf_core::index_entry`); only the raw strings differ:
/// * `mio-0.6.20`, `tracing-subscriber-0.1.0`: requirements as cargo's semver 0.9
///   displayed them, `"= 0.1.9"` and `">= 0.7, < 0.10"`, where `Cargo.toml` has
///   `"=0.1.9"` and `">= 0.7, < 0.10"` and crates.io's round trip now writes `"=0.1.9"`
///   and `">=0.7, <0.10"`;
/// * `ring-0.16.20`: a target as cargo's `Platform` displays it, `cfg(any(target_arch =
///   "x86", target_arch = "x86_64", …))`, where the `[target]` key in `Cargo.toml`, which
///   crates.io now writes as it is, lacks the space after the first comma.
const OLD_SPELLINGS: [&str; 3] = ["mio-0.6.20", "ring-0.16.20", "tracing-subscriber-0.1.0"];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crates-io")
}

/// Every fixture: (directory name, manifest, index line).
fn fixtures() -> Vec<(String, String, Vec<u8>)> {
    let mut found: Vec<_> = fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .map(|dir| {
            let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
            let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
            let line = fs::read(dir.join("index-line.json")).unwrap();
            (name, manifest, line)
        })
        .collect();
    found.sort();
    found
}

#[test]
fn every_fixture_manifest_gives_the_registry_line() {
    let fixtures = fixtures();
    assert!(fixtures.len() >= 40, "only {} fixtures", fixtures.len());
    let mut failures = Vec::new();
    for (name, manifest, line) in &fixtures {
        let published = IndexEntry::parse_line(line.trim_ascii_end())
            .unwrap_or_else(|err| panic!("{name}: index line: {err}"));
        let computed = IndexEntry::from_manifest(manifest, &published.cksum)
            .unwrap_or_else(|err| panic!("{name}: Cargo.toml: {err}"));
        let differing = computed.differing_fields(&published);
        if !differing.is_empty() {
            failures.push(format!(
                "{name}: {differing:?} differ\n  from Cargo.toml: {}\n  registry line:   {}",
                String::from_utf8_lossy(&computed.to_canonical_line()),
                String::from_utf8_lossy(&published.to_canonical_line()),
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn from_manifest_reproduces_the_registry_line_exactly() {
    for (name, manifest, line) in &fixtures() {
        let published = IndexEntry::parse_line(line.trim_ascii_end()).unwrap();
        let mut computed = IndexEntry::from_manifest(manifest, &published.cksum).unwrap();
        // The two fields a manifest cannot know.
        computed.yanked = published.yanked;
        computed.pubtime.clone_from(&published.pubtime);
        if OLD_SPELLINGS.contains(&name.as_str()) {
            assert_ne!(computed, published, "{name} is listed in OLD_SPELLINGS");
            // Everything but the spelling of requirements and targets is the same, dependency
            // order included.
            let mut respelled = published.clone();
            for (theirs, ours) in respelled.deps.iter_mut().zip(&computed.deps) {
                assert_eq!(theirs.name, ours.name, "{name}");
                theirs.req.clone_from(&ours.req);
                theirs.target.clone_from(&ours.target);
            }
            assert_eq!(computed, respelled, "{name}");
        } else {
            assert_eq!(
                computed,
                published,
                "{name}:\n  from Cargo.toml: {}\n  registry line:   {}",
                String::from_utf8_lossy(&computed.to_canonical_line()),
                String::from_utf8_lossy(&published.to_canonical_line()),
            );
        }
    }
}

#[test]
fn every_fixture_line_round_trips_and_digests_alike() {
    for (name, manifest, line) in &fixtures() {
        let published = IndexEntry::parse_line(line.trim_ascii_end()).unwrap();
        let canonical = published.to_canonical_line();
        let back = IndexEntry::parse_line(&canonical).unwrap();
        assert_eq!(back, published.normalized(), "{name}");
        assert_eq!(back.to_canonical_line(), canonical, "{name}");
        let computed = IndexEntry::from_manifest(manifest, &published.cksum).unwrap();
        assert_eq!(
            computed.signed_digest(),
            published.signed_digest(),
            "{name}"
        );
    }
}

/// The corpus covers what `from_manifest` must reproduce; checked on the lines
/// themselves, so a refetch that loses a case fails here.
#[test]
fn the_corpus_covers_every_case() {
    let entries: Vec<(String, IndexEntry)> = fixtures()
        .into_iter()
        .map(|(name, _, line)| (name, IndexEntry::parse_line(line.trim_ascii_end()).unwrap()))
        .collect();
    let some_dep = |what: &str, test: &dyn Fn(&tuf_core::index_entry::IndexDependency) -> bool| {
        assert!(
            entries.iter().any(|(_, e)| e.deps.iter().any(test)),
            "no fixture has {what}"
        );
    };
    some_dep("a renamed dependency", &|d| d.package.is_some());
    some_dep("a cfg target", &|d| {
        d.target.as_deref().is_some_and(|t| t.starts_with("cfg("))
    });
    some_dep("a target triple", &|d| {
        d.target.as_deref().is_some_and(|t| !t.starts_with("cfg("))
    });
    some_dep("a build dependency", &|d| d.kind == DependencyKind::Build);
    some_dep("a build dependency under a target", &|d| {
        d.kind == DependencyKind::Build && d.target.is_some()
    });
    some_dep("a dev dependency", &|d| d.kind == DependencyKind::Dev);
    some_dep("a dev dependency under a target", &|d| {
        d.kind == DependencyKind::Dev && d.target.is_some()
    });
    some_dep("an optional dependency", &|d| d.optional);
    some_dep("default-features = false", &|d| !d.default_features);
    some_dep("dependency features", &|d| !d.features.is_empty());

    let some = |what: &str, test: &dyn Fn(&IndexEntry) -> bool| {
        assert!(
            entries.iter().any(|(_, e)| test(e)),
            "no fixture has {what}"
        );
    };
    let values = |e: &IndexEntry| -> Vec<String> {
        e.features
            .values()
            .chain(e.features2.iter().flat_map(|f| f.values()))
            .flatten()
            .cloned()
            .collect()
    };
    some("`dep:` features", &|e| {
        values(e).iter().any(|v| v.starts_with("dep:"))
    });
    some("`?/` features", &|e| {
        values(e).iter().any(|v| v.contains("?/"))
    });
    some("features2 with v 2", &|e| {
        e.features2.is_some() && e.v == Some(2)
    });
    some(
        "a feature in features2 without new syntax (moved for naming one there)",
        &|e| {
            e.features2.as_ref().is_some_and(|f2| {
                f2.values().any(|vs| {
                    vs.iter()
                        .all(|v| !v.starts_with("dep:") && !v.contains("?/"))
                })
            })
        },
    );
    some("links", &|e| e.links.is_some());
    some("rust_version", &|e| e.rust_version.is_some());
    some("more than 50 dependencies", &|e| e.deps.len() > 50);
    some("no dependencies", &|e| e.deps.is_empty());
    some("no `v`", &|e| e.v.is_none());
    some("build metadata in the version", &|e| e.vers.contains('+'));
    let published = |e: &IndexEntry| e.pubtime.clone().unwrap_or_default();
    let before = entries
        .iter()
        .filter(|(_, e)| published(e).as_str() < "2023-10")
        .count();
    let recent = entries
        .iter()
        .filter(|(_, e)| published(e).as_str() >= "2025")
        .count();
    assert!(
        before >= 10,
        "only {before} releases from before October 2023"
    );
    assert!(recent >= 10, "only {recent} releases from 2025 on");
}
