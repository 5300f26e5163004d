//! End-to-end test harness for the verifier proxy: a signed TUF repository of crate
//! releases ([`TestRepo`]), an upstream sparse registry ([`Registry`]) served over HTTP
//! with fault injection ([`Upstream`]), an isolated real cargo ([`CargoProject`]), and
//! the proxy binary itself ([`Proxy`]).
//!
//! Typical use:
//!
//! ```text
//! let mut registry = Registry::new();
//! registry.repo.delegate_namespace("nsdemo");
//! registry.publish("plainutil", "0.1.0", &[], "pub fn one() -> u32 { 1 }");
//! let upstream = Upstream::start(&registry);
//! let proxy = Proxy::start(&upstream, &registry.repo);
//! let project = CargoProject::new(&proxy.index_url(), &[("plainutil", "0.1")]);
//! let output = project.build();
//! assert!(output.success(), "{}", output.describe());
//! ```
//!
//! Every server binds 127.0.0.1 on a port the OS picks and stops when its handle drops.
#![allow(dead_code, unused_imports)]
// Test support: a panic is a failed test with a message, which is what these helpers want.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod cargo;
pub mod nginx;
pub mod proxy;
pub mod registry;
pub mod s3;
pub mod tuf_repo;
pub mod upstream;

pub use cargo::{parse_lockfile, CargoOutput, CargoProject, LockedPackage};
pub use nginx::{Downloads, Nginx};
pub use proxy::{Proxy, ProxyConfig, ProxyStartError};
pub use registry::{index_path, Registry};
pub use s3::S3Server;
pub use tuf_repo::{clone_key, Keys, TestRepo};
pub use upstream::{http_client, raw_get, Fault, RawResponse, RequestRecord, Upstream};
