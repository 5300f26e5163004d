//! Realistic `.crate` tarballs, and their sparse-index lines, for end-to-end tests that
//! run real cargo against a test registry.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use sha2::{Digest, Sha256};

/// A dependency of a generated crate on another registry crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dependency<'a> {
    /// The dependency's crate name.
    pub name: &'a str,
    /// Its version requirement, e.g. `"^1.0"`.
    pub req: &'a str,
}

/// A TOML (or JSON) string literal: JSON's string escapes are all valid in a TOML basic
/// string, so serde_json's quoting serves both.
fn quoted(value: &str) -> String {
    serde_json::to_string(value).expect("serializing a string to JSON cannot fail")
}

/// A TOML key: bare when it can be (crate names always can), quoted otherwise.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if bare {
        key.to_owned()
    } else {
        quoted(key)
    }
}

/// The normalized `Cargo.toml` of a generated library crate.
fn manifest(name: &str, version: &str, deps: &[Dependency<'_>]) -> String {
    let mut toml = format!(
        "[package]\nname = {}\nversion = {}\nedition = \"2021\"\ndescription = {}\nlicense = \"MIT\"\n",
        quoted(name),
        quoted(version),
        quoted(&format!("Test crate {name}, generated for tuf-crates end-to-end tests.")),
    );
    if !deps.is_empty() {
        toml.push_str("\n[dependencies]\n");
        for dep in deps {
            toml.push_str(&format!("{} = {}\n", toml_key(dep.name), quoted(dep.req)));
        }
    }
    toml
}

/// Builds a deterministic `.crate` (gzip tar, mtime 0, mode 0o644, sorted entries) for a
/// library crate:
///
/// * `NAME-VERSION/Cargo.toml`, normalized: `[package]` `name`, `version`,
///   `edition = "2021"`, `description`, `license = "MIT"`; then, if there are
///   dependencies, `[dependencies]` with `name = "req"` for each;
/// * `NAME-VERSION/Cargo.toml.orig`, the same content;
/// * `NAME-VERSION/src/lib.rs`, with the content `lib_rs`.
///
/// # Panics
///
/// Never in practice: it writes only to memory, and panics if that fails.
pub fn build_crate_tarball(
    name: &str,
    version: &str,
    deps: &[Dependency<'_>],
    lib_rs: &str,
) -> Vec<u8> {
    build_crate_tarball_with_files(name, version, deps, &[("src/lib.rs", lib_rs)])
}

/// Like [`build_crate_tarball`] with `files` (paths relative to the package root, such as
/// `src/lib.rs` and `build.rs`, which cargo runs before building the crate) instead of
/// only `src/lib.rs`.
///
/// # Panics
///
/// Never in practice: it writes only to memory, and panics if that fails.
pub fn build_crate_tarball_with_files(
    name: &str,
    version: &str,
    deps: &[Dependency<'_>],
    files: &[(&str, &str)],
) -> Vec<u8> {
    let top = format!("{name}-{version}");
    let toml = manifest(name, version, deps);
    let mut entries = vec![
        (format!("{top}/Cargo.toml"), toml.as_bytes()),
        (format!("{top}/Cargo.toml.orig"), toml.as_bytes()),
    ];
    for (path, contents) in files {
        entries.push((format!("{top}/{path}"), contents.as_bytes()));
    }
    entries.sort();

    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        builder
            .append_data(&mut header, &path, data)
            .expect("appending to an in-memory tar archive cannot fail");
    }
    let tar = builder
        .into_inner()
        .expect("finishing an in-memory tar archive cannot fail");

    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(&tar)
        .expect("gzip-compressing into memory cannot fail");
    encoder
        .finish()
        .expect("gzip-compressing into memory cannot fail")
}

/// One entry of a hand-made tarball (see [`build_raw_tarball`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawEntry<'a> {
    /// A regular file with these contents.
    File(&'a [u8]),
    /// A directory.
    Directory,
    /// A symbolic link to this target.
    Symlink(&'a str),
}

/// A gzip-compressed tar archive of `entries`, in this order, each path written into its
/// header byte for byte, where `tar::Builder` refuses `..` and absolute paths: hostile
/// archives, for tests of readers that must refuse them.
///
/// # Panics
///
/// When a path or link target is longer than the 100 bytes of a tar header's field.
pub fn build_raw_tarball(entries: &[(&str, RawEntry<'_>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, entry) in entries {
        let mut header = tar::Header::new_gnu();
        let (kind, data, link) = match entry {
            RawEntry::File(data) => (tar::EntryType::Regular, *data, ""),
            RawEntry::Directory => (tar::EntryType::Directory, &b""[..], ""),
            RawEntry::Symlink(target) => (tar::EntryType::Symlink, &b""[..], *target),
        };
        let gnu = header.as_gnu_mut().expect("a GNU header");
        gnu.name
            .get_mut(..path.len())
            .expect("a path of at most 100 bytes")
            .copy_from_slice(path.as_bytes());
        gnu.linkname
            .get_mut(..link.len())
            .expect("a link target of at most 100 bytes")
            .copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append(&header, data)
            .expect("appending to an in-memory tar archive cannot fail");
    }
    let tar = builder
        .into_inner()
        .expect("finishing an in-memory tar archive cannot fail");
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(&tar)
        .expect("gzip-compressing into memory cannot fail");
    encoder
        .finish()
        .expect("gzip-compressing into memory cannot fail")
}

/// The index line cargo's sparse protocol serves for this tarball: one line of JSON, no
/// trailing newline, keys in the order crates.io writes them:
/// `{"name","vers","deps":[{"name","req","features":[],"optional":false,
/// "default_features":true,"target":null,"kind":"normal"}],"cksum","features":{},
/// "yanked":false}`, where `cksum` is the SHA-256 of the tarball in hex. No `"v"` key.
pub fn index_line(name: &str, version: &str, deps: &[Dependency<'_>], tarball: &[u8]) -> String {
    let deps = deps
        .iter()
        .map(|dep| {
            format!(
                "{{\"name\":{},\"req\":{},\"features\":[],\"optional\":false,\
                 \"default_features\":true,\"target\":null,\"kind\":\"normal\"}}",
                quoted(dep.name),
                quoted(dep.req),
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "{{\"name\":{},\"vers\":{},\"deps\":[{deps}],\"cksum\":\"{}\",\"features\":{{}},\"yanked\":false}}",
        quoted(name),
        quoted(version),
        hex::encode(Sha256::digest(tarball)),
    )
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::GzDecoder;

    use super::*;

    const DEPS: &[Dependency<'static>] = &[
        Dependency {
            name: "alpha",
            req: "^1.0",
        },
        Dependency {
            name: "beta_b",
            req: "=0.2.3",
        },
    ];

    #[test]
    fn tarball_round_trips_through_tar() {
        let lib_rs = "pub fn answer() -> u32 {\n    42\n}\n";
        let bytes = build_crate_tarball("demo", "1.2.3", DEPS, lib_rs);
        let mut archive = tar::Archive::new(GzDecoder::new(bytes.as_slice()));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.mtime().unwrap(), 0);
            assert_eq!(header.mode().unwrap(), 0o644);
            assert!(header.entry_type().is_file());
            let path = entry.path().unwrap().display().to_string();
            let mut contents = String::new();
            entry.read_to_string(&mut contents).unwrap();
            seen.push((path, contents));
        }
        let toml = "[package]\nname = \"demo\"\nversion = \"1.2.3\"\nedition = \"2021\"\n\
                    description = \"Test crate demo, generated for tuf-crates end-to-end tests.\"\n\
                    license = \"MIT\"\n\n[dependencies]\nalpha = \"^1.0\"\nbeta_b = \"=0.2.3\"\n";
        assert_eq!(
            seen,
            [
                ("demo-1.2.3/Cargo.toml".to_owned(), toml.to_owned()),
                ("demo-1.2.3/Cargo.toml.orig".to_owned(), toml.to_owned()),
                ("demo-1.2.3/src/lib.rs".to_owned(), lib_rs.to_owned()),
            ]
        );
    }

    #[test]
    fn raw_tarball_keeps_paths_and_kinds_byte_for_byte() {
        let bytes = build_raw_tarball(&[
            ("x/", RawEntry::Directory),
            ("x/../../etc/passwd", RawEntry::File(b"root\n")),
            ("x/link", RawEntry::Symlink("/etc/shadow")),
        ]);
        let mut archive = tar::Archive::new(GzDecoder::new(bytes.as_slice()));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            let link = entry
                .link_name_bytes()
                .map(|link| String::from_utf8(link.into_owned()).unwrap());
            let kind = entry.header().entry_type();
            let mut contents = String::new();
            entry.read_to_string(&mut contents).unwrap();
            seen.push((path, kind, contents, link));
        }
        assert_eq!(
            seen,
            [
                (
                    "x/".to_owned(),
                    tar::EntryType::Directory,
                    String::new(),
                    None
                ),
                (
                    "x/../../etc/passwd".to_owned(),
                    tar::EntryType::Regular,
                    "root\n".to_owned(),
                    None
                ),
                (
                    "x/link".to_owned(),
                    tar::EntryType::Symlink,
                    String::new(),
                    Some("/etc/shadow".to_owned())
                ),
            ]
        );
    }

    #[test]
    fn no_dependencies_means_no_dependencies_table() {
        let bytes = build_crate_tarball("demo", "0.1.0", &[], "");
        let mut archive = tar::Archive::new(GzDecoder::new(bytes.as_slice()));
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        let mut toml = String::new();
        entry.read_to_string(&mut toml).unwrap();
        assert!(toml.starts_with("[package]\nname = \"demo\"\n"), "{toml}");
        assert!(!toml.contains("[dependencies]"), "{toml}");
    }

    #[test]
    fn tarball_is_deterministic() {
        let first = build_crate_tarball("demo", "1.2.3", DEPS, "pub fn f() {}\n");
        let second = build_crate_tarball("demo", "1.2.3", DEPS, "pub fn f() {}\n");
        assert_eq!(first, second);
        let other = build_crate_tarball("demo", "1.2.3", DEPS, "pub fn g() {}\n");
        assert_ne!(first, other);
    }

    #[test]
    fn index_line_matches_the_sparse_protocol() {
        let bytes = build_crate_tarball("demo", "1.2.3", DEPS, "");
        let line = index_line("demo", "1.2.3", DEPS, &bytes);
        assert!(!line.contains('\n'));
        let cksum = hex::encode(Sha256::digest(&bytes));
        let expected = format!(
            "{{\"name\":\"demo\",\"vers\":\"1.2.3\",\"deps\":[\
             {{\"name\":\"alpha\",\"req\":\"^1.0\",\"features\":[],\"optional\":false,\
             \"default_features\":true,\"target\":null,\"kind\":\"normal\"}},\
             {{\"name\":\"beta_b\",\"req\":\"=0.2.3\",\"features\":[],\"optional\":false,\
             \"default_features\":true,\"target\":null,\"kind\":\"normal\"}}],\
             \"cksum\":\"{cksum}\",\"features\":{{}},\"yanked\":false}}"
        );
        assert_eq!(line, expected);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["cksum"], cksum.as_str());
        assert!(value.get("v").is_none());

        let empty = index_line("demo", "0.1.0", &[], &bytes);
        let value: serde_json::Value = serde_json::from_str(&empty).unwrap();
        assert_eq!(value["deps"], serde_json::json!([]));
    }
}
