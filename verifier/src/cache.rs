//! The content-addressed cache of verified tarballs: `<dir>/<sha256 hex>`.
//!
//! Only bytes that matched a signed target are written, atomically (a temporary file in
//! the same directory, fsync, rename). A cached file is checked again against the signed
//! length and sha256 each time it is read, so a damaged or altered file is dropped and
//! fetched again, never served.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use axum::body::Bytes;
use sha2::{Digest, Sha256};

use crate::trust::SignedRelease;

/// The tarball cache.
#[derive(Debug, Clone)]
pub struct TarballCache {
    dir: PathBuf,
}

impl TarballCache {
    /// A cache in `dir` (created if missing); leftover temporary files of an interrupted
    /// write are removed.
    pub fn open(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Self { dir })
    }

    fn path(&self, release: &SignedRelease) -> Option<PathBuf> {
        // The digest comes from signed metadata, but it names a file: hex only.
        let valid =
            release.sha256.len() == 64 && release.sha256.bytes().all(|b| b.is_ascii_hexdigit());
        valid.then(|| self.dir.join(&release.sha256))
    }

    /// The cached tarball of `release`, if present and still exactly the signed bytes:
    /// its signed length and sha256 (every other signed digest was checked before it was
    /// written, and sha256 alone already pins the bytes). Blocking.
    pub fn get(&self, release: &SignedRelease) -> Option<Bytes> {
        let path = self.path(release)?;
        let file = std::fs::File::open(&path).ok()?;
        let intact = read_exactly(file, release.length)
            .filter(|bytes| hex::encode(Sha256::digest(bytes)) == release.sha256);
        if intact.is_none() {
            tracing::warn!(path = %path.display(), target = %release.target, "cached tarball no longer matches its signed target; removing it");
            let _ = std::fs::remove_file(&path);
        }
        intact.map(Bytes::from)
    }

    /// Stores verified bytes. Blocking.
    pub fn put(&self, release: &SignedRelease, bytes: &[u8]) -> std::io::Result<()> {
        let Some(path) = self.path(release) else {
            return Ok(());
        };
        write_atomic_in(&self.dir, &path, bytes)
    }

    /// Number of cached tarballs and their total size.
    pub fn usage(&self) -> (u64, u64) {
        let mut count = 0;
        let mut bytes = 0;
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if entry.file_name().len() == 64 {
                    count += 1;
                    bytes += entry.metadata().map_or(0, |m| m.len());
                }
            }
        }
        (count, bytes)
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

fn write_atomic_in(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = tempfile::Builder::new().prefix(".tmp").tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tuf_core::hash::sha256_hashes;

    fn release(bytes: &[u8]) -> SignedRelease {
        let hashes = sha256_hashes(bytes);
        SignedRelease {
            target: "crates/a/a/a-1.0.0.crate".into(),
            role: "unclaimed-00".into(),
            length: bytes.len() as u64,
            sha256: hashes.get("sha256").cloned().unwrap(),
            hashes,
            valid_until: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_damaged_cache_file_is_dropped_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TarballCache::open(dir.path().join("c")).unwrap();
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
        assert_eq!(cache.usage(), (0, 0));
    }
}
