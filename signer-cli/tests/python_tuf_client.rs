//! python-tuf's ngclient reads a repository tuf-signer made: every release downloads,
//! through namespace roles and hash bins; a release listed by the wrong namespace's key,
//! or by the fallback role inside a claimed namespace, is refused, even though the
//! forged metadata itself is validly signed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;

use common::{python_verify, Workspace, PASSPHRASE};
use tuf_core::layout::crate_target_path;
use tuf_core::metadata::{MetaFile, Metadata, Snapshot, TargetFile, Targets, Timestamp};
use tuf_core::PrivateKey;

fn private_key(ws: &Workspace, name: &str) -> PrivateKey {
    let pem = std::fs::read_to_string(ws.pem(name)).unwrap();
    PrivateKey::from_pkcs8_pem(&pem, Some(PASSPHRASE.as_bytes())).unwrap()
}

/// What an attacker holding `role_key` and the online key publishes: `role` re-signed
/// listing `path`, with a new snapshot and timestamp naming it, and the tarball in place.
fn forge(
    published: &Path,
    role: &str,
    path: &str,
    tarball: &[u8],
    role_key: &PrivateKey,
    online: &PrivateKey,
) {
    let metadata = published.join("metadata");
    let read = |name: &str| std::fs::read(metadata.join(name)).unwrap();
    let mut timestamp = Metadata::<Timestamp>::from_bytes(&read("timestamp.json")).unwrap();
    let snapshot_version = timestamp.signed().snapshot_meta().unwrap().version;
    let mut snapshot =
        Metadata::<Snapshot>::from_bytes(&read(&format!("{snapshot_version}.snapshot.json")))
            .unwrap();
    let role_version = snapshot.signed().role_meta(role).unwrap().version;
    let mut doc =
        Metadata::<Targets>::from_bytes(&read(&format!("{role_version}.{role}.json"))).unwrap();
    let info = TargetFile::from_bytes(tarball);
    let sha256 = info.hashes["sha256"].to_owned();
    doc.signed_mut().targets.insert(path.to_owned(), info);
    doc.signed_mut().version = role_version + 1;
    doc.sign(role_key, false).unwrap();
    let doc_bytes = doc.to_bytes().unwrap();
    std::fs::write(
        metadata.join(format!("{}.{role}.json", role_version + 1)),
        &doc_bytes,
    )
    .unwrap();
    snapshot.signed_mut().meta.insert(
        format!("{role}.json"),
        MetaFile::with_bytes(role_version + 1, &doc_bytes),
    );
    snapshot.signed_mut().version = snapshot_version + 1;
    snapshot.sign(online, false).unwrap();
    let snapshot_bytes = snapshot.to_bytes().unwrap();
    std::fs::write(
        metadata.join(format!("{}.snapshot.json", snapshot_version + 1)),
        &snapshot_bytes,
    )
    .unwrap();
    timestamp.signed_mut().meta.insert(
        "snapshot.json".into(),
        MetaFile::with_bytes(snapshot_version + 1, &snapshot_bytes),
    );
    timestamp.signed_mut().version += 1;
    timestamp.sign(online, false).unwrap();
    std::fs::write(
        metadata.join("timestamp.json"),
        timestamp.to_bytes().unwrap(),
    )
    .unwrap();
    let (dir, file) = path.rsplit_once('/').unwrap();
    let target_dir = published.join("targets").join(dir);
    std::fs::create_dir_all(&target_dir).unwrap();
    std::fs::write(target_dir.join(format!("{sha256}.{file}")), tarball).unwrap();
}

#[test]
fn python_tuf_downloads_every_release_and_refuses_out_of_namespace_signatures() {
    let ws = Workspace::new();
    ws.key("serde-owner");
    ws.key("tokio-owner");
    ws.init_and_publish(4);
    // serde_json is released before anyone claims a namespace: a bin signs it.
    let early = ws.tarball("serde_json", "1.0.0");
    ws.ok("repo", &["release", "add", &early]);
    ws.ok("repo", &["publish", "--online-key", &ws.pem("online")]);
    for (namespace, owner) in [("serde", "serde-owner"), ("tokio", "tokio-owner")] {
        ws.ok(
            "repo",
            &[
                "namespace",
                "delegate",
                namespace,
                "--key",
                &ws.public(owner),
            ],
        );
    }
    ws.ok("repo", &["sign", "--yes", "--key", &ws.pem("targets")]);
    let releases = [
        ("serde", "1.0.0"),
        ("serde", "1.0.1"),
        ("tokio", "1.0.0"),
        ("anyhow", "1.0.0"),
        ("rand", "0.8.5"),
        ("serde-json", "0.1.0"),
    ];
    let tarballs: Vec<String> = releases.iter().map(|(n, v)| ws.tarball(n, v)).collect();
    let mut add = vec!["release", "add"];
    add.extend(tarballs.iter().map(String::as_str));
    let added = ws.json("repo", &add);
    let roles: Vec<&str> = added["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["role"].as_str().unwrap())
        .collect();
    assert_eq!(&roles[..3], ["ns-serde", "ns-serde", "ns-tokio"]);
    assert!(
        roles[3..].iter().all(|r| r.starts_with("unclaimed-")),
        "{roles:?}"
    );
    // Namespaces fold `-` into `_`: serde-json is serde_json's namespace, still unclaimed.
    ws.ok("repo", &["sign", "--yes", "--key", &ws.pem("serde-owner")]);
    ws.ok("repo", &["sign", "--yes", "--key", &ws.pem("tokio-owner")]);
    ws.ok("repo", &["publish", "--online-key", &ws.pem("online")]);

    let published = ws.path("repo/published");
    let root = published.join("metadata/1.root.json");
    let mut paths: Vec<String> = releases
        .iter()
        .map(|(n, v)| crate_target_path(n, v).unwrap())
        .collect();
    paths.push(crate_target_path("serde_json", "1.0.0").unwrap());
    let path_refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let (ok, value, output) = python_verify(&published, &root, &path_refs);
    assert!(ok, "{output}");
    for path in &paths {
        assert_eq!(
            value["targets"][path]["downloaded"], true,
            "{path}: {output}"
        );
    }
    assert_eq!(value["targets"][&paths[0]]["role"], "ns-serde", "{output}");
    assert!(value["targets"][&paths[3]]["role"]
        .as_str()
        .unwrap()
        .starts_with("unclaimed-"));

    // The serde owner (with a compromised registry's online key) lists a tokio release.
    let serde_owner = private_key(&ws, "serde-owner");
    let online = private_key(&ws, "online");
    let forged_tokio = crate_target_path("tokio", "1.0.1").unwrap();
    forge(
        &published,
        "ns-serde",
        &forged_tokio,
        b"evil tokio",
        &serde_owner,
        &online,
    );
    let (ok, value, output) = python_verify(&published, &root, &[&forged_tokio]);
    assert!(
        !ok,
        "python-tuf accepted a tokio release signed by serde's key: {output}"
    );
    // Every role still loads with valid signatures: the refusal is the delegation's.
    // (ns-serde lists two serde releases, serde's signed index file and the forgery.)
    let forged_role_loaded = value["roles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["role"] == "ns-serde" && r["targets"] == 4);
    assert!(forged_role_loaded, "{output}");
    assert!(
        value["error"]
            .as_str()
            .unwrap()
            .contains("not found through the delegation tree"),
        "{output}"
    );
    // Our own verify names the problem.
    let report = ws.run("repo", &["--json", "verify"]);
    assert_eq!(report.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["role"] == "ns-serde" && p["target"] == forged_tokio.as_str()),
        "{report}"
    );

    // The online key alone lists a serde release in its bin: serde is claimed.
    let forged_serde = crate_target_path("serde", "1.0.2").unwrap();
    let bin = {
        let unclaimed = Metadata::<Targets>::from_bytes(
            &std::fs::read(published.join("metadata/1.unclaimed.json")).unwrap(),
        )
        .unwrap();
        unclaimed
            .signed()
            .delegations
            .as_ref()
            .unwrap()
            .succinct_roles
            .as_ref()
            .unwrap()
            .role_for_target(&forged_serde)
    };
    forge(
        &published,
        &bin,
        &forged_serde,
        b"evil serde",
        &online,
        &online,
    );
    let (ok, value, output) = python_verify(&published, &root, &[&forged_serde]);
    assert!(
        !ok,
        "python-tuf accepted a serde release signed by the fallback role: {output}"
    );
    assert!(
        value["error"]
            .as_str()
            .unwrap()
            .contains("not found through the delegation tree"),
        "{output}"
    );
    // The genuine releases still download.
    let (ok, _, output) = python_verify(&published, &root, &path_refs);
    assert!(ok, "{output}");
}
