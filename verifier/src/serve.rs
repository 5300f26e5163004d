//! `tuf-verifier serve`: wires the configuration, the trust store, the cache and the
//! HTTP server together, refreshes the timestamp on the configured interval (with backoff
//! after a failure, [`crate::refresh_schedule`]), and stops as [`crate::shutdown`] says.

use std::future::IntoFuture;
use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use tuf_core::client::Limits;

use crate::cache::TarballCache;
use crate::config::ServeConfig;
use crate::proxy::{InFlight, Proxy, ProxySettings};
use crate::refresh_schedule::next_wait;
use crate::shutdown::StopRequests;
use crate::signed_index::SignedIndexFiles;
use crate::trust::{TrustConfig, TrustStore};
use crate::upstream;

/// How the proxy stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every request in flight finished.
    Drained,
    /// Asked to stop before it served (during the first refresh).
    BeforeServing,
    /// Requests were still in flight when the grace period ended or a second signal
    /// came; they were ended.
    InFlightEnded {
        /// How many.
        in_flight: u64,
    },
}

/// Runs the proxy until `stop` asks it to stop (SIGINT or SIGTERM, [`crate::shutdown`]).
/// `on_listening` is called with the proxy's URL once it accepts connections (after the
/// first refresh, successful or not).
pub async fn run(
    config: ServeConfig,
    stop: StopRequests,
    on_listening: impl FnOnce(&str),
) -> anyhow::Result<Stopped> {
    // A broken policy is fatal at start (the message names its file and line).
    let policy = match config.policy.clone() {
        Some(path) => {
            let url_imports = crate::policy::imports::UrlImports::new(
                config.connect_timeout,
                config.upstream_timeout,
                config.refresh_interval,
            );
            let loaded =
                crate::policy::enforce::PolicyState::load_off_runtime(path, url_imports).await?;
            Some(Arc::new(loaded.with_context(|| {
                "the trust policy cannot be used: fix it, or serve without --policy"
            })?))
        }
        None => None,
    };
    let well_known = match &config.well_known_crates {
        Some(path) => crate::squat::read_well_known(path)?,
        None => tuf_core::typosquat::parse_names(tuf_core::typosquat::WELL_KNOWN_CRATES),
    };
    let squat_guard = Arc::new(crate::squat::SquatGuards::new(well_known, policy.clone()));
    let client = upstream::UpstreamClient::new(
        config.connect_timeout,
        config.upstream_timeout,
        config.upstream_credential.clone(),
    )
    .context("cannot build the HTTP client")?;
    if let Some(credential) = client.credential() {
        tracing::info!(
            token = credential.source(),
            "upstream requests to its origin carry the proxy's token"
        );
    }
    if let Some(tokens) = &config.client_tokens {
        tracing::info!(tokens = tokens.len(), "clients must authenticate");
    }
    std::fs::create_dir_all(&config.state_dir).with_context(|| {
        format!(
            "cannot create the state directory {}",
            config.state_dir.display()
        )
    })?;
    let shared_state = match &config.shared_state {
        Some(url) => {
            let shared = crate::shared_state::SharedState::open(
                url,
                config.shared_state_endpoint.as_deref(),
            )?;
            tracing::info!(location = url, "tarballs and the rollback baseline are shared with other replicas (and verified again when read)");
            Some(Arc::new(shared))
        }
        None => None,
    };
    let trust_config = TrustConfig {
        shared: shared_state.clone(),
        metadata: config.metadata.clone(),
        root: config.root.clone(),
        metadata_dir: config.state_dir.join("metadata"),
        limits: Limits::default(),
        connect_timeout: config.connect_timeout,
        timeout: config.upstream_timeout,
        max_cached_lookups: config.max_cached_lookups,
    };
    // Blocking: it may fetch roots to check the chain, with a blocking client.
    let trust =
        Arc::new(tokio::task::spawn_blocking(move || TrustStore::new(trust_config)).await??);
    let first = Arc::clone(&trust);
    let first_refresh = tokio::select! {
        refreshed = tokio::task::spawn_blocking(move || first.refresh()) => refreshed?,
        () = stop.clone().requested() => return Ok(Stopped::BeforeServing),
    };
    let interval = config.refresh_interval;
    let first_wait = next_wait(
        trust.refresh_log().failures_in_a_row(),
        interval,
        fastrand::f64(),
    );
    if let Err(error) = first_refresh {
        tracing::error!(%error, retry_in = ?first_wait, "the first refresh failed; refusing everything until one succeeds, retrying with backoff");
    }
    trust.refresh_log().schedule(after(first_wait));
    let cache_dir = config.state_dir.join("tarballs");
    let (tuf_targets, timeouts, index_budget) = (
        config.tuf_targets.clone(),
        (config.connect_timeout, config.upstream_timeout),
        config.index_cache_size,
    );
    // Blocking: a blocking HTTP client is built.
    let index_files = tokio::task::spawn_blocking(move || {
        crate::upstream::MetadataFetcher::for_location(&tuf_targets, timeouts.0, timeouts.1)
            .map(|fetcher| SignedIndexFiles::new(&tuf_targets, fetcher, index_budget))
    })
    .await?
    .context("cannot set up the client of the TUF repository's targets")?;
    let tarball_cache_size = config.tarball_cache_size;
    let cache_dir_for_open = cache_dir.clone();
    let cache = tokio::task::spawn_blocking(move || {
        TarballCache::open(cache_dir_for_open, tarball_cache_size)
    })
    .await?
    .with_context(|| format!("cannot open the tarball cache {}", cache_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}: use --listen with another address (port 0 picks a free one)",
                config.listen
            )
        })?;
    let address = listener.local_addr()?;
    let url = format!("http://{address}");
    let public_url = config
        .public_url
        .clone()
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| url.clone());
    let proxy = Proxy::new(
        ProxySettings {
            public_url,
            upstream_index: config.upstream_index.clone(),
            upstream_dl: config.upstream_dl.clone(),
            max_crate_size: config.max_crate_size,
            max_index_size: config.max_index_size,
            allowed_registries: config.allowed_registries.clone(),
            index_cache_size: config.index_cache_size,
            index_freshness: config.index_freshness,
            tarball_memory_size: config.tarball_memory_size,
            require_signed_index_entries: config.require_signed_index_entries,
            client_tokens: config.client_tokens.clone(),
            shared_state,
        },
        Arc::clone(&trust),
        client,
        cache,
        index_files,
        policy.clone(),
        squat_guard,
    );
    if let Some(policy) = policy {
        crate::policy::enforce::watch(policy);
    }
    let refresher = Arc::clone(&trust);
    tokio::spawn(async move {
        let mut wait = first_wait;
        loop {
            tokio::time::sleep(wait).await;
            let trust = Arc::clone(&refresher);
            let started = chrono::Utc::now();
            if let Err(error) = tokio::task::spawn_blocking(move || trust.refresh()).await {
                // The refresh recorded nothing: its thread panicked.
                refresher.refresh_log().record(
                    started,
                    chrono::Utc::now(),
                    Some(format!("the refresh did not finish: {error}")),
                );
            }
            let log = refresher.refresh_log();
            let failures_in_a_row = log.failures_in_a_row();
            wait = next_wait(failures_in_a_row, interval, fastrand::f64());
            if failures_in_a_row > 0 {
                tracing::info!(retry_in = ?wait, failures_in_a_row, "next refresh attempt");
            }
            log.schedule(after(wait));
        }
    });
    tracing::info!(%url, upstream = %config.upstream_index, "serving");
    for registry in config.allowed_registries.entries() {
        tracing::info!(%registry, "index lines may depend on crates of this registry (allowed_registries)");
    }
    println!("tuf-verifier listening on {url}");
    let _ = std::io::stdout().flush();
    on_listening(&url);
    let in_flight = proxy.in_flight_requests();
    let server = axum::serve(listener, proxy.router())
        .with_graceful_shutdown(stop.clone().requested())
        .into_future();
    let mut server = tokio::spawn(server);
    // Only a stop request ends the server, unless it fails.
    tokio::select! {
        ended = &mut server => return server_ended(ended),
        () = stop.clone().requested() => {}
    }
    let grace = config.shutdown_grace;
    tracing::info!(
        in_flight = in_flight.count(),
        ?grace,
        "finishing the requests in flight"
    );
    tokio::select! {
        ended = &mut server => server_ended(ended),
        () = tokio::time::sleep(grace) => Ok(end_in_flight(server, &in_flight, "the shutdown grace period ended")),
        () = stop.insisted() => Ok(end_in_flight(server, &in_flight, "a second stop signal came")),
    }
}

/// What the server task's end means: it drained, or it failed.
fn server_ended(
    ended: Result<std::io::Result<()>, tokio::task::JoinError>,
) -> anyhow::Result<Stopped> {
    ended?.context("the HTTP server failed")?;
    tracing::info!("stopped");
    Ok(Stopped::Drained)
}

/// Ends the requests still in flight (their connections are closed).
fn end_in_flight(
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    in_flight: &InFlight,
    why: &str,
) -> Stopped {
    server.abort();
    let in_flight = in_flight.count();
    tracing::warn!(in_flight, "{why}: ending the requests still in flight");
    Stopped::InFlightEnded { in_flight }
}

/// The time `wait` from now.
fn after(wait: std::time::Duration) -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    chrono::Duration::from_std(wait)
        .ok()
        .and_then(|wait| now.checked_add_signed(wait))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}
