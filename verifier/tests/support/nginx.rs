//! A real nginx (Debian's, installed by scripts/test) on 127.0.0.1, serving a
//! [`Registry`]'s index and tarballs as static files, and refusing with 401 every
//! request whose `Authorization` header is not exactly the one configured: a private
//! registry as Artifactory or a self-hosted one stands.
//!
//! nginx runs in the foreground with its prefix, pid file, logs and temp paths under a
//! temp dir, and is stopped (SIGTERM, then killed) when the handle drops.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::registry::Registry;

/// Where Debian installs nginx.
const NGINX: &str = "/usr/sbin/nginx";

/// How the nginx answers `/dl/`.
#[derive(Debug, Clone)]
pub enum Downloads {
    /// Serves the registry's tarballs (behind the same token check).
    Served,
    /// Redirects each download to this base URL (another origin), as registries that
    /// keep tarballs in a bucket do.
    RedirectTo(String),
}

/// A running nginx.
pub struct Nginx {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Serves `registry` at `http://127.0.0.1:PORT/index/` and `/dl/`, answering 401
    /// unless `Authorization` is exactly `authorization`.
    pub fn start(registry: &Registry, authorization: &str, downloads: Downloads) -> Self {
        assert!(
            Path::new(NGINX).is_file(),
            "{NGINX} is missing: install Debian's nginx (scripts/test does)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let prefix = dir.path();
        for sub in ["logs", "temp"] {
            std::fs::create_dir_all(prefix.join(sub)).expect("nginx dirs");
        }
        // As root, nginx's workers would become `nobody`, who cannot read the temp dirs.
        let user = if is_root() { "user root;\n" } else { "" };
        let downloads = match downloads {
            Downloads::Served => format!("alias {}/;", registry.dl_dir().display()),
            Downloads::RedirectTo(base) => format!("rewrite ^/dl/(.*)$ {base}/dl/$1 redirect;"),
        };
        let config = format!(
            "{user}worker_processes 1;\n\
             pid {prefix}/nginx.pid;\n\
             error_log {prefix}/logs/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
               access_log {prefix}/logs/access.log;\n\
               client_body_temp_path {prefix}/temp/body;\n\
               proxy_temp_path {prefix}/temp/proxy;\n\
               fastcgi_temp_path {prefix}/temp/fastcgi;\n\
               uwsgi_temp_path {prefix}/temp/uwsgi;\n\
               scgi_temp_path {prefix}/temp/scgi;\n\
               types {{ application/json json; }}\n\
               default_type application/octet-stream;\n\
               server {{\n\
                 listen 127.0.0.1:{port};\n\
                 if ($http_authorization != {authorization:?}) {{ return 401; }}\n\
                 location /index/ {{ alias {index}/; }}\n\
                 location /dl/ {{ {downloads} }}\n\
               }}\n\
             }}\n",
            prefix = prefix.display(),
            index = registry.index_dir().display(),
        );
        let conf = prefix.join("nginx.conf");
        std::fs::write(&conf, config).expect("nginx.conf");
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nginx");
        let nginx = Self { child, port, dir };
        nginx.wait_until_listening();
        nginx
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {}: {}",
                self.port,
                std::fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The sparse index URL, `http://127.0.0.1:PORT/index/`.
    pub fn index_url(&self) -> String {
        format!("{}/index/", self.url())
    }

    /// nginx's access log (request lines and statuses).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("logs/access.log")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
