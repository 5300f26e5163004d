//! Index files: `config.json`, and each crate's file filtered down to the lines that are
//! signed and resolve through the proxy (spec/proxy.md, "Index files").

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use lru::LruCache;
use sha2::{Digest, Sha256};

use super::refusals::{shown, Asked, RefusedBy, Refusing};
use super::upstream_health::UpstreamRequest;
use super::{bump, refusal_status, refused_by, text, Proxy};
use crate::index_answer::{CrateAnswer, Dropped, EntryAuth, UpstreamIndex, UpstreamLine};
use crate::index_line::Escape;
use crate::trust::Refusal;
use crate::upstream::{self, IndexFetch};

pub(super) async fn config_json(State(proxy): State<Arc<Proxy>>) -> Response {
    let dl = format!("{}/api/v1/crates", proxy.settings.public_url);
    // With client tokens, cargo sends its token with every request (RFC 3139).
    let body = if proxy.settings.client_tokens.is_some() {
        serde_json::json!({ "dl": dl, "auth-required": true })
    } else {
        serde_json::json!({ "dl": dl })
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// An index file as last filtered.
#[derive(Clone)]
pub(super) struct CachedIndex {
    upstream_etag: String,
    upstream_body: Bytes,
    snapshot_version: u64,
    /// The generation of the trust policy it was filtered under (0: none).
    policy_generation: u64,
    filtered: Bytes,
    etag: String,
    valid_until: DateTime<Utc>,
    /// When upstream last answered for it (200, or 304 for `upstream_etag`).
    fetched_at: Instant,
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

    /// The answer kept for `path` if it was filtered under `snapshot_version` and
    /// `policy_generation`, its delegation chain has not expired at `now`, and upstream
    /// answered for it less than `freshness` before `now_instant`: its filtered bytes and
    /// their ETag.
    fn fresh(
        &mut self,
        path: &str,
        (snapshot_version, policy_generation): (u64, u64),
        freshness: Duration,
        now: DateTime<Utc>,
        now_instant: Instant,
    ) -> Option<(Bytes, String)> {
        let entry = self.entries.get(path)?;
        let since_upstream = now_instant.saturating_duration_since(entry.fetched_at);
        (entry.snapshot_version == snapshot_version
            && entry.policy_generation == policy_generation
            && entry.valid_until > now
            && since_upstream < freshness)
            .then(|| (entry.filtered.clone(), entry.etag.clone()))
    }

    /// Notes that upstream just confirmed (304) the file kept for `path`.
    fn confirmed(&mut self, path: &str, upstream_etag: &str) {
        if let Some(entry) = self.entries.peek_mut(path) {
            if entry.upstream_etag == upstream_etag {
                entry.fetched_at = Instant::now();
            }
        }
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

/// Requests for one index file under one snapshot and policy generation share one
/// upstream request.
pub(super) type FlightKey = (String, u64, u64);

/// What upstream answered for an index file.
#[derive(Clone)]
pub(super) enum Upstream {
    /// A file, and its ETag.
    Body { body: Bytes, etag: Option<String> },
    /// 304, and the answer kept from before is still good: serve it.
    Reuse(CachedIndex),
    /// 304, but the answer kept was filtered under an older snapshot: filter again.
    Refilter { body: Bytes, etag: String },
    /// No such crate upstream.
    NotFound,
    /// Upstream failed, or answered 304 for a file the proxy does not have.
    Failed(String),
}

/// [`ask_upstream`] once for all the requests for `path` under this snapshot and policy
/// generation that arrive while it runs (single flight): a burst of clients asking for
/// one file costs upstream one request.
async fn ask_upstream_once(
    proxy: &Proxy,
    path: &str,
    name: &str,
    snapshot_version: u64,
    policy_generation: u64,
) -> Upstream {
    let key: FlightKey = (path.to_owned(), snapshot_version, policy_generation);
    let (answer, joined) = proxy
        .index_flights
        .run(key, || {
            ask_upstream(proxy, path, name, snapshot_version, policy_generation)
        })
        .await;
    if joined {
        bump(&proxy.counters.index_upstream_shared);
    }
    answer
}

async fn ask_upstream(
    proxy: &Proxy,
    path: &str,
    name: &str,
    snapshot_version: u64,
    policy_generation: u64,
) -> Upstream {
    let cached = {
        let mut cache = proxy.index_cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(path).cloned()
    };
    let url = format!("{}{path}", proxy.settings.upstream_index);
    let fetched = upstream::get_index(
        &proxy.client,
        &url,
        proxy.settings.max_index_size,
        cached.as_ref().map(|c| c.upstream_etag.as_str()),
    )
    .await;
    proxy.upstream_answered(UpstreamRequest::Index, &fetched);
    match fetched {
        Ok(IndexFetch::NotFound) => Upstream::NotFound,
        Ok(IndexFetch::NotModified) => match cached {
            Some(c)
                if c.snapshot_version == snapshot_version
                    && c.policy_generation == policy_generation
                    && c.valid_until > Utc::now() =>
            {
                let mut cache = proxy.index_cache.lock().unwrap_or_else(|e| e.into_inner());
                cache.confirmed(path, &c.upstream_etag);
                Upstream::Reuse(c)
            }
            Some(c) => Upstream::Refilter {
                body: c.upstream_body,
                etag: c.upstream_etag,
            },
            None => Upstream::Failed(format!("upstream answered 304 for {name} unasked")),
        },
        Ok(IndexFetch::Body { body, etag }) => Upstream::Body {
            body: Bytes::from(body),
            etag,
        },
        Err(error) => Upstream::Failed(format!(
            "cannot fetch the index of {name} from upstream: {error}"
        )),
    }
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
            format!("tuf-verifier: {} is not an index file\n", shown(&path)),
        );
    };
    // A plausible crate name (at most 64 letters, digits, `-` and `_`): shown as is.
    let name = name.to_owned();
    let refusing = |by: RefusedBy, fix: Option<String>| Refusing {
        asked: Asked::Index,
        crate_name: &name,
        version: None,
        by,
        fix,
    };
    let refuse = |refusal: Refusal| {
        bump(&proxy.counters.index_refused);
        tracing::warn!(crate_name = %name, %refusal, "index refused");
        proxy.refuse(
            refusing(refused_by(&refusal), None),
            refusal_status(&refusal),
            &format!("tuf-verifier refused the index of {name}: {refusal}"),
        )
    };
    // A name nobody you trust signed that looks like a trusted or well-known one is
    // refused with that said, not just not found: cargo prints a refusal's body.
    // Checked only on the way to a refusal: a served crate never pays for it.
    let looks_like = || tuf_core::typosquat::describe(&proxy.squat_guard.looks_like(&name));
    let not_found = |why: &str| {
        if let Some(looks_like) = looks_like() {
            bump(&proxy.counters.index_typosquats);
            tracing::warn!(crate_name = %name, %looks_like, "index refused: a likely typosquat");
            return proxy.refuse(
                refusing(RefusedBy::Typosquat, None),
                StatusCode::FORBIDDEN,
                &format!(
                    "tuf-verifier refused the index of {name}: `{name}` is not signed by anyone \
                     you trust and {looks_like}. Check the name in your Cargo.toml ({why})."
                ),
            );
        }
        bump(&proxy.counters.index_not_found);
        text(StatusCode::NOT_FOUND, format!("tuf-verifier: {why}\n"))
    };
    // Fail closed before asking upstream anything.
    if let Err(refusal) = proxy.trust.serving() {
        return refuse(refusal);
    }
    let snapshot_version = proxy.trust.snapshot_version().unwrap_or(0);
    // One policy for the whole request, however many reloads happen meanwhile.
    let active_policy = proxy.policy.as_ref().map(|state| state.current());
    let policy_generation = active_policy.as_ref().map_or(0, |a| a.generation);
    // Filtered under this snapshot and policy, and upstream answered for it moments ago:
    // the same answer, with no lookup and no upstream request. A signed change (a new
    // snapshot) or a policy reload is never served late; only upstream's own word is.
    let fresh = {
        let mut cache = proxy.index_cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.fresh(
            &path,
            (snapshot_version, policy_generation),
            proxy.settings.index_freshness,
            Utc::now(),
            Instant::now(),
        )
    };
    if let Some((filtered, etag)) = fresh {
        bump(&proxy.counters.index_answered_fresh);
        return answer_index(&proxy, &headers, filtered, &etag);
    }
    // A lookup already made under this snapshot is answered here, without a thread hop;
    // one that may fetch delegated roles runs on a blocking thread.
    let index_file = match proxy.judge().index_file_cached(&name, Utc::now()) {
        Some(known) => known,
        None => {
            let lookup_proxy = Arc::clone(&proxy);
            let lookup_name = name.clone();
            tokio::task::spawn_blocking(move || {
                lookup_proxy.judge().index_file(&lookup_name, Utc::now())
            })
            .await
            .unwrap_or_else(|e| Err(Refusal::Internal(Arc::new(e))))
        }
    };
    let index_file = match index_file {
        Ok(None) if proxy.signed_entries_required() => {
            return not_found(&format!(
                "no signed version of {name} (the crate has no signed index file)"
            ));
        }
        Ok(index_file) => index_file,
        Err(refusal) => return refuse(refusal),
    };
    let signed = index_file.is_some();
    let asked = ask_upstream_once(&proxy, &path, &name, snapshot_version, policy_generation).await;
    let (upstream, upstream_etag) = match asked {
        Upstream::Reuse(c) => return answer_index(&proxy, &headers, c.filtered, &c.etag),
        Upstream::Body { body, etag } => (UpstreamIndex::Listed(body), etag),
        Upstream::Refilter { body, etag } => (UpstreamIndex::Listed(body), Some(etag)),
        // Signed releases are served whatever upstream says (spec/proxy.md).
        Upstream::NotFound if signed => (UpstreamIndex::NotFound, None),
        Upstream::NotFound => return not_found(&format!("no crate {name} upstream")),
        Upstream::Failed(reason) if signed => {
            // Only upstream's own yanks are missing: the signed entries are served.
            tracing::warn!(crate_name = %name, %reason, "upstream index unavailable; serving the signed entries without upstream's yanks");
            bump(&proxy.counters.index_upstream_unavailable);
            (UpstreamIndex::Unavailable(reason), None)
        }
        Upstream::Failed(reason) => {
            bump(&proxy.counters.index_refused);
            tracing::warn!(crate_name = %name, %reason, "upstream index request failed");
            return text(StatusCode::BAD_GATEWAY, format!("tuf-verifier: {reason}\n"));
        }
    };
    let judge_proxy = Arc::clone(&proxy);
    let crate_name = name.clone();
    let judged_upstream = upstream.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let judge = judge_proxy.judge();
        let now = Utc::now();
        let mut answer = judge.judge(&crate_name, index_file, &judged_upstream, now)?;
        if let (Some(state), Some(active)) = (&judge_proxy.policy, &active_policy) {
            crate::policy::enforce::apply(
                state,
                active,
                &judge,
                snapshot_version,
                &crate_name,
                &mut answer,
                now,
            );
        }
        Ok(answer)
    })
    .await
    .unwrap_or_else(|e| Err(Refusal::Internal(Arc::new(e))));
    let answer = match answer {
        Ok(answer) => answer,
        Err(refusal) => return refuse(refusal),
    };
    let served = count_lines(&proxy.counters, &answer);
    if let Some(refusal) = answer.blocking {
        return refuse(refusal);
    }
    if served == 0 {
        if let Some(refusal) = crate::policy::enforce::refusal(&name, &answer) {
            bump(&proxy.counters.index_refused_policy);
            tracing::warn!(crate_name = %name, "index refused: the trust policy trusts no version");
            let squat = match looks_like() {
                Some(looks_like) => {
                    bump(&proxy.counters.index_typosquats);
                    format!("`{name}` is not signed by anyone you trust and {looks_like}. ")
                }
                None => String::new(),
            };
            return proxy.refuse(
                refusing(RefusedBy::Policy, refusal.fix),
                StatusCode::FORBIDDEN,
                &format!(
                    "tuf-verifier refused the index of {name}: {squat}{}",
                    refusal.text
                ),
            );
        }
        tracing::info!(crate_name = %name, versions = answer.versions.len(), "no signed version");
        return not_found(&format!("no signed version of {name}"));
    }
    // A crate with a version that passed every check is a trusted crate: names that
    // look like it are squats of it from now on.
    proxy.squat_guard.learn_served(&name);
    let body = Bytes::from(answer.body());
    let etag = content_etag(&body);
    if let (Some(upstream_etag), UpstreamIndex::Listed(upstream_body)) = (upstream_etag, upstream) {
        let mut cache = proxy.index_cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.put(
            path,
            CachedIndex {
                upstream_etag,
                upstream_body,
                snapshot_version,
                policy_generation,
                filtered: body.clone(),
                etag: etag.clone(),
                valid_until: answer.valid_until,
                fetched_at: Instant::now(),
            },
        );
    }
    answer_index(&proxy, &headers, body, &etag)
}

/// Adds what `answer` found to the line counters of `/status`; returns the lines served.
fn count_lines(counters: &super::Counters, answer: &CrateAnswer) -> u64 {
    let mut counts = LineCounts {
        dropped: answer.unreadable_upstream_lines,
        ..LineCounts::default()
    };
    for version in &answer.versions {
        match (&version.outcome, version.entry) {
            (Ok(_), entry) => {
                counts.served += 1;
                if entry == EntryAuth::Signed {
                    counts.from_signed_index += 1;
                    match version.upstream {
                        UpstreamLine::Missing => counts.withheld_upstream += 1,
                        UpstreamLine::Differs(_) => counts.differing_upstream += 1,
                        UpstreamLine::Same | UpstreamLine::Unknown => {}
                    }
                    if version.yanked_upstream && !version.yanked_by_owners {
                        counts.yanked_upstream += 1;
                    }
                } else {
                    counts.checksum_only += 1;
                }
            }
            (Err(dropped), _) => {
                counts.dropped += 1;
                if matches!(dropped, Dropped::Escape(Escape::ForeignRegistry { .. })) {
                    counts.foreign_registry += 1;
                }
                if matches!(dropped, Dropped::Policy { .. }) {
                    counts.policy += 1;
                }
            }
        }
    }
    for (counter, count) in [
        (&counters.lines_served, counts.served),
        (&counters.lines_dropped, counts.dropped),
        (
            &counters.lines_dropped_foreign_registry,
            counts.foreign_registry,
        ),
        (&counters.lines_from_signed_index, counts.from_signed_index),
        (&counters.lines_withheld_upstream, counts.withheld_upstream),
        (
            &counters.lines_differing_upstream,
            counts.differing_upstream,
        ),
        (&counters.lines_yanked_upstream, counts.yanked_upstream),
        (&counters.lines_checksum_only, counts.checksum_only),
        (&counters.lines_dropped_policy, counts.policy),
    ] {
        counter.fetch_add(count, Ordering::Relaxed);
    }
    counts.served
}

/// What one index answer adds to the counters.
#[derive(Default)]
struct LineCounts {
    served: u64,
    /// Lines dropped, for any reason.
    dropped: u64,
    /// ... of which because a dependency names another registry.
    foreign_registry: u64,
    /// Lines served from the crate's signed index file.
    from_signed_index: u64,
    /// ... of which upstream did not list.
    withheld_upstream: u64,
    /// ... of which upstream's line differed.
    differing_upstream: u64,
    /// ... of which upstream, not the owners, yanked.
    yanked_upstream: u64,
    /// Lines authenticated by `cksum` alone.
    checksum_only: u64,
    /// Lines the trust policy hid.
    policy: u64,
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

    /// An entry of `upstream` raw bytes, `filtered` filtered bytes and an upstream ETag
    /// of `etag` bytes.
    fn entry_of(upstream: usize, filtered: usize, etag: usize) -> CachedIndex {
        CachedIndex {
            upstream_etag: "e".repeat(etag),
            upstream_body: Bytes::from(vec![b'u'; upstream]),
            snapshot_version: 1,
            policy_generation: 0,
            filtered: Bytes::from(vec![b'f'; filtered]),
            etag: String::new(),
            valid_until: DateTime::<Utc>::MAX_UTC,
            fetched_at: Instant::now(),
        }
    }

    fn entry(bytes: usize) -> CachedIndex {
        entry_of(bytes, 0, 0)
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

    #[test]
    fn an_entry_counts_raw_filtered_and_etag_bytes_and_the_budget_is_inclusive() {
        assert_eq!(entry_of(30, 20, 7).size(), 57);
        let mut cache = IndexCache::new(100);
        // Exactly the budget: kept, and nothing else is evicted for it.
        cache.put("whole".into(), entry_of(50, 43, 7));
        assert!(cache.get("whole").is_some());
        assert_eq!(cache.usage().bytes, 100);
        let mut cache = IndexCache::new(100);
        cache.put("a".into(), entry_of(30, 20, 0));
        cache.put("b".into(), entry_of(30, 10, 10));
        assert_eq!((cache.usage().files, cache.usage().bytes), (2, 100));
        // One byte over: the least recently used goes.
        cache.put("c".into(), entry_of(1, 0, 0));
        assert!(cache.get("a").is_none() && cache.get("b").is_some());
        assert_eq!(cache.usage().bytes, 51);
    }

    #[test]
    fn a_kept_answer_is_fresh_only_under_its_snapshot_policy_expiry_and_window() {
        let window = Duration::from_secs(10);
        let now = Utc::now();
        let mut cache = IndexCache::new(1000);
        let kept = entry(10);
        let at = kept.fetched_at;
        let later = |seconds: u64| at + Duration::from_secs(seconds);
        cache.put("f".into(), kept);
        assert!(cache.fresh("f", (1, 0), window, now, at).is_some());
        assert!(cache.fresh("g", (1, 0), window, now, at).is_none());
        // Another snapshot or policy generation: filtered again.
        assert!(cache.fresh("f", (2, 0), window, now, at).is_none());
        assert!(cache.fresh("f", (1, 1), window, now, at).is_none());
        // Within the window up to its end, not at it; a window of zero: never fresh.
        assert!(cache.fresh("f", (1, 0), window, now, later(9)).is_some());
        assert!(cache.fresh("f", (1, 0), window, now, later(10)).is_none());
        assert!(cache.fresh("f", (1, 0), Duration::ZERO, now, at).is_none());
        // A delegation chain expired at `now`: not fresh.
        let mut expiring = entry(10);
        expiring.valid_until = now;
        let expiring_at = expiring.fetched_at;
        cache.put("e".into(), expiring);
        assert!(cache.fresh("e", (1, 0), window, now, expiring_at).is_none());
        let before = now - chrono::Duration::seconds(1);
        assert!(cache
            .fresh("e", (1, 0), window, before, expiring_at)
            .is_some());
        // Upstream answered too long ago, until it confirms the file again (its ETag).
        cache.put("o".into(), entry_of(10, 0, 3));
        let stale = Instant::now() + Duration::from_secs(11);
        assert!(cache.fresh("o", (1, 0), window, now, stale).is_none());
        cache.confirmed("o", "xxx");
        assert!(cache.fresh("o", (1, 0), window, now, stale).is_none());
        cache.confirmed("o", "eee");
        assert!(cache
            .fresh("o", (1, 0), window, now, Instant::now())
            .is_some());
    }
}
