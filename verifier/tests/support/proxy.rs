//! The proxy under test: `tuf-verifier serve --config FILE` as a child process.
//!
//! Contract: the proxy prints `tuf-verifier listening on http://127.0.0.1:PORT` as its
//! first line on stdout once it accepts connections.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::tuf_repo::TestRepo;
use super::upstream::Upstream;

/// The first stdout line's prefix, before the URL.
pub const LISTENING_PREFIX: &str = "tuf-verifier listening on ";

/// How long the proxy may take to print its first line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The path of the `tuf-verifier` binary cargo built for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_tuf-verifier")
}

/// A TOML string literal (JSON string escapes are valid TOML).
fn quoted(value: &str) -> String {
    serde_json::to_string(value).expect("quote")
}

/// The proxy's configuration file, field by field.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// `listen`, default `127.0.0.1:0`.
    pub listen: String,
    /// `upstream_index`: the upstream sparse index URL, ending in `/index/`.
    pub upstream_index: String,
    /// `metadata`: the TUF metadata base URL, ending in `/`.
    pub metadata: String,
    /// `root`: the trusted root file.
    pub root: PathBuf,
    /// `state_dir`: where the proxy keeps its state.
    pub state_dir: PathBuf,
    /// `refresh_interval`, default `1s`.
    pub refresh_interval: String,
    /// `upstream_timeout`, default `3s`.
    pub upstream_timeout: String,
    /// `connect_timeout`, default `2s`.
    pub connect_timeout: String,
    /// `index_freshness`, default `0s` here (the proxy's own default is 10 s): every
    /// index request asks upstream, as the tests of what upstream says expect. The
    /// tests of the window set it.
    pub index_freshness: String,
    /// Further raw `key = value` lines, written after the others.
    pub extra: Vec<String>,
    /// Environment variables for the child process.
    pub env: Vec<(String, String)>,
}

impl ProxyConfig {
    /// The configuration for `upstream`'s index and metadata, trusting `repo`'s first
    /// root, keeping state in `state_dir`.
    pub fn new(upstream: &Upstream, repo: &TestRepo, state_dir: &Path) -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
            upstream_index: upstream.index_url(),
            metadata: upstream.metadata_url(),
            root: repo.root_path(),
            state_dir: state_dir.to_owned(),
            refresh_interval: "1s".into(),
            upstream_timeout: "3s".into(),
            connect_timeout: "2s".into(),
            index_freshness: "0s".into(),
            extra: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Adds a raw `key = value` line.
    pub fn with_line(mut self, line: &str) -> Self {
        self.extra.push(line.to_owned());
        self
    }

    /// The TOML file contents.
    pub fn to_toml(&self) -> String {
        let mut toml = format!(
            "listen = {}\nupstream_index = {}\nmetadata = {}\nroot = {}\nstate_dir = {}\n\
             refresh_interval = {}\nupstream_timeout = {}\nconnect_timeout = {}\n\
             index_freshness = {}\n",
            quoted(&self.listen),
            quoted(&self.upstream_index),
            quoted(&self.metadata),
            quoted(&self.root.to_string_lossy()),
            quoted(&self.state_dir.to_string_lossy()),
            quoted(&self.refresh_interval),
            quoted(&self.upstream_timeout),
            quoted(&self.connect_timeout),
            quoted(&self.index_freshness),
        );
        for line in &self.extra {
            toml.push_str(line);
            toml.push('\n');
        }
        toml
    }
}

/// Why the proxy did not start.
#[derive(Debug)]
pub struct ProxyStartError {
    /// What happened (exited, printed something else, timed out).
    pub reason: String,
    /// Exit status, if it exited.
    pub status: Option<ExitStatus>,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl std::fmt::Display for ProxyStartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tuf-verifier did not start: {} (status {:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.reason, self.status, self.stdout, self.stderr
        )
    }
}

/// A running proxy; killed when dropped.
pub struct Proxy {
    child: Child,
    url: String,
    config: ProxyConfig,
    config_path: PathBuf,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    stdout_thread: Option<std::thread::JoinHandle<()>>,
    stderr_thread: Option<std::thread::JoinHandle<()>>,
    dir: Option<tempfile::TempDir>,
}

fn drain_lines(
    pipe: impl Read + Send + 'static,
    buffer: Arc<Mutex<String>>,
    first_line: Option<mpsc::Sender<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut first_line = first_line;
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    buffer
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push_str(&text);
                    if let Some(sender) = first_line.take() {
                        let _ = sender.send(text.trim_end().to_owned());
                    }
                }
            }
        }
    })
}

fn take(buffer: &Arc<Mutex<String>>) -> String {
    buffer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

impl Proxy {
    /// Starts a proxy for `upstream` trusting `repo`'s root, with config and state in a
    /// temporary directory it owns. Panics with the proxy's output if it does not start.
    pub fn start(upstream: &Upstream, repo: &TestRepo) -> Self {
        Self::start_with(upstream, repo, &[])
    }

    /// Like [`Self::start`] with extra `key = value` config lines.
    pub fn start_with(upstream: &Upstream, repo: &TestRepo, extra: &[&str]) -> Self {
        Self::start_configured(upstream, repo, |config| {
            config.extra = extra.iter().map(|l| (*l).to_owned()).collect();
        })
    }

    /// Like [`Self::start`], with the configuration changed by `edit` first.
    pub fn start_configured(
        upstream: &Upstream,
        repo: &TestRepo,
        edit: impl FnOnce(&mut ProxyConfig),
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = ProxyConfig::new(upstream, repo, &dir.path().join("proxy-state"));
        edit(&mut config);
        let mut proxy =
            Self::spawn(config, &dir.path().join("proxy.toml")).unwrap_or_else(|e| panic!("{e}"));
        proxy.dir = Some(dir);
        proxy
    }

    /// Writes `config` to `config_path` and starts the proxy on it, waiting for its
    /// first stdout line. The caller keeps the directories alive.
    pub fn spawn(config: ProxyConfig, config_path: &Path) -> Result<Self, ProxyStartError> {
        std::fs::write(config_path, config.to_toml()).expect("write proxy config");
        let mut command = Command::new(binary());
        command
            .arg("serve")
            .arg("--config")
            .arg(config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The proxy talks to 127.0.0.1: no HTTP proxy from the environment in between.
        for name in [
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ] {
            command.env_remove(name);
        }
        // Plain log lines in failure messages (tracing-subscriber honours NO_COLOR).
        command.env("NO_COLOR", "1");
        command.envs(config.env.iter().map(|(k, v)| (k, v)));
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (sender, first_line) = mpsc::channel();
        let stdout_thread = drain_lines(
            child.stdout.take().expect("stdout pipe"),
            Arc::clone(&stdout),
            Some(sender),
        );
        let stderr_thread = drain_lines(
            child.stderr.take().expect("stderr pipe"),
            Arc::clone(&stderr),
            None,
        );
        let failure =
            |mut child: Child, reason: String, threads: [std::thread::JoinHandle<()>; 2]| {
                let _ = child.kill();
                let status = child.wait().ok();
                for thread in threads {
                    let _ = thread.join();
                }
                ProxyStartError {
                    reason,
                    status,
                    stdout: take(&stdout),
                    stderr: take(&stderr),
                }
            };
        let line = match first_line.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(failure(
                    child,
                    format!("no first line on stdout within {START_TIMEOUT:?}"),
                    [stdout_thread, stderr_thread],
                ))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(failure(
                    child,
                    "stdout closed before the first line".into(),
                    [stdout_thread, stderr_thread],
                ))
            }
        };
        let Some(url) = line
            .strip_prefix(LISTENING_PREFIX)
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| u.starts_with("http://"))
        else {
            return Err(failure(
                child,
                format!("first stdout line is {line:?}, not {LISTENING_PREFIX:?} and a URL"),
                [stdout_thread, stderr_thread],
            ));
        };
        Ok(Self {
            child,
            url,
            config,
            config_path: config_path.to_owned(),
            stdout,
            stderr,
            stdout_thread: Some(stdout_thread),
            stderr_thread: Some(stderr_thread),
            dir: None,
        })
    }

    /// Polls `/healthz` until it answers `status` (20 s at most); its body.
    pub fn wait_for_health(&self, status: u16) -> String {
        let client = super::http_client(Some(Duration::from_secs(5)));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let response = client
                .get(format!("{}/healthz", self.url()))
                .send()
                .unwrap();
            let code = response.status().as_u16();
            let body = response.text().unwrap();
            if code == status {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "/healthz still {code} {body:?}\n{}",
                self.describe()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `/status.json`, parsed.
    pub fn status(&self) -> serde_json::Value {
        let body = super::upstream::http_client(Some(Duration::from_secs(10)))
            .get(format!("{}/status.json", self.url))
            .send()
            .expect("GET /status.json")
            .text()
            .expect("/status.json body");
        serde_json::from_str(&body).expect("/status.json is JSON")
    }

    /// `http://127.0.0.1:PORT/index/`: the index to point cargo at.
    pub fn index_url(&self) -> String {
        format!("{}/index/", self.url)
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> &str {
        self.url.strip_prefix("http://").unwrap_or(&self.url)
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// The configuration file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.config.state_dir
    }

    /// Everything printed on stdout so far.
    pub fn stdout(&self) -> String {
        take(&self.stdout)
    }

    /// Everything printed on stderr so far (logs; for failure messages).
    pub fn stderr(&self) -> String {
        take(&self.stderr)
    }

    /// Stdout and stderr so far, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "--- proxy stdout ---\n{}\n--- proxy stderr ---\n{}",
            self.stdout(),
            self.stderr()
        )
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited (and how), without waiting.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Sends it signal `name` (`TERM`, `INT`) with kill(1).
    pub fn signal(&self, name: &str) {
        send_signal(self.child.id(), name);
    }

    /// Waits up to `timeout` for it to exit, then collects its output; `None` if it is
    /// still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                for thread in [self.stdout_thread.take(), self.stderr_thread.take()]
                    .into_iter()
                    .flatten()
                {
                    let _ = thread.join();
                }
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it and waits until it has exited and its output is collected.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for thread in [self.stdout_thread.take(), self.stderr_thread.take()]
            .into_iter()
            .flatten()
        {
            let _ = thread.join();
        }
    }

    /// Kills it and starts it again with the same configuration, state directory and
    /// port (so a cargo configured for it keeps working).
    pub fn restart(&mut self) {
        self.kill();
        let mut config = self.config.clone();
        config.listen = self.address().to_owned();
        let mut next =
            Self::spawn(config, &self.config_path.clone()).unwrap_or_else(|e| panic!("{e}"));
        next.dir = self.dir.take();
        *self = next;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends signal `name` (`TERM`, `INT`) to process `pid` with kill(1).
pub fn send_signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}: {status}");
}
