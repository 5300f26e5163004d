//! Imports by URL (spec/trust-policy.md, "Imports"): fetched bounded over HTTPS, kept,
//! and fetched again at most once per refresh interval, or at once on SIGHUP.
//!
//! The policy is reloaded every few seconds to notice edits of its files; a URL import is
//! not fetched that often. Between fetches the kept copy is used. When a fetch fails, the
//! last good copy stays in use (the policy in force does not change because a server is
//! down), the failure is logged and shown on `/status`, and the next attempt waits for
//! the next interval. An import with no good copy yet, or whose copy does not match a new
//! pin, is an error of the policy: fatal at start, the previous policy kept on reload.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sha2::Digest;
use tuf_core::client::{FetchError, Fetcher, HttpFetcher};

use super::file::{ImportFetcher, UrlImport, MAX_POLICY_BYTES};

/// One import's kept copy and the story of its fetches.
#[derive(Debug)]
struct Kept {
    bytes: Vec<u8>,
    sha256: String,
    fetched_at: DateTime<Utc>,
    attempted: Instant,
    last_error: Option<String>,
}

/// What `/status` shows of one URL import.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UrlImportStatus {
    /// The URL.
    pub url: String,
    /// When the copy in use was fetched.
    pub fetched_at: String,
    /// Why the last attempt failed, when it did (the copy in use is older).
    pub last_error: Option<String>,
}

/// The URL imports of a policy, fetched and kept.
pub struct UrlImports {
    connect_timeout: Duration,
    timeout: Duration,
    refresh: Duration,
    /// Built on the first URL import: a policy without one never makes a client.
    client: OnceLock<Result<HttpFetcher, FetchError>>,
    kept: Mutex<HashMap<String, Kept>>,
}

impl UrlImports {
    /// Imports fetched with these timeouts, and again at most every `refresh`.
    pub fn new(connect_timeout: Duration, timeout: Duration, refresh: Duration) -> Self {
        Self {
            connect_timeout,
            timeout,
            refresh,
            client: OnceLock::new(),
            kept: Mutex::new(HashMap::new()),
        }
    }

    /// For a command that reads the policy once (`explain`, `policy check`): every URL
    /// import is fetched when read.
    pub fn for_one_reading(connect_timeout: Duration, timeout: Duration) -> Self {
        Self::new(connect_timeout, timeout, Duration::ZERO)
    }

    /// For one reading of the policy: `force` fetches every URL import again (SIGHUP, a
    /// command's own reading), otherwise only those whose interval has passed.
    pub fn reading(&self, force: bool) -> Reading<'_> {
        Reading {
            imports: self,
            force,
        }
    }

    /// The kept copy of each URL import, for `/status`.
    pub fn status(&self) -> Vec<UrlImportStatus> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<UrlImportStatus> = kept
            .iter()
            .map(|(url, k)| UrlImportStatus {
                url: url.clone(),
                fetched_at: tuf_core::metadata::format_expires(&k.fetched_at),
                last_error: k.last_error.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.url.cmp(&b.url));
        out
    }

    fn fetch_now(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        // Blocking: called from a blocking task or a command, never on the runtime.
        let client = self
            .client
            .get_or_init(|| HttpFetcher::new(self.connect_timeout, self.timeout));
        match client {
            Ok(client) => client.fetch(url, MAX_POLICY_BYTES),
            Err(error) => Err(error.clone()),
        }
    }

    fn fetch_import(&self, import: &UrlImport<'_>, force: bool) -> Result<Vec<u8>, FetchError> {
        let pin_matches = |k: &Kept| import.sha256.is_none_or(|pin| pin == k.sha256);
        {
            let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(k) = kept.get(import.url) {
                // Pinned content cannot change: the copy that has the pin is the import.
                let pinned_copy = import.sha256.is_some() && pin_matches(k);
                let fresh = !force && k.attempted.elapsed() < self.refresh && pin_matches(k);
                if pinned_copy || fresh {
                    return Ok(k.bytes.clone());
                }
            }
        }
        let fetched = self.fetch_now(import.url);
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        match fetched {
            Ok(bytes) => {
                tracing::info!(
                    import = import.name,
                    url = import.url,
                    bytes = bytes.len(),
                    "trust policy import fetched"
                );
                kept.insert(
                    import.url.to_owned(),
                    Kept {
                        sha256: hex::encode(sha2::Sha256::digest(&bytes)),
                        bytes: bytes.clone(),
                        fetched_at: Utc::now(),
                        attempted: Instant::now(),
                        last_error: None,
                    },
                );
                Ok(bytes)
            }
            Err(error) => match kept.get_mut(import.url) {
                Some(k) if pin_matches(k) => {
                    tracing::warn!(import = import.name, %error, fetched_at = %tuf_core::metadata::format_expires(&k.fetched_at), "a trust policy import cannot be fetched: keeping its last good copy");
                    k.attempted = Instant::now();
                    k.last_error = Some(error.to_string());
                    Ok(k.bytes.clone())
                }
                _ => Err(error),
            },
        }
    }
}

/// The URL imports as one reading of the policy sees them ([`UrlImports::reading`]).
pub struct Reading<'a> {
    imports: &'a UrlImports,
    force: bool,
}

impl ImportFetcher for Reading<'_> {
    fn fetch_import(&self, import: &UrlImport<'_>) -> Result<Vec<u8>, FetchError> {
        self.imports.fetch_import(import, self.force)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// A one-file HTTP server on 127.0.0.1: answers every request with its body, or 503
    /// when it has none, and counts requests. Stopped when dropped.
    struct ListServer {
        url: String,
        address: std::net::SocketAddr,
        body: Arc<Mutex<Option<Vec<u8>>>>,
        requests: Arc<AtomicUsize>,
        stop: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Drop for ListServer {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            // Wake the accept loop so that it sees the flag and closes the listener.
            let _ = std::net::TcpStream::connect(self.address);
        }
    }

    impl ListServer {
        fn start(body: &str) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let address = listener.local_addr().unwrap();
            let url = format!("http://{address}/team.toml");
            let body = Arc::new(Mutex::new(Some(body.as_bytes().to_vec())));
            let requests = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (served, counted, stopped) =
                (Arc::clone(&body), Arc::clone(&requests), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopped.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(mut stream) = stream else { return };
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    let answer = served.lock().unwrap().clone();
                    let _ = match answer {
                        Some(bytes) => {
                            write!(
                                stream,
                                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                                bytes.len()
                            )
                            .and_then(|()| stream.write_all(&bytes))
                        }
                        None => stream.write_all(
                            b"HTTP/1.1 503 Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        ),
                    };
                }
            });
            Self {
                url,
                address,
                body,
                requests,
                stop,
            }
        }

        fn serve(&self, body: Option<&str>) {
            *self.body.lock().unwrap() = body.map(|b| b.as_bytes().to_vec());
        }

        fn requests(&self) -> usize {
            self.requests.load(Ordering::SeqCst)
        }
    }

    fn import<'a>(url: &'a str, sha256: Option<&'a str>) -> UrlImport<'a> {
        UrlImport {
            name: "platform",
            url,
            sha256,
        }
    }

    fn imports(refresh: Duration) -> UrlImports {
        UrlImports::new(Duration::from_secs(5), Duration::from_secs(5), refresh)
    }

    #[test]
    fn a_url_import_is_fetched_once_per_interval_or_when_forced() {
        let server = ListServer::start("first");
        let url = server.url.as_str();
        let fetch = |kept: &UrlImports, force: bool| {
            kept.reading(force)
                .fetch_import(&import(url, None))
                .unwrap()
        };
        let kept = imports(Duration::from_secs(3600));
        assert_eq!(fetch(&kept, false), b"first");
        assert_eq!(server.requests(), 1);
        server.serve(Some("second"));
        // Within the interval the kept copy is used: a reload every 2 s costs no request.
        assert_eq!(fetch(&kept, false), b"first");
        assert_eq!(server.requests(), 1);
        // Forced (SIGHUP): fetched again.
        assert_eq!(fetch(&kept, true), b"second");
        assert_eq!(server.requests(), 2);
        // With the interval passed, fetched again without forcing.
        let eager = imports(Duration::ZERO);
        fetch(&eager, false);
        fetch(&eager, false);
        assert_eq!(server.requests(), 4);
        let status = kept.status();
        assert_eq!(status.len(), 1);
        assert_eq!(
            (status[0].url.as_str(), status[0].last_error.as_ref()),
            (url, None)
        );
    }

    #[test]
    fn a_failed_fetch_keeps_the_last_good_copy_and_says_why() {
        let server = ListServer::start("good");
        let kept = imports(Duration::ZERO);
        let url = server.url.as_str();
        // Never fetched and the server down: an error (fatal at start, kept out on reload).
        server.serve(None);
        assert!(matches!(
            kept.reading(true).fetch_import(&import(url, None)),
            Err(FetchError::Status { status: 503, .. })
        ));
        assert!(kept.status().is_empty());
        server.serve(Some("good"));
        kept.reading(true).fetch_import(&import(url, None)).unwrap();
        server.serve(None);
        assert_eq!(
            kept.reading(true).fetch_import(&import(url, None)).unwrap(),
            b"good"
        );
        let status = kept.status();
        assert!(
            status[0]
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("503")),
            "{status:?}"
        );
        // A copy that does not have a new pin is not used in place of the import.
        let other_pin = "0".repeat(64);
        assert!(matches!(
            kept.reading(false)
                .fetch_import(&import(url, Some(&other_pin))),
            Err(FetchError::Status { status: 503, .. })
        ));
        // Back up: the error is cleared.
        server.serve(Some("good"));
        kept.reading(true).fetch_import(&import(url, None)).unwrap();
        assert_eq!(kept.status()[0].last_error, None);
    }

    #[test]
    fn a_pinned_copy_is_not_fetched_again_and_a_long_list_is_refused() {
        let server = ListServer::start("pinned");
        let kept = imports(Duration::ZERO);
        let url = server.url.as_str();
        let pin = hex::encode(sha2::Sha256::digest(b"pinned"));
        kept.reading(true)
            .fetch_import(&import(url, Some(&pin)))
            .unwrap();
        kept.reading(true)
            .fetch_import(&import(url, Some(&pin)))
            .unwrap();
        assert_eq!(
            server.requests(),
            1,
            "pinned content cannot change: one fetch"
        );
        let long = "#".repeat(usize::try_from(MAX_POLICY_BYTES).unwrap() + 1);
        server.serve(Some(&long));
        assert!(matches!(
            imports(Duration::ZERO)
                .reading(true)
                .fetch_import(&import(url, None)),
            Err(FetchError::TooLong { .. })
        ));
    }
}
