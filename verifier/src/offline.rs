//! The offline verbs: a `Cargo.lock`'s checksums, and a `cargo vendor` directory, checked
//! against the registry's TUF repository with the same client workflow as the proxy.
//!
//! `verify-vendor` checks three things per vendored crate:
//! 1. its package checksum (in `.cargo-checksum.json`) is the sha256 of the signed target;
//! 2. every file matches `.cargo-checksum.json` (what cargo itself checks);
//! 3. with an upstream registry, every file is byte-for-byte a file of the signed tarball,
//!    which is downloaded and verified first. Without this step an attacker who edits a
//!    file and its entry in `.cargo-checksum.json` goes unnoticed (cargo builds it), so
//!    the report says when it was skipped.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use clap::Args;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tuf_core::client::{read_bounded, Limits};

use crate::config::DEFAULT_MAX_CACHED_LOOKUPS;
use crate::config::{RepositoryConfig, ServeArgs};
use crate::release::SignedRelease;
use crate::trust::{TrustConfig, TrustStore};
use crate::upstream;

/// Cap on a Cargo.lock, a Cargo.toml or a `.cargo-checksum.json`.
const MAX_MANIFEST: u64 = 16 * 1024 * 1024;
/// Cap on one vendored file read for hashing.
const MAX_VENDORED_FILE: u64 = 256 * 1024 * 1024;
/// Caps on a tarball's unpacked contents.
const MAX_TARBALL_ENTRIES: usize = 100_000;
const MAX_UNPACKED: u64 = 1024 * 1024 * 1024;

/// Where the TUF repository is (the same options as `serve`, or its configuration file).
#[derive(Debug, Clone, Args)]
pub struct RepositoryArgs {
    /// The proxy's TOML configuration file (metadata, root, state_dir, upstream_index).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// The TUF repository's metadata: a base URL or a local directory.
    #[arg(long, value_name = "URL|DIR")]
    metadata: Option<String>,
    /// The trusted root metadata file.
    #[arg(long, value_name = "FILE")]
    root: Option<PathBuf>,
    /// Where trusted metadata is kept between runs (rollback protection); by default a
    /// temporary directory.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// The sources a `Cargo.lock` names for crates.io, whose packages are verified by
/// default. Source replacement does not show in a lockfile: a project built through the
/// proxy standing in for crates.io records crates.io.
pub const CRATES_IO_SOURCES: [&str; 2] = [
    "registry+https://github.com/rust-lang/crates.io-index",
    "sparse+https://index.crates.io/",
];

/// `verify-lockfile` options.
#[derive(Debug, Clone, Args)]
pub struct LockfileArgs {
    /// The Cargo.lock to check.
    #[arg(default_value = "Cargo.lock")]
    lockfile: PathBuf,
    /// The source the lockfile names for the registry the TUF repository signs; repeat
    /// for more spellings [default: crates.io's,
    /// registry+https://github.com/rust-lang/crates.io-index and
    /// sparse+https://index.crates.io/]. A proxy used as a named registry is recorded as
    /// sparse+<its URL>/index/.
    #[arg(long = "source", value_name = "SOURCE")]
    sources: Vec<String>,
    /// A source whose packages are let through unverified (listed as skipped), such as a
    /// git repository you vet otherwise; repeat for more. A source matches exactly, or
    /// as the part of a git source before `?` or `#`. Every other source fails.
    #[arg(long = "allow-source", value_name = "SOURCE")]
    allow_sources: Vec<String>,
    #[command(flatten)]
    repository: RepositoryArgs,
}

/// `verify-vendor` options.
#[derive(Debug, Clone, Args)]
pub struct VendorArgs {
    /// The directory `cargo vendor` wrote.
    #[arg(default_value = "vendor")]
    dir: PathBuf,
    /// Upstream sparse index (or a tuf-verifier proxy's /index/) to download the signed
    /// tarballs from, so every vendored file is compared with the signed one.
    #[arg(long, value_name = "URL")]
    upstream_index: Option<String>,
    #[command(flatten)]
    repository: RepositoryArgs,
}

/// One package's result.
#[derive(Debug, Serialize)]
struct PackageReport {
    name: String,
    version: String,
    /// `verified`, `skipped` or `failed`.
    result: &'static str,
    /// The role that signed it, when verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    /// What failed, or why it was skipped, or a caveat.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    ok: bool,
    verified: usize,
    failed: usize,
    skipped: usize,
    packages: Vec<PackageReport>,
}

impl Report {
    fn new(packages: Vec<PackageReport>) -> Self {
        let count = |result: &str| packages.iter().filter(|p| p.result == result).count();
        let (verified, failed, skipped) = (count("verified"), count("failed"), count("skipped"));
        Self {
            ok: failed == 0,
            verified,
            failed,
            skipped,
            packages,
        }
    }

    fn print(&self, json: bool, what: &str) {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if json {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(self).unwrap_or_default()
            );
            return;
        }
        for p in &self.packages {
            let line = match (p.result, &p.role, &p.detail) {
                ("verified", Some(role), None) => {
                    format!("ok       {} {} (signed by {role})", p.name, p.version)
                }
                ("verified", Some(role), Some(detail)) => {
                    format!(
                        "ok       {} {} (signed by {role}; {detail})",
                        p.name, p.version
                    )
                }
                ("skipped", _, detail) => format!(
                    "skipped  {} {}: {}",
                    p.name,
                    p.version,
                    detail.as_deref().unwrap_or("")
                ),
                (_, _, detail) => format!(
                    "FAILED   {} {}: {}",
                    p.name,
                    p.version,
                    detail.as_deref().unwrap_or("")
                ),
            };
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(
            out,
            "{what}: {} verified, {} failed, {} skipped",
            self.verified, self.failed, self.skipped
        );
    }
}

/// A progress bar on stderr, shown only when stderr is a terminal.
fn progress_bar(length: usize, message: &'static str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(length as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {wide_msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

/// A trust store for a one-off check, refreshed once. Blocking.
fn open_trust(
    config: &RepositoryConfig,
) -> anyhow::Result<(TrustStore, Option<tempfile::TempDir>)> {
    let (state_dir, temporary) = match &config.state_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temp = tempfile::tempdir().context("cannot create a temporary state directory")?;
            (temp.path().to_owned(), Some(temp))
        }
    };
    let trust = TrustStore::new(TrustConfig {
        metadata: config.metadata.clone(),
        root: config.root.clone(),
        metadata_dir: state_dir.join("metadata"),
        limits: Limits::default(),
        connect_timeout: config.connect_timeout,
        timeout: config.upstream_timeout,
        max_cached_lookups: std::num::NonZeroUsize::new(DEFAULT_MAX_CACHED_LOOKUPS)
            .unwrap_or(std::num::NonZeroUsize::MIN),
    })?;
    trust
        .refresh()
        .map_err(|e| anyhow::anyhow!("cannot update the TUF metadata: {e}"))?;
    Ok((trust, temporary))
}

fn repository_config(
    args: &RepositoryArgs,
    upstream_index: Option<String>,
) -> anyhow::Result<RepositoryConfig> {
    ServeArgs {
        config: args.config.clone(),
        metadata: args.metadata.clone(),
        root: args.root.clone(),
        state_dir: args.state_dir.clone(),
        upstream_index,
        ..ServeArgs::default()
    }
    .resolve_repository()
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let bytes = read_bounded(file, &path.display().to_string(), MAX_MANIFEST)?;
    String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8", path.display()))
}

fn verified(
    name: &str,
    version: &str,
    release: &SignedRelease,
    detail: Option<String>,
) -> PackageReport {
    PackageReport {
        name: name.to_owned(),
        version: version.to_owned(),
        result: "verified",
        role: Some(release.role.clone()),
        detail,
    }
}

fn failed(name: &str, version: &str, detail: String) -> PackageReport {
    PackageReport {
        name: name.to_owned(),
        version: version.to_owned(),
        result: "failed",
        role: None,
        detail: Some(detail),
    }
}

fn skipped(name: &str, version: &str, detail: &str) -> PackageReport {
    PackageReport {
        name: name.to_owned(),
        version: version.to_owned(),
        result: "skipped",
        role: None,
        detail: Some(detail.to_owned()),
    }
}

/// `tuf-verifier verify-lockfile`: true when every registry package verified.
pub async fn verify_lockfile(args: LockfileArgs) -> anyhow::Result<bool> {
    let config = repository_config(&args.repository, None)?;
    let json = args.repository.json;
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<Report> {
        let text = read_text(&args.lockfile)?;
        let lock: toml::Table = toml::from_str(&text)
            .with_context(|| format!("{}: not a Cargo.lock", args.lockfile.display()))?;
        let (trust, _temporary) = open_trust(&config)?;
        let verified_sources: Vec<String> = if args.sources.is_empty() {
            CRATES_IO_SOURCES.iter().map(|s| (*s).to_owned()).collect()
        } else {
            args.sources.clone()
        };
        let packages = lock
            .get("package")
            .and_then(|p| p.as_array())
            .cloned()
            .unwrap_or_default();
        let mut reports = Vec::new();
        let bar = progress_bar(packages.len(), "checking");
        for package in &packages {
            bar.inc(1);
            let field = |key: &str| package.get(key).and_then(|v| v.as_str()).unwrap_or("");
            let (name, version, source) = (field("name"), field("version"), field("source"));
            if source.is_empty() {
                reports.push(skipped(name, version, "a local package"));
                continue;
            }
            if !verified_sources.iter().any(|s| source_matches(s, source)) {
                reports.push(
                    if args.allow_sources.iter().any(|s| source_matches(s, source)) {
                        skipped(
                            name,
                            version,
                            &format!("from {source}, allowed by --allow-source: not verified"),
                        )
                    } else {
                        failed(
                            name,
                            version,
                            format!(
                                "from another source, {source}: not verified by this TUF \
                                 repository; cargo fetched it past the verified registry. \
                                 If you trust that source, allow it with --allow-source {source}"
                            ),
                        )
                    },
                );
                continue;
            }
            let checksum = field("checksum");
            reports.push(match trust.lookup(name, version, Utc::now()) {
                Err(refusal) => failed(name, version, refusal.to_string()),
                Ok(_) if checksum.is_empty() => failed(
                    name,
                    version,
                    "Cargo.lock records no checksum for it".into(),
                ),
                Ok(release) if release.sha256.eq_ignore_ascii_case(checksum) => {
                    verified(name, version, &release, None)
                }
                Ok(release) => failed(
                    name,
                    version,
                    format!(
                        "Cargo.lock checksum {checksum} is not the signed sha256 {} of {}",
                        release.sha256, release.target
                    ),
                ),
            });
        }
        bar.finish_and_clear();
        Ok(Report::new(reports))
    })
    .await??;
    report.print(json, "Cargo.lock");
    Ok(report.ok)
}

/// True when the lockfile's `source` is `pattern`: the same string but for a trailing `/`,
/// or, for a pattern without `?` and `#`, the same up to the source's `?` or `#` (a git
/// source's branch, tag or commit).
fn source_matches(pattern: &str, source: &str) -> bool {
    let trim = |s: &str| s.trim_end_matches('/').to_owned();
    if trim(pattern) == trim(source) {
        return true;
    }
    if pattern.contains(['?', '#']) {
        return false;
    }
    let base = source.split(['?', '#']).next().unwrap_or(source);
    trim(base) == trim(pattern)
}

/// The `.cargo-checksum.json` of a vendored crate.
#[derive(serde::Deserialize)]
struct CargoChecksum {
    files: BTreeMap<String, String>,
    package: Option<String>,
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut reader = file.take(MAX_VENDORED_FILE + 1);
    let copied = std::io::copy(&mut reader, &mut hasher)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if copied > MAX_VENDORED_FILE {
        anyhow::bail!("{}: larger than {MAX_VENDORED_FILE} bytes", path.display());
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Every regular file below `dir`, by `/`-separated relative path. Symbolic links are
/// refused: a vendored crate has none, and one could point anywhere.
fn list_files(dir: &Path) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)
            .with_context(|| format!("cannot list {}", current.display()))?
        {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                let relative = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                files.insert(relative, path);
            } else {
                anyhow::bail!("{}: not a regular file or directory", path.display());
            }
        }
    }
    Ok(files)
}

/// The files of a verified tarball, by path below its top directory, with their sha256.
fn tarball_files(bytes: &[u8]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut files = BTreeMap::new();
    let mut unpacked: u64 = 0;
    for (index, entry) in archive.entries()?.enumerate() {
        if index >= MAX_TARBALL_ENTRIES {
            anyhow::bail!("more than {MAX_TARBALL_ENTRIES} entries");
        }
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path()?.to_string_lossy().into_owned();
        let Some((_, relative)) = path.split_once('/') else {
            continue;
        };
        let relative = relative.to_owned();
        let mut hasher = Sha256::new();
        let size = std::io::copy(
            &mut (&mut entry).take(MAX_UNPACKED - unpacked + 1),
            &mut hasher,
        )?;
        unpacked += size;
        if unpacked > MAX_UNPACKED {
            anyhow::bail!("unpacks to more than {MAX_UNPACKED} bytes");
        }
        files.insert(relative, hex::encode(hasher.finalize()));
    }
    Ok(files)
}

struct VendoredCrate {
    name: String,
    version: String,
    checksum: CargoChecksum,
    files: BTreeMap<String, PathBuf>,
}

fn read_vendored(dir: &Path) -> anyhow::Result<VendoredCrate> {
    let manifest: toml::Table = toml::from_str(&read_text(&dir.join("Cargo.toml"))?)
        .with_context(|| format!("{}/Cargo.toml: invalid TOML", dir.display()))?;
    let package = manifest.get("package").and_then(|p| p.as_table());
    let field = |key: &str| {
        package
            .and_then(|p| p.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .with_context(|| format!("{}/Cargo.toml: no package.{key}", dir.display()))
    };
    let checksum_path = dir.join(".cargo-checksum.json");
    let checksum: CargoChecksum = serde_json::from_str(&read_text(&checksum_path)?)
        .with_context(|| format!("{}: invalid", checksum_path.display()))?;
    Ok(VendoredCrate {
        name: field("name")?,
        version: field("version")?,
        checksum,
        files: list_files(dir)?,
    })
}

/// Checks one vendored crate against its signed release (and tarball, when given).
fn check_vendored(
    krate: &VendoredCrate,
    release: &SignedRelease,
    tarball: Option<&BTreeMap<String, String>>,
) -> Result<(), String> {
    let package = krate
        .checksum
        .package
        .as_deref()
        .ok_or("no package checksum in .cargo-checksum.json")?;
    if !package.eq_ignore_ascii_case(&release.sha256) {
        return Err(format!(
            "package checksum {package} is not the signed sha256 {} of {}",
            release.sha256, release.target
        ));
    }
    for (relative, path) in &krate.files {
        if relative == ".cargo-checksum.json" {
            continue;
        }
        let actual = sha256_file(path).map_err(|e| e.to_string())?;
        match krate.checksum.files.get(relative) {
            Some(listed) if listed.eq_ignore_ascii_case(&actual) => {}
            Some(_) => return Err(format!("{relative} does not match .cargo-checksum.json")),
            None => return Err(format!("{relative} is not listed in .cargo-checksum.json")),
        }
        if let Some(signed) = tarball {
            match signed.get(relative) {
                Some(digest) if *digest == actual => {}
                Some(_) => return Err(format!("{relative} differs from the signed tarball")),
                None => return Err(format!("{relative} is not in the signed tarball")),
            }
        }
    }
    if let Some(listed) = krate
        .checksum
        .files
        .keys()
        .find(|f| !krate.files.contains_key(*f))
    {
        return Err(format!(
            "{listed} is listed in .cargo-checksum.json but missing"
        ));
    }
    Ok(())
}

/// `tuf-verifier verify-vendor`: true when every vendored registry crate verified.
pub async fn verify_vendor(args: VendorArgs) -> anyhow::Result<bool> {
    let config = repository_config(&args.repository, args.upstream_index.clone())?;
    let client = upstream::build_client(config.connect_timeout, config.upstream_timeout)?;
    let json = args.repository.json;
    let dir = args.dir.clone();
    let (trust, crates, temporary) = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
                .with_context(|| format!("cannot list the vendor directory {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect();
            entries.sort();
            let crates: Vec<(PathBuf, anyhow::Result<VendoredCrate>)> = entries
                .into_iter()
                .map(|p| {
                    let c = read_vendored(&p);
                    (p, c)
                })
                .collect();
            let (trust, temporary) = open_trust(&config)?;
            Ok((Arc::new(trust), crates, temporary))
        })
        .await??
    };
    let dl = match &config.upstream_index {
        Some(index) => Some(
            upstream::registry_dl(&client, index)
                .await
                .map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    let mut reports = Vec::new();
    let bar = progress_bar(crates.len(), "verifying");
    for (path, krate) in crates {
        bar.inc(1);
        let krate = match krate {
            Ok(krate) => krate,
            Err(error) => {
                let shown = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                reports.push(failed(&shown, "", format!("{error:#}")));
                continue;
            }
        };
        let (name, version) = (krate.name.clone(), krate.version.clone());
        if krate.checksum.package.is_none() {
            reports.push(skipped(
                &name,
                &version,
                "not from a registry (no package checksum)",
            ));
            continue;
        }
        let lookup = {
            let trust = Arc::clone(&trust);
            let (name, version) = (name.clone(), version.clone());
            tokio::task::spawn_blocking(move || trust.lookup(&name, &version, Utc::now())).await?
        };
        let release = match lookup {
            Ok(release) => release,
            Err(refusal) => {
                reports.push(failed(&name, &version, refusal.to_string()));
                continue;
            }
        };
        let tarball = match &dl {
            Some(dl) => {
                let url = upstream::download_url(dl, &name, &version, &release.sha256);
                match upstream::fetch_tarball(
                    &client,
                    &url,
                    &release,
                    crate::config::DEFAULT_MAX_CRATE_SIZE,
                )
                .await
                {
                    Ok(bytes) => match tarball_files(&bytes) {
                        Ok(files) => Some(files),
                        Err(error) => {
                            reports.push(failed(
                                &name,
                                &version,
                                format!("cannot read the signed tarball: {error:#}"),
                            ));
                            continue;
                        }
                    },
                    Err(error) => {
                        reports.push(failed(
                            &name,
                            &version,
                            format!("cannot get the signed tarball: {error}"),
                        ));
                        continue;
                    }
                }
            }
            None => None,
        };
        let checked = {
            let release = release.clone();
            tokio::task::spawn_blocking(move || check_vendored(&krate, &release, tarball.as_ref()))
                .await?
        };
        reports.push(match checked {
            Ok(()) if dl.is_some() => verified(&name, &version, &release, None),
            Ok(()) => verified(
                &name,
                &version,
                &release,
                Some("files checked against .cargo-checksum.json only: give --upstream-index to compare them with the signed tarball".into()),
            ),
            Err(detail) => failed(&name, &version, detail),
        });
    }
    bar.finish_and_clear();
    drop(temporary);
    let report = Report::new(reports);
    report.print(json, "vendor directory");
    Ok(report.ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_match_exactly_or_up_to_a_git_reference() {
        let crates_io = CRATES_IO_SOURCES[0];
        assert!(source_matches(crates_io, crates_io));
        assert!(source_matches(
            "sparse+http://127.0.0.1:7878/index",
            "sparse+http://127.0.0.1:7878/index/"
        ));
        assert!(!source_matches(
            "sparse+http://127.0.0.1:7878/index/",
            "sparse+http://127.0.0.1:7879/index/"
        ));
        assert!(!source_matches(
            crates_io,
            "sparse+https://index.crates.io/"
        ));
        let git = "git+https://github.com/o/r?branch=main#0123abcd";
        assert!(source_matches("git+https://github.com/o/r", git));
        assert!(source_matches(git, git));
        assert!(!source_matches(
            "git+https://github.com/o/r?branch=dev",
            git
        ));
        assert!(!source_matches("git+https://github.com/o", git));
        assert!(!source_matches("git+https://github.com/o/r-evil", git));
    }
}
