//! Requests to the upstream registry and to the TUF repository: every one with the
//! client's connect and whole-request timeouts, and every body bounded while it streams
//! in.
//!
//! Upstream registry requests are async ([`reqwest::Client`]). TUF metadata is fetched
//! by [`MetadataFetcher`], which blocks: the trust store calls it from blocking threads
//! only, so no async worker ever waits on the network.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use tuf_core::client::{
    tls_config, transport_error, DirectoryFetcher, FetchError, Fetcher, HttpFetcher,
};
use tuf_core::hash::{HashError, StreamVerifier};

use crate::config::MetadataLocation;
use crate::signed_target::SignedTarget;
use crate::upstream_auth::{may_follow_redirect, UpstreamCredential};

/// The HTTP client for upstream requests: rustls with the ring provider (given to this
/// client, not installed process-wide), the given timeouts and redirect policy.
fn build_client(
    connect_timeout: Duration,
    timeout: Duration,
    redirects: reqwest::redirect::Policy,
) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config()?)
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .user_agent(concat!("tuf-verifier/", env!("CARGO_PKG_VERSION")))
        .redirect(redirects)
        .build()?)
}

/// The client for upstream registry requests, with the proxy's upstream credential
/// when one is configured: [`UpstreamClient::get`] attaches it to a request only when
/// the URL's origin is one the credential may go to.
#[derive(Debug, Clone)]
pub struct UpstreamClient {
    http: reqwest::Client,
    credential: Option<Arc<UpstreamCredential>>,
}

impl UpstreamClient {
    /// A client with the given timeouts (see [`build_client`]) and credential. Without
    /// one, reqwest's default redirect limit; with one, a chain also stops once it has
    /// left the first URL's origin ([`may_follow_redirect`]).
    pub fn new(
        connect_timeout: Duration,
        timeout: Duration,
        credential: Option<Arc<UpstreamCredential>>,
    ) -> anyhow::Result<Self> {
        let redirects = match &credential {
            None => reqwest::redirect::Policy::default(),
            Some(_) => reqwest::redirect::Policy::custom(|attempt| {
                if may_follow_redirect(attempt.previous()) {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }),
        };
        Ok(Self {
            http: build_client(connect_timeout, timeout, redirects)?,
            credential,
        })
    }

    /// A GET request for `url`, carrying the credential if `url` may have it.
    pub fn get(&self, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.get(url);
        match self.credential.as_ref().and_then(|c| c.header_for(url)) {
            Some(value) => request.header(reqwest::header::AUTHORIZATION, value),
            None => request,
        }
    }

    /// The credential, if any.
    pub fn credential(&self) -> Option<&UpstreamCredential> {
        self.credential.as_deref()
    }

    /// The error for upstream refusing the request for `url` with `status` for want of
    /// credentials: 401 always, 403 when the request carried the credential (a 403
    /// without one is left to mean what it usually does, a missing file); `None`
    /// otherwise. The message says what to check and never holds the token.
    pub fn refused_credentials(&self, url: &str, status: u16) -> Option<FetchError> {
        let sent = self
            .credential
            .as_ref()
            .and_then(|c| c.header_for(url))
            .is_some();
        if status != 401 && !(status == 403 && sent) {
            return None;
        }
        // Sent to cargo users too: it names the setting, not the file.
        let message = if sent {
            format!(
                "upstream refused the proxy's credentials (HTTP {status}): the proxy's \
                 operator should check its upstream token (upstream_token_file or \
                 upstream_token_env) and that upstream accepts it"
            )
        } else {
            format!(
                "upstream requires authentication (HTTP {status}) and the proxy sends no \
                 token to it: set upstream_token_file or upstream_token_env (and \
                 upstream_token_origins for another download host)"
            )
        };
        Some(FetchError::Unauthorized {
            url: url.to_owned(),
            status,
            message,
        })
    }
}

/// Fetches TUF metadata for the updater: a local directory, or HTTP(S) with a blocking
/// client. Blocking: call it, and create it, from a blocking thread, never from an async
/// task.
#[derive(Debug, Clone)]
pub enum MetadataFetcher {
    /// A directory of metadata files.
    Directory(DirectoryFetcher),
    /// An HTTP(S) base URL.
    Http(HttpFetcher),
}

impl MetadataFetcher {
    /// The fetcher for `location`, with these timeouts for HTTP.
    pub fn for_location(
        location: &MetadataLocation,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, FetchError> {
        Ok(match location {
            MetadataLocation::Url(_) => Self::Http(HttpFetcher::new(connect_timeout, timeout)?),
            MetadataLocation::Directory(dir) => Self::Directory(DirectoryFetcher::new(dir.clone())),
        })
    }
}

impl Fetcher for MetadataFetcher {
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        match self {
            Self::Directory(fetcher) => fetcher.fetch(url, max_length),
            Self::Http(fetcher) => fetcher.fetch(url, max_length),
        }
    }
}

/// Reads a response body chunk by chunk, failing at the first byte past `max`.
async fn read_body(
    mut response: reqwest::Response,
    url: &str,
    max: u64,
) -> Result<Vec<u8>, FetchError> {
    let too_long = || FetchError::TooLong {
        url: url.to_owned(),
        max,
    };
    if response.content_length().is_some_and(|len| len > max) {
        return Err(too_long());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(url, &e))?
    {
        if (body.len() as u64).saturating_add(chunk.len() as u64) > max {
            return Err(too_long());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// GET `url`, at most `max` bytes; 404 and 403 are [`FetchError::NotFound`].
pub async fn get_bounded(
    client: &UpstreamClient,
    url: &str,
    max: u64,
) -> Result<Vec<u8>, FetchError> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| transport_error(url, &e))?;
    let status = response.status().as_u16();
    // The URL answering, after any redirect: whether it got the credential.
    if let Some(refused) = client.refused_credentials(response.url().as_str(), status) {
        return Err(refused);
    }
    FetchError::check_http_status(url, status)?;
    read_body(response, url, max).await
}

/// Why the upstream registry's download template is unknown.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryConfigError {
    /// `config.json` could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// It is not JSON.
    #[error("{url}: not JSON: {source}")]
    NotJson {
        /// The config.json URL.
        url: String,
        /// The parse error.
        source: Arc<serde_json::Error>,
    },
    /// It has no `dl` string.
    #[error("{url}: no \"dl\" string")]
    NoDownloadUrl {
        /// The config.json URL.
        url: String,
    },
}

/// The download template of a sparse registry: its `config.json`'s `dl`.
pub async fn registry_dl(
    client: &UpstreamClient,
    index_url: &str,
) -> Result<String, RegistryConfigError> {
    let url = format!("{index_url}config.json");
    let body = get_bounded(client, &url, 64 * 1024).await?;
    let config: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| RegistryConfigError::NotJson {
            url: url.clone(),
            source: Arc::new(e),
        })?;
    config
        .get("dl")
        .and_then(|dl| dl.as_str())
        .map(str::to_owned)
        .ok_or(RegistryConfigError::NoDownloadUrl { url })
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
    client: &UpstreamClient,
    url: &str,
    max: u64,
    etag: Option<&str>,
) -> Result<IndexFetch, FetchError> {
    let mut request = client.get(url).header("cargo-protocol", "version=1");
    if let Some(etag) = etag {
        request = request.header(reqwest::header::IF_NONE_MATCH, etag);
    }
    let response = request.send().await.map_err(|e| transport_error(url, &e))?;
    let status = response.status();
    if let Some(refused) = client.refused_credentials(response.url().as_str(), status.as_u16()) {
        return Err(refused);
    }
    match status {
        // Unasked (no ETag sent) too: the caller has no file to reuse and says so.
        reqwest::StatusCode::NOT_MODIFIED => return Ok(IndexFetch::NotModified),
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

/// How upstream's tarball differs from the signed one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Mismatch {
    /// Its `Content-Length` is above the signed length.
    #[error("upstream announced {announced} bytes, {signed} are signed")]
    AnnouncedLonger {
        /// The announced length.
        announced: u64,
        /// The signed length.
        signed: u64,
    },
    /// It went on past the signed length.
    #[error("upstream sent more than the {signed} bytes signed")]
    Longer {
        /// The signed length.
        signed: u64,
    },
    /// Its length or a digest is not the signed one.
    #[error(transparent)]
    Digest(#[from] HashError),
}

/// Why a tarball download was not passed on.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// Upstream could not be reached or broke off (retrying may help).
    #[error("upstream download failed: {error}{}", received.map(|(got, of)| format!(" after {got} of {of} bytes")).unwrap_or_default())]
    Transport {
        /// The failure.
        error: FetchError,
        /// Bytes received of the signed length, when the body broke off.
        received: Option<(u64, u64)>,
    },
    /// Upstream has no file for a release the TUF repository signs: an upstream fault
    /// (a registry behind its TUF repository, or a wrong `dl`).
    #[error("upstream has no such file: {url} answered HTTP {status}, but the release is signed")]
    NotUpstream {
        /// The download URL.
        url: String,
        /// 404 or 410.
        status: u16,
    },
    /// Upstream answered with another error status.
    #[error("upstream answered HTTP {0}")]
    Status(u16),
    /// Upstream wants credentials, or refused the proxy's.
    #[error("{0}")]
    Unauthorized(FetchError),
    /// The download URL template could not be read from upstream.
    #[error("cannot read upstream's download URL: {0}")]
    RegistryConfig(#[from] RegistryConfigError),
    /// The bytes do not match what was signed (an attack or a broken mirror).
    #[error("the tarball from upstream does not match the signed target {target}: {mismatch}")]
    Mismatch {
        /// The target path.
        target: String,
        /// How.
        mismatch: Mismatch,
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
    /// The verifying task did not finish (a bug; nothing was served).
    #[error("the download could not be checked: {0}")]
    Internal(Arc<tokio::task::JoinError>),
}

impl DownloadError {
    /// True for upstream faults (502): transport failures, a missing file, any error
    /// status, an unreadable `config.json`. The others are refusals (403): what upstream
    /// sent is not what was signed, or is over the proxy's limit.
    pub fn is_upstream_fault(&self) -> bool {
        match self {
            Self::Transport { .. }
            | Self::NotUpstream { .. }
            | Self::Status(_)
            | Self::Unauthorized(_)
            | Self::RegistryConfig(_)
            | Self::Internal(_) => true,
            Self::Mismatch { .. } | Self::TooLarge { .. } => false,
        }
    }
}

/// Downloads a tarball, reading at most its signed length, and returns the bytes only
/// when they are exactly the signed target. The lengths are checked while it streams in;
/// the digests on a blocking thread once it is complete (hashing megabytes is no work for
/// an async worker).
pub async fn fetch_tarball(
    client: &UpstreamClient,
    url: &str,
    release: &SignedTarget,
    max_crate_size: u64,
) -> Result<Bytes, DownloadError> {
    if release.length > max_crate_size {
        return Err(DownloadError::TooLarge {
            length: release.length,
            max: max_crate_size,
        });
    }
    let mismatch = |mismatch: Mismatch| DownloadError::Mismatch {
        target: release.target.clone(),
        mismatch,
    };
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| DownloadError::Transport {
            error: transport_error(url, &e),
            received: None,
        })?;
    if let Some(refused) =
        client.refused_credentials(response.url().as_str(), response.status().as_u16())
    {
        return Err(DownloadError::Unauthorized(refused));
    }
    match response.status().as_u16() {
        200 => {}
        status @ (404 | 410) => {
            return Err(DownloadError::NotUpstream {
                url: url.to_owned(),
                status,
            })
        }
        status => return Err(DownloadError::Status(status)),
    }
    if let Some(announced) = response.content_length() {
        if announced > release.length {
            return Err(mismatch(Mismatch::AnnouncedLonger {
                announced,
                signed: release.length,
            }));
        }
    }
    let capacity = usize::try_from(release.length).unwrap_or(0);
    let mut body = Vec::with_capacity(capacity);
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                return Err(DownloadError::Transport {
                    error: transport_error(url, &e),
                    received: Some((body.len() as u64, release.length)),
                })
            }
        };
        if (body.len() as u64).saturating_add(chunk.len() as u64) > release.length {
            return Err(mismatch(Mismatch::Longer {
                signed: release.length,
            }));
        }
        body.extend_from_slice(&chunk);
    }
    let hashes = release.hashes.clone();
    let length = release.length;
    let checked = tokio::task::spawn_blocking(move || {
        let mut verifier = StreamVerifier::new(Some(length), Some(&hashes))?;
        verifier.update(&body)?;
        verifier.finish()?;
        Ok::<_, HashError>(body)
    })
    .await
    .map_err(|e| DownloadError::Internal(Arc::new(e)))?;
    checked
        .map(Bytes::from)
        .map_err(|e| mismatch(Mismatch::Digest(e)))
}

/// The path of a crate's index file under the index root, as cargo computes it from the
/// lowercased name: `1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd…`.
pub fn index_path(name: &str) -> String {
    tuf_core::index_entry::sparse_index_path(name)
}

pub use tuf_core::index_entry::download_url;

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

    /// A server on 127.0.0.1 answering raw HTTP/1.1: `/exact/N` N bytes with a
    /// Content-Length, `/chunked/N` N bytes in chunks of 7 without one, `/not-modified`
    /// a 304. Stopped when the test's runtime ends.
    async fn raw_server() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.extend_from_slice(&byte);
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                    let count = |prefix: &str| -> usize {
                        path.strip_prefix(prefix)
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0)
                    };
                    let mut answer: Vec<u8> = Vec::new();
                    if path.starts_with("/exact/") {
                        let n = count("/exact/");
                        answer.extend_from_slice(
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n").as_bytes(),
                        );
                        answer.extend(std::iter::repeat_n(b'x', n));
                    } else if path.starts_with("/chunked/") {
                        let n = count("/chunked/");
                        answer.extend_from_slice(
                            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                        );
                        let mut left = n;
                        while left > 0 {
                            let size = left.min(7);
                            answer.extend_from_slice(format!("{size:x}\r\n").as_bytes());
                            answer.extend(std::iter::repeat_n(b'y', size));
                            answer.extend_from_slice(b"\r\n");
                            left -= size;
                        }
                        answer.extend_from_slice(b"0\r\n\r\n");
                    } else {
                        answer.extend_from_slice(
                            b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\nConnection: close\r\n\r\n",
                        );
                    }
                    let _ = socket.write_all(&answer).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn a_body_of_exactly_the_cap_is_read_and_one_byte_more_is_refused() {
        let base = raw_server().await;
        let client = UpstreamClient::new(
            std::time::Duration::from_secs(5),
            std::time::Duration::from_secs(10),
            None,
        )
        .unwrap();
        for kind in ["exact", "chunked"] {
            let body = get_bounded(&client, &format!("{base}/{kind}/100"), 100)
                .await
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(body.len(), 100, "{kind}");
            let refused = get_bounded(&client, &format!("{base}/{kind}/101"), 100).await;
            assert!(
                matches!(refused, Err(FetchError::TooLong { max: 100, .. })),
                "{kind}: {refused:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_index_answered_304_is_not_modified() {
        let base = raw_server().await;
        let client = UpstreamClient::new(
            std::time::Duration::from_secs(5),
            std::time::Duration::from_secs(10),
            None,
        )
        .unwrap();
        let answer = get_index(&client, &format!("{base}/not-modified"), 100, Some("\"e\""))
            .await
            .unwrap();
        assert!(matches!(answer, IndexFetch::NotModified));
        let listed = get_index(&client, &format!("{base}/exact/10"), 100, None)
            .await
            .unwrap();
        assert!(matches!(listed, IndexFetch::Body { ref body, .. } if body.len() == 10));
    }
}
