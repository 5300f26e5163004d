//! Typed deserialisation of every metadata struct that keeps extension fields, with no
//! `#[serde(flatten)]`.
//!
//! serde's `flatten` reads a struct by first buffering all of its fields into an untyped
//! tree, then reading the typed fields out of that tree. For a targets document that is
//! the whole `targets` map held twice. Here each struct reads its known fields straight
//! from the input and collects the rest into `unrecognized_fields`, as python-tuf does.
//!
//! The rules are the derive's: every field at most once, required fields present, `null`
//! for an optional field is the same as its absence, any other key kept as an extension
//! field. Large maps (`targets`, snapshot `meta`) are collected into a list and built into
//! their `BTreeMap` in one go, which packs its nodes full.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::common::{
    expires_serde, MetaFile, RoleKeys, RootType, SnapshotType, TargetsType, TimestampType,
    UnrecognizedFields,
};
use super::targets::{DelegatedRole, Delegations, SuccinctRoles, TargetFile, Targets};
use super::{Envelope, Role, Root, Signature, Snapshot, Timestamp};
use crate::hash::Hashes;
use crate::json::{FieldName, Value};
use crate::keys::{Key, KeyId};

/// Reads the value of a field that may appear only once.
fn read_once<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    slot: &mut Option<T>,
    name: &'static str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(A::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// Keeps the value of a field this implementation does not model.
fn read_unrecognized<'de, A: MapAccess<'de>>(
    map: &mut A,
    fields: &mut UnrecognizedFields,
    name: FieldName<'de>,
) -> Result<(), A::Error> {
    let value: Value = map.next_value()?;
    match fields.entry(name.into_string()) {
        std::collections::btree_map::Entry::Vacant(slot) => {
            slot.insert(value);
            Ok(())
        }
        std::collections::btree_map::Entry::Occupied(slot) => Err(A::Error::custom(format!(
            "duplicate field `{}`",
            slot.key()
        ))),
    }
}

/// Implements `Deserialize` for a struct of named fields plus `unrecognized_fields`.
/// `required` fields are read as the given type and converted with `From`; `optional`
/// fields are `Option`s of the given type. Missing fields are reported in the order listed
/// (the declaration order, as the derive reports them).
macro_rules! deserialize_with_unrecognized {
    (
        $ty:ident $(<$param:ident: $bound:path>)?, $expecting:literal,
        required { $($required:ident: $required_ty:ty = $required_name:literal),* $(,)? }
        optional { $($optional:ident: $optional_ty:ty = $optional_name:literal),* $(,)? }
    ) => {
        impl<'de $(, $param: $bound)?> Deserialize<'de> for $ty $(<$param>)? {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct FieldsVisitor $(<$param>)? (PhantomData<($($param,)?)>);
                impl<'de $(, $param: $bound)?> Visitor<'de> for FieldsVisitor $(<$param>)? {
                    type Value = $ty $(<$param>)?;

                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str($expecting)
                    }

                    fn visit_map<A: MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<Self::Value, A::Error> {
                        $(let mut $required: Option<$required_ty> = None;)*
                        $(let mut $optional: Option<Option<$optional_ty>> = None;)*
                        let mut unrecognized_fields = UnrecognizedFields::new();
                        while let Some(name) = map.next_key::<FieldName<'de>>()? {
                            match &*name {
                                $($required_name => {
                                    read_once(&mut map, &mut $required, $required_name)?
                                })*
                                $($optional_name => {
                                    read_once(&mut map, &mut $optional, $optional_name)?
                                })*
                                _ => read_unrecognized(&mut map, &mut unrecognized_fields, name)?,
                            }
                        }
                        $(let $required = $required
                            .ok_or_else(|| A::Error::missing_field($required_name))?;)*
                        Ok($ty {
                            $($required: $required.into(),)*
                            $($optional: $optional.flatten().map(Into::into),)*
                            unrecognized_fields: unrecognized_fields.into(),
                        })
                    }
                }
                deserializer.deserialize_map(FieldsVisitor(PhantomData))
            }
        }
    };
}

/// An `expires` value read with the one date format metadata uses.
struct Expires(DateTime<Utc>);

impl<'de> Deserialize<'de> for Expires {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        expires_serde::deserialize(deserializer).map(Self)
    }
}

impl From<Expires> for DateTime<Utc> {
    fn from(expires: Expires) -> Self {
        expires.0
    }
}

/// A map from names to entries, built in one go once all entries are read.
#[derive(Debug)]
struct BulkMap<V>(BTreeMap<String, V>);

/// An entry of a [`BulkMap`], which may hold parts equal to its neighbour's in one place.
trait BulkEntry {
    /// Shares what `self` has equal to `previous`, the entry read just before it.
    fn share_with(&mut self, _previous: &Self) {}
}

impl BulkEntry for TargetFile {
    fn share_with(&mut self, previous: &Self) {
        self.unrecognized_fields
            .share_if_equal(&previous.unrecognized_fields);
    }
}

impl BulkEntry for MetaFile {}

#[cfg(test)]
impl BulkEntry for u64 {}

impl<'de, V: Deserialize<'de> + BulkEntry> Deserialize<'de> for BulkMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BulkMapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de> + BulkEntry> Visitor<'de> for BulkMapVisitor<V> {
            type Value = BulkMap<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BulkMap<V>, A::Error> {
                let mut entries: Vec<(String, V)> = Vec::new();
                while let Some((name, mut value)) = map.next_entry::<String, V>()? {
                    if let Some((_, previous)) = entries.last() {
                        value.share_with(previous);
                    }
                    entries.push((name, value));
                }
                // Documents list entries sorted, and a stable sort of sorted input is
                // one pass: it is there for the duplicate check.
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                if let Some([a, _]) = entries.windows(2).find(|pair| match pair {
                    [a, b] => a.0 == b.0,
                    _ => false,
                }) {
                    return Err(A::Error::custom(format!("duplicate key {:?}", a.0)));
                }
                // Sorted and unique: `from_iter` builds the tree bottom-up, nodes full.
                Ok(BulkMap(entries.into_iter().collect()))
            }
        }
        deserializer.deserialize_map(BulkMapVisitor(PhantomData))
    }
}

impl<V> From<BulkMap<V>> for BTreeMap<String, V> {
    fn from(map: BulkMap<V>) -> Self {
        map.0
    }
}

deserialize_with_unrecognized! {
    Envelope<T: Role>, "struct Envelope",
    required {
        signatures: Vec<Signature> = "signatures",
        signed: T = "signed",
    }
    optional {}
}

deserialize_with_unrecognized! {
    Signature, "struct Signature",
    required { keyid: KeyId = "keyid", sig: String = "sig" }
    optional {}
}

deserialize_with_unrecognized! {
    Root, "struct Root",
    required {
        type_tag: RootType = "_type",
        spec_version: String = "spec_version",
        version: u64 = "version",
        expires: Expires = "expires",
        keys: BTreeMap<KeyId, Key> = "keys",
        roles: BTreeMap<String, RoleKeys> = "roles",
    }
    optional { consistent_snapshot: bool = "consistent_snapshot" }
}

deserialize_with_unrecognized! {
    RoleKeys, "struct RoleKeys",
    required { keyids: Vec<KeyId> = "keyids", threshold: u64 = "threshold" }
    optional {}
}

deserialize_with_unrecognized! {
    Key, "struct Key",
    required {
        keytype: String = "keytype",
        scheme: String = "scheme",
        keyval: crate::json::Map<String, Value> = "keyval",
    }
    optional {}
}

deserialize_with_unrecognized! {
    Targets, "struct Targets",
    required {
        type_tag: TargetsType = "_type",
        spec_version: String = "spec_version",
        version: u64 = "version",
        expires: Expires = "expires",
        targets: BulkMap<TargetFile> = "targets",
    }
    optional { delegations: Delegations = "delegations" }
}

deserialize_with_unrecognized! {
    TargetFile, "struct TargetFile",
    required { length: u64 = "length", hashes: Hashes = "hashes" }
    optional {}
}

deserialize_with_unrecognized! {
    Delegations, "struct Delegations",
    required { keys: BTreeMap<KeyId, Key> = "keys" }
    optional {
        roles: Vec<DelegatedRole> = "roles",
        succinct_roles: SuccinctRoles = "succinct_roles",
    }
}

deserialize_with_unrecognized! {
    DelegatedRole, "struct DelegatedRole",
    required {
        name: String = "name",
        keyids: Vec<KeyId> = "keyids",
        threshold: u64 = "threshold",
        terminating: bool = "terminating",
    }
    optional {
        paths: Vec<String> = "paths",
        path_hash_prefixes: Vec<String> = "path_hash_prefixes",
    }
}

deserialize_with_unrecognized! {
    SuccinctRoles, "struct SuccinctRoles",
    required {
        keyids: Vec<KeyId> = "keyids",
        threshold: u64 = "threshold",
        bit_length: u32 = "bit_length",
        name_prefix: String = "name_prefix",
    }
    optional {}
}

deserialize_with_unrecognized! {
    Snapshot, "struct Snapshot",
    required {
        type_tag: SnapshotType = "_type",
        spec_version: String = "spec_version",
        version: u64 = "version",
        expires: Expires = "expires",
        meta: BulkMap<MetaFile> = "meta",
    }
    optional {}
}

deserialize_with_unrecognized! {
    Timestamp, "struct Timestamp",
    required {
        type_tag: TimestampType = "_type",
        spec_version: String = "spec_version",
        version: u64 = "version",
        expires: Expires = "expires",
        meta: BTreeMap<String, MetaFile> = "meta",
    }
    optional {}
}

deserialize_with_unrecognized! {
    MetaFile, "struct MetaFile",
    required { version: u64 = "version" }
    optional { length: u64 = "length", hashes: Hashes = "hashes" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::SharedFields;

    fn read<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, String> {
        serde_json::from_str::<T>(text).map_err(|e| e.to_string())
    }

    /// The strict pass refuses duplicate keys before these readers' results are used; the
    /// readers refuse them too, so that no reader takes the last of two values.
    #[test]
    fn each_reader_refuses_a_key_twice() {
        let err = read::<TargetFile>(r#"{"length":1,"length":2,"hashes":{"sha256":"ab"}}"#);
        assert!(err.unwrap_err().contains("duplicate field `length`"));
        let err = read::<TargetFile>(r#"{"length":1,"hashes":{"sha256":"ab"},"x":1,"x":2}"#);
        assert!(err.unwrap_err().contains("duplicate field `x`"));
        let err = read::<MetaFile>(r#"{"version":1,"length":null,"length":2}"#);
        assert!(err.unwrap_err().contains("duplicate field `length`"));
        let err = read::<BulkMap<u64>>(r#"{"b":1,"a":2,"b":3}"#);
        assert!(err.unwrap_err().contains(r#"duplicate key "b""#));
        let err = read::<Hashes>(r#"{"sha256":"ab","sha256":"cd"}"#);
        assert!(err
            .unwrap_err()
            .contains(r#"duplicate hash algorithm "sha256""#));
    }

    #[test]
    fn readers_keep_unknown_fields_and_treat_null_as_absent() {
        let target: TargetFile =
            read(r#"{"custom":{"a":[1]},"hashes":{"sha256":"ab"},"length":3,"z":null}"#).unwrap();
        assert_eq!(target.length, 3);
        assert_eq!(target.custom(), Some(&serde_json::json!({"a": [1]})));
        assert_eq!(target.unrecognized_fields.get("z"), Some(&Value::Null));
        let meta: MetaFile = read(r#"{"version":2,"length":null}"#).unwrap();
        assert_eq!((meta.version, meta.length, meta.hashes), (2, None, None));
        let err = read::<TargetFile>(r#"{"hashes":{"sha256":"ab"}}"#).unwrap_err();
        assert!(err.contains("missing field `length`"), "{err}");
        let err = read::<TargetFile>("[1]").unwrap_err();
        assert!(err.contains("expected struct TargetFile"), "{err}");
    }

    #[test]
    fn a_large_map_comes_out_sorted_whatever_order_it_was_read_in() {
        let map: BulkMap<u64> = read(r#"{"c":3,"a":1,"b":2}"#).unwrap();
        assert_eq!(
            map.0.into_iter().collect::<Vec<_>>(),
            [
                ("a".to_owned(), 1),
                ("b".to_owned(), 2),
                ("c".to_owned(), 3)
            ]
        );
        let err = read::<BulkMap<u64>>("[1]").unwrap_err();
        assert!(err.contains("expected a map"), "{err}");
    }

    #[test]
    fn neighbouring_targets_with_equal_fields_hold_them_once_and_change_apart() {
        let text = r#"{
            "a": {"custom": {"tarball": "upstream"}, "hashes": {"sha256": "aa"}, "length": 1},
            "b": {"custom": {"tarball": "upstream"}, "hashes": {"sha256": "bb"}, "length": 2},
            "c": {"custom": {"tarball": "here"}, "hashes": {"sha256": "cc"}, "length": 3},
            "d": {"hashes": {"sha256": "dd"}, "length": 4},
            "e": {"hashes": {"sha256": "ee"}, "length": 5}
        }"#;
        let BulkMap(mut map) = read::<BulkMap<TargetFile>>(text).unwrap();
        let fields =
            |map: &BTreeMap<String, TargetFile>, name: &str| map[name].unrecognized_fields.clone();
        assert!(fields(&map, "a").is_shared_with(&fields(&map, "b")));
        assert!(!fields(&map, "b").is_shared_with(&fields(&map, "c")));
        assert!(!fields(&map, "d").is_shared_with(&fields(&map, "e")));
        assert_eq!(fields(&map, "d"), SharedFields::new());
        assert_eq!(fields(&map, "d"), fields(&map, "e"));
        assert_ne!(fields(&map, "b"), fields(&map, "c"));
        assert_ne!(fields(&map, "c"), fields(&map, "d"));
        // Debug shows the fields as a plain map would.
        assert_eq!(
            format!("{:?}", fields(&map, "c")),
            r#"{"custom": Object {"tarball": String("here")}}"#
        );

        // A change to one entry leaves its neighbour as it was read.
        let b = map.get_mut("b").unwrap();
        b.unrecognized_fields
            .insert("custom".to_owned(), serde_json::json!({"tarball": "here"}));
        assert_eq!(
            map["a"].custom(),
            Some(&serde_json::json!({"tarball": "upstream"}))
        );
        assert_eq!(map["b"].custom(), map["c"].custom());
        assert!(!fields(&map, "a").is_shared_with(&fields(&map, "b")));

        // Shared or not, each entry writes its own fields.
        let written = serde_json::to_value(&map["a"]).unwrap();
        assert_eq!(
            written,
            serde_json::json!({"custom": {"tarball": "upstream"}, "hashes": {"sha256": "aa"}, "length": 1})
        );
        let written = serde_json::to_value(&map["d"]).unwrap();
        assert_eq!(
            written,
            serde_json::json!({"hashes": {"sha256": "dd"}, "length": 4})
        );
    }
}
