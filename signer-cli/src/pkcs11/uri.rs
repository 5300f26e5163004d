//! PKCS#11 URIs (RFC 7512): which module, which token, which key object, and where the
//! PIN comes from.
//!
//! A URI is `pkcs11:` followed by path attributes separated by `;`, then optionally `?` and
//! query attributes separated by `&`; values are percent-encoded (RFC 7512 §2.3). This
//! parser is strict where RFC 7512 lets a consumer choose:
//! - an attribute given twice is refused (§2.3 forbids it in the path);
//! - an attribute tuf-signer does not act on is refused, not ignored, so that a misspelt
//!   filter (`objekt=`) cannot silently select every key on a token;
//! - a `pin-value` is held in zeroizing memory, and every rendering of the URI (its
//!   `Display`, its `Debug`, every error message) shows `pin-value=REDACTED` instead.

use std::fmt;
use std::path::PathBuf;

use zeroize::Zeroizing;

/// Longest URI accepted: RFC 7512 URIs of real tokens are well under 1 KiB.
const MAX_URI: usize = 4096;

/// Why a `pkcs11:` URI was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UriError {
    /// The text does not start with `pkcs11:`.
    #[error("not a PKCS#11 URI: it must start with \"pkcs11:\"")]
    NotPkcs11,
    /// Longer than any real token's URI.
    #[error("the PKCS#11 URI is longer than {MAX_URI} bytes")]
    TooLong,
    /// An attribute without `=`.
    #[error("{uri}: the attribute {attribute:?} has no \"=\"")]
    MissingEquals {
        /// The URI, PIN redacted.
        uri: String,
        /// The attribute as written.
        attribute: String,
    },
    /// A percent escape that is not two hex digits.
    #[error("{uri}: the {attribute} value has a bad percent escape")]
    BadEscape {
        /// The URI, PIN redacted.
        uri: String,
        /// The attribute's name.
        attribute: String,
    },
    /// A text attribute whose decoded bytes are not UTF-8.
    #[error("{uri}: the {attribute} value is not UTF-8")]
    NotUtf8 {
        /// The URI, PIN redacted.
        uri: String,
        /// The attribute's name.
        attribute: String,
    },
    /// The same attribute twice.
    #[error("{uri}: the attribute {attribute} is given twice")]
    Duplicate {
        /// The URI, PIN redacted.
        uri: String,
        /// The attribute's name.
        attribute: String,
    },
    /// An attribute tuf-signer does not act on.
    #[error(
        "{uri}: the attribute {attribute:?} is not supported (path: token, manufacturer, \
         model, serial, slot-id, object, id, type; query: module-path, module-name, \
         pin-source, pin-value)"
    )]
    Unsupported {
        /// The URI, PIN redacted.
        uri: String,
        /// The attribute's name.
        attribute: String,
    },
    /// A value that is not allowed for its attribute.
    #[error("{uri}: {attribute}={value:?} is not allowed: {why}")]
    BadValue {
        /// The URI, PIN redacted.
        uri: String,
        /// The attribute's name.
        attribute: String,
        /// The value as decoded.
        value: String,
        /// What is allowed.
        why: &'static str,
    },
}

/// Which kind of object a URI names (`type=`, RFC 7512 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    /// `type=private`: a private key.
    Private,
    /// `type=public`: a public key.
    Public,
}

/// A parsed `pkcs11:` URI. Its `Display` and `Debug` never show a `pin-value`.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token=`: the token's label.
    pub token: Option<String>,
    /// `manufacturer=`: the token's manufacturer ID.
    pub manufacturer: Option<String>,
    /// `model=`: the token's model.
    pub model: Option<String>,
    /// `serial=`: the token's serial number.
    pub serial: Option<String>,
    /// `slot-id=`: the slot's number.
    pub slot_id: Option<u64>,
    /// `object=`: the key object's label (`CKA_LABEL`).
    pub object: Option<String>,
    /// `id=`: the key object's `CKA_ID` bytes.
    pub id: Option<Vec<u8>>,
    /// `type=`: private or public key.
    pub object_type: Option<ObjectType>,
    /// `module-path=`: the PKCS#11 module's file.
    pub module_path: Option<PathBuf>,
    /// `module-name=`: the PKCS#11 module's name, looked up in the system's module
    /// directories.
    pub module_name: Option<String>,
    /// `pin-source=`: a file whose first line is the PIN (`file:` URI or a path).
    pub pin_source: Option<PathBuf>,
    /// `pin-value=`: the PIN itself (visible to other users in the process list: prefer
    /// `pin-source`).
    pub pin_value: Option<Zeroizing<String>>,
    /// The URI as written, `pin-value` redacted.
    redacted: String,
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pkcs11Uri").field(&self.redacted).finish()
    }
}

/// Decodes RFC 3986 percent escapes.
fn percent_decode(value: &str) -> Option<Vec<u8>> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        if byte == b'%' {
            let hex = bytes.get(at + 1..at + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            out.push(byte);
            at += 1;
        }
    }
    Some(out)
}

/// Percent-encodes bytes for a URI value, as RFC 7512 §2.3 asks: everything but
/// unreserved characters.
pub fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The URI with any `pin-value` replaced by `REDACTED`, for messages about a URI that
/// did not parse.
fn redact(text: &str) -> String {
    let (path, query) = match text.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (text, None),
    };
    let redact_part = |part: &str, separator: char| -> String {
        part.split(separator)
            .map(|attribute| {
                if attribute.starts_with("pin-value") {
                    "pin-value=REDACTED"
                } else {
                    attribute
                }
            })
            .collect::<Vec<_>>()
            .join(&separator.to_string())
    };
    let mut out = redact_part(path, ';');
    if let Some(query) = query {
        out.push('?');
        out.push_str(&redact_part(query, '&'));
    }
    out
}

impl std::str::FromStr for Pkcs11Uri {
    type Err = UriError;

    fn from_str(text: &str) -> Result<Self, UriError> {
        if text.len() > MAX_URI {
            return Err(UriError::TooLong);
        }
        let rest = text.strip_prefix("pkcs11:").ok_or(UriError::NotPkcs11)?;
        let redacted = redact(text);
        let uri_text = redacted.clone();
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, query),
            None => (rest, ""),
        };
        let mut uri = Pkcs11Uri {
            token: None,
            manufacturer: None,
            model: None,
            serial: None,
            slot_id: None,
            object: None,
            id: None,
            object_type: None,
            module_path: None,
            module_name: None,
            pin_source: None,
            pin_value: None,
            redacted,
        };
        let mut seen: Vec<String> = Vec::new();
        let attributes = path
            .split(';')
            .map(|a| (a, false))
            .chain(query.split('&').map(|a| (a, true)));
        for (attribute, in_query) in attributes.filter(|(a, _)| !a.is_empty()) {
            let Some((name, raw)) = attribute.split_once('=') else {
                return Err(UriError::MissingEquals {
                    uri: uri_text,
                    attribute: if attribute.starts_with("pin-value") {
                        "pin-value".to_owned()
                    } else {
                        attribute.to_owned()
                    },
                });
            };
            if seen.iter().any(|s| s == name) {
                return Err(UriError::Duplicate {
                    uri: uri_text,
                    attribute: name.to_owned(),
                });
            }
            seen.push(name.to_owned());
            let bytes = Zeroizing::new(percent_decode(raw).ok_or_else(|| UriError::BadEscape {
                uri: uri_text.clone(),
                attribute: name.to_owned(),
            })?);
            if name == "id" && !in_query {
                uri.id = Some(bytes.to_vec());
                continue;
            }
            let value = Zeroizing::new(String::from_utf8(bytes.to_vec()).map_err(|_| {
                UriError::NotUtf8 {
                    uri: uri_text.clone(),
                    attribute: name.to_owned(),
                }
            })?);
            let bad = |why: &'static str| UriError::BadValue {
                uri: uri_text.clone(),
                attribute: name.to_owned(),
                value: value.to_string(),
                why,
            };
            match (name, in_query) {
                ("token", false) => uri.token = Some(value.to_string()),
                ("manufacturer", false) => uri.manufacturer = Some(value.to_string()),
                ("model", false) => uri.model = Some(value.to_string()),
                ("serial", false) => uri.serial = Some(value.to_string()),
                ("object", false) => uri.object = Some(value.to_string()),
                ("slot-id", false) => {
                    uri.slot_id = Some(value.parse().map_err(|_| bad("a slot number"))?);
                }
                ("type", false) => {
                    uri.object_type = Some(match value.as_str() {
                        "private" => ObjectType::Private,
                        "public" => ObjectType::Public,
                        _ => return Err(bad("tuf-signer uses keys: private or public")),
                    });
                }
                ("module-path", true) => {
                    let path = PathBuf::from(value.as_str());
                    if !path.is_absolute() {
                        return Err(bad("an absolute path (RFC 7512 §2.3)"));
                    }
                    uri.module_path = Some(path);
                }
                ("module-name", true) => {
                    if value.is_empty() || value.contains('/') || value.starts_with('.') {
                        return Err(bad("a module's name, without a directory"));
                    }
                    uri.module_name = Some(value.to_string());
                }
                ("pin-source", true) => {
                    let path = value
                        .strip_prefix("file://")
                        .or_else(|| value.strip_prefix("file:"))
                        .unwrap_or(value.as_str());
                    if path.is_empty() {
                        return Err(bad("a file: URI or a path to a file holding the PIN"));
                    }
                    uri.pin_source = Some(PathBuf::from(path));
                }
                ("pin-value", true) => uri.pin_value = Some(value),
                _ => {
                    return Err(UriError::Unsupported {
                        uri: uri_text,
                        attribute: name.to_owned(),
                    })
                }
            }
        }
        if uri.module_path.is_some() && uri.module_name.is_some() {
            return Err(UriError::BadValue {
                uri: uri_text,
                attribute: "module-name".to_owned(),
                value: uri.module_name.unwrap_or_default(),
                why: "give module-path or module-name, not both",
            });
        }
        if uri.pin_source.is_some() && uri.pin_value.is_some() {
            return Err(UriError::BadValue {
                uri: uri_text,
                attribute: "pin-source".to_owned(),
                value: uri
                    .pin_source
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                why: "give pin-source or pin-value, not both",
            });
        }
        Ok(uri)
    }
}

impl Pkcs11Uri {
    /// The URI of one key object: this URI's token filters and module, the given label
    /// and id, and this URI's `pin-source` if it has one (never a `pin-value`).
    pub fn for_key(&self, label: &str, id: &[u8]) -> String {
        let mut path = Vec::new();
        for (name, value) in [
            ("token", &self.token),
            ("manufacturer", &self.manufacturer),
            ("model", &self.model),
            ("serial", &self.serial),
        ] {
            if let Some(value) = value {
                path.push(format!("{name}={}", percent_encode(value.as_bytes())));
            }
        }
        if let Some(slot) = self.slot_id {
            path.push(format!("slot-id={slot}"));
        }
        path.push(format!("object={}", percent_encode(label.as_bytes())));
        path.push(format!("id={}", percent_encode_all(id)));
        let mut query = Vec::new();
        if let Some(module) = &self.module_path {
            query.push(format!(
                "module-path={}",
                percent_encode_path(&module.display().to_string())
            ));
        }
        if let Some(name) = &self.module_name {
            query.push(format!("module-name={}", percent_encode(name.as_bytes())));
        }
        if let Some(source) = &self.pin_source {
            query.push(format!(
                "pin-source=file:{}",
                percent_encode_path(&source.display().to_string())
            ));
        }
        let mut uri = format!("pkcs11:{}", path.join(";"));
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(&query.join("&"));
        }
        uri
    }
}

/// Every byte percent-encoded, as RFC 7512's examples write `id`.
pub(super) fn percent_encode_all(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// A path in a query value: `/` stays readable.
fn percent_encode_path(path: &str) -> String {
    path.split('/')
        .map(|segment| percent_encode(segment.as_bytes()))
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Pkcs11Uri, UriError> {
        text.parse()
    }

    #[test]
    fn rfc_7512_examples_parse() {
        let uri = parse(
            "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;\
             model=1.0;object=my-certificate;type=private;serial=\
             ?pin-source=file:/etc/token&module-path=/usr/lib/libsofthsm2.so",
        )
        .unwrap();
        assert_eq!(uri.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
        assert_eq!(uri.manufacturer.as_deref(), Some("Snake Oil, Inc."));
        assert_eq!(uri.model.as_deref(), Some("1.0"));
        assert_eq!(uri.serial.as_deref(), Some(""));
        assert_eq!(uri.object.as_deref(), Some("my-certificate"));
        assert_eq!(uri.object_type, Some(ObjectType::Private));
        assert_eq!(uri.pin_source, Some(PathBuf::from("/etc/token")));
        assert_eq!(
            uri.module_path,
            Some(PathBuf::from("/usr/lib/libsofthsm2.so"))
        );
        let uri = parse("pkcs11:id=%01%02%FF;slot-id=3").unwrap();
        assert_eq!(uri.id, Some(vec![1, 2, 0xff]));
        assert_eq!(uri.slot_id, Some(3));
        assert!(uri.token.is_none() && uri.pin_value.is_none());
    }

    #[test]
    fn a_pin_value_is_never_shown() {
        let uri = parse("pkcs11:token=a;object=b?pin-value=123456&module-name=softhsm2").unwrap();
        assert_eq!(uri.pin_value.as_deref().map(String::as_str), Some("123456"));
        for shown in [uri.to_string(), format!("{uri:?}")] {
            assert!(!shown.contains("123456"), "{shown}");
            assert!(shown.contains("pin-value=REDACTED"), "{shown}");
        }
        assert!(!uri.for_key("b", &[1]).contains("pin-value"));
        // Nor in the message about a URI that does not parse.
        for bad in [
            "pkcs11:token=a;nonsense=1?pin-value=123456",
            "pkcs11:token=a;token=b?pin-value=123456",
            "pkcs11:slot-id=x?pin-value=123456",
            "pkcs11:token=a?pin-value=12%ZZ3456",
            "pkcs11:token=a?pin-value123456",
        ] {
            let error = parse(bad).unwrap_err().to_string();
            assert!(!error.contains("123456"), "{error}");
            assert!(!error.contains("3456"), "{error}");
        }
    }

    #[test]
    fn strictness() {
        assert_eq!(parse("/tmp/key.pem").unwrap_err(), UriError::NotPkcs11);
        assert!(matches!(
            parse("pkcs11:objekt=root").unwrap_err(),
            UriError::Unsupported { attribute, .. } if attribute == "objekt"
        ));
        assert!(matches!(
            parse("pkcs11:object=a;object=b").unwrap_err(),
            UriError::Duplicate { .. }
        ));
        assert!(matches!(
            parse("pkcs11:object=%4").unwrap_err(),
            UriError::BadEscape { .. }
        ));
        assert!(matches!(
            parse("pkcs11:object=%FF").unwrap_err(),
            UriError::NotUtf8 { .. }
        ));
        assert!(matches!(
            parse("pkcs11:type=cert").unwrap_err(),
            UriError::BadValue { .. }
        ));
        assert!(matches!(
            parse("pkcs11:object=a?module-path=lib.so").unwrap_err(),
            UriError::BadValue { .. }
        ));
        assert!(matches!(
            parse("pkcs11:object=a?module-name=../x").unwrap_err(),
            UriError::BadValue { .. }
        ));
        // A path attribute in the query, or a query attribute in the path, is refused.
        assert!(matches!(
            parse("pkcs11:module-path=/x.so").unwrap_err(),
            UriError::Unsupported { .. }
        ));
        assert!(matches!(
            parse("pkcs11:?object=a").unwrap_err(),
            UriError::Unsupported { .. }
        ));
        assert!(matches!(
            parse("pkcs11:a?pin-source=/p&pin-value=1").unwrap_err(),
            UriError::MissingEquals { .. }
        ));
        assert!(matches!(
            parse("pkcs11:?pin-source=/p&pin-value=1").unwrap_err(),
            UriError::BadValue { .. }
        ));
        assert_eq!(
            parse(&format!("pkcs11:object={}", "a".repeat(MAX_URI))).unwrap_err(),
            UriError::TooLong
        );
        // Exactly the cap is accepted.
        let longest = format!(
            "pkcs11:object={}",
            "a".repeat(MAX_URI - "pkcs11:object=".len())
        );
        assert_eq!(longest.len(), MAX_URI);
        assert!(parse(&longest).is_ok());
        for module_name in ["", "dir/lib", ".hidden", "../up"] {
            assert!(
                matches!(
                    parse(&format!("pkcs11:object=a?module-name={module_name}")).unwrap_err(),
                    UriError::BadValue { .. }
                ),
                "{module_name:?}"
            );
        }
        assert_eq!(
            parse("pkcs11:object=a;type=public").unwrap().object_type,
            Some(ObjectType::Public)
        );
    }

    #[test]
    fn the_uri_of_a_key_reads_back() {
        let uri = parse(
            "pkcs11:token=Root%20one;serial=42?module-path=/usr/lib/soft%20hsm/lib.so\
             &pin-source=file:/run/pin",
        )
        .unwrap();
        let key = uri.for_key("root 1", &[0, 0xab]);
        assert_eq!(
            key,
            "pkcs11:token=Root%20one;serial=42;object=root%201;id=%00%AB\
             ?module-path=/usr/lib/soft%20hsm/lib.so&pin-source=file:/run/pin"
        );
        let back = parse(&key).unwrap();
        assert_eq!(back.token.as_deref(), Some("Root one"));
        assert_eq!(back.object.as_deref(), Some("root 1"));
        assert_eq!(back.id, Some(vec![0, 0xab]));
        assert_eq!(back.module_path, uri.module_path);
        assert_eq!(back.pin_source, uri.pin_source);
    }
}
