//! The trust policy enforced by the proxy, with real cargo (isolated CARGO_HOME) through
//! it: untrusted developers named with the line to add, dependencies judged from signed
//! entries, hidden versions, exceptions, reloads (SIGHUP, a changed file, a broken file)
//! and a reload under load (spec/trust-policy.md).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{CargoProject, Proxy, Registry, Upstream};
use tuf_core::attestation::AttestationKind;
use tuf_core::{KeyAlgorithm, PrivateKey, Signer};

/// The developers of these tests.
struct Developers {
    alice: PrivateKey,
    mauro: PrivateKey,
}

impl Developers {
    fn new() -> Self {
        Self {
            alice: PrivateKey::generate(KeyAlgorithm::Ed25519),
            mauro: PrivateKey::generate(KeyAlgorithm::EcdsaP256),
        }
    }
}

/// `[[developer]]` lines for `label` and `key`.
fn developer(label: &str, key: &PrivateKey) -> String {
    format!(
        "[[developer]]\nlabel = \"{label}\"\nkey = \"{}\"\n",
        key.keyid()
    )
}

/// Writes `text` to `path` as an editor that saves atomically does.
fn write_policy(path: &Path, text: &str) {
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

/// `parameters` 0.3.1, released (attested) by mauro3 only; `good` 1.0.0 depending on
/// `parameters` ^0.3 and `solo` 1.0.0, both released by alice.
fn registry(developers: &Developers) -> Registry {
    let mut registry = Registry::new();
    registry.publish("parameters", "0.3.1", &[], "pub fn p() -> u32 { 3 }\n");
    registry.publish(
        "good",
        "1.0.0",
        &[("parameters", "0.3")],
        "pub fn g() -> u32 { 1 }\n",
    );
    registry.publish("solo", "1.0.0", &[], "pub fn s() -> u32 { 1 }\n");
    let repo = &mut registry.repo;
    repo.attest(
        "parameters",
        "0.3.1",
        AttestationKind::Release,
        &developers.mauro,
        "mauro3",
    );
    for name in ["good", "solo"] {
        repo.attest(
            name,
            "1.0.0",
            AttestationKind::Release,
            &developers.alice,
            "alice",
        );
    }
    registry
}

/// A proxy in front of `upstream` serving under the policy file `policy`.
fn proxy_with_policy(upstream: &Upstream, registry: &Registry, policy: &Path) -> Proxy {
    Proxy::start_with(
        upstream,
        &registry.repo,
        &[&format!("policy = {:?}", policy.to_str().unwrap())],
    )
}

/// The configuration of a proxy in front of `upstream` under the policy file `policy`,
/// its state in `state` (for tests that start it themselves).
fn policy_config(
    upstream: &Upstream,
    registry: &Registry,
    policy: &Path,
    state: &Path,
) -> support::ProxyConfig {
    support::ProxyConfig::new(upstream, &registry.repo, state)
        .with_line(&format!("policy = {:?}", policy.to_str().unwrap()))
}

/// Waits until the proxy's policy generation is past `generation`; returns the new one.
fn wait_for_generation(proxy: &Proxy, generation: u64) -> u64 {
    let started = Instant::now();
    loop {
        let status = proxy.status();
        let now = status["policy"]["generation"].as_u64().unwrap();
        if now > generation {
            return now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the policy was not reloaded: {}",
            status["policy"]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn policy_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    (dir, path)
}

/// The proxy's explanation of `name`, as JSON.
fn explain(proxy: &Proxy, name: &str) -> serde_json::Value {
    let body = support::http_client(None)
        .get(format!("{}/explain/{name}", proxy.url()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn an_untrusted_developer_is_named_with_the_line_to_add_and_trusting_them_fixes_the_build() {
    let developers = Developers::new();
    let registry = registry(&developers);
    let upstream = Upstream::start(&registry);
    let (_dir, policy) = policy_dir();
    write_policy(
        &policy,
        &format!("# our team\n{}", developer("alice", &developers.alice)),
    );
    let proxy = proxy_with_policy(&upstream, &registry, &policy);
    let project = CargoProject::new(&proxy.index_url(), &[("parameters", "0.3")]);
    let output = project.build();
    let mauro_keyid = developers.mauro.keyid();
    for needle in [
        "Package parameters 0.3.1 cannot be a dependency, because you do not trust developer @mauro3",
        &mauro_keyid[..8],
        "To use this package you need to add @mauro3 to your list of trusted developers",
        "[[developer]]",
        &format!("key = \"{mauro_keyid}\""),
    ] {
        assert!(
            !output.success() && output.stderr.contains(needle),
            "{needle:?} not in: {}",
            output.describe()
        );
    }
    assert!(proxy.status()["index"]["refused_policy"].as_u64().unwrap() >= 1);
    // The line the message gives, added to the file: reloaded on its own.
    let generation = proxy.status()["policy"]["generation"].as_u64().unwrap();
    let mut text = std::fs::read_to_string(&policy).unwrap();
    text.push_str(&developer("mauro3", &developers.mauro));
    write_policy(&policy, &text);
    wait_for_generation(&proxy, generation);
    project.build().assert_success();
    assert_eq!(project.locked_versions("parameters"), ["0.3.1"]);
}

#[test]
fn an_untrusted_dependency_is_named_with_what_requires_it() {
    let developers = Developers::new();
    let registry = registry(&developers);
    let upstream = Upstream::start(&registry);
    let (_dir, policy) = policy_dir();
    write_policy(&policy, &developer("alice", &developers.alice));
    let proxy = proxy_with_policy(&upstream, &registry, &policy);
    // solo, by alice with no dependency, builds.
    CargoProject::new(&proxy.index_url(), &[("solo", "1")])
        .build()
        .assert_success();
    let project = CargoProject::new(&proxy.index_url(), &[("good", "1")]);
    project.build().assert_failure_containing(
        "Package good 1.0.0 cannot be a dependency, because parameters ^0.3 is required by good, \
         and no matching version is trusted: parameters 0.3.1: you do not trust developer @mauro3",
    );
    // With dependencies not judged, good builds, and cargo still needs parameters, which
    // fails on its own.
    write_policy(
        &policy,
        &format!(
            "[rule]\ndependencies = \"any\"\n{}",
            developer("alice", &developers.alice)
        ),
    );
    let generation = wait_for_generation(&proxy, 1);
    assert_eq!(generation, 2);
    project
        .build()
        .assert_failure_containing("Package parameters 0.3.1 cannot be a dependency");
}

#[test]
fn a_trusted_owner_releasing_without_an_attestation_is_not_trusted() {
    let developers = Developers::new();
    let mut registry = registry(&developers);
    let owner = registry.repo.delegate_namespace("ownedcrate");
    registry.publish("ownedcrate", "1.0.0", &[], "pub fn o() -> u32 { 1 }\n");
    let upstream = Upstream::start(&registry);
    let (_dir, policy) = policy_dir();
    // The policy trusts the namespace owner's very key: its TUF signature is not a vouch.
    write_policy(&policy, &developer("owner", &owner));
    let proxy = proxy_with_policy(&upstream, &registry, &policy);
    let project = CargoProject::new(&proxy.index_url(), &[("ownedcrate", "1")]);
    project
        .build()
        .assert_failure_containing("no developer attested it");
    let explanation = explain(&proxy, "ownedcrate");
    let version = &explanation["versions"][0];
    assert_eq!(version["served"], false, "{explanation}");
    assert_eq!(version["policy"]["trusted"], false, "{explanation}");
    assert!(
        explanation["refusal"]
            .as_str()
            .unwrap()
            .contains("Package ownedcrate 1.0.0 cannot be a dependency"),
        "{explanation}"
    );
    // The same straight from the TUF repository, with --policy.
    let (metadata, root) = (registry.repo.metadata_dir(), registry.repo.root_path());
    let (code, stdout, stderr) = verifier(&[
        "explain",
        "ownedcrate",
        "--metadata",
        metadata.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let offline: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        offline["versions"][0]["policy"]["trusted"], false,
        "{offline}"
    );
    assert!(offline["versions"][0]["policy"]["reason"]
        .as_str()
        .unwrap()
        .contains("no developer attested it"));
}

#[test]
fn an_untrusted_newer_version_is_hidden_and_cargo_locks_the_trusted_one() {
    let developers = Developers::new();
    let mut registry = registry(&developers);
    registry.publish("solo", "1.1.0", &[], "pub fn s() -> u32 { 11 }\n");
    registry.repo.attest(
        "solo",
        "1.1.0",
        AttestationKind::Release,
        &developers.mauro,
        "mauro3",
    );
    let upstream = Upstream::start(&registry);
    let (_dir, policy) = policy_dir();
    write_policy(&policy, &developer("alice", &developers.alice));
    let proxy = proxy_with_policy(&upstream, &registry, &policy);
    let project = CargoProject::new(&proxy.index_url(), &[("solo", "1")]);
    project.build().assert_success();
    assert_eq!(project.locked_versions("solo"), ["1.0.0"]);
    // Each answer for solo hid one line (1.1.0).
    let status = proxy.status();
    let hidden = status["index"]["lines_dropped_policy"].as_u64().unwrap();
    let served = status["index"]["served"].as_u64().unwrap();
    assert!(hidden >= 1 && hidden <= served, "{status}");
    let explanation = explain(&proxy, "solo");
    let versions = explanation["versions"].as_array().unwrap();
    let of = |v: &str| versions.iter().find(|x| x["version"] == v).unwrap();
    assert_eq!(of("1.0.0")["served"], true, "{explanation}");
    assert_eq!(of("1.0.0")["policy"]["trusted"], true, "{explanation}");
    let alice_prefix = &developers.alice.keyid()[..8];
    assert!(
        of("1.0.0")["policy"]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("attested by @alice ({alice_prefix}")),
        "{explanation}"
    );
    assert_eq!(of("1.1.0")["served"], false, "{explanation}");
    assert!(
        of("1.1.0")["refused"]
            .as_str()
            .unwrap()
            .contains("you do not trust developer @mauro3"),
        "{explanation}"
    );
    // The hidden version cannot be downloaded either.
    let download = support::http_client(None)
        .get(format!("{}/api/v1/crates/solo/1.1.0/download", proxy.url()))
        .send()
        .unwrap();
    assert_eq!(download.status(), 403);
    assert!(download.text().unwrap().contains("@mauro3"));
    assert!(
        proxy.status()["downloads"]["refused_policy"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

#[test]
fn an_exception_admits_one_version_with_its_reason_shown() {
    let developers = Developers::new();
    let registry = registry(&developers);
    let upstream = Upstream::start(&registry);
    let (_dir, policy) = policy_dir();
    write_policy(
        &policy,
        &format!(
            "{}\n[[exception]]\ncrate = \"parameters\"\nversion = \"=0.3.1\"\n\
             reason = \"audited by hand, SEC-142\"\n",
            developer("alice", &developers.alice)
        ),
    );
    let proxy = proxy_with_policy(&upstream, &registry, &policy);
    // good's dependency is admitted by the exception: the whole graph builds.
    let project = CargoProject::new(&proxy.index_url(), &[("good", "1")]);
    project.build().assert_success();
    let explanation = explain(&proxy, "parameters");
    let version = &explanation["versions"][0];
    assert_eq!(version["policy"]["exception"], "audited by hand, SEC-142");
    assert!(
        version["policy"]["reason"]
            .as_str()
            .unwrap()
            .contains("exception on line 5"),
        "{explanation}"
    );
}

#[test]
fn a_broken_policy_is_fatal_at_start_and_kept_out_on_reload() {
    let developers = Developers::new();
    let registry = registry(&developers);
    let upstream = Upstream::start(&registry);
    let (dir, policy) = policy_dir();
    write_policy(
        &policy,
        "[[developer]]\nlabel = \"alice\"\nkey = \"ab12\"\n",
    );
    let state = tempfile::tempdir().unwrap();
    let config = policy_config(&upstream, &registry, &policy, state.path());
    let error = Proxy::spawn(config, &dir.path().join("serve.toml"))
        .err()
        .expect("a broken policy must stop the proxy");
    assert!(
        error
            .stderr
            .contains("policy.toml:1: key \"ab12\" of alice"),
        "{}",
        error.stderr
    );
    assert_ne!(error.status.and_then(|s| s.code()), Some(0));
    // Started with a good policy, then broken: the good one stays, /status says why.
    write_policy(&policy, &developer("alice", &developers.alice));
    let proxy = proxy_with_policy(&upstream, &registry, &policy);
    write_policy(&policy, "[rule]\nattestations = \"many\"\n");
    let started = Instant::now();
    while proxy.status()["policy"]["reload_error"].is_null() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no reload error shown"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = proxy.status();
    assert!(
        status["policy"]["reload_error"]
            .as_str()
            .unwrap()
            .contains("policy.toml:2: "),
        "{status}"
    );
    assert_eq!(status["policy"]["generation"], 1);
    CargoProject::new(&proxy.index_url(), &[("solo", "1")])
        .build()
        .assert_success();
    // SIGHUP reloads at once, here with the fixed file.
    write_policy(
        &policy,
        &format!(
            "{}{}",
            developer("alice", &developers.alice),
            developer("mauro3", &developers.mauro)
        ),
    );
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &proxy.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_for_generation(&proxy, 1);
    assert!(proxy.status()["policy"]["reload_error"].is_null());
}

#[test]
fn no_request_is_served_under_a_half_loaded_policy_while_it_changes_under_load() {
    let developers = Developers::new();
    let registry = registry(&developers);
    let upstream = Upstream::start(&registry);
    let (_dir, policy) = policy_dir();
    // Both trusted: good is served. Neither: good is refused for its own author. A mix of
    // the two (alice trusted, mauro3 not) would refuse it for its dependency: that answer
    // must never appear.
    let both = format!(
        "{}{}",
        developer("alice", &developers.alice),
        developer("mauro3", &developers.mauro)
    );
    let neither = "# nobody\n".to_owned();
    write_policy(&policy, &both);
    let proxy = proxy_with_policy(&upstream, &registry, &policy);
    let url = format!("{}{}", proxy.index_url(), support::index_path("good"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..32)
        .map(|_| {
            let (url, stop) = (url.clone(), std::sync::Arc::clone(&stop));
            std::thread::spawn(move || {
                let client = support::http_client(None);
                let mut seen = (0u32, 0u32);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let response = client.get(&url).send().unwrap();
                    let status = response.status().as_u16();
                    let body = response.text().unwrap();
                    match status {
                        200 => {
                            assert!(body.contains("\"name\":\"good\""), "{body}");
                            seen.0 += 1;
                        }
                        403 => {
                            assert!(
                                body.contains("you do not trust developer @alice")
                                    && !body.contains("required by good"),
                                "a half-loaded policy: {body}"
                            );
                            seen.1 += 1;
                        }
                        other => panic!("{other}: {body}"),
                    }
                }
                seen
            })
        })
        .collect();
    let mut generation = 1;
    for round in 0..6 {
        write_policy(&policy, if round % 2 == 0 { &neither } else { &both });
        generation = wait_for_generation(&proxy, generation);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut served, mut refused) = (0, 0);
    for client in clients {
        let (s, r) = client.join().unwrap();
        served += s;
        refused += r;
    }
    assert!(
        served > 0 && refused > 0,
        "served {served}, refused {refused}"
    );
    assert_eq!(generation, 7);
}

/// `tuf-verifier ARGS`: exit code, stdout, stderr.
fn verifier(args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(support::proxy::binary())
        .args(args)
        .env("TUF_VERIFIER_LOG", "warn")
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn policy_check_judges_a_real_lockfile_and_suggests_whom_to_trust() {
    let developers = Developers::new();
    let registry = registry(&developers);
    let upstream = Upstream::start(&registry);
    let (dir, policy) = policy_dir();
    // The lockfile of an app on good and solo, resolved through a proxy trusting both.
    write_policy(
        &policy,
        &format!(
            "{}{}",
            developer("alice", &developers.alice),
            developer("mauro3", &developers.mauro)
        ),
    );
    let proxy = proxy_with_policy(&upstream, &registry, &policy);
    let project = CargoProject::new(&proxy.index_url(), &[("good", "1"), ("solo", "1")]);
    project.generate_lockfile().assert_success();
    drop(proxy);
    let lockfile = project.workspace().join("Cargo.lock");
    let (metadata, root) = (registry.repo.metadata_dir(), registry.repo.root_path());
    let team = dir.path().join("team.toml");
    std::fs::write(
        &team,
        format!("# the team\n{}", developer("alice", &developers.alice)),
    )
    .unwrap();
    let check = |json: bool| {
        let mut args = vec![
            "policy",
            "check",
            lockfile.to_str().unwrap(),
            "--policy",
            team.to_str().unwrap(),
            "--metadata",
            metadata.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
        ];
        if json {
            args.push("--json");
        }
        verifier(&args)
    };
    let (code, stdout, stderr) = check(true);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(
        (report["trusted"].as_u64(), report["untrusted"].as_u64()),
        (Some(1), Some(2)),
        "{report}"
    );
    let result = |name: &str| {
        report["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {report}"))
            .clone()
    };
    assert_eq!(result("solo")["result"], "trusted");
    assert_eq!(result("parameters")["result"], "untrusted");
    assert!(result("good")["reason"]
        .as_str()
        .unwrap()
        .contains("parameters ^0.3 is required by good"));
    assert_eq!(result("app")["result"], "skipped");
    let suggestions = report["suggestions"].as_array().unwrap();
    assert_eq!(suggestions.len(), 1, "{report}");
    assert_eq!(suggestions[0]["label"], "mauro3");
    assert_eq!(suggestions[0]["keyid"], developers.mauro.keyid().as_str());
    assert_eq!(
        suggestions[0]["covers"],
        serde_json::json!(["good 1.0.0", "parameters 0.3.1"])
    );
    // The words people read, then the suggested command, then a clean check.
    let (code, text, _) = check(false);
    assert_eq!(code, 1);
    let prefix = &developers.mauro.keyid()[..8];
    assert!(
        text.contains(&format!(
            "trusting mauro3 ({prefix}…) would cover 2 crates: good 1.0.0, parameters 0.3.1"
        )),
        "{text}"
    );
    let command = suggestions[0]["command"].as_str().unwrap();
    let words: Vec<&str> = command.split(' ').skip(1).collect();
    let (code, out, err) = verifier(&words);
    assert_eq!(code, 0, "{out}{err}");
    assert!(std::fs::read_to_string(&team)
        .unwrap()
        .starts_with("# the team\n"));
    let (code, text, _) = check(false);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("every registry package is trusted"), "{text}");
}

#[test]
fn an_index_answer_kept_under_the_old_policy_is_not_served_after_a_reload() {
    let developers = Developers::new();
    let registry = registry(&developers);
    let upstream = Upstream::start(&registry);
    let (_dir, policy) = policy_dir();
    write_policy(&policy, &developer("alice", &developers.alice));
    let proxy = proxy_with_policy(&upstream, &registry, &policy);
    let url = format!("{}{}", proxy.index_url(), support::index_path("solo"));
    let get = || {
        let response = support::http_client(None).get(&url).send().unwrap();
        (response.status().as_u16(), response.text().unwrap())
    };
    assert_eq!(get().0, 200);
    // Nobody trusted now; upstream will answer the proxy's conditional request with 304.
    write_policy(&policy, "# nobody\n");
    wait_for_generation(&proxy, 1);
    let (status, body) = get();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("you do not trust developer @alice"), "{body}");
    assert!(
        upstream.request_log().iter().any(|r| r.path
            == format!("/index/{}", support::index_path("solo"))
            && r.status == 304),
        "upstream was not asked conditionally: the kept answer was not tested"
    );
    // Trusted again: served again.
    write_policy(&policy, &developer("alice", &developers.alice));
    wait_for_generation(&proxy, 2);
    assert_eq!(get().0, 200);
}

#[test]
fn a_likely_typosquat_is_refused_with_what_it_looks_like() {
    let developers = Developers::new();
    let mut registry = registry(&developers);
    // A squat of `parameters`, which the policy names, signed (in a bin) and attested by
    // someone nobody trusts.
    registry.publish("parametres", "0.3.1", &[], "pub fn p() -> u32 { 666 }\n");
    registry.publish("ledger-tools", "1.0.0", &[], "pub fn l() -> u32 { 1 }\n");
    registry.repo.attest(
        "ledger-tools",
        "1.0.0",
        AttestationKind::Release,
        &developers.alice,
        "alice",
    );
    let stranger = PrivateKey::generate(KeyAlgorithm::Ed25519);
    registry.repo.attest(
        "parametres",
        "0.3.1",
        AttestationKind::Release,
        &stranger,
        "parameters-team",
    );
    let upstream = Upstream::start(&registry);
    let (_dir, policy) = policy_dir();
    write_policy(
        &policy,
        &format!(
            "{}{}crates = [\"parameters\"]\n",
            developer("alice", &developers.alice),
            developer("mauro3", &developers.mauro)
        ),
    );
    let proxy = proxy_with_policy(&upstream, &registry, &policy);
    // A name nobody signed, close to a well-known crate.
    CargoProject::new(&proxy.index_url(), &[("serde_jsno", "1")])
        .build()
        .assert_failure_containing(
            "`serde_jsno` is not signed by anyone you trust and looks like `serde_json` \
             (swapped characters)",
        );
    // `explain` says it too.
    let explained = explain(&proxy, "serde_jsno");
    assert_eq!(explained["ok"], false);
    assert_eq!(
        explained["looks_like"],
        serde_json::json!([{"name": "serde_json", "how": "swapped characters"}])
    );
    assert!(explain(&proxy, "parameters").get("looks_like").is_none());
    // And offline, from the repository (the shipped names and the policy's).
    let metadata = registry.repo.metadata_dir();
    let root = registry.repo.root_path();
    let offline = |name: &str, json: bool| {
        let mut args = vec![
            "explain",
            name,
            "--metadata",
            metadata.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ];
        if json {
            args.push("--json");
        }
        verifier(&args)
    };
    let (code, stdout, stderr) = offline("serde_jsno", true);
    let explained: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
    assert_ne!(code, 0);
    assert_eq!(
        explained["looks_like"][0]["name"], "serde_json",
        "{explained}"
    );
    let (_, text, _) = offline("serde_jsno", false);
    assert!(
        text.contains(
            "a likely typosquat: `serde_jsno` looks like `serde_json` (swapped characters)"
        ),
        "{text}"
    );
    let (_, stdout, _) = offline("parameters", true);
    assert!(
        stdout.contains("\"ok\": true") || stdout.contains("\"ok\":true"),
        "{stdout}"
    );
    assert!(!stdout.contains("looks_like"), "{stdout}");
    // A signed squat the policy does not trust: both reasons.
    let output = CargoProject::new(&proxy.index_url(), &[("parametres", "0.3")]).build();
    for needle in [
        "`parametres` is not signed by anyone you trust and looks like `parameters` (swapped characters)",
        "you do not trust developer @parameters-team",
    ] {
        assert!(output.stderr.contains(needle), "{needle:?}: {}", output.describe());
    }
    // The real one still resolves; an unrelated unknown name is a plain 404.
    CargoProject::new(&proxy.index_url(), &[("parameters", "0.3")])
        .build()
        .assert_success();
    let unknown = support::http_client(None)
        .get(format!(
            "{}{}",
            proxy.index_url(),
            support::index_path("qzxvwk")
        ))
        .send()
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(proxy.status()["index"]["typosquats"], 2);

    // A crate this proxy serves joins the corpus: a squat of it is refused from then on,
    // though no list names it.
    let squat_of_served = |proxy: &Proxy| {
        support::http_client(None)
            .get(format!(
                "{}{}",
                proxy.index_url(),
                support::index_path("ledger-tols")
            ))
            .send()
            .unwrap()
    };
    let before = squat_of_served(&proxy);
    assert_eq!(before.status(), 404, "not yet a squat of anything known");
    let learned = proxy.status()["typosquat_corpus"]["learned"]
        .as_u64()
        .unwrap();
    CargoProject::new(&proxy.index_url(), &[("ledger-tools", "1")])
        .build()
        .assert_success();
    let after = squat_of_served(&proxy);
    assert_eq!(after.status(), 403);
    let body = after.text().unwrap();
    assert!(
        body.contains("looks like `ledger-tools` (a character left out)"),
        "{body}"
    );
    assert!(
        proxy.status()["typosquat_corpus"]["learned"]
            .as_u64()
            .unwrap()
            > learned
    );
}

#[test]
fn a_team_list_imported_by_url_is_fetched_again_on_sighup_and_its_last_good_copy_outlives_an_outage(
) {
    let developers = Developers::new();
    let registry = registry(&developers);
    let upstream = Upstream::start(&registry);
    let lists = registry.files_dir();
    std::fs::create_dir_all(&lists).unwrap();
    let team_list = lists.join("team.toml");
    let team = format!(
        "# the platform team's list\n{}",
        developer("mauro3", &developers.mauro)
    );
    std::fs::write(&team_list, &team).unwrap();
    let url = format!("{}/files/team.toml", upstream.url());
    let (_dir, policy) = policy_dir();
    write_policy(
        &policy,
        &format!(
            "{}[[import]]\nname = \"platform\"\nurl = \"{url}\"\n",
            developer("alice", &developers.alice)
        ),
    );
    // URL imports are fetched again once per refresh interval: an hour here.
    let state = tempfile::tempdir().unwrap();
    let mut config = policy_config(&upstream, &registry, &policy, state.path());
    config.refresh_interval = "1h".into();
    let proxy = Proxy::spawn(config, &state.path().join("serve.toml")).unwrap();
    let project = CargoProject::new(&proxy.index_url(), &[("parameters", "0.3")]);
    project.build().assert_success();
    let status = proxy.status();
    let imported = &status["policy"]["imports"][0];
    assert_eq!(imported["name"], "platform");
    assert_eq!(imported["from"], url);
    assert_eq!(imported["developers"], 1);
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(team.as_bytes()));
    assert_eq!(imported["sha256"], digest, "{status}");
    let fetches = upstream.requests("/files/team.toml");
    assert_eq!(fetches, 1);
    // The file is read again every 2 s; the list is not fetched again within the
    // refresh interval.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(upstream.requests("/files/team.toml"), fetches);

    // The team drops mauro3: SIGHUP fetches the list at once, and the build fails.
    std::fs::write(&team_list, "# the platform team's list\n").unwrap();
    let hup = |proxy: &Proxy| {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &proxy.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    hup(&proxy);
    let generation = wait_for_generation(&proxy, 1);
    let output = CargoProject::new(&proxy.index_url(), &[("parameters", "0.3")]).build();
    assert!(
        !output.success() && output.stderr.contains("you do not trust developer @mauro3"),
        "{}",
        output.describe()
    );

    // The list's server fails: the last good copy stays in force and /status says why.
    std::fs::write(&team_list, &team).unwrap();
    upstream.set_fault("/files/", support::Fault::Status(503));
    hup(&proxy);
    let started = Instant::now();
    loop {
        let status = proxy.status();
        let error = &status["policy"]["url_imports"][0]["last_error"];
        if error.as_str().is_some_and(|e| e.contains("503")) {
            assert_eq!(status["policy"]["generation"], generation, "{status}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Back up: the next SIGHUP brings mauro3 back.
    upstream.clear_faults();
    hup(&proxy);
    wait_for_generation(&proxy, generation);
    assert!(proxy.status()["policy"]["url_imports"][0]["last_error"].is_null());
    CargoProject::new(&proxy.index_url(), &[("parameters", "0.3")])
        .build()
        .assert_success();
}

#[test]
fn a_pinned_url_import_whose_list_changed_is_fatal_at_start_with_both_digests() {
    let developers = Developers::new();
    let registry = registry(&developers);
    let upstream = Upstream::start(&registry);
    std::fs::create_dir_all(registry.files_dir()).unwrap();
    std::fs::write(
        registry.files_dir().join("team.toml"),
        developer("mauro3", &developers.mauro),
    )
    .unwrap();
    let (dir, policy) = policy_dir();
    let pin = "0".repeat(64);
    write_policy(
        &policy,
        &format!(
            "[[import]]\nname = \"platform\"\nurl = \"{}/files/team.toml\"\nsha256 = \"{pin}\"\n",
            upstream.url()
        ),
    );
    let state = tempfile::tempdir().unwrap();
    let config = policy_config(&upstream, &registry, &policy, state.path());
    let error = Proxy::spawn(config, &dir.path().join("serve.toml"))
        .err()
        .expect("a list that is not what the pin says must stop the proxy");
    assert!(
        error
            .stderr
            .contains("policy.toml:1: import \"platform\": its content has SHA-256")
            && error.stderr.contains(&format!("not the pinned {pin}")),
        "{}",
        error.stderr
    );
}
