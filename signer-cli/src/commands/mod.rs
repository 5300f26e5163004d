//! The subcommands, one module per group.

pub mod edit;
pub mod import;
pub mod inspect;
pub mod key;
pub mod publish;
pub mod release;
pub mod review;
pub mod sign;
pub mod upstream;

use std::process::ExitCode;

use anyhow::{Context, Error};
use tuf_core::repository::Repository;

use crate::{Command, GlobalArgs};

/// Runs one command.
pub fn run(global: &GlobalArgs, command: Command) -> Result<ExitCode, Error> {
    match command {
        Command::Key(command) => key::run(global, command),
        Command::Init(args) => edit::init(global, &args),
        Command::Namespace(command) => edit::namespace(global, command),
        Command::Threshold(args) => edit::threshold(global, &args),
        Command::RotateRoot(args) => edit::rotate_root(global, &args),
        Command::Release(command) => release::release(global, command),
        Command::Diff(args) => sign::diff(global, &args),
        Command::Sign(args) => sign::sign(global, &args),
        Command::Signature(command) => sign::signature(global, command),
        Command::Publish(args) => publish::publish(global, &args),
        Command::Refresh(args) => publish::refresh(global, &args),
        Command::Discard => edit::discard(global),
        Command::Status(args) => inspect::status(global, &args),
        Command::Verify(args) => inspect::verify(global, &args),
        Command::Review(args) => review::review(global, &args),
    }
}

/// Opens the repository the global options name.
pub fn open(global: &GlobalArgs) -> Result<Repository, Error> {
    Repository::open(&global.repo)
        .with_context(|| format!("opening the repository {}", global.repo.display()))
}

/// Warns about signatures an edit made void.
pub fn warn_dropped(repo: &Repository) {
    for role in repo.dropped_signatures() {
        eprintln!(
            "tuf-signer: note: {role} changed after it was signed; its signatures were dropped \
             and its key holders must sign again"
        );
    }
}
