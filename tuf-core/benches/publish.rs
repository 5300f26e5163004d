//! What one release costs in a large registry: a repository of N releases in 2^B
//! fallback bins is built and published once, then one more release is added and
//! published, and the whole repository is verified as a client would.
//!
//! `cargo bench -p tuf-core --bench publish -- [RELEASES] [BIN_BITS] [DIR]`
//! (defaults: 100000 releases, 12 bits, a temporary directory under /dev/shm when it
//! exists, so that the numbers measure the editor rather than the disk's fsync).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Instant;

use chrono::Utc;
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

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let releases: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let bits: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(12);
    let base = args.get(2).map(Into::into).unwrap_or_else(|| {
        if Path::new("/dev/shm").is_dir() {
            "/dev/shm".into()
        } else {
            std::env::temp_dir()
        }
    });
    let temp = tempfile::tempdir_in(base).unwrap();
    let dir = temp.path().join("repo");
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
    for i in 0..releases {
        let body = format!("tarball of crate{i} 1.0.0");
        repo.add_release(
            &format!("crate{i}"),
            "1.0.0",
            body.as_bytes(),
            tuf_core::index_entry::IndexEntry::without_dependencies(
                &format!("crate{i}"),
                "1.0.0",
                body.as_bytes(),
            ),
            now,
        )
        .unwrap();
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
    repo.add_release(
        "one-more",
        "1.0.0",
        b"one more",
        tuf_core::index_entry::IndexEntry::without_dependencies("one-more", "1.0.0", b"one more"),
        now,
    )
    .unwrap();
    repo.save().unwrap();
    let added = started.elapsed();
    let started = Instant::now();
    let report = repo.publish(&[&online], now, &()).unwrap();
    let one_publish = started.elapsed();
    let generation = dir
        .join("published/.generations")
        .join(report.timestamp_version.to_string());
    let mut written = 0;
    for entry in std::fs::read_dir(&generation).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry.metadata().unwrap();
        // Files new in this generation (hard links from the previous one have nlink > 1).
        #[cfg(unix)]
        let fresh = {
            use std::os::unix::fs::MetadataExt;
            meta.nlink() == 1
        };
        #[cfg(not(unix))]
        let fresh = true;
        if fresh {
            written += meta.len();
            eprintln!("  written: {name} ({} bytes)", meta.len());
        }
    }

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

    println!("releases: {releases}, bins: {}", 1u64 << bits);
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
    println!(
        "verify all ({} roles, {} targets) as a client: {verified:.2?}",
        verify.roles_verified, verify.targets_checked
    );
}
