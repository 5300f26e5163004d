//! Real cargo, isolated: a temporary `CARGO_HOME` whose config replaces crates-io with a
//! sparse registry, and a one-package workspace (`app`) depending on registry crates.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long one cargo command may run before it is killed.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

/// The output of one cargo command.
#[derive(Debug)]
pub struct CargoOutput {
    /// The command line, for messages.
    pub command: String,
    /// Exit status (`None` when it was killed on the timeout).
    pub status: Option<ExitStatus>,
    /// Standard output.
    pub stdout: String,
    /// Standard error (cargo's messages).
    pub stderr: String,
    /// How long it ran.
    pub duration: Duration,
}

impl CargoOutput {
    /// Whether cargo exited with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Command, status, duration, stdout and stderr, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "$ {}\nstatus: {} after {:.1?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.status
                .map_or_else(|| "killed on timeout".to_owned(), |s| s.to_string()),
            self.duration,
            self.stdout,
            self.stderr
        )
    }

    /// Asserts success, showing everything otherwise; returns `self`.
    pub fn assert_success(self) -> Self {
        assert!(self.success(), "cargo failed:\n{}", self.describe());
        self
    }

    /// Asserts failure with `needle` in stderr; returns `self`.
    pub fn assert_failure_containing(self, needle: &str) -> Self {
        assert!(
            !self.success() && self.stderr.contains(needle),
            "expected cargo to fail with {needle:?}:\n{}",
            self.describe()
        );
        self
    }
}

/// One `[[package]]` entry of a `Cargo.lock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedPackage {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// `source`, if any (registry packages have one).
    pub source: Option<String>,
    /// `checksum`, if any (registry packages have one).
    pub checksum: Option<String>,
}

/// Parses the `[[package]]` entries of a `Cargo.lock` (enough for tests).
pub fn parse_lockfile(text: &str) -> Vec<LockedPackage> {
    let field = |block: &str, key: &str| {
        block.lines().find_map(|line| {
            let (k, v) = line.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
        })
    };
    text.split("[[package]]")
        .skip(1)
        .filter_map(|block| {
            Some(LockedPackage {
                name: field(block, "name")?,
                version: field(block, "version")?,
                source: field(block, "source"),
                checksum: field(block, "checksum"),
            })
        })
        .collect()
}

/// Environment variables of the outer `cargo test` (or the user) that would change how
/// the inner cargo behaves.
fn interferes(name: &str) -> bool {
    ((name.starts_with("CARGO") || name.starts_with("RUST")) && !name.starts_with("RUSTUP_"))
        || matches!(
            name,
            "MAKEFLAGS"
                | "MFLAGS"
                | "http_proxy"
                | "HTTP_PROXY"
                | "https_proxy"
                | "HTTPS_PROXY"
                | "all_proxy"
                | "ALL_PROXY"
                | "no_proxy"
                | "NO_PROXY"
        )
}

/// A cargo home and a workspace in a temporary directory, using the registry at an
/// index URL instead of crates-io.
pub struct CargoProject {
    dir: tempfile::TempDir,
    timeout: Duration,
    extra_env: Vec<(String, String)>,
}

impl CargoProject {
    /// A project whose `app` package depends on `deps` (`(name, requirement)`), with an
    /// empty `main`, resolving through the sparse index at `index_url` (a URL ending in
    /// `/index/`; `sparse+` is added if missing).
    pub fn new(index_url: &str, deps: &[(&str, &str)]) -> Self {
        Self::with_main(index_url, deps, "fn main() {}\n")
    }

    /// Like [`Self::new`] with `main_rs` as `src/main.rs`.
    pub fn with_main(index_url: &str, deps: &[(&str, &str)], main_rs: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let project = Self {
            dir,
            timeout: DEFAULT_TIMEOUT,
            extra_env: Vec::new(),
        };
        std::fs::create_dir_all(project.home()).expect("cargo home");
        std::fs::create_dir_all(project.workspace().join("src")).expect("workspace");
        project.set_registry(index_url);
        project.set_dependencies(deps);
        std::fs::write(project.workspace().join("src/main.rs"), main_rs).expect("main.rs");
        project
    }

    /// The temporary `CARGO_HOME`.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("cargo-home")
    }

    /// The workspace directory (holding `Cargo.toml`, `Cargo.lock`, `src/main.rs`).
    pub fn workspace(&self) -> PathBuf {
        self.dir.path().join("app")
    }

    /// The `CARGO_TARGET_DIR` of this project.
    pub fn target_dir(&self) -> PathBuf {
        self.dir.path().join("target")
    }

    /// Points the `CARGO_HOME` config at another sparse index (keeping its caches).
    pub fn set_registry(&self, index_url: &str) {
        self.write_config(index_url, "");
    }

    /// Rewrites `$CARGO_HOME/config.toml` for `index_url`, with `extra` TOML appended.
    pub fn write_config(&self, index_url: &str, extra: &str) {
        let registry = if index_url.starts_with("sparse+") {
            index_url.to_owned()
        } else {
            format!("sparse+{index_url}")
        };
        let quoted = serde_json::to_string(&registry).expect("quote");
        let config = format!(
            "[source.crates-io]\nreplace-with = \"test-registry\"\n\n\
             [source.test-registry]\nregistry = {quoted}\n\n\
             [net]\nretry = 0\n\n\
             [term]\ncolor = \"never\"\nprogress.when = \"never\"\n\n{extra}"
        );
        std::fs::write(self.home().join("config.toml"), config).expect("config.toml");
    }

    /// Rewrites `Cargo.toml` with these dependencies.
    pub fn set_dependencies(&self, deps: &[(&str, &str)]) {
        let mut manifest = String::from(
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
             [workspace]\n\n[dependencies]\n",
        );
        for (name, req) in deps {
            manifest.push_str(&format!(
                "{name} = {}\n",
                serde_json::to_string(req).expect("quote")
            ));
        }
        std::fs::write(self.workspace().join("Cargo.toml"), manifest).expect("Cargo.toml");
    }

    /// Replaces `src/main.rs`.
    pub fn set_main(&self, main_rs: &str) {
        std::fs::write(self.workspace().join("src/main.rs"), main_rs).expect("main.rs");
    }

    /// Sets how long each cargo command may run before it is killed (default 180 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Adds an environment variable for every later cargo command.
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.extra_env.push((name.to_owned(), value.to_owned()));
    }

    /// Runs `cargo ARGS` in the workspace with the isolated environment.
    pub fn cargo(&self, args: &[&str]) -> CargoOutput {
        let mut command = Command::new("cargo");
        command.args(args).current_dir(self.workspace());
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_none_or(interferes) {
                command.env_remove(&name);
            }
        }
        command
            .env("CARGO_HOME", self.home())
            .env("CARGO_TARGET_DIR", self.target_dir())
            .env("CARGO_TERM_COLOR", "never")
            .env("CARGO_TERM_PROGRESS_WHEN", "never")
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let description = format!("cargo {}", args.join(" "));
        let start = Instant::now();
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {description}: {e}"));
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut text);
                }
                String::from_utf8_lossy(&text).into_owned()
            })
        };
        let stdout = drain(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let stderr = drain(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        // A watchdog, not synchronisation: cargo hanging must fail the test, not hang it.
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for cargo") {
                break Some(status);
            }
            if start.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        CargoOutput {
            command: description,
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
            duration: start.elapsed(),
        }
    }

    /// `cargo build`.
    pub fn build(&self) -> CargoOutput {
        self.cargo(&["build"])
    }

    /// `cargo run` (the app's stdout is in the output's stdout).
    pub fn run(&self) -> CargoOutput {
        self.cargo(&["run", "--quiet"])
    }

    /// `cargo generate-lockfile`.
    pub fn generate_lockfile(&self) -> CargoOutput {
        self.cargo(&["generate-lockfile"])
    }

    /// `cargo fetch`.
    pub fn fetch(&self) -> CargoOutput {
        self.cargo(&["fetch"])
    }

    /// `cargo update`.
    pub fn update(&self) -> CargoOutput {
        self.cargo(&["update"])
    }

    /// `cargo vendor --respect-source-config DIR` (without the flag vendor ignores the
    /// source replacement and would go to crates-io).
    pub fn vendor(&self, dir: &Path) -> CargoOutput {
        let dir = dir.to_str().expect("UTF-8 vendor dir");
        self.cargo(&["vendor", "--respect-source-config", dir])
    }

    /// The `Cargo.lock` contents, if there is one.
    pub fn lockfile(&self) -> Option<String> {
        std::fs::read_to_string(self.workspace().join("Cargo.lock")).ok()
    }

    /// The packages of `Cargo.lock` (empty without one).
    pub fn locked_packages(&self) -> Vec<LockedPackage> {
        self.lockfile()
            .map(|text| parse_lockfile(&text))
            .unwrap_or_default()
    }

    /// The versions of `name` in the lockfile.
    pub fn locked_versions(&self, name: &str) -> Vec<String> {
        self.locked_packages()
            .into_iter()
            .filter(|p| p.name == name)
            .map(|p| p.version)
            .collect()
    }

    /// The checksum `Cargo.lock` records for `name` `version`.
    pub fn locked_checksum(&self, name: &str, version: &str) -> Option<String> {
        self.locked_packages()
            .into_iter()
            .find(|p| p.name == name && p.version == version)
            .and_then(|p| p.checksum)
    }

    /// Writes `Cargo.lock`.
    pub fn write_lockfile(&self, contents: &str) {
        std::fs::write(self.workspace().join("Cargo.lock"), contents).expect("Cargo.lock");
    }

    /// Removes `Cargo.lock` if present.
    pub fn remove_lockfile(&self) {
        let _ = std::fs::remove_file(self.workspace().join("Cargo.lock"));
    }

    /// Removes `$CARGO_HOME/registry` (index cache, downloaded `.crate` files, sources),
    /// so that the next command downloads everything again.
    pub fn clear_registry_cache(&self) {
        let _ = std::fs::remove_dir_all(self.home().join("registry"));
    }

    /// The `.crate` files in `$CARGO_HOME/registry/cache`, by file name.
    pub fn cached_crates(&self) -> Vec<String> {
        let mut found = Vec::new();
        let cache = self.home().join("registry").join("cache");
        for dir in std::fs::read_dir(cache).into_iter().flatten().flatten() {
            for file in std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                found.push(file.file_name().to_string_lossy().into_owned());
            }
        }
        found.sort();
        found
    }
}
