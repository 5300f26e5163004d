//! Operating the proxy (spec/proxy.md, "Operating it"), against real servers on
//! 127.0.0.1: a proxy started before its TUF repository retries with backoff and serves
//! within seconds of the repository coming up; SIGTERM and SIGINT let the requests in
//! flight finish, within a bound, and leave no demo directory behind; refusals are
//! bounded and listed on the status page, which a real browser draws.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use support::{http_client, Fault, Proxy, ProxyConfig, Registry, Upstream};
use tuf_core::attestation::AttestationKind;
use tuf_core::{KeyAlgorithm, PrivateKey, Signer};

fn get(url: &str) -> (u16, Vec<u8>) {
    let response = http_client(Some(Duration::from_secs(30)))
        .get(url)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    (status, response.bytes().unwrap().to_vec())
}

fn get_text(url: &str) -> (u16, String) {
    let (status, body) = get(url);
    (status, String::from_utf8(body).unwrap())
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .with_timezone(&Utc)
}

/// A port nothing listens on now (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_proxy_started_before_its_tuf_repository_serves_within_seconds_of_it_coming_up() {
    let mut registry = Registry::new();
    registry.publish("plainutil", "0.1.0", &[], "pub fn one() -> u32 { 1 }\n");
    let upstream = Upstream::start(&registry);
    // The TUF repository: configured, but it comes up only 10 s after the proxy.
    let tuf_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut config = ProxyConfig::new(&upstream, &registry.repo, &dir.path().join("state"));
    config.metadata = format!("http://127.0.0.1:{tuf_port}/tuf/");
    config.refresh_interval = "2s".into();
    let proxy =
        Proxy::spawn(config, &dir.path().join("proxy.toml")).unwrap_or_else(|e| panic!("{e}"));
    let (status, body) = get_text(&format!("{}/healthz", proxy.url()));
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("no trusted TUF metadata yet: "), "{body}");
    assert!(
        body.contains("the last refresh attempt (") && body.contains(") failed: "),
        "{body}"
    );
    assert!(body.contains("next refresh attempt: "), "{body}");
    let (status, body) = get_text(&format!("{}/index/pl/ai/plainutil", proxy.url()));
    assert_eq!(status, 503, "{body}");

    std::thread::sleep(Duration::from_secs(10));
    let came_up = Utc::now();
    let tuf = Upstream::start_on(&registry, tuf_port);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get_text(&format!("{}/healthz", proxy.url()));
        if status == 200 {
            assert_eq!(body.lines().next(), Some("ok"), "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} {body}\n{}",
            proxy.describe()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _) = get(&format!("{}/index/pl/ai/plainutil", proxy.url()));
    assert_eq!(status, 200);
    assert!(tuf.requests_under("/tuf/") > 0);

    // The attempts, as the proxy recorded them: backoff from about a second, never
    // more than the interval apart, and the first after the repository came up within
    // the interval of it.
    let status = proxy.status();
    let attempts = status["trust"]["refresh"]["attempts"].as_array().unwrap();
    let starts: Vec<DateTime<Utc>> = attempts
        .iter()
        .map(|a| time(a["started"].as_str().unwrap()))
        .collect();
    let first_ok = attempts
        .iter()
        .position(|a| a["ok"] == true)
        .unwrap_or_else(|| panic!("no successful attempt: {attempts:#?}"));
    assert!(
        first_ok >= 5,
        "only {first_ok} attempts in 10 s: {attempts:#?}"
    );
    for failed in &attempts[..first_ok] {
        assert!(
            failed["error"].as_str().unwrap().contains("127.0.0.1"),
            "{failed}"
        );
    }
    let gaps: Vec<f64> = starts
        .windows(2)
        .map(|w| (w[1] - w[0]).num_milliseconds() as f64 / 1000.0)
        .collect();
    assert!(
        (0.4..1.5).contains(&gaps[0]),
        "the first retry waits about a second, not the interval: {gaps:?}"
    );
    for gap in &gaps[..first_ok] {
        assert!(
            *gap <= 2.75,
            "attempts more than the interval apart: {gaps:?}"
        );
    }
    let waited = (starts[first_ok] - came_up).num_milliseconds();
    assert!(
        (0..=2_750).contains(&waited),
        "served {waited} ms after the repository came up: {gaps:?}"
    );
    assert_eq!(status["trust"]["refresh"]["failures_in_a_row"], 0);
    assert!(status["trust"]["refresh"]["next_attempt"].is_string());
}

/// A registry of `count` signed releases of `plainutil`, 0.1.0 upwards.
fn registry_of(count: usize) -> Registry {
    let mut registry = Registry::new();
    for minor in 0..count {
        registry.publish(
            "plainutil",
            &format!("0.1.{minor}"),
            &[],
            &format!("pub fn one() -> u32 {{ {minor} }}\n"),
        );
    }
    registry
}

#[test]
fn sigterm_lets_every_download_in_flight_finish_and_stops_accepting() {
    const DOWNLOADS: usize = 16;
    let registry = registry_of(DOWNLOADS);
    let upstream = Upstream::start(&registry);
    // Each tarball stalls half-way for 2 s upstream: the downloads are in flight.
    upstream.set_fault("/dl/", Fault::DelayBody(Duration::from_secs(2)));
    let mut proxy = Proxy::start(&upstream, &registry.repo);
    let start = Arc::new(Barrier::new(DOWNLOADS + 1));
    let clients: Vec<_> = (0..DOWNLOADS)
        .map(|minor| {
            let url = format!(
                "{}/api/v1/crates/plainutil/0.1.{minor}/download",
                proxy.url()
            );
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                http_client(Some(Duration::from_secs(30)))
                    .get(&url)
                    .send()
                    .and_then(|r| {
                        let status = r.status().as_u16();
                        r.bytes().map(|b| (status, b.to_vec()))
                    })
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    start.wait();
    let deadline = Instant::now() + Duration::from_secs(20);
    while upstream.requests_under("/dl/") < DOWNLOADS {
        assert!(Instant::now() < deadline, "{}", proxy.describe());
        std::thread::sleep(Duration::from_millis(10));
    }
    let signalled = Instant::now();
    proxy.signal("TERM");
    // No new connection is accepted while the downloads finish.
    let address: std::net::SocketAddr = proxy.address().parse().unwrap();
    let refused_after = loop {
        if std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            break signalled.elapsed();
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(5),
            "still accepting"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        refused_after < Duration::from_millis(1500),
        "stopped accepting only after {refused_after:?}, when the downloads had finished"
    );
    for (minor, client) in clients.into_iter().enumerate() {
        let version = format!("0.1.{minor}");
        let (status, body) = client
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("{version} ended without an answer: {e}"));
        assert_eq!(status, 200, "{version}");
        assert_eq!(
            hex::encode(Sha256::digest(&body)),
            registry.signed_sha256("plainutil", &version),
            "{version}"
        );
    }
    let exit = proxy
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("still running after SIGTERM\n{}", proxy.describe()));
    assert_eq!(exit.code(), Some(0), "{}", proxy.describe());
    let logs = proxy.stderr();
    assert!(
        logs.contains("stopping: no new connections; finishing the requests in flight")
            && logs.contains("signal=SIGTERM")
            && logs.contains("stopped"),
        "{logs}"
    );
}

#[test]
fn requests_still_in_flight_after_the_grace_period_or_a_second_signal_are_ended_with_exit_3() {
    let registry = registry_of(1);
    let upstream = Upstream::start(&registry);
    // Upstream never answers a tarball within the test.
    upstream.set_fault("/dl/", Fault::Delay(Duration::from_secs(120)));
    for (grace, signals) in [("1s", &["TERM"][..]), ("60s", &["TERM", "INT"][..])] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ProxyConfig::new(&upstream, &registry.repo, &dir.path().join("state"));
        config.upstream_timeout = "300s".into();
        let config = config.with_line(&format!("shutdown_grace = \"{grace}\""));
        let mut proxy =
            Proxy::spawn(config, &dir.path().join("proxy.toml")).unwrap_or_else(|e| panic!("{e}"));
        let seen = upstream.requests_under("/dl/");
        let url = format!("{}/api/v1/crates/plainutil/0.1.0/download", proxy.url());
        let client = std::thread::spawn(move || {
            http_client(Some(Duration::from_secs(60)))
                .get(&url)
                .send()
                .and_then(|r| r.bytes())
                .map(|b| b.len())
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while upstream.requests_under("/dl/") == seen {
            assert!(Instant::now() < deadline, "{}", proxy.describe());
            std::thread::sleep(Duration::from_millis(10));
        }
        let signalled = Instant::now();
        for signal in signals {
            proxy.signal(signal);
            std::thread::sleep(Duration::from_millis(200));
        }
        let exit = proxy
            .wait_exit(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("still running\n{}", proxy.describe()));
        assert_eq!(
            exit.code(),
            Some(3),
            "{grace} {signals:?}\n{}",
            proxy.describe()
        );
        if signals.len() == 2 {
            assert!(
                signalled.elapsed() < Duration::from_secs(10),
                "a second signal did not stop it at once"
            );
        }
        let logs = proxy.stderr();
        assert!(
            logs.contains("stopped with 1 request(s) still in flight, ended"),
            "{logs}"
        );
        assert!(
            client.join().unwrap().is_err(),
            "a stalled download got an answer"
        );
    }
}

/// The demo (`tuf-verifier serve` with no options) with its temporary directory in
/// `tmp`, once it listens: the child and its URL.
fn start_demo(tmp: &Path) -> (std::process::Child, String, std::thread::JoinHandle<String>) {
    let mut child = demo_command(tmp).stdout(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let logs = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the demo ended before listening"))
            .unwrap();
        if let Some(url) = line.strip_prefix(support::proxy::LISTENING_PREFIX) {
            break url.trim().to_owned();
        }
    };
    // Keep reading stdout so the demo never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, url, logs)
}

/// `tuf-verifier serve` with no options (the demo), its temporary directory in `tmp`,
/// stderr piped.
fn demo_command(tmp: &Path) -> Command {
    let mut command = Command::new(support::proxy::binary());
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TMPDIR", tmp)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

fn demo_directories(tmp: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("tuf-verifier-demo"))
        })
        .collect()
}

#[test]
fn sigterm_and_sigint_stop_the_demo_alike_and_remove_its_directory() {
    for signal in ["TERM", "INT"] {
        let tmp = tempfile::tempdir().unwrap();
        let (mut child, url, logs) = start_demo(tmp.path());
        assert_eq!(demo_directories(tmp.path()).len(), 1);
        // An idle keep-alive connection, as cargo leaves them, must not hold the stop.
        let client = http_client(Some(Duration::from_secs(10)));
        let status = client
            .get(format!("{url}/status.json"))
            .send()
            .unwrap()
            .status();
        assert_eq!(status, 200);
        support::proxy::send_signal(child.id(), signal);
        let deadline = Instant::now() + Duration::from_secs(15);
        let exit = loop {
            if let Some(exit) = child.try_wait().unwrap() {
                break exit;
            }
            assert!(
                Instant::now() < deadline,
                "SIG{signal}: the demo is still running"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let logs = logs.join().unwrap();
        assert_eq!(exit.code(), Some(0), "SIG{signal}\n{logs}");
        assert!(logs.contains(&format!("signal=SIG{signal}")), "{logs}");
        assert_eq!(
            demo_directories(tmp.path()),
            Vec::<PathBuf>::new(),
            "SIG{signal}"
        );
    }
}

#[test]
fn a_signal_while_the_demo_is_being_set_up_stops_it_and_removes_its_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let child = demo_command(tmp.path()).spawn().unwrap();
    // Once the demo's directory exists, it is being set up (signing its releases).
    let deadline = Instant::now() + Duration::from_secs(15);
    while demo_directories(tmp.path()).is_empty() {
        assert!(Instant::now() < deadline, "no demo directory");
        std::thread::sleep(Duration::from_millis(5));
    }
    support::proxy::send_signal(child.id(), "TERM");
    let output = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{logs}");
    assert_eq!(
        demo_directories(tmp.path()),
        Vec::<PathBuf>::new(),
        "{logs}"
    );
}

/// The colour of a refusal's left border on the status page (`.refusal`).
const REFUSAL_BORDER: [u8; 3] = [0xb3, 0x26, 0x1e];

/// Bands of rows of `png` where a pixel of the left `columns` has `colour`: the
/// refusals drawn, one band each.
fn colour_bands(png: &[u8], colour: [u8; 3], columns: u32) -> (usize, u32) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let channels = frame.color_type.samples();
    let (width, height) = (frame.width, frame.height);
    let mut bands = 0;
    let mut inside = false;
    for y in 0..height {
        let row = &pixels[y as usize * frame.line_size..][..frame.line_size];
        let hit = (0..columns.min(width)).any(|x| {
            let at = x as usize * channels;
            row[at..at + 3] == colour
        });
        if hit && !inside {
            bands += 1;
        }
        inside = hit;
    }
    (bands, width)
}

/// Runs Chromium headless on `url` with `args`, within a minute; its stdout.
fn chromium(profile: &Path, url: &str, args: &[&str]) -> String {
    let mut child = Command::new(tuf_crates_tests::chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium {args:?} {url} did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap_or_default();
    assert!(status.success(), "chromium {args:?}: {status}\n{stderr}");
    reader.join().unwrap()
}

#[test]
fn the_status_page_lists_each_refusal_with_its_reason_and_fix_in_a_real_browser() {
    // `parameters` 0.3.1 released by mauro3, whom the policy does not trust; `solo`
    // 1.0.0 by alice, whom it does; `ghost` 0.1.0 upstream only, signed by nobody.
    let (alice, mauro) = (
        PrivateKey::generate(KeyAlgorithm::Ed25519),
        PrivateKey::generate(KeyAlgorithm::Ed25519),
    );
    let mut registry = Registry::new();
    registry.publish("parameters", "0.3.1", &[], "pub fn p() -> u32 { 3 }\n");
    registry.publish("solo", "1.0.0", &[], "pub fn s() -> u32 { 1 }\n");
    registry.publish_unsigned("ghost", "0.1.0", &[], "pub fn g() {}\n");
    registry.repo.attest(
        "parameters",
        "0.3.1",
        AttestationKind::Release,
        &mauro,
        "mauro3",
    );
    registry
        .repo
        .attest("solo", "1.0.0", AttestationKind::Release, &alice, "alice");
    let upstream = Upstream::start(&registry);
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[developer]]\nlabel = \"alice\"\nkey = \"{}\"\n",
            alice.keyid()
        ),
    )
    .unwrap();
    let proxy = Proxy::start_with(
        &upstream,
        &registry.repo,
        &[&format!("policy = {:?}", policy.display().to_string())],
    );
    let url = |path: &str| format!("{}{path}", proxy.url());

    // Served, and refused four ways.
    assert_eq!(get(&url("/api/v1/crates/solo/1.0.0/download")).0, 200);
    let (status, policy_refusal) = get_text(&url("/api/v1/crates/parameters/0.3.1/download"));
    assert_eq!(status, 403, "{policy_refusal}");
    let (status, unsigned) = get_text(&url("/api/v1/crates/ghost/0.1.0/download"));
    assert_eq!(status, 403, "{unsigned}");
    let (status, squat) = get_text(&url("/index/se/dr/sedre"));
    assert_eq!(status, 403, "{squat}");
    let long_name = "a".repeat(5000);
    let (status, long) = get_text(&url(&format!("/api/v1/crates/{long_name}/1.0.0/download")));
    assert_eq!(status, 403, "{long}");
    // A 5,000-character name is not echoed back whole.
    assert!(long.len() < 400, "{} bytes: {long}", long.len());
    assert!(
        long.contains(&format!("{}… (5000 characters)", "a".repeat(64))),
        "{long}"
    );

    let status = proxy.status();
    let recent = status["refusals"]["recent"].as_array().unwrap();
    let summary: Vec<(String, String, u64)> = recent
        .iter()
        .map(|r| {
            (
                r["crate"].as_str().unwrap().chars().take(8).collect(),
                r["by"].as_str().unwrap().to_owned(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("aaaaaaaa".to_owned(), "tuf".to_owned(), 403),
            ("sedre".to_owned(), "typosquat".to_owned(), 403),
            ("ghost".to_owned(), "tuf".to_owned(), 403),
            ("paramete".to_owned(), "policy".to_owned(), 403),
        ],
        "{recent:#?}"
    );
    assert_eq!(status["refusals"]["total"], 4);
    // The reason is what cargo got.
    for (kept, body) in recent
        .iter()
        .zip([&long, &squat, &unsigned, &policy_refusal])
    {
        assert_eq!(format!("{}\n", kept["reason"].as_str().unwrap()), *body);
    }
    assert_eq!(
        recent[3]["fix"],
        format!("tuf-verifier policy trust mauro3 --key {}", mauro.keyid())
    );
    assert_eq!(recent[3]["version"], "0.3.1");
    assert!(recent[1]["fix"].is_null() && recent[1]["version"].is_null());
    assert!(time(recent[0]["time"].as_str().unwrap()) >= time(recent[3]["time"].as_str().unwrap()));

    // What a browser shows: the DOM holds every refusal with its reason and fix, and at
    // a phone's width each refusal is drawn as its own box.
    let profile = tempfile::tempdir().unwrap();
    let dom = chromium(profile.path(), &url("/status"), &["--dump-dom"]);
    assert!(
        dom.contains("Serving: cargo gets what the TUF repository signed"),
        "{dom}"
    );
    for fragment in [
        "<a href=\"/explain/parameters/0.3.1\">parameters 0.3.1</a>",
        "<a href=\"/explain/ghost/0.1.0\">ghost 0.1.0</a>",
        "<a href=\"/explain/sedre\">sedre</a>",
        "not signed: no key authorised for crates/ghost/ghost/ghost-0.1.0.crate",
        "looks like `serde`",
        "you do not trust developer @mauro3",
        &format!(
            "Fix: <code>tuf-verifier policy trust mauro3 --key {}</code>",
            mauro.keyid()
        ),
        &format!("<b>{}… (5000 characters) 1.0.0</b>", "a".repeat(64)),
        "4 since start, newest first.",
    ] {
        assert!(
            dom.contains(fragment),
            "{fragment:?} not in the page:\n{dom}"
        );
    }
    let shot = profile.path().join("status.png");
    chromium(
        profile.path(),
        &url("/status"),
        &[
            "--window-size=412,2400",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    let (bands, width) = colour_bands(&png, REFUSAL_BORDER, 60);
    assert_eq!(width, 412);
    assert_eq!(bands, 4, "refusal boxes drawn at a phone's width");
    // Kept for people to look at (spec/proxy.md shows one).
    let kept = tuf_crates_tests::workspace_root().join("target/screenshots");
    if std::fs::create_dir_all(&kept).is_ok() {
        let _ = std::fs::write(kept.join("status-page-phone.png"), &png);
    }
}
