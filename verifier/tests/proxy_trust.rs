//! The proxy's trust state and its bounds, against a real upstream on 127.0.0.1: the
//! stored root must chain from the configured one, a garbled role is fetched again, an
//! upstream 404 is an upstream fault, the caches stay within their budgets, and role
//! fetches for different roles do not wait for each other.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::{Duration, Instant};

use support::{http_client, Fault, Proxy, ProxyConfig, Registry, TestRepo, Upstream};
use tuf_core::{Metadata, Root, Signer};

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.repo.delegate_namespace("nsdemo");
    registry.publish("plainutil", "0.1.0", &[], "pub fn one() -> u32 { 1 }\n");
    registry.publish("plainutil", "0.1.1", &[], "pub fn one() -> u32 { 1 }\n");
    registry.publish(
        "nsdemo",
        "1.0.0",
        &[("plainutil", "^0.1")],
        "pub fn answer() -> u32 { plainutil::one() + 41 }\n",
    );
    registry
}

fn get(url: &str) -> (u16, String) {
    let response = http_client(Some(Duration::from_secs(20)))
        .get(url)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().unwrap())
}

/// The first root of `repo`, re-signed by its own root key as `version`.
fn root_as_version(repo: &TestRepo, version: u64) -> Vec<u8> {
    let bytes = std::fs::read(repo.root_path()).unwrap();
    let mut root = Metadata::<Root>::from_bytes(&bytes).unwrap();
    root.signed_mut().version = version;
    root.signatures.clear();
    root.sign(&repo.keys.root as &dyn Signer, false).unwrap();
    root.to_bytes().unwrap()
}

#[test]
fn a_stored_root_is_used_only_if_it_chains_from_the_configured_root() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = ProxyConfig::new(&upstream, &registry.repo, &state);
    let config_path = dir.path().join("proxy.toml");
    let mut proxy = Proxy::spawn(config.clone(), &config_path).unwrap();
    assert_eq!(proxy.status()["trust"]["root_version"], 1);
    proxy.kill();
    let stored = state.join("metadata/root.json");

    // Another repository's root, version 2, self-signed: it does not chain from ours.
    let foreign = TestRepo::new();
    std::fs::write(&stored, root_as_version(&foreign, 2)).unwrap();
    let refused = Proxy::spawn(config.clone(), &config_path).err().unwrap();
    assert!(
        refused.stderr.contains("trusts root v2 ")
            && refused
                .stderr
                .contains("which does not chain from the configured root v1"),
        "{refused}"
    );
    assert_eq!(refused.status.and_then(|s| s.code()), Some(1), "{refused}");

    // Another root of the same version as the configured one.
    std::fs::write(&stored, std::fs::read(foreign.root_path()).unwrap()).unwrap();
    let refused = Proxy::spawn(config.clone(), &config_path).err().unwrap();
    assert!(
        refused.stderr.contains("another root of the same version"),
        "{refused}"
    );

    // A real rotation to v2, signed by our root key and published by the repository:
    // the chain holds, and the stored root is used.
    let v2 = root_as_version(&registry.repo, 2);
    std::fs::write(
        registry.repo.current_generation_dir().join("2.root.json"),
        &v2,
    )
    .unwrap();
    std::fs::write(&stored, &v2).unwrap();
    let proxy = Proxy::spawn(config, &config_path).unwrap();
    assert_eq!(
        proxy.status()["trust"]["root_version"],
        2,
        "{}",
        proxy.describe()
    );
    assert!(
        proxy.stderr().contains("using the later trusted root"),
        "{}",
        proxy.describe()
    );
}

#[test]
fn a_first_start_says_nothing_about_a_persisted_root() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    let mut proxy = Proxy::start(&upstream, &registry.repo);
    assert_eq!(proxy.status()["trust"]["root_version"], 1);
    assert!(
        !proxy.stderr().contains("persisted"),
        "{}",
        proxy.describe()
    );
    proxy.restart();
    assert!(
        !proxy.stderr().contains("persisted"),
        "{}",
        proxy.describe()
    );
}

#[test]
fn a_delegated_role_garbled_on_the_way_is_fetched_again_after_a_backoff() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    let version = registry.repo.role_version("ns-nsdemo");
    let role_path = format!("/tuf/{version}.ns-nsdemo.json");
    upstream.set_fault(&role_path, Fault::ExtraBytes(7));
    let proxy = Proxy::start(&upstream, &registry.repo);
    let index = format!("{}ns/de/nsdemo", proxy.index_url());
    let (status, body) = get(&index);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("TUF metadata refused") && body.contains("fetched again after"),
        "{body}"
    );
    // Within the backoff it is refused at once, without another fetch.
    let fetches = upstream.requests(&role_path);
    let (status, _) = get(&index);
    assert_eq!(status, 403);
    assert_eq!(upstream.requests(&role_path), fetches);
    // The mirror recovers: after the backoff the role is fetched again and served.
    upstream.clear_faults();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get(&index);
        if status == 200 {
            assert!(body.contains("\"vers\":\"1.0.0\""), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "still {status}: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(upstream.requests(&role_path) > fetches);
    assert_eq!(
        proxy.status()["trust"]["roles_refused"],
        serde_json::json!([])
    );
}

#[test]
fn an_upstream_404_for_a_signed_release_is_an_upstream_fault_not_a_refusal() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);
    upstream.set_fault("/dl/plainutil/0.1.1/download", Fault::Status(404));
    let (status, body) = get(&format!(
        "{}/api/v1/crates/plainutil/0.1.1/download",
        proxy.url()
    ));
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("upstream has no such file") && body.contains("HTTP 404"),
        "{body}"
    );
    let counts = proxy.status();
    assert_eq!(counts["downloads"]["failed_upstream"], 1, "{counts}");
    assert_eq!(counts["downloads"]["refused"], 0, "{counts}");
}

#[test]
fn the_lookup_and_tarball_caches_stay_within_their_budgets() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    // Room for either tarball, not both.
    let sizes = [("plainutil", "0.1.1"), ("nsdemo", "1.0.0")]
        .map(|(name, version)| registry.signed_tarball(name, version).len());
    let budget = sizes[0].max(sizes[1]) + 10;
    assert!(budget < sizes[0] + sizes[1]);
    let proxy = Proxy::start_with(
        &upstream,
        &registry.repo,
        &[
            "max_cached_lookups = 3",
            &format!("tarball_cache_size = {budget}"),
        ],
    );
    // Names a client makes up: answered (not signed), but never more than 3 kept.
    for i in 0..20 {
        let (status, _) = get(&format!(
            "{}/api/v1/crates/made-up-{i}/1.0.0/download",
            proxy.url()
        ));
        assert_eq!(status, 403);
    }
    let counts = proxy.status();
    assert_eq!(counts["trust"]["lookups_cached"], 3, "{counts}");
    assert_eq!(counts["trust"]["lookups_budget"], 3, "{counts}");
    // Two tarballs through a cache that holds one: the older goes, both were served.
    for (name, version) in [("plainutil", "0.1.1"), ("nsdemo", "1.0.0")] {
        let (status, body) = get(&format!(
            "{}/api/v1/crates/{name}/{version}/download",
            proxy.url()
        ));
        assert_eq!(status, 200, "{body}");
    }
    let cache = &proxy.status()["cache"];
    assert_eq!(cache["tarballs"], 1, "{cache}");
    assert_eq!(cache["evicted"], 1, "{cache}");
    assert!(
        cache["bytes"].as_u64().unwrap() <= cache["budget_bytes"].as_u64().unwrap(),
        "{cache}"
    );
    let files = std::fs::read_dir(proxy.state_dir().join("tarballs"))
        .unwrap()
        .count();
    assert_eq!(files, 1);
    assert!(
        proxy.status()["index_cache"]["budget_bytes"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn lookups_needing_different_roles_do_not_wait_for_each_other_and_one_role_is_fetched_once() {
    let mut registry = Registry::new();
    registry.repo.delegate_namespace("slow");
    registry.repo.delegate_namespace("quick");
    registry.publish("slow", "1.0.0", &[], "");
    registry.publish("slow", "1.0.1", &[], "");
    registry.publish("quick", "1.0.0", &[], "");
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);
    let slow_role = format!(
        "/tuf/{}.ns-slow.json",
        registry.repo.role_version("ns-slow")
    );
    // Under the upstream timeout of the test configuration (3 s).
    upstream.set_fault(&slow_role, Fault::Delay(Duration::from_secs(2)));

    let url = proxy.url().to_owned();
    // Two versions in the one namespace role, each asked for twice.
    let slow: Vec<_> = ["1.0.0", "1.0.1", "1.0.0", "1.0.1"]
        .into_iter()
        .map(|version| {
            let url = format!("{url}/api/v1/crates/slow/{version}/download");
            std::thread::spawn(move || get(&url).0)
        })
        .collect();
    // Let the slow lookups reach the role fetch before the quick one starts.
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream.requests(&slow_role) == 0 {
        assert!(
            Instant::now() < deadline,
            "the slow role was never asked for"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, body) = get(&format!("{url}/api/v1/crates/quick/1.0.0/download"));
    assert_eq!(status, 200, "{body}");
    // The quick lookup finished while the slow role was still being fetched.
    assert!(
        slow.iter().all(|t| !t.is_finished()),
        "the quick lookup waited for the slow role"
    );
    for thread in slow {
        assert_eq!(thread.join().unwrap(), 200);
    }
    assert_eq!(
        upstream.requests(&slow_role),
        1,
        "one fetch of the slow role"
    );
}

#[test]
fn lines_that_are_not_entries_of_the_crate_are_dropped_and_counted() {
    let mut registry = registry();
    // An unsigned version, and a signed one whose cksum upstream replaced.
    registry.publish_unsigned("plainutil", "0.3.0", &[], "");
    registry.replace_release("plainutil", "0.1.1", "pub fn one() -> u32 { 666 }\n");
    let file = registry.index_file("plainutil");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("not json at all\n");
    text.push_str(&registry.index_lines("nsdemo")[0]);
    text.push('\n');
    std::fs::write(&file, text).unwrap();
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);
    let (status, body) = get(&format!("{}pl/ai/plainutil", proxy.index_url()));
    assert_eq!(status, 200, "{body}");
    // The two signed versions, from the signed index file: 0.1.1 with its signed cksum.
    assert_eq!(body.lines().count(), 2, "{body}");
    assert!(
        body.contains(&registry.signed_sha256("plainutil", "0.1.1")),
        "{body}"
    );
    let counts = proxy.status();
    assert_eq!(counts["index"]["lines_served"], 2, "{counts}");
    assert_eq!(counts["index"]["lines_from_signed_index"], 2, "{counts}");
    assert_eq!(counts["index"]["lines_differing_upstream"], 1, "{counts}");
    // Junk, another crate's line, the unsigned 0.3.0.
    assert_eq!(counts["index"]["lines_dropped"], 3, "{counts}");
}

#[test]
fn a_cached_answer_is_not_served_past_the_expiry_of_its_delegated_role() {
    let mut registry = registry();
    // ns-nsdemo, re-signed by its maintainer, expiring in a few seconds; the top-level
    // roles stay valid for days.
    let maintainer = support::clone_key(registry.repo.maintainer_key("ns-nsdemo").unwrap());
    let expires = chrono::Utc::now() + chrono::Duration::seconds(4);
    registry.repo.forge(
        "ns-nsdemo",
        |targets| targets.expires = tuf_core::metadata::whole_seconds(expires),
        &maintainer,
    );
    let upstream = Upstream::start(&registry);
    let dir = tempfile::tempdir().unwrap();
    let mut config = ProxyConfig::new(&upstream, &registry.repo, &dir.path().join("state"));
    // No refresh in between: the answer cached at the start is the one judged.
    config.refresh_interval = "1h".into();
    let proxy = Proxy::spawn(config, &dir.path().join("proxy.toml")).unwrap();
    let download = format!("{}/api/v1/crates/nsdemo/1.0.0/download", proxy.url());
    let index = format!("{}ns/de/nsdemo", proxy.index_url());
    assert_eq!(get(&index).0, 200, "{}", proxy.describe());
    assert_eq!(get(&download).0, 200, "{}", proxy.describe());
    // Cached now; answered from the cache until the role expires, then refused.
    assert_eq!(get(&download).0, 200);
    while chrono::Utc::now() <= expires + chrono::Duration::milliseconds(200) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = get(&download);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("TUF metadata expired: ns-nsdemo expired at"),
        "{body}"
    );
    // The filtered index file kept from before is not served either (upstream says 304).
    let (status, body) = get(&index);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("expired"), "{body}");
}

#[test]
fn a_version_signed_later_appears_after_a_refresh_while_upstream_answers_304() {
    let mut registry = registry();
    let tarball =
        registry.publish_unsigned("plainutil", "0.2.0", &[], "pub fn one() -> u32 { 1 }\n");
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);
    let index = format!("{}pl/ai/plainutil", proxy.index_url());
    let first = http_client(Some(Duration::from_secs(20)))
        .get(&index)
        .send()
        .unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let first_etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let body = first.text().unwrap();
    assert!(!body.contains("0.2.0"), "{body}");
    let (status, _) = get(&format!(
        "{}/api/v1/crates/plainutil/0.2.0/download",
        proxy.url()
    ));
    assert_eq!(status, 403, "not signed yet");
    // The owners sign 0.2.0; upstream's index file does not change (it answers 304).
    registry.repo.add_release("plainutil", "0.2.0", &tarball);
    registry.repo.sign_and_publish();
    let snapshot = registry.repo.snapshot_version();
    let deadline = Instant::now() + Duration::from_secs(20);
    while proxy.status()["trust"]["snapshot_version"] != snapshot {
        assert!(Instant::now() < deadline, "{}", proxy.describe());
        std::thread::sleep(Duration::from_millis(100));
    }
    upstream.clear_log();
    // cargo asks with the ETag it has: the answer changed, so it gets the new file.
    let again = http_client(Some(Duration::from_secs(20)))
        .get(&index)
        .header("if-none-match", &first_etag)
        .send()
        .unwrap();
    assert_eq!(again.status().as_u16(), 200);
    assert_ne!(again.headers()["etag"].to_str().unwrap(), first_etag);
    let body = again.text().unwrap();
    assert!(body.contains("\"vers\":\"0.2.0\""), "{body}");
    let asked = upstream.request_log();
    assert!(
        asked
            .iter()
            .any(|r| r.path == "/index/pl/ai/plainutil" && r.status == 304),
        "{asked:?}"
    );
    let (status, _) = get(&format!(
        "{}/api/v1/crates/plainutil/0.2.0/download",
        proxy.url()
    ));
    assert_eq!(status, 200);
}

#[test]
fn a_role_the_repository_cannot_serve_now_is_503_and_not_remembered() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    let version = registry.repo.role_version("ns-nsdemo");
    let role_path = format!("/tuf/{version}.ns-nsdemo.json");
    upstream.set_fault(&role_path, Fault::Status(500));
    let proxy = Proxy::start(&upstream, &registry.repo);
    let index = format!("{}ns/de/nsdemo", proxy.index_url());
    let (status, body) = get(&index);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("cannot fetch TUF metadata"), "{body}");
    // Not a refusal: the next request tries again at once.
    upstream.clear_faults();
    let (status, body) = get(&index);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn before_any_metadata_is_trusted_requests_are_503_with_the_reason() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    let dir = tempfile::tempdir().unwrap();
    let mut config = ProxyConfig::new(&upstream, &registry.repo, &dir.path().join("state"));
    // A TUF repository that does not answer.
    config.metadata = "http://127.0.0.1:9/tuf/".into();
    config.connect_timeout = "1s".into();
    let proxy = Proxy::spawn(config, &dir.path().join("proxy.toml")).unwrap();
    for path in ["index/ns/de/nsdemo", "api/v1/crates/nsdemo/1.0.0/download"] {
        let (status, body) = get(&format!("{}/{path}", proxy.url()));
        assert_eq!(status, 503, "{path}: {body}");
        assert!(
            body.contains("no trusted TUF metadata yet"),
            "{path}: {body}"
        );
    }
}

#[test]
fn the_status_page_is_an_html_table_with_escaped_text() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    let dir = tempfile::tempdir().unwrap();
    let mut config = ProxyConfig::new(&upstream, &registry.repo, &dir.path().join("state"));
    // A reason with markup in it: the metadata URL.
    config.metadata = "http://127.0.0.1:9/<tuf>/".into();
    config.connect_timeout = "1s".into();
    let proxy = Proxy::spawn(config, &dir.path().join("proxy.toml")).unwrap();
    let response = http_client(Some(Duration::from_secs(10)))
        .get(format!("{}/status", proxy.url()))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().unwrap();
    assert!(
        html.contains("<table>") && html.contains("lines_dropped_foreign_registry"),
        "{html}"
    );
    assert!(html.contains("&lt;tuf&gt;"), "{html}");
    assert!(!html.contains("/<tuf>/"), "{html}");
}

#[test]
fn signed_releases_are_served_whatever_upstream_answers_for_their_index_file() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);
    let (status, body) = get(&format!("{}no/su/nosuchcrate", proxy.index_url()));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no signed version of nosuchcrate"), "{body}");
    // Upstream says it has no such crate, or answers nonsense: the signed releases are
    // served from the signed index file all the same, and counted.
    for (fault, counter) in [
        (Fault::Status(404), "lines_withheld_upstream"),
        (Fault::Status(410), "lines_withheld_upstream"),
        (Fault::Status(451), "lines_withheld_upstream"),
        (Fault::Status(304), "upstream_unavailable"),
    ] {
        let before = proxy.status()["index"][counter].as_u64().unwrap();
        upstream.set_fault("/index/pl/ai/plainutil", fault.clone());
        let (status, body) = get(&format!("{}pl/ai/plainutil", proxy.index_url()));
        assert_eq!(status, 200, "{fault:?}: {body}");
        assert_eq!(body.lines().count(), 2, "{fault:?}: {body}");
        assert!(
            proxy.status()["index"][counter].as_u64().unwrap() > before,
            "{fault:?}"
        );
    }
}

#[test]
fn the_crate_size_cap_admits_exactly_the_signed_length() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    let length = registry.signed_tarball("plainutil", "0.1.1").len();
    for (cap, expected) in [(length, 200), (length - 1, 403)] {
        let dir = tempfile::tempdir().unwrap();
        let config = ProxyConfig::new(&upstream, &registry.repo, &dir.path().join("state"))
            .with_line(&format!("max_crate_size = {cap}"));
        let proxy = Proxy::spawn(config, &dir.path().join("proxy.toml")).unwrap();
        let (status, body) = get(&format!(
            "{}/api/v1/crates/plainutil/0.1.1/download",
            proxy.url()
        ));
        assert_eq!(status, expected, "cap {cap}: {body}");
        if expected == 403 {
            assert!(body.contains("over the proxy's limit"), "{body}");
        }
    }
}

#[test]
fn an_upstream_config_json_of_a_few_kilobytes_is_read() {
    let registry = registry();
    let upstream = Upstream::start(&registry);
    // What Upstream::start wrote, plus fields a real registry may have.
    let config_path = registry.index_dir().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["api"] = serde_json::json!("https://registry.example/");
    config["x-padding"] = serde_json::json!("p".repeat(4000));
    std::fs::write(&config_path, config.to_string()).unwrap();
    let proxy = Proxy::start(&upstream, &registry.repo);
    let (status, body) = get(&format!(
        "{}/api/v1/crates/plainutil/0.1.1/download",
        proxy.url()
    ));
    assert_eq!(status, 200, "{body}");
}
