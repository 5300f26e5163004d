//! The TUF client workflow (specification §5).
//!
//! * [`TrustedMetadataSet`]: the sans-I/O state machine deciding what to trust.
//! * [`Updater`]: drives it over a [`Fetcher`] ([`DirectoryFetcher`], or
//!   `HttpFetcher` with the `http` feature), persisting trusted metadata atomically in a
//!   [`MetadataDir`] and resolving targets through delegations lazily.

mod fetch;
#[cfg(feature = "http")]
mod http;
mod search;
mod store;
mod trusted;
mod updater;

pub use fetch::{read_bounded, DirectoryFetcher, FetchError, Fetcher};
#[cfg(feature = "http")]
pub use http::{tls_config, transport_error, HttpFetcher, TlsConfigError};
pub use search::{
    find_target, walk_delegations, DelegationWalk, FoundTarget, TargetFind, TargetLookup,
};
pub use store::{quote_role_name, MetadataDir};
pub use trusted::{Limits, TrustError, TrustedMetadataSet, VerifiedTargets};
pub use updater::{target_file_url, RoleFetch, TargetSearch, UpdateError, Updater, UpdaterConfig};
