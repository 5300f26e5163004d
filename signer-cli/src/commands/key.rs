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
use crate::secrets::{load_public_key, PassphraseSource};
use crate::GlobalArgs;

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a key pair: OUT.pem (encrypted PKCS#8) and OUT.pub.json (the TUF public
    /// key, with the key's label); prints the keyid.
    Generate(GenerateArgs),
    /// Print the keyid and the label of a public key file.
    Id {
        /// A `.pub.json` file.
        public_key: PathBuf,
    },
    /// Authorise a public key for a role (root, targets, snapshot, timestamp, a
    /// namespace role `ns-NAME`, `unclaimed`, or `unclaimed-*` for the fallback bins).
    Add {
        /// The role.
        #[arg(long)]
        role: String,
        /// `.pub.json` files.
        #[arg(required = true)]
        public_keys: Vec<PathBuf>,
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
}

#[derive(Serialize)]
struct Generated {
    keyid: String,
    label: String,
    algorithm: String,
    private_key: String,
    public_key: String,
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

fn generate(global: &GlobalArgs, args: &GenerateArgs) -> Result<ExitCode, Error> {
    let label = label_of(args)?;
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
    let algorithm = match args.algorithm {
        Algorithm::Ed25519 => KeyAlgorithm::Ed25519,
        Algorithm::EcdsaP256 => KeyAlgorithm::EcdsaP256,
    };
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
    emit(global, &generated, || {
        crate::say!("keyid:       {}", generated.keyid);
        crate::say!("label:       {}", generated.label);
        crate::say!("algorithm:   {}", generated.algorithm);
        crate::say!(
            "private key: {} (encrypted; keep it offline)",
            generated.private_key
        );
        crate::say!("public key:  {}", generated.public_key);
    });
    Ok(ExitCode::SUCCESS)
}

/// Runs a `key` subcommand.
pub fn run(global: &GlobalArgs, command: KeyCommand) -> Result<ExitCode, Error> {
    match command {
        KeyCommand::Generate(args) => generate(global, &args),
        KeyCommand::Id { public_key } => {
            let key = load_public_key(&public_key)?;
            let keyid = key.keyid();
            let label = key.label();
            emit(
                global,
                &serde_json::json!({ "keyid": keyid, "label": label }),
                || {
                    crate::say!("keyid: {keyid}");
                    crate::say!("label: {}", label.unwrap_or("(none)"));
                },
            );
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Add { role, public_keys } => {
            let mut repo = super::open(global)?;
            let now = chrono::Utc::now();
            let mut added = Vec::new();
            for path in &public_keys {
                let key = load_public_key(path)?;
                repo.add_key(&role, &key, now)
                    .with_context(|| format!("adding {} to {role}", path.display()))?;
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
