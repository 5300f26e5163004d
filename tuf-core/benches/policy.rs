//! The trust policy's judge on a large dependency graph: N crates (default 2,000), three
//! versions each, crate `i` depending on up to 6 earlier crates (`^1`), every release
//! attested by one of 20 developers, of whom the policy trusts 19 (so some subgraphs are
//! refused, and the judge walks to the reason).
//!
//! `cargo bench -p tuf-core --bench policy -- [CRATES]`
//!
//! Prints: judging the top crate cold (the whole graph it pulls in, one judge), judging
//! every release of every crate with one judge (each verdict computed once), and a warm
//! verdict (already known), each the median of 5 runs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use tuf_core::attestation::AttestationKind;
use tuf_core::index_entry::{IndexDependency, IndexEntry};
use tuf_core::policy::file::Policy;
use tuf_core::policy::judge::{CheckedAttestation, Judge, Release, ReleaseSource};

struct Graph(HashMap<String, Vec<Release>>);

impl ReleaseSource for Graph {
    fn releases(&self, name: &str) -> Result<Vec<Release>, String> {
        Ok(self.0.get(name).cloned().unwrap_or_default())
    }
}

fn keyid(developer: usize) -> String {
    format!("{developer:064x}")
}

/// Crate `i`'s dependencies: up to 6 earlier crates, chosen by a fixed recurrence.
fn dependencies(i: usize) -> Vec<IndexDependency> {
    let mut deps = Vec::new();
    let mut x = i.wrapping_mul(2_654_435_761) | 1;
    for _ in 0..6.min(i) {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let dep = (x >> 33) % i;
        let line = format!(
            r#"{{"name":"x","vers":"1.0.0","deps":[{{"name":"c{dep}","req":"^1","features":[],"optional":false,"default_features":true,"target":null,"kind":"normal"}}],"cksum":"{}","features":{{}},"yanked":false}}"#,
            "0".repeat(64)
        );
        deps.extend(IndexEntry::parse_line(line.as_bytes()).unwrap().deps);
    }
    deps.sort_by(|a, b| a.name.cmp(&b.name));
    deps.dedup_by(|a, b| a.name == b.name);
    deps
}

fn graph(crates: usize) -> Graph {
    let mut map = HashMap::new();
    for i in 0..crates {
        let releases = (0..3)
            .map(|v| Release {
                version: semver::Version::new(1, v, 0),
                attestations: vec![CheckedAttestation {
                    label: format!("dev{}", (i + v as usize) % 20),
                    keyid: keyid((i + v as usize) % 20),
                    kind: AttestationKind::Release,
                    invalid: None,
                }],
                dependencies: Some(dependencies(i)),
                scan: None,
            })
            .collect();
        map.insert(format!("c{i}"), releases);
    }
    Graph(map)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let crates: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let graph = graph(crates);
    let mut text = String::new();
    for developer in 0..19 {
        text.push_str(&format!(
            "[[developer]]\nlabel = \"dev{developer}\"\nkey = \"{}\"\n",
            keyid(developer)
        ));
    }
    let policy = Policy::from_text(
        Path::new("bench-policy.toml"),
        &text,
        &tuf_core::policy::file::NoUrlImports,
    )
    .unwrap();
    let top = format!("c{}", crates - 1);
    let top_release = graph.0[&top][2].clone();

    let mut cold = Vec::new();
    let mut trusted_top = false;
    for _ in 0..5 {
        let started = Instant::now();
        let mut judge = Judge::new(&policy, &graph);
        trusted_top = judge.judge(&top, &top_release).is_ok();
        cold.push(started.elapsed());
    }
    let mut all = Vec::new();
    let mut trusted = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let mut judge = Judge::new(&policy, &graph);
        trusted = 0;
        for (name, releases) in &graph.0 {
            for release in releases {
                trusted += usize::from(judge.judge(name, release).is_ok());
            }
        }
        all.push(started.elapsed());
    }
    let mut judge = Judge::new(&policy, &graph);
    judge.judge(&top, &top_release).ok();
    let mut warm = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        for _ in 0..1000 {
            std::hint::black_box(judge.judge(&top, &top_release).is_ok());
        }
        warm.push(started.elapsed() / 1000);
    }
    println!(
        "crates: {crates} (3 releases each, up to 6 dependencies), developers: 20 (19 trusted)"
    );
    println!(
        "judge the top crate cold: {:.2?} (trusted: {trusted_top})",
        median(cold)
    );
    println!(
        "judge all {} releases with one judge: {:.2?} ({trusted} trusted)",
        crates * 3,
        median(all)
    );
    println!("a verdict already known: {:.2?}", median(warm));
}
