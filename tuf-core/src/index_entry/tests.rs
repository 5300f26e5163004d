//! Unit tests of the index entry module: strict parsing, the normal form, comparison,
//! digests, canonical lines and manifests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::platform::normalized_target;
use super::*;

/// A line as the registry writes it: compact, in its own key order.
const LINE: &str = r#"{"name":"demo","vers":"1.2.3","deps":[{"name":"serde","req":"^1.0","features":["derive"],"optional":true,"default_features":false,"target":null,"kind":"normal"},{"name":"cc","req":"^1.0.70","features":[],"optional":false,"default_features":true,"target":"cfg(windows)","kind":"build"},{"name":"core","req":"^1.0","features":[],"optional":true,"default_features":true,"target":null,"kind":"normal","package":"rustc-std-workspace-core"}],"cksum":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0","features":{"default":["std"],"std":[]},"yanked":false,"links":"demo","rust_version":"1.70","pubtime":"2025-01-02T03:04:05Z"}"#;

/// The same entry as a mirror re-serialises it, with spaces and another key order, the
/// deps reordered and the defaults left out.
const RESERIALISED: &str = r#"{"yanked": false, "vers": "1.2.3", "name": "demo", "cksum": "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0", "pubtime": "2025-01-02T03:04:05Z", "rust_version": "1.70", "links": "demo", "features": {"std": [], "default": ["std"]}, "deps": [{"kind": "build", "target": "cfg(windows)", "req": "^1.0.70", "name": "cc"}, {"package": "rustc-std-workspace-core", "optional": true, "name": "core", "req": "^1.0"}, {"default_features": false, "optional": true, "features": ["derive"], "req": "^1.0", "name": "serde"}]}"#;

fn entry() -> IndexEntry {
    IndexEntry::parse_line(LINE.as_bytes()).expect("the sample line parses")
}

fn parse(line: &str) -> Result<IndexEntry, IndexEntryError> {
    IndexEntry::parse_line(line.as_bytes())
}

/// A line with the given deps array (the JSON between the brackets).
fn with_deps(deps: &str) -> String {
    format!(r#"{{"name":"demo","vers":"1.0.0","deps":[{deps}],"cksum":"ab","features":{{}}}}"#)
}

// ---- parse_line --------------------------------------------------------------------

#[test]
fn a_line_is_read_with_cargo_defaults() {
    let entry = parse(&with_deps(r#"{"name":"a","req":"1"}"#)).unwrap();
    assert_eq!(entry.name, "demo");
    assert!(!entry.yanked, "yanked defaults to false");
    assert_eq!((entry.v, entry.features2.as_ref()), (None, None));
    let dep = &entry.deps[0];
    assert_eq!(
        dep.kind,
        DependencyKind::Normal,
        "no kind is a normal dependency"
    );
    assert!(dep.default_features, "default_features defaults to true");
    assert!(!dep.optional && !dep.lib && dep.features.is_empty());
    assert_eq!(
        (dep.target.as_deref(), dep.package.as_deref()),
        (None, None)
    );
}

#[test]
fn kinds_are_read_and_null_means_normal() {
    let entry = parse(&with_deps(
        r#"{"name":"a","req":"1","kind":"dev"},{"name":"b","req":"1","kind":"build"},{"name":"c","req":"1","kind":null},{"name":"d","req":"1","kind":"normal"}"#,
    ))
    .unwrap();
    let kinds: Vec<_> = entry.deps.iter().map(|d| d.kind).collect();
    use DependencyKind::*;
    assert_eq!(kinds, [Dev, Build, Normal, Normal]);
}

#[test]
fn an_unknown_kind_is_refused() {
    let err = parse(&with_deps(r#"{"name":"a","req":"1","kind":"Normal"}"#)).unwrap_err();
    assert!(
        matches!(&err, IndexEntryError::InvalidValue { field, value, .. } if field == "deps[0].kind" && value == "Normal"),
        "{err:?}"
    );
}

#[test]
fn deps_given_twice_are_refused() {
    let line = r#"{"name":"demo","vers":"1.0.0","deps":[],"cksum":"ab","features":{},"deps":[{"name":"evil","req":"1"}]}"#;
    let err = parse(line).unwrap_err();
    assert!(
        matches!(&err, IndexEntryError::Json(JsonError::DuplicateKey { key, .. }) if key == "deps"),
        "{err:?}"
    );
}

#[test]
fn registry_given_twice_inside_a_dependency_is_refused() {
    let line = with_deps(
        r#"{"name":"a","req":"1","registry":null,"registry":"sparse+https://evil.example/index/"}"#,
    );
    let err = parse(&line).unwrap_err();
    assert!(
        matches!(&err, IndexEntryError::Json(JsonError::DuplicateKey { key, path }) if key == "registry" && path == "deps[0]"),
        "{err:?}"
    );
}

#[test]
fn missing_deps_is_refused() {
    let err = parse(r#"{"name":"demo","vers":"1.0.0","cksum":"ab","features":{}}"#).unwrap_err();
    assert_eq!(
        err,
        IndexEntryError::MissingField {
            field: "deps".into()
        }
    );
}

#[test]
fn every_required_field_is_named_when_missing() {
    for (line, field) in [
        (r#"{"vers":"1.0.0","deps":[],"cksum":"ab"}"#, "name"),
        (r#"{"name":"a","deps":[],"cksum":"ab"}"#, "vers"),
        (r#"{"name":"a","vers":"1.0.0","deps":[]}"#, "cksum"),
        (&with_deps(r#"{"req":"1"}"#), "deps[0].name"),
        (&with_deps(r#"{"name":"a"}"#), "deps[0].req"),
    ] {
        assert_eq!(
            parse(line).unwrap_err(),
            IndexEntryError::MissingField {
                field: field.into()
            },
            "{line}"
        );
    }
}

#[test]
fn wrong_types_are_refused_with_the_field() {
    for (line, field) in [
        (
            with_deps(r#"{"name":"a","req":"1","optional":null}"#),
            "deps[0].optional",
        ),
        (
            with_deps(r#"{"name":"a","req":"1","features":null}"#),
            "deps[0].features",
        ),
        (
            with_deps(r#"{"name":"a","req":"1","features":[1]}"#),
            "deps[0].features[0]",
        ),
        (with_deps(r#"{"name":"a","req":1}"#), "deps[0].req"),
        (
            with_deps(r#"{"name":"a","req":"1","default_features":"no"}"#),
            "deps[0].default_features",
        ),
        (with_deps(r#""a""#), "deps[0]"),
        (
            r#"{"name":"a","vers":"1.0.0","deps":[],"cksum":"ab","features":{"std":"x"}}"#.into(),
            "features.std",
        ),
        (
            r#"{"name":"a","vers":"1.0.0","deps":[],"cksum":"ab","features":null}"#.into(),
            "features",
        ),
        (
            r#"{"name":"a","vers":"1.0.0","deps":[],"cksum":"ab","yanked":"no"}"#.into(),
            "yanked",
        ),
        (
            r#"{"name":"a","vers":"1.0.0","deps":{},"cksum":"ab"}"#.into(),
            "deps",
        ),
        (
            r#"{"name":"a","vers":"1.0.0","deps":[],"cksum":"ab","v":-1}"#.into(),
            "v",
        ),
        (
            r#"{"name":"a","vers":"1.0.0","deps":[],"cksum":"ab","v":4294967296}"#.into(),
            "v",
        ),
    ] {
        match parse(&line).unwrap_err() {
            IndexEntryError::WrongType { field: found, .. } => assert_eq!(found, field, "{line}"),
            other => panic!("{line}: {other:?}"),
        }
    }
    assert_eq!(
        parse("[]").unwrap_err(),
        IndexEntryError::WrongType {
            field: String::new(),
            expected: "an object"
        }
    );
}

#[test]
fn values_cargo_refuses_are_refused() {
    let base = r#""name":"a","deps":[],"cksum":"ab""#;
    for (fields, field) in [
        (r#""vers":"1.0""#, "vers"),
        (
            r#""vers":"1.0.0","rust_version":"1.70-beta""#,
            "rust_version",
        ),
        (r#""vers":"1.0.0","rust_version":"^1.70""#, "rust_version"),
        (r#""vers":"1.0.0","rust_version":"1.2.3.4""#, "rust_version"),
        (r#""vers":"1.0.0","rust_version":"""#, "rust_version"),
        (
            r#""vers":"1.0.0","pubtime":"2025-11-12 19:30:12Z""#,
            "pubtime",
        ),
        (
            r#""vers":"1.0.0","pubtime":"2025-11-12T19:30:12-04""#,
            "pubtime",
        ),
        (
            r#""vers":"1.0.0","pubtime":"2025-13-12T19:30:12Z""#,
            "pubtime",
        ),
    ] {
        let line = format!("{{{base},{fields}}}");
        match parse(&line).unwrap_err() {
            IndexEntryError::InvalidValue { field: found, .. } => {
                assert_eq!(found, field, "{line}")
            }
            other => panic!("{line}: {other:?}"),
        }
    }
    for good in ["1", "1.70", "1.70.0"] {
        let line = format!(r#"{{{base},"vers":"1.0.0","rust_version":"{good}"}}"#);
        assert_eq!(parse(&line).unwrap().rust_version.as_deref(), Some(good));
    }
}

#[test]
fn a_10_mb_line_is_refused_before_parsing() {
    let padding = "x".repeat(10 * 1024 * 1024);
    let line = format!(
        r#"{{"name":"a","vers":"1.0.0","deps":[],"cksum":"ab","features":{{}},"pad":"{padding}"}}"#
    );
    let err = parse(&line).unwrap_err();
    assert!(
        matches!(err, IndexEntryError::Json(JsonError::TooLarge { max: MAX_LINE_LEN, len }) if len == line.len()),
        "{err:?}"
    );
}

#[test]
fn floats_and_trailing_data_are_refused() {
    let float = r#"{"name":"a","vers":"1.0.0","deps":[],"cksum":"ab","extra":1.5}"#;
    assert!(matches!(
        parse(float).unwrap_err(),
        IndexEntryError::Json(JsonError::NotAnInteger { .. })
    ));
    let two = format!("{LINE}\n{LINE}");
    assert!(matches!(
        parse(&two).unwrap_err(),
        IndexEntryError::Json(JsonError::Syntax { .. })
    ));
}

#[test]
fn unknown_fields_are_kept_but_not_compared() {
    let line = r#"{"name":"a","vers":"1.0.0","deps":[{"name":"b","req":"1","future":{"x":1}}],"cksum":"ab","features":{},"v":2,"new_field":[true]}"#;
    let entry = parse(line).unwrap();
    assert_eq!(
        entry.unrecognized_fields["new_field"],
        serde_json::json!([true])
    );
    assert_eq!(
        entry.deps[0].unrecognized_fields["future"],
        serde_json::json!({"x": 1})
    );
    assert_eq!(entry.v, Some(2));

    let mut other = entry.clone();
    other.unrecognized_fields.clear();
    other.deps[0].unrecognized_fields.clear();
    assert!(entry.differing_fields(&other).is_empty());
    assert_eq!(entry.signed_digest(), other.signed_digest());
    assert_ne!(entry.to_canonical_line(), other.to_canonical_line());
}

// ---- normalized and differing_fields ------------------------------------------------

#[test]
fn a_reserialised_line_in_another_key_order_normalises_equal() {
    let original = entry();
    let mirrored = parse(RESERIALISED).unwrap();
    assert_ne!(original, mirrored, "the raw forms differ (deps order)");
    assert_eq!(original.normalized(), mirrored.normalized());
    assert!(original.differing_fields(&mirrored).is_empty());
    assert_eq!(original.signed_digest(), mirrored.signed_digest());
    assert_eq!(original.to_canonical_line(), mirrored.to_canonical_line());
}

#[test]
fn normalized_makes_defaults_explicit_and_sorts_deps() {
    let normal = entry().normalized();
    assert_eq!(normal.v, Some(1));
    assert_eq!(normal.features2, Some(BTreeMap::new()));
    let order: Vec<_> = normal.deps.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(order, ["cc", "core", "serde"]);
    assert_eq!(normal.normalized(), normal, "normalising is idempotent");

    // The defaults explicit or left out are one entry.
    let mut explicit = entry();
    explicit.v = Some(1);
    explicit.features2 = Some(BTreeMap::new());
    assert!(explicit.differing_fields(&entry()).is_empty());
}

#[test]
fn deps_of_one_name_sort_by_kind_then_target_then_package_then_req() {
    let entry = parse(&with_deps(
        r#"{"name":"a","req":"2","kind":"dev"},{"name":"a","req":"2","target":"cfg(unix)"},{"name":"a","req":"3"},{"name":"a","req":"1","package":"b"},{"name":"a","req":"2","kind":"build"},{"name":"a","req":"2"}"#,
    ))
    .unwrap();
    let order: Vec<_> = entry
        .normalized()
        .deps
        .iter()
        .map(|d| (d.kind, d.target.clone(), d.package.clone(), d.req.clone()))
        .collect();
    use DependencyKind::*;
    let unix = Some("cfg(unix)".to_owned());
    assert_eq!(
        order,
        [
            (Normal, None, None, "^2".to_owned()),
            (Normal, None, None, "^3".to_owned()),
            (Normal, None, Some("b".to_owned()), "^1".to_owned()),
            (Normal, unix, None, "^2".to_owned()),
            (Build, None, None, "^2".to_owned()),
            (Dev, None, None, "^2".to_owned()),
        ]
    );
}

#[test]
fn feature_lists_keep_their_order() {
    let a =
        parse(r#"{"name":"a","vers":"1.0.0","deps":[],"cksum":"ab","features":{"f":["x","y"]}}"#)
            .unwrap();
    let b =
        parse(r#"{"name":"a","vers":"1.0.0","deps":[],"cksum":"ab","features":{"f":["y","x"]}}"#)
            .unwrap();
    assert_eq!(a.normalized().features["f"], ["x", "y"]);
    assert_eq!(a.differing_fields(&b), ["features"]);
}

#[test]
fn requirement_spellings_cargo_reads_alike_normalise_equal() {
    // How cargo before semver 1.0 wrote requirements, and how a round trip writes them.
    let old = parse(&with_deps(
        r#"{"name":"a","req":"= 0.1.9"},{"name":"b","req":">= 0.7, < 0.10"},{"name":"c","req":"1.0"}"#,
    ))
    .unwrap();
    let new = parse(&with_deps(
        r#"{"name":"a","req":"=0.1.9"},{"name":"b","req":">=0.7, <0.10"},{"name":"c","req":"^1.0"}"#,
    ))
    .unwrap();
    assert!(old.differing_fields(&new).is_empty());
    let reqs: Vec<_> = old.normalized().deps.into_iter().map(|d| d.req).collect();
    assert_eq!(reqs, ["=0.1.9", ">=0.7, <0.10", "^1.0"]);

    let different = parse(&with_deps(
        r#"{"name":"a","req":"=0.1.10"},{"name":"b","req":">=0.7, <0.10"},{"name":"c","req":"^1.0"}"#,
    ))
    .unwrap();
    assert_eq!(old.differing_fields(&different), ["deps"]);

    // What semver does not parse is kept as written.
    let odd = parse(&with_deps(r#"{"name":"a","req":"not a req"}"#)).unwrap();
    assert_eq!(odd.normalized().deps[0].req, "not a req");
}

#[test]
fn platform_spellings_cargo_reads_alike_normalise_equal() {
    for (written, displayed) in [
        ("cfg(unix)", "cfg(unix)"),
        ("cfg( unix )", "cfg(unix)"),
        (r#"cfg(target_os="linux")"#, r#"cfg(target_os = "linux")"#),
        (
            r#"cfg(any(target_arch = "x86",target_arch = "x86_64", all(unix,not(windows))))"#,
            r#"cfg(any(target_arch = "x86", target_arch = "x86_64", all(unix, not(windows))))"#,
        ),
        ("cfg(any(unix, windows,))", "cfg(any(unix, windows))"),
        ("cfg(all())", "cfg(all())"),
        ("cfg(r#unix)", "cfg(r#unix)"),
        (r#"cfg(k = "a, b)")"#, r#"cfg(k = "a, b)")"#),
        // Not cfg expressions, or not ones cargo parses: as written.
        ("x86_64-pc-windows-msvc", "x86_64-pc-windows-msvc"),
        ("cfg(unix windows)", "cfg(unix windows)"),
        ("cfg(all(unix)", "cfg(all(unix)"),
        ("cfg(\tunix)", "cfg(\tunix)"),
        ("cfg(not(a, b))", "cfg(not(a, b))"),
        ("cfg(k = v)", "cfg(k = v)"),
        ("cfg(r#)", "cfg(r#)"),
        ("cfg(all)", "cfg(all)"),
        ("cfg()", "cfg()"),
    ] {
        assert_eq!(normalized_target(written), displayed, "{written}");
    }
}

#[test]
fn deeply_nested_platforms_are_left_as_written() {
    let deep = format!("cfg({}unix{})", "not(".repeat(100_000), ")".repeat(100_000));
    assert_eq!(normalized_target(&deep), deep);
    let shallow = format!("cfg({}unix{})", "not(".repeat(10), ")".repeat(10));
    assert_eq!(normalized_target(&shallow), shallow);
}

#[test]
fn differing_fields_names_deps_when_a_dependency_is_added() {
    let mut other = entry();
    other.deps.push(IndexDependency {
        name: "evil".into(),
        req: "^1".into(),
        features: Vec::new(),
        optional: false,
        default_features: true,
        target: None,
        kind: DependencyKind::Build,
        registry: None,
        package: None,
        public: None,
        artifact: None,
        bindep_target: None,
        lib: false,
        unrecognized_fields: BTreeMap::new(),
    });
    assert_eq!(entry().differing_fields(&other), ["deps"]);
}

#[test]
fn differing_fields_names_deps_when_a_dependency_changes_where_it_comes_from() {
    let mut other = entry();
    other.deps[0].registry = Some("sparse+https://evil.example/index/".into());
    assert_eq!(entry().differing_fields(&other), ["deps"]);
    let mut other = entry();
    other.deps[2].package = Some("evil".into());
    assert_eq!(entry().differing_fields(&other), ["deps"]);
}

#[test]
fn differing_fields_names_features_when_a_feature_changes() {
    let mut other = entry();
    other
        .features
        .insert("default".into(), vec!["std".into(), "serde".into()]);
    assert_eq!(entry().differing_fields(&other), ["features"]);
}

#[test]
fn differing_fields_finds_nothing_when_only_yanked_or_pubtime_changes() {
    let mut other = entry();
    other.yanked = true;
    other.pubtime = Some("2030-01-01T00:00:00Z".into());
    assert!(entry().differing_fields(&other).is_empty());
}

#[test]
fn differing_fields_names_every_field_in_order() {
    let a = entry();
    let b = parse(
        r#"{"name":"other","vers":"2.0.0","deps":[],"cksum":"cd","features":{"x":[]},"features2":{"y":["dep:z"]},"links":"z","rust_version":"1.80","v":2}"#,
    )
    .unwrap();
    assert_eq!(
        a.differing_fields(&b),
        [
            "deps",
            "features",
            "features2",
            "links",
            "rust_version",
            "cksum",
            "name",
            "vers",
            "v"
        ]
    );
}

// ---- signed_digest --------------------------------------------------------------------

#[test]
fn signed_digest_ignores_yanked_and_pubtime_but_changes_with_deps() {
    let digest = entry().signed_digest();
    assert_eq!(digest.len(), 64);
    assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()));

    let mut yanked = entry();
    yanked.yanked = true;
    yanked.pubtime = None;
    assert_eq!(yanked.signed_digest(), digest);

    let mut changed_req = entry();
    changed_req.deps[1].req = "^1.0.71".into();
    assert_ne!(changed_req.signed_digest(), digest);
    let mut fewer_deps = entry();
    fewer_deps.deps.pop();
    assert_ne!(fewer_deps.signed_digest(), digest);
}

#[test]
fn signed_digest_is_the_sha256_of_the_canonical_normal_form() {
    let line = r#"{"name":"a","vers":"1.0.0","deps":[{"name":"b","req":"1"}],"cksum":"ab","features":{},"yanked":true,"pubtime":"2025-01-02T03:04:05Z"}"#;
    let covered = r#"{"cksum":"ab","deps":[{"default_features":true,"features":[],"kind":"normal","lib":false,"name":"b","optional":false,"req":"^1"}],"features":{},"features2":{},"name":"a","v":1,"vers":"1.0.0"}"#;
    assert_eq!(
        parse(line).unwrap().signed_digest(),
        hex::encode(Sha256::digest(covered.as_bytes()))
    );
}

// ---- to_canonical_line ------------------------------------------------------------------

#[test]
fn to_canonical_line_parses_back_to_an_equal_entry() {
    for line in [LINE, RESERIALISED] {
        let entry = parse(line).unwrap();
        let canonical = entry.to_canonical_line();
        let back = IndexEntry::parse_line(&canonical).unwrap();
        assert_eq!(back, entry.normalized());
        assert_eq!(back.to_canonical_line(), canonical);
        assert!(!canonical.contains(&b' ') && !canonical.contains(&b'\n'));
    }
}

#[test]
fn to_canonical_line_is_sorted_compact_and_keeps_yanked_and_pubtime() {
    let line = r#"{"vers":"1.0.0","name":"a","deps":[],"cksum":"ab","yanked":true,"pubtime":"2025-01-02T03:04:05Z","zz":null}"#;
    assert_eq!(
        String::from_utf8(parse(line).unwrap().to_canonical_line()).unwrap(),
        r#"{"cksum":"ab","deps":[],"features":{},"features2":{},"name":"a","pubtime":"2025-01-02T03:04:05Z","v":1,"vers":"1.0.0","yanked":true,"zz":null}"#
    );
}

#[test]
fn to_canonical_line_escapes_control_characters() {
    let line = r#"{"name":"a\u0000b","vers":"1.0.0","deps":[{"name":"c","req":"1","features":["x\ny"]}],"cksum":"ab","extra":"\u001f"}"#;
    let entry = parse(line).unwrap();
    let canonical = entry.to_canonical_line();
    assert!(canonical.iter().all(|&b| b >= 0x20), "no raw control bytes");
    let text = String::from_utf8(canonical.clone()).unwrap();
    assert!(
        text.contains(r#""a\u0000b""#)
            && text.contains(r#""x\u000ay""#)
            && text.contains(r#""\u001f""#)
    );
    assert_eq!(
        IndexEntry::parse_line(&canonical).unwrap(),
        entry.normalized()
    );
    // The digest covers the canonical form itself, where the characters are raw.
    assert_eq!(
        IndexEntry::parse_line(&canonical).unwrap().signed_digest(),
        entry.signed_digest()
    );
}

#[test]
fn to_canonical_line_leaves_out_a_float_put_in_by_hand() {
    let mut entry = entry();
    let float = serde_json::Number::from_f64(1.5).unwrap();
    entry
        .unrecognized_fields
        .insert("ratio".into(), Value::Number(float.clone()));
    entry.deps[0]
        .unrecognized_fields
        .insert("ratio".into(), Value::Array(vec![Value::Number(float)]));
    entry
        .unrecognized_fields
        .insert("kept".into(), Value::from(7));
    let canonical = entry.to_canonical_line();
    let back = IndexEntry::parse_line(&canonical).unwrap();
    assert!(!back.unrecognized_fields.contains_key("ratio"));
    assert!(back.deps.iter().all(|d| d.unrecognized_fields.is_empty()));
    assert_eq!(back.unrecognized_fields["kept"], Value::from(7));
}

#[test]
fn unrecognized_fields_never_stand_in_for_known_ones() {
    // Only a caller building an entry by hand can do this: parse_line never files a
    // known field as unrecognized.
    let mut entry = parse(&with_deps(r#"{"name":"a","req":"1"}"#)).unwrap();
    entry
        .unrecognized_fields
        .insert("links".into(), Value::from("evil"));
    entry.deps[0].unrecognized_fields.insert(
        "registry".into(),
        Value::from("sparse+https://evil.example/index/"),
    );
    let back = IndexEntry::parse_line(&entry.to_canonical_line()).unwrap();
    assert_eq!(back.links, None);
    assert_eq!(back.deps[0].registry, None);
}

// ---- from_manifest ----------------------------------------------------------------------

const CKSUM: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn manifest(body: &str) -> Result<IndexEntry, IndexEntryError> {
    IndexEntry::from_manifest(
        &format!("[package]\nname = \"demo\"\nversion = \"1.2.3\"\n{body}"),
        CKSUM,
    )
}

#[test]
fn a_manifest_gives_the_registry_entry() {
    let entry = manifest(
        r#"
rust-version = "1.70"
links = "demo"

[dependencies.serde]
version = "1.0"
features = ["derive"]
optional = true
default-features = false

[dependencies.core]
version = "1.0"
optional = true
package = "rustc-std-workspace-core"

[target."cfg(windows)".build-dependencies.cc]
version = "1.0.70"

[features]
default = ["std"]
std = []
"#,
    )
    .unwrap();
    assert_eq!(entry.differing_fields(&self::entry()), Vec::<&str>::new());
    assert_eq!((entry.yanked, entry.pubtime.as_deref()), (false, None));
    assert_eq!(entry.cksum, CKSUM);
}

#[test]
fn renames_put_the_toml_name_in_name_and_the_crate_in_package() {
    let entry =
        manifest("[dependencies]\njson = { package = \"serde_json\", version = \"1\" }\n").unwrap();
    let dep = &entry.deps[0];
    assert_eq!(
        (dep.name.as_str(), dep.package.as_deref(), dep.req.as_str()),
        ("json", Some("serde_json"), "^1")
    );
}

#[test]
fn target_tables_of_every_kind_give_target_and_kind() {
    let entry = manifest(
        r#"
[target.x86_64-pc-windows-msvc.build-dependencies]
winres = "0.1"
[target.'cfg(unix)'.dev-dependencies]
nix = "0.29"
[target.'cfg(unix)'.dependencies]
libc = "0.2"
[dev-dependencies]
criterion = "0.5"
[build-dependencies]
cc = { version = "1", optional = true }
"#,
    )
    .unwrap();
    let deps: Vec<_> = entry
        .deps
        .iter()
        .map(|d| (d.name.as_str(), d.kind, d.target.as_deref(), d.optional))
        .collect();
    use DependencyKind::*;
    assert_eq!(
        deps,
        [
            ("cc", Build, None, true),
            ("criterion", Dev, None, false),
            ("libc", Normal, Some("cfg(unix)"), false),
            ("nix", Dev, Some("cfg(unix)"), false),
            ("winres", Build, Some("x86_64-pc-windows-msvc"), false),
        ]
    );
}

#[test]
fn target_keys_are_kept_as_written() {
    // crates.io writes the `[target]` key as written since 2023; the normal form reads
    // it as cargo does.
    let entry =
        manifest("[target.'cfg(target_os=\"linux\")'.dependencies]\nlibc = \"0.2\"\n").unwrap();
    assert_eq!(
        entry.deps[0].target.as_deref(),
        Some("cfg(target_os=\"linux\")")
    );
    assert_eq!(
        entry.normalized().deps[0].target.as_deref(),
        Some("cfg(target_os = \"linux\")")
    );
}

#[test]
fn underscore_spellings_are_read_but_not_together_with_dashes() {
    let entry = manifest(
        "[dev_dependencies]\na = \"1\"\n[build_dependencies]\nb = { version = \"1\", default_features = false }\n",
    )
    .unwrap();
    let deps: Vec<_> = entry
        .deps
        .iter()
        .map(|d| (d.kind, d.default_features))
        .collect();
    assert_eq!(
        deps,
        [(DependencyKind::Dev, true), (DependencyKind::Build, false)]
    );

    let err =
        manifest("[dev_dependencies]\na = \"1\"\n[dev-dependencies]\nb = \"1\"\n").unwrap_err();
    assert!(
        matches!(&err, IndexEntryError::ManifestInvalidValue { field, .. } if field == "dev-dependencies"),
        "{err:?}"
    );
    let err = manifest("[dependencies]\na = { version = \"1\", default_features = false, default-features = true }\n")
        .unwrap_err();
    assert!(
        matches!(&err, IndexEntryError::ManifestInvalidValue { field, .. } if field == "dependencies.a.default-features"),
        "{err:?}"
    );
}

#[test]
fn requirements_are_normalised_as_crates_io_does() {
    let entry = manifest(
        "[dependencies]\na = \"1.0\"\nb = \"=0.1.9\"\nc = \">= 0.7, < 0.10\"\nd = { features = [\"x\"] }\ne = \"not a req\"\n",
    )
    .unwrap();
    let reqs: Vec<_> = entry.deps.iter().map(|d| d.req.as_str()).collect();
    assert_eq!(reqs, ["^1.0", "=0.1.9", ">=0.7, <0.10", "*", "not a req"]);
}

#[test]
fn a_registry_index_gives_registry_unless_it_is_crates_io() {
    let entry = manifest(
        r#"
[dependencies]
other = { version = "1", registry-index = "sparse+https://other.example/index/" }
same = { version = "1", registry-index = "https://github.com/rust-lang/crates.io-index" }
sparse = { version = "1", registry_index = "sparse+https://index.crates.io/" }
"#,
    )
    .unwrap();
    let registries: Vec<_> = entry.deps.iter().map(|d| d.registry.as_deref()).collect();
    assert_eq!(
        registries,
        [Some("sparse+https://other.example/index/"), None, None]
    );
}

#[test]
fn what_a_normalised_manifest_never_has_is_refused() {
    for (body, field) in [
        (
            "[dependencies]\na = { version = \"1\", registry = \"corp\" }\n",
            "dependencies.a.registry",
        ),
        (
            "[dependencies]\na = { workspace = true }\n",
            "dependencies.a.workspace",
        ),
    ] {
        match manifest(body).unwrap_err() {
            IndexEntryError::ManifestInvalidValue { field: found, .. } => {
                assert_eq!(found, field, "{body}")
            }
            other => panic!("{body}: {other:?}"),
        }
    }
    let err =
        IndexEntry::from_manifest("[package]\nname = \"a\"\nversion.workspace = true\n", CKSUM)
            .unwrap_err();
    assert!(
        matches!(&err, IndexEntryError::ManifestWrongType { field, .. } if field == "package.version"),
        "{err:?}"
    );
}

#[test]
fn path_and_git_keys_are_ignored_as_crates_io_ignores_them() {
    let entry = manifest(
        "[dependencies]\na = { version = \"1\", path = \"../a\", git = \"https://x.example/a\" }\n",
    )
    .unwrap();
    assert_eq!(entry.deps[0].req, "^1");
    assert_eq!(entry.deps[0].registry, None);
}

#[test]
fn features_using_new_syntax_go_to_features2_with_v2() {
    let entry = manifest(
        r#"
[dependencies]
derive = { version = "1", optional = true }
extra = { version = "1", optional = true }
[features]
default = ["std"]
std = []
derive = ["dep:derive"]
debug = ["extra?/debug"]
docs = ["derive", "std"]
all-docs = ["docs"]
"#,
    )
    .unwrap();
    let names = |map: &BTreeMap<String, Vec<String>>| map.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&entry.features), ["default", "std"]);
    assert_eq!(
        names(entry.features2.as_ref().unwrap()),
        ["all-docs", "debug", "derive", "docs"],
        "features naming a features2 feature move too, transitively"
    );
    assert_eq!(entry.v, Some(2));

    let plain = manifest("[features]\ndefault = [\"std\"]\nstd = []\n").unwrap();
    assert_eq!((plain.features2, plain.v), (None, None));
}

#[test]
fn the_version_is_written_back_as_semver_writes_it() {
    let entry = IndexEntry::from_manifest(
        "[package]\nname = \"a\"\nversion = \"0.4.91+curl-8.22.0\"\n",
        CKSUM,
    )
    .unwrap();
    assert_eq!(entry.vers, "0.4.91+curl-8.22.0");
    let err = IndexEntry::from_manifest("[package]\nname = \"a\"\nversion = \"1.0\"\n", CKSUM)
        .unwrap_err();
    assert!(
        matches!(&err, IndexEntryError::ManifestInvalidValue { field, .. } if field == "package.version"),
        "{err:?}"
    );
}

#[test]
fn bad_manifests_are_refused_with_the_field() {
    for (text, expected) in [
        ("", IndexEntryError::ManifestMissingField { field: "package".into() }),
        (
            "[package]\nversion = \"1.0.0\"\n",
            IndexEntryError::ManifestMissingField { field: "package.name".into() },
        ),
        (
            "package = 1\n",
            IndexEntryError::ManifestWrongType { field: "package".into(), expected: "a table" },
        ),
        (
            "[package]\nname = \"a\"\nversion = \"1.0.0\"\n[dependencies]\na = 1\n",
            IndexEntryError::ManifestWrongType {
                field: "dependencies.a".into(),
                expected: "a version string or a table",
            },
        ),
        (
            "[package]\nname = \"a\"\nversion = \"1.0.0\"\n[dependencies]\na = { version = \"1\", optional = \"yes\" }\n",
            IndexEntryError::ManifestWrongType {
                field: "dependencies.a.optional".into(),
                expected: "a boolean",
            },
        ),
        (
            "[package]\nname = \"a\"\nversion = \"1.0.0\"\n[features]\nx = [1]\n",
            IndexEntryError::ManifestWrongType { field: "features.x[0]".into(), expected: "a string" },
        ),
        (
            "[package]\nname = \"a\"\nversion = \"1.0.0\"\n[target.'cfg(unix)']\ndependencies = 1\n",
            IndexEntryError::ManifestWrongType {
                field: "target.cfg(unix).dependencies".into(),
                expected: "a table",
            },
        ),
    ] {
        assert_eq!(IndexEntry::from_manifest(text, CKSUM).unwrap_err(), expected, "{text}");
    }
    for bad in ["1.70-beta", "^1.70", "1.x"] {
        let err = manifest(&format!("rust-version = \"{bad}\"\n")).unwrap_err();
        assert!(
            matches!(&err, IndexEntryError::ManifestInvalidValue { field, .. } if field == "package.rust-version"),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn manifests_that_are_not_toml_or_too_large_are_refused() {
    let err = IndexEntry::from_manifest("[package\nname = ", CKSUM).unwrap_err();
    assert!(
        matches!(err, IndexEntryError::ManifestSyntax { .. }),
        "{err:?}"
    );
    let duplicate = "[package]\nname = \"a\"\nname = \"b\"\nversion = \"1.0.0\"\n";
    assert!(matches!(
        IndexEntry::from_manifest(duplicate, CKSUM).unwrap_err(),
        IndexEntryError::ManifestSyntax { .. }
    ));
    let large = format!(
        "[package]\nname = \"a\"\nversion = \"1.0.0\"\n# {}\n",
        "x".repeat(MAX_MANIFEST_LEN)
    );
    assert_eq!(
        IndexEntry::from_manifest(&large, CKSUM).unwrap_err(),
        IndexEntryError::ManifestTooLarge {
            len: large.len(),
            max: MAX_MANIFEST_LEN
        }
    );
    let deep = format!(
        "[package]\nname = \"a\"\nversion = \"1.0.0\"\n[features]\nx = {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(IndexEntry::from_manifest(&deep, CKSUM).is_err());
}
#[test]
fn download_urls_follow_cargo() {
    assert_eq!(
        download_url("https://static.crates.io/crates", "serde", "1.0.0", "ab"),
        "https://static.crates.io/crates/serde/1.0.0/download"
    );
    assert_eq!(
        download_url(
            "https://r.example/{lowerprefix}/{crate}/{crate}-{version}.crate?h={sha256-checksum}",
            "Serde",
            "1.0.0",
            "ab"
        ),
        "https://r.example/se/rd/Serde/Serde-1.0.0.crate?h=ab"
    );
}
