#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Private key files and signatures interoperate with the `openssl` command line tool.
//!
//! * Keys tuf-core encrypts (PBES2 with PBKDF2-HMAC-SHA256 or scrypt, AES-256-CBC)
//!   decrypt with `openssl pkey` to the same public key, and only with the right
//!   passphrase; scrypt with `log_n` 15 is beyond what OpenSSL accepts (its default
//!   32 MiB scrypt memory limit), as `KeyEncryption::Scrypt` documents.
//! * Keys `openssl genpkey` writes, plain or re-encrypted with `openssl pkcs8 -topk8`
//!   (PBKDF2-SHA256 or scrypt), load with `PrivateKey::from_pkcs8_pem`, and what they
//!   sign verifies with `openssl pkeyutl` (ed25519) or `openssl dgst` (ECDSA P-256).
//!
//! Passphrases reach openssl only through `pass:` and `file:` arguments.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use tuf_core::signer::PrivateKeyError;
use tuf_core::{KeyAlgorithm, KeyEncryption, PrivateKey, Signer};
use tuf_crates_tests::{describe_output, openssl, run};

const PASSPHRASE: &str = "correct horse battery staple";
const WRONG_PASSPHRASE: &str = "incorrect horse battery staple";
const MESSAGE: &[u8] = b"{\"signed\":\"tuf-crates openssl interop \\u00fc\"}\n\x00\xff";

fn openssl_run(args: &[&str]) -> Output {
    run(&openssl(), args)
}

fn openssl_ok(args: &[&str]) -> Output {
    let output = openssl_run(args);
    assert!(
        output.status.success(),
        "openssl {} failed\n{}",
        args.join(" "),
        describe_output(&output)
    );
    output
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Asserts that the public key openssl derives from `key_file` (decrypted with `passin`,
/// an openssl pass phrase argument, if given) is `key`'s public key: the same SPKI PEM
/// for ECDSA, the same 32 raw bytes for ed25519.
fn assert_openssl_public_key_matches(key: &PrivateKey, key_file: &Path, passin: Option<&str>) {
    let public = key.public_key().public().expect("keyval.public");
    let mut args = vec!["pkey", "-in", path_str(key_file), "-pubout"];
    if let Some(passin) = passin {
        args.extend(["-passin", passin]);
    }
    match key.algorithm() {
        KeyAlgorithm::EcdsaP256 => {
            let output = openssl_ok(&args);
            assert_eq!(
                String::from_utf8(output.stdout).unwrap(),
                public,
                "openssl's public key PEM differs from keyval.public"
            );
        }
        KeyAlgorithm::Ed25519 => {
            args.extend(["-outform", "DER"]);
            let der = openssl_ok(&args).stdout;
            assert_eq!(der.len(), 44, "ed25519 SubjectPublicKeyInfo is 44 bytes");
            assert_eq!(
                hex::encode(&der[der.len() - 32..]),
                public,
                "openssl's raw ed25519 public key differs from keyval.public"
            );
        }
    }
}

fn pass_arg(passphrase: &str) -> String {
    format!("pass:{passphrase}")
}

/// openssl reads a key file we wrote (encrypted with `encryption` under [`PASSPHRASE`],
/// or plain), to our public key; an encrypted one only with the right passphrase.
fn check_openssl_reads_our_key(algorithm: KeyAlgorithm, encryption: Option<KeyEncryption>) {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate(algorithm);
    let passphrase = encryption.map(|_| PASSPHRASE.as_bytes());
    let pem = key
        .to_pkcs8_pem(passphrase, encryption.unwrap_or_default())
        .unwrap();
    let label = if encryption.is_some() {
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
    } else {
        "-----BEGIN PRIVATE KEY-----\n"
    };
    assert!(
        pem.starts_with(label),
        "{algorithm:?}: unexpected PEM label"
    );
    let key_file = dir.path().join("key.pem");
    fs::write(&key_file, pem.as_bytes()).unwrap();
    let passin = encryption.map(|_| pass_arg(PASSPHRASE));

    // First, can openssl parse the file at all? (Kept apart from the comparison below so
    // a failure says what it is.)
    let mut args = vec!["pkey", "-in", path_str(&key_file), "-noout"];
    if let Some(passin) = &passin {
        args.extend(["-passin", passin]);
    }
    let output = openssl_run(&args);
    assert!(
        output.status.success(),
        "openssl cannot read the {algorithm:?} PKCS#8 file tuf-core wrote \
         (encryption: {encryption:?}). For ed25519 the known cause is that tuf-core writes \
         PKCS#8 v2 (RFC 5958 OneAsymmetricKey: version 1 plus the [1] publicKey field, as \
         ed25519-dalek's to_pkcs8_der does), which OpenSSL before 3.5 cannot parse; \
         `openssl genpkey` writes v1 (version 0, no public key).\n\
         {}\n--- file (asn1parse) ---\n{}",
        describe_output(&output),
        asn1parse(&key_file, passin.as_deref())
    );

    assert_openssl_public_key_matches(&key, &key_file, passin.as_deref());
    if encryption.is_none() {
        return;
    }

    // The passphrase from a file (openssl reads its first line).
    let pass_file = dir.path().join("passphrase");
    fs::write(&pass_file, format!("{PASSPHRASE}\n")).unwrap();
    let file_arg = format!("file:{}", path_str(&pass_file));
    assert_openssl_public_key_matches(&key, &key_file, Some(&file_arg));

    let wrong = openssl_run(&[
        "pkey",
        "-in",
        path_str(&key_file),
        "-passin",
        &pass_arg(WRONG_PASSPHRASE),
        "-pubout",
    ]);
    assert!(
        !wrong.status.success(),
        "openssl accepted a wrong passphrase for {algorithm:?} / {encryption:?}\n{}",
        describe_output(&wrong)
    );
    assert!(wrong.stdout.is_empty(), "{}", describe_output(&wrong));
}

/// The structure of a (plain) key file, for failure messages.
fn asn1parse(key_file: &Path, passin: Option<&str>) -> String {
    if passin.is_some() {
        return "(encrypted; see the unencrypted test for the structure)".to_owned();
    }
    let output = openssl_run(&["asn1parse", "-in", path_str(key_file)]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Minimal reproduction: a plain PKCS#8 ed25519 key tuf-core writes must be readable by
/// `openssl pkey` (the signer module documents that its files are).
#[test]
fn openssl_reads_our_unencrypted_ed25519_key() {
    check_openssl_reads_our_key(KeyAlgorithm::Ed25519, None);
}

#[test]
fn openssl_reads_our_unencrypted_ecdsa_p256_key() {
    check_openssl_reads_our_key(KeyAlgorithm::EcdsaP256, None);
}

#[test]
fn openssl_decrypts_our_ed25519_keys() {
    for encryption in [
        KeyEncryption::default(),
        KeyEncryption::Scrypt { log_n: 14 },
    ] {
        check_openssl_reads_our_key(KeyAlgorithm::Ed25519, Some(encryption));
    }
}

#[test]
fn openssl_decrypts_our_ecdsa_p256_keys() {
    for encryption in [
        KeyEncryption::default(),
        KeyEncryption::Scrypt { log_n: 14 },
    ] {
        check_openssl_reads_our_key(KeyAlgorithm::EcdsaP256, Some(encryption));
    }
}

/// `KeyEncryption::Scrypt` documents that `log_n` above 14 makes files `openssl pkey`
/// cannot read: N = 2^15 with r = 8 needs 32 MiB + 2 KiB for scrypt's V array, over
/// OpenSSL's default 32 MiB limit (`SCRYPT_MAX_MEM`, unchanged from 1.1.0 to 3.x).
/// tuf-core itself still reads such files.
#[test]
fn openssl_refuses_scrypt_log_n_15_which_we_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let pem = key
        .to_pkcs8_pem(
            Some(PASSPHRASE.as_bytes()),
            KeyEncryption::Scrypt { log_n: 15 },
        )
        .unwrap();
    let reloaded = PrivateKey::from_pkcs8_pem(&pem, Some(PASSPHRASE.as_bytes())).unwrap();
    assert_eq!(reloaded.keyid(), key.keyid());

    let key_file = dir.path().join("key.pem");
    fs::write(&key_file, pem.as_bytes()).unwrap();
    let output = openssl_run(&[
        "pkey",
        "-in",
        path_str(&key_file),
        "-passin",
        &pass_arg(PASSPHRASE),
        "-pubout",
    ]);
    assert!(
        !output.status.success(),
        "openssl now reads scrypt N=2^15 keys: update the KeyEncryption::Scrypt docs\n{}",
        describe_output(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("memory limit exceeded"),
        "openssl failed for another reason than its scrypt memory limit\n{}",
        describe_output(&output)
    );
}

/// How `openssl pkcs8 -topk8` re-encrypts a key, if at all.
#[derive(Debug, Clone, Copy)]
enum OpensslEncryption {
    None,
    Pbkdf2Sha256,
    Scrypt,
}

/// Writes a key with `openssl genpkey` (and `openssl pkcs8 -topk8`), returning the key
/// file and the public key file openssl derives.
fn openssl_key(
    dir: &Path,
    algorithm: KeyAlgorithm,
    encryption: OpensslEncryption,
) -> (PathBuf, PathBuf) {
    let plain = dir.join(format!("{algorithm:?}-plain.pem"));
    let public = dir.join(format!("{algorithm:?}-public.pem"));
    if !plain.exists() {
        let mut args = vec!["genpkey", "-out", path_str(&plain)];
        match algorithm {
            KeyAlgorithm::Ed25519 => args.extend(["-algorithm", "ed25519"]),
            KeyAlgorithm::EcdsaP256 => {
                args.extend(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
            }
        }
        openssl_ok(&args);
        openssl_ok(&[
            "pkey",
            "-in",
            path_str(&plain),
            "-pubout",
            "-out",
            path_str(&public),
        ]);
    }
    let passout = pass_arg(PASSPHRASE);
    let topk8 = |out: &Path, options: &[&str]| {
        let mut args = vec![
            "pkcs8",
            "-topk8",
            "-in",
            path_str(&plain),
            "-out",
            path_str(out),
            "-passout",
            &passout,
        ];
        args.extend(options);
        openssl_ok(&args);
    };
    let file = match encryption {
        OpensslEncryption::None => plain,
        OpensslEncryption::Pbkdf2Sha256 => {
            let out = dir.join(format!("{algorithm:?}-pbkdf2.pem"));
            topk8(&out, &["-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256"]);
            out
        }
        OpensslEncryption::Scrypt => {
            let out = dir.join(format!("{algorithm:?}-scrypt.pem"));
            topk8(&out, &["-scrypt"]);
            out
        }
    };
    (file, public)
}

/// Verifies `signature` (raw bytes) over `message` with openssl; returns whether openssl
/// accepted it.
fn openssl_verifies(
    dir: &Path,
    algorithm: KeyAlgorithm,
    public: &Path,
    message: &[u8],
    signature: &[u8],
) -> bool {
    let message_file = dir.join("message");
    let signature_file = dir.join("signature");
    fs::write(&message_file, message).unwrap();
    fs::write(&signature_file, signature).unwrap();
    let output = match algorithm {
        KeyAlgorithm::Ed25519 => openssl_run(&[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            path_str(public),
            "-rawin",
            "-in",
            path_str(&message_file),
            "-sigfile",
            path_str(&signature_file),
        ]),
        KeyAlgorithm::EcdsaP256 => openssl_run(&[
            "dgst",
            "-sha256",
            "-verify",
            path_str(public),
            "-signature",
            path_str(&signature_file),
            path_str(&message_file),
        ]),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let verified = stdout.contains("Verified OK") || stdout.contains("Verified Successfully");
    assert_eq!(
        output.status.success(),
        verified,
        "openssl's exit status and message disagree\n{}",
        describe_output(&output)
    );
    verified
}

/// Keys openssl writes load here, to the same public key, and what we sign with them
/// verifies in openssl.
fn check_openssl_keys_load_and_sign(algorithm: KeyAlgorithm) {
    let dir = tempfile::tempdir().unwrap();
    for encryption in [
        OpensslEncryption::None,
        OpensslEncryption::Pbkdf2Sha256,
        OpensslEncryption::Scrypt,
    ] {
        let (key_file, public_file) = openssl_key(dir.path(), algorithm, encryption);
        let pem = fs::read_to_string(&key_file).unwrap();
        let encrypted = !matches!(encryption, OpensslEncryption::None);
        assert_eq!(
            pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
            encrypted,
            "{pem}"
        );
        let passphrase = encrypted.then_some(PASSPHRASE.as_bytes());
        let key = PrivateKey::from_pkcs8_pem(&pem, passphrase)
            .unwrap_or_else(|e| panic!("{algorithm:?} / {encryption:?}: {e}"));
        assert_eq!(key.algorithm(), algorithm);
        let passin = pass_arg(PASSPHRASE);
        assert_openssl_public_key_matches(&key, &key_file, encrypted.then_some(passin.as_str()));

        let raw = key.sign(MESSAGE).unwrap();
        assert!(
            openssl_verifies(dir.path(), algorithm, &public_file, MESSAGE, &raw),
            "openssl rejected our {algorithm:?} signature ({encryption:?} key)"
        );
        assert!(
            !openssl_verifies(
                dir.path(),
                algorithm,
                &public_file,
                b"another message",
                &raw
            ),
            "openssl accepted our {algorithm:?} signature over another message"
        );

        if encrypted {
            assert!(
                matches!(
                    PrivateKey::from_pkcs8_pem(&pem, Some(WRONG_PASSPHRASE.as_bytes())),
                    Err(PrivateKeyError::WrongPassphrase)
                ),
                "{algorithm:?} / {encryption:?}: wrong passphrase not reported as such"
            );
            assert!(matches!(
                PrivateKey::from_pkcs8_pem(&pem, None),
                Err(PrivateKeyError::PassphraseRequired)
            ));
        }
    }
}

#[test]
fn openssl_ed25519_keys_load_and_sign_here() {
    check_openssl_keys_load_and_sign(KeyAlgorithm::Ed25519);
}

#[test]
fn openssl_ecdsa_p256_keys_load_and_sign_here() {
    check_openssl_keys_load_and_sign(KeyAlgorithm::EcdsaP256);
}
