//! Signed index entries, owners' yanks, withheld versions and developer attestations,
//! with real cargo (isolated CARGO_HOME) through the proxy, and `tuf-verifier explain`
//! both straight from the TUF repository and through the proxy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::process::Command;

use support::{CargoProject, Proxy, Registry, Upstream};
use tuf_core::attestation::AttestationKind;
use tuf_core::{KeyAlgorithm, PrivateKey, Signer};

/// `plainutil` 0.1.0 and 0.1.1 in namespace `plainutil` (its owners hold the key), and
/// `sidecar` 1.0.0, signed but unrelated, in a bin.
fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.repo.delegate_namespace("plainutil");
    registry.publish("plainutil", "0.1.0", &[], "pub fn one() -> u32 { 1 }\n");
    registry.publish("plainutil", "0.1.1", &[], "pub fn one() -> u32 { 1 }\n");
    registry.publish("sidecar", "1.0.0", &[], "pub fn two() -> u32 { 2 }\n");
    registry
}

fn owner_key(registry: &Registry) -> PrivateKey {
    support::clone_key(
        registry
            .repo
            .maintainer_key("ns-plainutil")
            .expect("the namespace owner's key"),
    )
}

/// Versions of `name` in a project's lockfile.
/// `tuf-verifier explain ARGS --json`: exit code and the JSON object.
fn explain_cli(args: &[&str]) -> (i32, serde_json::Value) {
    let output = Command::new(support::proxy::binary())
        .arg("explain")
        .args(args)
        .arg("--json")
        .env("TUF_VERIFIER_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "explain printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap(), value)
}

/// `explain` straight from the TUF repository, comparing with `upstream`.
fn explain_here(registry: &Registry, upstream: &Upstream, name: &str) -> serde_json::Value {
    let metadata = registry.repo.metadata_dir();
    let root = registry.repo.root_path();
    explain_cli(&[
        name,
        "--metadata",
        metadata.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--upstream-index",
        &upstream.index_url(),
    ])
    .1
}

/// The proxy's answer for the index file of `name`, as cargo asks for it.
fn get_index(proxy: &Proxy, name: &str) -> reqwest::blocking::Response {
    support::http_client(None)
        .get(format!(
            "{}{}",
            proxy.index_url(),
            support::index_path(name)
        ))
        .send()
        .unwrap()
}

fn version<'a>(explanation: &'a serde_json::Value, version: &str) -> &'a serde_json::Value {
    explanation["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["version"] == version)
        .unwrap_or_else(|| panic!("{version} is not explained: {explanation}"))
}

#[test]
fn a_dependency_upstream_adds_to_a_signed_release_is_never_resolved_and_explain_names_deps() {
    let registry = registry();
    registry.add_index_dependency(
        "plainutil",
        "0.1.1",
        serde_json::json!({
            "name": "sidecar", "req": "^1", "features": [], "optional": false,
            "default_features": true, "target": null, "kind": "normal",
        }),
    );
    let upstream = Upstream::start(&registry);
    // The control: straight at upstream, cargo locks sidecar for plainutil 0.1.1.
    let direct = CargoProject::new(&upstream.index_url(), &[("plainutil", "0.1")]);
    direct.generate_lockfile().assert_success();
    assert_eq!(direct.locked_versions("sidecar"), ["1.0.0"]);

    // Through the proxy, plainutil 0.1.1 resolves as its owners signed it: no sidecar.
    let proxy = Proxy::start(&upstream, &registry.repo);
    let project = CargoProject::new(&proxy.index_url(), &[("plainutil", "0.1")]);
    project.build().assert_success();
    assert_eq!(project.locked_versions("plainutil"), ["0.1.1"]);
    assert_eq!(project.locked_versions("sidecar"), Vec::<String>::new());
    let counts = proxy.status();
    assert_eq!(counts["index"]["lines_differing_upstream"], 1, "{counts}");
    assert_eq!(counts["index"]["lines_from_signed_index"], 2, "{counts}");
    let log = proxy.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("differs from the signed entry")
                && l.contains("version=0.1.1")
                && l.contains("fields=deps")),
        "{log}"
    );

    // explain names the field, straight from the repository and through the proxy alike.
    for explanation in [
        explain_here(&registry, &upstream, "plainutil"),
        explain_cli(&["plainutil", "--proxy", proxy.url()]).1,
    ] {
        assert_eq!(explanation["ok"], true, "{explanation}");
        assert_eq!(
            explanation["index_file"]["role"], "ns-plainutil",
            "{explanation}"
        );
        let changed = version(&explanation, "0.1.1");
        assert_eq!(changed["served"], true);
        assert_eq!(changed["entry"], "signed");
        assert_eq!(changed["upstream_line"], "differs");
        assert_eq!(changed["differing_fields"], serde_json::json!(["deps"]));
        assert_eq!(changed["release"]["role"], "ns-plainutil");
        assert_eq!(version(&explanation, "0.1.0")["upstream_line"], "same");
    }
}

#[test]
fn features_upstream_adds_to_a_signed_release_are_not_what_cargo_sees() {
    let registry = registry();
    registry.edit_index_line("plainutil", "0.1.1", |entry| {
        entry["features"] = serde_json::json!({"fast": []});
    });
    let upstream = Upstream::start(&registry);
    let manifest = "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
                    publish = false\n\n[workspace]\n\n[dependencies]\n\
                    plainutil = { version = \"0.1\", features = [\"fast\"] }\n";
    let direct = CargoProject::new(&upstream.index_url(), &[]);
    std::fs::write(direct.workspace().join("Cargo.toml"), manifest).unwrap();
    direct.generate_lockfile().assert_success();
    assert_eq!(direct.locked_versions("plainutil"), ["0.1.1"]);

    // No signed version has the feature: cargo cannot resolve it through the proxy.
    let proxy = Proxy::start(&upstream, &registry.repo);
    let project = CargoProject::new(&proxy.index_url(), &[]);
    std::fs::write(project.workspace().join("Cargo.toml"), manifest).unwrap();
    project
        .generate_lockfile()
        .assert_failure_containing("fast");
    let explanation = explain_here(&registry, &upstream, "plainutil");
    let changed = version(&explanation, "0.1.1");
    assert_eq!(changed["upstream_line"], "differs", "{explanation}");
    assert_eq!(changed["differing_fields"], serde_json::json!(["features"]));
}

#[test]
fn owners_yank_for_good_and_upstream_may_yank_but_never_unyank() {
    let mut registry = registry();
    // The owners yank 0.1.1; upstream never updates its line.
    registry.repo.yank("plainutil", "0.1.1", true);
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);
    let project = CargoProject::new(&proxy.index_url(), &[("plainutil", "0.1")]);
    project.generate_lockfile().assert_success();
    assert_eq!(project.locked_versions("plainutil"), ["0.1.0"]);
    let explanation = explain_cli(&["plainutil", "0.1.1", "--proxy", proxy.url()]).1;
    let yanked = version(&explanation, "0.1.1");
    assert_eq!(yanked["yanked"], true, "{explanation}");
    assert_eq!(yanked["yanked_by"], serde_json::json!(["owners"]));
    assert_eq!(explanation["versions"].as_array().unwrap().len(), 1);

    // Upstream "unyanking" it (its line says yanked: false, as it always did) changes
    // nothing; and when the owners unyank, upstream's own yank still holds.
    registry.repo.yank("plainutil", "0.1.1", false);
    registry.set_yanked("plainutil", "0.1.1", true);
    let proxy = Proxy::start(&upstream, &registry.repo);
    let project = CargoProject::new(&proxy.index_url(), &[("plainutil", "0.1")]);
    project.generate_lockfile().assert_success();
    assert_eq!(project.locked_versions("plainutil"), ["0.1.0"]);
    let counts = proxy.status();
    assert_eq!(counts["index"]["lines_yanked_upstream"], 1, "{counts}");
    let explanation = explain_here(&registry, &upstream, "plainutil");
    assert_eq!(
        version(&explanation, "0.1.1")["yanked_by"],
        serde_json::json!(["upstream"]),
        "{explanation}"
    );
    // Unyanked everywhere, 0.1.1 is picked again.
    registry.set_yanked("plainutil", "0.1.1", false);
    let project = CargoProject::new(&proxy.index_url(), &[("plainutil", "0.1")]);
    project.generate_lockfile().assert_success();
    assert_eq!(project.locked_versions("plainutil"), ["0.1.1"]);
}

#[test]
fn a_withheld_version_or_a_crate_upstream_denies_is_still_served_from_the_signed_entries() {
    let registry = registry();
    // Upstream serves plainutil's index as it was before 0.1.1.
    registry.remove_index_line("plainutil", "0.1.1");
    let upstream = Upstream::start(&registry);
    let direct = CargoProject::new(&upstream.index_url(), &[("plainutil", "0.1")]);
    direct.generate_lockfile().assert_success();
    assert_eq!(
        direct.locked_versions("plainutil"),
        ["0.1.0"],
        "the control"
    );

    let proxy = Proxy::start(&upstream, &registry.repo);
    let project = CargoProject::new(&proxy.index_url(), &[("plainutil", "0.1")]);
    project.build().assert_success();
    assert_eq!(project.locked_versions("plainutil"), ["0.1.1"]);
    let counts = proxy.status();
    assert_eq!(counts["index"]["lines_withheld_upstream"], 1, "{counts}");
    let log = proxy.stderr();
    assert!(
        log.contains("upstream does not list a signed version"),
        "{log}"
    );
    let explanation = explain_here(&registry, &upstream, "plainutil");
    assert_eq!(version(&explanation, "0.1.1")["upstream_line"], "missing");

    // Upstream answers 404 for the whole crate: the same.
    registry.remove_index_file("plainutil");
    let project = CargoProject::new(&proxy.index_url(), &[("plainutil", "0.1")]);
    project.generate_lockfile().assert_success();
    assert_eq!(project.locked_versions("plainutil"), ["0.1.1"]);
    let explanation = explain_here(&registry, &upstream, "plainutil");
    assert_eq!(explanation["upstream"], "not found", "{explanation}");
    assert_eq!(version(&explanation, "0.1.0")["upstream_line"], "missing");
}

#[test]
fn attestations_are_checked_and_invalid_ones_count_for_nothing() {
    let mut registry = registry();
    let owner = owner_key(&registry);
    let reviewer = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let stranger = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    // The owner attests 0.1.1 as its author; a reviewer the role does not know reviews it.
    registry.repo.attest(
        "plainutil",
        "0.1.1",
        AttestationKind::Release,
        &owner,
        "alice",
    );
    registry.repo.attest(
        "plainutil",
        "0.1.1",
        AttestationKind::Review,
        &reviewer,
        "bob",
    );
    // The role (its key, in a compromise) adds what the editor would refuse: an
    // attestation of 0.1.0 moved to 0.1.1, and one whose signature is broken.
    let of_other_release = registry.repo.signed_attestation(
        "plainutil",
        "0.1.0",
        AttestationKind::Review,
        &owner,
        "alice",
    );
    let mut broken = registry.repo.signed_attestation(
        "plainutil",
        "0.1.1",
        AttestationKind::Review,
        &stranger,
        "carol",
    );
    broken.statement.label = "mallory".into();
    registry.repo.forge_index_file(
        "plainutil",
        |index| {
            let line = index.get_mut("0.1.1").unwrap();
            line.attestations.push(of_other_release);
            line.attestations.push(broken);
        },
        &support::clone_key(&owner),
    );
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);

    // cargo never sees attestations, and resolves as before.
    let project = CargoProject::new(&proxy.index_url(), &[("plainutil", "0.1")]);
    project.generate_lockfile().assert_success();
    assert_eq!(project.locked_versions("plainutil"), ["0.1.1"]);
    let index = get_index(&proxy, "plainutil").text().unwrap();
    assert!(!index.contains("x-tuf-crates-attestations"), "{index}");

    let owner_keyid = owner.public_key().keyid().as_str().to_owned();
    for explanation in [
        explain_here(&registry, &upstream, "plainutil"),
        explain_cli(&["plainutil", "0.1.1", "--proxy", proxy.url()]).1,
    ] {
        let attestations = version(&explanation, "0.1.1")["attestations"]
            .as_array()
            .unwrap()
            .clone();
        let by = |label: &str, kind: &str| {
            attestations
                .iter()
                .find(|a| a["label"] == label && a["kind"] == kind)
                .unwrap_or_else(|| panic!("no {kind} by {label}: {explanation}"))
                .clone()
        };
        let valid = by("alice", "release");
        assert_eq!(valid["valid"], true, "{explanation}");
        assert_eq!(valid["keyid"], owner_keyid.as_str());
        let unknown = by("bob", "review");
        assert_eq!(unknown["valid"], false);
        assert!(
            unknown["problem"]
                .as_str()
                .unwrap()
                .contains("not one that ns-plainutil authorises"),
            "{unknown}"
        );
        let moved = by("alice", "review");
        assert_eq!(moved["valid"], false);
        assert!(
            moved["problem"]
                .as_str()
                .unwrap()
                .contains("another release: its version is 0.1.0"),
            "{moved}"
        );
        let forged = by("mallory", "review");
        assert_eq!(forged["valid"], false);
        assert!(
            forged["problem"]
                .as_str()
                .unwrap()
                .contains("signature does not verify"),
            "{forged}"
        );
    }

    // The human form says the same, one line per attestation.
    let output = Command::new(support::proxy::binary())
        .args(["explain", "plainutil", "0.1.1", "--proxy", proxy.url()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(&format!(
            "attestation: release by alice (keyid {}), ",
            &owner_keyid[..16]
        )) && text.contains(": valid\n"),
        "{text}"
    );
    assert!(text.contains("review by mallory"), "{text}");
    assert!(
        text.contains("NOT VALID: the attestation's signature does not verify"),
        "{text}"
    );
}

#[test]
fn explain_fails_for_a_version_nobody_signed_and_says_why() {
    let mut registry = registry();
    registry.publish_unsigned("plainutil", "0.2.0", &[], "pub fn one() -> u32 { 1 }\n");
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);
    let (code, explanation) = explain_cli(&["plainutil", "0.2.0", "--proxy", proxy.url()]);
    assert_eq!(code, 1, "{explanation}");
    assert_eq!(explanation["ok"], false);
    let unsigned = version(&explanation, "0.2.0");
    assert_eq!(unsigned["served"], false);
    assert_eq!(unsigned["entry"], "none");
    assert!(
        unsigned["refused"]
            .as_str()
            .unwrap()
            .contains("not signed: no key authorised for"),
        "{explanation}"
    );
    // A name that is not a crate name is refused before anything is asked.
    let output = Command::new(support::proxy::binary())
        .args(["explain", "../etc", "--proxy", proxy.url()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not a crate name"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // With --json, a failure is one object too.
    let (code, error) = explain_cli(&["../etc", "--proxy", proxy.url()]);
    assert_eq!(code, 1);
    assert_eq!(error["ok"], false);
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("not a crate name"),
        "{error}"
    );
}

/// The repository's own audit (`tuf-signer verify`), over the published files.
fn audit(registry: &Registry) -> tuf_core::repository::AuditReport {
    let published = registry.repo.published_dir();
    let root = std::fs::read(registry.repo.root_path()).unwrap();
    let mut options = tuf_core::repository::AuditOptions::new(chrono::Utc::now());
    options.targets_dir = Some(published.join("targets"));
    tuf_core::repository::audit_repository(
        &tuf_core::repository::DirectorySource::new(registry.repo.metadata_dir()),
        &root,
        &options,
        &(),
    )
}

#[test]
fn the_audit_flags_an_index_file_that_disagrees_with_the_signed_releases() {
    let mut registry = registry();
    assert!(audit(&registry).is_ok(), "{:?}", audit(&registry).errors());
    registry.publish("plainutil", "0.1.2", &[], "pub fn one() -> u32 { 1 }\n");
    let owner = owner_key(&registry);
    let reviewer = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let moved = registry.repo.signed_attestation(
        "plainutil",
        "0.1.1",
        AttestationKind::Review,
        &reviewer,
        "bob",
    );
    // The role signs an index file whose 0.1.1 entry names another tarball, which lists a
    // version with no signed release, which drops the entry of 0.1.2, and which carries
    // an attestation of 0.1.1 under 0.1.0.
    registry.repo.forge_index_file(
        "plainutil",
        |index| {
            let mut unsigned = index.get("0.1.1").unwrap().clone();
            unsigned.entry.vers = "0.9.0".into();
            index.get_mut("0.1.1").unwrap().entry.cksum = "ab".repeat(32);
            index.get_mut("0.1.0").unwrap().attestations.push(moved);
            index.lines.push(unsigned);
            index.remove("0.1.2");
        },
        &owner,
    );
    let report = audit(&registry);
    let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
    assert!(
        has("plainutil 0.1.1: the entry's cksum abab"),
        "{problems:#?}"
    );
    assert!(
        has("plainutil 0.9.0: an entry for a release that is not signed"),
        "{problems:#?}"
    );
    assert!(
        has("crates/plainutil/plainutil/plainutil-0.1.2.crate: its crate's signed index file has no entry for it"),
        "{problems:#?}"
    );
    // An attestation authorises nothing: a wrong one is a warning, naming what is wrong.
    assert!(
        has("warning: ns-plainutil: crates/plainutil/plainutil/index: plainutil 0.1.0: the review attestation by bob counts for nothing: the attestation is about another release: its version is 0.1.1"),
        "{problems:#?}"
    );
    // (0.1.1's release is not covered either: its entry is refused.)
    assert_eq!(report.errors().len(), 4, "{problems:#?}");
}

/// The index answer's edge cases, through the proxy's `/explain` and `/status`: upstream
/// lines it cannot use are counted as dropped; a signed entry whose release nobody signed
/// is dropped alone; upstream unreachable leaves upstream's word unknown; and with signed
/// entries not required, a version the signed file leaves out is served by its `cksum`,
/// only when that is the signed digest.
#[test]
fn the_index_answer_drops_what_it_cannot_vouch_for_one_version_at_a_time() {
    let mut registry = registry();
    let owner = owner_key(&registry);
    // The owners' file drops 0.1.1 and adds a 0.9.0 nobody signed a release of.
    registry.repo.forge_index_file(
        "plainutil",
        |index| {
            let mut unsigned = index.get("0.1.0").unwrap().clone();
            unsigned.entry.vers = "0.9.0".into();
            index.lines.push(unsigned);
            index.remove("0.1.1");
        },
        &owner,
    );
    // Upstream repeats its 0.1.0 line.
    let first = registry.index_lines("plainutil")[0].clone();
    let mut file = std::fs::read_to_string(registry.index_file("plainutil")).unwrap();
    file.push_str(&first);
    file.push('\n');
    std::fs::write(registry.index_file("plainutil"), file).unwrap();
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start_with(
        &upstream,
        &registry.repo,
        &["require_signed_index_entries = \"off\""],
    );
    let project = CargoProject::new(&proxy.index_url(), &[("plainutil", "0.1")]);
    project.generate_lockfile().assert_success();
    // 0.1.1 by its cksum (signed entries not required), 0.9.0 dropped, not the crate.
    assert_eq!(project.locked_versions("plainutil"), ["0.1.1"]);
    let counts = proxy.status();
    assert_eq!(counts["index"]["lines_dropped"], 2, "{counts}");
    assert_eq!(counts["index"]["lines_checksum_only"], 1, "{counts}");
    let explanation = explain_cli(&["plainutil", "--proxy", proxy.url()]).1;
    assert_eq!(
        version(&explanation, "0.1.0")["served"],
        true,
        "{explanation}"
    );
    let checksum_only = version(&explanation, "0.1.1");
    assert_eq!(checksum_only["served"], true, "{explanation}");
    assert_eq!(checksum_only["entry"], "checksum-only", "{explanation}");
    let unsigned = version(&explanation, "0.9.0");
    assert_eq!(unsigned["served"], false, "{explanation}");

    // A cksum that is not the signed digest: 0.1.1 is dropped too.
    registry.edit_index_line("plainutil", "0.1.1", |entry| {
        entry["cksum"] = serde_json::json!("ab".repeat(32));
    });
    let explanation = explain_cli(&["plainutil", "--proxy", proxy.url()]).1;
    assert_eq!(
        version(&explanation, "0.1.1")["served"],
        false,
        "{explanation}"
    );
    assert_eq!(
        version(&explanation, "0.1.0")["served"],
        true,
        "{explanation}"
    );

    // Upstream failing: its word on each signed version is unknown, not "missing".
    upstream.set_fault("/index/", support::upstream::Fault::Status(500));
    let explanation = explain_cli(&["plainutil", "--proxy", proxy.url()]).1;
    assert_eq!(
        version(&explanation, "0.1.0")["upstream_line"],
        "unknown",
        "{explanation}"
    );
}

/// A signed index file the TUF repository cannot serve now is a 503 (try again); one that
/// does not match its signed target is a 403 (refused), and neither is served.
#[test]
fn a_signed_index_file_unavailable_is_503_and_one_not_matching_is_403() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    let index = |proxy: &Proxy| get_index(proxy, "plainutil");
    let proxy = Proxy::start(&upstream, &registry.repo);
    assert_eq!(index(&proxy).status(), 200);
    let file_path = upstream
        .request_log()
        .into_iter()
        .map(|r| r.path)
        .find(|p| p.contains("/crates/plainutil/plainutil/") && p.ends_with(".index"))
        .expect("the proxy fetched the signed index file");
    // Kept in memory: explaining the crate (which judges it again) does not fetch it again.
    let explanation = explain_cli(&["plainutil", "--proxy", proxy.url()]).1;
    assert_eq!(
        version(&explanation, "0.1.1")["served"],
        true,
        "{explanation}"
    );
    assert_eq!(upstream.requests(&file_path), 1);
    assert_eq!(proxy.status()["signed_index_files"]["files"], 1);

    upstream.set_fault(&file_path, support::Fault::Status(500));
    let proxy = Proxy::start(&upstream, &registry.repo);
    let answer = index(&proxy);
    assert_eq!(answer.status(), 503);
    assert!(answer
        .text()
        .unwrap()
        .contains("cannot fetch the signed index file crates/plainutil/plainutil/index"),);
    upstream.clear_faults();

    let on_disk = registry
        .repo
        .targets_dir()
        .join("crates/plainutil/plainutil")
        .join(file_path.rsplit('/').next().unwrap());
    let mut bytes = std::fs::read(&on_disk).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&on_disk, bytes).unwrap();
    let proxy = Proxy::start(&upstream, &registry.repo);
    let answer = index(&proxy);
    assert_eq!(answer.status(), 403);
    assert!(answer
        .text()
        .unwrap()
        .contains("does not match its signed target"));
}

/// A version whose release lookup is refused for a reason other than "not signed" (its
/// hash bin is forged) refuses the crate's whole answer: cargo must not resolve around a
/// role it cannot trust. (Its signed index file is in another bin, which is fine.)
#[test]
fn a_refused_role_on_a_versions_path_refuses_the_crate_not_just_the_version() {
    let mut registry = registry();
    let name = (0..64)
        .map(|i| format!("binned{i}"))
        .find(|name| {
            let index = tuf_core::layout::crate_index_path(name).unwrap();
            let release = tuf_core::layout::crate_target_path(name, "1.0.0").unwrap();
            registry.repo.role_for_target(&index) != registry.repo.role_for_target(&release)
        })
        .expect("a crate whose index file and release are in different bins");
    registry.publish(&name, "1.0.0", &[], "pub fn three() -> u32 { 3 }\n");
    let bin = registry.repo.role_for(&name, "1.0.0");
    let stranger = PrivateKey::generate(KeyAlgorithm::Ed25519);
    registry.repo.forge(&bin, |_| {}, &stranger);
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);
    let answer = get_index(&proxy, &name);
    assert_eq!(answer.status(), 403);
    let body = answer.text().unwrap();
    assert!(
        body.contains(&format!("refused the index of {name}")),
        "{body}"
    );
    assert!(body.contains(&bin), "{body}");

    // The same for a version judged by its cksum alone (signed entries not required, and
    // the signed index file leaves it out).
    let online = support::clone_key(&registry.repo.keys.online);
    registry.repo.forge_index_file(
        &name,
        |index| {
            index.remove("1.0.0");
        },
        &online,
    );
    let proxy = Proxy::start_with(
        &upstream,
        &registry.repo,
        &["require_signed_index_entries = \"off\""],
    );
    let answer = get_index(&proxy, &name);
    assert_eq!(answer.status(), 403);
    let body = answer.text().unwrap();
    assert!(body.contains(&bin), "{body}");
}

/// The signed index files kept in memory stay within `index_cache_size`: `/status` counts
/// their bytes, and the least recently used file goes first.
#[test]
fn signed_index_files_in_memory_stay_within_their_budget() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    let size_of = |name: &str| {
        let dir = registry
            .repo
            .targets_dir()
            .join(format!("crates/{name}/{name}"));
        // The newest file holds every version: the largest of the crate's index files.
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "index"))
            .map(|p| std::fs::metadata(p).unwrap().len())
            .max()
            .unwrap()
    };
    let (plainutil, sidecar) = (size_of("plainutil"), size_of("sidecar"));
    let budget = plainutil.max(sidecar) + 1;
    assert!(budget < plainutil + sidecar);
    let proxy = Proxy::start_with(
        &upstream,
        &registry.repo,
        &[&format!("index_cache_size = {budget}")],
    );
    explain_cli(&["plainutil", "--proxy", proxy.url()]);
    let usage = &proxy.status()["signed_index_files"];
    assert_eq!(usage["files"], 1, "{usage}");
    assert_eq!(usage["bytes"], plainutil, "{usage}");
    assert_eq!(usage["budget_bytes"], budget, "{usage}");
    explain_cli(&["sidecar", "--proxy", proxy.url()]);
    let usage = &proxy.status()["signed_index_files"];
    assert_eq!(usage["files"], 1, "{usage}");
    assert_eq!(usage["bytes"], sidecar, "{usage}");
    // A budget of exactly one file's size holds it.
    let proxy = Proxy::start_with(
        &upstream,
        &registry.repo,
        &[&format!("index_cache_size = {plainutil}")],
    );
    explain_cli(&["plainutil", "--proxy", proxy.url()]);
    let usage = &proxy.status()["signed_index_files"];
    assert_eq!(usage["files"], 1, "{usage}");
}

/// A crate whose role signs no index file (a repository from before signed entries):
/// judged by `cksum` when signed entries are not required, not served when they are; and
/// upstream's answer decides the rest, since there is no signed entry to fall back on (no
/// such crate upstream is a 404 naming upstream, upstream failing a 502).
#[test]
fn a_crate_without_a_signed_index_file_depends_on_the_setting_and_on_upstream() {
    let mut registry = registry();
    let index_target = tuf_core::layout::crate_index_path("sidecar").unwrap();
    let role = registry.repo.role_for_target(&index_target);
    let online = support::clone_key(&registry.repo.keys.online);
    registry.repo.forge(
        &role,
        |targets| {
            targets.targets.remove(&index_target);
        },
        &online,
    );
    let upstream = Upstream::start(&registry);
    let required = Proxy::start(&upstream, &registry.repo);
    let answer = get_index(&required, "sidecar");
    assert_eq!(answer.status(), 404);
    assert!(answer.text().unwrap().contains("no signed index file"));
    let proxy = Proxy::start_with(
        &upstream,
        &registry.repo,
        &["require_signed_index_entries = \"off\""],
    );
    let answer = get_index(&proxy, "sidecar");
    assert_eq!(answer.status(), 200);
    let body = answer.text().unwrap();
    assert!(body.contains("\"vers\":\"1.0.0\""), "{body}");
    let path = format!("/index/{}", support::index_path("sidecar"));
    upstream.set_fault(&path, support::Fault::Status(500));
    let answer = get_index(&proxy, "sidecar");
    assert_eq!(answer.status(), 502, "{:?}", answer.text());
    upstream.set_fault(&path, support::Fault::Status(404));
    let answer = get_index(&proxy, "sidecar");
    assert_eq!(answer.status(), 404);
    let body = answer.text().unwrap();
    assert!(body.contains("no crate sidecar upstream"), "{body}");
}

/// An index answer kept for conditional requests holds only until the earliest expiry on
/// its delegation path: past it, upstream's 304 does not bring the kept answer back, and
/// the crate is judged again (and refused, its role having expired).
#[test]
fn a_kept_index_answer_is_not_reused_past_its_expiry() {
    let mut registry = registry();
    let bin = registry.repo.role_for("sidecar", "1.0.0");
    let online = support::clone_key(&registry.repo.keys.online);
    let expires = chrono::Utc::now() + chrono::Duration::seconds(3);
    registry
        .repo
        .forge(&bin, |targets| targets.expires = expires, &online);
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);
    assert_eq!(get_index(&proxy, "sidecar").status(), 200);
    let wait = (expires - chrono::Utc::now()).num_milliseconds().max(0) as u64 + 1500;
    std::thread::sleep(std::time::Duration::from_millis(wait));
    let answer = get_index(&proxy, "sidecar");
    let status = answer.status();
    let body = answer.text().unwrap();
    assert_ne!(status, 200, "an expired answer was served again: {body}");
    assert!(body.contains("expired"), "{status}: {body}");
    // Upstream was asked with the kept ETag and said 304: the refusal is the proxy's own
    // judgement, not upstream's.
    assert!(
        upstream.request_log().iter().any(|r| r.path
            == format!("/index/{}", support::index_path("sidecar"))
            && r.status == 304),
        "{:?}",
        upstream.request_log()
    );
}
