//! The trust policy in the verifier (spec/trust-policy.md): the policy in force in the
//! proxy and how it is applied ([`enforce`]), its imports by URL ([`imports`]), and the
//! `policy` verbs ([`cli`]). The file and the judge are tuf-core's ([`tuf_core::policy`]).

pub mod cli;
pub mod enforce;
pub mod imports;

pub use tuf_core::policy::{file, judge};
