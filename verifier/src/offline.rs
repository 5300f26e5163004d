//! The offline verbs: a `Cargo.lock`'s checksums, and a `cargo vendor` directory, checked
//! against the registry's TUF repository with the same client workflow as the proxy.
//!
//! `verify-vendor` checks three things per vendored crate:
//! 1. its package checksum (in `.cargo-checksum.json`) is the sha256 of the signed target;
//! 2. every file matches `.cargo-checksum.json` (what cargo itself checks);
//! 3. with an upstream registry, every file is byte-for-byte a file of the signed tarball,
//!    which is downloaded and verified first, then read under the strict rules of
//!    [`tuf_core::crate_archive`] (one top-level directory, no path escaping it, no
//!    links, size and entry caps) on a blocking thread. Without this step an attacker who edits a
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
use tuf_core::client::Limits;
use tuf_core::crate_archive::{crate_file_digests, ArchiveError, ArchiveLimits};
use tuf_core::fs::read_bounded;

use crate::config::DEFAULT_MAX_CACHED_LOOKUPS;
use crate::config::{RepositoryConfig, ServeArgs};
use crate::signed_target::SignedTarget;
use crate::trust::{TrustConfig, TrustStore};
use crate::upstream;

/// Cap on a Cargo.lock, a Cargo.toml or a `.cargo-checksum.json`.
const MAX_MANIFEST: u64 = 16 * 1024 * 1024;
/// Cap on one vendored file read for hashing.
const MAX_VENDORED_FILE: u64 = 256 * 1024 * 1024;

/// Where the TUF repository is (the same options as `serve`, or its configuration file).
#[derive(Debug, Clone, Args)]
pub struct RepositoryArgs {
    /// The proxy's TOML configuration file (metadata, root, state_dir, upstream_index).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The TUF repository's metadata: a base URL or a local directory.
    #[arg(long, value_name = "URL|DIR")]
    pub(crate) metadata: Option<String>,
    /// The trusted root metadata file.
    #[arg(long, value_name = "FILE")]
    pub(crate) root: Option<PathBuf>,
    /// Where trusted metadata is kept between runs (rollback protection); by default a
    /// temporary directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

impl LockfileArgs {
    /// Whether the result goes to stdout as one JSON object.
    pub fn json(&self) -> bool {
        self.repository.json
    }
}

impl VendorArgs {
    /// Whether the result goes to stdout as one JSON object.
    pub fn json(&self) -> bool {
        self.repository.json
    }
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

/// What became of one package; serialised as `"verified"`, `"skipped"` or `"failed"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum PackageOutcome {
    /// Signed, and what was checked matches what is signed.
    Verified,
    /// Not checked, for the reason in `detail` (a local package, an allowed source).
    Skipped,
    /// Checked and refused, or impossible to check.
    Failed,
}

/// One package's result.
#[derive(Debug, Serialize)]
struct PackageReport {
    name: String,
    version: String,
    result: PackageOutcome,
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
        let count = |result| packages.iter().filter(|p| p.result == result).count();
        let (verified, failed, skipped) = (
            count(PackageOutcome::Verified),
            count(PackageOutcome::Failed),
            count(PackageOutcome::Skipped),
        );
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
                (PackageOutcome::Verified, Some(role), None) => {
                    format!("ok       {} {} (signed by {role})", p.name, p.version)
                }
                (PackageOutcome::Verified, Some(role), Some(detail)) => {
                    format!(
                        "ok       {} {} (signed by {role}; {detail})",
                        p.name, p.version
                    )
                }
                (PackageOutcome::Skipped, _, detail) => format!(
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
pub(crate) fn progress_bar(length: usize, message: &'static str) -> indicatif::ProgressBar {
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
pub(crate) fn open_trust(
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
        shared: None,
    })?;
    trust
        .refresh()
        .map_err(|e| anyhow::anyhow!("cannot update the TUF metadata: {e}"))?;
    Ok((trust, temporary))
}

/// Memory budget of the signed index files an offline verb keeps.
const OFFLINE_INDEX_FILES_BUDGET: u64 = 64 * 1024 * 1024;

/// The TUF repository as an offline verb reads it (`explain`, `policy check`): trusted
/// metadata refreshed once, and the crates' signed index files. Blocking to open.
pub(crate) struct OfflineRepository {
    pub(crate) trust: TrustStore,
    index_files: crate::signed_index::SignedIndexFiles,
    allowed_registries: crate::index_line::RegistryAllowlist,
    signed_entries_required: bool,
    _state: Option<tempfile::TempDir>,
}

impl OfflineRepository {
    /// Opens the repository `config` names. Blocking.
    pub(crate) fn open(config: &RepositoryConfig) -> anyhow::Result<Self> {
        let (trust, state) = open_trust(config)?;
        let fetcher = upstream::MetadataFetcher::for_location(
            &config.tuf_targets,
            config.connect_timeout,
            config.upstream_timeout,
        )?;
        let index_files = crate::signed_index::SignedIndexFiles::new(
            &config.tuf_targets,
            fetcher,
            OFFLINE_INDEX_FILES_BUDGET,
        );
        let signed_entries_required = config
            .require_signed_index_entries
            .required(trust.signs_index_entries());
        Ok(Self {
            trust,
            index_files,
            allowed_registries: config.allowed_registries.clone(),
            signed_entries_required,
            _state: state,
        })
    }

    /// The judge of index answers over this repository.
    pub(crate) fn judge(&self) -> crate::index_answer::Judge<'_> {
        crate::index_answer::Judge {
            trust: &self.trust,
            index_files: &self.index_files,
            allowed_registries: &self.allowed_registries,
            signed_entries_required: self.signed_entries_required,
        }
    }
}

pub(crate) fn repository_config(
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
    let bytes = read_bounded(file, MAX_MANIFEST)
        .with_context(|| format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8", path.display()))
}

fn verified(
    name: &str,
    version: &str,
    release: &SignedTarget,
    detail: Option<String>,
) -> PackageReport {
    PackageReport {
        name: name.to_owned(),
        version: version.to_owned(),
        result: PackageOutcome::Verified,
        role: Some(release.role.clone()),
        detail,
    }
}

fn failed(name: &str, version: &str, detail: String) -> PackageReport {
    PackageReport {
        name: name.to_owned(),
        version: version.to_owned(),
        result: PackageOutcome::Failed,
        role: None,
        detail: Some(detail),
    }
}

fn skipped(name: &str, version: &str, detail: &str) -> PackageReport {
    PackageReport {
        name: name.to_owned(),
        version: version.to_owned(),
        result: PackageOutcome::Skipped,
        role: None,
        detail: Some(detail.to_owned()),
    }
}

/// The parts of a `Cargo.lock` that `verify-lockfile` reads.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct CargoLock {
    /// Every locked package (none in a lockfile without `[[package]]`).
    #[serde(default)]
    pub(crate) package: Vec<LockedPackage>,
}

/// One `[[package]]` of a `Cargo.lock`.
#[derive(Debug, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct LockedPackage {
    pub(crate) name: String,
    pub(crate) version: String,
    /// Where it comes from; none for the workspace's own (path) packages.
    pub(crate) source: Option<String>,
    /// The sha256 of its tarball, for registry packages (lockfile format 2 and later).
    checksum: Option<String>,
}

/// Reads and parses the lockfile at `path`, bounded by [`MAX_MANIFEST`].
pub(crate) fn read_lockfile(path: &Path) -> anyhow::Result<CargoLock> {
    parse_lockfile(&read_text(path)?)
        .with_context(|| format!("{}: not a Cargo.lock", path.display()))
}

fn parse_lockfile(text: &str) -> Result<CargoLock, toml::de::Error> {
    toml::from_str(text)
}

/// `tuf-verifier verify-lockfile`: true when every registry package verified.
pub async fn verify_lockfile(args: LockfileArgs) -> anyhow::Result<bool> {
    let config = repository_config(&args.repository, None)?;
    let json = args.repository.json;
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<Report> {
        let lock = read_lockfile(&args.lockfile)?;
        let (trust, _temporary) = open_trust(&config)?;
        let verified_sources: Vec<String> = if args.sources.is_empty() {
            CRATES_IO_SOURCES.iter().map(|s| (*s).to_owned()).collect()
        } else {
            args.sources.clone()
        };
        let mut reports = Vec::new();
        let bar = progress_bar(lock.package.len(), "checking");
        for package in &lock.package {
            bar.inc(1);
            let (name, version) = (package.name.as_str(), package.version.as_str());
            let source = package.source.as_deref().unwrap_or("");
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
            let checksum = package.checksum.as_deref().unwrap_or("");
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
pub(crate) fn source_matches(pattern: &str, source: &str) -> bool {
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

/// The files of the verified tarball of `release`, by path below its top directory, with
/// their sha256 in hex, read under the rules of [`tuf_core::crate_archive`]; errors name
/// the tarball by the file name of its target.
fn signed_tarball_files(
    release: &SignedTarget,
    bytes: &[u8],
) -> Result<BTreeMap<String, String>, ArchiveError> {
    let file_name = release.target.rsplit('/').next().unwrap_or(&release.target);
    let limits = ArchiveLimits {
        max_tarball_bytes: crate::config::DEFAULT_MAX_CRATE_SIZE,
        ..ArchiveLimits::default()
    };
    let signed = crate_file_digests(file_name, bytes, &limits)?;
    Ok(signed
        .files
        .into_iter()
        .map(|(path, digest)| (path, hex::encode(digest)))
        .collect())
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

/// Checks one vendored crate against its signed release and, when given, the bytes of
/// its verified tarball, which are unpacked here: call it on a blocking thread.
fn check_vendored_crate(
    krate: &VendoredCrate,
    release: &SignedTarget,
    tarball: Option<&[u8]>,
) -> Result<(), String> {
    let signed = tarball
        .map(|bytes| signed_tarball_files(release, bytes))
        .transpose()
        .map_err(|error| format!("cannot read the signed tarball: {error}"))?;
    check_vendored(krate, release, signed.as_ref())
}

/// Checks one vendored crate against its signed release (and tarball files, when given).
fn check_vendored(
    krate: &VendoredCrate,
    release: &SignedTarget,
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
    let client = upstream::UpstreamClient::new(
        config.connect_timeout,
        config.upstream_timeout,
        config.upstream_credential.clone(),
    )?;
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
                    Ok(bytes) => Some(bytes),
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
            tokio::task::spawn_blocking(move || {
                check_vendored_crate(&krate, &release, tarball.as_deref())
            })
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
    use tuf_crates_tests::crate_tarball::{build_raw_tarball, RawEntry};

    use super::*;

    const MANIFEST: &str = "[package]\nname = \"foo\"\nversion = \"1.0.0\"\n";
    const GOOD_LIB: &[u8] = b"pub fn f() -> u32 { 1 }\n";
    const EVIL_LIB: &[u8] = b"pub fn f() -> u32 { std::process::abort() }\n";

    fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    fn signed(tarball: &[u8]) -> SignedTarget {
        let sha256 = sha256_hex(tarball);
        SignedTarget {
            target: "crates/foo/foo/foo-1.0.0.crate".to_owned(),
            role: "ns-foo".to_owned(),
            delegator: "targets".to_owned(),
            length: tarball.len() as u64,
            hashes: [("sha256".to_owned(), sha256.clone())].into(),
            sha256,
            valid_until: Utc::now(),
            scan: None,
        }
    }

    /// A vendored foo 1.0.0 whose src/lib.rs is `lib_rs`, with a .cargo-checksum.json
    /// that agrees with its files and gives `tarball`'s sha256 as the package checksum:
    /// what an attacker who controls the vendor directory writes.
    fn vendored(dir: &Path, lib_rs: &[u8], tarball: &[u8]) -> VendoredCrate {
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("Cargo.toml"), MANIFEST).unwrap();
        std::fs::write(dir.join("src/lib.rs"), lib_rs).unwrap();
        let checksum = serde_json::json!({
            "files": {
                "Cargo.toml": sha256_hex(MANIFEST.as_bytes()),
                "src/lib.rs": sha256_hex(lib_rs),
            },
            "package": sha256_hex(tarball),
        });
        std::fs::write(dir.join(".cargo-checksum.json"), checksum.to_string()).unwrap();
        read_vendored(dir).unwrap()
    }

    fn check(lib_rs: &[u8], tarball: &[u8]) -> Result<(), String> {
        let dir = tempfile::tempdir().unwrap();
        let krate = vendored(&dir.path().join("foo"), lib_rs, tarball);
        check_vendored_crate(&krate, &signed(tarball), Some(tarball))
    }

    #[test]
    fn report_results_serialise_as_the_strings_of_the_json_output() {
        let tarball = b"tarball";
        let report = Report::new(vec![
            verified("foo", "1.0.0", &signed(tarball), None),
            failed("bar", "2.0.0", "no".to_owned()),
            skipped("baz", "0.1.0", "a local package"),
            skipped("qux", "0.1.0", "a local package"),
        ]);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "ok": false,
                "verified": 1,
                "failed": 1,
                "skipped": 2,
                "packages": [
                    {"name": "foo", "version": "1.0.0", "result": "verified", "role": "ns-foo"},
                    {"name": "bar", "version": "2.0.0", "result": "failed", "detail": "no"},
                    {"name": "baz", "version": "0.1.0", "result": "skipped",
                     "detail": "a local package"},
                    {"name": "qux", "version": "0.1.0", "result": "skipped",
                     "detail": "a local package"},
                ],
            })
        );
    }

    #[test]
    fn a_lockfile_parses_into_its_packages() {
        let lock = parse_lockfile(
            r#"# This file is automatically @generated by Cargo.
version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = [
 "serde",
]

[[package]]
name = "serde"
version = "1.0.210"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "c8e3592472072e6e22e0a54d5904d9febf8508f65fb8552499a1abc7d1078c3a"

[[package]]
name = "vetted"
version = "0.3.0"
source = "git+https://github.com/o/vetted?branch=main#0123abcd"
"#,
        )
        .unwrap();
        let package = |name: &str, version: &str, source: Option<&str>, checksum: Option<&str>| {
            LockedPackage {
                name: name.to_owned(),
                version: version.to_owned(),
                source: source.map(str::to_owned),
                checksum: checksum.map(str::to_owned),
            }
        };
        assert_eq!(
            lock.package,
            [
                package("app", "0.1.0", None, None),
                package(
                    "serde",
                    "1.0.210",
                    Some(CRATES_IO_SOURCES[0]),
                    Some("c8e3592472072e6e22e0a54d5904d9febf8508f65fb8552499a1abc7d1078c3a")
                ),
                package(
                    "vetted",
                    "0.3.0",
                    Some("git+https://github.com/o/vetted?branch=main#0123abcd"),
                    None
                ),
            ]
        );
        // A lockfile without packages has none.
        assert_eq!(parse_lockfile("version = 4\n").unwrap().package, []);
    }

    #[test]
    fn a_lockfile_package_with_fields_of_the_wrong_type_is_refused() {
        for package in [
            "name = \"foo\"\nversion = 1\n",
            "name = \"foo\"\n",
            "version = \"1.0.0\"\n",
            "name = \"foo\"\nversion = \"1.0.0\"\nchecksum = false\n",
            "name = \"foo\"\nversion = \"1.0.0\"\nsource = [\"a\"]\n",
        ] {
            let text = format!("version = 4\n\n[[package]]\n{package}");
            assert!(parse_lockfile(&text).is_err(), "{text}");
        }
        assert!(parse_lockfile("package = \"foo\"\n").is_err());
    }

    #[test]
    fn a_vendored_crate_matching_its_signed_tarball_verifies() {
        let tarball = build_raw_tarball(&[
            ("foo-1.0.0/", RawEntry::Directory),
            ("foo-1.0.0/Cargo.toml", RawEntry::File(MANIFEST.as_bytes())),
            ("foo-1.0.0/src/lib.rs", RawEntry::File(GOOD_LIB)),
        ]);
        assert_eq!(check(GOOD_LIB, &tarball), Ok(()));
        let error = check(EVIL_LIB, &tarball).unwrap_err();
        assert_eq!(error, "src/lib.rs differs from the signed tarball");
    }

    #[test]
    fn a_signed_tarball_with_a_path_escaping_its_directory_is_refused() {
        let tarball = build_raw_tarball(&[
            ("foo-1.0.0/Cargo.toml", RawEntry::File(MANIFEST.as_bytes())),
            ("foo-1.0.0/src/lib.rs", RawEntry::File(GOOD_LIB)),
            (
                "x/../../etc/passwd",
                RawEntry::File(b"root::0:0::/:/bin/sh\n"),
            ),
        ]);
        let error = check(GOOD_LIB, &tarball).unwrap_err();
        assert_eq!(
            error,
            "cannot read the signed tarball: foo-1.0.0.crate: entry `x/../../etc/passwd` has \
             an unsafe path (`..` component); a .crate holds only relative paths under \
             NAME-VERSION/"
        );
    }

    #[test]
    fn a_signed_tarball_with_a_second_top_level_directory_is_refused() {
        // bar-1.0.0/src/lib.rs is also "src/lib.rs" once the first component is cut off:
        // a reader that did only that would compare the vendored file with this one.
        let tarball = build_raw_tarball(&[
            ("foo-1.0.0/Cargo.toml", RawEntry::File(MANIFEST.as_bytes())),
            ("foo-1.0.0/src/lib.rs", RawEntry::File(GOOD_LIB)),
            ("bar-1.0.0/src/lib.rs", RawEntry::File(EVIL_LIB)),
        ]);
        let error = check(EVIL_LIB, &tarball).unwrap_err();
        assert!(
            error.starts_with(
                "cannot read the signed tarball: foo-1.0.0.crate: entry \
                 `bar-1.0.0/src/lib.rs` is not under the top-level directory `foo-1.0.0/`"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_signed_tarball_with_a_link_is_refused() {
        let tarball = build_raw_tarball(&[
            ("foo-1.0.0/Cargo.toml", RawEntry::File(MANIFEST.as_bytes())),
            ("foo-1.0.0/src/lib.rs", RawEntry::Symlink("/etc/passwd")),
        ]);
        let error = check(GOOD_LIB, &tarball).unwrap_err();
        assert!(
            error.starts_with(
                "cannot read the signed tarball: foo-1.0.0.crate: entry `foo-1.0.0/src/lib.rs` \
                 is a symbolic link to `/etc/passwd`"
            ),
            "{error}"
        );
    }

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
