//! A static file server on 127.0.0.1 (a port the OS picks) for tests that need a
//! registry's index over HTTP: GET of a path under the directory answers the file,
//! anything else 404. Stopped when dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A running server; see the module documentation.
pub struct StaticServer {
    url: String,
    stop: Arc<AtomicBool>,
    address: std::net::SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl StaticServer {
    /// Serves the files under `dir`.
    pub fn start(dir: &Path) -> Self {
        Self::start_slow(dir, std::time::Duration::ZERO)
    }

    /// Serves the files under `dir`, pausing `per_request` before each answer (a slow
    /// upstream, for tests that must act while a client is midway).
    pub fn start_slow(dir: &Path, per_request: std::time::Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let address = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let (root, stopping) = (dir.to_owned(), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    std::thread::sleep(per_request);
                    let _ = answer(&root, stream);
                }
            }
        });
        Self {
            url: format!("http://{address}/"),
            stop,
            address,
            thread: Some(thread),
        }
    }

    /// The base URL, ending in `/`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(root: &Path, mut stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Drain the headers.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let path = request
        .strip_prefix("GET /")
        .and_then(|rest| rest.split(' ').next())
        .map(|p| p.split('?').next().unwrap_or(p).to_owned());
    let file = path.and_then(|p| {
        let relative = PathBuf::from(p);
        relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
            .then(|| root.join(relative))
    });
    match file.and_then(|f| std::fs::read(f).ok()) {
        Some(body) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body)
        }
        None => stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    }
}
