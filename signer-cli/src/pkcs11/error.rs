//! Why a token key could not be found, used or made: every message names the URI, with
//! any `pin-value` redacted, and says what to do.

use std::path::PathBuf;

use cryptoki::error::Error as CkError;
use tuf_core::keys::KeyId;

use super::token::MODULE_ENV;

/// Why a token key could not be found, used or made. Each message names the URI, with
/// any `pin-value` redacted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    /// No module: the URI names none and the environment variable is unset.
    #[error(
        "{uri}: no PKCS#11 module: add module-path=/path/to/module.so to the URI's query \
         (after '?'), or set {MODULE_ENV}"
    )]
    NoModule {
        /// The URI.
        uri: String,
    },
    /// `module-name` found in none of the module directories.
    #[error("{uri}: no module named {name:?} in {dirs}; give module-path= instead")]
    ModuleNotFound {
        /// The URI.
        uri: String,
        /// The module name.
        name: String,
        /// The directories searched.
        dirs: String,
    },
    /// The module could not be loaded or initialised.
    #[error("{uri}: cannot load the PKCS#11 module {}: {reason}", module.display())]
    ModuleLoad {
        /// The URI.
        uri: String,
        /// The module's path.
        module: PathBuf,
        /// What the loader or `C_Initialize` said.
        reason: String,
    },
    /// No token matches the URI's token attributes.
    #[error("{uri}: no token matches ({available})")]
    NoToken {
        /// The URI.
        uri: String,
        /// The tokens the module has.
        available: String,
    },
    /// More than one token matches.
    #[error("{uri}: {count} tokens match ({matching}); add token= or serial= to pick one")]
    AmbiguousToken {
        /// The URI.
        uri: String,
        /// How many matched.
        count: usize,
        /// Which.
        matching: String,
    },
    /// No key object matches.
    #[error("{uri}: no {what} on token {token:?} matches{hint}")]
    NoObject {
        /// The URI.
        uri: String,
        /// The token's label.
        token: String,
        /// "private key" or "public key".
        what: &'static str,
        /// A hint on what is there.
        hint: String,
    },
    /// More than one key object matches.
    #[error("{uri}: {count} {what}s on token {token:?} match; add object= or id= to pick one")]
    AmbiguousObject {
        /// The URI.
        uri: String,
        /// The token's label.
        token: String,
        /// "private key" or "public key".
        what: &'static str,
        /// How many matched.
        count: usize,
    },
    /// The token refused the PIN.
    #[error(
        "{uri}: the token {token:?} refused the PIN (CKR_PIN_INCORRECT); tokens lock after \
         a few wrong PINs, so check it before trying again"
    )]
    WrongPin {
        /// The URI.
        uri: String,
        /// The token's label.
        token: String,
    },
    /// The PIN is locked.
    #[error("{uri}: the PIN of token {token:?} is locked; its security officer must unblock it")]
    PinLocked {
        /// The URI.
        uri: String,
        /// The token's label.
        token: String,
    },
    /// A PIN is needed and there is nowhere to read it from.
    #[error(
        "{uri}: token {token:?} needs a PIN and there is no terminal to ask on; add \
         pin-source=file:/path/to/pin-file to the URI's query"
    )]
    PinNeeded {
        /// The URI.
        uri: String,
        /// The token's label.
        token: String,
    },
    /// The `pin-source` file could not be read.
    #[error("{uri}: cannot read the PIN from {}: {reason}", path.display())]
    PinSource {
        /// The URI.
        uri: String,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The token lacks a mechanism the key needs.
    #[error(
        "{uri}: token {token:?} does not offer {mechanism}, which {purpose} needs; use a \
         token (or a SoftHSM2 build) that has it, or {alternative}"
    )]
    MissingMechanism {
        /// The URI.
        uri: String,
        /// The token's label.
        token: String,
        /// The mechanism's name.
        mechanism: &'static str,
        /// What needs it.
        purpose: &'static str,
        /// The other key type.
        alternative: &'static str,
    },
    /// A key of a type TUF here does not sign with.
    #[error(
        "{uri}: the key on token {token:?} is {what}; tuf-signer signs with Ed25519 or ECDSA P-256"
    )]
    UnsupportedKey {
        /// The URI.
        uri: String,
        /// The token's label.
        token: String,
        /// What it is.
        what: String,
    },
    /// The key asks for the PIN before every signature and cannot sign that way here.
    #[error(
        "{uri}: the key on token {token:?} asks for the PIN before every signature \
         (CKA_ALWAYS_AUTHENTICATE), and {why}; use a key without a per-signature PIN \
         policy, or an ECDSA P-256 key on a token that offers CKM_ECDSA_SHA256"
    )]
    PinPerSignature {
        /// The URI.
        uri: String,
        /// The token's label.
        token: String,
        /// Why it cannot sign.
        why: &'static str,
    },
    /// The private key can be exported from the token.
    #[error(
        "{uri}: the private key on token {token:?} is extractable (CKA_EXTRACTABLE true) \
         or not sensitive; generated keys never are{what}"
    )]
    Extractable {
        /// The URI.
        uri: String,
        /// The token's label.
        token: String,
        /// What was done about it.
        what: &'static str,
    },
    /// `key generate`: an object with this label or id is already on the token.
    #[error(
        "{uri}: token {token:?} already holds an object labelled {label:?} or with this id; \
         existing keys are never replaced"
    )]
    Exists {
        /// The URI.
        uri: String,
        /// The token's label.
        token: String,
        /// The label asked for.
        label: String,
    },
    /// The token's signature does not verify with its public key.
    #[error("{uri}: the token's signature does not verify with the key's public key {keyid}")]
    BadSignature {
        /// The URI.
        uri: String,
        /// The public key's keyid.
        keyid: KeyId,
    },
    /// Any other PKCS#11 failure.
    #[error("{uri}: {action} failed: {reason}")]
    Token {
        /// The URI.
        uri: String,
        /// What was being done.
        action: &'static str,
        /// The module's error: the function, its `CKR_` code and what the code means.
        reason: String,
    },
}

/// Turns a module's error during `action` into [`Pkcs11Error::Token`], naming `uri`.
pub(super) fn failed(
    uri: &impl std::fmt::Display,
    action: &'static str,
) -> impl FnOnce(CkError) -> Pkcs11Error {
    let uri = uri.to_string();
    move |source| Pkcs11Error::Token {
        uri,
        action,
        reason: describe(&source),
    }
}

/// A module's error in words: `C_Login: CKR_PIN_INCORRECT (The specified PIN is
/// incorrect…)`, or what the loader said.
pub(super) fn describe(error: &CkError) -> String {
    match error {
        CkError::Pkcs11(rv, function) => {
            let mut code = String::from("CKR");
            for c in format!("{rv:?}").chars() {
                if c.is_ascii_uppercase() {
                    code.push('_');
                }
                code.push(c.to_ascii_uppercase());
            }
            let function = format!("{function:?}");
            format!("C_{function}: {code} ({})", rv.to_string().trim())
        }
        CkError::LibraryLoading(error) => error.to_string(),
        other => other.to_string(),
    }
}
