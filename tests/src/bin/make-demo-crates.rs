//! `make-demo-crates DIR`: writes the example crates of the tuf-crates demo registry.
//!
//! The demo registry (`keys-example/`) publishes four releases:
//!
//! | release | signed by |
//! |---|---|
//! | `tufdemo` 0.1.0 | the namespace role `ns-tufdemo` (the maintainer's key) |
//! | `tufdemo` 0.2.0 | the namespace role `ns-tufdemo` (the maintainer's key) |
//! | `unclaimed-util` 1.0.0 | a fallback hash bin `unclaimed-XX` (the online key) |
//! | `unclaimed-app-helper` 0.3.0 | a fallback hash bin `unclaimed-XX` (the online key) |
//!
//! `unclaimed-app-helper` depends on `unclaimed-util ^1` and `tufdemo ^0.2`, so resolving
//! it walks a dependency chain across both kinds of role.
//!
//! For each release it writes `DIR/NAME-VERSION.crate` (built by
//! [`build_crate_tarball`], deterministic: the same bytes on every run and machine), and
//! for each crate the sparse-index file `DIR/index/<cargo's index path>` with one
//! [`index_line`] per version, oldest first, each ending in a newline. Existing files of
//! the same names are replaced; nothing else in `DIR` is touched.
//!
//! Regenerate the committed copy with
//! `cargo run -p tuf-crates-tests --bin make-demo-crates -- keys-example/crates`.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tuf_crates_tests::crate_tarball::{build_crate_tarball, index_line, Dependency};

/// One release of a demo crate.
struct DemoRelease {
    /// Crate name.
    name: &'static str,
    /// Version.
    version: &'static str,
    /// Dependencies on other demo crates.
    deps: &'static [Dependency<'static>],
    /// The content of `src/lib.rs`.
    lib_rs: &'static str,
}

/// The demo releases, grouped by crate, oldest version first within a crate.
const RELEASES: &[DemoRelease] = &[
    DemoRelease {
        name: "tufdemo",
        version: "0.1.0",
        deps: &[],
        lib_rs: "//! tufdemo 0.1.0: a crate of the tuf-crates demo registry, signed by the owner\n\
                 //! of the namespace `tufdemo`.\n\
                 \n\
                 /// A greeting for `name`.\n\
                 pub fn greet(name: &str) -> String {\n    \
                     format!(\"Hello, {name}!\")\n\
                 }\n",
    },
    DemoRelease {
        name: "tufdemo",
        version: "0.2.0",
        deps: &[],
        lib_rs: "//! tufdemo 0.2.0: a crate of the tuf-crates demo registry, signed by the owner\n\
                 //! of the namespace `tufdemo`.\n\
                 \n\
                 /// A greeting for `name`.\n\
                 pub fn greet(name: &str) -> String {\n    \
                     format!(\"Hello, {name}, from a verified crate!\")\n\
                 }\n\
                 \n\
                 /// The version of this crate.\n\
                 pub fn version() -> &'static str {\n    \
                     \"0.2.0\"\n\
                 }\n",
    },
    DemoRelease {
        name: "unclaimed-util",
        version: "1.0.0",
        deps: &[],
        lib_rs: "//! unclaimed-util 1.0.0: a crate of the tuf-crates demo registry outside any\n\
                 //! namespace, signed by a fallback hash bin.\n\
                 \n\
                 /// `text` in upper case.\n\
                 pub fn shout(text: &str) -> String {\n    \
                     text.to_uppercase()\n\
                 }\n",
    },
    DemoRelease {
        name: "unclaimed-app-helper",
        version: "0.3.0",
        deps: &[
            Dependency {
                name: "unclaimed-util",
                req: "^1",
            },
            Dependency {
                name: "tufdemo",
                req: "^0.2",
            },
        ],
        lib_rs: "//! unclaimed-app-helper 0.3.0: a crate of the tuf-crates demo registry that\n\
                 //! depends on a namespace crate and a fallback crate.\n\
                 \n\
                 /// `tufdemo`'s greeting for `name`, shouted.\n\
                 pub fn welcome(name: &str) -> String {\n    \
                     unclaimed_util::shout(&tufdemo::greet(name))\n\
                 }\n",
    },
];

/// The path of a crate's file in a cargo registry index: `1/x`, `2/xy`, `3/x/xyz`,
/// otherwise `ab/cd/abcdef`, all lowercase.
fn index_path(name: &str) -> PathBuf {
    let lower = name.to_ascii_lowercase();
    let prefix = match lower.len() {
        0 => PathBuf::new(),
        1 => PathBuf::from("1"),
        2 => PathBuf::from("2"),
        3 => Path::new("3").join(lower.get(..1).unwrap_or_default()),
        _ => {
            Path::new(lower.get(..2).unwrap_or_default()).join(lower.get(2..4).unwrap_or_default())
        }
    };
    prefix.join(lower)
}

/// Writes `bytes` to `path`, creating its directory; the message says which file failed.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Writes every demo tarball and index file under `dir`; returns the files written.
fn write_demo_crates(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    // Index files, by crate name, in the order the crates first appear.
    let mut index: Vec<(&str, String)> = Vec::new();
    for release in RELEASES {
        let tarball =
            build_crate_tarball(release.name, release.version, release.deps, release.lib_rs);
        let path = dir.join(format!("{}-{}.crate", release.name, release.version));
        write_file(&path, &tarball)?;
        written.push(path);
        let line = index_line(release.name, release.version, release.deps, &tarball);
        match index.iter_mut().find(|(name, _)| *name == release.name) {
            Some((_, lines)) => {
                lines.push_str(&line);
                lines.push('\n');
            }
            None => index.push((release.name, format!("{line}\n"))),
        }
    }
    for (name, lines) in index {
        let path = dir.join("index").join(index_path(name));
        write_file(&path, lines.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = match args.as_slice() {
        [dir] if dir != "-h" && dir != "--help" => PathBuf::from(dir),
        _ => {
            eprintln!(
                "usage: make-demo-crates DIR\n\n\
                 Writes the tuf-crates demo registry's example crates into DIR: one\n\
                 NAME-VERSION.crate per release and one sparse-index file per crate under\n\
                 DIR/index/. The output is deterministic."
            );
            return ExitCode::from(2);
        }
    };
    match write_demo_crates(&dir) {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("make-demo-crates: error: {message}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths_follow_cargo() {
        assert_eq!(index_path("x"), Path::new("1/x"));
        assert_eq!(index_path("xy"), Path::new("2/xy"));
        assert_eq!(index_path("xyz"), Path::new("3/x/xyz"));
        assert_eq!(index_path("Tufdemo"), Path::new("tu/fd/tufdemo"));
        assert_eq!(
            index_path("unclaimed-util"),
            Path::new("un/cl/unclaimed-util")
        );
    }
}
