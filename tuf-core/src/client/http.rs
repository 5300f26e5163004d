//! HTTP(S) fetcher: reqwest's blocking client over rustls (ring provider), with timeouts
//! and a hard bound on every body.

use std::time::Duration;

use super::fetch::{read_bounded, FetchError, Fetcher};

/// Fetches over HTTP and HTTPS.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::blocking::Client,
}

impl HttpFetcher {
    /// A fetcher with the given connect and whole-request timeouts.
    pub fn new(connect_timeout: Duration, timeout: Duration) -> Result<Self, FetchError> {
        // Installing the process-wide provider fails only if one is already installed,
        // which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::blocking::Client::builder()
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

impl Fetcher for HttpFetcher {
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        let transport = |e: reqwest::Error| FetchError::Transport {
            url: url.to_owned(),
            message: e.to_string(),
        };
        let response = self.client.get(url).send().map_err(transport)?;
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
