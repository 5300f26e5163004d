//! What a key holder is shown before signing, who may sign, and what the audit and
//! publish report: each rule here survived mutation testing (scripts/mutants) until these
//! tests, because the ceremony tests only checked that signing and publishing succeed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::RefCell;

use chrono::{DateTime, Duration, TimeZone, Utc};
use tuf_core::repository::{
    audit_repository, AuditOptions, Change, DirectorySource, InitOptions, MetadataSource, Problem,
    Progress, Repository, RoleKeySpec, Settings, Severity, SourceError,
};
use tuf_core::{KeyAlgorithm, PrivateKey, Signer};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

struct Keys {
    root: [PrivateKey; 2],
    targets: PrivateKey,
    online: PrivateKey,
}

fn spec(keys: &[&PrivateKey], threshold: u64) -> RoleKeySpec {
    RoleKeySpec {
        keys: keys.iter().map(|k| k.public_key().clone()).collect(),
        threshold,
    }
}

fn key() -> PrivateKey {
    PrivateKey::generate(KeyAlgorithm::Ed25519)
}

/// A published repository: root 1 of 2, 2 fallback bins.
fn published(dir: &std::path::Path) -> (Repository, Keys) {
    let keys = Keys {
        root: [key(), key()],
        targets: key(),
        online: key(),
    };
    let options = InitOptions {
        root: spec(&[&keys.root[0], &keys.root[1]], 1),
        targets: spec(&[&keys.targets], 1),
        snapshot: spec(&[&keys.online], 1),
        timestamp: spec(&[&keys.online], 1),
        fallback: spec(&[&keys.online], 1),
        settings: Settings {
            fallback_bin_bits: 1,
            ..Settings::default()
        },
    };
    let mut repo = Repository::init(dir, &options, now()).unwrap();
    repo.sign("root", &keys.root[0]).unwrap();
    repo.sign("targets", &keys.targets).unwrap();
    repo.publish(&[&keys.online], now(), &()).unwrap();
    (repo, keys)
}

fn text(changes: &[Change]) -> Vec<String> {
    changes.iter().map(ToString::to_string).collect()
}

#[test]
fn a_new_role_shows_every_field_as_added() {
    let dir = tempfile::tempdir().unwrap();
    let (mut repo, _keys) = published(dir.path());
    let owner = key();
    repo.delegate_namespace("serde", &spec(&[&owner], 1), now())
        .unwrap();
    let shown = text(&repo.diff("ns-serde").unwrap());
    assert!(
        shown.iter().all(|line| line.starts_with("+ signed.")),
        "{shown:#?}"
    );
    assert!(
        shown.contains(&"+ signed.version: 1".to_owned()),
        "{shown:#?}"
    );
    assert!(
        shown.contains(&"+ signed.targets: {}".to_owned()),
        "{shown:#?}"
    );
}

#[test]
fn an_edit_shows_what_changed_was_added_and_was_removed_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (mut repo, keys) = published(dir.path());
    let extra = key();
    repo.add_key("targets", extra.public_key(), now()).unwrap();
    repo.set_threshold("targets", 2, now()).unwrap();
    repo.remove_key("snapshot", keys.online.keyid(), now())
        .unwrap_err();
    let shown = text(&repo.diff("root").unwrap());
    let extra_id = extra.keyid().as_str();
    let expected_changed = "~ signed.roles.targets.threshold: 1 -> 2";
    assert!(shown.contains(&expected_changed.to_owned()), "{shown:#?}");
    assert!(
        shown.iter().any(|l| l.starts_with(&format!(
            "+ signed.keys.{extra_id}: {{\"keytype\":\"ed25519\""
        ))),
        "{shown:#?}"
    );
    // The keyids list grew: a whole-array change, not one element.
    assert!(
        shown
            .iter()
            .any(|l| l.starts_with("~ signed.roles.targets.keyids: [")),
        "{shown:#?}"
    );
    assert!(
        shown
            .iter()
            .any(|l| l.starts_with("~ signed.version: 1 -> 2")),
        "{shown:#?}"
    );
    // Nothing that did not change is shown.
    assert!(
        !shown.iter().any(|l| l.contains("signed.roles.snapshot")),
        "{shown:#?}"
    );
    assert!(
        !shown.iter().any(|l| l.contains("signed.spec_version")),
        "{shown:#?}"
    );

    // Removing the key again: an array of the same length compares element by element.
    repo.discard().unwrap();
    let other = key();
    repo.add_key("targets", other.public_key(), now()).unwrap();
    repo.remove_key("targets", keys.targets.keyid(), now())
        .unwrap();
    let shown = text(&repo.diff("root").unwrap());
    assert!(
        shown
            .iter()
            .any(|l| l.starts_with("~ signed.roles.targets.keyids[0]: ")),
        "{shown:#?}"
    );
    assert!(
        shown.iter().any(|l| l.starts_with(&format!(
            "- signed.keys.{}: ",
            keys.targets.keyid().as_str()
        ))),
        "{shown:#?}"
    );
}

#[test]
fn long_values_are_cut_to_a_thousand_characters() {
    let dir = tempfile::tempdir().unwrap();
    let (mut repo, _keys) = published(dir.path());
    // Many keys at once: the root's keys object is long.
    for _ in 0..20 {
        repo.add_key("targets", key().public_key(), now()).unwrap();
    }
    let changes = repo.diff("root").unwrap();
    let keyids = changes
        .iter()
        .find_map(|c| match c {
            Change::Changed { path, new, .. } if path == "signed.roles.targets.keyids" => {
                Some(new.clone())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(keyids.chars().count(), 1000, "{keyids}");
    assert!(keyids.ends_with("..."), "{keyids}");
    let short = changes
        .iter()
        .find_map(|c| match c {
            Change::Changed { path, new, .. } if path == "signed.version" => Some(new.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(short, "2");
}

#[test]
fn only_authorised_keys_may_sign_and_a_new_root_also_by_the_old_root_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (mut repo, keys) = published(dir.path());
    assert!(!repo.can_sign("targets", keys.online.keyid()));
    // A root rotation to a new key: the new key and the old root keys may sign it.
    let new_root = key();
    repo.add_key("root", new_root.public_key(), now()).unwrap();
    repo.remove_key("root", keys.root[0].keyid(), now())
        .unwrap();
    repo.remove_key("root", keys.root[1].keyid(), now())
        .unwrap();
    assert!(repo.can_sign("root", new_root.keyid()));
    assert!(repo.can_sign("root", keys.root[0].keyid()));
    assert!(!repo.can_sign("root", keys.targets.keyid()));
    assert!(repo.sign("root", &keys.targets).is_err());
    // discard names what it dropped.
    assert_eq!(repo.discard().unwrap(), ["root"]);
    assert!(repo.discard().unwrap().is_empty());
}

/// Records what publish reports as its progress.
#[derive(Default)]
struct Recorded(RefCell<Vec<u64>>);

impl Progress for Recorded {
    fn set_length(&self, length: u64) {
        self.0.borrow_mut().push(length);
    }
    fn advance(&self, _steps: u64) {}
}

#[test]
fn refresh_renews_a_snapshot_that_is_due_though_no_role_is_staged() {
    let dir = tempfile::tempdir().unwrap();
    let (mut repo, keys) = published(dir.path());
    let before = repo.status(now(), 0).unwrap();
    let snapshot_before = before
        .roles
        .iter()
        .find(|r| r.role == "snapshot")
        .and_then(|r| r.published_version)
        .unwrap();
    // Six days on: the snapshot (7 days) is due, bins (90 days) are not.
    let later = now() + Duration::days(6);
    let recorded = Recorded::default();
    let report = repo
        .refresh(&[&keys.online as &dyn Signer], later, None, &recorded)
        .unwrap()
        .unwrap();
    assert_eq!(report.snapshot_version, snapshot_before + 1);
    // Files to write: the new snapshot and timestamp, no tarball to move.
    assert_eq!(*recorded.0.borrow(), [2]);
}

#[test]
fn audit_problems_read_as_level_role_target_message_and_errors_leave_out_warnings() {
    let problem = Problem {
        severity: Severity::Error,
        role: Some("ns-serde".into()),
        target: Some("crates/serde/serde/serde-1.0.0.crate".into()),
        message: "tarball missing".into(),
    };
    assert_eq!(
        problem.to_string(),
        "error: ns-serde: crates/serde/serde/serde-1.0.0.crate: tarball missing"
    );
    let warning = Problem {
        severity: Severity::Warning,
        role: None,
        target: None,
        message: "m".into(),
    };
    assert_eq!(warning.to_string(), "warning: m");
    let report = tuf_core::repository::AuditReport {
        problems: vec![warning.clone(), problem.clone(), warning.clone()],
        ..Default::default()
    };
    assert!(!report.is_ok());
    assert_eq!(report.errors(), [problem.to_string()]);
    assert_eq!(report.into_errors(), std::slice::from_ref(&problem));

    // A published repository with a tarball removed: one error per missing tarball, and
    // the counts of what was checked.
    let dir = tempfile::tempdir().unwrap();
    let (mut repo, keys) = published(dir.path());
    let tarball = tuf_crates_tarball();
    repo.add_release(
        "demo",
        "1.0.0",
        &tarball,
        tuf_core::index_entry::IndexEntry::without_dependencies("demo", "1.0.0", &tarball),
        now(),
    )
    .unwrap();
    repo.publish(&[&keys.online as &dyn Signer], now(), &())
        .unwrap();
    let published = dir.path().join("published");
    let root = std::fs::read(published.join("metadata/1.root.json")).unwrap();
    let mut options = AuditOptions::new(now());
    options.targets_dir = Some(published.join("targets"));
    let source = DirectorySource::new(published.join("metadata"));
    let report = audit_repository(&source, &root, &options, &());
    assert!(report.is_ok(), "{:?}", report.errors());
    // The release and the crate's signed index file.
    assert_eq!(report.targets_checked, 2);
    assert_eq!(report.target_files_checked, 2);
    for entry in walk(&published.join("targets")) {
        if entry.extension().is_some_and(|e| e == "crate") {
            std::fs::remove_file(entry).unwrap();
        }
    }
    let report = audit_repository(&source, &root, &options, &());
    let errors = report.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with("error: unclaimed-"), "{errors:#?}");
    assert!(
        errors[0].contains("crates/demo/demo/demo-1.0.0.crate"),
        "{errors:#?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn tuf_crates_tarball() -> Vec<u8> {
    b"not really a crate, but the editor signs bytes".to_vec()
}

#[test]
fn a_directory_source_reads_plain_file_names_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("timestamp.json"), b"{}").unwrap();
    std::fs::write(dir.path().join(".hidden.json"), b"{}").unwrap();
    let source = DirectorySource::new(dir.path());
    assert_eq!(
        source.read("timestamp.json", 10).unwrap(),
        Some(b"{}".to_vec())
    );
    assert_eq!(source.read("snapshot.json", 10).unwrap(), None);
    for bad in [
        "",
        ".hidden.json",
        "../timestamp.json",
        "a/b.json",
        "a\\b.json",
    ] {
        assert!(
            matches!(source.read(bad, 10), Err(SourceError::BadName { .. })),
            "{bad}"
        );
    }
    assert!(matches!(
        source.read("timestamp.json", 1),
        Err(SourceError::TooLong { max: 1, .. })
    ));
}
