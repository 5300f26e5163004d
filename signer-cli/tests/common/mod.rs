//! Running the real `tuf-signer` binary in tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use tuf_crates_tests::{describe_output, python_tuf, verify_repository_script};

/// The passphrase every test key is encrypted with.
pub const PASSPHRASE: &str = "correct horse battery staple 7";

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tuf-signer"))
}

/// A workspace for one test: keys and repositories under a temporary directory.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    /// The umask every command runs with, if not the test's own.
    pub umask: Option<&'static str>,
}

impl Workspace {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            umask: None,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A `tuf-signer` command with the test passphrase in `TUF_TEST_PASSPHRASE`.
    pub fn command(&self, repo: &str) -> Command {
        let mut command = match self.umask {
            None => Command::new(bin()),
            Some(umask) => {
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
                    .arg(bin());
                shell
            }
        };
        command
            .env("TUF_TEST_PASSPHRASE", PASSPHRASE)
            .env_remove("TUF_SIGNER_REPO")
            .env_remove("TUF_SIGNER_LOG")
            .arg("-C")
            .arg(self.path(repo))
            .arg("--passphrase-env")
            .arg("TUF_TEST_PASSPHRASE")
            .current_dir(self.dir.path());
        command
    }

    /// Runs `tuf-signer -C repo args…` and returns its output.
    pub fn run(&self, repo: &str, args: &[&str]) -> Output {
        self.command(repo).args(args).output().unwrap()
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, repo: &str, args: &[&str]) -> String {
        let output = self.run(repo, args);
        assert!(
            output.status.success(),
            "tuf-signer {args:?} failed:\n{}",
            describe_output(&output)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs with `--json` and parses stdout.
    pub fn json(&self, repo: &str, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(repo, &all)).unwrap()
    }

    /// Generates `name.pem` / `name.pub.json` (fast KDF for tests) and returns the keyid.
    pub fn key(&self, name: &str) -> String {
        let out = self.path(name);
        let value = self.json(
            "repo",
            &[
                "key",
                "generate",
                "--out",
                out.to_str().unwrap(),
                "--kdf-iterations",
                "100000",
            ],
        );
        value["keyid"].as_str().unwrap().to_owned()
    }

    pub fn pem(&self, name: &str) -> String {
        self.path(&format!("{name}.pem"))
            .to_string_lossy()
            .into_owned()
    }

    pub fn public(&self, name: &str) -> String {
        self.path(&format!("{name}.pub.json"))
            .to_string_lossy()
            .into_owned()
    }

    /// Generates the keys `root`, `targets` and `online` and creates `repo` with them
    /// and 2^`bin_bits` fallback bins.
    pub fn init(&self, bin_bits: u32) {
        for name in ["root", "targets", "online"] {
            self.key(name);
        }
        let bits = bin_bits.to_string();
        self.ok(
            "repo",
            &[
                "init",
                "--root-key",
                &self.public("root"),
                "--targets-key",
                &self.public("targets"),
                "--online-key",
                &self.public("online"),
                "--bin-bits",
                &bits,
            ],
        );
    }

    /// [`Self::init`], then the root and targets holders sign and it is published.
    pub fn init_and_publish(&self, bin_bits: u32) {
        self.init(bin_bits);
        self.ok("repo", &["sign", "--yes", "--key", &self.pem("root")]);
        self.ok("repo", &["sign", "--yes", "--key", &self.pem("targets")]);
        self.ok("repo", &["publish", "--online-key", &self.pem("online")]);
    }

    /// Writes a `.crate` for `name` `version` and returns its path.
    pub fn tarball(&self, name: &str, version: &str) -> String {
        let bytes = tuf_crates_tests::crate_tarball::build_crate_tarball(
            name,
            version,
            &[],
            &format!("pub fn version() -> &'static str {{ \"{version}\" }}\n"),
        );
        let dir = self.path("tarballs");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}-{version}.crate"));
        std::fs::write(&path, bytes).unwrap();
        path.to_string_lossy().into_owned()
    }
}

/// Runs python-tuf's checker over a published repository; returns (success, stdout json).
pub fn python_verify(
    published: &Path,
    root: &Path,
    targets: &[&str],
) -> (bool, serde_json::Value, String) {
    let mut command = Command::new(python_tuf());
    command
        .arg(verify_repository_script())
        .arg("repo")
        .arg("--metadata-dir")
        .arg(published.join("metadata"))
        .arg("--root")
        .arg(root)
        .arg("--targets-dir")
        .arg(published.join("targets"));
    for target in targets {
        command.arg("--target").arg(target);
    }
    let output = command.output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let value = serde_json::from_str(text.trim()).unwrap_or(serde_json::Value::Null);
    (output.status.success(), value, describe_output(&output))
}

/// Copies the directory `from` to `to` (`cp -a`: modes and links kept).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

/// A small deterministic generator for kill delays (xorshift), seeded from the clock or
/// `TUF_CRASH_SEED`; print [`Delays::seed`] so that a failure can be replayed.
pub struct Delays {
    seed: u64,
    state: u64,
}

impl Delays {
    /// Seeded from `TUF_CRASH_SEED`, else the clock.
    pub fn from_env() -> Self {
        let seed = std::env::var("TUF_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        Self { seed, state: seed }
    }

    /// The seed, to replay a run with `TUF_CRASH_SEED`.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The next number in [0, 1).
    pub fn next_fraction(&mut self) -> f64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state >> 11) as f64 / (1u64 << 53) as f64
    }
}
