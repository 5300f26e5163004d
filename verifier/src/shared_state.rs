//! State that proxy replicas share in S3-compatible object storage (`shared_state`):
//! the verified tarball cache and the rollback baseline of the TUF metadata.
//!
//! The bucket is not trusted. Anyone who can write to it can put any bytes under any key,
//! so nothing read from it is used before it is verified again:
//! * a tarball object is served only if its length and sha256 are the signed ones
//!   ([`SharedState::tarball`]); an object that is not is counted, logged and replaced by
//!   the verified bytes from upstream;
//! * a timestamp or snapshot object becomes this replica's baseline only if a threshold of
//!   the trusted root's keys signed it and its version is higher than the local one
//!   ([`SharedState::adopt_baseline`]); a root object only if it chains from the trusted
//!   root by the §5.3 rules (each version signed by the one before and by itself).
//!
//! So a bucket writer can at worst delete objects: a replica then falls back to its own
//! disk, as if the bucket were new. It cannot make a replica trust older or forged
//! metadata, nor serve a byte nobody signed.
//!
//! Writes of the baseline are conditional ([`SharedState::publish_baseline`]): an object
//! is replaced only if it is still the object read (If-Match on its ETag), or created
//! only if absent (If-None-Match), so two replicas refreshing at once cannot move the
//! shared baseline backwards. A verified object of a higher version is left alone.
//!
//! Keys, under the URL's prefix:
//! * `tarballs/<sha256 hex>`: verified tarballs, content-addressed (any replica writes the
//!   same bytes under a key);
//! * `metadata/timestamp.json`, `metadata/snapshot.json`: the newest trusted versions;
//! * `metadata/roots/<N>.root.json`: every trusted root, never rewritten once right.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload, UpdateVersion};
use sha2::{Digest, Sha256};
use tuf_core::client::{Limits, MetadataDir, TrustedMetadataSet};
use tuf_core::metadata::{Metadata, Root, Snapshot, Timestamp};

use crate::signed_target::SignedTarget;

/// Why the shared state cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SharedStateError {
    /// The `shared_state` URL is not an `s3://BUCKET[/PREFIX]` URL.
    #[error("shared_state {url:?}: {reason} (expected s3://BUCKET or s3://BUCKET/PREFIX)")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The object store client could not be built (credentials, endpoint).
    #[error("shared_state {url}: {source}")]
    Client {
        /// The URL given.
        url: String,
        /// Why.
        source: object_store::Error,
    },
    /// A request to the object store failed.
    #[error("shared state object {key}: {source}")]
    Request {
        /// The object's key.
        key: String,
        /// Why.
        source: object_store::Error,
    },
    /// An object is larger than anything this key may hold.
    #[error("shared state object {key} is {size} bytes, more than the {max} it may hold")]
    TooLarge {
        /// The object's key.
        key: String,
        /// Its size.
        size: u64,
        /// The most it may hold.
        max: u64,
    },
    /// A local metadata file could not be read or written.
    #[error("{path}: {source}")]
    Local {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The local trusted root cannot be read as a root.
    #[error("the local trusted root cannot be used: {0}")]
    LocalRoot(String),
    /// Another replica kept replacing the object between this one's read and write.
    #[error("shared state object {key}: still changing after {attempts} conditional writes")]
    Contended {
        /// The object's key.
        key: String,
        /// Writes tried.
        attempts: u32,
    },
}

/// Counters of the shared state, for `/status` and `/metrics`.
#[derive(Debug, Default)]
pub struct SharedCounters {
    /// Tarballs read from the bucket that were the signed bytes.
    pub tarballs_verified: AtomicU64,
    /// Tarball objects that were not the signed bytes (replaced from upstream).
    pub tarballs_refused: AtomicU64,
    /// Baseline objects written (timestamp, snapshot, roots).
    pub baseline_written: AtomicU64,
    /// Baseline objects this replica took as its own (newer than its disk, verified).
    pub baseline_adopted: AtomicU64,
    /// Baseline objects that did not verify (ignored, and replaced at the next publish).
    pub baseline_refused: AtomicU64,
    /// Requests to the bucket that failed.
    pub errors: AtomicU64,
}

/// What the shared state has done, for `/status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SharedStatus {
    /// The bucket and prefix (`s3://...`).
    pub location: String,
    /// See [`SharedCounters::tarballs_verified`].
    pub tarballs_verified: u64,
    /// See [`SharedCounters::tarballs_refused`].
    pub tarballs_refused: u64,
    /// See [`SharedCounters::baseline_written`].
    pub baseline_written: u64,
    /// See [`SharedCounters::baseline_adopted`].
    pub baseline_adopted: u64,
    /// See [`SharedCounters::baseline_refused`].
    pub baseline_refused: u64,
    /// See [`SharedCounters::errors`].
    pub errors: u64,
}

/// A tarball looked up in the bucket.
#[derive(Debug)]
pub enum SharedTarball {
    /// The signed bytes.
    Verified(Bytes),
    /// No object under its digest.
    Missing,
    /// An object that is not the signed bytes (too long, too short, another digest).
    Refused,
}

/// The shared state of the replicas.
pub struct SharedState {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    location: String,
    runtime: tokio::runtime::Handle,
    counters: SharedCounters,
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedState")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// The roles whose newest trusted version is shared, with their size limit.
fn baseline_roles(limits: &Limits) -> [(&'static str, u64); 2] {
    [
        ("timestamp", limits.max_timestamp_length),
        ("snapshot", limits.max_snapshot_length),
    ]
}

/// Conditional writes tried before giving up on a contended object.
const MAX_WRITE_ATTEMPTS: u32 = 8;

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// An object read from the bucket, with the version to make a conditional write against.
struct Object {
    bytes: Bytes,
    version: UpdateVersion,
}

impl SharedState {
    /// Connects to `url` (`s3://BUCKET[/PREFIX]`). Credentials and region come from the
    /// standard AWS environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_REGION`, ...), as every S3 tool reads them; `endpoint`
    /// names an S3-compatible server instead of AWS (`http://` allowed only there). Call it
    /// inside the tokio runtime: its blocking methods run their requests on it.
    pub fn open(url: &str, endpoint: Option<&str>) -> Result<Self, SharedStateError> {
        Self::open_with(AmazonS3Builder::from_env(), url, endpoint)
    }

    /// [`Self::open`] with the client's settings (credentials, region) from `builder`.
    fn open_with(
        builder: AmazonS3Builder,
        url: &str,
        endpoint: Option<&str>,
    ) -> Result<Self, SharedStateError> {
        let bad = |reason| SharedStateError::Url {
            url: url.to_owned(),
            reason,
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket"));
        }
        let prefix = prefix.trim_end_matches('/');
        let prefix =
            ObjectPath::parse(prefix).map_err(|_| bad("the prefix is not a clean path"))?;
        let mut builder = builder.with_bucket_name(bucket);
        if let Some(endpoint) = endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder.build().map_err(|source| SharedStateError::Client {
            url: url.to_owned(),
            source,
        })?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| bad("opened outside the proxy's runtime"))?;
        Ok(Self {
            store: Arc::new(store),
            prefix,
            location: url.trim_end_matches('/').to_owned(),
            runtime,
            counters: SharedCounters::default(),
        })
    }

    /// What it has done, for `/status`.
    pub fn status(&self) -> SharedStatus {
        let c = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        SharedStatus {
            location: self.location.clone(),
            tarballs_verified: load(&c.tarballs_verified),
            tarballs_refused: load(&c.tarballs_refused),
            baseline_written: load(&c.baseline_written),
            baseline_adopted: load(&c.baseline_adopted),
            baseline_refused: load(&c.baseline_refused),
            errors: load(&c.errors),
        }
    }

    fn key(&self, name: &str) -> ObjectPath {
        // `name` is built here from fixed parts, hex digests and numbers: no `..`.
        ObjectPath::from_iter(self.prefix.parts().chain(ObjectPath::from(name).parts()))
    }

    fn failed(&self, key: &ObjectPath, source: object_store::Error) -> SharedStateError {
        bump(&self.counters.errors);
        SharedStateError::Request {
            key: key.to_string(),
            source,
        }
    }

    /// The object under `key` if there is one, at most `max` bytes long.
    async fn read(&self, key: &ObjectPath, max: u64) -> Result<Option<Object>, SharedStateError> {
        let got = match self.store.get_opts(key, Default::default()).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => return Err(self.failed(key, source)),
        };
        // Refused before the body is read: a huge object costs one response header.
        if got.meta.size > max {
            return Err(SharedStateError::TooLarge {
                key: key.to_string(),
                size: got.meta.size,
                max,
            });
        }
        let version = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let size = got.meta.size;
        let bytes = got
            .bytes()
            .await
            .map_err(|source| self.failed(key, source))?;
        // The body is framed by the length the header gave; check it anyway.
        if bytes.len() as u64 != size {
            return Err(SharedStateError::TooLarge {
                key: key.to_string(),
                size: bytes.len() as u64,
                max: size,
            });
        }
        Ok(Some(Object { bytes, version }))
    }

    async fn write(
        &self,
        key: &ObjectPath,
        bytes: Bytes,
        mode: PutMode,
    ) -> Result<(), object_store::Error> {
        let options = PutOptions {
            mode,
            ..Default::default()
        };
        self.store
            .put_opts(key, PutPayload::from_bytes(bytes), options)
            .await?;
        Ok(())
    }

    fn tarball_key(&self, release: &SignedTarget) -> Option<ObjectPath> {
        let hex =
            release.sha256.len() == 64 && release.sha256.bytes().all(|b| b.is_ascii_hexdigit());
        hex.then(|| self.key(&format!("tarballs/{}", release.sha256)))
    }

    /// The tarball of `release` from the bucket, verified against its signed length and
    /// sha256. An object that is not those bytes is refused (and counted), never returned.
    pub async fn tarball(&self, release: &SignedTarget) -> Result<SharedTarball, SharedStateError> {
        let Some(key) = self.tarball_key(release) else {
            return Ok(SharedTarball::Missing);
        };
        let object = match self.read(&key, release.length).await {
            Ok(Some(object)) => object,
            Ok(None) => return Ok(SharedTarball::Missing),
            Err(SharedStateError::TooLarge { .. }) => {
                bump(&self.counters.tarballs_refused);
                tracing::warn!(%key, target = %release.target, "a shared tarball object is longer than the signed length; refusing it");
                return Ok(SharedTarball::Refused);
            }
            Err(error) => return Err(error),
        };
        let intact = object.bytes.len() as u64 == release.length
            && hex::encode(Sha256::digest(&object.bytes)) == release.sha256;
        if intact {
            bump(&self.counters.tarballs_verified);
            Ok(SharedTarball::Verified(object.bytes))
        } else {
            bump(&self.counters.tarballs_refused);
            tracing::warn!(%key, target = %release.target, "a shared tarball object is not the signed bytes; refusing it (it is replaced with the verified bytes)");
            Ok(SharedTarball::Refused)
        }
    }

    /// Stores verified bytes of `release` (content-addressed: overwriting is harmless, and
    /// replaces an object that was refused).
    pub async fn put_tarball(
        &self,
        release: &SignedTarget,
        bytes: Bytes,
    ) -> Result<(), SharedStateError> {
        let Some(key) = self.tarball_key(release) else {
            return Ok(());
        };
        self.write(&key, bytes, PutMode::Overwrite)
            .await
            .map_err(|source| self.failed(&key, source))
    }

    /// Takes the bucket's baseline where it is newer than the metadata in `metadata_dir`
    /// and verifies under the trusted root, writing it to `metadata_dir` (atomically), so
    /// that the update that follows judges rollback against what any replica trusted.
    /// Blocking: call it off the runtime's worker threads. Fails when the bucket cannot
    /// be read: the baseline other replicas trusted is then unknown.
    pub fn adopt_baseline(
        &self,
        metadata_dir: &Path,
        limits: &Limits,
    ) -> Result<(), SharedStateError> {
        self.runtime.block_on(self.adopt(metadata_dir, limits))
    }

    async fn adopt(&self, metadata_dir: &Path, limits: &Limits) -> Result<(), SharedStateError> {
        let local = MetadataDir::new(metadata_dir);
        let mut root = self.local_root(&local, limits)?;
        // §5.3 with the bucket as the source of later roots: each must verify against the
        // one before. The chain stops at the first version missing or refused.
        let start = root.root().signed().version;
        let mut adopted_root = None;
        for version in start.saturating_add(1)..start.saturating_add(limits.max_root_rotations) {
            let key = self.key(&format!("metadata/roots/{version}.root.json"));
            let Some(object) = self.read(&key, limits.max_root_length).await? else {
                break;
            };
            if let Err(error) = root.update_root(&object.bytes, limits) {
                bump(&self.counters.baseline_refused);
                tracing::warn!(%key, %error, "a shared root does not chain from the trusted root; ignoring it");
                break;
            }
            adopted_root = Some(object.bytes);
        }
        if let Some(bytes) = adopted_root {
            let version = root.root().signed().version;
            let keys_before = self.local_root(&local, limits)?;
            persist(&local, "root", &bytes)?;
            let history = metadata_dir.join("roots");
            std::fs::create_dir_all(&history).map_err(local_error(&history))?;
            let path = history.join(format!("{version}.root.json"));
            tuf_core::fs::write_atomic(&path, &bytes).map_err(local_error(&path))?;
            bump(&self.counters.baseline_adopted);
            tracing::info!(
                version,
                from = start,
                "took a later trusted root from the shared state"
            );
            // §5.3.11: new timestamp or snapshot keys make the stored copies worthless.
            for role in ["timestamp", "snapshot"] {
                let (before, after) = (
                    keys_before.authorised_keys(role, "root"),
                    root.authorised_keys(role, "root"),
                );
                if before != after {
                    local
                        .remove(role)
                        .map_err(local_error(&local.role_path(role)))?;
                }
            }
        }
        let root = root.root().clone();
        for (role, max) in baseline_roles(limits) {
            let key = self.key(&format!("metadata/{role}.json"));
            let shared = match self.read(&key, max).await {
                Ok(shared) => shared,
                Err(SharedStateError::TooLarge { .. }) => {
                    bump(&self.counters.baseline_refused);
                    continue;
                }
                Err(error) => return Err(error),
            };
            let Some(shared) = shared else { continue };
            let Some(shared_version) = verified_version(&root, role, &shared.bytes, max) else {
                bump(&self.counters.baseline_refused);
                tracing::warn!(%key, "a shared {role} is not signed by the trusted root's {role} keys; ignoring it");
                continue;
            };
            let path = local.role_path(role);
            let local_bytes = local.load(role, max).map_err(local_error(&path))?;
            let local_version = local_bytes
                .as_deref()
                .and_then(|bytes| verified_version(&root, role, bytes, max));
            if local_version.is_none_or(|local| shared_version > local) {
                persist(&local, role, &shared.bytes)?;
                bump(&self.counters.baseline_adopted);
                tracing::info!(role, version = shared_version, local = ?local_version, "took the shared baseline, newer than the local one");
            }
        }
        Ok(())
    }

    fn local_root(
        &self,
        local: &MetadataDir,
        limits: &Limits,
    ) -> Result<TrustedMetadataSet, SharedStateError> {
        let path = local.role_path("root");
        let bytes = local
            .load("root", limits.max_root_length)
            .map_err(local_error(&path))?
            .ok_or_else(|| SharedStateError::LocalRoot(format!("{} is missing", path.display())))?;
        TrustedMetadataSet::new(&bytes, chrono::Utc::now(), limits)
            .map_err(|error| SharedStateError::LocalRoot(error.to_string()))
    }

    /// Writes this replica's trusted metadata to the bucket where it is newer than the
    /// bucket's verified copy, by conditional writes. Blocking, like
    /// [`Self::adopt_baseline`].
    pub fn publish_baseline(
        &self,
        metadata_dir: &Path,
        limits: &Limits,
    ) -> Result<(), SharedStateError> {
        self.runtime.block_on(self.publish(metadata_dir, limits))
    }

    async fn publish(&self, metadata_dir: &Path, limits: &Limits) -> Result<(), SharedStateError> {
        let local = MetadataDir::new(metadata_dir);
        let trusted = self.local_root(&local, limits)?;
        let root = trusted.root().clone();
        // Every root from the history: immutable once right, so written when absent or
        // not the trusted bytes.
        let history = metadata_dir.join("roots");
        let mut versions: Vec<u64> = std::fs::read_dir(&history)
            .map_err(local_error(&history))?
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                name.strip_suffix(".root.json")?.parse().ok()
            })
            .collect();
        versions.sort_unstable();
        for version in versions {
            let path = history.join(format!("{version}.root.json"));
            let file = std::fs::File::open(&path).map_err(local_error(&path))?;
            let bytes = tuf_core::client::read_bounded(
                file,
                &path.display().to_string(),
                limits.max_root_length,
            )
            .map_err(|e| SharedStateError::Local {
                path: path.clone(),
                source: std::io::Error::other(e),
            })?;
            let key = self.key(&format!("metadata/roots/{version}.root.json"));
            let shared = match self.read(&key, limits.max_root_length).await {
                Ok(shared) => shared,
                Err(SharedStateError::TooLarge { .. }) => None,
                Err(error) => return Err(error),
            };
            if shared.is_some_and(|object| object.bytes.as_ref() == bytes.as_slice()) {
                continue;
            }
            self.write(&key, Bytes::from(bytes), PutMode::Overwrite)
                .await
                .map_err(|source| self.failed(&key, source))?;
            bump(&self.counters.baseline_written);
        }
        for (role, max) in baseline_roles(limits) {
            let path = local.role_path(role);
            let Some(ours) = local.load(role, max).map_err(local_error(&path))? else {
                continue;
            };
            let Some(our_version) = verified_version(&root, role, &ours, max) else {
                continue;
            };
            self.publish_role(role, max, &root, Bytes::from(ours), our_version)
                .await?;
        }
        Ok(())
    }

    /// One conditional write loop: read the object, stop if it verifies at a version at
    /// least ours, else replace exactly the object read (or create it if absent).
    async fn publish_role(
        &self,
        role: &str,
        max: u64,
        root: &Metadata<Root>,
        ours: Bytes,
        our_version: u64,
    ) -> Result<(), SharedStateError> {
        let key = self.key(&format!("metadata/{role}.json"));
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let mode = match self.read(&key, max).await {
                Ok(None) => PutMode::Create,
                Ok(Some(theirs)) => {
                    match verified_version(root, role, &theirs.bytes, max) {
                        Some(version) if version >= our_version => return Ok(()),
                        Some(_) => {}
                        None => {
                            bump(&self.counters.baseline_refused);
                            tracing::warn!(%key, "the shared {role} does not verify; replacing it");
                        }
                    }
                    PutMode::Update(theirs.version)
                }
                // Too large to be metadata: replace it, whatever it is.
                Err(SharedStateError::TooLarge { .. }) => PutMode::Overwrite,
                Err(error) => return Err(error),
            };
            match self.write(&key, ours.clone(), mode).await {
                Ok(()) => {
                    bump(&self.counters.baseline_written);
                    tracing::debug!(role, version = our_version, "shared baseline written");
                    return Ok(());
                }
                // Another replica wrote meanwhile: read again and judge its version.
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. },
                ) => {}
                Err(source) => return Err(self.failed(&key, source)),
            }
        }
        Err(SharedStateError::Contended {
            key: key.to_string(),
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }
}

/// The version of `bytes` as metadata of `role` (timestamp or snapshot) if a threshold of
/// `root`'s keys for the role signed it; `None` if it does not parse or verify. Expiry is
/// not judged: an expired version still bounds what may follow it.
fn verified_version(root: &Metadata<Root>, role: &str, bytes: &[u8], max: u64) -> Option<u64> {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    match role {
        "timestamp" => {
            let metadata = Metadata::<Timestamp>::from_bytes_with_limit(bytes, max).ok()?;
            root.verify_delegate(role, &metadata).ok()?;
            Some(metadata.signed().version)
        }
        "snapshot" => {
            let metadata = Metadata::<Snapshot>::from_bytes_with_limit(bytes, max).ok()?;
            root.verify_delegate(role, &metadata).ok()?;
            Some(metadata.signed().version)
        }
        _ => None,
    }
}

fn persist(local: &MetadataDir, role: &str, bytes: &[u8]) -> Result<(), SharedStateError> {
    local
        .persist(role, bytes)
        .map_err(local_error(&local.role_path(role)))
}

fn local_error(path: &Path) -> impl FnOnce(std::io::Error) -> SharedStateError + '_ {
    move |source| SharedStateError::Local {
        path: path.to_owned(),
        source,
    }
}

/// The S3 server of the proxy's end-to-end tests (tests/support/), here for the
/// conditional writes.
#[cfg(test)]
#[path = "../tests/support/s3.rs"]
#[allow(dead_code, clippy::expect_used, clippy::panic, clippy::unwrap_used)]
mod s3;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::trust::tuf_repo;

    /// A repository, three successive timestamps it signed, and its root.
    fn timestamps() -> (tuf_repo::TestRepo, Vec<(u64, Bytes)>, Metadata<Root>) {
        let mut repo = tuf_repo::TestRepo::new();
        let mut timestamps = Vec::new();
        for n in 0..3 {
            let version = format!("1.0.{n}");
            let tarball = tuf_crates_tests::crate_tarball::build_crate_tarball(
                "demo",
                &version,
                &[],
                "pub fn f() {}\n",
            );
            repo.add_release("demo", &version, &tarball);
            repo.sign_and_publish();
            let bytes =
                std::fs::read(repo.published_dir().join("metadata/timestamp.json")).unwrap();
            timestamps.push((repo.timestamp().signed().version, Bytes::from(bytes)));
        }
        let root = Metadata::<Root>::from_bytes(&std::fs::read(repo.root_path()).unwrap()).unwrap();
        (repo, timestamps, root)
    }

    fn connect(server: &s3::S3Server, runtime: &tokio::runtime::Runtime) -> SharedState {
        let mut builder = AmazonS3Builder::new();
        for (key, value) in server.env() {
            builder = match key.as_str() {
                "AWS_ACCESS_KEY_ID" => builder.with_access_key_id(value),
                "AWS_SECRET_ACCESS_KEY" => builder.with_secret_access_key(value),
                _ => builder.with_region(value),
            };
        }
        let _entered = runtime.enter();
        SharedState::open_with(builder, "s3://tuf-crates-unit/p", Some(server.endpoint())).unwrap()
    }

    /// The version of the `T` metadata a replica keeps as `role` in `local`.
    fn local_version<T: tuf_core::metadata::Role>(local: &MetadataDir, role: &str) -> u64 {
        let bytes = local.load(role, 1 << 20).unwrap().unwrap();
        Metadata::<T>::from_bytes(&bytes)
            .unwrap()
            .signed()
            .version()
    }

    #[test]
    fn racing_publishers_never_move_the_baseline_backwards() {
        let server = s3::S3Server::start("tuf-crates-unit");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let shared = Arc::new(connect(&server, &runtime));
        let (_repo, timestamps, root) = timestamps();
        let key = "p/metadata/timestamp.json";
        let [(v1, t1), (v2, t2), (v3, t3)] = <[_; 3]>::try_from(timestamps).unwrap();
        assert!(v1 < v2 && v2 < v3);
        let max = Limits::default().max_timestamp_length;
        for round in 0..12 {
            server.put(key, &t1);
            // Two replicas publish at once, one behind the other.
            let (older, newer) = runtime.block_on(async {
                let (a, b) = (Arc::clone(&shared), Arc::clone(&shared));
                let (r1, r2) = (root.clone(), root.clone());
                let (t2, t3) = (t2.clone(), t3.clone());
                let older =
                    tokio::spawn(
                        async move { a.publish_role("timestamp", max, &r1, t2, v2).await },
                    );
                let newer =
                    tokio::spawn(
                        async move { b.publish_role("timestamp", max, &r2, t3, v3).await },
                    );
                (older.await.unwrap(), newer.await.unwrap())
            });
            older.unwrap();
            newer.unwrap();
            assert_eq!(
                server.get(key).as_deref(),
                Some(t3.as_ref()),
                "round {round}"
            );
        }
        // A publisher behind the bucket writes nothing; one ahead replaces it.
        runtime
            .block_on(shared.publish_role("timestamp", max, &root, t1.clone(), v1))
            .unwrap();
        assert_eq!(server.get(key).as_deref(), Some(t3.as_ref()));
        // A forged object of a high version does not stop a real one.
        let mut forged: serde_json::Value = serde_json::from_slice(&t3).unwrap();
        forged["signed"]["version"] = serde_json::json!(v3 + 100);
        server.put(key, &serde_json::to_vec(&forged).unwrap());
        runtime
            .block_on(shared.publish_role("timestamp", max, &root, t2.clone(), v2))
            .unwrap();
        assert_eq!(server.get(key).as_deref(), Some(t2.as_ref()));
        assert_eq!(shared.status().baseline_refused, 1);
    }

    /// The baseline a replica takes from the bucket only ever moves its own forward,
    /// and a later root that keeps the timestamp and snapshot keys keeps its copies.
    #[test]
    fn the_shared_baseline_is_taken_only_when_newer_and_survives_a_root_keeping_its_keys() {
        let server = s3::S3Server::start("tuf-crates-unit");
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let shared = connect(&server, &runtime);
        let (mut repo, timestamps, _root) = timestamps();
        let limits = Limits::default();
        let disk = tempfile::tempdir().unwrap();
        let local = MetadataDir::new(disk.path());
        local
            .persist("root", &std::fs::read(repo.root_path()).unwrap())
            .unwrap();
        let local_timestamp = || local_version::<Timestamp>(&local, "timestamp");
        let share = |bytes: &[u8]| server.put("p/metadata/timestamp.json", bytes);
        let [(oldest, oldest_bytes), (middle, middle_bytes), (newest, newest_bytes)] =
            <[_; 3]>::try_from(timestamps).unwrap();
        local.persist("timestamp", &middle_bytes).unwrap();
        // Newer in the bucket: taken.
        share(&newest_bytes);
        shared.adopt_baseline(disk.path(), &limits).unwrap();
        assert_eq!(local_timestamp(), newest);
        // Older in the bucket: the disk keeps the newer one.
        share(&oldest_bytes);
        shared.adopt_baseline(disk.path(), &limits).unwrap();
        assert_eq!(local_timestamp(), newest);
        assert!(oldest < middle && middle < newest);
        // The same version in the bucket, other bytes (signed by the timestamp key, naming
        // an older snapshot): the disk keeps its own, and so its snapshot baseline.
        let snapshot_named = |bytes: &[u8]| {
            Metadata::<Timestamp>::from_bytes(bytes)
                .unwrap()
                .signed()
                .meta["snapshot.json"]
                .version
        };
        let mut same_version = Metadata::<Timestamp>::from_bytes(&newest_bytes)
            .unwrap()
            .into_signed();
        same_version.meta.get_mut("snapshot.json").unwrap().version -= 1;
        let mut forged = Metadata::new(same_version);
        forged.sign(&repo.keys.online, false).unwrap();
        share(&forged.to_bytes().unwrap());
        shared.adopt_baseline(disk.path(), &limits).unwrap();
        let kept = local.load("timestamp", 1 << 20).unwrap().unwrap();
        assert_eq!(snapshot_named(&kept), snapshot_named(&newest_bytes));
        // A later root with the same keys, from the bucket: taken, and the timestamp
        // kept (only new timestamp keys make it worthless, §5.3.11).
        let version = repo.forge_root(|_| {});
        let root_bytes =
            std::fs::read(repo.metadata_dir().join(format!("{version}.root.json"))).unwrap();
        server.put(
            &format!("p/metadata/roots/{version}.root.json"),
            &root_bytes,
        );
        shared.adopt_baseline(disk.path(), &limits).unwrap();
        assert_eq!(local_version::<Root>(&local, "root"), version);
        assert_eq!(local_timestamp(), newest);
    }

    /// A root object in the bucket that is not the trusted bytes is written again; a
    /// newer snapshot in the bucket is taken like a newer timestamp.
    #[test]
    fn a_wrong_root_object_is_repaired_and_a_newer_shared_snapshot_is_taken() {
        let server = s3::S3Server::start("tuf-crates-unit");
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let shared = connect(&server, &runtime);
        let (repo, _timestamps, _root) = timestamps();
        let limits = Limits::default();
        let disk = tempfile::tempdir().unwrap();
        let local = MetadataDir::new(disk.path());
        let root_bytes = std::fs::read(repo.root_path()).unwrap();
        local.persist("root", &root_bytes).unwrap();
        let history = disk.path().join("roots");
        std::fs::create_dir_all(&history).unwrap();
        std::fs::write(history.join("1.root.json"), &root_bytes).unwrap();
        server.put("p/metadata/roots/1.root.json", b"not the root");
        shared.publish_baseline(disk.path(), &limits).unwrap();
        assert_eq!(
            server.get("p/metadata/roots/1.root.json").unwrap(),
            root_bytes
        );

        let newest = repo.snapshot_version();
        let snapshot = |version: u64| {
            std::fs::read(
                repo.published_dir()
                    .join(format!("metadata/{version}.snapshot.json")),
            )
            .unwrap()
        };
        local.persist("snapshot", &snapshot(newest - 1)).unwrap();
        server.put("p/metadata/snapshot.json", &snapshot(newest));
        shared.adopt_baseline(disk.path(), &limits).unwrap();
        assert_eq!(local_version::<Snapshot>(&local, "snapshot"), newest);
    }

    #[test]
    fn a_write_made_after_a_stale_read_is_refused_by_the_store() {
        let server = s3::S3Server::start("tuf-crates-unit");
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let shared = connect(&server, &runtime);
        // What it shows of itself (in logs and panics): where, never the credentials.
        let shown = format!("{shared:?}");
        assert!(shown.contains("s3://tuf-crates-unit/p"), "{shown}");
        for (key, value) in server.env() {
            if key == "AWS_SECRET_ACCESS_KEY" {
                assert!(!shown.contains(&value), "{shown}");
            }
        }
        // A tarball's key is its signed sha256, only when that is 64 hex digits.
        let release = |sha256: &str| SignedTarget {
            target: "crates/demo/demo/demo-1.0.0.crate".into(),
            role: "targets".into(),
            delegator: "root".into(),
            length: 1,
            sha256: sha256.into(),
            hashes: Default::default(),
            valid_until: chrono::Utc::now(),
            scan: None,
        };
        let hex = "ab".repeat(32);
        assert_eq!(
            shared.tarball_key(&release(&hex)).map(|k| k.to_string()),
            Some(format!("p/tarballs/{hex}"))
        );
        for not_a_digest in ["x".repeat(64), "ab".repeat(16), "..".repeat(32)] {
            assert!(
                shared.tarball_key(&release(&not_a_digest)).is_none(),
                "{not_a_digest}"
            );
        }
        let key = shared.key("metadata/timestamp.json");
        runtime.block_on(async {
            shared
                .write(&key, Bytes::from_static(b"first"), PutMode::Create)
                .await
                .unwrap();
            let stale = shared.read(&key, 100).await.unwrap().unwrap();
            shared
                .write(
                    &key,
                    Bytes::from_static(b"second"),
                    PutMode::Update(stale.version.clone()),
                )
                .await
                .unwrap();
            // What a replica holding the first read would write now: refused.
            let again = shared
                .write(
                    &key,
                    Bytes::from_static(b"stale"),
                    PutMode::Update(stale.version),
                )
                .await;
            assert!(
                matches!(again, Err(object_store::Error::Precondition { .. })),
                "{again:?}"
            );
            let created = shared
                .write(&key, Bytes::from_static(b"stale"), PutMode::Create)
                .await;
            assert!(
                matches!(created, Err(object_store::Error::AlreadyExists { .. })),
                "{created:?}"
            );
            let now = shared.read(&key, 100).await.unwrap().unwrap();
            assert_eq!(now.bytes.as_ref(), b"second");
            // Larger than a key may hold: refused before the body is read.
            assert!(matches!(
                shared.read(&key, 3).await,
                Err(SharedStateError::TooLarge {
                    size: 6,
                    max: 3,
                    ..
                })
            ));
        });
    }

    #[test]
    fn only_an_s3_url_with_a_bucket_is_taken() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let _entered = runtime.enter();
        for url in ["https://bucket/x", "s3://", "s3:///prefix"] {
            assert!(
                matches!(
                    SharedState::open_with(AmazonS3Builder::new(), url, None),
                    Err(SharedStateError::Url { .. })
                ),
                "{url}"
            );
        }
        let shared = SharedState::open_with(
            AmazonS3Builder::new().with_region("us-east-1"),
            "s3://bucket/a/b/",
            Some("http://127.0.0.1:1"),
        )
        .unwrap();
        assert_eq!(shared.key("tarballs/ab").as_ref(), "a/b/tarballs/ab");
        assert_eq!(shared.status().location, "s3://bucket/a/b");
    }
}
