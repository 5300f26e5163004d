//! `tuf-signer review` on known-good updates of real crates, fetched from the public
//! registry at test time (needs the network, as cargo reaches the registry here): each
//! scores at or below the default hold threshold, and the report says what changed.
//! The known-bad corpus is `tuf-core/tests/scan_corpus.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::Workspace;
use tuf_core::scan::DEFAULT_HOLD_ABOVE;

/// Consecutive releases of well-known crates: (release, previous version).
const GOOD_UPDATES: [(&str, &str); 8] = [
    ("itoa@1.0.11", "1.0.10"),
    ("memchr@2.7.4", "2.7.3"),
    ("serde@1.0.201", "1.0.200"),
    ("anyhow@1.0.87", "1.0.86"),
    ("once_cell@1.19.0", "1.18.0"),
    ("regex@1.10.6", "1.10.5"),
    ("tokio@1.38.0", "1.37.0"),
    ("rand@0.8.5", "0.8.4"),
];

/// `review --json`, retried when the network fails (the command retries each fetch too).
fn review(ws: &Workspace, args: &[&str]) -> serde_json::Value {
    let mut attempt = 0;
    loop {
        let mut all = vec!["--json", "review"];
        all.extend_from_slice(args);
        let output = ws.run("no-repository", &all);
        if output.status.success() {
            return serde_json::from_slice(&output.stdout).unwrap();
        }
        attempt += 1;
        assert!(
            attempt < 3,
            "the public registry is not reachable, or review failed: {}",
            common::describe_output(&output)
        );
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

#[test]
fn known_good_updates_of_real_crates_score_below_the_hold_threshold() {
    let ws = Workspace::new();
    let mut table = String::from("| release | against | score | flags |\n|---|---|---:|---|\n");
    for (release, previous) in GOOD_UPDATES {
        let report = review(&ws, &[release]);
        assert_eq!(report["against"], previous, "{report:#}");
        let score = report["score"].as_u64().unwrap();
        let flags: Vec<String> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| format!("{} ({})", f["message"].as_str().unwrap(), f["weight"]))
            .collect();
        table.push_str(&format!(
            "| {release} | {previous} | {score} | {} |\n",
            flags.join("; ")
        ));
        assert!(
            score <= u64::from(DEFAULT_HOLD_ABOVE),
            "{release} scores {score}: {report:#}"
        );
        assert_eq!(report["held"], false);
        assert!(!report["not_seen"].as_array().unwrap().is_empty());
    }
    eprintln!("{table}");

    // anyhow's build script changed: it is named, and --diff shows it.
    let report = review(&ws, &["anyhow@1.0.87", "--diff", "build.rs"]);
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["kind"] == "build-script-changed"),
        "{report:#}"
    );
    let diff = report["diff"].as_str().unwrap();
    assert!(
        diff.starts_with("--- anyhow-1.0.86/build.rs\n+++ anyhow-1.0.87/build.rs\n"),
        "{diff}"
    );

    // The text report: files with line counts, findings, the score, what is not seen.
    let output = ws.run("no-repository", &["review", "itoa@1.0.11"]);
    assert!(
        output.status.success(),
        "{}",
        common::describe_output(&output)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "itoa 1.0.11 against 1.0.10 (the newest earlier version upstream",
        "tarballs checked against the index line's cksum",
        "changed  src/lib.rs (+",
        "score 0 (is not above 40",
        "not seen by the scanner:",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }

    // --scan at import, and review --record: the score travels in the signed target.
    ws.init_and_publish(2);
    let imported = ws.json(
        "repo",
        &[
            "release",
            "import",
            "--scan",
            "anyhow@1.0.87",
            "memchr@2.7.4",
        ],
    );
    assert_eq!(imported["failed"], serde_json::json!([]), "{imported:#}");
    let staged: String = ["unclaimed-0", "unclaimed-1", "unclaimed-2", "unclaimed-3"]
        .iter()
        .filter_map(|bin| std::fs::read_to_string(ws.path(&format!("repo/staged/{bin}.json"))).ok())
        .collect();
    assert!(staged.contains("\"x-tuf-crates-scan\""), "{staged}");
    assert!(
        staged.contains("build.rs: the build script changed (10)"),
        "{staged}"
    );
    assert!(staged.contains("\"against\": \"2.7.3\""), "{staged}");
    ws.ok("repo", &["publish", "--online-key", &ws.pem("online")]);
    let recorded = ws.json("repo", &["review", "anyhow@1.0.87", "--record"]);
    assert_eq!(recorded["score"], 10);
    assert!(
        recorded.get("recorded_in").is_none(),
        "already recorded: {recorded:#}"
    );
    let output = ws.run("repo", &["review", "itoa@1.0.11", "--record"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("itoa 1.0.11 is not in the repository"),
        "{}",
        common::describe_output(&output)
    );
}

#[test]
fn release_add_scan_records_the_score_against_the_stored_previous_release() {
    let ws = Workspace::new();
    ws.init_and_publish(2);
    let first = ws.tarball("gadget", "1.0.0");
    ws.ok("repo", &["release", "add", &first]);
    ws.ok("repo", &["publish", "--online-key", &ws.pem("online")]);
    let second = tuf_crates_tests::crate_tarball::build_crate_tarball_with_files(
        "gadget",
        "1.1.0",
        &[],
        &[
            (
                "src/lib.rs",
                "pub fn version() -> &'static str { \"1.1.0\" }\n",
            ),
            (
                "build.rs",
                "fn main() { let _ = std::process::Command::new(\"curl\").status(); }\n",
            ),
        ],
    );
    let path = ws.path("gadget-1.1.0.crate");
    std::fs::write(&path, second).unwrap();
    let added = ws.json(
        "repo",
        &["release", "add", "--scan", path.to_str().unwrap()],
    );
    assert_eq!(added["added"][0]["scan_score"], 45, "{added:#}");
    let staged: String = ["unclaimed-0", "unclaimed-1", "unclaimed-2", "unclaimed-3"]
        .iter()
        .filter_map(|bin| std::fs::read_to_string(ws.path(&format!("repo/staged/{bin}.json"))).ok())
        .collect();
    assert!(staged.contains("\"against\": \"1.0.0\""), "{staged}");
    assert!(
        staged.contains("build.rs:1: the build script spawns processes (25)"),
        "{staged}"
    );
    ws.ok("repo", &["publish", "--online-key", &ws.pem("online")]);
    assert_eq!(ws.json("repo", &["verify"])["ok"], true);
}
