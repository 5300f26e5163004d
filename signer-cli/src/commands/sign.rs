//! `diff`, `sign`, `signature export`, `signature import`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Error};
use clap::{Args, Subcommand};
use serde::Serialize;
use tuf_core::repository::{Change, DetachedSignature, Repository, SignatureOutcome};

use crate::output::emit;
use crate::secrets::{load_signer, read_capped, KeySource, PassphraseSource};
use crate::GlobalArgs;

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Only these roles (default: every staged role).
    #[arg(long = "role")]
    roles: Vec<String>,
}

#[derive(Serialize)]
struct RoleDiff {
    role: String,
    changes: Vec<Change>,
}

fn diffs(repo: &mut Repository, roles: &[String]) -> Result<Vec<RoleDiff>, Error> {
    roles
        .iter()
        .map(|role| {
            Ok(RoleDiff {
                role: role.clone(),
                changes: repo
                    .diff(role)
                    .with_context(|| format!("comparing {role}"))?,
            })
        })
        .collect()
}

fn print_diffs(diffs: &[RoleDiff]) {
    for diff in diffs {
        crate::say!(
            "{} (staged changes since the published version):",
            diff.role
        );
        for change in &diff.changes {
            crate::say!("  {change}");
        }
    }
}

/// `diff`.
pub fn diff(global: &GlobalArgs, args: &DiffArgs) -> Result<ExitCode, Error> {
    let mut repo = super::open(global)?;
    let roles = if args.roles.is_empty() {
        repo.staged_roles()
    } else {
        args.roles.clone()
    };
    let diffs = diffs(&mut repo, &roles)?;
    emit(global, &serde_json::json!({ "changes": diffs }), || {
        if diffs.is_empty() {
            crate::say!("nothing is staged");
        }
        print_diffs(&diffs);
    });
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// Your private key: an encrypted PKCS#8 PEM file, or a `pkcs11:` URI of a key on a
    /// token.
    #[arg(long, value_name = "KEY")]
    key: KeySource,
    /// Only these roles (default: every staged role the key may sign).
    #[arg(long = "role")]
    roles: Vec<String>,
    /// Sign without asking for confirmation (required when not at a terminal).
    #[arg(long, short)]
    yes: bool,
}

/// Asks "proceed?" at a terminal; refuses without `--yes` elsewhere.
fn confirm(yes: bool, question: &str) -> Result<(), Error> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::msg(
            "refusing to sign without confirmation: review the changes above and pass --yes",
        ));
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("reading the answer")?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Error::msg("not signed"))
    }
}

fn describe(outcome: &SignatureOutcome) -> String {
    let report = &outcome.report;
    let mut text = format!(
        "{}: signed by {}; signatures: {} valid, {} needed",
        outcome.role,
        outcome.keyid,
        report.valid.len(),
        report.threshold
    );
    if !report.threshold_met() {
        text.push_str(&format!(" (waiting for: {})", report.missing.join(", ")));
    }
    if let Some(previous) = &outcome.previous_root {
        text.push_str(&format!(
            "; previous root keys' signatures: {} valid, {} needed",
            previous.valid.len(),
            previous.threshold
        ));
        if !previous.threshold_met() {
            text.push_str(&format!(" (waiting for: {})", previous.missing.join(", ")));
        }
    }
    text
}

/// `sign`.
pub fn sign(global: &GlobalArgs, args: &SignArgs) -> Result<ExitCode, Error> {
    let mut repo = super::open(global)?;
    let key = load_signer(&args.key, &PassphraseSource::from_args(global))?;
    let roles: Vec<String> = if args.roles.is_empty() {
        repo.staged_roles()
            .into_iter()
            .filter(|role| repo.can_sign(role, key.keyid()))
            .collect()
    } else {
        args.roles.clone()
    };
    if roles.is_empty() {
        return Err(Error::msg(format!(
            "no staged role may be signed by key {} ({}); see `tuf-signer status`",
            key.keyid(),
            args.key
        )));
    }
    let diffs = diffs(&mut repo, &roles)?;
    if !global.json {
        print_diffs(&diffs);
    }
    confirm(
        args.yes,
        &format!("Sign {} with key {}?", roles.join(", "), key.keyid()),
    )?;
    let mut outcomes = Vec::new();
    for role in &roles {
        let outcome = repo
            .sign(role, key.as_ref())
            .with_context(|| format!("signing {role} with {}", args.key))?;
        outcomes.push(outcome);
    }
    emit(global, &serde_json::json!({ "signed": outcomes }), || {
        for outcome in &outcomes {
            crate::say!("{}", describe(outcome));
        }
    });
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Subcommand)]
pub enum SignatureCommand {
    /// Sign a staged role here and write the signature to a file, to import on the
    /// machine that collects signatures (the staged role must be identical there).
    Export {
        /// The role.
        #[arg(long)]
        role: String,
        /// Your private key (a PEM file or a `pkcs11:` URI).
        #[arg(long, value_name = "KEY")]
        key: KeySource,
        /// Where to write the signature.
        #[arg(long, short)]
        out: PathBuf,
        /// Sign without asking for confirmation (required when not at a terminal).
        #[arg(long, short)]
        yes: bool,
    },
    /// Add signatures exported elsewhere; each is checked against the staged bytes.
    Import {
        /// Signature files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// `signature`.
pub fn signature(global: &GlobalArgs, command: SignatureCommand) -> Result<ExitCode, Error> {
    let mut repo = super::open(global)?;
    match command {
        SignatureCommand::Export {
            role,
            key,
            out,
            yes,
        } => {
            let signer = load_signer(&key, &PassphraseSource::from_args(global))?;
            let diffs = diffs(&mut repo, std::slice::from_ref(&role))?;
            if !global.json {
                print_diffs(&diffs);
            }
            confirm(yes, &format!("Sign {role} with key {}?", signer.keyid()))?;
            let detached = repo
                .detached_signature(&role, signer.as_ref())
                .with_context(|| format!("signing {role}"))?;
            let mut bytes = serde_json::to_vec_pretty(&detached).context("encoding")?;
            bytes.push(b'\n');
            tuf_core::fs::write_atomic(&out, &bytes)
                .with_context(|| format!("writing {}", out.display()))?;
            emit(global, &detached, || {
                crate::say!(
                    "wrote {}: signature of {} v{} by {}",
                    out.display(),
                    detached.role,
                    detached.version,
                    detached.signature.keyid
                );
            });
        }
        SignatureCommand::Import { files } => {
            let mut outcomes = Vec::new();
            for file in &files {
                let bytes = read_capped(file, 64 * 1024)?;
                let value = tuf_core::json::parse_strict(&bytes, 64 * 1024)
                    .with_context(|| format!("reading {}", file.display()))?;
                let detached: DetachedSignature = serde_json::from_value(value)
                    .with_context(|| format!("{}: not a detached signature", file.display()))?;
                let outcome = repo
                    .import_signature(&detached)
                    .with_context(|| format!("importing {}", file.display()))?;
                outcomes.push(outcome);
            }
            emit(global, &serde_json::json!({ "imported": outcomes }), || {
                for outcome in &outcomes {
                    crate::say!("{}", describe(outcome));
                }
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
