//! `/healthz`, `/status.json` and the status page: what is served and refused, the
//! trusted metadata, and the caches against their budgets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{text, Proxy};

pub(super) async fn healthz(State(proxy): State<Arc<Proxy>>) -> Response {
    match proxy.trust.serving() {
        Ok(()) => text(StatusCode::OK, "ok\n".into()),
        Err(refusal) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{refusal}\n")),
    }
}

/// The status as JSON (spec/proxy.md lists every field). Only short locks: no blocking.
fn status_value(proxy: &Proxy) -> serde_json::Value {
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
            "refused": load(&c.downloads_refused),
            "refused_policy": load(&c.downloads_refused_policy),
            "failed_upstream": load(&c.downloads_failed),
            "upstream_requests": load(&c.upstream_downloads),
        },
        "cache": proxy.cache.usage(),
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

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(super) async fn status_page(State(proxy): State<Arc<Proxy>>) -> Response {
    let value = status_value(&proxy);
    let mut rows = String::new();
    for section in [
        "trust",
        "index",
        "downloads",
        "cache",
        "index_cache",
        "signed_index_files",
        "policy",
    ] {
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
