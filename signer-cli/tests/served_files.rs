//! What `tuf-signer publish` writes under `published/` is served by a web server that
//! usually runs as its own user: every file must be world-readable (0644) and every
//! directory 0755, whatever the umask of the signer. Private keys stay 0600.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Workspace;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// Every file and directory below `dir` (not following symbolic links).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        out.push(entry.path());
        if kind.is_dir() {
            walk(&entry.path(), out);
        }
    }
}

fn is_root() -> bool {
    let output = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

#[test]
fn published_files_are_world_readable_under_a_strict_umask_and_private_keys_are_not() {
    let mut ws = Workspace::new();
    ws.umask = Some("077");
    ws.init_and_publish(4);
    let tarball = ws.tarball("served", "1.0.0");
    ws.ok("repo", &["release", "add", &tarball]);
    ws.ok("repo", &["publish", "--online-key", &ws.pem("online")]);

    let published = ws.path("repo/published");
    assert_eq!(mode(&published), 0o755);
    let mut entries = Vec::new();
    walk(&published, &mut entries);
    let (mut files, mut tarballs) = (0, 0);
    for path in &entries {
        let meta = std::fs::symlink_metadata(path).unwrap();
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.is_dir() {
            assert_eq!(mode(path), 0o755, "{}", path.display());
        } else {
            assert_eq!(mode(path), 0o644, "{}", path.display());
            files += 1;
            tarballs += usize::from(path.extension().is_some_and(|e| e == "crate"));
        }
    }
    assert!(files >= 10, "{entries:#?}");
    assert_eq!(tarballs, 1, "{entries:#?}");
    for name in ["root", "targets", "online"] {
        assert_eq!(mode(&ws.path(&format!("{name}.pub.json"))), 0o644, "{name}");
        assert_eq!(mode(&ws.path(&format!("{name}.pem"))), 0o600, "{name}");
    }

    // Read by another user, as a web server would (needs root to switch user).
    if is_root() {
        std::fs::set_permissions(ws.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(ws.path("repo"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let timestamp = published.join("metadata/timestamp.json");
        let output = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
            .arg(&timestamp)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "another user cannot read {}: {}",
            timestamp.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.stdout, std::fs::read(&timestamp).unwrap());
    }
}
