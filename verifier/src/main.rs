//! `tuf-verifier`: a cargo source proxy that serves a registry's sparse index and
//! tarballs, refusing every tarball that no authorised key signed.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

/// A cargo source proxy that refuses crates no authorised TUF key signed.
///
/// The proxy (`serve`), its built-in demo and the offline verbs (`Cargo.lock` and
/// `cargo vendor` checks) are being built on tuf-core's client workflow; see README.md
/// for the plan. This release checks its command line and reports its version.
#[derive(Debug, Parser)]
#[command(name = "tuf-verifier", version, about, long_about)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    eprintln!("tuf-verifier: no command given; see `tuf-verifier --help`");
    ExitCode::from(2)
}
