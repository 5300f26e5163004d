//! Clients authenticating to the proxy (`client_tokens_file`): every route but
//! `/healthz` wants an `Authorization` header holding a token on the list. cargo sends
//! its registry token there when `config.json` says `auth-required` (RFC 3139).
//!
//! Without a token, or with one not on the list, the answer is 401 with
//! `WWW-Authenticate: Cargo`, and nothing else: not whether the crate exists, not the
//! status page. The token is never logged; the name the tokens file gives it is, at
//! debug level.

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{bump, Proxy};

/// The routes anyone may ask: a load balancer's health check.
const OPEN_PATHS: &[&str] = &["/healthz"];

/// Lets a request through only with a client token on the list (when one is kept).
pub(super) async fn require_client_token(
    axum::extract::State(proxy): axum::extract::State<Arc<Proxy>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(tokens) = &proxy.settings.client_tokens else {
        return next.run(request).await;
    };
    if OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    match given.and_then(|value| tokens.check(value)) {
        Some(client) => {
            tracing::debug!(client, path = request.uri().path(), "client authenticated");
            next.run(request).await
        }
        None => {
            bump(&proxy.counters.clients_refused);
            let why = if given.is_some() {
                "the token cargo sent is not one this proxy accepts"
            } else {
                "this proxy requires a token and the request had none"
            };
            tracing::info!(path = request.uri().path(), why, "client refused");
            (
                StatusCode::UNAUTHORIZED,
                [
                    (header::WWW_AUTHENTICATE, "Cargo".to_owned()),
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
                ],
                format!(
                    "tuf-verifier: {why}: ask the proxy's operator for a token \
                     (`tuf-verifier client-token new`), then `cargo login --registry NAME`\n"
                ),
            )
                .into_response()
        }
    }
}
