//! Finding the token and the key object a URI names, logging in, and reading public keys
//! off the token.
//!
//! Private key material never leaves a token: no code here or in the sibling modules
//! asks a token for `CKA_VALUE` or wraps a key, and generated private keys are
//! `CKA_SENSITIVE` and not `CKA_EXTRACTABLE` (checked on the token after generation).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::AuthPin;
use p256::pkcs8::EncodePublicKey;
use tuf_core::keys::{validate_label, Key};
use tuf_core::KeyAlgorithm;
use zeroize::Zeroizing;

use super::error::{describe, failed, Pkcs11Error};
use super::uri::Pkcs11Uri;

/// Most key objects a "no such key" message lists.
const MAX_LISTED_OBJECTS: usize = 20;
/// Longest PIN file read.
const MAX_PIN_FILE: u64 = 1024;
/// The environment variable naming the module when a URI names none.
pub const MODULE_ENV: &str = "TUF_SIGNER_PKCS11_MODULE";
/// Directories searched for `module-name=NAME` (as `NAME.so` or `libNAME.so`).
const MODULE_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/aarch64-linux-gnu/pkcs11",
    "/usr/lib64/pkcs11",
    "/usr/lib/pkcs11",
    "/usr/local/lib/pkcs11",
    "/usr/lib/softhsm",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/local/lib",
];
/// DER of the P-256 curve's OID (1.2.840.10045.3.1.7), as `CKA_EC_PARAMS`.
pub(super) const EC_PARAMS_P256: &[u8] =
    &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `CKA_EC_PARAMS` of Ed25519 as the PrintableString "edwards25519" (PKCS#11 3.0 §2.3.10;
/// what SoftHSM2 accepts).
pub(super) const EC_PARAMS_ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";
/// `CKA_EC_PARAMS` of Ed25519 as the DER of its OID 1.3.101.112 (RFC 8410; what other
/// tokens accept).
pub(super) const EC_PARAMS_ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// Loaded and initialised modules, one per path: `C_Initialize` runs once per process.
fn modules() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The module a URI names: `module-path`, `module-name`, or the environment variable.
pub(super) fn module_path(uri: &Pkcs11Uri) -> Result<PathBuf, Pkcs11Error> {
    if let Some(path) = &uri.module_path {
        return Ok(path.clone());
    }
    if let Some(name) = &uri.module_name {
        for dir in MODULE_DIRS {
            for file in [format!("{name}.so"), format!("lib{name}.so")] {
                let candidate = Path::new(dir).join(file);
                if candidate.is_file() {
                    return Ok(candidate);
                }
            }
        }
        return Err(Pkcs11Error::ModuleNotFound {
            uri: uri.to_string(),
            name: name.clone(),
            dirs: MODULE_DIRS.join(", "),
        });
    }
    match std::env::var_os(MODULE_ENV) {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Err(Pkcs11Error::NoModule {
            uri: uri.to_string(),
        }),
    }
}

pub(super) fn load_module(uri: &Pkcs11Uri) -> Result<Pkcs11, Pkcs11Error> {
    let path = module_path(uri)?;
    let mut loaded = modules()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(module) = loaded.get(&path) {
        return Ok(module.clone());
    }
    let fail = |source: CkError| Pkcs11Error::ModuleLoad {
        uri: uri.to_string(),
        module: path.clone(),
        reason: describe(&source),
    };
    let module = Pkcs11::new(&path).map_err(fail)?;
    match module.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(error) => return Err(fail(error)),
    }
    tracing::debug!(module = %path.display(), "loaded PKCS#11 module");
    loaded.insert(path, module.clone());
    Ok(module)
}

pub(super) fn describe_token(slot: Slot, info: &TokenInfo) -> String {
    format!(
        "token={:?} serial={:?} in slot {}",
        info.label(),
        info.serial_number(),
        slot.id()
    )
}

/// The one token the URI's token attributes match.
pub(super) fn find_token(
    module: &Pkcs11,
    uri: &Pkcs11Uri,
) -> Result<(Slot, TokenInfo), Pkcs11Error> {
    let slots = module
        .get_slots_with_token()
        .map_err(failed(uri, "listing the slots"))?;
    let mut all = Vec::new();
    let mut matching = Vec::new();
    for slot in slots {
        let info = module
            .get_token_info(slot)
            .map_err(failed(uri, "reading the token information"))?;
        let wanted = |want: &Option<String>, have: &str| want.as_ref().is_none_or(|w| w == have);
        let matches = wanted(&uri.token, info.label())
            && wanted(&uri.manufacturer, info.manufacturer_id())
            && wanted(&uri.model, info.model())
            && wanted(&uri.serial, info.serial_number())
            && uri.slot_id.is_none_or(|id| id == slot.id());
        if !info.token_initialized() {
            continue;
        }
        all.push(describe_token(slot, &info));
        if matches {
            matching.push((slot, info));
        }
    }
    match matching.len() {
        1 => Ok(matching.remove(0)),
        0 => Err(Pkcs11Error::NoToken {
            uri: uri.to_string(),
            available: if all.is_empty() {
                "the module has no token".to_owned()
            } else {
                format!("the module has: {}", all.join("; "))
            },
        }),
        count => Err(Pkcs11Error::AmbiguousToken {
            uri: uri.to_string(),
            count,
            matching: matching
                .iter()
                .map(|(slot, info)| describe_token(*slot, info))
                .collect::<Vec<_>>()
                .join("; "),
        }),
    }
}

/// The PIN: `pin-value`, the first line of `pin-source`, or the terminal without echo.
pub(super) fn read_pin(uri: &Pkcs11Uri, token: &str) -> Result<AuthPin, Pkcs11Error> {
    if let Some(value) = &uri.pin_value {
        tracing::warn!(
            "the PIN is in the URI (pin-value), where other users can see it in the process \
             list; prefer pin-source=file:PATH"
        );
        return Ok(AuthPin::from(value.as_str()));
    }
    if let Some(path) = &uri.pin_source {
        let fail = |reason: String| Pkcs11Error::PinSource {
            uri: uri.to_string(),
            path: path.clone(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
        let bytes = Zeroizing::new(
            tuf_core::fs::read_bounded(file, MAX_PIN_FILE).map_err(|e| fail(e.to_string()))?,
        );
        let text = std::str::from_utf8(&bytes).map_err(|_| fail("not UTF-8".to_owned()))?;
        let line = text.lines().next().unwrap_or("");
        if line.is_empty() {
            return Err(fail("the first line is empty".to_owned()));
        }
        return Ok(AuthPin::from(line));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Pkcs11Error::PinNeeded {
            uri: uri.to_string(),
            token: token.to_owned(),
        });
    }
    let pin = Zeroizing::new(
        rpassword::prompt_password(format!("PIN for token {token:?} ({uri}): ")).map_err(|e| {
            Pkcs11Error::PinSource {
                uri: uri.to_string(),
                path: PathBuf::from("/dev/tty"),
                reason: e.to_string(),
            }
        })?,
    );
    Ok(AuthPin::from(pin.as_str()))
}

/// A session on the URI's token, logged in as the user when `login` is set (and the
/// token asks for a login). Returns the PIN too when the key will ask for it again
/// (`CKA_ALWAYS_AUTHENTICATE`).
pub(super) struct OpenToken {
    pub(super) session: Session,
    pub(super) slot: Slot,
    pub(super) info: TokenInfo,
    pub(super) module: Pkcs11,
    pub(super) pin: Option<AuthPin>,
}

pub(super) fn open_token(
    uri: &Pkcs11Uri,
    read_write: bool,
    login: bool,
) -> Result<OpenToken, Pkcs11Error> {
    let module = load_module(uri)?;
    let (slot, info) = find_token(&module, uri)?;
    let session = if read_write {
        module.open_rw_session(slot)
    } else {
        module.open_ro_session(slot)
    }
    .map_err(failed(uri, "opening a session"))?;
    let mut open = OpenToken {
        session,
        slot,
        info,
        module,
        pin: None,
    };
    if login && open.info.login_required() {
        log_in(&mut open, uri, UserType::User)?;
    }
    Ok(open)
}

pub(super) fn log_in(
    open: &mut OpenToken,
    uri: &Pkcs11Uri,
    user: UserType,
) -> Result<(), Pkcs11Error> {
    let token = open.info.label().to_owned();
    let pin = if open.info.protected_authentication_path() {
        None
    } else {
        match open.pin.take() {
            Some(pin) => Some(pin),
            None => Some(read_pin(uri, &token)?),
        }
    };
    let result = open.session.login(user, pin.as_ref());
    open.pin = pin;
    match result {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
            tracing::debug!(token = %token, "logged in to the token");
            Ok(())
        }
        Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => Err(Pkcs11Error::WrongPin {
            uri: uri.to_string(),
            token,
        }),
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(Pkcs11Error::PinLocked {
            uri: uri.to_string(),
            token,
        }),
        Err(source) => Err(failed(uri, "logging in")(source)),
    }
}

/// The search template of the URI's key object of class `class`.
pub(super) fn template(uri: &Pkcs11Uri, class: ObjectClass) -> Vec<Attribute> {
    let mut template = vec![Attribute::Class(class)];
    if let Some(label) = &uri.object {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
    }
    template
}

pub(super) fn what(class: ObjectClass) -> &'static str {
    if class == ObjectClass::PRIVATE_KEY {
        "private key"
    } else {
        "public key"
    }
}

/// The one object of `class` the URI names on the open token.
pub(super) fn find_object(
    open: &OpenToken,
    uri: &Pkcs11Uri,
    class: ObjectClass,
) -> Result<ObjectHandle, Pkcs11Error> {
    find_matching(open, uri, class, &template(uri, class))
}

/// The one object of `class` that matches `template` on the open token.
pub(super) fn find_matching(
    open: &OpenToken,
    uri: &Pkcs11Uri,
    class: ObjectClass,
    template: &[Attribute],
) -> Result<ObjectHandle, Pkcs11Error> {
    let mut found = open
        .session
        .find_objects(template)
        .map_err(failed(uri, "searching the token"))?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => {
            let labels = open
                .session
                .find_objects(&[Attribute::Class(class)])
                .ok()
                .map(|all| {
                    // As URI attributes, so that a label holding control characters
                    // prints as escapes; a few, however many keys the token holds.
                    all.into_iter()
                        .take(MAX_LISTED_OBJECTS)
                        .filter_map(|handle| object_label_id(open, handle).ok())
                        .map(|(label, id)| {
                            format!(
                                "object={};id={}",
                                super::uri::percent_encode(label.as_bytes()),
                                super::uri::percent_encode_all(&id)
                            )
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            Err(Pkcs11Error::NoObject {
                uri: uri.to_string(),
                token: open.info.label().to_owned(),
                what: what(class),
                hint: if labels.is_empty() {
                    String::new()
                } else {
                    format!(" (it has: {})", labels.join(", "))
                },
            })
        }
        count => Err(Pkcs11Error::AmbiguousObject {
            uri: uri.to_string(),
            token: open.info.label().to_owned(),
            what: what(class),
            count,
        }),
    }
}

pub(super) fn object_label_id(
    open: &OpenToken,
    handle: ObjectHandle,
) -> Result<(String, Vec<u8>), CkError> {
    let mut label = String::new();
    let mut id = Vec::new();
    for attribute in open
        .session
        .get_attributes(handle, &[AttributeType::Label, AttributeType::Id])?
    {
        match attribute {
            Attribute::Label(bytes) => label = String::from_utf8_lossy(&bytes).into_owned(),
            Attribute::Id(bytes) => id = bytes,
            _ => {}
        }
    }
    Ok((label, id))
}

/// `CKA_EC_POINT` is a DER OCTET STRING holding the point (PKCS#11 3.0 §2.3.3); some
/// tokens give the bare point. Returns the point.
pub(super) fn unwrap_ec_point(value: &[u8]) -> &[u8] {
    match value {
        [0x04, length, rest @ ..] if usize::from(*length) == rest.len() && *length < 0x80 => rest,
        [0x04, 0x81, length, rest @ ..] if usize::from(*length) == rest.len() => rest,
        bare => bare,
    }
}

/// A public key object's TUF key entry and algorithm, from its key type, curve and point.
pub(super) fn public_key_of(
    open: &OpenToken,
    uri: &Pkcs11Uri,
    handle: ObjectHandle,
) -> Result<(Key, KeyAlgorithm), Pkcs11Error> {
    let unsupported = |what: String| Pkcs11Error::UnsupportedKey {
        uri: uri.to_string(),
        token: open.info.label().to_owned(),
        what,
    };
    let attributes = open
        .session
        .get_attributes(
            handle,
            &[
                AttributeType::KeyType,
                AttributeType::EcParams,
                AttributeType::EcPoint,
            ],
        )
        .map_err(failed(uri, "reading the public key"))?;
    let (mut key_type, mut params, mut point) = (None, None, None);
    for attribute in attributes {
        match attribute {
            Attribute::KeyType(value) => key_type = Some(value),
            Attribute::EcParams(value) => params = Some(value),
            Attribute::EcPoint(value) => point = Some(value),
            _ => {}
        }
    }
    let key_type = key_type.ok_or_else(|| unsupported("of no key type".to_owned()))?;
    let point = point.ok_or_else(|| unsupported(format!("a {key_type} key with no point")))?;
    // The bare lengths: 32 bytes of Ed25519, 65 of an uncompressed P-256 point.
    let bare = (key_type == KeyType::EC_EDWARDS && point.len() == 32)
        || (key_type == KeyType::EC && point.len() == 65);
    let point = if bare {
        point.as_slice()
    } else {
        unwrap_ec_point(&point)
    };
    if key_type == KeyType::EC_EDWARDS {
        let bytes: [u8; 32] = point
            .try_into()
            .map_err(|_| unsupported(format!("an EdDSA key of {} bytes", point.len())))?;
        // Refuses bytes that are not a point of the curve.
        ed25519_point(&bytes).ok_or_else(|| unsupported("not an Ed25519 point".to_owned()))?;
        let key = Key::new("ed25519", "ed25519", hex::encode(bytes));
        return Ok((key, KeyAlgorithm::Ed25519));
    }
    if key_type == KeyType::EC {
        if params.as_deref() != Some(EC_PARAMS_P256) {
            return Err(unsupported(
                "an ECDSA key on a curve other than P-256".to_owned(),
            ));
        }
        let public = p256::PublicKey::from_sec1_bytes(point)
            .map_err(|_| unsupported("not a P-256 point".to_owned()))?;
        let pem = public
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .map_err(|_| unsupported("a P-256 point that does not encode".to_owned()))?;
        return Ok((
            Key::new("ecdsa", "ecdsa-sha2-nistp256", pem),
            KeyAlgorithm::EcdsaP256,
        ));
    }
    Err(unsupported(format!("a {key_type} key")))
}

/// Checks that 32 bytes are an Ed25519 public key, through the same verifier tuf-core
/// uses.
pub(super) fn ed25519_point(bytes: &[u8; 32]) -> Option<()> {
    Key::new("ed25519", "ed25519", hex::encode(bytes))
        .verifying_key()
        .ok()
        .map(|_| ())
}

/// The public key the URI names, with the object's label as the key's label when it is
/// a usable one. Reads a public key object; logs in only when the token shows no such
/// object without a login (some HSMs keep public keys private) and a PIN can be had:
/// from the URI, or asked at a terminal.
pub fn public_key(uri: &Pkcs11Uri) -> Result<Key, Pkcs11Error> {
    let mut open = open_token(uri, false, false)?;
    let handle = match find_object(&open, uri, ObjectClass::PUBLIC_KEY) {
        Ok(handle) => handle,
        Err(Pkcs11Error::NoObject { .. })
            if (uri.pin_source.is_some()
                || uri.pin_value.is_some()
                || std::io::stdin().is_terminal())
                && open.info.login_required() =>
        {
            log_in(&mut open, uri, UserType::User)?;
            find_object(&open, uri, ObjectClass::PUBLIC_KEY)?
        }
        Err(error) => return Err(error),
    };
    let (mut key, _) = public_key_of(&open, uri, handle)?;
    if let Ok((label, _)) = object_label_id(&open, handle) {
        if validate_label(&label).is_ok() {
            // A valid label always sets.
            let _ = key.set_label(&label);
        }
    }
    Ok(key)
}

/// The mechanism a key algorithm signs with, and its name for messages.
pub(super) fn signing_mechanism(
    algorithm: KeyAlgorithm,
) -> (MechanismType, &'static str, &'static str) {
    match algorithm {
        KeyAlgorithm::Ed25519 => (MechanismType::EDDSA, "CKM_EDDSA", "an ECDSA P-256 key"),
        KeyAlgorithm::EcdsaP256 => (MechanismType::ECDSA, "CKM_ECDSA", "an Ed25519 key"),
    }
}

pub(super) fn require_mechanism(
    open: &OpenToken,
    uri: &Pkcs11Uri,
    mechanism: MechanismType,
    name: &'static str,
    purpose: &'static str,
    alternative: &'static str,
) -> Result<(), Pkcs11Error> {
    let missing = || Pkcs11Error::MissingMechanism {
        uri: uri.to_string(),
        token: open.info.label().to_owned(),
        mechanism: name,
        purpose,
        alternative,
    };
    // The token's list (PKCS#11 3.0 §5.5, C_GetMechanismList). A token that lists a
    // mechanism and then refuses it is caught when signing.
    let offered = open
        .module
        .get_mechanism_list(open.slot)
        .map_err(failed(uri, "listing the token's mechanisms"))?;
    if offered.contains(&mechanism) {
        Ok(())
    } else {
        Err(missing())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ec_points_unwrap_from_their_octet_string() {
        let mut wrapped = vec![0x04, 0x20];
        wrapped.extend([7u8; 32]);
        assert_eq!(unwrap_ec_point(&wrapped), &[7u8; 32]);
        // An uncompressed P-256 point, wrapped and bare.
        let mut point = vec![0x04];
        point.extend([9u8; 64]);
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend(&point);
        assert_eq!(unwrap_ec_point(&wrapped), point.as_slice());
        assert_eq!(unwrap_ec_point(&point), point.as_slice());
        // A length that does not match is not unwrapped.
        assert_eq!(unwrap_ec_point(&[0x04, 0x05, 1, 2]), &[0x04, 0x05, 1, 2]);
    }
}
