//! A TUF repository on disk built for client tests ([`Repo`]), a client directory
//! ([`Client`]) and a fetcher that records what it fetched ([`CountingFetcher`]).
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Duration, TimeZone, Utc};
use tuf_core::client::{
    DirectoryFetcher, FetchError, Fetcher, TrustError, UpdateError, Updater, UpdaterConfig,
};
use tuf_core::metadata::{
    DelegatedRole, Delegations, MetaFile, Metadata, Role, RoleKeys, Root, Snapshot, SuccinctRoles,
    TargetFile, Targets, Timestamp,
};
use tuf_core::signer::{KeyAlgorithm, PrivateKey, Signer};

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 1, 0, 0, 0).unwrap()
}

pub fn in_days(days: i64) -> DateTime<Utc> {
    now() + Duration::days(days)
}

/// Records every URL fetched.
pub struct CountingFetcher {
    pub inner: DirectoryFetcher,
    pub urls: RefCell<Vec<String>>,
}

impl Fetcher for CountingFetcher {
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        self.urls.borrow_mut().push(url.to_owned());
        self.inner.fetch(url, max_length)
    }
}

impl CountingFetcher {
    pub fn new(dir: &std::path::Path) -> Self {
        Self {
            inner: DirectoryFetcher::new(dir),
            urls: RefCell::new(Vec::new()),
        }
    }
    pub fn names(&self) -> Vec<String> {
        self.urls
            .borrow()
            .iter()
            .map(|u| u.rsplit('/').next().unwrap().to_owned())
            .collect()
    }
    pub fn reset(&self) {
        self.urls.borrow_mut().clear();
    }
}

/// A repository on disk: `metadata/` and `targets/` under a temp dir, with its keys.
pub struct Repo {
    pub dir: tempfile::TempDir,
    pub consistent: bool,
    pub root_keys: Vec<PrivateKey>,
    pub root_threshold_signers: usize,
    pub timestamp_key: PrivateKey,
    pub snapshot_key: PrivateKey,
    pub targets_key: PrivateKey,
    pub root: Metadata<Root>,
    pub timestamp: Metadata<Timestamp>,
    pub snapshot: Metadata<Snapshot>,
    /// Every targets role by name, with the key that signs it.
    pub roles: BTreeMap<String, (Metadata<Targets>, String)>,
    pub keys: BTreeMap<String, PrivateKey>,
    /// Roles written at least once: publishing again bumps their version.
    pub written: std::collections::BTreeSet<String>,
}

impl Repo {
    pub fn new(consistent: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("metadata")).unwrap();
        std::fs::create_dir_all(dir.path().join("targets")).unwrap();
        let root_keys = vec![
            PrivateKey::generate(KeyAlgorithm::Ed25519),
            PrivateKey::generate(KeyAlgorithm::EcdsaP256),
        ];
        let timestamp_key = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let snapshot_key = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let targets_key = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let mut root = Root::new(in_days(365));
        root.consistent_snapshot = Some(consistent);
        for key in &root_keys {
            root.keys
                .insert(key.keyid().clone(), key.public_key().clone());
        }
        root.roles.insert(
            "root".into(),
            RoleKeys::new(root_keys.iter().map(|k| k.keyid().clone()).collect(), 2),
        );
        for (role, key) in [
            ("timestamp", &timestamp_key),
            ("snapshot", &snapshot_key),
            ("targets", &targets_key),
        ] {
            root.keys
                .insert(key.keyid().clone(), key.public_key().clone());
            root.roles
                .insert(role.into(), RoleKeys::new(vec![key.keyid().clone()], 1));
        }
        let mut repo = Self {
            dir,
            consistent,
            root_keys,
            root_threshold_signers: 2,
            timestamp_key,
            snapshot_key,
            targets_key,
            root: Metadata::new(root),
            timestamp: Metadata::new(Timestamp::new(in_days(1))),
            snapshot: Metadata::new(Snapshot::new(in_days(7))),
            roles: BTreeMap::new(),
            keys: BTreeMap::new(),
            written: std::collections::BTreeSet::new(),
        };
        repo.roles.insert(
            "targets".into(),
            (Metadata::new(Targets::new(in_days(30))), "targets".into()),
        );
        repo.sign_root();
        repo.publish();
        repo
    }

    pub fn metadata_dir(&self) -> PathBuf {
        self.dir.path().join("metadata")
    }

    pub fn sign_root(&mut self) {
        self.root.signatures.clear();
        for key in self.root_keys.iter().take(self.root_threshold_signers) {
            self.root.sign(key, true).unwrap();
        }
        let bytes = self.root.to_bytes().unwrap();
        let version = self.root.signed().version;
        std::fs::write(
            self.metadata_dir().join(format!("{version}.root.json")),
            &bytes,
        )
        .unwrap();
        std::fs::write(self.metadata_dir().join("root.json"), &bytes).unwrap();
    }

    pub fn key_for(&self, name: &str) -> &PrivateKey {
        if name == "targets" {
            &self.targets_key
        } else {
            &self.keys[name]
        }
    }

    pub fn file_name(&self, role: &str, version: u64) -> String {
        let quoted = tuf_core::client::quote_role_name(role);
        if self.consistent {
            format!("{version}.{quoted}.json")
        } else {
            format!("{quoted}.json")
        }
    }

    pub fn write_role(&mut self, name: &str) -> MetaFile {
        let key_name = self.roles[name].1.clone();
        let key = self.key_for(&key_name).public_key().clone();
        let signer = self.keys.get(&key_name).map_or(&self.targets_key, |k| k);
        assert_eq!(signer.public_key(), &key);
        let (md, _) = self.roles.get_mut(name).unwrap();
        if !self.written.insert(name.to_owned()) {
            md.signed_mut().version += 1;
        }
        md.sign(signer, false).unwrap();
        let bytes = md.to_bytes().unwrap();
        let version = md.signed().version;
        std::fs::write(
            self.metadata_dir().join(self.file_name(name, version)),
            &bytes,
        )
        .unwrap();
        MetaFile::with_bytes(version, &bytes)
    }

    /// Signs and writes every targets role, snapshot and timestamp (bumping the
    /// versions of snapshot and timestamp).
    pub fn publish(&mut self) {
        let names: Vec<String> = self.roles.keys().cloned().collect();
        let mut meta = BTreeMap::new();
        for name in names {
            let entry = self.write_role(&name);
            meta.insert(format!("{name}.json"), MetaFile::new(entry.version));
        }
        self.publish_snapshot(meta);
    }

    pub fn publish_snapshot(&mut self, meta: BTreeMap<String, MetaFile>) {
        let snapshot = self.snapshot.signed_mut();
        snapshot.version += 1;
        snapshot.meta = meta;
        self.snapshot.sign(&self.snapshot_key, false).unwrap();
        let bytes = self.snapshot.to_bytes().unwrap();
        let version = self.snapshot.signed().version;
        std::fs::write(
            self.metadata_dir()
                .join(self.file_name("snapshot", version)),
            &bytes,
        )
        .unwrap();
        let timestamp = self.timestamp.signed_mut();
        timestamp.version += 1;
        timestamp.meta.insert(
            "snapshot.json".into(),
            MetaFile::with_bytes(version, &bytes),
        );
        self.write_timestamp();
    }

    pub fn write_timestamp(&mut self) {
        self.timestamp.sign(&self.timestamp_key, false).unwrap();
        std::fs::write(
            self.metadata_dir().join("timestamp.json"),
            self.timestamp.to_bytes().unwrap(),
        )
        .unwrap();
    }

    pub fn add_target(&mut self, role: &str, path: &str, content: &[u8]) {
        let info = TargetFile::from_bytes(content);
        let (md, _) = self.roles.get_mut(role).unwrap();
        md.signed_mut().targets.insert(path.into(), info.clone());
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        let dir = self.dir.path().join("targets").join(parent);
        std::fs::create_dir_all(&dir).unwrap();
        let file = if self.consistent {
            format!("{}.{name}", &info.hashes["sha256"])
        } else {
            name.to_owned()
        };
        std::fs::write(dir.join(file), content).unwrap();
    }

    /// Delegates from `parent` to a new role `name` with its own key.
    pub fn delegate(&mut self, parent: &str, name: &str, paths: &[&str], terminating: bool) {
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let (md, _) = self.roles.get_mut(parent).unwrap();
        let delegations = md
            .signed_mut()
            .delegations
            .get_or_insert_with(|| Delegations {
                keys: BTreeMap::new(),
                roles: Some(Vec::new()),
                succinct_roles: None,
                unrecognized_fields: BTreeMap::new(),
            });
        delegations
            .keys
            .insert(key.keyid().clone(), key.public_key().clone());
        delegations.roles.as_mut().unwrap().push(DelegatedRole {
            name: name.into(),
            keyids: vec![key.keyid().clone()],
            threshold: 1,
            terminating,
            paths: Some(paths.iter().map(|p| (*p).to_owned()).collect()),
            path_hash_prefixes: None,
            unrecognized_fields: BTreeMap::new(),
        });
        self.keys.insert(name.into(), key);
        self.roles.insert(
            name.into(),
            (Metadata::new(Targets::new(in_days(30))), name.into()),
        );
    }

    /// A client trusting this repository's current root.
    pub fn client(&self) -> Client {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("metadata")).unwrap();
        std::fs::create_dir_all(dir.path().join("targets")).unwrap();
        std::fs::write(
            dir.path().join("metadata/root.json"),
            std::fs::read(self.metadata_dir().join("1.root.json")).unwrap(),
        )
        .unwrap();
        Client { dir }
    }

    pub fn fetcher(&self) -> CountingFetcher {
        CountingFetcher::new(self.dir.path())
    }
}

pub struct Client {
    pub dir: tempfile::TempDir,
}

impl Client {
    pub fn metadata(&self) -> PathBuf {
        self.dir.path().join("metadata")
    }
    pub fn targets(&self) -> PathBuf {
        self.dir.path().join("targets")
    }
    pub fn updater<'a>(
        &self,
        repo: &Repo,
        fetcher: &'a CountingFetcher,
        at: DateTime<Utc>,
    ) -> Updater<&'a CountingFetcher> {
        let mut config = UpdaterConfig::new(
            self.metadata(),
            DirectoryFetcher::new(repo.dir.path()).base_url("metadata"),
        );
        config.targets_url = Some(DirectoryFetcher::new(repo.dir.path()).base_url("targets"));
        Updater::new(config, fetcher, at).unwrap()
    }
    pub fn refresh(&self, repo: &Repo) -> Result<(), UpdateError> {
        let fetcher = repo.fetcher();
        self.updater(repo, &fetcher, now()).refresh()
    }
    pub fn stored(&self, role: &str) -> Option<Vec<u8>> {
        std::fs::read(self.metadata().join(format!("{role}.json"))).ok()
    }
}

pub fn trust_error(result: Result<(), UpdateError>) -> TrustError {
    match result {
        Err(UpdateError::Trust(e)) => e,
        other => panic!("expected a trust error, got {other:?}"),
    }
}
