//! An index line whose dependency names another registry sends cargo past the proxy: it
//! resolves, downloads and builds that dependency from there. Real cargo (isolated
//! CARGO_HOME), two registries on 127.0.0.1: the upstream the proxy stands in front of,
//! and an attacker's.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{http_client, index_path, CargoProject, Proxy, Registry, Upstream};

const MAIN_RS: &str = "fn main() { println!(\"answer={}\", nsdemo::answer()); }\n";

/// `app` → `nsdemo ^1` (namespace role) → `plainutil ^0.1`, with `plainutil` 0.1.0 and
/// 0.1.1 signed.
fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.repo.delegate_namespace("nsdemo");
    registry.publish("plainutil", "0.1.0", &[], "pub fn one() -> u32 { 1 }\n");
    registry.publish("plainutil", "0.1.1", &[], "pub fn one() -> u32 { 1 }\n");
    registry.publish(
        "nsdemo",
        "1.0.0",
        &[("plainutil", "^0.1")],
        "pub fn answer() -> u32 { plainutil::one() + 41 }\n",
    );
    registry
}

/// The attacker's registry: `evil` 0.1.0, whose build script writes `marker`.
struct Attacker {
    _registry: Registry,
    upstream: Upstream,
    _dir: tempfile::TempDir,
    marker: PathBuf,
}

impl Attacker {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("evil-build-script-ran");
        let build_rs = format!(
            "fn main() {{ std::fs::write({}, \"ran\").unwrap(); }}\n",
            serde_json::to_string(marker.to_str().unwrap()).unwrap()
        );
        let mut registry = Registry::new();
        registry.publish_unsigned_with_build_script("evil", "0.1.0", &build_rs);
        let upstream = Upstream::start(&registry);
        Self {
            _registry: registry,
            upstream,
            _dir: dir,
            marker,
        }
    }

    /// The `registry` field naming this registry, as cargo writes it.
    fn registry_field(&self) -> String {
        format!("sparse+{}", self.upstream.index_url())
    }

    fn build_script_ran(&self) -> bool {
        self.marker.exists()
    }

    /// Requests cargo (or anyone) made of the attacker's registry.
    fn requests(&self) -> usize {
        self.upstream.requests_under("/")
    }
}

/// A normal dependency on `evil` ^0.1, as cargo's index lists one, from `registry`.
fn evil_dependency(registry: &str) -> serde_json::Value {
    serde_json::json!({
        "name": "evil", "req": "^0.1", "features": [], "optional": false,
        "default_features": true, "target": null, "kind": "normal",
        "registry": registry,
    })
}

fn locked(project: &CargoProject, name: &str) -> Vec<(String, Option<String>)> {
    project
        .locked_packages()
        .into_iter()
        .filter(|p| p.name == name)
        .map(|p| (p.version, p.source))
        .collect()
}

fn verify_lockfile(lockfile: &Path, registry: &Registry, extra: &[&str]) -> std::process::Output {
    Command::new(support::proxy::binary())
        .arg("verify-lockfile")
        .arg(lockfile)
        .arg("--metadata")
        .arg(registry.repo.metadata_dir())
        .arg("--root")
        .arg(registry.repo.root_path())
        .args(extra)
        .env("TUF_VERIFIER_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn a_dependency_from_another_registry_drops_the_line_and_cargo_never_leaves_the_proxy() {
    let mut registry = registry();
    let attacker = Attacker::start();
    // A registry holding the online key signs plainutil 0.1.2 (an unclaimed crate, in a
    // bin) with an entry naming `evil` from the attacker's registry...
    registry.publish_with_index_dependency(
        "plainutil",
        "0.1.2",
        "pub fn one() -> u32 { 1 }\n",
        evil_dependency(&attacker.registry_field()),
    );
    // ...and adds the same dependency to upstream's line of the signed 0.1.1, whose
    // tarball and cksum are untouched.
    registry.add_index_dependency(
        "plainutil",
        "0.1.1",
        evil_dependency(&attacker.registry_field()),
    );
    let upstream = Upstream::start(&registry);

    // The control: straight at upstream, cargo locks evil from the attacker's registry,
    // downloads it from there and runs its build script.
    let direct = CargoProject::with_main(&upstream.index_url(), &[("nsdemo", "1")], MAIN_RS);
    direct.build().assert_success();
    assert!(attacker.build_script_ran(), "the control must run evil");
    let evil_source = format!("sparse+{}", attacker.upstream.index_url());
    assert_eq!(
        locked(&direct, "evil"),
        [("0.1.0".to_owned(), Some(evil_source.clone()))]
    );
    std::fs::remove_file(&attacker.marker).unwrap();

    // verify-lockfile refuses the control's lockfile, naming evil and its source.
    let lockfile = direct.workspace().join("Cargo.lock");
    let output = verify_lockfile(&lockfile, &registry, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "FAILED   evil 0.1.0: from another source, {evil_source}: not verified"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("ok       plainutil 0.1.2"), "{stdout}");
    // Allowed by name, it is listed as skipped, not verified, and the lockfile passes.
    let output = verify_lockfile(&lockfile, &registry, &["--allow-source", &evil_source]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "skipped  evil 0.1.0: from {evil_source}, allowed by --allow-source: not verified"
        )),
        "{stdout}"
    );

    // Through the proxy: the signed line of 0.1.2 is dropped (a signed entry may not send
    // cargo elsewhere either), 0.1.1 is served as signed, without evil, and cargo never
    // asks the attacker's registry anything.
    let before = attacker.requests();
    let proxy = Proxy::start(&upstream, &registry.repo);
    let project = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
    let run = project.cargo(&["run", "-q"]).assert_success();
    assert!(run.stdout.contains("answer=42"), "{}", run.describe());
    assert!(!attacker.build_script_ran());
    assert_eq!(attacker.requests(), before, "cargo reached the attacker");
    assert_eq!(locked(&project, "evil"), []);
    assert_eq!(
        locked(&project, "plainutil"),
        [(
            "0.1.1".to_owned(),
            Some("registry+https://github.com/rust-lang/crates.io-index".to_owned())
        )]
    );
    let counts = proxy.status();
    assert_eq!(
        counts["index"]["lines_dropped_foreign_registry"], 1,
        "{counts}"
    );
    assert_eq!(counts["index"]["lines_differing_upstream"], 1, "{counts}");
    // The log names the crate, the version and the foreign registry.
    let log = proxy.stderr();
    let warning = log
        .lines()
        .find(|l| l.contains("a dependency from another registry"))
        .unwrap_or_else(|| panic!("no warning in the log:\n{log}"));
    for needle in [
        "crate_name=\"plainutil\"",
        "version=\"0.1.2\"",
        "dependency=evil",
        &format!("registry={evil_source}"),
    ] {
        assert!(warning.contains(needle), "{needle} not in {warning}");
    }
    // The proxy's own lockfile verifies.
    let output = verify_lockfile(&project.workspace().join("Cargo.lock"), &registry, &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn an_allowlisted_registry_is_passed_on_as_configured() {
    let mut registry = registry();
    let attacker = Attacker::start();
    // The owners sign plainutil 0.1.2 depending on evil from a registry the proxy's
    // operator allows, spelled with an upper-case scheme: the same registry to cargo.
    let spelling = attacker.registry_field().replace("http://", "HTTP://");
    registry.publish_with_index_dependency(
        "plainutil",
        "0.1.2",
        "pub fn one() -> u32 { 1 }\n",
        evil_dependency(&spelling),
    );
    let upstream = Upstream::start(&registry);
    let allowed = format!(
        "allowed_registries = [{}]",
        serde_json::to_string(&attacker.registry_field()).unwrap()
    );
    let proxy = Proxy::start_with(&upstream, &registry.repo, &[&allowed]);
    let project = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
    project.build().assert_success();
    assert!(attacker.build_script_ran(), "allowed, evil is built");
    assert_eq!(locked(&project, "plainutil")[0].0, "0.1.2");
    assert_eq!(locked(&project, "evil").len(), 1);
    let counts = proxy.status();
    assert_eq!(
        counts["index"]["lines_dropped_foreign_registry"], 0,
        "{counts}"
    );
}

#[test]
fn a_renamed_dependency_cannot_leave_the_registry_and_a_name_that_walks_out_of_the_index_drops_the_line(
) {
    // `package` is a crate name that cargo looks up in the dependency's own source: a
    // rename can never name another registry. Cargo does not check that it is a crate
    // name, though, and builds the index path from it: `../../../x/evil` makes it ask
    // upstream for `/x/evil`, outside the index.
    let walks_out = serde_json::json!({
        "name": "helper", "package": "../../../x/evil", "req": "^0.1", "features": [],
        "optional": false, "default_features": true, "target": null, "kind": "normal",
    });
    let mut registry = registry();
    // Signed with that dependency by whoever holds the key for plainutil...
    registry.publish_with_index_dependency(
        "plainutil",
        "0.1.2",
        "pub fn one() -> u32 { 1 }\n",
        walks_out.clone(),
    );
    let upstream = Upstream::start(&registry);
    let direct = CargoProject::with_main(&upstream.index_url(), &[("nsdemo", "1")], MAIN_RS);
    direct.generate_lockfile().assert_success();
    assert_eq!(upstream.requests("/x/evil"), 1, "cargo left the index path");

    // The proxy drops the line: cargo never sees the dependency.
    let proxy = Proxy::start(&upstream, &registry.repo);
    let index = http_client(Some(Duration::from_secs(10)))
        .get(format!("{}{}", proxy.index_url(), index_path("plainutil")))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let versions: Vec<String> = index
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["vers"].to_string())
        .collect();
    assert_eq!(versions, ["\"0.1.0\"", "\"0.1.1\""], "{index}");
    let project = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
    project.build().assert_success();
    assert_eq!(locked(&project, "plainutil")[0].0, "0.1.1");
    assert_eq!(
        upstream.requests("/x/evil"),
        1,
        "through the proxy cargo stays in the index"
    );
    let log = proxy.stderr();
    assert!(
        log.contains("a dependency that is not a crate name"),
        "{log}"
    );
}
