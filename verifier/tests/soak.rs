//! The soak: two proxy replicas sharing state in a real S3 server (moto), driven by many
//! concurrent cargo-like clients for a bounded time, all on 127.0.0.1, while upstream
//! injects faults (stalls before and during the body, truncated bodies, 500s, bytes
//! beyond the signed length, a tarball swapped for other bytes, unsigned releases) and,
//! near the end, the TUF repository attempts a rollback.
//!
//! It asserts that no byte nobody signed is ever served (every tarball answered 200 has
//! the signed sha256, every index line the signed cksum), that every answer other than a
//! 200 carries its reason, that the caches stay within their configured budgets, and
//! that after the rollback attempt both replicas refuse everything, saying why.
//!
//! It reports requests, answers by kind, p50 and p99 latency and the replicas' peak
//! memory. `TUF_CRATES_SOAK_SECONDS` (default 20, what CI runs) and
//! `TUF_CRATES_SOAK_CLIENTS` (default 64) size it; `TUF_CRATES_SOAK_REPORT=FILE` also
//! writes the report as JSON. `scripts/soak SECONDS` runs the long version by hand
//! (BENCHMARKS.md, "Soak").
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::{http_client, index_path, Fault, Proxy, Registry, S3Server, Upstream};

/// The budgets the replicas run with: small, so that eviction happens under load.
const TARBALL_MEMORY: u64 = 1024;
const TARBALL_CACHE: u64 = 2 * 1024;
const INDEX_CACHE: u64 = 64 * 1024;
/// Peak resident memory allowed per replica: the budgets above (index_cache_size counts
/// twice: filtered answers and signed index files) plus room for the runtime, 64
/// connections' buffers and the trusted metadata.
const PEAK_RSS_LIMIT: u64 = 160 * 1024 * 1024;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        })
        .unwrap_or(default)
}

/// How one answer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Ok,
    NotModified,
    NotFound,
    Refused,
    UpstreamFailed,
    Unavailable,
    OtherStatus,
    Transport,
}

#[derive(Default)]
struct Record {
    kinds: BTreeMap<String, u64>,
    millis: Vec<f64>,
    violations: Vec<String>,
    /// Download refusals and upstream failures by reason (`reason_class`).
    reasons: BTreeMap<String, u64>,
}

impl Record {
    fn add(&mut self, kind: Kind, millis: f64) {
        *self.kinds.entry(format!("{kind:?}")).or_default() += 1;
        self.millis.push(millis);
    }
}

fn kind_of(status: u16) -> Kind {
    match status {
        200 => Kind::Ok,
        304 => Kind::NotModified,
        404 => Kind::NotFound,
        403 => Kind::Refused,
        502 => Kind::UpstreamFailed,
        503 => Kind::Unavailable,
        _ => Kind::OtherStatus,
    }
}

/// The peak resident set size of process `pid` (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// One client: what cargo does for a dependency (the index file, then a tarball it
/// lists), plus downloads of releases nobody signed, against `proxy`.
fn client_loop(
    proxy: &str,
    crates: &[String],
    signed: &HashMap<(String, String), String>,
    unsigned: &[(String, String)],
    stop: &AtomicBool,
    record: &Mutex<Record>,
) {
    let client = http_client(Some(Duration::from_secs(30)));
    let mut local = Record::default();
    let mut violation = |what: String| local.violations.push(what);
    let mut answers = Vec::new();
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    while !stop.load(Ordering::Relaxed) {
        let name = &crates[fastrand::usize(..crates.len())];
        let mut ask = |url: String| -> Option<(u16, Vec<u8>)> {
            let started = Instant::now();
            let result = client.get(&url).send().and_then(|r| {
                let status = r.status().as_u16();
                r.bytes().map(|b| (status, b.to_vec()))
            });
            let millis = started.elapsed().as_secs_f64() * 1000.0;
            match result {
                Ok((status, body)) => {
                    answers.push((kind_of(status), millis));
                    Some((status, body))
                }
                Err(_) => {
                    answers.push((Kind::Transport, millis));
                    None
                }
            }
        };
        let index_url = format!("{proxy}/index/{}", index_path(name));
        let Some((status, body)) = ask(index_url.clone()) else {
            continue;
        };
        let mut versions = Vec::new();
        if status == 200 {
            for line in String::from_utf8_lossy(&body).lines() {
                let entry: serde_json::Value = match serde_json::from_str(line) {
                    Ok(entry) => entry,
                    Err(e) => {
                        violation(format!(
                            "{index_url}: a line that is not JSON ({e}): {line}"
                        ));
                        continue;
                    }
                };
                let version = entry["vers"].as_str().unwrap_or_default().to_owned();
                let cksum = entry["cksum"].as_str().unwrap_or_default();
                match signed.get(&(name.clone(), version.clone())) {
                    Some(sha256) if sha256 == cksum => versions.push(version),
                    Some(_) => violation(format!(
                        "{index_url}: {version} served with a cksum not signed"
                    )),
                    None => violation(format!("{index_url}: {version} served, never signed")),
                }
            }
        } else if status != 304 && !String::from_utf8_lossy(&body).contains("tuf-verifier") {
            violation(format!(
                "{index_url}: {status} without a reason: {:?}",
                String::from_utf8_lossy(&body)
            ));
        }
        // A version it listed, or now and then one nobody signed.
        let (version, expect_refusal) = if versions.is_empty() || fastrand::u8(..8) == 0 {
            let (n, v) = &unsigned[fastrand::usize(..unsigned.len())];
            if n != name {
                continue;
            }
            (v.clone(), true)
        } else {
            (versions[fastrand::usize(..versions.len())].clone(), false)
        };
        let url = format!("{proxy}/api/v1/crates/{name}/{version}/download");
        let Some((status, body)) = ask(url.clone()) else {
            continue;
        };
        if status == 200 {
            let digest = hex::encode(Sha256::digest(&body));
            if signed.get(&(name.clone(), version.clone())) != Some(&digest) {
                violation(format!(
                    "{url}: 200 with {} bytes that are not the signed tarball{}",
                    body.len(),
                    if expect_refusal {
                        " (a release nobody signed)"
                    } else {
                        ""
                    }
                ));
            }
        } else {
            // A refusal names the release and says why; so does an upstream failure.
            let body = String::from_utf8_lossy(&body);
            let prefix = match status {
                403 => format!("tuf-verifier refused {name} {version}: "),
                502 => format!("tuf-verifier could not fetch {name} {version}: "),
                _ => String::new(),
            };
            match body.strip_prefix(prefix.as_str()).map(str::trim) {
                Some(reason) if !prefix.is_empty() && !reason.is_empty() => {
                    *reasons.entry(reason_class(status, reason)).or_default() += 1;
                }
                _ => violation(format!("{url}: {status} without its reason: {body:?}")),
            }
            if expect_refusal && status != 403 {
                violation(format!("{url}: a release nobody signed answered {status}"));
            }
        }
    }
    let mut record = record.lock().unwrap();
    for (kind, millis) in answers {
        record.add(kind, millis);
    }
    record.violations.append(&mut local.violations);
    for (reason, count) in reasons {
        *record.reasons.entry(reason).or_default() += count;
    }
}

/// A refusal's reason without the parts that vary (digests, lengths, addresses): its
/// status and first words, for the report's tally.
fn reason_class(status: u16, reason: &str) -> String {
    let words: Vec<&str> = reason
        .split_whitespace()
        .take_while(|word| !word.chars().any(|c| c.is_ascii_digit()))
        .take(8)
        .collect();
    format!("{status} {}", words.join(" "))
}

/// Upstream's faults, one at a time on a random crate's tarballs or index file, each
/// for a few requests.
fn inject_faults(upstream: &Upstream, crates: &[String], stop: &AtomicBool) -> u64 {
    let mut injected = 0;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(150));
        let name = &crates[fastrand::usize(..crates.len())];
        let prefix = if fastrand::bool() {
            format!("/dl/{name}/")
        } else {
            format!("/index/{}", index_path(name))
        };
        let fault = match fastrand::u8(..6) {
            // Longer than upstream_timeout (3 s): a stall the proxy gives up on.
            0 => Fault::Delay(Duration::from_secs(4)),
            1 => Fault::DelayBody(Duration::from_secs(4)),
            2 => Fault::Truncate,
            3 => Fault::Status(500),
            4 => Fault::ExtraBytes(64),
            _ => Fault::Delay(Duration::from_millis(300)),
        };
        upstream.set_fault_times(&prefix, fault, 1 + fastrand::usize(..4));
        injected += 1;
    }
    upstream.clear_faults();
    injected
}

#[test]
fn soak_two_replicas_under_upstream_faults_serve_only_signed_bytes() {
    let seconds = env_number("TUF_CRATES_SOAK_SECONDS", 20);
    let clients = env_number("TUF_CRATES_SOAK_CLIENTS", 64);
    let mut registry = Registry::new();
    let mut crates = Vec::new();
    let mut signed = HashMap::new();
    for n in 0..6 {
        let name = format!("soakcrate{n}");
        for patch in 0..3 {
            let version = format!("0.1.{patch}");
            registry.publish(
                &name,
                &version,
                &[],
                &format!("pub fn v() -> u32 {{ {n}{patch} }}\n"),
            );
            signed.insert(
                (name.clone(), version.clone()),
                registry.signed_sha256(&name, &version),
            );
        }
        crates.push(name);
    }
    // Upstream serves a release nobody signed, and a signed release whose tarball was
    // swapped for other bytes after signing.
    registry.publish_unsigned("soakcrate0", "0.2.0", &[], "pub fn unsigned() {}\n");
    // Its index line stays signed: cargo is offered it, and the download must fail.
    registry.tamper_tarball("soakcrate1", "0.1.2");
    let tampered_sha256 = registry.signed_sha256("soakcrate1", "0.1.2");
    let unsigned = vec![("soakcrate0".to_owned(), "0.2.0".to_owned())];
    let upstream = Upstream::start(&registry);
    let s3 = S3Server::start("tuf-crates-soak");
    let replica = || {
        Proxy::start_configured(&upstream, &registry.repo, |config| {
            config.extra = s3.config_lines("soak");
            config.extra.extend([
                format!("tarball_memory_size = {TARBALL_MEMORY}"),
                format!("tarball_cache_size = {TARBALL_CACHE}"),
                format!("index_cache_size = {INDEX_CACHE}"),
            ]);
            config.env = s3.env();
        })
    };
    let (a, b) = (replica(), replica());
    let urls = [a.url().to_owned(), b.url().to_owned()];

    let stop = AtomicBool::new(false);
    let record = Mutex::new(Record::default());
    let started = Instant::now();
    let mut injected = 0;
    let mut swapped: Vec<String> = Vec::new();
    std::thread::scope(|scope| {
        for i in 0..clients {
            let (url, crates, signed, unsigned, stop, record) = (
                &urls[i as usize % 2],
                &crates,
                &signed,
                &unsigned,
                &stop,
                &record,
            );
            scope.spawn(move || client_loop(url, crates, signed, unsigned, stop, record));
        }
        let faults = scope.spawn(|| inject_faults(&upstream, &crates, &stop));
        // Someone with write access to the bucket swaps tarball objects now and then.
        let swaps = scope.spawn(|| {
            // Not the tampered release: its key must stay absent (asserted below).
            let releases: Vec<&String> = signed
                .values()
                .filter(|sha256| **sha256 != tampered_sha256)
                .collect();
            let mut swapped = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(700));
                let sha256 = releases[fastrand::usize(..releases.len())];
                s3.put(
                    &format!("soak/tarballs/{sha256}"),
                    b"not the signed tarball",
                );
                swapped.push(sha256.clone());
            }
            swapped
        });
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
        injected = faults.join().unwrap();
        swapped = swaps.join().unwrap();
    });
    let elapsed = started.elapsed();

    // The rollback attempt: both replicas refuse everything after it, saying why.
    registry.repo.rollback_snapshot();
    for proxy in [&a, &b] {
        let reason = proxy.wait_for_health(503);
        assert!(reason.contains("(rollback)"), "{reason}");
        let response = http_client(Some(Duration::from_secs(10)))
            .get(format!(
                "{}/api/v1/crates/soakcrate2/0.1.0/download",
                proxy.url()
            ))
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().unwrap();
        assert!(
            status == 403 && body.contains("(rollback)"),
            "{status} {body}"
        );
    }

    // Budgets: what each cache holds, and the process's peak memory.
    let mut peaks = Vec::new();
    for proxy in [&a, &b] {
        let status = proxy.status();
        for part in [
            "tarball_memory",
            "cache",
            "index_cache",
            "signed_index_files",
        ] {
            let (bytes, budget) = (
                status[part]["bytes"].as_u64().unwrap(),
                status[part]["budget_bytes"].as_u64().unwrap(),
            );
            assert!(
                bytes <= budget,
                "{part}: {bytes} bytes over its budget of {budget}"
            );
        }
        let peak = peak_rss(proxy.pid());
        assert!(
            peak <= PEAK_RSS_LIMIT,
            "peak RSS {peak} bytes over {PEAK_RSS_LIMIT}"
        );
        peaks.push(peak);
    }
    // Nothing unverified reached the bucket from a replica: every tarball object is the
    // bytes its key (the signed sha256) names, but for the ones swapped behind the
    // replicas' backs and not read since; and the swapped release upstream has none.
    let objects: Vec<String> = s3
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("soak/tarballs/"))
        .collect();
    assert!(!objects.is_empty());
    for key in &objects {
        let bytes = s3.get(key).unwrap();
        let named = format!("soak/tarballs/{}", hex::encode(Sha256::digest(&bytes)));
        if named != *key {
            assert_eq!(bytes, b"not the signed tarball", "{key}");
            assert!(
                swapped.iter().any(|sha256| key.ends_with(sha256.as_str())),
                "{key}"
            );
        }
    }
    let refused_objects: u64 = [&a, &b]
        .iter()
        .map(|p| {
            p.status()["shared_state"]["tarballs_refused"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert!(!objects.contains(&format!("soak/tarballs/{tampered_sha256}")));
    assert!(
        upstream.requests_under("/dl/soakcrate1/0.1.2/") > 0,
        "the swapped tarball was never asked for"
    );

    // What the replicas counted, summed: where answers came from.
    let statuses = [a.status(), b.status()];
    let counted = |part: &str, field: &str| -> u64 {
        statuses
            .iter()
            .map(|status| status[part][field].as_u64().unwrap())
            .sum()
    };
    let replica_counters = serde_json::json!({
        "index_answered_fresh": counted("index", "answered_fresh"),
        "index_upstream_shared": counted("index", "upstream_shared"),
        "index_upstream_unavailable": counted("index", "upstream_unavailable"),
        "index_lines_from_signed_index": counted("index", "lines_from_signed_index"),
        "downloads_served_from_memory": counted("downloads", "served_from_memory"),
        "downloads_served_from_cache": counted("downloads", "served_from_cache"),
        "downloads_served_from_shared": counted("downloads", "served_from_shared"),
        "downloads_upstream_requests": counted("downloads", "upstream_requests"),
    });

    let mut record = record.into_inner().unwrap();
    record.millis.sort_by(f64::total_cmp);
    let requests = record.millis.len() as u64;
    let report = serde_json::json!({
        "seconds": elapsed.as_secs_f64(),
        "clients": clients,
        "replicas": 2,
        "requests": requests,
        "requests_per_second": requests as f64 / elapsed.as_secs_f64(),
        "answers": record.kinds,
        "download_reasons": record.reasons,
        "faults_injected": injected,
        "p50_ms": percentile(&record.millis, 50.0),
        "p99_ms": percentile(&record.millis, 99.0),
        "max_ms": record.millis.last().copied().unwrap_or(0.0),
        "peak_rss_bytes": peaks,
        "violations": record.violations.len(),
        "bucket_objects_swapped": swapped.len(),
        "bucket_objects_refused": refused_objects,
        "replica_counters": replica_counters,
    });
    eprintln!("soak report: {report:#}");
    if let Ok(path) = std::env::var("TUF_CRATES_SOAK_REPORT") {
        std::fs::write(path, format!("{report:#}\n")).unwrap();
    }
    assert!(
        record.violations.is_empty(),
        "{} violations, the first: {:#?}",
        record.violations.len(),
        &record.violations[..record.violations.len().min(10)]
    );
    // The run exercised what it claims to: served, refused and failed upstream answers.
    for kind in ["Ok", "Refused", "UpstreamFailed"] {
        assert!(
            record.kinds.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} answer in {:?}",
            record.kinds
        );
    }
}
