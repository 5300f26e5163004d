//! Typosquat detection: does a crate or namespace name look like a trusted or well-known
//! one? The checks are the `typomania` crate's, wired as the public registry wires them
//! (its `src/typosquat/`): repeated, omitted and swapped characters, version suffixes,
//! bit flips, words swapped on `_`, keyboard typos (QWERTY, QWERTZ and AZERTY
//! neighbours, and `m`→`rn`, `w`→`vv`, `l`→`1`), and the affixes `api`, `cli`, `core`,
//! `lib`, `rs`, `rust` and `sys` joined by `-` or `_`.
//!
//! Names are compared as crates.io compares them, folded to ASCII lowercase with `-` as
//! `_`: `serde-json` *is* `serde_json`, not a squat of it. A name of the corpus itself is
//! never a squat.

use std::collections::HashMap;

use typomania::checks::{Bitflips, Check, Omitted, Squat, SwappedWords, Typos};
use typomania::{AuthorSet, Corpus, Harness, Package};

/// The well-known crate names shipped with tuf-crates (`tuf-core/data/well-known-crates.txt`,
/// whose header says where they come from).
pub const WELL_KNOWN_CRATES: &str = include_str!("../data/well-known-crates.txt");

/// The characters of a folded crate name.
const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz0123456789_";

/// The affixes a squat adds to a name (the public registry's list).
const AFFIXES: [&str; 7] = ["api", "cli", "core", "lib", "rs", "rust", "sys"];

/// Names in the file format of [`WELL_KNOWN_CRATES`]: one per line, `#` comments, blank
/// lines ignored.
pub fn parse_names(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// crates.io's folded form of a name.
pub fn fold(name: &str) -> String {
    name.to_ascii_lowercase().replace('-', "_")
}

/// A name no author of which is known: every corpus name it resembles is a possible squat.
struct Anonymous;

struct NoAuthors;

impl AuthorSet for NoAuthors {
    fn contains(&self, _author: &str) -> bool {
        false
    }
}

impl Package for Anonymous {
    fn authors(&self) -> &dyn AuthorSet {
        &NoAuthors
    }

    fn description(&self) -> Option<&str> {
        None
    }

    fn shared_authors(&self, _other: &dyn AuthorSet) -> bool {
        false
    }
}

/// The corpus: folded names, each with the spelling messages show.
struct Names {
    names: HashMap<String, String>,
    package: Anonymous,
}

impl Corpus for Names {
    fn contains_name(&self, name: &str) -> typomania::Result<bool> {
        Ok(self.names.contains_key(name))
    }

    fn get(&self, name: &str) -> typomania::Result<Option<&dyn Package>> {
        Ok(self
            .names
            .contains_key(name)
            .then_some(&self.package as &dyn Package))
    }
}

/// `NAME` with an affix before or after it, joined by `_` (`-` folds to it).
struct Affixes;

impl Check for Affixes {
    fn check(
        &self,
        corpus: &dyn Corpus,
        name: &str,
        package: &dyn Package,
    ) -> typomania::Result<Vec<Squat>> {
        let mut squats = Vec::new();
        for affix in AFFIXES {
            let stripped = [
                name.strip_suffix(&format!("_{affix}")),
                name.strip_prefix(&format!("{affix}_")),
            ];
            for base in stripped.into_iter().flatten() {
                if corpus.possible_squat(base, name, package)? {
                    squats.push(Squat::custom(&format!("adds the affix `{affix}`"), base));
                }
            }
        }
        Ok(squats)
    }
}

/// Keyboard typos: each key's neighbours on QWERTY, QWERTZ and AZERTY keyboards, and the
/// look-alikes the public registry adds.
fn typos() -> Vec<(char, Vec<String>)> {
    let rows = ["1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"];
    let mut table: HashMap<char, Vec<String>> = HashMap::new();
    let at = |row: usize, column: usize| -> Option<char> {
        rows.get(row).and_then(|r| r.chars().nth(column))
    };
    for (row, keys) in rows.iter().enumerate() {
        for (column, key) in keys.chars().enumerate() {
            let mut near = Vec::new();
            for (r, c) in [
                (Some(row), column.checked_sub(1)),
                (Some(row), Some(column + 1)),
                (row.checked_sub(1), Some(column)),
                (row.checked_sub(1), Some(column + 1)),
                (Some(row + 1), column.checked_sub(1)),
                (Some(row + 1), Some(column)),
            ] {
                if let (Some(r), Some(c)) = (r, c) {
                    if let Some(neighbour) = at(r, c) {
                        near.push(neighbour.to_string());
                    }
                }
            }
            table.insert(key, near);
        }
    }
    // QWERTZ swaps y and z; AZERTY swaps a/q and z/w and puts m beside l.
    for (key, other) in [
        ('y', "z"),
        ('z', "y"),
        ('a', "q"),
        ('q', "a"),
        ('z', "w"),
        ('w', "z"),
        ('m', "l"),
        ('l', "m"),
    ] {
        table.entry(key).or_default().push(other.to_owned());
    }
    // Look-alikes.
    for (key, other) in [('m', "rn"), ('w', "vv"), ('l', "1")] {
        table.entry(key).or_default().push(other.to_owned());
    }
    let mut typos: Vec<(char, Vec<String>)> = table.into_iter().collect();
    typos.sort();
    typos
}

/// What a checked name looks like.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LooksLike {
    /// The trusted or well-known name it resembles.
    pub name: String,
    /// How, in words: `swapped characters`, `a keyboard typo`, ...
    pub how: String,
}

/// Checks names against a corpus of trusted and well-known names.
pub struct SquatGuard {
    harness: Harness<Names>,
    /// Folded name → the spelling messages show.
    spellings: HashMap<String, String>,
}

impl std::fmt::Debug for SquatGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SquatGuard")
    }
}

impl SquatGuard {
    /// A guard whose corpus is `names` (any spelling; folded here).
    pub fn new<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Self {
        let mut folded: HashMap<String, String> = HashMap::new();
        for name in names {
            let name = name.as_ref();
            folded.entry(fold(name)).or_insert_with(|| name.to_owned());
        }
        let keys: Vec<String> = folded.keys().cloned().collect();
        let harness = Harness::builder()
            .with_check(Bitflips::new(ALPHABET, keys.iter().map(String::as_str)))
            .with_check(Omitted::new(ALPHABET))
            .with_check(SwappedWords::new("_"))
            .with_check(Typos::new(typos().into_iter()))
            .with_check(Affixes)
            .build(Names {
                names: folded.clone(),
                package: Anonymous,
            });
        Self {
            harness,
            spellings: folded,
        }
    }

    /// A guard whose corpus is the shipped well-known crates and `more`.
    pub fn with_well_known<S: AsRef<str>>(more: impl IntoIterator<Item = S>) -> Self {
        let mut names = parse_names(WELL_KNOWN_CRATES);
        names.extend(more.into_iter().map(|s| s.as_ref().to_owned()));
        Self::new(names)
    }

    /// The corpus names `name` looks like, and how; empty when it is one of them, or
    /// resembles none.
    pub fn looks_like(&self, name: &str) -> Vec<LooksLike> {
        let folded = fold(name);
        let Ok(squats) = self.harness.check_package(&folded, Box::new(Anonymous)) else {
            return Vec::new();
        };
        let mut found: Vec<LooksLike> = Vec::new();
        for squat in squats {
            let how = match &squat {
                Squat::Bitflip(_) => "one bit flipped".to_owned(),
                Squat::OmittedCharacter(_) => "a character left out".to_owned(),
                Squat::RepeatedCharacter(_) => "a character repeated".to_owned(),
                Squat::SwappedCharacters(_) => "swapped characters".to_owned(),
                Squat::SwappedWords(_) => "swapped words".to_owned(),
                Squat::Typo(_) => "a keyboard typo".to_owned(),
                Squat::Version(_) => "a version suffix".to_owned(),
                Squat::Custom { message, .. } => message.clone(),
            };
            let name = self
                .spellings
                .get(&fold(squat.package()))
                .cloned()
                .unwrap_or_else(|| squat.package().to_owned());
            if !found.iter().any(|f| f.name == name) {
                found.push(LooksLike { name, how });
            }
        }
        found
    }
}

/// `name` looks like … as one clause: "looks like `serde_json` (swapped characters)".
pub fn describe(found: &[LooksLike]) -> Option<String> {
    if found.is_empty() {
        return None;
    }
    let parts: Vec<String> = found
        .iter()
        .map(|f| format!("`{}` ({})", f.name, f.how))
        .collect();
    Some(format!("looks like {}", parts.join(", or ")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn guard() -> SquatGuard {
        SquatGuard::with_well_known(["parameters"])
    }

    fn how(name: &str) -> Vec<(String, String)> {
        guard()
            .looks_like(name)
            .into_iter()
            .map(|l| (l.name, l.how))
            .collect()
    }

    #[test]
    fn the_shipped_list_holds_the_most_used_crates() {
        let names = parse_names(WELL_KNOWN_CRATES);
        assert!(names.len() > 400, "{}", names.len());
        for name in [
            "serde",
            "serde_json",
            "tokio",
            "rand",
            "regex",
            "syn",
            "clap",
        ] {
            assert!(names.iter().any(|n| n == name), "{name}");
        }
    }

    #[test]
    fn each_kind_of_squat_is_named() {
        let cases = [
            ("serde_jsno", "serde_json", "swapped characters"),
            ("serdde", "serde", "a character repeated"),
            ("toko", "tokio", "a character left out"),
            ("regex2", "regex", "a version suffix"),
            ("json_serde", "serde_json", "swapped words"),
            ("tokio_rs", "tokio", "adds the affix `rs`"),
            ("sys-tokio", "tokio", "adds the affix `sys`"),
            ("rabd", "rand", "a keyboard typo"),
            ("parametres", "parameters", "swapped characters"),
        ];
        for (name, like, kind) in cases {
            let found = how(name);
            assert!(
                found.iter().any(|(n, h)| n == like && h == kind),
                "{name}: {found:?}"
            );
        }
        // A bit flip: 's' (0x73) and 'c' (0x63) differ in one bit.
        assert!(
            how("cerde")
                .iter()
                .any(|(n, h)| n == "serde" && h == "one bit flipped"),
            "{:?}",
            how("cerde")
        );
    }

    #[test]
    fn the_corpus_names_and_their_spellings_are_not_squats() {
        for name in [
            "serde_json",
            "serde-json",
            "Serde_Json",
            "tokio",
            "parameters",
        ] {
            assert_eq!(how(name), Vec::<(String, String)>::new(), "{name}");
        }
        assert!(how("a_name_nothing_resembles").is_empty());
        assert_eq!(
            describe(&guard().looks_like("serde_jsno")).unwrap(),
            "looks like `serde_json` (swapped characters)"
        );
        assert_eq!(describe(&[]), None);
    }
}
