//! The trust policy: whom the user trusts (spec/trust-policy.md). The file
//! ([`file::Policy`]) names trusted developers by key, exceptions and the rule's
//! settings; the judge ([`judge::Judge`]) decides, with no I/O, whether a release is
//! trusted under it and says why not in words cargo shows the user.
//!
//! Not yet enforced by the proxy, `explain` or a `policy` verb (issue 12 goes on): until
//! then nothing outside the tests calls it, and the serve configuration has no key that
//! would load a policy it does not enforce.
#![cfg_attr(not(test), allow(dead_code))]

pub mod file;
pub mod judge;
