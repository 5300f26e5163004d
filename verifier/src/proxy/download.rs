//! Downloads: a tarball is passed on only if it is exactly the signed target, from the
//! verified cache or fetched once from upstream (spec/proxy.md, "Downloads").

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::refusals::{shown, Asked, RefusedBy, Refusing};
use super::upstream_health::UpstreamRequest;
use super::{bump, refusal_status, refused_by, text, Proxy};
use crate::shared_state::SharedTarball;
use crate::signed_target::SignedTarget;
use crate::upstream::{self, DownloadError};

pub(super) async fn download(
    State(proxy): State<Arc<Proxy>>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    let refusing = |by: RefusedBy, fix: Option<String>| Refusing {
        asked: Asked::Download,
        crate_name: &name,
        version: Some(&version),
        by,
        fix,
    };
    let release = match proxy.lookup(&name, &version).await {
        Ok(release) => release,
        Err(refusal) => {
            // The name and version come from the request, and may not be a crate's:
            // shown bounded and escaped.
            let (shown_name, shown_version) = (shown(&name), shown(&version));
            bump(&proxy.counters.downloads_refused);
            tracing::warn!(crate_name = %shown_name, version = %shown_version, %refusal, "download refused");
            return proxy.refuse(
                refusing(refused_by(&refusal), None),
                refusal_status(&refusal),
                &format!("tuf-verifier refused {shown_name} {shown_version}: {refusal}"),
            );
        }
    };
    if let Some(state) = &proxy.policy {
        let snapshot = proxy.trust.snapshot_version().unwrap_or(0);
        let known =
            crate::policy::enforce::download_verdict_cached(state, snapshot, &name, &version);
        let (judge_proxy, state) = (Arc::clone(&proxy), Arc::clone(state));
        let (judged_name, judged_version) = (name.clone(), version.clone());
        let verdict = match known {
            Some(verdict) => verdict,
            None => tokio::task::spawn_blocking(move || {
                let snapshot = judge_proxy.trust.snapshot_version().unwrap_or(0);
                crate::policy::enforce::download_verdict(
                    &state,
                    &judge_proxy.judge(),
                    snapshot,
                    &judged_name,
                    &judged_version,
                    chrono::Utc::now(),
                )
            })
            .await
            .unwrap_or_else(|e| Err(crate::policy::enforce::unjudged(&e))),
        };
        if let Err(refusal) = verdict {
            bump(&proxy.counters.downloads_refused);
            bump(&proxy.counters.downloads_refused_policy);
            tracing::warn!(crate_name = %name, %version, "download refused by the trust policy");
            return proxy.refuse(
                refusing(RefusedBy::Policy, refusal.fix),
                StatusCode::FORBIDDEN,
                &format!("tuf-verifier refused {name} {version}: {}", refusal.text),
            );
        }
    }
    let bytes = match proxy.memory.get(&release) {
        // Verified when it was kept (verified_memory's threat model): no hop, no hash.
        Some(bytes) => {
            bump(&proxy.counters.downloads_from_cache);
            bump(&proxy.counters.downloads_from_memory);
            Ok(bytes)
        }
        None => {
            // The disk is untrusted: `get` re-hashes what it reads.
            let cache = proxy.cache.clone();
            let cached_release = Arc::clone(&release);
            let cached = tokio::task::spawn_blocking(move || cache.get(&cached_release))
                .await
                .ok()
                .flatten();
            match cached {
                Some(bytes) => {
                    bump(&proxy.counters.downloads_from_cache);
                    proxy.memory.put(&release, bytes.clone());
                    Ok(bytes)
                }
                None => fetch_once(&proxy, &name, &version, &release).await,
            }
        }
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
        Err(error) if error.is_upstream_fault() => {
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
            proxy.refuse(
                refusing(RefusedBy::Tuf, None),
                StatusCode::FORBIDDEN,
                &format!("tuf-verifier refused {name} {version}: {error}"),
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
    release: &Arc<SignedTarget>,
) -> Result<Bytes, DownloadError> {
    let fetch = || async {
        if let Some(bytes) = from_shared_state(proxy, release).await {
            return Ok(bytes);
        }
        let dl = proxy.upstream_dl().await?.to_owned();
        let url = upstream::download_url(&dl, name, version, &release.sha256);
        bump(&proxy.counters.upstream_downloads);
        let fetched =
            upstream::fetch_tarball(&proxy.client, &url, release, proxy.settings.max_crate_size)
                .await;
        proxy.upstream_answered(UpstreamRequest::Download, &fetched);
        let bytes = fetched?;
        keep_verified(proxy, release, &bytes).await;
        if let Some(shared) = &proxy.settings.shared_state {
            // Verified bytes only; this also replaces an object that was refused.
            if let Err(error) = shared.put_tarball(release, bytes.clone()).await {
                tracing::warn!(%error, "cannot write the verified tarball to the shared state");
            }
        }
        Ok(bytes)
    };
    let (result, _) = proxy
        .tarball_flights
        .run(release.sha256.clone(), fetch)
        .await;
    result
}

/// The tarball from the shared state, if another replica stored it and it is still the
/// signed bytes; it then goes to this replica's disk cache and memory too. `None` sends
/// the request upstream (and a refused object is then replaced).
async fn from_shared_state(proxy: &Arc<Proxy>, release: &Arc<SignedTarget>) -> Option<Bytes> {
    let shared = proxy.settings.shared_state.as_ref()?;
    match shared.tarball(release).await {
        Ok(SharedTarball::Verified(bytes)) => {
            bump(&proxy.counters.downloads_from_shared);
            keep_verified(proxy, release, &bytes).await;
            Some(bytes)
        }
        Ok(SharedTarball::Missing | SharedTarball::Refused) => None,
        Err(error) => {
            tracing::warn!(%error, "cannot read the shared tarball cache; fetching upstream");
            None
        }
    }
}

/// Keeps verified bytes of `release` in this replica's disk cache and memory.
async fn keep_verified(proxy: &Arc<Proxy>, release: &Arc<SignedTarget>, bytes: &Bytes) {
    let cache = proxy.cache.clone();
    let (to_store, stored_release) = (bytes.clone(), Arc::clone(release));
    let stored = tokio::task::spawn_blocking(move || cache.put(&stored_release, &to_store)).await;
    if let Ok(Err(error)) = stored {
        tracing::warn!(%error, "cannot write the verified tarball to the cache");
    }
    proxy.memory.put(release, bytes.clone());
}
