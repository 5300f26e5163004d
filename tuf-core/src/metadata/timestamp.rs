//! Timestamp metadata (TUF §4.6): the current snapshot's version, length and hashes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::common::{expires_serde, MetaFile, TimestampType, UnrecognizedFields};
use super::{validate_version, MetadataError, Role, SPEC_VERSION};

/// The one key of timestamp `meta`.
pub const SNAPSHOT_META_NAME: &str = "snapshot.json";

/// The `signed` content of timestamp metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timestamp {
    /// Always `"timestamp"`.
    #[serde(rename = "_type")]
    pub type_tag: TimestampType,
    /// Specification version the metadata follows.
    pub spec_version: String,
    /// Metadata version.
    pub version: u64,
    /// When the metadata stops being trusted.
    #[serde(with = "expires_serde")]
    pub expires: DateTime<Utc>,
    /// Exactly one entry, `snapshot.json`.
    pub meta: BTreeMap<String, MetaFile>,
    /// Extension fields, kept verbatim.
    #[serde(flatten)]
    pub unrecognized_fields: UnrecognizedFields,
}

impl Timestamp {
    /// A version 1 timestamp naming snapshot version 1.
    pub fn new(expires: DateTime<Utc>) -> Self {
        Self {
            type_tag: TimestampType,
            spec_version: SPEC_VERSION.to_owned(),
            version: 1,
            expires,
            meta: [(SNAPSHOT_META_NAME.to_owned(), MetaFile::new(1))].into(),
            unrecognized_fields: UnrecognizedFields::new(),
        }
    }

    /// The snapshot entry (validated to exist on load).
    pub fn snapshot_meta(&self) -> Option<&MetaFile> {
        self.meta.get(SNAPSHOT_META_NAME)
    }
}

impl Role for Timestamp {
    const TYPE: &'static str = "timestamp";

    role_accessors!();

    fn validate(&self) -> Result<(), MetadataError> {
        validate_version(self.version)?;
        if self.meta.len() != 1 || !self.meta.contains_key(SNAPSHOT_META_NAME) {
            return Err(MetadataError::schema(
                "signed.meta",
                "timestamp meta must list exactly \"snapshot.json\"",
            ));
        }
        for (name, entry) in &self.meta {
            entry.validate(&format!("signed.meta.{name}"))?;
        }
        Ok(())
    }
}
