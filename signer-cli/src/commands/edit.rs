//! Commands that stage changes: `init`, `namespace`, `threshold`, `rotate-root`,
//! `discard` (`release` has its own module).

use std::process::ExitCode;

use anyhow::{Context, Error};
use clap::{Args, Subcommand};
use tuf_core::repository::{
    format_duration, parse_duration, ExpiryPolicy, InitOptions, Repository, RoleKeySpec, Settings,
    DEFAULT_FALLBACK_BIN_BITS,
};

use crate::output::emit;
use crate::secrets::{load_public_keys_from, KeySource};
use crate::GlobalArgs;

fn duration(text: &str) -> Result<u64, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Root public keys (offline).
    #[arg(long = "root-key", required = true, value_name = "PUB")]
    root_keys: Vec<KeySource>,
    /// Root signatures needed.
    #[arg(long, default_value_t = 1)]
    root_threshold: u64,
    /// Top-level targets public keys (offline).
    #[arg(long = "targets-key", required = true, value_name = "PUB")]
    targets_keys: Vec<KeySource>,
    /// Targets signatures needed.
    #[arg(long, default_value_t = 1)]
    targets_threshold: u64,
    /// The online public key: signs snapshot, timestamp and the fallback bins unless
    /// the options below name other keys.
    #[arg(long = "online-key", value_name = "PUB")]
    online_keys: Vec<KeySource>,
    /// Snapshot public keys (default: the online keys).
    #[arg(long = "snapshot-key", value_name = "PUB")]
    snapshot_keys: Vec<KeySource>,
    /// Timestamp public keys (default: the online keys).
    #[arg(long = "timestamp-key", value_name = "PUB")]
    timestamp_keys: Vec<KeySource>,
    /// Keys of the fallback role and its hash bins (default: the online keys).
    #[arg(long = "fallback-key", value_name = "PUB")]
    fallback_keys: Vec<KeySource>,
    /// Root validity.
    #[arg(long, value_parser = duration, default_value = "365d")]
    root_expiry: u64,
    /// Targets validity.
    #[arg(long, value_parser = duration, default_value = "365d")]
    targets_expiry: u64,
    /// Namespace roles' validity.
    #[arg(long, value_parser = duration, default_value = "365d")]
    namespace_expiry: u64,
    /// Fallback role and bins validity.
    #[arg(long, value_parser = duration, default_value = "90d")]
    fallback_expiry: u64,
    /// Snapshot validity.
    #[arg(long, value_parser = duration, default_value = "7d")]
    snapshot_expiry: u64,
    /// Timestamp validity.
    #[arg(long, value_parser = duration, default_value = "1d")]
    timestamp_expiry: u64,
    /// The fallback role splits unclaimed crates into 2^BITS hash bins.
    #[arg(long, default_value_t = DEFAULT_FALLBACK_BIN_BITS, value_parser = clap::value_parser!(u32).range(1..=16))]
    bin_bits: u32,
}

fn keys_or_online(
    role: &str,
    keys: &[KeySource],
    online: &[KeySource],
) -> Result<RoleKeySpec, Error> {
    let chosen = if keys.is_empty() { online } else { keys };
    if chosen.is_empty() {
        return Err(Error::msg(format!(
            "no keys for {role}: give --online-key (or --{role}-key)"
        )));
    }
    Ok(RoleKeySpec {
        keys: load_public_keys_from(chosen)?,
        threshold: 1,
    })
}

/// `init`.
pub fn init(global: &GlobalArgs, args: &InitArgs) -> Result<ExitCode, Error> {
    let options = InitOptions {
        root: RoleKeySpec {
            keys: load_public_keys_from(&args.root_keys)?,
            threshold: args.root_threshold,
        },
        targets: RoleKeySpec {
            keys: load_public_keys_from(&args.targets_keys)?,
            threshold: args.targets_threshold,
        },
        snapshot: keys_or_online("snapshot", &args.snapshot_keys, &args.online_keys)?,
        timestamp: keys_or_online("timestamp", &args.timestamp_keys, &args.online_keys)?,
        fallback: keys_or_online("fallback", &args.fallback_keys, &args.online_keys)?,
        settings: Settings {
            expiry: ExpiryPolicy {
                root: args.root_expiry,
                targets: args.targets_expiry,
                namespace: args.namespace_expiry,
                fallback: args.fallback_expiry,
                snapshot: args.snapshot_expiry,
                timestamp: args.timestamp_expiry,
            },
            fallback_bin_bits: args.bin_bits,
            ..Settings::default()
        },
    };
    let repo = Repository::init(&global.repo, &options, chrono::Utc::now())
        .with_context(|| format!("creating a repository in {}", global.repo.display()))?;
    let staged = repo.staged_roles();
    emit(
        global,
        &serde_json::json!({ "repository": global.repo, "staged": staged }),
        || {
            crate::say!(
                "created {} with {} staged roles (root, targets, unclaimed and {} bins)",
                global.repo.display(),
                staged.len(),
                1u64 << args.bin_bits
            );
            crate::say!("validity: {}", describe_expiry(&options.settings.expiry));
            crate::say!("next: root and targets key holders run `tuf-signer sign`, then `tuf-signer publish`");
        },
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Subcommand)]
pub enum NamespaceCommand {
    /// Delegate NAMESPACE (the crate NAMESPACE and every NAMESPACE::* crate) to keys.
    /// Releases of it already signed by the fallback role move to the new role.
    Delegate {
        /// The namespace (a crate name).
        namespace: String,
        /// The owners' public keys.
        #[arg(long = "key", required = true, value_name = "PUB")]
        keys: Vec<KeySource>,
        /// Signatures needed.
        #[arg(long, default_value_t = 1)]
        threshold: u64,
        /// Delegate it even though it looks like a typosquat of a namespace already
        /// delegated or of a well-known crate.
        #[arg(long)]
        force: bool,
    },
    /// Remove a namespace's delegation; its releases move to the fallback bins.
    Undelegate {
        /// The namespace.
        namespace: String,
    },
}

/// `namespace`.
pub fn namespace(global: &GlobalArgs, command: NamespaceCommand) -> Result<ExitCode, Error> {
    let mut repo = super::open(global)?;
    let now = chrono::Utc::now();
    let (verb, edit) = match command {
        NamespaceCommand::Delegate {
            namespace,
            keys,
            threshold,
            force,
        } => {
            // A namespace that squats one already delegated (or a well-known crate) is
            // how a look-alike gets the owners' authority: refused unless meant.
            let guard = tuf_core::typosquat::SquatGuard::with_well_known(repo.namespaces()?);
            if let Some(looks_like) = tuf_core::typosquat::describe(&guard.looks_like(&namespace)) {
                if !force {
                    anyhow::bail!(
                        "the namespace {namespace} {looks_like}: a namespace that squats another \
                         is refused; check the name, or pass --force if it is meant"
                    );
                }
                eprintln!(
                    "tuf-signer: warning: the namespace {namespace} {looks_like}; delegated \
                     anyway (--force)"
                );
            }
            let keys = load_public_keys_from(&keys)?;
            let edit = repo
                .delegate_namespace(&namespace, &RoleKeySpec { keys, threshold }, now)
                .with_context(|| format!("delegating the namespace {namespace}"))?;
            ("delegated", edit)
        }
        NamespaceCommand::Undelegate { namespace } => {
            let edit = repo
                .undelegate_namespace(&namespace, now)
                .with_context(|| format!("undelegating the namespace {namespace}"))?;
            ("undelegated", edit)
        }
    };
    repo.save()?;
    super::warn_dropped(&repo);
    emit(global, &edit, || {
        crate::say!(
            "staged: namespace {} {verb} (role {})",
            edit.namespace,
            edit.role
        );
        for path in &edit.releases_moved {
            crate::say!("  moved {path}");
        }
    });
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct ThresholdArgs {
    /// The role.
    #[arg(long)]
    role: String,
    /// Signatures needed.
    threshold: u64,
}

/// `threshold`.
pub fn threshold(global: &GlobalArgs, args: &ThresholdArgs) -> Result<ExitCode, Error> {
    let mut repo = super::open(global)?;
    repo.set_threshold(&args.role, args.threshold, chrono::Utc::now())
        .with_context(|| format!("setting the threshold of {}", args.role))?;
    repo.save()?;
    super::warn_dropped(&repo);
    emit(
        global,
        &serde_json::json!({ "role": args.role, "threshold": args.threshold }),
        || crate::say!("staged: {} threshold = {}", args.role, args.threshold),
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct RotateRootArgs {
    /// The new root public keys (replacing the current ones).
    #[arg(long = "key", required = true, value_name = "PUB")]
    keys: Vec<KeySource>,
    /// Signatures of the new keys needed.
    #[arg(long)]
    threshold: u64,
}

/// `rotate-root`.
pub fn rotate_root(global: &GlobalArgs, args: &RotateRootArgs) -> Result<ExitCode, Error> {
    let mut repo = super::open(global)?;
    let keys = load_public_keys_from(&args.keys)?;
    let keyids: Vec<String> = keys.iter().map(tuf_core::Key::keyid).collect();
    repo.rotate_root(
        &RoleKeySpec {
            keys,
            threshold: args.threshold,
        },
        chrono::Utc::now(),
    )
    .context("rotating the root keys")?;
    repo.save()?;
    let version = repo.current_root().map(|r| r.signed().version).unwrap_or(0);
    emit(
        global,
        &serde_json::json!({ "root_version": version, "keyids": keyids, "threshold": args.threshold }),
        || {
            crate::say!(
                "staged: root v{version} with {} new keys (threshold {})",
                keyids.len(),
                args.threshold
            );
            crate::say!(
                "it must be signed by a threshold of the current root keys and of the new ones"
            );
        },
    );
    Ok(ExitCode::SUCCESS)
}

/// `discard`.
pub fn discard(global: &GlobalArgs) -> Result<ExitCode, Error> {
    let mut repo = super::open(global)?;
    let roles = repo.discard().context("discarding staged changes")?;
    emit(global, &serde_json::json!({ "discarded": roles }), || {
        crate::say!("discarded staged changes to {} roles", roles.len());
    });
    Ok(ExitCode::SUCCESS)
}

fn describe_expiry(policy: &ExpiryPolicy) -> String {
    format!(
        "root {}, targets {}, namespaces {}, fallback {}, snapshot {}, timestamp {}",
        format_duration(policy.root),
        format_duration(policy.targets),
        format_duration(policy.namespace),
        format_duration(policy.fallback),
        format_duration(policy.snapshot),
        format_duration(policy.timestamp)
    )
}
