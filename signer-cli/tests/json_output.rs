//! `--json`: every verb prints exactly one JSON object on stdout, with `"ok"`, and a
//! failure prints `{"ok": false, "error": …}`. Scripts read every command the same way.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;

use common::{describe_output, Workspace};

/// Runs `tuf-signer --json ARGS` and returns the one object it printed, checking that
/// stdout holds exactly one JSON value and that it is an object with `"ok"`.
fn one_object(ws: &Workspace, args: &[&str], expect_ok: bool) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let output = ws.run("repo", &all);
    assert_eq!(
        output.status.success(),
        expect_ok,
        "{args:?}: {}",
        describe_output(&output)
    );
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let values: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}):\n{stdout}"));
    assert_eq!(values.len(), 1, "{args:?}: not one value:\n{stdout}");
    let value = values.into_iter().next().unwrap();
    assert!(value.is_object(), "{args:?}: not an object:\n{stdout}");
    assert_eq!(value["ok"], expect_ok, "{args:?}:\n{stdout}");
    value
}

#[test]
fn every_verb_prints_one_json_object() {
    let ws = Workspace::new();
    let mut verbs = BTreeSet::new();
    let mut run = |args: &[&str], expect_ok: bool| {
        let verb: Vec<&str> = args
            .iter()
            .take_while(|a| {
                !a.starts_with('-') && a.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
            })
            .take(2)
            .copied()
            .collect();
        verbs.insert(verb.join(" "));
        one_object(&ws, args, expect_ok)
    };
    for name in ["root", "root-2", "targets", "online", "owner"] {
        let out = ws.path(name);
        let value = run(
            &[
                "key",
                "generate",
                "--out",
                out.to_str().unwrap(),
                "--kdf-iterations",
                "100000",
            ],
            true,
        );
        assert!(value["keyid"].is_string(), "{value}");
    }
    let public = |name: &str| ws.public(name);
    let pem = |name: &str| ws.pem(name);
    let root_key = public("root");
    let keyid = run(&["key", "id", &root_key], true)["keyid"].clone();
    assert!(keyid.is_string(), "{keyid}");
    run(
        &[
            "init",
            "--root-key",
            &root_key,
            "--targets-key",
            &public("targets"),
            "--online-key",
            &public("online"),
            "--bin-bits",
            "2",
        ],
        true,
    );
    assert!(run(&["diff"], true)["changes"].is_array());
    let signed = run(&["sign", "--yes", "--key", &pem("root")], true);
    assert!(signed["signed"].is_array(), "{signed}");
    run(&["sign", "--yes", "--key", &pem("targets")], true);
    run(&["publish", "--online-key", &pem("online")], true);
    run(&["status"], true);
    run(&["refresh", "--online-key", &pem("online")], true);
    let owner = public("owner");
    run(&["namespace", "delegate", "--key", &owner, "serde"], true);
    let tarball = ws.tarball("serde", "1.0.0");
    let added = run(&["release", "add", &tarball], true);
    assert_eq!(added["added"][0]["name"], "serde", "{added}");
    run(&["release", "yank", "serde", "1.0.0"], true);
    run(&["release", "unyank", "serde", "1.0.0"], true);
    let attestation = ws.path("review.json");
    run(
        &[
            "release",
            "attest",
            "serde",
            "1.0.0",
            "--key",
            &pem("owner"),
            "--out",
            attestation.to_str().unwrap(),
        ],
        true,
    );
    let imported = run(
        &[
            "release",
            "import-attestation",
            attestation.to_str().unwrap(),
        ],
        true,
    );
    assert!(imported["imported"].is_array(), "{imported}");
    run(
        &[
            "release",
            "attest",
            "serde",
            "1.0.0",
            "--key",
            &pem("owner"),
            "--kind",
            "release",
        ],
        true,
    );
    run(&["release", "remove", "serde", "1.0.0"], true);
    run(&["namespace", "undelegate", "serde"], true);
    run(&["discard"], true);
    run(&["key", "add", "--role", "targets", &owner], true);
    let owner_id = run(&["key", "id", &owner], true)["keyid"]
        .as_str()
        .unwrap()
        .to_owned();
    run(&["key", "remove", "--role", "targets", &owner_id], true);
    run(&["threshold", "--role", "targets", "1"], true);
    run(&["discard"], true);
    run(
        &[
            "rotate-root",
            "--key",
            &public("root-2"),
            "--threshold",
            "1",
        ],
        true,
    );
    let signature = ws.path("root.sig.json");
    run(
        &[
            "signature",
            "export",
            "--role",
            "root",
            "--key",
            &pem("root"),
            "--out",
            signature.to_str().unwrap(),
            "--yes",
        ],
        true,
    );
    let imported = run(&["signature", "import", signature.to_str().unwrap()], true);
    assert!(imported["imported"].is_array(), "{imported}");
    run(&["sign", "--yes", "--key", &pem("root-2")], true);
    run(&["publish", "--online-key", &pem("online")], true);
    let verified = run(&["verify"], true);
    assert_eq!(verified["problems"], serde_json::json!([]), "{verified}");

    // Failures are one object too: a verify that finds problems, and a command that fails.
    std::fs::write(ws.path("repo/published/metadata/timestamp.json"), "{}").unwrap();
    let failed = run(&["verify"], false);
    assert!(
        !failed["problems"].as_array().unwrap().is_empty(),
        "{failed}"
    );
    let error = run(&["key", "id", "no-such-key.pub.json"], false);
    assert!(
        error["error"].as_str().unwrap().contains("no-such-key"),
        "{error}"
    );

    let expected: BTreeSet<String> = [
        "key generate",
        "key id",
        "key add",
        "key remove",
        "init",
        "diff",
        "sign",
        "publish",
        "status",
        "refresh",
        "namespace delegate",
        "namespace undelegate",
        "release add",
        "release yank",
        "release unyank",
        "release attest",
        "release import-attestation",
        "release remove",
        "discard",
        "threshold",
        "rotate-root",
        "signature export",
        "signature import",
        "verify",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(verbs, expected);
}
