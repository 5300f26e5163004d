//! `publish` and `refresh`.

use std::process::ExitCode;

use anyhow::{Context, Error};
use clap::Args;
use tuf_core::repository::{parse_duration, PublishReport, PublishedRole, RepositoryError};
use tuf_core::Signer;

use crate::output::{emit, Bar};
use crate::secrets::{load_signers, KeySource, PassphraseSource};
use crate::GlobalArgs;

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Online private keys: snapshot, timestamp and the fallback bins (PEM files or
    /// `pkcs11:` URIs).
    #[arg(long = "online-key", required = true, value_name = "KEY")]
    online_keys: Vec<KeySource>,
}

#[derive(Debug, Args)]
pub struct RefreshArgs {
    /// Online private keys: snapshot, timestamp and the fallback bins (PEM files or
    /// `pkcs11:` URIs).
    #[arg(long = "online-key", required = true, value_name = "KEY")]
    online_keys: Vec<KeySource>,
    /// Re-sign roles expiring within this period (default: half of each role's
    /// validity period).
    #[arg(long, value_parser = |s: &str| parse_duration(s).map_err(|e| e.to_string()))]
    within: Option<u64>,
}

fn print_report(report: &PublishReport) {
    crate::say!(
        "published: timestamp v{}, snapshot v{}, root v{}",
        report.timestamp_version,
        report.snapshot_version,
        report.root_version
    );
    let bins = report
        .roles
        .iter()
        .filter(|r| r.role.starts_with("unclaimed-"))
        .count();
    for PublishedRole { role, version } in &report.roles {
        if !role.starts_with("unclaimed-") {
            crate::say!("  {role} v{version}");
        }
    }
    if bins > 0 {
        crate::say!("  {} (unclaimed-*)", plural(bins, "fallback bin"));
    }
    if report.releases_published > 0 {
        crate::say!("  {}", plural(report.releases_published, "release tarball"));
    }
    if report.index_files_published > 0 {
        crate::say!(
            "  {}",
            plural(report.index_files_published, "signed index file")
        );
    }
}

/// "1 release tarball", "2 release tarballs".
fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn signers(keys: &[Box<dyn Signer>]) -> Vec<&dyn Signer> {
    keys.iter().map(|k| k.as_ref()).collect()
}

/// `publish`.
pub fn publish(global: &GlobalArgs, args: &PublishArgs) -> Result<ExitCode, Error> {
    let mut repo = super::open(global)?;
    let keys = load_signers(&args.online_keys, &PassphraseSource::from_args(global))?;
    let bar = Bar::new("publishing");
    let result = repo.publish(&signers(&keys), chrono::Utc::now(), &bar);
    bar.finish();
    match result {
        Ok(report) => {
            emit(global, &report, || print_report(&report));
            Ok(ExitCode::SUCCESS)
        }
        Err(RepositoryError::NothingToPublish) => {
            emit(global, &serde_json::json!({ "published": false }), || {
                crate::say!("nothing is staged; nothing was published");
            });
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(Error::new(e).context(format!(
            "publishing {} (nothing was changed)",
            global.repo.display()
        ))),
    }
}

/// `refresh`.
pub fn refresh(global: &GlobalArgs, args: &RefreshArgs) -> Result<ExitCode, Error> {
    let mut repo = super::open(global)?;
    let keys = load_signers(&args.online_keys, &PassphraseSource::from_args(global))?;
    let bar = Bar::new("refreshing");
    let result = repo.refresh(&signers(&keys), chrono::Utc::now(), args.within, &bar);
    bar.finish();
    let report = result.with_context(|| format!("refreshing {}", global.repo.display()))?;
    match report {
        Some(report) => emit(global, &report, || print_report(&report)),
        None => emit(global, &serde_json::json!({ "published": false }), || {
            crate::say!("nothing expires soon; nothing was published");
        }),
    }
    Ok(ExitCode::SUCCESS)
}
