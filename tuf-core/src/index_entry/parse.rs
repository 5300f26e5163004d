//! [`IndexEntry::parse_line`]: strict JSON, then cargo's field rules.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{quoted, DependencyKind, IndexDependency, IndexEntry, IndexEntryError, MAX_LINE_LEN};
use crate::json;

pub(super) fn parse_line(line: &[u8]) -> Result<IndexEntry, IndexEntryError> {
    let value = json::parse_strict(line, MAX_LINE_LEN)?;
    let Value::Object(map) = value else {
        return Err(IndexEntryError::WrongType {
            field: String::new(),
            expected: "an object",
        });
    };
    let mut fields = Fields::new(map, String::new());

    let name = fields.string("name")?;
    let vers = fields.string("vers")?;
    if semver::Version::parse(&vers).is_err() {
        return Err(fields.invalid("vers", &vers, "not a semantic version"));
    }
    let deps = match fields.take("deps") {
        None => return Err(fields.missing("deps")),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| parse_dependency(item, format!("deps[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(fields.wrong_type("deps", "an array of dependencies")),
    };
    let cksum = fields.string("cksum")?;
    let features = fields.features("features")?.unwrap_or_default();
    let features2 = fields.optional_features("features2")?;
    let links = fields.optional_string("links")?;
    let rust_version = fields.optional_string("rust_version")?;
    if let Some(rust_version) = &rust_version {
        if !is_rust_version(rust_version) {
            return Err(fields.invalid(
                "rust_version",
                rust_version,
                "not a Rust version (one to three numbers, as `1.70` or `1.70.0`)",
            ));
        }
    }
    let v = fields.optional_u32("v")?;
    let yanked = fields.optional_bool("yanked")?.unwrap_or(false);
    let pubtime = fields.optional_string("pubtime")?;
    if let Some(pubtime) = &pubtime {
        if !is_pubtime(pubtime) {
            return Err(fields.invalid("pubtime", pubtime, "not a time as `YYYY-MM-DDTHH:MM:SSZ`"));
        }
    }
    Ok(IndexEntry {
        name,
        vers,
        deps,
        cksum,
        features,
        features2,
        links,
        rust_version,
        v,
        yanked,
        pubtime,
        unrecognized_fields: fields.rest(),
    })
}

fn parse_dependency(value: Value, path: String) -> Result<IndexDependency, IndexEntryError> {
    let Value::Object(map) = value else {
        return Err(IndexEntryError::WrongType {
            field: path,
            expected: "an object",
        });
    };
    let mut fields = Fields::new(map, path);
    let name = fields.string("name")?;
    let req = fields.string("req")?;
    let features = fields.string_list("features")?.unwrap_or_default();
    let optional = fields.bool_or("optional", false)?;
    let default_features = fields.bool_or("default_features", true)?;
    let target = fields.optional_string("target")?;
    let kind = match fields.optional_string("kind")?.as_deref() {
        None | Some("normal") => DependencyKind::Normal,
        Some("build") => DependencyKind::Build,
        Some("dev") => DependencyKind::Dev,
        Some(other) => {
            return Err(fields.invalid(
                "kind",
                other,
                "not a dependency kind (`normal`, `build` or `dev`)",
            ))
        }
    };
    let registry = fields.optional_string("registry")?;
    let package = fields.optional_string("package")?;
    let public = fields.optional_bool("public")?;
    let artifact = fields.optional_string_list("artifact")?;
    let bindep_target = fields.optional_string("bindep_target")?;
    let lib = fields.bool_or("lib", false)?;
    Ok(IndexDependency {
        name,
        req,
        features,
        optional,
        default_features,
        target,
        kind,
        registry,
        package,
        public,
        artifact,
        bindep_target,
        lib,
        unrecognized_fields: fields.rest(),
    })
}

/// The fields of one JSON object, taken out one by one as they are read, with the
/// object's path for error messages.
struct Fields {
    map: Map<String, Value>,
    path: String,
}

impl Fields {
    fn new(map: Map<String, Value>, path: String) -> Self {
        Fields { map, path }
    }

    fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn missing(&self, key: &str) -> IndexEntryError {
        IndexEntryError::MissingField {
            field: self.field(key),
        }
    }

    fn wrong_type(&self, key: &str, expected: &'static str) -> IndexEntryError {
        IndexEntryError::WrongType {
            field: self.field(key),
            expected,
        }
    }

    fn invalid(&self, key: &str, value: &str, problem: &'static str) -> IndexEntryError {
        IndexEntryError::InvalidValue {
            field: self.field(key),
            value: quoted(value),
            problem,
        }
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    /// A required string.
    fn string(&mut self, key: &str) -> Result<String, IndexEntryError> {
        match self.take(key) {
            None => Err(self.missing(key)),
            Some(Value::String(text)) => Ok(text),
            Some(_) => Err(self.wrong_type(key, "a string")),
        }
    }

    /// A string that may be absent or `null`.
    fn optional_string(&mut self, key: &str) -> Result<Option<String>, IndexEntryError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(self.wrong_type(key, "a string or null")),
        }
    }

    /// A boolean with a default when absent (`null` is refused, as serde refuses it).
    fn bool_or(&mut self, key: &str, default: bool) -> Result<bool, IndexEntryError> {
        match self.take(key) {
            None => Ok(default),
            Some(Value::Bool(flag)) => Ok(flag),
            Some(_) => Err(self.wrong_type(key, "a boolean")),
        }
    }

    /// A boolean that may be absent or `null`.
    fn optional_bool(&mut self, key: &str) -> Result<Option<bool>, IndexEntryError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(flag)),
            Some(_) => Err(self.wrong_type(key, "a boolean or null")),
        }
    }

    /// A `u32` that may be absent or `null`.
    fn optional_u32(&mut self, key: &str) -> Result<Option<u32>, IndexEntryError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) => Ok(Some(n)),
                None => Err(self.wrong_type(key, "an integer from 0 to 4294967295")),
            },
            Some(_) => Err(self.wrong_type(key, "an integer or null")),
        }
    }

    /// An array of strings, `None` when absent (`null` is refused).
    fn string_list(&mut self, key: &str) -> Result<Option<Vec<String>>, IndexEntryError> {
        match self.take(key) {
            None => Ok(None),
            Some(value) => self.strings_in(key, value).map(Some),
        }
    }

    /// An array of strings that may be absent or `null`.
    fn optional_string_list(&mut self, key: &str) -> Result<Option<Vec<String>>, IndexEntryError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => self.strings_in(key, value).map(Some),
        }
    }

    fn strings_in(&self, key: &str, value: Value) -> Result<Vec<String>, IndexEntryError> {
        let Value::Array(items) = value else {
            return Err(self.wrong_type(key, "an array of strings"));
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(text) => Ok(text),
                _ => Err(IndexEntryError::WrongType {
                    field: format!("{}[{i}]", self.field(key)),
                    expected: "a string",
                }),
            })
            .collect()
    }

    /// A features table, `None` when absent (`null` is refused).
    fn features(
        &mut self,
        key: &str,
    ) -> Result<Option<BTreeMap<String, Vec<String>>>, IndexEntryError> {
        match self.take(key) {
            None => Ok(None),
            Some(value) => self.features_in(key, value).map(Some),
        }
    }

    /// A features table that may be absent or `null`.
    fn optional_features(
        &mut self,
        key: &str,
    ) -> Result<Option<BTreeMap<String, Vec<String>>>, IndexEntryError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => self.features_in(key, value).map(Some),
        }
    }

    fn features_in(
        &self,
        key: &str,
        value: Value,
    ) -> Result<BTreeMap<String, Vec<String>>, IndexEntryError> {
        let Value::Object(table) = value else {
            return Err(self.wrong_type(key, "an object of feature lists"));
        };
        let inner = Fields::new(Map::new(), self.field(key));
        table
            .into_iter()
            .map(|(feature, values)| {
                let values = inner.strings_in(&feature, values)?;
                Ok((feature, values))
            })
            .collect()
    }

    /// Whatever was not taken: the unrecognized fields.
    fn rest(self) -> BTreeMap<String, Value> {
        self.map.into_iter().collect()
    }
}

/// True for what cargo's `RustVersion` accepts: one to three dot-separated numbers, as
/// `semver` parses them (so without leading zeros), and nothing else.
pub(super) fn is_rust_version(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    (1..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        && semver::VersionReq::parse(text).is_ok()
}

/// True for what cargo's `parse_pubtime` accepts: `YYYY-MM-DDTHH:MM:SSZ`, zero-padded,
/// a real date and time.
fn is_pubtime(text: &str) -> bool {
    text.len() == 20 && chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%SZ").is_ok()
}
