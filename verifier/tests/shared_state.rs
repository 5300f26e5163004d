//! Proxy replicas sharing state in a real S3-compatible server (moto, on 127.0.0.1):
//! a tarball one replica verified is served by another with no upstream request, an
//! object tampered with in the bucket is refused and replaced, and a replica started with
//! an empty disk still refuses a rollback another replica's baseline rules out. The
//! bucket is untrusted throughout (spec/proxy.md, "Replicas and shared state").
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::{Duration, Instant};

use support::{http_client, Proxy, Registry, S3Server, Upstream};

const PREFIX: &str = "replicas";

fn replica(upstream: &Upstream, registry: &Registry, s3: &S3Server) -> Proxy {
    Proxy::start_configured(upstream, &registry.repo, |config| {
        config.extra = s3.config_lines(PREFIX);
        config.env = s3.env();
    })
}

fn download(proxy: &Proxy, name: &str, version: &str) -> (u16, Vec<u8>) {
    let url = format!("{}/api/v1/crates/{name}/{version}/download", proxy.url());
    let response = http_client(Some(Duration::from_secs(20)))
        .get(&url)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    (status, response.bytes().unwrap().to_vec())
}

fn health(proxy: &Proxy) -> (u16, String) {
    let response = http_client(Some(Duration::from_secs(5)))
        .get(format!("{}/healthz", proxy.url()))
        .send()
        .unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

/// Waits until the bucket's object under `key` is `bytes` (a replica publishes its
/// baseline after each refresh).
fn wait_for_object(s3: &S3Server, key: &str, bytes: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while s3.get(key).as_deref() != Some(bytes) {
        assert!(
            Instant::now() < deadline,
            "{key} never became the trusted bytes; keys: {:?}",
            s3.keys()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn counter(proxy: &Proxy, path: &[&str]) -> u64 {
    let status = proxy.status();
    let mut value = &status;
    for part in path {
        value = &value[*part];
    }
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {status:#}"))
}

#[test]
fn a_tarball_one_replica_verified_is_served_by_another_and_a_tampered_object_is_replaced() {
    let mut registry = Registry::new();
    registry.publish("plainutil", "0.1.0", &[], "pub fn one() -> u32 { 1 }\n");
    let upstream = Upstream::start(&registry);
    let s3 = S3Server::start("tuf-crates-shared");
    let signed = registry.signed_tarball("plainutil", "0.1.0");
    let key = format!(
        "{PREFIX}/tarballs/{}",
        registry.signed_sha256("plainutil", "0.1.0")
    );

    let a = replica(&upstream, &registry, &s3);
    let b = replica(&upstream, &registry, &s3);
    assert_eq!(download(&a, "plainutil", "0.1.0"), (200, signed.clone()));
    assert_eq!(counter(&a, &["downloads", "upstream_requests"]), 1);
    assert_eq!(s3.get(&key).as_deref(), Some(signed.as_slice()));

    // B has never seen it: the bucket answers, verified again, and upstream is not asked.
    assert_eq!(download(&b, "plainutil", "0.1.0"), (200, signed.clone()));
    assert_eq!(counter(&b, &["downloads", "upstream_requests"]), 0);
    assert_eq!(counter(&b, &["downloads", "served_from_shared"]), 1);
    assert_eq!(counter(&b, &["shared_state", "tarballs_verified"]), 1);
    let metrics = http_client(Some(Duration::from_secs(5)))
        .get(format!("{}/metrics", b.url()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    for line in [
        "tuf_verifier_shared_tarballs_verified_total 1\n",
        "tuf_verifier_downloads_served_from_shared_total 1\n",
    ] {
        assert!(metrics.contains(line), "{line:?} not in\n{metrics}");
    }

    // Someone with write access to the bucket swaps the tarball, same length and not.
    let mut same_length = signed.clone();
    *same_length.last_mut().unwrap() ^= 1;
    for (n, tampered) in [same_length, b"not the tarball".to_vec()]
        .into_iter()
        .enumerate()
    {
        s3.put(&key, &tampered);
        let c = replica(&upstream, &registry, &s3);
        assert_eq!(
            download(&c, "plainutil", "0.1.0"),
            (200, signed.clone()),
            "case {n}: the verified bytes, from upstream"
        );
        assert_eq!(
            counter(&c, &["shared_state", "tarballs_refused"]),
            1,
            "case {n}"
        );
        assert_eq!(
            counter(&c, &["downloads", "served_from_shared"]),
            0,
            "case {n}"
        );
        assert_eq!(
            counter(&c, &["downloads", "upstream_requests"]),
            1,
            "case {n}"
        );
        // ... and the bucket holds the signed bytes again.
        assert_eq!(s3.get(&key).as_deref(), Some(signed.as_slice()), "case {n}");
    }
    assert_eq!(
        upstream.requests_under("/dl/plainutil/"),
        3,
        "A, and the two replicas that found a tampered object"
    );
}

#[test]
fn a_replica_with_an_empty_disk_refuses_a_rollback_another_replica_saw() {
    let mut registry = Registry::new();
    registry.publish("plainutil", "0.1.0", &[], "pub fn one() -> u32 { 1 }\n");
    registry.publish("plainutil", "0.1.1", &[], "pub fn one() -> u32 { 11 }\n");
    let upstream = Upstream::start(&registry);
    let s3 = S3Server::start("tuf-crates-baseline");

    let mut a = replica(&upstream, &registry, &s3);
    assert_eq!(
        a.status()["trust"]["snapshot_version"],
        registry.repo.snapshot_version()
    );
    let timestamp = std::fs::read(
        registry
            .repo
            .published_dir()
            .join("metadata/timestamp.json"),
    )
    .unwrap();
    wait_for_object(
        &s3,
        &format!("{PREFIX}/metadata/timestamp.json"),
        &timestamp,
    );
    a.kill();

    // The repository rolls back to the previous snapshot. A replica starting from the
    // root alone, with its own empty disk, would take it: the control.
    registry.repo.rollback_snapshot();
    let alone = Proxy::start(&upstream, &registry.repo);
    assert_eq!(health(&alone).0, 200, "{}", alone.describe());

    // A replica with an empty disk and the shared state knows better.
    let b = replica(&upstream, &registry, &s3);
    let reason = b.wait_for_health(503);
    assert!(reason.contains("(rollback)"), "{reason}");
    assert!(counter(&b, &["shared_state", "baseline_adopted"]) >= 1);
    // It did not move the shared baseline backwards either.
    assert_eq!(
        s3.get(&format!("{PREFIX}/metadata/timestamp.json"))
            .as_deref(),
        Some(timestamp.as_slice())
    );
}

#[test]
fn a_forged_baseline_in_the_bucket_is_ignored_and_replaced() {
    let mut registry = Registry::new();
    registry.publish("plainutil", "0.1.0", &[], "pub fn one() -> u32 { 1 }\n");
    let upstream = Upstream::start(&registry);
    let s3 = S3Server::start("tuf-crates-forged");
    let key = format!("{PREFIX}/metadata/timestamp.json");
    // A timestamp claiming a huge version, with no valid signature: were it believed,
    // every real timestamp would look like a rollback and the replicas would refuse all.
    let published = registry
        .repo
        .published_dir()
        .join("metadata/timestamp.json");
    let real: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&published).unwrap()).unwrap();
    let mut forged = real.clone();
    forged["signed"]["version"] = serde_json::json!(1_000_000);
    s3.put(&key, &serde_json::to_vec(&forged).unwrap());

    let proxy = replica(&upstream, &registry, &s3);
    assert_eq!(health(&proxy).0, 200, "{}", proxy.describe());
    assert!(counter(&proxy, &["shared_state", "baseline_refused"]) >= 1);
    assert_eq!(counter(&proxy, &["shared_state", "baseline_adopted"]), 0);
    // The trusted timestamp replaced the forgery.
    wait_for_object(&s3, &key, &std::fs::read(&published).unwrap());
    assert_eq!(download(&proxy, "plainutil", "0.1.0").0, 200);
}
