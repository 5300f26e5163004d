//! An upstream sparse registry in a directory: `index/` (config.json and index files)
//! and `dl/{crate}/{version}/download` tarballs, with its releases signed in a
//! [`TestRepo`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tuf_core::fs::write_atomic;
use tuf_crates_tests::crate_tarball::{
    build_crate_tarball, build_crate_tarball_with_files, index_line, Dependency,
};

use super::tuf_repo::TestRepo;

/// The index file path of a crate, relative to the index root, as cargo asks for it:
/// `1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd…`, lowercased.
pub fn index_path(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    match name.len() {
        0 => panic!("empty crate name"),
        1 => format!("1/{name}"),
        2 => format!("2/{name}"),
        3 => format!("3/{}/{name}", &name[..1]),
        _ => format!("{}/{}/{name}", &name[..2], &name[2..4]),
    }
}

fn dependencies<'a>(deps: &'a [(&'a str, &'a str)]) -> Vec<Dependency<'a>> {
    deps.iter()
        .map(|&(name, req)| Dependency { name, req })
        .collect()
}

/// An upstream registry directory plus the TUF repository that signs its releases.
pub struct Registry {
    dir: tempfile::TempDir,
    /// The TUF repository releases are signed in.
    pub repo: TestRepo,
    signed: BTreeMap<(String, String), Vec<u8>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry with a new [`TestRepo`]. `index/config.json` is written by
    /// [`Self::write_config`] ([`super::Upstream::start`] does it with its own URL).
    pub fn new() -> Self {
        Self::with_repo(TestRepo::new())
    }

    /// An empty registry whose releases are signed in `repo`.
    pub fn with_repo(repo: TestRepo) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("index")).expect("index dir");
        std::fs::create_dir_all(dir.path().join("dl")).expect("dl dir");
        Self {
            dir,
            repo,
            signed: BTreeMap::new(),
        }
    }

    /// The registry directory (holding `index/` and `dl/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `index/`: config.json and the index files.
    pub fn index_dir(&self) -> PathBuf {
        self.dir.path().join("index")
    }

    /// `dl/`: tarballs at `dl/{crate}/{version}/download`.
    pub fn dl_dir(&self) -> PathBuf {
        self.dir.path().join("dl")
    }

    /// Other files the upstream serves under `/files/` (a team's list of developers, ...).
    pub fn files_dir(&self) -> PathBuf {
        self.dir.path().join("files")
    }

    /// Writes `index/config.json` as `{"dl":"<dl>"}` (cargo appends
    /// `/{crate}/{version}/download`).
    pub fn write_config(&self, dl: &str) {
        let config = serde_json::json!({ "dl": dl });
        write_atomic(
            &self.index_dir().join("config.json"),
            config.to_string().as_bytes(),
        )
        .expect("write config.json");
    }

    /// The index file of `name`.
    pub fn index_file(&self, name: &str) -> PathBuf {
        self.index_dir().join(index_path(name))
    }

    /// Where the tarball of `name` `version` is served from.
    pub fn tarball_path(&self, name: &str, version: &str) -> PathBuf {
        self.dl_dir().join(name).join(version).join("download")
    }

    /// The index lines of `name` (empty if it has no index file).
    pub fn index_lines(&self, name: &str) -> Vec<String> {
        match std::fs::read_to_string(self.index_file(name)) {
            Ok(text) => text
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("reading the index file of {name}: {e}"),
        }
    }

    /// The parsed index entry of `name` `version`.
    pub fn index_entry(&self, name: &str, version: &str) -> serde_json::Value {
        self.index_lines(name)
            .iter()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("index JSON"))
            .find(|entry| entry["vers"] == version)
            .unwrap_or_else(|| panic!("{name} {version} is not in the index"))
    }

    /// The `cksum` the index lists for `name` `version`.
    pub fn cksum(&self, name: &str, version: &str) -> String {
        self.index_entry(name, version)["cksum"]
            .as_str()
            .expect("cksum string")
            .to_owned()
    }

    fn write_index_lines(&self, name: &str, lines: &[String]) {
        let path = self.index_file(name);
        std::fs::create_dir_all(path.parent().expect("index parent")).expect("index dirs");
        let mut text = lines.join("\n");
        text.push('\n');
        // Atomically: a server may be reading it.
        write_atomic(&path, text.as_bytes()).expect("write index file");
    }

    /// Replaces the line of `version` (or appends one) in `name`'s index file.
    fn put_index_line(&self, name: &str, version: &str, line: String) {
        let mut lines = self.index_lines(name);
        let existing = lines.iter().position(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("index JSON")["vers"] == version
        });
        match existing {
            Some(at) => lines[at] = line,
            None => lines.push(line),
        }
        self.write_index_lines(name, &lines);
    }

    fn write_tarball(&self, name: &str, version: &str, tarball: &[u8]) {
        let path = self.tarball_path(name, version);
        std::fs::create_dir_all(path.parent().expect("tarball parent")).expect("dl dirs");
        write_atomic(&path, tarball).expect("write tarball");
    }

    /// Builds the tarball of a library crate, writes its index line and tarball
    /// upstream, and signs it in the TUF repository (added, signed, published).
    /// Returns the tarball.
    pub fn publish(
        &mut self,
        name: &str,
        version: &str,
        deps: &[(&str, &str)],
        lib_rs: &str,
    ) -> Vec<u8> {
        let tarball = self.publish_unsigned(name, version, deps, lib_rs);
        self.repo.add_release(name, version, &tarball);
        self.repo.sign_and_publish();
        self.signed
            .insert((name.to_owned(), version.to_owned()), tarball.clone());
        tarball
    }

    /// Like [`Self::publish`] but only upstream: no TUF repository entry.
    pub fn publish_unsigned(
        &mut self,
        name: &str,
        version: &str,
        deps: &[(&str, &str)],
        lib_rs: &str,
    ) -> Vec<u8> {
        let deps = dependencies(deps);
        let tarball = build_crate_tarball(name, version, &deps, lib_rs);
        self.write_tarball(name, version, &tarball);
        self.put_index_line(name, version, index_line(name, version, &deps, &tarball));
        tarball
    }

    /// Like [`Self::publish_unsigned`] with a build script: `build.rs`, which cargo runs
    /// before it compiles the crate, and an empty `src/lib.rs`.
    pub fn publish_unsigned_with_build_script(
        &mut self,
        name: &str,
        version: &str,
        build_rs: &str,
    ) -> Vec<u8> {
        let tarball = build_crate_tarball_with_files(
            name,
            version,
            &[],
            &[("build.rs", build_rs), ("src/lib.rs", "")],
        );
        self.write_tarball(name, version, &tarball);
        self.put_index_line(name, version, index_line(name, version, &[], &tarball));
        tarball
    }

    /// Adds `dependency` (a JSON object such as cargo's index lists under `deps`) to the
    /// index line of `name` `version`, leaving its tarball and `cksum` alone: what an
    /// upstream that controls only the index can do.
    pub fn add_index_dependency(&self, name: &str, version: &str, dependency: serde_json::Value) {
        let mut entry = self.index_entry(name, version);
        entry["deps"]
            .as_array_mut()
            .expect("deps array")
            .push(dependency);
        self.put_index_line(name, version, entry.to_string());
    }

    /// Publishes a library crate like [`Self::publish`], but its index line (upstream's
    /// and the signed entry alike) also names `dependency`, which its Cargo.toml does not:
    /// what a registry holding the online key can sign for an unclaimed crate.
    pub fn publish_with_index_dependency(
        &mut self,
        name: &str,
        version: &str,
        lib_rs: &str,
        dependency: serde_json::Value,
    ) -> Vec<u8> {
        let tarball = self.publish_unsigned(name, version, &[], lib_rs);
        self.add_index_dependency(name, version, dependency);
        let line = self
            .index_lines(name)
            .into_iter()
            .find(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("index JSON")["vers"] == version
            })
            .expect("the line just written");
        let entry =
            tuf_core::index_entry::IndexEntry::parse_line(line.as_bytes()).expect("an index entry");
        self.repo
            .add_release_with_entry(name, version, &tarball, entry);
        self.repo.sign_and_publish();
        self.signed
            .insert((name.to_owned(), version.to_owned()), tarball.clone());
        tarball
    }

    /// The tarball bytes signed in the TUF repository for `name` `version`.
    pub fn signed_tarball(&self, name: &str, version: &str) -> Vec<u8> {
        self.signed
            .get(&(name.to_owned(), version.to_owned()))
            .unwrap_or_else(|| panic!("{name} {version} was not published signed"))
            .clone()
    }

    /// The sha256 (hex) of the signed tarball of `name` `version`.
    pub fn signed_sha256(&self, name: &str, version: &str) -> String {
        hex::encode(Sha256::digest(self.signed_tarball(name, version)))
    }

    /// The tarball upstream serves now for `name` `version`.
    pub fn tarball(&self, name: &str, version: &str) -> Vec<u8> {
        std::fs::read(self.tarball_path(name, version)).expect("read tarball")
    }

    fn deps_of(&self, name: &str, version: &str) -> Vec<(String, String)> {
        self.index_entry(name, version)["deps"]
            .as_array()
            .expect("deps array")
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().expect("dep name").to_owned(),
                    d["req"].as_str().expect("dep req").to_owned(),
                )
            })
            .collect()
    }

    fn rebuild(&self, name: &str, version: &str, lib_rs: &str) -> (Vec<u8>, String) {
        let owned = self.deps_of(name, version);
        let pairs: Vec<(&str, &str)> = owned
            .iter()
            .map(|(n, r)| (n.as_str(), r.as_str()))
            .collect();
        let deps = dependencies(&pairs);
        let tarball = build_crate_tarball(name, version, &deps, lib_rs);
        let line = index_line(name, version, &deps, &tarball);
        (tarball, line)
    }

    /// Replaces the tarball upstream with a different (valid) one, keeping the index
    /// `cksum`: a corrupted or tampered download. Returns the new bytes.
    pub fn tamper_tarball(&self, name: &str, version: &str) -> Vec<u8> {
        let (tarball, _) = self.rebuild(
            name,
            version,
            "// tampered with after publication\npub const TAMPERED: bool = true;\n",
        );
        self.write_tarball(name, version, &tarball);
        tarball
    }

    /// Replaces the tarball upstream with a forged release of exactly the signed length:
    /// a valid `.crate` whose `src/lib.rs` is one of `candidates` (the first whose
    /// tarball is shorter than the signed one), padded to the signed length with a gzip
    /// comment (RFC 1952 `FCOMMENT`, which every decoder skips). The index `cksum` stays.
    /// Only the digest check can tell it from the signed tarball. Returns the new bytes.
    pub fn forge_tarball_of_signed_length(
        &self,
        name: &str,
        version: &str,
        candidates: &[&str],
    ) -> Vec<u8> {
        let signed_length = self.signed_tarball(name, version).len();
        let forged = candidates
            .iter()
            .map(|lib_rs| self.rebuild(name, version, lib_rs).0)
            .find(|tarball| tarball.len() < signed_length)
            .expect("a candidate whose tarball is shorter than the signed one");
        // The gzip header is 10 bytes; flate2 writes no optional fields (FLG = 0).
        assert_eq!(forged[3], 0, "FLG");
        let mut padded = forged[..10].to_vec();
        padded[3] |= 0x10; // FCOMMENT: a zero-terminated comment follows the header.
        padded.extend(std::iter::repeat_n(b'x', signed_length - forged.len() - 1));
        padded.push(0);
        padded.extend_from_slice(&forged[10..]);
        assert_eq!(padded.len(), signed_length);
        self.write_tarball(name, version, &padded);
        padded
    }

    /// Replaces the tarball and the index line's `cksum` with a release built from
    /// `lib_rs` (same name, version and dependencies): a malicious registry. Returns the
    /// new bytes.
    pub fn replace_release(&self, name: &str, version: &str, lib_rs: &str) -> Vec<u8> {
        let (tarball, line) = self.rebuild(name, version, lib_rs);
        self.write_tarball(name, version, &tarball);
        self.put_index_line(name, version, line);
        tarball
    }

    /// Rewrites upstream's line of `name` `version` with `edit` applied to its JSON (the
    /// tarball and the signed entry stay as they are): an upstream that controls only
    /// the index.
    pub fn edit_index_line(
        &self,
        name: &str,
        version: &str,
        edit: impl FnOnce(&mut serde_json::Value),
    ) {
        let mut entry = self.index_entry(name, version);
        edit(&mut entry);
        self.put_index_line(name, version, entry.to_string());
    }

    /// Drops upstream's line of `name` `version`: an upstream withholding a release.
    pub fn remove_index_line(&self, name: &str, version: &str) {
        let lines: Vec<String> = self
            .index_lines(name)
            .into_iter()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("index JSON")["vers"] != version
            })
            .collect();
        self.write_index_lines(name, &lines);
    }

    /// Removes upstream's whole index file of `name`: upstream then answers 404.
    pub fn remove_index_file(&self, name: &str) {
        std::fs::remove_file(self.index_file(name)).expect("remove the index file");
    }

    /// Sets the `yanked` flag of `name` `version` in the index (the only field that
    /// changes after publication), keeping the rest of the line byte for byte.
    pub fn set_yanked(&self, name: &str, version: &str, yanked: bool) {
        let line = self
            .index_lines(name)
            .into_iter()
            .find(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("index JSON")["vers"] == version
            })
            .unwrap_or_else(|| panic!("{name} {version} is not in the index"));
        let (from, to) = if yanked {
            ("\"yanked\":false", "\"yanked\":true")
        } else {
            ("\"yanked\":true", "\"yanked\":false")
        };
        self.put_index_line(name, version, line.replace(from, to));
    }
}
