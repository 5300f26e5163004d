//! The release scanner: what a new version of a crate adds compared with the previous
//! one, as findings a reviewer reads, each with its file, line and weight. It is a helper
//! for reviewers: it says where to look, it does not judge. Sans I/O: it reads two
//! releases' files ([`crate::crate_archive::read_crate_files`], under the `.crate`
//! reader's rules) and returns a [`ScanReport`].
//!
//! Rust files are read with a real parser ([`rust`], `syn`), so comments and the text of
//! string literals never raise a flag. What the scanner does not see is said in every
//! report ([`NOT_SEEN`]).

pub mod rust;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::crate_archive::CrateFiles;
pub use rust::Capability;

/// What no scan of a tarball can see, said in every report.
pub const NOT_SEEN: [&str; 4] = [
    "code macros expand to at build time (a proc-macro's output, macro_rules! bodies are read only as tokens)",
    "code or data a build script generates or downloads while it runs",
    "what dependencies do: each is scanned on its own release",
    "files a line of Rust cannot be parsed in (named in the findings)",
];

/// Lines longer than this make a file "very long-line" (minified or generated).
pub const LONG_LINE: usize = 1_000;

/// A finding's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FindingKind {
    /// A build script appears.
    BuildScriptAdded,
    /// The build script changed.
    BuildScriptChanged,
    /// The crate becomes a proc-macro.
    BecomesProcMacro,
    /// A new normal dependency.
    NewDependency,
    /// A new build dependency.
    NewBuildDependency,
    /// A new `links` key.
    NewLinks,
    /// More uses of a capability than before (in a build script: any use of one).
    Capability(Capability),
    /// More `unsafe` than before.
    UnsafeCount,
    /// A binary file added or changed.
    BinaryFile,
    /// A file with very long lines added or changed (minified or generated).
    LongLines,
    /// A Rust file the parser cannot read: nothing in it was seen.
    Unparsed,
    /// A release attested by a key that never attested this crate before.
    NewMaintainer,
}

/// One thing a reviewer should look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What it is.
    pub kind: FindingKind,
    /// The file, when it is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The 1-based line, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// How much it adds to the score.
    pub weight: u32,
    /// In words.
    pub message: String,
    /// The crate a new-dependency finding is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependency: Option<String>,
}

/// A file added, removed or changed, with its line counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// The path below `NAME-VERSION/`.
    pub path: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// Lines added (0 for a binary file).
    pub lines_added: usize,
    /// Lines removed.
    pub lines_removed: usize,
    /// Whether the file is not UTF-8 text.
    pub binary: bool,
}

/// The scanner's report on one release against the previous one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanReport {
    /// The release scanned.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The version it is compared with (`None`: a first release, compared with nothing).
    pub against: Option<String>,
    /// Every file that differs.
    pub files: Vec<FileChange>,
    /// What to look at, heaviest first.
    pub findings: Vec<Finding>,
    /// The sum of the findings' weights.
    pub score: u32,
    /// `unsafe` uses before and after.
    pub unsafe_before: usize,
    /// ... after.
    pub unsafe_after: usize,
    /// What the scanner does not see.
    pub not_seen: Vec<&'static str>,
}

impl ScanReport {
    /// Adds a finding (one the caller knows of: a new maintainer, a dependency's trust)
    /// and updates the score.
    pub fn add(&mut self, finding: Finding) {
        self.findings.push(finding);
        self.settle();
    }

    fn settle(&mut self) {
        self.findings
            .sort_by(|a, b| b.weight.cmp(&a.weight).then_with(|| a.kind.cmp(&b.kind)));
        self.score = self
            .findings
            .iter()
            .fold(0u32, |sum, f| sum.saturating_add(f.weight));
    }
}

/// What is recorded in a release's signed target of `report`
/// ([`crate::layout::RecordedScan`]): the score, the version compared with, and each
/// weighed finding in words (`file:line: message (weight)`).
pub fn recorded(report: &ScanReport) -> crate::layout::RecordedScan {
    crate::layout::RecordedScan {
        score: report.score,
        against: report.against.clone(),
        flags: report
            .findings
            .iter()
            .filter(|f| f.weight > 0)
            .map(|f| {
                let at = match (&f.file, f.line) {
                    (Some(file), Some(line)) => format!("{file}:{line}: "),
                    (Some(file), None) => format!("{file}: "),
                    _ => String::new(),
                };
                format!("{at}{} ({})", f.message, f.weight)
            })
            .collect(),
    }
}

/// The weight of each kind of finding.
pub fn weight(kind: FindingKind) -> u32 {
    match kind {
        FindingKind::BuildScriptAdded => 20,
        FindingKind::BuildScriptChanged => 10,
        FindingKind::BecomesProcMacro => 20,
        FindingKind::NewDependency => 5,
        FindingKind::NewBuildDependency => 10,
        FindingKind::NewLinks => 15,
        FindingKind::UnsafeCount => 5,
        FindingKind::BinaryFile => 15,
        FindingKind::LongLines => 10,
        FindingKind::Unparsed => 10,
        FindingKind::NewMaintainer => 20,
        FindingKind::Capability(capability) => match capability {
            Capability::ProcessSpawn | Capability::Network => 25,
            Capability::SecretEnvRead => 30,
            Capability::HomeDirectory => 30,
            Capability::EncodedLiteral => 30,
            Capability::FileWrite => 10,
            Capability::IncludeBytes => 10,
            Capability::ForeignCode => 15,
            Capability::EnvRead | Capability::OutDir | Capability::Unsafe => 0,
        },
    }
}

/// The score above which a release is held for a human by default
/// (`[scan] hold_above` in the trust policy).
pub const DEFAULT_HOLD_ABOVE: u32 = 40;

/// What a release's manifest says, for comparing two releases.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct ManifestFacts {
    dependencies: BTreeSet<String>,
    build_dependencies: BTreeSet<String>,
    proc_macro: bool,
    links: Option<String>,
    /// The build script's path (`build.rs` unless `package.build` says otherwise).
    build_script: Option<String>,
}

fn manifest_facts(files: &CrateFiles<Vec<u8>>) -> ManifestFacts {
    let mut facts = ManifestFacts::default();
    let text = files
        .files
        .get("Cargo.toml")
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or_default();
    let Ok(manifest) = text.parse::<toml::Table>() else {
        return facts;
    };
    let names = |table: Option<&toml::Value>| -> BTreeSet<String> {
        table
            .and_then(toml::Value::as_table)
            .map(|t| {
                t.iter()
                    .map(|(key, value)| {
                        value
                            .get("package")
                            .and_then(toml::Value::as_str)
                            .unwrap_or(key)
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut dependencies = names(manifest.get("dependencies"));
    let mut build_dependencies = names(
        manifest
            .get("build-dependencies")
            .or_else(|| manifest.get("build_dependencies")),
    );
    if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
        for target in targets.values() {
            dependencies.extend(names(target.get("dependencies")));
            build_dependencies.extend(names(target.get("build-dependencies")));
        }
    }
    facts.dependencies = dependencies;
    facts.build_dependencies = build_dependencies;
    facts.proc_macro = manifest
        .get("lib")
        .and_then(|lib| lib.get("proc-macro").or_else(|| lib.get("proc_macro")))
        .and_then(toml::Value::as_bool)
        == Some(true);
    let package = manifest.get("package");
    facts.links = package
        .and_then(|p| p.get("links"))
        .and_then(toml::Value::as_str)
        .map(str::to_owned);
    facts.build_script = match package.and_then(|p| p.get("build")) {
        Some(toml::Value::String(path)) => Some(path.trim_start_matches("./").to_owned()),
        Some(toml::Value::Boolean(false)) => None,
        _ => files
            .files
            .contains_key("build.rs")
            .then(|| "build.rs".to_owned()),
    };
    facts
}

/// Whether a file is source the parser reads.
fn is_rust(path: &str) -> bool {
    path.ends_with(".rs")
}

/// The line counts of a change from `old` to `new` (text), by a line diff.
fn line_counts(old: &str, new: &str) -> (usize, usize) {
    let diff = similar::TextDiff::from_lines(old, new);
    let mut added = 0;
    let mut removed = 0;
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    (added, removed)
}

/// A unified diff of one file between two releases (`None` when neither has it).
pub fn file_diff(
    old: Option<&CrateFiles<Vec<u8>>>,
    new: &CrateFiles<Vec<u8>>,
    path: &str,
) -> Option<String> {
    let before = old.and_then(|o| o.files.get(path));
    let after = new.files.get(path);
    if before.is_none() && after.is_none() {
        return None;
    }
    let text = |b: Option<&Vec<u8>>| {
        b.map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    let (before_text, after_text) = (text(before), text(after));
    let diff = similar::TextDiff::from_lines(&before_text, &after_text);
    let old_name = format!(
        "{}-{}/{path}",
        old.map_or(new.release.name.as_str(), |o| o.release.name.as_str()),
        old.map_or("(none)", |o| o.release.version.as_str())
    );
    let new_name = format!("{}-{}/{path}", new.release.name, new.release.version);
    Some(
        diff.unified_diff()
            .context_radius(3)
            .header(&old_name, &new_name)
            .to_string(),
    )
}

/// Scans `new` against `old` (the previous release; `None` for a first release, whose
/// every capability is new).
pub fn scan(old: Option<&CrateFiles<Vec<u8>>>, new: &CrateFiles<Vec<u8>>) -> ScanReport {
    let empty = BTreeMap::new();
    let old_files = old.map_or(&empty, |o| &o.files);
    let mut findings = Vec::new();
    let mut files = Vec::new();
    // The manifest: new dependencies first, each naming its crate.
    let before = old.map(manifest_facts).unwrap_or_default();
    let after = manifest_facts(new);
    let new_dependencies = after
        .dependencies
        .difference(&before.dependencies)
        .map(|d| {
            (
                FindingKind::NewDependency,
                d,
                format!("new dependency `{d}`"),
            )
        });
    let new_build_dependencies = after
        .build_dependencies
        .difference(&before.build_dependencies)
        .map(|d| {
            (
                FindingKind::NewBuildDependency,
                d,
                format!("new build dependency `{d}`: it runs at build time"),
            )
        });
    for (kind, dependency, message) in new_dependencies.chain(new_build_dependencies) {
        findings.push(Finding {
            kind,
            file: Some("Cargo.toml".to_owned()),
            line: None,
            weight: weight(kind),
            message,
            dependency: Some(dependency.clone()),
        });
    }
    let mut finding =
        |kind: FindingKind, file: Option<&str>, line: Option<usize>, message: String| {
            findings.push(Finding {
                kind,
                file: file.map(str::to_owned),
                line,
                weight: weight(kind),
                message,
                dependency: None,
            })
        };

    if after.proc_macro && !before.proc_macro {
        finding(
            FindingKind::BecomesProcMacro,
            Some("Cargo.toml"),
            None,
            "the crate becomes a proc-macro: its code runs inside the compiler of every \
             crate that uses it"
                .into(),
        );
    }
    if after.links.is_some() && after.links != before.links {
        finding(
            FindingKind::NewLinks,
            Some("Cargo.toml"),
            None,
            format!(
                "new `links = {:?}`: it links a native library",
                after.links.as_deref().unwrap_or_default()
            ),
        );
    }
    let build_script = after.build_script.clone();
    if let Some(script) = &build_script {
        let old_script = before
            .build_script
            .as_ref()
            .and_then(|path| old_files.get(path));
        match old_script {
            None => finding(
                FindingKind::BuildScriptAdded,
                Some(script),
                None,
                "a build script appears: it runs on every machine that builds the crate".into(),
            ),
            Some(bytes) if Some(bytes) != new.files.get(script) => finding(
                FindingKind::BuildScriptChanged,
                Some(script),
                None,
                "the build script changed".into(),
            ),
            Some(_) => {}
        }
    }

    // Every file: what changed, and what the Rust in it can do.
    let mut unsafe_before = 0;
    let mut unsafe_after = 0;
    let paths: BTreeSet<&String> = old_files.keys().chain(new.files.keys()).collect();
    for path in paths {
        let before_bytes = old_files.get(path);
        let after_bytes = new.files.get(path);
        let before_text = before_bytes.and_then(|b| std::str::from_utf8(b).ok());
        let after_text = after_bytes.and_then(|b| std::str::from_utf8(b).ok());
        // Each file of the previous release is parsed once, and an unchanged file of
        // the new one not at all.
        let uses_before = match before_text {
            Some(text) if is_rust(path) => rust::analyse(text).unwrap_or_default(),
            _ => rust::Uses::new(),
        };
        let unsafe_in_before = uses_before.get(&Capability::Unsafe).map_or(0, Vec::len);
        unsafe_before += unsafe_in_before;
        let Some(after_bytes) = after_bytes else {
            let (_, removed) = line_counts(before_text.unwrap_or_default(), "");
            files.push(FileChange {
                path: path.clone(),
                change: "removed",
                lines_added: 0,
                lines_removed: removed,
                binary: before_text.is_none(),
            });
            continue;
        };
        if before_bytes == Some(after_bytes) {
            unsafe_after += unsafe_in_before;
            continue;
        }
        let uses_after = match (is_rust(path), after_text) {
            (true, Some(text)) => match rust::analyse(text) {
                Ok(uses) => Some(uses),
                Err(error) => {
                    finding(
                        FindingKind::Unparsed,
                        Some(path),
                        Some(error.line),
                        format!(
                            "not readable as Rust ({}): nothing in it was scanned",
                            error.message
                        ),
                    );
                    None
                }
            },
            _ => None,
        };
        if let Some(uses) = &uses_after {
            unsafe_after += uses.get(&Capability::Unsafe).map_or(0, Vec::len);
        }
        files.push(match (before_bytes, after_text) {
            (None, text) => FileChange {
                path: path.clone(),
                change: "added",
                lines_added: text.map_or(0, |t| t.lines().count()),
                lines_removed: 0,
                binary: text.is_none(),
            },
            (Some(_), text) => {
                let (added, removed) = match (before_text, text) {
                    (Some(b), Some(a)) => line_counts(b, a),
                    _ => (0, 0),
                };
                FileChange {
                    path: path.clone(),
                    change: "changed",
                    lines_added: added,
                    lines_removed: removed,
                    binary: text.is_none(),
                }
            }
        });
        match after_text {
            None => finding(
                FindingKind::BinaryFile,
                Some(path),
                None,
                format!(
                    "a binary file ({} bytes) {}",
                    after_bytes.len(),
                    if before_bytes.is_some() {
                        "changed"
                    } else {
                        "added"
                    }
                ),
            ),
            Some(text) => {
                if let Some((number, line)) = text
                    .lines()
                    .enumerate()
                    .find(|(_, l)| l.chars().count() > LONG_LINE)
                {
                    finding(
                        FindingKind::LongLines,
                        Some(path),
                        Some(number + 1),
                        format!(
                            "a line of {} characters: minified or generated",
                            line.chars().count()
                        ),
                    );
                }
            }
        }
        // Capabilities: uses beyond the file's count in the previous release (all of
        // them in a file or build script that is new).
        let Some(uses) = uses_after else { continue };
        let in_build_script = build_script.as_deref() == Some(path.as_str());
        let writes_out_dir = uses.contains_key(&Capability::OutDir);
        for (capability, lines) in &uses {
            let previously = uses_before.get(capability).map_or(0, Vec::len);
            if lines.len() <= previously {
                continue;
            }
            let capability = *capability;
            let (counts, message) = match capability {
                Capability::Unsafe | Capability::OutDir => (false, String::new()),
                Capability::EnvRead if !in_build_script => (false, String::new()),
                Capability::FileWrite if in_build_script && writes_out_dir => (
                    // A build script writing under OUT_DIR is what build scripts do.
                    false,
                    String::new(),
                ),
                Capability::FileWrite if in_build_script => (
                    true,
                    "the build script writes files, and never names OUT_DIR".to_owned(),
                ),
                _ => (
                    true,
                    format!(
                        "{}{}",
                        if in_build_script {
                            "the build script "
                        } else {
                            ""
                        },
                        capability.describe()
                    ),
                ),
            };
            if !counts {
                continue;
            }
            // (Build scripts read the environment all the time: said, weighed 0.)
            let kind = FindingKind::Capability(capability);
            let new_lines = lines.get(previously..).unwrap_or_default();
            let first = new_lines.first().copied();
            let more = new_lines.len().saturating_sub(1);
            finding(
                kind,
                Some(path),
                first,
                if more > 0 {
                    format!("{message} (and {more} more lines)")
                } else {
                    message
                },
            );
        }
    }
    if unsafe_after > unsafe_before {
        finding(
            FindingKind::UnsafeCount,
            None,
            None,
            format!("unsafe uses: {unsafe_before} before, {unsafe_after} now"),
        );
    }
    // A kind of capability weighs once per release, in its first file: a crate that is
    // all `extern` blocks (libc) adds one kind of code, however many files it touches.
    let mut weighed = BTreeSet::new();
    for finding in findings.iter_mut() {
        if let FindingKind::Capability(capability) = finding.kind {
            if !weighed.insert(capability) {
                finding.weight = 0;
            }
        }
    }
    let mut report = ScanReport {
        name: new.release.name.clone(),
        version: new.release.version.clone(),
        against: old.map(|o| o.release.version.clone()),
        files,
        findings,
        score: 0,
        unsafe_before,
        unsafe_after,
        not_seen: NOT_SEEN.to_vec(),
    };
    report.settle();
    report
}
