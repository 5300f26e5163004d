//! `tuf-conformance-client`: tuf-core's client workflow behind the command line that the
//! tuf-conformance suite drives (its `CLIENT-CLI.md`).
//!
//! ```text
//! tuf-conformance-client --metadata-dir M init ROOT
//! tuf-conformance-client --metadata-url U --metadata-dir M refresh
//! tuf-conformance-client --metadata-url U --metadata-dir M --target-name T [--target-name T2]
//!     --target-dir D --target-base-url TU download
//! ```
//!
//! Exit status: 0 when the command succeeded fully, 1 otherwise (including usage errors
//! and internal failures: never 2 or a panic's 101). Trusted metadata is kept in M as
//! `root.json`, `timestamp.json`, `snapshot.json`, `targets.json` and `<quoted role>.json`,
//! with the exact bytes that were verified; targets are stored in D under their quoted
//! target path.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tuf_core::client::{read_bounded, HttpFetcher, Limits, Updater, UpdaterConfig};
use tuf_core::fs::write_atomic;

/// A TUF client for the tuf-conformance test suite.
#[derive(Debug, Parser)]
#[command(name = "tuf-conformance-client", version)]
struct Cli {
    /// Directory of trusted metadata.
    #[arg(long)]
    metadata_dir: PathBuf,
    /// Base URL of the repository's metadata.
    #[arg(long)]
    metadata_url: Option<String>,
    /// Target path to download (repeatable; processed in order).
    #[arg(long = "target-name")]
    target_names: Vec<String>,
    /// Directory to store downloaded targets in.
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Base URL of the repository's targets.
    #[arg(long)]
    target_base_url: Option<String>,
    /// More logging (repeatable).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Trust ROOT as the initial root (copied into the metadata directory, no requests).
    Init {
        /// The initial trusted root.json.
        trusted_root: PathBuf,
    },
    /// Update root, timestamp, snapshot and targets from the repository.
    Refresh,
    /// Refresh, then download each --target-name into --target-dir.
    Download,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(cli.verbose);
    match std::panic::catch_unwind(|| run(&cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(message)) => {
            eprintln!("tuf-conformance-client: {message}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("tuf-conformance-client: internal error");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

fn updater(cli: &Cli) -> Result<Updater<HttpFetcher>, String> {
    let url = cli
        .metadata_url
        .clone()
        .ok_or("--metadata-url is required")?;
    let fetcher = HttpFetcher::new(Duration::from_secs(10), Duration::from_secs(60))
        .map_err(|e| e.to_string())?;
    let config = UpdaterConfig::new(&cli.metadata_dir, url);
    Updater::new(config, fetcher, chrono::Utc::now()).map_err(|e| e.to_string())
}

fn run(cli: &Cli) -> Result<(), String> {
    match &cli.command {
        Command::Init { trusted_root } => {
            // Bounded like any root the updater reads (Limits::max_root_length).
            let file = std::fs::File::open(trusted_root)
                .map_err(|e| format!("{}: {e}", trusted_root.display()))?;
            let max = Limits::default().max_root_length;
            let bytes = read_bounded(file, &trusted_root.display().to_string(), max)
                .map_err(|e| e.to_string())?;
            std::fs::create_dir_all(&cli.metadata_dir)
                .map_err(|e| format!("{}: {e}", cli.metadata_dir.display()))?;
            let path = cli.metadata_dir.join("root.json");
            write_atomic(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))
        }
        Command::Refresh => updater(cli)?.refresh().map_err(|e| e.to_string()),
        Command::Download => {
            let dir = cli.target_dir.as_ref().ok_or("--target-dir is required")?;
            if cli.target_names.is_empty() {
                return Err("--target-name is required".into());
            }
            let mut updater = updater(cli)?;
            updater.refresh().map_err(|e| e.to_string())?;
            for name in &cli.target_names {
                let info = updater
                    .get_target_info(name)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("target {name}: not found in the repository"))?;
                if updater.find_cached_target(&info, name, dir).is_some() {
                    tracing::info!(target = %name, "cached copy matches; not downloading");
                    continue;
                }
                updater
                    .download_target(&info, name, dir, cli.target_base_url.as_deref())
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
    }
}
