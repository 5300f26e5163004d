//! The built-in demo of `tuf-verifier serve`: in a temporary directory, an upstream
//! sparse registry of the keys-example crates and their TUF repository, signed at start
//! with the keys-example keys (public demo keys: never use them for anything else).
//!
//! The demo registry holds the four signed releases of `keys-example/crates`, plus one
//! release upstream that nobody signed (`tufdemo` 0.3.0), which the proxy hides. The
//! tufdemo maintainer (alice) attests her releases and yanks 0.1.0, a reviewer (bob)
//! reviews 0.2.0, and upstream's line of 0.2.0 names a dependency the owners did not
//! sign: `tuf-verifier explain tufdemo` shows each of these. An
//! in-process static file server on 127.0.0.1 plays the upstream registry and the TUF
//! repository; the proxy in front of it is the real one, configured like any other.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use sha2::{Digest, Sha256};
use tuf_core::attestation::{Attestation, AttestationKind};
use tuf_core::repository::{InitOptions, Repository, RoleKeySpec, Settings};
use tuf_core::{PrivateKey, Signer};

use crate::config::{MetadataLocation, ServeArgs, ServeConfig};
use crate::upstream::index_path;

/// The demo's trust policy (a copy is written to the demo's directory and served under).
const POLICY: &str = include_str!("../../keys-example/policy.toml");

/// The keyid of carol's key (keys-example/keys/developer-carol), whom the demo policy
/// does not trust.
pub const CAROL_KEYID: &str = "7c24bc1c6210b0a11b274ca07ef4eaf84b6c5945565a3cda75e1515c69cb3ede";

/// The demo keys' public passphrase (keys-example/README.md).
const PASSPHRASE: &[u8] = b"tuf-crates-demo-NOT-SECRET";

macro_rules! key {
    ($name:literal) => {
        include_str!(concat!("../../keys-example/keys/", $name, ".pem"))
    };
}

/// The signed demo releases: name, version, tarball.
const RELEASES: [(&str, &str, &[u8]); 4] = [
    (
        "tufdemo",
        "0.1.0",
        include_bytes!("../../keys-example/crates/tufdemo-0.1.0.crate"),
    ),
    (
        "tufdemo",
        "0.2.0",
        include_bytes!("../../keys-example/crates/tufdemo-0.2.0.crate"),
    ),
    (
        "unclaimed-util",
        "1.0.0",
        include_bytes!("../../keys-example/crates/unclaimed-util-1.0.0.crate"),
    ),
    (
        "unclaimed-app-helper",
        "0.3.0",
        include_bytes!("../../keys-example/crates/unclaimed-app-helper-0.3.0.crate"),
    ),
];

/// The upstream index files: crate name, content.
const INDEX_FILES: [(&str, &str); 3] = [
    (
        "tufdemo",
        include_str!("../../keys-example/crates/index/tu/fd/tufdemo"),
    ),
    (
        "unclaimed-util",
        include_str!("../../keys-example/crates/index/un/cl/unclaimed-util"),
    ),
    (
        "unclaimed-app-helper",
        include_str!("../../keys-example/crates/index/un/cl/unclaimed-app-helper"),
    ),
];

/// A demo environment: its temporary directory lives as long as this value.
pub struct Demo {
    dir: tempfile::TempDir,
    upstream_url: String,
}

fn demo_key(pem: &str, name: &str) -> anyhow::Result<PrivateKey> {
    PrivateKey::from_pkcs8_pem(pem, Some(PASSPHRASE))
        .with_context(|| format!("cannot decrypt the demo key {name}"))
}

fn spec(keys: &[&PrivateKey], threshold: u64) -> RoleKeySpec {
    RoleKeySpec {
        keys: keys.iter().map(|k| k.public_key().clone()).collect(),
        threshold,
    }
}

/// Builds the TUF repository of the demo releases in `dir`, the ceremony of
/// keys-example/build-demo-repository.sh through the editor API.
fn build_repository(dir: &Path) -> anyhow::Result<()> {
    let root = [
        demo_key(key!("root-1"), "root-1")?,
        demo_key(key!("root-2"), "root-2")?,
        demo_key(key!("root-3"), "root-3")?,
    ];
    let targets = demo_key(key!("targets"), "targets")?;
    let online = demo_key(key!("online"), "online")?;
    let maintainer = demo_key(key!("maintainer-tufdemo"), "maintainer-tufdemo")?;
    let now = Utc::now();
    let options = InitOptions {
        root: spec(&[&root[0], &root[1], &root[2]], 2),
        targets: spec(&[&targets], 1),
        snapshot: spec(&[&online], 1),
        timestamp: spec(&[&online], 1),
        fallback: spec(&[&online], 1),
        settings: Settings {
            fallback_bin_bits: 4,
            ..Settings::default()
        },
    };
    let mut repo = Repository::init(dir, &options, now)?;
    repo.sign("root", &root[0])?;
    repo.sign("root", &root[1])?;
    repo.delegate_namespace("tufdemo", &spec(&[&maintainer], 1), now)?;
    repo.sign("targets", &targets)?;
    let reviewer = demo_key(key!("reviewer-bob"), "reviewer-bob")?;
    let carol = demo_key(key!("developer-carol"), "developer-carol")?;
    for (name, version, tarball) in RELEASES {
        let entry = tuf_core::crate_archive::release_index_entry(
            &format!("{name}-{version}.crate"),
            tarball,
            &tuf_core::crate_archive::ArchiveLimits::default(),
        )?;
        repo.add_release(name, version, tarball, entry, now)?;
        // alice (the tufdemo maintainer) attests her releases and unclaimed-app-helper
        // as their author; carol, whom the demo policy does not trust, released
        // unclaimed-util.
        let (author, label) = if name == "unclaimed-util" {
            (&carol, "carol")
        } else {
            (&maintainer, "alice")
        };
        attest(
            &mut repo,
            name,
            version,
            AttestationKind::Release,
            author,
            label,
            now,
        )?;
    }
    // A reviewer, bob, reviews tufdemo 0.2.0; the owners yank 0.1.0.
    attest(
        &mut repo,
        "tufdemo",
        "0.2.0",
        AttestationKind::Review,
        &reviewer,
        "bob",
        now,
    )?;
    repo.set_yanked("tufdemo", "0.1.0", true, now)?;
    repo.sign("ns-tufdemo", &maintainer)?;
    repo.publish(&[&online], now, &())?;
    Ok(())
}

/// `signer` (labelled `label`) attests `name` `version` as `kind`.
fn attest(
    repo: &mut Repository,
    name: &str,
    version: &str,
    kind: AttestationKind,
    signer: &PrivateKey,
    label: &str,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    let statement = repo.release_statement(name, version, kind, label, now)?;
    repo.add_attestation(Attestation::sign(statement, signer)?, now)?;
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes the upstream registry: config.json, index files, tarballs, and the unsigned
/// `tufdemo` 0.3.0.
fn build_upstream(dir: &Path, upstream_url: &str) -> anyhow::Result<()> {
    let config = serde_json::json!({ "dl": format!("{upstream_url}/dl") });
    write(
        &dir.join("index/config.json"),
        config.to_string().as_bytes(),
    )?;
    for (name, version, tarball) in RELEASES {
        write(&dir.join(format!("dl/{name}/{version}/download")), tarball)?;
    }
    // An unsigned release, as a compromised registry would add it: a tarball and an
    // index line whose cksum matches it.
    let unsigned = [RELEASES[1].2, b"unsigned"].concat();
    write(&dir.join("dl/tufdemo/0.3.0/download"), &unsigned)?;
    for (name, content) in INDEX_FILES {
        let mut content = content.to_owned();
        if name == "tufdemo" {
            // The registry adds a dependency to the line of the signed 0.2.0, and still
            // lists 0.1.0 unyanked: the proxy serves the owners' entries instead.
            content = content.replace(
                "\"vers\":\"0.2.0\",\"deps\":[]",
                "\"vers\":\"0.2.0\",\"deps\":[{\"name\":\"unclaimed-util\",\"req\":\"^1\",\"features\":[],\"optional\":false,\"default_features\":true,\"target\":null,\"kind\":\"normal\"}]",
            );
            content.push_str(&format!(
                "{{\"name\":\"tufdemo\",\"vers\":\"0.3.0\",\"deps\":[],\"cksum\":\"{}\",\"features\":{{}},\"yanked\":false}}\n",
                hex::encode(Sha256::digest(&unsigned))
            ));
        }
        write(
            &dir.join("index").join(index_path(name)),
            content.as_bytes(),
        )?;
    }
    Ok(())
}

/// Serves files below a directory, refusing any path that would leave it; index files
/// carry an ETag, as a real registry's do.
async fn static_file(
    State(root): State<Arc<PathBuf>>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let relative = Path::new(&path);
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return StatusCode::NOT_FOUND.into_response();
    }
    let full = root.join(relative);
    let Ok(bytes) = tokio::fs::read(&full).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = crate::proxy::content_etag(&bytes);
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    if unchanged {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (StatusCode::OK, [(header::ETAG, etag)], bytes).into_response()
}

impl Demo {
    /// Builds the demo in a new temporary directory and starts its upstream server on
    /// 127.0.0.1 (a free port).
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("tuf-verifier-demo.")
            .tempdir()
            .context("cannot create the demo's temporary directory")?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot start the demo upstream server")?;
        let upstream_url = format!("http://{}", listener.local_addr()?);
        let repo_dir = dir.path().join("tuf-repository");
        let upstream_dir = dir.path().join("upstream");
        let built_repo = repo_dir.clone();
        tokio::task::spawn_blocking(move || build_repository(&built_repo))
            .await?
            .context("cannot build the demo TUF repository")?;
        build_upstream(&upstream_dir, &upstream_url)?;
        write(&dir.path().join("policy.toml"), POLICY.as_bytes())?;
        let metadata = repo_dir.join("published/metadata");
        let router = Router::new()
            .nest(
                "/index",
                Router::new()
                    .route("/{*path}", get(static_file))
                    .with_state(Arc::new(upstream_dir.join("index"))),
            )
            .nest(
                "/dl",
                Router::new()
                    .route("/{*path}", get(static_file))
                    .with_state(Arc::new(upstream_dir.join("dl"))),
            )
            .nest(
                "/tuf",
                Router::new()
                    .route("/{*path}", get(static_file))
                    .with_state(Arc::new(metadata)),
            )
            .nest(
                "/targets",
                Router::new()
                    .route("/{*path}", get(static_file))
                    .with_state(Arc::new(repo_dir.join("published/targets"))),
            );
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "the demo upstream server failed");
            }
        });
        Ok(Self { dir, upstream_url })
    }

    /// The proxy configuration for the demo: flags given to `serve` still apply.
    pub fn config(&self, args: &ServeArgs) -> anyhow::Result<ServeConfig> {
        let mut args = args.clone();
        args.upstream_index = Some(format!("{}/index/", self.upstream_url));
        args.metadata = Some(format!("{}/tuf/", self.upstream_url));
        args.root = Some(
            self.dir
                .path()
                .join("tuf-repository/published/metadata/1.root.json"),
        );
        args.state_dir
            .get_or_insert_with(|| self.dir.path().join("proxy-state"));
        args.policy.get_or_insert_with(|| self.policy_path());
        let mut config = args.resolve()?;
        config.metadata = MetadataLocation::Url(format!("{}/tuf/", self.upstream_url));
        Ok(config)
    }

    /// The demo's copy of its trust policy.
    pub fn policy_path(&self) -> PathBuf {
        self.dir.path().join("policy.toml")
    }

    /// What to tell the user once the proxy listens at `url` under the trust policy
    /// `policy` (the demo's own unless `--policy` gave another).
    pub fn instructions(&self, url: &str, policy: &Path) -> String {
        let demo_policy = self.policy_path();
        let under = policy_in_force(policy, &demo_policy);
        format!(
            "\n\
             tuf-verifier demo: a proxy in front of a demo registry at {upstream} whose\n\
             releases were signed just now with the keys-example keys (in {dir}).\n\
             \n\
             Signed: tufdemo 0.1.0 and 0.2.0 (namespace tufdemo, its maintainer's key),\n\
             unclaimed-util 1.0.0 and unclaimed-app-helper 0.3.0 (fallback hash bins).\n\
             Not signed: tufdemo 0.3.0 is in the upstream index, but the proxy hides it.\n\
             The tufdemo owners yanked 0.1.0 (upstream still lists it unyanked), and the\n\
             registry added a dependency to upstream's line of 0.2.0: cargo gets the\n\
             entries the owners signed. alice (an owner) attested both releases; bob, a\n\
             reviewer whose key no role authorises, reviewed 0.2.0. See it all with\n\
             \n\
             cargo run -q -p verifier -- explain tufdemo --proxy {url}\n\
             \n\
             (from the tuf-crates checkout; or curl {url}/explain/tufdemo for JSON).\n\
             \n\
             Point cargo at the proxy (in a project's .cargo/config.toml, or $CARGO_HOME/config.toml):\n\
             \n\
             [source.crates-io]\n\
             replace-with = \"tuf-verified\"\n\
             [source.tuf-verified]\n\
             registry = \"sparse+{url}/index/\"\n\
             \n\
             then depend on the demo crates and run `cargo build`. Status: {url}/status\n\
             \n\
             {under}\n\
             \n\
             tufdemo = \">=0.2\"              builds: alice released it, bob reviewed it\n\
             unclaimed-app-helper = \"0.3\"   is refused: it needs unclaimed-util, which carol\n\
             {pad}released; the refusal says how to trust her, e.g.\n\
             {pad}cargo run -q -p verifier -- policy trust carol --key {carol} --policy {policy}\n\
             {pad}(the proxy reloads the policy within 2 s)\n\
             tufdmeo = \"0.2\"                is refused as a likely typosquat of tufdemo\n\
             \n\
             Stop with Ctrl-C.\n",
            upstream = self.upstream_url,
            dir = self.dir.path().display(),
            policy = demo_policy.display(),
            carol = CAROL_KEYID,
            pad = " ".repeat(31),
        )
    }
}

/// The instructions' sentence on the policy in force: `served`, against the demo's own
/// (`demo`), which what they say next assumes.
fn policy_in_force(served: &Path, demo: &Path) -> String {
    if served == demo {
        format!(
            "The proxy serves under a trust policy ({}): alice and bob are\n\
             trusted, carol is not. So:",
            demo.display()
        )
    } else {
        format!(
            "The proxy serves under your trust policy ({}), not the demo's ({}),\n\
             which trusts alice and bob, not carol. With the demo's:",
            served.display(),
            demo.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instructions_name_the_policy_in_force() {
        let demo = Path::new("/tmp/demo/policy.toml");
        let own = policy_in_force(demo, demo);
        assert!(own.starts_with("The proxy serves under a trust policy (/tmp/demo/policy.toml)"));
        assert!(own.ends_with("carol is not. So:"));
        let yours = policy_in_force(Path::new("/etc/ours.toml"), demo);
        assert!(yours.starts_with(
            "The proxy serves under your trust policy (/etc/ours.toml), not the demo's \
             (/tmp/demo/policy.toml),"
        ));
    }
}
