//! Key labels: `key generate --label` writes the label into the public key file as the
//! extension field `x-tuf-crates-label` (by default the file name of `--out`), `key id`
//! prints it, and the label never changes the keyid: the same key material has the same
//! keyid labelled or not, here and in securesystemslib, and python-tuf loads the labelled
//! file and keeps the label in a root it serialises.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{describe_output, python_tuf, Workspace};
use serde_json::{json, Value};
use tuf_core::hash::sha256_hashes;
use tuf_core::json::to_canonical;
use tuf_core::keys::LABEL_FIELD;
use tuf_core::Key;

fn generate(ws: &Workspace, out: &str, extra: &[&str]) -> Value {
    let out = ws.path(out);
    let mut args = vec![
        "key",
        "generate",
        "--out",
        out.to_str().unwrap(),
        "--kdf-iterations",
        "100000",
    ];
    args.extend_from_slice(extra);
    ws.json("repo", &args)
}

fn read_json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// securesystemslib's keyid: SHA-256 of the canonical JSON of the three key fields.
fn keyid_of_three_fields(file: &Value) -> String {
    let three = json!({
        "keytype": file["keytype"],
        "scheme": file["scheme"],
        "keyval": file["keyval"],
    });
    sha256_hashes(&to_canonical(&three).unwrap())["sha256"].to_owned()
}

#[test]
fn generate_writes_the_label_and_key_id_prints_it() {
    let ws = Workspace::new();
    let alice = generate(&ws, "alice-key", &["--label", "alice"]);
    assert_eq!(alice["label"], "alice");
    // Without --label, the file name of --out.
    std::fs::create_dir(ws.path("keys")).unwrap();
    let bob = generate(&ws, "keys/bob", &["--algorithm", "ecdsa-p256"]);
    assert_eq!(bob["label"], "bob");

    for (name, generated, label) in [("alice-key", &alice, "alice"), ("keys/bob", &bob, "bob")] {
        let path = ws.public(name);
        let file = read_json(&path);
        assert_eq!(file[LABEL_FIELD], label, "{file}");
        let fields: Vec<&String> = file.as_object().unwrap().keys().collect();
        assert_eq!(
            fields,
            ["keytype", "keyval", "scheme", LABEL_FIELD],
            "{file}"
        );
        // The keyid printed at generation is that of the three key fields only.
        let keyid = generated["keyid"].as_str().unwrap();
        assert_eq!(keyid, keyid_of_three_fields(&file));
        let key: Key = serde_json::from_value(file.clone()).unwrap();
        assert_eq!(key.label(), Some(label));
        assert_eq!(key.keyid(), keyid);

        // `key id`, as JSON (one object) and as text.
        let id = ws.json("repo", &["key", "id", &path]);
        assert_eq!(id, json!({"keyid": keyid, "label": label, "ok": true}));
        let text = ws.ok("repo", &["key", "id", &path]);
        assert_eq!(text, format!("keyid: {keyid}\nlabel: {label}\n"));

        // The same key without its label: the same keyid, and no label.
        let mut unlabelled = file.clone();
        unlabelled.as_object_mut().unwrap().remove(LABEL_FIELD);
        let unlabelled_path = ws.path("unlabelled.pub.json");
        std::fs::write(&unlabelled_path, unlabelled.to_string()).unwrap();
        let unlabelled_path = unlabelled_path.to_str().unwrap();
        let id = ws.json("repo", &["key", "id", unlabelled_path]);
        assert_eq!(id, json!({"keyid": keyid, "label": null, "ok": true}));
        let text = ws.ok("repo", &["key", "id", unlabelled_path]);
        assert_eq!(text, format!("keyid: {keyid}\nlabel: (none)\n"));
        // Nor does another label change it.
        let mut relabelled = file;
        relabelled[LABEL_FIELD] = json!("Alice Liddell");
        std::fs::write(ws.path("unlabelled.pub.json"), relabelled.to_string()).unwrap();
        let id = ws.json("repo", &["key", "id", unlabelled_path]);
        assert_eq!(id["keyid"], keyid);
        assert_eq!(id["label"], "Alice Liddell");
    }
}

#[test]
fn labels_that_could_disguise_a_message_are_refused() {
    let ws = Workspace::new();
    for label in [
        "",
        "alice\nkeyid: 00",
        "\u{1b}[2Jalice",
        " alice",
        "ecila\u{202e}",
    ] {
        let out = ws.path("k");
        let output = ws.run(
            "repo",
            &[
                "key",
                "generate",
                "--out",
                out.to_str().unwrap(),
                "--kdf-iterations",
                "100000",
                "--label",
                label,
            ],
        );
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}",
            describe_output(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("cannot be the key's label"), "{stderr}");
        assert!(!ws.path("k.pem").exists() && !ws.path("k.pub.json").exists());
    }
    // A file name that cannot be a label needs --label.
    let output = ws.run(
        "repo",
        &[
            "key",
            "generate",
            "--out",
            ws.path(" spaced").to_str().unwrap(),
            "--kdf-iterations",
            "100000",
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe_output(&output)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("give one with --label"));

    // A key file whose label is unusable is refused whole, not shown.
    generate(&ws, "good", &[]);
    let mut file = read_json(&ws.public("good"));
    for bad in [json!("alice\r\nlabel: root"), json!(7)] {
        file[LABEL_FIELD] = bad;
        std::fs::write(ws.public("good"), file.to_string()).unwrap();
        let output = ws.run("repo", &["key", "id", &ws.public("good")]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}",
            describe_output(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("x-tuf-crates-label"), "{stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn securesystemslib_computes_the_same_keyid_for_a_labelled_key_and_python_tuf_keeps_the_label() {
    let python = python_tuf();
    let ws = Workspace::new();
    let alice = generate(&ws, "alice", &[]);
    let bob = generate(
        &ws,
        "bob",
        &["--algorithm", "ecdsa-p256", "--label", "Bob Ø"],
    );
    let script = tuf_crates_tests::workspace_root()
        .join("tests")
        .join("python")
        .join("keys_and_attestations.py");
    let output = std::process::Command::new(&python)
        .arg(script)
        .arg("key")
        .arg(ws.public("alice"))
        .arg(ws.public("bob"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe_output(&output));
    let reports: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    for ((generated, label, name), report) in [(&alice, "alice", "alice"), (&bob, "Bob Ø", "bob")]
        .into_iter()
        .zip(&reports)
    {
        assert_eq!(report["keyid"], generated["keyid"], "{report}");
        assert_eq!(
            report["unrecognized_fields"],
            json!({LABEL_FIELD: label}),
            "{report}"
        );
        // python-tuf keeps the label in a root it writes and reads back, as we do.
        assert_eq!(report["root_key"], read_json(&ws.public(name)), "{report}");
    }
    assert_eq!(reports.len(), 2);
}
