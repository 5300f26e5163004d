//! `tuf-signer`: create and keep the TUF repository of a crate registry's releases.
//!
//! Maintainers sign releases; registries run key ceremonies (keys, thresholds,
//! per-namespace delegations, root rotation) and publish snapshot and timestamp with
//! online keys. The repository-writing logic lives in `tuf-core`'s editor
//! (`tuf_core::repository`); this binary is the command line over it, one module per
//! group of subcommands.
#![forbid(unsafe_code)]

mod commands;
mod output;
mod pkcs11;
mod secrets;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Sign crate releases and run TUF key ceremonies for a registry.
///
/// A repository is a working directory: `repository.json` (settings), `staged/`
/// (changes waiting for signatures) and `published/` (what clients read: serve it over
/// HTTP as the TUF repository). Edits stage changes; key holders `sign` them; `publish`
/// signs the online roles, writes snapshot and timestamp, and switches clients to the
/// result only if a client would accept it.
///
/// Exit status: 0 success; 1 the operation failed or found problems (the message says
/// what, on which file or role, and what to do); 2 the command line is wrong.
///
/// Private keys are PKCS#8 PEM files encrypted with a passphrase (readable by `openssl
/// pkey`). The passphrase is asked on the terminal without echo, or read from
/// `--passphrase-env NAME` / `--passphrase-file PATH` in scripts. It is never printed or
/// logged.
///
/// Keys on hardware tokens (HSMs, YubiKeys, SoftHSM2): every key argument also takes an
/// RFC 7512 URI, `pkcs11:token=LABEL;object=KEY?module-path=MODULE.so`, with the PIN
/// from `pin-source=file:PATH` or the terminal (never logged). Without `module-path`
/// or `module-name`, the module is the environment variable TUF_SIGNER_PKCS11_MODULE.
#[derive(Debug, Parser)]
#[command(name = "tuf-signer", version, about, long_about)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
struct GlobalArgs {
    /// The repository directory.
    #[arg(
        short = 'C',
        long,
        global = true,
        env = "TUF_SIGNER_REPO",
        default_value = "."
    )]
    repo: PathBuf,
    /// Print the result as one JSON object on stdout, for scripts.
    #[arg(long, global = true)]
    json: bool,
    /// Read private key passphrases from this environment variable.
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        conflicts_with = "passphrase_file"
    )]
    passphrase_env: Option<String>,
    /// Read private key passphrases from the first line of this file.
    #[arg(long, global = true, value_name = "PATH")]
    passphrase_file: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug); or set TUF_SIGNER_LOG.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate, inspect and authorise keys.
    #[command(subcommand)]
    Key(commands::key::KeyCommand),
    /// Create a repository: keys and thresholds of every role, expiry periods.
    Init(commands::edit::InitArgs),
    /// Delegate or undelegate a crate namespace.
    #[command(subcommand)]
    Namespace(commands::edit::NamespaceCommand),
    /// Set the threshold of a role.
    Threshold(commands::edit::ThresholdArgs),
    /// Replace the root keys: the new root must be signed by the old and the new keys.
    RotateRoot(commands::edit::RotateRootArgs),
    /// Add or remove release tarballs.
    #[command(subcommand)]
    Release(commands::release::ReleaseCommand),
    /// Show what changed in staged roles since the published version.
    Diff(commands::sign::DiffArgs),
    /// Add your signature to staged roles (after showing what changed).
    Sign(commands::sign::SignArgs),
    /// Export or import a detached signature (for signing on another machine).
    #[command(subcommand)]
    Signature(commands::sign::SignatureCommand),
    /// Publish staged roles: sign the online roles, write snapshot and timestamp.
    Publish(commands::publish::PublishArgs),
    /// Re-sign the online roles that expire soon (for a cron job).
    Refresh(commands::publish::RefreshArgs),
    /// Drop every staged change.
    Discard,
    /// Versions, expiry and missing signatures of every role.
    Status(commands::inspect::StatusArgs),
    /// Verify the published repository as a client would, listing every problem.
    Verify(commands::inspect::VerifyArgs),
    /// Scan what a release adds against the previous one (build scripts, process and
    /// network use, secrets, unsafe, encoded literals, new dependencies, new
    /// maintainers), for a reviewer to read before attesting it.
    Review(commands::review::ReviewArgs),
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TUF_SIGNER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
        // cryptoki logs an error for every mechanism of a token's list it has no name
        // for (dozens on SoftHSM2): noise, not failures.
        .add_directive("cryptoki::mechanism=off".parse().unwrap_or_else(|_| {
            tracing_subscriber::filter::Directive::from(tracing::level_filters::LevelFilter::WARN)
        }));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(log_colour())
        .init();
}

/// Colour in log lines only on a terminal, and never with `NO_COLOR` set
/// (<https://no-color.org>).
fn log_colour() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    let result = commands::run(&cli.global, cli.command);
    match result {
        Ok(code) => code,
        Err(error) => {
            output::print_error(&cli.global, &error);
            ExitCode::from(1)
        }
    }
}
