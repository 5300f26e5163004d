//! `release`: add and remove release tarballs with their index entries, yank and unyank
//! them with the owners' keys, and attest them as their author or a reviewer.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Error};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use tuf_core::attestation::{Attestation, AttestationKind};
use tuf_core::client::{Fetcher, HttpFetcher};
use tuf_core::crate_archive::{
    read_crate_files, read_crate_release, release_index_entry, ArchiveLimits,
};
use tuf_core::index_entry::{sparse_index_path, IndexEntry};
use tuf_core::repository::Repository;
use tuf_core::Signer;

use crate::output::{emit, Bar};
use crate::secrets::{load_public_key, load_signer, read_capped, KeySource, PassphraseSource};
use crate::GlobalArgs;

/// Largest index file read from a registry.
const MAX_REGISTRY_INDEX_FILE: u64 = 16 * 1024 * 1024;
/// Largest detached attestation file read.
const MAX_ATTESTATION_FILE: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// The author vouches for the release.
    Release,
    /// A reviewer vouches for it.
    Review,
}

impl From<Kind> for AttestationKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Release => AttestationKind::Release,
            Kind::Review => AttestationKind::Review,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Add `.crate` tarballs with their index entries; name and version come from each
    /// one's Cargo.toml and must match its file name.
    ///
    /// The entry is the line of the registry that will serve the release (`--index`):
    /// its cksum must be the tarball's sha256 and its name and version the release's.
    /// Without `--index`, it is computed from the tarball's Cargo.toml as `cargo
    /// publish` and the public registry would (for a registry that is static files).
    Add {
        /// `.crate` files.
        #[arg(required = true)]
        tarballs: Vec<PathBuf>,
        /// The sparse index of the registry serving these releases (e.g.
        /// https://index.crates.io/): take each entry from there.
        #[arg(long, value_name = "URL")]
        index: Option<String>,
        /// Also attest each release as its author with this private key (`release`): a
        /// PEM file or a `pkcs11:` URI.
        #[arg(long, value_name = "KEY")]
        attest_key: Option<KeySource>,
        /// The attesting developer's label [default: the token key's label, or the
        /// label of the `.pub.json` beside the key file, else its file name].
        #[arg(long, value_name = "LABEL")]
        label: Option<String>,
        /// Also run the release scanner on each against the newest earlier version
        /// signed here (its stored tarball, or with `--index` upstream's), and record the
        /// score and flags in its signed target (spec/scanner.md).
        #[arg(long)]
        scan: bool,
    },
    /// Sign releases an upstream sparse registry serves (the public registry by
    /// default), without keeping their tarballs: a vetted mirror. Each tarball is
    /// fetched and checked (a release of that name and version, whose sha256 is the
    /// index line's cksum); its length, sha256, sha512 and index entry are staged.
    /// Resumable: a killed import continues where it stopped when run again.
    Import(super::import::ImportArgs),
    /// Remove a release (and its line from the crate's signed index file).
    Remove {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
    },
    /// Yank a release: the owners' signed mark, which no registry can undo. The role
    /// that signs the crate is staged for its keys to sign.
    Yank {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
    },
    /// Undo the owners' yank of a release.
    Unyank {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
    },
    /// Attest a release with your own key: as its author (`--kind release`) or, by
    /// default, as a reviewer. The statement covers the release's signed length,
    /// hashes and index entry. With `--out`, write the attestation to a file instead
    /// (on a reviewer's machine holding a copy of the repository) for `release
    /// import-attestation` where the repository is.
    Attest {
        /// Crate name.
        #[arg(required_unless_present = "lockfile", requires = "version")]
        name: Option<String>,
        /// Version.
        #[arg(conflicts_with = "lockfile")]
        version: Option<String>,
        /// Instead of one release, every registry package of this lockfile (at its
        /// locked version): each must be signed here, or nothing is attested.
        #[arg(long, value_name = "Cargo.lock", conflicts_with = "out")]
        lockfile: Option<PathBuf>,
        /// Your private key (a PEM file or a `pkcs11:` URI).
        #[arg(long, value_name = "KEY")]
        key: KeySource,
        /// What you vouch for.
        #[arg(long, value_enum, default_value = "review")]
        kind: Kind,
        /// Your label [default: the label of the `.pub.json` beside the key, else its
        /// file name].
        #[arg(long, value_name = "LABEL")]
        label: Option<String>,
        /// Write the attestation here instead of adding it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Add attestations written by `release attest --out`.
    ImportAttestation {
        /// Attestation files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Serialize)]
struct Added {
    name: String,
    version: String,
    path: String,
    role: String,
    unchanged: bool,
    /// Where the index entry came from: `registry` or `manifest`.
    entry: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    attested_by: Option<String>,
    /// With `--scan`: the release scanner's score, recorded in the signed target.
    #[serde(skip_serializing_if = "Option::is_none")]
    scan_score: Option<u32>,
}

/// The label to attest with: given, else the label the key carries (a token key's
/// object label), else the `.pub.json` beside the key file, else the file name.
fn attesting_label(
    key: &KeySource,
    signer: &dyn Signer,
    given: Option<&str>,
) -> Result<String, Error> {
    if let Some(label) = given {
        tuf_core::keys::validate_label(label).map_err(|e| Error::msg(format!("--label: {e}")))?;
        return Ok(label.to_owned());
    }
    if let Some(label) = signer.public_key().label() {
        return Ok(label.to_owned());
    }
    let key = match key {
        KeySource::File(path) => path.as_path(),
        KeySource::Pkcs11(uri) => {
            return Err(Error::msg(format!(
                "{uri}: the key's object label is not usable as a label; give one with --label"
            )))
        }
    };
    let stem = key
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.trim_end_matches(".pem").to_owned())
        .unwrap_or_else(|| "key".to_owned());
    let public = key.with_file_name(format!("{stem}.pub.json"));
    if public.exists() {
        if let Some(label) = load_public_key(&public)?.label() {
            return Ok(label.to_owned());
        }
    }
    Ok(stem)
}

/// The registry's line of `name` `version` in the sparse index at `index`.
fn registry_entry(
    fetcher: &HttpFetcher,
    index: &str,
    name: &str,
    version: &str,
) -> Result<IndexEntry, Error> {
    let url = format!(
        "{}/{}",
        index.trim_end_matches('/'),
        sparse_index_path(name)
    );
    let bytes = fetcher
        .fetch(&url, MAX_REGISTRY_INDEX_FILE)
        .with_context(|| format!("fetching the index file of {name}"))?;
    for line in bytes.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(entry) = IndexEntry::parse_line(line) else {
            continue;
        };
        if entry.vers.eq_ignore_ascii_case(version) {
            return Ok(entry);
        }
    }
    Err(Error::msg(format!(
        "{url} has no line for {name} {version}: publish it to the registry first, or leave \
         out --index to compute its entry from its Cargo.toml"
    )))
}

/// `release add --scan`: the scanner's report on `name` `version` (`tarball`) against
/// the newest earlier version signed here: its stored tarball, else upstream's through
/// `upstream` (a fetcher and the sparse index), checked against the signed entry's cksum.
fn scan_against_previous(
    repo: &mut Repository,
    upstream: Option<(&HttpFetcher, &str)>,
    name: &str,
    version: &str,
    tarball: &[u8],
    limits: &ArchiveLimits,
) -> Result<tuf_core::scan::ScanReport, Error> {
    let new = read_crate_files(&format!("{name}-{version}.crate"), tarball, limits)?;
    let (index, _) = repo.crate_index(name)?;
    let previous =
        super::upstream::newest_earlier(version, index.lines.iter().map(|l| &l.entry)).cloned();
    let old = match previous {
        None => None,
        Some(entry) => {
            let bytes = match repo.stored_release(&entry.name, &entry.vers)? {
                Some(bytes) => bytes,
                None => {
                    let Some((fetcher, index)) = upstream else {
                        return Err(Error::msg(format!(
                            "--scan: the tarball of {} {} (the version to compare with) is not \
                             stored here: give --index to fetch it from upstream",
                            entry.name, entry.vers
                        )));
                    };
                    let index = format!("{}/", index.trim_end_matches('/'));
                    let fetch = |url: &str, max: u64| {
                        super::upstream::fetch_with_retries(fetcher, url, max, 3)
                    };
                    let dl = super::upstream::registry_dl(&fetch, &index)?;
                    super::upstream::fetch_checked_tarball(
                        &fetch,
                        &dl,
                        &entry,
                        limits.max_tarball_bytes,
                    )
                    .map_err(Error::msg)?
                }
            };
            Some(read_crate_files(
                &format!("{}-{}.crate", entry.name, entry.vers),
                &bytes,
                limits,
            )?)
        }
    };
    Ok(tuf_core::scan::scan(old.as_ref(), &new))
}

fn attest(
    repo: &mut Repository,
    name: &str,
    version: &str,
    kind: AttestationKind,
    signer: &dyn Signer,
    label: &str,
) -> Result<Attestation, Error> {
    let statement = repo
        .release_statement(name, version, kind, label, chrono::Utc::now())
        .with_context(|| format!("attesting {name} {version}"))?;
    Attestation::sign(statement, signer).with_context(|| format!("attesting {name} {version}"))
}

/// `release`.
pub fn release(global: &GlobalArgs, command: ReleaseCommand) -> Result<ExitCode, Error> {
    let mut repo = super::open(global)?;
    let now = chrono::Utc::now();
    match command {
        ReleaseCommand::Add {
            tarballs,
            index,
            attest_key,
            label,
            scan,
        } => {
            let limits = ArchiveLimits::default();
            let fetcher = match &index {
                Some(_) => Some(
                    HttpFetcher::new(
                        std::time::Duration::from_secs(10),
                        std::time::Duration::from_secs(60),
                    )
                    .context("cannot build the HTTP client")?,
                ),
                None => None,
            };
            let attester = match &attest_key {
                Some(source) => {
                    let signer = load_signer(source, &PassphraseSource::from_args(global))?;
                    let label = attesting_label(source, signer.as_ref(), label.as_deref())?;
                    Some((signer, label))
                }
                None => None,
            };
            let bar = Bar::new("adding");
            tuf_core::repository::Progress::set_length(&bar, tarballs.len() as u64);
            let mut added = Vec::new();
            for path in &tarballs {
                let release = read_crate_release(path, &limits)?;
                let file_name = format!("{}-{}.crate", release.name, release.version);
                let (entry, source) = match (&fetcher, &index) {
                    (Some(fetcher), Some(index)) => (
                        registry_entry(fetcher, index, &release.name, &release.version)?,
                        "registry",
                    ),
                    _ => (
                        release_index_entry(&file_name, &release.bytes, &limits).with_context(
                            || format!("computing the index entry of {}", path.display()),
                        )?,
                        "manifest",
                    ),
                };
                let outcome = repo
                    .add_release(&release.name, &release.version, &release.bytes, entry, now)
                    .with_context(|| format!("adding {}", path.display()))?;
                let mut attested_by = None;
                if let Some((key, label)) = &attester {
                    let attestation = attest(
                        &mut repo,
                        &release.name,
                        &release.version,
                        AttestationKind::Release,
                        key.as_ref(),
                        label,
                    )?;
                    repo.add_attestation(attestation, now)?;
                    attested_by = Some(label.clone());
                }
                let mut scan_score = None;
                if scan {
                    let report = scan_against_previous(
                        &mut repo,
                        fetcher.as_ref().zip(index.as_deref()),
                        &release.name,
                        &release.version,
                        &release.bytes,
                        &limits,
                    )?;
                    repo.record_scan(
                        &release.name,
                        &release.version,
                        &tuf_core::scan::recorded(&report),
                        now,
                    )?;
                    scan_score = Some(report.score);
                }
                tracing::info!(path = %outcome.path, role = %outcome.role, "release staged");
                added.push(Added {
                    name: release.name,
                    version: release.version,
                    path: outcome.path,
                    role: outcome.role,
                    unchanged: outcome.unchanged && attested_by.is_none() && scan_score.is_none(),
                    entry: source,
                    attested_by,
                    scan_score,
                });
                bar.inc();
            }
            repo.save()?;
            bar.finish();
            super::warn_dropped(&repo);
            emit(global, &serde_json::json!({ "added": added }), || {
                for a in &added {
                    let attested = a
                        .attested_by
                        .as_ref()
                        .map(|l| format!(", attested by {l}"))
                        .unwrap_or_default();
                    let attested = match a.scan_score {
                        Some(score) => format!("{attested}, scanner score {score}"),
                        None => attested,
                    };
                    if a.unchanged {
                        crate::say!(
                            "unchanged: {} {} (already listed by {})",
                            a.name,
                            a.version,
                            a.role
                        );
                    } else {
                        crate::say!(
                            "staged: {} {} -> {} ({}; index entry from the {}{attested})",
                            a.name,
                            a.version,
                            a.role,
                            a.path,
                            a.entry
                        );
                    }
                }
            });
        }
        ReleaseCommand::Import(args) => return super::import::import(global, &mut repo, args),
        ReleaseCommand::Remove { name, version } => {
            let path = repo
                .remove_release(&name, &version, now)
                .with_context(|| format!("removing {name} {version}"))?;
            repo.save()?;
            super::warn_dropped(&repo);
            emit(global, &serde_json::json!({ "removed": path }), || {
                crate::say!("staged: removed {path}");
            });
        }
        ReleaseCommand::Yank { name, version } => {
            set_yanked(global, &mut repo, &name, &version, true)?
        }
        ReleaseCommand::Unyank { name, version } => {
            set_yanked(global, &mut repo, &name, &version, false)?
        }
        ReleaseCommand::Attest {
            lockfile: Some(lockfile),
            key,
            kind,
            label,
            ..
        } => attest_lockfile(global, &mut repo, &lockfile, &key, kind, label.as_deref())?,
        ReleaseCommand::Attest {
            name: Some(name),
            version: Some(version),
            key,
            kind,
            label,
            out,
            ..
        } => {
            attest_command(
                global,
                &mut repo,
                &name,
                &version,
                &key,
                kind,
                label.as_deref(),
                out.as_deref(),
            )?;
        }
        ReleaseCommand::Attest { .. } => {
            return Err(Error::msg("give NAME VERSION, or --lockfile Cargo.lock"));
        }
        ReleaseCommand::ImportAttestation { files } => {
            import_attestations(global, &mut repo, &files)?
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `release yank` and `release unyank`.
fn set_yanked(
    global: &GlobalArgs,
    repo: &mut Repository,
    name: &str,
    version: &str,
    yank: bool,
) -> Result<(), Error> {
    let outcome = repo
        .set_yanked(name, version, yank, chrono::Utc::now())
        .with_context(|| {
            format!(
                "{} {name} {version}",
                if yank { "yanking" } else { "unyanking" }
            )
        })?;
    repo.save()?;
    super::warn_dropped(repo);
    emit(global, &outcome, || {
        let state = if outcome.yanked {
            "yanked"
        } else {
            "not yanked"
        };
        if outcome.unchanged {
            crate::say!("unchanged: {name} {version} is already {state}");
        } else {
            crate::say!(
                "staged: {name} {version} {state} in {} (its keys sign it next)",
                outcome.role
            );
        }
    });
    Ok(())
}

/// `release attest`.
#[allow(clippy::too_many_arguments)]
fn attest_command(
    global: &GlobalArgs,
    repo: &mut Repository,
    name: &str,
    version: &str,
    key: &KeySource,
    kind: Kind,
    label: Option<&str>,
    out: Option<&Path>,
) -> Result<(), Error> {
    let now = chrono::Utc::now();
    let signer = load_signer(key, &PassphraseSource::from_args(global))?;
    let label = attesting_label(key, signer.as_ref(), label)?;
    let attestation = attest(repo, name, version, kind.into(), signer.as_ref(), &label)?;
    match out {
        Some(out) => {
            let mut bytes = serde_json::to_vec_pretty(&attestation.to_value())
                .context("encoding the attestation")?;
            bytes.push(b'\n');
            tuf_core::fs::write_atomic_readable(out, &bytes)
                .with_context(|| format!("writing {}", out.display()))?;
            let kind = attestation.statement.kind.as_str();
            emit(
                global,
                &serde_json::json!({ "written": out, "name": name, "version": version,
                    "kind": kind, "label": label }),
                || {
                    crate::say!(
                        "wrote {} ({kind} of {name} {version} by {label})",
                        out.display()
                    )
                },
            );
        }
        None => {
            let added = repo.add_attestation(attestation, now)?;
            repo.save()?;
            emit(global, &added, || describe_attestation(&added));
        }
    }
    Ok(())
}

/// `release attest --lockfile`: one attestation per registry package of the lockfile,
/// all or none.
fn attest_lockfile(
    global: &GlobalArgs,
    repo: &mut Repository,
    lockfile: &Path,
    key: &KeySource,
    kind: Kind,
    label: Option<&str>,
) -> Result<(), Error> {
    let now = chrono::Utc::now();
    let packages = super::import::lockfile_registry_packages(lockfile)?;
    let signer = load_signer(key, &PassphraseSource::from_args(global))?;
    let label = attesting_label(key, signer.as_ref(), label)?;
    let mut attestations = Vec::with_capacity(packages.len());
    let mut refused = Vec::new();
    for (name, version) in &packages {
        match attest(repo, name, version, kind.into(), signer.as_ref(), &label) {
            Ok(attestation) => attestations.push(attestation),
            Err(e) => refused.push(format!("{e:#}")),
        }
    }
    if !refused.is_empty() {
        return Err(Error::msg(format!(
            "{} of the {} registry packages of {} cannot be attested, so none is: {}",
            refused.len(),
            packages.len(),
            lockfile.display(),
            refused.join("; ")
        )));
    }
    let mut added = Vec::with_capacity(attestations.len());
    for attestation in attestations {
        added.push(repo.add_attestation(attestation, now)?);
    }
    repo.save()?;
    emit(global, &serde_json::json!({ "attested": added }), || {
        added.iter().for_each(describe_attestation);
    });
    Ok(())
}

/// `release import-attestation`.
fn import_attestations(
    global: &GlobalArgs,
    repo: &mut Repository,
    files: &[PathBuf],
) -> Result<(), Error> {
    let now = chrono::Utc::now();
    let mut imported = Vec::new();
    for file in files {
        let bytes = read_capped(file, MAX_ATTESTATION_FILE)?;
        let attestation = Attestation::from_bytes(&bytes)
            .with_context(|| format!("{}: not an attestation", file.display()))?;
        let added = repo
            .add_attestation(attestation, now)
            .with_context(|| format!("importing {}", file.display()))?;
        imported.push(added);
    }
    repo.save()?;
    emit(global, &serde_json::json!({ "imported": imported }), || {
        imported.iter().for_each(describe_attestation);
    });
    Ok(())
}

fn describe_attestation(added: &tuf_core::repository::AttestationAdded) {
    crate::say!(
        "staged: {} attestation of {} {} by {} ({}){} in {} (its keys sign it next)",
        added.kind,
        added.name,
        added.version,
        added.label,
        added.keyid.get(..12).unwrap_or(&added.keyid),
        if added.replaced {
            ", replacing theirs"
        } else {
            ""
        },
        added.role
    );
}
