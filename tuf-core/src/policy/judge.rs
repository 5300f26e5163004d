//! The trust rule, judged with no I/O (spec/trust-policy.md, "The rule"): a release is
//! trusted when
//!
//! 1. developers the policy trusts for the crate vouched for it: at least
//!    `rule.attestations` of them made a valid attestation of exactly this release
//!    (`release`, or `review` too when `rule.reviews-count`), or an exception admits it;
//! 2. only trusted developers released it: no valid `release` attestation is by a key the
//!    policy does not trust for the crate;
//! 3. with `rule.dependencies = "trusted"`, each of its normal and build dependencies
//!    (optional ones unless exempt; never dev-dependencies), read from its *signed* index
//!    entry, has a trusted version matching the requirement.
//!
//! An attestation that does not verify for the release counts for nothing, for or
//! against. The releases come from a [`ReleaseSource`]: what the proxy would serve
//! without a policy (signed, and passing every other check).

use std::collections::HashMap;

use crate::attestation::AttestationKind;
use crate::index_entry::{DependencyKind, IndexDependency};

use super::file::{
    developer_lines, fold_name, keyid_prefix, DependencyRule, OptionalDependencies, Policy,
};

/// The deepest chain of dependencies judged; deeper is refused.
pub const MAX_DEPENDENCY_DEPTH: usize = 128;

/// One attestation of a release, checked against the signed release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedAttestation {
    /// The label it carries (for messages).
    pub label: String,
    /// The signing key's keyid.
    pub keyid: String,
    /// Released or reviewed.
    pub kind: AttestationKind,
    /// `None` when it verifies for this release; otherwise why not.
    pub invalid: Option<String>,
}

/// A release as the proxy would serve it without a policy.
#[derive(Debug, Clone)]
pub struct Release {
    /// The version.
    pub version: semver::Version,
    /// Its attestations, each checked.
    pub attestations: Vec<CheckedAttestation>,
    /// Its dependencies from its signed index entry; `None` when its entry is not signed
    /// (a release judged by `cksum` alone), so its dependencies are upstream's word.
    pub dependencies: Option<Vec<IndexDependency>>,
    /// The release scanner's result recorded in its signed target, if any (point 4).
    pub scan: Option<crate::layout::RecordedScan>,
}

/// Where the judge reads a crate's releases.
pub trait ReleaseSource {
    /// Every release of crate `name` that would be served without a policy. `Err` when
    /// they cannot be known now (the reason).
    fn releases(&self, name: &str) -> Result<Vec<Release>, String>;
}

/// A developer as a release names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Developer {
    /// Its label.
    pub label: String,
    /// Its keyid.
    pub keyid: String,
}

impl std::fmt::Display for Developer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "@{} ({}…)", self.label, keyid_prefix(&self.keyid))
    }
}

/// Why a release is trusted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum Trusted {
    /// Trusted developers attested it.
    Attested {
        /// Who.
        developers: Vec<Developer>,
    },
    /// An exception of the policy admits it.
    Exception {
        /// The exception's reason.
        reason: String,
        /// Its line in the policy.
        line: usize,
    },
}

/// Why a release is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Untrusted {
    /// Too few trusted developers vouched for it (point 1).
    NotVouched {
        /// Trusted developers who did.
        trusted: Vec<Developer>,
        /// How many the rule asks for.
        needed: usize,
        /// Developers with a valid attestation whom the policy does not trust for it.
        untrusted: Vec<Developer>,
    },
    /// A developer the policy does not trust released it (point 2).
    AuthorNotTrusted {
        /// Who.
        developers: Vec<Developer>,
    },
    /// Its index entry is not signed, so its dependencies cannot be judged (point 3).
    EntryNotSigned,
    /// Held for a human (point 4): the release scanner's recorded score is above the
    /// policy's `[scan] hold-above`, and no developer trusted for the crate reviewed it.
    HeldForReview {
        /// The version held.
        version: String,
        /// The recorded score.
        score: u32,
        /// The policy's threshold for the crate.
        threshold: u32,
        /// The version the scan compared with.
        against: Option<String>,
        /// The recorded flags.
        flags: Vec<String>,
    },
    /// A dependency has no trusted version (point 3).
    Dependency {
        /// The dependency's crate.
        dependency: String,
        /// Its requirement.
        req: String,
        /// Why no version of it will do.
        failure: Box<DependencyFailure>,
    },
}

/// Why no version of a dependency is trusted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "failure", rename_all = "kebab-case")]
pub enum DependencyFailure {
    /// No served version matches the requirement.
    NoMatchingVersion,
    /// Versions match, none is trusted: the newest one's reason.
    NoTrustedVersion {
        /// The newest matching version.
        newest: String,
        /// Why it is not trusted.
        why: Untrusted,
    },
    /// The requirement cannot be read.
    BadRequirement {
        /// The parser's message.
        message: String,
    },
    /// The dependency depends back on a crate being judged.
    Cycle,
    /// The chain of dependencies is deeper than [`MAX_DEPENDENCY_DEPTH`].
    TooDeep,
    /// Its releases cannot be known now.
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// The judgement of one release.
pub type Verdict = Result<Trusted, Untrusted>;

/// Verdicts kept between judges (the proxy's, for one policy and one snapshot): a
/// dependency graph is judged once, not once per index request.
pub trait VerdictStore: Send + Sync {
    /// The verdict of `name` (folded) `version`, if known.
    fn get(&self, name: &str, version: &semver::Version) -> Option<Verdict>;
    /// Keeps a verdict.
    fn put(&self, name: &str, version: &semver::Version, verdict: &Verdict);
}

/// Judges releases under one policy, remembering each verdict (a dependency graph is
/// judged once per release, however many paths reach it).
pub struct Judge<'a> {
    policy: &'a Policy,
    source: &'a dyn ReleaseSource,
    store: Option<&'a dyn VerdictStore>,
    verdicts: HashMap<(String, semver::Version), Verdict>,
    releases: HashMap<String, Result<Vec<Release>, String>>,
    in_progress: Vec<(String, semver::Version)>,
    cycle_seen: bool,
}

impl<'a> Judge<'a> {
    /// A judge of `policy` reading releases from `source`.
    pub fn new(policy: &'a Policy, source: &'a dyn ReleaseSource) -> Self {
        Self {
            policy,
            source,
            store: None,
            verdicts: HashMap::new(),
            releases: HashMap::new(),
            in_progress: Vec::new(),
            cycle_seen: false,
        }
    }

    /// Also reads and keeps verdicts in `store`, which must belong to the same policy
    /// and the same releases.
    pub fn with_store(mut self, store: &'a dyn VerdictStore) -> Self {
        self.store = Some(store);
        self
    }

    /// Judges release `release` of crate `name`.
    pub fn judge(&mut self, name: &str, release: &Release) -> Verdict {
        let key = (fold_name(name), release.version.clone());
        if let Some(verdict) = self.verdicts.get(&key) {
            return verdict.clone();
        }
        if let Some(verdict) = self.store.and_then(|s| s.get(&key.0, &key.1)) {
            self.verdicts.insert(key, verdict.clone());
            return verdict;
        }
        self.in_progress.push(key.clone());
        let verdict = self.judge_uncached(name, release);
        self.in_progress.pop();
        // A verdict reached through a cycle depends on where the walk entered it: keep it
        // for this judge only.
        if !self.cycle_seen {
            if let Some(store) = self.store {
                store.put(&key.0, &key.1, &verdict);
            }
        }
        if self.in_progress.is_empty() {
            self.cycle_seen = false;
        }
        self.verdicts.insert(key, verdict.clone());
        verdict
    }

    fn judge_uncached(&mut self, name: &str, release: &Release) -> Verdict {
        let trusted = self.vouched(name, release)?;
        self.held(name, release, &trusted)?;
        if self.policy.rule.dependencies == DependencyRule::Trusted {
            let Some(dependencies) = &release.dependencies else {
                return Err(Untrusted::EntryNotSigned);
            };
            for dependency in dependencies {
                if !self.is_judged(dependency) {
                    continue;
                }
                self.dependency(dependency)?;
            }
        }
        Ok(trusted)
    }

    /// Point 4: a release the scanner scored above the crate's threshold waits for a
    /// review by a developer trusted for the crate (an exception, a human's decision,
    /// admits it too).
    fn held(&self, name: &str, release: &Release, trusted: &Trusted) -> Result<(), Untrusted> {
        let (Some(threshold), Some(scan)) = (self.policy.scan.hold_above(name), &release.scan)
        else {
            return Ok(());
        };
        if scan.score <= threshold || matches!(trusted, Trusted::Exception { .. }) {
            return Ok(());
        }
        let reviewed = release.attestations.iter().any(|a| {
            a.invalid.is_none()
                && a.kind == AttestationKind::Review
                && self.policy.trusted_for(name, &a.keyid).next().is_some()
        });
        if reviewed {
            return Ok(());
        }
        Err(Untrusted::HeldForReview {
            version: release.version.to_string(),
            score: scan.score,
            threshold,
            against: scan.against.clone(),
            flags: scan.flags.clone(),
        })
    }

    /// Points 1 and 2.
    fn vouched(&self, name: &str, release: &Release) -> Verdict {
        let valid = || release.attestations.iter().filter(|a| a.invalid.is_none());
        let developer = |a: &CheckedAttestation| Developer {
            label: a.label.clone(),
            keyid: a.keyid.clone(),
        };
        let is_trusted =
            |a: &CheckedAttestation| self.policy.trusted_for(name, &a.keyid).next().is_some();
        // Point 2 first: an untrusted author is the reason even when others vouched.
        let mut untrusted_authors: Vec<Developer> = valid()
            .filter(|a| a.kind == AttestationKind::Release && !is_trusted(a))
            .map(developer)
            .collect();
        untrusted_authors.sort();
        untrusted_authors.dedup_by(|a, b| a.keyid == b.keyid);
        if let Some(exception) = self.policy.exception_for(name, &release.version) {
            return Ok(Trusted::Exception {
                reason: exception.reason.clone(),
                line: exception.line,
            });
        }
        if !untrusted_authors.is_empty() {
            return Err(Untrusted::AuthorNotTrusted {
                developers: untrusted_authors,
            });
        }
        let counts = |a: &&CheckedAttestation| {
            a.kind == AttestationKind::Release || self.policy.rule.reviews_count
        };
        let mut trusted: Vec<Developer> = valid()
            .filter(counts)
            .filter(|a| is_trusted(a))
            .map(developer)
            .collect();
        trusted.sort();
        trusted.dedup_by(|a, b| a.keyid == b.keyid);
        if trusted.len() >= self.policy.rule.attestations {
            return Ok(Trusted::Attested {
                developers: trusted,
            });
        }
        let mut untrusted: Vec<Developer> = valid()
            .filter(counts)
            .filter(|a| !is_trusted(a))
            .map(developer)
            .collect();
        untrusted.sort();
        untrusted.dedup_by(|a, b| a.keyid == b.keyid);
        Err(Untrusted::NotVouched {
            trusted,
            needed: self.policy.rule.attestations,
            untrusted,
        })
    }

    fn is_judged(&self, dependency: &IndexDependency) -> bool {
        match dependency.kind {
            DependencyKind::Dev => false,
            DependencyKind::Normal | DependencyKind::Build => {
                !dependency.optional
                    || self.policy.rule.optional_dependencies == OptionalDependencies::Trusted
            }
        }
    }

    /// Point 3 for one dependency: some trusted release matches its requirement.
    fn dependency(&mut self, dependency: &IndexDependency) -> Result<(), Untrusted> {
        let crate_name = dependency.package.as_deref().unwrap_or(&dependency.name);
        let fail = |failure: DependencyFailure| Untrusted::Dependency {
            dependency: crate_name.to_owned(),
            req: dependency.req.clone(),
            failure: Box::new(failure),
        };
        let req = semver::VersionReq::parse(&dependency.req).map_err(|e| {
            fail(DependencyFailure::BadRequirement {
                message: e.to_string(),
            })
        })?;
        if self.in_progress.len() > MAX_DEPENDENCY_DEPTH {
            return Err(fail(DependencyFailure::TooDeep));
        }
        let folded = fold_name(crate_name);
        if !self.releases.contains_key(&folded) {
            let releases = self.source.releases(crate_name);
            self.releases.insert(folded.clone(), releases);
        }
        let mut matching: Vec<Release> = match self.releases.get(&folded) {
            Some(Ok(releases)) => releases
                .iter()
                .filter(|r| req.matches(&r.version))
                .cloned()
                .collect(),
            Some(Err(reason)) => {
                return Err(fail(DependencyFailure::Unavailable {
                    reason: reason.clone(),
                }))
            }
            None => Vec::new(),
        };
        // Newest first: the reason shown is the newest version's.
        matching.sort_by(|a, b| b.version.cmp(&a.version));
        let Some(newest) = matching.first().map(|r| r.version.to_string()) else {
            return Err(fail(DependencyFailure::NoMatchingVersion));
        };
        let mut newest_why = None;
        for release in &matching {
            let key = (folded.clone(), release.version.clone());
            if self.in_progress.contains(&key) {
                self.cycle_seen = true;
                continue;
            }
            match self.judge(crate_name, release) {
                Ok(_) => return Ok(()),
                Err(why) => {
                    newest_why.get_or_insert(why);
                }
            }
        }
        Err(fail(match newest_why {
            Some(why) => DependencyFailure::NoTrustedVersion { newest, why },
            // Versions matched (or the early return above was taken), and none was
            // judged: each was being judged already, up the chain.
            None => DependencyFailure::Cycle,
        }))
    }
}

/// What to do about an untrusted release: the developers to trust, if trusting someone
/// would help (the first link of the chain that names developers).
pub fn developers_to_trust(why: &Untrusted) -> Vec<Developer> {
    match why {
        Untrusted::NotVouched { untrusted, .. } => untrusted.clone(),
        Untrusted::AuthorNotTrusted { developers } => developers.clone(),
        Untrusted::EntryNotSigned | Untrusted::HeldForReview { .. } => Vec::new(),
        Untrusted::Dependency { failure, .. } => match failure.as_ref() {
            DependencyFailure::NoTrustedVersion { why, .. } => developers_to_trust(why),
            _ => Vec::new(),
        },
    }
}

/// The refusal of `name` `version` in words cargo shows the user, with the policy lines
/// that would admit it when trusting developers would.
pub fn explain(name: &str, version: &str, why: &Untrusted) -> String {
    let mut text = format!("Package {name} {version} cannot be a dependency, because ");
    describe(&mut text, name, why);
    text.push('.');
    let to_trust = developers_to_trust(why);
    if !to_trust.is_empty() {
        let labels: Vec<String> = to_trust.iter().map(|d| format!("@{}", d.label)).collect();
        let commands: Vec<String> = to_trust
            .iter()
            .map(|d| format!("`tuf-verifier policy trust {} --key {}`", d.label, d.keyid))
            .collect();
        text.push_str(&format!(
            " To use this package you need to add {} to your list of trusted developers: run \
             {}, or add to the policy:\n",
            labels.join(" and "),
            commands.join(" and ")
        ));
        for developer in &to_trust {
            text.push_str(&developer_lines(&developer.label, &developer.keyid));
        }
    }
    text
}

/// Why `name` is not trusted, as a clause ("you do not trust developer @mauro3 (…), who
/// released it"): [`explain`] without the sentence around it.
pub fn reason(name: &str, why: &Untrusted) -> String {
    let mut text = String::new();
    describe(&mut text, name, why);
    text
}

fn list(developers: &[Developer]) -> String {
    developers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(text: &mut String, name: &str, why: &Untrusted) {
    match why {
        Untrusted::NotVouched {
            trusted,
            needed,
            untrusted,
        } => {
            if untrusted.is_empty() && trusted.is_empty() {
                text.push_str("no developer attested it (a trusted developer must vouch for this release explicitly)");
            } else if untrusted.is_empty() {
                text.push_str(&format!(
                    "only {} trusted developer(s) attested it ({}), and your policy asks for {needed}",
                    trusted.len(),
                    list(trusted)
                ));
            } else {
                let who = if untrusted.len() == 1 {
                    "developer"
                } else {
                    "developers"
                };
                text.push_str(&format!(
                    "you do not trust {who} {}, who vouched for it",
                    list(untrusted)
                ));
                if !trusted.is_empty() {
                    text.push_str(&format!(
                        " (trusted: {}; your policy asks for {needed})",
                        list(trusted)
                    ));
                }
            }
        }
        Untrusted::AuthorNotTrusted { developers } => {
            let who = if developers.len() == 1 {
                "developer"
            } else {
                "developers"
            };
            text.push_str(&format!(
                "you do not trust {who} {}, who released it",
                list(developers)
            ));
        }
        Untrusted::HeldForReview {
            version,
            score,
            threshold,
            against,
            flags,
        } => {
            text.push_str(&format!(
                "held for review: the release scanner scored it {score}{} (your policy holds \
                 releases above {threshold}){}. A developer you trust for {name} releases it \
                 by reviewing it: `tuf-signer release attest {name} {version} --key \
                 REVIEWER.pem`, then publish",
                against
                    .as_ref()
                    .map(|a| format!(" against {a}"))
                    .unwrap_or_default(),
                if flags.is_empty() {
                    String::new()
                } else {
                    format!(": {}", flags.join("; "))
                }
            ));
        }
        Untrusted::EntryNotSigned => text.push_str(
            "its index entry is not signed, so its dependencies cannot be judged (release it \
             again with signed index entries)",
        ),
        Untrusted::Dependency {
            dependency,
            req,
            failure,
        } => {
            text.push_str(&format!("{dependency} {req} is required by {name}, and "));
            match failure.as_ref() {
                DependencyFailure::NoMatchingVersion => {
                    text.push_str("no signed version of it matches")
                }
                DependencyFailure::NoTrustedVersion { newest, why } => {
                    text.push_str(&format!(
                        "no matching version is trusted: {dependency} {newest}: "
                    ));
                    describe(text, dependency, why);
                }
                DependencyFailure::BadRequirement { message } => {
                    text.push_str(&format!("the requirement cannot be read ({message})"))
                }
                DependencyFailure::Cycle => {
                    text.push_str("it depends back on a crate being judged (a dependency cycle)")
                }
                DependencyFailure::TooDeep => text.push_str(&format!(
                    "the chain of dependencies is deeper than {MAX_DEPENDENCY_DEPTH}"
                )),
                DependencyFailure::Unavailable { reason } => {
                    text.push_str(&format!("its releases cannot be read now ({reason})"))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;
    use std::path::Path;

    const ALICE: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
    const BOB: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
    const MAURO: &str = "3333333333333333333333333333333333333333333333333333333333333333";

    fn policy(extra: &str) -> Policy {
        Policy::from_text(
            Path::new("policy.toml"),
            &format!(
                "{extra}\n[[developer]]\nlabel = \"alice\"\nkey = \"{ALICE}\"\n\
                 [[developer]]\nlabel = \"bob\"\nkey = \"{BOB}\"\ncrates = [\"bobs\"]\n"
            ),
            &crate::policy::file::NoUrlImports,
        )
        .unwrap()
    }

    fn attestation(label: &str, keyid: &str, kind: AttestationKind) -> CheckedAttestation {
        CheckedAttestation {
            label: label.into(),
            keyid: keyid.into(),
            kind,
            invalid: None,
        }
    }

    fn dep(name: &str, req: &str, kind: DependencyKind, optional: bool) -> IndexDependency {
        let line = format!(
            r#"{{"name":"x","vers":"1.0.0","deps":[{{"name":"{name}","req":"{req}","features":[],"optional":{optional},"default_features":true,"target":null,"kind":"{}"}}],"cksum":"{}","features":{{}},"yanked":false}}"#,
            kind.as_str(),
            "0".repeat(64)
        );
        crate::index_entry::IndexEntry::parse_line(line.as_bytes())
            .unwrap()
            .deps
            .remove(0)
    }

    fn release(
        version: &str,
        attestations: Vec<CheckedAttestation>,
        deps: Vec<IndexDependency>,
    ) -> Release {
        Release {
            version: semver::Version::parse(version).unwrap(),
            attestations,
            dependencies: Some(deps),
            scan: None,
        }
    }

    #[derive(Default)]
    struct Registry(HashMap<String, Vec<Release>>);

    impl ReleaseSource for Registry {
        fn releases(&self, name: &str) -> Result<Vec<Release>, String> {
            if name == "offline" {
                return Err("upstream unreachable".into());
            }
            Ok(self.0.get(name).cloned().unwrap_or_default())
        }
    }

    fn alice() -> CheckedAttestation {
        attestation("alice", ALICE, AttestationKind::Release)
    }
    fn mauro() -> CheckedAttestation {
        attestation("mauro3", MAURO, AttestationKind::Release)
    }

    #[test]
    fn a_release_attested_by_a_trusted_developer_is_trusted() {
        let p = policy("");
        let registry = Registry::default();
        let mut judge = Judge::new(&p, &registry);
        let verdict = judge.judge("good", &release("1.0.0", vec![alice()], vec![]));
        let Ok(Trusted::Attested { developers }) = verdict else {
            panic!("{verdict:?}")
        };
        assert_eq!(developers[0].label, "alice");
    }

    #[test]
    fn an_untrusted_author_is_named_with_the_line_to_add() {
        let p = policy("");
        let registry = Registry::default();
        let mut judge = Judge::new(&p, &registry);
        let why = judge
            .judge("parameters", &release("0.3.1", vec![mauro()], vec![]))
            .unwrap_err();
        assert!(
            matches!(&why, Untrusted::AuthorNotTrusted { developers } if developers[0].keyid == MAURO)
        );
        // Exactly as spec/trust-policy.md shows it.
        assert_eq!(
            explain("parameters", "0.3.1", &why),
            format!(
                "Package parameters 0.3.1 cannot be a dependency, because you do not trust \
                 developer @mauro3 (33333333…), who released it. To use this package you need \
                 to add @mauro3 to your list of trusted developers: run `tuf-verifier policy \
                 trust mauro3 --key {MAURO}`, or add to the policy:\n\
                 [[developer]]\nlabel = \"mauro3\"\nkey = \"{MAURO}\"\n"
            )
        );
        // An untrusted author fails the release even when a trusted developer reviewed it.
        let review = attestation("alice", ALICE, AttestationKind::Review);
        assert!(judge
            .judge(
                "parameters",
                &release("0.3.2", vec![mauro(), review], vec![])
            )
            .is_err());
    }

    #[test]
    fn no_attestation_or_only_invalid_ones_is_not_vouched() {
        let p = policy("");
        let registry = Registry::default();
        let mut judge = Judge::new(&p, &registry);
        let why = judge
            .judge("quiet", &release("1.0.0", vec![], vec![]))
            .unwrap_err();
        assert_eq!(
            why,
            Untrusted::NotVouched {
                trusted: vec![],
                needed: 1,
                untrusted: vec![]
            }
        );
        assert!(explain("quiet", "1.0.0", &why).contains("no developer attested it"));
        let mut forged = alice();
        forged.invalid = Some("bad signature".into());
        assert!(judge
            .judge("quiet", &release("1.0.1", vec![forged], vec![]))
            .is_err());
        // An invalid attestation by an untrusted author does not count against either.
        let mut bad_mauro = mauro();
        bad_mauro.invalid = Some("over another release".into());
        assert!(judge
            .judge("quiet", &release("1.0.2", vec![alice(), bad_mauro], vec![]))
            .is_ok());
    }

    #[test]
    fn scope_thresholds_and_reviews_follow_the_rule() {
        let p = policy("[rule]\nattestations = 2\nreviews-count = false\n");
        let registry = Registry::default();
        let mut judge = Judge::new(&p, &registry);
        let bob = attestation("bob", BOB, AttestationKind::Release);
        // Bob is trusted for `bobs` only: elsewhere his release attestation is untrusted.
        assert!(judge
            .judge(
                "bobs",
                &release("1.0.0", vec![alice(), bob.clone()], vec![])
            )
            .is_ok());
        assert!(matches!(
            judge.judge("other", &release("1.0.0", vec![alice(), bob], vec![])),
            Err(Untrusted::AuthorNotTrusted { .. })
        ));
        // Reviews do not count here: alice's release and bob's review are one of two.
        let bob_review = attestation("bob", BOB, AttestationKind::Review);
        let why = judge
            .judge("bobs", &release("1.0.1", vec![alice(), bob_review], vec![]))
            .unwrap_err();
        assert!(
            matches!(why, Untrusted::NotVouched { ref trusted, needed: 2, .. } if trusted.len() == 1),
            "{why:?}"
        );
        // The same key twice is one developer.
        assert!(judge
            .judge("bobs", &release("1.0.2", vec![alice(), alice()], vec![]))
            .is_err());
    }

    #[test]
    fn an_exception_admits_the_release_with_its_reason_but_not_its_dependencies() {
        let p = policy("[[exception]]\ncrate = \"parameters\"\nversion = \"=0.3.1\"\nreason = \"audited by hand\"\n");
        let mut registry = Registry::default();
        registry
            .0
            .insert("evil".into(), vec![release("1.0.0", vec![mauro()], vec![])]);
        let mut judge = Judge::new(&p, &registry);
        assert_eq!(
            judge.judge("parameters", &release("0.3.1", vec![mauro()], vec![])),
            Ok(Trusted::Exception {
                reason: "audited by hand".into(),
                line: 1
            })
        );
        assert!(judge
            .judge("parameters", &release("0.3.2", vec![mauro()], vec![]))
            .is_err());
        let with_dep = release(
            "0.3.1",
            vec![],
            vec![dep("evil", "^1", DependencyKind::Normal, false)],
        );
        let mut judge = Judge::new(&p, &registry);
        assert!(matches!(
            judge.judge("parameters", &with_dep),
            Err(Untrusted::Dependency { .. })
        ));
    }

    #[test]
    fn dependencies_must_have_a_trusted_matching_version() {
        let p = policy("");
        let mut registry = Registry::default();
        registry.0.insert(
            "parameters".into(),
            vec![
                release("0.3.1", vec![mauro()], vec![]),
                release("0.4.0", vec![alice()], vec![]),
            ],
        );
        let good = |req: &str| {
            release(
                "1.0.0",
                vec![alice()],
                vec![dep("parameters", req, DependencyKind::Normal, false)],
            )
        };
        // (A judge remembers each release's verdict: one judge per variant of `good`.)
        assert!(Judge::new(&p, &registry)
            .judge("good", &good("^0.4"))
            .is_ok());
        let why = Judge::new(&p, &registry)
            .judge("good", &good("^0.3"))
            .unwrap_err();
        let text = explain("good", "1.0.0", &why);
        // As spec/trust-policy.md shows it.
        assert!(
            text.starts_with(
                "Package good 1.0.0 cannot be a dependency, because parameters ^0.3 is \
                 required by good, and no matching version is trusted: parameters 0.3.1: you \
                 do not trust developer @mauro3 (33333333…), who released it. To use this \
                 package you need to add @mauro3 to your list of trusted developers: "
            ),
            "{text}"
        );
        assert_eq!(developers_to_trust(&why)[0].keyid, MAURO);
        let mut judge = Judge::new(&p, &registry);
        assert!(matches!(
            judge.judge("good", &good("^9")),
            Err(Untrusted::Dependency { ref failure, .. }) if **failure == DependencyFailure::NoMatchingVersion
        ));
        // Dev-dependencies are exempt; optional ones are judged unless exempt.
        let dev = release(
            "1.0.0",
            vec![alice()],
            vec![dep("parameters", "^0.3", DependencyKind::Dev, false)],
        );
        let optional = release(
            "1.0.0",
            vec![alice()],
            vec![dep("parameters", "^0.3", DependencyKind::Normal, true)],
        );
        let build = release(
            "1.0.0",
            vec![alice()],
            vec![dep("parameters", "^0.3", DependencyKind::Build, false)],
        );
        assert!(Judge::new(&p, &registry).judge("good", &dev).is_ok());
        assert!(Judge::new(&p, &registry).judge("good", &optional).is_err());
        assert!(Judge::new(&p, &registry).judge("good", &build).is_err());
        let exempt = policy("[rule]\noptional-dependencies = \"exempt\"\n");
        assert!(Judge::new(&exempt, &registry)
            .judge("good", &optional)
            .is_ok());
        let any = policy("[rule]\ndependencies = \"any\"\n");
        assert!(Judge::new(&any, &registry)
            .judge("good", &good("^0.3"))
            .is_ok());
    }

    #[test]
    fn a_rename_is_judged_by_its_real_crate_and_unknowable_releases_fail_closed() {
        let p = policy("");
        let mut registry = Registry::default();
        registry.0.insert(
            "parameters".into(),
            vec![release("0.3.1", vec![mauro()], vec![])],
        );
        let mut renamed = dep("params", "^0.3", DependencyKind::Normal, false);
        renamed.package = Some("parameters".into());
        let mut judge = Judge::new(&p, &registry);
        assert!(matches!(
            judge.judge("good", &release("1.0.0", vec![alice()], vec![renamed])),
            Err(Untrusted::Dependency { ref dependency, .. }) if dependency == "parameters"
        ));
        let offline = release(
            "1.0.0",
            vec![alice()],
            vec![dep("offline", "^1", DependencyKind::Normal, false)],
        );
        assert!(matches!(
            Judge::new(&p, &registry).judge("good", &offline),
            Err(Untrusted::Dependency { ref failure, .. }) if matches!(**failure, DependencyFailure::Unavailable { .. })
        ));
        let unsigned_entry = Release {
            dependencies: None,
            ..release("1.0.0", vec![alice()], vec![])
        };
        assert_eq!(
            Judge::new(&p, &registry).judge("good", &unsigned_entry),
            Err(Untrusted::EntryNotSigned)
        );
    }

    #[test]
    fn the_reason_is_the_clause_explain_gives() {
        let why = Untrusted::AuthorNotTrusted {
            developers: vec![Developer {
                label: "mauro3".into(),
                keyid: MAURO.into(),
            }],
        };
        let reason = reason("parameters", &why);
        assert!(
            reason.starts_with("you do not trust developer @mauro3 (33333333"),
            "{reason}"
        );
        assert!(explain("parameters", "0.3.1", &why).starts_with(&format!(
            "Package parameters 0.3.1 cannot be a dependency, because {reason}."
        )));
    }

    #[test]
    fn each_way_of_not_being_vouched_for_is_said_in_its_own_words() {
        let d = |label: &str, keyid: &str| Developer {
            label: label.into(),
            keyid: keyid.into(),
        };
        let not_vouched = |trusted: Vec<Developer>, untrusted: Vec<Developer>| {
            reason(
                "good",
                &Untrusted::NotVouched {
                    trusted,
                    needed: 2,
                    untrusted,
                },
            )
        };
        let alice = || d("alice", ALICE);
        let mauro = || d("mauro3", MAURO);
        let bob = || d("bob", BOB);
        assert!(not_vouched(vec![], vec![]).starts_with("no developer attested it"));
        assert!(not_vouched(vec![alice()], vec![])
            .starts_with("only 1 trusted developer(s) attested it (@alice (a1a1a1a1…)), and your policy asks for 2"));
        assert_eq!(
            not_vouched(vec![], vec![mauro()]),
            "you do not trust developer @mauro3 (33333333…), who vouched for it"
        );
        assert_eq!(
            not_vouched(vec![alice()], vec![mauro(), bob()]),
            "you do not trust developers @mauro3 (33333333…), @bob (b0b0b0b0…), who vouched \
             for it (trusted: @alice (a1a1a1a1…); your policy asks for 2)"
        );
        let authors = reason(
            "good",
            &Untrusted::AuthorNotTrusted {
                developers: vec![mauro(), bob()],
            },
        );
        assert!(
            authors.starts_with("you do not trust developers @mauro3"),
            "{authors}"
        );
    }

    #[test]
    fn a_dependency_cycle_is_not_trusted_and_ends() {
        let p = policy("");
        let mut registry = Registry::default();
        registry.0.insert(
            "a".into(),
            vec![release(
                "1.0.0",
                vec![alice()],
                vec![dep("b", "^1", DependencyKind::Normal, false)],
            )],
        );
        registry.0.insert(
            "b".into(),
            vec![release(
                "1.0.0",
                vec![alice()],
                vec![dep("a", "^1", DependencyKind::Normal, false)],
            )],
        );
        let a = registry.0["a"][0].clone();
        let why = Judge::new(&p, &registry).judge("a", &a).unwrap_err();
        assert!(explain("a", "1.0.0", &why).contains("cycle"), "{why:?}");
    }

    /// A store that keeps what it is given, as the proxy's does per snapshot.
    #[derive(Default)]
    struct KeptVerdicts(std::sync::Mutex<HashMap<(String, semver::Version), Verdict>>);

    impl VerdictStore for KeptVerdicts {
        fn get(&self, name: &str, version: &semver::Version) -> Option<Verdict> {
            self.0
                .lock()
                .unwrap()
                .get(&(name.to_owned(), version.clone()))
                .cloned()
        }
        fn put(&self, name: &str, version: &semver::Version, verdict: &Verdict) {
            self.0
                .lock()
                .unwrap()
                .insert((name.to_owned(), version.clone()), verdict.clone());
        }
    }

    #[test]
    fn verdicts_are_kept_between_judges_except_those_reached_through_a_cycle() {
        let p = policy("");
        let mut registry = Registry::default();
        registry
            .0
            .insert("leaf".into(), vec![release("1.0.0", vec![alice()], vec![])]);
        let top = release(
            "1.0.0",
            vec![alice()],
            vec![dep("leaf", "^1", DependencyKind::Normal, false)],
        );
        let kept = KeptVerdicts::default();
        assert!(Judge::new(&p, &registry)
            .with_store(&kept)
            .judge("Top", &top)
            .is_ok());
        let v1 = semver::Version::new(1, 0, 0);
        assert!(
            kept.get("top", &v1).is_some_and(|v| v.is_ok()),
            "kept by folded name"
        );
        assert!(kept.get("leaf", &v1).is_some());
        // A later judge answers from the store without reading the registry.
        let empty = Registry::default();
        assert!(Judge::new(&p, &empty)
            .with_store(&kept)
            .judge("top", &top)
            .is_ok());
        // Through a cycle a verdict depends on where the walk entered: not kept.
        let mut cyclic = Registry::default();
        for (name, other) in [("a", "b"), ("b", "a")] {
            cyclic.0.insert(
                name.into(),
                vec![release(
                    "1.0.0",
                    vec![alice()],
                    vec![dep(other, "^1", DependencyKind::Normal, false)],
                )],
            );
        }
        let a = cyclic.0["a"][0].clone();
        let kept_cyclic = KeptVerdicts::default();
        assert!(Judge::new(&p, &cyclic)
            .with_store(&kept_cyclic)
            .judge("a", &a)
            .is_err());
        assert!(kept_cyclic.0.lock().unwrap().is_empty());
    }

    #[test]
    fn an_untrusted_author_is_named_once_however_many_times_they_attested() {
        let p = policy("");
        let registry = Registry::default();
        let verdict = Judge::new(&p, &registry).judge(
            "parameters",
            &release("0.3.1", vec![mauro(), alice(), mauro()], vec![]),
        );
        let Err(Untrusted::AuthorNotTrusted { developers }) = verdict else {
            panic!("{verdict:?}")
        };
        assert_eq!(developers.len(), 1, "{developers:?}");
        assert_eq!(developers[0].label, "mauro3");
    }

    #[test]
    fn a_review_by_an_untrusted_developer_does_not_make_them_an_author() {
        let p = policy("");
        let registry = Registry::default();
        let stranger_review = attestation("mauro3", MAURO, AttestationKind::Review);
        let verdict = Judge::new(&p, &registry).judge(
            "good",
            &release("1.0.0", vec![alice(), stranger_review], vec![]),
        );
        assert!(
            matches!(&verdict, Ok(Trusted::Attested { developers }) if developers.len() == 1),
            "{verdict:?}"
        );
    }

    #[test]
    fn a_chain_of_dependencies_is_judged_to_its_depth_limit_and_refused_past_it() {
        let p = policy("");
        // c0 → c1 → … → c{last}: judging c0 asks for c{k} with k crates in progress.
        let chain = |last: usize| {
            let mut registry = Registry::default();
            for i in 0..=last {
                let deps = if i < last {
                    vec![dep(
                        &format!("c{}", i + 1),
                        "^1",
                        DependencyKind::Normal,
                        false,
                    )]
                } else {
                    vec![]
                };
                registry
                    .0
                    .insert(format!("c{i}"), vec![release("1.0.0", vec![alice()], deps)]);
            }
            registry
        };
        let deepest = chain(MAX_DEPENDENCY_DEPTH);
        let top = deepest.0["c0"][0].clone();
        let verdict = Judge::new(&p, &deepest).judge("c0", &top);
        assert!(verdict.is_ok(), "{verdict:?}");
        let too_deep = chain(MAX_DEPENDENCY_DEPTH + 1);
        let why = Judge::new(&p, &too_deep).judge("c0", &top).unwrap_err();
        assert!(
            explain("c0", "1.0.0", &why).contains("deeper than 128"),
            "{why:?}"
        );
    }

    #[test]
    fn not_vouched_names_the_trusted_and_the_untrusted_who_did_vouch_once_each() {
        let p = policy("[rule]\nattestations = 2\n");
        let registry = Registry::default();
        let review = |label: &str, keyid: &str| attestation(label, keyid, AttestationKind::Review);
        let verdict = Judge::new(&p, &registry).judge(
            "good",
            &release(
                "1.0.0",
                vec![alice(), review("mauro3", MAURO), review("mauro3", MAURO)],
                vec![],
            ),
        );
        let Err(Untrusted::NotVouched {
            trusted,
            needed,
            untrusted,
        }) = verdict
        else {
            panic!("{verdict:?}")
        };
        assert_eq!(needed, 2);
        let labels = |d: &[Developer]| d.iter().map(|d| d.label.clone()).collect::<Vec<_>>();
        assert_eq!(labels(&trusted), ["alice"]);
        assert_eq!(labels(&untrusted), ["mauro3"], "once, however many times");
    }

    #[test]
    fn a_wide_graph_is_judged_once_per_release() {
        struct Counting(Registry, std::cell::Cell<usize>);
        impl ReleaseSource for Counting {
            fn releases(&self, name: &str) -> Result<Vec<Release>, String> {
                self.1.set(self.1.get() + 1);
                self.0.releases(name)
            }
        }
        let p = policy("");
        let mut registry = Registry::default();
        // 200 crates, each depending on every earlier one's version 1.
        for i in 0..200 {
            let deps = (0..i)
                .map(|j| dep(&format!("c{j}"), "^1", DependencyKind::Normal, false))
                .collect();
            registry
                .0
                .insert(format!("c{i}"), vec![release("1.0.0", vec![alice()], deps)]);
        }
        let top = registry.0["c199"][0].clone();
        let source = Counting(registry, std::cell::Cell::new(0));
        assert!(Judge::new(&p, &source).judge("c199", &top).is_ok());
        assert_eq!(source.1.get(), 199, "each crate's releases are read once");
    }

    #[test]
    fn a_release_scored_above_the_threshold_waits_for_a_trusted_review() {
        let registry = Registry::default();
        let scanned = |score| {
            let mut r = release(
                "1.1.0",
                vec![attestation("alice", ALICE, AttestationKind::Release)],
                vec![],
            );
            r.scan = Some(crate::layout::RecordedScan {
                score,
                against: Some("1.0.0".into()),
                flags: vec!["build.rs: a build script appears (20)".into()],
            });
            r
        };
        // No [scan]: nothing is held, whatever the score.
        let p = policy("");
        assert!(Judge::new(&p, &registry)
            .judge("good", &scanned(90))
            .is_ok());
        let p = policy("[scan]\nhold-above = 40\n[scan.crates]\nlenient = 100\n");
        assert!(
            Judge::new(&p, &registry)
                .judge("good", &scanned(40))
                .is_ok(),
            "at the threshold"
        );
        let why = Judge::new(&p, &registry)
            .judge("good", &scanned(41))
            .unwrap_err();
        assert!(
            matches!(
                why,
                Untrusted::HeldForReview {
                    score: 41,
                    threshold: 40,
                    ..
                }
            ),
            "{why:?}"
        );
        let text = explain("good", "1.1.0", &why);
        assert!(
            text.contains("held for review: the release scanner scored it 41 against 1.0.0"),
            "{text}"
        );
        assert!(
            text.contains("`tuf-signer release attest good 1.1.0 --key REVIEWER.pem`"),
            "{text}"
        );
        assert!(
            text.contains("build.rs: a build script appears (20)"),
            "{text}"
        );
        // Per crate, by folded name.
        assert!(Judge::new(&p, &registry)
            .judge("Lenient", &scanned(90))
            .is_ok());
        // A review by a developer trusted for the crate releases it; bob is not trusted
        // for `good`, and a release attestation is no review.
        let mut reviewed = scanned(90);
        reviewed
            .attestations
            .push(attestation("bob", BOB, AttestationKind::Review));
        reviewed
            .attestations
            .push(attestation("alice", ALICE, AttestationKind::Release));
        assert!(Judge::new(&p, &registry).judge("good", &reviewed).is_err());
        reviewed
            .attestations
            .push(attestation("alice", ALICE, AttestationKind::Review));
        assert!(Judge::new(&p, &registry).judge("good", &reviewed).is_ok());
        // An exception, a human's decision, admits it too.
        let excepted = policy(
            "[scan]\nhold-above = 40\n[[exception]]\ncrate = \"good\"\nversion = \"=1.1.0\"\nreason = \"read by hand\"\n",
        );
        assert!(Judge::new(&excepted, &registry)
            .judge("good", &scanned(90))
            .is_ok());
        // An invalid review counts for nothing.
        let mut forged = scanned(90);
        let mut review = attestation("alice", ALICE, AttestationKind::Review);
        review.invalid = Some("bad signature".into());
        forged.attestations.push(review);
        assert!(Judge::new(&p, &registry).judge("good", &forged).is_err());
    }
}
