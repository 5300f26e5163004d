//! `status` and `verify`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Error};
use clap::Args;
use tuf_core::repository::{
    audit_repository, parse_duration, AuditOptions, DirectorySource, RoleStatus,
};

use crate::output::{emit, emit_outcome, Bar};
use crate::secrets::read_capped;
use crate::GlobalArgs;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Flag published roles expiring within this period.
    #[arg(long, default_value = "30d", value_parser = |s: &str| parse_duration(s).map_err(|e| e.to_string()))]
    within: u64,
    /// List every role (default: top-level, staged and expiring roles).
    #[arg(long)]
    all: bool,
}

fn short(keyid: &str) -> &str {
    keyid.get(..12).unwrap_or(keyid)
}

fn describe(role: &RoleStatus) -> String {
    let mut text = format!("{:<14}", role.role);
    match (role.published_version, &role.published_expires) {
        (Some(v), Some(e)) => text.push_str(&format!(" published v{v} expires {e}")),
        _ => text.push_str(" not published"),
    }
    if role.expires_soon {
        text.push_str(" (EXPIRES SOON)");
    }
    if let Some(v) = role.staged_version {
        text.push_str(&format!("; staged v{v}"));
        if role.online {
            text.push_str(" (signed by publish)");
        } else if let Some(report) = &role.signatures {
            text.push_str(&format!(
                ", signatures: {} valid, {} needed",
                report.valid.len(),
                report.threshold
            ));
            if !report.threshold_met() {
                let missing: Vec<&str> = report.missing.iter().map(|k| short(k)).collect();
                text.push_str(&format!(", waiting for {}", missing.join(" ")));
            }
        }
        if let Some(previous) = &role.previous_root_signatures {
            text.push_str(&format!(
                "; previous root keys' signatures: {} valid, {} needed",
                previous.valid.len(),
                previous.threshold
            ));
        }
        text.push_str(if role.ready {
            " [ready]"
        } else {
            " [NOT READY]"
        });
    }
    text
}

/// `status`.
pub fn status(global: &GlobalArgs, args: &StatusArgs) -> Result<ExitCode, Error> {
    let mut repo = super::open(global)?;
    let status = repo
        .status(chrono::Utc::now(), args.within)
        .context("reading the repository's roles")?;
    emit(global, &status, || {
        let mut staged_bins = 0;
        let mut shown = 0;
        for role in &status.roles {
            let top = ["root", "targets", "snapshot", "timestamp"].contains(&role.role.as_str());
            let bin = role.role.starts_with("unclaimed-");
            if bin && !args.all && !role.expires_soon && role.staged_version.is_some() {
                staged_bins += 1;
                continue;
            }
            if args.all || top || role.staged_version.is_some() || role.expires_soon {
                crate::say!("{}", describe(role));
                shown += 1;
            }
        }
        if staged_bins > 0 {
            crate::say!("unclaimed-*    {staged_bins} fallback bins staged (signed by publish)");
        }
        let hidden = status.roles.len() - shown - staged_bins;
        if !args.all && hidden > 0 {
            crate::say!("({hidden} more roles up to date; --all lists them)");
        }
    });
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The metadata directory (default: REPO/published/metadata).
    #[arg(long)]
    metadata: Option<PathBuf>,
    /// The targets directory (default: REPO/published/targets).
    #[arg(long)]
    targets: Option<PathBuf>,
    /// Do not check the target files (release tarballs, signed index files).
    #[arg(long)]
    no_targets: bool,
    /// The root a client trusts (default: 1.root.json in the metadata directory).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Also fetch the release tarballs signed as served only upstream (`release
    /// import`) from this upstream sparse index (its config.json's `dl`), and check each
    /// against its signed length and hashes.
    #[arg(long, value_name = "INDEX_URL", conflicts_with = "no_targets")]
    fetch_targets: Option<String>,
    /// Downloads at once with `--fetch-targets`.
    #[arg(long, value_name = "N", default_value_t = 8)]
    jobs: usize,
}

/// `verify --json`: the audit, and what was fetched from upstream.
#[derive(serde::Serialize)]
struct VerifyOutput<'a> {
    #[serde(flatten)]
    report: &'a tuf_core::repository::AuditReport,
    /// Upstream tarballs fetched and checked (`--fetch-targets`).
    upstream_files_checked: usize,
}

/// `verify`.
pub fn verify(global: &GlobalArgs, args: &VerifyArgs) -> Result<ExitCode, Error> {
    let published = global.repo.join("published");
    let metadata = args
        .metadata
        .clone()
        .unwrap_or_else(|| published.join("metadata"));
    let root_path = args
        .root
        .clone()
        .unwrap_or_else(|| metadata.join("1.root.json"));
    let root = read_capped(&root_path, 512_000)
        .with_context(|| "reading the trusted root (give one with --root)".to_string())?;
    let mut options = AuditOptions::new(chrono::Utc::now());
    options.list_upstream_releases = args.fetch_targets.is_some();
    if !args.no_targets {
        options.targets_dir = Some(
            args.targets
                .clone()
                .unwrap_or_else(|| published.join("targets")),
        );
    }
    let bar = Bar::new("verifying");
    let mut report = audit_repository(&DirectorySource::new(&metadata), &root, &options, &bar);
    bar.finish();
    let mut upstream_files_checked = 0;
    if let Some(index) = &args.fetch_targets {
        let problems =
            super::import::check_upstream_tarballs(index, &report.upstream_releases, args.jobs)?;
        upstream_files_checked = report.upstream_releases.len();
        report.problems.extend(problems);
    }
    let ok = report.is_ok();
    let output = VerifyOutput {
        report: &report,
        upstream_files_checked,
    };
    emit_outcome(global, &output, ok, || {
        for problem in &report.problems {
            crate::say!("{problem}");
        }
        let upstream = match (report.releases_upstream, &args.fetch_targets) {
            (0, _) => String::new(),
            (n, Some(_)) => format!("; {n} upstream tarballs fetched and checked"),
            (n, None) => format!(
                "; {n} release tarballs stay upstream (not checked: --fetch-targets INDEX_URL \
                 checks them)"
            ),
        };
        crate::say!(
            "{}: root v{}, timestamp v{}, snapshot v{}; {} roles, {} targets, {} target files checked{upstream}",
            if ok { "ok" } else { "FAILED" },
            report.root_version.unwrap_or(0),
            report.timestamp_version.unwrap_or(0),
            report.snapshot_version.unwrap_or(0),
            report.roles_verified,
            report.targets_checked,
            report.target_files_checked
        );
    });
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
