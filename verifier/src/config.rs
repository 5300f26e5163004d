//! The proxy's configuration: a TOML file, each option also a command-line flag (a flag
//! wins over the file, the file over the default).

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;

use crate::index_line::RegistryAllowlist;
use crate::upstream_auth::{ClientTokens, UpstreamCredential};

/// Default address the proxy listens on.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
/// Default interval between timestamp refreshes.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// Default time the requests in flight get to finish when the proxy is asked to stop
/// (below the 30 s after which docker and kubernetes kill a container by default).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// Default whole-request timeout of upstream requests.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// Default connect timeout of upstream requests.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on a tarball, whatever its signed length says (crates.io allows 10 MB).
pub const DEFAULT_MAX_CRATE_SIZE: u64 = 64 * 1024 * 1024;
/// Default cap on an upstream index file.
pub const DEFAULT_MAX_INDEX_SIZE: u64 = 16 * 1024 * 1024;
/// Default number of lookup answers cached per snapshot.
pub const DEFAULT_MAX_CACHED_LOOKUPS: usize = 100_000;
/// Default time an index answer is served again without asking upstream.
pub const DEFAULT_INDEX_FRESHNESS: Duration = Duration::from_secs(10);
/// Default memory budget of the filtered index files kept.
pub const DEFAULT_INDEX_CACHE_SIZE: u64 = 256 * 1024 * 1024;
/// Default memory budget of the verified tarballs kept in memory.
pub const DEFAULT_TARBALL_MEMORY_SIZE: u64 = 256 * 1024 * 1024;
/// Default disk budget of the verified tarball cache.
pub const DEFAULT_TARBALL_CACHE_SIZE: u64 = 8 * 1024 * 1024 * 1024;
/// Cap on the configuration file itself.
const MAX_CONFIG_FILE: u64 = 1024 * 1024;

/// `tuf-verifier serve` options. With neither `--config` nor `--upstream-index`, the
/// built-in demo runs.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file; every key has the name of a flag below, with `_` for `-`.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7878; port 0 picks a free one].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The URL cargo reaches this proxy at, written into `config.json`'s `dl`
    /// [default: http://<listen address>].
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Upstream sparse index, e.g. https://index.crates.io/ (its config.json names the
    /// download URL).
    #[arg(long, value_name = "URL")]
    pub upstream_index: Option<String>,
    /// Upstream download URL template, overriding the upstream config.json's `dl`.
    #[arg(long, value_name = "URL")]
    pub upstream_dl: Option<String>,
    /// The TUF repository's metadata: a base URL (http, https) or a local directory.
    #[arg(long, value_name = "URL|DIR")]
    pub metadata: Option<String>,
    /// The TUF repository's target files (where each crate's signed index file is): a base
    /// URL or a directory [default: `targets/` beside the metadata, as python-tuf lays a
    /// repository out].
    #[arg(long, value_name = "URL|DIR")]
    pub tuf_targets: Option<String>,
    /// Whether every index line must come from a crate's signed index file: `on`, `off`
    /// (the cksum alone authenticates a line, as before signed index entries), or `auto`
    /// (on when the repository's top-level targets says it signs index entries, which
    /// every repository `tuf-signer init` creates now does) [default: auto].
    #[arg(long, value_name = "on|off|auto")]
    pub require_signed_index_entries: Option<String>,
    /// The trusted root metadata file to start from (obtained out of band).
    #[arg(long, value_name = "FILE")]
    pub root: Option<PathBuf>,
    /// Directory for trusted metadata and the cache of verified tarballs.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// How often to refresh the TUF timestamp (e.g. 30s, 5m) [default: 5m].
    #[arg(long, value_name = "DURATION")]
    pub refresh_interval: Option<String>,
    /// Whole-request timeout of each upstream request [default: 30s].
    #[arg(long, value_name = "DURATION")]
    pub upstream_timeout: Option<String>,
    /// On SIGTERM or SIGINT, how long the requests in flight get to finish before they
    /// are ended (exit status 3) [default: 20s].
    #[arg(long, value_name = "DURATION")]
    pub shutdown_grace: Option<String>,
    /// Connect timeout of each upstream request [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub connect_timeout: Option<String>,
    /// Largest tarball accepted, whatever its signed length [default: 64 MiB].
    #[arg(long, value_name = "BYTES")]
    pub max_crate_size: Option<u64>,
    /// Largest upstream index file accepted [default: 16 MiB].
    #[arg(long, value_name = "BYTES")]
    pub max_index_size: Option<u64>,
    /// A registry whose crates an index line passed on may depend on, as the index URL
    /// its `registry` field names (`sparse+https://…` or a git index URL); repeat for
    /// more. By default none: a line with a dependency from any other registry is dropped,
    /// because cargo would fetch and build that dependency past the proxy. The flags
    /// replace the file's list.
    #[arg(long = "allowed-registries", value_name = "URL")]
    pub allowed_registries: Vec<String>,
    /// A file whose first line is the proxy's token for the upstream registry (a private
    /// registry that requires authentication), sent as `Authorization` to upstream's
    /// origin only, never logged or shown.
    #[arg(long, value_name = "FILE", conflicts_with = "upstream_token_env")]
    pub upstream_token_file: Option<PathBuf>,
    /// The environment variable holding the proxy's upstream token (instead of
    /// `--upstream-token-file`).
    #[arg(long, value_name = "NAME")]
    pub upstream_token_env: Option<String>,
    /// Another origin the upstream token may go to (e.g. `https://dl.example.com` when
    /// upstream's downloads are on another host); repeat for more. By default only the
    /// upstream index's origin gets it. The flags replace the file's list.
    #[arg(long = "upstream-token-origins", value_name = "URL")]
    pub upstream_token_origins: Vec<String>,
    /// Clients must authenticate: a file of accepted client tokens, as `sha256:HEX NAME`
    /// lines (`tuf-verifier client-token new` adds one). `config.json` then says
    /// `auth-required`, and every route but `/healthz` answers 401 without a token on
    /// the list [default: none, any client on the network is served].
    #[arg(long, value_name = "FILE")]
    pub client_tokens_file: Option<PathBuf>,
    /// Most answers of "which release is signed" kept per snapshot (clients choose the
    /// names asked, so the cache is bounded; least recently used go first)
    /// [default: 100000].
    #[arg(long, value_name = "COUNT")]
    pub max_cached_lookups: Option<usize>,
    /// Memory budget of the filtered index files kept for conditional requests, in
    /// bytes [default: 256 MiB].
    #[arg(long, value_name = "BYTES")]
    pub index_cache_size: Option<u64>,
    /// How long a crate's index answer is served again without asking upstream, while
    /// the trusted snapshot and the policy are unchanged (0s: ask upstream every time).
    /// It delays what only upstream says (its yanks); a signed change is never delayed
    /// [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub index_freshness: Option<String>,
    /// Disk budget of the verified tarball cache in the state directory, in bytes; the
    /// least recently used tarballs are removed beyond it [default: 8 GiB].
    #[arg(long, value_name = "BYTES")]
    pub tarball_cache_size: Option<u64>,
    /// Memory for the most recently used verified tarballs, in bytes, so that a cached
    /// download needs no file read and no re-hash (0: none) [default: 256 MiB].
    #[arg(long, value_name = "BYTES")]
    pub tarball_memory_size: Option<u64>,
    /// Trust policy file (spec/trust-policy.md): serve only releases that developers it
    /// trusts vouched for. Reloaded on SIGHUP and when it changes [default: none, what
    /// the registry signed is served].
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Names a crate nobody you trust signed must not look like (one per line, `#`
    /// comments), beside the crates the policy names [default: the shipped list of the
    /// most used crates, tuf-core/data/well-known-crates.txt].
    #[arg(long, value_name = "FILE")]
    pub well_known_crates: Option<PathBuf>,
    /// State shared with other replicas, in S3-compatible object storage: the verified
    /// tarball cache and the rollback baseline, e.g. s3://BUCKET/PREFIX. Credentials and
    /// region come from the AWS environment variables. Nothing read from it is trusted
    /// before it is verified again [default: none, each replica keeps its own state].
    #[arg(long, value_name = "URL")]
    pub shared_state: Option<String>,
    /// The S3-compatible server of shared_state, when it is not AWS, e.g.
    /// https://minio.example:9000 (http:// is allowed here only).
    #[arg(long, value_name = "URL")]
    pub shared_state_endpoint: Option<String>,
}

/// The configuration file: the same options as [`ServeArgs`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    listen: Option<String>,
    public_url: Option<String>,
    upstream_index: Option<String>,
    upstream_dl: Option<String>,
    metadata: Option<String>,
    tuf_targets: Option<String>,
    require_signed_index_entries: Option<String>,
    root: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    refresh_interval: Option<String>,
    upstream_timeout: Option<String>,
    shutdown_grace: Option<String>,
    connect_timeout: Option<String>,
    max_crate_size: Option<u64>,
    max_index_size: Option<u64>,
    allowed_registries: Option<Vec<String>>,
    max_cached_lookups: Option<usize>,
    index_cache_size: Option<u64>,
    index_freshness: Option<String>,
    tarball_cache_size: Option<u64>,
    tarball_memory_size: Option<u64>,
    policy: Option<PathBuf>,
    well_known_crates: Option<PathBuf>,
    upstream_token_file: Option<PathBuf>,
    upstream_token_env: Option<String>,
    upstream_token_origins: Option<Vec<String>>,
    client_tokens_file: Option<PathBuf>,
    shared_state: Option<String>,
    shared_state_endpoint: Option<String>,
}

/// Whether index lines must come from signed index files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequireSignedEntries {
    /// Always: a crate with no signed index file serves no version.
    On,
    /// Never: the cksum alone authenticates a line (repositories made before signed
    /// index entries).
    Off,
    /// As the repository's top-level targets says.
    Auto,
}

impl RequireSignedEntries {
    /// Whether signed entries are required, given what the trusted top-level targets
    /// says (`None` before any is trusted: then they are).
    pub fn required(self, repository_signs_entries: Option<bool>) -> bool {
        match self {
            Self::On => true,
            Self::Off => false,
            Self::Auto => repository_signs_entries.unwrap_or(true),
        }
    }
}

/// Where the TUF metadata comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataLocation {
    /// A base URL ending in `/`.
    Url(String),
    /// A local directory.
    Directory(PathBuf),
}

/// The resolved configuration of a running proxy.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Public URL override (else derived from the bound address).
    pub public_url: Option<String>,
    /// Upstream sparse index base URL, ending in `/`.
    pub upstream_index: String,
    /// Upstream download template override.
    pub upstream_dl: Option<String>,
    /// The proxy's credential for upstream, if configured.
    pub upstream_credential: Option<Arc<UpstreamCredential>>,
    /// TUF metadata location.
    pub metadata: MetadataLocation,
    /// Where the TUF repository's target files are.
    pub tuf_targets: MetadataLocation,
    /// Whether index lines must come from signed index files.
    pub require_signed_index_entries: RequireSignedEntries,
    /// Trusted root file.
    pub root: PathBuf,
    /// State directory.
    pub state_dir: PathBuf,
    /// Refresh interval.
    pub refresh_interval: Duration,
    /// How long requests in flight get to finish on a stop.
    pub shutdown_grace: Duration,
    /// Upstream whole-request timeout.
    pub upstream_timeout: Duration,
    /// Upstream connect timeout.
    pub connect_timeout: Duration,
    /// Tarball size cap.
    pub max_crate_size: u64,
    /// Index file size cap.
    pub max_index_size: u64,
    /// Registries a dependency of a line passed on may come from (besides the proxy's).
    pub allowed_registries: RegistryAllowlist,
    /// Lookup answers cached per snapshot.
    pub max_cached_lookups: NonZeroUsize,
    /// Memory budget of the index cache.
    pub index_cache_size: u64,
    /// How long an index answer is served again without asking upstream.
    pub index_freshness: Duration,
    /// Disk budget of the tarball cache.
    pub tarball_cache_size: u64,
    /// Memory budget of the verified tarballs kept in memory.
    pub tarball_memory_size: u64,
    /// The trust policy file, if any.
    pub policy: Option<PathBuf>,
    /// The well-known crate names file, if not the shipped list.
    pub well_known_crates: Option<PathBuf>,
    /// The client tokens accepted, when clients must authenticate.
    pub client_tokens: Option<Arc<ClientTokens>>,
    /// The shared state of the replicas (`s3://BUCKET/PREFIX`), if any.
    pub shared_state: Option<String>,
    /// The S3-compatible server of `shared_state`, when it is not AWS.
    pub shared_state_endpoint: Option<String>,
}

impl ServeArgs {
    /// True when no upstream is configured at all: the demo runs.
    pub fn is_demo(&self) -> bool {
        self.config.is_none() && self.upstream_index.is_none()
    }

    /// Merges flags over the configuration file over defaults, checking every value.
    pub fn resolve(&self) -> anyhow::Result<ServeConfig> {
        let (file, base) = self.file()?;
        let repository = self.repository(&file, base.as_deref())?;
        let listen = self
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen
            .parse()
            .with_context(|| format!("listen: {listen:?} is not an address like 127.0.0.1:7878"))?;
        let upstream_index = repository.upstream_index.context(
            "upstream_index is not set: give --upstream-index URL or set it in the configuration file",
        )?;
        let public_url = self.public_url.clone().or(file.public_url);
        if let Some(url) = &public_url {
            http_base_url("public_url", url)?;
        }
        let shared_state = self.shared_state.clone().or(file.shared_state);
        let shared_state_endpoint = self
            .shared_state_endpoint
            .clone()
            .or(file.shared_state_endpoint);
        if let Some(url) = &shared_state_endpoint {
            if shared_state.is_none() {
                bail!("shared_state_endpoint is set but shared_state is not: give --shared-state s3://BUCKET/PREFIX too");
            }
            http_base_url("shared_state_endpoint", url)?;
        }
        let upstream_dl = self.upstream_dl.clone().or(file.upstream_dl);
        if let Some(url) = &upstream_dl {
            http_base_url("upstream_dl", url)?;
        }
        let state_dir = repository.state_dir.context(
            "state_dir is not set: give --state-dir DIR for trusted metadata and verified tarballs",
        )?;
        let refresh_interval = duration(
            "refresh_interval",
            &self.refresh_interval,
            file.refresh_interval,
            DEFAULT_REFRESH_INTERVAL,
        )?;
        let shutdown_grace = duration(
            "shutdown_grace",
            &self.shutdown_grace,
            file.shutdown_grace.clone(),
            DEFAULT_SHUTDOWN_GRACE,
        )?;
        let max_crate_size = self
            .max_crate_size
            .or(file.max_crate_size)
            .unwrap_or(DEFAULT_MAX_CRATE_SIZE);
        let max_cached_lookups = self
            .max_cached_lookups
            .or(file.max_cached_lookups)
            .unwrap_or(DEFAULT_MAX_CACHED_LOOKUPS);
        let max_cached_lookups = NonZeroUsize::new(max_cached_lookups)
            .context("max_cached_lookups: must be at least 1")?;
        let index_cache_size = self
            .index_cache_size
            .or(file.index_cache_size)
            .unwrap_or(DEFAULT_INDEX_CACHE_SIZE);
        let index_freshness = duration_or_off(
            "index_freshness",
            &self.index_freshness,
            file.index_freshness.clone(),
            DEFAULT_INDEX_FRESHNESS,
        )?;
        let tarball_cache_size = self
            .tarball_cache_size
            .or(file.tarball_cache_size)
            .unwrap_or(DEFAULT_TARBALL_CACHE_SIZE);
        let tarball_memory_size = self
            .tarball_memory_size
            .or(file.tarball_memory_size)
            .unwrap_or(DEFAULT_TARBALL_MEMORY_SIZE);
        let well_known_crates = self.well_known_crates.clone().or(file
            .well_known_crates
            .map(|p| relative_to(base.as_deref(), p)));
        let client_tokens = self
            .client_tokens_file
            .clone()
            .or(file
                .client_tokens_file
                .map(|p| relative_to(base.as_deref(), p)))
            .map(|path| ClientTokens::load(&path).map(Arc::new))
            .transpose()
            .context("client_tokens_file")?;
        Ok(ServeConfig {
            listen,
            well_known_crates,
            client_tokens,
            policy: repository.policy,
            public_url,
            upstream_index,
            upstream_dl,
            metadata: repository.metadata,
            tuf_targets: repository.tuf_targets,
            require_signed_index_entries: repository.require_signed_index_entries,
            root: repository.root,
            state_dir,
            refresh_interval,
            shutdown_grace,
            upstream_timeout: repository.upstream_timeout,
            upstream_credential: repository.upstream_credential,
            connect_timeout: repository.connect_timeout,
            max_crate_size,
            max_index_size: repository.max_index_size,
            allowed_registries: repository.allowed_registries,
            max_cached_lookups,
            index_cache_size,
            index_freshness,
            tarball_cache_size,
            tarball_memory_size,
            shared_state,
            shared_state_endpoint,
        })
    }

    /// The options the offline verbs need: where the TUF repository is, the trusted
    /// root, and (optionally) the upstream and state directory.
    pub fn resolve_repository(&self) -> anyhow::Result<RepositoryConfig> {
        let (file, base) = self.file()?;
        self.repository(&file, base.as_deref())
    }

    fn file(&self) -> anyhow::Result<(ConfigFile, Option<PathBuf>)> {
        Ok(match &self.config {
            Some(path) => (
                read_config_file(path)?,
                path.parent().map(Path::to_path_buf),
            ),
            None => (ConfigFile::default(), None),
        })
    }

    fn repository(
        &self,
        file: &ConfigFile,
        base: Option<&Path>,
    ) -> anyhow::Result<RepositoryConfig> {
        let relative = |path: PathBuf| relative_to(base, path);
        let upstream_index = self
            .upstream_index
            .clone()
            .or(file.upstream_index.clone())
            .map(|url| http_base_url("upstream_index", &url))
            .transpose()?;
        let metadata = self.metadata.clone().or(file.metadata.clone()).context(
            "metadata is not set: give --metadata URL|DIR (the TUF repository's metadata)",
        )?;
        let location = |name: &str, value: String| -> anyhow::Result<MetadataLocation> {
            Ok(
                if value.starts_with("http://") || value.starts_with("https://") {
                    MetadataLocation::Url(http_base_url(name, &value)?)
                } else {
                    MetadataLocation::Directory(relative(PathBuf::from(value)))
                },
            )
        };
        let metadata = location("metadata", metadata)?;
        let tuf_targets = match self.tuf_targets.clone().or(file.tuf_targets.clone()) {
            Some(value) => location("tuf_targets", value)?,
            None => beside_metadata(&metadata)?,
        };
        let require_signed_index_entries = match self
            .require_signed_index_entries
            .clone()
            .or(file.require_signed_index_entries.clone())
            .as_deref()
        {
            None | Some("auto") => RequireSignedEntries::Auto,
            Some("on") => RequireSignedEntries::On,
            Some("off") => RequireSignedEntries::Off,
            Some(other) => bail!("require_signed_index_entries: {other:?} is not on, off or auto"),
        };
        let root = self
            .root
            .clone()
            .or(file.root.clone().map(&relative))
            .context(
                "root is not set: give --root FILE, the trusted root.json of the TUF repository",
            )?;
        let state_dir = self
            .state_dir
            .clone()
            .or(file.state_dir.clone().map(&relative));
        let policy = self.policy.clone().or(file.policy.clone().map(&relative));
        let upstream_timeout = duration(
            "upstream_timeout",
            &self.upstream_timeout,
            file.upstream_timeout.clone(),
            DEFAULT_UPSTREAM_TIMEOUT,
        )?;
        let connect_timeout = duration(
            "connect_timeout",
            &self.connect_timeout,
            file.connect_timeout.clone(),
            DEFAULT_CONNECT_TIMEOUT,
        )?;
        let max_index_size = self
            .max_index_size
            .or(file.max_index_size)
            .unwrap_or(DEFAULT_MAX_INDEX_SIZE);
        let allowed_registries = if self.allowed_registries.is_empty() {
            file.allowed_registries.clone().unwrap_or_default()
        } else {
            self.allowed_registries.clone()
        };
        let allowed_registries = RegistryAllowlist::parse(&allowed_registries)
            .context("allowed_registries: each entry must be a registry index URL")?;
        let token_file = self
            .upstream_token_file
            .clone()
            .or(file.upstream_token_file.clone().map(&relative));
        let token_env = self
            .upstream_token_env
            .clone()
            .or(file.upstream_token_env.clone());
        let token_origins = if self.upstream_token_origins.is_empty() {
            file.upstream_token_origins.clone().unwrap_or_default()
        } else {
            self.upstream_token_origins.clone()
        };
        let upstream_credential = match &upstream_index {
            Some(index) => UpstreamCredential::load(
                token_file.as_deref(),
                token_env.as_deref(),
                index,
                &token_origins,
            )?
            .map(Arc::new),
            None if token_file.is_some() || token_env.is_some() => {
                bail!("upstream_token_file or upstream_token_env is set, but upstream_index is not")
            }
            None => None,
        };
        Ok(RepositoryConfig {
            upstream_credential,
            upstream_index,
            metadata,
            tuf_targets,
            require_signed_index_entries,
            allowed_registries,
            max_index_size,
            root,
            state_dir,
            upstream_timeout,
            connect_timeout,
            policy,
        })
    }
}

/// Where the TUF repository and upstream are, for the offline verbs (and `serve`).
#[derive(Debug, Clone)]
pub struct RepositoryConfig {
    /// Upstream sparse index base URL, if set.
    pub upstream_index: Option<String>,
    /// The proxy's credential for upstream, if configured.
    pub upstream_credential: Option<Arc<UpstreamCredential>>,
    /// TUF metadata location.
    pub metadata: MetadataLocation,
    /// Where the TUF repository's target files are.
    pub tuf_targets: MetadataLocation,
    /// Whether index lines must come from signed index files.
    pub require_signed_index_entries: RequireSignedEntries,
    /// Registries an index line's dependency may come from.
    pub allowed_registries: RegistryAllowlist,
    /// Largest upstream index file read.
    pub max_index_size: u64,
    /// Trusted root file.
    pub root: PathBuf,
    /// State directory, if set.
    pub state_dir: Option<PathBuf>,
    /// Upstream whole-request timeout.
    pub upstream_timeout: Duration,
    /// Upstream connect timeout.
    pub connect_timeout: Duration,
    /// The trust policy file, if any.
    pub policy: Option<PathBuf>,
}

/// A path from the configuration file: relative to the file's directory `base` (an
/// absolute path stays as it is: `Path::join` keeps it).
fn relative_to(base: Option<&Path>, path: PathBuf) -> PathBuf {
    match base {
        Some(base) => base.join(path),
        None => path,
    }
}

/// Longest duration setting accepted.
const MAX_DURATION: Duration = Duration::from_secs(1000 * 365 * 24 * 60 * 60);

/// `targets/` beside the metadata: `https://x/repo/metadata/` → `https://x/repo/targets/`,
/// `repo/metadata` → `repo/targets`.
fn beside_metadata(metadata: &MetadataLocation) -> anyhow::Result<MetadataLocation> {
    Ok(match metadata {
        MetadataLocation::Url(url) => {
            let parsed = reqwest::Url::parse(url).with_context(|| format!("metadata: {url:?}"))?;
            let targets = parsed
                .join("../targets/")
                .with_context(|| format!("metadata: no targets URL beside {url}"))?;
            MetadataLocation::Url(targets.to_string())
        }
        MetadataLocation::Directory(dir) => MetadataLocation::Directory(
            dir.parent()
                .map_or_else(|| PathBuf::from("targets"), |p| p.join("targets")),
        ),
    })
}

fn duration(
    name: &str,
    flag: &Option<String>,
    file: Option<String>,
    default: Duration,
) -> anyhow::Result<Duration> {
    duration_setting(name, flag, file, default, false)
}

/// Like [`duration`], where zero (`0s`, `0m`, …) means off.
fn duration_or_off(
    name: &str,
    flag: &Option<String>,
    file: Option<String>,
    default: Duration,
) -> anyhow::Result<Duration> {
    duration_setting(name, flag, file, default, true)
}

fn duration_setting(
    name: &str,
    flag: &Option<String>,
    file: Option<String>,
    default: Duration,
    zero_is_off: bool,
) -> anyhow::Result<Duration> {
    let value = match flag.clone().or(file) {
        None => default,
        Some(text) => humantime::parse_duration(&text)
            .with_context(|| format!("{name}: {text:?} is not a duration like 30s, 5m or 1h"))?,
    };
    if value.is_zero() && zero_is_off {
        return Ok(value);
    }
    if value < Duration::from_secs(1) {
        if zero_is_off {
            bail!("{name}: must be 0s (off) or at least one second");
        }
        bail!("{name}: must be at least one second");
    }
    // Far beyond any sensible setting, and short enough for timer arithmetic not to
    // overflow.
    if value > MAX_DURATION {
        bail!("{name}: must be at most 1000 years");
    }
    Ok(value)
}

fn read_config_file(path: &Path) -> anyhow::Result<ConfigFile> {
    let bytes = tuf_core::fs::read_bounded(
        std::fs::File::open(path)
            .with_context(|| format!("cannot open the configuration file {}", path.display()))?,
        MAX_CONFIG_FILE,
    )
    .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let text =
        String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}: invalid configuration", path.display()))
}

/// Checks an http(s) URL and returns it ending in `/`.
pub fn http_base_url(name: &str, url: &str) -> anyhow::Result<String> {
    let parsed =
        reqwest::Url::parse(url).with_context(|| format!("{name}: {url:?} is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        bail!("{name}: {url:?} must be an http:// or https:// URL");
    }
    let mut url = url.to_owned();
    if !url.ends_with('/') {
        url.push('/');
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_upstream_token_needs_an_upstream() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "t0ken\n").unwrap();
        let base = ServeArgs {
            metadata: Some(dir.path().display().to_string()),
            root: Some(dir.path().join("root.json")),
            ..ServeArgs::default()
        };
        for args in [
            ServeArgs {
                upstream_token_file: Some(token.clone()),
                ..base.clone()
            },
            ServeArgs {
                upstream_token_env: Some("TUF_TEST_UPSTREAM_TOKEN".into()),
                ..base.clone()
            },
        ] {
            let error = args.resolve_repository().unwrap_err().to_string();
            assert!(error.contains("upstream_index is not"), "{error}");
        }
        assert!(base
            .resolve_repository()
            .unwrap()
            .upstream_credential
            .is_none());
        let with_upstream = ServeArgs {
            upstream_index: Some("https://reg.example/index/".into()),
            upstream_token_file: Some(token),
            ..base
        };
        let credential = with_upstream
            .resolve_repository()
            .unwrap()
            .upstream_credential;
        assert!(credential
            .unwrap()
            .header_for("https://reg.example/index/config.json")
            .is_some());
    }

    #[test]
    fn durations_take_the_documented_forms_within_range() {
        let read =
            |text: &str| duration("refresh_interval", &Some(text.into()), None, Duration::ZERO);
        for (text, seconds) in [
            ("30s", 30),
            ("10s", 10),
            ("5m", 300),
            ("1m", 60),
            ("1h", 3600),
        ] {
            assert_eq!(read(text).unwrap(), Duration::from_secs(seconds), "{text}");
        }
        for bad in ["", "12", "5x", "0s", "500ms", "1001y"] {
            assert!(read(bad).is_err(), "{bad:?} accepted");
        }
        let default = Duration::from_secs(7);
        assert_eq!(duration("x", &None, None, default).unwrap(), default);
    }

    #[test]
    fn the_index_freshness_may_be_zero_and_the_shutdown_grace_may_not() {
        let args = |freshness: &str, grace: &str| ServeArgs {
            upstream_index: Some("http://up.example/index/".into()),
            metadata: Some("http://up.example/tuf/".into()),
            root: Some("root.json".into()),
            state_dir: Some("state".into()),
            index_freshness: Some(freshness.into()),
            shutdown_grace: Some(grace.into()),
            ..ServeArgs::default()
        };
        for (text, expected) in [("0s", 0), ("0", 0), ("0m", 0), ("30s", 30), ("1m", 60)] {
            let config = args(text, "5s").resolve().unwrap();
            assert_eq!(
                config.index_freshness,
                Duration::from_secs(expected),
                "{text}"
            );
            assert_eq!(config.shutdown_grace, Duration::from_secs(5));
        }
        assert!(args("500ms", "5s").resolve().is_err());
        assert!(args("10s", "0s").resolve().is_err());
    }

    #[test]
    fn flags_override_the_file_and_paths_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("verifier.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nupstream_index = \"http://up.example/index\"\n\
             metadata = \"tuf\"\nroot = \"root.json\"\nstate_dir = \"/var/lib/v\"\n\
             refresh_interval = \"1m\"\npolicy = \"policy.toml\"\n\
             well_known_crates = \"/etc/names.txt\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            listen: Some("127.0.0.1:0".into()),
            ..ServeArgs::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.listen.port(), 0);
        assert_eq!(config.upstream_index, "http://up.example/index/");
        assert_eq!(
            config.metadata,
            MetadataLocation::Directory(dir.path().join("tuf"))
        );
        assert_eq!(config.root, dir.path().join("root.json"));
        assert_eq!(config.state_dir, PathBuf::from("/var/lib/v"));
        assert_eq!(config.refresh_interval, Duration::from_secs(60));
        assert_eq!(config.upstream_timeout, DEFAULT_UPSTREAM_TIMEOUT);
        assert_eq!(config.index_freshness, DEFAULT_INDEX_FRESHNESS);
        assert_eq!(config.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
        // The documented defaults (spec/proxy.md, "Configuration").
        assert_eq!(config.index_freshness, Duration::from_secs(10));
        assert_eq!(config.shutdown_grace, Duration::from_secs(20));
        assert_eq!(config.tarball_memory_size, 256 * 1024 * 1024);
        assert_eq!(config.allowed_registries, RegistryAllowlist::default());
        assert_eq!(config.policy, Some(dir.path().join("policy.toml")));
        assert_eq!(
            config.well_known_crates,
            Some(PathBuf::from("/etc/names.txt"))
        );
        // Relative in the file: relative to it; from a flag: as given.
        std::fs::write(
            dir.path().join("verifier.toml"),
            "upstream_index = \"http://up.example/index\"\nmetadata = \"m\"\nroot = \"r\"\n\
             state_dir = \"s\"\nwell_known_crates = \"names.txt\"\n",
        )
        .unwrap();
        let mut args = ServeArgs {
            config: Some(dir.path().join("verifier.toml")),
            ..ServeArgs::default()
        };
        assert_eq!(
            args.resolve().unwrap().well_known_crates,
            Some(dir.path().join("names.txt"))
        );
        args.well_known_crates = Some(PathBuf::from("mine.txt"));
        assert_eq!(
            args.resolve().unwrap().well_known_crates,
            Some(PathBuf::from("mine.txt"))
        );
    }

    #[test]
    fn allowed_registries_come_from_the_file_or_replace_it_from_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("verifier.toml");
        std::fs::write(
            &path,
            "upstream_index = \"http://up.example/index\"\nmetadata = \"m\"\nroot = \"r\"\n\
             state_dir = \"s\"\nallowed_registries = [\"sparse+https://a.example/index/\"]\n",
        )
        .unwrap();
        let mut args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let from_file = args.resolve().unwrap().allowed_registries;
        assert!(from_file.allows("sparse+https://a.example/index/"));
        args.allowed_registries = vec!["https://github.com/rust-lang/crates.io-index".into()];
        let from_flags = args.resolve().unwrap().allowed_registries;
        assert!(!from_flags.allows("sparse+https://a.example/index/"));
        assert!(from_flags.allows("https://github.com/rust-lang/crates.io-index"));
        args.allowed_registries = vec!["crates-io".into()];
        let err = format!("{:#}", args.resolve().unwrap_err());
        assert!(
            err.contains("allowed_registries") && err.contains("crates-io"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("verifier.toml");
        std::fs::write(&path, "upstream = \"http://x/\"\n").unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        let err = format!("{:#}", args.resolve().unwrap_err());
        assert!(err.contains("unknown field"), "{err}");
        std::fs::write(
            &path,
            "upstream_index = \"ftp://x/\"\nmetadata = \"m\"\nroot = \"r\"\nstate_dir = \"s\"\n",
        )
        .unwrap();
        let err = format!("{:#}", args.resolve().unwrap_err());
        assert!(err.contains("upstream_index"), "{err}");
    }
}
