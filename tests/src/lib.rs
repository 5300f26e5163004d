//! Helpers shared by the workspace-level integration tests.
//!
//! The tests in `tests/tests/` check tuf-core against independent implementations:
//! python-tuf (metadata written here must pass its client checks) and the `openssl`
//! command line tool (private key files and signatures must be understood both ways).
//!
//! Those tools are required, not optional: a missing tool makes the tests fail with a
//! message saying how to install it, never skip silently (CI installs both).
//!
//! * python-tuf: `PY=$(scripts/python-venv | tail -n1)` creates
//!   `target/python-venv`, which [`python_tuf`] finds by itself; or point
//!   `TUF_CRATES_PYTHON` at any interpreter with the packages of
//!   `tests/python/requirements.txt`.
//! * openssl: found on `PATH`, or named by `TUF_CRATES_OPENSSL`.
//! * Chromium (the status page's browser test): found on `PATH`, or named by
//!   `TUF_CRATES_CHROMIUM`.
#![forbid(unsafe_code)]
// Test support code: its job is to fail loudly, with a clear message, when a tool the
// interop tests need is missing or cannot be run, so panicking is the intended behaviour.
#![allow(clippy::panic, clippy::expect_used)]

use std::env;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod crate_tarball;
pub mod static_server;

/// Environment variable naming the python interpreter to run python-tuf with.
pub const PYTHON_ENV: &str = "TUF_CRATES_PYTHON";

/// Environment variable naming the `openssl` binary.
pub const OPENSSL_ENV: &str = "TUF_CRATES_OPENSSL";

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// A non-empty environment variable, as a path.
fn env_path(name: &str) -> Option<PathBuf> {
    env::var_os(name)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// The python interpreter with python-tuf installed.
///
/// `TUF_CRATES_PYTHON` if set; else the venv `scripts/python-venv` creates
/// (`${TUF_CRATES_VENV:-<workspace>/target/python-venv}/bin/python`) if it exists.
///
/// # Panics
///
/// When neither is available, with a message saying how to create the venv: the interop
/// tests must fail, not skip, when python-tuf is missing.
pub fn python_tuf() -> PathBuf {
    if let Some(python) = env_path(PYTHON_ENV) {
        if python.exists() {
            return python;
        }
        if let Some(found) = find_on_path(&python) {
            return found;
        }
        panic!(
            "{PYTHON_ENV}={} does not name an existing interpreter; create the venv with \
             `scripts/python-venv` (it prints the interpreter's path on its last line)",
            python.display()
        );
    }
    let venv = env_path("TUF_CRATES_VENV")
        .map(|venv| {
            if venv.is_absolute() {
                venv
            } else {
                workspace_root().join(venv)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target").join("python-venv"));
    let python = venv.join("bin").join("python");
    if python.exists() {
        return python;
    }
    panic!(
        "python-tuf is required by the interop tests but no interpreter was found: \
         {PYTHON_ENV} is not set and {} does not exist.\n\
         Create the venv with `scripts/python-venv` from the workspace root, or run the \
         tests as tests/python/README.md shows:\n    \
         PY=$(scripts/python-venv | tail -n1)\n    \
         {PYTHON_ENV}=$PY cargo test -p tuf-crates-tests",
        python.display()
    )
}

/// `tests/python/verify_repository.py`, the python-tuf checker.
pub fn verify_repository_script() -> PathBuf {
    workspace_root()
        .join("tests")
        .join("python")
        .join("verify_repository.py")
}

/// The `openssl` command line tool: `TUF_CRATES_OPENSSL` if set, else `openssl` on
/// `PATH`.
///
/// # Panics
///
/// When neither is found: the interop tests must fail, not skip, when openssl is missing.
pub fn openssl() -> PathBuf {
    required_tool(
        OPENSSL_ENV,
        "openssl",
        "the openssl command line tool is required by the interop tests but was not found \
         on PATH; install it (e.g. `apt-get install openssl`)",
    )
}

/// The program `env_name` names, else `program` on `PATH`; panics with `missing` (and
/// how to name it instead) when neither is there.
fn required_tool(env_name: &str, program: &str, missing: &str) -> PathBuf {
    if let Some(named) = env_path(env_name) {
        if named.exists() {
            return named;
        }
        if let Some(found) = find_on_path(&named) {
            return found;
        }
        panic!(
            "{env_name}={} does not name an existing program",
            named.display()
        );
    }
    find_on_path(Path::new(program))
        .unwrap_or_else(|| panic!("{missing}, or set {env_name} to its path"))
}

/// Environment variable naming the Chromium binary.
pub const CHROMIUM_ENV: &str = "TUF_CRATES_CHROMIUM";

/// Chromium, for the tests that look at a page in a real browser: `TUF_CRATES_CHROMIUM`
/// if set, else `chromium` on `PATH` (Debian's package, which `scripts/test` installs).
///
/// # Panics
///
/// When neither is found: the browser tests fail, not skip, without it.
pub fn chromium() -> PathBuf {
    required_tool(
        CHROMIUM_ENV,
        "chromium",
        "Chromium is required by the status page's browser test but was not found on PATH; \
         install it (`apt-get install chromium`, as scripts/test does)",
    )
}

/// The first `PATH` entry holding an executable file named `program` (a bare name).
fn find_on_path(program: &Path) -> Option<PathBuf> {
    if program.components().count() != 1 {
        return None;
    }
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// Runs `program` with `args` and returns its output, panicking (with the command line)
/// only if it cannot be started at all; the exit status is for the caller to check.
pub fn run<I, S>(program: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<S> = args.into_iter().collect();
    let mut command = Command::new(program);
    command.args(&args);
    command.output().unwrap_or_else(|err| {
        panic!(
            "could not run {} {}: {err}",
            program.display(),
            args.iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        )
    })
}

/// A short description of a finished command for assertion messages: exit status,
/// stdout and stderr.
pub fn describe_output(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
