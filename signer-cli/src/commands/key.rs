//! `key generate`, `key id`, `key add`, `key remove`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Error};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use tuf_core::keys::validate_label;
use tuf_core::{KeyAlgorithm, KeyEncryption, PrivateKey, Signer};

use crate::output::emit;
use crate::pkcs11::Pkcs11Uri;
use crate::secrets::{load_public_key_from, KeySource, PassphraseSource};
use crate::GlobalArgs;

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a key pair: OUT.pem (encrypted PKCS#8) and OUT.pub.json (the TUF public
    /// key, with the key's label); prints the keyid. With `--pkcs11 URI`, the key pair is
    /// made on the token (the private key cannot leave it) and only OUT.pub.json is
    /// written.
    Generate(GenerateArgs),
    /// Print the keyid and the label of a public key: a `.pub.json` file, or a key on a
    /// token (`pkcs11:` URI).
    Id {
        /// A `.pub.json` file or a `pkcs11:` URI.
        #[arg(value_name = "KEY")]
        public_key: KeySource,
        /// Also write the public key to this new `.pub.json` file (for a key on a
        /// token: what the other key holders and `init` on another machine need).
        #[arg(long, value_name = "PUB")]
        save: Option<PathBuf>,
        /// With `--save`: the label to write into the file (default: the key's own
        /// label, a token key's object label when it is a usable label).
        #[arg(long, requires = "save")]
        label: Option<String>,
    },
    /// Authorise a public key for a role (root, targets, snapshot, timestamp, a
    /// namespace role `ns-NAME`, `unclaimed`, or `unclaimed-*` for the fallback bins).
    Add {
        /// The role.
        #[arg(long)]
        role: String,
        /// `.pub.json` files or `pkcs11:` URIs.
        #[arg(required = true, value_name = "KEY")]
        public_keys: Vec<KeySource>,
    },
    /// Remove a key from a role, by keyid.
    Remove {
        /// The role.
        #[arg(long)]
        role: String,
        /// Keyids.
        #[arg(required = true)]
        keyids: Vec<String>,
    },
}

/// Key algorithms.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Algorithm {
    /// Ed25519 (the default).
    Ed25519,
    /// ECDSA on NIST P-256 with SHA-256.
    EcdsaP256,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Path prefix of the files to write (OUT.pem and OUT.pub.json); existing files are
    /// never overwritten.
    #[arg(long, short)]
    out: PathBuf,
    /// The key's human label (e.g. `alice`), written into OUT.pub.json as
    /// `x-tuf-crates-label` and shown in messages; it does not change the keyid, and trust
    /// is by key, never by label. Default: the file name of OUT.
    #[arg(long)]
    label: Option<String>,
    /// Key algorithm.
    #[arg(long, value_enum, default_value = "ed25519")]
    algorithm: Algorithm,
    /// PBKDF2-SHA256 rounds protecting the private key (at least 100,000).
    #[arg(long, default_value_t = 600_000, value_parser = clap::value_parser!(u32).range(100_000..))]
    kdf_iterations: u32,
    /// Make the key pair on this PKCS#11 token instead of in a file (RFC 7512 URI, e.g.
    /// `pkcs11:token=Root%201?module-path=/usr/lib/softhsm/libsofthsm2.so`). The token
    /// object's label is the URI's `object=`, else the key's label; its id is the URI's
    /// `id=`, else 16 random bytes. The private key is sensitive and not extractable.
    #[arg(long, value_name = "URI")]
    pkcs11: Option<Box<Pkcs11Uri>>,
}

#[derive(Serialize)]
struct Generated {
    keyid: String,
    label: String,
    algorithm: String,
    private_key: String,
    public_key: String,
}

/// Prints what `key generate` made; `where_private` says where the private key is.
fn print_generated(global: &GlobalArgs, generated: &Generated, where_private: &str) {
    emit(global, generated, || {
        crate::say!("keyid:       {}", generated.keyid);
        crate::say!("label:       {}", generated.label);
        crate::say!("algorithm:   {}", generated.algorithm);
        crate::say!("private key: {} ({where_private})", generated.private_key);
        crate::say!("public key:  {}", generated.public_key);
    });
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Who may read a key file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyFile {
    /// The encrypted private key: the owner only (0600).
    Private,
    /// The public key, handed to others and served: everyone (0644).
    Public,
}

/// Writes `bytes` to a new file atomically (temp file, fsync, rename that refuses to
/// replace an existing file), with the permissions `kind` asks for whatever the umask.
fn write_new(path: &Path, bytes: &[u8], kind: KeyFile) -> Result<(), Error> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-key-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    temp.write_all(bytes)
        .and_then(|()| match kind {
            KeyFile::Private => Ok(()),
            KeyFile::Public => tuf_core::fs::make_readable(temp.path()),
        })
        .and_then(|()| temp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    temp.persist_noclobber(path).map_err(|e| {
        Error::msg(format!(
            "{}: {} (existing keys are never overwritten)",
            path.display(),
            e.error
        ))
    })?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    Ok(())
}

/// The label `key generate` writes: `--label`, else the file name of `--out`.
fn label_of(args: &GenerateArgs) -> Result<String, Error> {
    let (label, origin) = match &args.label {
        Some(label) => (label.clone(), "--label"),
        None => {
            let name = args
                .out
                .file_name()
                .and_then(|name| name.to_str())
                .ok_or_else(|| {
                    Error::msg(format!(
                        "{} has no file name to use as the key's label; give one with --label",
                        args.out.display()
                    ))
                })?;
            (name.to_owned(), "the file name of --out")
        }
    };
    validate_label(&label).map_err(|e| {
        Error::msg(format!(
            "{label:?} ({origin}) cannot be the key's label: {e}{}",
            if args.label.is_none() {
                "; give one with --label"
            } else {
                ""
            }
        ))
    })?;
    Ok(label)
}

/// `key generate --pkcs11`: the key pair on the token, OUT.pub.json here.
fn generate_on_token(
    global: &GlobalArgs,
    args: &GenerateArgs,
    uri: &Pkcs11Uri,
    label: String,
    algorithm: KeyAlgorithm,
) -> Result<ExitCode, Error> {
    let public_path = with_suffix(&args.out, ".pub.json");
    if public_path.exists() {
        return Err(Error::msg(format!(
            "{}: already exists; existing keys are never overwritten",
            public_path.display()
        )));
    }
    let object_label = uri.object.clone().unwrap_or_else(|| label.clone());
    let generated_key = crate::pkcs11::generate(uri, algorithm, &object_label)?;
    let mut public_key = generated_key.public;
    public_key.set_label(&label)?;
    let mut public = serde_json::to_vec_pretty(&public_key).context("encoding the public key")?;
    public.push(b'\n');
    write_new(&public_path, &public, KeyFile::Public)?;
    let generated = Generated {
        keyid: public_key.keyid(),
        label,
        algorithm: public_key.scheme.clone(),
        private_key: generated_key.uri,
        public_key: public_path.display().to_string(),
    };
    print_generated(global, &generated, "on the token; it cannot be exported");
    Ok(ExitCode::SUCCESS)
}

fn generate(global: &GlobalArgs, args: &GenerateArgs) -> Result<ExitCode, Error> {
    let label = label_of(args)?;
    let algorithm = match args.algorithm {
        Algorithm::Ed25519 => KeyAlgorithm::Ed25519,
        Algorithm::EcdsaP256 => KeyAlgorithm::EcdsaP256,
    };
    if let Some(uri) = &args.pkcs11 {
        return generate_on_token(global, args, uri, label, algorithm);
    }
    let private_path = with_suffix(&args.out, ".pem");
    let public_path = with_suffix(&args.out, ".pub.json");
    for path in [&private_path, &public_path] {
        if path.exists() {
            return Err(Error::msg(format!(
                "{}: already exists; existing keys are never overwritten",
                path.display()
            )));
        }
    }
    let passphrase = PassphraseSource::from_args(global)
        .read(&format!("the new key {}", private_path.display()), true)?;
    let key = PrivateKey::generate(algorithm);
    let pem = key
        .to_pkcs8_pem(
            Some(passphrase.as_bytes()),
            KeyEncryption::Pbkdf2Sha256 {
                iterations: args.kdf_iterations,
            },
        )
        .context("encrypting the private key")?;
    let mut public_key = key.public_key().clone();
    public_key.set_label(&label)?;
    let mut public = serde_json::to_vec_pretty(&public_key).context("encoding the public key")?;
    public.push(b'\n');
    write_new(&private_path, pem.as_bytes(), KeyFile::Private)?;
    write_new(&public_path, &public, KeyFile::Public)?;
    let generated = Generated {
        keyid: key.keyid().clone(),
        label,
        algorithm: key.public_key().scheme.clone(),
        private_key: private_path.display().to_string(),
        public_key: public_path.display().to_string(),
    };
    print_generated(global, &generated, "encrypted; keep it offline");
    Ok(ExitCode::SUCCESS)
}

/// Runs a `key` subcommand.
pub fn run(global: &GlobalArgs, command: KeyCommand) -> Result<ExitCode, Error> {
    match command {
        KeyCommand::Generate(args) => generate(global, &args),
        KeyCommand::Id {
            public_key,
            save,
            label,
        } => {
            let mut key = load_public_key_from(&public_key)?;
            if let Some(label) = &label {
                validate_label(label).map_err(|e| Error::msg(format!("--label: {e}")))?;
                key.set_label(label)?;
            }
            if let Some(path) = &save {
                let mut bytes =
                    serde_json::to_vec_pretty(&key).context("encoding the public key")?;
                bytes.push(b'\n');
                write_new(path, &bytes, KeyFile::Public)?;
            }
            let keyid = key.keyid();
            let label = key.label();
            let saved = save.as_ref().map(|p| p.display().to_string());
            emit(
                global,
                &match &saved {
                    Some(saved) => {
                        serde_json::json!({ "keyid": keyid, "label": label, "saved": saved })
                    }
                    None => serde_json::json!({ "keyid": keyid, "label": label }),
                },
                || {
                    crate::say!("keyid: {keyid}");
                    crate::say!("label: {}", label.unwrap_or("(none)"));
                    if let Some(saved) = &saved {
                        crate::say!("saved: {saved}");
                    }
                },
            );
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Add { role, public_keys } => {
            let mut repo = super::open(global)?;
            let now = chrono::Utc::now();
            let mut added = Vec::new();
            for source in &public_keys {
                let key = load_public_key_from(source)?;
                repo.add_key(&role, &key, now)
                    .with_context(|| format!("adding {source} to {role}"))?;
                added.push(key.keyid());
            }
            repo.save()?;
            super::warn_dropped(&repo);
            emit(
                global,
                &serde_json::json!({ "role": role, "added": added }),
                || {
                    for keyid in &added {
                        crate::say!("staged: {role} += key {keyid}");
                    }
                },
            );
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Remove { role, keyids } => {
            let mut repo = super::open(global)?;
            let now = chrono::Utc::now();
            for keyid in &keyids {
                repo.remove_key(&role, keyid, now)
                    .with_context(|| format!("removing {keyid} from {role}"))?;
            }
            repo.save()?;
            super::warn_dropped(&repo);
            emit(
                global,
                &serde_json::json!({ "role": role, "removed": keyids }),
                || {
                    for keyid in &keyids {
                        crate::say!("staged: {role} -= key {keyid}");
                    }
                },
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
