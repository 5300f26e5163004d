//! [`TokenSigner`]: a private key on a token behind tuf-core's `Signer` seam.

use std::sync::Mutex;

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use sha2::{Digest, Sha256};
use tuf_core::keys::{validate_label, Key, KeyId};
use tuf_core::signer::{PrivateKeyError, SigningError};
use tuf_core::{KeyAlgorithm, Signer};

use super::error::{failed, Pkcs11Error};
use super::token::{
    find_matching, find_object, object_label_id, open_token, public_key_of, read_pin,
    require_mechanism, signing_mechanism,
};
use super::uri::{ObjectType, Pkcs11Uri};

/// A private key on a token, signing through PKCS#11 behind tuf-core's [`Signer`].
pub struct TokenSigner {
    /// The URI, PIN redacted: what messages and logs name.
    uri: String,
    /// The token's label.
    token: String,
    session: Mutex<Session>,
    key: ObjectHandle,
    algorithm: KeyAlgorithm,
    public: Key,
    keyid: KeyId,
    /// Kept when the key asks for the PIN before each signature
    /// (`CKA_ALWAYS_AUTHENTICATE`, as a YubiKey's PIV slot 9c does); zeroized on drop.
    context_pin: Option<AuthPin>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("uri", &self.uri)
            .field("keyid", &self.keyid)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// Opens the private key the URI names: finds the token, logs in, finds the private
    /// key and its public key, and checks the token offers the signing mechanism.
    pub fn open(uri: &Pkcs11Uri) -> Result<Self, Pkcs11Error> {
        if uri.object_type == Some(ObjectType::Public) {
            return Err(Pkcs11Error::NoObject {
                uri: uri.to_string(),
                token: String::new(),
                what: "private key",
                hint: " (the URI says type=public)".to_owned(),
            });
        }
        let mut open = open_token(uri, false, true)?;
        let key = find_object(&open, uri, ObjectClass::PRIVATE_KEY)?;
        let (label, id) =
            object_label_id(&open, key).map_err(failed(uri, "reading the private key's label"))?;
        // The public key object that goes with it: same id, or the same label when the
        // key has no id.
        let public_template = if id.is_empty() {
            vec![
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ]
        } else {
            vec![Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::Id(id)]
        };
        let public_handle = find_matching(&open, uri, ObjectClass::PUBLIC_KEY, &public_template)?;
        let (mut public, algorithm) = public_key_of(&open, uri, public_handle)?;
        if validate_label(&label).is_ok() {
            let _ = public.set_label(&label);
        }
        let (mechanism, name, alternative) = signing_mechanism(algorithm);
        require_mechanism(&open, uri, mechanism, name, "signing", alternative)?;
        let always_authenticate = open
            .session
            .get_attributes(key, &[AttributeType::AlwaysAuthenticate])
            .ok()
            .into_iter()
            .flatten()
            .any(|a| matches!(a, Attribute::AlwaysAuthenticate(true)));
        let context_pin =
            if always_authenticate {
                // The PIN is given again right after C_SignInit (PKCS#11 3.0 §5.13,
                // CKU_CONTEXT_SPECIFIC). cryptoki offers no single-part C_Sign after an
                // init, so such a key signs in parts: Ed25519 cannot (pure EdDSA is
                // single-part only), ECDSA uses CKM_ECDSA_SHA256, which YubiKeys offer.
                match algorithm {
                    KeyAlgorithm::Ed25519 => return Err(Pkcs11Error::PinPerSignature {
                        uri: uri.to_string(),
                        token: open.info.label().to_owned(),
                        why: "an Ed25519 key cannot sign in parts (pure EdDSA is single-part only)",
                    }),
                    KeyAlgorithm::EcdsaP256 => require_mechanism(
                        &open,
                        uri,
                        MechanismType::ECDSA_SHA256,
                        "CKM_ECDSA_SHA256",
                        "signing with a key that asks for the PIN before every signature",
                        "a key without a per-signature PIN policy",
                    )?,
                }
                match open.pin.take() {
                    Some(pin) => Some(pin),
                    None => Some(read_pin(uri, open.info.label())?),
                }
            } else {
                None
            };
        let keyid = public.keyid();
        tracing::info!(uri = %uri, keyid = %keyid, "opened the private key on the token");
        Ok(Self {
            uri: uri.to_string(),
            token: open.info.label().to_owned(),
            session: Mutex::new(open.session),
            key,
            algorithm,
            public,
            keyid,
            context_pin,
        })
    }

    fn sign_on_token(&self, message: &[u8]) -> Result<Vec<u8>, Pkcs11Error> {
        let session = self
            .session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (mechanism, data) = match self.algorithm {
            KeyAlgorithm::Ed25519 => (
                Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                message.to_vec(),
            ),
            // CKM_ECDSA signs a digest the caller computes (PKCS#11 3.0 §2.3.6).
            KeyAlgorithm::EcdsaP256 => (Mechanism::Ecdsa, Sha256::digest(message).to_vec()),
        };
        // A token may list a mechanism it then refuses (SoftHSM2 answers
        // C_GetMechanismInfo for mechanisms its configuration disables).
        let missing = |error: CkError| match error {
            CkError::Pkcs11(RvError::MechanismInvalid, _) => {
                let (_, name, alternative) = signing_mechanism(self.algorithm);
                Pkcs11Error::MissingMechanism {
                    uri: self.uri.clone(),
                    token: self.token.clone(),
                    mechanism: name,
                    purpose: "signing",
                    alternative,
                }
            }
            error => failed(&self.uri, "signing")(error),
        };
        let raw = match &self.context_pin {
            None => session.sign(&mechanism, self.key, &data).map_err(missing)?,
            // Only ECDSA keys get here (checked when opened): the token hashes.
            Some(pin) => {
                session
                    .sign_init(&Mechanism::EcdsaSha256, self.key)
                    .map_err(missing)?;
                session
                    .login(UserType::ContextSpecific, Some(pin))
                    .map_err(failed(&self.uri, "giving the PIN for this signature"))?;
                session
                    .sign_update(message)
                    .map_err(failed(&self.uri, "signing"))?;
                session.sign_final().map_err(failed(&self.uri, "signing"))?
            }
        };
        let signature = match self.algorithm {
            KeyAlgorithm::Ed25519 => raw,
            // PKCS#11 gives r || s; TUF's ecdsa-sha2-nistp256 signatures are DER (as
            // securesystemslib writes them), with a low s.
            KeyAlgorithm::EcdsaP256 => {
                let signature = p256::ecdsa::Signature::from_slice(&raw).map_err(|_| {
                    Pkcs11Error::BadSignature {
                        uri: self.uri.clone(),
                        keyid: self.keyid.clone(),
                    }
                })?;
                let signature = signature.normalize_s().unwrap_or(signature);
                signature.to_der().as_bytes().to_vec()
            }
        };
        // A token that signs with another key (or garbage) is caught here, not by the
        // repository's clients.
        self.public
            .verify(message, &hex::encode(&signature))
            .map_err(|_| Pkcs11Error::BadSignature {
                uri: self.uri.clone(),
                keyid: self.keyid.clone(),
            })?;
        Ok(signature)
    }
}

impl Signer for TokenSigner {
    fn public_key(&self) -> &Key {
        &self.public
    }

    fn keyid(&self) -> &KeyId {
        &self.keyid
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PrivateKeyError> {
        self.sign_on_token(message)
            .map_err(|error| PrivateKeyError::Sign(SigningError::from_source(error)))
    }
}
