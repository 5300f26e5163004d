//! A scripted key ceremony with the real binary: a 3-of-5 root signed by holders in
//! separate processes, one signature carried from another machine, a root rotation to
//! new keys, and clients (tuf-core's and python-tuf's) that hold the first root following
//! the chain.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{describe_output, python_verify, Workspace};
use tuf_core::client::{DirectoryFetcher, Updater, UpdaterConfig};

fn signatures(ws: &Workspace, role: &str) -> (u64, u64, u64, u64) {
    let status = ws.json("repo", &["status"]);
    let entry = status["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == role)
        .unwrap()
        .clone();
    let valid = entry["signatures"]["valid"].as_array().map_or(0, Vec::len) as u64;
    let threshold = entry["signatures"]["threshold"].as_u64().unwrap_or(0);
    let previous_valid = entry["previous_root_signatures"]["valid"]
        .as_array()
        .map_or(0, Vec::len) as u64;
    let previous_threshold = entry["previous_root_signatures"]["threshold"]
        .as_u64()
        .unwrap_or(0);
    (valid, threshold, previous_valid, previous_threshold)
}

/// Runs `sign` for several holders at once, each in its own process.
fn sign_concurrently(ws: &Workspace, holders: &[&str]) {
    let children: Vec<_> = holders
        .iter()
        .map(|holder| {
            ws.command("repo")
                .args(["sign", "--role", "root", "--yes", "--key", &ws.pem(holder)])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", describe_output(&output));
    }
}

/// Copies a repository to "another machine", where a holder exports a signature.
fn sign_elsewhere(ws: &Workspace, holder: &str, role: &str) -> String {
    let elsewhere = ws.path(&format!("elsewhere-{holder}"));
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(ws.path("repo"))
        .arg(&elsewhere)
        .status()
        .unwrap();
    assert!(status.success());
    let signature = ws.path(&format!("{holder}.{role}.sig.json"));
    ws.ok(
        &format!("elsewhere-{holder}"),
        &[
            "signature",
            "export",
            "--role",
            role,
            "--key",
            &ws.pem(holder),
            "--out",
            signature.to_str().unwrap(),
            "--yes",
        ],
    );
    signature.to_string_lossy().into_owned()
}

#[test]
fn three_of_five_root_ceremony_then_rotation_followed_by_clients() {
    let ws = Workspace::new();
    for name in ["old-1", "old-2", "old-3", "old-4", "old-5"] {
        ws.key(name);
    }
    for name in [
        "new-1", "new-2", "new-3", "new-4", "new-5", "targets", "online",
    ] {
        ws.key(name);
    }
    let mut init: Vec<String> = vec!["init".into()];
    for n in 1..=5 {
        init.push("--root-key".into());
        init.push(ws.public(&format!("old-{n}")));
    }
    init.extend([
        "--root-threshold".into(),
        "3".into(),
        "--targets-key".into(),
        ws.public("targets"),
        "--online-key".into(),
        ws.public("online"),
        "--bin-bits".into(),
        "3".into(),
    ]);
    let init: Vec<&str> = init.iter().map(String::as_str).collect();
    ws.ok("repo", &init);

    // A holder on another machine signs a copy of the staged root first.
    let detached = sign_elsewhere(&ws, "old-4", "root");
    // Two holders sign at the same time, in separate processes: both signatures land.
    sign_concurrently(&ws, &["old-1", "old-2"]);
    assert_eq!(signatures(&ws, "root").0, 2);
    // Publishing now is refused: root has 2 of 3.
    let refused = ws.run("repo", &["publish", "--online-key", &ws.pem("online")]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        describe_output(&refused)
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("root has 2 of 3 signatures"), "{stderr}");
    // The third signature, made on the other machine before those two, still imports:
    // signing added signatures without changing the signed bytes.
    ws.ok("repo", &["signature", "import", &detached]);
    assert_eq!(signatures(&ws, "root").0, 3);
    ws.ok("repo", &["sign", "--yes", "--key", &ws.pem("targets")]);
    ws.ok("repo", &["publish", "--online-key", &ws.pem("online")]);
    let first_root = ws.path("first-root.json");
    std::fs::copy(ws.path("repo/published/metadata/1.root.json"), &first_root).unwrap();

    // A release, so the clients have something to download after the rotation.
    let tarball = ws.tarball("ceremony-demo", "1.0.0");
    ws.ok("repo", &["release", "add", &tarball]);
    ws.ok("repo", &["publish", "--online-key", &ws.pem("online")]);

    // Rotate root to five new keys, 3 of 5.
    let mut rotate: Vec<String> = vec!["rotate-root".into(), "--threshold".into(), "3".into()];
    for n in 1..=5 {
        rotate.push("--key".into());
        rotate.push(ws.public(&format!("new-{n}")));
    }
    let rotate: Vec<&str> = rotate.iter().map(String::as_str).collect();
    ws.ok("repo", &rotate);
    // Only new keys: the old root's threshold is still missing.
    sign_concurrently(&ws, &["new-1", "new-3"]);
    ws.ok(
        "repo",
        &["sign", "--role", "root", "--yes", "--key", &ws.pem("new-5")],
    );
    let (valid, threshold, previous_valid, previous_threshold) = signatures(&ws, "root");
    assert_eq!(
        (valid, threshold, previous_valid, previous_threshold),
        (3, 3, 0, 3)
    );
    let refused = ws.run("repo", &["publish", "--online-key", &ws.pem("online")]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("previous root"),
        "{}",
        describe_output(&refused)
    );
    // Three old holders sign too, one of them from another machine.
    sign_concurrently(&ws, &["old-2", "old-3"]);
    let detached = sign_elsewhere(&ws, "old-5", "root");
    ws.ok("repo", &["signature", "import", &detached]);
    assert_eq!(signatures(&ws, "root"), (3, 3, 3, 3));
    let report = ws.json("repo", &["publish", "--online-key", &ws.pem("online")]);
    assert_eq!(report["root_version"], 2);

    // An old key alone can no longer sign root changes.
    ws.ok("repo", &["threshold", "--role", "root", "2"]);
    let refused = ws.run(
        "repo",
        &["sign", "--role", "root", "--yes", "--key", &ws.pem("old-1")],
    );
    assert!(!refused.status.success(), "{}", describe_output(&refused));
    ws.ok("repo", &["discard"]);

    // tuf-signer verify from the first root.
    let verified = ws.json("repo", &["verify", "--root", first_root.to_str().unwrap()]);
    assert_eq!(verified["root_version"], 2, "{verified}");
    assert!(
        verified["problems"].as_array().unwrap().is_empty(),
        "{verified}"
    );

    // tuf-core's client holding the first root follows the chain and downloads.
    let client = tempfile::tempdir().unwrap();
    std::fs::copy(&first_root, client.path().join("root.json")).unwrap();
    let published = std::fs::canonicalize(ws.path("repo/published")).unwrap();
    let fetcher = DirectoryFetcher::new(&published);
    let mut config = UpdaterConfig::new(client.path(), fetcher.base_url("metadata"));
    config.targets_url = Some(fetcher.base_url("targets"));
    let mut updater = Updater::new(config, fetcher, chrono::Utc::now()).unwrap();
    updater.refresh().unwrap();
    assert_eq!(updater.trusted().root().signed().version, 2);
    let path = "crates/ceremony_demo/ceremony-demo/ceremony-demo-1.0.0.crate";
    let info = updater.get_target_info(path).unwrap().unwrap();
    let file = updater
        .download_target(&info, path, client.path(), None)
        .unwrap();
    assert_eq!(
        std::fs::read(file).unwrap(),
        std::fs::read(&tarball).unwrap()
    );

    // python-tuf holding the first root follows the chain too.
    let (ok, value, output) = python_verify(&published, &first_root, &[path]);
    assert!(ok, "{output}");
    assert_eq!(value["role_versions"]["root"], 2, "{output}");
    assert_eq!(
        value["root_versions"],
        serde_json::json!([1, 2]),
        "{output}"
    );
    assert_eq!(value["targets"][path]["downloaded"], true, "{output}");
}
