//! `/healthz`, `/status.json` and the status page: whether the proxy serves and why not,
//! the trusted metadata and its refreshes, upstream's health, the caches against their
//! budgets, the last refusals with their reasons and fixes, and every counter. The page
//! ([`super::status_page`]) is made from the same JSON value.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{text, Proxy};

/// `200 ok` or `503` and why nothing is served; then why the last refresh failed, if it
/// did, and when the next one is due.
pub(super) async fn healthz(State(proxy): State<Arc<Proxy>>) -> Response {
    let refresh = proxy.trust.refresh_log().health_lines(chrono::Utc::now());
    match proxy.trust.serving() {
        Ok(()) => text(StatusCode::OK, format!("ok\n{refresh}")),
        Err(refusal) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{refusal}\n{refresh}"),
        ),
    }
}

/// The status as JSON (spec/proxy.md lists every field). Only short locks: no blocking.
pub(super) fn status_value(proxy: &Proxy) -> serde_json::Value {
    let c = &proxy.counters;
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let index_cache = proxy
        .index_cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .usage();
    serde_json::json!({
        "trust": proxy.trust.summary(),
        "index": {
            "served": load(&c.index_served),
            "not_modified": load(&c.index_not_modified),
            "answered_fresh": load(&c.index_answered_fresh),
            "upstream_shared": load(&c.index_upstream_shared),
            "not_found": load(&c.index_not_found),
            "refused": load(&c.index_refused),
            "lines_served": load(&c.lines_served),
            "lines_dropped": load(&c.lines_dropped),
            "lines_dropped_foreign_registry": load(&c.lines_dropped_foreign_registry),
            "lines_from_signed_index": load(&c.lines_from_signed_index),
            "lines_withheld_upstream": load(&c.lines_withheld_upstream),
            "lines_differing_upstream": load(&c.lines_differing_upstream),
            "lines_yanked_upstream": load(&c.lines_yanked_upstream),
            "lines_checksum_only": load(&c.lines_checksum_only),
            "upstream_unavailable": load(&c.index_upstream_unavailable),
            "lines_dropped_policy": load(&c.lines_dropped_policy),
            "refused_policy": load(&c.index_refused_policy),
            "typosquats": load(&c.index_typosquats),
        },
        "downloads": {
            "served": load(&c.downloads_served),
            "served_from_cache": load(&c.downloads_from_cache),
            "served_from_memory": load(&c.downloads_from_memory),
            "served_from_shared": load(&c.downloads_from_shared),
            "refused": load(&c.downloads_refused),
            "refused_policy": load(&c.downloads_refused_policy),
            "failed_upstream": load(&c.downloads_failed),
            "upstream_requests": load(&c.upstream_downloads),
        },
        "clients_refused": load(&c.clients_refused),
        "requests_in_flight": proxy.requests_in_flight.count(),
        "upstream": proxy.upstream_health.status(chrono::Utc::now()),
        "refusals": {
            "total": proxy.refusals.total(),
            "recent": proxy.refusals.recent(),
        },
        "cache": proxy.cache.usage(),
        "shared_state": proxy.settings.shared_state.as_ref().map(|s| s.status()),
        "tarball_memory": proxy.memory.usage(),
        "index_cache": index_cache,
        "signed_index_files": proxy.index_files.usage(),
        "policy": proxy.policy.as_ref().map(|p| p.status()),
        "typosquat_corpus": {
            "well_known": proxy.squat_guard.well_known_names(),
            "learned": proxy.squat_guard.learned_names(),
        },
    })
}

pub(super) async fn status_json(State(proxy): State<Arc<Proxy>>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        status_value(&proxy).to_string(),
    )
        .into_response()
}

pub(super) async fn status_page(State(proxy): State<Arc<Proxy>>) -> Response {
    let html = super::status_page::render(&status_value(&proxy));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Nothing from elsewhere: no script, style or image from another origin.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
            ),
        ],
        html,
    )
        .into_response()
}
