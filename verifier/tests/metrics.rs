//! `/metrics` (spec/proxy.md, "Metrics"), read by the Prometheus project's own OpenMetrics
//! parser (python `prometheus_client`, from PyPI): the exposition parses, its counters are
//! those of `/status.json`, each route's latency is counted by answer code, upstream's
//! outcomes are counted, and `--log-format json` writes one JSON object per log line.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{http_client, Fault, Proxy, Registry, Upstream};

fn get(url: &str) -> (u16, String, String) {
    let response = http_client(Some(Duration::from_secs(20)))
        .get(url)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().unwrap())
}

/// Each sample of `exposition` as the OpenMetrics parser of python `prometheus_client`
/// reads it: `name{label="value",...}` to its value. The parser refuses anything that
/// is not valid OpenMetrics (a missing `# EOF`, a counter without `_total`, a bad name).
fn parse_openmetrics(exposition: &str) -> BTreeMap<String, f64> {
    const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
samples = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        samples[f"{s.name}{{{labels}}}"] = s.value
print(json.dumps(samples))
"#;
    let mut child = Command::new(tuf_crates_tests::python_tuf())
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "prometheus_client refused the exposition: {}\n{exposition}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn sample(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("no sample {key} among {:#?}", samples.keys()))
}

#[test]
fn metrics_parse_as_openmetrics_and_count_what_the_proxy_did() {
    let mut registry = Registry::new();
    registry.publish("plainutil", "0.1.0", &[], "pub fn one() -> u32 { 1 }\n");
    registry.publish("flakyutil", "0.1.0", &[], "pub fn two() -> u32 { 2 }\n");
    registry.publish_unsigned("sneakyutil", "0.1.0", &[], "pub fn x() {}\n");
    let upstream = Upstream::start(&registry);
    let proxy = Proxy::start(&upstream, &registry.repo);
    let download = |name: &str| format!("{}/api/v1/crates/{name}/0.1.0/download", proxy.url());

    assert_eq!(get(&download("plainutil")).0, 200);
    assert_eq!(get(&download("plainutil")).0, 200, "again, from the cache");
    assert_eq!(get(&download("sneakyutil")).0, 403);
    upstream.set_fault("/dl/flakyutil/", Fault::Status(500));
    assert_eq!(get(&download("flakyutil")).0, 502);
    assert_eq!(
        get(&format!("{}/index/pl/ai/plainutil", proxy.url())).0,
        200
    );

    let (status, content_type, body) = get(&format!("{}/metrics", proxy.url()));
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let samples = parse_openmetrics(&body);
    let status_json = proxy.status();

    // The counters are those of /status.json.
    for (metric, field) in [
        (
            "tuf_verifier_downloads_served_total",
            &status_json["downloads"]["served"],
        ),
        (
            "tuf_verifier_downloads_served_from_cache_total",
            &status_json["downloads"]["served_from_cache"],
        ),
        (
            "tuf_verifier_downloads_refused_total",
            &status_json["downloads"]["refused"],
        ),
        (
            "tuf_verifier_downloads_failed_upstream_total",
            &status_json["downloads"]["failed_upstream"],
        ),
        (
            "tuf_verifier_index_served_total",
            &status_json["index"]["served"],
        ),
        (
            "tuf_verifier_refusals_total",
            &status_json["refusals"]["total"],
        ),
    ] {
        assert_eq!(
            sample(&samples, &format!("{metric}{{}}")),
            field.as_f64().unwrap(),
            "{metric}"
        );
    }
    assert_eq!(
        sample(&samples, "tuf_verifier_downloads_served_total{}"),
        2.0
    );
    assert_eq!(
        sample(&samples, "tuf_verifier_downloads_refused_total{}"),
        1.0
    );
    assert_eq!(
        sample(&samples, "tuf_verifier_downloads_failed_upstream_total{}"),
        1.0
    );

    // Gauges of the trusted metadata.
    assert_eq!(sample(&samples, "tuf_verifier_serving{}"), 1.0);
    assert_eq!(
        sample(&samples, "tuf_verifier_snapshot_version{}"),
        status_json["trust"]["snapshot_version"].as_f64().unwrap()
    );
    let now = chrono::Utc::now().timestamp() as f64;
    for role in ["root", "timestamp", "snapshot", "targets"] {
        let expires = sample(
            &samples,
            &format!("tuf_verifier_role_expires_timestamp_seconds{{role=\"{role}\"}}"),
        );
        assert!(expires > now, "{role} expires {expires}, now {now}");
    }

    // Latency per route and code: the two served downloads, the refusal, the failure.
    let downloads = "/api/v1/crates/{name}/{version}/download";
    let count = |code: u16| {
        sample(
            &samples,
            &format!(
                "tuf_verifier_http_request_duration_seconds_count{{code=\"{code}\",route=\"{downloads}\"}}"
            ),
        )
    };
    assert_eq!(count(200), 2.0);
    assert_eq!(count(403), 1.0);
    assert_eq!(count(502), 1.0);
    assert_eq!(
        sample(
            &samples,
            "tuf_verifier_http_request_duration_seconds_count{code=\"200\",route=\"/index/{*path}\"}"
        ),
        1.0
    );
    let bucket_sum: f64 = samples
        .iter()
        .filter(|(k, _)| {
            k.starts_with("tuf_verifier_http_request_duration_seconds_bucket{")
                && k.contains(downloads)
                && k.contains("code=\"200\"")
                && k.contains("le=\"+Inf\"")
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(bucket_sum, 2.0, "the +Inf bucket holds every request");

    // Upstream outcomes: one tarball fetched, one failed (the cached one asked nothing).
    let upstream_count = |request: &str, outcome: &str| {
        samples
            .get(&format!(
                "tuf_verifier_upstream_requests_total{{outcome=\"{outcome}\",request=\"{request}\"}}"
            ))
            .copied()
            .unwrap_or(0.0)
    };
    assert_eq!(upstream_count("download", "failed"), 1.0);
    // The refused tarball is fetched too (then found unsigned), and so is plainutil once.
    assert!(upstream_count("download", "ok") >= 1.0);
    assert_eq!(
        upstream_count("download", "ok") + upstream_count("download", "failed"),
        status_json["downloads"]["upstream_requests"]
            .as_f64()
            .unwrap()
    );
    assert!(upstream_count("index", "ok") >= 1.0);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let mut registry = Registry::new();
    registry.publish("plainutil", "0.1.0", &[], "pub fn one() -> u32 { 1 }\n");
    registry.publish_unsigned("sneakyutil", "0.1.0", &[], "pub fn x() {}\n");
    let upstream = Upstream::start(&registry);
    let mut proxy = Proxy::start_configured(&upstream, &registry.repo, |config| {
        config
            .env
            .push(("TUF_VERIFIER_LOG_FORMAT".into(), "json".into()));
    });
    let download = format!("{}/api/v1/crates/sneakyutil/0.1.0/download", proxy.url());
    assert_eq!(get(&download).0, 403);
    proxy.signal("TERM");
    assert!(proxy.wait_exit(Duration::from_secs(10)).is_some());
    let log = proxy.stderr();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "{log}");
    let mut refusal = None;
    for line in &lines {
        let object: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line:?}\n{log}"));
        assert!(object["timestamp"].is_string(), "{line}");
        assert!(object["level"].is_string(), "{line}");
        assert!(!line.contains('\u{1b}'), "no colour codes: {line:?}");
        if line.contains("sneakyutil") && object["level"] == "WARN" {
            refusal = Some(object);
        }
    }
    let refusal = refusal.unwrap_or_else(|| panic!("no WARN line names the refusal:\n{log}"));
    assert!(refusal["fields"].is_object(), "{refusal}");
}

/// With JSON logs, even the last word of a proxy that cannot start is an object on
/// stderr, and the cause is said once.
#[test]
fn json_logs_report_a_fatal_error_as_an_object() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("verifier.toml");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tuf-verifier"))
        .args(["serve", "--config"])
        .arg(&missing)
        .env("TUF_VERIFIER_LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "nothing on stderr");
    let objects: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line:?}\n{stderr}"))
        })
        .collect();
    let last = objects.last().unwrap();
    assert_eq!(last["level"], "ERROR", "{stderr}");
    let error = last["fields"]["error"].as_str().unwrap();
    assert!(error.contains(&missing.display().to_string()), "{error}");
    assert_eq!(error.matches("os error 2").count(), 1, "{error}");
}
