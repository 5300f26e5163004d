//! HTTP(S) fetcher: reqwest's blocking client over rustls (ring provider), with timeouts
//! and a hard bound on every body.

use std::sync::Arc;
use std::time::Duration;

use super::fetch::{read_bounded, FetchError, Fetcher};

/// Why no TLS configuration could be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// The protocol versions are not supported by the provider.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The client TLS configuration for every HTTPS request of this workspace: rustls with
/// the ring provider, given explicitly (a library must not install a process-wide
/// default provider), and the operating system's certificate verifier, as reqwest's own
/// default. Pass it to `reqwest::ClientBuilder::tls_backend_preconfigured`.
pub fn tls_config() -> Result<rustls::ClientConfig, TlsConfigError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth())
}

/// Fetches over HTTP and HTTPS.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::blocking::Client,
}

impl HttpFetcher {
    /// A fetcher with the given connect and whole-request timeouts. Call it outside an
    /// async runtime (reqwest's blocking client runs its own).
    pub fn new(connect_timeout: Duration, timeout: Duration) -> Result<Self, FetchError> {
        let tls = tls_config().map_err(|e| FetchError::Transport {
            url: String::new(),
            message: e.to_string(),
        })?;
        let client = reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .user_agent(concat!("tuf-crates/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Transport {
                url: String::new(),
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self { client })
    }
}

/// A reqwest failure as a [`FetchError::Transport`] saying what kind it was: a timeout, a
/// connection that failed, a body that broke off.
pub fn transport_error(url: &str, error: &reqwest::Error) -> FetchError {
    let message = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        format!("cannot connect: {error}")
    } else if error.is_body() || error.is_decode() {
        format!("the body broke off: {error}")
    } else {
        error.to_string()
    };
    FetchError::Transport {
        url: url.to_owned(),
        message,
    }
}

impl Fetcher for HttpFetcher {
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        let response = self
            .client
            .get(url)
            .send()
            .map_err(|e| transport_error(url, &e))?;
        FetchError::check_http_status(url, response.status().as_u16())?;
        // Refuse early when the server announces too much; read_bounded still enforces
        // the limit on what actually arrives.
        if response
            .content_length()
            .is_some_and(|len| len > max_length)
        {
            return Err(FetchError::TooLong {
                url: url.to_owned(),
                max: max_length,
            });
        }
        read_bounded(response, url, max_length)
    }
}
