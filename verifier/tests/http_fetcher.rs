//! HttpFetcher against a real server on 127.0.0.1: slow retrieval is cut by timeouts,
//! endless bodies by the length bound, and statuses map to typed errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use tuf_core::client::{FetchError, Fetcher, HttpFetcher};

/// Serves one canned behaviour per path, for as many connections as the test makes;
/// the thread ends when the listener is dropped by the test (after `stop`).
struct Server {
    url: String,
    handle: Option<thread::JoinHandle<()>>,
    port: u16,
}

fn respond(mut stream: TcpStream) {
    let mut request = [0u8; 2048];
    let n = stream.read(&mut request).unwrap_or(0);
    let request = String::from_utf8_lossy(&request[..n]);
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let _ = match path.as_str() {
        "/ok" => stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"),
        "/missing" => stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        "/forbidden" => stream
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        "/error" => stream.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ),
        "/announced-too-long" => stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n"),
        "/endless" => {
            // No length announced: bytes until the client gives up.
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let chunk = [b'x'; 4096];
            for _ in 0..10_000 {
                if stream.write_all(&chunk).is_err() {
                    break;
                }
            }
            Ok(())
        }
        "/slow" => {
            // Headers, a trickle of the body, then silence.
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n0123456789",
            );
            thread::sleep(Duration::from_secs(4));
            Ok(())
        }
        "/truncated" => stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly-this",
        ),
        _ => stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
    };
}

impl Server {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                // A request to /stop ends the server.
                let mut peek = [0u8; 16];
                if stream.peek(&mut peek).is_ok() && peek.starts_with(b"GET /stop") {
                    break;
                }
                thread::spawn(move || respond(stream));
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            handle: Some(handle),
            port,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = stream.write_all(b"GET /stop HTTP/1.1\r\n\r\n");
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

fn fetcher() -> HttpFetcher {
    HttpFetcher::new(Duration::from_secs(1), Duration::from_secs(1)).unwrap()
}

#[test]
fn statuses_and_bodies_map_to_typed_results() {
    let server = Server::start();
    let fetcher = fetcher();
    let url = |p: &str| format!("{}{p}", server.url);
    assert_eq!(fetcher.fetch(&url("/ok"), 5).unwrap(), b"hello");
    assert!(matches!(
        fetcher.fetch(&url("/ok"), 4),
        Err(FetchError::TooLong { max: 4, .. })
    ));
    assert!(matches!(
        fetcher.fetch(&url("/missing"), 10),
        Err(FetchError::NotFound { .. })
    ));
    assert!(matches!(
        fetcher.fetch(&url("/forbidden"), 10),
        Err(FetchError::NotFound { .. })
    ));
    assert!(matches!(
        fetcher.fetch(&url("/error"), 10),
        Err(FetchError::Status { status: 500, .. })
    ));
    assert!(matches!(
        fetcher.fetch(&url("/truncated"), 1000),
        Err(FetchError::Transport { .. })
    ));
}

#[test]
fn endless_data_is_cut_at_the_bound() {
    let server = Server::start();
    let fetcher = fetcher();
    assert!(matches!(
        fetcher.fetch(&format!("{}/announced-too-long", server.url), 1000),
        Err(FetchError::TooLong { max: 1000, .. })
    ));
    assert!(matches!(
        fetcher.fetch(&format!("{}/endless", server.url), 10_000),
        Err(FetchError::TooLong { max: 10_000, .. })
    ));
}

#[test]
fn slow_retrieval_is_cut_by_the_timeout() {
    let server = Server::start();
    let fetcher = fetcher();
    let started = Instant::now();
    let result = fetcher.fetch(&format!("{}/slow", server.url), 1000);
    assert!(
        matches!(result, Err(FetchError::Transport { .. })),
        "{result:?}"
    );
    // Cut by the 1 s timeout, not by the server's 4 s stall (a bound, not a benchmark).
    assert!(started.elapsed() < Duration::from_secs(4));
}
