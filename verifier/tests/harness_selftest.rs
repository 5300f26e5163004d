//! The end-to-end harness (tests/support) checked without the proxy: real cargo builds
//! from the upstream directly, tuf-core's client finds every signed release with the
//! index's checksum, each injected fault does what it says on the wire, ETags give 304,
//! and every forgery helper produces metadata a TUF client refuses for the intended
//! reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use chrono::Utc;
use sha2::{Digest, Sha256};
use support::{http_client, raw_get, CargoProject, Fault, Registry, Upstream};
use tuf_core::client::{HttpFetcher, TrustError, UpdateError, Updater, UpdaterConfig};
use tuf_core::layout::crate_target_path;
use tuf_core::{KeyAlgorithm, PrivateKey};
use tuf_crates_tests::crate_tarball::build_crate_tarball;

const PLAINUTIL_LIB: &str = "pub fn base() -> u32 {\n    40\n}\n";

/// plainutil 0.1.0 (fallback bins), nsdemo 1.0.0 and 1.1.0 (namespace `nsdemo`, both
/// depending on plainutil ^0.1), and rogue 0.1.0 upstream only.
fn demo_registry() -> Registry {
    let mut registry = Registry::new();
    registry.repo.delegate_namespace("nsdemo");
    registry.publish("plainutil", "0.1.0", &[], PLAINUTIL_LIB);
    registry.publish(
        "nsdemo",
        "1.0.0",
        &[("plainutil", "^0.1")],
        "pub fn answer() -> u32 {\n    plainutil::base() + 1\n}\n",
    );
    registry.publish(
        "nsdemo",
        "1.1.0",
        &[("plainutil", "^0.1")],
        "pub fn answer() -> u32 {\n    plainutil::base() + 2\n}\n",
    );
    registry.publish_unsigned("rogue", "0.1.0", &[], "pub fn evil() {}\n");
    registry
}

const APP_MAIN: &str = "fn main() {\n    println!(\"{}\", nsdemo::answer());\n}\n";

/// (a) Real cargo, pointed straight at the upstream, resolves the namespaced crate and
/// its fallback-bin dependency, downloads each tarball once, and a second resolution
/// revalidates index files with `If-None-Match` and gets 304s.
#[test]
fn real_cargo_builds_from_the_upstream_directly() {
    let mut registry = demo_registry();
    assert_eq!(registry.repo.role_for("nsdemo", "1.1.0"), "ns-nsdemo");
    let bin = registry.repo.role_for("plainutil", "0.1.0");
    assert!(bin.starts_with("unclaimed-"), "{bin}");
    let upstream = Upstream::start(&registry);

    let project = CargoProject::with_main(&upstream.index_url(), &[("nsdemo", "^1")], APP_MAIN);
    let output = project.run().assert_success();
    assert_eq!(output.stdout.trim(), "42", "{}", output.describe());

    for (name, version) in [("nsdemo", "1.1.0"), ("plainutil", "0.1.0")] {
        assert_eq!(
            project.locked_checksum(name, version).as_deref(),
            Some(registry.cksum(name, version).as_str()),
            "{:?}",
            project.lockfile()
        );
        assert_eq!(
            registry.cksum(name, version),
            registry.signed_sha256(name, version)
        );
        assert_eq!(
            upstream.requests(&Upstream::tarball_path(name, version)),
            1,
            "{name} {version} downloaded once: {:#?}",
            upstream.request_log()
        );
    }
    assert_eq!(
        upstream.requests(&Upstream::tarball_path("nsdemo", "1.0.0")),
        0
    );
    let index_requests: Vec<_> = upstream
        .request_log()
        .into_iter()
        .filter(|r| r.path.starts_with("/index/"))
        .collect();
    assert!(index_requests
        .iter()
        .any(|r| r.path == "/index/config.json" && r.status == 200));
    assert!(
        index_requests
            .iter()
            .all(|r| r.header("cargo-protocol") == Some("version=1")),
        "{index_requests:#?}"
    );

    // Again from its cache: index files are revalidated, not downloaded again.
    upstream.clear_log();
    project.update().assert_success();
    let revalidated: Vec<_> = upstream
        .request_log()
        .into_iter()
        .filter(|r| r.path == Upstream::index_file_path("nsdemo"))
        .collect();
    assert!(
        revalidated
            .iter()
            .any(|r| r.header("if-none-match").is_some() && r.status == 304),
        "{:#?}",
        upstream.request_log()
    );
    assert_eq!(upstream.requests_under("/dl/"), 0);
}

/// (a, continued) The registry's attack helpers do what cargo's own checks predict: a
/// tampered tarball fails cargo's checksum check; a replaced release (tarball and index
/// cksum) is accepted silently without a lockfile and caught only by an old lockfile.
#[test]
fn cargo_alone_catches_a_tampered_tarball_but_not_a_replaced_release() {
    let registry = demo_registry();
    let upstream = Upstream::start(&registry);
    let honest = CargoProject::with_main(&upstream.index_url(), &[("nsdemo", "^1")], APP_MAIN);
    honest.generate_lockfile().assert_success();
    let old_lock = honest.lockfile().unwrap();

    let replaced = registry.replace_release(
        "nsdemo",
        "1.1.0",
        "pub fn answer() -> u32 {\n    plainutil::base() + 626\n}\n",
    );
    assert_eq!(registry.tarball("nsdemo", "1.1.0"), replaced);
    assert_eq!(
        registry.cksum("nsdemo", "1.1.0"),
        hex::encode(Sha256::digest(&replaced))
    );
    assert_ne!(
        registry.cksum("nsdemo", "1.1.0"),
        registry.signed_sha256("nsdemo", "1.1.0")
    );
    let fooled = CargoProject::with_main(&upstream.index_url(), &[("nsdemo", "^1")], APP_MAIN);
    let output = fooled.run().assert_success();
    assert_eq!(output.stdout.trim(), "666", "{}", output.describe());
    let locked = CargoProject::with_main(&upstream.index_url(), &[("nsdemo", "^1")], APP_MAIN);
    locked.write_lockfile(&old_lock);
    locked
        .build()
        .assert_failure_containing("checksum for `nsdemo v1.1.0` changed between lock files");

    let tampered = registry.tamper_tarball("plainutil", "0.1.0");
    assert_ne!(tampered, registry.signed_tarball("plainutil", "0.1.0"));
    assert_eq!(
        registry.cksum("plainutil", "0.1.0"),
        registry.signed_sha256("plainutil", "0.1.0")
    );
    let victim = CargoProject::new(&upstream.index_url(), &[("plainutil", "0.1")]);
    victim
        .build()
        .assert_failure_containing("failed to verify the checksum of `plainutil v0.1.0");
}

/// (b) tuf-core's client, over HTTP from the upstream's /tuf/, finds every signed
/// release with the index's cksum and the tarball's length, and nothing for the
/// unsigned one.
#[test]
fn the_tuf_client_finds_every_signed_release_over_http() {
    let registry = demo_registry();
    let upstream = Upstream::start(&registry);
    let client = tempfile::tempdir().unwrap();
    std::fs::copy(registry.repo.root_path(), client.path().join("root.json")).unwrap();
    let fetcher = HttpFetcher::new(Duration::from_secs(5), Duration::from_secs(10)).unwrap();
    let config = UpdaterConfig::new(client.path(), upstream.metadata_url());
    let mut updater = Updater::new(config, fetcher, Utc::now()).unwrap();
    for (name, version) in [
        ("plainutil", "0.1.0"),
        ("nsdemo", "1.0.0"),
        ("nsdemo", "1.1.0"),
    ] {
        let path = crate_target_path(name, version).unwrap();
        let info = updater
            .get_target_info(&path)
            .unwrap()
            .unwrap_or_else(|| panic!("{path} not found"));
        assert_eq!(info.hashes["sha256"], registry.cksum(name, version));
        assert_eq!(info.length, registry.tarball(name, version).len() as u64);
    }
    let rogue = crate_target_path("rogue", "0.1.0").unwrap();
    assert!(updater.get_target_info(&rogue).unwrap().is_none());
    assert!(upstream.requests("/tuf/timestamp.json") >= 1);
    assert!(
        upstream.requests_under("/tuf/") >= 4,
        "{:#?}",
        upstream.request_log()
    );
}

/// (c) Each fault, seen byte for byte by a plain client.
#[test]
fn faults_behave_as_specified_on_the_wire() {
    let mut registry = Registry::new();
    let tarball = registry.publish("plainutil", "0.1.0", &[], PLAINUTIL_LIB);
    let len = tarball.len();
    let mut upstream = Upstream::start(&registry);
    let url = upstream.url().to_owned();
    let path = Upstream::tarball_path("plainutil", "0.1.0");
    let index = Upstream::index_file_path("plainutil");
    let timeout = Duration::from_secs(5);
    let delay = Duration::from_millis(300);

    let normal = raw_get(&url, &path, &[], timeout);
    assert_eq!(normal.status, 200);
    assert_eq!(normal.content_length(), Some(len));
    assert_eq!(normal.body, tarball);

    upstream.set_fault("/dl/", Fault::Status(503));
    assert_eq!(raw_get(&url, &path, &[], timeout).status, 503);
    assert_eq!(raw_get(&url, &index, &[], timeout).status, 200);
    // The longest prefix wins, and None exempts.
    upstream.set_fault("/dl/plainutil/", Fault::None);
    assert_eq!(raw_get(&url, &path, &[], timeout).status, 200);
    upstream.clear_faults();

    upstream.set_fault("/dl/", Fault::Truncate);
    let truncated = raw_get(&url, &path, &[], timeout);
    assert_eq!(truncated.status, 200);
    assert_eq!(truncated.content_length(), Some(len));
    assert_eq!(truncated.body, tarball[..len / 2]);
    assert!(
        !truncated.timed_out,
        "the server closes after half the body"
    );
    let client = http_client(None);
    let response = client.get(format!("{url}{path}")).send().unwrap();
    assert!(response.bytes().is_err(), "a client sees the short body");

    upstream.set_fault("/dl/", Fault::ExtraBytes(7));
    let long = raw_get(&url, &path, &[], timeout);
    assert_eq!(long.content_length(), Some(len + 7));
    assert_eq!(long.body.len(), len + 7);
    assert_eq!(long.body[..len], tarball[..]);
    assert!(long.body[len..].iter().all(|&b| b == b'x'));

    upstream.set_fault("/dl/", Fault::Delay(delay));
    let delayed = raw_get(&url, &path, &[], timeout);
    assert!(delayed.head_after >= delay, "{:?}", delayed.head_after);
    assert_eq!(delayed.body, tarball);
    let impatient = http_client(Some(Duration::from_millis(100)));
    let err = impatient.get(format!("{url}{path}")).send().unwrap_err();
    assert!(err.is_timeout(), "{err}");

    upstream.set_fault("/dl/", Fault::DelayBody(delay));
    let stalled = raw_get(&url, &path, &[], timeout);
    assert!(stalled.head_after < delay, "{:?}", stalled.head_after);
    assert!(stalled.total >= delay, "{:?}", stalled.total);
    assert_eq!(stalled.body, tarball);
    // A reader giving up mid-body has half of it.
    let partial = raw_get(&url, &path, &[], Duration::from_millis(100));
    assert!(partial.timed_out);
    assert_eq!(partial.body, tarball[..len / 2]);
    upstream.clear_faults();

    upstream.set_fault_times("/index/", Fault::Status(500), 1);
    assert_eq!(raw_get(&url, &index, &[], timeout).status, 500);
    assert_eq!(raw_get(&url, &index, &[], timeout).status, 200);

    assert_eq!(upstream.requests(&path), 10);
    assert_eq!(upstream.requests(&index), 3);
    assert_eq!(
        raw_get(&url, "/dl/nothing/0.1.0/download", &[], timeout).status,
        404
    );
    assert_eq!(
        raw_get(&url, "/dl/../index/config.json", &[], timeout).status,
        404
    );

    let address = url.strip_prefix("http://").unwrap().to_owned();
    upstream.stop();
    assert!(std::net::TcpStream::connect(address).is_err(), "stopped");
}

/// (e) Index files carry an ETag; `If-None-Match` with it gives 304 until the file
/// changes.
#[test]
fn index_files_answer_if_none_match_with_304() {
    let mut registry = Registry::new();
    registry.publish("plainutil", "0.1.0", &[], PLAINUTIL_LIB);
    let upstream = Upstream::start(&registry);
    let url = upstream.url();
    let index = Upstream::index_file_path("plainutil");
    let timeout = Duration::from_secs(5);
    let first = raw_get(url, &index, &[], timeout);
    assert_eq!(first.status, 200);
    assert_eq!(
        String::from_utf8(first.body.clone()).unwrap(),
        format!("{}\n", registry.index_lines("plainutil")[0])
    );
    let etag = first.header("etag").unwrap().to_owned();
    let cached = raw_get(url, &index, &[("If-None-Match", &etag)], timeout);
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    assert_eq!(cached.header("etag"), Some(etag.as_str()));
    let client = http_client(None);
    let response = client
        .get(format!("{url}{index}"))
        .header("if-none-match", &etag)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 304);

    registry.publish("plainutil", "0.1.1", &[], PLAINUTIL_LIB);
    let changed = raw_get(url, &index, &[("If-None-Match", &etag)], timeout);
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    assert_eq!(String::from_utf8(changed.body).unwrap().lines().count(), 2);
    let config = raw_get(url, "/index/config.json", &[], timeout);
    let config: serde_json::Value = serde_json::from_slice(&config.body).unwrap();
    assert_eq!(config["dl"], format!("{url}/dl"));
}

/// (d) A delegated role forged with its maintainer's key is accepted (so the forged
/// snapshot and timestamp are well formed); forged with any other key it is refused.
#[test]
fn a_forged_role_is_accepted_only_with_its_own_key() {
    let mut registry = Registry::new();
    let maintainer = registry.repo.delegate_namespace("nsdemo");
    registry.publish("nsdemo", "1.0.0", &[], "pub fn answer() -> u32 { 1 }\n");
    registry.publish("plainutil", "0.1.0", &[], PLAINUTIL_LIB);
    let repo = &mut registry.repo;
    let trusting = tempfile::tempdir().unwrap();
    repo.updater(trusting.path()).refresh().unwrap();

    let good = build_crate_tarball("nsdemo", "1.0.1", &[], "pub fn answer() -> u32 { 2 }\n");
    let version_before = repo.role_version("ns-nsdemo");
    let snapshot_before = repo.snapshot_version();
    let forged_version = repo.forge_release("ns-nsdemo", "nsdemo", "1.0.1", &good, &maintainer);
    assert_eq!(forged_version, version_before + 1);
    assert_eq!(repo.snapshot_version(), snapshot_before + 1);
    let fresh = tempfile::tempdir().unwrap();
    for dir in [trusting.path(), fresh.path()] {
        let info = repo
            .updater(dir)
            .get_target_info(&crate_target_path("nsdemo", "1.0.1").unwrap())
            .unwrap()
            .expect("forged with the maintainer's key: accepted");
        assert_eq!(info.hashes["sha256"], hex::encode(Sha256::digest(&good)));
    }

    let stranger = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let evil = build_crate_tarball("nsdemo", "1.0.2", &[], "pub fn answer() -> u32 { 3 }\n");
    repo.forge_release("ns-nsdemo", "nsdemo", "1.0.2", &evil, &stranger);
    let fresh = tempfile::tempdir().unwrap();
    for dir in [trusting.path(), fresh.path()] {
        let err = repo
            .updater(dir)
            .get_target_info(&crate_target_path("nsdemo", "1.0.0").unwrap())
            .unwrap_err();
        assert!(
            matches!(&err, UpdateError::Trust(TrustError::Signatures { role, .. }) if role == "ns-nsdemo"),
            "{err:?}"
        );
    }

    // A fallback bin signed by a real key of the repository that is not the online key.
    let bin = repo.role_for("plainutil", "0.1.0");
    let targets_key = support::clone_key(&repo.keys.targets);
    repo.forge_release(&bin, "plainutil", "0.1.0", b"not the release", &targets_key);
    let err = repo
        .updater(tempfile::tempdir().unwrap().path())
        .get_target_info(&crate_target_path("plainutil", "0.1.0").unwrap())
        .unwrap_err();
    assert!(
        matches!(&err, UpdateError::Trust(TrustError::Signatures { role, .. }) if *role == bin),
        "{err:?}"
    );
}

/// (d) An expired timestamp is refused as expired, by new and returning clients.
#[test]
fn an_expired_timestamp_is_refused() {
    let mut registry = Registry::new();
    registry.publish("plainutil", "0.1.0", &[], PLAINUTIL_LIB);
    let trusting = tempfile::tempdir().unwrap();
    registry.repo.updater(trusting.path()).refresh().unwrap();
    let before = registry.repo.timestamp().signed().version;
    assert_eq!(registry.repo.expire_timestamp(), before + 1);
    let fresh = tempfile::tempdir().unwrap();
    for dir in [trusting.path(), fresh.path()] {
        let err = registry.repo.updater(dir).refresh().unwrap_err();
        assert!(
            matches!(&err, UpdateError::Trust(TrustError::Expired { role, .. }) if role == "timestamp"),
            "{err:?}"
        );
    }
}

/// (d) A timestamp naming the previous snapshot is a rollback for a client that saw the
/// newer one (a new client, with no memory, accepts it: the old snapshot is genuine).
#[test]
fn a_rolled_back_snapshot_is_refused_by_a_client_that_saw_the_newer_one() {
    let mut registry = Registry::new();
    registry.publish("plainutil", "0.1.0", &[], PLAINUTIL_LIB);
    let trusting = tempfile::tempdir().unwrap();
    registry.repo.updater(trusting.path()).refresh().unwrap();
    let snapshot = registry.repo.snapshot_version();
    assert!(snapshot >= 2);
    registry.repo.rollback_snapshot();
    assert_eq!(registry.repo.snapshot_version(), snapshot - 1);
    let err = registry
        .repo
        .updater(trusting.path())
        .refresh()
        .unwrap_err();
    assert!(
        matches!(&err, UpdateError::Trust(TrustError::Rollback { role, new, .. })
            if role == "snapshot.json in timestamp" && *new == snapshot - 1),
        "{err:?}"
    );
    let fresh = tempfile::tempdir().unwrap();
    registry.repo.updater(fresh.path()).refresh().unwrap();
}
