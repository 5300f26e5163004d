//! Benchmarks of loading and verifying a large top-level targets document.
//!
//! The fixture is built once, deterministically (fixed key seed, counter-based content):
//! 100,000 target entries with length, sha256 and sha512, some with a small `custom`
//! object, signed by one ed25519 key and written with `Metadata::to_bytes`. A root
//! delegating `targets` to that key makes verification real.
//!
//! Groups (each sets its throughput in bytes, so criterion prints MiB/s):
//! `parse_strict`, `canonicalize` (our canonical JSON of `signed`),
//! `canonicalize_olpc_cjson` (the olpc-cjson crate on the same value, as the baseline),
//! `load_typed`, `verify` (signature check with canonical bytes cached) and
//! `load_and_verify` (what a client does per download).
//!
//! Run with `cargo bench -p tuf-core --bench targets`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use serde::Serialize;
use serde_json::json;

use tuf_core::json::{self, Value};
use tuf_core::metadata::{parse_expires, TargetFile, DEFAULT_MAX_METADATA_BYTES};
use tuf_core::{Metadata, PrivateKey, Root, Signer, Targets};

/// Number of target entries in the benchmark document.
const ENTRIES: usize = 100_000;

/// Versions published per crate name (so 5,000 distinct names).
const VERSIONS_PER_NAME: usize = 20;

/// splitmix64: a tiny deterministic generator for the target lengths.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A crate name built from syllables, unique per `index`.
fn crate_name(index: usize) -> String {
    const SYLLABLES: [&str; 24] = [
        "se", "rd", "to", "ki", "ra", "nd", "hy", "pe", "ur", "lo", "ga", "mi", "co", "re", "tu",
        "fa", "bi", "no", "x", "wa", "le", "sy", "pa", "th",
    ];
    let mut name = String::new();
    let mut rest = index;
    loop {
        name.push_str(SYLLABLES[rest % SYLLABLES.len()]);
        rest /= SYLLABLES.len();
        if rest == 0 {
            break;
        }
    }
    // Keep every name at least four characters long, then make it unique.
    while name.len() < 4 {
        name.push_str("rs");
    }
    if index.is_multiple_of(3) {
        name.push_str("-derive");
    } else if index.is_multiple_of(7) {
        name.push_str("_core");
    }
    name
}

/// The crates.io layout: `crates/ab/cd/name-version.crate`.
fn target_path(name: &str, version: &str) -> String {
    format!(
        "crates/{}/{}/{name}-{version}.crate",
        &name[..2],
        &name[2..4]
    )
}

/// The fixture shared by every group.
struct Fixture {
    /// The document as `Metadata::to_bytes` writes it.
    file: Vec<u8>,
    /// The strictly parsed document.
    value: Value,
    /// A root delegating `targets` to the signing key.
    root: Metadata<Root>,
    /// The loaded document (canonical bytes cached).
    loaded: Metadata<Targets>,
    /// Our canonical bytes of `signed`.
    canonical: Vec<u8>,
    /// olpc-cjson's canonical bytes of `signed`.
    olpc: Vec<u8>,
}

fn ed25519_key_from_seed(seed: [u8; 32]) -> PrivateKey {
    // PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410).
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    PrivateKey::from_pkcs8_der(&der).expect("fixed ed25519 key")
}

fn olpc_canonical(value: &Value, out: &mut Vec<u8>) {
    let mut serializer =
        serde_json::Serializer::with_formatter(out, olpc_cjson::CanonicalFormatter::new());
    value.serialize(&mut serializer).expect("olpc-cjson");
}

fn build_fixture() -> Fixture {
    let expires = parse_expires("2030-01-01T00:00:00Z").expect("date");
    let key = ed25519_key_from_seed([7u8; 32]);
    let mut rng = SplitMix(0x7475_662d_6372_6174);

    let mut targets = Targets::new(expires);
    targets.version = 4_217;
    for i in 0..ENTRIES {
        let name = crate_name(i / VERSIONS_PER_NAME);
        let v = i % VERSIONS_PER_NAME;
        let version = format!("{}.{}.{}", v / 10, v % 10, (i * 7) % 13);
        let path = target_path(&name, &version);
        // Hashes of counter-based content: deterministic and realistic-looking digests.
        let mut entry = TargetFile::from_bytes(path.as_bytes());
        entry.length = 2_000 + rng.next() % 400_000;
        if i % 10 == 0 {
            // A small `custom` object on one entry in ten. Its non-ASCII text is already
            // in NFC: olpc-cjson NFC-normalises every string (securesystemslib and we do
            // not), so NFD text would make the two canonical forms differ.
            entry.unrecognized_fields.insert(
                "custom".to_owned(),
                json!({
                    "yanked": i % 40 == 0,
                    "rust_version": "1.70",
                    "features": ["std", "derive", "alloc"],
                    "publisher": if i % 20 == 0 { "Zoë Ångström" } else { "crates-io" },
                }),
            );
        }
        targets.targets.insert(path, entry);
    }
    assert_eq!(
        targets.targets.len(),
        ENTRIES,
        "target paths must be unique"
    );

    let mut metadata = Metadata::new(targets);
    metadata.sign(&key, false).expect("sign");
    let file = metadata.to_bytes().expect("to_bytes");

    let mut root = Root::new(expires);
    root.keys
        .insert(key.keyid().clone(), key.public_key().clone());
    root.roles
        .get_mut("targets")
        .expect("targets role")
        .keyids
        .push(key.keyid().clone());
    let root = Metadata::new(root);

    let value = json::parse_strict(&file, DEFAULT_MAX_METADATA_BYTES).expect("parse");
    let loaded = Metadata::<Targets>::from_bytes(&file).expect("load");
    root.verify_delegate("targets", &loaded).expect("verifies");

    // The two canonical forms agree on this document. They do not agree on every
    // document: olpc-cjson NFC-normalises strings (keys included, so keys equal after
    // normalisation collapse into one) and sorts keys by their serialised bytes, quote
    // and escapes included (so `"a b"` sorts before `"a"`, and `a"` after `a#`).
    // Ours matches securesystemslib in those cases. Target paths here are plain ASCII
    // with no space, `!`, `"` or control character, so neither difference arises.
    let signed = &value["signed"];
    let canonical = json::to_canonical(signed).expect("canonical");
    let mut olpc = Vec::new();
    olpc_canonical(signed, &mut olpc);
    if canonical != olpc {
        let at = canonical
            .iter()
            .zip(&olpc)
            .position(|(a, b)| a != b)
            .unwrap_or(canonical.len().min(olpc.len()));
        let from = at.saturating_sub(60);
        panic!(
            "canonical JSON differs from olpc-cjson at byte {at}:\n ours: {}\n olpc: {}",
            String::from_utf8_lossy(&canonical[from..(at + 60).min(canonical.len())]),
            String::from_utf8_lossy(&olpc[from..(at + 60).min(olpc.len())]),
        );
    }
    assert_eq!(
        canonical,
        loaded.signed_bytes().expect("signed bytes"),
        "loaded metadata caches the canonical bytes of `signed`"
    );

    println!(
        "fixture: {ENTRIES} targets, file {} bytes, canonical signed {} bytes",
        file.len(),
        canonical.len()
    );
    Fixture {
        file,
        value,
        root,
        loaded,
        canonical,
        olpc,
    }
}

/// Ten flat samples per group: one iteration of the slow groups takes up to a second, and
/// the whole run should stay within a few minutes on two cores.
fn configure(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    bytes: usize,
    measurement_secs: u64,
) {
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(measurement_secs))
        .throughput(Throughput::Bytes(bytes as u64));
}

fn bench_targets(c: &mut Criterion) {
    let fx = build_fixture();
    let signed = &fx.value["signed"];

    let mut group = c.benchmark_group("parse_strict");
    configure(&mut group, fx.file.len(), 5);
    group.bench_function("targets_100k", |b| {
        b.iter(|| json::parse_strict(black_box(&fx.file), DEFAULT_MAX_METADATA_BYTES).unwrap());
    });
    group.finish();

    let mut group = c.benchmark_group("canonicalize");
    configure(&mut group, fx.canonical.len(), 5);
    let mut out = Vec::with_capacity(fx.canonical.len());
    group.bench_function("targets_100k", |b| {
        b.iter(|| {
            out.clear();
            json::write_canonical(black_box(signed), &mut out).unwrap();
            black_box(out.len())
        });
    });
    group.finish();

    let mut group = c.benchmark_group("canonicalize_olpc_cjson");
    configure(&mut group, fx.olpc.len(), 12);
    let mut out = Vec::with_capacity(fx.olpc.len());
    group.bench_function("targets_100k", |b| {
        b.iter(|| {
            out.clear();
            olpc_canonical(black_box(signed), &mut out);
            black_box(out.len())
        });
    });
    group.finish();

    let mut group = c.benchmark_group("load_typed");
    configure(&mut group, fx.file.len(), 8);
    group.bench_function("targets_100k", |b| {
        b.iter(|| Metadata::<Targets>::from_bytes(black_box(&fx.file)).unwrap());
    });
    group.finish();

    let mut group = c.benchmark_group("verify");
    configure(&mut group, fx.canonical.len(), 5);
    group.bench_function("targets_100k", |b| {
        b.iter(|| {
            fx.root
                .verify_delegate("targets", black_box(&fx.loaded))
                .unwrap()
        });
    });
    group.finish();

    let mut group = c.benchmark_group("load_and_verify");
    configure(&mut group, fx.file.len(), 9);
    group.bench_function("targets_100k", |b| {
        b.iter(|| {
            let loaded = Metadata::<Targets>::from_bytes(black_box(&fx.file)).unwrap();
            fx.root.verify_delegate("targets", &loaded).unwrap();
            loaded
        });
    });
    group.finish();
}

/// The benchmark group (written out instead of `criterion_group!`, whose generated function
/// has no documentation).
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    bench_targets(&mut criterion);
}

criterion_main!(benches);
