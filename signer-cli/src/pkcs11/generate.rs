//! `key generate --pkcs11`: a non-extractable key pair made on the token.

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType};
use tuf_core::keys::{validate_label, Key};
use tuf_core::KeyAlgorithm;

use super::error::{failed, Pkcs11Error};
use super::token::{
    open_token, public_key_of, require_mechanism, signing_mechanism, EC_PARAMS_ED25519_NAME,
    EC_PARAMS_ED25519_OID, EC_PARAMS_P256,
};
use super::uri::Pkcs11Uri;

/// A key pair made on a token by [`generate`].
#[derive(Debug)]
pub struct GeneratedKey {
    /// The public key entry, labelled.
    pub public: Key,
    /// The URI of the new private key (token, label, id, module; never a PIN value).
    pub uri: String,
}

/// Makes a key pair on the URI's token: the private key is a token object, private,
/// sensitive, not extractable, able only to sign; the public key is a token object that
/// can verify. Both carry `label` and a fresh 16-byte id. Refuses when an object with
/// the label or the URI's id is already there.
pub fn generate(
    uri: &Pkcs11Uri,
    algorithm: KeyAlgorithm,
    label: &str,
) -> Result<GeneratedKey, Pkcs11Error> {
    let open = open_token(uri, true, true)?;
    let token = open.info.label().to_owned();
    let (mechanism, mechanism_name, alternative) = match algorithm {
        KeyAlgorithm::Ed25519 => (
            Mechanism::EccEdwardsKeyPairGen,
            "CKM_EC_EDWARDS_KEY_PAIR_GEN",
            "an ECDSA P-256 key",
        ),
        KeyAlgorithm::EcdsaP256 => (
            Mechanism::EccKeyPairGen,
            "CKM_EC_KEY_PAIR_GEN",
            "an Ed25519 key",
        ),
    };
    require_mechanism(
        &open,
        uri,
        mechanism.mechanism_type(),
        mechanism_name,
        "generating the key",
        alternative,
    )?;
    let (sign, sign_name, _) = signing_mechanism(algorithm);
    require_mechanism(&open, uri, sign, sign_name, "signing", alternative)?;
    let mut taken = open
        .session
        .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .map_err(failed(uri, "searching the token"))?;
    if let Some(id) = &uri.id {
        taken.extend(
            open.session
                .find_objects(&[Attribute::Id(id.clone())])
                .map_err(failed(uri, "searching the token"))?,
        );
    }
    if !taken.is_empty() {
        return Err(Pkcs11Error::Exists {
            uri: uri.to_string(),
            token,
            label: label.to_owned(),
        });
    }
    let id = match &uri.id {
        Some(id) => id.clone(),
        None => open
            .session
            .generate_random_vec(16)
            .map_err(failed(uri, "drawing an id from the token's random source"))?,
    };
    let private_template = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Derive(false),
        Attribute::Unwrap(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.clone()),
    ];
    let public_template = |params: &[u8]| {
        vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::EcParams(params.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ]
    };
    let curves: &[&[u8]] = match algorithm {
        KeyAlgorithm::Ed25519 => &[EC_PARAMS_ED25519_NAME, EC_PARAMS_ED25519_OID],
        KeyAlgorithm::EcdsaP256 => &[EC_PARAMS_P256],
    };
    let mut made = None;
    let mut last_error = None;
    for params in curves {
        match open.session.generate_key_pair(
            &mechanism,
            &public_template(params),
            &private_template,
        ) {
            Ok(pair) => {
                made = Some(pair);
                break;
            }
            // Tokens differ in how they name Ed25519: try the other form.
            Err(
                error @ CkError::Pkcs11(
                    RvError::CurveNotSupported
                    | RvError::DomainParamsInvalid
                    | RvError::AttributeValueInvalid
                    | RvError::TemplateInconsistent,
                    _,
                ),
            ) => last_error = Some(error),
            // Listed but refused (SoftHSM2 with the mechanism disabled in its
            // configuration).
            Err(CkError::Pkcs11(RvError::MechanismInvalid, _)) => {
                return Err(Pkcs11Error::MissingMechanism {
                    uri: uri.to_string(),
                    token,
                    mechanism: mechanism_name,
                    purpose: "generating the key",
                    alternative,
                })
            }
            Err(error) => return Err(failed(uri, "generating the key pair")(error)),
        }
    }
    let Some((public_handle, private_handle)) = made else {
        return Err(match last_error {
            Some(error) => failed(uri, "generating the key pair")(error),
            None => Pkcs11Error::MissingMechanism {
                uri: uri.to_string(),
                token,
                mechanism: mechanism_name,
                purpose: "generating the key",
                alternative,
            },
        });
    };
    // Check on the token what it made: a key that could leave it is destroyed.
    let protected = open
        .session
        .get_attributes(
            private_handle,
            &[AttributeType::Extractable, AttributeType::Sensitive],
        )
        .map_err(failed(uri, "reading the new key's attributes"))?;
    let extractable = protected
        .iter()
        .any(|a| matches!(a, Attribute::Extractable(true)));
    let sensitive = protected
        .iter()
        .any(|a| matches!(a, Attribute::Sensitive(true)));
    if extractable || !sensitive {
        let _ = open.session.destroy_object(private_handle);
        let _ = open.session.destroy_object(public_handle);
        return Err(Pkcs11Error::Extractable {
            uri: uri.to_string(),
            token,
            what: "; the token made one anyway, and it was destroyed",
        });
    }
    let (mut public, _) = public_key_of(&open, uri, public_handle)?;
    if validate_label(label).is_ok() {
        let _ = public.set_label(label);
    }
    let key_uri = uri.for_key(label, &id);
    tracing::info!(uri = %key_uri, keyid = %public.keyid(), "generated a key pair on the token");
    Ok(GeneratedKey {
        public,
        uri: key_uri,
    })
}
