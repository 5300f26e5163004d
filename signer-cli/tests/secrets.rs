//! Passphrases and private keys: a wrong passphrase is a clear error, and no secret ever
//! appears in output, logs, errors or `--json`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::{Command, Output, Stdio};

use common::{bin, describe_output, Workspace, PASSPHRASE};

fn all_text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The base64 body lines of a PEM file: the encrypted key material.
fn pem_body(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_wrong_passphrase_is_a_clear_error_that_does_not_echo_it() {
    let ws = Workspace::new();
    ws.init(1);
    let wrong = "Tr0ub4dor&3-wrong";
    let output = Command::new(bin())
        .env("WRONG", wrong)
        .args(["-C"])
        .arg(ws.path("repo"))
        .args([
            "--json",
            "-vv",
            "--passphrase-env",
            "WRONG",
            "sign",
            "--yes",
            "--key",
        ])
        .arg(ws.pem("root"))
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe_output(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("wrong passphrase"), "{stderr}");
    assert!(
        stderr.contains("root.pem"),
        "the error names the file: {stderr}"
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert!(!all_text(&output).contains(wrong), "the passphrase leaked");
    // Nothing was signed.
    let status = ws.json("repo", &["status"]);
    let root = &status["roles"][0];
    assert_eq!(root["role"], "root");
    assert_eq!(root["signatures"]["valid"].as_array().unwrap().len(), 0);

    // Missing sources are explained.
    let output = Command::new(bin())
        .arg("-C")
        .arg(ws.path("repo"))
        .args([
            "--passphrase-env",
            "NOT_SET_ANYWHERE",
            "sign",
            "--yes",
            "--key",
        ])
        .arg(ws.pem("root"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("NOT_SET_ANYWHERE"));
    let output = Command::new(bin())
        .arg("-C")
        .arg(ws.path("repo"))
        .args(["sign", "--yes", "--key"])
        .arg(ws.pem("root"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--passphrase-env"),
        "{}",
        describe_output(&output)
    );
    // An empty passphrase is refused: keys are always encrypted.
    let output = Command::new(bin())
        .env("EMPTY", "")
        .args(["--passphrase-env", "EMPTY", "key", "generate", "--out"])
        .arg(ws.path("unencrypted"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(!ws.path("unencrypted.pem").exists());
}

#[test]
fn no_secret_appears_in_any_output_of_a_whole_lifecycle() {
    let ws = Workspace::new();
    let passphrase_file = ws.path("passphrase.txt");
    std::fs::write(&passphrase_file, format!("{PASSPHRASE}\n")).unwrap();
    let mut transcript = String::new();
    let mut run = |args: &[&str]| {
        let output = Command::new(bin())
            .arg("-C")
            .arg(ws.path("repo"))
            .arg("--passphrase-file")
            .arg(&passphrase_file)
            .arg("-vv")
            .args(args)
            .current_dir(ws.dir.path())
            .env("TUF_SIGNER_LOG", "trace")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            describe_output(&output)
        );
        transcript.push_str(&all_text(&output));
    };
    for name in ["root", "targets", "online", "owner"] {
        let out = ws.path(name);
        run(&[
            "--json",
            "key",
            "generate",
            "--out",
            out.to_str().unwrap(),
            "--kdf-iterations",
            "100000",
        ]);
    }
    run(&[
        "init",
        "--root-key",
        &ws.public("root"),
        "--targets-key",
        &ws.public("targets"),
        "--online-key",
        &ws.public("online"),
        "--bin-bits",
        "2",
    ]);
    run(&["--json", "sign", "--yes", "--key", &ws.pem("root")]);
    run(&["sign", "--yes", "--key", &ws.pem("targets")]);
    run(&["--json", "publish", "--online-key", &ws.pem("online")]);
    run(&[
        "namespace",
        "delegate",
        "demo",
        "--key",
        &ws.public("owner"),
    ]);
    let export = ws.path("targets.sig.json");
    run(&[
        "signature",
        "export",
        "--role",
        "targets",
        "--yes",
        "--key",
        &ws.pem("targets"),
        "--out",
        export.to_str().unwrap(),
    ]);
    run(&["--json", "signature", "import", export.to_str().unwrap()]);
    let tarball = ws.tarball("demo", "1.0.0");
    run(&["release", "add", &tarball]);
    run(&["--json", "sign", "--yes", "--key", &ws.pem("owner")]);
    run(&["--json", "publish", "--online-key", &ws.pem("online")]);
    run(&[
        "--json",
        "refresh",
        "--within",
        "400d",
        "--online-key",
        &ws.pem("online"),
    ]);
    run(&["--json", "status"]);
    run(&["--json", "verify"]);
    assert!(
        transcript.contains("loaded private key"),
        "debug logs were captured"
    );
    assert!(!transcript.contains(PASSPHRASE), "the passphrase leaked");
    for name in ["root", "targets", "online", "owner"] {
        let pem = std::fs::read_to_string(ws.pem(name)).unwrap();
        for line in pem_body(&pem) {
            assert!(!transcript.contains(&line), "{name}.pem material leaked");
        }
    }
}

#[test]
fn generated_keys_are_encrypted_pkcs8_that_openssl_reads() {
    let ws = Workspace::new();
    let keyid = ws.key("k");
    let pem = std::fs::read_to_string(ws.pem("k")).unwrap();
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{pem}"
    );
    let public: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.public("k")).unwrap()).unwrap();
    assert_eq!(public["keytype"], "ed25519");
    let id = ws.ok("repo", &["key", "id", &ws.public("k")]);
    assert_eq!(id, format!("keyid: {keyid}\nlabel: k\n"));
    // Never overwritten.
    let again = ws.run(
        "repo",
        &["key", "generate", "--out", ws.path("k").to_str().unwrap()],
    );
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(ws.pem("k")).unwrap(), pem);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ws.pem("k")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "private key readable by others: {mode:o}");
    }
    let openssl = tuf_crates_tests::openssl();
    let output = Command::new(&openssl)
        .env("PASS", PASSPHRASE)
        .args(["pkey", "-passin", "env:PASS", "-noout", "-text", "-in"])
        .arg(ws.pem("k"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe_output(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("ED25519"));
    let output = Command::new(&openssl)
        .env("PASS", "wrong")
        .args(["pkey", "-passin", "env:PASS", "-noout", "-in"])
        .arg(ws.pem("k"))
        .output()
        .unwrap();
    assert!(!output.status.success());
}
