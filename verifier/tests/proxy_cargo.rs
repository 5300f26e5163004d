//! tuf-verifier between real cargo (isolated CARGO_HOME) and a real HTTP upstream on
//! 127.0.0.1: what builds, what is refused, and that the reason reaches the cargo user.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{http_client, CargoProject, Fault, Proxy, Registry, Upstream};

/// A registry with a namespace `nsdemo` (its maintainer's key) and crates in the fallback
/// bins: `app` → `nsdemo ^1` → `plainutil ^0.1`, plus `plainutil` 0.1.1 and `leaf`.
fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.repo.delegate_namespace("nsdemo");
    registry.publish("plainutil", "0.1.0", &[], "pub fn one() -> u32 { 1 }\n");
    registry.publish(
        "plainutil",
        "0.1.1",
        &[],
        "pub fn one() -> u32 { 1 }\npub fn two() -> u32 { 2 }\n",
    );
    registry.publish(
        "nsdemo",
        "1.0.0",
        &[("plainutil", "^0.1")],
        "pub fn answer() -> u32 { plainutil::one() + 41 }\n",
    );
    registry
}

const MAIN_RS: &str = "fn main() { println!(\"answer={}\", nsdemo::answer()); }\n";

/// Waits until `/healthz` answers `status`; returns its body.
fn wait_for_health(proxy: &Proxy, status: u16) -> String {
    proxy.wait_for_health(status)
}

fn cache_files(proxy: &Proxy) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(proxy.state_dir().join("tarballs"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

fn sorted<const N: usize>(mut items: [String; N]) -> Vec<String> {
    items.sort();
    items.to_vec()
}

fn verifier(args: &[&str]) -> std::process::Output {
    Command::new(support::proxy::binary())
        .args(args)
        .env("TUF_VERIFIER_LOG", "warn")
        .output()
        .unwrap()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn signed_crates_build_and_are_served_again_from_the_verified_cache() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);
    let project = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
    project.cargo(&["run", "-q"]).assert_success();
    let run = project.cargo(&["run", "-q"]).assert_success();
    assert!(run.stdout.contains("answer=42"), "{}", run.describe());
    // Through a namespace role and a fallback bin, transitively; newest signed version.
    for (name, version) in [("nsdemo", "1.0.0"), ("plainutil", "0.1.1")] {
        assert_eq!(
            project.locked_checksum(name, version).as_deref(),
            Some(registry.signed_sha256(name, version).as_str()),
            "{name} {version}"
        );
    }
    let fetched = upstream.requests_under("/dl/");
    assert_eq!(fetched, 2, "each tarball fetched once upstream");
    assert_eq!(
        cache_files(&proxy),
        sorted([
            registry.signed_sha256("nsdemo", "1.0.0"),
            registry.signed_sha256("plainutil", "0.1.1"),
        ])
    );
    // cargo's own cache holds what the proxy served (the negative checks elsewhere rely
    // on this helper finding files when they are there).
    assert_eq!(
        project.cached_crates(),
        ["nsdemo-1.0.0.crate", "plainutil-0.1.1.crate"]
    );

    // A second machine (empty CARGO_HOME): served from the proxy's verified cache.
    let second = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
    second.build().assert_success();
    assert_eq!(upstream.requests_under("/dl/"), fetched);
    let status = proxy.status();
    assert_eq!(status["downloads"]["served_from_cache"], 2, "{status}");
    // Both were kept in memory when they were verified: no file read, no re-hash.
    assert_eq!(status["downloads"]["served_from_memory"], 2, "{status}");
    assert_eq!(status["tarball_memory"]["tarballs"], 2, "{status}");
    assert_eq!(status["downloads"]["refused"], 0, "{status}");

    // cargo's index cache: an update revalidates with If-None-Match and gets 304s.
    second.update().assert_success();
    let status = proxy.status();
    assert!(
        status["index"]["not_modified"].as_u64().unwrap() >= 1,
        "{status}"
    );

    // The offline verbs agree: the lockfile and a vendor directory verify.
    let metadata = registry.repo.metadata_dir();
    let root = registry.repo.root_path();
    let lockfile = second.workspace().join("Cargo.lock");
    let output = verifier(&[
        "verify-lockfile",
        path_str(&lockfile),
        "--metadata",
        path_str(&metadata),
        "--root",
        path_str(&root),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("2 verified, 0 failed, 1 skipped"),
        "{stdout}"
    );

    let vendor = second.workspace().join("vendor");
    second.vendor(&vendor).assert_success();
    let index_url = proxy.index_url();
    let vendor_args = [
        "verify-vendor",
        path_str(&vendor),
        "--metadata",
        path_str(&metadata),
        "--root",
        path_str(&root),
        "--upstream-index",
        &index_url,
        "--json",
    ];
    let output = verifier(&vendor_args);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(output.status.success(), "{report:#}");
    assert_eq!(report["verified"], 2, "{report:#}");

    // A vendored file edited together with .cargo-checksum.json: cargo would build it;
    // verify-vendor compares with the signed tarball and refuses.
    let crate_dir = vendor.join("plainutil");
    let lib_rs = crate_dir.join("src/lib.rs");
    let evil = "pub fn one() -> u32 { std::process::abort() }\npub fn two() -> u32 { 2 }\n";
    std::fs::write(&lib_rs, evil).unwrap();
    let checksum_path = crate_dir.join(".cargo-checksum.json");
    let mut checksum: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&checksum_path).unwrap()).unwrap();
    checksum["files"]["src/lib.rs"] =
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(evil)).into();
    std::fs::write(&checksum_path, checksum.to_string()).unwrap();
    let output = verifier(&vendor_args);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    let failed = report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["result"] == "failed")
        .unwrap();
    assert_eq!(failed["name"], "plainutil");
    assert!(
        failed["detail"]
            .as_str()
            .unwrap()
            .contains("src/lib.rs differs from the signed tarball"),
        "{report:#}"
    );
}

#[test]
fn a_tampered_tarball_is_refused_and_cargo_shows_why() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);
    registry.tamper_tarball("plainutil", "0.1.1");
    let project = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
    let output = project.build();
    output.assert_failure_containing(
        "tuf-verifier refused plainutil 0.1.1: the tarball from upstream does not match the signed target crates/plainutil/plainutil/plainutil-0.1.1.crate",
    );
    assert!(!project
        .cached_crates()
        .iter()
        .any(|c| c.starts_with("plainutil")));
    assert!(!cache_files(&proxy).contains(&registry.signed_sha256("plainutil", "0.1.1")));
    assert_eq!(proxy.status()["downloads"]["refused"], 1);
}

#[test]
fn a_forged_tarball_of_exactly_the_signed_length_is_refused_by_its_digest() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);
    let forged = registry.forge_tarball_of_signed_length(
        "plainutil",
        "0.1.1",
        &["pub fn one() -> u32 { 6 }\n", "pub fn one()->u32{6}"],
    );
    // A real crate, other code, the signed length: no length check can refuse it.
    let mut unpacked = String::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&forged[..]));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().ends_with("src/lib.rs") {
            std::io::Read::read_to_string(&mut entry, &mut unpacked).unwrap();
        }
    }
    assert!(
        unpacked.contains("{ 6 }") || unpacked.contains("{6}"),
        "{unpacked}"
    );
    assert_eq!(
        forged.len(),
        registry.signed_tarball("plainutil", "0.1.1").len()
    );

    let project = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
    project.build().assert_failure_containing(
        "tuf-verifier refused plainutil 0.1.1: the tarball from upstream does not match the signed target crates/plainutil/plainutil/plainutil-0.1.1.crate: sha256 mismatch",
    );
    assert!(!cache_files(&proxy).contains(&registry.signed_sha256("plainutil", "0.1.1")));
    let status = proxy.status();
    assert_eq!(status["downloads"]["refused"], 1, "{status}");
}

#[test]
fn a_release_replaced_with_its_index_line_is_refused_with_the_reason_never_silently_downgraded() {
    let registry = registry();
    registry.replace_release(
        "plainutil",
        "0.1.1",
        "pub fn one() -> u32 { 666 }\npub fn two() -> u32 { 2 }\n",
    );
    let upstream = Upstream::start(&registry);

    // Straight from the registry, cargo takes the replaced release silently.
    let direct = CargoProject::with_main(&upstream.index_url(), &[("nsdemo", "1")], MAIN_RS);
    let run = direct.cargo(&["run", "-q"]).assert_success();
    assert!(run.stdout.contains("answer=707"), "{}", run.describe());

    // Through the proxy, cargo resolves the signed entries: it locks 0.1.1 with the
    // signed checksum, and the replaced tarball is refused with the reason. It never
    // falls back to 0.1.0 without saying so.
    let proxy = Proxy::start(&upstream, &registry.repo);
    let project = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
    project.cargo(&["run", "-q"]).assert_failure_containing(
        "tuf-verifier refused plainutil 0.1.1: the tarball from upstream does not match the signed target",
    );
    assert_eq!(
        project.locked_checksum("plainutil", "0.1.1").as_deref(),
        Some(registry.signed_sha256("plainutil", "0.1.1").as_str())
    );
    let status = proxy.status();
    assert!(
        status["index"]["lines_differing_upstream"]
            .as_u64()
            .unwrap()
            >= 1,
        "{status}"
    );

    // And the lockfile made straight from the registry fails verification offline.
    let output = verifier(&[
        "verify-lockfile",
        path_str(&direct.workspace().join("Cargo.lock")),
        "--metadata",
        path_str(&registry.repo.metadata_dir()),
        "--root",
        path_str(&registry.repo.root_path()),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAILED   plainutil 0.1.1: Cargo.lock checksum"),
        "{stdout}"
    );
}

#[test]
fn a_release_signed_by_another_namespaces_key_is_refused_with_the_reason() {
    let mut registry = registry();
    let other_key = registry.repo.delegate_namespace("other");
    let upstream_tarball = registry.publish_unsigned(
        "nsdemo",
        "1.1.0",
        &[("plainutil", "^0.1")],
        "pub fn answer() -> u32 { 0 }\n",
    );
    registry.repo.forge_release(
        "ns-nsdemo",
        "nsdemo",
        "1.1.0",
        &upstream_tarball,
        &other_key,
    );
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);
    let project = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
    let output = project.build();
    output.assert_failure_containing(
        "tuf-verifier refused the index of nsdemo: TUF metadata refused: ns-nsdemo",
    );
    assert!(!project
        .cached_crates()
        .iter()
        .any(|c| c.starts_with("nsdemo")));
}

#[test]
fn an_expired_timestamp_fails_closed_with_the_reason() {
    let mut registry = registry();
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);
    let project = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
    project.generate_lockfile().assert_success();
    registry.repo.expire_timestamp();
    let reason = wait_for_health(&proxy, 503);
    assert!(reason.contains("timestamp: expired at"), "{reason}");
    project
        .build()
        .assert_failure_containing("TUF metadata refused at the last refresh")
        .assert_failure_containing("timestamp: expired at");
    assert!(project.cached_crates().is_empty());
}

#[test]
fn metadata_that_expires_while_the_repository_is_unreachable_fails_closed() {
    let mut registry = registry();
    // The timestamp expires in a few seconds (whole seconds: TUF dates have no fraction).
    let expires = chrono::Utc::now() + chrono::Duration::seconds(4);
    registry.repo.reissue_timestamp(expires);
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);
    let project = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
    project.generate_lockfile().assert_success();
    // The repository becomes unreachable: the trusted state is kept until it expires...
    upstream.set_fault("/tuf/", Fault::Status(500));
    let status = proxy.status();
    assert_eq!(status["trust"]["serving"], true, "{status}");
    // ...and then nothing is served, with the reason.
    let reason = wait_for_health(&proxy, 503);
    assert!(
        reason.contains("TUF metadata expired: timestamp expired at")
            && reason.contains("the last refresh failed")
            && reason.contains("HTTP status 500"),
        "{reason}"
    );
    project
        .build()
        .assert_failure_containing("TUF metadata expired: timestamp expired at");
    assert!(project.cached_crates().is_empty());
    // The repository is back with a fresh timestamp: serving again.
    registry
        .repo
        .reissue_timestamp(chrono::Utc::now() + chrono::Duration::days(1));
    upstream.clear_faults();
    wait_for_health(&proxy, 200);
    project.build().assert_success();
}

#[test]
fn a_rolled_back_snapshot_fails_closed_with_the_reason() {
    let mut registry = registry();
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);
    let project = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
    project.generate_lockfile().assert_success();
    registry.repo.rollback_snapshot();
    let reason = wait_for_health(&proxy, 503);
    assert!(reason.contains("(rollback)"), "{reason}");
    project
        .build()
        .assert_failure_containing("tuf-verifier refused")
        .assert_failure_containing("(rollback)");
    assert!(project.cached_crates().is_empty());
    assert!(cache_files(&proxy).is_empty());
}

#[test]
fn upstream_faults_give_cargo_an_error_and_never_unverified_bytes() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    // Every index request asks upstream (the tests' default), so that its failures reach
    // each one.
    let proxy = Proxy::start(&upstream, &registry.repo);
    let tarball = "/dl/plainutil/0.1.1/download";
    let signed_length = registry.signed_tarball("plainutil", "0.1.1").len();
    let faults = [
        (Fault::Delay(Duration::from_secs(6)), "timed out".to_owned()),
        (
            Fault::DelayBody(Duration::from_secs(6)),
            "timed out".to_owned(),
        ),
        (Fault::Truncate, "the body broke off".to_owned()),
        (Fault::Status(500), "upstream answered HTTP 500".to_owned()),
        (
            Fault::ExtraBytes(100),
            format!(
                "upstream announced {} bytes, {signed_length} are signed",
                signed_length + 100
            ),
        ),
    ];
    let project = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
    for (fault, reason) in faults {
        upstream.set_fault(tarball, fault.clone());
        let output = project.build();
        let output = output.assert_failure_containing("plainutil 0.1.1: ");
        assert!(
            output.stderr.contains(&reason),
            "{fault:?}: expected {reason:?}\n{}",
            output.describe()
        );
        assert!(
            !project
                .cached_crates()
                .iter()
                .any(|c| c.starts_with("plainutil")),
            "{fault:?}"
        );
        assert!(!cache_files(&proxy).contains(&registry.signed_sha256("plainutil", "0.1.1")));
    }
    // An index request failing upstream costs nothing but upstream's own yanks: the
    // crates' signed index files carry every entry, and the build goes on.
    upstream.clear_faults();
    upstream.set_fault("/index/", Fault::Status(500));
    project.clear_registry_cache();
    project.build().assert_success();
    let status = proxy.status();
    assert!(
        status["index"]["upstream_unavailable"].as_u64().unwrap() >= 2,
        "{status}"
    );
    upstream.clear_faults();
    project.build().assert_success();
}

#[test]
fn concurrent_requests_for_one_tarball_fetch_it_once() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);
    upstream.set_fault(
        "/dl/plainutil/0.1.0/",
        Fault::DelayBody(Duration::from_millis(800)),
    );
    let url = format!("{}/api/v1/crates/plainutil/0.1.0/download", proxy.url());
    let bodies: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let url = url.clone();
                scope.spawn(move || {
                    let response = http_client(Some(Duration::from_secs(10)))
                        .get(url)
                        .send()
                        .unwrap();
                    assert_eq!(response.status().as_u16(), 200);
                    response.bytes().unwrap().to_vec()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let signed = registry.signed_tarball("plainutil", "0.1.0");
    assert!(bodies.iter().all(|b| *b == signed));
    assert_eq!(upstream.requests("/dl/plainutil/0.1.0/download"), 1);
}

#[test]
fn serve_without_arguments_runs_the_demo_that_cargo_builds_from() {
    use std::io::BufRead;
    // The demo's directory goes in a temporary directory of the test's, which must be
    // empty again once the demo stopped.
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(support::proxy::binary())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TUF_VERIFIER_LOG", "warn")
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .strip_prefix("tuf-verifier listening on ")
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    let mut printed = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("Stop with Ctrl-C") {
            break;
        }
    }
    assert!(
        printed.contains(&format!("registry = \"sparse+{url}/index/\"")),
        "{printed}"
    );
    let project = CargoProject::with_main(
        &format!("{url}/index/"),
        &[("unclaimed-app-helper", "0.3"), ("tufdemo", ">=0.2")],
        "fn main() {}\n",
    );
    // The demo policy does not trust carol, who released unclaimed-util, which
    // unclaimed-app-helper needs; the command the demo prints trusts her.
    let refused = project.build();
    let trust_line = printed
        .lines()
        .find(|l| l.contains("policy trust carol"))
        .unwrap_or_else(|| panic!("no policy trust command in\n{printed}"));
    let trust_args: Vec<&str> = trust_line
        .split_whitespace()
        .skip_while(|word| *word != "policy")
        .collect();
    let trusted = Command::new(support::proxy::binary())
        .args(&trust_args)
        .output()
        .unwrap();
    let started = std::time::Instant::now();
    let generation = || -> u64 {
        let body = support::http_client(None)
            .get(format!("{url}/status.json"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["policy"]["generation"]
            .as_u64()
            .unwrap()
    };
    while generation() < 2 && started.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let output = project.build();
    let squat = CargoProject::with_main(
        &format!("{url}/index/"),
        &[("tufdmeo", "0.2")],
        "fn main() {}\n",
    )
    .build();
    // explain shows the owners' yank, the line upstream changed, and the attestations.
    let explained = Command::new(support::proxy::binary())
        .args(["explain", "tufdemo", "--proxy", &url])
        .output()
        .unwrap();
    support::proxy::send_signal(child.id(), "TERM");
    let stopped = child.wait().unwrap();
    assert_eq!(stopped.code(), Some(0));
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    refused.assert_failure_containing(
        "unclaimed-util ^1 is required by unclaimed-app-helper, and no matching version is \
         trusted: unclaimed-util 1.0.0: you do not trust developer @carol (7c24bc1c…)",
    );
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    output.assert_success();
    squat.assert_failure_containing(
        "`tufdmeo` is not signed by anyone you trust and looks like `tufdemo` (swapped characters)",
    );
    let explained = String::from_utf8_lossy(&explained.stdout);
    for needle in [
        "tufdemo: index entries signed by ns-tufdemo",
        "  0.1.0: served\n",
        "    yanked:      yes, by the owners\n",
        "    upstream:    its line differs in deps (the signed entry is served)\n",
        "    attestation: release by alice (keyid 647e6627bf936b90), ",
        "    attestation: review by bob (keyid 3bd9dd05ef726903), ",
        "  0.3.0: NOT SERVED: not signed",
    ] {
        assert!(explained.contains(needle), "{needle:?} not in\n{explained}");
    }
    let tufdemo: Vec<_> = project
        .locked_packages()
        .into_iter()
        .filter(|p| p.name == "tufdemo")
        .map(|p| p.version)
        .collect();
    // 0.3.0 is upstream but unsigned: hidden.
    assert_eq!(tufdemo, ["0.2.0"]);
}

#[test]
fn a_restarted_proxy_still_refuses_a_rollback_below_what_it_trusted() {
    let mut registry = registry();
    let upstream = Upstream::start(&registry);
    let mut proxy = Proxy::start(&upstream, &registry.repo);
    let trusted = registry.repo.snapshot_version();
    assert_eq!(proxy.status()["trust"]["snapshot_version"], trusted);
    proxy.kill();
    // While it is down, the repository rolls back to the previous snapshot. A new
    // client starting from root alone would accept it; the proxy's state directory
    // remembers the newer one.
    registry.repo.rollback_snapshot();
    proxy.restart();
    let reason = wait_for_health(&proxy, 503);
    assert!(reason.contains("(rollback)"), "{reason}");
}

#[test]
fn logs_on_a_pipe_carry_no_colour_codes_and_offline_verbs_log_nothing_by_default() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        support::ProxyConfig::new(&upstream, &registry.repo, &dir.path().join("state"));
    // An empty NO_COLOR does not ask for plain output (no-color.org): only the pipe does.
    config.env.push(("NO_COLOR".into(), String::new()));
    let proxy = Proxy::spawn(config, &dir.path().join("proxy.toml")).unwrap();
    let response = http_client(Some(Duration::from_secs(10)))
        .get(format!(
            "{}/api/v1/crates/unsigned/1.0.0/download",
            proxy.url()
        ))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !proxy.stderr().contains("download refused") {
        assert!(Instant::now() < deadline, "{}", proxy.describe());
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = proxy.stderr();
    assert!(!log.contains('\u{1b}'), "colour codes on a pipe:\n{log:?}");

    // An offline verb's report is on stdout; by default nothing is logged on stderr.
    let project = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
    project.generate_lockfile().assert_success();
    let output = Command::new(support::proxy::binary())
        .arg("verify-lockfile")
        .arg(project.workspace().join("Cargo.lock"))
        .arg("--metadata")
        .arg(registry.repo.metadata_dir())
        .arg("--root")
        .arg(registry.repo.root_path())
        .env_remove("TUF_VERIFIER_LOG")
        .env("NO_COLOR", "")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

/// The versions of an index answer, each with whether it is yanked.
fn index_versions(body: &str) -> Vec<(String, bool)> {
    body.lines()
        .map(|line| {
            let entry: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                entry["vers"].as_str().unwrap().to_owned(),
                entry["yanked"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn index_of(proxy: &Proxy, name: &str) -> (u16, String) {
    let response = http_client(Some(Duration::from_secs(20)))
        .get(format!(
            "{}/index/{}",
            proxy.url(),
            support::index_path(name)
        ))
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().unwrap())
}

#[test]
fn a_burst_for_one_index_file_asks_upstream_once_and_fresh_answers_wait_only_for_upstream_news() {
    let mut registry = registry();
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start_configured(&upstream, &registry.repo, |c| {
        c.index_freshness = "60s".into();
    });
    let path = Upstream::index_file_path("plainutil");
    // 32 clients at once, while upstream takes its time: one upstream request.
    upstream.set_fault(&path, Fault::Delay(Duration::from_millis(600)));
    let start = std::sync::Arc::new(std::sync::Barrier::new(32));
    let bodies: Vec<(u16, String)> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..32)
            .map(|_| {
                let start = std::sync::Arc::clone(&start);
                let proxy = &proxy;
                scope.spawn(move || {
                    start.wait();
                    index_of(proxy, "plainutil")
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    upstream.clear_faults();
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");
    assert_eq!(bodies[0].0, 200);
    assert_eq!(upstream.requests(&path), 1);
    let index = &proxy.status()["index"];
    let (shared, fresh) = (
        index["upstream_shared"].as_u64().unwrap(),
        index["answered_fresh"].as_u64().unwrap(),
    );
    assert!(shared >= 1, "{index}");
    assert_eq!(shared + fresh, 31, "{index}");

    // Upstream yanks 0.1.1: within the window that is not seen, and upstream is not asked.
    registry.set_yanked("plainutil", "0.1.1", true);
    let (_, body) = index_of(&proxy, "plainutil");
    assert_eq!(
        index_versions(&body),
        [("0.1.0".to_owned(), false), ("0.1.1".to_owned(), false)]
    );
    assert_eq!(upstream.requests(&path), 1);
    // A signed change is never late: a new snapshot filters again, asking upstream.
    registry.publish("plainutil", "0.1.2", &[], "pub fn one() -> u32 { 1 }\n");
    let snapshot = registry.repo.snapshot_version();
    let deadline = Instant::now() + Duration::from_secs(20);
    while proxy.status()["trust"]["snapshot_version"] != snapshot {
        assert!(Instant::now() < deadline, "{}", proxy.describe());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, body) = index_of(&proxy, "plainutil");
    assert_eq!(
        index_versions(&body),
        [
            ("0.1.0".to_owned(), false),
            ("0.1.1".to_owned(), true),
            ("0.1.2".to_owned(), false)
        ]
    );
    assert_eq!(upstream.requests(&path), 2);
}

#[test]
fn after_the_freshness_window_upstream_is_asked_again() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start_configured(&upstream, &registry.repo, |c| {
        c.index_freshness = "1s".into();
    });
    let path = Upstream::index_file_path("plainutil");
    let (status, first) = index_of(&proxy, "plainutil");
    assert_eq!(status, 200, "{first}");
    assert_eq!(index_of(&proxy, "plainutil").1, first);
    assert_eq!(upstream.requests(&path), 1);
    registry.set_yanked("plainutil", "0.1.1", true);
    std::thread::sleep(Duration::from_millis(1200));
    let (_, body) = index_of(&proxy, "plainutil");
    assert_eq!(
        index_versions(&body),
        [("0.1.0".to_owned(), false), ("0.1.1".to_owned(), true)]
    );
    assert_eq!(upstream.requests(&path), 2);
    // With no window, every request asks upstream (conditionally: 304).
    let never = Proxy::start_configured(&upstream, &registry.repo, |c| {
        c.index_freshness = "0s".into();
    });
    let before = upstream.requests(&path);
    for _ in 0..3 {
        assert_eq!(index_of(&never, "plainutil").1, body);
    }
    assert_eq!(upstream.requests(&path), before + 3);
    assert_eq!(never.status()["index"]["answered_fresh"], 0);
}

#[test]
fn a_tarball_altered_in_the_disk_cache_is_fetched_again_not_served() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    let mut proxy = Proxy::start(&upstream, &registry.repo);
    let url = format!("{}/api/v1/crates/plainutil/0.1.1/download", proxy.url());
    let get = |url: &str| {
        let response = http_client(Some(Duration::from_secs(20)))
            .get(url)
            .send()
            .unwrap();
        (
            response.status().as_u16(),
            response.bytes().unwrap().to_vec(),
        )
    };
    let signed = registry.signed_tarball("plainutil", "0.1.1");
    assert_eq!(get(&url), (200, signed.clone()));
    assert_eq!(upstream.requests_under("/dl/"), 1);
    // The disk is shared, untrusted storage: someone alters the cached file, keeping
    // its length. The copy in memory was verified when it was kept, so this proxy still
    // serves the signed bytes; a restarted one (nothing in memory) reads the file back,
    // finds it is not the signed target, and fetches the tarball again.
    let cached = proxy
        .state_dir()
        .join("tarballs")
        .join(registry.signed_sha256("plainutil", "0.1.1"));
    let mut altered = std::fs::read(&cached).unwrap();
    altered[10] ^= 0xff;
    std::fs::write(&cached, &altered).unwrap();
    assert_eq!(get(&url), (200, signed.clone()));
    assert_eq!(upstream.requests_under("/dl/"), 1);
    proxy.restart();
    let url = format!("{}/api/v1/crates/plainutil/0.1.1/download", proxy.url());
    assert_eq!(get(&url), (200, signed.clone()));
    assert_eq!(upstream.requests_under("/dl/"), 2);
    assert_eq!(std::fs::read(&cached).unwrap(), signed);
    assert!(
        proxy
            .stderr()
            .contains("cached tarball no longer matches its signed target; removing it"),
        "{}",
        proxy.describe()
    );
    // Read back intact from disk, it is kept in memory again.
    proxy.restart();
    let url = format!("{}/api/v1/crates/plainutil/0.1.1/download", proxy.url());
    assert_eq!(get(&url), (200, signed.clone()));
    assert_eq!(get(&url), (200, signed));
    let status = proxy.status();
    assert_eq!(status["downloads"]["served_from_cache"], 2, "{status}");
    assert_eq!(status["downloads"]["served_from_memory"], 1, "{status}");
    assert_eq!(upstream.requests_under("/dl/"), 2);
}
