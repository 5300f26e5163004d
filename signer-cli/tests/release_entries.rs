//! `tuf-signer release`: index entries taken from the registry (and refused when they
//! are not the tarball's), owners' yanks, and developer attestations made on the
//! repository or on a reviewer's copy and imported; python-tuf reads the result.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;

use common::{describe_output, python_verify, Workspace};
use tuf_crates_tests::crate_tarball::index_line;
use tuf_crates_tests::static_server::StaticServer;

/// The signed index file of `crate_dir` (`crates/<ns>/<leaf>`) that the published
/// metadata of `role` lists, parsed.
fn published_index(ws: &Workspace, role: &str, crate_dir: &str) -> Vec<serde_json::Value> {
    let metadata = ws.path("repo/published/metadata");
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(metadata.join(name)).unwrap()).unwrap()
    };
    let timestamp = read("timestamp.json");
    let snapshot_version = &timestamp["signed"]["meta"]["snapshot.json"]["version"];
    let snapshot = read(&format!("{snapshot_version}.snapshot.json"));
    let role_version = &snapshot["signed"]["meta"][format!("{role}.json")]["version"];
    let targets = read(&format!("{role_version}.{role}.json"));
    let sha256 = targets["signed"]["targets"][format!("{crate_dir}/index")]["hashes"]["sha256"]
        .as_str()
        .expect("the role lists the index file")
        .to_owned();
    let file = ws
        .path("repo/published/targets")
        .join(crate_dir)
        .join(format!("{sha256}.index"));
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A registry's sparse index over HTTP with `lines` as the index file of `name`.
fn registry(dir: &Path, name: &str, lines: &[String]) -> StaticServer {
    let path = dir.join(tuf_core::index_entry::sparse_index_path(name));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    StaticServer::start(dir)
}

fn sign_and_publish(ws: &Workspace, keys: &[&str]) {
    for key in keys {
        ws.ok("repo", &["sign", "--yes", "--key", &ws.pem(key)]);
    }
    ws.ok("repo", &["publish", "--online-key", &ws.pem("online")]);
}

#[test]
fn release_add_signs_the_registrys_own_line_and_refuses_one_that_is_not_the_tarballs() {
    let ws = Workspace::new();
    ws.init_and_publish(2);
    ws.key("owner");
    ws.ok(
        "repo",
        &[
            "namespace",
            "delegate",
            "--key",
            &ws.public("owner"),
            "serde",
        ],
    );
    sign_and_publish(&ws, &["targets", "owner"]);
    let tarball = ws.tarball("serde", "1.0.0");
    let bytes = std::fs::read(&tarball).unwrap();
    // The registry's line carries a feature the tarball's Cargo.toml does not: what the
    // registry serves is what is signed.
    let mut line: serde_json::Value =
        serde_json::from_str(&index_line("serde", "1.0.0", &[], &bytes)).unwrap();
    line["features"] = serde_json::json!({"std": []});
    let other = index_line("serde", "0.9.0", &[], b"another tarball");
    let index_dir = ws.path("registry");
    let server = registry(&index_dir, "serde", &[other.clone(), line.to_string()]);

    let added = ws.json(
        "repo",
        &["release", "add", &tarball, "--index", server.url()],
    );
    assert_eq!(added["added"][0]["entry"], "registry", "{added}");
    sign_and_publish(&ws, &["owner"]);
    let index = published_index(&ws, "ns-serde", "crates/serde/serde");
    assert_eq!(index.len(), 1);
    assert_eq!(index[0]["features"], serde_json::json!({"std": []}));
    assert_eq!(index[0]["yanked"], false);

    // A line whose cksum is not the tarball's, or no line at all, is refused.
    let tarball = ws.tarball("serde", "1.0.1");
    let mut wrong: serde_json::Value =
        serde_json::from_str(&index_line("serde", "1.0.1", &[], b"not this tarball")).unwrap();
    wrong["deps"] = serde_json::json!([]);
    drop(server);
    let server = registry(&index_dir, "serde", &[other, wrong.to_string()]);
    let output = ws.run(
        "repo",
        &["release", "add", &tarball, "--index", server.url()],
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe_output(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cksum"), "{stderr}");
    let tarball = ws.tarball("serde", "1.0.2");
    let output = ws.run(
        "repo",
        &["release", "add", &tarball, "--index", server.url()],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("has no line for serde 1.0.2"), "{stderr}");
    // Without --index, the entry is computed from the tarball.
    let added = ws.json("repo", &["release", "add", &tarball]);
    assert_eq!(added["added"][0]["entry"], "manifest", "{added}");
}

#[test]
fn owners_yank_attest_and_import_a_reviewers_attestation_and_python_tuf_downloads_it_all() {
    let ws = Workspace::new();
    ws.init_and_publish(2);
    ws.key("owner");
    ws.key("reviewer");
    ws.ok(
        "repo",
        &[
            "namespace",
            "delegate",
            "--key",
            &ws.public("owner"),
            "serde",
        ],
    );
    sign_and_publish(&ws, &["targets", "owner"]);
    let tarball = ws.tarball("serde", "1.0.0");
    // The owner adds and attests the release as its author (label from owner.pub.json).
    let added = ws.json(
        "repo",
        &["release", "add", &tarball, "--attest-key", &ws.pem("owner")],
    );
    assert_eq!(added["added"][0]["attested_by"], "owner", "{added}");
    sign_and_publish(&ws, &["owner"]);

    // A reviewer works on a copy of the repository and sends back a file.
    let copy = ws.path("reviewer-copy");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(ws.path("repo"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let review = ws.path("review.json");
    let written = ws.json(
        "reviewer-copy",
        &[
            "release",
            "attest",
            "serde",
            "1.0.0",
            "--key",
            &ws.pem("reviewer"),
            "--label",
            "bob",
            "--out",
            review.to_str().unwrap(),
        ],
    );
    assert_eq!(written["kind"], "review", "{written}");
    // A tampered copy is refused; the real one is imported.
    let mut tampered: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&review).unwrap()).unwrap();
    tampered["signed"]["label"] = "mallory".into();
    let tampered_path = ws.path("tampered.json");
    std::fs::write(&tampered_path, tampered.to_string()).unwrap();
    let output = ws.run(
        "repo",
        &[
            "release",
            "import-attestation",
            tampered_path.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("signature does not verify"),
        "{}",
        describe_output(&output)
    );
    let imported = ws.json(
        "repo",
        &["release", "import-attestation", review.to_str().unwrap()],
    );
    assert_eq!(imported["imported"][0]["label"], "bob", "{imported}");
    assert_eq!(imported["imported"][0]["role"], "ns-serde");

    // The owners yank it: the role is staged for their keys.
    let yanked = ws.json("repo", &["release", "yank", "serde", "1.0.0"]);
    assert_eq!(yanked["yanked"], true, "{yanked}");
    assert_eq!(yanked["role"], "ns-serde");
    let again = ws.json("repo", &["release", "yank", "serde", "1.0.0"]);
    assert_eq!(again["unchanged"], true, "{again}");
    sign_and_publish(&ws, &["owner"]);
    let index = published_index(&ws, "ns-serde", "crates/serde/serde");
    assert_eq!(index[0]["yanked"], true);
    let attestations = index[0]["x-tuf-crates-attestations"].as_array().unwrap();
    let labels: Vec<&str> = attestations
        .iter()
        .map(|a| a["signed"]["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["owner", "bob"]);
    ws.ok("repo", &["release", "unyank", "serde", "1.0.0"]);
    sign_and_publish(&ws, &["owner"]);
    assert_eq!(
        published_index(&ws, "ns-serde", "crates/serde/serde")[0]["yanked"],
        false
    );

    // Our audit finds nothing wrong, and python-tuf downloads the release and its signed
    // index file (attestations are custom data it ignores).
    let verified = ws.json("repo", &["verify"]);
    assert_eq!(verified["problems"], serde_json::json!([]), "{verified}");
    let published = ws.path("repo/published");
    let root = published.join("metadata/1.root.json");
    let (ok, value, output) = python_verify(
        &published,
        &root,
        &[
            "crates/serde/serde/serde-1.0.0.crate",
            "crates/serde/serde/index",
        ],
    );
    assert!(ok, "{output}");
    for target in [
        "crates/serde/serde/serde-1.0.0.crate",
        "crates/serde/serde/index",
    ] {
        assert_eq!(value["targets"][target]["role"], "ns-serde", "{output}");
    }
}
