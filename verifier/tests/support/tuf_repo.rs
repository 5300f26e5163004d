//! A TUF repository of crate releases made with tuf-core's editor, and forgeries of it
//! written straight into the published metadata directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tuf_core::attestation::{Attestation, AttestationKind};
use tuf_core::client::{quote_role_name, DirectoryFetcher, Updater, UpdaterConfig};
use tuf_core::crate_index::CrateIndexFile;
use tuf_core::fs::write_atomic;
use tuf_core::layout::{crate_index_path, crate_target_path};
use tuf_core::metadata::MetaFile;
use tuf_core::repository::{InitOptions, Repository, RoleKeySpec, Settings};
use tuf_core::{
    KeyAlgorithm, KeyEncryption, Metadata, PrivateKey, Role, Root, Signer, Snapshot, Targets,
    Timestamp,
};

/// The keys of a [`TestRepo`]: root (1 of 1), top-level targets, and the online key
/// (snapshot, timestamp, the fallback role and its hash bins).
pub struct Keys {
    /// Root key, threshold 1.
    pub root: PrivateKey,
    /// Top-level targets key (delegates namespaces).
    pub targets: PrivateKey,
    /// Online key: snapshot, timestamp, fallback role and bins.
    pub online: PrivateKey,
}

impl Keys {
    /// Fresh Ed25519 keys.
    pub fn generate() -> Self {
        Self {
            root: PrivateKey::generate(KeyAlgorithm::Ed25519),
            targets: PrivateKey::generate(KeyAlgorithm::Ed25519),
            online: PrivateKey::generate(KeyAlgorithm::Ed25519),
        }
    }
}

/// A copy of a private key (through unencrypted PKCS#8).
pub fn clone_key(key: &PrivateKey) -> PrivateKey {
    let pem = key
        .to_pkcs8_pem(None, KeyEncryption::default())
        .expect("encode key");
    PrivateKey::from_pkcs8_pem(&pem, None).expect("decode key")
}

fn spec(key: &PrivateKey) -> RoleKeySpec {
    RoleKeySpec {
        keys: vec![key.public_key().clone()],
        threshold: 1,
    }
}

fn read_metadata<T: Role>(path: &Path) -> (Metadata<T>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let doc = Metadata::<T>::from_bytes(&bytes)
        .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    (doc, bytes)
}

fn sign_and_encode<T: Role>(signed: T, signer: &dyn Signer) -> Vec<u8> {
    let mut doc = Metadata::new(signed);
    doc.sign(signer, false).expect("sign forged metadata");
    doc.to_bytes().expect("encode forged metadata")
}

/// A published TUF repository (consistent snapshots, 16 fallback bins) built with
/// tuf-core's editor in a temporary directory, using real time for expiry.
pub struct TestRepo {
    dir: tempfile::TempDir,
    repo: Option<Repository>,
    /// The repository's keys, for tests that forge metadata.
    pub keys: Keys,
    maintainers: BTreeMap<String, PrivateKey>,
}

impl Default for TestRepo {
    fn default() -> Self {
        Self::new()
    }
}

impl TestRepo {
    /// Creates, signs and publishes a new repository with no releases.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let keys = Keys::generate();
        let options = InitOptions {
            root: spec(&keys.root),
            targets: spec(&keys.targets),
            snapshot: spec(&keys.online),
            timestamp: spec(&keys.online),
            fallback: spec(&keys.online),
            settings: Settings {
                fallback_bin_bits: 4,
                ..Settings::default()
            },
        };
        let repo_dir = dir.path().join("repo");
        let repo = Repository::init(&repo_dir, &options, Utc::now()).expect("init repository");
        let mut test_repo = Self {
            dir,
            repo: Some(repo),
            keys,
            maintainers: BTreeMap::new(),
        };
        test_repo.sign_and_publish();
        test_repo
    }

    fn editor(&mut self) -> &mut Repository {
        self.repo.as_mut().expect("repository open")
    }

    /// The editor's working directory (`repository.json`, `staged/`, `published/`).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// `<repo>/published`.
    pub fn published_dir(&self) -> PathBuf {
        self.dir().join("published")
    }

    /// `<repo>/published/metadata`: a symlink to the current generation.
    pub fn metadata_dir(&self) -> PathBuf {
        self.published_dir().join("metadata")
    }

    /// The directory `metadata_dir()` currently resolves to.
    pub fn current_generation_dir(&self) -> PathBuf {
        std::fs::canonicalize(self.metadata_dir()).expect("resolve published/metadata")
    }

    /// `<repo>/published/targets`: hash-prefixed release tarballs.
    pub fn targets_dir(&self) -> PathBuf {
        self.published_dir().join("targets")
    }

    /// `<repo>/published/metadata/1.root.json`, the root a client starts from.
    pub fn root_path(&self) -> PathBuf {
        self.metadata_dir().join("1.root.json")
    }

    /// Delegates `namespace` to a new maintainer key (1 of 1), signs targets and the
    /// namespace role, publishes, and returns (a copy of) the maintainer key.
    pub fn delegate_namespace(&mut self, namespace: &str) -> PrivateKey {
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let edit = self
            .editor()
            .delegate_namespace(namespace, &spec(&key), Utc::now())
            .unwrap_or_else(|e| panic!("delegate namespace {namespace}: {e}"));
        self.maintainers.insert(edit.role, clone_key(&key));
        self.sign_and_publish();
        key
    }

    /// The maintainer key of a namespace role (`ns-NAME`), if delegated here.
    pub fn maintainer_key(&self, role: &str) -> Option<&PrivateKey> {
        self.maintainers.get(role)
    }

    /// Stages a release (listed by its namespace role or a fallback bin); returns the
    /// role that lists it. Call [`Self::sign_and_publish`] to publish it.
    pub fn add_release(&mut self, name: &str, version: &str, tarball: &[u8]) -> String {
        let added = self
            .editor()
            .add_release(
                name,
                version,
                tarball,
                tuf_core::crate_archive::release_index_entry(
                    &format!("{name}-{version}.crate"),
                    tarball,
                    &tuf_core::crate_archive::ArchiveLimits::default(),
                )
                .expect("an index entry from the tarball's Cargo.toml"),
                Utc::now(),
            )
            .unwrap_or_else(|e| panic!("add release {name} {version}: {e}"));
        added.role
    }

    /// Stages a release with the index entry `entry` as its signed entry (what a
    /// registry's own line would be, whatever the tarball's Cargo.toml says); returns the
    /// role that lists it.
    pub fn add_release_with_entry(
        &mut self,
        name: &str,
        version: &str,
        tarball: &[u8],
        entry: tuf_core::index_entry::IndexEntry,
    ) -> String {
        self.editor()
            .add_release(name, version, tarball, entry, Utc::now())
            .unwrap_or_else(|e| panic!("add release {name} {version}: {e}"))
            .role
    }

    /// Sets the owners' yank mark of `name` `version` and publishes (signed by the
    /// crate's role: its maintainer, or the online key for a bin).
    pub fn yank(&mut self, name: &str, version: &str, yanked: bool) {
        self.editor()
            .set_yanked(name, version, yanked, Utc::now())
            .unwrap_or_else(|e| panic!("yank {name} {version}: {e}"));
        self.sign_and_publish();
    }

    /// Records a release scanner result in the signed target of `name` `version` (what
    /// `tuf-signer review --record` does), and publishes.
    pub fn record_scan(
        &mut self,
        name: &str,
        version: &str,
        scan: &tuf_core::layout::RecordedScan,
    ) {
        self.editor()
            .record_scan(name, version, scan, Utc::now())
            .unwrap_or_else(|e| panic!("record the scan of {name} {version}: {e}"));
        self.sign_and_publish();
    }

    /// `key` (labelled `label`) attests `name` `version` as `kind`, through the editor
    /// (which checks the attestation), and publishes.
    pub fn attest(
        &mut self,
        name: &str,
        version: &str,
        kind: AttestationKind,
        key: &PrivateKey,
        label: &str,
    ) {
        let attestation = self.signed_attestation(name, version, kind, key, label);
        self.editor()
            .add_attestation(attestation, Utc::now())
            .unwrap_or_else(|e| panic!("attest {name} {version}: {e}"));
        self.sign_and_publish();
    }

    /// An attestation of `name` `version` as it stands, signed by `key`, not stored.
    pub fn signed_attestation(
        &mut self,
        name: &str,
        version: &str,
        kind: AttestationKind,
        key: &PrivateKey,
        label: &str,
    ) -> Attestation {
        let statement = self
            .editor()
            .release_statement(name, version, kind, label, Utc::now())
            .unwrap_or_else(|e| panic!("statement of {name} {version}: {e}"));
        Attestation::sign(statement, key).expect("sign the attestation")
    }

    /// Rewrites the signed index file of `name` with `mutate` applied, bypassing the
    /// editor's checks: a role that signs whatever it likes (see [`Self::forge`]). The
    /// file goes into `published/targets`; `signer` signs the role.
    pub fn forge_index_file(
        &mut self,
        name: &str,
        mutate: impl FnOnce(&mut CrateIndexFile),
        signer: &dyn Signer,
    ) {
        let (mut index, role) = self.editor().crate_index(name).expect("the index file");
        mutate(&mut index);
        let bytes = index.to_bytes();
        let info = tuf_core::metadata::TargetFile::from_bytes(&bytes);
        let path = crate_index_path(name).expect("crate name");
        let (dir, file) = path.rsplit_once('/').expect("a directory");
        let sha256 = info.hashes.get("sha256").expect("sha256").to_owned();
        let on_disk = self
            .targets_dir()
            .join(dir)
            .join(format!("{sha256}.{file}"));
        std::fs::create_dir_all(on_disk.parent().expect("parent")).expect("targets dirs");
        std::fs::write(&on_disk, &bytes).expect("write the forged index file");
        self.forge(
            &role,
            |targets| {
                targets.targets.insert(path, info);
            },
            signer,
        );
    }

    /// The role that lists (or would list) the target at `target`.
    pub fn role_for_target(&mut self, target: &str) -> String {
        self.editor().role_for_path(target).expect("role for path")
    }

    /// The role that lists (or would list) `name` `version`.
    pub fn role_for(&mut self, name: &str, version: &str) -> String {
        let path = crate_target_path(name, version).expect("valid crate name and version");
        self.editor().role_for_path(&path).expect("role for path")
    }

    /// Signs every staged role with its key (root, targets, namespace maintainers) and
    /// publishes with the online key. Does nothing when nothing is staged.
    pub fn sign_and_publish(&mut self) {
        let repo = self.repo.as_mut().expect("repository open");
        let staged = repo.staged_roles();
        if staged.is_empty() {
            return;
        }
        for role in &staged {
            let key = match role.as_str() {
                "root" => Some(&self.keys.root),
                "targets" => Some(&self.keys.targets),
                other => self.maintainers.get(other),
            };
            if let Some(key) = key {
                repo.sign(role, key)
                    .unwrap_or_else(|e| panic!("sign {role}: {e}"));
            }
        }
        repo.publish(&[&self.keys.online], Utc::now(), &())
            .unwrap_or_else(|e| panic!("publish: {e}"));
    }

    /// The published timestamp.
    pub fn timestamp(&self) -> Metadata<Timestamp> {
        read_metadata(&self.metadata_dir().join("timestamp.json")).0
    }

    /// The published snapshot (the version the timestamp names).
    pub fn snapshot(&self) -> Metadata<Snapshot> {
        let version = self.snapshot_version();
        read_metadata(&self.metadata_dir().join(format!("{version}.snapshot.json"))).0
    }

    /// The snapshot version the published timestamp names.
    pub fn snapshot_version(&self) -> u64 {
        self.timestamp()
            .signed()
            .snapshot_meta()
            .expect("timestamp names snapshot.json")
            .version
    }

    /// The published version of a targets role, per snapshot.
    pub fn role_version(&self, role: &str) -> u64 {
        self.snapshot()
            .signed()
            .role_meta(role)
            .unwrap_or_else(|| panic!("snapshot does not list {role}"))
            .version
    }

    /// The published metadata of a targets role.
    pub fn targets_role(&self, role: &str) -> Metadata<Targets> {
        let version = self.role_version(role);
        let name = format!("{version}.{}.json", quote_role_name(role));
        read_metadata(&self.metadata_dir().join(name)).0
    }

    /// Reopens the editor so that it continues from what is now on disk (after a
    /// forgery).
    fn reopen(&mut self) {
        self.repo = None;
        self.repo = Some(Repository::open(&self.dir()).expect("reopen repository"));
    }

    fn write_metadata(&self, name: &str, bytes: &[u8]) {
        let path = self.current_generation_dir().join(name);
        // Files are hard links shared with the previous generation: replace, never
        // rewrite in place.
        write_atomic(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Writes a timestamp (version + 1 of the published one) naming `snapshot_version`,
    /// whose file must exist, expiring at `expires`, signed with the online key.
    fn write_timestamp(&self, snapshot_version: u64, expires: DateTime<Utc>) -> u64 {
        let snapshot_bytes = std::fs::read(
            self.metadata_dir()
                .join(format!("{snapshot_version}.snapshot.json")),
        )
        .expect("snapshot file");
        let mut timestamp = self.timestamp().into_signed();
        timestamp.version += 1;
        timestamp.expires = tuf_core::metadata::whole_seconds(expires);
        timestamp.meta.insert(
            "snapshot.json".into(),
            MetaFile::with_bytes(snapshot_version, &snapshot_bytes),
        );
        let version = timestamp.version;
        let bytes = sign_and_encode(timestamp, &self.keys.online);
        self.write_metadata("timestamp.json", &bytes);
        version
    }

    /// Writes a new version of the delegated targets role `role` (published version + 1,
    /// then `mutate` applied), signed only by `signer`, and a new snapshot and timestamp
    /// (versions + 1, signed with the online key) that list it, into the current
    /// generation. Returns the new role version. The editor then continues from the
    /// forged state.
    pub fn forge(
        &mut self,
        role: &str,
        mutate: impl FnOnce(&mut Targets),
        signer: &dyn Signer,
    ) -> u64 {
        let mut targets = self.targets_role(role).into_signed();
        targets.version += 1;
        mutate(&mut targets);
        let role_version = targets.version;
        let role_bytes = sign_and_encode(targets, signer);
        self.write_metadata(
            &format!("{role_version}.{}.json", quote_role_name(role)),
            &role_bytes,
        );
        let mut snapshot = self.snapshot().into_signed();
        snapshot.version += 1;
        snapshot.meta.insert(
            format!("{role}.json"),
            MetaFile::with_bytes(role_version, &role_bytes),
        );
        let snapshot_version = snapshot.version;
        let snapshot_bytes = sign_and_encode(snapshot, &self.keys.online);
        self.write_metadata(
            &format!("{snapshot_version}.snapshot.json"),
            &snapshot_bytes,
        );
        let expires = self.timestamp().signed().expires;
        self.write_timestamp(snapshot_version, expires);
        self.reopen();
        role_version
    }

    /// Writes the next root (published version + 1, then `mutate` applied), signed with
    /// the root key, into the current generation as `N.root.json`; returns N. The
    /// editor then continues from the forged state.
    pub fn forge_root(&mut self, mutate: impl FnOnce(&mut Root)) -> u64 {
        let mut version = 1;
        while self
            .metadata_dir()
            .join(format!("{}.root.json", version + 1))
            .exists()
        {
            version += 1;
        }
        let (current, _) =
            read_metadata::<Root>(&self.metadata_dir().join(format!("{version}.root.json")));
        let mut root = current.into_signed();
        root.version += 1;
        mutate(&mut root);
        let new_version = root.version;
        let bytes = sign_and_encode(root, &self.keys.root);
        self.write_metadata(&format!("{new_version}.root.json"), &bytes);
        self.reopen();
        new_version
    }

    /// Forges a release into `role`: lists `name` `version` with `tarball`'s length and
    /// sha256, signed by `signer` (see [`Self::forge`]).
    pub fn forge_release(
        &mut self,
        role: &str,
        name: &str,
        version: &str,
        tarball: &[u8],
        signer: &dyn Signer,
    ) -> u64 {
        let path = crate_target_path(name, version).expect("valid crate name and version");
        let info = tuf_core::metadata::TargetFile::from_bytes(tarball);
        self.forge(
            role,
            |targets| {
                targets.targets.insert(path, info);
            },
            signer,
        )
    }

    /// Replaces `timestamp.json` with a new version (+1) naming the same snapshot whose
    /// expiry is an hour in the past, signed with the online key. Returns its version.
    pub fn expire_timestamp(&mut self) -> u64 {
        let snapshot_version = self.snapshot_version();
        let version =
            self.write_timestamp(snapshot_version, Utc::now() - chrono::Duration::hours(1));
        self.reopen();
        version
    }

    /// Replaces `timestamp.json` with a new version (+1) naming the same snapshot and
    /// expiring at `expires`, signed with the online key. Returns its version.
    pub fn reissue_timestamp(&mut self, expires: DateTime<Utc>) -> u64 {
        let snapshot_version = self.snapshot_version();
        let version = self.write_timestamp(snapshot_version, expires);
        self.reopen();
        version
    }

    /// Replaces `timestamp.json` with a new version (+1), valid for a day, naming the
    /// previous snapshot version, signed with the online key. Returns its version.
    pub fn rollback_snapshot(&mut self) -> u64 {
        let current = self.snapshot_version();
        assert!(current >= 2, "no previous snapshot to roll back to");
        let version = self.write_timestamp(current - 1, Utc::now() + chrono::Duration::days(1));
        self.reopen();
        version
    }

    /// A TUF client over this repository's files: copies the trusted root into
    /// `client_dir` (unless it already holds one) and returns an updater reading
    /// `published/` directly, judging expiry by the current time.
    pub fn updater(&self, client_dir: &Path) -> Updater<DirectoryFetcher> {
        let root = client_dir.join("root.json");
        if !root.exists() {
            std::fs::copy(self.root_path(), &root).expect("copy root.json");
        }
        let published = std::fs::canonicalize(self.published_dir()).expect("published dir");
        let fetcher = DirectoryFetcher::new(&published);
        let mut config = UpdaterConfig::new(client_dir, fetcher.base_url("metadata"));
        config.targets_url = Some(fetcher.base_url("targets"));
        Updater::new(config, fetcher, Utc::now()).expect("updater")
    }
}
