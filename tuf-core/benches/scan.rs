//! The release scanner on a release pair of about 1 MB of Rust each: the previous
//! release, and a new one in which a tenth of the files changed (a few lines each, one
//! gaining a process spawn). Prints the median, min and max of 20 scans.
//!
//! `cargo bench -p tuf-core --features scan --bench scan -- [KILOBYTES]` (default 1024).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::time::Instant;

use tuf_core::crate_archive::{CrateFiles, ReleaseId};

/// One source file of about 5 KB: functions with loops, matches and a little unsafe.
fn source(file: usize, extra: &str) -> String {
    let mut text = format!("//! Module {file}.\nuse std::collections::HashMap;\n\n");
    for f in 0..25 {
        text.push_str(&format!(
            "/// Function {f}.\npub fn f{f}(input: &[u8], map: &mut HashMap<u32, u32>) -> u64 {{\n    \
             let mut total = 0u64;\n    for (i, b) in input.iter().enumerate() {{\n        \
             match b % 3 {{\n            0 => total += u64::from(*b),\n            \
             1 => {{ map.insert(i as u32, u32::from(*b)); }}\n            _ => total ^= {f},\n        }}\n    }}\n    \
             total\n}}\n\n"
        ));
    }
    text.push_str("pub fn raw(p: *const u8) -> u8 { unsafe { *p } }\n");
    text.push_str(extra);
    text
}

fn release(version: &str, kilobytes: usize, changed: bool) -> CrateFiles<Vec<u8>> {
    let mut files = BTreeMap::new();
    files.insert(
        "Cargo.toml".to_owned(),
        format!("[package]\nname = \"bench\"\nversion = \"{version}\"\n").into_bytes(),
    );
    let count = kilobytes / 5;
    for file in 0..count {
        let extra = match (changed, file % 10) {
            (true, 0) if file == 0 => {
                "pub fn run() { let _ = std::process::Command::new(\"x\"); }\n"
            }
            (true, 0) => "pub fn added() -> u32 { 7 }\n",
            _ => "",
        };
        files.insert(format!("src/m{file}.rs"), source(file, extra).into_bytes());
    }
    CrateFiles {
        release: ReleaseId {
            name: "bench".into(),
            version: version.into(),
        },
        files,
    }
}

fn main() {
    let kilobytes: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    let old = release("1.0.0", kilobytes, false);
    let new = release("1.0.1", kilobytes, true);
    let bytes: usize = new.files.values().map(Vec::len).sum();
    let mut times = Vec::new();
    let mut score = 0;
    for _ in 0..20 {
        let started = Instant::now();
        let report = tuf_core::scan::scan(Some(&old), &new);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        score = report.score;
    }
    times.sort_by(f64::total_cmp);
    println!(
        "scan of a release pair of {} files, {:.2} MB each (score {score}): median {:.1} ms, min {:.1} ms, max {:.1} ms",
        new.files.len(),
        bytes as f64 / 1e6,
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
}
