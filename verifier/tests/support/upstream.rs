//! The upstream HTTP server: a [`Registry`]'s index and tarballs and its TUF metadata,
//! with faults injectable per path prefix at run time and a log of every request.
//!
//! A small hand-written HTTP/1.1 server on its own thread and tokio runtime, so that
//! faults can break the protocol exactly (announce a length and close early, stall
//! between headers and body) and tests can be plain `#[test]` functions.

use std::io::{Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::registry::Registry;

/// A misbehaviour of the upstream server for requests under a path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Behave normally (overrides a fault set on a shorter prefix).
    None,
    /// Stall this long before sending anything, then answer normally.
    Delay(Duration),
    /// Send the headers and the first half of the body, stall this long, then send the
    /// rest (a 200 answer only; others are sent normally).
    DelayBody(Duration),
    /// Answer with this status and a short text body, whatever the path.
    Status(u16),
    /// Announce the real body's Content-Length, send only its first half, close the
    /// connection (a 200 answer only).
    Truncate,
    /// Send the body followed by this many extra `x` bytes, with a Content-Length that
    /// counts them (a 200 answer only).
    ExtraBytes(usize),
}

/// One request the upstream received.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// The path, without any query string.
    pub path: String,
    /// Request headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The status answered (0 while the answer is still being sent or stalled).
    pub status: u16,
}

/// The first value of header `name` (case-insensitive) among lowercased `headers`.
fn first_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

impl RequestRecord {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        first_header(&self.headers, name)
    }
}

struct Rule {
    prefix: String,
    fault: Fault,
    remaining: Option<usize>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    log: Vec<RequestRecord>,
}

struct Shared {
    index_dir: PathBuf,
    dl_dir: PathBuf,
    files_dir: PathBuf,
    tuf_dir: PathBuf,
    targets_dir: PathBuf,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking test thread must not hide the log from the others.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Logs the request and takes the fault of the longest matching prefix.
    fn arrive(&self, record: RequestRecord) -> (usize, Fault) {
        let mut state = self.state();
        let path = record.path.clone();
        state.log.push(record);
        let at = state.log.len() - 1;
        let rule = state
            .rules
            .iter_mut()
            .enumerate()
            .filter(|(_, r)| path.starts_with(&r.prefix))
            .max_by_key(|(_, r)| r.prefix.len());
        let mut fault = Fault::None;
        let mut exhausted = None;
        if let Some((i, rule)) = rule {
            fault = rule.fault.clone();
            if let Some(remaining) = rule.remaining.as_mut() {
                *remaining -= 1;
                if *remaining == 0 {
                    exhausted = Some(i);
                }
            }
        }
        if let Some(i) = exhausted {
            state.rules.remove(i);
        }
        (at, fault)
    }

    fn answered(&self, at: usize, status: u16) {
        if let Some(record) = self.state().log.get_mut(at) {
            record.status = status;
        }
    }

    /// The file a path maps to, with its content type and whether it gets an ETag.
    fn resolve(&self, path: &str) -> Option<(PathBuf, &'static str, bool)> {
        let (base, rest, content_type, etag) = if let Some(rest) = path.strip_prefix("/index/") {
            let content_type = if rest == "config.json" {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            (&self.index_dir, rest, content_type, true)
        } else if let Some(rest) = path.strip_prefix("/dl/") {
            (&self.dl_dir, rest, "application/octet-stream", false)
        } else if let Some(rest) = path.strip_prefix("/tuf/") {
            (&self.tuf_dir, rest, "application/json", false)
        } else if let Some(rest) = path.strip_prefix("/targets/") {
            (&self.targets_dir, rest, "application/octet-stream", false)
        } else if let Some(rest) = path.strip_prefix("/files/") {
            (&self.files_dir, rest, "text/plain; charset=utf-8", false)
        } else {
            return None;
        };
        let relative = Path::new(rest);
        if rest.is_empty()
            || rest.contains('%')
            || relative
                .components()
                .any(|c| !matches!(c, Component::Normal(_)))
        {
            return None;
        }
        Some((base.join(relative), content_type, etag))
    }
}

/// The strong ETag of a body.
fn etag_of(body: &[u8]) -> String {
    format!("\"{}\"", &hex::encode(Sha256::digest(body))[..32])
}

fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        429 => "Too Many Requests",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    keep_alive: bool,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

const MAX_HEAD: usize = 64 * 1024;

/// Reads one request head (and discards any body); `None` at end of stream or on
/// garbage.
async fn read_request<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Option<Request> {
    let mut total = 0;
    let mut line = String::new();
    // Tolerate blank lines between requests.
    loop {
        line.clear();
        let n = reader.read_line(&mut line).await.ok()?;
        if n == 0 {
            return None;
        }
        total += n;
        if total > MAX_HEAD {
            return None;
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?;
    let version = parts.next().unwrap_or("HTTP/1.0").to_owned();
    let path = target.split('?').next().unwrap_or(target).to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).await.ok()?;
        total += n;
        if n == 0 || total > MAX_HEAD {
            return None;
        }
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let mut request = Request {
        method,
        path,
        headers,
        keep_alive: true,
    };
    let connection = request
        .header("connection")
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    request.keep_alive = if version == "HTTP/1.0" {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    let body_length: u64 = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if body_length > 0 {
        let mut sink = Vec::new();
        (&mut *reader)
            .take(body_length)
            .read_to_end(&mut sink)
            .await
            .ok()?;
    }
    Some(request)
}

fn head_bytes(status: u16, headers: &[(&str, String)], keep_alive: bool) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    head.into_bytes()
}

/// Answers one request; returns whether the connection stays open.
async fn respond(writer: &mut OwnedWriteHalf, request: &Request, shared: &Shared) -> bool {
    let (at, fault) = shared.arrive(RequestRecord {
        method: request.method.clone(),
        path: request.path.clone(),
        headers: request.headers.clone(),
        status: 0,
    });
    let head_only = request.method == "HEAD";
    let keep_alive = request.keep_alive;
    if let Fault::Delay(delay) = fault {
        tokio::time::sleep(delay).await;
    }
    if let Fault::Status(status) = fault {
        let body = format!("injected fault: status {status}\n").into_bytes();
        shared.answered(at, status);
        return send(
            writer,
            status,
            &[],
            "text/plain",
            &body,
            head_only,
            keep_alive,
        )
        .await;
    }
    if request.method != "GET" && !head_only {
        shared.answered(at, 405);
        return send(
            writer,
            405,
            &[],
            "text/plain",
            b"only GET\n",
            false,
            keep_alive,
        )
        .await;
    }
    let found = match shared.resolve(&request.path) {
        Some((file, content_type, etag)) => match tokio::fs::read(&file).await {
            Ok(body) => Some((body, content_type, etag)),
            Err(_) => None,
        },
        None => None,
    };
    let Some((body, content_type, with_etag)) = found else {
        shared.answered(at, 404);
        return send(
            writer,
            404,
            &[],
            "text/plain",
            b"not found\n",
            head_only,
            keep_alive,
        )
        .await;
    };
    let mut extra: Vec<(&str, String)> = Vec::new();
    if with_etag {
        let etag = etag_of(&body);
        if request
            .header("if-none-match")
            .is_some_and(|inm| etag_matches(inm, &etag))
        {
            shared.answered(at, 304);
            let head = head_bytes(304, &[("ETag", etag)], keep_alive);
            return writer.write_all(&head).await.is_ok() && keep_alive;
        }
        extra.push(("ETag", etag));
    }
    shared.answered(at, 200);
    match fault {
        Fault::Truncate if !head_only => {
            extra.push(("Content-Type", content_type.to_owned()));
            extra.push(("Content-Length", body.len().to_string()));
            let head = head_bytes(200, &extra, false);
            let _ = writer.write_all(&head).await;
            let _ = writer.write_all(&body[..body.len() / 2]).await;
            let _ = writer.flush().await;
            let _ = writer.shutdown().await;
            false
        }
        Fault::ExtraBytes(n) => {
            let mut long = body;
            long.resize(long.len() + n, b'x');
            send(
                writer,
                200,
                &extra,
                content_type,
                &long,
                head_only,
                keep_alive,
            )
            .await
        }
        Fault::DelayBody(delay) if !head_only => {
            extra.push(("Content-Type", content_type.to_owned()));
            extra.push(("Content-Length", body.len().to_string()));
            let head = head_bytes(200, &extra, keep_alive);
            let half = body.len() / 2;
            if writer.write_all(&head).await.is_err()
                || writer.write_all(&body[..half]).await.is_err()
                || writer.flush().await.is_err()
            {
                return false;
            }
            tokio::time::sleep(delay).await;
            writer.write_all(&body[half..]).await.is_ok() && keep_alive
        }
        _ => {
            send(
                writer,
                200,
                &extra,
                content_type,
                &body,
                head_only,
                keep_alive,
            )
            .await
        }
    }
}

async fn send(
    writer: &mut OwnedWriteHalf,
    status: u16,
    headers: &[(&str, String)],
    content_type: &str,
    body: &[u8],
    head_only: bool,
    keep_alive: bool,
) -> bool {
    let mut all: Vec<(&str, String)> = headers.to_vec();
    all.push(("Content-Type", content_type.to_owned()));
    all.push(("Content-Length", body.len().to_string()));
    let mut bytes = head_bytes(status, &all, keep_alive);
    if !head_only {
        bytes.extend_from_slice(body);
    }
    writer.write_all(&bytes).await.is_ok() && keep_alive
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let (read, mut writer) = stream.into_split();
    let mut reader = BufReader::new(read);
    while let Some(request) = read_request(&mut reader).await {
        if !respond(&mut writer, &request, &shared).await {
            let _ = writer.shutdown().await;
            return;
        }
    }
}

/// The upstream server: `/index/…` (index files with ETag and `If-None-Match` → 304),
/// `/dl/…` tarballs, `/tuf/…` the TUF metadata directory, `/targets/…` the TUF
/// repository's hash-prefixed tarballs, `/files/…` the registry's other files. Stops
/// when dropped.
pub struct Upstream {
    url: String,
    port: u16,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    /// Serves `registry` (and its TUF repository) on 127.0.0.1, port chosen by the OS,
    /// after writing the registry's `index/config.json` with `dl` = `<url>/dl`.
    pub fn start(registry: &Registry) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        Self::start_listening(registry, listener)
    }

    /// Like [`Self::start`], on 127.0.0.1 port `port` (a server coming up late on a
    /// port the proxy was configured with). Panics if the port is taken.
    pub fn start_on(registry: &Registry, port: u16) -> Self {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("bind 127.0.0.1:{port}: {e}"));
        Self::start_listening(registry, listener)
    }

    fn start_listening(registry: &Registry, listener: std::net::TcpListener) -> Self {
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let port = listener.local_addr().expect("local addr").port();
        let url = format!("http://127.0.0.1:{port}");
        registry.write_config(&format!("{url}/dl"));
        let shared = Arc::new(Shared {
            index_dir: registry.index_dir(),
            dl_dir: registry.dl_dir(),
            files_dir: registry.files_dir(),
            tuf_dir: registry.repo.metadata_dir(),
            targets_dir: registry.repo.targets_dir(),
            state: Mutex::new(State::default()),
        });
        let (shutdown, mut stop) = oneshot::channel::<()>();
        let serving = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("upstream-{port}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    loop {
                        tokio::select! {
                            _ = &mut stop => break,
                            accepted = listener.accept() => {
                                if let Ok((stream, _)) = accepted {
                                    tokio::spawn(serve_connection(stream, Arc::clone(&serving)));
                                }
                            }
                        }
                    }
                });
                // Connections still open (stalled by a fault) are dropped with the runtime.
                runtime.shutdown_timeout(Duration::from_millis(100));
            })
            .expect("spawn upstream thread");
        Self {
            url,
            port,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port served.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/index/`: the sparse index (give cargo `sparse+` this).
    pub fn index_url(&self) -> String {
        format!("{}/index/", self.url)
    }

    /// `http://127.0.0.1:PORT/tuf/`: the TUF metadata base URL.
    pub fn metadata_url(&self) -> String {
        format!("{}/tuf/", self.url)
    }

    /// The URL of the tarball of `name` `version`.
    pub fn tarball_url(&self, name: &str, version: &str) -> String {
        format!("{}/dl/{name}/{version}/download", self.url)
    }

    /// `/dl/{name}/{version}/download`, the path to count tarball requests by.
    pub fn tarball_path(name: &str, version: &str) -> String {
        format!("/dl/{name}/{version}/download")
    }

    /// `/index/<index path>`, the path to count index requests by.
    pub fn index_file_path(name: &str) -> String {
        format!("/index/{}", super::registry::index_path(name))
    }

    /// Applies `fault` to every request whose path starts with `prefix` (the longest
    /// matching prefix wins), replacing any fault set on the same prefix.
    pub fn set_fault(&self, prefix: &str, fault: Fault) {
        self.put_rule(prefix, fault, None);
    }

    /// Applies `fault` to the next `times` requests under `prefix` only.
    pub fn set_fault_times(&self, prefix: &str, fault: Fault, times: usize) {
        if times > 0 {
            self.put_rule(prefix, fault, Some(times));
        }
    }

    fn put_rule(&self, prefix: &str, fault: Fault, remaining: Option<usize>) {
        let mut state = self.shared.state();
        state.rules.retain(|r| r.prefix != prefix);
        state.rules.push(Rule {
            prefix: prefix.to_owned(),
            fault,
            remaining,
        });
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.state().rules.clear();
    }

    /// How many requests had exactly this path.
    pub fn requests(&self, path: &str) -> usize {
        self.shared
            .state()
            .log
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    /// How many requests had a path starting with `prefix`.
    pub fn requests_under(&self, prefix: &str) -> usize {
        self.shared
            .state()
            .log
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    }

    /// Every request so far, in arrival order.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.state().log.clone()
    }

    /// Forgets the requests logged so far.
    pub fn clear_log(&self) {
        self.shared.state().log.clear();
    }

    /// Stops serving now (the port is closed; connections are dropped).
    pub fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A blocking reqwest client for plain-HTTP checks, with an optional whole-request
/// timeout. Installs rustls' ring provider first: the workspace's reqwest is built with
/// `rustls-no-provider`, and building any client (even for plain HTTP) panics without one.
pub fn http_client(timeout: Option<Duration>) -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::blocking::Client::builder();
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    builder.build().expect("HTTP client")
}

/// A response read byte for byte by [`raw_get`].
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Every byte after the head until the server closed (or the read timed out).
    pub body: Vec<u8>,
    /// Time from sending the request to the end of the head.
    pub head_after: Duration,
    /// Time from sending the request to the end of the body.
    pub total: Duration,
    /// Whether reading stopped on the timeout rather than the server closing.
    pub timed_out: bool,
}

impl RawResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        first_header(&self.headers, name)
    }

    /// The announced Content-Length.
    pub fn content_length(&self) -> Option<usize> {
        self.header("content-length").and_then(|v| v.parse().ok())
    }
}

/// Sends `GET path` with `Connection: close` and the given headers to `base_url`
/// (`http://127.0.0.1:PORT`) over a plain TCP connection, and reads everything the
/// server sends until it closes, or until `timeout` passes without data.
pub fn raw_get(
    base_url: &str,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> RawResponse {
    let authority = base_url
        .strip_prefix("http://")
        .expect("http:// URL")
        .trim_end_matches('/');
    let mut stream = StdTcpStream::connect(authority).expect("connect");
    stream.set_read_timeout(Some(timeout)).expect("timeout");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let start = Instant::now();
    stream.write_all(request.as_bytes()).expect("send request");
    let mut received = Vec::new();
    let mut head_after = None;
    let mut timed_out = false;
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                received.extend_from_slice(&buffer[..n]);
                if head_after.is_none() && received.windows(4).any(|w| w == b"\r\n\r\n") {
                    head_after = Some(start.elapsed());
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                timed_out = true;
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the response to {path}: {e}"),
        }
    }
    let total = start.elapsed();
    let split = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no complete response head for {path} (timed out: {timed_out}): {:?}",
                String::from_utf8_lossy(&received)
            )
        });
    let head = String::from_utf8_lossy(&received[..split]).into_owned();
    let body = received[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    RawResponse {
        status,
        headers,
        body,
        head_after: head_after.unwrap_or(total),
        total,
        timed_out,
    }
}
