//! The proxy's index-line filter, compiled here from the verifier's own source
//! (`verifier/src/index_line.rs`): upstream's lines read as cargo reads them, and the
//! rule that keeps cargo on the proxy. Never a panic; and every line it would pass on
//! has, read again independently as plain JSON, only dependencies whose names are crate
//! names and whose registry is the proxy's own or on the operator's allowlist.
//!
//! Input: the first line is the allowlist (entries separated by whitespace, as many as
//! parse; an invalid list is an empty one), every later line an index line.
#![forbid(unsafe_code)]

#[path = "../../../verifier/src/index_line.rs"]
#[allow(dead_code)]
mod index_line;

use index_line::{IndexLine, RegistryAllowlist};
use serde_json::Value;

/// What a registry can call a crate, written out again here rather than taken from the
/// module under test.
fn is_crate_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let mut lines = data.split(|&b| b == b'\n');
        let entries: Vec<&str> = lines
            .next()
            .and_then(|first| std::str::from_utf8(first).ok())
            .map(|first| first.split_whitespace().collect())
            .unwrap_or_default();
        let allowed = RegistryAllowlist::parse(&entries).unwrap_or_default();
        for line in lines {
            let Some(parsed) = IndexLine::parse(line) else {
                continue;
            };
            if parsed.escape(&allowed).is_some() {
                continue;
            }
            // Passed on. serde_json's Value may refuse what the derive skipped over
            // (a number out of f64's range in a field nobody reads): nothing to compare.
            let Ok(value) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            let deps = value["deps"].as_array().expect("the derive required deps");
            for dep in deps {
                let name = dep["name"].as_str().expect("the derive required a name");
                let package = dep.get("package").and_then(Value::as_str).unwrap_or(name);
                assert!(
                    is_crate_name(name) && is_crate_name(package),
                    "passed on a dependency {name:?} (package {package:?}) that is not a crate name"
                );
                match dep.get("registry") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(registry)) => assert!(
                        allowed.allows(registry),
                        "passed on a dependency from {registry:?}, not on the allowlist"
                    ),
                    Some(other) => panic!("the derive read a registry of {other}"),
                }
            }
        }
    });
}
