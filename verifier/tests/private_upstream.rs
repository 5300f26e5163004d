//! A private upstream registry: a real nginx that refuses every request without the
//! right bearer token serves the registry, and the proxy stands in front of it with its
//! own token. Real cargo (isolated CARGO_HOME) builds through the proxy; with a wrong or
//! missing upstream token it gets a refusal naming upstream authentication. The token
//! goes only to upstream's origin: not to the TUF repository, not across a redirect, and
//! never into a log line at trace level, `/status.json` or an error message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use support::{CargoProject, Downloads, Nginx, Proxy, Registry, Upstream};

/// The token nginx wants, as the proxy sends it.
const UPSTREAM_AUTHORIZATION: &str = "Bearer upstream-s3cret-4711";

const MAIN_RS: &str = "fn main() { println!(\"answer={}\", nsdemo::answer()); }\n";

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.repo.delegate_namespace("nsdemo");
    registry.publish("plainutil", "0.1.0", &[], "pub fn one() -> u32 { 1 }\n");
    registry.publish(
        "nsdemo",
        "1.0.0",
        &[("plainutil", "^0.1")],
        "pub fn answer() -> u32 { plainutil::one() + 41 }\n",
    );
    registry
}

/// The TUF repository on `tuf` (a server that logs headers), the registry on nginx
/// (`config.json`'s `dl` pointing at nginx's `/dl`).
struct Private {
    registry: Registry,
    tuf: Upstream,
    nginx: Nginx,
    _dir: tempfile::TempDir,
}

impl Private {
    fn start(downloads: impl FnOnce(&Upstream) -> Downloads) -> Self {
        let registry = registry();
        let tuf = Upstream::start(&registry);
        let nginx = Nginx::start(&registry, UPSTREAM_AUTHORIZATION, downloads(&tuf));
        // Upstream::start wrote config.json for itself: the registry is nginx.
        registry.write_config(&format!("{}/dl", nginx.url()));
        Self {
            registry,
            tuf,
            nginx,
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A proxy in front of nginx whose upstream token file holds `token` (none: no
    /// token configured), logging at trace level.
    fn proxy(&self, token: Option<&str>, extra: &[String]) -> Proxy {
        let token_file = self._dir.path().join(format!(
            "token-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        Proxy::start_configured(&self.tuf, &self.registry.repo, |config| {
            config.upstream_index = self.nginx.index_url();
            config.env.push(("TUF_VERIFIER_LOG".into(), "trace".into()));
            if let Some(token) = token {
                std::fs::write(&token_file, format!("{token}\n")).unwrap();
                config.extra.push(format!(
                    "upstream_token_file = {}",
                    serde_json::to_string(token_file.to_str().unwrap()).unwrap()
                ));
            }
            config.extra.extend(extra.iter().cloned());
        })
    }
}

/// The token is in none of the proxy's output (logged at trace level) and not in its
/// `/status.json` or `/status` page (asked with `client_token` when the proxy wants one).
fn assert_token_nowhere(proxy: &Proxy, token: &str, client_token: Option<&str>) {
    let secret = token.trim_start_matches("Bearer ");
    let page = |path: &str| {
        let mut request = support::http_client(None).get(format!("{}{path}", proxy.url()));
        if let Some(client_token) = client_token {
            request = request.header("authorization", client_token);
        }
        let answer = request.send().unwrap();
        assert_eq!(answer.status().as_u16(), 200, "{path}");
        answer.text().unwrap()
    };
    for (what, text) in [
        ("stdout", proxy.stdout()),
        ("stderr", proxy.stderr()),
        ("/status.json", page("/status.json")),
        ("/status", page("/status")),
    ] {
        assert!(
            !text.contains(secret),
            "the token is in the proxy's {what}: {text}"
        );
    }
}

#[test]
fn the_proxy_authenticates_to_a_private_registry_and_cargo_builds() {
    let private = Private::start(|_| Downloads::Served);
    // nginx really refuses without the token.
    let refused = support::http_client(None)
        .get(format!("{}config.json", private.nginx.index_url()))
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);

    let proxy = private.proxy(Some(UPSTREAM_AUTHORIZATION), &[]);
    let project = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
    let output = project.run().assert_success();
    assert!(output.stdout.contains("answer=42"), "{}", output.describe());
    let log = private.nginx.access_log();
    assert!(log.contains("GET /dl/nsdemo/1.0.0/download"), "{log}");
    // Every request of the proxy's (not the test's own above) carried the token.
    let proxy_requests: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("tuf-verifier/"))
        .collect();
    assert!(proxy_requests.len() >= 4, "{log}");
    assert!(
        proxy_requests.iter().all(|l| l.contains("\" 200 ")),
        "{log}"
    );
    // The TUF repository is another origin: it never saw the token.
    let tuf_requests = private.tuf.request_log();
    assert!(!tuf_requests.is_empty());
    for request in &tuf_requests {
        assert_eq!(request.header("authorization"), None, "{request:?}");
    }
    assert_token_nowhere(&proxy, UPSTREAM_AUTHORIZATION, None);
    // The log says that requests carry a token, and from which file, not what it is.
    let stderr = proxy.stderr();
    let said = stderr
        .lines()
        .find(|l| l.contains("upstream requests to its origin carry the proxy's token"))
        .unwrap_or_else(|| panic!("the log never says a token is used:\n{stderr}"));
    assert!(
        said.contains("token-"),
        "the line names no token file: {said}"
    );
}

#[test]
fn a_wrong_or_missing_upstream_token_is_a_refusal_naming_upstream_authentication() {
    let private = Private::start(|_| Downloads::Served);
    let wrong = "Bearer not-the-token-0815";
    for (token, needle) in [
        (
            Some(wrong),
            "upstream refused the proxy's credentials (HTTP 401)",
        ),
        (
            None,
            "upstream requires authentication (HTTP 401) and the proxy sends no token",
        ),
    ] {
        let proxy = private.proxy(token, &[]);
        let project = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
        let output = project.build();
        assert!(!output.success(), "{}", output.describe());
        assert!(
            output.stderr.contains(needle),
            "{needle:?}: {}",
            output.describe()
        );
        if let Some(token) = token {
            assert!(
                !output.stderr.contains("not-the-token"),
                "{}",
                output.describe()
            );
            assert_token_nowhere(&proxy, token, None);
        }
    }
}

#[test]
fn the_token_does_not_follow_a_redirect_to_another_origin() {
    // nginx sends downloads to the other server (a bucket, say), which logs headers.
    let private = Private::start(|tuf| Downloads::RedirectTo(tuf.url().to_owned()));
    let proxy = private.proxy(Some(UPSTREAM_AUTHORIZATION), &[]);
    let project = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
    project.run().assert_success();
    let downloads: Vec<_> = private
        .tuf
        .request_log()
        .into_iter()
        .filter(|r| r.path.starts_with("/dl/"))
        .collect();
    assert_eq!(downloads.len(), 2, "{downloads:?}");
    for request in &downloads {
        assert_eq!(request.header("authorization"), None, "{request:?}");
    }
}

/// `$CARGO_HOME/config.toml` for a proxy that wants a client token: the proxy as the
/// registry `proxied`, replacing crates.io, with cargo's token provider.
fn token_config(project: &CargoProject, proxy: &Proxy, providers: &str) {
    let config = format!(
        "[registries.proxied]\nindex = \"sparse+{}\"\ncredential-provider = {providers}\n\n\
         [source.crates-io]\nreplace-with = \"proxied\"\n\n\
         [net]\nretry = 0\n\n[term]\ncolor = \"never\"\nprogress.when = \"never\"\n",
        proxy.index_url()
    );
    std::fs::write(project.home().join("config.toml"), config).unwrap();
}

#[test]
fn with_client_tokens_cargo_needs_one_and_builds_with_it() {
    let private = Private::start(|_| Downloads::Served);
    let tokens_file = private._dir.path().join("client-tokens");
    let made = std::process::Command::new(support::proxy::binary())
        .args([
            "client-token",
            "new",
            "--json",
            "--name",
            "ci-runner",
            "--tokens-file",
        ])
        .arg(&tokens_file)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let made: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    let token = made["token"].as_str().unwrap().to_owned();
    let file = std::fs::read_to_string(&tokens_file).unwrap();
    assert!(
        file.starts_with("sha256:") && file.trim_end().ends_with(" ci-runner"),
        "{file}"
    );
    assert!(
        !file.contains(&token),
        "the tokens file holds only digests: {file}"
    );

    let proxy = private.proxy(
        Some(UPSTREAM_AUTHORIZATION),
        &[format!(
            "client_tokens_file = {}",
            serde_json::to_string(tokens_file.to_str().unwrap()).unwrap()
        )],
    );
    // Anyone may ask /healthz; nothing else without a token.
    let client = support::http_client(None);
    for (path, status) in [
        ("/healthz", 200),
        ("/index/config.json", 401),
        ("/status.json", 401),
    ] {
        let answer = client.get(format!("{}{path}", proxy.url())).send().unwrap();
        assert_eq!(answer.status().as_u16(), status, "{path}");
    }
    let config = client
        .get(format!("{}/index/config.json", proxy.url()))
        .header("authorization", &token)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["auth-required"], true, "{config}");

    // cargo without a token: 401 and cargo's own hint to log in.
    let mut project = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
    token_config(&project, &proxy, "\"cargo:token\"");
    let output = project.build();
    assert!(!output.success(), "{}", output.describe());
    assert!(
        output
            .stderr
            .contains("no token found for `proxied`, please run `cargo login --registry proxied`"),
        "{}",
        output.describe()
    );
    // A wrong token: refused too.
    project.set_env("CARGO_REGISTRIES_PROXIED_TOKEN", "tvp_wrong");
    let output = project.build();
    assert!(!output.success(), "{}", output.describe());
    assert!(
        output.stderr.contains("token rejected for `proxied`")
            && output
                .stderr
                .contains("the token cargo sent is not one this proxy accepts"),
        "{}",
        output.describe()
    );
    // With the token, from cargo:token (the environment), it builds.
    project.set_env("CARGO_REGISTRIES_PROXIED_TOKEN", &token);
    let output = project.run().assert_success();
    assert!(output.stdout.contains("answer=42"), "{}", output.describe());
    // With the token from a command (cargo:token-from-stdout), as a secret manager would
    // give it.
    let token_file = private._dir.path().join("cargo-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let mut project = CargoProject::with_main(&proxy.index_url(), &[("nsdemo", "1")], MAIN_RS);
    token_config(
        &project,
        &proxy,
        &format!(
            "[\"cargo:token-from-stdout\", \"cat\", {}]",
            serde_json::to_string(token_file.to_str().unwrap()).unwrap()
        ),
    );
    project.set_timeout(std::time::Duration::from_secs(180));
    let output = project.run().assert_success();
    assert!(output.stdout.contains("answer=42"), "{}", output.describe());
    assert_token_nowhere(&proxy, &token, Some(&token));
    assert_token_nowhere(&proxy, UPSTREAM_AUTHORIZATION, Some(&token));
}
