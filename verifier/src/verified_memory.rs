//! Verified tarballs kept in memory, within a byte budget, least recently used out first:
//! a cached download is answered on the async worker that received it, with no thread hop
//! to read and re-hash a file.
//!
//! Threat model. Only bytes that matched their signed target enter: a tarball fetched
//! from upstream and checked against the signed length and every signed digest, or one
//! read back from the disk cache and checked again against the signed length and sha256
//! (the disk is shared, untrusted storage: [`crate::cache`]). They are kept under that
//! sha256, and a lookup is by the sha256 and length of the release being served, so a
//! release is only ever answered with bytes verified against its own signed digest.
//! Process memory is as trusted as the verifier's own code: what an attacker could
//! change there, they could change in the checks too.

use std::sync::Mutex;

use axum::body::Bytes;
use lru::LruCache;

use crate::signed_target::SignedTarget;

/// What the memory holds, for `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MemoryUsage {
    /// Tarballs kept.
    pub tarballs: usize,
    /// Their total size.
    pub bytes: u64,
    /// The most bytes kept (`tarball_memory_size`).
    pub budget_bytes: u64,
}

struct Kept {
    /// sha256 → the verified bytes, least recently used first.
    tarballs: LruCache<String, Bytes>,
    bytes: u64,
}

/// The verified tarballs kept in memory.
pub struct VerifiedTarballs {
    kept: Mutex<Kept>,
    budget: u64,
}

impl VerifiedTarballs {
    /// Keeps at most `budget` bytes (0: none).
    pub fn new(budget: u64) -> Self {
        Self {
            kept: Mutex::new(Kept {
                tarballs: LruCache::unbounded(),
                bytes: 0,
            }),
            budget,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The verified bytes of `release`, if kept. Never blocks on I/O.
    pub fn get(&self, release: &SignedTarget) -> Option<Bytes> {
        let mut kept = self.lock();
        let bytes = kept.tarballs.get(&release.sha256)?;
        // The key is the signed sha256; the length is checked too, so a release signed
        // with the same digest and another length (a broken repository) is not answered
        // with these bytes.
        (bytes.len() as u64 == release.length).then(|| bytes.clone())
    }

    /// Keeps `bytes`, which were just verified against `release`'s signed digests,
    /// evicting the least recently used beyond the budget. Bytes larger than the whole
    /// budget are not kept.
    pub fn put(&self, release: &SignedTarget, bytes: Bytes) {
        let size = bytes.len() as u64;
        if size > self.budget || size != release.length {
            return;
        }
        let mut kept = self.lock();
        if let Some(old) = kept.tarballs.put(release.sha256.clone(), bytes) {
            kept.bytes = kept.bytes.saturating_sub(old.len() as u64);
        }
        kept.bytes += size;
        while kept.bytes > self.budget {
            match kept.tarballs.pop_lru() {
                Some((_, old)) => kept.bytes = kept.bytes.saturating_sub(old.len() as u64),
                None => break,
            }
        }
    }

    /// What is kept now.
    pub fn usage(&self) -> MemoryUsage {
        let kept = self.lock();
        MemoryUsage {
            tarballs: kept.tarballs.len(),
            bytes: kept.bytes,
            budget_bytes: self.budget,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn release(sha256: &str, length: u64) -> SignedTarget {
        SignedTarget {
            target: format!("crates/x/x/x-{sha256}.crate"),
            role: "unclaimed-00".into(),
            delegator: "unclaimed".into(),
            length,
            sha256: sha256.into(),
            hashes: tuf_core::hash::Hashes::new(),
            valid_until: chrono::DateTime::<chrono::Utc>::MAX_UTC,
            scan: None,
        }
    }

    #[test]
    fn kept_bytes_answer_only_their_own_digest_and_length_within_the_budget() {
        let memory = VerifiedTarballs::new(100);
        let a = release("aa", 40);
        memory.put(&a, Bytes::from(vec![1; 40]));
        assert_eq!(memory.get(&a).unwrap().len(), 40);
        assert!(memory.get(&release("bb", 40)).is_none());
        // Same digest, another signed length: not these bytes.
        assert!(memory.get(&release("aa", 41)).is_none());
        // Bytes that are not the signed length are not kept at all.
        memory.put(&release("cc", 10), Bytes::from(vec![2; 11]));
        assert!(memory.get(&release("cc", 10)).is_none());
        // Within the budget, least recently used out first; a replaced entry counts once.
        memory.put(&a, Bytes::from(vec![1; 40]));
        let b = release("bb", 40);
        memory.put(&b, Bytes::from(vec![3; 40]));
        assert_eq!(memory.usage().bytes, 80);
        assert!(memory.get(&a).is_some());
        let c = release("cc", 30);
        memory.put(&c, Bytes::from(vec![4; 30]));
        assert!(memory.get(&b).is_none(), "b was the least recently used");
        assert_eq!(
            memory.usage(),
            MemoryUsage {
                tarballs: 2,
                bytes: 70,
                budget_bytes: 100
            }
        );
        // Larger than the whole budget, or a budget of zero: not kept, and nothing else
        // is evicted for it.
        memory.put(&release("dd", 101), Bytes::from(vec![5; 101]));
        assert!(memory.get(&release("dd", 101)).is_none());
        assert_eq!(memory.usage().bytes, 70);
        assert!(memory.get(&a).is_some() && memory.get(&c).is_some());
        let none = VerifiedTarballs::new(0);
        none.put(&a, Bytes::from(vec![1; 40]));
        assert!(none.get(&a).is_none());
        // Exactly the budget: kept.
        let exact = VerifiedTarballs::new(40);
        exact.put(&a, Bytes::from(vec![1; 40]));
        assert!(exact.get(&a).is_some());
    }
}
