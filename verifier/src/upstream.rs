//! Requests to the upstream registry and TUF repository: every one with the client's
//! connect and whole-request timeouts, and every body bounded while it streams in.

use std::time::Duration;

use axum::body::Bytes;
use tuf_core::client::FetchError;
use tuf_core::hash::StreamVerifier;

use crate::trust::SignedRelease;

/// The HTTP client for upstream requests: rustls with the ring provider, no redirects
/// beyond reqwest's default limit, the given timeouts.
pub fn build_client(
    connect_timeout: Duration,
    timeout: Duration,
) -> anyhow::Result<reqwest::Client> {
    // Installing the process-wide provider fails only if one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .user_agent(concat!("tuf-verifier/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// Reads a response body chunk by chunk, failing at the first byte past `max`.
async fn read_body(
    mut response: reqwest::Response,
    url: &str,
    max: u64,
) -> Result<Vec<u8>, FetchError> {
    if response.content_length().is_some_and(|len| len > max) {
        return Err(FetchError::TooLong {
            url: url.to_owned(),
            max,
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(url, &e))? {
        if (body.len() as u64).saturating_add(chunk.len() as u64) > max {
            return Err(FetchError::TooLong {
                url: url.to_owned(),
                max,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn transport(url: &str, error: &reqwest::Error) -> FetchError {
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

/// GET `url`, at most `max` bytes; 404 and 403 are [`FetchError::NotFound`].
pub async fn get_bounded(
    client: &reqwest::Client,
    url: &str,
    max: u64,
) -> Result<Vec<u8>, FetchError> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| transport(url, &e))?;
    FetchError::check_http_status(url, response.status().as_u16())?;
    read_body(response, url, max).await
}

/// The download template of a sparse registry: its `config.json`'s `dl`.
pub async fn registry_dl(client: &reqwest::Client, index_url: &str) -> Result<String, String> {
    let url = format!("{index_url}config.json");
    let body = get_bounded(client, &url, 64 * 1024)
        .await
        .map_err(|e| e.to_string())?;
    let config: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))?;
    config
        .get("dl")
        .and_then(|dl| dl.as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("{url}: no \"dl\" string"))
}

/// An upstream index file.
pub enum IndexFetch {
    /// The crate does not exist upstream.
    NotFound,
    /// Unchanged since the ETag sent.
    NotModified,
    /// The file, and its upstream ETag.
    Body {
        /// The bytes.
        body: Vec<u8>,
        /// Upstream's ETag, to ask conditionally next time.
        etag: Option<String>,
    },
}

/// GET an index file, conditionally when an upstream ETag is known.
pub async fn get_index(
    client: &reqwest::Client,
    url: &str,
    max: u64,
    etag: Option<&str>,
) -> Result<IndexFetch, FetchError> {
    let mut request = client.get(url).header("cargo-protocol", "version=1");
    if let Some(etag) = etag {
        request = request.header(reqwest::header::IF_NONE_MATCH, etag);
    }
    let response = request.send().await.map_err(|e| transport(url, &e))?;
    let status = response.status();
    match status {
        reqwest::StatusCode::NOT_MODIFIED if etag.is_some() => return Ok(IndexFetch::NotModified),
        // cargo treats these as "no such crate" too.
        reqwest::StatusCode::NOT_FOUND
        | reqwest::StatusCode::GONE
        | reqwest::StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS => return Ok(IndexFetch::NotFound),
        reqwest::StatusCode::OK => {}
        _ => {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            })
        }
    }
    let etag = response
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_body(response, url, max).await?;
    Ok(IndexFetch::Body { body, etag })
}

/// Why a tarball download was not passed on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownloadError {
    /// Upstream could not be reached or broke off (retrying may help).
    #[error("upstream download failed: {0}")]
    Upstream(String),
    /// Upstream answered with an error status.
    #[error("upstream answered HTTP {0}")]
    Status(u16),
    /// The bytes do not match what was signed (an attack or a broken mirror).
    #[error("the tarball from upstream does not match the signed target {target}: {reason}")]
    Mismatch {
        /// The target path.
        target: String,
        /// Length or digest.
        reason: String,
    },
    /// The signed length is beyond the configured cap.
    #[error(
        "the signed length {length} is over the proxy's limit of {max} bytes (max_crate_size)"
    )]
    TooLarge {
        /// The signed length.
        length: u64,
        /// The cap.
        max: u64,
    },
}

impl DownloadError {
    /// True when retrying may help (transport failures, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Upstream(_) => true,
            Self::Status(status) => *status >= 500 || *status == 429,
            Self::Mismatch { .. } | Self::TooLarge { .. } => false,
        }
    }
}

/// Downloads a tarball, reading at most its signed length and checking every signed
/// digest while it streams in. Returns the bytes only when they are exactly the signed
/// target.
pub async fn fetch_tarball(
    client: &reqwest::Client,
    url: &str,
    release: &SignedRelease,
    max_crate_size: u64,
) -> Result<Bytes, DownloadError> {
    if release.length > max_crate_size {
        return Err(DownloadError::TooLarge {
            length: release.length,
            max: max_crate_size,
        });
    }
    let mismatch = |reason: String| DownloadError::Mismatch {
        target: release.target.clone(),
        reason,
    };
    let mut verifier = StreamVerifier::new(Some(release.length), Some(&release.hashes))
        .map_err(|e| mismatch(e.to_string()))?;
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| DownloadError::Upstream(transport(url, &e).to_string()))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(DownloadError::Status(response.status().as_u16()));
    }
    if let Some(announced) = response.content_length() {
        if announced > release.length {
            return Err(mismatch(format!(
                "upstream announced {announced} bytes, {} are signed",
                release.length
            )));
        }
    }
    let capacity = usize::try_from(release.length).unwrap_or(0);
    let mut body = Vec::with_capacity(capacity);
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                return Err(DownloadError::Upstream(format!(
                    "{} after {} of {} bytes",
                    transport(url, &e),
                    body.len(),
                    release.length
                )))
            }
        };
        verifier.update(&chunk).map_err(|_| {
            mismatch(format!(
                "upstream sent more than the {} bytes signed",
                release.length
            ))
        })?;
        body.extend_from_slice(&chunk);
    }
    verifier.finish().map_err(|e| mismatch(e.to_string()))?;
    Ok(Bytes::from(body))
}

/// The path of a crate's index file under the index root, as cargo computes it from the
/// lowercased name: `1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd…`.
pub fn index_path(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    format!("{}/{lower}", prefix(&lower))
}

fn prefix(name: &str) -> String {
    match name.len() {
        0 => String::new(),
        1 => "1".into(),
        2 => "2".into(),
        3 => format!("3/{}", name.get(..1).unwrap_or_default()),
        _ => format!(
            "{}/{}",
            name.get(..2).unwrap_or_default(),
            name.get(2..4).unwrap_or_default()
        ),
    }
}

/// The download URL of a crate version from a registry's `dl` template (cargo's rules:
/// the markers `{crate}`, `{version}`, `{prefix}`, `{lowerprefix}`, `{sha256-checksum}`;
/// without any, `/{crate}/{version}/download` is appended).
pub fn download_url(dl: &str, name: &str, version: &str, sha256: &str) -> String {
    const MARKERS: [&str; 5] = [
        "{crate}",
        "{version}",
        "{prefix}",
        "{lowerprefix}",
        "{sha256-checksum}",
    ];
    if !MARKERS.iter().any(|m| dl.contains(m)) {
        return format!("{}/{name}/{version}/download", dl.trim_end_matches('/'));
    }
    dl.replace("{crate}", name)
        .replace("{version}", version)
        .replace("{prefix}", &prefix(name))
        .replace("{lowerprefix}", &prefix(&name.to_ascii_lowercase()))
        .replace("{sha256-checksum}", sha256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths_follow_cargo() {
        assert_eq!(index_path("a"), "1/a");
        assert_eq!(index_path("ab"), "2/ab");
        assert_eq!(index_path("Abc"), "3/a/abc");
        assert_eq!(index_path("Serde_JSON"), "se/rd/serde_json");
    }

    #[test]
    fn download_urls_follow_cargo() {
        assert_eq!(
            download_url("https://static.crates.io/crates", "serde", "1.0.0", "ab"),
            "https://static.crates.io/crates/serde/1.0.0/download"
        );
        assert_eq!(
            download_url(
                "https://r.example/{lowerprefix}/{crate}/{crate}-{version}.crate?h={sha256-checksum}",
                "Serde",
                "1.0.0",
                "ab"
            ),
            "https://r.example/se/rd/Serde/Serde-1.0.0.crate?h=ab"
        );
    }
}
