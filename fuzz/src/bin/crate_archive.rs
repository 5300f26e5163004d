//! The `.crate` reader: gzip, tar, the manifest, with size and count caps. Untrusted
//! tarballs from upstream get a release or a typed error, never a panic.
#![forbid(unsafe_code)]

use tuf_core::crate_archive::{parse_crate_release, ArchiveLimits};

fn main() {
    let limits = ArchiveLimits {
        // Small caps, so the fuzzer reaches them.
        max_tarball_bytes: 1 << 20,
        ..ArchiveLimits::default()
    };
    afl::fuzz!(|data: &[u8]| {
        let _ = parse_crate_release("fuzzed-0.1.0.crate", data.to_vec(), &limits);
    });
}
