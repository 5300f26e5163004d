//! The trust policy file (TOML: developers, rules, exceptions, imports' tables): a
//! policy or an error naming the line, never a panic.
#![forbid(unsafe_code)]

use std::path::Path;

use tuf_core::policy::file::Policy;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = Policy::own_from_text(Path::new("policy.toml"), text);
        }
    });
}
