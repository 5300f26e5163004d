#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The demo repository of `keys-example/`.
//!
//! * `keys-example/build-demo-repository.sh` runs the whole key ceremony with the real
//!   `tuf-signer` binary (built here with `cargo build -p signer-cli`), and python-tuf's
//!   `tuf.ngclient.Updater` then resolves and downloads every demo release from the
//!   result: the two `tufdemo` releases through the namespace role `ns-tufdemo`, the
//!   other two through the fallback hash bins.
//! * `keys-example/crates/` is exactly what `make-demo-crates` writes: regenerating it
//!   gives the same bytes.

use std::collections::BTreeMap;
use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tuf_core::layout::crate_target_path;
use tuf_core::Key;
use tuf_crates_tests::{
    describe_output, python_tuf, run, verify_repository_script, workspace_root,
};

/// The demo releases: crate name, version, and whether the namespace role signs it.
const RELEASES: [(&str, &str, bool); 4] = [
    ("tufdemo", "0.1.0", true),
    ("tufdemo", "0.2.0", true),
    ("unclaimed-util", "1.0.0", false),
    ("unclaimed-app-helper", "0.3.0", false),
];

fn keys_example() -> PathBuf {
    workspace_root().join("keys-example")
}

/// The target directory of the cargo running this test: `CARGO_TARGET_DIR` if set
/// (relative to the workspace root if relative), else `<workspace>/target`.
fn cargo_target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// Builds `tuf-signer` (a no-op when it is up to date) and returns its path.
fn build_tuf_signer() -> PathBuf {
    let target_dir = cargo_target_dir();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let output = Command::new(&cargo)
        .args(["build", "-q", "-p", "signer-cli"])
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", Path::new(&cargo).display()));
    assert!(
        output.status.success(),
        "cargo build -p signer-cli failed\n{}",
        describe_output(&output)
    );
    let binary = target_dir
        .join("debug")
        .join(format!("tuf-signer{}", env::consts::EXE_SUFFIX));
    assert!(binary.is_file(), "{} was not built", binary.display());
    binary
}

/// Every file under `dir`, by path relative to it, with its bytes.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(relative, fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn read_json(path: &Path) -> Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn keyid_of(key_name: &str) -> String {
    let path = keys_example()
        .join("keys")
        .join(format!("{key_name}.pub.json"));
    let key: Key = serde_json::from_slice(&fs::read(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    key.keyid()
}

#[test]
fn the_demo_ceremony_builds_a_repository_python_tuf_downloads_from() {
    let tuf_signer = build_tuf_signer();
    let temp = tempfile::tempdir().unwrap();
    let repo = temp.path().join("demo repository");

    // Run from an unrelated directory: the script finds its files by itself.
    let output = Command::new("sh")
        .arg(keys_example().join("build-demo-repository.sh"))
        .arg(&repo)
        .env("TUF_SIGNER", &tuf_signer)
        .current_dir(temp.path())
        .output()
        .expect("running sh");
    assert!(
        output.status.success(),
        "build-demo-repository.sh failed\n{}",
        describe_output(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    for command in [
        "$ tuf-signer -C '",
        " init --root-key keys/root-1.pub.json",
        " namespace delegate tufdemo --key keys/maintainer-tufdemo.pub.json\n",
        " release add crates/tufdemo-0.1.0.crate crates/tufdemo-0.2.0.crate --attest-key keys/maintainer-tufdemo.pem\n",
        " release attest tufdemo 0.2.0 --key keys/reviewer-bob.pem\n",
        " release yank tufdemo 0.1.0\n",
        " sign --key keys/maintainer-tufdemo.pem --role ns-tufdemo --yes\n",
        " publish --online-key keys/online.pem\n",
        " verify\nok: ",
    ] {
        assert!(
            stdout.contains(command),
            "the script's output lacks {command:?}\n{}",
            describe_output(&output)
        );
    }

    let metadata = repo.join("published").join("metadata");
    let targets = repo.join("published").join("targets");

    // The roles hold the keys the README says they do.
    let root = read_json(&metadata.join("root.json"));
    let root_role = &root["signed"]["roles"]["root"];
    assert_eq!(root_role["threshold"], 2);
    let mut root_keyids: Vec<String> = root_role["keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    root_keyids.sort();
    let mut expected: Vec<String> = ["root-1", "root-2", "root-3"]
        .iter()
        .map(|k| keyid_of(k))
        .collect();
    expected.sort();
    assert_eq!(root_keyids, expected);
    for role in ["snapshot", "timestamp"] {
        assert_eq!(
            root["signed"]["roles"][role]["keyids"],
            serde_json::json!([keyid_of("online")])
        );
    }
    assert_eq!(
        root["signed"]["roles"]["targets"]["keyids"],
        serde_json::json!([keyid_of("targets")])
    );

    // python-tuf resolves and downloads every release.
    let mut args: Vec<OsString> = vec![
        verify_repository_script().into(),
        "repo".into(),
        "--metadata-dir".into(),
        metadata.clone().into(),
        "--targets-dir".into(),
        targets.clone().into(),
    ];
    let paths: Vec<String> = RELEASES
        .iter()
        .map(|(name, version, _)| crate_target_path(name, version).unwrap())
        .collect();
    assert_eq!(paths[0], "crates/tufdemo/tufdemo/tufdemo-0.1.0.crate");
    assert_eq!(
        paths[3],
        "crates/unclaimed_app_helper/unclaimed-app-helper/unclaimed-app-helper-0.3.0.crate"
    );
    for path in &paths {
        args.push("--target".into());
        args.push(path.into());
    }
    // And the signed index file of tufdemo, with its attestations.
    args.push("--target".into());
    args.push("crates/tufdemo/tufdemo/index".into());
    let output = run(&python_tuf(), &args);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "verify_repository.py printed no JSON ({e})\n{}",
            describe_output(&output)
        )
    });
    assert!(
        output.status.success() && report["ok"] == true,
        "python-tuf refused the demo repository\n{}",
        describe_output(&output)
    );
    check_tufdemo_index(&report, &targets);
    let maintainer = keyid_of("maintainer-tufdemo");
    let targets_doc = read_json(&metadata.join("2.targets.json"));
    let ns_role = targets_doc["signed"]["delegations"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|role| role["name"] == "ns-tufdemo")
        .expect("targets delegates ns-tufdemo");
    assert_eq!(ns_role["keyids"], serde_json::json!([maintainer]));
    assert_eq!(ns_role["terminating"], true);

    for ((name, version, namespaced), path) in RELEASES.iter().zip(&paths) {
        let entry = &report["targets"][path.as_str()];
        let role = entry["role"]
            .as_str()
            .unwrap_or_else(|| panic!("{path} was not resolved\n{}", describe_output(&output)));
        if *namespaced {
            assert_eq!(role, "ns-tufdemo", "{path}");
            assert_eq!(
                entry["roles_visited"],
                serde_json::json!(["targets", "ns-tufdemo"])
            );
        } else {
            assert!(
                role.starts_with("unclaimed-"),
                "{path} resolved to {role}, not a fallback bin"
            );
            assert_eq!(entry["roles_visited"][1], "unclaimed", "{path}");
        }
        assert_eq!(entry["downloaded"], true, "{path}");
        // What python-tuf downloaded and checked is the committed tarball.
        let committed = fs::read(
            keys_example()
                .join("crates")
                .join(format!("{name}-{version}.crate")),
        )
        .unwrap();
        assert_eq!(entry["downloaded_length"], committed.len(), "{path}");
        assert_eq!(
            entry["hashes"]["sha256"],
            hex::encode(Sha256::digest(&committed)),
            "{path}"
        );
    }
}

/// The published signed index file of tufdemo: 0.1.0 yanked by the owners; alice's
/// release attestations on both versions, bob's review of 0.2.0, each verifying.
fn check_tufdemo_index(report: &Value, targets: &Path) {
    let entry = &report["targets"]["crates/tufdemo/tufdemo/index"];
    assert_eq!(entry["role"], "ns-tufdemo", "{report}");
    assert_eq!(entry["downloaded"], true, "{report}");
    let sha256 = entry["hashes"]["sha256"].as_str().unwrap();
    let path = targets.join(format!("crates/tufdemo/tufdemo/{sha256}.index"));
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let index = tuf_core::crate_index::CrateIndexFile::parse("tufdemo", &bytes).unwrap();
    let alice = keyid_of("maintainer-tufdemo");
    let bob = keyid_of("reviewer-bob");
    // (version, yanked, [(kind, label, keyid)])
    type Line = (String, bool, Vec<(String, String, String)>);
    let summary: Vec<Line> = index
        .lines
        .iter()
        .map(|line| {
            let attestations = line
                .attestations
                .iter()
                .map(|a| {
                    a.verify().unwrap();
                    (
                        a.statement.kind.to_string(),
                        a.statement.label.clone(),
                        a.key.keyid(),
                    )
                })
                .collect();
            (line.entry.vers.clone(), line.entry.yanked, attestations)
        })
        .collect();
    let attestation = |kind: &str, label: &str, keyid: &str| {
        (kind.to_owned(), label.to_owned(), keyid.to_owned())
    };
    assert_eq!(
        summary,
        [
            (
                "0.1.0".to_owned(),
                true,
                vec![attestation("release", "alice", &alice)]
            ),
            (
                "0.2.0".to_owned(),
                false,
                vec![
                    attestation("release", "alice", &alice),
                    attestation("review", "bob", &bob)
                ]
            ),
        ]
    );
}

#[test]
fn regenerating_the_demo_crates_gives_the_committed_bytes() {
    let committed_dir = keys_example().join("crates");
    let committed = files_under(&committed_dir);
    assert_eq!(
        committed.len(),
        7,
        "keys-example/crates should hold 4 tarballs and 3 index files: {:?}",
        committed.keys().collect::<Vec<_>>()
    );
    let temp = tempfile::tempdir().unwrap();
    let output = run(
        Path::new(env!("CARGO_BIN_EXE_make-demo-crates")),
        [temp.path()],
    );
    assert!(
        output.status.success(),
        "make-demo-crates failed\n{}",
        describe_output(&output)
    );
    let regenerated = files_under(temp.path());
    assert_eq!(
        regenerated.keys().collect::<Vec<_>>(),
        committed.keys().collect::<Vec<_>>(),
        "make-demo-crates writes other files than keys-example/crates holds"
    );
    for (path, bytes) in &regenerated {
        assert!(
            committed[path] == *bytes,
            "keys-example/crates/{} differs from what make-demo-crates writes; regenerate it \
             with `cargo run -p tuf-crates-tests --bin make-demo-crates -- keys-example/crates`",
            path.display()
        );
    }
    // Each index file lists its crate's versions, oldest first, with the tarballs' sums.
    let index = &committed[Path::new("index/tu/fd/tufdemo")];
    let lines: Vec<Value> = std::str::from_utf8(index)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (line, version) in lines.iter().zip(["0.1.0", "0.2.0"]) {
        assert_eq!(line["vers"], version);
        let tarball = &committed[&PathBuf::from(format!("tufdemo-{version}.crate"))];
        assert_eq!(line["cksum"], hex::encode(Sha256::digest(tarball)));
    }
}
