//! The HTTP side of the proxy: cargo's sparse index protocol and downloads, `/healthz`
//! and the status page.
//!
//! | path | answer |
//! |---|---|
//! | `/index/config.json` | `{"dl": "<public url>/api/v1/crates"}` |
//! | `/index/<cargo's index path>` | the upstream file, keeping only lines whose `cksum` is the sha256 of the signed target and whose dependencies all resolve through the proxy ([`crate::index_line`]) |
//! | `/api/v1/crates/<crate>/<version>/download` | the upstream tarball, only if it is exactly the signed target |
//! | `/healthz` | `200 ok`, or `503` and why nothing is served |
//! | `/status`, `/status.json` | counts of served, refused and cached, and the trusted versions |
//!
//! Refusals are `403` with a one-line body naming the crate, the version and the reason:
//! cargo prints it. Upstream failures are `502`, metadata not (yet) reachable `503`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::cache::TarballCache;
use crate::index_line::{Escape, IndexLine, RegistryAllowlist};
use crate::trust::{Refusal, SignedRelease, TrustStore};
use crate::upstream::{self, DownloadError, IndexFetch};

/// Counters shown on the status page.
#[derive(Debug, Default)]
pub struct Counters {
    /// Index files answered 200.
    pub index_served: AtomicU64,
    /// Index requests answered 304.
    pub index_not_modified: AtomicU64,
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
    /// Tarballs sent to cargo.
    pub downloads_served: AtomicU64,
    /// ... of which from the verified cache.
    pub downloads_from_cache: AtomicU64,
    /// Tarballs refused (not signed, or not matching what was signed).
    pub downloads_refused: AtomicU64,
    /// Downloads that failed upstream (timeouts, errors).
    pub downloads_failed: AtomicU64,
    /// Tarball requests made upstream.
    pub upstream_downloads: AtomicU64,
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
}

type Flight = Arc<OnceCell<Result<Bytes, DownloadError>>>;

/// An index file as last filtered.
struct CachedIndex {
    upstream_etag: String,
    upstream_body: Bytes,
    snapshot_version: u64,
    filtered: Bytes,
    etag: String,
    valid_until: DateTime<Utc>,
}

/// Cap on the memory the index cache holds (raw and filtered bytes).
const INDEX_CACHE_BUDGET: usize = 256 * 1024 * 1024;

/// Shared state of the handlers.
pub struct Proxy {
    settings: ProxySettings,
    trust: Arc<TrustStore>,
    client: reqwest::Client,
    cache: TarballCache,
    counters: Counters,
    upstream_dl: OnceCell<String>,
    in_flight: Mutex<HashMap<String, Flight>>,
    index_cache: Mutex<(usize, HashMap<String, CachedIndex>)>,
}

impl Proxy {
    /// The proxy's shared state.
    pub fn new(
        settings: ProxySettings,
        trust: Arc<TrustStore>,
        client: reqwest::Client,
        cache: TarballCache,
    ) -> Arc<Self> {
        Arc::new(Self {
            settings,
            trust,
            client,
            cache,
            counters: Counters::default(),
            upstream_dl: OnceCell::new(),
            in_flight: Mutex::new(HashMap::new()),
            index_cache: Mutex::new((0, HashMap::new())),
        })
    }

    /// The router serving cargo, `/healthz` and the status page.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/index/config.json", get(config_json))
            .route("/index/{*path}", get(index_file))
            .route("/api/v1/crates/{name}/{version}/download", get(download))
            .route("/healthz", get(healthz))
            .route("/status", get(status_page))
            .route("/status.json", get(status_json))
            .route("/", get(status_page))
            .with_state(Arc::clone(self))
    }

    async fn lookup(&self, name: &str, version: &str) -> Result<SignedRelease, Refusal> {
        // Answers already known take no thread hop; only a lookup that may fetch
        // metadata goes to a blocking thread.
        if let Some(answer) = self.trust.lookup_cached(name, version, Utc::now()) {
            return answer;
        }
        let trust = Arc::clone(&self.trust);
        let (name, version) = (name.to_owned(), version.to_owned());
        tokio::task::spawn_blocking(move || trust.lookup(&name, &version, Utc::now()))
            .await
            .unwrap_or_else(|e| Err(Refusal::MetadataUnavailable(format!("lookup failed: {e}"))))
    }

    /// The upstream download template, from configuration or upstream's config.json.
    async fn upstream_dl(&self) -> Result<&str, DownloadError> {
        self.upstream_dl
            .get_or_try_init(|| async {
                if let Some(dl) = &self.settings.upstream_dl {
                    return Ok(dl.clone());
                }
                upstream::registry_dl(&self.client, &self.settings.upstream_index)
                    .await
                    .map_err(DownloadError::Upstream)
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

fn refusal_status(refusal: &Refusal) -> StatusCode {
    if refusal.is_transient() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::FORBIDDEN
    }
}

async fn config_json(State(proxy): State<Arc<Proxy>>) -> Response {
    let body = serde_json::json!({
        "dl": format!("{}/api/v1/crates", proxy.settings.public_url),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The crate name an index path is for, if it is exactly cargo's path for that name.
fn crate_of_index_path(path: &str) -> Option<&str> {
    let name = path.rsplit('/').next()?;
    let plausible = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (plausible && upstream::index_path(name) == path).then_some(name)
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|candidate| {
            let candidate = candidate.trim();
            candidate == "*" || candidate.trim_start_matches("W/") == etag
        })
}

/// What filtering an index file found.
struct Filtered {
    body: Vec<u8>,
    served: u64,
    /// Lines dropped, for any reason.
    dropped: u64,
    /// ... of which because a dependency names another registry.
    foreign_registry: u64,
    /// A refusal that makes the whole file unanswerable (metadata refused, expired or
    /// unreachable on the crate's delegation path).
    blocking: Option<Refusal>,
    valid_until: DateTime<Utc>,
}

/// Keeps the lines whose `cksum` is the signed sha256 of that crate version and whose
/// dependencies all resolve through the proxy. Blocking.
fn filter_index(
    trust: &TrustStore,
    allowed_registries: &RegistryAllowlist,
    crate_name: &str,
    upstream_body: &[u8],
) -> Filtered {
    let now = Utc::now();
    let mut filtered = Filtered {
        body: Vec::with_capacity(upstream_body.len()),
        served: 0,
        dropped: 0,
        foreign_registry: 0,
        blocking: None,
        valid_until: DateTime::<Utc>::MAX_UTC,
    };
    for line in upstream_body.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Some(entry) = IndexLine::parse(line) else {
            tracing::debug!(
                crate_name,
                "dropping an index line that is not a version entry"
            );
            filtered.dropped += 1;
            continue;
        };
        if !entry.name.eq_ignore_ascii_case(crate_name) {
            tracing::warn!(crate_name, line_name = %entry.name, "dropping an index line for another crate");
            filtered.dropped += 1;
            continue;
        }
        // Before the signature: a line that sends cargo elsewhere is dropped whoever
        // signed the release (spec/proxy.md, "Dependencies from other registries").
        if let Some(escape) = entry.escape(allowed_registries) {
            if let Escape::ForeignRegistry {
                dependency,
                registry,
            } = &escape
            {
                tracing::warn!(crate_name, version = %entry.vers, %dependency, %registry, "dropping an index line with a dependency from another registry");
                filtered.foreign_registry += 1;
            } else {
                tracing::warn!(crate_name, version = %entry.vers, %escape, "dropping an index line with a dependency that is not a crate name");
            }
            filtered.dropped += 1;
            continue;
        }
        match trust.lookup(&entry.name, &entry.vers, now) {
            Ok(release) if release.sha256.eq_ignore_ascii_case(&entry.cksum) => {
                filtered.body.extend_from_slice(line);
                filtered.body.push(b'\n');
                filtered.served += 1;
                filtered.valid_until = filtered.valid_until.min(release.valid_until);
            }
            Ok(release) => {
                tracing::warn!(crate_name, version = %entry.vers, index_cksum = %entry.cksum, signed_sha256 = %release.sha256, "dropping an index line whose cksum is not the signed digest");
                filtered.dropped += 1;
            }
            Err(Refusal::NotSigned { .. } | Refusal::InvalidName(_) | Refusal::NoSha256(_)) => {
                tracing::debug!(crate_name, version = %entry.vers, "dropping an unsigned version");
                filtered.dropped += 1;
            }
            Err(refusal) => {
                filtered.dropped += 1;
                filtered.blocking.get_or_insert(refusal);
            }
        }
    }
    filtered
}

async fn index_file(
    State(proxy): State<Arc<Proxy>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(name) = crate_of_index_path(&path) else {
        bump(&proxy.counters.index_not_found);
        return text(
            StatusCode::NOT_FOUND,
            format!("tuf-verifier: {path} is not an index file\n"),
        );
    };
    let name = name.to_owned();
    let refuse = |refusal: Refusal| {
        bump(&proxy.counters.index_refused);
        tracing::warn!(crate_name = %name, %refusal, "index refused");
        text(
            refusal_status(&refusal),
            format!("tuf-verifier refused the index of {name}: {refusal}\n"),
        )
    };
    // Fail closed before asking upstream anything.
    if let Err(refusal) = proxy.trust.serving() {
        return refuse(refusal);
    }
    let snapshot_version = proxy.trust.snapshot_version().unwrap_or(0);
    let cached_etag = {
        let cache = proxy.index_cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.1.get(&path).map(|c| c.upstream_etag.clone())
    };
    let url = format!("{}{path}", proxy.settings.upstream_index);
    let fetched = upstream::get_index(
        &proxy.client,
        &url,
        proxy.settings.max_index_size,
        cached_etag.as_deref(),
    )
    .await;
    let (upstream_body, upstream_etag) = match fetched {
        Ok(IndexFetch::NotFound) => {
            bump(&proxy.counters.index_not_found);
            return text(
                StatusCode::NOT_FOUND,
                format!("tuf-verifier: no crate {name} upstream\n"),
            );
        }
        Ok(IndexFetch::NotModified) => {
            let cache = proxy.index_cache.lock().unwrap_or_else(|e| e.into_inner());
            match cache.1.get(&path) {
                Some(c) if c.snapshot_version == snapshot_version && c.valid_until > Utc::now() => {
                    let (filtered, etag) = (c.filtered.clone(), c.etag.clone());
                    drop(cache);
                    return answer_index(&proxy, &headers, filtered, &etag);
                }
                Some(c) => (c.upstream_body.clone(), Some(c.upstream_etag.clone())),
                None => {
                    bump(&proxy.counters.index_refused);
                    return text(
                        StatusCode::BAD_GATEWAY,
                        format!("tuf-verifier: upstream answered 304 for {name} unasked\n"),
                    );
                }
            }
        }
        Ok(IndexFetch::Body { body, etag }) => (Bytes::from(body), etag),
        Err(error) => {
            bump(&proxy.counters.index_refused);
            tracing::warn!(crate_name = %name, %error, "upstream index request failed");
            return text(
                StatusCode::BAD_GATEWAY,
                format!("tuf-verifier: cannot fetch the index of {name} from upstream: {error}\n"),
            );
        }
    };
    let filter_proxy = Arc::clone(&proxy);
    let body_for_filter = upstream_body.clone();
    let crate_name = name.clone();
    let filtered = match tokio::task::spawn_blocking(move || {
        filter_index(
            &filter_proxy.trust,
            &filter_proxy.settings.allowed_registries,
            &crate_name,
            &body_for_filter,
        )
    })
    .await
    {
        Ok(filtered) => filtered,
        Err(e) => {
            return refuse(Refusal::MetadataUnavailable(format!(
                "filtering failed: {e}"
            )))
        }
    };
    proxy
        .counters
        .lines_dropped
        .fetch_add(filtered.dropped, Ordering::Relaxed);
    proxy
        .counters
        .lines_dropped_foreign_registry
        .fetch_add(filtered.foreign_registry, Ordering::Relaxed);
    if let Some(refusal) = filtered.blocking {
        return refuse(refusal);
    }
    if filtered.served == 0 {
        bump(&proxy.counters.index_not_found);
        tracing::info!(crate_name = %name, dropped = filtered.dropped, "no signed version");
        return text(
            StatusCode::NOT_FOUND,
            format!("tuf-verifier: no signed version of {name}\n"),
        );
    }
    proxy
        .counters
        .lines_served
        .fetch_add(filtered.served, Ordering::Relaxed);
    let body = Bytes::from(filtered.body);
    let etag = content_etag(&body);
    if let Some(upstream_etag) = upstream_etag {
        let mut cache = proxy.index_cache.lock().unwrap_or_else(|e| e.into_inner());
        let size = upstream_body.len() + body.len();
        if cache.0 + size > INDEX_CACHE_BUDGET {
            *cache = (0, HashMap::new());
        }
        cache.0 += size;
        cache.1.insert(
            path,
            CachedIndex {
                upstream_etag,
                upstream_body,
                snapshot_version,
                filtered: body.clone(),
                etag: etag.clone(),
                valid_until: filtered.valid_until,
            },
        );
    }
    answer_index(&proxy, &headers, body, &etag)
}

/// A strong ETag for `bytes`: their sha256.
pub fn content_etag(bytes: &[u8]) -> String {
    format!("\"{}\"", hex::encode(Sha256::digest(bytes)))
}

fn answer_index(proxy: &Proxy, request: &HeaderMap, body: Bytes, etag: &str) -> Response {
    let etag_header = HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"\""));
    if etag_matches(request, etag) {
        bump(&proxy.counters.index_not_modified);
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response();
    }
    bump(&proxy.counters.index_served);
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/plain")),
            (header::ETAG, etag_header),
        ],
        body,
    )
        .into_response()
}

async fn download(
    State(proxy): State<Arc<Proxy>>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    let release = match proxy.lookup(&name, &version).await {
        Ok(release) => release,
        Err(refusal) => {
            bump(&proxy.counters.downloads_refused);
            tracing::warn!(crate_name = %name, %version, %refusal, "download refused");
            return text(
                refusal_status(&refusal),
                format!("tuf-verifier refused {name} {version}: {refusal}\n"),
            );
        }
    };
    let cache = proxy.cache.clone();
    let cached_release = release.clone();
    let cached = tokio::task::spawn_blocking(move || cache.get(&cached_release))
        .await
        .ok()
        .flatten();
    let bytes = match cached {
        Some(bytes) => {
            bump(&proxy.counters.downloads_from_cache);
            Ok(bytes)
        }
        None => fetch_once(&proxy, &name, &version, &release).await,
    };
    match bytes {
        Ok(bytes) => {
            bump(&proxy.counters.downloads_served);
            tracing::debug!(crate_name = %name, %version, role = %release.role, "tarball served");
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/gzip")],
                Body::from(bytes),
            )
                .into_response()
        }
        Err(error) if error.is_transient() => {
            bump(&proxy.counters.downloads_failed);
            tracing::warn!(crate_name = %name, %version, %error, "download failed upstream");
            text(
                StatusCode::BAD_GATEWAY,
                format!("tuf-verifier could not fetch {name} {version}: {error}\n"),
            )
        }
        Err(error) => {
            bump(&proxy.counters.downloads_refused);
            tracing::warn!(crate_name = %name, %version, %error, "download refused");
            text(
                StatusCode::FORBIDDEN,
                format!("tuf-verifier refused {name} {version}: {error}\n"),
            )
        }
    }
}

/// Fetches and verifies a tarball, once however many requests want it at the same time;
/// verified bytes go to the cache.
async fn fetch_once(
    proxy: &Arc<Proxy>,
    name: &str,
    version: &str,
    release: &SignedRelease,
) -> Result<Bytes, DownloadError> {
    let flight = {
        let mut in_flight = proxy.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(in_flight.entry(release.sha256.clone()).or_default())
    };
    let result = flight
        .get_or_init(|| async {
            let dl = proxy.upstream_dl().await?.to_owned();
            let url = upstream::download_url(&dl, name, version, &release.sha256);
            bump(&proxy.counters.upstream_downloads);
            let bytes = upstream::fetch_tarball(
                &proxy.client,
                &url,
                release,
                proxy.settings.max_crate_size,
            )
            .await?;
            let cache = proxy.cache.clone();
            let (to_store, stored_release) = (bytes.clone(), release.clone());
            let stored =
                tokio::task::spawn_blocking(move || cache.put(&stored_release, &to_store)).await;
            if let Ok(Err(error)) = stored {
                tracing::warn!(%error, "cannot write the verified tarball to the cache");
            }
            Ok(bytes)
        })
        .await
        .clone();
    let mut in_flight = proxy.in_flight.lock().unwrap_or_else(|e| e.into_inner());
    if in_flight
        .get(&release.sha256)
        .is_some_and(|current| Arc::ptr_eq(current, &flight))
    {
        in_flight.remove(&release.sha256);
    }
    result
}

async fn healthz(State(proxy): State<Arc<Proxy>>) -> Response {
    match proxy.trust.serving() {
        Ok(()) => text(StatusCode::OK, "ok\n".into()),
        Err(refusal) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{refusal}\n")),
    }
}

fn status_value(proxy: &Proxy) -> serde_json::Value {
    let c = &proxy.counters;
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let (cached_tarballs, cached_bytes) = proxy.cache.usage();
    serde_json::json!({
        "trust": proxy.trust.summary(),
        "index": {
            "served": load(&c.index_served),
            "not_modified": load(&c.index_not_modified),
            "not_found": load(&c.index_not_found),
            "refused": load(&c.index_refused),
            "lines_served": load(&c.lines_served),
            "lines_dropped": load(&c.lines_dropped),
            "lines_dropped_foreign_registry": load(&c.lines_dropped_foreign_registry),
        },
        "downloads": {
            "served": load(&c.downloads_served),
            "served_from_cache": load(&c.downloads_from_cache),
            "refused": load(&c.downloads_refused),
            "failed_upstream": load(&c.downloads_failed),
            "upstream_requests": load(&c.upstream_downloads),
        },
        "cache": { "tarballs": cached_tarballs, "bytes": cached_bytes },
    })
}

async fn status_json(State(proxy): State<Arc<Proxy>>) -> Response {
    let proxy2 = Arc::clone(&proxy);
    let value = tokio::task::spawn_blocking(move || status_value(&proxy2))
        .await
        .unwrap_or_default();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn status_page(State(proxy): State<Arc<Proxy>>) -> Response {
    let proxy2 = Arc::clone(&proxy);
    let value = tokio::task::spawn_blocking(move || status_value(&proxy2))
        .await
        .unwrap_or_default();
    let mut rows = String::new();
    for section in ["trust", "index", "downloads", "cache"] {
        if let Some(fields) = value.get(section).and_then(|v| v.as_object()) {
            for (key, field) in fields {
                let shown = match field {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "-".into(),
                    other => other.to_string(),
                };
                rows.push_str(&format!(
                    "<tr><th>{section}</th><td>{}</td><td>{}</td></tr>\n",
                    escape(key),
                    escape(&shown)
                ));
            }
        }
    }
    let html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>tuf-verifier</title></head>\n\
         <body><h1>tuf-verifier</h1><p>A cargo source proxy passing on only what the TUF \
         repository signed. <a href=\"/status.json\">JSON</a></p>\n<table>\n{rows}</table></body></html>\n"
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths_must_be_exactly_cargos() {
        assert_eq!(crate_of_index_path("se/rd/serde"), Some("serde"));
        assert_eq!(crate_of_index_path("3/a/abc"), Some("abc"));
        assert_eq!(crate_of_index_path("1/a"), Some("a"));
        assert_eq!(crate_of_index_path("se/rd/../serde"), None);
        assert_eq!(crate_of_index_path("xx/yy/serde"), None);
        assert_eq!(crate_of_index_path("se/rd/Serde"), None);
        assert_eq!(crate_of_index_path("config.json"), None);
    }
}
