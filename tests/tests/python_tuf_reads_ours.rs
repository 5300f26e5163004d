#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! python-tuf reads what tuf-core writes.
//!
//! Each test builds, with tuf-core only, a complete consistent-snapshot repository in a
//! temporary directory (the layout python-tuf's ngclient fetches: `N.root.json`,
//! `timestamp.json`, `N.snapshot.json`, `N.<role>.json`, and targets stored as
//! `<dir>/<sha256>.<basename>`), then runs `tests/python/verify_repository.py`, which
//! loads it with python-tuf's `TrustedMetadataSet` and resolves targets with the real
//! `tuf.ngclient.Updater`.
//!
//! The repository:
//!
//! * root v1 → v2 rotation, threshold 2 over mixed ed25519 and ECDSA P-256 keys; v2 is
//!   signed by two v1 keys and both v2 keys;
//! * top-level targets with unicode paths, a `custom` object exercising canonical JSON,
//!   a path containing `"` and `\`, and an unrecognized field;
//! * delegations to `serde` (path globs, terminating, ECDSA key), `hashed`
//!   (`path_hash_prefixes`) and `unclaimed`, which delegates through `succinct_roles`
//!   (bit_length 3) to eight `unclaimed-bin-N` roles;
//! * snapshot meta entries with length and hashes (targets, serde), length only,
//!   hashes only, and version only; timestamp with length and hashes of the snapshot.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tuf_core::metadata::{
    parse_expires, DelegatedRole, Delegations, MetaFile, RoleKeys, SuccinctRoles, TargetFile,
};
use tuf_core::{
    KeyAlgorithm, Metadata, PrivateKey, Role, Root, Signer, Snapshot, Targets, Timestamp,
};
use tuf_crates_tests::{describe_output, python_tuf, run, verify_repository_script};

const TARGETS_VERSION: u64 = 2;
const SERDE_VERSION: u64 = 3;
const SNAPSHOT_VERSION: u64 = 4;
const TIMESTAMP_VERSION: u64 = 5;
const BIN_PREFIX: &str = "unclaimed-bin";
const BIT_LENGTH: u32 = 3;

const SERDE_TARGETS: [&str; 2] = [
    "crates/se/rd/serde/serde-1.0.203.crate",
    "crates/se/rd/serde_json/serde_json-1.0.117.crate",
];
const BIN_TARGETS: [&str; 6] = [
    "crates/ra/nd/rand-0.8.5.crate",
    "crates/to/ki/tokio-1.0.0.crate",
    "crates/lo/g/log-0.4.22.crate",
    "crates/an/yh/anyhow-1.0.86.crate",
    "toplevel-file.txt",
    "crates/ü/ni/ünï-bin-0.1.0.crate",
];
const UNICODE_TARGET: &str = "crates/ün/ic/ünïcødé-1.0.0.crate";
const EMOJI_TARGET: &str = "crates/em/oj/emoji-🦀-0.1.0.crate";
const QUOTE_TARGET: &str = "crates/qu/ot/quote\"back\\slash-1.0.0.crate";
const TAB_TARGET: &str = "crates/ta/b/tab\there-1.0.0.crate";
const CONFIG_TARGET: &str = "config.json";

fn expires() -> DateTime<Utc> {
    parse_expires("2099-12-31T23:59:59Z").unwrap()
}

/// What to break in the repository (for the negative tests).
#[derive(Debug, Default, Clone, Copy)]
struct Faults {
    /// Sign every hash bin with the serde key instead of the bins key.
    bins_signed_by_serde_key: bool,
    /// Put a wrong sha256 for targets.json in snapshot meta (length stays right).
    wrong_targets_hash_in_snapshot: bool,
    /// Sign root v2 only with the new root keys, not a threshold of v1's.
    root_v2_signed_by_new_keys_only: bool,
}

struct Keys {
    /// Root v1: ed25519, ECDSA, ed25519.
    root_v1: Vec<PrivateKey>,
    /// Root v2 (all new): ECDSA, ed25519.
    root_v2: Vec<PrivateKey>,
    targets: PrivateKey,
    snapshot: PrivateKey,
    timestamp: PrivateKey,
    serde: PrivateKey,
    hashed: PrivateKey,
    unclaimed: PrivateKey,
    bins: PrivateKey,
}

impl Keys {
    fn generate() -> Self {
        use KeyAlgorithm::{EcdsaP256, Ed25519};
        Self {
            root_v1: vec![
                PrivateKey::generate(Ed25519),
                PrivateKey::generate(EcdsaP256),
                PrivateKey::generate(Ed25519),
            ],
            root_v2: vec![
                PrivateKey::generate(EcdsaP256),
                PrivateKey::generate(Ed25519),
            ],
            targets: PrivateKey::generate(Ed25519),
            snapshot: PrivateKey::generate(EcdsaP256),
            timestamp: PrivateKey::generate(Ed25519),
            serde: PrivateKey::generate(EcdsaP256),
            hashed: PrivateKey::generate(Ed25519),
            unclaimed: PrivateKey::generate(Ed25519),
            bins: PrivateKey::generate(Ed25519),
        }
    }
}

/// A repository written to disk.
struct Repo {
    _dir: TempDir,
    metadata: PathBuf,
    targets: PathBuf,
    /// Target path to the role expected to provide it.
    expected_role: BTreeMap<String, String>,
    /// Target path to its file content.
    contents: BTreeMap<String, Vec<u8>>,
    /// Target paths delegated by hash prefix.
    hashed_targets: Vec<String>,
    /// Every bin role name.
    bin_names: Vec<String>,
    /// The `custom` object of [`UNICODE_TARGET`].
    unicode_custom: Value,
}

fn target_content(path: &str) -> Vec<u8> {
    format!("tuf-crates interop target: {path}\n").into_bytes()
}

/// Signs `signed` with every signer, keeping all signatures.
fn signed_by<T: Role>(signed: T, signers: &[&PrivateKey]) -> Metadata<T> {
    let mut metadata = Metadata::new(signed);
    for signer in signers {
        metadata.sign(*signer, true).unwrap();
    }
    metadata
}

/// Writes `metadata` with `to_bytes()` (python-tuf's `to_file()` layout) and returns the
/// exact bytes written, which snapshot/timestamp hashes must cover.
fn write_metadata<T: Role>(dir: &Path, name: &str, metadata: &Metadata<T>) -> Vec<u8> {
    let bytes = metadata.to_bytes().unwrap();
    fs::write(dir.join(name), &bytes).unwrap();
    bytes
}

/// Stores a target where ngclient fetches it with consistent snapshots:
/// `<dir>/<sha256>.<basename>` (the first hash python-tuf lists; keys are sorted, so
/// sha256 comes before sha512).
fn write_target_blob(targets_dir: &Path, path: &str, content: &[u8]) {
    let (dir, basename) = path.rsplit_once('/').unwrap_or(("", path));
    let digest = hex::encode(Sha256::digest(content));
    let dir = targets_dir.join(dir);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(format!("{digest}.{basename}")), content).unwrap();
}

fn hashed_target_paths() -> Vec<String> {
    (0..2)
        .map(|i| format!("crates/ha/sh/hashed-{i}.crate"))
        .collect()
}

fn build_repo(faults: Faults) -> Repo {
    let keys = Keys::generate();
    let dir = tempfile::tempdir().unwrap();
    let metadata_dir = dir.path().join("metadata");
    let targets_dir = dir.path().join("targets");
    fs::create_dir_all(&metadata_dir).unwrap();
    fs::create_dir_all(&targets_dir).unwrap();
    let mut expected_role = BTreeMap::new();
    let mut contents = BTreeMap::new();
    let mut add_target = |role: &str, path: &str, extra: &[(&str, Value)]| -> TargetFile {
        let content = target_content(path);
        let mut file = TargetFile::from_bytes(&content);
        for (name, value) in extra {
            file.unrecognized_fields
                .insert((*name).to_owned(), value.clone());
        }
        if path.is_ascii() && !path.contains(['"', '\\', '\t']) {
            write_target_blob(&targets_dir, path, &content);
        }
        expected_role.insert(path.to_owned(), role.to_owned());
        contents.insert(path.to_owned(), content);
        file
    };

    // ---- root v1 and v2 --------------------------------------------------
    let mut root = Root::new(expires());
    for key in keys
        .root_v1
        .iter()
        .chain([&keys.targets, &keys.snapshot, &keys.timestamp])
    {
        root.keys
            .insert(key.keyid().clone(), key.public_key().clone());
    }
    let ids = |keys: &[&PrivateKey]| keys.iter().map(|k| k.keyid().clone()).collect::<Vec<_>>();
    root.roles.insert(
        "root".into(),
        RoleKeys::new(ids(&keys.root_v1.iter().collect::<Vec<_>>()), 2),
    );
    root.roles
        .insert("targets".into(), RoleKeys::new(ids(&[&keys.targets]), 1));
    root.roles
        .insert("snapshot".into(), RoleKeys::new(ids(&[&keys.snapshot]), 1));
    root.roles.insert(
        "timestamp".into(),
        RoleKeys::new(ids(&[&keys.timestamp]), 1),
    );
    let root_v1 = signed_by(root.clone(), &keys.root_v1.iter().collect::<Vec<_>>());
    write_metadata(&metadata_dir, "1.root.json", &root_v1);

    let mut root2 = root;
    root2.version = 2;
    for key in &keys.root_v1 {
        root2.keys.remove(key.keyid());
    }
    for key in &keys.root_v2 {
        root2
            .keys
            .insert(key.keyid().clone(), key.public_key().clone());
    }
    root2.roles.insert(
        "root".into(),
        RoleKeys::new(ids(&keys.root_v2.iter().collect::<Vec<_>>()), 2),
    );
    let mut root2_signers: Vec<&PrivateKey> = Vec::new();
    if !faults.root_v2_signed_by_new_keys_only {
        // One ed25519 and one ECDSA key of v1: v1's threshold.
        root2_signers.extend([&keys.root_v1[0], &keys.root_v1[1]]);
    }
    root2_signers.extend(keys.root_v2.iter());
    let root_v2 = signed_by(root2, &root2_signers);
    write_metadata(&metadata_dir, "2.root.json", &root_v2);

    // ---- hash bins (unclaimed -> unclaimed-bin-N) --------------------------
    let succinct = SuccinctRoles::new(vec![keys.bins.keyid().clone()], 1, BIT_LENGTH, BIN_PREFIX);
    let bin_names: Vec<String> = succinct.role_names().collect();
    let mut bins: BTreeMap<String, Targets> = bin_names
        .iter()
        .map(|name| (name.clone(), Targets::new(expires())))
        .collect();
    for path in BIN_TARGETS {
        let bin = succinct.role_for_target(path);
        let file = add_target(&bin, path, &[]);
        bins.get_mut(&bin)
            .unwrap()
            .targets
            .insert(path.to_owned(), file);
    }
    assert!(
        bins.values().filter(|b| !b.targets.is_empty()).count() >= 3,
        "the bin targets should fall in at least 3 bins"
    );
    let bin_signer = if faults.bins_signed_by_serde_key {
        &keys.serde
    } else {
        &keys.bins
    };
    let mut bin_bytes = BTreeMap::new();
    for (name, targets) in bins {
        let metadata = signed_by(targets, &[bin_signer]);
        let bytes = write_metadata(&metadata_dir, &format!("1.{name}.json"), &metadata);
        bin_bytes.insert(name, bytes);
    }

    let mut unclaimed = Targets::new(expires());
    unclaimed.delegations = Some(Delegations {
        keys: [(keys.bins.keyid().clone(), keys.bins.public_key().clone())].into(),
        roles: None,
        succinct_roles: Some(succinct),
        unrecognized_fields: BTreeMap::new(),
    });
    let unclaimed_bytes = write_metadata(
        &metadata_dir,
        "1.unclaimed.json",
        &signed_by(unclaimed, &[&keys.unclaimed]),
    );

    // ---- serde (path globs, terminating, ECDSA) ----------------------------
    let mut serde = Targets::new(expires());
    serde.version = SERDE_VERSION;
    for path in SERDE_TARGETS {
        let file = add_target("serde", path, &[]);
        serde.targets.insert(path.to_owned(), file);
    }
    let serde_bytes = write_metadata(
        &metadata_dir,
        &format!("{SERDE_VERSION}.serde.json"),
        &signed_by(serde, &[&keys.serde]),
    );

    // ---- hashed (path_hash_prefixes) ----------------------------------------
    let hashed_targets = hashed_target_paths();
    let prefixes: Vec<String> = hashed_targets
        .iter()
        .map(|p| hex::encode(Sha256::digest(p.as_bytes()))[..2].to_owned())
        .collect();
    let mut hashed = Targets::new(expires());
    for path in &hashed_targets {
        let file = add_target("hashed", path, &[]);
        hashed.targets.insert(path.clone(), file);
    }
    write_metadata(
        &metadata_dir,
        "1.hashed.json",
        &signed_by(hashed, &[&keys.hashed]),
    );

    // ---- top-level targets ----------------------------------------------------
    let unicode_custom = json!({
        "nested": {"a": {"b": [1, 2, {"c": null, "d": [[], {}]}]}},
        "ints": [0, 1, -1, 9_007_199_254_740_993_u64, u64::MAX, i64::MIN],
        "bools": [true, false],
        "unicode": "ünïcødé 🦀 \u{ff01} \u{2028} end",
        "control": "\u{0}\u{1}\u{8}\u{c}\n\r\t\u{1f}\u{7f}",
        "escapes": "quote\" backslash\\ slash/ <html>&",
        "order": {"\u{ff01}": 1, "🦀": 2, "é": 3, "z": 4, "Z": 5, "_": 6, "": 7, "a\u{0}": 8, "a": 9},
        "empty_object": {},
        "empty_array": [],
    });
    let mut top = Targets::new(expires());
    top.version = TARGETS_VERSION;
    for (path, extra) in [
        (UNICODE_TARGET, vec![("custom", unicode_custom.clone())]),
        (
            EMOJI_TARGET,
            vec![("custom", json!({"emoji": "🦀", "n": 1}))],
        ),
        (QUOTE_TARGET, vec![]),
        (TAB_TARGET, vec![]),
        (
            CONFIG_TARGET,
            vec![(
                "x-tuf-crates-extra",
                json!({"unknown": "field in TargetFile"}),
            )],
        ),
    ] {
        let file = add_target("targets", path, &extra);
        top.targets.insert(path.to_owned(), file);
    }
    let role = |name: &str, key: &PrivateKey, terminating: bool| DelegatedRole {
        name: name.to_owned(),
        keyids: vec![key.keyid().clone()],
        threshold: 1,
        terminating,
        paths: None,
        path_hash_prefixes: None,
        unrecognized_fields: BTreeMap::new(),
    };
    let serde_role = DelegatedRole {
        paths: Some(vec![
            "crates/se/rd/serde/*".into(),
            "crates/se/rd/serde_*/*".into(),
        ]),
        ..role("serde", &keys.serde, true)
    };
    let hashed_role = DelegatedRole {
        path_hash_prefixes: Some(prefixes),
        ..role("hashed", &keys.hashed, false)
    };
    let unclaimed_role = DelegatedRole {
        // python-tuf globs match per path segment: "*" covers single-segment paths only.
        paths: Some(vec!["*".into(), "crates/*/*/*".into()]),
        ..role("unclaimed", &keys.unclaimed, false)
    };
    top.delegations = Some(Delegations {
        keys: [&keys.serde, &keys.hashed, &keys.unclaimed]
            .into_iter()
            .map(|k| (k.keyid().clone(), k.public_key().clone()))
            .collect(),
        roles: Some(vec![serde_role, hashed_role, unclaimed_role]),
        succinct_roles: None,
        unrecognized_fields: BTreeMap::new(),
    });
    let targets_bytes = write_metadata(
        &metadata_dir,
        &format!("{TARGETS_VERSION}.targets.json"),
        &signed_by(top, &[&keys.targets]),
    );

    // ---- snapshot ------------------------------------------------------------
    let mut snapshot = Snapshot::new(expires());
    snapshot.version = SNAPSHOT_VERSION;
    let mut targets_meta = MetaFile::with_bytes(TARGETS_VERSION, &targets_bytes);
    if faults.wrong_targets_hash_in_snapshot {
        targets_meta.hashes = Some(
            [(
                "sha256".to_owned(),
                hex::encode(Sha256::digest(b"not the targets file")),
            )]
            .into(),
        );
    }
    let mut unclaimed_meta = MetaFile::new(1);
    unclaimed_meta.length = Some(unclaimed_bytes.len() as u64);
    snapshot.meta = [
        ("targets.json".to_owned(), targets_meta),
        (
            "serde.json".to_owned(),
            MetaFile::with_bytes(SERDE_VERSION, &serde_bytes),
        ),
        ("hashed.json".to_owned(), MetaFile::new(1)),
        ("unclaimed.json".to_owned(), unclaimed_meta),
    ]
    .into();
    for (i, (name, bytes)) in bin_bytes.iter().enumerate() {
        let mut entry = MetaFile::new(1);
        if i == 0 {
            // hashes only, no length
            entry.hashes = MetaFile::with_bytes(1, bytes).hashes;
        }
        snapshot.meta.insert(format!("{name}.json"), entry);
    }
    let snapshot_bytes = write_metadata(
        &metadata_dir,
        &format!("{SNAPSHOT_VERSION}.snapshot.json"),
        &signed_by(snapshot, &[&keys.snapshot]),
    );

    // ---- timestamp -------------------------------------------------------------
    let mut timestamp = Timestamp::new(expires());
    timestamp.version = TIMESTAMP_VERSION;
    timestamp.meta.insert(
        "snapshot.json".into(),
        MetaFile::with_bytes(SNAPSHOT_VERSION, &snapshot_bytes),
    );
    write_metadata(
        &metadata_dir,
        "timestamp.json",
        &signed_by(timestamp, &[&keys.timestamp]),
    );

    Repo {
        _dir: dir,
        metadata: metadata_dir,
        targets: targets_dir,
        expected_role,
        contents,
        hashed_targets,
        bin_names,
        unicode_custom,
    }
}

/// Runs `verify_repository.py` and returns its exit code and JSON report.
fn verify_repository(args: &[OsString]) -> (i32, Value) {
    let mut full: Vec<OsString> = vec![verify_repository_script().into()];
    full.extend(args.iter().cloned());
    let output = run(&python_tuf(), &full);
    let code = output
        .status
        .code()
        .unwrap_or_else(|| panic!("checker killed\n{}", describe_output(&output)));
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let report: Value = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| {
            panic!(
                "verify_repository.py printed no JSON report\n{}",
                describe_output(&output)
            )
        });
    assert!(
        code != 2,
        "verify_repository.py usage error\n{}",
        describe_output(&output)
    );
    (code, report)
}

fn repo_args(repo: &Repo, targets: &[&str], with_targets_dir: bool) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "repo".into(),
        "--metadata-dir".into(),
        repo.metadata.clone().into(),
    ];
    for target in targets {
        args.push("--target".into());
        args.push((*target).into());
    }
    if with_targets_dir {
        args.push("--targets-dir".into());
        args.push(repo.targets.clone().into());
    }
    args
}

fn assert_rejected(report: &Value, code: i32, error_type: &str) {
    assert_eq!(code, 1, "python-tuf should reject: {report:#}");
    assert_eq!(report["ok"], json!(false), "{report:#}");
    let error = report["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(error_type),
        "expected {error_type}, got {error:?}\n{report:#}"
    );
}

#[test]
fn python_tuf_verifies_the_whole_repository_and_resolves_targets() {
    let repo = build_repo(Faults::default());
    let binned = BIN_TARGETS[0];
    let hashed = repo.hashed_targets[0].as_str();
    let mut resolve = vec![SERDE_TARGETS[0], SERDE_TARGETS[1], hashed, CONFIG_TARGET];
    resolve.extend(BIN_TARGETS.iter().filter(|p| p.is_ascii()));
    assert!(resolve.contains(&binned));
    let (code, report) = verify_repository(&repo_args(&repo, &resolve, true));
    assert_eq!(code, 0, "python-tuf rejected our repository: {report:#}");
    assert_eq!(report["ok"], json!(true), "{report:#}");
    assert_eq!(report["root_versions"], json!([1, 2]), "{report:#}");
    assert_eq!(report["consistent_snapshot"], json!(true));

    // Every role was loaded, at the version we wrote.
    let versions = &report["role_versions"];
    let mut expected_versions = json!({
        "root": 2,
        "timestamp": TIMESTAMP_VERSION,
        "snapshot": SNAPSHOT_VERSION,
        "targets": TARGETS_VERSION,
        "serde": SERDE_VERSION,
        "hashed": 1,
        "unclaimed": 1,
    });
    for name in &repo.bin_names {
        expected_versions[name] = json!(1);
    }
    assert_eq!(versions, &expected_versions, "{report:#}");
    assert_eq!(repo.bin_names.len(), 1 << BIT_LENGTH);
    let roles = report["roles"].as_array().unwrap();
    for name in &repo.bin_names {
        let entry = roles
            .iter()
            .find(|r| r["role"] == json!(name))
            .unwrap_or_else(|| panic!("bin {name} not loaded: {report:#}"));
        assert_eq!(entry["delegator"], json!("unclaimed"), "{entry:#}");
    }

    // Targets resolve through the delegation walk to the role we put them in, and the
    // downloaded files match length and hashes.
    let resolved = &report["targets"];
    for path in &resolve {
        let entry = &resolved[*path];
        let content = &repo.contents[*path];
        assert_eq!(
            entry["role"],
            json!(repo.expected_role[*path]),
            "{path}: {entry:#}"
        );
        assert_eq!(entry["length"], json!(content.len()), "{path}: {entry:#}");
        assert_eq!(
            entry["hashes"]["sha256"],
            json!(hex::encode(Sha256::digest(content))),
            "{path}: {entry:#}"
        );
        assert_eq!(entry["downloaded"], json!(true), "{path}: {entry:#}");
        assert_eq!(
            entry["downloaded_length"],
            json!(content.len()),
            "{path}: {entry:#}"
        );
    }
    // The bin python-tuf picked is the one tuf-core computed.
    assert!(resolved[binned]["role"]
        .as_str()
        .unwrap()
        .starts_with(BIN_PREFIX));
    assert!(resolved[binned]["roles_visited"]
        .as_array()
        .unwrap()
        .contains(&json!("unclaimed")));
    assert_eq!(
        resolved[CONFIG_TARGET]["unrecognized_fields"]["x-tuf-crates-extra"],
        json!({"unknown": "field in TargetFile"})
    );
}

#[test]
fn python_tuf_reads_unicode_paths_and_custom_data() {
    let repo = build_repo(Faults::default());
    let paths = [
        UNICODE_TARGET,
        EMOJI_TARGET,
        QUOTE_TARGET,
        TAB_TARGET,
        BIN_TARGETS[5],
    ];
    let (code, report) = verify_repository(&repo_args(&repo, &paths, false));
    assert_eq!(code, 0, "python-tuf rejected our repository: {report:#}");
    let resolved = &report["targets"];
    for path in paths {
        let entry = &resolved[path];
        assert_eq!(
            entry["role"],
            json!(repo.expected_role[path]),
            "{path:?}: {report:#}"
        );
        assert_eq!(
            entry["hashes"]["sha256"],
            json!(hex::encode(Sha256::digest(&repo.contents[path]))),
            "{path:?}"
        );
    }
    assert_eq!(resolved[UNICODE_TARGET]["custom"], repo.unicode_custom);
    assert_eq!(
        resolved[EMOJI_TARGET]["custom"],
        json!({"emoji": "🦀", "n": 1})
    );
    assert_eq!(resolved[QUOTE_TARGET]["custom"], Value::Null);
}

#[test]
fn python_tuf_rejects_bins_signed_by_the_wrong_key() {
    let repo = build_repo(Faults {
        bins_signed_by_serde_key: true,
        ..Faults::default()
    });
    let (code, report) = verify_repository(&repo_args(&repo, &[], false));
    assert_rejected(&report, code, "UnsignedMetadataError");
    assert!(
        report["stage"]
            .as_str()
            .unwrap_or_default()
            .starts_with(BIN_PREFIX),
        "{report:#}"
    );
}

#[test]
fn python_tuf_rejects_a_wrong_targets_hash_in_snapshot() {
    let repo = build_repo(Faults {
        wrong_targets_hash_in_snapshot: true,
        ..Faults::default()
    });
    let (code, report) = verify_repository(&repo_args(&repo, &[], false));
    assert_rejected(&report, code, "LengthOrHashMismatchError");
    assert_eq!(report["stage"], json!("targets"), "{report:#}");
}

#[test]
fn python_tuf_rejects_a_root_rotation_without_the_old_threshold() {
    let repo = build_repo(Faults {
        root_v2_signed_by_new_keys_only: true,
        ..Faults::default()
    });
    let (code, report) = verify_repository(&repo_args(&repo, &[], false));
    assert_rejected(&report, code, "UnsignedMetadataError");
    assert_eq!(report["stage"], json!("root"), "{report:#}");
    assert!(
        report["file"]
            .as_str()
            .unwrap_or_default()
            .ends_with("2.root.json"),
        "{report:#}"
    );
}

/// For each key type we sign with, one delegated targets file (with content that
/// stresses canonical JSON) signed here verifies with python-tuf's `verify_delegate`,
/// and stops verifying once its content changes.
#[test]
fn python_tuf_verifies_single_signatures_of_each_key_type() {
    for algorithm in [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256] {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate(algorithm);
        let role_name = format!("signed-by-{algorithm:?}");

        let mut delegator = Targets::new(expires());
        delegator.delegations = Some(Delegations {
            keys: [(key.keyid().clone(), key.public_key().clone())].into(),
            roles: Some(vec![DelegatedRole {
                name: role_name.clone(),
                keyids: vec![key.keyid().clone()],
                threshold: 1,
                terminating: false,
                paths: Some(vec!["*".into()]),
                path_hash_prefixes: None,
                unrecognized_fields: BTreeMap::new(),
            }]),
            succinct_roles: None,
            unrecognized_fields: BTreeMap::new(),
        });
        write_metadata(dir.path(), "delegator.json", &signed_by(delegator, &[&key]));

        let mut delegated = Targets::new(expires());
        for path in [UNICODE_TARGET, EMOJI_TARGET, QUOTE_TARGET, TAB_TARGET] {
            let mut file = TargetFile::from_bytes(&target_content(path));
            file.unrecognized_fields.insert(
                "custom".into(),
                json!({"path": path, "big": u64::MAX, "neg": i64::MIN, "ctl": "\u{0}\u{7f}\u{2028}"}),
            );
            delegated.targets.insert(path.to_owned(), file);
        }
        let mut metadata = signed_by(delegated, &[&key]);
        write_metadata(dir.path(), "delegated.json", &metadata);

        let args = |file: &str| -> Vec<OsString> {
            vec![
                "signature".into(),
                "--delegator".into(),
                dir.path().join("delegator.json").into(),
                "--role".into(),
                role_name.clone().into(),
                "--metadata".into(),
                dir.path().join(file).into(),
            ]
        };
        let (code, report) = verify_repository(&args("delegated.json"));
        assert_eq!(code, 0, "{algorithm:?}: {report:#}");
        assert_eq!(report["ok"], json!(true), "{report:#}");
        assert_eq!(report["signed_by"], json!([key.keyid()]), "{report:#}");
        assert_eq!(report["threshold"], json!(1), "{report:#}");

        // Same signature, changed content: python-tuf must refuse it.
        metadata.signed_mut().version = 2;
        write_metadata(dir.path(), "tampered.json", &metadata);
        let (code, report) = verify_repository(&args("tampered.json"));
        assert_rejected(&report, code, "UnsignedMetadataError");
    }
}
