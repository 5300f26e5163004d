//! Pieces shared by several roles: `_type` markers, the `expires` date format, hash
//! checks, `MetaFile` entries and role key lists.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::MetadataError;
use crate::hash::Hashes;
use crate::json::Value;
use crate::keys::KeyId;

/// Extension fields kept verbatim (python-tuf's `unrecognized_fields`).
pub type UnrecognizedFields = BTreeMap<String, Value>;

/// The extension fields of an entry of a large map (a target file's `custom` among them),
/// held once for all the entries that carry the same ones.
///
/// A registry lists a million target files, and most carry one of a few `custom` objects
/// (`{"tarball": "upstream"}` for every release whose tarball stays upstream). Held apart,
/// each such object is two map nodes, about 1.3 KB per entry: more than the rest of the
/// entry. Loading a document shares equal fields between neighbouring entries, and a
/// change through [`DerefMut`](std::ops::DerefMut) copies them first, so an entry's fields
/// read and change as a plain [`UnrecognizedFields`] map.
#[derive(Clone, Default)]
pub struct SharedFields(Option<Arc<UnrecognizedFields>>);

/// The fields of every entry that has none.
static NO_FIELDS: UnrecognizedFields = BTreeMap::new();

impl SharedFields {
    /// No extension fields.
    pub fn new() -> Self {
        Self(None)
    }

    /// Holds `self`'s fields in the same place as `other`'s if the two are equal.
    pub(crate) fn share_if_equal(&mut self, other: &SharedFields) {
        if let (Some(mine), Some(theirs)) = (&self.0, &other.0) {
            if !Arc::ptr_eq(mine, theirs) && mine == theirs {
                self.0 = Some(Arc::clone(theirs));
            }
        }
    }

    /// Whether `self` and `other` hold their fields in the same place.
    #[cfg(test)]
    pub(crate) fn is_shared_with(&self, other: &SharedFields) -> bool {
        matches!((&self.0, &other.0), (Some(a), Some(b)) if Arc::ptr_eq(a, b))
    }
}

impl std::ops::Deref for SharedFields {
    type Target = UnrecognizedFields;
    fn deref(&self) -> &UnrecognizedFields {
        self.0.as_deref().unwrap_or(&NO_FIELDS)
    }
}

impl std::ops::DerefMut for SharedFields {
    /// These fields alone, copied first if other entries hold them too.
    fn deref_mut(&mut self) -> &mut UnrecognizedFields {
        Arc::make_mut(self.0.get_or_insert_with(Default::default))
    }
}

impl From<UnrecognizedFields> for SharedFields {
    fn from(fields: UnrecognizedFields) -> Self {
        if fields.is_empty() {
            Self(None)
        } else {
            Self(Some(Arc::new(fields)))
        }
    }
}

impl PartialEq for SharedFields {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for SharedFields {}

impl std::fmt::Debug for SharedFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl Serialize for SharedFields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(serializer)
    }
}

macro_rules! type_tag {
    ($name:ident, $value:literal) => {
        #[doc = concat!("The `_type` marker `\"", $value, "\"` (serialises as that string).")]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name;

        impl $name {
            /// The `_type` string.
            pub const NAME: &'static str = $value;
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str($value)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let found = String::deserialize(deserializer)?;
                if found == $value {
                    Ok($name)
                } else {
                    Err(serde::de::Error::custom(format!(
                        "expected _type {:?}, found {:?}",
                        $value, found
                    )))
                }
            }
        }
    };
}

type_tag!(RootType, "root");
type_tag!(TargetsType, "targets");
type_tag!(SnapshotType, "snapshot");
type_tag!(TimestampType, "timestamp");

/// The one date format TUF metadata uses: `YYYY-MM-DDTHH:MM:SSZ` (UTC, no fractions).
pub const EXPIRES_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// Parses an `expires` value, accepting exactly the form python-tuf writes and reads, so
/// every accepted date re-serialises to the same bytes.
pub fn parse_expires(text: &str) -> Option<DateTime<Utc>> {
    let shape_ok = text.len() == 20
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    NaiveDateTime::parse_from_str(text, EXPIRES_FORMAT)
        .ok()
        .map(|naive| naive.and_utc())
}

/// Formats an `expires` value.
pub fn format_expires(when: &DateTime<Utc>) -> String {
    when.format(EXPIRES_FORMAT).to_string()
}

/// serde adaptor for `expires` fields.
pub(crate) mod expires_serde {
    use super::*;

    pub fn serialize<S: Serializer>(when: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_expires(when))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        parse_expires(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid date {text:?}: expected YYYY-MM-DDTHH:MM:SSZ"
            ))
        })
    }
}

/// Drops the nanoseconds of a time, as metadata dates have whole seconds.
pub fn whole_seconds(when: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(when.timestamp(), 0).unwrap_or(when)
}

/// The keys and threshold of one role (root's `roles` entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleKeys {
    /// Keyids authorised to sign the role.
    pub keyids: Vec<KeyId>,
    /// How many distinct authorised keys must sign.
    pub threshold: u64,
    /// Extension fields, kept verbatim.
    #[serde(flatten)]
    pub unrecognized_fields: UnrecognizedFields,
}

impl RoleKeys {
    /// A role entry with no extension fields.
    pub fn new(keyids: Vec<KeyId>, threshold: u64) -> Self {
        Self {
            keyids,
            threshold,
            unrecognized_fields: UnrecognizedFields::new(),
        }
    }
}

/// Checks a role's threshold and keyid list (TUF §4.3: keyids unique, threshold ≥ 1).
pub(crate) fn validate_role_keys(
    path: &str,
    keyids: &[KeyId],
    threshold: u64,
) -> Result<(), MetadataError> {
    if threshold < 1 {
        return Err(MetadataError::schema(
            format!("{path}.threshold"),
            "threshold must be at least 1",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, keyid) in keyids.iter().enumerate() {
        if !seen.insert(keyid) {
            return Err(MetadataError::schema(
                format!("{path}.keyids[{i}]"),
                format!("keyid {keyid} is listed twice"),
            ));
        }
    }
    Ok(())
}

/// An entry of snapshot or timestamp `meta`: the version (and optionally length and
/// hashes) of another metadata file (TUF §4.4, METAFILES).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetaFile {
    /// Version of the listed metadata.
    pub version: u64,
    /// Exact length in bytes of the listed file, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// Digests of the listed file, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<Hashes>,
    /// Extension fields, kept verbatim.
    #[serde(flatten)]
    pub unrecognized_fields: UnrecognizedFields,
}

impl MetaFile {
    /// An entry naming only a version.
    pub fn new(version: u64) -> Self {
        Self {
            version,
            length: None,
            hashes: None,
            unrecognized_fields: UnrecognizedFields::new(),
        }
    }

    /// An entry with version and length and no hashes (§4.4: for a file whose version
    /// alone identifies it).
    pub fn with_length(version: u64, length: u64) -> Self {
        let mut entry = Self::new(version);
        entry.length = Some(length);
        entry
    }

    /// An entry with version, length and sha256 of `bytes`.
    pub fn with_bytes(version: u64, bytes: &[u8]) -> Self {
        let mut entry = Self::new(version);
        entry.length = Some(bytes.len() as u64);
        entry.hashes = Some(crate::hash::sha256_hashes(bytes));
        entry
    }

    pub(crate) fn validate(&self, path: &str) -> Result<(), MetadataError> {
        if self.version < 1 {
            return Err(MetadataError::schema(
                format!("{path}.version"),
                "version must be at least 1",
            ));
        }
        // `hashes` was checked as it was read (see `Hashes`).
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_accepts_only_the_exact_form() {
        assert!(parse_expires("2030-01-02T03:04:05Z").is_some());
        for bad in [
            "2030-01-02T03:04:05",
            "2030-01-02T03:04:05.5Z",
            "2030-01-02 03:04:05Z",
            "2030-1-02T03:04:05Z",
            "2030-01-02T03:04:05+00:00",
            "2030-13-02T03:04:05Z",
            "2030-02-30T03:04:05Z",
            "２０30-01-02T03:04:05Z",
        ] {
            assert!(parse_expires(bad).is_none(), "{bad}");
        }
        let when = parse_expires("2030-01-02T03:04:05Z").expect("valid");
        assert_eq!(format_expires(&when), "2030-01-02T03:04:05Z");
    }
}
