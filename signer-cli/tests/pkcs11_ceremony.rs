//! Hardware keys on real SoftHSM2 tokens (Debian's softhsm2, installed by scripts/test;
//! tokens in a temp dir): a key ceremony whose root keys live on two tokens and in one
//! file, a namespace owner whose key is on a token, root rotation onto token keys, and
//! python-tuf verifying the result. Also each error a token user can meet, asserted on
//! its message, and a trace-level log of it all that never holds a PIN.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{describe_output, python_verify, Workspace};

/// Debian's SoftHSM2 module.
const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The tokens' PINs: distinctive, so that a leak into any output is found.
const PIN_A: &str = "830417";
const PIN_B: &str = "562093";
const SO_PIN: &str = "99887766";

/// SoftHSM2 with its own token directory and configuration under the workspace.
struct SoftHsm {
    conf: PathBuf,
}

impl SoftHsm {
    /// Creates the tokens `Root A` (PIN_A) and `Root B` (PIN_B), and PIN files beside
    /// them.
    fn new(ws: &Workspace) -> Self {
        assert!(
            Path::new(MODULE).is_file(),
            "{MODULE} is missing: install Debian's softhsm2 (scripts/test does)"
        );
        let tokens = ws.path("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = ws.path("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        for (label, pin) in [("Root A", PIN_A), ("Root B", PIN_B)] {
            let output = std::process::Command::new("softhsm2-util")
                .env("SOFTHSM2_CONF", &conf)
                .args(["--init-token", "--free", "--label", label])
                .args(["--pin", pin, "--so-pin", SO_PIN])
                .output()
                .expect("softhsm2-util (Debian package softhsm2)");
            assert!(output.status.success(), "{}", describe_output(&output));
        }
        std::fs::write(ws.path("pin-a"), format!("{PIN_A}\n")).unwrap();
        std::fs::write(ws.path("pin-b"), format!("{PIN_B}\n")).unwrap();
        Self { conf }
    }

    /// A URI on token `token` (`A` or `B`) with its PIN file, plus `path` attributes.
    fn uri(&self, ws: &Workspace, token: &str, path: &str) -> String {
        let pin = ws.path(&format!("pin-{}", token.to_lowercase()));
        let mut uri = format!("pkcs11:token=Root%20{token}");
        if !path.is_empty() {
            uri.push(';');
            uri.push_str(path);
        }
        format!(
            "{uri}?module-path={MODULE}&pin-source=file:{}",
            pin.display()
        )
    }
}

/// Runs the binary against the tokens, logging at trace level; every output is kept so
/// that the test can search all of it for PINs.
struct Runner<'a> {
    ws: &'a Workspace,
    hsm: &'a SoftHsm,
    outputs: std::cell::RefCell<Vec<String>>,
}

impl Runner<'_> {
    fn run_with_conf(&self, conf: &Path, args: &[&str]) -> Output {
        let output = self
            .ws
            .command("repo")
            .env("SOFTHSM2_CONF", conf)
            .env("TUF_SIGNER_LOG", "trace")
            .args(args)
            .output()
            .unwrap();
        self.outputs.borrow_mut().push(format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
        output
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_conf(&self.hsm.conf, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "tuf-signer {args:?} failed:\n{}",
            describe_output(&output)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Asserts that the command fails with exit code 1 and a message holding every one
    /// of `needles`; returns the message.
    fn fails(&self, args: &[&str], needles: &[&str]) -> String {
        self.fails_with_conf(&self.hsm.conf, args, needles)
    }

    fn fails_with_conf(&self, conf: &Path, args: &[&str], needles: &[&str]) -> String {
        let output = self.run_with_conf(conf, args);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{args:?}: {}",
            describe_output(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let message = stderr
            .lines()
            .find(|line| line.starts_with("tuf-signer: error:"))
            .unwrap_or_else(|| panic!("no error line in {stderr}"))
            .to_owned();
        for needle in needles {
            assert!(message.contains(needle), "{needle:?} not in {message}");
        }
        message
    }

    /// `key generate --pkcs11` on token `token`; returns (the key's URI, keyid).
    fn generate_on_token(&self, token: &str, name: &str, algorithm: &str) -> (String, String) {
        let out = self.ws.path(name);
        let generated = self.json(&[
            "key",
            "generate",
            "--algorithm",
            algorithm,
            "--out",
            out.to_str().unwrap(),
            "--pkcs11",
            &self.hsm.uri(self.ws, token, ""),
        ]);
        assert_eq!(generated["label"], name, "{generated}");
        assert!(
            !self.ws.path(&format!("{name}.pem")).exists(),
            "no private key file is written for a token key"
        );
        let uri = generated["private_key"].as_str().unwrap().to_owned();
        assert!(uri.starts_with("pkcs11:token=Root%20"), "{uri}");
        assert!(uri.contains(&format!(";object={name};id=%")), "{uri}");
        assert!(uri.contains("pin-source=file:"), "{uri}");
        (uri, generated["keyid"].as_str().unwrap().to_owned())
    }

    fn assert_no_pin_anywhere(&self) {
        for output in self.outputs.borrow().iter() {
            for pin in [PIN_A, PIN_B] {
                assert!(!output.contains(pin), "the PIN {pin} is in: {output}");
            }
        }
    }
}

/// Runs OpenSC's `pkcs11-tool` on `token` (an independent reader of the token) and
/// returns its output.
fn pkcs11_tool(conf: &Path, token: &str, pin: &str, args: &[&str]) -> String {
    let output = std::process::Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", conf)
        .args([
            "--module",
            MODULE,
            "--token-label",
            token,
            "--login",
            "--pin",
            pin,
        ])
        .args(args)
        .output()
        .expect("pkcs11-tool (Debian package opensc)");
    assert!(output.status.success(), "{}", describe_output(&output));
    String::from_utf8(output.stdout).unwrap()
}

/// Checks with `pkcs11-tool` that every private key on `token` is sensitive, was
/// never extractable and cannot be extracted; returns how many there are.
fn assert_private_keys_stay_on(conf: &Path, token: &str, pin: &str) -> usize {
    let listing = pkcs11_tool(conf, token, pin, &["--list-objects", "--type", "privkey"]);
    let accesses: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Access:"))
        .map(str::trim)
        .collect();
    assert_eq!(
        listing.matches("Private Key Object").count(),
        accesses.len(),
        "{listing}"
    );
    for access in &accesses {
        // pkcs11-tool prints "extractable" when CKA_EXTRACTABLE is true.
        assert_eq!(
            *access, "sensitive, always sensitive, never extractable, local",
            "{listing}"
        );
    }
    accesses.len()
}

#[test]
fn ceremony_with_root_keys_on_two_tokens_then_rotation_onto_token_keys() {
    let ws = Workspace::new();
    let hsm = SoftHsm::new(&ws);
    let run = Runner {
        ws: &ws,
        hsm: &hsm,
        outputs: Default::default(),
    };
    // Root: one Ed25519 key on token A, one ECDSA P-256 key on token B, one file key.
    let (root_a, root_a_id) = run.generate_on_token("A", "root-a", "ed25519");
    let (root_b, root_b_id) = run.generate_on_token("B", "root-b", "ecdsa-p256");
    let (owner, _) = run.generate_on_token("A", "serde-owner", "ed25519");
    for name in ["root-file", "targets", "online"] {
        ws.key(name);
    }
    // `key id` reads the public key object straight off the token.
    let id = run.json(&["key", "id", &root_b]);
    assert_eq!(id["keyid"], root_b_id.as_str());
    assert_eq!(id["label"], "root-b");
    // The module found by name (`libsofthsm2.so` in /usr/lib/softhsm).
    let by_name = run.json(&[
        "key",
        "id",
        "pkcs11:token=Root%20B;object=root-b?module-name=softhsm2",
    ]);
    assert_eq!(by_name["keyid"], root_b_id.as_str());
    // `--save` writes its .pub.json, with the label asked for, and never over a file.
    let saved = ws.path("root-b-copy.pub.json");
    let saved_arg = saved.to_str().unwrap();
    let id = run.json(&["key", "id", &root_b, "--save", saved_arg, "--label", "bob"]);
    assert_eq!(id["keyid"], root_b_id.as_str());
    let copy = run.json(&["key", "id", saved_arg]);
    assert_eq!(
        (&copy["keyid"], &copy["label"]),
        (&id["keyid"], &serde_json::json!("bob"))
    );
    run.fails(
        &["key", "id", &root_b, "--save", saved_arg],
        &["root-b-copy.pub.json", "never overwritten"],
    );

    // The root keys are named by URI (token A) and by .pub.json (token B, file).
    let root_a_public = format!("pkcs11:token=Root%20A;object=root-a?module-path={MODULE}");
    run.ok(&[
        "init",
        "--root-key",
        &root_a_public,
        "--root-key",
        &ws.public("root-b"),
        "--root-key",
        &ws.public("root-file"),
        "--root-threshold",
        "2",
        "--targets-key",
        &ws.public("targets"),
        "--online-key",
        &ws.public("online"),
        "--bin-bits",
        "2",
    ]);
    let status = run.json(&["status"]);
    let root = status["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "root")
        .unwrap()
        .clone();
    assert!(root.to_string().contains(&root_a_id), "{root}");
    // Two of three root keys sign, both on tokens: Ed25519 with CKM_EDDSA, ECDSA with
    // CKM_ECDSA (DER-encoded).
    run.ok(&["sign", "--yes", "--role", "root", "--key", &root_a]);
    run.ok(&["sign", "--yes", "--role", "root", "--key", &root_b]);
    run.ok(&["sign", "--yes", "--key", &ws.pem("targets")]);
    run.ok(&["publish", "--online-key", &ws.pem("online")]);
    let first_root = ws.path("first-root.json");
    std::fs::copy(ws.path("repo/published/metadata/1.root.json"), &first_root).unwrap();
    let root_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&first_root).unwrap()).unwrap();
    let signatures = root_json["signatures"].as_array().unwrap();
    assert_eq!(signatures.len(), 2, "{root_json}");
    let ecdsa = signatures
        .iter()
        .find(|s| s["keyid"] == root_b_id.as_str())
        .unwrap();
    // DER: a SEQUENCE (0x30) of two INTEGERs.
    assert!(ecdsa["sig"].as_str().unwrap().starts_with("30"), "{ecdsa}");

    // The namespace owner's key is on token A; the owner signs the delegated role and
    // attests the release with the token key.
    run.ok(&["namespace", "delegate", "--key", &owner, "serde"]);
    run.ok(&["sign", "--yes", "--key", &ws.pem("targets")]);
    run.ok(&["sign", "--yes", "--key", &owner]);
    run.ok(&["publish", "--online-key", &ws.pem("online")]);
    let tarball = ws.tarball("serde", "1.0.0");
    let added = run.json(&["release", "add", &tarball, "--attest-key", &owner]);
    assert_eq!(added["added"][0]["attested_by"], "serde-owner", "{added}");
    run.ok(&["sign", "--yes", "--key", &owner]);
    run.ok(&["publish", "--online-key", &ws.pem("online")]);

    // Root rotation onto token keys only: a new key on token A and root-b, 2 of 2. The
    // old root's threshold is met by the two token keys, the new one by root-a2 and
    // root-b.
    let (root_a2, _) = run.generate_on_token("A", "root-a2", "ed25519");
    run.ok(&[
        "rotate-root",
        "--threshold",
        "2",
        "--key",
        &ws.public("root-a2"),
        "--key",
        &root_b,
    ]);
    for key in [&root_a, &root_b, &root_a2] {
        run.ok(&["sign", "--yes", "--role", "root", "--key", key]);
    }
    let report = run.json(&["publish", "--online-key", &ws.pem("online")]);
    assert_eq!(report["root_version"], 2, "{report}");
    // The file key is no longer a root key.
    run.ok(&["threshold", "--role", "root", "2"]);
    run.fails(
        &[
            "sign",
            "--yes",
            "--role",
            "root",
            "--key",
            &ws.pem("root-file"),
        ],
        &["is not authorised to sign this role"],
    );
    run.ok(&["discard"]);

    // python-tuf, holding the first root, follows the chain and downloads the release.
    let published = std::fs::canonicalize(ws.path("repo/published")).unwrap();
    let path = "crates/serde/serde/serde-1.0.0.crate";
    let (ok, value, output) = python_verify(&published, &first_root, &[path]);
    assert!(ok, "{output}");
    assert_eq!(
        value["root_versions"],
        serde_json::json!([1, 2]),
        "{output}"
    );
    assert_eq!(value["targets"][path]["downloaded"], true, "{output}");
    assert_eq!(value["targets"][path]["role"], "ns-serde", "{output}");
    let verified = run.json(&["verify", "--root", first_root.to_str().unwrap()]);
    assert!(
        verified["problems"].as_array().unwrap().is_empty(),
        "{verified}"
    );

    // On the tokens themselves: every private key is sensitive and never extractable.
    assert_eq!(assert_private_keys_stay_on(&hsm.conf, "Root A", PIN_A), 3);
    run.assert_no_pin_anywhere();
}

#[test]
fn token_errors_name_the_uri_and_never_the_pin() {
    let ws = Workspace::new();
    let hsm = SoftHsm::new(&ws);
    let run = Runner {
        ws: &ws,
        hsm: &hsm,
        outputs: Default::default(),
    };
    let (key, _) = run.generate_on_token("A", "root-a", "ed25519");
    ws.key("targets");
    ws.key("online");
    run.ok(&[
        "init",
        "--root-key",
        &key,
        "--targets-key",
        &ws.public("targets"),
        "--online-key",
        &ws.public("online"),
        "--bin-bits",
        "1",
    ]);
    let sign = |uri: &str, needles: &[&str]| {
        run.fails(&["sign", "--yes", "--role", "root", "--key", uri], needles)
    };

    // A wrong PIN, given in the URI: refused by the token, the PIN redacted everywhere.
    let wrong =
        format!("pkcs11:token=Root%20A;object=root-a?module-path={MODULE}&pin-value={PIN_B}");
    let message = sign(
        &wrong,
        &[
            "refused the PIN",
            "CKR_PIN_INCORRECT",
            "pin-value=REDACTED",
            "Root A",
        ],
    );
    assert!(!message.contains(PIN_B), "{message}");
    // A missing token: the message lists the tokens there are.
    sign(
        &hsm.uri(&ws, "C", "object=root-a"),
        &[
            "Root%20C",
            "no token matches",
            "token=\"Root A\"",
            "token=\"Root B\"",
        ],
    );
    // A missing object: the message lists the keys the token has.
    sign(
        &hsm.uri(&ws, "A", "object=root-x"),
        &[
            "object=root-x",
            "no private key on token \"Root A\" matches",
            "object=root-a;id=%",
        ],
    );
    // A module that does not load.
    sign(
        "pkcs11:token=Root%20A;object=root-a?module-path=/nonexistent/libnothing.so",
        &[
            "cannot load the PKCS#11 module /nonexistent/libnothing.so",
            "No such file",
        ],
    );
    // A file that is not a PKCS#11 module.
    std::fs::write(ws.path("not-a-module.so"), b"not a module").unwrap();
    sign(
        &format!(
            "pkcs11:object=root-a?module-path={}",
            ws.path("not-a-module.so").display()
        ),
        &["cannot load the PKCS#11 module"],
    );
    // No module at all.
    sign(
        "pkcs11:token=Root%20A;object=root-a",
        &[
            "no PKCS#11 module",
            "module-path=",
            "TUF_SIGNER_PKCS11_MODULE",
        ],
    );
    // No PIN and no terminal.
    sign(
        &format!("pkcs11:token=Root%20A;object=root-a?module-path={MODULE}"),
        &["needs a PIN", "pin-source=file:"],
    );
    // A token without EdDSA, as older SoftHSM builds are: SoftHSM 2.6.1 takes a "-"
    // list of mechanisms to disable (its first entry is not matched, hence the
    // placeholder).
    let no_eddsa = ws.path("no-eddsa.conf");
    let conf = std::fs::read_to_string(&hsm.conf).unwrap();
    std::fs::write(
        &no_eddsa,
        format!(
            "{conf}slots.mechanisms = -CKM_PLACEHOLDER,CKM_EDDSA,CKM_EC_EDWARDS_KEY_PAIR_GEN\n"
        ),
    )
    .unwrap();
    run.fails_with_conf(
        &no_eddsa,
        &["sign", "--yes", "--role", "root", "--key", &key],
        &["does not offer CKM_EDDSA", "signing", "ECDSA P-256"],
    );
    let out = ws.path("old-token");
    run.fails_with_conf(
        &no_eddsa,
        &[
            "key",
            "generate",
            "--out",
            out.to_str().unwrap(),
            "--pkcs11",
            &hsm.uri(&ws, "A", ""),
        ],
        &[
            "does not offer CKM_EC_EDWARDS_KEY_PAIR_GEN",
            "generating the key",
        ],
    );
    // An existing key is never replaced, and an existing .pub.json is never overwritten.
    let again = ws.path("again");
    run.fails(
        &[
            "key",
            "generate",
            "--out",
            again.to_str().unwrap(),
            "--pkcs11",
            &hsm.uri(&ws, "A", "object=root-a"),
        ],
        &["already holds an object labelled \"root-a\""],
    );
    run.fails(
        &[
            "key",
            "generate",
            "--out",
            ws.path("root-a").to_str().unwrap(),
            "--pkcs11",
            &hsm.uri(&ws, "B", ""),
        ],
        &["root-a.pub.json: already exists"],
    );
    // A URI that does not parse is refused before any token is touched.
    let output = run.run(&[
        "sign",
        "--yes",
        "--key",
        "pkcs11:objekt=root-a?pin-value=1234",
    ]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        describe_output(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("\"objekt\" is not supported"), "{stderr}");
    assert!(!stderr.contains("1234"), "{stderr}");

    // Keys that ask for the PIN before every signature (CKA_ALWAYS_AUTHENTICATE, as a
    // YubiKey's slot 9c): an Ed25519 one cannot sign in parts; an ECDSA one needs
    // CKM_ECDSA_SHA256, which SoftHSM2 lacks.
    for (key_type, label) in [
        ("EC:prime256v1", "always-ec"),
        ("EC:edwards25519", "always-ed"),
    ] {
        pkcs11_tool(
            &hsm.conf,
            "Root A",
            PIN_A,
            &[
                "--keypairgen",
                "--key-type",
                key_type,
                "--label",
                label,
                "--always-auth",
            ],
        );
    }
    sign(
        &hsm.uri(&ws, "A", "object=always-ed"),
        &[
            "asks for the PIN before every signature",
            "CKA_ALWAYS_AUTHENTICATE",
            "Ed25519",
        ],
    );
    sign(
        &hsm.uri(&ws, "A", "object=always-ec"),
        &[
            "does not offer CKM_ECDSA_SHA256",
            "a key without a per-signature PIN policy",
        ],
    );

    // The right PIN through pin-value works, and still never shows.
    let right =
        format!("pkcs11:token=Root%20A;object=root-a?module-path={MODULE}&pin-value={PIN_A}");
    run.ok(&["sign", "--yes", "--role", "root", "--key", &right]);
    run.assert_no_pin_anywhere();
}
