//! The release scanner on its corpus of known-bad release pairs
//! (`tests/fixtures/scan/`, modelled on public reports of malicious crates, none with a
//! working payload): each scores above the default hold threshold, with the flags that
//! say why. The known-good real updates are scanned from the public registry by
//! `signer-cli/tests/review.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::Path;

use tuf_core::crate_archive::{CrateFiles, ReleaseId};
use tuf_core::scan::{scan, Capability, FindingKind, ScanReport, DEFAULT_HOLD_ABOVE};

/// The files under `dir`, by `/`-separated relative path.
fn files_under(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(root, &path, out);
        } else {
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.insert(relative, std::fs::read(&path).unwrap());
        }
    }
}

fn release(dir: &Path) -> CrateFiles<Vec<u8>> {
    let mut files = BTreeMap::new();
    files_under(dir, dir, &mut files);
    let manifest: toml::Table = std::str::from_utf8(&files["Cargo.toml"])
        .unwrap()
        .parse()
        .unwrap();
    let package = manifest["package"].as_table().unwrap();
    CrateFiles {
        release: ReleaseId {
            name: package["name"].as_str().unwrap().to_owned(),
            version: package["version"].as_str().unwrap().to_owned(),
        },
        files,
    }
}

fn scan_case(case: &str) -> ScanReport {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/scan")
        .join(case);
    let report = scan(Some(&release(&dir.join("old"))), &release(&dir.join("new")));
    eprintln!("{case}: score {}", report.score);
    for finding in &report.findings {
        eprintln!(
            "  [{}] {:?} {:?}:{:?} {}",
            finding.weight, finding.kind, finding.file, finding.line, finding.message
        );
    }
    report
}

/// Whether `report` has a weighed finding of `kind` in `file` at `line`.
fn flagged(report: &ScanReport, kind: FindingKind, file: &str, line: Option<usize>) -> bool {
    report.findings.iter().any(|f| {
        f.kind == kind
            && f.file.as_deref() == Some(file)
            && (line.is_none() || f.line == line)
            && f.weight > 0
    })
}

#[test]
fn a_build_script_that_downloads_and_runs_a_binary_is_held() {
    let report = scan_case("build-script-downloads");
    assert!(report.score > DEFAULT_HOLD_ABOVE, "{report:#?}");
    assert!(flagged(
        &report,
        FindingKind::BuildScriptAdded,
        "build.rs",
        None
    ));
    assert!(flagged(
        &report,
        FindingKind::Capability(Capability::ProcessSpawn),
        "build.rs",
        Some(3)
    ));
    let write = report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Capability(Capability::FileWrite))
        .expect("the write outside OUT_DIR is flagged");
    assert!(
        write.message.contains("never names OUT_DIR"),
        "{}",
        write.message
    );
    assert_eq!(report.against.as_deref(), Some("1.0.0"));
}

#[test]
fn a_library_reading_ssh_keys_and_sending_them_is_held() {
    let report = scan_case("reads-ssh-keys");
    assert!(report.score > DEFAULT_HOLD_ABOVE, "{report:#?}");
    assert!(flagged(
        &report,
        FindingKind::Capability(Capability::Network),
        "src/lib.rs",
        Some(5)
    ));
    assert!(flagged(
        &report,
        FindingKind::Capability(Capability::HomeDirectory),
        "src/lib.rs",
        Some(13)
    ));
    let change = report
        .files
        .iter()
        .find(|f| f.path == "src/lib.rs")
        .unwrap();
    assert_eq!(change.change, "changed");
    assert!(change.lines_added >= 10, "{change:?}");
}

#[test]
fn a_proc_macro_sending_ci_secrets_is_held() {
    let report = scan_case("proc-macro-env");
    assert!(report.score > DEFAULT_HOLD_ABOVE, "{report:#?}");
    assert!(flagged(
        &report,
        FindingKind::BecomesProcMacro,
        "Cargo.toml",
        None
    ));
    assert!(flagged(
        &report,
        FindingKind::NewDependency,
        "Cargo.toml",
        None
    ));
    assert!(flagged(
        &report,
        FindingKind::Capability(Capability::SecretEnvRead),
        "src/lib.rs",
        Some(9)
    ));
    assert!(flagged(
        &report,
        FindingKind::Capability(Capability::Network),
        "src/lib.rs",
        Some(11)
    ));
}

#[test]
fn an_encoded_payload_handed_to_a_shell_is_held() {
    let report = scan_case("obfuscated-literal");
    assert!(report.score > DEFAULT_HOLD_ABOVE, "{report:#?}");
    assert!(flagged(
        &report,
        FindingKind::Capability(Capability::EncodedLiteral),
        "src/lib.rs",
        Some(4)
    ));
    assert!(flagged(
        &report,
        FindingKind::Capability(Capability::ProcessSpawn),
        "src/lib.rs",
        Some(7)
    ));
}

#[test]
fn the_same_release_scans_clean_and_a_first_release_counts_everything() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scan/reads-ssh-keys");
    let new = release(&dir.join("new"));
    let same = scan(Some(&new), &new);
    assert_eq!(same.score, 0, "{same:#?}");
    assert!(same.files.is_empty());
    let first = scan(None, &new);
    assert_eq!(first.against, None);
    assert!(first.score >= same.score + 55, "{first:#?}");
    assert!(first.files.iter().all(|f| f.change == "added"));
    assert!(!first.not_seen.is_empty());
}
