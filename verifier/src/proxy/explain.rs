//! `/explain/<crate>` and `/explain/<crate>/<version>`: what the index path serves of a
//! crate and why, as JSON ([`crate::explain::Explanation`]), for `tuf-verifier explain
//! --proxy`. Upstream is asked afresh; nothing is cached or counted.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;

use super::{text, Proxy};
use crate::explain::{ask_upstream, explain, Explanation, PolicyInForce};

pub(super) async fn explain_crate(
    State(proxy): State<Arc<Proxy>>,
    Path(name): Path<String>,
) -> Response {
    answer(proxy, name, None).await
}

pub(super) async fn explain_version(
    State(proxy): State<Arc<Proxy>>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    answer(proxy, name, Some(version)).await
}

async fn answer(proxy: Arc<Proxy>, name: String, version: Option<String>) -> Response {
    if let Err(error) = tuf_core::layout::validate_crate_name(&name) {
        return text(StatusCode::NOT_FOUND, format!("tuf-verifier: {error}\n"));
    }
    if let Some(Err(error)) = version.as_deref().map(tuf_core::layout::validate_version) {
        return text(StatusCode::NOT_FOUND, format!("tuf-verifier: {error}\n"));
    }
    let upstream = ask_upstream(
        &proxy.client,
        &proxy.settings.upstream_index,
        &name,
        proxy.settings.max_index_size,
    )
    .await;
    let judged = Arc::clone(&proxy);
    let explanation = tokio::task::spawn_blocking(move || -> Explanation {
        let in_force = judged.policy.as_deref().map(|state| PolicyInForce {
            state,
            snapshot: judged.trust.snapshot_version().unwrap_or(0),
        });
        let mut explanation = explain(
            &judged.judge(),
            in_force.as_ref(),
            &name,
            version.as_deref(),
            &upstream,
            Utc::now(),
        );
        if !explanation.ok {
            explanation.looks_like = judged.squat_guard.looks_like(&name);
        }
        explanation
    })
    .await;
    match explanation {
        Ok(explanation) => Json(explanation).into_response(),
        Err(error) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("tuf-verifier: the explanation did not finish: {error}\n"),
        ),
    }
}
