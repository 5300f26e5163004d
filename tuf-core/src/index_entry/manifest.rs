//! [`IndexEntry::from_manifest`]: the entry crates.io writes for a normalised
//! `Cargo.toml` (see the module documentation for where each rule comes from).

use std::collections::BTreeMap;

use toml::{Table, Value};

use super::{
    quoted, DependencyKind, IndexDependency, IndexEntry, IndexEntryError, MAX_MANIFEST_LEN,
};

/// The index URLs that name crates.io itself: a dependency with one of these as its
/// `registry-index` is from the same registry, so its `registry` is `None`.
const CRATES_IO_INDEXES: [&str; 2] = [
    "https://github.com/rust-lang/crates.io-index",
    "sparse+https://index.crates.io/",
];

/// The longest TOML error message kept, in characters: the parser quotes the offending
/// line, which may be long.
const MAX_MESSAGE: usize = 512;

/// How many rounds crates.io's `split_features` moves features into `features2`.
const SPLIT_ROUNDS: usize = 100;

/// The three dependency tables, with the spelling serde also accepts for each and the
/// kind they give.
const DEPENDENCY_TABLES: [(&str, Option<&str>, DependencyKind); 3] = [
    ("dependencies", None, DependencyKind::Normal),
    (
        "dev-dependencies",
        Some("dev_dependencies"),
        DependencyKind::Dev,
    ),
    (
        "build-dependencies",
        Some("build_dependencies"),
        DependencyKind::Build,
    ),
];

pub(super) fn from_manifest(manifest: &str, cksum: &str) -> Result<IndexEntry, IndexEntryError> {
    if manifest.len() > MAX_MANIFEST_LEN {
        return Err(IndexEntryError::ManifestTooLarge {
            len: manifest.len(),
            max: MAX_MANIFEST_LEN,
        });
    }
    let doc: Table = toml::from_str(manifest).map_err(|err| IndexEntryError::ManifestSyntax {
        message: err
            .to_string()
            .trim_end()
            .chars()
            .take(MAX_MESSAGE)
            .collect(),
    })?;

    let package = match doc.get("package") {
        Some(Value::Table(package)) => package,
        Some(_) => return Err(wrong_type("package", "a table")),
        None => return Err(missing("package")),
    };
    let name = required_string(package, "name", "package")?;
    let version = required_string(package, "version", "package")?;
    // crates.io parses the version and writes it back, "to deal with any inconsistencies".
    let vers = semver::Version::parse(&version)
        .map_err(|_| invalid("package.version", &version, "not a semantic version"))?
        .to_string();
    let links = optional_string(package, "links", "package")?;
    let rust_version = optional_string(package, "rust-version", "package")?;
    if let Some(rust_version) = &rust_version {
        // crates.io's `validate_rust_version`: a version requirement of digits and dots.
        let digits_and_dots = rust_version.chars().all(|c| c.is_ascii_digit() || c == '.');
        if !digits_and_dots || semver::VersionReq::parse(rust_version).is_err() {
            return Err(invalid(
                "package.rust-version",
                rust_version,
                "not a Rust version; crates.io refuses it",
            ));
        }
    }

    let mut deps = Vec::new();
    add_dependency_tables(&doc, "", None, &mut deps)?;
    match doc.get("target") {
        None => {}
        Some(Value::Table(targets)) => {
            for (target, tables) in targets {
                let path = format!("target.{target}");
                let Value::Table(tables) = tables else {
                    return Err(wrong_type(&path, "a table"));
                };
                add_dependency_tables(tables, &format!("{path}."), Some(target), &mut deps)?;
            }
        }
        Some(_) => return Err(wrong_type("target", "a table")),
    }
    deps.sort_by(registry_order);

    let features = match doc.get("features") {
        None => BTreeMap::new(),
        Some(Value::Table(table)) => table
            .iter()
            .map(|(feature, values)| {
                Ok((
                    feature.clone(),
                    string_array(values, &format!("features.{feature}"))?,
                ))
            })
            .collect::<Result<_, IndexEntryError>>()?,
        Some(_) => return Err(wrong_type("features", "a table")),
    };
    let (features, features2) = split_features(features);
    let (features2, v) = if features2.is_empty() {
        (None, None)
    } else {
        (Some(features2), Some(2))
    };

    Ok(IndexEntry {
        name,
        vers,
        deps,
        cksum: cksum.to_owned(),
        features,
        features2,
        links,
        rust_version,
        v,
        yanked: false,
        pubtime: None,
        unrecognized_fields: BTreeMap::new(),
    })
}

/// Adds the dependencies of the three tables in `table` (the manifest, or one
/// `[target.KEY]` table whose path is `prefix`).
fn add_dependency_tables(
    table: &Table,
    prefix: &str,
    target: Option<&str>,
    deps: &mut Vec<IndexDependency>,
) -> Result<(), IndexEntryError> {
    for (key, alias, kind) in DEPENDENCY_TABLES {
        let found = match (table.get(key), alias.and_then(|alias| table.get(alias))) {
            (Some(_), Some(_)) => {
                // serde's `alias`: crates.io refuses the two spellings together.
                return Err(invalid(
                    &format!("{prefix}{key}"),
                    alias.unwrap_or_default(),
                    "given twice, also with `_`",
                ));
            }
            (Some(found), None) => Some((key, found)),
            (None, Some(found)) => Some((alias.unwrap_or_default(), found)),
            (None, None) => None,
        };
        let Some((spelled, found)) = found else {
            continue;
        };
        let path = format!("{prefix}{spelled}");
        let Value::Table(entries) = found else {
            return Err(wrong_type(&path, "a table"));
        };
        for (name, spec) in entries {
            deps.push(dependency(
                name,
                spec,
                kind,
                target,
                &format!("{path}.{name}"),
            )?);
        }
    }
    Ok(())
}

/// One dependency as crates.io's `convert_dependency` and `index_metadata` write it.
fn dependency(
    name: &str,
    spec: &Value,
    kind: DependencyKind,
    target: Option<&str>,
    path: &str,
) -> Result<IndexDependency, IndexEntryError> {
    let mut dep = IndexDependency {
        name: name.to_owned(),
        req: String::from("*"),
        features: Vec::new(),
        optional: false,
        default_features: true,
        target: target.map(str::to_owned),
        kind,
        registry: None,
        package: None,
        public: None,
        artifact: None,
        bindep_target: None,
        lib: false,
        unrecognized_fields: BTreeMap::new(),
    };
    match spec {
        Value::String(req) => dep.req = normalized_req(req),
        Value::Table(detail) => {
            if detail.contains_key("workspace") {
                return Err(invalid(
                    &format!("{path}.workspace"),
                    "true",
                    "inherited from a workspace; `cargo package` writes the resolved value",
                ));
            }
            if let Some(registry) = optional_string(detail, "registry", path)? {
                return Err(invalid(
                    &format!("{path}.registry"),
                    &registry,
                    "a registry name; a normalised manifest has `registry-index`",
                ));
            }
            if let Some(req) = optional_string(detail, "version", path)? {
                dep.req = normalized_req(&req);
            }
            if let Some(features) = detail.get("features") {
                dep.features = string_array(features, &format!("{path}.features"))?;
            }
            if let Some(optional) = optional_bool(detail, "optional", path)? {
                dep.optional = optional;
            }
            if let Some(default) = aliased(detail, "default-features", "default_features", path)? {
                dep.default_features = bool_value(default, &format!("{path}.default-features"))?;
            }
            if let Some(index) = aliased(detail, "registry-index", "registry_index", path)? {
                let Value::String(index) = index else {
                    return Err(wrong_type(&format!("{path}.registry-index"), "a string"));
                };
                if !CRATES_IO_INDEXES.contains(&index.as_str()) {
                    dep.registry = Some(index.clone());
                }
            }
            // The key is the explicit name in Cargo.toml, `package` the crate's name.
            dep.package = optional_string(detail, "package", path)?;
        }
        _ => return Err(wrong_type(path, "a version string or a table")),
    }
    Ok(dep)
}

/// `req` after crates.io's parse-and-display round trip; as written when it does not
/// parse (crates.io then refuses the upload; older releases may have such requirements).
fn normalized_req(req: &str) -> String {
    super::normalized_req(req)
}

/// crates.io's order of dependencies (`Ord for Dependency` in `crates_io_index`).
fn registry_order(a: &IndexDependency, b: &IndexDependency) -> std::cmp::Ordering {
    (
        &a.name,
        a.kind,
        &a.req,
        a.optional,
        a.default_features,
        &a.target,
        &a.package,
        &a.features,
    )
        .cmp(&(
            &b.name,
            b.kind,
            &b.req,
            b.optional,
            b.default_features,
            &b.target,
            &b.package,
            &b.features,
        ))
}

type Features = BTreeMap<String, Vec<String>>;

/// crates.io's `split_features`: the features using `dep:` or `?/` go to `features2`,
/// then, round by round, every feature that names one already there.
fn split_features(features: Features) -> (Features, Features) {
    let (mut plain, mut extended): (Features, Features) = features
        .into_iter()
        .partition(|(_, values)| !values.iter().any(|value| has_features2_syntax(value)));
    for _ in 0..SPLIT_ROUNDS {
        let (stay, moved): (Features, Features) = plain
            .into_iter()
            .partition(|(_, values)| !values.iter().any(|value| extended.contains_key(value)));
        plain = stay;
        if moved.is_empty() {
            break;
        }
        extended.extend(moved);
    }
    (plain, extended)
}

fn has_features2_syntax(value: &str) -> bool {
    value.starts_with("dep:") || value.contains("?/")
}

fn field(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

fn missing(field: &str) -> IndexEntryError {
    IndexEntryError::ManifestMissingField {
        field: field.to_owned(),
    }
}

fn wrong_type(field: &str, expected: &'static str) -> IndexEntryError {
    IndexEntryError::ManifestWrongType {
        field: field.to_owned(),
        expected,
    }
}

fn invalid(field: &str, value: &str, problem: &'static str) -> IndexEntryError {
    IndexEntryError::ManifestInvalidValue {
        field: field.to_owned(),
        value: quoted(value),
        problem,
    }
}

fn required_string(table: &Table, key: &str, parent: &str) -> Result<String, IndexEntryError> {
    optional_string(table, key, parent)?.ok_or_else(|| missing(&field(parent, key)))
}

fn optional_string(
    table: &Table,
    key: &str,
    parent: &str,
) -> Result<Option<String>, IndexEntryError> {
    match table.get(key) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(wrong_type(&field(parent, key), "a string")),
    }
}

fn optional_bool(table: &Table, key: &str, parent: &str) -> Result<Option<bool>, IndexEntryError> {
    table
        .get(key)
        .map(|value| bool_value(value, &field(parent, key)))
        .transpose()
}

fn bool_value(value: &Value, field: &str) -> Result<bool, IndexEntryError> {
    match value {
        Value::Boolean(flag) => Ok(*flag),
        _ => Err(wrong_type(field, "a boolean")),
    }
}

/// The value of `key` or of its `_` spelling `alias`; both at once are refused, as
/// serde's `alias` refuses them.
fn aliased<'a>(
    table: &'a Table,
    key: &str,
    alias: &str,
    parent: &str,
) -> Result<Option<&'a Value>, IndexEntryError> {
    match (table.get(key), table.get(alias)) {
        (Some(_), Some(_)) => Err(invalid(
            &field(parent, key),
            alias,
            "given twice, also with `_`",
        )),
        (found, None) | (None, found) => Ok(found),
    }
}

fn string_array(value: &Value, field: &str) -> Result<Vec<String>, IndexEntryError> {
    let Value::Array(items) = value else {
        return Err(wrong_type(field, "an array of strings"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(text) => Ok(text.clone()),
            _ => Err(wrong_type(&format!("{field}[{i}]"), "a string")),
        })
        .collect()
}
