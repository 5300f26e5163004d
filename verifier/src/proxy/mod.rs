//! The HTTP side of the proxy: cargo's sparse index protocol and downloads, `/healthz`
//! and the status page. One module per route family:
//!
//! | path | answer | module |
//! |---|---|---|
//! | `/index/config.json` | `{"dl": "<public url>/api/v1/crates"}` | [`index`] |
//! | `/index/<cargo's index path>` | every signed version's signed entry, yanked if the owners or upstream say so; versions signed before signed index entries from upstream's line when its `cksum` is the signed sha256; never a line whose dependencies leave the proxy ([`crate::index_answer`], [`crate::index_line`]) | [`index`] |
//! | `/api/v1/crates/<crate>/<version>/download` | the upstream tarball, only if it is exactly the signed target | [`download`] |
//! | `/explain/<crate>[/<version>]` | why each version is served or not, as JSON ([`crate::explain`]) | [`explain`] |
//! | `/metrics` | the counters, gauges, route latencies and upstream outcomes for Prometheus | [`metrics`] |
//! | `/healthz` | `200 ok`, or `503` and why nothing is served | [`status`] |
//! | `/status`, `/status.json` | counts of served, refused and cached, the trusted versions, the caches and their budgets | [`status`] |
//!
//! Refusals are `403` with a one-line body naming the crate, the version and the reason:
//! cargo prints it. Upstream faults are `502`, metadata not (yet) reachable `503`.

mod client_auth;
mod download;
mod explain;
mod index;
mod metrics;
mod refusals;
mod single_flight;
mod status;
mod status_page;
mod upstream_health;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use tokio::sync::OnceCell;

use crate::cache::TarballCache;
use crate::config::RequireSignedEntries;
use crate::index_answer::Judge;
use crate::index_line::RegistryAllowlist;
use crate::policy::enforce::PolicyState;
use crate::signed_index::SignedIndexFiles;
use crate::trust::{Lookup, Refusal, TrustStore};
use crate::upstream::{self, DownloadError};
use refusals::{RefusalLog, RefusedBy, Refusing};
use single_flight::SingleFlights;
use upstream_health::{UpstreamHealth, UpstreamRequest};

pub use index::content_etag;

/// Counters shown on the status page.
#[derive(Debug, Default)]
pub struct Counters {
    /// Index files answered 200.
    pub index_served: AtomicU64,
    /// Index requests answered 304.
    pub index_not_modified: AtomicU64,
    /// Index requests answered from the filtered cache within `index_freshness`,
    /// upstream not asked.
    pub index_answered_fresh: AtomicU64,
    /// Index requests that shared another request's upstream request for the same file.
    pub index_upstream_shared: AtomicU64,
    /// Index requests answered 404 (no signed version, or not upstream).
    pub index_not_found: AtomicU64,
    /// Index requests refused (403) or failed (502, 503).
    pub index_refused: AtomicU64,
    /// Index lines passed on.
    pub lines_served: AtomicU64,
    /// Index lines dropped (unsigned, `cksum` not the signed digest, a dependency from
    /// another registry).
    pub lines_dropped: AtomicU64,
    /// ... of which because a dependency names a registry not on the allowlist.
    pub lines_dropped_foreign_registry: AtomicU64,
    /// Index lines served from crates' signed index files.
    pub lines_from_signed_index: AtomicU64,
    /// ... of which upstream did not list (withheld, or not yet published there).
    pub lines_withheld_upstream: AtomicU64,
    /// ... of which upstream's line differed from the signed entry.
    pub lines_differing_upstream: AtomicU64,
    /// ... of which upstream yanked and the owners had not.
    pub lines_yanked_upstream: AtomicU64,
    /// Index lines authenticated by `cksum` alone (no signed index file).
    pub lines_checksum_only: AtomicU64,
    /// Index requests answered from the signed index file alone, upstream failing.
    pub index_upstream_unavailable: AtomicU64,
    /// Index lines hidden because the trust policy does not trust them.
    pub lines_dropped_policy: AtomicU64,
    /// Index requests refused because the trust policy trusts no version.
    pub index_refused_policy: AtomicU64,
    /// Index requests refused as likely typosquats of trusted or well-known names.
    pub index_typosquats: AtomicU64,
    /// Downloads refused because the trust policy does not trust the release.
    pub downloads_refused_policy: AtomicU64,
    /// Tarballs sent to cargo.
    pub downloads_served: AtomicU64,
    /// ... of which from the verified cache (memory or disk).
    pub downloads_from_cache: AtomicU64,
    /// ... of which from the verified tarballs kept in memory (no file read, no re-hash).
    pub downloads_from_memory: AtomicU64,
    /// Tarballs sent from the shared state (another replica fetched them), re-verified.
    pub downloads_from_shared: AtomicU64,
    /// Tarballs refused (not signed, or not matching what was signed).
    pub downloads_refused: AtomicU64,
    /// Downloads that failed upstream (timeouts, errors, missing files).
    pub downloads_failed: AtomicU64,
    /// Tarball requests made upstream.
    pub upstream_downloads: AtomicU64,
    /// Requests refused for want of a client token on the list (401).
    pub clients_refused: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Settings of the HTTP side.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// The URL cargo reaches the proxy at (no trailing `/`).
    pub public_url: String,
    /// Upstream index base URL, ending in `/`.
    pub upstream_index: String,
    /// Upstream download template, if configured (else read from upstream config.json).
    pub upstream_dl: Option<String>,
    /// Cap on tarballs.
    pub max_crate_size: u64,
    /// Cap on index files.
    pub max_index_size: u64,
    /// Registries other than the proxy's that a dependency of a line passed on may name.
    pub allowed_registries: RegistryAllowlist,
    /// Memory budget of the filtered index files kept (and, apart, of the signed index
    /// files).
    pub index_cache_size: u64,
    /// How long a filtered index answer is served again without asking upstream, while
    /// the snapshot and the policy generation are the ones it was filtered under.
    pub index_freshness: std::time::Duration,
    /// Memory budget of the verified tarballs kept in memory.
    pub tarball_memory_size: u64,
    /// Whether every line must come from a signed index file.
    pub require_signed_index_entries: RequireSignedEntries,
    /// The client tokens accepted, when clients must authenticate.
    pub client_tokens: Option<Arc<crate::upstream_auth::ClientTokens>>,
    /// The tarball cache shared with other replicas, if configured.
    pub shared_state: Option<Arc<crate::shared_state::SharedState>>,
}

/// The requests being answered now, counted around every route: what a stop waits for.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<AtomicU64>);

impl InFlight {
    /// How many requests are being answered.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counts the request in [`InFlight`] until its answer is made.
async fn count_in_flight(
    axum::extract::State(in_flight): axum::extract::State<InFlight>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    struct Leaving(Arc<AtomicU64>);
    impl Drop for Leaving {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
    in_flight.0.fetch_add(1, Ordering::Relaxed);
    let _leaving = Leaving(Arc::clone(&in_flight.0));
    next.run(request).await
}

/// Shared state of the handlers.
pub struct Proxy {
    settings: ProxySettings,
    trust: Arc<TrustStore>,
    client: upstream::UpstreamClient,
    cache: TarballCache,
    memory: crate::verified_memory::VerifiedTarballs,
    counters: Counters,
    upstream_dl: OnceCell<String>,
    /// Tarballs being fetched and verified, by signed sha256.
    tarball_flights: SingleFlights<String, Result<Bytes, DownloadError>>,
    index_cache: Mutex<index::IndexCache>,
    /// Index files being asked of upstream.
    index_flights: SingleFlights<index::FlightKey, index::Upstream>,
    index_files: SignedIndexFiles,
    policy: Option<Arc<PolicyState>>,
    squat_guard: Arc<crate::squat::SquatGuards>,
    requests_in_flight: InFlight,
    refusals: RefusalLog,
    upstream_health: UpstreamHealth,
    metrics: metrics::Metrics,
}

impl Proxy {
    /// The proxy's shared state.
    pub fn new(
        settings: ProxySettings,
        trust: Arc<TrustStore>,
        client: upstream::UpstreamClient,
        cache: TarballCache,
        index_files: SignedIndexFiles,
        policy: Option<Arc<PolicyState>>,
        squat_guard: Arc<crate::squat::SquatGuards>,
    ) -> Arc<Self> {
        let index_cache = index::IndexCache::new(settings.index_cache_size);
        let memory = crate::verified_memory::VerifiedTarballs::new(settings.tarball_memory_size);
        Arc::new(Self {
            index_files,
            policy,
            squat_guard,
            settings,
            trust,
            client,
            cache,
            memory,
            counters: Counters::default(),
            upstream_dl: OnceCell::new(),
            tarball_flights: SingleFlights::default(),
            index_cache: Mutex::new(index_cache),
            index_flights: SingleFlights::default(),
            requests_in_flight: InFlight::default(),
            refusals: RefusalLog::default(),
            upstream_health: UpstreamHealth::default(),
            metrics: metrics::Metrics::default(),
        })
    }

    /// Answers a refusal: `message` bounded, and kept for the status page.
    fn refuse(&self, refusing: Refusing<'_>, status: StatusCode, message: &str) -> Response {
        let body = refusing.answer(&self.refusals, status.as_u16(), message, Utc::now());
        text(status, body)
    }

    /// Records how upstream answered a request: `outcome`'s error is why it failed.
    fn upstream_answered<T, E: std::fmt::Display>(
        &self,
        request: UpstreamRequest,
        outcome: &Result<T, E>,
    ) {
        let failure = outcome.as_ref().err().map(ToString::to_string);
        self.metrics.upstream_answered(request, failure.is_some());
        self.upstream_health
            .record(Utc::now(), request, failure.as_deref());
    }

    /// The requests being answered now.
    pub fn in_flight_requests(&self) -> InFlight {
        self.requests_in_flight.clone()
    }

    /// The router serving cargo, `/healthz` and the status page.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/index/config.json", get(index::config_json))
            .route("/index/{*path}", get(index::index_file))
            .route(
                "/api/v1/crates/{name}/{version}/download",
                get(download::download),
            )
            .route("/explain/{name}", get(explain::explain_crate))
            .route("/explain/{name}/{version}", get(explain::explain_version))
            .route("/healthz", get(status::healthz))
            .route("/status", get(status::status_page))
            .route("/status.json", get(status::status_json))
            .route("/metrics", get(metrics::metrics))
            .route("/", get(status::status_page))
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(self),
                client_auth::require_client_token,
            ))
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(self),
                metrics::time_request,
            ))
            .with_state(Arc::clone(self))
            .layer(axum::middleware::from_fn_with_state(
                self.requests_in_flight.clone(),
                count_in_flight,
            ))
    }

    /// The judge of index answers, with this proxy's trust and settings.
    fn judge(&self) -> Judge<'_> {
        Judge {
            trust: &self.trust,
            index_files: &self.index_files,
            allowed_registries: &self.settings.allowed_registries,
            signed_entries_required: self.signed_entries_required(),
        }
    }

    /// Whether a crate with no signed index file serves no version: as configured, or
    /// (`auto`) as the repository's top-level targets says.
    fn signed_entries_required(&self) -> bool {
        self.settings
            .require_signed_index_entries
            .required(self.trust.signs_index_entries())
    }

    async fn lookup(&self, name: &str, version: &str) -> Lookup {
        // Answers already known take no thread hop; only a lookup that may fetch
        // metadata goes to a blocking thread.
        if let Some(answer) = self.trust.lookup_cached(name, version, Utc::now()) {
            return answer;
        }
        let trust = Arc::clone(&self.trust);
        let (name, version) = (name.to_owned(), version.to_owned());
        tokio::task::spawn_blocking(move || trust.lookup(&name, &version, Utc::now()))
            .await
            .unwrap_or_else(|e| Err(Refusal::Internal(Arc::new(e))))
    }

    /// The upstream download template, from configuration or upstream's config.json.
    async fn upstream_dl(&self) -> Result<&str, DownloadError> {
        self.upstream_dl
            .get_or_try_init(|| async {
                if let Some(dl) = &self.settings.upstream_dl {
                    return Ok(dl.clone());
                }
                let dl = upstream::registry_dl(&self.client, &self.settings.upstream_index).await;
                self.upstream_answered(UpstreamRequest::Config, &dl);
                Ok(dl?)
            })
            .await
            .map(String::as_str)
    }
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// What refused a request refused for `refusal`.
fn refused_by(refusal: &Refusal) -> RefusedBy {
    if refusal.is_transient() {
        RefusedBy::Unavailable
    } else {
        RefusedBy::Tuf
    }
}

fn refusal_status(refusal: &Refusal) -> StatusCode {
    if refusal.is_transient() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::FORBIDDEN
    }
}
