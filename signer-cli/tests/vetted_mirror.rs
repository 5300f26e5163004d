//! `tuf-signer release import` against a local upstream registry (a sparse index and
//! tarballs served on 127.0.0.1): releases signed without their tarballs, what is and is
//! not imported, refusals, resuming, `verify --fetch-targets`, and an import killed
//! (SIGKILL) at random points.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{copy_dir, python_verify, Delays, Workspace};
use tuf_crates_tests::crate_tarball::{build_crate_tarball, index_line};
use tuf_crates_tests::static_server::StaticServer;

/// An upstream sparse registry in a directory, served over HTTP.
struct Upstream {
    dir: PathBuf,
    server: StaticServer,
}

impl Upstream {
    fn new(dir: &Path) -> Self {
        Self::slow(dir, std::time::Duration::ZERO)
    }

    /// An upstream that pauses `per_request` before each answer.
    fn slow(dir: &Path, per_request: std::time::Duration) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let server = StaticServer::start_slow(dir, per_request);
        let config = serde_json::json!({
            "dl": format!("{}dl/{{crate}}/{{crate}}-{{version}}.crate", server.url())
        });
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        Self {
            dir: dir.to_owned(),
            server,
        }
    }

    fn url(&self) -> &str {
        self.server.url()
    }

    fn tarball_path(&self, name: &str, version: &str) -> PathBuf {
        self.dir.join(format!("dl/{name}/{name}-{version}.crate"))
    }

    /// Publishes `name` `version` upstream: its tarball, and its line appended to the
    /// crate's index file (`yanked` if asked). Returns the tarball.
    fn publish(&self, name: &str, version: &str, yanked: bool) -> Vec<u8> {
        let tarball = build_crate_tarball(
            name,
            version,
            &[],
            &format!("pub fn version() -> &'static str {{ \"{version}\" }}\n"),
        );
        let path = self.tarball_path(name, version);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &tarball).unwrap();
        let mut line: serde_json::Value =
            serde_json::from_str(&index_line(name, version, &[], &tarball)).unwrap();
        line["yanked"] = serde_json::Value::Bool(yanked);
        let index = self
            .dir
            .join(tuf_core::index_entry::sparse_index_path(name));
        std::fs::create_dir_all(index.parent().unwrap()).unwrap();
        let mut text = std::fs::read_to_string(&index).unwrap_or_default();
        text.push_str(&line.to_string());
        text.push('\n');
        std::fs::write(index, text).unwrap();
        tarball
    }
}

/// `(name, version, role)` of each imported release of a `--json` import.
fn imported(value: &serde_json::Value) -> Vec<(String, String)> {
    let mut releases: Vec<(String, String)> = value["imported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    releases.sort();
    releases
}

fn pair(name: &str, version: &str) -> (String, String) {
    (name.to_owned(), version.to_owned())
}

/// The files under `dir` whose names end in `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_ending(&path, suffix));
        } else if path.to_string_lossy().ends_with(suffix) {
            found.push(path);
        }
    }
    found
}

#[test]
fn imported_releases_are_signed_without_their_tarballs() {
    let ws = Workspace::new();
    ws.init_and_publish(2);
    let upstream = Upstream::new(&ws.path("upstream"));
    for (version, yanked) in [("0.9.0", true), ("1.0.0", false), ("1.1.0", false)] {
        upstream.publish("alpha", version, yanked);
    }
    upstream.publish("alpha", "2.0.0-beta.1", false);
    upstream.publish("beta", "0.1.0", false);
    upstream.publish("gamma", "3.0.0", false);
    let index = upstream.url();

    // NAME: every version not yanked upstream; --latest N: the newest stable ones.
    let all = ws.json(
        "repo",
        &[
            "release", "import", "alpha", "--index", index, "--jobs", "3",
        ],
    );
    assert_eq!(
        imported(&all),
        [
            pair("alpha", "1.0.0"),
            pair("alpha", "1.1.0"),
            pair("alpha", "2.0.0-beta.1")
        ]
    );
    let latest = ws.json(
        "repo",
        &[
            "release", "import", "gamma", "beta", "--latest", "1", "--index", index,
        ],
    );
    assert_eq!(
        imported(&latest),
        [pair("beta", "0.1.0"), pair("gamma", "3.0.0")]
    );
    // Explicit versions, yanked ones too (a lockfile may pin one).
    let yanked = ws.json(
        "repo",
        &["release", "import", "alpha@0.9.0", "--index", index],
    );
    assert_eq!(imported(&yanked), [pair("alpha", "0.9.0")]);
    let staged = std::fs::read_to_string(ws.path("repo/staged/unclaimed-0.json"))
        .into_iter()
        .chain(std::fs::read_to_string(
            ws.path("repo/staged/unclaimed-1.json"),
        ))
        .chain(std::fs::read_to_string(
            ws.path("repo/staged/unclaimed-2.json"),
        ))
        .chain(std::fs::read_to_string(
            ws.path("repo/staged/unclaimed-3.json"),
        ))
        .collect::<String>();
    assert_eq!(
        staged
            .matches("\"x-tuf-crates-tarball\": \"upstream\"")
            .count(),
        6,
        "every imported release is marked as served upstream"
    );

    // Published: no tarball is kept, the signed index files are; verify knows the
    // tarballs stay upstream, and checks them there when asked.
    ws.ok("repo", &["publish", "--online-key", &ws.pem("online")]);
    let targets = ws.path("repo/published/targets");
    assert!(files_ending(&targets, ".crate").is_empty());
    assert_eq!(files_ending(&targets, ".index").len(), 3);
    assert!(files_ending(&ws.path("repo/staged"), ".crate").is_empty());
    let verified = ws.json("repo", &["verify"]);
    assert_eq!(verified["releases_upstream"], 6);
    assert_eq!(verified["upstream_files_checked"], 0);
    let text = ws.ok("repo", &["verify"]);
    assert!(
        text.contains("6 release tarballs stay upstream (not checked: --fetch-targets"),
        "{text}"
    );
    let fetched = ws.json("repo", &["verify", "--fetch-targets", index]);
    assert_eq!(fetched["upstream_files_checked"], 6, "{fetched:#}");
    assert_eq!(fetched["ok"], true);

    // Upstream changes a tarball it was vetted with: verify --fetch-targets says which.
    std::fs::write(
        upstream.tarball_path("beta", "0.1.0"),
        build_crate_tarball("beta", "0.1.0", &[], "pub fn changed() {}\n"),
    )
    .unwrap();
    let output = ws.run("repo", &["verify", "--fetch-targets", index]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("crates/beta/beta/beta-0.1.0.crate: upstream tarball:")
            && stdout.contains("beta-0.1.0.crate"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("upstream tarball:").count(),
        1,
        "only the changed tarball is named: {stdout}"
    );

    // A release can be attested like any other, and a second import fetches nothing.
    ws.key("reviewer");
    ws.ok(
        "repo",
        &[
            "release",
            "attest",
            "alpha",
            "1.1.0",
            "--key",
            &ws.pem("reviewer"),
        ],
    );
    let again = ws.json("repo", &["release", "import", "alpha", "--index", index]);
    assert_eq!(again["already_signed"], 3);
    assert_eq!(again["bytes_fetched"], 0);
    assert_eq!(again["imported"], serde_json::json!([]));
}

#[test]
fn imports_go_to_their_namespace_role_and_python_tuf_reads_them() {
    let ws = Workspace::new();
    ws.init_and_publish(2);
    ws.key("beta-owner");
    ws.ok(
        "repo",
        &[
            "namespace",
            "delegate",
            "--key",
            &ws.public("beta-owner"),
            "beta",
        ],
    );
    ws.ok("repo", &["sign", "--yes", "--key", &ws.pem("targets")]);
    ws.ok("repo", &["sign", "--yes", "--key", &ws.pem("beta-owner")]);
    ws.ok("repo", &["publish", "--online-key", &ws.pem("online")]);
    let upstream = Upstream::new(&ws.path("upstream"));
    let alpha = upstream.publish("alpha", "1.0.0", false);
    let beta = upstream.publish("beta", "0.1.0", false);
    let imported = ws.json(
        "repo",
        &[
            "release",
            "import",
            "alpha@1.0.0",
            "beta@0.1.0",
            "--index",
            upstream.url(),
        ],
    );
    let role_of = |name: &str| {
        imported["imported"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| r["role"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(role_of("beta"), "ns-beta", "{imported:#}");
    assert!(role_of("alpha").starts_with("unclaimed-"), "{imported:#}");
    // The namespace's owners sign their release before it is published.
    let refused = ws.run("repo", &["publish", "--online-key", &ws.pem("online")]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("ns-beta has 0 of 1 signatures"),
        "{}",
        common::describe_output(&refused)
    );
    ws.ok(
        "repo",
        &[
            "sign",
            "--yes",
            "--key",
            &ws.pem("beta-owner"),
            "--role",
            "ns-beta",
        ],
    );
    ws.ok("repo", &["publish", "--online-key", &ws.pem("online")]);

    // python-tuf's client resolves both through the delegations and sees the mark; with
    // upstream's tarballs laid out as a targets directory, it downloads and checks them.
    let mirror = ws.path("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    std::os::unix::fs::symlink(ws.path("repo/published/metadata"), mirror.join("metadata"))
        .unwrap();
    let mut paths = Vec::new();
    for (name, version, tarball) in [("alpha", "1.0.0", &alpha), ("beta", "0.1.0", &beta)] {
        let path = tuf_core::layout::crate_target_path(name, version).unwrap();
        let sha256 = tuf_core::hash::sha256_hashes(tarball)
            .remove("sha256")
            .unwrap();
        let (dir, file) = path.rsplit_once('/').unwrap();
        let at = mirror.join("targets").join(dir);
        std::fs::create_dir_all(&at).unwrap();
        std::fs::write(at.join(format!("{sha256}.{file}")), tarball).unwrap();
        paths.push(path);
    }
    let root = ws.path("repo/published/metadata/1.root.json");
    let path_refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let (ok, value, output) = python_verify(&mirror, &root, &path_refs);
    assert!(ok, "{output}");
    for path in &paths {
        let target = &value["targets"][path];
        assert_eq!(target["downloaded"], true, "{path}: {output}");
        assert_eq!(
            target["custom"],
            serde_json::json!({"x-tuf-crates-tarball": "upstream"}),
            "{path}: {output}"
        );
        assert!(target["hashes"]["sha512"].is_string(), "{output}");
    }
    assert_eq!(value["targets"][&paths[1]]["role"], "ns-beta", "{output}");
}

#[test]
fn lockfiles_are_imported_and_mismatches_refused() {
    let ws = Workspace::new();
    ws.init_and_publish(2);
    let upstream = Upstream::new(&ws.path("upstream"));
    let good = upstream.publish("good", "1.2.3", false);
    upstream.publish("tampered", "0.1.0", false);
    upstream.publish("locked", "2.0.0", false);
    let index = upstream.url();
    // Upstream serves another tarball than its index line's cksum says.
    std::fs::write(
        upstream.tarball_path("tampered", "0.1.0"),
        build_crate_tarball("tampered", "0.1.0", &[], "pub fn evil() {}\n"),
    )
    .unwrap();
    let sha256 = |bytes: &[u8]| {
        tuf_core::hash::sha256_hashes(bytes)
            .remove("sha256")
            .unwrap()
    };
    let lockfile = ws.path("Cargo.lock");
    std::fs::write(
        &lockfile,
        format!(
            "version = 4\n\n\
             [[package]]\nname = \"app\"\nversion = \"0.1.0\"\n\n\
             [[package]]\nname = \"good\"\nversion = \"1.2.3\"\n\
             source = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{}\"\n\n\
             [[package]]\nname = \"locked\"\nversion = \"2.0.0\"\n\
             source = \"sparse+https://index.crates.io/\"\nchecksum = \"{}\"\n\n\
             [[package]]\nname = \"tampered\"\nversion = \"0.1.0\"\n\
             source = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n\
             [[package]]\nname = \"fromgit\"\nversion = \"0.1.0\"\n\
             source = \"git+https://example.com/x#0123\"\n\n\
             [[package]]\nname = \"elsewhere\"\nversion = \"0.1.0\"\n\
             source = \"sparse+https://other.example/index/\"\n",
            sha256(&good),
            "0".repeat(64)
        ),
    )
    .unwrap();
    let output = ws.run(
        "repo",
        &[
            "--json",
            "release",
            "import",
            "--lockfile",
            "Cargo.lock",
            "--index",
            index,
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "a failed release fails the import"
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(imported(&report), [pair("good", "1.2.3")]);
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{report:#}");
    let reason = |name: &str| {
        failed
            .iter()
            .find(|f| f["name"] == name)
            .map(|f| f["error"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{name} did not fail: {report:#}"))
    };
    assert!(
        reason("locked").contains("the lockfile's checksum 0000"),
        "{}",
        reason("locked")
    );
    assert!(
        reason("tampered").contains("not the index's cksum"),
        "{}",
        reason("tampered")
    );
    assert_eq!(report["skipped"]["path"], 1);
    assert_eq!(report["skipped"]["git"], 1);
    assert_eq!(
        report["skipped"]["other_registry"],
        serde_json::json!(["elsewhere 0.1.0"])
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("2 of the releases asked for could not be imported"),
        "{stderr}"
    );
    // Nothing of the refused releases is staged; the good one is, and verifies once
    // published.
    let status = ws.json("repo", &["status"]);
    assert!(!status.to_string().contains("tampered"), "{status:#}");
    ws.ok("repo", &["publish", "--online-key", &ws.pem("online")]);
    let verified = ws.json("repo", &["verify", "--fetch-targets", index]);
    assert_eq!(verified["releases_upstream"], 1);
    assert_eq!(verified["upstream_files_checked"], 1);

    // attest --lockfile: all or nothing.
    ws.key("reviewer");
    let output = ws.run(
        "repo",
        &[
            "release",
            "attest",
            "--lockfile",
            "Cargo.lock",
            "--key",
            &ws.pem("reviewer"),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("3 of the 4 registry packages of Cargo.lock cannot be attested, so none is"),
        "{stderr}"
    );
}

/// The releases staged (or published) in `repo`, after checking that publishing what is
/// staged gives a repository a client accepts, with every release's signed index entry
/// (a copy is published, not `repo`).
fn publish_copy_and_verify(ws: &Workspace, fetch_from: Option<&str>) -> u64 {
    let copy = ws.path("copy");
    let _ = std::fs::remove_dir_all(&copy);
    copy_dir(&ws.path("repo"), &copy);
    let publish = ws.run("copy", &["publish", "--online-key", &ws.pem("online")]);
    let stderr = String::from_utf8_lossy(&publish.stderr);
    assert!(
        publish.status.success() || stderr.contains("nothing is staged"),
        "publishing the staged state failed: {}",
        common::describe_output(&publish)
    );
    let verified = match fetch_from {
        Some(index) => {
            let verified = ws.json("copy", &["verify", "--fetch-targets", index]);
            assert_eq!(
                verified["releases_upstream"],
                verified["upstream_files_checked"]
            );
            verified
        }
        None => ws.json("copy", &["verify"]),
    };
    assert_eq!(verified["ok"], true, "{verified:#}");
    verified["releases_upstream"].as_u64().unwrap()
}

#[test]
fn an_import_killed_at_random_points_resumes_and_always_verifies() {
    const RELEASES: usize = 500;
    const KILLS: usize = 10;
    let ws = Workspace::new();
    ws.init_and_publish(4);
    // 5 ms per answer, one at a time: an import takes about 3 s whatever the machine's
    // load, so kills land while it runs.
    let upstream = Upstream::slow(&ws.path("upstream"), std::time::Duration::from_millis(5));
    for i in 0..RELEASES {
        upstream.publish(
            &format!("crate{}", i % 125),
            &format!("1.{}.0", i / 125),
            false,
        );
    }
    let index = upstream.url().to_owned();
    let names: Vec<String> = (0..125).map(|i| format!("crate{i}")).collect();
    let mut args: Vec<&str> = vec!["release", "import", "--index", &index, "--save-every", "7"];
    args.extend(names.iter().map(String::as_str));

    // How long a whole import takes here, on a copy.
    copy_dir(&ws.path("repo"), &ws.path("timing"));
    let started = Instant::now();
    ws.ok("timing", &args);
    let whole = started.elapsed();
    // ... of which reading the index files (what a run with everything signed does).
    let started = Instant::now();
    ws.ok("timing", &args);
    let index_phase = started.elapsed();
    let downloads = whole.saturating_sub(index_phase);

    let mut delays = Delays::from_env();
    let seed = delays.seed();
    eprintln!("TUF_CRASH_SEED={seed} (a whole import takes {whole:?})");
    let mut signed = 0;
    let mut mid_import = 0;
    for _ in 0..KILLS {
        let mut child = ws
            .command("repo")
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Within what is left to import: a resumed import skips what is staged.
        let left = (RELEASES as f64 - signed as f64) / RELEASES as f64;
        let delay = index_phase + downloads.mul_f64(left * (0.05 + 0.6 * delays.next_fraction()));
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let now = publish_copy_and_verify(&ws, None);
        assert!(
            now >= signed,
            "a kill lost staged releases: {now} < {signed}"
        );
        if now > signed && (now as usize) < RELEASES {
            mid_import += 1;
        }
        eprintln!("killed after {delay:?}: {now} releases staged");
        signed = now;
    }
    // Running it again completes the import.
    let done = ws.json("repo", &args[..]);
    assert_eq!(done["ok"], true);
    assert_eq!(
        done["already_signed"].as_u64().unwrap()
            + done["imported"].as_array().unwrap().len() as u64,
        RELEASES as u64
    );
    assert_eq!(publish_copy_and_verify(&ws, Some(&index)), RELEASES as u64);
    assert!(
        mid_import >= 3,
        "only {mid_import} of {KILLS} kills landed mid-import (seed {seed}): this run proves little"
    );
}
