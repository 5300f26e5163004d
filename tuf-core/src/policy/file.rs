//! The trust policy file: TOML, read strictly, with the line of every mistake
//! (spec/trust-policy.md, "The file").
//!
//! A policy names trusted developers by key (with the label messages use), globally or
//! for some crates or namespaces; imports other teams' lists of developers (not
//! transitively: an imported file's own imports, exceptions and rule are not taken);
//! holds exceptions (a crate, a version requirement and the reason); and sets the rule.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The largest policy file read, imports included (each).
pub const MAX_POLICY_BYTES: u64 = 4 * 1024 * 1024;

/// How deep imports may nest before the policy is refused. Imports are not transitive,
/// so only a policy's own imports are read: this bounds nothing else.
const MAX_IMPORTS: usize = 64;

/// Why a policy cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is longer than [`MAX_POLICY_BYTES`].
    #[error("{}: longer than {MAX_POLICY_BYTES} bytes", path.display())]
    TooLong {
        /// The file.
        path: PathBuf,
    },
    /// Not valid TOML, or not a policy (an unknown key, a value of the wrong type).
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line (1-based) of the mistake, 0 when the parser gives none.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A value breaks a rule of the format (a keyid that is not 64 hex digits, a version
    /// requirement cargo would not read, ...).
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line (1-based) of the table holding the value.
        line: usize,
        /// What is wrong, and what to write instead.
        message: String,
    },
    /// More imports than [`MAX_IMPORTS`].
    #[error("{}: more than {MAX_IMPORTS} imports", path.display())]
    TooManyImports {
        /// The file.
        path: PathBuf,
    },
}

/// Whether dependencies must be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DependencyRule {
    /// Every normal and build dependency must have a trusted version matching its
    /// requirement (dev-dependencies are exempt).
    Trusted,
    /// Dependencies are not judged.
    Any,
}

/// How optional dependencies are judged, with [`DependencyRule::Trusted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptionalDependencies {
    /// Like the others: a feature may switch them on at any time.
    Trusted,
    /// Not judged.
    Exempt,
}

/// The rule's settings (`[rule]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rule {
    /// How many distinct trusted developers must have attested a release.
    #[serde(default = "one")]
    pub attestations: usize,
    /// Whether `review` attestations count beside `release` ones.
    #[serde(default = "yes")]
    pub reviews_count: bool,
    /// Whether dependencies must be trusted.
    #[serde(default = "trusted_dependencies")]
    pub dependencies: DependencyRule,
    /// How optional dependencies are judged.
    #[serde(default = "trusted_optional")]
    pub optional_dependencies: OptionalDependencies,
}

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn trusted_dependencies() -> DependencyRule {
    DependencyRule::Trusted
}
fn trusted_optional() -> OptionalDependencies {
    OptionalDependencies::Trusted
}

impl Default for Rule {
    fn default() -> Self {
        Self {
            attestations: one(),
            reviews_count: yes(),
            dependencies: trusted_dependencies(),
            optional_dependencies: trusted_optional(),
        }
    }
}

/// A trusted developer: a key, its label, and where it is trusted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrustedDeveloper {
    /// The label messages use (`alice`): never what trust is decided by.
    pub label: String,
    /// The TUF keyid of the developer's key, lowercase hex.
    pub keyid: String,
    /// Crates it is trusted for, by cargo's folded name (`foo-bar` is `foo_bar`); with
    /// `namespaces` empty too, every crate.
    pub crates: BTreeSet<String>,
    /// Namespaces it is trusted for ([`crate::layout::namespace_of`]).
    pub namespaces: BTreeSet<String>,
    /// Where it was declared: the file, and the import's name when imported.
    pub source: String,
    /// The line of its `[[developer]]` table.
    pub line: usize,
}

impl TrustedDeveloper {
    /// Whether this developer is trusted for crate `name`.
    pub fn covers(&self, name: &str) -> bool {
        if self.crates.is_empty() && self.namespaces.is_empty() {
            return true;
        }
        if self.crates.contains(&fold_name(name)) {
            return true;
        }
        crate::layout::namespace_of(name).is_ok_and(|ns| self.namespaces.contains(&ns))
    }
}

/// The first 8 characters of a keyid.
pub fn keyid_prefix(keyid: &str) -> &str {
    keyid.get(..8).unwrap_or(keyid)
}

/// An exception: one crate's versions admitted without attestations, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Exception {
    /// The crate, by cargo's folded name.
    pub crate_name: String,
    /// The versions admitted.
    #[serde(serialize_with = "as_string")]
    pub version: semver::VersionReq,
    /// Why: shown wherever the exception is used.
    pub reason: String,
    /// The line of its `[[exception]]` table.
    pub line: usize,
}

fn as_string<S: serde::Serializer, T: std::fmt::Display>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// A policy, imports resolved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Policy {
    /// The file it was read from.
    pub path: PathBuf,
    /// The rule's settings.
    pub rule: Rule,
    /// Every trusted developer, the file's own then each import's.
    pub developers: Vec<TrustedDeveloper>,
    /// The exceptions.
    pub exceptions: Vec<Exception>,
    /// What reading it noticed and did not refuse (an import's own imports, which are
    /// not followed).
    pub warnings: Vec<String>,
}

/// Cargo's folded crate name: ASCII lowercase with `-` as `_` (crates.io treats `foo-bar`
/// and `Foo_Bar` as one name).
pub fn fold_name(name: &str) -> String {
    name.to_ascii_lowercase().replace('-', "_")
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyToml {
    #[serde(default)]
    rule: Option<toml::Spanned<Rule>>,
    #[serde(default)]
    developer: Vec<toml::Spanned<DeveloperToml>>,
    #[serde(default)]
    import: Vec<toml::Spanned<ImportToml>>,
    #[serde(default)]
    exception: Vec<toml::Spanned<ExceptionToml>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeveloperToml {
    label: String,
    key: String,
    #[serde(default)]
    crates: Vec<String>,
    #[serde(default)]
    namespaces: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportToml {
    name: String,
    file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptionToml {
    #[serde(rename = "crate")]
    crate_name: String,
    version: String,
    reason: String,
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |before| {
        before.bytes().filter(|&b| b == b'\n').count() + 1
    })
}

fn read(path: &Path) -> Result<String, PolicyError> {
    let file = std::fs::File::open(path).map_err(|source| PolicyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let bytes = crate::fs::read_bounded(file, MAX_POLICY_BYTES).map_err(|e| match e {
        crate::fs::BoundedReadError::TooLong { .. } => PolicyError::TooLong {
            path: path.to_owned(),
        },
        crate::fs::BoundedReadError::Io(source) => PolicyError::Read {
            path: path.to_owned(),
            source,
        },
    })?;
    String::from_utf8(bytes).map_err(|_| PolicyError::Syntax {
        path: path.to_owned(),
        line: 0,
        message: "not UTF-8 text".into(),
    })
}

fn parse(path: &Path, text: &str) -> Result<PolicyToml, PolicyError> {
    toml::from_str(text).map_err(|error: toml::de::Error| PolicyError::Syntax {
        path: path.to_owned(),
        line: error.span().map_or(0, |span| line_of(text, span.start)),
        message: error.message().trim().to_owned(),
    })
}

/// Checks and converts the developers of one file.
fn developers(
    path: &Path,
    text: &str,
    declared: Vec<toml::Spanned<DeveloperToml>>,
    source: &str,
) -> Result<Vec<TrustedDeveloper>, PolicyError> {
    let mut out = Vec::with_capacity(declared.len());
    for spanned in declared {
        let line = line_of(text, spanned.span().start);
        let developer = spanned.into_inner();
        let invalid = |message: String| PolicyError::Invalid {
            path: path.to_owned(),
            line,
            message,
        };
        crate::keys::validate_label(&developer.label)
            .map_err(|e| invalid(format!("label {:?}: {e}", developer.label)))?;
        let keyid = developer.key.to_ascii_lowercase();
        if keyid.len() != 64 || !keyid.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(format!(
                "key {:?} of {}: a key is named by its TUF keyid, 64 hex digits (`tuf-verifier \
                 explain` and `tuf-signer key show` print it)",
                developer.key, developer.label
            )));
        }
        let mut crates = BTreeSet::new();
        for name in developer.crates {
            crate::layout::validate_crate_name(&name)
                .map_err(|e| invalid(format!("crates: {name:?}: {e}")))?;
            crates.insert(fold_name(&name));
        }
        let mut namespaces = BTreeSet::new();
        for namespace in developer.namespaces {
            crate::layout::validate_namespace(&namespace)
                .map_err(|e| invalid(format!("namespaces: {namespace:?}: {e}")))?;
            namespaces.insert(crate::layout::canonical_namespace(&namespace));
        }
        out.push(TrustedDeveloper {
            label: developer.label,
            keyid,
            crates,
            namespaces,
            source: source.to_owned(),
            line,
        });
    }
    Ok(out)
}

impl Policy {
    /// Reads the policy at `path` and the lists it imports (paths relative to it).
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = read(path)?;
        Self::from_text(path, &text)
    }

    /// Reads a policy from `text`, as if from `path` (imports are read relative to it).
    pub fn from_text(path: &Path, text: &str) -> Result<Self, PolicyError> {
        let file = parse(path, text)?;
        let rule = file.rule.map(toml::Spanned::into_inner).unwrap_or_default();
        if rule.attestations == 0 {
            let line = parse_rule_line(text);
            return Err(PolicyError::Invalid {
                path: path.to_owned(),
                line,
                message: "attestations = 0 would trust every signed release: write at least 1, \
                          or remove the policy to trust what the registry signed"
                    .into(),
            });
        }
        let source = path.display().to_string();
        let mut developers_all = developers(path, text, file.developer, &source)?;
        let mut exceptions = Vec::with_capacity(file.exception.len());
        for spanned in file.exception {
            let line = line_of(text, spanned.span().start);
            let exception = spanned.into_inner();
            let invalid = |message: String| PolicyError::Invalid {
                path: path.to_owned(),
                line,
                message,
            };
            crate::layout::validate_crate_name(&exception.crate_name)
                .map_err(|e| invalid(format!("crate {:?}: {e}", exception.crate_name)))?;
            let version = semver::VersionReq::parse(&exception.version).map_err(|e| {
                invalid(format!(
                    "version {:?}: {e} (write a requirement as in Cargo.toml, such as \"=1.2.3\")",
                    exception.version
                ))
            })?;
            if exception.reason.trim().is_empty() {
                return Err(invalid(format!(
                    "the exception for {} has an empty reason: say why it is admitted",
                    exception.crate_name
                )));
            }
            exceptions.push(Exception {
                crate_name: fold_name(&exception.crate_name),
                version,
                reason: exception.reason,
                line,
            });
        }
        if file.import.len() > MAX_IMPORTS {
            return Err(PolicyError::TooManyImports {
                path: path.to_owned(),
            });
        }
        let mut warnings = Vec::new();
        let base = path.parent().unwrap_or(Path::new("."));
        for spanned in file.import {
            let line = line_of(text, spanned.span().start);
            let import = spanned.into_inner();
            let import_path = base.join(&import.file);
            let imported_text = read(&import_path)?;
            let imported = parse(&import_path, &imported_text)?;
            if !imported.import.is_empty() {
                warnings.push(format!(
                    "{}:{line}: import {:?}: its own {} import(s) are not followed (imports are \
                     not transitive): import them here if you trust them",
                    path.display(),
                    import.name,
                    imported.import.len()
                ));
            }
            if !imported.exception.is_empty() || imported.rule.is_some() {
                warnings.push(format!(
                    "{}:{line}: import {:?}: only its developers are imported; its rule and \
                     exceptions are its own",
                    path.display(),
                    import.name
                ));
            }
            let source = format!("import {:?} ({})", import.name, import_path.display());
            developers_all.extend(developers(
                &import_path,
                &imported_text,
                imported.developer,
                &source,
            )?);
        }
        Ok(Self {
            path: path.to_owned(),
            rule,
            developers: developers_all,
            exceptions,
            warnings,
        })
    }

    /// The developers trusted for crate `name` with the key `keyid`.
    pub fn trusted_for<'a>(
        &'a self,
        name: &'a str,
        keyid: &'a str,
    ) -> impl Iterator<Item = &'a TrustedDeveloper> + 'a {
        self.developers
            .iter()
            .filter(move |d| d.keyid.eq_ignore_ascii_case(keyid) && d.covers(name))
    }

    /// The exception admitting `name` `version`, if any.
    pub fn exception_for(&self, name: &str, version: &semver::Version) -> Option<&Exception> {
        let folded = fold_name(name);
        self.exceptions
            .iter()
            .find(|e| e.crate_name == folded && e.version.matches(version))
    }
}

/// The line of the `[rule]` table, for a message about it.
fn parse_rule_line(text: &str) -> usize {
    text.lines()
        .position(|l| l.trim() == "[rule]")
        .map_or(0, |i| i + 1)
}

/// The TOML lines that make `label` (with `keyid`) a trusted developer.
pub fn developer_lines(label: &str, keyid: &str) -> String {
    format!("[[developer]]\nlabel = {label:?}\nkey = \"{keyid}\"\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    const ALICE: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
    const BOB: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";

    fn policy(text: &str) -> Result<Policy, PolicyError> {
        Policy::from_text(Path::new("/nonexistent/policy.toml"), text)
    }

    #[test]
    fn an_empty_policy_has_the_default_rule_and_trusts_nobody() {
        let p = policy("").unwrap();
        assert_eq!(p.rule, Rule::default());
        assert_eq!(p.rule.attestations, 1);
        assert!(p.rule.reviews_count);
        assert_eq!(p.rule.dependencies, DependencyRule::Trusted);
        assert!(p.developers.is_empty() && p.exceptions.is_empty());
    }

    #[test]
    fn developers_are_trusted_by_key_for_their_scope() {
        let text = format!(
            "[rule]\nattestations = 2\nreviews-count = false\noptional-dependencies = \"exempt\"\n\n\
             [[developer]]\nlabel = \"alice\"\nkey = \"{}\"\n\n\
             [[developer]]\nlabel = \"bob\"\nkey = \"{BOB}\"\ncrates = [\"Serde-Json\"]\nnamespaces = [\"tokio\"]\n",
            ALICE.to_ascii_uppercase()
        );
        let p = policy(&text).unwrap();
        assert_eq!(p.rule.attestations, 2);
        assert!(!p.rule.reviews_count);
        assert_eq!(p.rule.optional_dependencies, OptionalDependencies::Exempt);
        let alice = &p.developers[0];
        assert_eq!(alice.keyid, ALICE, "keyids are kept lowercase");
        assert_eq!(alice.line, 6);
        assert!(alice.covers("anything") && alice.covers("tokio::net"));
        let bob = &p.developers[1];
        assert!(bob.covers("serde_json") && bob.covers("serde-json") && bob.covers("SERDE_JSON"));
        assert!(bob.covers("tokio") && bob.covers("tokio::net"));
        assert!(!bob.covers("serde") && !bob.covers("tokio_util"));
        assert_eq!(p.trusted_for("serde", BOB).count(), 0);
        assert_eq!(p.trusted_for("serde_json", BOB).count(), 1);
        assert_eq!(
            p.trusted_for("serde", &ALICE.to_ascii_uppercase()).count(),
            1
        );
        assert_eq!(p.trusted_for("serde", "00").count(), 0);
    }

    #[test]
    fn mistakes_are_refused_with_their_line() {
        let cases = [
            ("[rule]\nattestations = \"two\"\n", 2, "invalid type"),
            ("[rule]\nattestation = 2\n", 2, "unknown field"),
            (
                "[[developer]]\nlabel = \"alice\"\n",
                1,
                "missing field `key`",
            ),
            (
                "\n[[developer]]\nlabel = \"alice\"\nkey = \"ab12\"\n",
                2,
                "64 hex digits",
            ),
            ("[[developer]]\nlabel = \"\"\nkey = \"ab\"\n", 1, "label"),
            (
                "[[exception]]\ncrate = \"x\"\nversion = \"not a version\"\nreason = \"r\"\n",
                1,
                "requirement",
            ),
            (
                "[[exception]]\ncrate = \"x\"\nversion = \"=1.0.0\"\nreason = \"  \"\n",
                1,
                "empty reason",
            ),
            ("[rule]\nattestations = 0\n", 1, "at least 1"),
            ("[unknown]\n", 1, "unknown field"),
            ("[[developer]\n", 1, ""),
        ];
        for (text, line, needle) in cases {
            let error = policy(text).unwrap_err();
            let (found_line, message) = match &error {
                PolicyError::Syntax { line, message, .. }
                | PolicyError::Invalid { line, message, .. } => (*line, message.clone()),
                other => panic!("{text:?}: {other}"),
            };
            assert_eq!(found_line, line, "{text:?}: {error}");
            assert!(message.contains(needle), "{text:?}: {error}");
            assert!(error
                .to_string()
                .starts_with(&format!("/nonexistent/policy.toml:{line}: ")));
        }
    }

    #[test]
    fn exceptions_admit_matching_versions_of_their_crate() {
        let p = policy(
            "[[exception]]\ncrate = \"Parameters\"\nversion = \"=0.3.1\"\nreason = \"audited by hand, SEC-12\"\n",
        )
        .unwrap();
        let v = |s: &str| semver::Version::parse(s).unwrap();
        let e = p.exception_for("parameters", &v("0.3.1")).unwrap();
        assert_eq!(e.reason, "audited by hand, SEC-12");
        assert!(p.exception_for("parameters", &v("0.3.2")).is_none());
        assert!(p.exception_for("other", &v("0.3.1")).is_none());
    }

    #[test]
    fn imports_bring_developers_only_and_are_not_transitive() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("team.toml"),
            format!(
                "[rule]\nattestations = 3\n[[import]]\nname = \"deeper\"\nfile = \"deeper.toml\"\n\
                 [[developer]]\nlabel = \"bob\"\nkey = \"{BOB}\"\n\
                 [[exception]]\ncrate = \"x\"\nversion = \"*\"\nreason = \"theirs\"\n"
            ),
        )
        .unwrap();
        // Never read: a transitive import would fail on it.
        std::fs::write(dir.path().join("deeper.toml"), "not toml [").unwrap();
        let main = dir.path().join("policy.toml");
        std::fs::write(
            &main,
            format!(
                "[[developer]]\nlabel = \"alice\"\nkey = \"{ALICE}\"\n\
                 [[import]]\nname = \"platform\"\nfile = \"team.toml\"\n"
            ),
        )
        .unwrap();
        let p = Policy::load(&main).unwrap();
        let labels: Vec<&str> = p.developers.iter().map(|d| d.label.as_str()).collect();
        assert_eq!(labels, ["alice", "bob"]);
        assert!(p.developers[1].source.contains("platform"));
        assert_eq!(p.rule.attestations, 1, "an import's rule is not taken");
        assert!(
            p.exceptions.is_empty(),
            "an import's exceptions are not taken"
        );
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
        assert!(p.warnings[0].contains("not transitive"));
        // A broken import is an error naming the imported file and its line.
        std::fs::write(dir.path().join("team.toml"), "[[developer]]\nlabel = 3\n").unwrap();
        let error = Policy::load(&main).unwrap_err().to_string();
        assert!(error.contains("team.toml:2: "), "{error}");
    }

    #[test]
    fn a_policy_longer_than_the_cap_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_POLICY_BYTES + 1).unwrap();
        assert!(matches!(
            Policy::load(&path),
            Err(PolicyError::TooLong { .. })
        ));
    }

    #[test]
    fn the_lines_to_add_parse_back_as_that_developer() {
        let p = policy(&developer_lines("mauro3", ALICE)).unwrap();
        assert_eq!(p.developers[0].label, "mauro3");
        assert_eq!(p.developers[0].keyid, ALICE);
        assert_eq!(keyid_prefix(ALICE), "a1a1a1a1");
    }
}
