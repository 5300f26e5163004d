//! Verifies a TUF metadata directory offline and prints what each role says.
//!
//! ```text
//! cargo run -p tuf-core --example verify_repository [METADATA_DIR]
//! ```
//!
//! With no argument it reads the python-tuf demo repository in
//! `tests/fixtures/python-tuf/full/metadata`. It trusts `1.root.json` (or `root.json`),
//! follows the root chain `N.root.json`, then checks timestamp, snapshot, targets and
//! every delegated role listed in snapshot: threshold signatures by the delegator's keys,
//! versions against snapshot, lengths and hashes from timestamp and snapshot, expiry.
//! Exit code 0 when everything verifies, 1 otherwise.
#![allow(clippy::print_stdout)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tuf_core::hash::verify_length_and_hashes;
use tuf_core::metadata::{
    format_expires, MetaFile, Metadata, Role, Root, Snapshot, Targets, Timestamp,
};
use tuf_core::verify::Delegator;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/python-tuf/full/metadata")
        });
    match verify(&dir) {
        Ok(()) => {
            println!("OK: every role verifies");
            ExitCode::SUCCESS
        }
        Err(message) => {
            println!("FAILED: {message}");
            ExitCode::FAILURE
        }
    }
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    std::fs::read(dir.join(name)).map_err(|e| format!("{name}: {e}"))
}

fn show<T: Role>(role: &str, md: &Metadata<T>) {
    println!(
        "{role:<20} v{:<4} expires {}  {} signature(s)",
        md.signed().version(),
        format_expires(&md.signed().expires()),
        md.signatures.len()
    );
}

fn load_checked<T: Role>(
    dir: &Path,
    name: &str,
    meta: Option<&MetaFile>,
) -> Result<Metadata<T>, String> {
    let bytes = read(dir, name)?;
    if let Some(meta) = meta {
        verify_length_and_hashes(&bytes, meta.length, meta.hashes.as_ref())
            .map_err(|e| format!("{name}: {e}"))?;
    }
    let md = Metadata::<T>::from_bytes(&bytes).map_err(|e| format!("{name}: {e}"))?;
    if let Some(meta) = meta {
        if md.signed().version() != meta.version {
            return Err(format!(
                "{name}: version {} but the referrer lists {}",
                md.signed().version(),
                meta.version
            ));
        }
    }
    let now = chrono::Utc::now();
    if md.signed().is_expired(now) {
        return Err(format!(
            "{name}: expired at {}",
            format_expires(&md.signed().expires())
        ));
    }
    Ok(md)
}

fn verify(dir: &Path) -> Result<(), String> {
    let first = if dir.join("1.root.json").exists() {
        "1.root.json"
    } else {
        "root.json"
    };
    let mut root =
        Metadata::<Root>::from_bytes(&read(dir, first)?).map_err(|e| format!("{first}: {e}"))?;
    root.verify_delegate("root", &root)
        .map_err(|e| format!("{first}: {e}"))?;
    loop {
        let next = format!("{}.root.json", root.signed().version + 1);
        if !dir.join(&next).exists() {
            break;
        }
        let new =
            Metadata::<Root>::from_bytes(&read(dir, &next)?).map_err(|e| format!("{next}: {e}"))?;
        root.verify_delegate("root", &new)
            .map_err(|e| format!("{next} (old root's keys): {e}"))?;
        new.verify_delegate("root", &new)
            .map_err(|e| format!("{next} (its own keys): {e}"))?;
        root = new;
    }
    show("root", &root);
    let consistent = root.signed().consistent_snapshot();
    let file = |role: &str, version: u64| {
        if consistent {
            format!("{version}.{role}.json")
        } else {
            format!("{role}.json")
        }
    };

    let timestamp = load_checked::<Timestamp>(dir, "timestamp.json", None)?;
    root.verify_delegate("timestamp", &timestamp)
        .map_err(|e| format!("timestamp: {e}"))?;
    show("timestamp", &timestamp);

    let snapshot_meta = timestamp
        .signed()
        .snapshot_meta()
        .ok_or("timestamp lists no snapshot")?;
    let snapshot = load_checked::<Snapshot>(
        dir,
        &file("snapshot", snapshot_meta.version),
        Some(snapshot_meta),
    )?;
    root.verify_delegate("snapshot", &snapshot)
        .map_err(|e| format!("snapshot: {e}"))?;
    show("snapshot", &snapshot);

    // Breadth-first over the delegation tree, each role verified by its delegator.
    let targets_meta = snapshot
        .signed()
        .role_meta("targets")
        .ok_or("snapshot lists no targets")?;
    let targets = load_checked::<Targets>(
        dir,
        &file("targets", targets_meta.version),
        Some(targets_meta),
    )?;
    root.verify_delegate("targets", &targets)
        .map_err(|e| format!("targets: {e}"))?;
    show("targets", &targets);
    let mut queue = VecDeque::from([targets]);
    let mut verified = 1usize;
    while let Some(delegator) = queue.pop_front() {
        let Some(delegations) = &delegator.signed().delegations else {
            continue;
        };
        let names: Vec<String> = match (&delegations.roles, &delegations.succinct_roles) {
            (Some(roles), _) => roles.iter().map(|r| r.name.clone()).collect(),
            (None, Some(bins)) => bins.role_names().collect(),
            (None, None) => Vec::new(),
        };
        for name in names {
            let Some(meta) = snapshot.signed().role_meta(&name) else {
                continue;
            };
            let role = load_checked::<Targets>(dir, &file(&name, meta.version), Some(meta))?;
            delegator
                .verify_delegate(&name, &role)
                .map_err(|e| format!("{name}: {e}"))?;
            debug_assert!(delegator.signed().authorization(&name).is_some());
            show(&name, &role);
            verified += 1;
            queue.push_back(role);
        }
    }
    println!("{verified} targets role(s) verified");
    Ok(())
}
