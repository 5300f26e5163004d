//! `tuf-verifier explain NAME [VERSION]`: what the proxy serves of a crate, version by
//! version, and why. Per version: the role that signed the release, whether its index
//! entry is signed (or authenticated by `cksum` alone), how upstream's line compares,
//! who yanked it, and each developer attestation with whether it is valid.
//!
//! The same judgement as the index path ([`crate::index_answer`]) computes it, either in
//! a running proxy (`--proxy URL` asks its `/explain/NAME[/VERSION]`) or here, from the
//! TUF repository directly (`--metadata`, `--root`, and `--upstream-index` to compare
//! with what upstream serves).
//!
//! An attestation is valid when its signature verifies, it is about exactly this release
//! as signed (name, version, length, hashes, index entry digest) and its key is one the
//! release's role authorises (an owner's). Anything else counts for nothing, and says
//! why. An attestation never authorises a release: the TUF delegation does.

use std::io::Write as _;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use serde::{Deserialize, Serialize};
use tuf_core::attestation::Attestation;
use tuf_core::keys::Key;

use crate::config::ServeArgs;
use crate::index_answer::{EntryAuth, Judge, UpstreamIndex, UpstreamLine, VersionAnswer};
use crate::signed_target::SignedTarget;
use crate::trust::TrustStore;
use crate::upstream::{self, IndexFetch};

/// Largest explanation read from a proxy.
const MAX_EXPLANATION_BYTES: u64 = 16 * 1024 * 1024;

/// `explain` options.
#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// The crate.
    pub name: String,
    /// One version of it [default: every version].
    pub version: Option<String>,
    /// Ask a running tuf-verifier proxy (its base URL, e.g. http://127.0.0.1:8080)
    /// instead of reading the TUF repository here.
    #[arg(long, value_name = "URL", conflicts_with_all = ["metadata", "root", "config"])]
    pub proxy: Option<String>,
    /// The upstream sparse index, to compare its lines with the signed entries [default:
    /// upstream_index from --config; without one, upstream is not asked].
    #[arg(long, value_name = "URL")]
    pub upstream_index: Option<String>,
    /// The proxy's TOML configuration file (metadata, root, tuf_targets, upstream_index,
    /// allowed_registries, require_signed_index_entries).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// The TUF repository's metadata: a base URL or a local directory.
    #[arg(long, value_name = "URL|DIR")]
    pub metadata: Option<String>,
    /// The TUF repository's target files [default: `targets/` beside the metadata].
    #[arg(long, value_name = "URL|DIR")]
    pub tuf_targets: Option<String>,
    /// The trusted root metadata file.
    #[arg(long, value_name = "FILE")]
    pub root: Option<std::path::PathBuf>,
    /// A trust policy file to judge the versions by (spec/trust-policy.md) [default:
    /// `policy` from --config; with --proxy, the proxy's own policy].
    #[arg(long, value_name = "FILE", conflicts_with = "proxy")]
    pub policy: Option<std::path::PathBuf>,
    /// Print the explanation as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What the proxy serves of one crate, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Explanation {
    /// True when something is served: the version asked for, or (without one) at least
    /// one version.
    pub ok: bool,
    /// The crate.
    pub name: String,
    /// The version asked for, if one was.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version: Option<String>,
    /// The crate's signed index file and the role that signs it; none when its role
    /// signs no index file (its versions are authenticated by `cksum` alone).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub index_file: Option<SignedFile>,
    /// What upstream answered: `listed`, `not found`, `unavailable: REASON`, `not asked`.
    pub upstream: String,
    /// Why nothing of the crate can be served, when that is so.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refusal: Option<String>,
    /// Each version, in the order the proxy serves them.
    pub versions: Vec<VersionExplanation>,
    /// When nothing is served: the trusted or well-known crates the name looks like, and
    /// how (a likely typosquat).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub looks_like: Vec<tuf_core::typosquat::LooksLike>,
}

/// A signed target and its role.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedFile {
    /// The target path.
    pub target: String,
    /// The role that signed it.
    pub role: String,
}

/// One version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionExplanation {
    /// The version.
    pub version: String,
    /// Whether the proxy serves its line.
    pub served: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refused: Option<String>,
    /// Its signed release (the `.crate` target) and its role, if signed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub release: Option<SignedFile>,
    /// `signed` (every field cargo reads is the owners'), `checksum-only` (only `cksum`
    /// is), or `none`.
    pub entry: EntryAuth,
    /// Upstream's line against the served one: `same`, `differs`, `missing` (withheld)
    /// or `unknown` (upstream not asked, or unavailable).
    pub upstream_line: String,
    /// The fields of upstream's line that differ from the signed entry.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub differing_fields: Vec<String>,
    /// Whether cargo sees it yanked.
    pub yanked: bool,
    /// Who yanked it: `owners` (their signed mark) and/or `upstream`.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub yanked_by: Vec<String>,
    /// The developers' attestations stored with the signed entry.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub attestations: Vec<AttestationExplanation>,
    /// The trust policy's verdict, when a policy is in force and the version passed
    /// every other check.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub policy: Option<PolicyExplanation>,
}

/// The trust policy's verdict on one version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyExplanation {
    /// Whether the policy trusts it.
    pub trusted: bool,
    /// Why, in words: who attested it, the exception's reason, or why it is not trusted.
    pub reason: String,
    /// The trusted developers who attested it, as `@label (keyid…)`.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub attested_by: Vec<String>,
    /// The exception that admits it: its reason.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exception: Option<String>,
}

impl PolicyExplanation {
    fn of(name: &str, verdict: &crate::policy::judge::Verdict) -> Self {
        use crate::policy::judge::Trusted;
        match verdict {
            Ok(Trusted::Attested { developers }) => {
                let by: Vec<String> = developers.iter().map(ToString::to_string).collect();
                Self {
                    trusted: true,
                    reason: format!("attested by {}", by.join(", ")),
                    attested_by: by,
                    exception: None,
                }
            }
            Ok(Trusted::Exception { reason, line }) => Self {
                trusted: true,
                reason: format!("admitted by the exception on line {line} of the policy: {reason}"),
                attested_by: Vec::new(),
                exception: Some(reason.clone()),
            },
            Err(why) => Self {
                trusted: false,
                reason: crate::policy::judge::reason(name, why),
                attested_by: Vec::new(),
                exception: None,
            },
        }
    }
}

/// One attestation, checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttestationExplanation {
    /// The label the attester gave (for messages: trust is by key).
    pub label: String,
    /// The attesting key's id.
    pub keyid: String,
    /// `release` or `review`.
    pub kind: String,
    /// When the attester says it was made.
    pub date: String,
    /// Valid: it verifies, is about this release as signed, and its key is an owner's or
    /// one the trust policy in force trusts for the crate.
    pub valid: bool,
    /// Why it is not valid.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub problem: Option<String>,
}

/// Checks `attestation` of `name` `version` against the signed release and entry, and
/// the keys `owners` the release's role authorises. `seen` holds the (keyid, kind) of the
/// attestations already counted: a second one by the same key counts for nothing.
fn check_attestation(
    attestation: &Attestation,
    name: &str,
    version: &VersionAnswer,
    owners: Option<&[Key]>,
    policy: Option<&crate::policy::file::Policy>,
    seen: &mut Vec<(String, String)>,
) -> AttestationExplanation {
    let trusted_by_policy = policy.is_some_and(|p| {
        p.trusted_for(name, &attestation.key.keyid())
            .next()
            .is_some()
    });
    let statement = &attestation.statement;
    let keyid = attestation.key.keyid().as_str().to_owned();
    let kind = statement.kind.as_str().to_owned();
    let problem = match (&version.release, &version.entry_digest) {
        (Some(release), Some(digest)) => match attestation.verify_for(
            name,
            &version.version,
            release.length,
            &release.hashes,
            digest,
        ) {
            Err(error) => Some(error.to_string()),
            Ok(()) => match owners {
                None => Some("the keys of the release's role are unknown (metadata changed: ask again)".to_owned()),
                Some(owners)
                    if !trusted_by_policy
                        && !owners.iter().any(|k| k.keyid() == attestation.key.keyid()) =>
                {
                    Some(format!(
                    "its key is not one that {} authorises: it counts for nothing unless a trust policy names it",
                    release.role
                ))
                }
                Some(_) if seen.contains(&(keyid.clone(), kind.clone())) => {
                    Some("a second attestation of this kind by the same key".to_owned())
                }
                Some(_) => None,
            },
        },
        _ => Some("the release is not signed".to_owned()),
    };
    if problem.is_none() {
        seen.push((keyid.clone(), kind.clone()));
    }
    AttestationExplanation {
        label: statement.label.clone(),
        keyid,
        kind,
        date: tuf_core::metadata::format_expires(&statement.date),
        valid: problem.is_none(),
        problem,
    }
}

fn signed_file(target: &SignedTarget) -> SignedFile {
    SignedFile {
        target: target.target.clone(),
        role: target.role.clone(),
    }
}

fn explain_version(
    trust: &TrustStore,
    policy: Option<&crate::policy::file::Policy>,
    name: &str,
    version: &VersionAnswer,
) -> VersionExplanation {
    let owners = version
        .release
        .as_deref()
        .and_then(|release| trust.authorised_keys(release));
    let mut seen = Vec::new();
    let attestations = version
        .attestations
        .iter()
        .map(|a| check_attestation(a, name, version, owners.as_deref(), policy, &mut seen))
        .collect();
    let (upstream_line, differing_fields) = match &version.upstream {
        UpstreamLine::Same => ("same", Vec::new()),
        UpstreamLine::Differs(fields) => {
            ("differs", fields.iter().map(|f| (*f).to_owned()).collect())
        }
        UpstreamLine::Missing => ("missing", Vec::new()),
        UpstreamLine::Unknown => ("unknown", Vec::new()),
    };
    let mut yanked_by = Vec::new();
    if version.yanked_by_owners {
        yanked_by.push("owners".to_owned());
    }
    if version.yanked_upstream {
        yanked_by.push("upstream".to_owned());
    }
    VersionExplanation {
        version: version.version.clone(),
        served: version.served(),
        refused: version.outcome.as_ref().err().map(ToString::to_string),
        release: version.release.as_deref().map(signed_file),
        entry: version.entry,
        upstream_line: upstream_line.to_owned(),
        differing_fields,
        yanked: version.served() && !yanked_by.is_empty(),
        yanked_by,
        attestations,
        policy: version
            .policy
            .as_ref()
            .map(|verdict| PolicyExplanation::of(name, verdict)),
    }
}

/// The policy in force where an explanation is made, and the snapshot it judges under.
pub struct PolicyInForce<'a> {
    /// The policy's state (its kept verdicts).
    pub state: &'a crate::policy::enforce::PolicyState,
    /// The snapshot version the verdicts hold for.
    pub snapshot: u64,
}

/// Explains crate `name` (one `version`, or all) as `judge` answers it, with what
/// upstream answered. Blocking.
pub fn explain(
    judge: &Judge<'_>,
    policy: Option<&PolicyInForce<'_>>,
    name: &str,
    version: Option<&str>,
    upstream: &UpstreamIndex,
    now: DateTime<Utc>,
) -> Explanation {
    let upstream_text = match upstream {
        UpstreamIndex::Listed(_) => "listed".to_owned(),
        UpstreamIndex::NotFound => "not found".to_owned(),
        UpstreamIndex::Unavailable(reason) => format!("unavailable: {reason}"),
        UpstreamIndex::NotAsked => "not asked".to_owned(),
    };
    let mut explanation = Explanation {
        ok: false,
        name: name.to_owned(),
        version: version.map(str::to_owned),
        index_file: None,
        upstream: upstream_text,
        refusal: None,
        looks_like: Vec::new(),
        versions: Vec::new(),
    };
    let answer = judge
        .index_file(name, now)
        .and_then(|index_file| judge.judge(name, index_file, upstream, now));
    let mut answer = match answer {
        Ok(answer) => answer,
        Err(refusal) => {
            explanation.refusal = Some(refusal.to_string());
            return explanation;
        }
    };
    let active = policy.map(|p| p.state.current());
    if let (Some(policy), Some(active)) = (policy, &active) {
        crate::policy::enforce::apply(
            policy.state,
            active,
            judge,
            policy.snapshot,
            name,
            &mut answer,
            now,
        );
        if answer.versions.iter().all(|v| !v.served()) {
            explanation.refusal = crate::policy::enforce::refusal(name, &answer).map(|r| r.text);
        }
    }
    explanation.index_file = answer.index_file.as_deref().map(signed_file);
    if answer.index_file.is_none() && judge.signed_entries_required {
        explanation.refusal = Some(format!(
            "no signed version of {name}: the crate has no signed index file and signed index entries are required"
        ));
    }
    if let Some(refusal) = &answer.blocking {
        explanation.refusal = Some(refusal.to_string());
    }
    explanation.versions = answer
        .versions
        .iter()
        .filter(|v| version.is_none_or(|asked| v.version.eq_ignore_ascii_case(asked)))
        .map(|v| explain_version(judge.trust, active.as_ref().map(|a| &a.policy), name, v))
        .collect();
    explanation.ok = explanation.refusal.is_none() && explanation.versions.iter().any(|v| v.served);
    explanation
}

/// The explanation as people read it.
pub fn render(explanation: &Explanation) -> String {
    let mut out = String::new();
    let signed_by = match &explanation.index_file {
        Some(file) => format!("index entries signed by {} ({})", file.role, file.target),
        None => "no signed index file: versions are authenticated by cksum alone".to_owned(),
    };
    out.push_str(&format!(
        "{}: {signed_by}; upstream: {}\n",
        explanation.name, explanation.upstream
    ));
    if let Some(refusal) = &explanation.refusal {
        out.push_str(&format!("  refused: {refusal}\n"));
    }
    if let Some(looks_like) = tuf_core::typosquat::describe(&explanation.looks_like) {
        out.push_str(&format!(
            "  a likely typosquat: `{}` {looks_like}\n",
            explanation.name
        ));
    }
    if explanation.versions.is_empty() {
        match &explanation.version {
            Some(version) => out.push_str(&format!(
                "  {version}: no such version, signed or upstream\n"
            )),
            None => out.push_str("  no versions, signed or upstream\n"),
        }
    }
    for version in &explanation.versions {
        match &version.refused {
            None => out.push_str(&format!("  {}: served\n", version.version)),
            Some(reason) => out.push_str(&format!("  {}: NOT SERVED: {reason}\n", version.version)),
        }
        match &version.release {
            Some(release) => {
                out.push_str(&format!("    release:     signed by {}\n", release.role))
            }
            None => out.push_str("    release:     not signed\n"),
        }
        let entry = match version.entry {
            EntryAuth::Signed => "signed",
            EntryAuth::ChecksumOnly => {
                "not signed: only its cksum is (a release signed before signed index entries)"
            }
            EntryAuth::None => "not signed",
        };
        out.push_str(&format!("    index entry: {entry}\n"));
        let upstream = match version.upstream_line.as_str() {
            _ if version.entry == EntryAuth::None => "lists it".to_owned(),
            "differs" => format!(
                "its line differs in {} (the signed entry is served)",
                version.differing_fields.join(", ")
            ),
            "missing" => "does not list it (the signed entry is served)".to_owned(),
            "same" => "the same line".to_owned(),
            _ => "not compared".to_owned(),
        };
        out.push_str(&format!("    upstream:    {upstream}\n"));
        let yanked = if version.yanked_by.is_empty() {
            "no".to_owned()
        } else {
            let by: Vec<&str> = version
                .yanked_by
                .iter()
                .map(|who| {
                    if who == "owners" {
                        "the owners"
                    } else {
                        who.as_str()
                    }
                })
                .collect();
            format!("yes, by {}", by.join(" and "))
        };
        out.push_str(&format!("    yanked:      {yanked}\n"));
        if let Some(policy) = &version.policy {
            let verdict = if policy.trusted {
                "trusted"
            } else {
                "NOT TRUSTED"
            };
            out.push_str(&format!("    policy:      {verdict}: {}\n", policy.reason));
        }
        if version.attestations.is_empty() && version.entry == EntryAuth::Signed {
            out.push_str("    attestations: none\n");
        }
        for attestation in &version.attestations {
            let verdict = match &attestation.problem {
                None => "valid".to_owned(),
                Some(problem) => format!("NOT VALID: {problem}"),
            };
            out.push_str(&format!(
                "    attestation: {} by {} (keyid {}), {}: {verdict}\n",
                attestation.kind,
                attestation.label,
                attestation.keyid.get(..16).unwrap_or(&attestation.keyid),
                attestation.date,
            ));
        }
    }
    out
}

/// What upstream has for crate `name`.
pub async fn ask_upstream(
    client: &upstream::UpstreamClient,
    upstream_index: &str,
    name: &str,
    max: u64,
) -> UpstreamIndex {
    let url = format!("{upstream_index}{}", upstream::index_path(name));
    match upstream::get_index(client, &url, max, None).await {
        Ok(IndexFetch::Body { body, .. }) => UpstreamIndex::Listed(body.into()),
        Ok(IndexFetch::NotFound) => UpstreamIndex::NotFound,
        Ok(IndexFetch::NotModified) => {
            UpstreamIndex::Unavailable("upstream answered 304 unasked".into())
        }
        Err(error) => UpstreamIndex::Unavailable(error.to_string()),
    }
}

/// `tuf-verifier explain`: true when something is served (exit 0).
pub async fn run(args: ExplainArgs) -> anyhow::Result<bool> {
    tuf_core::layout::validate_crate_name(&args.name)
        .with_context(|| format!("{:?} is not a crate name", args.name))?;
    let explanation = match &args.proxy {
        Some(proxy) => from_proxy(proxy, &args).await?,
        None => here(&args).await?,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&explanation)?)?;
    } else {
        write!(out, "{}", render(&explanation))?;
    }
    Ok(explanation.ok)
}

async fn from_proxy(proxy: &str, args: &ExplainArgs) -> anyhow::Result<Explanation> {
    let base = proxy.trim_end_matches('/');
    let url = match &args.version {
        Some(version) => format!("{base}/explain/{}/{version}", args.name),
        None => format!("{base}/explain/{}", args.name),
    };
    let client = upstream::UpstreamClient::new(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_secs(120),
        None,
    )?;
    let body = upstream::get_bounded(&client, &url, MAX_EXPLANATION_BYTES)
        .await
        .with_context(|| format!("cannot get an explanation from the proxy at {base}"))?;
    serde_json::from_slice(&body).with_context(|| {
        format!("{url} did not answer with an explanation (is it a tuf-verifier proxy?)")
    })
}

async fn here(args: &ExplainArgs) -> anyhow::Result<Explanation> {
    let config = ServeArgs {
        config: args.config.clone(),
        metadata: args.metadata.clone(),
        tuf_targets: args.tuf_targets.clone(),
        root: args.root.clone(),
        upstream_index: args.upstream_index.clone(),
        policy: args.policy.clone(),
        ..ServeArgs::default()
    }
    .resolve_repository()?;
    let policy = match config.policy.clone() {
        Some(path) => {
            let url_imports = crate::policy::imports::UrlImports::for_one_reading(
                config.connect_timeout,
                config.upstream_timeout,
            );
            let loaded =
                crate::policy::enforce::PolicyState::load_off_runtime(path, url_imports).await?;
            Some(loaded.context("the trust policy cannot be used")?)
        }
        None => None,
    };
    let upstream = match &config.upstream_index {
        Some(index) => {
            let client = upstream::UpstreamClient::new(
                config.connect_timeout,
                config.upstream_timeout,
                config.upstream_credential.clone(),
            )?;
            ask_upstream(&client, index, &args.name, config.max_index_size).await
        }
        None => UpstreamIndex::NotAsked,
    };
    let name = args.name.clone();
    let version = args.version.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Explanation> {
        let repository = crate::offline::OfflineRepository::open(&config)?;
        let judge = repository.judge();
        let in_force = policy.as_ref().map(|state| PolicyInForce {
            state,
            snapshot: repository.trust.snapshot_version().unwrap_or(0),
        });
        let mut explanation = explain(
            &judge,
            in_force.as_ref(),
            &name,
            version.as_deref(),
            &upstream,
            Utc::now(),
        );
        if !explanation.ok {
            // The shipped well-known names and the policy's (no crate was served here).
            let well_known =
                tuf_core::typosquat::parse_names(tuf_core::typosquat::WELL_KNOWN_CRATES);
            explanation.looks_like =
                crate::squat::SquatGuards::new(well_known, policy.map(std::sync::Arc::new))
                    .looks_like(&name);
        }
        Ok(explanation)
    })
    .await?
}
