//! The client workflow end to end over a local repository: what tuf-conformance does not
//! cover (consistent_snapshot=false, succinct hash bins, a 10,000-namespace delegation
//! tree fetched lazily), and each attack of the specification's list (§1.5.2) by name.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use tuf_core::client::{FetchError, TrustError, UpdateError, Updater, UpdaterConfig};
use tuf_core::metadata::{
    DelegatedRole, Delegations, MetaFile, Metadata, Role, RoleKeys, Snapshot, SuccinctRoles,
    Targets, Timestamp,
};
use tuf_core::signer::{KeyAlgorithm, PrivateKey, Signer};
use tuf_core::verify::VerificationError;

use support::{in_days, now, trust_error, CountingFetcher, Repo};

#[test]
fn refresh_download_and_cache_with_consistent_snapshots() {
    let mut repo = Repo::new(true);
    repo.add_target(
        "targets",
        "crates/se/rd/serde-1.0.0.crate",
        b"serde tarball",
    );
    repo.publish();
    let client = repo.client();
    let fetcher = repo.fetcher();
    let mut updater = client.updater(&repo, &fetcher, now());
    updater.refresh().unwrap();
    assert_eq!(
        fetcher.names(),
        [
            "2.root.json",
            "timestamp.json",
            "3.snapshot.json",
            "2.targets.json"
        ]
    );
    // Exactly the verified bytes, unversioned names, nothing else.
    let mut files: Vec<String> = std::fs::read_dir(client.metadata())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "root.json",
            "snapshot.json",
            "targets.json",
            "timestamp.json"
        ]
    );
    assert_eq!(
        client.stored("targets").unwrap(),
        std::fs::read(repo.metadata_dir().join("2.targets.json")).unwrap()
    );

    let path = "crates/se/rd/serde-1.0.0.crate";
    let info = updater.get_target_info(path).unwrap().expect("listed");
    assert!(updater
        .find_cached_target(&info, path, &client.targets())
        .is_none());
    let stored = updater
        .download_target(&info, path, &client.targets(), None)
        .unwrap();
    assert_eq!(std::fs::read(&stored).unwrap(), b"serde tarball");
    assert!(stored.starts_with(client.targets()));
    assert_eq!(
        updater.find_cached_target(&info, path, &client.targets()),
        Some(stored.clone())
    );
    // A cached copy that no longer matches is not reused.
    std::fs::write(&stored, b"tampered").unwrap();
    assert!(updater
        .find_cached_target(&info, path, &client.targets())
        .is_none());
    assert!(updater
        .get_target_info("crates/absent.crate")
        .unwrap()
        .is_none());
}

#[test]
fn consistent_snapshot_off_uses_unversioned_names() {
    let mut repo = Repo::new(false);
    repo.add_target("targets", "a/file.txt", b"content");
    repo.publish();
    let client = repo.client();
    let fetcher = repo.fetcher();
    let mut updater = client.updater(&repo, &fetcher, now());
    let info = updater.get_target_info("a/file.txt").unwrap().unwrap();
    updater
        .download_target(&info, "a/file.txt", &client.targets(), None)
        .unwrap();
    let names = fetcher.names();
    assert_eq!(
        names,
        [
            "2.root.json",
            "timestamp.json",
            "snapshot.json",
            "targets.json",
            "file.txt"
        ]
    );
}

#[test]
fn succinct_hash_bins_fetch_only_the_bin_holding_the_path() {
    let mut repo = Repo::new(true);
    let bins_key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let succinct = SuccinctRoles::new(vec![bins_key.keyid().clone()], 1, 6, "bin");
    let path = "crates/ra/nd/rand-0.8.5.crate";
    let bin = succinct.role_for_target(path);
    {
        let (targets, _) = repo.roles.get_mut("targets").unwrap();
        targets.signed_mut().delegations = Some(Delegations {
            keys: [(bins_key.keyid().clone(), bins_key.public_key().clone())].into(),
            roles: None,
            succinct_roles: Some(succinct.clone()),
            unrecognized_fields: BTreeMap::new(),
        });
    }
    repo.keys.insert("bins".into(), bins_key);
    for name in succinct.role_names() {
        repo.roles.insert(
            name,
            (Metadata::new(Targets::new(in_days(30))), "bins".into()),
        );
    }
    repo.add_target(&bin, path, b"rand");
    repo.publish();
    let client = repo.client();
    let fetcher = repo.fetcher();
    let mut updater = client.updater(&repo, &fetcher, now());
    updater.refresh().unwrap();
    fetcher.reset();
    let info = updater.get_target_info(path).unwrap().expect("in its bin");
    assert_eq!(info.length, 4);
    assert_eq!(fetcher.names(), [format!("1.{bin}.json")]);
    // A path in another bin is not found there, and costs that one bin only.
    fetcher.reset();
    assert!(updater
        .get_target_info("crates/other.crate")
        .unwrap()
        .is_none());
    assert_eq!(fetcher.names().len(), 1);
}

#[test]
fn ten_thousand_namespaces_cost_one_delegated_role_per_lookup() {
    let mut repo = Repo::new(true);
    for i in 0..10_000 {
        repo.delegate(
            "targets",
            &format!("ns{i}"),
            &[&format!("crates/ns{i}/*")],
            true,
        );
    }
    repo.add_target("ns7777", "crates/ns7777/ns7777-1.0.0.crate", b"7777");
    repo.publish();
    let client = repo.client();
    let fetcher = repo.fetcher();
    let mut updater = client.updater(&repo, &fetcher, now());
    updater.refresh().unwrap();
    fetcher.reset();
    let info = updater
        .get_target_info("crates/ns7777/ns7777-1.0.0.crate")
        .unwrap();
    assert_eq!(info.map(|i| i.length), Some(4));
    assert_eq!(
        fetcher.names(),
        ["1.ns7777.json"],
        "one delegated role fetched"
    );
    // A second lookup in the same namespace fetches nothing more.
    fetcher.reset();
    assert!(updater
        .get_target_info("crates/ns7777/other.crate")
        .unwrap()
        .is_none());
    assert!(fetcher.names().is_empty());
}

#[test]
fn delegation_search_is_preorder_depth_first_and_stops_at_terminating_roles() {
    let mut repo = Repo::new(true);
    // targets -> a (non-terminating) -> a1 ; targets -> b (terminating) ; targets -> c
    repo.delegate("targets", "a", &["x/*"], false);
    repo.delegate("a", "a1", &["x/*"], false);
    repo.delegate("targets", "b", &["x/*"], true);
    repo.delegate("targets", "c", &["x/*"], false);
    repo.add_target("c", "x/only-in-c", b"c");
    repo.add_target("b", "x/in-b-and-a1", b"b");
    repo.add_target("a1", "x/in-b-and-a1", b"a1!");
    repo.publish();
    let client = repo.client();
    let fetcher = repo.fetcher();
    let mut updater = client.updater(&repo, &fetcher, now());
    updater.refresh().unwrap();
    fetcher.reset();
    // a1 (reached first, depth first) wins over b.
    let info = updater.get_target_info("x/in-b-and-a1").unwrap().unwrap();
    assert_eq!(info.length, 3);
    assert_eq!(fetcher.names(), ["1.a.json", "1.a1.json"]);
    // b is terminating: c is never consulted, so its target is not found.
    fetcher.reset();
    assert!(updater.get_target_info("x/only-in-c").unwrap().is_none());
    assert_eq!(fetcher.names(), ["1.b.json"]);
}

#[test]
fn delegation_cycles_and_the_visit_cap_end_the_search() {
    let mut repo = Repo::new(true);
    repo.delegate("targets", "a", &["*"], false);
    repo.delegate("a", "b", &["*"], false);
    // b delegates back to a (a cycle) with a's key.
    let a_key = repo.keys["a"].public_key().clone();
    let a_keyid = repo.keys["a"].keyid().clone();
    {
        let (b, _) = repo.roles.get_mut("b").unwrap();
        b.signed_mut().delegations = Some(Delegations {
            keys: [(a_keyid.clone(), a_key)].into(),
            roles: Some(vec![DelegatedRole {
                name: "a".into(),
                keyids: vec![a_keyid],
                threshold: 1,
                terminating: false,
                paths: Some(vec!["*".into()]),
                path_hash_prefixes: None,
                unrecognized_fields: BTreeMap::new(),
            }]),
            succinct_roles: None,
            unrecognized_fields: BTreeMap::new(),
        });
    }
    repo.publish();
    let client = repo.client();
    let fetcher = repo.fetcher();
    let mut updater = client.updater(&repo, &fetcher, now());
    assert!(updater.get_target_info("nowhere").unwrap().is_none());
}

// ---- The attacks of §1.5.2, by name ----

#[test]
fn arbitrary_software_installation_is_refused() {
    let mut repo = Repo::new(true);
    repo.add_target("targets", "app.bin", b"good");
    repo.publish();
    // The mirror swaps the file: same length, other bytes.
    let info = repo.roles["targets"].0.signed().targets["app.bin"].clone();
    std::fs::write(
        repo.dir
            .path()
            .join(format!("targets/{}.app.bin", &info.hashes["sha256"])),
        b"evil",
    )
    .unwrap();
    let client = repo.client();
    let fetcher = repo.fetcher();
    let mut updater = client.updater(&repo, &fetcher, now());
    let info = updater.get_target_info("app.bin").unwrap().unwrap();
    assert!(matches!(
        updater.download_target(&info, "app.bin", &client.targets(), None),
        Err(UpdateError::TargetMismatch { .. })
    ));
    assert!(
        !client.targets().join("app.bin").exists(),
        "nothing unverified written"
    );

    // Metadata signed by a key root does not authorise.
    let intruder = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let (targets, _) = repo.roles.get_mut("targets").unwrap();
    targets.signed_mut().version += 1;
    targets.sign(&intruder, false).unwrap();
    let bytes = targets.to_bytes().unwrap();
    let version = targets.signed().version;
    std::fs::write(
        repo.metadata_dir().join(format!("{version}.targets.json")),
        &bytes,
    )
    .unwrap();
    repo.publish_snapshot([("targets.json".into(), MetaFile::new(version))].into());
    let client = repo.client();
    let err = trust_error(client.refresh(&repo));
    assert!(
        matches!(&err, TrustError::Signatures { role, source: VerificationError::ThresholdNotMet { valid: 0, threshold: 1, .. } } if role == "targets"),
        "{err:?}"
    );
}

#[test]
fn rollback_attack_on_timestamp_is_refused() {
    let mut repo = Repo::new(true);
    let client = repo.client();
    let old_timestamp = std::fs::read(repo.metadata_dir().join("timestamp.json")).unwrap();
    repo.publish();
    client.refresh(&repo).unwrap();
    std::fs::write(repo.metadata_dir().join("timestamp.json"), old_timestamp).unwrap();
    // The old timestamp also names an older snapshot: the role says that the timestamp's
    // own version check (§5.4.3.1) refused it, not the snapshot version check.
    let err = trust_error(client.refresh(&repo));
    assert!(
        matches!(&err, TrustError::Rollback { role, trusted: 3, new: 2 } if role == "timestamp"),
        "{err:?}"
    );
    // The trusted timestamp is unchanged.
    let stored = Metadata::<Timestamp>::from_bytes(&client.stored("timestamp").unwrap()).unwrap();
    assert_eq!(stored.signed().version(), 3);
}

#[test]
fn rollback_attack_on_snapshot_and_targets_is_refused() {
    let mut repo = Repo::new(true);
    repo.publish(); // targets v2, snapshot v3
    let client = repo.client();
    client.refresh(&repo).unwrap();
    // A new snapshot naming an older targets version.
    repo.publish_snapshot([("targets.json".into(), MetaFile::new(1))].into());
    let err = trust_error(client.refresh(&repo));
    assert!(
        matches!(&err, TrustError::Rollback { role, trusted: 2, new: 1 } if role == "targets.json in snapshot"),
        "{err:?}"
    );
    // A new snapshot dropping a role the trusted one lists.
    repo.publish_snapshot(BTreeMap::new());
    let err = trust_error(client.refresh(&repo));
    assert!(
        matches!(&err, TrustError::MissingFromSnapshot(name) if name == "targets.json"),
        "{err:?}"
    );
}

#[test]
fn indefinite_freeze_attack_is_refused() {
    // Each role in turn is the only one expiring (in one day); the client, two days on,
    // must refuse the update and name that role.
    for role in ["root", "timestamp", "snapshot", "targets"] {
        let mut repo = Repo::new(true);
        let client = repo.client();
        let soon = in_days(1);
        let later = in_days(500);
        repo.timestamp.signed_mut().expires = if role == "timestamp" { soon } else { later };
        repo.snapshot.signed_mut().expires = if role == "snapshot" { soon } else { later };
        repo.roles
            .get_mut("targets")
            .unwrap()
            .0
            .signed_mut()
            .expires = if role == "targets" { soon } else { later };
        if role == "root" {
            let root = repo.root.signed_mut();
            root.version += 1;
            root.expires = soon;
            repo.sign_root();
        }
        repo.publish();
        let fetcher = repo.fetcher();
        client.updater(&repo, &fetcher, now()).refresh().unwrap();
        match client.updater(&repo, &fetcher, in_days(2)).refresh() {
            Err(UpdateError::Trust(TrustError::Expired { role: r, .. })) => assert_eq!(r, role),
            other => panic!("{role}: {other:?}"),
        }
    }
}

#[test]
fn fast_forward_attack_is_recovered_from_after_key_rotation() {
    let mut repo = Repo::new(true);
    let client = repo.client();
    // An attacker holding the timestamp key publishes version 1000.
    repo.timestamp.signed_mut().version = 1000;
    repo.write_timestamp();
    client.refresh(&repo).unwrap();
    // The repository rotates the timestamp key and goes back to sane versions.
    let new_key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let root = repo.root.signed_mut();
    root.version += 1;
    root.keys
        .insert(new_key.keyid().clone(), new_key.public_key().clone());
    root.roles.insert(
        "timestamp".into(),
        RoleKeys::new(vec![new_key.keyid().clone()], 1),
    );
    repo.timestamp_key = new_key;
    repo.sign_root();
    repo.timestamp.signed_mut().version = 5;
    repo.publish();
    client.refresh(&repo).unwrap();
    let stored = Metadata::<Timestamp>::from_bytes(&client.stored("timestamp").unwrap()).unwrap();
    assert_eq!(stored.signed().version(), 6);
}

#[test]
fn mix_and_match_attack_is_refused() {
    let mut repo = Repo::new(true);
    repo.publish(); // snapshot lists targets v2
                    // Serve a validly signed targets v1 under the v2 name.
    let v1 = std::fs::read(repo.metadata_dir().join("1.targets.json")).unwrap();
    std::fs::write(repo.metadata_dir().join("2.targets.json"), &v1).unwrap();
    let client = repo.client();
    let err = trust_error(client.refresh(&repo));
    assert!(
        matches!(&err, TrustError::VersionMismatch { role, expected: 2, found: 1 } if role == "targets"),
        "{err:?}"
    );
}

#[test]
fn endless_data_attack_is_cut_off() {
    let mut repo = Repo::new(true);
    repo.add_target("targets", "big.bin", b"four");
    repo.publish();
    // A timestamp larger than any valid one.
    let client = repo.client();
    let saved = std::fs::read(repo.metadata_dir().join("timestamp.json")).unwrap();
    std::fs::write(
        repo.metadata_dir().join("timestamp.json"),
        vec![b' '; 20_000],
    )
    .unwrap();
    assert!(matches!(
        client.refresh(&repo),
        Err(UpdateError::Fetch(FetchError::TooLong { max: 16_384, .. }))
    ));
    std::fs::write(repo.metadata_dir().join("timestamp.json"), saved).unwrap();
    // A target body longer than its signed length is refused unread past the length.
    let info = repo.roles["targets"].0.signed().targets["big.bin"].clone();
    std::fs::write(
        repo.dir
            .path()
            .join(format!("targets/{}.big.bin", &info.hashes["sha256"])),
        vec![0u8; 1 << 20],
    )
    .unwrap();
    let fetcher = repo.fetcher();
    let mut updater = client.updater(&repo, &fetcher, now());
    let info = updater.get_target_info("big.bin").unwrap().unwrap();
    assert!(matches!(
        updater.download_target(&info, "big.bin", &client.targets(), None),
        Err(UpdateError::Fetch(FetchError::TooLong { max: 4, .. }))
    ));
}

#[test]
fn key_compromise_below_threshold_cannot_rotate_root() {
    let mut repo = Repo::new(true);
    let client = repo.client();
    // One of two root keys signs a new root: below the threshold of 2.
    repo.root.signed_mut().version += 1;
    repo.root_threshold_signers = 1;
    repo.sign_root();
    assert!(matches!(
        trust_error(client.refresh(&repo)),
        TrustError::Signatures { role, .. } if role == "root"
    ));
}

#[test]
fn wrong_software_installation_through_an_unauthorised_role_is_refused() {
    let mut repo = Repo::new(true);
    repo.delegate("targets", "serde", &["crates/serde/*"], true);
    repo.delegate("targets", "fallback", &["crates/*/*"], false);
    // The fallback role lists a path inside the claimed namespace; serde does not.
    repo.add_target("fallback", "crates/serde/serde-9.9.9.crate", b"evil");
    repo.add_target("fallback", "crates/rand/rand-1.0.0.crate", b"rand");
    repo.publish();
    let client = repo.client();
    let fetcher = repo.fetcher();
    let mut updater = client.updater(&repo, &fetcher, now());
    assert!(updater
        .get_target_info("crates/serde/serde-9.9.9.crate")
        .unwrap()
        .is_none());
    assert!(updater
        .get_target_info("crates/rand/rand-1.0.0.crate")
        .unwrap()
        .is_some());
}

#[test]
fn role_names_cannot_escape_the_metadata_directory() {
    let mut repo = Repo::new(true);
    repo.delegate("targets", "../escape", &["*"], false);
    repo.add_target("../escape", "t.txt", b"t");
    repo.publish();
    let client = repo.client();
    let fetcher = repo.fetcher();
    let mut updater = client.updater(&repo, &fetcher, now());
    assert!(updater.get_target_info("t.txt").unwrap().is_some());
    assert!(client.metadata().join("..%2Fescape.json").exists());
    assert!(!client.dir.path().join("escape.json").exists());
    assert_eq!(
        fetcher.names().last().map(String::as_str),
        Some("1...%2Fescape.json")
    );
}

/// `parent-b` delegates `team-b/*` to the existing role `release`, authorising `key`.
fn parent_b_delegates_release_to(repo: &mut Repo, key: &tuf_core::Key) {
    let (parent_b, _) = repo.roles.get_mut("parent-b").unwrap();
    parent_b.signed_mut().delegations = Some(Delegations {
        keys: [(key.keyid(), key.clone())].into(),
        roles: Some(vec![DelegatedRole {
            name: "release".into(),
            keyids: vec![key.keyid()],
            threshold: 1,
            terminating: false,
            paths: Some(vec!["team-b/*".into()]),
            path_hash_prefixes: None,
            unrecognized_fields: BTreeMap::new(),
        }]),
        succinct_roles: None,
        unrecognized_fields: BTreeMap::new(),
    });
}

#[test]
fn a_role_reached_through_two_delegators_must_satisfy_each() {
    // targets -> parent-a (team-a/*) -> release   (release signed with parent-a's key)
    // targets -> parent-b (team-b/*) -> release   (parent-b authorises another key)
    let mut repo = Repo::new(true);
    repo.delegate("targets", "parent-a", &["team-a/*"], false);
    repo.delegate("targets", "parent-b", &["team-b/*"], false);
    repo.delegate("parent-a", "release", &["team-a/*", "team-b/*"], false);
    let other = PrivateKey::generate(KeyAlgorithm::Ed25519);
    parent_b_delegates_release_to(&mut repo, other.public_key());
    repo.add_target("release", "team-a/artifact", b"trusted A");
    repo.add_target("release", "team-b/artifact", b"malicious B");
    repo.publish();
    let client = repo.client();
    let fetcher = repo.fetcher();
    let mut updater = client.updater(&repo, &fetcher, now());
    assert!(updater
        .get_target_info("team-a/artifact")
        .unwrap()
        .is_some());
    // Same process, `release` already trusted via parent-a: via parent-b it is refused.
    match updater.get_target_info("team-b/artifact") {
        Err(UpdateError::Trust(TrustError::Signatures { role, .. })) => assert_eq!(role, "release"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_role_already_trusted_is_checked_against_a_second_delegator_without_reading_it_again() {
    // targets -> parent-a (team-a/*) -> release, and parent-b (team-b/*) -> release, both
    // authorising release's own key: a diamond where release satisfies both.
    let mut repo = Repo::new(true);
    repo.delegate("targets", "parent-a", &["team-a/*"], false);
    repo.delegate("targets", "parent-b", &["team-b/*"], false);
    repo.delegate("parent-a", "release", &["team-a/*", "team-b/*"], false);
    let release_key = repo.key_for("release").public_key().clone();
    parent_b_delegates_release_to(&mut repo, &release_key);
    repo.add_target("release", "team-a/artifact", b"A");
    repo.add_target("release", "team-b/artifact", b"B");
    repo.publish();
    let client = repo.client();
    let fetcher = repo.fetcher();
    let mut updater = client.updater(&repo, &fetcher, now());
    assert!(updater
        .get_target_info("team-a/artifact")
        .unwrap()
        .is_some());
    let fetched_release = |fetcher: &CountingFetcher| {
        fetcher
            .names()
            .iter()
            .filter(|n| n.ends_with(".release.json"))
            .count()
    };
    assert_eq!(fetched_release(&fetcher), 1);
    // The trusted copy in memory is what counts: neither the local file nor the
    // repository is read again to reach it through parent-b.
    std::fs::remove_file(client.metadata().join("release.json")).unwrap();
    let found = updater.get_target_info("team-b/artifact").unwrap().unwrap();
    assert_eq!(found.length, 1);
    assert_eq!(fetched_release(&fetcher), 1, "{:?}", fetcher.names());
    assert!(!client.metadata().join("release.json").exists());
}

#[test]
fn an_audit_reports_a_target_that_clients_reach_through_another_role() {
    // targets -> first (team/*, not terminating), then second (team/*): both list
    // team/artifact, and the pre-order walk (§5.6.7.2) stops at first's entry.
    let mut repo = Repo::new(true);
    repo.delegate("targets", "first", &["team/*"], false);
    repo.delegate("targets", "second", &["team/*"], false);
    repo.add_target("first", "team/artifact", b"from first");
    repo.add_target("second", "team/artifact", b"from second, never reached");
    repo.add_target("second", "team/other", b"only here");
    repo.publish();
    let root = std::fs::read(repo.metadata_dir().join("1.root.json")).unwrap();
    let report = tuf_core::repository::audit_repository(
        &tuf_core::repository::DirectorySource::new(repo.metadata_dir()),
        &root,
        &tuf_core::repository::AuditOptions::new(now()),
        &(),
    );
    assert_eq!(
        report.errors(),
        [
            "error: second: team/artifact: listed here, but a client looking it up gets the \
          entry of first"
        ]
    );
    assert_eq!(report.targets_checked, 3);
    // What the client does, which the audit describes.
    let client = repo.client();
    let fetcher = repo.fetcher();
    let mut updater = client.updater(&repo, &fetcher, now());
    let info = updater.get_target_info("team/artifact").unwrap().unwrap();
    assert_eq!(info.length, b"from first".len() as u64);
}

// ---- Repositories written by python-tuf ----

fn python_tuf_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/python-tuf")
        .join(name)
}

/// Every target file stored in a python-tuf consistent-snapshot `targets/` directory, as
/// (target path, file) pairs: `dir/<sha256>.<name>` holds target `dir/<name>`.
fn stored_targets(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, PathBuf)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            stored_targets(root, &path, out);
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let (parent, file) = relative.rsplit_once('/').unwrap_or(("", &relative));
        let name = file.split_once('.').unwrap().1;
        let target = if parent.is_empty() {
            name.to_owned()
        } else {
            format!("{parent}/{name}")
        };
        out.push((target, path));
    }
}

#[test]
fn python_tuf_repositories_update_resolve_and_download() {
    let repo = python_tuf_fixture("full");
    let client = tempfile::tempdir().unwrap();
    let metadata = client.path().join("metadata");
    let downloads = client.path().join("targets");
    std::fs::create_dir_all(&metadata).unwrap();
    std::fs::create_dir_all(&downloads).unwrap();
    std::fs::copy(
        repo.join("metadata/1.root.json"),
        metadata.join("root.json"),
    )
    .unwrap();
    let fetcher = CountingFetcher::new(&repo);
    let mut config = UpdaterConfig::new(&metadata, fetcher.inner.base_url("metadata"));
    config.targets_url = Some(fetcher.inner.base_url("targets"));
    let mut updater = Updater::new(config, &fetcher, now()).unwrap();
    updater.refresh().unwrap();
    assert_eq!(
        fetcher.names(),
        [
            "2.root.json",
            "3.root.json",
            "timestamp.json",
            "1.snapshot.json",
            "1.targets.json"
        ]
    );
    let mut targets = Vec::new();
    stored_targets(&repo.join("targets"), &repo.join("targets"), &mut targets);
    assert!(targets.len() >= 8, "{targets:?}");
    let mut roles_fetched = std::collections::BTreeSet::new();
    for (target, file) in &targets {
        fetcher.reset();
        let info = updater
            .get_target_info(target)
            .unwrap()
            .unwrap_or_else(|| panic!("{target} not found"));
        let stored = updater
            .download_target(&info, target, &downloads, None)
            .unwrap();
        assert_eq!(
            std::fs::read(stored).unwrap(),
            std::fs::read(file).unwrap(),
            "{target}"
        );
        roles_fetched.extend(fetcher.names().into_iter().filter(|n| n.ends_with(".json")));
    }
    // Named, hash-prefixed and binned roles were all reached, lazily.
    assert!(
        roles_fetched.iter().any(|n| n.contains("serde")),
        "{roles_fetched:?}"
    );
    assert!(
        roles_fetched.iter().any(|n| n.contains("hashed")),
        "{roles_fetched:?}"
    );
    assert!(
        roles_fetched.iter().any(|n| n.contains("unclaimed-bin")),
        "{roles_fetched:?}"
    );
    assert!(
        roles_fetched
            .iter()
            .filter(|n| n.contains("unclaimed-bin"))
            .count()
            < 16
    );

    // The minimal repository: consistent_snapshot false, unversioned names.
    let repo = python_tuf_fixture("minimal");
    let client = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo.join("metadata/root.json"),
        client.path().join("root.json"),
    )
    .unwrap();
    let fetcher = CountingFetcher::new(&repo);
    let config = UpdaterConfig::new(client.path(), fetcher.inner.base_url("metadata"));
    Updater::new(config, &fetcher, now())
        .unwrap()
        .refresh()
        .unwrap();
    assert_eq!(
        fetcher.names(),
        [
            "2.root.json",
            "timestamp.json",
            "snapshot.json",
            "targets.json"
        ]
    );
}

#[test]
fn malicious_mirror_cannot_replace_trusted_metadata() {
    // A mirror serving garbage, truncated or unsigned files makes the update fail closed;
    // what the client trusted before is left exactly as it was.
    let mut repo = Repo::new(true);
    let client = repo.client();
    client.refresh(&repo).unwrap();
    let before: Vec<Option<Vec<u8>>> = ["root", "timestamp", "snapshot", "targets"]
        .iter()
        .map(|r| client.stored(r))
        .collect();
    repo.publish();
    let good = std::fs::read(repo.metadata_dir().join("timestamp.json")).unwrap();
    for served in [
        b"not json".to_vec(),
        good[..good.len() / 2].to_vec(),
        b"{}".to_vec(),
        good.iter()
            .map(|b| if *b == b'3' { b'4' } else { *b })
            .collect(),
    ] {
        std::fs::write(repo.metadata_dir().join("timestamp.json"), &served).unwrap();
        assert!(client.refresh(&repo).is_err());
        let after: Vec<Option<Vec<u8>>> = ["root", "timestamp", "snapshot", "targets"]
            .iter()
            .map(|r| client.stored(r))
            .collect();
        assert_eq!(after, before);
    }
}

#[test]
fn fast_forward_attack_on_snapshot_is_recovered_from_after_key_rotation() {
    // The snapshot key signs a snapshot far in the future (version 1000), which an honest
    // timestamp names. After the snapshot key is rotated and snapshot versions restart,
    // the stored timestamp (naming snapshot 1000) must not block the update (§5.3.11:
    // timestamp and snapshot files are both dropped when either role's keys rotate).
    let mut repo = Repo::new(true);
    let client = repo.client();
    repo.snapshot.signed_mut().version = 999;
    repo.publish(); // snapshot 1000, timestamp 3
    client.refresh(&repo).unwrap();
    let new_key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let root = repo.root.signed_mut();
    root.version += 1;
    root.keys
        .insert(new_key.keyid().clone(), new_key.public_key().clone());
    root.roles.insert(
        "snapshot".into(),
        RoleKeys::new(vec![new_key.keyid().clone()], 1),
    );
    repo.snapshot_key = new_key;
    repo.sign_root();
    repo.snapshot.signed_mut().version = 4;
    repo.publish(); // snapshot 5, timestamp 4
    client.refresh(&repo).unwrap();
    let stored = Metadata::<Snapshot>::from_bytes(&client.stored("snapshot").unwrap()).unwrap();
    assert_eq!(stored.signed().version(), 5);
}

#[test]
fn search_target_names_each_role_to_fetch_and_fetches_nothing_itself() {
    let mut repo = Repo::new(true);
    repo.delegate("targets", "a", &["x/*"], false);
    repo.delegate("a", "a1", &["x/*"], true);
    repo.add_target("a1", "x/deep", b"deep");
    repo.publish();
    let client = repo.client();
    let fetcher = repo.fetcher();
    let mut updater = client.updater(&repo, &fetcher, now());
    assert!(matches!(
        updater.search_target("x/deep"),
        Err(UpdateError::Trust(TrustError::Order(_)))
    ));
    updater.refresh().unwrap();
    fetcher.reset();
    let mut fetched = Vec::new();
    let found = loop {
        match updater.search_target("x/deep").unwrap() {
            tuf_core::client::TargetSearch::NeedsRole(fetch) => {
                let bytes =
                    std::fs::read(fetch.url.strip_prefix("file://").unwrap_or(&fetch.url)).unwrap();
                fetched.push((fetch.role.clone(), fetch.delegator.clone()));
                updater.trust_fetched_targets(&fetch, &bytes).unwrap();
                // Trusting the same bytes again changes nothing.
                updater.trust_fetched_targets(&fetch, &bytes).unwrap();
            }
            tuf_core::client::TargetSearch::Found(found) => break found,
            tuf_core::client::TargetSearch::NotFound => panic!("not found"),
        }
    };
    assert!(fetcher.names().is_empty(), "{:?}", fetcher.names());
    assert_eq!(
        fetched,
        [
            ("a".to_owned(), "targets".to_owned()),
            ("a1".to_owned(), "a".to_owned())
        ]
    );
    assert_eq!(found.role, "a1");
    assert_eq!(found.info.length, 4);
    // Bytes that are not the role are refused as they would be when fetched inline.
    let mut other = Repo::new(true);
    other.delegate("targets", "a", &["x/*"], false);
    other.publish();
    let client = other.client();
    let fetcher = other.fetcher();
    let mut updater = client.updater(&other, &fetcher, now());
    updater.refresh().unwrap();
    let tuf_core::client::TargetSearch::NeedsRole(fetch) = updater.search_target("x/1").unwrap()
    else {
        panic!("expected a role to fetch");
    };
    let err = updater.trust_fetched_targets(&fetch, b"{}").unwrap_err();
    assert!(
        matches!(&err, UpdateError::Trust(TrustError::Invalid { role, .. }) if role == "a"),
        "{err:?}"
    );
}
