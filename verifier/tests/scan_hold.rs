//! Releases held for a human (spec/scanner.md): under a policy with `[scan] hold-above`,
//! a new release whose recorded scanner score is above the threshold is hidden from
//! cargo, so `cargo update` stays on the version locked before; a review attestation by
//! a developer the policy trusts releases it, and `cargo update` then takes it. Real
//! cargo, through the proxy, in front of a local upstream.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::{Duration, Instant};

use support::{CargoProject, Proxy, Registry, Upstream};
use tuf_core::attestation::AttestationKind;
use tuf_core::layout::RecordedScan;
use tuf_core::{KeyAlgorithm, PrivateKey, Signer};

/// Waits until the proxy trusts a snapshot newer than `than`.
fn wait_for_snapshot(proxy: &Proxy, than: u64) {
    let started = Instant::now();
    while proxy.status()["trust"]["snapshot_version"]
        .as_u64()
        .unwrap_or(0)
        <= than
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{}",
            proxy.describe()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_release_scored_above_the_threshold_waits_for_a_trusted_review() {
    let alice = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let reviewer = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let mut registry = Registry::new();
    registry.publish("widget", "1.0.0", &[], "pub fn w() -> u32 { 1 }\n");
    registry
        .repo
        .attest("widget", "1.0.0", AttestationKind::Release, &alice, "alice");
    let upstream = Upstream::start(&registry);
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[scan]\nhold-above = 40\n\n\
             [[developer]]\nlabel = \"alice\"\nkey = \"{}\"\n\n\
             [[developer]]\nlabel = \"rita\"\nkey = \"{}\"\ncrates = [\"widget\"]\n",
            alice.keyid(),
            reviewer.keyid()
        ),
    )
    .unwrap();
    let proxy = Proxy::start_with(
        &upstream,
        &registry.repo,
        &[&format!("policy = {:?}", policy.to_str().unwrap())],
    );
    let project = CargoProject::new(&proxy.index_url(), &[("widget", "1")]);
    project.build().assert_success();
    assert_eq!(project.locked_versions("widget"), ["1.0.0"]);

    // 1.1.0: released by alice, and the scanner's recorded score is 65.
    let before = proxy.status()["trust"]["snapshot_version"]
        .as_u64()
        .unwrap();
    registry.publish("widget", "1.1.0", &[], "pub fn w() -> u32 { 2 }\n");
    registry
        .repo
        .attest("widget", "1.1.0", AttestationKind::Release, &alice, "alice");
    registry.repo.record_scan(
        "widget",
        "1.1.0",
        &RecordedScan {
            score: 65,
            against: Some("1.0.0".into()),
            flags: vec![
                "build.rs: a build script appears (20)".into(),
                "build.rs:3: the build script spawns processes (25)".into(),
            ],
        },
    );
    wait_for_snapshot(&proxy, before);
    project.update().assert_success();
    assert_eq!(
        project.locked_versions("widget"),
        ["1.0.0"],
        "held: cargo stays on 1.0.0"
    );
    let explained = support::http_client(None)
        .get(format!("{}/explain/widget/1.1.0", proxy.url()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    for needle in [
        "held for review: the release scanner scored it 65 against 1.0.0",
        "build.rs:3: the build script spawns processes (25)",
        "tuf-signer release attest widget 1.1.0 --key REVIEWER.pem",
    ] {
        assert!(explained.contains(needle), "{needle:?} in {explained}");
    }
    // Asking for it by name, cargo sees only 1.0.0 (as for any version the policy
    // hides while another is trusted); the proxy's explain says why, as above.
    project.set_dependencies(&[("widget", "=1.1.0")]);
    project
        .build()
        .assert_failure_containing("candidate versions found which didn't match: 1.0.0");
    project.set_dependencies(&[("widget", "1")]);

    // A trusted reviewer attests it: cargo update takes it.
    let before = proxy.status()["trust"]["snapshot_version"]
        .as_u64()
        .unwrap();
    registry.repo.attest(
        "widget",
        "1.1.0",
        AttestationKind::Review,
        &reviewer,
        "rita",
    );
    wait_for_snapshot(&proxy, before);
    project.update().assert_success();
    assert_eq!(project.locked_versions("widget"), ["1.1.0"]);
    project.build().assert_success();
}
