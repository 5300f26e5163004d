//! The narrow interface the updater downloads through, and a local-directory
//! implementation. Every fetch is bounded: a body longer than the caller's maximum is an
//! error, and reading stops at the first byte beyond it (§5 "endless data").

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The server (or directory) has no such file (HTTP 404 or 403).
    #[error("{url}: not found")]
    NotFound {
        /// What was fetched.
        url: String,
    },
    /// The body is longer than allowed.
    #[error("{url}: longer than the {max} bytes allowed")]
    TooLong {
        /// What was fetched.
        url: String,
        /// The limit.
        max: u64,
    },
    /// Any other HTTP status.
    #[error("{url}: HTTP status {status}")]
    Status {
        /// What was fetched.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The server wants credentials, or refused the ones sent (HTTP 401, or a 403 to a
    /// request that carried credentials): the message says which, and what to check.
    #[error("{url}: {message}")]
    Unauthorized {
        /// What was fetched.
        url: String,
        /// The status code.
        status: u16,
        /// What it means and what to check (never the credential itself).
        message: String,
    },
    /// A transport or file system failure (connection, timeout, truncated body, I/O).
    #[error("{url}: {message}")]
    Transport {
        /// What was fetched.
        url: String,
        /// The failure.
        message: String,
    },
    /// The URL is not one this fetcher serves (e.g. escapes its directory).
    #[error("{url}: {message}")]
    BadUrl {
        /// What was asked for.
        url: String,
        /// Why it is refused.
        message: String,
    },
}

impl FetchError {
    /// What an HTTP answer's status means for a fetch: `Ok` for 2xx; 404 and 403 (what
    /// S3-like stores answer for a missing file) are [`FetchError::NotFound`], which ends
    /// the root chain (§5.3.2); anything else is [`FetchError::Status`].
    pub fn check_http_status(url: &str, status: u16) -> Result<(), Self> {
        match status {
            200..=299 => Ok(()),
            403 | 404 => Err(Self::NotFound {
                url: url.to_owned(),
            }),
            _ => Err(Self::Status {
                url: url.to_owned(),
                status,
            }),
        }
    }
}

/// Downloads files by URL.
pub trait Fetcher {
    /// Fetches `url`, failing with [`FetchError::TooLong`] rather than returning more than
    /// `max_length` bytes.
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError>;
}

impl<F: Fetcher + ?Sized> Fetcher for &F {
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        (**self).fetch(url, max_length)
    }
}

/// Reads everything from `reader` up to `max_length` bytes; more is
/// [`FetchError::TooLong`]. [`crate::fs::read_bounded`] with the errors of a fetch of
/// `url`.
pub fn read_bounded(reader: impl Read, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
    crate::fs::read_bounded(reader, max_length).map_err(|error| match error {
        crate::fs::BoundedReadError::TooLong { max } => FetchError::TooLong {
            url: url.to_owned(),
            max,
        },
        error => FetchError::Transport {
            url: url.to_owned(),
            message: error.to_string(),
        },
    })
}

/// Serves URLs that are paths inside one directory (optionally with a `file://` prefix),
/// refusing any path that would leave it.
#[derive(Debug, Clone)]
pub struct DirectoryFetcher {
    root: PathBuf,
}

impl DirectoryFetcher {
    /// Serves files below `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The URL prefix under which this fetcher serves `relative` (a directory below the
    /// root), for use as an updater's metadata or target base URL.
    pub fn base_url(&self, relative: &str) -> String {
        let mut base = self.root.join(relative).to_string_lossy().into_owned();
        if !base.ends_with('/') {
            base.push('/');
        }
        base
    }

    fn resolve(&self, url: &str) -> Result<PathBuf, FetchError> {
        let bad = |message: &str| FetchError::BadUrl {
            url: url.to_owned(),
            message: message.to_owned(),
        };
        let path = Path::new(url.strip_prefix("file://").unwrap_or(url));
        let relative = path
            .strip_prefix(&self.root)
            .map_err(|_| bad("outside the served directory"))?;
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(bad("path leaves the served directory"));
        }
        Ok(self.root.join(relative))
    }
}

impl Fetcher for DirectoryFetcher {
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        let path = self.resolve(url)?;
        let file = std::fs::File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => FetchError::NotFound {
                url: url.to_owned(),
            },
            _ => FetchError::Transport {
                url: url.to_owned(),
                message: e.to_string(),
            },
        })?;
        read_bounded(file, url, max_length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_fetcher_bounds_and_confines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), b"12345").unwrap();
        let fetcher = DirectoryFetcher::new(dir.path());
        let base = fetcher.base_url("");
        assert_eq!(
            fetcher.fetch(&format!("{base}a.json"), 5).unwrap(),
            b"12345"
        );
        assert!(matches!(
            fetcher.fetch(&format!("{base}a.json"), 4),
            Err(FetchError::TooLong { max: 4, .. })
        ));
        assert!(matches!(
            fetcher.fetch(&format!("{base}missing.json"), 4),
            Err(FetchError::NotFound { .. })
        ));
        assert!(matches!(
            fetcher.fetch(&format!("{base}../etc/passwd"), 4),
            Err(FetchError::BadUrl { .. })
        ));
        assert!(matches!(
            fetcher.fetch("/etc/passwd", 4),
            Err(FetchError::BadUrl { .. })
        ));
    }
}
