//! One test per protection of the client workflow that another check could otherwise
//! hide: each builds the attack the protection alone stops, and names the error variant
//! and the role it must produce. Deleting the protection makes its test fail (TESTING.md
//! records the run). The §5.4.3.1 timestamp rollback test is
//! `client_workflow::rollback_attack_on_timestamp_is_refused`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::BTreeMap;

use chrono::Duration;
use tuf_core::client::TrustError;
use tuf_core::hash::HashError;
use tuf_core::metadata::{MetaFile, Metadata, RoleKeys, Root, Timestamp};
use tuf_core::signer::Signer;
use tuf_core::verify::VerificationError;

use support::{in_days, now, trust_error, Repo};

fn stored_root_version(client: &support::Client) -> u64 {
    Metadata::<Root>::from_bytes(&client.stored("root").unwrap())
        .unwrap()
        .signed()
        .version
}

/// §5.3.3: a new root must be signed by a threshold of the *trusted* root's keys. An
/// attacker holding one of two root keys publishes a root v2 that lists only that key
/// with threshold 1, signed by it: the new root meets its own threshold, so only the
/// check against the old root stops it.
#[test]
fn a_compromised_root_key_cannot_publish_a_root_that_trusts_only_itself() {
    let mut repo = Repo::new(true);
    let client = repo.client();
    client.refresh(&repo).unwrap();
    let compromised = repo.root_keys[0].keyid().clone();
    let root = repo.root.signed_mut();
    root.version = 2;
    root.roles
        .insert("root".into(), RoleKeys::new(vec![compromised], 1));
    repo.root_threshold_signers = 1;
    repo.sign_root();
    let err = trust_error(client.refresh(&repo));
    match &err {
        TrustError::Signatures {
            role,
            source:
                VerificationError::ThresholdNotMet {
                    valid: 1,
                    threshold: 2,
                    ..
                },
        } if role == "root" => {}
        other => panic!("expected root below the trusted root's threshold, got {other:?}"),
    }
    assert_eq!(stored_root_version(&client), 1);
}

/// §5.3.4: a new root must be exactly the next version, neither a skip nor a repeat.
#[test]
fn a_root_that_is_not_exactly_the_next_version_is_refused() {
    for (version, served_as) in [(3, 2), (1, 2)] {
        let mut repo = Repo::new(true);
        let client = repo.client();
        repo.root.signed_mut().version = version;
        repo.sign_root();
        // The client asks for 2.root.json; the repository serves root `version` there.
        let bytes = repo.root.to_bytes().unwrap();
        std::fs::write(
            repo.metadata_dir().join(format!("{served_as}.root.json")),
            bytes,
        )
        .unwrap();
        let err = trust_error(client.refresh(&repo));
        assert!(
            matches!(&err, TrustError::VersionMismatch { role, expected: 2, found }
                if role == "root" && *found == version),
            "root v{version} served as v2: {err:?}"
        );
    }
}

/// §5.4.3.2: a newer timestamp must not name an older snapshot version.
#[test]
fn a_newer_timestamp_naming_an_older_snapshot_is_refused_as_a_snapshot_rollback() {
    let mut repo = Repo::new(true);
    let client = repo.client();
    let old_snapshot_meta = repo.timestamp.signed().meta["snapshot.json"].clone();
    repo.publish();
    client.refresh(&repo).unwrap();
    // Timestamp v4, validly signed, naming snapshot v2 (whose file is still served).
    let timestamp = repo.timestamp.signed_mut();
    timestamp.version += 1;
    timestamp
        .meta
        .insert("snapshot.json".into(), old_snapshot_meta);
    repo.write_timestamp();
    let err = trust_error(client.refresh(&repo));
    assert!(
        matches!(&err, TrustError::Rollback { role, trusted: 3, new: 2 }
            if role == "snapshot.json in timestamp"),
        "{err:?}"
    );
    let stored = Metadata::<Timestamp>::from_bytes(&client.stored("timestamp").unwrap()).unwrap();
    assert_eq!(stored.signed().version, 3);
}

/// §5.5.2: the snapshot must have the hashes timestamp signed. The forgery is signed
/// with the snapshot key, has the same version and the same length: only the hash
/// check refuses it.
#[test]
fn a_snapshot_not_matching_the_hashes_in_timestamp_is_refused() {
    let mut repo = Repo::new(true);
    let client = repo.client();
    let version = repo.snapshot.signed().version;
    // One second later: a date of the same length, so the file keeps its length.
    let expires = repo.snapshot.signed().expires + Duration::seconds(1);
    repo.snapshot.signed_mut().expires = expires;
    repo.snapshot.sign(&repo.snapshot_key, false).unwrap();
    let forged = repo.snapshot.to_bytes().unwrap();
    let path = repo.metadata_dir().join(format!("{version}.snapshot.json"));
    assert_eq!(forged.len(), std::fs::read(&path).unwrap().len());
    std::fs::write(&path, forged).unwrap();
    let err = trust_error(client.refresh(&repo));
    assert!(
        matches!(&err, TrustError::Hashes { role, referrer: "timestamp", source: HashError::HashMismatch { .. } }
            if role == "snapshot"),
        "{err:?}"
    );
}

/// §5.6.2: a targets role must have the hashes snapshot signed for it.
#[test]
fn a_targets_role_not_matching_the_hashes_in_snapshot_is_refused() {
    let mut repo = Repo::new(true);
    let client = repo.client();
    // A snapshot that signs the length and hashes of targets.
    let (targets, _) = repo.roles.get_mut("targets").unwrap();
    targets.signed_mut().version += 1;
    targets.sign(&repo.targets_key, false).unwrap();
    let bytes = targets.to_bytes().unwrap();
    let version = targets.signed().version;
    let path = repo.metadata_dir().join(format!("{version}.targets.json"));
    std::fs::write(&path, &bytes).unwrap();
    repo.publish_snapshot(BTreeMap::from([(
        "targets.json".into(),
        MetaFile::with_bytes(version, &bytes),
    )]));
    client.refresh(&repo).unwrap();
    // The same version re-signed with a later expiry of the same length.
    let (targets, _) = repo.roles.get_mut("targets").unwrap();
    let expires = targets.signed().expires + Duration::seconds(1);
    targets.signed_mut().expires = expires;
    targets.sign(&repo.targets_key, false).unwrap();
    let forged = targets.to_bytes().unwrap();
    assert_eq!(forged.len(), bytes.len());
    std::fs::write(&path, forged).unwrap();
    let fresh = repo.client();
    let err = trust_error(fresh.refresh(&repo));
    assert!(
        matches!(&err, TrustError::Hashes { role, referrer: "snapshot", source: HashError::HashMismatch { .. } }
            if role == "targets"),
        "{err:?}"
    );
}

/// §5.6.7.2.2: a terminating delegation ends the whole search, also when it is reached
/// below the top level: the roles still waiting (here `c`, a sibling of `a`) are not
/// consulted.
#[test]
fn a_terminating_delegation_two_levels_down_ends_the_search() {
    let mut repo = Repo::new(true);
    // targets -> a (not terminating) -> a1 (terminating); targets -> c
    repo.delegate("targets", "a", &["x/*"], false);
    repo.delegate("a", "a1", &["x/*"], true);
    repo.delegate("targets", "c", &["x/*"], false);
    repo.add_target("c", "x/only-in-c", b"c");
    repo.publish();
    let client = repo.client();
    let fetcher = repo.fetcher();
    let mut updater = client.updater(&repo, &fetcher, now());
    updater.refresh().unwrap();
    fetcher.reset();
    assert!(updater.get_target_info("x/only-in-c").unwrap().is_none());
    assert_eq!(fetcher.names(), ["1.a.json", "1.a1.json"]);
    // The same tree without the terminating flag finds it in c.
    let mut open = Repo::new(true);
    open.delegate("targets", "a", &["x/*"], false);
    open.delegate("a", "a1", &["x/*"], false);
    open.delegate("targets", "c", &["x/*"], false);
    open.add_target("c", "x/only-in-c", b"c");
    open.publish();
    let client = open.client();
    let fetcher = open.fetcher();
    let mut updater = client.updater(&open, &fetcher, in_days(0));
    let info = updater.get_target_info("x/only-in-c").unwrap().unwrap();
    assert_eq!(info.length, 1);
}

/// §5.4.3.2 allows a new timestamp that names the same snapshot (timestamp refreshed,
/// nothing else published): only an older snapshot version is a rollback.
#[test]
fn a_new_timestamp_for_the_same_snapshot_is_accepted() {
    let mut repo = Repo::new(true);
    let client = repo.client();
    client.refresh(&repo).unwrap();
    repo.timestamp.signed_mut().version += 1;
    repo.write_timestamp();
    client.refresh(&repo).unwrap();
    let stored = Metadata::<Timestamp>::from_bytes(&client.stored("timestamp").unwrap()).unwrap();
    assert_eq!(stored.signed().version, 3);
}

/// §5.5.1: a snapshot whose length timestamp signs is bounded by that length, not by
/// the configured maximum, which applies only when no length is signed.
#[test]
fn a_snapshot_longer_than_the_default_maximum_is_read_up_to_its_signed_length() {
    let mut repo = Repo::new(true);
    // Many roles listed: a snapshot of several kilobytes.
    for i in 0..40 {
        repo.delegate(
            "targets",
            &format!("role-{i:02}"),
            &[&format!("r{i}/*")],
            false,
        );
    }
    repo.publish();
    let snapshot_len = repo.timestamp.signed().meta["snapshot.json"]
        .length
        .unwrap();
    assert!(snapshot_len > 1_000, "{snapshot_len}");
    let client = repo.client();
    let fetcher = repo.fetcher();
    let mut config = tuf_core::client::UpdaterConfig::new(
        client.metadata(),
        tuf_core::client::DirectoryFetcher::new(repo.dir.path()).base_url("metadata"),
    );
    config.limits.max_snapshot_length = 1_000;
    let mut updater = tuf_core::client::Updater::new(config, &fetcher, now()).unwrap();
    updater.refresh().unwrap();
    assert!(updater.trusted().snapshot().is_some());
}

/// §5.3.11 drops the stored timestamp and snapshot only when a new root changes their
/// keys: a rotation that keeps them keeps the rollback baseline.
#[test]
fn a_root_rotation_that_keeps_the_timestamp_key_keeps_the_rollback_baseline() {
    let mut repo = Repo::new(true);
    let client = repo.client();
    let old_timestamp = std::fs::read(repo.metadata_dir().join("timestamp.json")).unwrap();
    repo.publish();
    client.refresh(&repo).unwrap();
    // Root v2 with the same keys; the attacker replays the old timestamp.
    repo.root.signed_mut().version = 2;
    repo.sign_root();
    std::fs::write(repo.metadata_dir().join("timestamp.json"), old_timestamp).unwrap();
    let err = trust_error(client.refresh(&repo));
    assert!(
        matches!(&err, TrustError::Rollback { role, trusted: 3, new: 2 } if role == "timestamp"),
        "{err:?}"
    );
}

/// §5.6.7: at most `max_delegations` roles are visited per lookup.
#[test]
fn the_delegation_search_visits_at_most_max_delegations_roles() {
    let mut repo = Repo::new(true);
    repo.delegate("targets", "a", &["x/*"], false);
    repo.delegate("a", "b", &["x/*"], false);
    repo.add_target("b", "x/deep", b"deep");
    repo.publish();
    let client = repo.client();
    let fetcher = repo.fetcher();
    for (max, found) in [(2, false), (3, true)] {
        let mut config = tuf_core::client::UpdaterConfig::new(
            client.metadata(),
            tuf_core::client::DirectoryFetcher::new(repo.dir.path()).base_url("metadata"),
        );
        config.limits.max_delegations = max;
        let mut updater = tuf_core::client::Updater::new(config, &fetcher, now()).unwrap();
        assert_eq!(
            updater.get_target_info("x/deep").unwrap().is_some(),
            found,
            "max_delegations {max}"
        );
    }
}

/// A role trusted once in an update is neither read nor fetched again for the next
/// lookup in the same update.
#[test]
fn a_role_trusted_once_is_not_loaded_again_in_the_same_update() {
    let mut repo = Repo::new(true);
    repo.delegate("targets", "a", &["x/*"], false);
    repo.add_target("a", "x/one", b"1");
    repo.add_target("a", "x/two", b"2");
    repo.publish();
    let client = repo.client();
    let fetcher = repo.fetcher();
    let mut updater = client.updater(&repo, &fetcher, now());
    assert!(updater.get_target_info("x/one").unwrap().is_some());
    // Gone from the repository and from the client's store: only the copy in memory
    // can answer.
    std::fs::remove_file(repo.metadata_dir().join("1.a.json")).unwrap();
    std::fs::remove_file(client.metadata().join("a.json")).unwrap();
    fetcher.reset();
    assert!(updater.get_target_info("x/two").unwrap().is_some());
    assert!(fetcher.names().is_empty(), "{:?}", fetcher.names());
}

#[test]
fn base_urls_get_one_trailing_slash() {
    for (given, expected) in [
        (
            "https://tuf.example/metadata",
            "https://tuf.example/metadata/",
        ),
        (
            "https://tuf.example/metadata/",
            "https://tuf.example/metadata/",
        ),
    ] {
        let config = tuf_core::client::UpdaterConfig::new("/tmp/m", given);
        assert_eq!(config.metadata_url, expected);
    }
}

/// A downloaded target is stored under its quoted path: one file name, which no target
/// path can turn into a path out of the directory.
#[test]
fn downloaded_targets_are_stored_under_their_quoted_path() {
    let mut repo = Repo::new(true);
    repo.add_target("targets", "crates/a/b.crate", b"tarball");
    repo.publish();
    let client = repo.client();
    let fetcher = repo.fetcher();
    let mut updater = client.updater(&repo, &fetcher, now());
    let info = updater
        .get_target_info("crates/a/b.crate")
        .unwrap()
        .unwrap();
    let path = updater
        .download_target(&info, "crates/a/b.crate", &client.targets(), None)
        .unwrap();
    assert_eq!(path, client.targets().join("crates%2Fa%2Fb.crate"));
    assert_eq!(std::fs::read(&path).unwrap(), b"tarball");
    assert_eq!(
        tuf_core::client::Updater::<tuf_core::client::DirectoryFetcher>::local_target_name("../x"),
        "..%2Fx"
    );
}

/// §5.3.2 ends the root chain on "not found": 404, and 403 as S3-like stores answer
/// for a missing object. Any other error status is a failure, not the end of the chain.
#[test]
fn http_statuses_map_to_found_not_found_and_failed() {
    use tuf_core::client::FetchError;
    for ok in [200, 204, 299] {
        assert_eq!(FetchError::check_http_status("u", ok), Ok(()), "{ok}");
    }
    for missing in [403, 404] {
        assert_eq!(
            FetchError::check_http_status("u", missing),
            Err(FetchError::NotFound { url: "u".into() }),
            "{missing}"
        );
    }
    for failed in [199, 300, 304, 401, 410, 500, 503] {
        assert_eq!(
            FetchError::check_http_status("u", failed),
            Err(FetchError::Status {
                url: "u".into(),
                status: failed
            }),
            "{failed}"
        );
    }
}
