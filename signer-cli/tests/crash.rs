//! Crash safety of publish: the process is killed (SIGKILL) at random points while it
//! publishes a large change that includes a root rotation of the timestamp key, many
//! times: half the kills at random points of the run, half as soon as publish has
//! written its first new file under `published/`. After every kill the published
//! repository verifies, as a client holding the first root sees it, at exactly the old
//! version or exactly the new one, and running publish again completes the change. The
//! test asserts that kills did land mid-write: a test of crash safety whose kills all
//! land before or after the writes proves nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg(unix)]

mod common;

use std::path::Path;
use std::time::Instant;

use common::{copy_dir, describe_output, Delays, Workspace};
use tuf_core::repository::{audit_repository, AuditOptions, DirectorySource};

const RELEASES: usize = 300;
const KILLS: usize = 24;

/// (timestamp version, root version) of the published repository, after checking that a
/// client holding the first root accepts all of it.
fn published_state(repo: &Path) -> (u64, u64) {
    let metadata = repo.join("published/metadata");
    let root = std::fs::read(metadata.join("1.root.json")).unwrap();
    let mut options = AuditOptions::new(chrono::Utc::now());
    options.targets_dir = Some(repo.join("published/targets"));
    let report = audit_repository(&DirectorySource::new(&metadata), &root, &options, &());
    assert!(report.is_ok(), "{:#?}", report.problems);
    (
        report.timestamp_version.unwrap(),
        report.root_version.unwrap(),
    )
}

/// How many files are under `dir`, recursively.
fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => count_files(&entry.path()),
            _ => 1,
        })
        .sum()
}

#[test]
fn publish_killed_at_random_points_leaves_the_old_or_the_new_repository() {
    let ws = Workspace::new();
    ws.key("online-2");
    ws.init_and_publish(8);
    assert_eq!(published_state(&ws.path("repo")), (1, 1));

    // The change: many releases across the bins, and a root that replaces the timestamp
    // key (the case where N.root.json and timestamp.json must switch together).
    let tarballs: Vec<String> = (0..RELEASES)
        .map(|i| ws.tarball(&format!("crate{i}"), "1.0.0"))
        .collect();
    let mut add = vec!["release", "add"];
    add.extend(tarballs.iter().map(String::as_str));
    ws.ok("repo", &add);
    ws.ok(
        "repo",
        &["key", "add", "--role", "timestamp", &ws.public("online-2")],
    );
    let old_online = ws.json("repo", &["key", "id", &ws.public("online")]);
    ws.ok(
        "repo",
        &[
            "key",
            "remove",
            "--role",
            "timestamp",
            old_online["keyid"].as_str().unwrap(),
        ],
    );
    ws.ok("repo", &["sign", "--yes", "--key", &ws.pem("root")]);
    let template = ws.path("template");
    copy_dir(&ws.path("repo"), &template);
    let files_before = count_files(&template.join("published"));

    let publish_args = |repo: &str| {
        let mut command = ws.command(repo);
        command.args([
            "publish",
            "--online-key",
            &ws.pem("online"),
            "--online-key",
            &ws.pem("online-2"),
        ]);
        command
    };
    // How long an uninterrupted publish takes here.
    copy_dir(&template, &ws.path("timed"));
    let started = Instant::now();
    let output = publish_args("timed").output().unwrap();
    let full = started.elapsed();
    assert!(output.status.success(), "{}", describe_output(&output));
    assert_eq!(published_state(&ws.path("timed")), (2, 2));

    let mut delays = Delays::from_env();
    let seed = delays.seed();
    eprintln!("crash test: seed {seed}, an uninterrupted publish takes {full:?}");
    let (mut old, mut new, mut interrupted_mid_write) = (0, 0, 0);
    for round in 0..KILLS {
        let name = format!("round-{round}");
        let repo = ws.path(&name);
        copy_dir(&template, &repo);
        let mut child = publish_args(&name)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let delay = if round % 2 == 0 {
            // Spread over the whole run, and some past its end (start-up varies).
            let delay = full.mul_f64(delays.next_fraction() * 1.5);
            std::thread::sleep(delay);
            delay
        } else {
            // As soon as the first new file is under published/ (or publish ended).
            let started = Instant::now();
            while count_files(&repo.join("published")) <= files_before
                && child.try_wait().unwrap().is_none()
            {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            started.elapsed()
        };
        child.kill().ok();
        child.wait().unwrap();
        let state = published_state(&repo);
        match state {
            (1, 1) => {
                old += 1;
                // Did it die after it had started to write?
                if count_files(&repo.join("published")) > files_before {
                    interrupted_mid_write += 1;
                }
            }
            (2, 2) => new += 1,
            other => {
                panic!("round {round} (seed {seed}, delay {delay:?}): published state {other:?}")
            }
        }
        // Running publish again finishes the change.
        let output = publish_args(&name).output().unwrap();
        assert!(
            output.status.success(),
            "round {round}: {}",
            describe_output(&output)
        );
        assert_eq!(
            published_state(&repo),
            (2, 2),
            "round {round} after resuming"
        );
        std::fs::remove_dir_all(&repo).unwrap();
    }
    eprintln!(
        "crash test: {KILLS} kills: {old} left the old version ({interrupted_mid_write} of them \
         mid-write), {new} the new one"
    );
    assert_eq!(old + new, KILLS);
    // Half the kills wait for the first write; most of those must land before the switch.
    assert!(
        interrupted_mid_write >= KILLS / 4,
        "only {interrupted_mid_write} of {KILLS} kills landed mid-write (seed {seed})"
    );
}
