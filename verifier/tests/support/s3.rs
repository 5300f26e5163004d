//! A real S3-compatible server on 127.0.0.1: moto's standalone server (PyPI, pinned in
//! tests/python/requirements.txt), one bucket, stopped when the handle drops. Objects are
//! read and written behind the proxies' backs with boto3, as an attacker with write
//! access to the bucket would.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The access key the tests use (moto accepts any).
const ACCESS_KEY: &str = "tuf-crates-test";

/// A running moto S3 server with one bucket.
pub struct S3Server {
    child: Child,
    endpoint: String,
    bucket: String,
    log: tempfile::NamedTempFile,
}

impl S3Server {
    /// Starts moto on a free port of 127.0.0.1 and creates `bucket`.
    pub fn start(bucket: &str) -> Self {
        for _ in 0..5 {
            // The port is free now; moto binds it a moment later (retried if taken).
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = tempfile::NamedTempFile::new().unwrap();
            let child = Command::new(tuf_crates_tests::python_tuf())
                .args([
                    "-m",
                    "moto.server",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                ])
                .stdout(log.reopen().unwrap())
                .stderr(log.reopen().unwrap())
                .spawn()
                .expect("start moto's S3 server (python -m moto.server)");
            let mut server = Self {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
                bucket: bucket.to_owned(),
                log,
            };
            if server.wait_ready() {
                server.python(&format!("s3.create_bucket(Bucket={bucket:?})"));
                return server;
            }
        }
        panic!("moto's S3 server did not start");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if std::net::TcpStream::connect(self.endpoint.trim_start_matches("http://")).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The server's URL, for `shared_state_endpoint`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The environment a proxy needs to reach it (credentials and region).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", "not-a-secret"),
            ("AWS_REGION", "us-east-1"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec()
    }

    /// The config lines of a proxy sharing state under `prefix`.
    pub fn config_lines(&self, prefix: &str) -> Vec<String> {
        vec![
            format!("shared_state = \"s3://{}/{prefix}\"", self.bucket),
            format!("shared_state_endpoint = \"{}\"", self.endpoint),
        ]
    }

    /// Runs `code` with `s3` (a boto3 client of this server) and `bucket` defined; its
    /// stdout.
    fn python(&self, code: &str) -> Vec<u8> {
        let script = format!(
            "import sys, boto3\ns3 = boto3.client('s3', endpoint_url={:?}, region_name='us-east-1', \
             aws_access_key_id={ACCESS_KEY:?}, aws_secret_access_key='not-a-secret')\n\
             bucket = {:?}\n{code}\n",
            self.endpoint, self.bucket
        );
        let mut child = Command::new(tuf_crates_tests::python_tuf())
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdin.take());
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "boto3 against moto failed: {}\n{code}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// The object under `key`, or `None`.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let out = self.python(&format!(
            "try:\n    body = s3.get_object(Bucket=bucket, Key={key:?})['Body'].read()\n\
             except s3.exceptions.NoSuchKey:\n    sys.exit(0)\n\
             sys.stdout.buffer.write(b'1' + body)"
        ));
        out.split_first().map(|(_, body)| body.to_vec())
    }

    /// Writes `bytes` under `key`, replacing what is there.
    pub fn put(&self, key: &str, bytes: &[u8]) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(bytes).unwrap();
        let path = file.path().to_string_lossy().into_owned();
        self.python(&format!(
            "s3.put_object(Bucket=bucket, Key={key:?}, Body=open({path:?}, 'rb').read())"
        ));
    }

    /// Every key in the bucket.
    pub fn keys(&self) -> Vec<String> {
        let out = self.python(
            "for page in s3.get_paginator('list_objects_v2').paginate(Bucket=bucket):\n    \
             for o in page.get('Contents', []):\n        print(o['Key'])",
        );
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
