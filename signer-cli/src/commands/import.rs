//! `release import`: sign releases that an upstream sparse registry serves (the public
//! registry, or any other) without keeping their tarballs: a vetted mirror
//! (spec/role-layout.md, "Releases that stay upstream").
//!
//! For each release the crate's index file and the tarball are fetched from upstream;
//! the tarball must be a well-formed release of that name and version whose sha256 is the
//! index line's `cksum` (and the lockfile's `checksum`, when it comes from a lockfile).
//! Its length, sha256 and sha512 and the index entry are staged; the tarball is dropped.
//! Downloads run on `--jobs` threads, each bounded in size and time and retried when the
//! network fails. Every `--save-every` releases (and every 5 s) the staged state is saved
//! in one atomic step, so a killed import loses at most the releases since the last save, and running
//! it again skips every release already staged.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Error};
use clap::Args;
use serde::{Deserialize, Serialize};
use tuf_core::client::{FetchError, HttpFetcher};
use tuf_core::crate_archive::{parse_crate_release, read_crate_files, ArchiveLimits};
use tuf_core::index_entry::{download_url, sparse_index_path, IndexEntry};
use tuf_core::repository::{Problem, Repository, Severity, UpstreamRelease, UpstreamReleaseFile};

use super::upstream::{
    fetch_checked_tarball, fetch_with_retries, newest_earlier, parallel, registry_dl, FetchFn,
    MAX_INDEX_FILE_BYTES,
};
use crate::output::{emit_outcome, Bar};
use crate::secrets::read_capped;
use crate::GlobalArgs;

/// Largest lockfile read.
const MAX_LOCKFILE_BYTES: u64 = 16 * 1024 * 1024;
/// The longest a batch of fetched releases waits before it is staged and saved.
const SAVE_INTERVAL: Duration = Duration::from_secs(5);
/// How the public registry's packages are named in a lockfile.
const CRATES_IO_SOURCES: [&str; 2] = [
    "registry+https://github.com/rust-lang/crates.io-index",
    "sparse+https://index.crates.io/",
];

/// `release import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Releases to sign: `NAME@VERSION`, or `NAME` for every version upstream has not
    /// yanked (with `--latest N`, the newest N of them, pre-releases only when there is
    /// no other).
    #[arg(value_name = "NAME[@VERSION]")]
    releases: Vec<String>,
    /// Every registry package of this lockfile (at its locked version, which must have
    /// the locked checksum). Packages from git, paths or other registries are skipped
    /// and counted.
    #[arg(long, value_name = "Cargo.lock")]
    lockfile: Option<PathBuf>,
    /// With `NAME`: only the newest N versions.
    #[arg(long, value_name = "N")]
    latest: Option<usize>,
    /// The upstream sparse index the releases come from.
    #[arg(long, value_name = "URL", default_value = "https://index.crates.io/")]
    index: String,
    /// The upstream download template [default: `dl` of the index's config.json].
    #[arg(long, value_name = "TEMPLATE")]
    dl: Option<String>,
    /// Downloads at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    jobs: usize,
    /// Attempts after the first for a fetch the network or upstream failed (timeouts,
    /// broken connections, 429 and 5xx answers), with a growing pause between them.
    #[arg(long, value_name = "N", default_value_t = 3)]
    retries: u32,
    /// Largest tarball accepted, in bytes (as the proxy's `max_crate_size`).
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    max_crate_size: u64,
    /// Whole-request timeout of each fetch, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    timeout: u64,
    /// Also run the release scanner on each release against the newest earlier version
    /// upstream has not yanked (fetched too), and record its score and flags in the
    /// release's signed target (spec/scanner.md): a proxy whose policy has `[scan]
    /// hold-above` holds a release above it until a trusted reviewer attests it.
    #[arg(long)]
    scan: bool,
    /// Releases staged per save, at most (a save also comes every 5 s). Each save is
    /// atomic; a killed import resumes after the last one. Each save rewrites every bin
    /// it touches, so fewer saves import faster.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    save_every: usize,
}

/// What one release became.
#[derive(Debug, Serialize)]
struct Imported {
    name: String,
    version: String,
    /// The role that lists it.
    role: String,
    path: String,
    length: u64,
    /// Already signed as it is (nothing changed).
    unchanged: bool,
}

/// A release that could not be imported, and why.
#[derive(Debug, Serialize)]
struct Failed {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    error: String,
}

/// Lockfile packages not imported, by reason.
#[derive(Debug, Default, Serialize)]
struct Skipped {
    /// Workspace members and path dependencies (no source).
    path: usize,
    /// git dependencies.
    git: usize,
    /// Packages of other registries than the one imported from.
    other_registry: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    index: String,
    dl: String,
    /// Releases asked for (after resolving names and the lockfile).
    requested: usize,
    /// Of those, already signed with their entry before this run (not fetched again).
    already_signed: usize,
    imported: Vec<Imported>,
    failed: Vec<Failed>,
    skipped: Skipped,
    /// Tarball bytes fetched.
    bytes_fetched: u64,
    seconds: f64,
}

/// What is asked for one crate.
#[derive(Debug, Clone)]
enum Wanted {
    /// One version (with the lockfile's checksum, when from a lockfile).
    Version {
        version: String,
        checksum: Option<String>,
    },
    /// Every version not yanked, or the newest N.
    All { latest: Option<usize> },
}

/// A release to fetch: its upstream index entry.
#[derive(Debug, Clone)]
struct Job {
    entry: IndexEntry,
    /// With `--scan`: the version to compare with (the newest earlier one upstream has
    /// not yanked).
    previous: Option<IndexEntry>,
}

#[derive(Debug, Deserialize)]
struct Lockfile {
    #[serde(default)]
    package: Vec<LockedPackage>,
}

#[derive(Debug, Deserialize)]
struct LockedPackage {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
}

/// Fetches each of `releases` (upstream tarballs a verify found signed) from the
/// upstream registry whose sparse index is `index`, and checks it against its signed
/// length and hashes; returns a problem for each that fails.
pub fn check_upstream_tarballs(
    index: &str,
    releases: &[UpstreamReleaseFile],
    jobs: usize,
) -> Result<Vec<Problem>, Error> {
    let index = format!("{}/", index.trim_end_matches('/'));
    let fetcher = HttpFetcher::new(Duration::from_secs(10), Duration::from_secs(120))
        .context("cannot build the HTTP client")?;
    let fetch = |url: &str, max: u64| fetch_with_retries(&fetcher, url, max, 3);
    let dl = registry_dl(&fetch, &index)?;
    let bar = Bar::new("upstream tarballs");
    tuf_core::repository::Progress::set_length(&bar, releases.len() as u64);
    let mut problems = Vec::new();
    parallel(
        releases.iter().collect(),
        jobs.clamp(1, 64),
        |release| {
            let Some((name, version)) = &release.release else {
                return Some((
                    release,
                    "no signed index line names this release: cannot tell its \
                                        upstream URL"
                        .to_owned(),
                ));
            };
            let sha256 = release.info.hashes.get("sha256").unwrap_or("");
            let url = download_url(&dl, name, version, sha256);
            let checked = fetch(&url, release.info.length)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    tuf_core::hash::verify_length_and_hashes(
                        &bytes,
                        Some(release.info.length),
                        Some(&release.info.hashes),
                    )
                    .map_err(|e| format!("{url}: {e}"))
                });
            checked
                .err()
                .map(|reason| (release, format!("upstream tarball: {reason}")))
        },
        |outcome| {
            bar.inc();
            if let Some((release, message)) = outcome {
                problems.push(Problem {
                    severity: Severity::Error,
                    role: Some(release.role.clone()),
                    target: Some(release.path.clone()),
                    message,
                });
            }
        },
    );
    bar.finish();
    Ok(problems)
}

/// `release import`.
pub fn import(
    global: &GlobalArgs,
    repo: &mut Repository,
    args: ImportArgs,
) -> Result<ExitCode, Error> {
    let started = Instant::now();
    if args.releases.is_empty() && args.lockfile.is_none() {
        return Err(Error::msg(
            "nothing to import: give NAME@VERSION, NAME or --lockfile Cargo.lock",
        ));
    }
    if args.latest == Some(0) {
        return Err(Error::msg("--latest 0 imports nothing: give at least 1"));
    }
    let jobs = args.jobs.clamp(1, 64);
    let scan = args.scan;
    let index = format!("{}/", args.index.trim_end_matches('/'));
    let fetcher = HttpFetcher::new(Duration::from_secs(10), Duration::from_secs(args.timeout))
        .context("cannot build the HTTP client")?;
    let fetch = |url: &str, max: u64| fetch_with_retries(&fetcher, url, max, args.retries);

    // What is asked for, by crate (lowercased name).
    let mut wanted: BTreeMap<String, (String, Vec<Wanted>)> = BTreeMap::new();
    let mut want = |name: &str, what: Wanted| {
        wanted
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| (name.to_owned(), Vec::new()))
            .1
            .push(what);
    };
    for spec in &args.releases {
        match spec.split_once('@') {
            Some((name, version)) => want(
                name,
                Wanted::Version {
                    version: version.to_owned(),
                    checksum: None,
                },
            ),
            None => want(
                spec,
                Wanted::All {
                    latest: args.latest,
                },
            ),
        }
    }
    let mut skipped = Skipped::default();
    if let Some(lockfile) = &args.lockfile {
        for package in read_lockfile(lockfile, &index, &mut skipped)? {
            want(
                &package.name,
                Wanted::Version {
                    version: package.version,
                    checksum: package.checksum,
                },
            );
        }
    }

    let dl = match &args.dl {
        Some(dl) => dl.clone(),
        None => registry_dl(&fetch, &index)?,
    };

    // The crates' index files, fetched in parallel, resolved into releases.
    let mut failed = Vec::new();
    let crates: Vec<(String, Vec<Wanted>)> = wanted.into_values().collect();
    let bar = Bar::new("index files");
    tuf_core::repository::Progress::set_length(&bar, crates.len() as u64);
    let mut resolved: Vec<(IndexEntry, Option<IndexEntry>)> = Vec::new();
    let mut seen = BTreeSet::new();
    parallel(
        crates,
        jobs,
        |(name, wants)| {
            let url = format!("{index}{}", sparse_index_path(&name));
            let answer = fetch(&url, MAX_INDEX_FILE_BYTES);
            (name, wants, url, answer)
        },
        |(name, wants, url, answer)| {
            bar.inc();
            let bytes = match answer {
                Ok(bytes) => bytes,
                Err(FetchError::NotFound { .. }) => {
                    failed.push(Failed {
                        name,
                        version: None,
                        error: format!("the upstream index has no crate of this name ({url})"),
                    });
                    return;
                }
                Err(e) => {
                    failed.push(Failed {
                        name,
                        version: None,
                        error: format!("cannot fetch its index file: {e}"),
                    });
                    return;
                }
            };
            let lines: Vec<IndexEntry> = bytes
                .split(|&b| b == b'\n')
                .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
                .filter_map(|line| IndexEntry::parse_line(line).ok())
                .filter(|entry| entry.name.eq_ignore_ascii_case(&name))
                .collect();
            for what in wants {
                for entry in resolve(&name, &lines, &what, &mut failed) {
                    if seen.insert((entry.name.to_ascii_lowercase(), entry.vers.clone())) {
                        let previous = if scan {
                            previous_of(&entry, &lines)
                        } else {
                            None
                        };
                        resolved.push((entry, previous));
                    }
                }
            }
        },
    );
    bar.finish();

    // Releases already signed with their entry are not fetched again (a resumed import).
    let requested = resolved.len();
    let mut to_fetch = Vec::new();
    let mut already_signed = 0;
    for (entry, previous) in resolved {
        match repo.release_is_listed(&entry.name, &entry.vers) {
            Ok(true) => already_signed += 1,
            Ok(false) => to_fetch.push(Job { entry, previous }),
            Err(e) => failed.push(Failed {
                name: entry.name,
                version: Some(entry.vers),
                error: format!("{e:#}"),
            }),
        }
    }

    // The tarballs, fetched and checked in parallel; staged and saved in batches.
    let limits = ArchiveLimits {
        max_tarball_bytes: args.max_crate_size,
        ..ArchiveLimits::default()
    };
    let bar = Bar::new("importing");
    tuf_core::repository::Progress::set_length(&bar, to_fetch.len() as u64);
    let mut imported = Vec::new();
    let mut batch: Vec<UpstreamRelease> = Vec::new();
    let mut last_save = Instant::now();
    let mut bytes_fetched = 0u64;
    let mut save_error: Option<Error> = None;
    let save_every = args.save_every.max(1);
    let flush = |repo: &mut Repository,
                 batch: &mut Vec<UpstreamRelease>,
                 imported: &mut Vec<Imported>,
                 failed: &mut Vec<Failed>|
     -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let releases = std::mem::take(batch);
        let described: Vec<(String, String, u64)> = releases
            .iter()
            .map(|r| (r.name.clone(), r.version.clone(), r.target.length))
            .collect();
        let outcomes = repo.add_upstream_releases(releases, chrono::Utc::now())?;
        repo.save()?;
        for ((name, version, length), outcome) in described.into_iter().zip(outcomes) {
            match outcome {
                Ok(added) => {
                    tracing::info!(%name, %version, role = %added.role, "release staged");
                    imported.push(Imported {
                        name,
                        version,
                        role: added.role,
                        path: added.path,
                        length,
                        unchanged: added.unchanged,
                    });
                }
                Err(e) => failed.push(Failed {
                    name,
                    version: Some(version),
                    error: e.to_string(),
                }),
            }
        }
        Ok(())
    };
    parallel(
        to_fetch,
        jobs,
        |job| {
            // With --scan the tarball just fetched is scanned, not fetched again.
            let result = fetch_release(&fetch, &dl, &job.entry, &limits).and_then(
                |(mut release, tarball)| {
                    if scan {
                        scan_release(&fetch, &dl, &job, &tarball, &mut release, &limits)?;
                    }
                    Ok((release, tarball.len() as u64))
                },
            );
            (job, result)
        },
        |(job, result)| {
            bar.inc();
            if save_error.is_some() {
                return;
            }
            match result {
                Ok((release, length)) => {
                    bytes_fetched += length;
                    batch.push(release);
                }
                Err(error) => failed.push(Failed {
                    name: job.entry.name,
                    version: Some(job.entry.vers),
                    error,
                }),
            }
            if batch.len() >= save_every || last_save.elapsed() >= SAVE_INTERVAL {
                if let Err(e) = flush(repo, &mut batch, &mut imported, &mut failed) {
                    save_error = Some(e);
                }
                last_save = Instant::now();
            }
        },
    );
    if let Some(error) = save_error {
        return Err(error.context("staging the imported releases"));
    }
    flush(repo, &mut batch, &mut imported, &mut failed).context("staging the imported releases")?;
    bar.finish();
    super::warn_dropped(repo);

    let report = Report {
        index,
        dl,
        requested,
        already_signed,
        imported,
        failed,
        skipped,
        bytes_fetched,
        seconds: started.elapsed().as_secs_f64(),
    };
    let ok = report.failed.is_empty();
    emit_outcome(global, &report, ok, || describe(&report));
    if !ok {
        eprintln!(
            "tuf-signer: error: {} of the releases asked for could not be imported (above); \
             the others are staged: run the same import again to retry the rest",
            report.failed.len()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The human report.
fn describe(report: &Report) {
    const SHOWN: usize = 20;
    let new: Vec<&Imported> = report.imported.iter().filter(|i| !i.unchanged).collect();
    for imported in new.iter().take(SHOWN) {
        crate::say!(
            "staged: {} {} -> {} ({} bytes, tarball stays upstream)",
            imported.name,
            imported.version,
            imported.role,
            imported.length
        );
    }
    if new.len() > SHOWN {
        crate::say!("... and {} more", new.len() - SHOWN);
    }
    for failed in &report.failed {
        match &failed.version {
            Some(version) => crate::say!("failed: {} {version}: {}", failed.name, failed.error),
            None => crate::say!("failed: {}: {}", failed.name, failed.error),
        }
    }
    let skipped = &report.skipped;
    if skipped.path + skipped.git + skipped.other_registry.len() > 0 {
        crate::say!(
            "skipped from the lockfile: {} path or workspace packages, {} git packages, {} of other \
             registries{}",
            skipped.path,
            skipped.git,
            skipped.other_registry.len(),
            if skipped.other_registry.is_empty() {
                String::new()
            } else {
                format!(" ({})", skipped.other_registry.join(", "))
            }
        );
    }
    let megabytes = report.bytes_fetched as f64 / 1e6;
    crate::say!(
        "{} releases asked for: {} staged, {} already signed, {} failed; {megabytes:.1} MB fetched \
         in {:.1} s from {}",
        report.requested,
        new.len(),
        report.already_signed + report.imported.len() - new.len(),
        report.failed.len(),
        report.seconds,
        report.index
    );
    if !new.is_empty() {
        crate::say!(
            "next: reviewers attest them (`tuf-signer release attest`), then `tuf-signer publish`"
        );
    }
}

/// The `(name, version)` of every registry package of a lockfile (any registry: not
/// workspace members, path or git packages).
pub fn lockfile_registry_packages(path: &Path) -> Result<Vec<(String, String)>, Error> {
    let lockfile = parse_lockfile(path)?;
    Ok(lockfile
        .package
        .into_iter()
        .filter(|p| {
            p.source
                .as_deref()
                .is_some_and(|s| s.starts_with("registry+") || s.starts_with("sparse+"))
        })
        .map(|p| (p.name, p.version))
        .collect())
}

fn parse_lockfile(path: &Path) -> Result<Lockfile, Error> {
    let bytes = read_capped(path, MAX_LOCKFILE_BYTES)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::msg(format!("{}: not UTF-8", path.display())))?;
    toml::from_str(text).with_context(|| format!("{}: not a Cargo.lock", path.display()))
}

/// The registry packages of a lockfile that come from `index` (or the public registry,
/// as a lockfile names it whatever source replaces it).
fn read_lockfile(
    path: &Path,
    index: &str,
    skipped: &mut Skipped,
) -> Result<Vec<LockedPackage>, Error> {
    let lockfile = parse_lockfile(path)?;
    let own_source = format!("sparse+{index}");
    let mut packages = Vec::new();
    for package in lockfile.package {
        match package.source.as_deref() {
            None => skipped.path += 1,
            Some(source) if source.starts_with("git+") => skipped.git += 1,
            Some(source)
                if CRATES_IO_SOURCES.contains(&source)
                    || source.trim_end_matches('/') == own_source.trim_end_matches('/') =>
            {
                packages.push(package)
            }
            Some(_) => skipped
                .other_registry
                .push(format!("{} {}", package.name, package.version)),
        }
    }
    Ok(packages)
}

/// The entries of `lines` (a crate's upstream index file) that `what` asks for; what
/// cannot be found is recorded in `failed`.
fn resolve(
    name: &str,
    lines: &[IndexEntry],
    what: &Wanted,
    failed: &mut Vec<Failed>,
) -> Vec<IndexEntry> {
    match what {
        Wanted::Version { version, checksum } => {
            let Some(entry) = lines.iter().find(|e| e.vers.eq_ignore_ascii_case(version)) else {
                failed.push(Failed {
                    name: name.to_owned(),
                    version: Some(version.clone()),
                    error: "the upstream index has no such version".into(),
                });
                return Vec::new();
            };
            if let Some(checksum) = checksum {
                if !checksum.eq_ignore_ascii_case(&entry.cksum) {
                    failed.push(Failed {
                        name: entry.name.clone(),
                        version: Some(entry.vers.clone()),
                        error: format!(
                            "the lockfile's checksum {checksum} is not the upstream index's cksum \
                             {}: the registry changed the release, or the lockfile is not from it",
                            entry.cksum
                        ),
                    });
                    return Vec::new();
                }
            }
            vec![entry.clone()]
        }
        Wanted::All { latest } => {
            let mut versions: Vec<(semver::Version, &IndexEntry)> = lines
                .iter()
                .filter(|e| !e.yanked)
                .filter_map(|e| semver::Version::parse(&e.vers).ok().map(|v| (v, e)))
                .collect();
            if versions.is_empty() {
                failed.push(Failed {
                    name: name.to_owned(),
                    version: None,
                    error: "the upstream index lists no version that is not yanked".into(),
                });
                return Vec::new();
            }
            if let Some(latest) = latest {
                if versions.iter().any(|(v, _)| v.pre.is_empty()) {
                    versions.retain(|(v, _)| v.pre.is_empty());
                }
                versions.sort_by(|a, b| b.0.cmp(&a.0));
                versions.truncate(*latest);
                versions.reverse();
            }
            versions.into_iter().map(|(_, e)| e.clone()).collect()
        }
    }
}

/// The newest version of `lines` earlier than `entry`'s that upstream has not yanked.
fn previous_of(entry: &IndexEntry, lines: &[IndexEntry]) -> Option<IndexEntry> {
    newest_earlier(&entry.vers, lines.iter().filter(|e| !e.yanked)).cloned()
}

/// `--scan`: scans the release (its tarball, `tarball`, already checked) against its
/// previous version and records the result in its target.
fn scan_release(
    fetch: &FetchFn<'_>,
    dl: &str,
    job: &Job,
    tarball: &[u8],
    release: &mut UpstreamRelease,
    limits: &ArchiveLimits,
) -> Result<(), String> {
    let files = |entry: &IndexEntry, bytes: &[u8]| {
        read_crate_files(
            &format!("{}-{}.crate", entry.name, entry.vers),
            bytes,
            limits,
        )
        .map_err(|e| format!("scanning {} {}: {e}", entry.name, entry.vers))
    };
    let new = files(&job.entry, tarball)?;
    let old = match &job.previous {
        Some(previous) => {
            let bytes = fetch_checked_tarball(fetch, dl, previous, limits.max_tarball_bytes)
                .map_err(|e| format!("scanning against {}: {e}", previous.vers))?;
            Some(files(previous, &bytes)?)
        }
        None => None,
    };
    let report = tuf_core::scan::scan(old.as_ref(), &new);
    tuf_core::layout::record_scan(&mut release.target, &tuf_core::scan::recorded(&report));
    Ok(())
}

/// Fetches and checks one release's tarball: a well-formed release of the entry's name
/// and version whose sha256 is the entry's cksum. Returns what to stage and the tarball.
fn fetch_release(
    fetch: &FetchFn<'_>,
    dl: &str,
    entry: &IndexEntry,
    limits: &ArchiveLimits,
) -> Result<(UpstreamRelease, Vec<u8>), String> {
    let bytes = fetch_checked_tarball(fetch, dl, entry, limits.max_tarball_bytes)?;
    let file_name = format!("{}-{}.crate", entry.name, entry.vers);
    let release = parse_crate_release(&file_name, bytes, limits).map_err(|e| {
        format!("the tarball of {file_name} from upstream is not a release of it: {e}")
    })?;
    Ok((
        UpstreamRelease::new(&entry.name, &entry.vers, &release.bytes, entry.clone()),
        release.bytes,
    ))
}
