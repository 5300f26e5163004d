//! Crates' signed index files, fetched from the TUF repository's target files and
//! checked against their signed length and hashes before anything reads them; kept in
//! memory (least recently used out first, within a byte budget) by their sha256, so a
//! file is fetched once per version of it.
//!
//! Blocking (the TUF repository is read with a blocking client): call from a blocking
//! thread.

use std::sync::Mutex;

use axum::body::Bytes;
use lru::LruCache;
use tuf_core::client::{target_file_url, DirectoryFetcher, FetchError, Fetcher};
use tuf_core::hash::{verify_length_and_hashes, HashError};

use crate::config::MetadataLocation;
use crate::signed_target::SignedTarget;
use crate::upstream::MetadataFetcher;

/// Why a signed index file could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum IndexFileError {
    /// The TUF repository did not serve it (try again).
    #[error("cannot fetch the signed index file {target}: {error}")]
    Unavailable {
        /// Its target path.
        target: String,
        /// Why.
        error: FetchError,
    },
    /// What the repository served is not the signed file.
    #[error("the signed index file {target} from the TUF repository does not match its signed target: {error}")]
    Mismatch {
        /// Its target path.
        target: String,
        /// How.
        error: HashError,
    },
    /// The signed target has no digest to name its file by.
    #[error("the signed index file {0} has no digest")]
    NoDigest(String),
}

impl IndexFileError {
    /// True when a retry may help (the repository was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

struct Cached {
    files: LruCache<String, Bytes>,
    bytes: u64,
}

/// Signed index files, fetched and verified, kept by sha256.
pub struct SignedIndexFiles {
    fetcher: MetadataFetcher,
    base: String,
    budget: u64,
    cache: Mutex<Cached>,
}

impl SignedIndexFiles {
    /// Files under `location` (the TUF repository's targets), fetched with `fetcher`,
    /// at most `budget` bytes kept.
    pub fn new(location: &MetadataLocation, fetcher: MetadataFetcher, budget: u64) -> Self {
        let base = match location {
            MetadataLocation::Url(url) => url.clone(),
            MetadataLocation::Directory(dir) => DirectoryFetcher::new(dir.clone()).base_url(""),
        };
        let fetcher = match (location, fetcher) {
            // A directory of targets is read with a fetcher rooted there.
            (MetadataLocation::Directory(dir), _) => {
                MetadataFetcher::Directory(DirectoryFetcher::new(dir.clone()))
            }
            (MetadataLocation::Url(_), fetcher) => fetcher,
        };
        Self {
            fetcher,
            base,
            budget,
            cache: Mutex::new(Cached {
                files: LruCache::unbounded(),
                bytes: 0,
            }),
        }
    }

    /// The bytes of the signed index file `target`, exactly as signed. Blocking.
    pub fn get(
        &self,
        target: &SignedTarget,
        consistent_snapshot: bool,
    ) -> Result<Bytes, IndexFileError> {
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(bytes) = cache.files.get(&target.sha256) {
                return Ok(bytes.clone());
            }
        }
        let url = target_file_url(
            &self.base,
            &target.target,
            &target.hashes,
            consistent_snapshot,
        )
        .ok_or_else(|| IndexFileError::NoDigest(target.target.clone()))?;
        let bytes = self.fetcher.fetch(&url, target.length).map_err(|error| {
            IndexFileError::Unavailable {
                target: target.target.clone(),
                error,
            }
        })?;
        verify_length_and_hashes(&bytes, Some(target.length), Some(&target.hashes)).map_err(
            |error| IndexFileError::Mismatch {
                target: target.target.clone(),
                error,
            },
        )?;
        let bytes = Bytes::from(bytes);
        let size = bytes.len() as u64;
        if size <= self.budget {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache
                .files
                .put(target.sha256.clone(), bytes.clone())
                .is_none()
            {
                cache.bytes += size;
            }
            while cache.bytes > self.budget {
                match cache.files.pop_lru() {
                    Some((_, old)) => cache.bytes = cache.bytes.saturating_sub(old.len() as u64),
                    None => break,
                }
            }
        }
        Ok(bytes)
    }

    /// What is kept now, for `/status`.
    pub fn usage(&self) -> IndexFilesUsage {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        IndexFilesUsage {
            files: cache.files.len(),
            bytes: cache.bytes,
            budget_bytes: self.budget,
        }
    }
}

/// The signed index files kept in memory.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct IndexFilesUsage {
    /// Files kept.
    pub files: usize,
    /// Their size.
    pub bytes: u64,
    /// The most kept.
    pub budget_bytes: u64,
}
