//! Snapshot metadata (TUF §4.4): the version of every targets metadata file.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::common::{expires_serde, MetaFile, SnapshotType, UnrecognizedFields};
use super::{validate_version, MetadataError, Role, SPEC_VERSION};

/// The `signed` content of snapshot metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// Always `"snapshot"`.
    #[serde(rename = "_type")]
    pub type_tag: SnapshotType,
    /// Specification version the metadata follows.
    pub spec_version: String,
    /// Metadata version.
    pub version: u64,
    /// When the metadata stops being trusted.
    #[serde(with = "expires_serde")]
    pub expires: DateTime<Utc>,
    /// `ROLE.json` to its entry, for `targets` and every delegated targets role.
    pub meta: BTreeMap<String, MetaFile>,
    /// Extension fields, kept verbatim.
    #[serde(flatten)]
    pub unrecognized_fields: UnrecognizedFields,
}

impl Snapshot {
    /// A version 1 snapshot naming targets version 1.
    pub fn new(expires: DateTime<Utc>) -> Self {
        Self {
            type_tag: SnapshotType,
            spec_version: SPEC_VERSION.to_owned(),
            version: 1,
            expires,
            meta: [("targets.json".to_owned(), MetaFile::new(1))].into(),
            unrecognized_fields: UnrecognizedFields::new(),
        }
    }

    /// The entry for a targets role by role name (`targets`, `serde`, ...).
    pub fn role_meta(&self, role: &str) -> Option<&MetaFile> {
        self.meta.get(&format!("{role}.json"))
    }
}

impl Role for Snapshot {
    const TYPE: &'static str = "snapshot";

    role_accessors!();

    fn validate(&self) -> Result<(), MetadataError> {
        validate_version(self.version)?;
        for (name, entry) in &self.meta {
            entry.validate(&format!("signed.meta.{name}"))?;
        }
        Ok(())
    }
}
