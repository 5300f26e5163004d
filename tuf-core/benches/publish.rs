//! What one release costs in a large registry: a repository of N releases in 2^B
//! fallback bins is built and published once, then one more release is added and
//! published, and the whole repository is verified as a client would.
//!
//! `cargo bench -p tuf-core --bench publish -- [RELEASES] [BIN_BITS] [VERSIONS] [DIR]`
//! (defaults: 100000 releases, 12 bits, 1 version per crate, a temporary directory under
//! /dev/shm when it exists, so that the numbers measure the editor rather than the
//! disk's fsync). With VERSIONS above 1, release `i` is version `1.0.(i % VERSIONS)` of
//! crate `i / VERSIONS`, and the one more release is a new version of crate 0.
//! `PUBLISH_BENCH_REPEAT=N` then adds and publishes N more releases one at a time and
//! prints the median, min and max of those publishes. `PUBLISH_BENCH_UPSTREAM=1` stages
//! the N releases metadata-only (`Repository::add_upstream_releases`, as a vetted mirror's
//! `release import` does): no tarball files, so 1,000,000 releases fit `/dev/shm`.
//! `PUBLISH_BENCH_KEEP=1` keeps the repository and prints its path, for timing
//! `tuf-signer -C PATH verify` on it (BENCHMARKS.md); remove it by hand afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Instant;

use chrono::Utc;
use tuf_core::client::{DirectoryFetcher, FetchError, Fetcher, Updater, UpdaterConfig};
use tuf_core::repository::{
    audit_repository, AuditOptions, DirectorySource, InitOptions, Repository, RoleKeySpec, Settings,
};
use tuf_core::{KeyAlgorithm, PrivateKey, Signer};

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_file() {
            total += meta.len();
        }
    }
    total
}

fn dir_bytes_recursive(dir: &Path) -> u64 {
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            total += dir_bytes_recursive(&entry.path());
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    total
}

/// Stages `name` `version` with a small tarball and its computed index entry.
fn add_release(
    repo: &mut tuf_core::repository::Repository,
    name: &str,
    version: &str,
    now: chrono::DateTime<Utc>,
) {
    let body = format!("tarball of {name} {version}");
    repo.add_release(
        name,
        version,
        body.as_bytes(),
        tuf_core::index_entry::IndexEntry::without_dependencies(name, version, body.as_bytes()),
        now,
    )
    .unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let releases: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let bits: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(12);
    let versions: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1).max(1);
    let base = args.get(3).map(Into::into).unwrap_or_else(|| {
        if Path::new("/dev/shm").is_dir() {
            "/dev/shm".into()
        } else {
            std::env::temp_dir()
        }
    });
    let temp = tempfile::tempdir_in(base).unwrap();
    let dir = temp.path().join("repo");
    let keep = std::env::var("PUBLISH_BENCH_KEEP").is_ok_and(|v| v == "1");
    let root = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let targets = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let online = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let spec = |k: &PrivateKey| RoleKeySpec {
        keys: vec![k.public_key().clone()],
        threshold: 1,
    };
    let now = Utc::now();
    let mut repo = Repository::init(
        &dir,
        &InitOptions {
            root: spec(&root),
            targets: spec(&targets),
            snapshot: spec(&online),
            timestamp: spec(&online),
            fallback: spec(&online),
            settings: Settings {
                fallback_bin_bits: bits,
                ..Settings::default()
            },
        },
        now,
    )
    .unwrap();
    repo.sign("root", &root).unwrap();
    repo.sign("targets", &targets).unwrap();
    repo.publish(&[&online], now, &()).unwrap();

    let started = Instant::now();
    let release = |i: usize| {
        (
            format!("crate{}", i / versions),
            format!("1.0.{}", i % versions),
        )
    };
    // PUBLISH_BENCH_UPSTREAM=1: the releases are metadata-only (a vetted mirror's, whose
    // tarballs stay upstream: no tarball file, so a million of them fit the inodes), staged
    // in batches as `release import` stages them.
    let upstream = std::env::var("PUBLISH_BENCH_UPSTREAM").is_ok_and(|v| v == "1");
    if upstream {
        let mut batch = Vec::new();
        for i in 0..releases {
            let (name, version) = release(i);
            let body = format!("tarball of {name} {version}");
            let entry = tuf_core::index_entry::IndexEntry::without_dependencies(
                &name,
                &version,
                body.as_bytes(),
            );
            batch.push(tuf_core::repository::UpstreamRelease::new(
                &name,
                &version,
                body.as_bytes(),
                entry,
            ));
            if batch.len() == 10_000 || i + 1 == releases {
                for outcome in repo
                    .add_upstream_releases(std::mem::take(&mut batch), now)
                    .unwrap()
                {
                    outcome.unwrap();
                }
            }
        }
    } else {
        for i in 0..releases {
            let (name, version) = release(i);
            add_release(&mut repo, &name, &version, now);
        }
    }
    repo.save().unwrap();
    let staged = started.elapsed();
    let started = Instant::now();
    repo.publish(&[&online], now, &()).unwrap();
    let bulk_publish = started.elapsed();
    let metadata = dir.join("published/metadata");
    let before = dir_bytes(&metadata);

    // One more release: one bin, snapshot and timestamp.
    let started = Instant::now();
    let (one_name, one_version) = if versions > 1 {
        ("crate0".to_owned(), "2.0.0".to_owned())
    } else {
        ("one-more".to_owned(), "1.0.0".to_owned())
    };
    repo.add_release(
        &one_name,
        &one_version,
        b"one more",
        tuf_core::index_entry::IndexEntry::without_dependencies(
            &one_name,
            &one_version,
            b"one more",
        ),
        now,
    )
    .unwrap();
    repo.save().unwrap();
    let added = started.elapsed();
    let started = Instant::now();
    let report = repo.publish(&[&online], now, &()).unwrap();
    let one_publish = started.elapsed();
    for role in &report.roles {
        eprintln!("  written: {} v{}", role.role, role.version);
    }
    let written = report.bytes_written;
    let new_client = new_client_bytes(&dir.join("published"), &one_name, &one_version, now);

    // PUBLISH_BENCH_REPEAT=N: N more releases, each added and published on its own (a new
    // crate, or with VERSIONS above 1 a new version of crate 1), for a median that one
    // noisy publish cannot give.
    let repeat: usize = std::env::var("PUBLISH_BENCH_REPEAT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut repeated = Vec::with_capacity(repeat);
    let mut repeated_bytes = Vec::with_capacity(repeat);
    for k in 0..repeat {
        let (name, version) = if versions > 1 {
            ("crate1".to_owned(), format!("3.0.{k}"))
        } else {
            (format!("repeated{k}"), "1.0.0".to_owned())
        };
        add_release(&mut repo, &name, &version, now);
        repo.save().unwrap();
        let started = Instant::now();
        let report = publish_one(&mut repo, &online, now);
        repeated.push(started.elapsed());
        repeated_bytes.push(report.bytes_written);
    }
    repeated.sort();
    repeated_bytes.sort_unstable();

    let started = Instant::now();
    let first_root = std::fs::read(metadata.join("1.root.json")).unwrap();
    let verify = audit_repository(
        &DirectorySource::new(&metadata),
        &first_root,
        &AuditOptions::new(now),
        &(),
    );
    let verified = started.elapsed();
    assert!(verify.is_ok(), "{:?}", verify.problems);

    let targets_bytes = dir_bytes_recursive(&dir.join("published/targets"));
    println!(
        "releases: {releases} ({versions} per crate{}), bins: {}",
        if upstream { ", metadata-only" } else { "" },
        1u64 << bits
    );
    println!(
        "metadata per release: {:.1} bytes; target files (tarballs and index files): {targets_bytes} bytes",
        before as f64 / releases.max(1) as f64
    );
    println!("stage {releases} releases: {staged:.2?}");
    println!(
        "publish them: {bulk_publish:.2?} ({} MB of metadata)",
        before / 1_000_000
    );
    println!("add one release: {added:.2?}");
    println!(
        "publish it: {one_publish:.2?}, {} metadata files written, {written} bytes",
        report.files_written
    );
    if let (Some(min), Some(median), Some(max)) = (
        repeated.first(),
        repeated.get(repeated.len() / 2),
        repeated.last(),
    ) {
        println!(
            "publish one, {} more times: median {median:.2?}, min {min:.2?}, max {max:.2?}",
            repeated.len()
        );
        if let (Some(median), Some(max)) = (
            repeated_bytes.get(repeated_bytes.len() / 2),
            repeated_bytes.last(),
        ) {
            println!("  bytes written: median {median}, max {max}");
        }
    }
    println!(
        "a new client verifying the one more release (tarball and index file): {} metadata bytes in {} files, {:?}",
        new_client.bytes, new_client.files, new_client.largest
    );
    println!(
        "verify all ({} roles, {} targets) as a client: {verified:.2?}",
        verify.roles_verified, verify.targets_checked
    );
    if keep {
        let kept = temp.keep();
        println!("kept: {}", kept.join("repo").display());
    }
}

/// One publish of the repeated ones, in its own function so that a profiler can count it
/// alone: `valgrind --tool=callgrind --toggle-collect='*publish_one*'`.
#[inline(never)]
fn publish_one(
    repo: &mut Repository,
    online: &PrivateKey,
    now: chrono::DateTime<Utc>,
) -> tuf_core::repository::PublishReport {
    repo.publish(&[online as &dyn Signer], now, &()).unwrap()
}

/// A fetcher that counts the metadata it hands out.
struct CountingFetcher {
    inner: DirectoryFetcher,
    fetched: std::cell::RefCell<Vec<(String, u64)>>,
}

impl Fetcher for CountingFetcher {
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        let bytes = self.inner.fetch(url, max_length)?;
        if url.ends_with(".json") {
            let name = url.rsplit('/').next().unwrap_or(url).to_owned();
            self.fetched.borrow_mut().push((name, bytes.len() as u64));
        }
        Ok(bytes)
    }
}

/// What a client with only the first root fetches to verify one release: its tarball's
/// and its index file's target info, as cargo needs both.
struct NewClient {
    bytes: u64,
    files: usize,
    largest: Vec<(String, u64)>,
}

fn new_client_bytes(
    published: &Path,
    name: &str,
    version: &str,
    now: chrono::DateTime<Utc>,
) -> NewClient {
    let client = tempfile::tempdir().unwrap();
    std::fs::copy(
        published.join("metadata/1.root.json"),
        client.path().join("root.json"),
    )
    .unwrap();
    let published = std::fs::canonicalize(published).unwrap();
    let inner = DirectoryFetcher::new(&published);
    let config = UpdaterConfig::new(client.path(), inner.base_url("metadata"));
    let fetcher = CountingFetcher {
        inner,
        fetched: Default::default(),
    };
    let mut updater = Updater::new(config, &fetcher, now).unwrap();
    for path in [
        tuf_core::layout::crate_target_path(name, version).unwrap(),
        tuf_core::layout::crate_index_path(name).unwrap(),
    ] {
        updater.get_target_info(&path).unwrap().expect("listed");
    }
    let mut fetched = fetcher.fetched.into_inner();
    fetched.sort_by_key(|(_, len)| std::cmp::Reverse(*len));
    NewClient {
        bytes: fetched.iter().map(|(_, len)| len).sum(),
        files: fetched.len(),
        largest: fetched.into_iter().take(4).collect(),
    }
}
