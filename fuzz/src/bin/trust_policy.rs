//! The trust policy file (TOML: developers, rules, exceptions, imports' tables) and the
//! lists it imports by URL, which come from a web server: a policy or an error naming
//! the line, never a panic.
//!
//! Input: the policy, then optionally a 0xFF byte (never in UTF-8 text) and the bytes
//! every URL import is answered with.
#![forbid(unsafe_code)]

use std::path::Path;

use tuf_core::client::FetchError;
use tuf_core::policy::file::{ImportFetcher, Policy, UrlImport};

/// Answers every URL import with the same fuzzed bytes.
struct Answer<'a>(&'a [u8]);

impl ImportFetcher for Answer<'_> {
    fn fetch_import(&self, _import: &UrlImport<'_>) -> Result<Vec<u8>, FetchError> {
        Ok(self.0.to_vec())
    }
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let (policy, imported) = match data.iter().position(|&b| b == 0xFF) {
            Some(at) => (&data[..at], &data[at + 1..]),
            None => (data, &[][..]),
        };
        if let Ok(text) = std::str::from_utf8(policy) {
            let path = Path::new("policy.toml");
            let _ = Policy::own_from_text(path, text);
            // File imports would read this machine's files (a FIFO would hang the run):
            // only policies that cannot name one follow their imports.
            if !text.contains("file") {
                let _ = Policy::from_text(path, text, &Answer(imported));
            }
        }
    });
}
