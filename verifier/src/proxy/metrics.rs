//! `/metrics`: what the status page counts, in the OpenMetrics text format that Prometheus
//! scrapes (through the Prometheus project's `prometheus-client`). Every counter of
//! `/status.json`, gauges of the trusted metadata and the caches, the latency of each
//! route by answer code, and how upstream answered. spec/proxy.md lists the names.
//!
//! The counters are read from [`Counters`] at each scrape, so `/status.json` and
//! `/metrics` never disagree; only the latency histograms and the upstream outcomes live
//! here. No label holds a value a client chose: routes are the router's patterns, codes
//! and upstream requests come from short fixed lists.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::upstream_health::UpstreamRequest;
use super::{Counters, Proxy};

/// The prefix of every metric name.
const PREFIX: &str = "tuf_verifier";

/// The `Content-Type` of the answer.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Each counter of [`Counters`]: its metric name (before `_total`), its help, and where
/// it is kept.
type CounterRow = (&'static str, &'static str, fn(&Counters) -> &AtomicU64);

const COUNTERS: &[CounterRow] = &[
    ("index_served", "Index files answered 200", |c| &c.index_served),
    ("index_not_modified", "Index requests answered 304", |c| &c.index_not_modified),
    (
        "index_answered_fresh",
        "Index requests answered from the filtered cache within index_freshness, upstream not asked",
        |c| &c.index_answered_fresh,
    ),
    (
        "index_upstream_shared",
        "Index requests that shared another request's upstream request for the same file",
        |c| &c.index_upstream_shared,
    ),
    ("index_not_found", "Index requests answered 404", |c| &c.index_not_found),
    ("index_refused", "Index requests refused (403) or failed (502, 503)", |c| &c.index_refused),
    (
        "index_refused_policy",
        "Index requests refused because the trust policy trusts no version",
        |c| &c.index_refused_policy,
    ),
    (
        "index_typosquats",
        "Index requests refused as likely typosquats of trusted or well-known names",
        |c| &c.index_typosquats,
    ),
    (
        "index_upstream_unavailable",
        "Index requests answered from the signed index file alone, upstream failing",
        |c| &c.index_upstream_unavailable,
    ),
    ("index_lines_served", "Index lines passed on", |c| &c.lines_served),
    (
        "index_lines_dropped",
        "Index lines dropped (unsigned, cksum not the signed digest, a dependency from another registry)",
        |c| &c.lines_dropped,
    ),
    (
        "index_lines_dropped_foreign_registry",
        "Index lines dropped because a dependency names a registry not on the allowlist",
        |c| &c.lines_dropped_foreign_registry,
    ),
    (
        "index_lines_dropped_policy",
        "Index lines hidden because the trust policy does not trust them",
        |c| &c.lines_dropped_policy,
    ),
    (
        "index_lines_from_signed_index",
        "Index lines served from crates' signed index files",
        |c| &c.lines_from_signed_index,
    ),
    (
        "index_lines_withheld_upstream",
        "Signed index lines upstream did not list",
        |c| &c.lines_withheld_upstream,
    ),
    (
        "index_lines_differing_upstream",
        "Signed index lines whose upstream line differed",
        |c| &c.lines_differing_upstream,
    ),
    (
        "index_lines_yanked_upstream",
        "Signed index lines upstream yanked and the owners had not",
        |c| &c.lines_yanked_upstream,
    ),
    (
        "index_lines_checksum_only",
        "Index lines authenticated by cksum alone (no signed index file)",
        |c| &c.lines_checksum_only,
    ),
    ("downloads_served", "Tarballs sent to cargo", |c| &c.downloads_served),
    (
        "downloads_served_from_cache",
        "Tarballs sent from the verified cache (memory or disk)",
        |c| &c.downloads_from_cache,
    ),
    (
        "downloads_served_from_memory",
        "Tarballs sent from the verified tarballs kept in memory",
        |c| &c.downloads_from_memory,
    ),
    (
        "downloads_served_from_shared",
        "Tarballs sent from the shared state (stored by another replica), verified again",
        |c| &c.downloads_from_shared,
    ),
    (
        "downloads_refused",
        "Tarballs refused (not signed, or not matching what was signed)",
        |c| &c.downloads_refused,
    ),
    (
        "downloads_refused_policy",
        "Downloads refused because the trust policy does not trust the release",
        |c| &c.downloads_refused_policy,
    ),
    (
        "downloads_failed_upstream",
        "Downloads that failed upstream (timeouts, errors, missing files)",
        |c| &c.downloads_failed,
    ),
    (
        "clients_refused",
        "Requests refused for want of a client token on the list (401)",
        |c| &c.clients_refused,
    ),
];

/// The labels of a route's latency.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    /// The router's pattern (`/index/{*path}`), or `unmatched`.
    route: Cow<'static, str>,
    /// The answer's status code.
    code: u16,
}

/// The labels of an upstream request's outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    /// `index`, `download` or `config`.
    request: &'static str,
    /// `ok` or `failed`.
    outcome: &'static str,
}

/// The label of a top-level role's expiry.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    /// `root`, `timestamp`, `snapshot` or `targets`.
    role: &'static str,
}

/// Latency buckets: 0.5 ms to about 16 s, doubling.
#[derive(Debug, Clone, Copy)]
struct LatencyBuckets;

impl MetricConstructor<Histogram> for LatencyBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.0005, 2.0, 16))
    }
}

/// The metrics kept between scrapes.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    request_seconds: Family<RouteLabels, Histogram, LatencyBuckets>,
    upstream_requests: Family<UpstreamLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let request_seconds = Family::new_with_constructor(LatencyBuckets);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route and status code",
            request_seconds.clone(),
        );
        let upstream_requests = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "upstream_requests",
            "Requests made upstream, by what was asked for and whether it succeeded",
            upstream_requests.clone(),
        );
        Self {
            registry,
            request_seconds,
            upstream_requests,
        }
    }
}

impl Metrics {
    /// Counts an upstream request and whether it failed.
    pub(super) fn upstream_answered(&self, request: UpstreamRequest, failed: bool) {
        let labels = UpstreamLabels {
            request: match request {
                UpstreamRequest::Index => "index",
                UpstreamRequest::Download => "download",
                UpstreamRequest::Config => "config",
            },
            outcome: if failed { "failed" } else { "ok" },
        };
        self.upstream_requests.get_or_create(&labels).inc();
    }

    fn answered(&self, route: Cow<'static, str>, code: StatusCode, seconds: f64) {
        let labels = RouteLabels {
            route,
            code: code.as_u16(),
        };
        self.request_seconds.get_or_create(&labels).observe(seconds);
    }
}

/// Times every routed request (a layer of the router, so the route is known).
pub(super) async fn time_request(
    State(proxy): State<Arc<Proxy>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(Cow::Borrowed("unmatched"), |p| route_label(p.as_str()));
    let started = Instant::now();
    let response = next.run(request).await;
    proxy
        .metrics
        .answered(route, response.status(), started.elapsed().as_secs_f64());
    response
}

/// The router's patterns (`Proxy::router`), so that labelling a request allocates nothing.
const ROUTE_PATTERNS: &[&str] = &[
    "/index/config.json",
    "/index/{*path}",
    "/api/v1/crates/{name}/{version}/download",
    "/explain/{name}",
    "/explain/{name}/{version}",
    "/healthz",
    "/status",
    "/status.json",
    "/metrics",
    "/",
];

/// The route label of a matched pattern: one of [`ROUTE_PATTERNS`], or a copy of a
/// pattern added to the router but not to that list.
fn route_label(pattern: &str) -> Cow<'static, str> {
    ROUTE_PATTERNS
        .iter()
        .find(|known| **known == pattern)
        .map_or_else(
            || Cow::Owned(pattern.to_owned()),
            |known| Cow::Borrowed(*known),
        )
}

/// `GET /metrics`.
pub(super) async fn metrics(State(proxy): State<Arc<Proxy>>) -> Response {
    match render(&proxy) {
        Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, OPENMETRICS)], body).into_response(),
        Err(std::fmt::Error) => super::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics could not be written\n".to_owned(),
        ),
    }
}

/// The exposition: the kept metrics, then the counters and gauges read now.
fn render(proxy: &Proxy) -> Result<String, std::fmt::Error> {
    let mut now = Registry::with_prefix(PREFIX);
    for &(name, help, counter) in COUNTERS {
        let value = counter(&proxy.counters).load(Ordering::Relaxed);
        now.register(name, help, ConstCounter::new(value));
    }
    now.register(
        "upstream_downloads",
        "Tarball requests made upstream",
        ConstCounter::new(proxy.counters.upstream_downloads.load(Ordering::Relaxed)),
    );
    now.register(
        "refusals",
        "Requests refused, with a reason (the status page keeps the last ones)",
        ConstCounter::new(proxy.refusals.total()),
    );
    if let Some(shared) = &proxy.settings.shared_state {
        let status = shared.status();
        for (name, help, value) in [
            (
                "shared_tarballs_verified",
                "Tarballs read from the shared state that were the signed bytes",
                status.tarballs_verified,
            ),
            (
                "shared_tarballs_refused",
                "Tarball objects in the shared state that were not the signed bytes (replaced)",
                status.tarballs_refused,
            ),
            (
                "shared_baseline_written",
                "Rollback baseline objects written to the shared state",
                status.baseline_written,
            ),
            (
                "shared_baseline_adopted",
                "Rollback baseline objects taken from the shared state (verified, newer than the disk's)",
                status.baseline_adopted,
            ),
            (
                "shared_baseline_refused",
                "Rollback baseline objects in the shared state that did not verify (ignored, replaced)",
                status.baseline_refused,
            ),
            (
                "shared_errors",
                "Requests to the shared state that failed",
                status.errors,
            ),
        ] {
            now.register(name, help, ConstCounter::new(value));
        }
    }
    let gauge = |now: &mut Registry, name: &str, help: &str, value: i64| {
        now.register(name, help, ConstGauge::new(value));
    };
    let clamp = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    gauge(
        &mut now,
        "requests_in_flight",
        "Requests being answered",
        clamp(proxy.requests_in_flight.count()),
    );
    let trust = proxy.trust.summary();
    gauge(
        &mut now,
        "serving",
        "1 while trusted metadata is current and requests are served, else 0",
        i64::from(trust.serving),
    );
    for (name, help, version) in [
        (
            "root_version",
            "The trusted root's version",
            trust.root_version,
        ),
        (
            "timestamp_version",
            "The trusted timestamp's version",
            trust.timestamp_version,
        ),
        (
            "snapshot_version",
            "The trusted snapshot's version",
            trust.snapshot_version,
        ),
    ] {
        if let Some(version) = version {
            gauge(&mut now, name, help, clamp(version));
        }
    }
    let expiries = Family::<RoleLabels, Gauge>::default();
    for role in &trust.roles {
        if let Ok(expires) = chrono::DateTime::parse_from_rfc3339(&role.expires) {
            expiries
                .get_or_create(&RoleLabels { role: role.role })
                .set(expires.timestamp());
        }
    }
    now.register(
        "role_expires_timestamp_seconds",
        "When each trusted top-level role expires (Unix time)",
        expiries,
    );
    if let Some(refreshed) = trust
        .last_refresh
        .as_deref()
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
    {
        gauge(
            &mut now,
            "last_refresh_timestamp_seconds",
            "When the last successful refresh ended (Unix time)",
            refreshed.timestamp(),
        );
    }
    gauge(
        &mut now,
        "refresh_failures_in_a_row",
        "Refreshes failed since the last success",
        clamp(u64::from(proxy.trust.refresh_log().failures_in_a_row())),
    );
    let cache = proxy.cache.usage();
    gauge(
        &mut now,
        "tarball_cache_bytes",
        "Bytes of verified tarballs on disk",
        clamp(cache.bytes),
    );
    gauge(
        &mut now,
        "tarball_cache_tarballs",
        "Verified tarballs on disk",
        clamp(cache.tarballs),
    );
    let memory = proxy.memory.usage();
    gauge(
        &mut now,
        "tarball_memory_bytes",
        "Bytes of verified tarballs kept in memory",
        clamp(memory.bytes),
    );
    let index_files = proxy.index_files.usage();
    gauge(
        &mut now,
        "signed_index_files_bytes",
        "Bytes of signed index files kept in memory",
        clamp(index_files.bytes),
    );
    let mut body = String::new();
    encode_registry(&mut body, &proxy.metrics.registry)?;
    encode_registry(&mut body, &now)?;
    encode_eof(&mut body)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pattern the router registers has its label in [`ROUTE_PATTERNS`]: read
    /// from the router's source, so a route added there without a label fails here.
    #[test]
    fn every_route_of_the_router_has_a_static_label() {
        let router_source = include_str!("mod.rs");
        let registered: Vec<&str> = router_source
            .split(".route(")
            .skip(1)
            .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next())
            .collect();
        assert!(registered.len() >= 10, "{registered:?}");
        for pattern in registered {
            assert!(
                matches!(route_label(pattern), Cow::Borrowed(_)),
                "{pattern} is routed but not in ROUTE_PATTERNS"
            );
        }
        assert_eq!(route_label("/not/a/route"), "/not/a/route");
    }
}
