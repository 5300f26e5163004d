//! Files on disk, for every part of the crate: bounded reads, atomic writes, and the
//! permissions of what is meant to be served.
//!
//! * [`read_bounded`]: reads at most a given number of bytes; a longer input is an
//!   error, never a truncated read (the "endless data" defence of §5, for files too).
//! * [`write_atomic`]: a temporary file in the same directory, fsync, rename, then the
//!   directory is synced. A crash at any point leaves the old file or the new one. The
//!   file is readable by its owner only (0600), as trusted state and keys must be.
//! * [`write_atomic_readable`] and [`create_dir_all_readable`]: the same for files meant
//!   to be served by a web server running as another user (published metadata, release
//!   tarballs, public keys): files 0644 and directories 0755, whatever the umask.

use std::io::{Read, Write};
use std::path::Path;

/// Why [`read_bounded`] returned no bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BoundedReadError {
    /// The input holds more than the maximum.
    #[error("longer than the maximum of {max} bytes")]
    TooLong {
        /// The maximum.
        max: u64,
    },
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads everything from `reader` up to `max` bytes; more is [`BoundedReadError::TooLong`]
/// (after reading at most `max + 1` bytes).
pub fn read_bounded(reader: impl Read, max: u64) -> Result<Vec<u8>, BoundedReadError> {
    let mut bytes = Vec::new();
    reader.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(BoundedReadError::TooLong { max });
    }
    Ok(bytes)
}

/// Who may read a file written atomically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// 0600.
    Owner,
    /// 0644.
    Everyone,
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
}

fn write_atomic_with(path: &Path, bytes: &[u8], access: Access) -> std::io::Result<()> {
    let dir = parent_dir(path);
    let mut temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    temp.write_all(bytes)?;
    if access == Access::Everyone {
        set_mode(temp.path(), 0o644)?;
    }
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    // Make the rename itself durable.
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` atomically, readable by the owner only (0600): a temporary
/// file in the same directory is written, flushed to disk and renamed over `path`, and
/// the directory is synced. A crash at any point leaves either the old file or the new
/// one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, bytes, Access::Owner)
}

/// Like [`write_atomic`], for a file meant to be served: readable by everyone (0644)
/// whatever the umask.
pub fn write_atomic_readable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, bytes, Access::Everyone)
}

/// Like [`std::fs::create_dir_all`], for directories meant to be served: every
/// directory it creates, and `dir` itself, is 0755 whatever the umask. Directories that
/// already exist above `dir` are left as they are.
pub fn create_dir_all_readable(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return set_mode(dir, 0o755);
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            create_dir_all_readable(parent)?;
        }
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        // Created meanwhile by someone else: fine, it is set below.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(e) => return Err(e),
    }
    set_mode(dir, 0o755)
}

/// Makes a file that is already written readable by everyone (0644), for one that moves
/// into a served directory.
pub fn make_readable(path: &Path) -> std::io::Result<()> {
    set_mode(path, 0o644)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bounded_reads_refuse_one_byte_more() {
        assert_eq!(read_bounded(&b"abcd"[..], 4).unwrap(), b"abcd");
        assert!(matches!(
            read_bounded(&b"abcde"[..], 4),
            Err(BoundedReadError::TooLong { max: 4 })
        ));
        assert_eq!(read_bounded(&b""[..], 0).unwrap(), b"");
        assert!(matches!(
            read_bounded(&b"a"[..], 0),
            Err(BoundedReadError::TooLong { max: 0 })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn served_files_are_world_readable_and_others_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let served = dir.path().join("a/b/c");
        create_dir_all_readable(&served).unwrap();
        for d in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode(&dir.path().join(d)), 0o755, "{d}");
        }
        write_atomic_readable(&served.join("timestamp.json"), b"{}").unwrap();
        assert_eq!(mode(&served.join("timestamp.json")), 0o644);
        write_atomic(&served.join("secret"), b"k").unwrap();
        assert_eq!(mode(&served.join("secret")), 0o600);
        // Replacing a file keeps the mode of the writer, not of the file replaced.
        write_atomic_readable(&served.join("secret"), b"now public").unwrap();
        assert_eq!(mode(&served.join("secret")), 0o644);
    }
}
