//! The repository editor end to end in one process: init, multi-party signing,
//! namespaces and fallback bins, publish, refresh, root rotation, and verification as a
//! client sees the result.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use tuf_core::client::{DirectoryFetcher, Updater, UpdaterConfig};
use tuf_core::layout::crate_target_path;
use tuf_core::repository::{
    audit_repository, AuditOptions, DirectorySource, InitOptions, PublishedRole, Repository,
    RepositoryError, RequiredKeys, RoleKeySpec, Settings,
};
use tuf_core::{KeyAlgorithm, PrivateKey, Signer};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

struct Keys {
    root: Vec<PrivateKey>,
    targets: PrivateKey,
    online: PrivateKey,
}

fn spec(keys: &[&PrivateKey], threshold: u64) -> RoleKeySpec {
    RoleKeySpec {
        keys: keys.iter().map(|k| k.public_key().clone()).collect(),
        threshold,
    }
}

fn keys() -> Keys {
    Keys {
        root: (0..3)
            .map(|_| PrivateKey::generate(KeyAlgorithm::Ed25519))
            .collect(),
        targets: PrivateKey::generate(KeyAlgorithm::EcdsaP256),
        online: PrivateKey::generate(KeyAlgorithm::Ed25519),
    }
}

fn init(dir: &std::path::Path, keys: &Keys, bits: u32) -> Repository {
    init_with_bins_key(dir, keys, bits, &keys.online)
}

/// A new repository whose fallback bins `bins_key` signs (snapshot and timestamp: the
/// online key).
fn init_with_bins_key(
    dir: &std::path::Path,
    keys: &Keys,
    bits: u32,
    bins_key: &PrivateKey,
) -> Repository {
    let root: Vec<&PrivateKey> = keys.root.iter().collect();
    let options = InitOptions {
        root: spec(&root, 2),
        targets: spec(&[&keys.targets], 1),
        snapshot: spec(&[&keys.online], 1),
        timestamp: spec(&[&keys.online], 1),
        fallback: spec(&[bins_key], 1),
        settings: Settings {
            fallback_bin_bits: bits,
            ..Settings::default()
        },
    };
    Repository::init(dir, &options, now()).unwrap()
}

fn audit(repo_dir: &std::path::Path, at: DateTime<Utc>) -> tuf_core::repository::AuditReport {
    let mut options = AuditOptions::new(at);
    options.targets_dir = Some(repo_dir.join("published/targets"));
    audit_with(repo_dir, &options)
}

/// Audits the published repository from its first root with `options`.
fn audit_with(
    repo_dir: &std::path::Path,
    options: &AuditOptions,
) -> tuf_core::repository::AuditReport {
    let metadata = repo_dir.join("published/metadata");
    let root = std::fs::read(metadata.join("1.root.json")).unwrap();
    audit_repository(&DirectorySource::new(metadata), &root, options, &())
}

fn first_publish(dir: &std::path::Path, keys: &Keys) -> Repository {
    let mut repo = init(dir, keys, 4);
    assert!(matches!(
        repo.publish(&[&keys.online], now(), &()),
        Err(RepositoryError::NotSigned(_))
    ));
    repo.sign("root", &keys.root[0]).unwrap();
    let outcome = repo.sign("root", &keys.root[2]).unwrap();
    assert!(outcome.report.threshold_met());
    repo.sign("targets", &keys.targets).unwrap();
    repo.publish(&[&keys.online], now(), &()).unwrap();
    repo
}

/// A first publish, then the namespace `tokio` delegated to a new owner (staged).
fn published_with_tokio_delegated(dir: &std::path::Path) -> (Keys, Repository, PrivateKey) {
    let keys = keys();
    let mut repo = first_publish(dir, &keys);
    let owner = PrivateKey::generate(KeyAlgorithm::Ed25519);
    repo.delegate_namespace("tokio", &spec(&[&owner], 1), now())
        .unwrap();
    (keys, repo, owner)
}

#[test]
fn a_new_repository_needs_its_offline_signatures_then_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let repo = first_publish(dir.path(), &keys);
    assert!(repo.staged_roles().is_empty());
    let report = audit(dir.path(), now());
    assert!(report.is_ok(), "{:?}", report.problems);
    // targets, unclaimed and 16 bins.
    assert_eq!(report.roles_verified, 18);
    assert_eq!(report.root_version, Some(1));
}

#[test]
fn a_key_not_authorised_for_a_role_cannot_sign_it() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let mut repo = init(dir.path(), &keys, 2);
    let err = repo.sign("root", &keys.targets).unwrap_err();
    assert!(
        matches!(err, RepositoryError::KeyNotAuthorized { .. }),
        "{err}"
    );
    let stranger = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let err = repo.sign("targets", &stranger).unwrap_err();
    assert!(
        matches!(&err, RepositoryError::KeyNotAuthorized { role, keyid }
            if role == "targets" && keyid == stranger.keyid().as_str()),
        "{err}"
    );
}

#[test]
fn namespaces_and_bins_resolve_for_a_client() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let mut repo = first_publish(dir.path(), &keys);
    // An unclaimed crate goes to a bin, signed online at publish.
    let added = repo
        .add_release(
            "serde",
            "1.0.0",
            b"serde 1.0.0 tarball",
            tuf_core::index_entry::IndexEntry::without_dependencies(
                "serde",
                "1.0.0",
                b"serde 1.0.0 tarball",
            ),
            now(),
        )
        .unwrap();
    assert!(added.role.starts_with("unclaimed-"), "{}", added.role);
    repo.publish(&[&keys.online], now(), &()).unwrap();

    // serde's owners claim the namespace: the existing release moves into their role.
    let owner = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let edit = repo
        .delegate_namespace("serde", &spec(&[&owner], 1), now())
        .unwrap();
    assert_eq!(edit.role, "ns-serde");
    assert_eq!(
        edit.releases_moved,
        vec![
            tuf_core::layout::crate_index_path("serde").unwrap(),
            crate_target_path("serde", "1.0.0").unwrap()
        ]
    );
    let added = repo
        .add_release(
            "serde::derive",
            "1.0.0",
            b"derive",
            tuf_core::index_entry::IndexEntry::without_dependencies(
                "serde::derive",
                "1.0.0",
                b"derive",
            ),
            now(),
        )
        .unwrap();
    assert_eq!(added.role, "ns-serde");
    let added = repo
        .add_release(
            "serde_json",
            "1.0.0",
            b"json",
            tuf_core::index_entry::IndexEntry::without_dependencies("serde_json", "1.0.0", b"json"),
            now(),
        )
        .unwrap();
    assert!(added.role.starts_with("unclaimed-"));
    // Owners and targets keys have not signed yet.
    let err = repo.publish(&[&keys.online], now(), &()).unwrap_err();
    let RepositoryError::NotSigned(missing) = err else {
        panic!("{err}")
    };
    let roles: Vec<(&str, RequiredKeys)> =
        missing.iter().map(|m| (m.role.as_str(), m.keys)).collect();
    assert_eq!(
        roles,
        [
            ("ns-serde", RequiredKeys::Role),
            ("targets", RequiredKeys::Role)
        ],
        "{missing:?}"
    );
    let targets = &missing[1].report;
    assert_eq!((targets.valid.len(), targets.threshold), (0, 1));
    assert_eq!(targets.missing, [keys.targets.keyid().clone()]);
    repo.sign("targets", &keys.targets).unwrap();
    repo.sign("ns-serde", &owner).unwrap();
    let published = repo.publish(&[&keys.online], now(), &()).unwrap();
    assert_eq!(published.releases_published, 2);
    let report = audit(dir.path(), now());
    assert!(report.is_ok(), "{:?}", report.problems);
    // Three releases and the index files of their three crates.
    assert_eq!(report.target_files_checked, 6);

    // A client resolves each through the right role and downloads it.
    let client = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.path().join("published/metadata/1.root.json"),
        client.path().join("root.json"),
    )
    .unwrap();
    let published_dir = std::fs::canonicalize(dir.path().join("published")).unwrap();
    let fetcher = DirectoryFetcher::new(&published_dir);
    let mut config = UpdaterConfig::new(client.path(), fetcher.base_url("metadata"));
    config.targets_url = Some(fetcher.base_url("targets"));
    let mut updater = Updater::new(config, fetcher, now()).unwrap();
    for (name, body) in [
        ("serde", &b"serde 1.0.0 tarball"[..]),
        ("serde::derive", b"derive"),
        ("serde_json", b"json"),
    ] {
        let path = crate_target_path(name, "1.0.0").unwrap();
        let info = updater.get_target_info(&path).unwrap().expect(name);
        let file = updater
            .download_target(&info, &path, client.path(), None)
            .unwrap();
        assert_eq!(std::fs::read(file).unwrap(), body);
    }
}

#[test]
fn an_edit_after_signing_drops_the_signatures_and_a_stale_detached_signature_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, mut repo, _owner) = published_with_tokio_delegated(dir.path());
    let detached = repo.detached_signature("targets", &keys.targets).unwrap();
    repo.sign("targets", &keys.targets).unwrap();
    let second = PrivateKey::generate(KeyAlgorithm::Ed25519);
    repo.delegate_namespace("rand", &spec(&[&second], 1), now())
        .unwrap();
    assert!(repo.dropped_signatures().any(|r| r == "targets"));
    let err = repo.import_signature(&detached).unwrap_err();
    assert!(
        matches!(err, RepositoryError::SignatureMismatch { .. }),
        "{err}"
    );
    // A fresh detached signature imports, and a tampered one is refused.
    let mut fresh = repo.detached_signature("targets", &keys.targets).unwrap();
    let mut tampered = fresh.clone();
    tampered.signature.sig = format!("00{}", &fresh.signature.sig[2..]);
    assert!(matches!(
        repo.import_signature(&tampered),
        Err(RepositoryError::BadSignature { .. })
    ));
    fresh.signature.unrecognized_fields.clear();
    let outcome = repo.import_signature(&fresh).unwrap();
    assert!(outcome.report.threshold_met());
}

#[test]
fn root_rotation_needs_both_thresholds_and_clients_follow_it() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let mut repo = first_publish(dir.path(), &keys);
    let new_keys: Vec<PrivateKey> = (0..3)
        .map(|_| PrivateKey::generate(KeyAlgorithm::Ed25519))
        .collect();
    let new_refs: Vec<&PrivateKey> = new_keys.iter().collect();
    repo.rotate_root(&spec(&new_refs, 2), now()).unwrap();
    // Only the new keys: the old root's threshold is missing.
    repo.sign("root", &new_keys[0]).unwrap();
    repo.sign("root", &new_keys[1]).unwrap();
    let err = repo.publish(&[&keys.online], now(), &()).unwrap_err();
    assert!(err.to_string().contains("previous root"), "{err}");
    repo.sign("root", &keys.root[1]).unwrap();
    repo.sign("root", &keys.root[2]).unwrap();
    let report = repo.publish(&[&keys.online], now(), &()).unwrap();
    assert_eq!(report.root_version, 2);
    let verified = audit(dir.path(), now());
    assert!(verified.is_ok(), "{:?}", verified.problems);
    assert_eq!(verified.root_version, Some(2));
    // An audit follows the chain as far as a client's limit lets it: one rotation is
    // already too many for a client allowed one.
    let mut options = AuditOptions::new(now());
    options.limits.max_root_rotations = 1;
    let limited = audit_with(dir.path(), &options);
    assert_eq!(
        limited.errors(),
        ["error: root: more than 1 root versions to follow"]
    );
    options.limits.max_root_rotations = 2;
    let report = audit_with(dir.path(), &options);
    assert!(report.is_ok(), "{:?}", report.problems);
    // The old keys can no longer change root on their own.
    repo.set_threshold("root", 1, now()).unwrap();
    repo.sign("root", &keys.root[0]).unwrap_err();
}

#[test]
fn refresh_renews_the_online_roles_before_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let mut repo = first_publish(dir.path(), &keys);
    // Nothing due yet.
    assert!(repo
        .refresh(&[&keys.online], now(), None, &())
        .unwrap()
        .is_none());
    // 20 hours later the 1-day timestamp is due, the 7-day snapshot not.
    let later = now() + Duration::hours(20);
    let report = repo
        .refresh(&[&keys.online], later, None, &())
        .unwrap()
        .unwrap();
    assert_eq!(report.timestamp_version, 2);
    assert_eq!(report.snapshot_version, 1);
    // 80 days later everything online is due.
    let much_later = now() + Duration::days(80);
    let report = repo
        .refresh(&[&keys.online], much_later, None, &())
        .unwrap()
        .unwrap();
    assert_eq!(report.snapshot_version, 2);
    assert!(report.roles.contains(&PublishedRole {
        role: "unclaimed".into(),
        version: 2
    }));
    let verified = audit(dir.path(), much_later);
    assert!(verified.is_ok(), "{:?}", verified.problems);
    // Without refresh a client refuses the repository once timestamp expires.
    let expired = audit(dir.path(), much_later + Duration::days(2));
    assert!(!expired.is_ok());
}

#[test]
fn publish_refuses_what_a_client_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let mut repo = first_publish(dir.path(), &keys);
    repo.add_release(
        "anyhow",
        "1.0.0",
        b"anyhow",
        tuf_core::index_entry::IndexEntry::without_dependencies("anyhow", "1.0.0", b"anyhow"),
        now(),
    )
    .unwrap();
    // Publishing without the snapshot/timestamp key is refused before anything is written.
    let stranger = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let err = repo.publish(&[&stranger], now(), &()).unwrap_err();
    let RepositoryError::NotSigned(missing) = &err else {
        panic!("{err}")
    };
    // The bins listing the release and its crate's index file need the online key, which
    // was not given.
    assert!(!missing.is_empty() && missing.len() <= 2, "{err}");
    for bin in missing {
        assert!(bin.role.starts_with("unclaimed-"), "{err}");
        assert_eq!(bin.keys, RequiredKeys::Online);
        assert_eq!(bin.report.missing, [keys.online.keyid().clone()]);
    }
    assert!(
        err.to_string()
            .contains("give its key with the online keys"),
        "{err}"
    );
    assert_eq!(audit(dir.path(), now()).timestamp_version, Some(1));
    // A staged tarball that went missing is refused too.
    let staged_targets = dir.path().join("staged/targets");
    std::fs::remove_dir_all(&staged_targets).unwrap();
    let err = repo.publish(&[&keys.online], now(), &()).unwrap_err();
    let RepositoryError::WouldNotVerify(problems) = &err else {
        panic!("{err}")
    };
    // The release and its crate's index file, both staged and both gone.
    let targets: Vec<_> = problems.iter().map(|p| p.target.clone().unwrap()).collect();
    assert_eq!(
        targets,
        [
            crate_target_path("anyhow", "1.0.0").unwrap(),
            tuf_core::layout::crate_index_path("anyhow").unwrap()
        ],
        "{err}"
    );
    for problem in problems {
        assert!(problem
            .role
            .as_deref()
            .is_some_and(|r| r.starts_with("unclaimed-")));
        assert!(problem.message.contains("add the release again"), "{err}");
    }
    assert_eq!(audit(dir.path(), now()).timestamp_version, Some(1));
}

#[test]
fn status_reports_signatures_and_what_expires_soon() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let mut repo = init(dir.path(), &keys, 1);
    repo.sign("root", &keys.root[0]).unwrap();
    let status = repo.status(now(), 3600).unwrap();
    let root = status.roles.iter().find(|r| r.role == "root").unwrap();
    assert_eq!(root.staged_version, Some(1));
    let report = root.signatures.as_ref().unwrap();
    assert_eq!((report.valid.len(), report.threshold), (1, 2));
    assert_eq!(report.missing.len(), 2);
    assert!(!root.ready);
    let signatures = repo.signatures_of("root").unwrap();
    assert_eq!(&signatures.report, report);
    // A first root has no previous root to satisfy.
    assert_eq!(signatures.previous_root, None);
    assert!(!signatures.threshold_met());
    repo.sign("root", &keys.root[1]).unwrap();
    repo.sign("targets", &keys.targets).unwrap();
    repo.publish(&[&keys.online], now(), &()).unwrap();
    // 23 hours later, within 2 hours: only the 1-day timestamp is due.
    let status = repo.status(now() + Duration::hours(23), 2 * 3600).unwrap();
    let soon: Vec<&str> = status
        .roles
        .iter()
        .filter(|r| r.expires_soon)
        .map(|r| r.role.as_str())
        .collect();
    assert_eq!(soon, ["timestamp"]);
    // Online roles are flagged only once a refresh is overdue (half their period left):
    // a fresh 7-day snapshot is not, four days later it is.
    let status = repo.status(now(), 8 * 24 * 3600).unwrap();
    assert!(!status
        .roles
        .iter()
        .any(|r| r.role == "snapshot" && r.expires_soon));
    let status = repo
        .status(now() + Duration::days(4), 8 * 24 * 3600)
        .unwrap();
    assert!(status
        .roles
        .iter()
        .any(|r| r.role == "snapshot" && r.expires_soon));
    assert!(!status
        .roles
        .iter()
        .any(|r| r.role == "root" && r.expires_soon));
    // Offline roles within the window asked about.
    let status = repo
        .status(now() + Duration::days(340), 30 * 24 * 3600)
        .unwrap();
    assert!(status
        .roles
        .iter()
        .any(|r| r.role == "root" && r.expires_soon));
    assert!(status
        .roles
        .iter()
        .any(|r| r.role == "targets" && r.expires_soon));
}

#[test]
fn undelegating_a_namespace_moves_its_releases_back_to_the_bins() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let mut repo = first_publish(dir.path(), &keys);
    let owner = PrivateKey::generate(KeyAlgorithm::Ed25519);
    repo.delegate_namespace("rand", &spec(&[&owner], 1), now())
        .unwrap();
    repo.add_release(
        "rand",
        "0.8.5",
        b"rand",
        tuf_core::index_entry::IndexEntry::without_dependencies("rand", "0.8.5", b"rand"),
        now(),
    )
    .unwrap();
    repo.sign("targets", &keys.targets).unwrap();
    repo.sign("ns-rand", &owner).unwrap();
    repo.publish(&[&keys.online], now(), &()).unwrap();
    assert!(matches!(
        repo.delegate_namespace("rand", &spec(&[&owner], 1), now()),
        Err(RepositoryError::NamespaceClaimed(_))
    ));
    let edit = repo.undelegate_namespace("rand", now()).unwrap();
    assert_eq!(
        edit.releases_moved,
        vec![
            tuf_core::layout::crate_index_path("rand").unwrap(),
            crate_target_path("rand", "0.8.5").unwrap()
        ]
    );
    repo.sign("targets", &keys.targets).unwrap();
    repo.publish(&[&keys.online], now(), &()).unwrap();
    let report = audit(dir.path(), now());
    assert!(report.is_ok(), "{:?}", report.problems);
    // The old namespace role stays in snapshot (clients refuse a snapshot dropping a role).
    assert!(report
        .problems
        .iter()
        .any(|p| p.role.as_deref() == Some("ns-rand")));
    // The release and its crate's index file.
    assert_eq!(report.target_files_checked, 2);
    assert!(matches!(
        repo.undelegate_namespace("rand", now()),
        Err(RepositoryError::NamespaceNotDelegated(_))
    ));
}

#[test]
fn refresh_publishes_staged_bin_releases_in_a_new_snapshot_and_leaves_offline_changes_staged() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let mut repo = first_publish(dir.path(), &keys);
    repo.add_release(
        "lost",
        "1.0.0",
        b"lost",
        tuf_core::index_entry::IndexEntry::without_dependencies("lost", "1.0.0", b"lost"),
        now(),
    )
    .unwrap();
    // An offline change is staged too: a new key for the fallback role, in targets.
    let new_online = PrivateKey::generate(KeyAlgorithm::Ed25519);
    repo.add_key("unclaimed", new_online.public_key(), now())
        .unwrap();
    repo.save().unwrap();
    let report = repo
        .refresh(&[&keys.online], now(), Some(3600), &())
        .unwrap()
        .unwrap();
    assert_eq!(report.snapshot_version, 2);
    assert!(repo.staged_roles().contains(&"targets".to_owned()));
    let verified = audit(dir.path(), now());
    assert!(verified.is_ok(), "{:?}", verified.problems);
    assert_eq!(
        verified.target_files_checked, 2,
        "the staged release and its crate's index file were published"
    );
    // A refresh with only the timestamp due still works with the published keys.
    let later = now() + Duration::hours(20);
    let report = repo
        .refresh(&[&keys.online], later, None, &())
        .unwrap()
        .unwrap();
    assert_eq!((report.timestamp_version, report.snapshot_version), (3, 2));
}

#[test]
fn changing_a_roles_keys_stages_the_role_for_its_new_key_holders() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, mut repo, owner) = published_with_tokio_delegated(dir.path());
    repo.add_release(
        "tokio",
        "1.0.0",
        b"tokio",
        tuf_core::index_entry::IndexEntry::without_dependencies("tokio", "1.0.0", b"tokio"),
        now(),
    )
    .unwrap();
    repo.sign("targets", &keys.targets).unwrap();
    repo.sign("ns-tokio", &owner).unwrap();
    repo.publish(&[&keys.online], now(), &()).unwrap();
    // The namespace changes hands: its role must be signed by the new owner.
    let new_owner = PrivateKey::generate(KeyAlgorithm::Ed25519);
    repo.add_key("ns-tokio", new_owner.public_key(), now())
        .unwrap();
    assert!(
        !repo.staged_roles().contains(&"ns-tokio".to_owned()),
        "still signed by a threshold of its keys: nothing to re-sign"
    );
    repo.remove_key("ns-tokio", owner.keyid(), now()).unwrap();
    assert!(repo.staged_roles().contains(&"ns-tokio".to_owned()));
    repo.sign("targets", &keys.targets).unwrap();
    let err = repo.sign("ns-tokio", &owner).unwrap_err();
    assert!(
        matches!(&err, RepositoryError::KeyNotAuthorized { role, .. } if role == "ns-tokio"),
        "{err}"
    );
    repo.sign("ns-tokio", &new_owner).unwrap();
    repo.publish(&[&keys.online], now(), &()).unwrap();
    // The targets key is replaced in root: targets is staged for the new key.
    let new_targets = PrivateKey::generate(KeyAlgorithm::Ed25519);
    repo.add_key("targets", new_targets.public_key(), now())
        .unwrap();
    repo.remove_key("targets", keys.targets.keyid(), now())
        .unwrap();
    assert!(repo.staged_roles().contains(&"targets".to_owned()));
    repo.sign("root", &keys.root[0]).unwrap();
    repo.sign("root", &keys.root[1]).unwrap();
    repo.sign("targets", &new_targets).unwrap();
    // The bins' key is replaced: every bin is staged, and publish signs them.
    let new_online = PrivateKey::generate(KeyAlgorithm::Ed25519);
    repo.add_key("unclaimed-*", new_online.public_key(), now())
        .unwrap();
    repo.remove_key("unclaimed-*", keys.online.keyid(), now())
        .unwrap();
    assert!(repo.staged_roles().contains(&"unclaimed-0".to_owned()));
    repo.publish(&[&keys.online, &new_online], now(), &())
        .unwrap();
    let verified = audit(dir.path(), now());
    assert!(verified.is_ok(), "{:?}", verified.problems);
}

#[test]
fn hand_edited_expiry_periods_are_checked_on_open_and_never_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let repo = first_publish(dir.path(), &keys);
    drop(repo);
    let settings_path = dir.path().join("repository.json");
    let original = std::fs::read_to_string(&settings_path).unwrap();
    let mut settings: serde_json::Value = serde_json::from_str(&original).unwrap();
    for (value, field) in [
        (serde_json::json!(0), "expiry.snapshot"),
        (serde_json::json!(u64::MAX), "expiry.snapshot"),
    ] {
        settings["expiry"]["snapshot"] = value;
        std::fs::write(&settings_path, settings.to_string()).unwrap();
        match Repository::open(dir.path()) {
            Err(RepositoryError::Settings { message, .. }) => {
                assert!(message.contains(field), "{message}")
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
    // The longest period accepted publishes a date that still has a four-digit year.
    settings["expiry"]["snapshot"] = serde_json::json!(1000u64 * 365 * 24 * 3600);
    std::fs::write(&settings_path, settings.to_string()).unwrap();
    let mut repo = Repository::open(dir.path()).unwrap();
    let report = repo
        .refresh(&[&keys.online], now(), Some(10 * 365 * 24 * 3600), &())
        .unwrap()
        .unwrap();
    assert!(report.snapshot_version >= 2);
    assert!(audit(dir.path(), now()).is_ok());
}

#[test]
fn a_partial_audit_reads_changed_bins_and_every_bin_of_a_changed_delegator() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    first_publish(dir.path(), &keys);
    let published = dir.path().join("published");
    let metadata = published.join("metadata");
    // Damage one published hash bin: its bytes no longer match the snapshot.
    let mut bins: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(&metadata)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            let role = name.strip_suffix(".json")?.split_once('.')?.1.to_owned();
            role.starts_with("unclaimed-").then_some((role, path))
        })
        .collect();
    bins.sort();
    assert_eq!(bins.len(), 16, "{bins:?}");
    let (damaged, damaged_path) = bins[3].clone();
    let (untouched, _) = bins[4].clone();
    let mut bytes = std::fs::read(&damaged_path).unwrap();
    bytes.extend_from_slice(b" ");
    std::fs::write(&damaged_path, bytes).unwrap();

    let audit_changed = |changed: Option<&[&str]>| {
        let mut options = AuditOptions::new(now());
        options.changed_roles =
            changed.map(|roles| roles.iter().map(|r| (*r).to_owned()).collect());
        audit_with(dir.path(), &options)
    };
    let names_damaged = |report: &tuf_core::repository::AuditReport| {
        !report.is_ok()
            && report
                .problems
                .iter()
                .all(|p| p.role.as_deref() == Some(damaged.as_str()))
    };
    // A whole audit, a partial one naming the bin, and one naming its delegator (the
    // succinct `unclaimed`) all read the bin and find it damaged.
    for changed in [
        None,
        Some(&[damaged.as_str()][..]),
        Some(&["unclaimed"][..]),
    ] {
        let report = audit_changed(changed);
        assert!(names_damaged(&report), "{changed:?}: {:?}", report.problems);
    }
    // A partial audit of another bin, under an unchanged delegator, does not re-read the
    // bins that did not change (they were audited when published).
    let report = audit_changed(Some(&[untouched.as_str()]));
    assert!(report.is_ok(), "{:?}", report.problems);
}

fn assert_verifies(repo_dir: &std::path::Path) {
    let report = audit(repo_dir, now());
    assert!(report.is_ok(), "{:?}", report.problems);
}

/// The generation directories under `published/.generations`, and the one
/// `published/metadata` names.
fn generations(repo_dir: &std::path::Path) -> (Vec<u64>, std::path::PathBuf) {
    let mut found: Vec<u64> = std::fs::read_dir(repo_dir.join("published/.generations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    found.sort_unstable();
    let link = std::fs::read_link(repo_dir.join("published/metadata")).unwrap();
    (found, link)
}

fn add_one_release(repo: &mut Repository, name: &str, at: DateTime<Utc>) {
    let body = format!("{name} 1.0.0 tarball");
    repo.add_release(
        name,
        "1.0.0",
        body.as_bytes(),
        tuf_core::index_entry::IndexEntry::without_dependencies(name, "1.0.0", body.as_bytes()),
        at,
    )
    .unwrap();
    repo.save().unwrap();
}

/// A client starting from the first root: the release's body, or None if the published
/// metadata does not list it.
fn client_download(repo_dir: &std::path::Path, name: &str, at: DateTime<Utc>) -> Option<Vec<u8>> {
    let client = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo_dir.join("published/metadata/1.root.json"),
        client.path().join("root.json"),
    )
    .unwrap();
    let published_dir = std::fs::canonicalize(repo_dir.join("published")).unwrap();
    let fetcher = DirectoryFetcher::new(&published_dir);
    let mut config = UpdaterConfig::new(client.path(), fetcher.base_url("metadata"));
    config.targets_url = Some(fetcher.base_url("targets"));
    let mut updater = Updater::new(config, fetcher, at).unwrap();
    let path = crate_target_path(name, "1.0.0").unwrap();
    let info = updater.get_target_info(&path).unwrap()?;
    let file = updater
        .download_target(&info, &path, client.path(), None)
        .unwrap();
    Some(std::fs::read(file).unwrap())
}

#[test]
fn a_publish_without_a_root_adds_to_its_generation_and_a_root_rotation_makes_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    // The first publish carries root: generation 1.
    let mut repo = first_publish(dir.path(), &keys);
    assert_eq!(generations(dir.path()), (vec![1], ".generations/1".into()));

    // Releases: files added to generation 1, which stays the one clients read.
    for (n, name) in ["serde", "rand"].into_iter().enumerate() {
        add_one_release(&mut repo, name, now());
        let report = repo.publish(&[&keys.online], now(), &()).unwrap();
        assert!(!report.new_generation);
        assert_eq!(report.timestamp_version, n as u64 + 2);
        assert_eq!(generations(dir.path()), (vec![1], ".generations/1".into()));
        // What the report says was written is what the roles' files hold: the bins of the
        // tarball and of the index file, the snapshot and the timestamp.
        let metadata = dir.path().join("published/metadata");
        let on_disk: u64 = report
            .roles
            .iter()
            .map(|r| {
                let name = if r.role == "timestamp" {
                    "timestamp.json".to_owned()
                } else {
                    format!("{}.{}.json", r.version, r.role)
                };
                std::fs::metadata(metadata.join(name)).unwrap().len()
            })
            .sum();
        assert!(report.roles.iter().any(|r| r.role == "snapshot"));
        assert_eq!(
            (report.files_written, report.bytes_written),
            (report.roles.len(), on_disk)
        );
        let body = client_download(dir.path(), name, now()).expect(name);
        assert_eq!(body, format!("{name} 1.0.0 tarball").into_bytes());
    }
    assert_verifies(dir.path());

    // A root rotation gets a new generation with every file of the old one; the one
    // before stays for clients still reading it, and the next rotation drops generation 1.
    let mut signing_root: Vec<&PrivateKey> = vec![&keys.root[0], &keys.root[2]];
    let rotations: Vec<PrivateKey> = (0..2)
        .map(|_| PrivateKey::generate(KeyAlgorithm::Ed25519))
        .collect();
    for (new_key, expected) in rotations.iter().zip([vec![1, 4], vec![4, 5]]) {
        repo.rotate_root(&spec(&[new_key], 1), now()).unwrap();
        repo.sign("root", new_key).unwrap();
        for key in &signing_root {
            repo.sign("root", *key).unwrap();
        }
        let report = repo.publish(&[&keys.online], now(), &()).unwrap();
        assert!(report.new_generation);
        let newest = *expected.last().unwrap();
        assert_eq!(report.timestamp_version, newest);
        assert_eq!(
            generations(dir.path()),
            (expected, format!(".generations/{newest}").into())
        );
        // The releases published in place before came along.
        assert_eq!(
            client_download(dir.path(), "rand", now()).unwrap(),
            b"rand 1.0.0 tarball"
        );
        signing_root = vec![new_key];
    }
}

#[test]
fn a_publish_cut_off_before_its_timestamp_leaves_the_old_one_in_force_and_the_next_completes() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let mut repo = first_publish(dir.path(), &keys);
    add_one_release(&mut repo, "serde", now());
    drop(repo);
    // A copy of the repository as it stands before the publish, staged release and all.
    let crashed = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", dir.path().display()))
        .arg(crashed.path())
        .status()
        .unwrap();
    assert!(status.success());

    // The publish runs in the original. The copy gets every file it wrote but
    // timestamp.json, as a crash just before the timestamp's rename leaves them; each
    // with other bytes, as when the staged roles change again before the next publish.
    let mut repo = Repository::open(dir.path()).unwrap();
    let report = repo.publish(&[&keys.online], now(), &()).unwrap();
    assert!(!report.new_generation);
    let written: Vec<String> = report
        .roles
        .iter()
        .filter(|r| r.role != "timestamp")
        .map(|r| format!("{}.{}.json", r.version, r.role))
        .collect();
    // The bins of the tarball and of the index file, and the snapshot.
    assert_eq!(written.len(), 3, "{written:?}");
    for name in &written {
        assert!(dir.path().join("published/metadata").join(name).exists());
        std::fs::write(
            crashed.path().join("published/metadata").join(name),
            b"left over",
        )
        .unwrap();
    }
    // Clients still see the old publish, complete.
    let old = audit(crashed.path(), now());
    assert!(old.is_ok(), "{:?}", old.problems);
    assert_eq!(client_download(crashed.path(), "serde", now()), None);

    // Publishing again writes the same versions over the leftovers and completes.
    let later = now() + Duration::hours(1);
    let mut repo = Repository::open(crashed.path()).unwrap();
    let again = repo.publish(&[&keys.online], later, &()).unwrap();
    assert_eq!(again.roles, report.roles);
    for name in &written {
        let now_there =
            std::fs::read(crashed.path().join("published/metadata").join(name)).unwrap();
        assert!(now_there != b"left over", "{name} was not written again");
    }
    // The bins written over leftovers are listed with their hashes, though the online
    // key signs them: a cache may still hold the leftover bytes of the same version.
    let hashed = snapshot_hashes(crashed.path());
    let rewritten: Vec<&str> = again
        .roles
        .iter()
        .map(|r| r.role.as_str())
        .filter(|r| r.starts_with("unclaimed-"))
        .collect();
    assert_eq!(rewritten.len(), 2, "{rewritten:?}");
    for (role, has_hashes) in &hashed {
        assert_eq!(
            *has_hashes,
            rewritten.contains(&role.as_str()) || role == "targets",
            "{role}"
        );
    }
    let new = audit(crashed.path(), later);
    assert!(new.is_ok(), "{:?}", new.problems);
    assert_eq!(
        client_download(crashed.path(), "serde", later).unwrap(),
        b"serde 1.0.0 tarball"
    );
}

/// The published snapshot's entries: role → whether it carries hashes (all carry a
/// length).
fn snapshot_hashes(repo_dir: &std::path::Path) -> std::collections::BTreeMap<String, bool> {
    use tuf_core::metadata::{Metadata, Snapshot, Timestamp};
    let metadata = repo_dir.join("published/metadata");
    let timestamp =
        Metadata::<Timestamp>::from_bytes(&std::fs::read(metadata.join("timestamp.json")).unwrap())
            .unwrap();
    let version = timestamp.signed().snapshot_meta().unwrap().version;
    let snapshot = Metadata::<Snapshot>::from_bytes(
        &std::fs::read(metadata.join(format!("{version}.snapshot.json"))).unwrap(),
    )
    .unwrap();
    snapshot
        .signed()
        .meta
        .iter()
        .map(|(name, meta)| {
            assert!(meta.length.is_some(), "{name} has no length");
            (
                name.trim_end_matches(".json").to_owned(),
                meta.hashes.is_some(),
            )
        })
        .collect()
}

#[test]
fn snapshot_leaves_out_hashes_only_of_roles_whose_signers_could_sign_snapshot_and_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, mut repo, owner) = published_with_tokio_delegated(dir.path());
    repo.sign("targets", &keys.targets).unwrap();
    repo.sign("ns-tokio", &owner).unwrap();
    repo.publish(&[&keys.online], now(), &()).unwrap();
    // The online key signs snapshot, timestamp, unclaimed and its bins: no hashes for
    // those. targets and the namespace are signed offline: hashes.
    let hashed = snapshot_hashes(dir.path());
    assert_eq!(hashed.len(), 19, "{hashed:?}");
    for (role, has_hashes) in &hashed {
        let offline = role == "targets" || role == "ns-tokio";
        assert_eq!(*has_hashes, offline, "{role}");
    }
    // snapshot gets a key of its own: the bins' signer can no longer sign it, so every
    // entry gets its hashes, the unchanged bins' read from their files.
    let snapshot_key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    repo.add_key("snapshot", snapshot_key.public_key(), now())
        .unwrap();
    repo.remove_key("snapshot", keys.online.keyid(), now())
        .unwrap();
    repo.sign("root", &keys.root[0]).unwrap();
    repo.sign("root", &keys.root[1]).unwrap();
    repo.publish(&[&keys.online, &snapshot_key], now(), &())
        .unwrap();
    let hashed = snapshot_hashes(dir.path());
    assert!(hashed.values().all(|h| *h), "{hashed:?}");
    assert_verifies(dir.path());
}

#[test]
fn bins_signed_by_a_key_that_cannot_sign_snapshot_keep_their_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let bins_key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let mut repo = init_with_bins_key(dir.path(), &keys, 2, &bins_key);
    repo.sign("root", &keys.root[0]).unwrap();
    repo.sign("root", &keys.root[1]).unwrap();
    repo.sign("targets", &keys.targets).unwrap();
    repo.publish(&[&keys.online, &bins_key], now(), &())
        .unwrap();
    let hashed = snapshot_hashes(dir.path());
    assert_eq!(hashed.len(), 6, "{hashed:?}");
    assert!(hashed.values().all(|h| *h), "{hashed:?}");
}

/// A client's trusted set over a published repository, up to snapshot.
fn trusted_up_to_snapshot(repo_dir: &std::path::Path) -> tuf_core::client::TrustedMetadataSet {
    use tuf_core::client::{Limits, TrustedMetadataSet};
    let metadata = repo_dir.join("published/metadata");
    let read = |name: &str| std::fs::read(metadata.join(name)).unwrap();
    let limits = Limits::default();
    let mut trusted = TrustedMetadataSet::new(&read("1.root.json"), now(), &limits).unwrap();
    let timestamp = trusted
        .update_timestamp(&read("timestamp.json"), &limits)
        .unwrap();
    let version = timestamp.signed().snapshot_meta().unwrap().version;
    trusted
        .update_snapshot(&read(&format!("{version}.snapshot.json")), false, &limits)
        .unwrap();
    trusted
}

/// Two repositories published the same way, with keys of their own: the same versions
/// and layout, other signatures.
fn two_repositories_of_other_keys() -> (tempfile::TempDir, tempfile::TempDir) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    first_publish(a.path(), &keys());
    first_publish(b.path(), &keys());
    (a, b)
}

#[test]
fn a_role_verified_against_one_trusted_set_is_refused_by_another() {
    let (a, b) = two_repositories_of_other_keys();
    let limits = tuf_core::client::Limits::default();
    let targets_a = std::fs::read(a.path().join("published/metadata/1.targets.json")).unwrap();
    let mut trusted_a = trusted_up_to_snapshot(a.path());
    let mut trusted_b = trusted_up_to_snapshot(b.path());
    // Both are targets version 1 under snapshot version 1, signed by other keys.
    let verified = trusted_a
        .verify_delegated_targets(&targets_a, "targets", "root", &limits)
        .unwrap();
    assert_eq!(verified.role(), "targets");
    let err = trusted_b.trust_verified_targets(verified).unwrap_err();
    assert!(
        matches!(err, tuf_core::client::TrustError::Order(_)),
        "{err}"
    );
    assert!(trusted_b.targets("targets").is_none());
    // Into the set it was checked against, it is trusted.
    let verified = trusted_a
        .verify_delegated_targets(&targets_a, "targets", "root", &limits)
        .unwrap();
    trusted_a.trust_verified_targets(verified).unwrap();
    assert!(trusted_a.targets_via("targets", "root").is_some());
}

#[test]
fn a_bin_verified_under_other_delegator_keys_is_refused_even_with_the_same_snapshot_entry() {
    let (a, b) = two_repositories_of_other_keys();
    let limits = tuf_core::client::Limits::default();
    let read = |dir: &std::path::Path, name: &str| {
        std::fs::read(dir.join("published/metadata").join(name)).unwrap()
    };
    let mut sets = Vec::new();
    for dir in [a.path(), b.path()] {
        let mut trusted = trusted_up_to_snapshot(dir);
        trusted
            .update_delegated_targets(&read(dir, "1.targets.json"), "targets", "root", &limits)
            .unwrap();
        trusted
            .update_delegated_targets(
                &read(dir, "1.unclaimed.json"),
                "unclaimed",
                "targets",
                &limits,
            )
            .unwrap();
        sets.push(trusted);
    }
    // The bins' snapshot entries are version and length only, and the same in both.
    let entry = |i: usize| {
        sets[i]
            .snapshot()
            .unwrap()
            .signed()
            .role_meta("unclaimed-0")
            .cloned()
    };
    assert_eq!(entry(0), entry(1));
    assert!(entry(0).unwrap().hashes.is_none());
    let bin = read(a.path(), "1.unclaimed-0.json");
    let verified = sets[0]
        .verify_delegated_targets(&bin, "unclaimed-0", "unclaimed", &limits)
        .unwrap();
    let err = sets[1].trust_verified_targets(verified).unwrap_err();
    assert!(
        matches!(err, tuf_core::client::TrustError::Order(_)),
        "{err}"
    );
}
