//! The trust policy: whom the user trusts (spec/trust-policy.md). The file
//! ([`file::Policy`]) names trusted developers by key, exceptions and the rule's
//! settings; the judge ([`judge::Judge`]) decides, with no I/O, whether a release is
//! trusted under it and says why not in words cargo shows the user; the proxy applies the
//! policy in force ([`enforce`]) to index answers and downloads.

pub mod cli;
pub mod enforce;
pub mod file;
pub mod judge;
