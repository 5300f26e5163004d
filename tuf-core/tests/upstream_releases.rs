//! Releases signed from an upstream registry without their tarballs (a vetted mirror:
//! `Repository::add_upstream_releases`), and saves of several staged roles as one step
//! (`Repository::save`'s journal), finished or undone when the repository is opened
//! after a crash.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chrono::{DateTime, TimeZone, Utc};
use tuf_core::index_entry::IndexEntry;
use tuf_core::repository::{
    audit_repository, AuditOptions, DirectorySource, InitOptions, Repository, RepositoryError,
    RoleKeySpec, Settings, UpstreamRelease,
};
use tuf_core::{KeyAlgorithm, PrivateKey, Signer};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap()
}

struct Keys {
    root: PrivateKey,
    targets: PrivateKey,
    online: PrivateKey,
}

fn spec(key: &PrivateKey) -> RoleKeySpec {
    RoleKeySpec {
        keys: vec![key.public_key().clone()],
        threshold: 1,
    }
}

/// A published repository with 16 bins.
fn published(dir: &std::path::Path) -> (Repository, Keys) {
    let keys = Keys {
        root: PrivateKey::generate(KeyAlgorithm::Ed25519),
        targets: PrivateKey::generate(KeyAlgorithm::Ed25519),
        online: PrivateKey::generate(KeyAlgorithm::Ed25519),
    };
    let options = InitOptions {
        root: spec(&keys.root),
        targets: spec(&keys.targets),
        snapshot: spec(&keys.online),
        timestamp: spec(&keys.online),
        fallback: spec(&keys.online),
        settings: Settings {
            fallback_bin_bits: 4,
            ..Settings::default()
        },
    };
    let mut repo = Repository::init(dir, &options, now()).unwrap();
    repo.sign("root", &keys.root).unwrap();
    repo.sign("targets", &keys.targets).unwrap();
    repo.publish(&[&keys.online], now(), &()).unwrap();
    (repo, keys)
}

/// A tarball's stand-in bytes and an index entry whose cksum is their sha256.
fn release(name: &str, version: &str) -> (Vec<u8>, IndexEntry) {
    let tarball = format!("the tarball of {name} {version}").into_bytes();
    (tarball.clone(), entry(name, version, &tarball))
}

fn entry(name: &str, version: &str, tarball: &[u8]) -> IndexEntry {
    let cksum = tuf_core::hash::sha256_hashes(tarball)
        .remove("sha256")
        .unwrap();
    let line = format!(
        r#"{{"name":"{name}","vers":"{version}","deps":[],"cksum":"{cksum}","features":{{}},"yanked":true}}"#
    );
    IndexEntry::parse_line(line.as_bytes()).unwrap()
}

fn upstream(name: &str, version: &str) -> UpstreamRelease {
    let (tarball, entry) = release(name, version);
    UpstreamRelease::new(name, version, &tarball, entry)
}

fn audit(dir: &std::path::Path) -> tuf_core::repository::AuditReport {
    audit_listing(dir, true)
}

/// An audit with the targets directory, listing the upstream releases or only counting
/// them.
fn audit_listing(dir: &std::path::Path, list: bool) -> tuf_core::repository::AuditReport {
    let metadata = dir.join("published/metadata");
    let root = std::fs::read(metadata.join("1.root.json")).unwrap();
    let mut options = AuditOptions::new(now());
    options.targets_dir = Some(dir.join("published/targets"));
    options.list_upstream_releases = list;
    audit_repository(&DirectorySource::new(metadata), &root, &options, &())
}

fn files_ending(dir: &std::path::Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                files_ending(&path, suffix)
            } else {
                usize::from(path.to_string_lossy().ends_with(suffix))
            }
        })
        .sum()
}

#[test]
fn upstream_releases_are_published_without_tarballs_and_audited_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let (mut repo, keys) = published(dir.path());
    let (tarball, _) = release("other", "1.0.0");
    let mut wrong = upstream("wrong", "1.0.0");
    wrong.entry = entry("wrong", "1.0.0", b"another tarball");
    let outcomes = repo
        .add_upstream_releases(
            vec![
                upstream("alpha", "1.0.0"),
                wrong,
                upstream("alpha", "1.1.0"),
                upstream("beta", "0.1.0"),
            ],
            now(),
        )
        .unwrap();
    assert_eq!(outcomes.len(), 4);
    assert!(outcomes[0].as_ref().is_ok_and(|a| !a.unchanged));
    assert!(
        matches!(
            &outcomes[1],
            Err(RepositoryError::IndexEntryNotForRelease { name, .. }) if name == "wrong"
        ),
        "{:?}",
        outcomes[1]
    );
    assert!(outcomes[2].is_ok() && outcomes[3].is_ok());
    repo.save().unwrap();
    drop(repo);

    // Reopened: the releases are staged with their entries; the refused one is not.
    let mut repo = Repository::open(dir.path()).unwrap();
    assert!(repo.release_is_listed("alpha", "1.1.0").unwrap());
    assert!(repo.release_is_listed("beta", "0.1.0").unwrap());
    assert!(!repo.release_is_listed("wrong", "1.0.0").unwrap());
    let (index, _) = repo.crate_index("alpha").unwrap();
    assert_eq!(index.lines.len(), 2);
    assert!(
        index.lines.iter().all(|l| !l.entry.yanked),
        "the owners' yank mark starts unset"
    );

    // The same release again changes nothing; another tarball for it is refused.
    let again = repo
        .add_upstream_releases(vec![upstream("alpha", "1.0.0")], now())
        .unwrap();
    assert!(again[0].as_ref().is_ok_and(|a| a.unchanged));
    let conflict = UpstreamRelease::new(
        "alpha",
        "1.0.0",
        &tarball,
        entry("alpha", "1.0.0", &tarball),
    );
    let refused = repo.add_upstream_releases(vec![conflict], now()).unwrap();
    assert!(
        matches!(refused[0], Err(RepositoryError::ReleaseConflict { .. })),
        "{:?}",
        refused[0]
    );

    // Published: no tarball moves (there is none), the audit knows they stay upstream.
    repo.publish(&[&keys.online], now(), &()).unwrap();
    assert_eq!(
        files_ending(&dir.path().join("published/targets"), ".crate"),
        0
    );
    assert_eq!(
        files_ending(&dir.path().join("published/targets"), ".index"),
        2
    );
    // Only counted, unless asked for.
    let counted = audit_listing(dir.path(), false);
    assert!(counted.is_ok(), "{:?}", counted.problems);
    assert_eq!(
        (counted.releases_upstream, counted.upstream_releases.len()),
        (3, 0)
    );
    let report = audit(dir.path());
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.releases_upstream, 3);
    assert_eq!(report.target_files_checked, 2, "the two signed index files");
    let mut names: Vec<_> = report
        .upstream_releases
        .iter()
        .map(|u| u.release.clone().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("alpha".to_owned(), "1.0.0".to_owned()),
            ("alpha".to_owned(), "1.1.0".to_owned()),
            ("beta".to_owned(), "0.1.0".to_owned())
        ]
    );
    let alpha = report
        .upstream_releases
        .iter()
        .find(|u| u.path == "crates/alpha/alpha/alpha-1.0.0.crate")
        .unwrap();
    assert!(tuf_core::layout::tarball_is_upstream(
        &alpha.path,
        &alpha.info
    ));
    assert!(alpha.info.hashes.contains_key("sha512"));

    // A release added with its tarball is not marked, and its tarball is required.
    let (bytes, entry) = release("gamma", "1.0.0");
    repo.add_release("gamma", "1.0.0", &bytes, entry, now())
        .unwrap();
    let staged_tarballs = files_ending(&dir.path().join("staged/targets"), ".crate");
    assert_eq!(staged_tarballs, 1);
}

/// The staged documents of `dir`, by file name, with their bytes.
fn staged_files(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir.join("staged"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_save_of_several_roles_is_finished_after_its_commit_and_undone_before() {
    let dir = tempfile::tempdir().unwrap();
    let (mut repo, _keys) = published(dir.path());
    let releases: Vec<UpstreamRelease> = (0..12)
        .map(|i| upstream(&format!("crate{i}"), "1.0.0"))
        .collect();
    repo.add_upstream_releases(releases, now()).unwrap();
    repo.save().unwrap();
    drop(repo);
    let saved = staged_files(dir.path());
    assert!(
        saved.len() > 3,
        "the releases span several bins: {:?}",
        saved.keys()
    );
    let journal = dir.path().join("staged/.saving");
    assert!(!journal.exists(), "a finished save leaves no journal");

    // A crash after the commit file, before the documents moved: finished on open.
    std::fs::create_dir(&journal).unwrap();
    let mut commit = String::new();
    for (name, bytes) in &saved {
        std::fs::write(journal.join(name), bytes).unwrap();
        std::fs::remove_file(dir.path().join("staged").join(name)).unwrap();
        commit.push_str(&format!("write {name}\n"));
    }
    // One of them had already moved when the crash came.
    let (moved, bytes) = saved.iter().next().unwrap();
    std::fs::rename(journal.join(moved), dir.path().join("staged").join(moved)).unwrap();
    assert_eq!(
        &std::fs::read(dir.path().join("staged").join(moved)).unwrap(),
        bytes
    );
    std::fs::write(journal.join("COMMIT"), &commit).unwrap();
    let mut repo = Repository::open(dir.path()).unwrap();
    assert!(!journal.exists());
    assert_eq!(staged_files(dir.path()), saved);
    assert!(repo.release_is_listed("crate11", "1.0.0").unwrap());
    drop(repo);

    // A crash before the commit file: the new documents are dropped, the old stay.
    std::fs::create_dir(&journal).unwrap();
    for name in saved.keys() {
        std::fs::write(journal.join(name), b"{ half written").unwrap();
    }
    let repo = Repository::open(dir.path()).unwrap();
    assert!(!journal.exists());
    assert_eq!(staged_files(dir.path()), saved);
    drop(repo);

    // A journal that is not this editor's is refused, naming it, and left alone.
    std::fs::create_dir(&journal).unwrap();
    std::fs::write(journal.join("COMMIT"), "write ../../escape.json\n").unwrap();
    let error = Repository::open(dir.path()).unwrap_err();
    assert!(
        matches!(error, RepositoryError::SaveJournal { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("remove staged/.saving"),
        "{error}"
    );
    assert!(journal.join("COMMIT").exists());
}
