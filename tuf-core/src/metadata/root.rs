//! Root metadata (TUF §4.3): the keys and thresholds of the top-level roles.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::common::{expires_serde, validate_role_keys, RoleKeys, RootType, UnrecognizedFields};
use super::{validate_version, MetadataError, Role, SPEC_VERSION, TOP_LEVEL_ROLE_NAMES};
use crate::keys::{Key, KeyId};

/// The `signed` content of root metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Root {
    /// Always `"root"`.
    #[serde(rename = "_type")]
    pub type_tag: RootType,
    /// Specification version the metadata follows.
    pub spec_version: String,
    /// Metadata version, starting at 1 and increased by one on each change.
    pub version: u64,
    /// When the metadata stops being trusted.
    #[serde(with = "expires_serde")]
    pub expires: DateTime<Utc>,
    /// Whether the repository publishes consistent snapshots (`N.role.json`,
    /// hash-prefixed targets). python-tuf omits the field when it is unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_snapshot: Option<bool>,
    /// Every key any top-level role uses, by keyid.
    pub keys: BTreeMap<KeyId, Key>,
    /// Keyids and threshold of `root`, `targets`, `snapshot` and `timestamp`.
    pub roles: BTreeMap<String, RoleKeys>,
    /// Extension fields, kept verbatim.
    #[serde(flatten)]
    pub unrecognized_fields: UnrecognizedFields,
}

impl Root {
    /// A version 1 root with no keys: every top-level role has threshold 1 and no keyids.
    pub fn new(expires: DateTime<Utc>) -> Self {
        Self {
            type_tag: RootType,
            spec_version: SPEC_VERSION.to_owned(),
            version: 1,
            expires,
            consistent_snapshot: Some(true),
            keys: BTreeMap::new(),
            roles: TOP_LEVEL_ROLE_NAMES
                .iter()
                .map(|name| ((*name).to_owned(), RoleKeys::new(Vec::new(), 1)))
                .collect(),
            unrecognized_fields: UnrecognizedFields::new(),
        }
    }

    /// Whether consistent snapshots are on (absent means off, TUF §4.3).
    pub fn consistent_snapshot(&self) -> bool {
        self.consistent_snapshot.unwrap_or(false)
    }

    /// The entry of a top-level role.
    pub fn role(&self, name: &str) -> Option<&RoleKeys> {
        self.roles.get(name)
    }
}

impl Role for Root {
    const TYPE: &'static str = "root";

    role_accessors!();

    fn validate(&self) -> Result<(), MetadataError> {
        validate_version(self.version)?;
        for name in TOP_LEVEL_ROLE_NAMES {
            if !self.roles.contains_key(name) {
                return Err(MetadataError::schema(
                    "signed.roles",
                    format!("role {name:?} is missing"),
                ));
            }
        }
        if let Some(extra) = self
            .roles
            .keys()
            .find(|name| !TOP_LEVEL_ROLE_NAMES.contains(&name.as_str()))
        {
            return Err(MetadataError::schema(
                format!("signed.roles.{extra}"),
                "root lists only the four top-level roles",
            ));
        }
        for (name, role) in &self.roles {
            validate_role_keys(
                &format!("signed.roles.{name}"),
                &role.keyids,
                role.threshold,
            )?;
        }
        Ok(())
    }
}
