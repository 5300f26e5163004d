//! Private keys: generation, signing, and PKCS#8 PEM storage (encrypted with PBES2 unless
//! explicitly asked not to).
//!
//! Files written here are ordinary `ENCRYPTED PRIVATE KEY` PEM documents that
//! `openssl pkey -in FILE` decrypts, and keys OpenSSL writes (`openssl genpkey`, `openssl
//! pkcs8 -topk8`) load here. Private key material is zeroized on drop by the underlying
//! key types; decrypted DER is held in zeroizing buffers.

use std::fmt;

use pkcs8::der::pem::LineEnding;
use pkcs8::{DecodePrivateKey, EncodePrivateKey, EncryptedPrivateKeyInfo, PrivateKeyInfo};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::keys::{Key, KeyId};

/// Object identifier of Ed25519 keys (RFC 8410).
const OID_ED25519: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.3.101.112");
/// Object identifier of elliptic-curve public keys (RFC 5480).
const OID_EC_PUBLIC_KEY: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// The key algorithms this crate can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// Ed25519 (`keytype` and `scheme` `ed25519`).
    Ed25519,
    /// ECDSA P-256 with SHA-256 (`keytype` `ecdsa`, `scheme` `ecdsa-sha2-nistp256`).
    EcdsaP256,
}

/// How a private key file is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEncryption {
    /// PBES2 with PBKDF2-HMAC-SHA256 (the given iteration count) and AES-256-CBC.
    /// 600,000 iterations is OWASP's 2023 recommendation and the default here.
    Pbkdf2Sha256 {
        /// PBKDF2 iteration count.
        iterations: u32,
    },
    /// PBES2 with scrypt (N = 2^`log_n`, r = 8, p = 1) and AES-256-CBC. OpenSSL refuses
    /// scrypt parameters needing more than 32 MiB, so `log_n` above 14 makes files that
    /// `openssl pkey` cannot read.
    Scrypt {
        /// log2 of the scrypt cost parameter N.
        log_n: u8,
    },
}

impl Default for KeyEncryption {
    fn default() -> Self {
        Self::Pbkdf2Sha256 {
            iterations: 600_000,
        }
    }
}

/// Why a private key could not be loaded, saved or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivateKeyError {
    /// The PEM armour or DER inside is malformed.
    #[error("not a PKCS#8 PEM private key: {0}")]
    Malformed(String),
    /// The key is encrypted and no passphrase was given.
    #[error("the key is encrypted: a passphrase is needed")]
    PassphraseRequired,
    /// Decryption failed: almost always a wrong passphrase.
    #[error("could not decrypt the key: wrong passphrase, or a damaged file")]
    WrongPassphrase,
    /// The PKCS#8 algorithm is not one this crate signs with.
    #[error("unsupported private key algorithm {0} (supported: Ed25519, ECDSA P-256)")]
    UnsupportedAlgorithm(String),
    /// Encrypting or encoding failed.
    #[error("could not encode the key: {0}")]
    Encode(String),
    /// The signing operation failed. External signers (an HSM, a KMS) wrap their own
    /// failure with [`SigningError::from_source`].
    #[error("signing failed: {0}")]
    Sign(#[source] SigningError),
}

/// Why a signing operation failed: the error type of the RustCrypto `signature` traits,
/// which can carry any underlying error as its source.
pub use p256::ecdsa::signature::Error as SigningError;

/// Something that signs TUF metadata: a private key here, or an external signer (an HSM,
/// a cloud KMS, another machine) behind the same narrow interface.
///
/// A signer only produces signature bytes, as rustls' and tough's signers do; the
/// metadata envelope's `{"keyid", "sig"}` entry is built from them by
/// [`Metadata::sign`](crate::metadata::Metadata::sign) (or
/// [`Signature::create`](crate::metadata::Signature::create)). Signers are shared across
/// threads and show up in logs, hence the supertraits; a `Debug` implementation must not
/// print key material.
pub trait Signer: Send + Sync + fmt::Debug {
    /// The public key entry matching this signer.
    fn public_key(&self) -> &Key;
    /// The keyid metadata lists for this signer.
    fn keyid(&self) -> &KeyId;
    /// Signs `message` (canonical JSON of a `signed` object) and returns the raw
    /// signature in the encoding of the key's scheme: the 64 bytes of an Ed25519
    /// signature, the DER of an ECDSA one, the bytes of an RSASSA-PSS one. Metadata
    /// carries them hex-encoded.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PrivateKeyError>;
}

enum SecretKey {
    Ed25519(ed25519_dalek::SigningKey),
    EcdsaP256(p256::ecdsa::SigningKey),
}

/// A private signing key with its public key entry and keyid.
pub struct PrivateKey {
    secret: SecretKey,
    public: Key,
    keyid: KeyId,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("PrivateKey")
            .field("keytype", &self.public.keytype)
            .field("keyid", &self.keyid)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Generates a new key from the operating system's random source.
    pub fn generate(algorithm: KeyAlgorithm) -> Self {
        let secret = match algorithm {
            KeyAlgorithm::Ed25519 => {
                SecretKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut OsRng))
            }
            KeyAlgorithm::EcdsaP256 => {
                SecretKey::EcdsaP256(p256::ecdsa::SigningKey::random(&mut OsRng))
            }
        };
        Self::from_secret(secret)
    }

    fn from_secret(secret: SecretKey) -> Self {
        let public = match &secret {
            SecretKey::Ed25519(key) => Key::new(
                "ed25519",
                "ed25519",
                hex::encode(key.verifying_key().as_bytes()),
            ),
            SecretKey::EcdsaP256(key) => {
                use spki::EncodePublicKey;
                // Encoding a valid P-256 point as SPKI PEM cannot fail.
                let pem = key
                    .verifying_key()
                    .to_public_key_pem(LineEnding::LF)
                    .unwrap_or_default();
                Key::new("ecdsa", "ecdsa-sha2-nistp256", pem)
            }
        };
        let keyid = public.keyid();
        Self {
            secret,
            public,
            keyid,
        }
    }

    /// Which algorithm this key uses.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self.secret {
            SecretKey::Ed25519(_) => KeyAlgorithm::Ed25519,
            SecretKey::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
        }
    }

    /// Loads a PKCS#8 PEM private key. `ENCRYPTED PRIVATE KEY` documents need
    /// `passphrase`; plain `PRIVATE KEY` documents ignore it.
    pub fn from_pkcs8_pem(pem: &str, passphrase: Option<&[u8]>) -> Result<Self, PrivateKeyError> {
        let (label, der) = pkcs8::der::pem::decode_vec(pem.as_bytes())
            .map_err(|e| PrivateKeyError::Malformed(e.to_string()))?;
        let der = Zeroizing::new(der);
        match label {
            "ENCRYPTED PRIVATE KEY" => {
                let passphrase = passphrase.ok_or(PrivateKeyError::PassphraseRequired)?;
                let encrypted = EncryptedPrivateKeyInfo::try_from(der.as_slice())
                    .map_err(|e| PrivateKeyError::Malformed(e.to_string()))?;
                let plain = encrypted
                    .decrypt(passphrase)
                    .map_err(|_| PrivateKeyError::WrongPassphrase)?;
                Self::from_pkcs8_der(plain.as_bytes())
            }
            "PRIVATE KEY" => Self::from_pkcs8_der(&der),
            other => Err(PrivateKeyError::Malformed(format!(
                "unexpected PEM label {other:?}, expected PRIVATE KEY or ENCRYPTED PRIVATE KEY"
            ))),
        }
    }

    /// Loads an unencrypted PKCS#8 DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, PrivateKeyError> {
        let info =
            PrivateKeyInfo::try_from(der).map_err(|e| PrivateKeyError::Malformed(e.to_string()))?;
        let oid = info.algorithm.oid;
        let secret = if oid == OID_ED25519 {
            SecretKey::Ed25519(
                ed25519_dalek::SigningKey::from_pkcs8_der(der)
                    .map_err(|e| PrivateKeyError::Malformed(e.to_string()))?,
            )
        } else if oid == OID_EC_PUBLIC_KEY {
            SecretKey::EcdsaP256(p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|e| {
                PrivateKeyError::UnsupportedAlgorithm(format!("EC key not on P-256: {e}"))
            })?)
        } else {
            return Err(PrivateKeyError::UnsupportedAlgorithm(oid.to_string()));
        };
        Ok(Self::from_secret(secret))
    }

    /// The unencrypted PKCS#8 DER of the key, in a zeroizing buffer.
    fn to_pkcs8_der(&self) -> Result<pkcs8::SecretDocument, PrivateKeyError> {
        match &self.secret {
            // PKCS#8 v1 (RFC 5208, no public key), as `openssl genpkey` writes it:
            // OpenSSL before 3.5 cannot read the v2 form ed25519-dalek writes by default.
            SecretKey::Ed25519(key) => ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: key.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_der(),
            SecretKey::EcdsaP256(key) => key.to_pkcs8_der(),
        }
        .map_err(|e| PrivateKeyError::Encode(e.to_string()))
    }

    /// Writes the key as PEM: `ENCRYPTED PRIVATE KEY` with `passphrase` and the given
    /// scheme, or a plain `PRIVATE KEY` when `passphrase` is `None` (tests and demos only).
    pub fn to_pkcs8_pem(
        &self,
        passphrase: Option<&[u8]>,
        encryption: KeyEncryption,
    ) -> Result<Zeroizing<String>, PrivateKeyError> {
        let der = self.to_pkcs8_der()?;
        let encode = |e: pkcs8::Error| PrivateKeyError::Encode(e.to_string());
        let Some(passphrase) = passphrase else {
            return der
                .to_pem("PRIVATE KEY", LineEnding::LF)
                .map_err(|e| PrivateKeyError::Encode(e.to_string()));
        };
        let mut salt = [0u8; 16];
        let mut iv = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        OsRng.fill_bytes(&mut iv);
        let params = match encryption {
            KeyEncryption::Pbkdf2Sha256 { iterations } => {
                pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(iterations, &salt, &iv)
            }
            KeyEncryption::Scrypt { log_n } => {
                let scrypt = pkcs8::pkcs5::scrypt::Params::new(log_n, 8, 1, 32)
                    .map_err(|e| PrivateKeyError::Encode(e.to_string()))?;
                pkcs8::pkcs5::pbes2::Parameters::scrypt_aes256cbc(scrypt, &salt, &iv)
            }
        }
        .map_err(|e| PrivateKeyError::Encode(e.to_string()))?;
        let info = PrivateKeyInfo::try_from(der.as_bytes()).map_err(encode)?;
        let encrypted = info
            .encrypt_with_params(params, passphrase)
            .map_err(encode)?;
        encrypted
            .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
            .map_err(|e| PrivateKeyError::Encode(e.to_string()))
    }
}

impl Signer for PrivateKey {
    fn public_key(&self) -> &Key {
        &self.public
    }

    fn keyid(&self) -> &KeyId {
        &self.keyid
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PrivateKeyError> {
        use p256::ecdsa::signature::Signer as _;
        Ok(match &self.secret {
            SecretKey::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
            SecretKey::EcdsaP256(key) => {
                let sig: p256::ecdsa::Signature =
                    key.try_sign(message).map_err(PrivateKeyError::Sign)?;
                sig.to_der().as_bytes().to_vec()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip_for_each_algorithm() {
        for algorithm in [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256] {
            let key = PrivateKey::generate(algorithm);
            let sig = hex::encode(key.sign(b"message").expect("signs"));
            key.public_key().verify(b"message", &sig).expect("verifies");
            assert!(key.public_key().verify(b"other", &sig).is_err());
        }
    }

    #[test]
    fn encrypted_pem_round_trip_and_wrong_passphrase() {
        for encryption in [
            KeyEncryption::Pbkdf2Sha256 { iterations: 1000 },
            KeyEncryption::Scrypt { log_n: 10 },
        ] {
            let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
            let pem = key
                .to_pkcs8_pem(Some(b"correct horse"), encryption)
                .expect("encodes");
            assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
            let loaded = PrivateKey::from_pkcs8_pem(&pem, Some(b"correct horse")).expect("loads");
            assert_eq!(loaded.keyid(), key.keyid());
            assert!(matches!(
                PrivateKey::from_pkcs8_pem(&pem, Some(b"wrong")),
                Err(PrivateKeyError::WrongPassphrase)
            ));
            assert!(matches!(
                PrivateKey::from_pkcs8_pem(&pem, None),
                Err(PrivateKeyError::PassphraseRequired)
            ));
        }
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let pem = key
            .to_pkcs8_pem(None, KeyEncryption::default())
            .expect("pem");
        let debug = format!("{key:?}");
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(!debug.contains(&body));
        assert!(debug.contains(key.keyid().as_str()));
    }
}
