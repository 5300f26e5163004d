use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use tar::{EntryType, Header};

use super::*;

/// One tar entry; the path goes into the header byte for byte, so tests can write
/// paths `tar::Builder` would refuse (`..`, absolute).
struct Item<'a> {
    path: &'a str,
    kind: EntryType,
    data: &'a [u8],
}

fn file<'a>(path: &'a str, data: &'a [u8]) -> Item<'a> {
    Item {
        path,
        kind: EntryType::Regular,
        data,
    }
}

fn dir(path: &str) -> Item<'_> {
    Item {
        path,
        kind: EntryType::Directory,
        data: b"",
    }
}

fn tar_bytes(items: &[Item<'_>]) -> Vec<u8> {
    let raw: Vec<RawItem<'_>> = items
        .iter()
        .map(|item| RawItem {
            path: item.path.as_bytes(),
            kind: item.kind,
            data: item.data,
            link: b"",
        })
        .collect();
    raw_tar_bytes(&raw)
}

/// A tar entry with any bytes as its path, and a link name.
struct RawItem<'a> {
    path: &'a [u8],
    kind: EntryType,
    data: &'a [u8],
    link: &'a [u8],
}

fn raw_tar_bytes(items: &[RawItem<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = Header::new_gnu();
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..item.path.len()].copy_from_slice(item.path);
        gnu.linkname[..item.link.len()].copy_from_slice(item.link);
        header.set_entry_type(item.kind);
        if item.kind == EntryType::GNUSparse {
            let gnu = header.as_gnu_mut().unwrap();
            gnu.set_real_size(item.data.len() as u64);
            gnu.set_is_extended(false);
        }
        header.set_size(item.data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder.append(&header, item.data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn tarball(items: &[Item<'_>]) -> Vec<u8> {
    gzip(&tar_bytes(items))
}

fn manifest(name: &str, version: &str) -> String {
    format!(
        "[package]\nedition = \"2021\"\nname = \"{name}\"\nversion = \"{version}\"\n\
         description = \"test\"\nlicense = \"MIT\"\n\n[dependencies]\n"
    )
}

/// A well-formed release of `name`/`version`, under the directory `top`.
fn release(top: &str, name: &str, version: &str) -> Vec<u8> {
    let toml = manifest(name, version);
    let cargo_toml = format!("{top}/Cargo.toml");
    let lib_rs = format!("{top}/src/lib.rs");
    tarball(&[
        file(&cargo_toml, toml.as_bytes()),
        file(&lib_rs, b"pub fn f() {}\n"),
    ])
}

fn parse(file_name: &str, bytes: Vec<u8>) -> Result<CrateRelease, ArchiveError> {
    parse_crate_release(file_name, bytes, &ArchiveLimits::default())
}

fn mismatch(error: ArchiveError) -> (String, String, Disagreement) {
    match error {
        ArchiveError::NameMismatch {
            expected,
            found,
            what,
            ..
        } => (expected, found, what),
        other => panic!("expected NameMismatch, got {other:?}"),
    }
}

#[test]
fn good_tarball_is_read() {
    let bytes = release("foo-bar-1.2.3", "foo-bar", "1.2.3");
    let release = parse("foo-bar-1.2.3.crate", bytes.clone()).unwrap();
    assert_eq!(release.name, "foo-bar");
    assert_eq!(release.version, "1.2.3");
    assert_eq!(release.bytes, bytes);
}

#[test]
fn good_tarball_with_prerelease_build_and_directory_entries() {
    let top = "foo_bar-0.10.0-alpha.1-x.0+build.007";
    let toml = manifest("foo_bar", "0.10.0-alpha.1-x.0+build.007");
    let bytes = tarball(&[
        dir(&format!("{top}/")),
        file(&format!("{top}/Cargo.toml"), toml.as_bytes()),
        dir(&format!("{top}/src/")),
        file(&format!("{top}/src/lib.rs"), b""),
    ]);
    let release = parse(&format!("{top}.crate"), bytes).unwrap();
    assert_eq!(release.version, "0.10.0-alpha.1-x.0+build.007");
}

#[test]
fn read_crate_release_reads_a_file_up_to_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foo-1.0.0.crate");
    let bytes = release("foo-1.0.0", "foo", "1.0.0");
    std::fs::write(&path, &bytes).unwrap();
    let limits = ArchiveLimits {
        max_tarball_bytes: bytes.len() as u64,
        ..ArchiveLimits::default()
    };
    let release = read_crate_release(&path, &limits).unwrap();
    assert_eq!(release.name, "foo");
    assert_eq!(release.bytes, bytes);
}

#[test]
fn oversized_tarball_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foo-1.0.0.crate");
    let bytes = release("foo-1.0.0", "foo", "1.0.0");
    std::fs::write(&path, &bytes).unwrap();
    let limits = ArchiveLimits {
        max_tarball_bytes: bytes.len() as u64 - 1,
        ..ArchiveLimits::default()
    };
    let error = read_crate_release(&path, &limits).unwrap_err();
    match &error {
        ArchiveError::TooLarge { file, max } => {
            assert_eq!(file, &path.display().to_string());
            assert_eq!(*max, bytes.len() as u64 - 1);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(error.to_string().contains("foo-1.0.0.crate"));

    let error = parse_crate_release("foo-1.0.0.crate", bytes, &limits).unwrap_err();
    assert!(matches!(error, ArchiveError::TooLarge { .. }), "{error:?}");
}

#[test]
fn missing_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foo-1.0.0.crate");
    let error = read_crate_release(&path, &ArchiveLimits::default()).unwrap_err();
    assert!(matches!(error, ArchiveError::Io { .. }), "{error:?}");
}

#[test]
fn file_name_mismatch_is_refused() {
    let bytes = release("foo-1.0.0", "foo", "1.0.0");
    let error = parse("foo-1.0.1.crate", bytes.clone()).unwrap_err();
    assert!(
        error.to_string().contains("the file name disagrees"),
        "{error}"
    );
    assert_eq!(
        mismatch(error),
        (
            "foo-1.0.0.crate".to_owned(),
            "foo-1.0.1.crate".to_owned(),
            Disagreement::FileName
        )
    );
    // The right stem with the wrong extension is still the wrong file name.
    let error = parse("foo-1.0.0.tar.gz", bytes).unwrap_err();
    assert_eq!(mismatch(error).2, Disagreement::FileName);
}

#[test]
fn directory_mismatch_is_refused() {
    let bytes = release("foo-1.0.1", "foo", "1.0.0");
    let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
    assert!(
        error.to_string().contains("top-level directory disagrees"),
        "{error}"
    );
    assert_eq!(
        mismatch(error),
        (
            "foo-1.0.0".to_owned(),
            "foo-1.0.1".to_owned(),
            Disagreement::Directory
        )
    );
}

#[test]
fn manifest_mismatch_is_refused() {
    let bytes = release("foo-1.0.0", "bar", "1.0.0");
    let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
    assert!(
        error.to_string().contains("Cargo.toml's [package]"),
        "{error}"
    );
    assert_eq!(
        mismatch(error),
        (
            "foo-1.0.0".to_owned(),
            "bar-1.0.0".to_owned(),
            Disagreement::Manifest
        )
    );
    let bytes = release("foo-1.0.0", "foo", "1.0.1");
    let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
    assert_eq!(mismatch(error).2, Disagreement::Manifest);
}

#[test]
fn three_way_mismatch_is_refused() {
    let bytes = release("foo-2.0.0", "foo", "1.0.0");
    let error = parse("foo-3.0.0.crate", bytes).unwrap_err();
    assert_eq!(mismatch(error).2, Disagreement::AllThree);
}

#[test]
fn missing_manifest_is_refused() {
    let bytes = tarball(&[file("foo-1.0.0/src/lib.rs", b"")]);
    let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
    assert!(
        matches!(&error, ArchiveError::MissingManifest { top, .. } if top == "foo-1.0.0"),
        "{error:?}"
    );
    // A Cargo.toml deeper down is not the crate's manifest.
    let toml = manifest("foo", "1.0.0");
    let bytes = tarball(&[file("foo-1.0.0/src/Cargo.toml", toml.as_bytes())]);
    let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
    assert!(
        matches!(error, ArchiveError::MissingManifest { .. }),
        "{error:?}"
    );
}

#[test]
fn duplicate_manifest_is_refused() {
    let first = manifest("foo", "1.0.0");
    let second = manifest("foo", "1.0.0").replace("test", "other");
    let bytes = tarball(&[
        file("foo-1.0.0/Cargo.toml", first.as_bytes()),
        file("foo-1.0.0/src/lib.rs", b""),
        file("foo-1.0.0/Cargo.toml", second.as_bytes()),
    ]);
    let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
    assert!(
        matches!(&error, ArchiveError::DuplicateManifest { entry, .. }
            if entry == "foo-1.0.0/Cargo.toml"),
        "{error:?}"
    );
}

#[test]
fn duplicate_manifest_spelled_differently_is_refused() {
    let toml = manifest("foo", "1.0.0");
    let bytes = tarball(&[
        file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
        file("foo-1.0.0//Cargo.toml", toml.as_bytes()),
    ]);
    let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
    assert!(
        matches!(error, ArchiveError::DuplicateManifest { .. }),
        "{error:?}"
    );
}

#[test]
fn parent_dir_path_is_refused() {
    let toml = manifest("foo", "1.0.0");
    let bytes = tarball(&[
        file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
        file("foo-1.0.0/../evil.rs", b""),
    ]);
    let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
    assert!(
        matches!(&error, ArchiveError::UnsafePath { entry, reason, .. }
            if entry == "foo-1.0.0/../evil.rs" && reason.contains("..")),
        "{error:?}"
    );
}

#[test]
fn absolute_path_is_refused() {
    let toml = manifest("foo", "1.0.0");
    let bytes = tarball(&[file("/foo-1.0.0/Cargo.toml", toml.as_bytes())]);
    let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
    assert!(
        matches!(&error, ArchiveError::UnsafePath { reason, .. } if reason.contains("absolute")),
        "{error:?}"
    );
}

#[test]
fn current_dir_component_is_refused() {
    let toml = manifest("foo", "1.0.0");
    let bytes = tarball(&[file("./foo-1.0.0/Cargo.toml", toml.as_bytes())]);
    let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
    assert!(
        matches!(error, ArchiveError::UnsafePath { .. }),
        "{error:?}"
    );
}

#[test]
fn two_top_level_dirs_are_refused() {
    let toml = manifest("foo", "1.0.0");
    let bytes = tarball(&[
        file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
        file("bar-1.0.0/src/lib.rs", b""),
    ]);
    let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
    assert!(
        matches!(&error, ArchiveError::OutsideTopDirectory { top, entry, .. }
            if top == "foo-1.0.0" && entry == "bar-1.0.0/src/lib.rs"),
        "{error:?}"
    );
}

#[test]
fn top_level_file_is_refused() {
    let toml = manifest("foo", "1.0.0");
    let after = tarball(&[
        file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
        file("README.md", b""),
    ]);
    let error = parse("foo-1.0.0.crate", after).unwrap_err();
    assert!(
        matches!(error, ArchiveError::OutsideTopDirectory { .. }),
        "{error:?}"
    );
    let before = tarball(&[
        file("foo-1.0.0", b""),
        file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
    ]);
    let error = parse("foo-1.0.0.crate", before).unwrap_err();
    assert!(
        matches!(error, ArchiveError::OutsideTopDirectory { .. }),
        "{error:?}"
    );
}

#[test]
fn gzip_bomb_is_refused() {
    let toml = manifest("foo", "1.0.0");
    let zeros = vec![0u8; 2 * 1024 * 1024];
    let bytes = tarball(&[
        file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
        file("foo-1.0.0/src/zeros", &zeros),
    ]);
    assert!(bytes.len() < 64 * 1024, "zeros compress well");
    let limits = ArchiveLimits {
        max_unpacked_bytes: 1024 * 1024,
        ..ArchiveLimits::default()
    };
    let error = parse_crate_release("foo-1.0.0.crate", bytes.clone(), &limits).unwrap_err();
    assert!(
        matches!(error, ArchiveError::UnpackedTooLarge { max, .. } if max == 1024 * 1024),
        "{error:?}"
    );
    // The same tarball under the default cap is fine.
    parse("foo-1.0.0.crate", bytes).unwrap();
}

#[test]
fn unpacked_cap_counts_every_byte_of_the_stream() {
    let unpacked = tar_bytes(&[file(
        "foo-1.0.0/Cargo.toml",
        manifest("foo", "1.0.0").as_bytes(),
    )]);
    let bytes = gzip(&unpacked);
    let exact = ArchiveLimits {
        max_unpacked_bytes: unpacked.len() as u64,
        ..ArchiveLimits::default()
    };
    parse_crate_release("foo-1.0.0.crate", bytes.clone(), &exact).unwrap();
    let short = ArchiveLimits {
        max_unpacked_bytes: unpacked.len() as u64 - 1,
        ..ArchiveLimits::default()
    };
    let error = parse_crate_release("foo-1.0.0.crate", bytes, &short).unwrap_err();
    assert!(
        matches!(error, ArchiveError::UnpackedTooLarge { .. }),
        "{error:?}"
    );
}

#[test]
fn not_gzip_is_refused() {
    let plain_tar = tar_bytes(&[file(
        "foo-1.0.0/Cargo.toml",
        manifest("foo", "1.0.0").as_bytes(),
    )]);
    for bytes in [plain_tar, b"hello".to_vec(), Vec::new(), vec![0x1f]] {
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(matches!(error, ArchiveError::NotGzip { .. }), "{error:?}");
        assert!(error.to_string().contains("cargo package"), "{error}");
    }
}

#[test]
fn corrupt_gzip_or_tar_is_refused() {
    let good = release("foo-1.0.0", "foo", "1.0.0");
    let truncated = good[..good.len() / 2].to_vec();
    let mut bad_crc = good.clone();
    let crc_at = bad_crc.len() - 8;
    bad_crc[crc_at] ^= 0xff;
    let garbage = {
        let mut bytes = vec![0x1f, 0x8b];
        bytes.extend_from_slice(&[0x55; 64]);
        bytes
    };
    let not_tar = gzip(&[b'x'; 1500]);
    for bytes in [truncated, bad_crc, garbage, not_tar] {
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(matches!(error, ArchiveError::Archive { .. }), "{error:?}");
    }
}

#[test]
fn empty_archive_is_refused() {
    let error = parse("foo-1.0.0.crate", tarball(&[])).unwrap_err();
    assert!(matches!(error, ArchiveError::Empty { .. }), "{error:?}");
}

#[test]
fn invalid_crate_names_are_refused() {
    let long = "a".repeat(65);
    for name in [
        "1abc",
        "a b",
        long.as_str(),
        "",
        "_abc",
        "-abc",
        "caf\u{e9}",
        "a.b",
    ] {
        let top = format!("{name}-1.0.0");
        let error = parse(&format!("{top}.crate"), release(&top, name, "1.0.0")).unwrap_err();
        assert!(
            matches!(&error, ArchiveError::InvalidName { name: found, .. } if found == name),
            "{name:?}: {error:?}"
        );
    }
    let longest = "a".repeat(64);
    let top = format!("{longest}-1.0.0");
    parse(&format!("{top}.crate"), release(&top, &longest, "1.0.0")).unwrap();
}

#[test]
fn invalid_versions_are_refused() {
    for version in [
        "1.0",
        "01.0.0",
        "1.0.0-",
        "1.0.0+",
        "1.0.0.0",
        "1.00.0",
        "1.0.01",
        "v1.0.0",
        "1.0.0-a..b",
        "1.0.0-01",
        "1.0.0-a_b",
        "1.0.0+a+b",
        "1..0",
        "18446744073709551616.0.0",
    ] {
        let top = format!("foo-{version}");
        let error = parse(&format!("{top}.crate"), release(&top, "foo", version)).unwrap_err();
        assert!(
            matches!(&error, ArchiveError::InvalidVersion { version: found, .. }
                if found == version),
            "{version:?}: {error:?}"
        );
    }
}

#[test]
fn version_validator_accepts_semver() {
    for version in [
        "0.0.0",
        "1.2.3",
        "10.20.30",
        "1.0.0-0",
        "1.0.0-rc.1",
        "1.0.0-x-y.0a",
        "1.0.0+001",
        "1.0.0-alpha+build.1-2",
        "18446744073709551615.0.0",
    ] {
        assert_eq!(validate_version(version), Ok(()), "{version}");
    }
}

#[test]
fn workspace_inherited_fields_are_refused() {
    let toml = "[package]\nname = \"foo\"\nversion = { workspace = true }\n";
    let bytes = tarball(&[file("foo-1.0.0/Cargo.toml", toml.as_bytes())]);
    let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
    assert!(
        matches!(
            error,
            ArchiveError::ManifestField {
                field: "version",
                ..
            }
        ),
        "{error:?}"
    );
    let toml = "[package]\nname.workspace = true\nversion = \"1.0.0\"\n";
    let bytes = tarball(&[file("foo-1.0.0/Cargo.toml", toml.as_bytes())]);
    let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
    assert!(
        matches!(error, ArchiveError::ManifestField { field: "name", .. }),
        "{error:?}"
    );
}

#[test]
fn malformed_manifests_are_refused() {
    for toml in [
        &b"[package\nname = \"foo\"\n"[..],
        b"[package]\nversion = \"1.0.0\"\n",
        b"[package]\nname = \"foo\"\n",
        b"[dependencies]\n",
        b"[package]\nname = \"f\xffo\"\nversion = \"1.0.0\"\n",
    ] {
        let bytes = tarball(&[file("foo-1.0.0/Cargo.toml", toml)]);
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(matches!(error, ArchiveError::Manifest { .. }), "{error:?}");
    }
}

#[test]
fn oversized_manifest_is_refused() {
    let toml = manifest("foo", "1.0.0");
    let bytes = tarball(&[file("foo-1.0.0/Cargo.toml", toml.as_bytes())]);
    let exact = ArchiveLimits {
        max_manifest_bytes: toml.len() as u64,
        ..ArchiveLimits::default()
    };
    parse_crate_release("foo-1.0.0.crate", bytes.clone(), &exact).unwrap();
    let short = ArchiveLimits {
        max_manifest_bytes: toml.len() as u64 - 1,
        ..ArchiveLimits::default()
    };
    let error = parse_crate_release("foo-1.0.0.crate", bytes, &short).unwrap_err();
    assert!(
        matches!(error, ArchiveError::ManifestTooLarge { .. }),
        "{error:?}"
    );
}

#[test]
fn manifest_that_is_not_a_regular_file_is_refused() {
    let bytes = tarball(&[
        Item {
            path: "foo-1.0.0/Cargo.toml",
            kind: EntryType::Symlink,
            data: b"",
        },
        file(
            "foo-1.0.0/Cargo.toml.orig",
            manifest("foo", "1.0.0").as_bytes(),
        ),
    ]);
    let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
    assert!(
        matches!(error, ArchiveError::ManifestNotFile { .. }),
        "{error:?}"
    );
}

#[test]
fn capped_reader_stops_at_the_cap() {
    let data = [7u8; 10];
    let mut reader = CappedReader::new(&data[..], 10);
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    assert_eq!(out.len(), 10);
    assert!(!reader.exceeded);

    let mut reader = CappedReader::new(&data[..], 9);
    let mut out = Vec::new();
    assert!(reader.read_to_end(&mut out).is_err());
    assert!(reader.exceeded);
    assert_eq!(out.len(), 9);
}

#[test]
fn errors_name_the_file() {
    let bytes = release("foo-1.0.0", "foo", "1.0.0");
    let error = parse("foo-9.0.0.crate", bytes).unwrap_err();
    assert!(
        error.to_string().starts_with("foo-9.0.0.crate: "),
        "{error}"
    );
    let error = parse("nope.crate", b"nope".to_vec()).unwrap_err();
    assert!(error.to_string().starts_with("nope.crate "), "{error}");
}

// The walker: every file with its path below the top-level directory.

/// A release of foo 1.0.0 with directory entries, a nested file and a binary file.
fn foo_release() -> Vec<u8> {
    let toml = manifest("foo", "1.0.0");
    tarball(&[
        dir("foo-1.0.0/"),
        file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
        file("foo-1.0.0/Cargo.toml.orig", b"[package]\n"),
        dir("foo-1.0.0/src/"),
        file("foo-1.0.0/src/lib.rs", b"pub fn f() {}\n"),
        file("foo-1.0.0/src/bin/data.bin", &[0, 1, 2, 255]),
    ])
}

fn digests(bytes: &[u8]) -> Result<CrateFiles<[u8; 32]>, ArchiveError> {
    crate_file_digests("foo-1.0.0.crate", bytes, &ArchiveLimits::default())
}

#[test]
fn every_file_is_read_by_its_path_below_the_top_directory() {
    let bytes = foo_release();
    let read = read_crate_files("foo-1.0.0.crate", &bytes, &ArchiveLimits::default()).unwrap();
    assert_eq!(
        read.release,
        ReleaseId {
            name: "foo".to_owned(),
            version: "1.0.0".to_owned()
        }
    );
    let files: Vec<(&str, &[u8])> = read
        .files
        .iter()
        .map(|(path, contents)| (path.as_str(), contents.as_slice()))
        .collect();
    assert_eq!(
        files,
        [
            ("Cargo.toml", manifest("foo", "1.0.0").as_bytes()),
            ("Cargo.toml.orig", &b"[package]\n"[..]),
            ("src/bin/data.bin", &[0, 1, 2, 255][..]),
            ("src/lib.rs", &b"pub fn f() {}\n"[..]),
        ]
    );

    let hashed = digests(&bytes).unwrap();
    assert_eq!(hashed.release, read.release);
    let expected: BTreeMap<String, [u8; 32]> = read
        .files
        .iter()
        .map(|(path, contents)| (path.clone(), Sha256::digest(contents).into()))
        .collect();
    assert_eq!(hashed.files, expected);
}

#[test]
fn the_visitor_sees_each_file_in_archive_order_and_its_errors_come_back() {
    #[derive(Debug)]
    enum ScanError {
        Archive(ArchiveError),
        Refused(String),
    }
    impl From<ArchiveError> for ScanError {
        fn from(error: ArchiveError) -> Self {
            ScanError::Archive(error)
        }
    }
    let bytes = foo_release();
    let mut seen = Vec::new();
    let release = visit_crate_files(
        "foo-1.0.0.crate",
        &bytes,
        &ArchiveLimits::default(),
        |file| {
            seen.push((file.path().to_owned(), file.size()));
            Ok::<(), ScanError>(())
        },
    )
    .unwrap();
    assert_eq!(release.name, "foo");
    let manifest_len = manifest("foo", "1.0.0").len() as u64;
    assert_eq!(
        seen,
        [
            ("Cargo.toml".to_owned(), manifest_len),
            ("Cargo.toml.orig".to_owned(), 10),
            ("src/lib.rs".to_owned(), 14),
            ("src/bin/data.bin".to_owned(), 4),
        ]
    );

    let mut visited = 0;
    let error = visit_crate_files(
        "foo-1.0.0.crate",
        &bytes,
        &ArchiveLimits::default(),
        |file| {
            visited += 1;
            if file.path() == "src/lib.rs" {
                return Err(ScanError::Refused(file.path().to_owned()));
            }
            Ok(())
        },
    )
    .unwrap_err();
    assert!(
        matches!(&error, ScanError::Refused(path) if path == "src/lib.rs"),
        "{error:?}"
    );
    assert_eq!(visited, 3, "the walk stops at the visitor's error");

    // The archive's own errors reach the visitor's error type through From.
    let error = visit_crate_files(
        "foo-1.0.0.crate",
        b"nope",
        &ArchiveLimits::default(),
        |_| Ok::<(), ScanError>(()),
    )
    .unwrap_err();
    assert!(
        matches!(error, ScanError::Archive(ArchiveError::NotGzip { .. })),
        "{error:?}"
    );
}

#[test]
fn the_file_readers_check_names_as_release_add_does() {
    let bytes = foo_release();
    let error = digests_named("foo-1.0.1.crate", &bytes).unwrap_err();
    assert_eq!(mismatch(error).2, Disagreement::FileName);
    let bytes = release("foo-1.0.0", "bar", "1.0.0");
    let error = digests_named("foo-1.0.0.crate", &bytes).unwrap_err();
    assert_eq!(mismatch(error).2, Disagreement::Manifest);
}

fn digests_named(file_name: &str, bytes: &[u8]) -> Result<CrateFiles<[u8; 32]>, ArchiveError> {
    crate_file_digests(file_name, bytes, &ArchiveLimits::default())
}

#[test]
fn hostile_paths_are_refused_by_the_file_readers() {
    let toml = manifest("foo", "1.0.0");
    for hostile in [
        "foo-1.0.0/../../etc/passwd",
        "x/../../etc/passwd",
        "foo-1.0.0/src/../../bar-1.0.0/src/lib.rs",
        "/etc/passwd",
    ] {
        let bytes = tarball(&[
            file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
            file(hostile, b"root::0:0::/:/bin/sh\n"),
        ]);
        let error = digests(&bytes).unwrap_err();
        assert!(
            matches!(&error, ArchiveError::UnsafePath { entry, .. } if entry == hostile),
            "{hostile}: {error:?}"
        );
        let error =
            read_crate_files("foo-1.0.0.crate", &bytes, &ArchiveLimits::default()).unwrap_err();
        assert!(
            matches!(error, ArchiveError::UnsafePath { .. }),
            "{error:?}"
        );
    }
    // A second top-level directory: its files are not the crate's.
    let bytes = tarball(&[
        file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
        file("foo-1.0.0/src/lib.rs", b"pub fn f() {}\n"),
        file("evil-1.0.0/src/lib.rs", b"pub fn f() { evil() }\n"),
    ]);
    let error = digests(&bytes).unwrap_err();
    assert!(
        matches!(&error, ArchiveError::OutsideTopDirectory { top, entry, .. }
            if top == "foo-1.0.0" && entry == "evil-1.0.0/src/lib.rs"),
        "{error:?}"
    );
}

#[test]
fn dot_components_anywhere_are_refused() {
    let toml = manifest("foo", "1.0.0");
    for path in [
        "foo-1.0.0/./Cargo.toml",
        "foo-1.0.0/src/./lib.rs",
        "foo-1.0.0/src/.",
    ] {
        let bytes = tarball(&[
            file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
            file(path, b""),
        ]);
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(
            matches!(&error, ArchiveError::UnsafePath { entry, reason, .. }
                if entry == path && reason.contains('.')),
            "{path}: {error:?}"
        );
    }
}

#[test]
fn windows_separators_drive_prefixes_and_non_utf8_paths_are_refused() {
    let toml = manifest("foo", "1.0.0");
    for (path, reason) in [
        (&b"foo-1.0.0/src\\..\\..\\evil.rs"[..], "`\\`"),
        (b"foo-1.0.0/C:evil.rs", "`:`"),
        (b"foo-1.0.0/src/caf\xe9.rs", "UTF-8"),
    ] {
        let bytes = gzip(&raw_tar_bytes(&[
            RawItem {
                path: b"foo-1.0.0/Cargo.toml",
                kind: EntryType::Regular,
                data: toml.as_bytes(),
                link: b"",
            },
            RawItem {
                path,
                kind: EntryType::Regular,
                data: b"",
                link: b"",
            },
        ]));
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(
            matches!(&error, ArchiveError::UnsafePath { reason: found, .. } if found.contains(reason)),
            "{:?}: {error:?}",
            String::from_utf8_lossy(path)
        );
    }
}

#[test]
fn split_path_takes_the_top_directory_and_ignores_empty_components() {
    let split = |path: &str| split_path(path.as_bytes());
    assert_eq!(
        split("foo-1.0.0//src/lib.rs"),
        Ok(EntryPath {
            top: "foo-1.0.0".to_owned(),
            relative: "src/lib.rs".to_owned()
        })
    );
    assert_eq!(
        split("foo-1.0.0/"),
        Ok(EntryPath {
            top: "foo-1.0.0".to_owned(),
            relative: String::new()
        })
    );
    assert_eq!(split(""), Err("empty path"));
    assert_eq!(split("a\0b/c"), Err("NUL character"));
    assert_eq!(split("a/../b"), Err("`..` component"));
}

#[test]
fn links_are_refused() {
    let toml = manifest("foo", "1.0.0");
    for (kind, expected) in [
        (EntryType::Symlink, LinkKind::Symbolic),
        (EntryType::Link, LinkKind::Hard),
    ] {
        let bytes = gzip(&raw_tar_bytes(&[
            RawItem {
                path: b"foo-1.0.0/Cargo.toml",
                kind: EntryType::Regular,
                data: toml.as_bytes(),
                link: b"",
            },
            RawItem {
                path: b"foo-1.0.0/src/lib.rs",
                kind,
                data: b"",
                link: b"../../../../etc/passwd",
            },
        ]));
        let error = parse("foo-1.0.0.crate", bytes.clone()).unwrap_err();
        match &error {
            ArchiveError::Link {
                entry,
                kind,
                target,
                ..
            } => {
                assert_eq!(entry, "foo-1.0.0/src/lib.rs");
                assert_eq!(*kind, expected);
                assert_eq!(target, "../../../../etc/passwd");
            }
            other => panic!("expected Link, got {other:?}"),
        }
        assert!(
            error.to_string().contains(&format!("is a {expected} to")),
            "{error}"
        );
        let error = digests(&bytes).unwrap_err();
        assert!(matches!(error, ArchiveError::Link { .. }), "{error:?}");
    }
}

#[test]
fn devices_fifos_and_other_entry_types_are_refused() {
    let toml = manifest("foo", "1.0.0");
    for (kind, name) in [
        (EntryType::Fifo, "FIFO"),
        (EntryType::Char, "character device"),
        (EntryType::Block, "block device"),
        (EntryType::Continuous, "contiguous file"),
        (EntryType::new(b'Z'), "entry of an unknown type"),
    ] {
        let bytes = tarball(&[
            file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
            Item {
                path: "foo-1.0.0/src/odd",
                kind,
                data: b"",
            },
        ]);
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(
            matches!(&error, ArchiveError::UnsupportedEntry { kind: found, entry, .. }
                if *found == name && entry == "foo-1.0.0/src/odd"),
            "{kind:?}: {error:?}"
        );
    }
}

#[test]
fn duplicate_files_are_refused() {
    let toml = manifest("foo", "1.0.0");
    for second in ["foo-1.0.0/src/lib.rs", "foo-1.0.0//src//lib.rs"] {
        let bytes = tarball(&[
            file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
            file("foo-1.0.0/src/lib.rs", b"pub fn good() {}\n"),
            file(second, b"pub fn evil() {}\n"),
        ]);
        let error = digests(&bytes).unwrap_err();
        assert!(
            matches!(&error, ArchiveError::DuplicatePath { entry, .. } if entry == second),
            "{second}: {error:?}"
        );
    }
}

#[test]
fn a_manifest_spelled_in_another_case_is_refused() {
    let toml = manifest("foo", "1.0.0");
    for other in ["foo-1.0.0/cargo.toml", "foo-1.0.0/CARGO.TOML"] {
        let bytes = tarball(&[
            file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
            file(other, manifest("foo", "6.6.6").as_bytes()),
        ]);
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(
            matches!(&error, ArchiveError::ManifestCase { entry, .. } if entry == other),
            "{other}: {error:?}"
        );
    }
    // Below the top it is an ordinary file.
    let bytes = tarball(&[
        file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
        file("foo-1.0.0/tests/cargo.toml", b""),
    ]);
    parse("foo-1.0.0.crate", bytes).unwrap();
}

#[test]
fn the_entry_cap_counts_every_entry() {
    let bytes = foo_release();
    let exact = ArchiveLimits {
        max_entries: 6,
        ..ArchiveLimits::default()
    };
    crate_file_digests("foo-1.0.0.crate", &bytes, &exact).unwrap();
    let short = ArchiveLimits {
        max_entries: 5,
        ..ArchiveLimits::default()
    };
    let error = crate_file_digests("foo-1.0.0.crate", &bytes, &short).unwrap_err();
    assert!(
        matches!(error, ArchiveError::TooManyEntries { max: 5, .. }),
        "{error:?}"
    );
    let error = parse_crate_release("foo-1.0.0.crate", bytes, &short).unwrap_err();
    assert!(
        matches!(error, ArchiveError::TooManyEntries { .. }),
        "{error:?}"
    );
}

#[test]
fn the_file_cap_applies_to_each_file() {
    let toml = manifest("foo", "1.0.0");
    let big = vec![7u8; 1000];
    let bytes = tarball(&[
        file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
        file("foo-1.0.0/src/big.bin", &big),
    ]);
    let exact = ArchiveLimits {
        max_file_bytes: 1000,
        ..ArchiveLimits::default()
    };
    let read = read_crate_files("foo-1.0.0.crate", &bytes, &exact).unwrap();
    assert_eq!(read.files["src/big.bin"], big);
    let short = ArchiveLimits {
        max_file_bytes: 999,
        ..ArchiveLimits::default()
    };
    let error = read_crate_files("foo-1.0.0.crate", &bytes, &short).unwrap_err();
    assert!(
        matches!(&error, ArchiveError::FileTooLarge { entry, size: 1000, max: 999, .. }
            if entry == "foo-1.0.0/src/big.bin"),
        "{error:?}"
    );
    // Without reading a byte of it: release add refuses it too.
    let error = parse_crate_release("foo-1.0.0.crate", bytes, &short).unwrap_err();
    assert!(
        matches!(error, ArchiveError::FileTooLarge { .. }),
        "{error:?}"
    );
}

#[test]
fn the_unpacked_cap_holds_while_the_visitor_reads() {
    let toml = manifest("foo", "1.0.0");
    let zeros = vec![0u8; 2 * 1024 * 1024];
    let bytes = tarball(&[
        file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
        file("foo-1.0.0/src/zeros", &zeros),
    ]);
    let limits = ArchiveLimits {
        max_unpacked_bytes: 1024 * 1024,
        ..ArchiveLimits::default()
    };
    // The cap is hit inside the visitor's read; it is still named for what it is.
    for result in [
        read_crate_files("foo-1.0.0.crate", &bytes, &limits).map(drop),
        crate_file_digests("foo-1.0.0.crate", &bytes, &limits).map(drop),
    ] {
        let error = result.unwrap_err();
        assert!(
            matches!(error, ArchiveError::UnpackedTooLarge { max, .. } if max == 1024 * 1024),
            "{error:?}"
        );
    }
    let read = read_crate_files("foo-1.0.0.crate", &bytes, &ArchiveLimits::default()).unwrap();
    assert_eq!(read.files["src/zeros"].len(), zeros.len());
}

#[test]
fn a_file_cut_short_by_the_end_of_the_archive_is_refused() {
    let toml = manifest("foo", "1.0.0");
    let whole = tar_bytes(&[
        file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
        file("foo-1.0.0/src/lib.rs", &[b'x'; 600]),
    ]);
    // The manifest's header and block, the file's header, then 100 of its 600 bytes: a
    // well-formed gzip stream of a cut archive.
    let cut = gzip(&whole[..512 + 512 + 512 + 100]);
    let error = read_crate_files("foo-1.0.0.crate", &cut, &ArchiveLimits::default()).unwrap_err();
    assert!(
        matches!(&error, ArchiveError::TruncatedEntry { entry, .. } if entry == "src/lib.rs"),
        "{error:?}"
    );
    let error = digests(&cut).unwrap_err();
    assert!(
        matches!(error, ArchiveError::TruncatedEntry { .. }),
        "{error:?}"
    );
    // Skipping the file instead of reading it also finds the archive short.
    let error = parse("foo-1.0.0.crate", cut).unwrap_err();
    assert!(matches!(error, ArchiveError::Archive { .. }), "{error:?}");
}

#[test]
fn a_file_named_like_the_top_directory_after_it_is_refused() {
    let toml = manifest("foo", "1.0.0");
    let bytes = tarball(&[
        dir("foo-1.0.0/"),
        file("foo-1.0.0/Cargo.toml", toml.as_bytes()),
        file("foo-1.0.0", b"shadow"),
    ]);
    let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
    assert!(
        matches!(error, ArchiveError::OutsideTopDirectory { .. }),
        "{error:?}"
    );
}

#[test]
fn special_entries_are_refused_and_named() {
    let toml = manifest("foo", "1.0.0");
    for (kind, named) in [
        (EntryType::Symlink, "symbolic link"),
        (EntryType::Link, "hard link"),
        (EntryType::Char, "character device"),
        (EntryType::Fifo, "FIFO"),
        (EntryType::GNUSparse, "sparse file"),
        (EntryType::XGlobalHeader, "pax global header"),
    ] {
        let bytes = gzip(&raw_tar_bytes(&[
            RawItem {
                path: b"foo-1.0.0/Cargo.toml",
                kind: EntryType::Regular,
                data: toml.as_bytes(),
                link: b"",
            },
            RawItem {
                path: b"foo-1.0.0/x",
                kind,
                data: b"",
                link: b"y",
            },
        ]));
        let error = parse("foo-1.0.0.crate", bytes).unwrap_err();
        assert!(error.to_string().contains(named), "{kind:?}: {error}");
    }
}

#[test]
fn debug_output_shows_sizes_not_contents() {
    let release = parse("foo-1.0.0.crate", foo_release()).unwrap();
    let shown = format!("{release:?}");
    assert!(
        shown.contains("\"foo\"") && shown.contains("\"1.0.0\""),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("<{} bytes>", release.bytes.len())),
        "{shown}"
    );
    let limits = ArchiveLimits::default();
    let mut seen = Vec::new();
    visit_crate_files("foo-1.0.0.crate", &foo_release(), &limits, |mut file| {
        seen.push(format!("{file:?}"));
        // An ArchiveFile reads like any reader.
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes).map_err(|source| {
            ArchiveError::Archive {
                file: "foo-1.0.0.crate".into(),
                source,
            }
        })?;
        assert_eq!(bytes.len() as u64, file.size());
        Ok::<(), ArchiveError>(())
    })
    .unwrap();
    assert!(
        seen.iter()
            .any(|s| s.contains("path: \"src/lib.rs\"") && s.contains("size: 14")),
        "{seen:?}"
    );
}
