//! The repository audit's checks of signed index files, on repositories built by hand:
//! every line a signed release whose sha256 is its `cksum`, each file at its crate's
//! path, every release covered by its crate's file, and a warning for a crate with no
//! file where the repository says every crate has one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use tuf_core::index_entry::IndexEntry;
use tuf_core::layout::{crate_index_path, crate_target_path, LAYOUT_FIELD};
use tuf_core::repository::{audit_repository, AuditOptions, AuditReport, DirectorySource};

use support::{now, Repo};

/// A repository whose top-level targets lists crate releases and index files itself.
fn hand_built(signs_entries: bool) -> Repo {
    let mut repo = Repo::new(true);
    if signs_entries {
        let (targets, _) = repo.roles.get_mut("targets").unwrap();
        targets.signed_mut().unrecognized_fields.insert(
            LAYOUT_FIELD.into(),
            serde_json::json!({ "signed_index_entries": true }),
        );
    }
    repo
}

fn tarball(name: &str, version: &str) -> Vec<u8> {
    format!("tarball of {name} {version}").into_bytes()
}

fn release(repo: &mut Repo, name: &str, version: &str) {
    let path = crate_target_path(name, version).unwrap();
    repo.add_target("targets", &path, &tarball(name, version));
}

fn line(name: &str, version: &str) -> Vec<u8> {
    IndexEntry::without_dependencies(name, version, &tarball(name, version)).to_canonical_line()
}

fn index_file(repo: &mut Repo, at: &str, lines: &[Vec<u8>]) {
    let mut bytes = Vec::new();
    for line in lines {
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
    }
    repo.add_target("targets", &crate_index_path(at).unwrap(), &bytes);
}

fn audit(repo: &Repo, with_files: bool) -> AuditReport {
    audit_with_progress(repo, with_files, &())
}

fn audit_with_progress(
    repo: &Repo,
    with_files: bool,
    progress: &dyn tuf_core::repository::Progress,
) -> AuditReport {
    let root = std::fs::read(repo.metadata_dir().join("1.root.json")).unwrap();
    let mut options = AuditOptions::new(now());
    if with_files {
        options.targets_dir = Some(repo.dir.path().join("targets"));
    }
    audit_repository(
        &DirectorySource::new(repo.metadata_dir()),
        &root,
        &options,
        progress,
    )
}

fn problems(report: &AuditReport) -> Vec<String> {
    report.problems.iter().map(ToString::to_string).collect()
}

/// The audit's error for a release its crate's signed index file leaves out.
fn not_covered(path: &str) -> String {
    format!(
        "error: targets: {path}: its crate's signed index file has no entry for it: the proxy \
         serves it by cksum alone, or not at all where signed entries are required"
    )
}

/// A repository that says every crate has a signed index file, with two releases of
/// `demo` and its index file covering both.
fn two_releases_both_covered() -> Repo {
    let mut repo = hand_built(true);
    release(&mut repo, "demo", "1.0.0");
    release(&mut repo, "demo", "1.1.0");
    index_file(
        &mut repo,
        "demo",
        &[line("demo", "1.0.0"), line("demo", "1.1.0")],
    );
    repo.publish();
    repo
}

#[test]
fn releases_covered_by_their_index_file_pass_and_every_check_runs() {
    let repo = two_releases_both_covered();
    for with_files in [true, false] {
        let report = audit(&repo, with_files);
        assert!(report.problems.is_empty(), "{:?}", problems(&report));
        assert_eq!(report.targets_checked, 3);
    }
    assert_eq!(audit(&repo, true).target_files_checked, 3);
}

#[test]
fn a_release_its_crates_index_file_leaves_out_is_an_error() {
    let mut repo = hand_built(true);
    release(&mut repo, "demo", "1.0.0");
    release(&mut repo, "demo", "1.1.0");
    index_file(&mut repo, "demo", &[line("demo", "1.0.0")]);
    repo.publish();
    let path = crate_target_path("demo", "1.1.0").unwrap();
    assert_eq!(audit(&repo, true).errors(), [not_covered(&path)]);
}

#[test]
fn a_crate_with_no_index_file_is_a_warning_only_where_every_crate_should_have_one() {
    for signs_entries in [true, false] {
        let mut repo = hand_built(signs_entries);
        release(&mut repo, "demo", "1.0.0");
        repo.publish();
        let report = audit(&repo, true);
        assert!(report.is_ok(), "{:?}", problems(&report));
        if signs_entries {
            let path = crate_target_path("demo", "1.0.0").unwrap();
            assert_eq!(
                problems(&report),
                [format!(
                    "warning: targets: {path}: its crate has no signed index file: the proxy \
                     serves no version of it while signed entries are required (release add \
                     it again)"
                )]
            );
        } else {
            assert!(report.problems.is_empty(), "{:?}", problems(&report));
        }
    }
}

#[test]
fn an_index_file_that_is_not_one_or_not_at_its_crates_path_is_an_error() {
    let mut repo = hand_built(false);
    repo.add_target(
        "targets",
        &crate_index_path("demo").unwrap(),
        b"not an index entry\n",
    );
    // other's file holds demo's entries.
    index_file(&mut repo, "other", &[line("demo", "1.0.0")]);
    repo.publish();
    let demo_index = crate_index_path("demo").unwrap();
    let other_index = crate_index_path("other").unwrap();
    let errors = audit(&repo, true).errors();
    assert_eq!(
        errors,
        [
            format!(
                "error: targets: {demo_index}: not a signed index file: its first line is not \
                 an index entry"
            ),
            format!("error: targets: {other_index}: the index file of demo is not at its path"),
        ],
    );
    // A file whose first line is an entry and a later one is not: that line's error.
    let mut later = hand_built(false);
    let mut bytes = line("demo", "1.0.0");
    bytes.extend_from_slice(b"\nnot an index entry\n");
    later.add_target("targets", &demo_index, &bytes);
    later.publish();
    let errors = audit(&later, true).errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!(
            "error: targets: {demo_index}: not a signed index file: line 2: "
        )),
        "{errors:?}"
    );
    // An empty file is no file to judge (and its crate's releases are then not covered).
    let mut empty = hand_built(false);
    release(&mut empty, "demo", "1.0.0");
    empty.add_target("targets", &crate_index_path("demo").unwrap(), b"\n");
    empty.publish();
    let path = crate_target_path("demo", "1.0.0").unwrap();
    assert_eq!(audit(&empty, true).errors(), [not_covered(&path)]);
}

#[test]
fn an_index_line_for_a_release_nobody_signs_or_with_another_cksum_is_an_error() {
    let mut repo = hand_built(false);
    release(&mut repo, "demo", "1.0.0");
    let forged = IndexEntry::without_dependencies("demo", "1.0.0", b"other bytes");
    index_file(
        &mut repo,
        "demo",
        &[forged.to_canonical_line(), line("demo", "2.0.0")],
    );
    repo.publish();
    let index = crate_index_path("demo").unwrap();
    let signed = IndexEntry::without_dependencies("demo", "1.0.0", &tarball("demo", "1.0.0")).cksum;
    let release_path = crate_target_path("demo", "2.0.0").unwrap();
    let errors = audit(&repo, true).errors();
    assert_eq!(
        errors,
        [
            format!(
                "error: targets: {index}: demo 1.0.0: the entry's cksum {} is not the sha256 \
                 of the signed release ({signed})",
                forged.cksum
            ),
            format!(
                "error: targets: {index}: demo 2.0.0: an entry for a release that is not \
                 signed ({release_path})"
            ),
            not_covered(&crate_target_path("demo", "1.0.0").unwrap()),
        ],
    );
}

/// A release that a delegated role lists outside the paths it is trusted for is signed
/// for no client: an index line naming it is a line for a release nobody signs, however
/// the audit looks the line's release up.
#[test]
fn an_index_line_for_a_release_only_an_untrusted_role_lists_is_an_error() {
    let mut repo = hand_built(false);
    repo.delegate("targets", "other-team", &["crates/other/*/*"], true);
    let path = crate_target_path("demo", "1.0.0").unwrap();
    repo.add_target("other-team", &path, &tarball("demo", "1.0.0"));
    index_file(&mut repo, "demo", &[line("demo", "1.0.0")]);
    repo.publish();
    let index = crate_index_path("demo").unwrap();
    assert_eq!(
        audit(&repo, true).errors(),
        [
            format!(
                "error: targets: {index}: demo 1.0.0: an entry for a release that is not \
                 signed ({path})"
            ),
            format!(
                "error: other-team: {path}: listed here, but this role is not trusted for the \
                 path: clients will not find it"
            ),
            not_covered(&path).replace("error: targets:", "error: other-team:"),
        ],
    );
}

/// A release listed twice, by the role clients get it from and by another: the index
/// line covers both listings (the other is an error of its own, not a second one).
#[test]
fn a_release_listed_twice_is_covered_by_the_line_of_the_entry_clients_get() {
    let mut repo = hand_built(false);
    repo.delegate("targets", "other-team", &["crates/*/*/*"], false);
    release(&mut repo, "demo", "1.0.0");
    let path = crate_target_path("demo", "1.0.0").unwrap();
    repo.add_target("other-team", &path, &tarball("demo", "1.0.0"));
    index_file(&mut repo, "demo", &[line("demo", "1.0.0")]);
    repo.publish();
    assert_eq!(
        audit(&repo, true).errors(),
        [format!(
            "error: other-team: {path}: listed here, but a client looking it up gets the \
             entry of targets"
        )],
    );
}

/// A release listed twice that no line covers: both listings are reported, the one that
/// resolves elsewhere because the entry clients get is not covered.
#[test]
fn a_release_listed_twice_and_covered_by_no_line_is_reported_at_both_listings() {
    let mut repo = hand_built(false);
    repo.delegate("targets", "other-team", &["crates/*/*/*"], false);
    release(&mut repo, "demo", "1.0.0");
    release(&mut repo, "demo", "1.1.0");
    let path = crate_target_path("demo", "1.1.0").unwrap();
    repo.add_target("other-team", &path, &tarball("demo", "1.1.0"));
    index_file(&mut repo, "demo", &[line("demo", "1.0.0")]);
    repo.publish();
    assert_eq!(
        audit(&repo, true).errors(),
        [
            format!(
                "error: other-team: {path}: listed here, but a client looking it up gets the \
                 entry of targets"
            ),
            not_covered(&path),
            not_covered(&path).replace("error: targets:", "error: other-team:"),
        ],
    );
}

/// A progress bar that records what it is told.
#[derive(Default)]
struct Recorded {
    length: std::sync::atomic::AtomicU64,
    advanced: std::sync::atomic::AtomicU64,
}

impl tuf_core::repository::Progress for Recorded {
    fn set_length(&self, length: u64) {
        self.length
            .fetch_add(length, std::sync::atomic::Ordering::Relaxed);
    }
    fn advance(&self, steps: u64) {
        self.advanced
            .fetch_add(steps, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The audit's progress ends full: each target counts once looked up and once checked.
#[test]
fn the_progress_of_an_audit_ends_at_its_length() {
    let repo = two_releases_both_covered();
    let progress = Recorded::default();
    let report = audit_with_progress(&repo, true, &progress);
    assert!(report.is_ok(), "{:?}", problems(&report));
    let length = progress.length.into_inner();
    let advanced = progress.advanced.into_inner();
    assert_eq!(advanced, length);
    assert!(length >= 2 * report.targets_checked as u64, "{length}");
}
