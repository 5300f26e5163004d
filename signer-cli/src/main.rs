//! `tuf-signer`: create and keep the TUF repository of a crate registry's releases.
//!
//! Maintainers sign releases; registries run key ceremonies (keys, thresholds,
//! per-namespace delegations, root rotation) and publish snapshot and timestamp with
//! online keys. The repository-writing logic lives in `tuf-core`; this binary is the
//! command line over it.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

#[allow(dead_code)]
mod tarball;

/// Sign crate releases and run TUF key ceremonies for a registry.
///
/// The repository commands (key generation, init, delegate, add, sign, publish,
/// rotate-root, status, verify) are being built on tuf-core's editor; see README.md for
/// the plan. This release checks its command line and reports its version.
#[derive(Debug, Parser)]
#[command(name = "tuf-signer", version, about, long_about)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    eprintln!("tuf-signer: no command given; see `tuf-signer --help`");
    ExitCode::from(2)
}
