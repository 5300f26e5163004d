//! The trust policy file: TOML, read strictly, with the line of every mistake
//! (spec/trust-policy.md, "The file").
//!
//! A policy names trusted developers by key (with the label messages use), globally or
//! for some crates or namespaces; imports other teams' lists of developers, by file or
//! URL and optionally pinned by SHA-256 (not transitively: an imported file's own
//! imports, exceptions and rule are not taken); holds exceptions (a crate, a version
//! requirement and the reason); and sets the rule.
//!
//! Reading a policy does no network I/O of its own: a URL import is read through the
//! caller's [`ImportFetcher`] (the verifier's fetches it bounded and keeps the last good
//! copy), and what it returns is checked here: its size, its pin, its syntax.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::Digest;

use crate::client::FetchError;

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
    #[error("{}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why (in the message itself, not a `source()`: a chain printed whole would say
        /// it twice).
        error: std::io::Error,
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
    /// An import by URL cannot be fetched.
    #[error("{}:{line}: import {name:?}: {error}", path.display())]
    ImportFetch {
        /// The policy file naming the import.
        path: PathBuf,
        /// The line of its `[[import]]` table.
        line: usize,
        /// The import's name.
        name: String,
        /// Why the fetch failed (in the message, not a `source()`).
        error: FetchError,
    },
    /// An import's content is not what its `sha256` pins.
    #[error(
        "{}:{line}: import {name:?}: its content has SHA-256 {actual}, not the pinned \
         {expected}: if the list changed on purpose, review it and pin the new digest",
        path.display()
    )]
    ImportDigest {
        /// The policy file naming the import.
        path: PathBuf,
        /// The line of its `[[import]]` table.
        line: usize,
        /// The import's name.
        name: String,
        /// The pinned digest.
        expected: String,
        /// The digest of what was read.
        actual: String,
    },
}

/// An import by URL, as an [`ImportFetcher`] is asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlImport<'a> {
    /// The import's name (for messages).
    pub name: &'a str,
    /// Where it is (`https://`, or `http://` when pinned or on a loopback host).
    pub url: &'a str,
    /// The SHA-256 it is pinned to (lowercase hex), if any: a fetcher keeping copies may
    /// answer with a kept copy only when it has this digest.
    pub sha256: Option<&'a str>,
}

/// Reads the lists a policy imports by URL.
pub trait ImportFetcher {
    /// The bytes of `import`: at most [`MAX_POLICY_BYTES`] (more is
    /// [`FetchError::TooLong`]). The policy checks the pin and the syntax of what comes
    /// back.
    fn fetch_import(&self, import: &UrlImport<'_>) -> Result<Vec<u8>, FetchError>;
}

/// An [`ImportFetcher`] for where there is no network: every URL import is refused
/// (with what to do instead).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoUrlImports;

impl ImportFetcher for NoUrlImports {
    fn fetch_import(&self, import: &UrlImport<'_>) -> Result<Vec<u8>, FetchError> {
        Err(FetchError::BadUrl {
            url: import.url.to_owned(),
            message: "URL imports are not read here: import a copy by `file`".into(),
        })
    }
}

/// One import the policy in force was read with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Imported {
    /// Its name.
    pub name: String,
    /// The file (as resolved) or the URL it was read from.
    pub from: String,
    /// The SHA-256 of the content read (lowercase hex): what to pin.
    pub sha256: String,
    /// How many developers it brought.
    pub developers: usize,
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
    /// The imports read, in the file's order.
    pub imports: Vec<Imported>,
    /// The exceptions.
    pub exceptions: Vec<Exception>,
    /// Releases held for a human by the release scanner's recorded score (`[scan]`).
    pub scan: ScanRule,
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
    #[serde(default)]
    scan: Option<ScanRule>,
}

/// `[scan]`: a release whose recorded scanner score (`tuf-signer review --record`, signed
/// with its target) is above the threshold is held, like an untrusted one, until a
/// developer trusted for the crate attests it as a reviewer (spec/scanner.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScanRule {
    /// The threshold for every crate; none: no release is held.
    #[serde(default, alias = "hold_above")]
    pub hold_above: Option<u32>,
    /// Per-crate thresholds, by cargo's folded name, over `hold_above`.
    #[serde(default)]
    pub crates: BTreeMap<String, u32>,
}

impl ScanRule {
    /// The threshold for crate `name`, if any.
    pub fn hold_above(&self, name: &str) -> Option<u32> {
        let folded = fold_name(name);
        self.crates
            .iter()
            .find(|(crate_name, _)| fold_name(crate_name) == folded)
            .map(|(_, threshold)| *threshold)
            .or(self.hold_above)
    }
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
    #[serde(default)]
    file: Option<PathBuf>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
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
    text_of(path, read_bytes(path)?)
}

/// The bytes of the file at `path`, at most [`MAX_POLICY_BYTES`].
fn read_bytes(path: &Path) -> Result<Vec<u8>, PolicyError> {
    let file = std::fs::File::open(path).map_err(|error| PolicyError::Read {
        path: path.to_owned(),
        error,
    })?;
    crate::fs::read_bounded(file, MAX_POLICY_BYTES).map_err(|e| match e {
        crate::fs::BoundedReadError::TooLong { .. } => PolicyError::TooLong {
            path: path.to_owned(),
        },
        crate::fs::BoundedReadError::Io(error) => PolicyError::Read {
            path: path.to_owned(),
            error,
        },
    })
}

fn text_of(path: &Path, bytes: Vec<u8>) -> Result<String, PolicyError> {
    String::from_utf8(bytes).map_err(|_| PolicyError::Syntax {
        path: path.to_owned(),
        line: 0,
        message: "not UTF-8 text".into(),
    })
}

/// Whether `url` may be read without a pin: `https://`, or a loopback host (a list
/// served on the machine itself). Anything else needs `sha256`, and only `http` and
/// `https` are fetched at all.
fn check_import_url(url: &str, pinned: bool) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("url {url:?}: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match parsed.host() {
                Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if pinned || loopback {
                Ok(())
            } else {
                Err(format!(
                    "url {url:?}: plain http could be changed on the way: use https, or pin \
                     the content with sha256 = \"...\""
                ))
            }
        }
        other => Err(format!(
            "url {url:?}: scheme {other:?} is not fetched: use https (or `file` for a local \
             copy)"
        )),
    }
}

/// Whether `text` is a SHA-256 digest in hex (a keyid, a pin): 64 hex digits.
fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Lowercase hex SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
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
        if !is_sha256_hex(&keyid) {
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
    /// Reads the policy at `path` and the lists it imports: files relative to it, URLs
    /// through `imports`.
    pub fn load(path: &Path, imports: &dyn ImportFetcher) -> Result<Self, PolicyError> {
        let text = read(path)?;
        Self::from_text(path, &text, imports)
    }

    /// Reads a policy from `text`, as if from `path` (file imports are read relative to
    /// it, URL imports through `imports`).
    pub fn from_text(
        path: &Path,
        text: &str,
        imports: &dyn ImportFetcher,
    ) -> Result<Self, PolicyError> {
        Self::read_text(path, text, Some(imports))
    }

    /// Reads a policy from `text` without reading its imports: its own developers,
    /// exceptions and rule, each import's table checked but not followed
    /// ([`Policy::imports`] and the imported developers are left out). For editing the
    /// file's own lists (`policy trust`), with no network and no import files needed.
    pub fn own_from_text(path: &Path, text: &str) -> Result<Self, PolicyError> {
        Self::read_text(path, text, None)
    }

    fn read_text(
        path: &Path,
        text: &str,
        imports: Option<&dyn ImportFetcher>,
    ) -> Result<Self, PolicyError> {
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
        let mut imported_all = Vec::with_capacity(file.import.len());
        let base = path.parent().unwrap_or(Path::new("."));
        for spanned in file.import {
            let line = line_of(text, spanned.span().start);
            let import = spanned.into_inner();
            let invalid = |message: String| PolicyError::Invalid {
                path: path.to_owned(),
                line,
                message: format!("import {:?}: {message}", import.name),
            };
            let pin = match &import.sha256 {
                None => None,
                Some(digest) => {
                    let digest = digest.to_ascii_lowercase();
                    if !is_sha256_hex(&digest) {
                        return Err(invalid(format!(
                            "sha256 {digest:?}: a digest is 64 hex digits (`sha256sum` prints \
                             it; /status and `policy check --json` show the one in force)"
                        )));
                    }
                    Some(digest)
                }
            };
            // Where it is read from, checked before anything is read.
            enum From<'t> {
                File(&'t Path),
                Url(&'t str),
            }
            let from = match (&import.file, &import.url) {
                (Some(file), None) => From::File(file),
                (None, Some(url)) => {
                    check_import_url(url, pin.is_some()).map_err(invalid)?;
                    From::Url(url)
                }
                _ => {
                    return Err(invalid(
                        "give exactly one of `file` (a path relative to this file) and `url`"
                            .into(),
                    ))
                }
            };
            let Some(imports) = imports else {
                continue;
            };
            let (import_path, from, bytes) = match from {
                From::File(file) => {
                    let import_path = base.join(file);
                    let bytes = read_bytes(&import_path)?;
                    let from = import_path.display().to_string();
                    (import_path, from, bytes)
                }
                From::Url(url) => {
                    let fetch_error = |error| PolicyError::ImportFetch {
                        path: path.to_owned(),
                        line,
                        name: import.name.clone(),
                        error,
                    };
                    let request = UrlImport {
                        name: &import.name,
                        url,
                        sha256: pin.as_deref(),
                    };
                    let bytes = imports.fetch_import(&request).map_err(fetch_error)?;
                    if bytes.len() as u64 > MAX_POLICY_BYTES {
                        return Err(fetch_error(FetchError::TooLong {
                            url: url.to_owned(),
                            max: MAX_POLICY_BYTES,
                        }));
                    }
                    (PathBuf::from(url), url.to_owned(), bytes)
                }
            };
            let digest = sha256_hex(&bytes);
            if let Some(expected) = pin {
                if expected != digest {
                    return Err(PolicyError::ImportDigest {
                        path: path.to_owned(),
                        line,
                        name: import.name,
                        expected,
                        actual: digest,
                    });
                }
            }
            let imported_text = text_of(&import_path, bytes)?;
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
            let source = format!("import {:?} ({from})", import.name);
            let brought = developers(&import_path, &imported_text, imported.developer, &source)?;
            imported_all.push(Imported {
                name: import.name,
                from,
                sha256: digest,
                developers: brought.len(),
            });
            developers_all.extend(brought);
        }
        Ok(Self {
            path: path.to_owned(),
            rule,
            developers: developers_all,
            imports: imported_all,
            exceptions,
            scan: file.scan.unwrap_or_default(),
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
        Policy::from_text(Path::new("/nonexistent/policy.toml"), text, &NoUrlImports)
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
            ("# ours\n[rule]\nattestations = 0\n", 2, "at least 1"),
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
        let p = Policy::load(&main, &NoUrlImports).unwrap();
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
        // Its own lists only (what `policy trust` edits): no import is read, not even a
        // missing file, but each import's table is still checked.
        let text = std::fs::read_to_string(&main).unwrap();
        let own = Policy::own_from_text(&main, &text.replace("team.toml", "missing.toml")).unwrap();
        assert_eq!(own.developers.len(), 1);
        assert!(own.imports.is_empty());
        assert!(matches!(
            Policy::own_from_text(&main, &format!("{text}[[import]]\nname = \"x\"\n")),
            Err(PolicyError::Invalid { line: 7, .. })
        ));
        // A broken import is an error naming the imported file and its line.
        std::fs::write(dir.path().join("team.toml"), "[[developer]]\nlabel = 3\n").unwrap();
        let error = Policy::load(&main, &NoUrlImports).unwrap_err().to_string();
        assert!(error.contains("team.toml:2: "), "{error}");
    }

    /// Serves one URL's bytes and records what it was asked.
    struct OneUrl {
        url: &'static str,
        body: Vec<u8>,
        asked: std::cell::RefCell<Vec<(String, Option<String>)>>,
    }

    impl ImportFetcher for OneUrl {
        fn fetch_import(&self, import: &UrlImport<'_>) -> Result<Vec<u8>, FetchError> {
            self.asked
                .borrow_mut()
                .push((import.url.to_owned(), import.sha256.map(str::to_owned)));
            if import.url == self.url {
                Ok(self.body.clone())
            } else {
                Err(FetchError::NotFound {
                    url: import.url.to_owned(),
                })
            }
        }
    }

    fn one_url(url: &'static str, body: &str) -> OneUrl {
        OneUrl {
            url,
            body: body.as_bytes().to_vec(),
            asked: std::cell::RefCell::new(Vec::new()),
        }
    }

    #[test]
    fn a_url_import_brings_its_developers_checked_against_its_pin() {
        let team = format!("[[developer]]\nlabel = \"bob\"\nkey = \"{BOB}\"\n");
        let digest = sha256_hex(team.as_bytes());
        let fetcher = one_url("https://lists.example/team.toml", &team);
        let text = |pin: &str| {
            format!(
                "[[developer]]\nlabel = \"alice\"\nkey = \"{ALICE}\"\n\n\
                 [[import]]\nname = \"platform\"\nurl = \"https://lists.example/team.toml\"\n{pin}"
            )
        };
        let path = Path::new("/nonexistent/policy.toml");
        let p = Policy::from_text(path, &text(""), &fetcher).unwrap();
        assert_eq!(p.developers.len(), 2);
        assert!(p.warnings.is_empty(), "developers only: {:?}", p.warnings);
        assert_eq!(p.developers[1].label, "bob");
        assert_eq!(
            p.developers[1].source,
            "import \"platform\" (https://lists.example/team.toml)"
        );
        assert_eq!(
            p.imports,
            [Imported {
                name: "platform".into(),
                from: "https://lists.example/team.toml".into(),
                sha256: digest.clone(),
                developers: 1,
            }]
        );
        // Pinned (any case): the fetcher is told the pin, and the content matches it.
        let pinned = Policy::from_text(
            path,
            &text(&format!("sha256 = \"{}\"\n", digest.to_ascii_uppercase())),
            &fetcher,
        )
        .unwrap();
        assert_eq!(pinned.developers.len(), 2);
        assert_eq!(
            fetcher.asked.borrow().last().unwrap().1.as_deref(),
            Some(digest.as_str())
        );
        // Pinned to other content: refused, saying both digests and the line.
        let other = "0".repeat(64);
        match Policy::from_text(path, &text(&format!("sha256 = \"{other}\"\n")), &fetcher) {
            Err(PolicyError::ImportDigest {
                line,
                name,
                expected,
                actual,
                ..
            }) => {
                assert_eq!((line, name.as_str()), (5, "platform"));
                assert_eq!((expected, actual), (other, digest));
            }
            other => panic!("{other:?}"),
        }
        // A fetch that fails is the policy's error, naming the import and its line.
        let error = Policy::from_text(path, &text("").replace("team.toml", "gone.toml"), &fetcher)
            .unwrap_err();
        assert!(
            matches!(&error, PolicyError::ImportFetch { line: 5, name, error: FetchError::NotFound { .. }, .. } if name == "platform"),
            "{error:?}"
        );
        assert!(error
            .to_string()
            .starts_with("/nonexistent/policy.toml:5: import \"platform\": "));
        // The reason is in the message once: no `source()` for a chain to print again.
        assert!(std::error::Error::source(&error).is_none());
        // A fetcher handing back more than the cap is not believed: exactly the cap is
        // read, one byte more refused.
        let cap = usize::try_from(MAX_POLICY_BYTES).unwrap();
        let full = one_url("https://lists.example/team.toml", &"#".repeat(cap));
        assert!(Policy::from_text(path, &text(""), &full).is_ok());
        let over = one_url("https://lists.example/team.toml", &"#".repeat(cap + 1));
        assert!(matches!(
            Policy::from_text(path, &text(""), &over),
            Err(PolicyError::ImportFetch {
                error: FetchError::TooLong { .. },
                ..
            })
        ));
        // Where there is no network, a URL import is refused, not skipped.
        assert!(matches!(
            Policy::from_text(path, &text(""), &NoUrlImports),
            Err(PolicyError::ImportFetch {
                error: FetchError::BadUrl { .. },
                ..
            })
        ));
    }

    #[test]
    fn a_url_import_is_refused_when_its_transport_or_shape_is_unsafe() {
        let fetcher = one_url("http://lists.example/team.toml", "");
        let import = |fields: &str| format!("[[import]]\nname = \"platform\"\n{fields}");
        let pin = "a".repeat(64);
        let cases = [
            ("url = \"http://lists.example/team.toml\"\n", "plain http"),
            (
                "url = \"ftp://lists.example/team.toml\"\n",
                "scheme \"ftp\"",
            ),
            ("url = \"not a url\"\n", "url \"not a url\""),
            (
                "file = \"a.toml\"\nurl = \"https://x.example/a\"\n",
                "exactly one",
            ),
            ("", "exactly one"),
            (
                "url = \"https://x.example/a\"\nsha256 = \"abc\"\n",
                "64 hex digits",
            ),
        ];
        for (fields, needle) in cases {
            let error = policy(&import(fields)).unwrap_err();
            assert!(
                matches!(&error, PolicyError::Invalid { line: 1, message, .. } if message.contains(needle) && message.starts_with("import \"platform\": ")),
                "{fields:?}: {error}"
            );
        }
        assert!(
            fetcher.asked.borrow().is_empty(),
            "nothing unsafe was fetched"
        );
        // Plain http is read when pinned, or from the machine itself.
        for fields in [
            format!("url = \"http://lists.example/team.toml\"\nsha256 = \"{pin}\"\n"),
            "url = \"http://127.0.0.1:8080/team.toml\"\n".to_owned(),
            "url = \"http://[::1]/team.toml\"\n".to_owned(),
            "url = \"http://localhost/team.toml\"\n".to_owned(),
        ] {
            let error = Policy::from_text(Path::new("/p.toml"), &import(&fields), &fetcher);
            assert!(
                !matches!(error, Err(PolicyError::Invalid { .. })),
                "{fields}: {error:?}"
            );
        }
        assert_eq!(fetcher.asked.borrow().len(), 4);
    }

    #[test]
    fn an_import_file_can_be_pinned_too() {
        let dir = tempfile::tempdir().unwrap();
        let team = format!("[[developer]]\nlabel = \"bob\"\nkey = \"{BOB}\"\n");
        std::fs::write(dir.path().join("team.toml"), &team).unwrap();
        let main = dir.path().join("policy.toml");
        let write = |pin: &str| {
            std::fs::write(
                &main,
                format!("[[import]]\nname = \"t\"\nfile = \"team.toml\"\nsha256 = \"{pin}\"\n"),
            )
            .unwrap();
        };
        write(&sha256_hex(team.as_bytes()));
        assert_eq!(
            Policy::load(&main, &NoUrlImports).unwrap().developers.len(),
            1
        );
        write(&"0".repeat(64));
        assert!(matches!(
            Policy::load(&main, &NoUrlImports),
            Err(PolicyError::ImportDigest { .. })
        ));
    }

    #[test]
    fn at_most_sixty_four_imports_and_a_rule_alone_is_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        // An imported list with a rule and no exceptions: its rule is not taken, and the
        // warning says so.
        std::fs::write(dir.path().join("team.toml"), "[rule]\nattestations = 2\n").unwrap();
        let main = dir.path().join("policy.toml");
        let imports = |n: usize| {
            (0..n)
                .map(|i| format!("[[import]]\nname = \"team{i}\"\nfile = \"team.toml\"\n"))
                .collect::<String>()
        };
        std::fs::write(&main, imports(MAX_IMPORTS)).unwrap();
        let p = Policy::load(&main, &NoUrlImports).unwrap();
        assert_eq!(p.imports.len(), 64);
        assert_eq!(p.rule.attestations, 1);
        assert_eq!(p.warnings.len(), 64, "one per import");
        assert!(p.warnings[0].contains("its rule and exceptions are its own"));
        std::fs::write(&main, imports(MAX_IMPORTS + 1)).unwrap();
        assert!(matches!(
            Policy::load(&main, &NoUrlImports),
            Err(PolicyError::TooManyImports { .. })
        ));
    }

    #[test]
    fn a_policy_of_exactly_four_mebibytes_is_read() {
        // The documented cap (spec/trust-policy.md): comments up to 4 MiB, then a table.
        let table = format!("[[developer]]\nlabel = \"alice\"\nkey = \"{ALICE}\"\n");
        let line = format!("#{}\n", "-".repeat(1022));
        let mut text = line.repeat((4 * 1024 * 1024 - table.len()) / line.len());
        text.push_str(&"#".repeat(4 * 1024 * 1024 - table.len() - text.len() - 1));
        text.push('\n');
        text.push_str(&table);
        assert_eq!(text.len(), 4 * 1024 * 1024);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(
            Policy::load(&path, &NoUrlImports).unwrap().developers.len(),
            1
        );
        std::fs::write(&path, format!("#\n{text}")).unwrap();
        assert!(matches!(
            Policy::load(&path, &NoUrlImports),
            Err(PolicyError::TooLong { .. })
        ));
    }

    #[test]
    fn a_policy_longer_than_the_cap_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_POLICY_BYTES + 1).unwrap();
        assert!(matches!(
            Policy::load(&path, &NoUrlImports),
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
