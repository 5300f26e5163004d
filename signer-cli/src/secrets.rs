//! Passphrases, private key files, and key sources (a file or a key on a PKCS#11 token).
//!
//! A passphrase comes from the environment variable named by `--passphrase-env`, the
//! first line of the file named by `--passphrase-file`, or the terminal (no echo). It is
//! held in zeroizing memory and never printed, logged or put in an error message. A
//! token's PIN comes from its URI's `pin-source` (or `pin-value`), or the terminal, and
//! is treated the same way (see [`crate::pkcs11`]).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Error};
use tuf_core::keys::{validate_label, LABEL_FIELD};
use tuf_core::{Key, PrivateKey, Signer};
use zeroize::Zeroizing;

use crate::pkcs11::{Pkcs11Uri, TokenSigner};
use crate::GlobalArgs;

/// Longest passphrase file read.
const MAX_PASSPHRASE_FILE: u64 = 4096;
/// Longest public or private key file read.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Where passphrases come from.
pub enum PassphraseSource {
    /// An environment variable.
    Env(String),
    /// The first line of a file.
    File(PathBuf),
    /// The terminal, without echo.
    Terminal,
}

impl PassphraseSource {
    /// The source the global options name.
    pub fn from_args(global: &GlobalArgs) -> Self {
        if let Some(name) = &global.passphrase_env {
            Self::Env(name.clone())
        } else if let Some(path) = &global.passphrase_file {
            Self::File(path.clone())
        } else {
            Self::Terminal
        }
    }

    /// Reads the passphrase for `what` (a key file); `confirm` asks twice at a terminal.
    pub fn read(&self, what: &str, confirm: bool) -> Result<Zeroizing<String>, Error> {
        let passphrase = match self {
            Self::Env(name) => Zeroizing::new(std::env::var(name).map_err(|_| {
                Error::msg(format!(
                    "the environment variable {name} (--passphrase-env) is not set or not UTF-8"
                ))
            })?),
            Self::File(path) => {
                let bytes = Zeroizing::new(read_capped(path, MAX_PASSPHRASE_FILE)?);
                let text = std::str::from_utf8(&bytes).map_err(|_| {
                    Error::msg(format!(
                        "{}: the passphrase file is not UTF-8",
                        path.display()
                    ))
                })?;
                Zeroizing::new(text.lines().next().unwrap_or("").to_owned())
            }
            Self::Terminal => {
                if !std::io::stdin().is_terminal() {
                    return Err(Error::msg(format!(
                        "{what}: a passphrase is needed and there is no terminal to ask on; \
                         use --passphrase-env NAME or --passphrase-file PATH"
                    )));
                }
                let first = Zeroizing::new(
                    rpassword::prompt_password(format!("Passphrase for {what}: "))
                        .context("reading the passphrase from the terminal")?,
                );
                if confirm {
                    let second = Zeroizing::new(
                        rpassword::prompt_password("Repeat the passphrase: ")
                            .context("reading the passphrase from the terminal")?,
                    );
                    if *first != *second {
                        return Err(Error::msg(
                            "the two passphrases differ; nothing was written",
                        ));
                    }
                }
                first
            }
        };
        if passphrase.is_empty() {
            return Err(Error::msg(format!(
                "{what}: the passphrase is empty; private keys are always encrypted"
            )));
        }
        Ok(passphrase)
    }
}

/// Reads a file of at most `max` bytes.
pub fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, Error> {
    let file =
        std::fs::File::open(path).map_err(|e| Error::msg(format!("{}: {e}", path.display())))?;
    tuf_core::fs::read_bounded(file, max).map_err(|error| match error {
        tuf_core::fs::BoundedReadError::TooLong { .. } => Error::msg(format!(
            "{}: larger than {max} bytes; is this the right file?",
            path.display()
        )),
        error => Error::msg(format!("{}: {error}", path.display())),
    })
}

/// Where a key is: a file (a PEM private key, or a `.pub.json` public key), or a key on
/// a PKCS#11 token named by an RFC 7512 `pkcs11:` URI. Shown, a URI's PIN is redacted.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A key file.
    File(PathBuf),
    /// A key object on a token.
    Pkcs11(Box<Pkcs11Uri>),
}

impl std::str::FromStr for KeySource {
    type Err = crate::pkcs11::UriError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.starts_with("pkcs11:") {
            Ok(Self::Pkcs11(Box::new(text.parse()?)))
        } else {
            Ok(Self::File(PathBuf::from(text)))
        }
    }
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Pkcs11(uri) => write!(f, "{uri}"),
        }
    }
}

/// Parses a key argument without echoing it: clap's own message for a bad value repeats
/// the value, and a `pkcs11:` URI may hold a `pin-value`. The message names the argument
/// and shows the URI with its PIN redacted.
#[derive(Clone, Copy, Debug)]
pub struct RedactingParser<T>(std::marker::PhantomData<T>);

impl<T> clap::builder::TypedValueParser for RedactingParser<T>
where
    T: std::str::FromStr + Clone + Send + Sync + 'static,
    T::Err: std::fmt::Display,
{
    type Value = T;

    fn parse_ref(
        &self,
        command: &clap::Command,
        argument: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        use clap::error::ErrorKind;
        let name = argument
            .map(|a| {
                a.get_long()
                    .map_or_else(|| a.get_id().to_string(), |l| format!("--{l}"))
            })
            .unwrap_or_else(|| "the key".to_owned());
        let text = value.to_str().ok_or_else(|| {
            clap::Error::raw(ErrorKind::InvalidUtf8, format!("{name}: not UTF-8\n"))
                .with_cmd(command)
        })?;
        text.parse().map_err(|error: T::Err| {
            clap::Error::raw(ErrorKind::ValueValidation, format!("{name}: {error}\n"))
                .with_cmd(command)
        })
    }
}

impl clap::builder::ValueParserFactory for KeySource {
    type Parser = RedactingParser<KeySource>;

    fn value_parser() -> Self::Parser {
        RedactingParser(std::marker::PhantomData)
    }
}

impl clap::builder::ValueParserFactory for Pkcs11Uri {
    type Parser = RedactingParser<Pkcs11Uri>;

    fn value_parser() -> Self::Parser {
        RedactingParser(std::marker::PhantomData)
    }
}

/// Opens a private key for signing: decrypts a key file (asking for its passphrase), or
/// opens the key on a token (asking for the token's PIN).
pub fn load_signer(
    source: &KeySource,
    passphrase: &PassphraseSource,
) -> Result<Box<dyn Signer>, Error> {
    match source {
        KeySource::File(path) => Ok(Box::new(load_private_key(path, passphrase)?)),
        KeySource::Pkcs11(uri) => Ok(Box::new(TokenSigner::open(uri)?)),
    }
}

/// Opens several private keys, asking once per key.
pub fn load_signers(
    sources: &[KeySource],
    passphrase: &PassphraseSource,
) -> Result<Vec<Box<dyn Signer>>, Error> {
    sources
        .iter()
        .map(|source| load_signer(source, passphrase))
        .collect()
}

/// Loads a public key: from a `.pub.json` file, or from a token's public key object
/// (labelled with the object's label).
pub fn load_public_key_from(source: &KeySource) -> Result<Key, Error> {
    match source {
        KeySource::File(path) => load_public_key(path),
        KeySource::Pkcs11(uri) => Ok(crate::pkcs11::public_key(uri)?),
    }
}

/// Loads several public keys.
pub fn load_public_keys_from(sources: &[KeySource]) -> Result<Vec<Key>, Error> {
    sources.iter().map(load_public_key_from).collect()
}

/// Loads an encrypted private key file, asking for its passphrase.
pub fn load_private_key(path: &Path, source: &PassphraseSource) -> Result<PrivateKey, Error> {
    let pem = Zeroizing::new(read_capped(path, MAX_KEY_FILE)?);
    let pem = std::str::from_utf8(&pem)
        .map_err(|_| Error::msg(format!("{}: not a PEM file", path.display())))?;
    let what = path.display().to_string();
    let passphrase = source.read(&what, false)?;
    let key = PrivateKey::from_pkcs8_pem(pem, Some(passphrase.as_bytes()))
        .map_err(|e| Error::msg(format!("{}: {e}", path.display())))?;
    tracing::info!(file = %path.display(), keyid = %key.keyid(), "loaded private key");
    Ok(key)
}

/// Loads a public key: a TUF key JSON file (`NAME.pub.json`, as `key generate` writes).
pub fn load_public_key(path: &Path) -> Result<Key, Error> {
    let bytes = read_capped(path, MAX_KEY_FILE)?;
    let value = tuf_core::json::parse_strict(&bytes, MAX_KEY_FILE as usize)
        .map_err(|e| Error::msg(format!("{}: {e}", path.display())))?;
    let key: Key = serde_json::from_value(value).map_err(|e| {
        Error::msg(format!(
            "{}: not a TUF public key ({{\"keytype\", \"scheme\", \"keyval\"}}): {e}",
            path.display()
        ))
    })?;
    key.verifying_key()
        .map_err(|e| Error::msg(format!("{}: {e}", path.display())))?;
    if let Some(label) = key.unrecognized_fields.get(LABEL_FIELD) {
        let problem = match label.as_str() {
            Some(text) => validate_label(text).err().map(|e| e.to_string()),
            None => Some("not a string".to_owned()),
        };
        if let Some(problem) = problem {
            return Err(Error::msg(format!(
                "{}: the label {LABEL_FIELD:?} is unusable: {problem}",
                path.display()
            )));
        }
    }
    Ok(key)
}
