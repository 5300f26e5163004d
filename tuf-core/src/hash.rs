//! Lengths and digests over exact file bytes (TUF §5: every file is checked against the
//! length and hashes its referrer signed, before it is parsed or used).

use std::borrow::Cow;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

/// Hash algorithm name to hex digest, e.g. `{"sha256": "ab12…"}`: the `hashes` of targets
/// and `meta` entries.
///
/// A map in JSON, kept as a short sorted list: a targets document holds one of these per
/// target, and a map node per entry would cost more than the entry itself. The names of
/// the SHA-2 algorithms are not allocated per entry.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hashes(Vec<(Cow<'static, str>, Box<str>)>);

/// The algorithm names shared by every [`Hashes`] that uses them.
const KNOWN_ALGORITHMS: [&str; 4] = ["sha224", "sha256", "sha384", "sha512"];

fn algorithm_name(name: &str) -> Cow<'static, str> {
    match KNOWN_ALGORITHMS.iter().find(|known| **known == name) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(name.to_owned()),
    }
}

impl Hashes {
    /// No digests.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// The digest for `algorithm`, if listed.
    pub fn get(&self, algorithm: &str) -> Option<&str> {
        self.position(algorithm)
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|(_, digest)| &**digest)
    }

    /// Whether `algorithm` is listed.
    pub fn contains_key(&self, algorithm: &str) -> bool {
        self.position(algorithm).is_ok()
    }

    /// Sets the digest for `algorithm`, returning the one it replaces.
    pub fn insert(&mut self, algorithm: String, digest: String) -> Option<String> {
        match self.position(&algorithm) {
            Ok(i) => self
                .0
                .get_mut(i)
                .map(|slot| std::mem::replace(&mut slot.1, digest.into_boxed_str()).into()),
            Err(i) => {
                self.0
                    .insert(i, (algorithm_name(&algorithm), digest.into_boxed_str()));
                None
            }
        }
    }

    /// Removes the digest for `algorithm`, returning it.
    pub fn remove(&mut self, algorithm: &str) -> Option<String> {
        let i = self.position(algorithm).ok()?;
        Some(self.0.remove(i).1.into())
    }

    /// Removes every digest.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// How many digests are listed.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no digest is listed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Algorithm and digest pairs, by algorithm name.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.into_iter()
    }

    /// The digests, in the order of their algorithm names.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.0.iter().map(|(_, digest)| &**digest)
    }

    /// The algorithm names, in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.0.iter().map(|(name, _)| &**name)
    }

    fn position(&self, algorithm: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(name, _)| (**name).cmp(algorithm))
    }
}

impl std::fmt::Debug for Hashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl std::ops::Index<&str> for Hashes {
    type Output = str;
    /// The digest for an algorithm; panics if it is not listed (as a map's index does).
    fn index(&self, algorithm: &str) -> &str {
        #[allow(clippy::expect_used)]
        self.get(algorithm).expect("no digest for this algorithm")
    }
}

impl FromIterator<(String, String)> for Hashes {
    /// Later pairs replace earlier ones of the same algorithm, as in a map.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        let mut hashes = Self::new();
        for (algorithm, digest) in pairs {
            hashes.insert(algorithm, digest);
        }
        hashes
    }
}

impl<const N: usize> From<[(String, String); N]> for Hashes {
    fn from(pairs: [(String, String); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a Hashes {
    type Item = (&'a str, &'a str);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Cow<'static, str>, Box<str>)>,
        fn(&'a (Cow<'static, str>, Box<str>)) -> (&'a str, &'a str),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(name, digest)| (&**name, &**digest))
    }
}

impl Serialize for Hashes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// A digest as metadata holds it: a non-empty hex string (either case). The check is
/// made as the value is read, so that an error names the digest's own path.
struct HexDigest(String);

impl<'de> Deserialize<'de> for HexDigest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let digest = String::deserialize(deserializer)?;
        // Without an early exit the check runs many bytes at a time: a targets document
        // holds a million of these.
        let all_hex = digest.bytes().fold(true, |all, b| {
            all & (b.is_ascii_digit() | ((b | 0x20).wrapping_sub(b'a') < 6))
        });
        if digest.is_empty() || !all_hex {
            return Err(serde::de::Error::custom("digest must be a hex string"));
        }
        Ok(Self(digest))
    }
}

/// Reading checks what TUF asks of a `hashes` object (§4.5 and §4.4): at least one digest,
/// each a hex string, no algorithm twice.
impl<'de> Deserialize<'de> for Hashes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HashesVisitor;
        impl<'de> Visitor<'de> for HashesVisitor {
            type Value = Hashes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of algorithm names to hex digests")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Hashes, A::Error> {
                // Most entries list one or two digests: room for one, then exactly what
                // was read (a `Vec` would otherwise start at four).
                let mut hashes = Hashes(Vec::with_capacity(1));
                while let Some(algorithm) = map.next_key::<crate::json::FieldName<'de>>()? {
                    let HexDigest(digest) = map.next_value()?;
                    match hashes.position(&algorithm) {
                        Ok(_) => {
                            return Err(serde::de::Error::custom(format!(
                                "duplicate hash algorithm {:?}",
                                &*algorithm
                            )))
                        }
                        Err(i) => hashes
                            .0
                            .insert(i, (algorithm_name(&algorithm), digest.into_boxed_str())),
                    }
                }
                if hashes.is_empty() {
                    return Err(serde::de::Error::custom("hashes must not be empty"));
                }
                hashes.0.shrink_to_fit();
                Ok(hashes)
            }
        }
        deserializer.deserialize_map(HashesVisitor)
    }
}

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
                .ok_or_else(|| HashError::UnsupportedAlgorithm(algorithm.to_owned()))?;
            hashers.push((algorithm.to_owned(), digest.to_ascii_lowercase(), hasher));
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
    fn hashes_behave_as_a_map_of_algorithm_names() {
        let mut hashes = Hashes::new();
        assert!(!hashes.contains_key("sha256"));
        assert_eq!(hashes.insert("sha512".into(), "bb".into()), None);
        assert_eq!(hashes.insert("sha256".into(), "aa".into()), None);
        assert_eq!(
            hashes.insert("sha256".into(), "cc".into()),
            Some("aa".into())
        );
        assert!(hashes.contains_key("sha256"));
        assert!(!hashes.contains_key("md5"));
        assert_eq!(hashes.keys().collect::<Vec<_>>(), ["sha256", "sha512"]);
        assert_eq!(format!("{hashes:?}"), r#"{"sha256": "cc", "sha512": "bb"}"#);
        assert_eq!(hashes.remove("sha512"), Some("bb".into()));
        assert_eq!(hashes.len(), 1);
    }

    #[test]
    fn reading_hashes_refuses_what_is_not_a_digest() {
        let read = |text: &str| serde_json::from_str::<Hashes>(text).map_err(|e| e.to_string());
        assert_eq!(
            read(r#"{"sha256":"0aF9"}"#).unwrap().get("sha256"),
            Some("0aF9")
        );
        for bad in [
            r#"{"sha256":"abg"}"#,
            r#"{"sha256":"ab`"}"#,
            r#"{"sha256":"a/"}"#,
        ] {
            assert!(
                read(bad)
                    .unwrap_err()
                    .contains("digest must be a hex string"),
                "{bad}"
            );
        }
        assert!(read("{}").unwrap_err().contains("hashes must not be empty"));
        assert!(read(r#""ab""#)
            .unwrap_err()
            .contains("an object of algorithm names to hex digests"));
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
