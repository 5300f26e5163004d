//! Where a repository audit reads metadata from: a directory of published files, or
//! new files laid over one (the repository as it would be after a publish).

use std::collections::HashMap;
use std::path::PathBuf;

use crate::fs::BoundedReadError;

/// Why a [`MetadataSource`] could not read a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The name is not a plain file name: empty, hidden, or with a path separator.
    #[error("{name:?}: not a metadata file name")]
    BadName {
        /// The name asked for.
        name: String,
    },
    /// The file is longer than the caller allows.
    #[error("{name}: longer than the {max} bytes allowed")]
    TooLong {
        /// The file name.
        name: String,
        /// The limit.
        max: u64,
    },
    /// Reading failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

/// Where an audit reads metadata files from, by file name (`3.targets.json`).
pub trait MetadataSource {
    /// The file's bytes, `None` if it does not exist; an error if it is longer than
    /// `max_length` or unreadable.
    fn read(&self, file_name: &str, max_length: u64) -> Result<Option<Vec<u8>>, SourceError>;
}

/// Metadata files in one directory.
#[derive(Debug, Clone)]
pub struct DirectorySource {
    dir: PathBuf,
}

impl DirectorySource {
    /// Reads from `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

impl MetadataSource for DirectorySource {
    fn read(&self, file_name: &str, max_length: u64) -> Result<Option<Vec<u8>>, SourceError> {
        if file_name.is_empty() || file_name.starts_with('.') || file_name.contains(['/', '\\']) {
            return Err(SourceError::BadName {
                name: file_name.to_owned(),
            });
        }
        let path = self.dir.join(file_name);
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(SourceError::Io { path, source }),
        };
        match crate::fs::read_bounded(file, max_length) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(BoundedReadError::TooLong { max }) => Err(SourceError::TooLong {
                name: file_name.to_owned(),
                max,
            }),
            Err(BoundedReadError::Io(source)) => Err(SourceError::Io { path, source }),
        }
    }
}

/// New files laid over another source: what the repository would look like after a
/// publish.
pub struct OverlaySource<'a> {
    base: Option<&'a dyn MetadataSource>,
    files: HashMap<String, Vec<u8>>,
}

impl<'a> OverlaySource<'a> {
    /// `files` (name → bytes) over `base`.
    pub fn new(base: Option<&'a dyn MetadataSource>, files: HashMap<String, Vec<u8>>) -> Self {
        Self { base, files }
    }
}

impl MetadataSource for OverlaySource<'_> {
    fn read(&self, file_name: &str, max_length: u64) -> Result<Option<Vec<u8>>, SourceError> {
        if let Some(bytes) = self.files.get(file_name) {
            if bytes.len() as u64 > max_length {
                return Err(SourceError::TooLong {
                    name: file_name.to_owned(),
                    max: max_length,
                });
            }
            return Ok(Some(bytes.clone()));
        }
        match self.base {
            Some(base) => base.read(file_name, max_length),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_say_why_a_file_cannot_be_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1.root.json"), b"12345").unwrap();
        let source = DirectorySource::new(dir.path());
        assert_eq!(source.read("1.root.json", 5).unwrap().unwrap(), b"12345");
        assert!(source.read("2.root.json", 5).unwrap().is_none());
        assert!(matches!(
            source.read("1.root.json", 4),
            Err(SourceError::TooLong { name, max: 4 }) if name == "1.root.json"
        ));
        for bad in ["", ".hidden", "../1.root.json", "a\\b"] {
            assert!(
                matches!(source.read(bad, 5), Err(SourceError::BadName { name }) if name == bad),
                "{bad:?}"
            );
        }
        // A file where the directory should be: not "missing" (which would end a root
        // chain) but an I/O error naming the path.
        let not_a_dir = DirectorySource::new(dir.path().join("1.root.json"));
        assert!(matches!(
            not_a_dir.read("2.root.json", 5),
            Err(SourceError::Io { path, .. }) if path == dir.path().join("1.root.json/2.root.json")
        ));
        // A directory where a file should be: an I/O error naming the path.
        std::fs::create_dir(dir.path().join("timestamp.json")).unwrap();
        assert!(matches!(
            source.read("timestamp.json", 5),
            Err(SourceError::Io { path, .. }) if path == dir.path().join("timestamp.json")
        ));

        let overlay = OverlaySource::new(
            Some(&source),
            HashMap::from([("2.root.json".to_owned(), b"abc".to_vec())]),
        );
        assert_eq!(overlay.read("2.root.json", 3).unwrap().unwrap(), b"abc");
        assert_eq!(overlay.read("1.root.json", 5).unwrap().unwrap(), b"12345");
        assert!(matches!(
            overlay.read("2.root.json", 2),
            Err(SourceError::TooLong { max: 2, .. })
        ));
    }
}
