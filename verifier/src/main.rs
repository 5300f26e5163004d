//! `tuf-signer`: placeholder entry point (commands arrive with the signer issue).
#![forbid(unsafe_code)]
fn main() {}
