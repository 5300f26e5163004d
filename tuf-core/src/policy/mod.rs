//! The trust policy: whom the user trusts (spec/trust-policy.md), with no I/O but reading
//! the policy files. The file ([`file::Policy`]) names trusted developers by key,
//! exceptions and the rule's settings; the judge ([`judge::Judge`]) decides whether a
//! release is trusted under it, reading releases through a [`judge::ReleaseSource`], and
//! says why not in words cargo shows the user. The verifier applies it to index answers
//! and downloads.

pub mod file;
pub mod judge;
