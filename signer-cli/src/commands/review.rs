//! `review NAME@VERSION`: the release scanner's report on what a new version adds
//! against the previous one (`tuf_core::scan`), for a reviewer to read before attesting.
//!
//! Both tarballs come from the upstream registry and are checked against the digests
//! this repository signs for them, or, for a release it does not sign, against the
//! upstream index line's `cksum`; then read under the `.crate` reader's rules.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Error};
use clap::Args;
use serde::Serialize;
use tuf_core::client::HttpFetcher;
use tuf_core::crate_archive::{read_crate_files, ArchiveLimits, CrateFiles};
use tuf_core::index_entry::{download_url, sparse_index_path, IndexEntry};
use tuf_core::layout::crate_target_path;
use tuf_core::repository::Repository;
use tuf_core::scan::{self, Finding, FindingKind, ScanReport, DEFAULT_HOLD_ABOVE};

use super::upstream::{
    fetch_checked_tarball, fetch_with_retries, newest_earlier, registry_dl, MAX_INDEX_FILE_BYTES,
};
use crate::output::emit;
use crate::GlobalArgs;

/// `review`.
#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// The release to review.
    #[arg(value_name = "NAME@VERSION")]
    release: String,
    /// The version to compare with [default: the newest earlier version this
    /// repository has an attestation for, else the newest earlier version upstream].
    #[arg(long, value_name = "VERSION")]
    against: Option<String>,
    /// Print the unified diff of this file (a path below `NAME-VERSION/`, e.g.
    /// `build.rs`).
    #[arg(long, value_name = "FILE")]
    diff: Option<String>,
    /// The upstream sparse index the tarballs come from.
    #[arg(long, value_name = "URL", default_value = "https://index.crates.io/")]
    index: String,
    /// The score above which the report says the release would be held.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_HOLD_ABOVE)]
    hold_above: u32,
    /// Record the score and flags in the release's signed target (it must be signed in
    /// this repository); its role is staged for its keys. A proxy whose policy has
    /// `[scan] hold-above` then holds it until a trusted reviewer attests it.
    #[arg(long)]
    record: bool,
}

#[derive(Serialize)]
struct Output<'a> {
    #[serde(flatten)]
    report: &'a ScanReport,
    /// Why this previous version was chosen.
    against_reason: &'a str,
    hold_above: u32,
    held: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<String>,
    /// With `--record`: the role staged (`None` when it already had this result).
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded_in: Option<String>,
}

/// One release fetched: its entry and files.
struct Fetched {
    files: CrateFiles<Vec<u8>>,
    /// How its tarball was checked.
    checked_by: &'static str,
}

/// `review`.
pub fn review(global: &GlobalArgs, args: &ReviewArgs) -> Result<ExitCode, Error> {
    let (name, version) = args
        .release
        .split_once('@')
        .ok_or_else(|| Error::msg(format!("{}: give NAME@VERSION", args.release)))?;
    // The repository is optional: without one, tarballs are checked by cksum alone.
    let mut repo = if global.repo.join("repository.json").exists() {
        Some(super::open(global)?)
    } else {
        None
    };
    let index = format!("{}/", args.index.trim_end_matches('/'));
    let fetcher = HttpFetcher::new(Duration::from_secs(10), Duration::from_secs(120))
        .context("cannot build the HTTP client")?;
    let fetch = |url: &str, max: u64| fetch_with_retries(&fetcher, url, max, 3);
    let dl = registry_dl(&fetch, &index)?;
    let url = format!("{index}{}", sparse_index_path(name));
    let bytes = fetch(&url, MAX_INDEX_FILE_BYTES)
        .with_context(|| format!("cannot fetch the index file of {name} ({url})"))?;
    let lines: Vec<IndexEntry> = bytes
        .split(|&b| b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .filter_map(|line| IndexEntry::parse_line(line).ok())
        .filter(|entry| entry.name.eq_ignore_ascii_case(name))
        .collect();
    let entry_of = |version: &str| {
        lines
            .iter()
            .find(|e| e.vers.eq_ignore_ascii_case(version))
            .cloned()
            .ok_or_else(|| Error::msg(format!("{url} has no line for {name} {version}")))
    };
    let new_entry = entry_of(version)?;
    let (against, against_reason) = match &args.against {
        Some(against) => (Some(against.clone()), "given with --against"),
        None => previous_version(repo.as_mut(), &new_entry, &lines)?,
    };
    let limits = ArchiveLimits::default();
    let fetch_release =
        |repo: Option<&mut Repository>, entry: &IndexEntry| -> Result<Fetched, Error> {
            let signed = match repo {
                Some(repo) => signed_target(repo, &entry.name, &entry.vers)?,
                None => None,
            };
            let (tarball, checked_by) = match &signed {
                Some(info) => {
                    // Signed here: the signed length bounds the fetch, and every signed
                    // digest must match.
                    let url = download_url(&dl, &entry.name, &entry.vers, &entry.cksum);
                    let tarball = fetch(&url, info.length)
                        .with_context(|| format!("fetching {} {}", entry.name, entry.vers))?;
                    tuf_core::hash::verify_length_and_hashes(
                        &tarball,
                        Some(info.length),
                        Some(&info.hashes),
                    )
                    .with_context(|| {
                        format!(
                            "{url}: not the tarball this repository signs for {} {}",
                            entry.name, entry.vers
                        )
                    })?;
                    (tarball, "its signed length and hashes")
                }
                None => (
                    fetch_checked_tarball(&fetch, &dl, entry, limits.max_tarball_bytes)
                        .map_err(Error::msg)?,
                    "the index line's cksum (this repository does not sign it)",
                ),
            };
            let files = read_crate_files(
                &format!("{}-{}.crate", entry.name, entry.vers),
                &tarball,
                &limits,
            )
            .with_context(|| format!("{url}: not a release of {} {}", entry.name, entry.vers))?;
            Ok(Fetched { files, checked_by })
        };
    let new = fetch_release(repo.as_mut(), &new_entry)?;
    let old = match &against {
        Some(against) => Some(fetch_release(repo.as_mut(), &entry_of(against)?)?),
        None => None,
    };
    let mut report = scan::scan(old.as_ref().map(|o| &o.files), &new.files);
    if let Some(repo) = repo.as_mut() {
        annotate(repo, &mut report, name, version)?;
    }
    let diff = args
        .diff
        .as_ref()
        .map(|path| {
            scan::file_diff(old.as_ref().map(|o| &o.files), &new.files, path)
                .ok_or_else(|| Error::msg(format!("--diff {path}: neither release has that file")))
        })
        .transpose()?;
    let held = report.score > args.hold_above;
    let mut recorded_in = None;
    if args.record {
        let Some(repo) = repo.as_mut() else {
            return Err(Error::msg(format!(
                "--record: {} is not a repository (no repository.json)",
                global.repo.display()
            )));
        };
        let recorded = scan::recorded(&report);
        let (role, changed) = repo
            .record_scan(name, version, &recorded, chrono::Utc::now())
            .with_context(|| format!("recording the scan of {name} {version}"))?;
        repo.save()?;
        super::warn_dropped(repo);
        if changed {
            recorded_in = Some(role);
        }
    }
    let output = Output {
        report: &report,
        against_reason,
        hold_above: args.hold_above,
        held,
        diff,
        recorded_in,
    };
    emit(global, &output, || {
        describe(&output, new.checked_by, old.as_ref().map(|o| o.checked_by))
    });
    Ok(ExitCode::SUCCESS)
}

/// The previous version to compare with, and why it was chosen.
fn previous_version(
    repo: Option<&mut Repository>,
    new: &IndexEntry,
    lines: &[IndexEntry],
) -> Result<(Option<String>, &'static str), Error> {
    if semver::Version::parse(&new.vers).is_err() {
        return Ok((None, "the version is not semver: compared with nothing"));
    }
    if let Some(repo) = repo {
        let (index, _) = repo.crate_index(&new.name)?;
        let attested = newest_earlier(
            &new.vers,
            index
                .lines
                .iter()
                .filter(|l| !l.attestations.is_empty())
                .map(|l| &l.entry),
        );
        if let Some(entry) = attested {
            return Ok((
                Some(entry.vers.clone()),
                "the newest earlier version this repository has an attestation for",
            ));
        }
    }
    let upstream = newest_earlier(&new.vers, lines.iter().filter(|e| !e.yanked));
    Ok(match upstream {
        Some(entry) => (
            Some(entry.vers.clone()),
            "the newest earlier version upstream (none is attested here)",
        ),
        None => (
            None,
            "no earlier version: a first release, compared with nothing",
        ),
    })
}

/// What this repository signs for `name` `version`, if it signs it.
fn signed_target(
    repo: &mut Repository,
    name: &str,
    version: &str,
) -> Result<Option<tuf_core::metadata::TargetFile>, Error> {
    let path = crate_target_path(name, version)?;
    let role = repo.role_for_path(&path)?;
    Ok(repo
        .current_targets(&role)?
        .and_then(|doc| doc.signed().targets.get(&path).cloned()))
}

/// Findings only the repository knows: a key attesting this release that never attested
/// the crate before, and whether each new dependency is signed here.
fn annotate(
    repo: &mut Repository,
    report: &mut ScanReport,
    name: &str,
    version: &str,
) -> Result<(), Error> {
    let (index, _) = repo.crate_index(name)?;
    let mut earlier_keys = std::collections::BTreeSet::new();
    let mut new_keys = Vec::new();
    for line in &index.lines {
        for attestation in &line.attestations {
            let key = (
                attestation.key.keyid().to_string(),
                attestation.statement.label.clone(),
            );
            if line.entry.vers.eq_ignore_ascii_case(version) {
                new_keys.push(key);
            } else {
                earlier_keys.insert(key.0);
            }
        }
    }
    if !earlier_keys.is_empty() {
        for (keyid, label) in new_keys {
            if !earlier_keys.contains(&keyid) {
                report.add(Finding {
                    kind: FindingKind::NewMaintainer,
                    file: None,
                    line: None,
                    weight: scan::weight(FindingKind::NewMaintainer),
                    message: format!(
                        "attested by {label} ({}…), a key that never attested {name} before",
                        keyid.get(..8).unwrap_or(&keyid)
                    ),
                    dependency: None,
                });
            }
        }
    }
    for finding in &mut report.findings {
        let Some(dependency) = finding.dependency.clone() else {
            continue;
        };
        let signed = repo
            .crate_index(&dependency)
            .map(|(index, _)| index.lines.len())
            .unwrap_or(0);
        finding.message.push_str(&if signed == 0 {
            "; not signed in this repository".to_owned()
        } else {
            format!("; {signed} versions signed in this repository")
        });
    }
    Ok(())
}

fn describe(output: &Output<'_>, new_checked: &str, old_checked: Option<&str>) {
    let report = output.report;
    match &report.against {
        Some(against) => crate::say!(
            "{} {} against {against} ({})",
            report.name,
            report.version,
            output.against_reason
        ),
        None => crate::say!(
            "{} {} ({})",
            report.name,
            report.version,
            output.against_reason
        ),
    }
    crate::say!(
        "  tarballs checked against {new_checked}{}",
        old_checked
            .map(|c| if c == new_checked {
                String::new()
            } else {
                format!(" (the previous one: {c})")
            })
            .unwrap_or_default()
    );
    crate::say!("files:");
    if report.files.is_empty() {
        crate::say!("  (no file differs)");
    }
    for file in &report.files {
        if file.binary {
            crate::say!("  {:<8} {} (binary)", file.change, file.path);
        } else {
            crate::say!(
                "  {:<8} {} (+{} -{})",
                file.change,
                file.path,
                file.lines_added,
                file.lines_removed
            );
        }
    }
    crate::say!("findings:");
    if report.findings.is_empty() {
        crate::say!("  (none)");
    }
    for finding in &report.findings {
        let at = match (&finding.file, finding.line) {
            (Some(file), Some(line)) => format!("{file}:{line}: "),
            (Some(file), None) => format!("{file}: "),
            _ => String::new(),
        };
        crate::say!("  [{:>2}] {at}{}", finding.weight, finding.message);
    }
    crate::say!(
        "score {} ({} above {}: {})",
        report.score,
        if output.held { "is" } else { "is not" },
        output.hold_above,
        if output.held {
            "a policy with this threshold holds it until a trusted reviewer attests it"
        } else {
            "automatic updates may take it"
        }
    );
    crate::say!("not seen by the scanner:");
    for item in &report.not_seen {
        crate::say!("  - {item}");
    }
    if let Some(role) = &output.recorded_in {
        crate::say!("staged: the score is recorded in {role} (its keys sign it next)");
    }
    if let Some(diff) = &output.diff {
        crate::say!("{diff}");
    }
}
