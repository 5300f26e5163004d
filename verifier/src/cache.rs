//! The content-addressed cache of verified tarballs: `<dir>/<sha256 hex>`, bounded by a
//! byte budget with least-recently-used eviction.
//!
//! Only bytes that matched a signed target are written, atomically (a temporary file in
//! the same directory, fsync, rename). The directory is not trusted: a cached file is
//! checked again against the signed length and sha256 each time it is read, so a damaged
//! or altered file is dropped and fetched again, never served.
//!
//! The LRU order lives in memory. At start it is rebuilt from the files' modification
//! times (oldest first), so after a restart the least recently *written* go first.

use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use lru::LruCache;
use sha2::{Digest, Sha256};

use crate::signed_target::SignedTarget;

/// What the cache holds and may hold, for `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CacheUsage {
    /// Tarballs cached.
    pub tarballs: u64,
    /// Their total size.
    pub bytes: u64,
    /// The most bytes it keeps (`tarball_cache_size`).
    pub budget_bytes: u64,
    /// Tarballs removed to stay within the budget since start.
    pub evicted: u64,
}

struct Entries {
    /// sha256 → size, least recently used first.
    order: LruCache<String, u64>,
    bytes: u64,
    evicted: u64,
}

/// The tarball cache.
#[derive(Clone)]
pub struct TarballCache {
    dir: PathBuf,
    budget: u64,
    entries: Arc<Mutex<Entries>>,
}

fn is_cache_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

impl TarballCache {
    /// A cache in `dir` (created if missing) keeping at most `budget` bytes; leftover
    /// temporary files of an interrupted write are removed, and files beyond the budget
    /// (a smaller budget than last time) are evicted. Blocking.
    pub fn open(dir: PathBuf, budget: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            } else if is_cache_name(&name) {
                if let Ok(meta) = entry.metadata() {
                    let written = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                    found.push((written, name, meta.len()));
                }
            }
        }
        found.sort();
        let mut entries = Entries {
            order: LruCache::unbounded(),
            bytes: 0,
            evicted: 0,
        };
        for (_, name, size) in found {
            entries.bytes += size;
            entries.order.put(name, size);
        }
        let cache = Self {
            dir,
            budget,
            entries: Arc::new(Mutex::new(entries)),
        };
        cache.evict(&mut cache.lock(), None);
        Ok(cache)
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // Each update is a few assignments; a poisoned lock still holds usable counts.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, release: &SignedTarget) -> Option<PathBuf> {
        // The digest comes from signed metadata, but it names a file: hex only.
        is_cache_name(&release.sha256).then(|| self.dir.join(&release.sha256))
    }

    /// Removes least recently used files until the cache is within its budget, sparing
    /// `keep`.
    fn evict(&self, entries: &mut Entries, keep: Option<&str>) {
        while entries.bytes > self.budget {
            let Some((name, size)) = entries.order.pop_lru() else {
                break;
            };
            if Some(name.as_str()) == keep {
                entries.order.put(name, size);
                if entries.order.len() == 1 {
                    break;
                }
                continue;
            }
            entries.bytes = entries.bytes.saturating_sub(size);
            entries.evicted += 1;
            if let Err(error) = std::fs::remove_file(self.dir.join(&name)) {
                tracing::warn!(%name, %error, "cannot remove an evicted tarball");
            }
        }
    }

    fn forget(&self, name: &str) {
        let mut entries = self.lock();
        if let Some(size) = entries.order.pop(name) {
            entries.bytes = entries.bytes.saturating_sub(size);
        }
    }

    /// The cached tarball of `release`, if present and still exactly the signed bytes:
    /// its signed length and sha256 (every other signed digest was checked before it was
    /// written, and sha256 alone already pins the bytes). Blocking.
    pub fn get(&self, release: &SignedTarget) -> Option<Bytes> {
        let path = self.path(release)?;
        let file = std::fs::File::open(&path).ok()?;
        let intact = read_exactly(file, release.length)
            .filter(|bytes| hex::encode(Sha256::digest(bytes)) == release.sha256);
        match intact {
            Some(bytes) => {
                let mut entries = self.lock();
                if entries.order.get(&release.sha256).is_none() {
                    // Written by another replica or a run the budget did not count.
                    entries.bytes += release.length;
                    entries.order.put(release.sha256.clone(), release.length);
                    self.evict(&mut entries, Some(&release.sha256));
                }
                Some(Bytes::from(bytes))
            }
            None => {
                tracing::warn!(path = %path.display(), target = %release.target, "cached tarball no longer matches its signed target; removing it");
                let _ = std::fs::remove_file(&path);
                self.forget(&release.sha256);
                None
            }
        }
    }

    /// Stores verified bytes, evicting the least recently used tarballs beyond the
    /// budget. A tarball larger than the whole budget is not stored. Blocking.
    pub fn put(&self, release: &SignedTarget, bytes: &[u8]) -> std::io::Result<()> {
        let Some(path) = self.path(release) else {
            return Ok(());
        };
        let size = bytes.len() as u64;
        if size > self.budget {
            return Ok(());
        }
        tuf_core::fs::write_atomic(&path, bytes)?;
        let mut entries = self.lock();
        if let Some(old) = entries.order.put(release.sha256.clone(), size) {
            entries.bytes = entries.bytes.saturating_sub(old);
        }
        entries.bytes += size;
        self.evict(&mut entries, Some(&release.sha256));
        Ok(())
    }

    /// What the cache holds now.
    pub fn usage(&self) -> CacheUsage {
        let entries = self.lock();
        CacheUsage {
            tarballs: entries.order.len() as u64,
            bytes: entries.bytes,
            budget_bytes: self.budget,
            evicted: entries.evicted,
        }
    }
}

/// The whole file if it is exactly `length` bytes long, read in one allocation.
fn read_exactly(file: std::fs::File, length: u64) -> Option<Vec<u8>> {
    if file.metadata().ok()?.len() != length {
        return None;
    }
    let mut bytes = Vec::with_capacity(usize::try_from(length).ok()?);
    // Bounded even if the file grows meanwhile.
    file.take(length).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 == length).then_some(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tuf_core::hash::sha256_hashes;

    fn release(bytes: &[u8]) -> SignedTarget {
        let hashes = sha256_hashes(bytes);
        SignedTarget {
            target: "crates/a/a/a-1.0.0.crate".into(),
            role: "unclaimed-00".into(),
            delegator: "unclaimed".into(),
            length: bytes.len() as u64,
            sha256: hashes.get("sha256").unwrap().to_owned(),
            hashes,
            valid_until: chrono::Utc::now(),
            scan: None,
        }
    }

    #[test]
    fn a_damaged_cache_file_is_dropped_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TarballCache::open(dir.path().join("c"), 1 << 20).unwrap();
        let signed = release(b"the signed tarball");
        assert!(cache.get(&signed).is_none());
        cache.put(&signed, b"the signed tarball").unwrap();
        assert_eq!(cache.get(&signed).unwrap().as_ref(), b"the signed tarball");
        let path = dir.path().join("c").join(&signed.sha256);
        std::fs::write(&path, b"the altered tarball").unwrap();
        assert!(cache.get(&signed).is_none());
        assert!(!path.exists());
        // Same length, other bytes: caught by the digest, not the length.
        cache.put(&signed, b"the signed tarball").unwrap();
        std::fs::write(&path, b"the signed tarbalL").unwrap();
        assert!(cache.get(&signed).is_none());
        assert!(!path.exists());
        assert_eq!(cache.usage().tarballs, 0);
        assert_eq!(cache.usage().bytes, 0);
    }

    #[test]
    fn only_a_hex_sha256_names_a_cache_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TarballCache::open(dir.path().join("c"), 1 << 20).unwrap();
        let mut odd = release(b"x");
        odd.sha256 = format!("../{}", "a".repeat(61));
        assert_eq!(odd.sha256.len(), 64);
        cache.put(&odd, b"x").unwrap();
        assert!(cache.get(&odd).is_none());
        odd.sha256 = "a".repeat(63);
        cache.put(&odd, b"x").unwrap();
        assert_eq!(cache.usage().tarballs, 0);
        assert_eq!(std::fs::read_dir(dir.path().join("c")).unwrap().count(), 0);
    }

    #[test]
    fn the_least_recently_used_tarballs_go_first_when_over_budget() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TarballCache::open(dir.path().join("c"), 30).unwrap();
        let [a, b, c] = [b"aaaaaaaaaa", b"bbbbbbbbbb", b"cccccccccc"].map(|x| (release(x), x));
        for (release, bytes) in [&a, &b, &c] {
            cache.put(release, *bytes).unwrap();
        }
        assert_eq!(cache.usage().bytes, 30);
        // a is used, so b is now the least recently used.
        assert!(cache.get(&a.0).is_some());
        let d = release(b"dddddddddd");
        cache.put(&d, b"dddddddddd").unwrap();
        let usage = cache.usage();
        assert_eq!((usage.tarballs, usage.bytes, usage.evicted), (3, 30, 1));
        assert!(cache.get(&b.0).is_none(), "b was evicted");
        assert!(!dir.path().join("c").join(&b.0.sha256).exists());
        for kept in [&a.0, &c.0, &d] {
            assert!(cache.get(kept).is_some());
        }
        // Larger than the whole budget: served by the caller, never stored.
        let big = release(&[7u8; 31]);
        cache.put(&big, &[7u8; 31]).unwrap();
        assert!(cache.get(&big).is_none());
        // Reopened with a smaller budget: the oldest files go.
        drop(cache);
        let reopened = TarballCache::open(dir.path().join("c"), 20).unwrap();
        assert_eq!(reopened.usage().bytes, 20);
        assert_eq!(reopened.usage().tarballs, 2);
    }

    #[test]
    fn a_tarball_another_replica_wrote_is_counted_when_served_and_kept_over_older_ones() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TarballCache::open(dir.path().join("c"), 20).unwrap();
        let a = release(b"aaaaaaaaaa");
        cache.put(&a, b"aaaaaaaaaa").unwrap();
        // Exactly the budget is stored (and then the cache is full).
        let whole = release(&[5u8; 20]);
        cache.put(&whole, &[5u8; 20]).unwrap();
        assert!(cache.get(&whole).is_some());
        assert_eq!(cache.usage().bytes, 20);
        // Another replica writes a 15-byte tarball into the shared directory; serving it
        // counts it and evicts the older files, never the one being served.
        let e = release(b"eeeeeeeeeeeeeee");
        std::fs::write(dir.path().join("c").join(&e.sha256), b"eeeeeeeeeeeeeee").unwrap();
        assert!(cache.get(&e).is_some());
        let usage = cache.usage();
        assert_eq!((usage.tarballs, usage.bytes), (1, 15), "{usage:?}");
        assert!(dir.path().join("c").join(&e.sha256).exists());
        assert!(cache.get(&e).is_some());
        assert!(cache.get(&whole).is_none());
    }
}
