//! The Rust half of `scripts/bench-load`: loads and verifies a top-level targets document
//! written by python-tuf, as a client does after downloading it.
//!
//! `cargo bench -p tuf-core --bench load -- DIR [RUNS]` reads `DIR/root.json` once, then
//! RUNS times reads `DIR/targets.json`, loads it (`Metadata::from_bytes`) and checks its
//! signature against the root (`verify_delegate`). It prints one JSON object: the seconds
//! of each run and the peak resident set size (`VmHWM` of /proc/self/status) in bytes,
//! the same fields `tests/python/load_bench.py load` prints for python-tuf.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Instant;

use tuf_core::{Metadata, Root, Targets};

/// Peak resident set size of this process, from /proc/self/status (Linux).
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn main() {
    // cargo bench passes `--bench`; skip flags.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let dir = PathBuf::from(args.first().expect("usage: load DIR [RUNS]"));
    let runs: usize = args.get(1).map_or(1, |r| r.parse().expect("RUNS"));
    let root = Metadata::<Root>::from_bytes(&std::fs::read(dir.join("root.json")).unwrap())
        .expect("root.json loads");
    let mut seconds = Vec::new();
    let mut entries = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let bytes = std::fs::read(dir.join("targets.json")).unwrap();
        let targets = Metadata::<Targets>::from_bytes_with_limit(&bytes, usize::MAX)
            .expect("targets.json loads");
        root.verify_delegate("targets", &targets)
            .expect("targets.json is signed by the root's targets key");
        seconds.push(start.elapsed().as_secs_f64());
        entries = targets.signed().targets.len();
        drop(targets);
        drop(bytes);
    }
    println!(
        "{{\"seconds\": {seconds:?}, \"peak_rss_bytes\": {}, \"entries\": {entries}}}",
        peak_rss_bytes()
    );
}
