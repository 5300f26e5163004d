//! Lengths and digests over exact file bytes (TUF §5: every file is checked against the
//! length and hashes its referrer signed, before it is parsed or used).

use std::collections::BTreeMap;

use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

/// Hash algorithm name to lowercase hex digest, e.g. `{"sha256": "ab12…"}`: the `hashes`
/// of targets and `meta` entries.
pub type Hashes = BTreeMap<String, String>;

/// Why bytes did not match what metadata says of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The length differs.
    #[error("length mismatch: expected {expected} bytes, got {actual}")]
    LengthMismatch {
        /// Signed length.
        expected: u64,
        /// Actual length (or the length read so far, when reading stopped early).
        actual: u64,
    },
    /// A digest differs.
    #[error("{algorithm} mismatch: expected {expected}, got {actual}")]
    HashMismatch {
        /// Algorithm name.
        algorithm: String,
        /// Signed digest.
        expected: String,
        /// Digest of the bytes.
        actual: String,
    },
    /// A digest uses an algorithm this implementation cannot compute; such a file cannot
    /// be proven to match, so it is refused.
    #[error("unsupported hash algorithm {0:?}")]
    UnsupportedAlgorithm(String),
}

/// A running digest of one supported algorithm.
#[derive(Clone)]
enum Hasher {
    Sha224(Sha224),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    fn new(algorithm: &str) -> Option<Self> {
        Some(match algorithm {
            "sha224" => Self::Sha224(Sha224::new()),
            "sha256" => Self::Sha256(Sha256::new()),
            "sha384" => Self::Sha384(Sha384::new()),
            "sha512" => Self::Sha512(Sha512::new()),
            _ => return None,
        })
    }
    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha224(h) => h.update(data),
            Self::Sha256(h) => h.update(data),
            Self::Sha384(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }
    fn finish_hex(self) -> String {
        match self {
            Self::Sha224(h) => hex::encode(h.finalize()),
            Self::Sha256(h) => hex::encode(h.finalize()),
            Self::Sha384(h) => hex::encode(h.finalize()),
            Self::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// Checks bytes as they stream in against a signed length and digests: refuses the
/// first byte past the signed length, so an endless or oversized body is never buffered.
pub struct StreamVerifier {
    expected_length: Option<u64>,
    seen: u64,
    hashers: Vec<(String, String, Hasher)>,
}

impl StreamVerifier {
    /// A verifier for the given length and digests (either may be absent, as in snapshot
    /// and timestamp `meta` entries). Fails at once on an unsupported algorithm.
    pub fn new(expected_length: Option<u64>, hashes: Option<&Hashes>) -> Result<Self, HashError> {
        let mut hashers = Vec::new();
        for (algorithm, digest) in hashes.into_iter().flatten() {
            let hasher = Hasher::new(algorithm)
                .ok_or_else(|| HashError::UnsupportedAlgorithm(algorithm.clone()))?;
            hashers.push((algorithm.clone(), digest.to_ascii_lowercase(), hasher));
        }
        Ok(Self {
            expected_length,
            seen: 0,
            hashers,
        })
    }

    /// Feeds the next chunk; fails as soon as the total exceeds the signed length.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), HashError> {
        self.seen = self.seen.saturating_add(chunk.len() as u64);
        if let Some(expected) = self.expected_length {
            if self.seen > expected {
                return Err(HashError::LengthMismatch {
                    expected,
                    actual: self.seen,
                });
            }
        }
        for (_, _, hasher) in &mut self.hashers {
            hasher.update(chunk);
        }
        Ok(())
    }

    /// Checks the final length and every digest.
    pub fn finish(self) -> Result<(), HashError> {
        if let Some(expected) = self.expected_length {
            if self.seen != expected {
                return Err(HashError::LengthMismatch {
                    expected,
                    actual: self.seen,
                });
            }
        }
        for (algorithm, expected, hasher) in self.hashers {
            let actual = hasher.finish_hex();
            if actual != expected {
                return Err(HashError::HashMismatch {
                    algorithm,
                    expected,
                    actual,
                });
            }
        }
        Ok(())
    }
}

/// Checks complete bytes against an optional signed length and optional digests.
pub fn verify_length_and_hashes(
    data: &[u8],
    expected_length: Option<u64>,
    hashes: Option<&Hashes>,
) -> Result<(), HashError> {
    let mut verifier = StreamVerifier::new(expected_length, hashes)?;
    verifier.update(data)?;
    verifier.finish()
}

/// `{"sha256": hex}` of `data`.
pub fn sha256_hashes(data: &[u8]) -> Hashes {
    [("sha256".to_owned(), hex::encode(Sha256::digest(data)))].into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_length_and_every_hash() {
        let data = b"crate bytes";
        let mut hashes = sha256_hashes(data);
        hashes.insert("sha512".into(), hex::encode(Sha512::digest(data)));
        verify_length_and_hashes(data, Some(11), Some(&hashes)).expect("matches");
        verify_length_and_hashes(data, None, None).expect("nothing to check");
        assert!(matches!(
            verify_length_and_hashes(data, Some(10), Some(&hashes)),
            Err(HashError::LengthMismatch {
                expected: 10,
                actual: 11
            })
        ));
        assert!(matches!(
            verify_length_and_hashes(data, Some(12), Some(&hashes)),
            Err(HashError::LengthMismatch {
                expected: 12,
                actual: 11
            })
        ));
        let mut wrong = hashes.clone();
        wrong.insert("sha512".into(), "00".repeat(64));
        assert!(matches!(
            verify_length_and_hashes(data, Some(11), Some(&wrong)),
            Err(HashError::HashMismatch { algorithm, .. }) if algorithm == "sha512"
        ));
        let mut unknown = hashes;
        unknown.insert("md5".into(), "00".repeat(16));
        assert!(matches!(
            verify_length_and_hashes(data, Some(11), Some(&unknown)),
            Err(HashError::UnsupportedAlgorithm(a)) if a == "md5"
        ));
    }

    #[test]
    fn stream_stops_at_the_first_byte_past_the_signed_length() {
        let mut verifier = StreamVerifier::new(Some(4), None).expect("ok");
        verifier.update(b"abc").expect("within");
        assert_eq!(
            verifier.update(b"de"),
            Err(HashError::LengthMismatch {
                expected: 4,
                actual: 5
            })
        );
    }
}
