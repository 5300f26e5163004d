//! `tuf-verifier policy`: `check` a Cargo.lock against a trust policy offline (like
//! `cargo vet`), and `trust` / `untrust` a developer by editing the policy file in place,
//! keeping its comments.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::Utc;
use clap::{Args, Subcommand};
use serde::Serialize;

use super::enforce::release_verdict;
use super::file::{developer_lines, keyid_prefix, Policy, TrustedDeveloper};
use super::judge::{developers_to_trust, reason, Developer, Trusted, Untrusted};
use crate::config::ServeArgs;
use crate::index_answer::Judge;

use crate::offline::{progress_bar, read_lockfile, source_matches, CRATES_IO_SOURCES};

/// `policy` verbs.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, Clone, Subcommand)]
enum PolicyCommand {
    /// Judge every registry package of a Cargo.lock by the policy, offline: list each
    /// that is not trusted with the reason, and the fewest developers to trust that
    /// would cover the rest. Exit 1 when any package is not trusted.
    Check(CheckArgs),
    /// Add a developer, by key, to the policy file (comments and layout kept).
    Trust(TrustArgs),
    /// Remove a developer from the policy file (comments and layout kept).
    Untrust(UntrustArgs),
}

/// `policy check` options.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The Cargo.lock to check.
    #[arg(default_value = "Cargo.lock")]
    lockfile: PathBuf,
    /// The trust policy [default: `policy` from --config].
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The source the lockfile names for the registry the TUF repository signs; repeat
    /// for more [default: crates.io's two spellings].
    #[arg(long = "source", value_name = "SOURCE")]
    sources: Vec<String>,
    /// The proxy's TOML configuration file (metadata, root, tuf_targets, policy).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// The TUF repository's metadata: a base URL or a local directory.
    #[arg(long, value_name = "URL|DIR")]
    metadata: Option<String>,
    /// The TUF repository's target files [default: `targets/` beside the metadata].
    #[arg(long, value_name = "URL|DIR")]
    tuf_targets: Option<String>,
    /// The trusted root metadata file.
    #[arg(long, value_name = "FILE")]
    root: Option<PathBuf>,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// `policy trust` options.
#[derive(Debug, Clone, Args)]
pub struct TrustArgs {
    /// The developer's label, for messages (`mauro3`).
    label: String,
    /// The developer's key, as its TUF keyid (64 hex digits): trust is by key, since
    /// anyone can sign with any label. Refusals print it.
    #[arg(long, value_name = "KEYID")]
    key: String,
    /// Trust the developer for this crate only; repeat for more [default: every crate].
    #[arg(long = "crate", value_name = "NAME")]
    crates: Vec<String>,
    /// Trust the developer for this namespace; repeat for more.
    #[arg(long = "namespace", value_name = "NAMESPACE")]
    namespaces: Vec<String>,
    /// The policy file (created if missing).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// `policy untrust` options.
#[derive(Debug, Clone, Args)]
pub struct UntrustArgs {
    /// The developer's label.
    label: String,
    /// Only the entries with this key [default: every entry with the label].
    #[arg(long, value_name = "KEYID")]
    key: Option<String>,
    /// The policy file.
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

impl PolicyArgs {
    /// Whether the result goes to stdout as one JSON object.
    pub fn json(&self) -> bool {
        match &self.command {
            PolicyCommand::Check(args) => args.json,
            PolicyCommand::Trust(args) => args.json,
            PolicyCommand::Untrust(args) => args.json,
        }
    }
}

/// Runs a `policy` verb: true for exit 0.
pub async fn run(args: PolicyArgs) -> anyhow::Result<bool> {
    match args.command {
        PolicyCommand::Check(args) => check(args).await,
        PolicyCommand::Trust(args) => tokio::task::spawn_blocking(move || trust(&args)).await?,
        PolicyCommand::Untrust(args) => tokio::task::spawn_blocking(move || untrust(&args)).await?,
    }
}

/// One package of the lockfile, judged.
#[derive(Debug, Clone, Serialize)]
struct PackageVerdict {
    name: String,
    version: String,
    /// `trusted`, `untrusted` or `skipped`.
    result: &'static str,
    /// Why: who attested it, the exception, why not, or why it was skipped.
    reason: String,
    #[serde(skip)]
    untrusted: Option<Untrusted>,
}

/// A developer whose trust would cover failing packages.
#[derive(Debug, Clone, Serialize)]
struct Suggestion {
    label: String,
    keyid: String,
    /// The packages (`name version`) trusting this developer (with the ones suggested
    /// before it) would make trusted.
    covers: Vec<String>,
    /// The command that does it.
    command: String,
}

#[derive(Debug, Serialize)]
struct CheckReport {
    ok: bool,
    lockfile: String,
    policy: String,
    trusted: usize,
    untrusted: usize,
    skipped: usize,
    packages: Vec<PackageVerdict>,
    suggestions: Vec<Suggestion>,
    /// The imports the policy was read with, each with the digest of its content.
    imports: Vec<super::file::Imported>,
}

fn describe_trusted(trusted: &Trusted) -> String {
    match trusted {
        Trusted::Attested { developers } => format!(
            "attested by {}",
            developers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Trusted::Exception { reason, line } => {
            format!("admitted by the exception on line {line}: {reason}")
        }
    }
}

async fn check(args: CheckArgs) -> anyhow::Result<bool> {
    let config = ServeArgs {
        config: args.config.clone(),
        metadata: args.metadata.clone(),
        tuf_targets: args.tuf_targets.clone(),
        root: args.root.clone(),
        policy: args.policy.clone(),
        ..ServeArgs::default()
    }
    .resolve_repository()?;
    let Some(policy_path) = config.policy.clone() else {
        bail!("no trust policy: give --policy FILE (or `policy` in the --config file)");
    };
    let json = args.json;
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<CheckReport> {
        let url_imports = super::imports::UrlImports::for_one_reading(
            config.connect_timeout,
            config.upstream_timeout,
        );
        let policy = Policy::load(&policy_path, &url_imports.reading(true))
            .context("the trust policy cannot be used")?;
        let lock = read_lockfile(&args.lockfile)?;
        let repository = crate::offline::OfflineRepository::open(&config)?;
        let judge = repository.judge();
        let sources: Vec<String> = if args.sources.is_empty() {
            CRATES_IO_SOURCES.iter().map(|s| (*s).to_owned()).collect()
        } else {
            args.sources.clone()
        };
        let now = Utc::now();
        let bar = progress_bar(lock.package.len(), "judging");
        let mut packages = Vec::new();
        for package in &lock.package {
            bar.inc(1);
            let (name, version) = (package.name.clone(), package.version.clone());
            let source = package.source.as_deref().unwrap_or("");
            let skipped = |reason: String| PackageVerdict {
                name: name.clone(),
                version: version.clone(),
                result: "skipped",
                reason,
                untrusted: None,
            };
            if source.is_empty() {
                packages.push(skipped("a local package".into()));
                continue;
            }
            if !sources.iter().any(|s| source_matches(s, source)) {
                packages.push(skipped(format!(
                    "from {source}, not the registry the TUF repository signs (verify-lockfile \
                     judges sources)"
                )));
                continue;
            }
            let verdict = release_verdict(&policy, None, &judge, &name, &version, now)
                .map_err(|e| anyhow::anyhow!("{name} {version}: {e}"))?;
            packages.push(match verdict {
                Ok(trusted) => PackageVerdict {
                    name,
                    version,
                    result: "trusted",
                    reason: describe_trusted(&trusted),
                    untrusted: None,
                },
                Err(why) => PackageVerdict {
                    reason: reason(&name, &why),
                    name,
                    version,
                    result: "untrusted",
                    untrusted: Some(why),
                },
            });
        }
        bar.finish_and_clear();
        let suggestions = suggest(&policy, &judge, &packages, now);
        let count = |result: &str| packages.iter().filter(|p| p.result == result).count();
        Ok(CheckReport {
            ok: count("untrusted") == 0,
            lockfile: args.lockfile.display().to_string(),
            policy: policy_path.display().to_string(),
            trusted: count("trusted"),
            untrusted: count("untrusted"),
            skipped: count("skipped"),
            suggestions,
            packages,
            imports: policy.imports.clone(),
        })
    })
    .await??;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write!(out, "{}", render(&report))?;
    }
    Ok(report.ok)
}

/// The fewest developers to trust, chosen greedily: each round, the developer whose trust
/// (with the ones chosen before) makes the most failing packages trusted, judged again
/// under the policy so extended. Stops when no candidate helps.
fn suggest(
    policy: &Policy,
    judge: &Judge<'_>,
    packages: &[PackageVerdict],
    now: chrono::DateTime<Utc>,
) -> Vec<Suggestion> {
    let failing: Vec<&PackageVerdict> = packages.iter().filter(|p| p.untrusted.is_some()).collect();
    let mut candidates: BTreeMap<String, Developer> = BTreeMap::new();
    for package in &failing {
        if let Some(why) = &package.untrusted {
            for developer in developers_to_trust(why) {
                candidates
                    .entry(developer.keyid.clone())
                    .or_insert(developer);
            }
        }
    }
    let mut chosen: Vec<Developer> = Vec::new();
    let mut covered: BTreeSet<String> = BTreeSet::new();
    let mut suggestions = Vec::new();
    // At most one round per candidate.
    for _ in 0..candidates.len() {
        let mut best: Option<(Developer, Vec<String>)> = None;
        for candidate in candidates.values() {
            if chosen.iter().any(|c| c.keyid == candidate.keyid) {
                continue;
            }
            let mut extended = policy.clone();
            for developer in chosen.iter().chain(std::iter::once(candidate)) {
                extended.developers.push(TrustedDeveloper {
                    label: developer.label.clone(),
                    keyid: developer.keyid.clone(),
                    crates: BTreeSet::new(),
                    namespaces: BTreeSet::new(),
                    source: "(suggested)".into(),
                    line: 0,
                });
            }
            let newly: Vec<String> = failing
                .iter()
                .map(|p| format!("{} {}", p.name, p.version))
                .zip(failing.iter())
                .filter(|(key, _)| !covered.contains(key))
                .filter(|(_, p)| {
                    matches!(
                        release_verdict(&extended, None, judge, &p.name, &p.version, now),
                        Ok(Ok(_))
                    )
                })
                .map(|(key, _)| key)
                .collect();
            if !newly.is_empty() && best.as_ref().is_none_or(|(_, b)| newly.len() > b.len()) {
                best = Some((candidate.clone(), newly));
            }
        }
        let Some((developer, newly)) = best else {
            break;
        };
        covered.extend(newly.iter().cloned());
        suggestions.push(Suggestion {
            command: format!(
                "tuf-verifier policy trust {} --key {} --policy {}",
                developer.label,
                developer.keyid,
                policy.path.display()
            ),
            label: developer.label.clone(),
            keyid: developer.keyid.clone(),
            covers: newly,
        });
        chosen.push(developer);
    }
    suggestions
}

fn render(report: &CheckReport) -> String {
    let mut out = format!(
        "{}: {} packages judged by {}: {} trusted, {} not trusted, {} skipped\n",
        report.lockfile,
        report.packages.len(),
        report.policy,
        report.trusted,
        report.untrusted,
        report.skipped
    );
    for package in report.packages.iter().filter(|p| p.result == "untrusted") {
        out.push_str(&format!(
            "  {} {}: NOT TRUSTED: {}\n",
            package.name, package.version, package.reason
        ));
    }
    if !report.suggestions.is_empty() {
        out.push_str("suggestions:\n");
    }
    for suggestion in &report.suggestions {
        let crates = if suggestion.covers.len() == 1 {
            "crate"
        } else {
            "crates"
        };
        out.push_str(&format!(
            "  trusting {} ({}…) would cover {} {crates}: {}\n    {}\n",
            suggestion.label,
            keyid_prefix(&suggestion.keyid),
            suggestion.covers.len(),
            suggestion.covers.join(", "),
            suggestion.command
        ));
    }
    if report.ok {
        out.push_str("every registry package is trusted\n");
    }
    out
}

/// Reads the policy file as a TOML document (an empty one when it does not exist).
fn read_document(path: &Path) -> anyhow::Result<toml_edit::DocumentMut> {
    let text = match std::fs::File::open(path) {
        Ok(file) => {
            let bytes = tuf_core::fs::read_bounded(file, super::file::MAX_POLICY_BYTES)
                .with_context(|| format!("cannot read {}", path.display()))?;
            String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8", path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => NEW_POLICY_FILE.to_owned(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    // The file must be a valid policy before and after the edit. Its own lists are what
    // is edited: imports are checked but not read (no network for a local edit).
    Policy::own_from_text(path, &text).context("the policy file is broken: fix it first")?;
    text.parse()
        .with_context(|| format!("{}: not TOML", path.display()))
}

/// A policy file `policy trust` creates: the rule with its defaults written out (the
/// place to change them), and the header comment before it. (A file of comments alone
/// would keep them after every table added to it.)
const NEW_POLICY_FILE: &str = "\
# Trust policy of tuf-verifier (spec/trust-policy.md).

[rule]
# Distinct trusted developers who must vouch for a release (>= 1).
attestations = 1
# `review` attestations count beside `release` ones.
reviews-count = true
# \"trusted\": every normal and build dependency must be trusted too; or \"any\".
dependencies = \"trusted\"
# \"trusted\", or \"exempt\": optional dependencies judged only when cargo asks for them.
optional-dependencies = \"trusted\"
";

/// Checks the edited document is a valid policy and writes it atomically.
fn write_document(path: &Path, document: &toml_edit::DocumentMut) -> anyhow::Result<Policy> {
    let text = document.to_string();
    let policy = Policy::own_from_text(path, &text).context("the edit would break the policy")?;
    tuf_core::fs::write_atomic_readable(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(policy)
}

fn print_edit(json: bool, value: serde_json::Value, text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{value}")?;
    } else {
        write!(out, "{text}")?;
    }
    Ok(())
}

fn trust(args: &TrustArgs) -> anyhow::Result<bool> {
    let mut document = read_document(&args.policy)?;
    // Checked as the file would check it: the same messages.
    let mut entry = developer_lines(&args.label, &args.key);
    let list = |items: &[String]| {
        items
            .iter()
            .map(|i| format!("{i:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !args.crates.is_empty() {
        entry.push_str(&format!("crates = [{}]\n", list(&args.crates)));
    }
    if !args.namespaces.is_empty() {
        entry.push_str(&format!("namespaces = [{}]\n", list(&args.namespaces)));
    }
    let candidate = Policy::own_from_text(&args.policy, &entry)?;
    let Some(new) = candidate.developers.first() else {
        bail!("internal error: no developer parsed from the new entry");
    };
    let current = Policy::own_from_text(&args.policy, &document.to_string())?;
    if let Some(existing) = current
        .developers
        .iter()
        .find(|d| d.keyid == new.keyid && d.crates == new.crates && d.namespaces == new.namespaces)
    {
        print_edit(
            args.json,
            serde_json::json!({"ok": true, "changed": false, "label": existing.label, "keyid": existing.keyid}),
            &format!(
                "{}: {} ({}…) is already trusted there (line {}): nothing changed\n",
                args.policy.display(),
                existing.label,
                keyid_prefix(&existing.keyid),
                existing.line
            ),
        )?;
        return Ok(true);
    }
    let mut table = toml_edit::Table::new();
    table.insert("label", toml_edit::value(new.label.clone()));
    table.insert("key", toml_edit::value(new.keyid.clone()));
    if !args.crates.is_empty() {
        table.insert("crates", toml_edit::value(string_array(&args.crates)));
    }
    if !args.namespaces.is_empty() {
        table.insert(
            "namespaces",
            toml_edit::value(string_array(&args.namespaces)),
        );
    }
    let developers = document
        .entry("developer")
        .or_insert(toml_edit::Item::ArrayOfTables(
            toml_edit::ArrayOfTables::new(),
        ));
    let Some(developers) = developers.as_array_of_tables_mut() else {
        bail!(
            "{}: `developer` is not an array of [[developer]] tables",
            args.policy.display()
        );
    };
    developers.push(table);
    let policy = write_document(&args.policy, &document)?;
    print_edit(
        args.json,
        serde_json::json!({"ok": true, "changed": true, "label": new.label, "keyid": new.keyid, "developers": policy.developers.len()}),
        &format!(
            "{}: now trusting {} ({}…){}; a running proxy reloads it within {} s, or at once on SIGHUP\n",
            args.policy.display(),
            new.label,
            keyid_prefix(&new.keyid),
            scope_text(new),
            super::enforce::POLICY_POLL_INTERVAL.as_secs()
        ),
    )?;
    Ok(true)
}

fn scope_text(developer: &TrustedDeveloper) -> String {
    if developer.crates.is_empty() && developer.namespaces.is_empty() {
        return " for every crate".into();
    }
    let mut parts = Vec::new();
    if !developer.crates.is_empty() {
        parts.push(format!(
            "crates {}",
            developer
                .crates
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !developer.namespaces.is_empty() {
        parts.push(format!(
            "namespaces {}",
            developer
                .namespaces
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    format!(" for {}", parts.join(" and "))
}

fn string_array(items: &[String]) -> toml_edit::Array {
    items.iter().map(String::as_str).collect()
}

fn untrust(args: &UntrustArgs) -> anyhow::Result<bool> {
    let mut document = read_document(&args.policy)?;
    let key = args.key.as_ref().map(|k| k.to_ascii_lowercase());
    let Some(developers) = document
        .get_mut("developer")
        .and_then(toml_edit::Item::as_array_of_tables_mut)
    else {
        bail!(
            "{}: no [[developer]] labelled {:?}",
            args.policy.display(),
            args.label
        );
    };
    let before = developers.len();
    developers.retain(|table| {
        let label = table.get("label").and_then(toml_edit::Item::as_str);
        let keyid = table
            .get("key")
            .and_then(toml_edit::Item::as_str)
            .map(str::to_ascii_lowercase);
        let matches = label == Some(args.label.as_str())
            && key
                .as_ref()
                .is_none_or(|k| keyid.as_deref() == Some(k.as_str()));
        !matches
    });
    let removed = before - developers.len();
    if removed == 0 {
        bail!(
            "{}: no [[developer]] labelled {:?}{}: nothing removed",
            args.policy.display(),
            args.label,
            key.map(|k| format!(" with key {k}")).unwrap_or_default()
        );
    }
    if developers.is_empty() {
        document.remove("developer");
    }
    let policy = write_document(&args.policy, &document)?;
    print_edit(
        args.json,
        serde_json::json!({"ok": true, "changed": true, "label": args.label, "removed": removed, "developers": policy.developers.len()}),
        &format!(
            "{}: {} no longer trusted ({removed} entr{} removed)\n",
            args.policy.display(),
            args.label,
            if removed == 1 { "y" } else { "ies" }
        ),
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::super::file::NoUrlImports;
    use super::*;

    const KEY: &str = "0765d2d2a7ae4803eaf745acf8a1c3c4ab618c03434b58d7ce858faa5a1d360d";

    #[test]
    fn a_suggestion_counts_its_crates_once_in_words() {
        let suggestion = |covers: &[&str]| Suggestion {
            label: "carol".into(),
            keyid: KEY.into(),
            covers: covers.iter().map(|c| (*c).to_owned()).collect(),
            command: "tuf-verifier policy trust carol".into(),
        };
        let report = CheckReport {
            ok: false,
            lockfile: "Cargo.lock".into(),
            policy: "policy.toml".into(),
            trusted: 0,
            untrusted: 3,
            skipped: 0,
            packages: Vec::new(),
            suggestions: vec![
                suggestion(&["a 1.0.0"]),
                suggestion(&["b 1.0.0", "c 2.0.0"]),
            ],
            imports: Vec::new(),
        };
        let text = render(&report);
        assert!(
            text.contains("trusting carol (0765d2d2…) would cover 1 crate: a 1.0.0\n"),
            "{text}"
        );
        assert!(
            text.contains("would cover 2 crates: b 1.0.0, c 2.0.0\n"),
            "{text}"
        );
    }

    fn args(path: &Path, label: &str) -> TrustArgs {
        TrustArgs {
            label: label.into(),
            key: KEY.into(),
            crates: Vec::new(),
            namespaces: Vec::new(),
            policy: path.to_owned(),
            json: false,
        }
    }

    #[test]
    fn trust_and_untrust_keep_comments_and_refuse_what_the_file_would() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        let original =
            "# Our policy: keep this comment.\n[rule]\nattestations = 1 # one is enough\n";
        std::fs::write(&path, original).unwrap();
        trust(&args(&path, "mauro3")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(original), "{text}");
        assert!(
            text.contains("[[developer]]\nlabel = \"mauro3\"\nkey = \""),
            "{text}"
        );
        assert_eq!(
            Policy::load(&path, &NoUrlImports).unwrap().developers[0].keyid,
            KEY
        );
        // Again: nothing changes.
        trust(&args(&path, "mauro3")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        // Scoped, the same key is a second entry.
        let mut scoped = args(&path, "mauro3");
        scoped.crates = vec!["parameters".into()];
        trust(&scoped).unwrap();
        assert_eq!(
            Policy::load(&path, &NoUrlImports).unwrap().developers.len(),
            2
        );
        // A key that is not a keyid is refused, and the file is untouched.
        let before = std::fs::read_to_string(&path).unwrap();
        let mut bad = args(&path, "mallory");
        bad.key = "ab12".into();
        let error = trust(&bad).unwrap_err().to_string();
        assert!(error.contains("64 hex digits"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        // Untrust removes every entry of the label; the comments stay.
        untrust(&UntrustArgs {
            label: "mauro3".into(),
            key: None,
            policy: path.clone(),
            json: false,
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(original), "{text}");
        assert!(Policy::load(&path, &NoUrlImports)
            .unwrap()
            .developers
            .is_empty());
        let missing = untrust(&UntrustArgs {
            label: "nobody".into(),
            key: None,
            policy: path.clone(),
            json: false,
        });
        assert!(missing.is_err());
    }

    #[test]
    fn trusting_into_a_missing_file_creates_a_policy_and_a_broken_file_is_not_edited() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.toml");
        trust(&args(&path, "alice")).unwrap();
        let policy = Policy::load(&path, &NoUrlImports).unwrap();
        assert_eq!(policy.developers[0].label, "alice");
        // The header first, the rule with its defaults written out, then the developer.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# Trust policy of tuf-verifier"), "{text}");
        let rule = text.find("[rule]").unwrap();
        let developer = text.find("[[developer]]").unwrap();
        assert!(rule < developer, "{text}");
        assert_eq!(
            policy.rule,
            tuf_core::policy::file::Rule::default(),
            "{text}"
        );
        // A path that cannot be opened for another reason than its absence is an
        // error, not a new file.
        let under_a_file = path.join("policy.toml");
        let error = format!("{:#}", trust(&args(&under_a_file, "alice")).unwrap_err());
        assert!(error.starts_with("cannot read"), "{error}");
        let broken = dir.path().join("broken.toml");
        std::fs::write(&broken, "[rule]\nattestations = \"x\"\n").unwrap();
        let error = format!("{:#}", trust(&args(&broken, "alice")).unwrap_err());
        assert!(error.contains("broken.toml:2"), "{error}");
        assert_eq!(
            std::fs::read_to_string(&broken).unwrap(),
            "[rule]\nattestations = \"x\"\n"
        );
    }
}
