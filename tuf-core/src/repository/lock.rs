//! The repository lock: one process edits a repository directory at a time.
//!
//! The lock is an advisory lock on `.lock` in the repository directory, held by an open
//! file for as long as the [`RepositoryLock`] lives; the operating system releases it
//! when the process ends, however it ends, so a crash never leaves a repository locked.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{io_error, RepositoryError};

/// The lock file in the repository directory.
const LOCK_FILE: &str = ".lock";
/// How long to wait for another process to release the repository lock.
const LOCK_WAIT: Duration = Duration::from_secs(60);
/// How often to try again while waiting.
const RETRY_EVERY: Duration = Duration::from_millis(50);

/// The held lock of one repository directory; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct RepositoryLock {
    _file: File,
}

impl RepositoryLock {
    /// Takes the lock of `dir`, waiting up to a minute for another process to release
    /// it: long enough for a publish to finish, short enough that a cron job does not
    /// hang behind a forgotten interactive session.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, RepositoryError> {
        Self::acquire_within(dir, LOCK_WAIT)
    }

    fn acquire_within(dir: &Path, wait: Duration) -> Result<Self, RepositoryError> {
        let path = dir.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: file }),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    tracing::info!(dir = %dir.display(), "waiting for another tuf-signer process");
                    std::thread::sleep(RETRY_EVERY);
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(RepositoryError::Locked(dir.to_owned()))
                }
                Err(TryLockError::Error(source)) => {
                    return Err(RepositoryError::Io { path, source })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_keeps_others_out_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let held = RepositoryLock::acquire(dir.path()).unwrap();
        // A second open file description of the same lock file conflicts, even in the
        // same process.
        let waited = Instant::now();
        let err =
            RepositoryLock::acquire_within(dir.path(), Duration::from_millis(120)).unwrap_err();
        assert!(
            matches!(&err, RepositoryError::Locked(d) if d == dir.path()),
            "{err}"
        );
        assert!(waited.elapsed() >= Duration::from_millis(120));
        drop(held);
        RepositoryLock::acquire_within(dir.path(), Duration::ZERO).unwrap();
    }
}
