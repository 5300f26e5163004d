//! `tuf-verifier`: a cargo source proxy that serves a registry's sparse index and
//! tarballs, refusing every tarball that no authorised key signed; and offline checks of
//! a `Cargo.lock` or a `cargo vendor` directory against the same TUF repository.
#![forbid(unsafe_code)]

mod cache;
mod client_token;
mod config;
mod demo;
mod explain;
mod index_answer;
mod index_line;
mod offline;
mod policy;
mod proxy;
mod refresh_schedule;
mod serve;
mod shared_state;
mod shutdown;
mod signed_index;
mod signed_target;
mod squat;
mod trust;
mod upstream;
mod upstream_auth;
mod verified_memory;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A cargo source proxy that passes on only what a registry's TUF repository signed.
///
/// `serve` stands between cargo and an upstream sparse registry (crates.io, a mirror, a
/// company registry). A crate's index answer holds every version its owners signed,
/// with the index entry they signed (dependencies, features, their yank), whatever
/// upstream sends or omits; a release signed before signed index entries is passed on
/// when its `cksum` is the signed sha256 (unless --require-signed-index-entries on). No
/// line whose dependency names another registry is served (see --allowed-registries).
/// Tarballs are served only when they are exactly the signed target, with the keys
/// authorised for the crate's namespace. Anything else is refused, and the reason is
/// the body of the answer, which cargo prints.
///
/// `serve` with no options runs a built-in demo: a demo registry signed with the
/// keys-example keys, and the proxy in front of it.
///
/// Exit status: 0 success (or every package verified; `serve`: stopped by SIGTERM or
/// SIGINT once the requests in flight finished); 1 a failure, or packages that did not
/// verify (each is listed); 2 the command line is wrong; 3 `serve` stopped with requests
/// still in flight (the --shutdown-grace ran out, or a second signal came).
#[derive(Debug, Parser)]
#[command(name = "tuf-verifier", version, about, long_about)]
struct Cli {
    /// More log output on stderr (-v debug, -vv trace); or set TUF_VERIFIER_LOG.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// How log lines are written on stderr: `text` for people, `json` (one object per
    /// line: timestamp, level, target, fields) for a log collector.
    #[arg(long, global = true, value_enum, env = "TUF_VERIFIER_LOG_FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy (with no options: the built-in demo).
    Serve(Box<config::ServeArgs>),
    /// Check every package of a Cargo.lock: its checksum must be the sha256 of the signed
    /// target, and a package from another source (registry, git) fails unless allowed.
    VerifyLockfile(offline::LockfileArgs),
    /// Check a `cargo vendor` directory: each crate's package checksum must be the signed
    /// sha256, and its files those of the signed tarball.
    VerifyVendor(offline::VendorArgs),
    /// Say what the proxy serves of a crate and why: per version, the role that signed
    /// it, whether its index entry is signed, how upstream's line compares, who yanked
    /// it, and each developer attestation, valid or not. Exit 0 when something is
    /// served (the version asked for, or any version), 1 when nothing is.
    Explain(explain::ExplainArgs),
    /// The trust policy (spec/trust-policy.md): `check` a Cargo.lock against it offline,
    /// `trust` or `untrust` a developer in the policy file. `check` exits 1 when a
    /// package is not trusted.
    Policy(policy::cli::PolicyArgs),
    /// Tokens for the clients of a proxy that requires authentication
    /// (`client_tokens_file`): `new` prints a token once and adds its SHA-256 to the file.
    ClientToken(client_token::ClientTokenArgs),
}

/// The format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One line of text per event, coloured only on a terminal.
    Text,
    /// One JSON object per event (never coloured).
    Json,
}

/// Logs on stderr. `serve` logs at `info` by default (what it serves and refuses); the
/// offline verbs at `warn`, since their report is on stdout.
fn init_logging(verbose: u8, quiet_by_default: bool, format: LogFormat) {
    let default = match (verbose, quiet_by_default) {
        (0, true) => "warn",
        (0, false) => "info",
        (1, _) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TUF_VERIFIER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.with_ansi(log_colour()).init(),
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
}

/// Colour in log lines only on a terminal, and never with `NO_COLOR` set
/// (<https://no-color.org>).
fn log_colour() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

async fn serve(args: config::ServeArgs) -> anyhow::Result<serve::Stopped> {
    // From the very start: a signal while the demo is set up stops cleanly too.
    let stop = shutdown::listen();
    if args.is_demo() {
        let demo = tokio::select! {
            demo = demo::Demo::start() => demo?,
            () = stop.clone().requested() => return Ok(serve::Stopped::BeforeServing),
        };
        let config = demo.config(&args)?;
        // The demo always serves under a policy: its own unless --policy gave another.
        let policy = config.policy.clone().unwrap_or_else(|| demo.policy_path());
        let stopped = serve::run(config, stop, |url| {
            println!("{}", demo.instructions(url, &policy));
        })
        .await;
        // The demo's directory goes however the proxy stopped.
        drop(demo);
        stopped
    } else {
        serve::run(args.resolve()?, stop, |_| {}).await
    }
}

/// The exit status of `serve` once it stopped. With JSON logs, the last word is a log
/// event too, so that a collector reading stderr sees only objects.
fn serve_exit(stopped: serve::Stopped, format: LogFormat) -> ExitCode {
    match stopped {
        serve::Stopped::Drained | serve::Stopped::BeforeServing => ExitCode::SUCCESS,
        serve::Stopped::InFlightEnded { in_flight } => {
            let why = "the shutdown grace period ran out, or a second signal came";
            match format {
                LogFormat::Json => tracing::warn!(
                    in_flight,
                    "stopped with requests still in flight, ended ({why})"
                ),
                LogFormat::Text => eprintln!(
                    "tuf-verifier: stopped with {in_flight} request(s) still in flight, ended \
                     ({why})"
                ),
            }
            ExitCode::from(shutdown::EXIT_IN_FLIGHT_ENDED)
        }
    }
}

/// An error and its causes in one line, each said once.
fn error_chain(error: &anyhow::Error) -> String {
    tuf_core::error_chain::error_chain(error.as_ref())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(
        cli.verbose,
        !matches!(cli.command, Command::Serve(_)),
        cli.log_format,
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tuf-verifier: error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let json = match &cli.command {
        Command::Serve(_) => false,
        Command::VerifyLockfile(args) => args.json(),
        Command::VerifyVendor(args) => args.json(),
        Command::Explain(args) => args.json,
        Command::Policy(args) => args.json(),
        Command::ClientToken(args) => args.json,
    };
    let result = match cli.command {
        Command::Serve(args) => {
            let stopped = runtime.block_on(serve(*args));
            // A refresh still running on a blocking thread has its own timeouts; it is
            // not waited for past a moment (metadata is written atomically).
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            return match stopped {
                Ok(stopped) => serve_exit(stopped, cli.log_format),
                Err(error) => {
                    let error = error_chain(&error);
                    match cli.log_format {
                        LogFormat::Json => tracing::error!(%error, "stopped on an error"),
                        LogFormat::Text => eprintln!("tuf-verifier: error: {error}"),
                    }
                    ExitCode::FAILURE
                }
            };
        }
        Command::VerifyLockfile(args) => runtime.block_on(offline::verify_lockfile(args)),
        Command::VerifyVendor(args) => runtime.block_on(offline::verify_vendor(args)),
        Command::Explain(args) => runtime.block_on(explain::run(args)),
        Command::Policy(args) => runtime.block_on(policy::cli::run(args)),
        Command::ClientToken(args) => runtime.block_on(client_token::run(args)),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            let error = error_chain(&error);
            eprintln!("tuf-verifier: error: {error}");
            if json {
                // Scripts reading --json get one object whatever happened.
                println!("{}", serde_json::json!({"ok": false, "error": error}));
            }
            ExitCode::FAILURE
        }
    }
}
