//! A vetted mirror in front of the public registry, for real (README, "A vetted mirror in
//! front of the public registry"). Needs the network: the public registry's sparse index
//! and downloads, as cargo reaches them from this machine.
//!
//! A real open-source project, `choose` (a `cut` alternative, 31 dependencies in its
//! lockfile), is taken from the public registry, not from this repository: its tarball
//! (which carries its Cargo.lock) is fetched, and
//! 1. `tuf-signer release import` signs it and every package of its lockfile, with no
//!    tarball kept; a reviewer attests all of them (`release attest --lockfile`); they
//!    are published, and `verify --fetch-targets` checks the public registry's tarballs
//!    against what is signed;
//! 2. the proxy stands in front of the public registry under a policy that trusts the
//!    reviewer, and real cargo builds the project through it (`cargo install --locked`),
//!    and the binary runs;
//! 3. one dependency is removed from the vetted set and published: a new build fails
//!    with the policy's message naming it.
//!
//! A flaky network is retried (the import's and the proxy's fetches, cargo's own
//! `net.retry`); a network that is really gone fails the test, with what failed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{CargoProject, Proxy, ProxyConfig};
use tuf_core::client::{Fetcher, HttpFetcher};
use tuf_core::crate_archive::{read_crate_files, ArchiveLimits};

const PUBLIC_INDEX: &str = "https://index.crates.io/";
const PROJECT: &str = "choose";
const VERSION: &str = "1.3.7";
/// The dependency taken out of the vetted set in part 3 (a normal dependency of
/// `choose`, nothing else needs it).
const REMOVED: (&str, &str) = ("backslash", "0.2.0");
const PASSPHRASE_ENV: &str = "TUF_TEST_PASSPHRASE";

/// `tuf-signer`, built for this test (a no-op when up to date).
fn tuf_signer() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    // A relative CARGO_TARGET_DIR is relative to the workspace, where cargo was run.
    let target_dir = workspace.join(
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target")),
    );
    let output = Command::new(&cargo)
        .args(["build", "-q", "-p", "signer-cli"])
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo build -p signer-cli: {}",
        describe(&output)
    );
    target_dir.join("debug").join("tuf-signer")
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The signer's working directory: keys and the repository.
struct Signer {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Signer {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .env(PASSPHRASE_ENV, "vetted mirror test")
            .env("NO_COLOR", "1")
            .arg("-C")
            .arg(self.path("repo"))
            .args(["--passphrase-env", PASSPHRASE_ENV])
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "tuf-signer {args:?}: {}",
            describe(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Generates key `name`; returns its keyid.
    fn key(&self, name: &str) -> String {
        let out = self.path(name);
        let value = self.json(&[
            "key",
            "generate",
            "--out",
            out.to_str().unwrap(),
            "--label",
            name,
            "--kdf-iterations",
            "100000",
        ]);
        value["keyid"].as_str().unwrap().to_owned()
    }

    fn file(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }
}

/// The project's Cargo.lock, from its tarball on the public registry (retried).
fn project_lockfile(dir: &Path) -> PathBuf {
    let fetcher = HttpFetcher::new(Duration::from_secs(10), Duration::from_secs(120)).unwrap();
    let config = retried(&fetcher, &format!("{PUBLIC_INDEX}config.json"), 64 * 1024);
    let dl: serde_json::Value = serde_json::from_slice(&config).unwrap();
    let url = tuf_core::index_entry::download_url(dl["dl"].as_str().unwrap(), PROJECT, VERSION, "");
    let tarball = retried(&fetcher, &url, 64 * 1024 * 1024);
    let files = read_crate_files(
        &format!("{PROJECT}-{VERSION}.crate"),
        &tarball,
        &ArchiveLimits::default(),
    )
    .unwrap();
    let lock = files
        .files
        .get("Cargo.lock")
        .expect("the project ships its Cargo.lock");
    let path = dir.join("Cargo.lock");
    std::fs::write(&path, lock).unwrap();
    path
}

fn retried(fetcher: &HttpFetcher, url: &str, max: u64) -> Vec<u8> {
    let mut attempt = 0;
    loop {
        match fetcher.fetch(url, max) {
            Ok(bytes) => return bytes,
            Err(error) if attempt < 4 => {
                eprintln!("{url}: {error}; retrying");
                std::thread::sleep(Duration::from_secs(1 << attempt));
                attempt += 1;
            }
            Err(error) => panic!("the public registry is not reachable: {error}"),
        }
    }
}

/// `cargo install --locked --debug PROJECT@VERSION` through `index_url`, in a fresh
/// `CARGO_HOME`; returns the project handle (for its directory) and cargo's output.
fn install(index_url: &str, root: &Path) -> (CargoProject, support::CargoOutput) {
    let mut project = CargoProject::new(index_url, &[]);
    project.set_timeout(Duration::from_secs(20 * 60));
    // The proxy answers 502 when upstream fails; cargo retries those.
    project.set_env("CARGO_NET_RETRY", "3");
    let spec = format!("{PROJECT}@{VERSION}");
    let output = project.cargo(&[
        "install",
        "--locked",
        "--debug",
        "--root",
        root.to_str().unwrap(),
        &spec,
    ]);
    (project, output)
}

/// Waits until the proxy trusts a snapshot newer than `than`.
fn wait_for_snapshot(proxy: &Proxy, than: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let version = proxy.status()["trust"]["snapshot_version"]
            .as_u64()
            .unwrap_or(0);
        if version > than {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy did not refresh: {}",
            proxy.describe()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_real_project_builds_through_a_vetted_mirror_of_the_public_registry() {
    let signer = Signer {
        bin: tuf_signer(),
        dir: tempfile::tempdir().unwrap(),
    };
    for name in ["root", "targets", "online"] {
        signer.key(name);
    }
    let reviewer = signer.key("reviewer");
    signer.ok(&[
        "init",
        "--root-key",
        &signer.file("root.pub.json"),
        "--targets-key",
        &signer.file("targets.pub.json"),
        "--online-key",
        &signer.file("online.pub.json"),
        "--bin-bits",
        "4",
    ]);
    signer.ok(&["sign", "--yes", "--key", &signer.file("root.pem")]);
    signer.ok(&["sign", "--yes", "--key", &signer.file("targets.pem")]);
    signer.ok(&["publish", "--online-key", &signer.file("online.pem")]);

    // 1. Import, review, attest, publish.
    let lockfile = project_lockfile(signer.dir.path());
    let lock = lockfile.to_str().unwrap();
    let spec = format!("{PROJECT}@{VERSION}");
    let imported = signer.json(&[
        "release",
        "import",
        &spec,
        "--lockfile",
        lock,
        "--index",
        PUBLIC_INDEX,
        "--retries",
        "5",
    ]);
    assert_eq!(imported["failed"], serde_json::json!([]), "{imported:#}");
    let count = imported["imported"].as_array().unwrap().len();
    assert!(
        (25..=40).contains(&count),
        "{count} releases imported: {imported:#}"
    );
    assert_eq!(
        imported["skipped"]["path"], 1,
        "the project itself is the lockfile's root"
    );
    // Run again: nothing is fetched twice.
    let again = signer.json(&["release", "import", &spec, "--lockfile", lock]);
    assert_eq!(again["already_signed"].as_u64().unwrap() as usize, count);
    assert_eq!(again["bytes_fetched"], 0);
    let key = signer.file("reviewer.pem");
    signer.ok(&["release", "attest", PROJECT, VERSION, "--key", &key]);
    let attested = signer.json(&["release", "attest", "--lockfile", lock, "--key", &key]);
    assert_eq!(attested["attested"].as_array().unwrap().len(), count - 1);
    signer.ok(&["publish", "--online-key", &signer.file("online.pem")]);
    let tarballs: Vec<_> = walk(&signer.path("repo/published/targets"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "crate"))
        .collect();
    assert!(tarballs.is_empty(), "no tarball is kept: {tarballs:?}");
    let verified = signer.json(&["verify", "--fetch-targets", PUBLIC_INDEX]);
    assert_eq!(
        verified["upstream_files_checked"].as_u64().unwrap() as usize,
        count
    );
    assert_eq!(
        verified["releases_upstream"].as_u64().unwrap() as usize,
        count
    );

    // 2. The proxy in front of the public registry, under a policy trusting the reviewer.
    // A lockfile holds only the optional dependencies its features switch on
    // (lazy_static's `spin` is not among them): those are exempt, and judged when cargo
    // asks for them.
    let policy = signer.path("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[rule]\nattestations = 1\nreviews-count = true\ndependencies = \"trusted\"\n\
             optional-dependencies = \"exempt\"\n\n\
             [[developer]]\nlabel = \"reviewer\"\nkey = \"{reviewer}\"\n"
        ),
    )
    .unwrap();
    let metadata = signer.path("repo/published/metadata");
    let state = tempfile::tempdir().unwrap();
    let config = ProxyConfig {
        listen: "127.0.0.1:0".into(),
        upstream_index: PUBLIC_INDEX.into(),
        metadata: metadata.to_string_lossy().into_owned(),
        root: metadata.join("1.root.json"),
        state_dir: state.path().join("state"),
        refresh_interval: "1s".into(),
        upstream_timeout: "120s".into(),
        connect_timeout: "10s".into(),
        // The proxy's own default, in front of the public registry.
        index_freshness: "10s".into(),
        extra: vec![format!(
            "policy = {}",
            serde_json::to_string(&policy.to_string_lossy()).unwrap()
        )],
        env: Vec::new(),
    };
    let proxy = Proxy::spawn(config, &state.path().join("proxy.toml"))
        .unwrap_or_else(|e| panic!("the proxy did not start: {e:?}"));
    let root = state.path().join("installed");
    let (_project, output) = install(&proxy.index_url(), &root);
    let output = output.assert_success();
    let binary = root.join("bin").join(PROJECT);
    let mut run = Command::new(&binary)
        .arg("1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    run.stdin
        .take()
        .unwrap()
        .write_all(b"vetted mirror works\n")
        .unwrap();
    let ran = run.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout).trim(),
        "mirror",
        "{}",
        output.describe()
    );
    let status = proxy.status();
    assert_eq!(status["downloads"]["refused"], 0, "{status:#}");

    // 3. A dependency removed from the vetted set: the build fails with the policy's
    // message naming it.
    let before = status["trust"]["snapshot_version"].as_u64().unwrap();
    signer.ok(&["release", "remove", REMOVED.0, REMOVED.1]);
    signer.ok(&["publish", "--online-key", &signer.file("online.pem")]);
    wait_for_snapshot(&proxy, before);
    let (_project, output) = install(&proxy.index_url(), &state.path().join("again"));
    output
        .assert_failure_containing(&format!("tuf-verifier refused the index of {PROJECT}"))
        .assert_failure_containing(&format!("because {} ", REMOVED.0))
        .assert_failure_containing(&format!(
            "is required by {PROJECT}, and no signed version of it matches"
        ));
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
