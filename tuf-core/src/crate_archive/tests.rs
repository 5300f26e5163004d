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
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = Header::new_gnu();
        let name = &mut header.as_gnu_mut().unwrap().name;
        name[..item.path.len()].copy_from_slice(item.path.as_bytes());
        header.set_entry_type(item.kind);
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
