//! Index files: `config.json`, and each crate's file filtered down to the lines that are
//! signed and resolve through the proxy (spec/proxy.md, "Index files").

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use lru::LruCache;
use sha2::{Digest, Sha256};

use super::{bump, refusal_status, text, Proxy};
use crate::index_line::{Escape, IndexLine, RegistryAllowlist};
use crate::trust::{Refusal, TrustStore};
use crate::upstream::{self, IndexFetch};

pub(super) async fn config_json(State(proxy): State<Arc<Proxy>>) -> Response {
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

/// An index file as last filtered.
#[derive(Clone)]
struct CachedIndex {
    upstream_etag: String,
    upstream_body: Bytes,
    snapshot_version: u64,
    filtered: Bytes,
    etag: String,
    valid_until: DateTime<Utc>,
}

impl CachedIndex {
    fn size(&self) -> u64 {
        (self.upstream_body.len() + self.filtered.len() + self.upstream_etag.len()) as u64
    }
}

/// The filtered index files kept for conditional requests: least recently used first
/// out, within a byte budget (raw and filtered bytes).
pub(super) struct IndexCache {
    entries: LruCache<String, CachedIndex>,
    bytes: u64,
    budget: u64,
}

/// What the index cache holds, for `/status`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(super) struct IndexCacheUsage {
    pub files: usize,
    pub bytes: u64,
    pub budget_bytes: u64,
}

impl IndexCache {
    pub(super) fn new(budget: u64) -> Self {
        Self {
            entries: LruCache::unbounded(),
            bytes: 0,
            budget,
        }
    }

    fn get(&mut self, path: &str) -> Option<&CachedIndex> {
        self.entries.get(path)
    }

    /// Keeps `entry`, replacing what `path` had, then evicts the least recently used
    /// files beyond the budget. An entry larger than the whole budget is not kept.
    fn put(&mut self, path: String, entry: CachedIndex) {
        let size = entry.size();
        if let Some(old) = self.entries.pop(&path) {
            self.bytes = self.bytes.saturating_sub(old.size());
        }
        if size > self.budget {
            return;
        }
        self.bytes += size;
        self.entries.put(path, entry);
        while self.bytes > self.budget {
            match self.entries.pop_lru() {
                Some((_, old)) => self.bytes = self.bytes.saturating_sub(old.size()),
                None => break,
            }
        }
    }

    pub(super) fn usage(&self) -> IndexCacheUsage {
        IndexCacheUsage {
            files: self.entries.len(),
            bytes: self.bytes,
            budget_bytes: self.budget,
        }
    }
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
            Err(refusal) if refusal.is_unsigned() => {
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

pub(super) async fn index_file(
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
        let mut cache = proxy.index_cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(&path).map(|c| c.upstream_etag.clone())
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
            let cached = {
                let mut cache = proxy.index_cache.lock().unwrap_or_else(|e| e.into_inner());
                cache.get(&path).cloned()
            };
            match cached {
                Some(c) if c.snapshot_version == snapshot_version && c.valid_until > Utc::now() => {
                    return answer_index(&proxy, &headers, c.filtered, &c.etag);
                }
                Some(c) => (c.upstream_body, Some(c.upstream_etag)),
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
        Err(e) => return refuse(Refusal::Internal(Arc::new(e))),
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
        cache.put(
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
        // cargo's path for a name that is not a crate name is still refused.
        assert_eq!(crate_of_index_path("se/r./ser.de"), None);
        let long = "a".repeat(65);
        assert_eq!(crate_of_index_path(&format!("aa/aa/{long}")), None);
        assert_eq!(crate_of_index_path("1/"), None);
    }

    #[test]
    fn etags_are_the_sha256_of_the_answer() {
        assert_eq!(
            content_etag(b"abc"),
            "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\""
        );
        assert_ne!(content_etag(b"abc"), content_etag(b"abd"));
    }

    #[test]
    fn if_none_match_matches_the_etag_or_a_star() {
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            headers
        };
        let etag = "\"abc\"";
        assert!(etag_matches(&headers("\"abc\""), etag));
        assert!(etag_matches(&headers("W/\"abc\""), etag));
        assert!(etag_matches(&headers("\"x\", \"abc\""), etag));
        assert!(etag_matches(&headers("*"), etag));
        assert!(!etag_matches(&headers("\"abd\""), etag));
        assert!(!etag_matches(&HeaderMap::new(), etag));
    }

    fn entry(bytes: usize) -> CachedIndex {
        CachedIndex {
            upstream_etag: String::new(),
            upstream_body: Bytes::from(vec![b'u'; bytes]),
            snapshot_version: 1,
            filtered: Bytes::new(),
            etag: String::new(),
            valid_until: DateTime::<Utc>::MAX_UTC,
        }
    }

    #[test]
    fn the_index_cache_counts_replaced_entries_once_and_stays_in_its_budget() {
        let mut cache = IndexCache::new(100);
        cache.put("a".into(), entry(40));
        cache.put("a".into(), entry(40));
        cache.put("a".into(), entry(40));
        assert_eq!((cache.usage().files, cache.usage().bytes), (1, 40));
        cache.put("b".into(), entry(40));
        assert!(cache.get("a").is_some());
        cache.put("c".into(), entry(40));
        // b was the least recently used.
        assert!(cache.get("b").is_none());
        assert_eq!((cache.usage().files, cache.usage().bytes), (2, 80));
        cache.put("huge".into(), entry(101));
        assert!(cache.get("huge").is_none());
        assert_eq!(cache.usage().bytes, 80);
    }
}
