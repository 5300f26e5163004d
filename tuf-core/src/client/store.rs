//! Where a client keeps what it trusts: one file per role, named so no role name can
//! escape the directory, written atomically.

use std::path::{Path, PathBuf};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Percent-encodes a role name as Python's `urllib.parse.quote(name, safe="")` does:
/// ASCII letters, digits and `_.-~` stay; every other byte of the UTF-8 encoding becomes
/// `%XX`. `/`, `\`, `?`, `#`, `%` and NUL are all encoded, so the result is one path
/// segment and a URL segment at once. (`.` and `..` stay as they are: as file names they
/// become `..json` and `...json`, which are ordinary names.)
pub fn quote_role_name(name: &str) -> String {
    utf8_percent_encode(name, PYTHON_QUOTE_SAFE_NONE).to_string()
}

/// The bytes `urllib.parse.quote(…, safe="")` encodes: all but ASCII letters, digits and
/// `_.-~` (its always-safe set since Python 3.7).
const PYTHON_QUOTE_SAFE_NONE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// A directory of trusted metadata: `root.json`, `timestamp.json`, `snapshot.json`,
/// `targets.json` and `<quoted role>.json`, with the exact bytes that were verified.
#[derive(Debug, Clone)]
pub struct MetadataDir {
    dir: PathBuf,
}

impl MetadataDir {
    /// Uses `dir`, which must exist.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The file holding `role`.
    pub fn role_path(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{}.json", quote_role_name(role)))
    }

    /// The stored bytes of `role`, if any, read up to `max_length` bytes (a longer file
    /// is treated as absent: it cannot be valid).
    pub fn load(&self, role: &str, max_length: u64) -> std::io::Result<Option<Vec<u8>>> {
        let path = self.role_path(role);
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let url = path.to_string_lossy();
        match super::fetch::read_bounded(file, &url, max_length) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(super::fetch::FetchError::TooLong { .. }) => Ok(None),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }

    /// Stores the verified bytes of `role` atomically.
    pub fn persist(&self, role: &str, bytes: &[u8]) -> std::io::Result<()> {
        crate::fs::write_atomic(&self.role_path(role), bytes)
    }

    /// Removes the stored file of `role`, if any.
    pub fn remove(&self, role: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.role_path(role)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_matches_python_and_confines_names() {
        assert_eq!(quote_role_name("targets"), "targets");
        assert_eq!(quote_role_name("a/b"), "a%2Fb");
        assert_eq!(quote_role_name("../x"), "..%2Fx");
        assert_eq!(quote_role_name("?#%"), "%3F%23%25");
        assert_eq!(quote_role_name("ü"), "%C3%BC");
        assert_eq!(quote_role_name("a b\\c\0"), "a%20b%5Cc%00");
        assert_eq!(quote_role_name("\u{1F600}"), "%F0%9F%98%80");
        // Every ASCII character: letters, digits and `_.-~` as they are, the rest `%XX`
        // in uppercase hex.
        for byte in 0u8..0x80 {
            let c = char::from(byte);
            let expected = if c.is_ascii_alphanumeric() || "_.-~".contains(c) {
                c.to_string()
            } else {
                format!("%{byte:02X}")
            };
            assert_eq!(quote_role_name(&c.to_string()), expected, "{byte:#04x}");
        }
        for name in [
            "../x",
            "/etc/passwd",
            "a/../../b",
            "..",
            ".",
            "\\..\\x",
            "ü/../x",
        ] {
            let quoted = quote_role_name(name);
            assert!(!quoted.contains('/') && !quoted.contains('\\'), "{name}");
        }
    }

    #[test]
    fn persist_and_load_round_trip_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataDir::new(dir.path());
        store.persist("../evil", b"one").unwrap();
        assert!(dir.path().join("..%2Fevil.json").exists());
        assert_eq!(
            store.load("../evil", 10).unwrap().as_deref(),
            Some(&b"one"[..])
        );
        store.persist("../evil", b"two").unwrap();
        assert_eq!(
            store.load("../evil", 10).unwrap().as_deref(),
            Some(&b"two"[..])
        );
        assert_eq!(store.load("../evil", 2).unwrap(), None);
        assert_eq!(store.load("absent", 10).unwrap(), None);
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
