//! Auditing a whole repository as a client would see it, listing every problem rather
//! than stopping at the first: the signer's `verify` command, and the check publish makes
//! before it switches to new metadata. (The threshold signature check of one document is
//! [`crate::verify`]; an audit runs it, through the client, on every role.)
//!
//! The walk uses the client's own state machine ([`TrustedMetadataSet`]): the root chain
//! from a trusted root (§5.3), timestamp (§5.4), snapshot (§5.5), targets (§5.6), then
//! every delegated role breadth-first through its delegator (§5.6.7), including each
//! succinct hash bin. For each target it checks that a client looking the path up
//! (pre-order depth-first, terminating delegations, §5.6.7.2) reaches the role that lists
//! it, and optionally that the hash-prefixed tarball on disk matches.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::content::{check_relative_target_path, hashed_target_path};
use super::source::MetadataSource;
use super::{Progress, RepositoryError};
use crate::client::{
    find_target, quote_role_name, Limits, TargetFind, TrustError, TrustedMetadataSet,
};
use crate::crate_index::{CrateIndexError, CrateIndexFile};
use crate::fs::BoundedReadError;
use crate::hash::{verify_length_and_hashes, HashError};
use crate::layout::{crate_index_path, crate_target_path, tarball_is_upstream};
use crate::metadata::{format_expires, Delegations, Role, TargetFile};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A client would refuse something, or a release cannot be downloaded.
    Error,
    /// Worth knowing, harmless to clients.
    Warning,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The role concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The target concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: ")?;
        if let Some(role) = &self.role {
            write!(f, "{role}: ")?;
        }
        if let Some(target) = &self.target {
            write!(f, "{target}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// What to check.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The time expiry is judged against.
    pub reference_time: DateTime<Utc>,
    /// Download limits, as a client's.
    pub limits: Limits,
    /// Check each release tarball here (the repository's `targets/` directory).
    pub targets_dir: Option<PathBuf>,
    /// Only these roles changed: unchanged hash bins of an unchanged delegator are not
    /// re-read, and only changed roles' targets are checked. `None` checks everything.
    pub changed_roles: Option<BTreeSet<String>>,
    /// List the release tarballs that stay upstream in
    /// [`AuditReport::upstream_releases`], for a caller that fetches and checks them.
    /// Off, they are only counted: a million releases listed cost a gigabyte.
    pub list_upstream_releases: bool,
}

impl AuditOptions {
    /// Checks everything (metadata only) at `reference_time`.
    pub fn new(reference_time: DateTime<Utc>) -> Self {
        Self {
            reference_time,
            limits: Limits {
                // A repository's own audit reads whole bins and large snapshots.
                max_snapshot_length: 512 * 1024 * 1024,
                max_targets_length: 512 * 1024 * 1024,
                ..Limits::default()
            },
            targets_dir: None,
            changed_roles: None,
            list_upstream_releases: false,
        }
    }
}

/// The result of an audit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditReport {
    /// Every problem found.
    pub problems: Vec<Problem>,
    /// Version of the newest root reached.
    pub root_version: Option<u64>,
    /// Version of the timestamp.
    pub timestamp_version: Option<u64>,
    /// Version of the snapshot.
    pub snapshot_version: Option<u64>,
    /// Targets roles verified (top-level and delegated).
    pub roles_verified: usize,
    /// Targets whose lookup was checked.
    pub targets_checked: usize,
    /// Tarballs whose length and hashes were checked.
    pub target_files_checked: usize,
    /// Release tarballs the repository does not store, signed as served only upstream
    /// (checked by the caller against upstream, if at all: `verify --fetch-targets`).
    pub releases_upstream: usize,
    /// Those releases, with the name and version of their signed index line when the
    /// audit read it (only with [`AuditOptions::list_upstream_releases`]).
    #[serde(skip)]
    pub upstream_releases: Vec<UpstreamReleaseFile>,
}

/// A release tarball signed as served only upstream ([`crate::layout::tarball_is_upstream`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamReleaseFile {
    /// The role that lists it.
    pub role: String,
    /// Its target path.
    pub path: String,
    /// Crate name and version, from its signed index line (`None` when the audit did
    /// not read the line: a partial audit, or a release without one, which is an error
    /// of its own).
    pub release: Option<(String, String)>,
    /// What is signed.
    pub info: TargetFile,
}

impl AuditReport {
    /// Whether no error was found (warnings allowed).
    pub fn is_ok(&self) -> bool {
        !self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    /// The errors, as text.
    pub fn errors(&self) -> Vec<String> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(ToString::to_string)
            .collect()
    }

    /// The errors (warnings dropped).
    pub fn into_errors(self) -> Vec<Problem> {
        self.problems
            .into_iter()
            .filter(|p| p.severity == Severity::Error)
            .collect()
    }

    fn error(&mut self, role: Option<&str>, target: Option<&str>, message: impl Into<String>) {
        self.push(Severity::Error, role, target, message);
    }

    fn push(
        &mut self,
        severity: Severity,
        role: Option<&str>,
        target: Option<&str>,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem {
            severity,
            role: role.map(str::to_owned),
            target: target.map(str::to_owned),
            message: message.into(),
        });
    }
}

/// Audits the repository in `source` as a client holding `trusted_root` would see it:
/// every role through the client's checks, every target's lookup, optionally every
/// tarball.
pub fn audit_repository(
    source: &dyn MetadataSource,
    trusted_root: &[u8],
    options: &AuditOptions,
    progress: &dyn Progress,
) -> AuditReport {
    let mut audit = Audit {
        source,
        options,
        limits: options.limits,
        report: AuditReport::default(),
        release_names: HashMap::new(),
    };
    // Each step records what stops it in the report; later steps need the earlier ones.
    let Some(mut trusted) = audit.root_chain(trusted_root) else {
        return audit.report;
    };
    let consistent = trusted.root().signed().consistent_snapshot();
    if audit.timestamp(&mut trusted).is_none() || audit.snapshot(&mut trusted, consistent).is_none()
    {
        return audit.report;
    }
    let loaded = audit.targets_roles(&mut trusted, consistent);
    audit.target_lookups(&trusted, &loaded, consistent, progress);
    // A large repository's trusted set is millions of allocations (0.2 s at 1,000,000
    // releases): they are freed on a thread of their own, not before the report comes
    // back. If no thread can be had, here.
    let freeing = std::thread::Builder::new().name("audit-free".into());
    freeing.spawn(move || drop(trusted)).ok();
    let names = std::mem::take(&mut audit.release_names);
    for upstream in &mut audit.report.upstream_releases {
        upstream.release = names.get(&upstream.path).cloned();
    }
    audit.report
}

/// The file name of `role` at `version`: versioned under consistent snapshots.
fn metadata_file_name(role: &str, version: u64, consistent: bool) -> String {
    if consistent {
        format!("{version}.{}.json", quote_role_name(role))
    } else {
        format!("{}.json", quote_role_name(role))
    }
}

/// Targets roles read and verified together ([`Audit::targets_roles`]): enough to keep
/// every core busy, few enough that their bytes (a few hundred KB each in a large
/// registry) are not all in memory at once.
const ROLES_VERIFIED_AT_ONCE: usize = 64;

/// Metadata bytes per batch below which roles are verified on one thread.
const BYTES_PER_EXTRA_THREAD: usize = 4_194_304; // 4 MiB

/// Threads for verifying `bytes` of targets metadata: one, or every core.
fn threads_for_bytes(bytes: usize) -> usize {
    if bytes < BYTES_PER_EXTRA_THREAD {
        1
    } else {
        cores()
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// What the walk does with one role it reached ([`Audit::targets_roles`]).
enum RoleStep {
    /// First reached: verify these bytes through `delegator`.
    Load {
        role: String,
        delegator: String,
        bytes: Vec<u8>,
    },
    /// Reached before, through another delegator.
    Again { role: String, delegator: String },
}

/// Queues the roles `delegations` of `role` names, each with `role` as its delegator.
/// With `changed` (a partial audit), hash bins that did not change under a delegator
/// that did not change are marked reached instead: they were audited when published.
fn queue_delegates(
    role: &str,
    delegations: &Delegations,
    changed: Option<&BTreeSet<String>>,
    queue: &mut VecDeque<(String, String)>,
    reached: &mut HashSet<String>,
) {
    if let Some(roles) = &delegations.roles {
        for child in roles {
            queue.push_back((child.name.clone(), role.to_owned()));
        }
    } else if let Some(bins) = &delegations.succinct_roles {
        for bin in bins.role_names() {
            let unchanged = changed.is_some_and(|c| !c.contains(&bin) && !c.contains(role));
            if unchanged {
                reached.insert(bin);
            } else {
                queue.push_back((bin, role.to_owned()));
            }
        }
    }
}

/// One audit under way: where it reads, what it checks, and what it found so far. A step
/// returning `None` has recorded why the audit cannot go on.
struct Audit<'a> {
    source: &'a dyn MetadataSource,
    options: &'a AuditOptions,
    limits: Limits,
    report: AuditReport,
    /// Name and version of each release path a signed index line covers.
    release_names: HashMap<String, (String, String)>,
}

impl Audit<'_> {
    /// Reads `name`, recording as a problem of `role` why it cannot be had (missing,
    /// too long, unreadable).
    fn read(&mut self, role: &str, name: &str, max_length: u64) -> Option<Vec<u8>> {
        match self.source.read(name, max_length) {
            Ok(Some(bytes)) => Some(bytes),
            Ok(None) => {
                self.report
                    .error(Some(role), None, format!("{name} is missing"));
                None
            }
            Err(e) => {
                self.report.error(Some(role), None, e.to_string());
                None
            }
        }
    }

    /// §5.2 and §5.3: the trusted root, the chain of newer roots, and the final root's
    /// expiry (§5.3.10).
    fn root_chain(&mut self, trusted_root: &[u8]) -> Option<TrustedMetadataSet> {
        let limits = self.limits;
        let now = self.options.reference_time;
        let mut trusted = match TrustedMetadataSet::new(trusted_root, now, &limits) {
            Ok(trusted) => trusted,
            Err(e) => {
                self.report
                    .error(Some("root"), None, format!("the trusted root: {e}"));
                return None;
            }
        };
        let mut rotations = 0;
        loop {
            let next = trusted.root().signed().version.saturating_add(1);
            let name = format!("{next}.root.json");
            match self.source.read(&name, limits.max_root_length) {
                Ok(None) => break,
                Ok(Some(bytes)) => {
                    if let Err(e) = trusted.update_root(&bytes, &limits) {
                        self.report
                            .error(Some("root"), None, format!("{name}: {e}"));
                        return None;
                    }
                }
                Err(e) => {
                    self.report.error(Some("root"), None, e.to_string());
                    return None;
                }
            }
            rotations += 1;
            if rotations >= limits.max_root_rotations {
                self.report.error(
                    Some("root"),
                    None,
                    format!(
                        "more than {} root versions to follow",
                        limits.max_root_rotations
                    ),
                );
                return None;
            }
        }
        let root = trusted.root().signed();
        self.report.root_version = Some(root.version);
        if root.is_expired(now) {
            self.report.error(
                Some("root"),
                None,
                format!(
                    "version {} expired at {}",
                    root.version,
                    format_expires(&root.expires)
                ),
            );
            return None;
        }
        Some(trusted)
    }

    /// §5.4: timestamp.
    fn timestamp(&mut self, trusted: &mut TrustedMetadataSet) -> Option<()> {
        let limits = self.limits;
        let bytes = self.read("timestamp", "timestamp.json", limits.max_timestamp_length)?;
        match trusted.update_timestamp(&bytes, &limits) {
            Ok(t) => {
                self.report.timestamp_version = Some(t.signed().version);
                Some(())
            }
            Err(e) => {
                self.report.error(Some("timestamp"), None, e.to_string());
                None
            }
        }
    }

    /// §5.5: the snapshot timestamp names.
    fn snapshot(&mut self, trusted: &mut TrustedMetadataSet, consistent: bool) -> Option<()> {
        let limits = self.limits;
        let Some(meta) = trusted
            .timestamp()
            .and_then(|t| t.signed().snapshot_meta())
            .cloned()
        else {
            self.report
                .error(Some("timestamp"), None, "no snapshot.json entry");
            return None;
        };
        let name = metadata_file_name("snapshot", meta.version, consistent);
        let max = meta.length.unwrap_or(limits.max_snapshot_length);
        let bytes = self.read("snapshot", &name, max)?;
        match trusted.update_snapshot(&bytes, false, &limits) {
            Ok(s) => {
                self.report.snapshot_version = Some(s.signed().version);
                Some(())
            }
            Err(e) => {
                self.report.error(Some("snapshot"), None, e.to_string());
                None
            }
        }
    }

    /// §5.6 and §5.6.7: every targets role, breadth-first through its delegator (each
    /// succinct hash bin too). Returns the roles loaded, in order. A role that fails is
    /// recorded and its delegations are not followed; the walk goes on.
    ///
    /// The roles waiting at one depth are read in order, verified on every core a batch
    /// at a time ([`TrustedMetadataSet::verify_delegated_targets`] only reads the set),
    /// then trusted and their delegations queued in the same order, so the walk and its
    /// report are those of one role at a time.
    fn targets_roles(&mut self, trusted: &mut TrustedMetadataSet, consistent: bool) -> Vec<String> {
        let limits = self.limits;
        let changed = self.options.changed_roles.as_ref();
        let mut queue: VecDeque<(String, String)> =
            VecDeque::from([("targets".into(), "root".into())]);
        let mut reached: HashSet<String> = HashSet::new();
        let mut loaded = Vec::new();
        while !queue.is_empty() {
            let batch: Vec<(String, String)> = queue
                .drain(..queue.len().min(ROLES_VERIFIED_AT_ONCE))
                .collect();
            // In order: what each role needs. A role already reached (a diamond) is
            // checked once the roles before it are trusted.
            let mut steps: Vec<RoleStep> = Vec::with_capacity(batch.len());
            for (role, delegator) in batch {
                if reached.contains(&role) {
                    steps.push(RoleStep::Again { role, delegator });
                    continue;
                }
                reached.insert(role.clone());
                let Some(meta) = trusted
                    .snapshot()
                    .and_then(|s| s.signed().role_meta(&role))
                    .cloned()
                else {
                    self.report.error(
                        Some(&role),
                        None,
                        format!("delegated by {delegator} but not listed in snapshot"),
                    );
                    continue;
                };
                let name = metadata_file_name(&role, meta.version, consistent);
                let max = meta.length.unwrap_or(limits.max_targets_length);
                let Some(bytes) = self.read(&role, &name, max) else {
                    continue;
                };
                steps.push(RoleStep::Load {
                    role,
                    delegator,
                    bytes,
                });
            }
            let loads: Vec<(&str, &str, &[u8])> = steps
                .iter()
                .filter_map(|step| match step {
                    RoleStep::Load {
                        role,
                        delegator,
                        bytes,
                    } => Some((role.as_str(), delegator.as_str(), bytes.as_slice())),
                    RoleStep::Again { .. } => None,
                })
                .collect();
            let checking: &TrustedMetadataSet = trusted;
            let threads = threads_for_bytes(loads.iter().map(|(_, _, b)| b.len()).sum());
            let mut verified = map_on_cores(
                &loads,
                threads,
                |(role, delegator, bytes)| {
                    checking.verify_delegated_targets(bytes, role, delegator, &limits)
                },
                |_| {},
            )
            .into_iter();
            for step in steps {
                match step {
                    RoleStep::Again { role, delegator } => {
                        // A second delegator: its own threshold must hold too (§5.6.3).
                        if let Err(e) = trusted.trusted_targets_via(&role, &delegator) {
                            self.report.error(
                                Some(&role),
                                None,
                                format!("as delegated by {delegator}: {e}"),
                            );
                        }
                    }
                    RoleStep::Load { role, .. } => {
                        let result = verified
                            .next()
                            .unwrap_or(Err(TrustError::Order("a verified role went missing")))
                            .and_then(|v| trusted.trust_verified_targets(v));
                        let targets = match result {
                            Ok(targets) => targets,
                            Err(e) => {
                                self.report.error(Some(&role), None, e.to_string());
                                continue;
                            }
                        };
                        self.report.roles_verified += 1;
                        if let Some(delegations) = &targets.signed().delegations {
                            queue_delegates(&role, delegations, changed, &mut queue, &mut reached);
                        }
                        loaded.push(role);
                    }
                }
            }
        }
        if changed.is_none() {
            self.unreached_snapshot_roles(trusted, &reached);
        }
        loaded
    }

    /// Warns of roles snapshot lists but no role delegates.
    fn unreached_snapshot_roles(
        &mut self,
        trusted: &TrustedMetadataSet,
        reached: &HashSet<String>,
    ) {
        let Some(snapshot) = trusted.snapshot() else {
            return;
        };
        for role in snapshot
            .signed()
            .meta
            .keys()
            .filter_map(|k| k.strip_suffix(".json"))
        {
            if !reached.contains(role) {
                self.report.push(
                    Severity::Warning,
                    Some(role),
                    None,
                    "listed in snapshot but delegated by no role (an undelegated namespace keeps \
                     its entry: clients refuse a snapshot that drops a role)",
                );
            }
        }
    }

    /// Each target listed by a loaded role (only changed roles' when the audit is
    /// partial) must be what a client looking its path up gets; with a targets
    /// directory, its tarball must match. The roles are checked on every core (each
    /// role's findings are its own, merged in role order, so the report does not depend
    /// on the threads).
    fn target_lookups(
        &mut self,
        trusted: &TrustedMetadataSet,
        loaded: &[String],
        consistent: bool,
        progress: &dyn Progress,
    ) {
        let changed = self.options.changed_roles.as_ref();
        let check_roles: Vec<&String> = loaded
            .iter()
            .filter(|r| changed.is_none_or(|c| c.contains(*r)))
            .collect();
        let total: usize = check_roles
            .iter()
            .filter_map(|r| trusted.targets(r))
            .map(|t| t.signed().targets.len())
            .sum();
        // Each target counts twice: looked up, then checked.
        progress.set_length(2 * total as u64);
        let options = self.options;
        let limits = self.limits;
        let threads = threads_for(total);
        // One flag per listed target, set when a signed index line covers it.
        let covered: Vec<Vec<AtomicBool>> = check_roles
            .iter()
            .map(|role| {
                let listed = trusted
                    .targets(role)
                    .map_or(0, |t| t.signed().targets.len());
                std::iter::repeat_with(|| AtomicBool::new(false))
                    .take(listed)
                    .collect()
            })
            .collect();
        // First every listed path is looked up as a client would, and the entries that
        // resolve to their own role are gathered as the lookups come in (on this thread,
        // while the others go on looking up); then each role is checked, its index
        // files' lines answered from those lookups.
        let resolved = RefCell::new(ResolvedTargets::with_capacity(total));
        let lookups: Vec<(&String, &[AtomicBool])> = check_roles
            .iter()
            .copied()
            .zip(covered.iter().map(Vec::as_slice))
            .collect();
        let resolutions = map_on_cores(
            &lookups,
            threads,
            |&(role, covered)| (role, covered, resolve_role(trusted, role, limits)),
            |(role, covered, resolutions)| {
                progress.advance(resolutions.len() as u64);
                resolved
                    .borrow_mut()
                    .add(trusted, role, resolutions, covered);
            },
        );
        let resolutions: Vec<Vec<Resolution>> =
            resolutions.into_iter().map(|(_, _, r)| r).collect();
        let resolved = resolved.into_inner();
        let findings = map_on_cores(
            &check_roles.iter().zip(&resolutions).collect::<Vec<_>>(),
            threads,
            |&(role, resolutions)| {
                let mut check = RoleCheck::new(options, limits, &resolved);
                check.role(trusted, role, resolutions, consistent);
                check
            },
            |check| progress.advance(check.report.targets_checked as u64),
        );
        let mut index_dirs: HashSet<&str> = HashSet::new();
        for check in findings {
            let RoleCheck {
                report,
                release_names,
                index_dirs: role_index_dirs,
                ..
            } = check;
            self.report.problems.extend(report.problems);
            self.report.targets_checked += report.targets_checked;
            self.report.target_files_checked += report.target_files_checked;
            self.report.releases_upstream += report.releases_upstream;
            self.report
                .upstream_releases
                .extend(report.upstream_releases);
            self.release_names.extend(release_names);
            index_dirs.extend(role_index_dirs);
        }
        // A whole audit with the files at hand: every release has its signed entry.
        if changed.is_none() && self.options.targets_dir.is_some() {
            let signs_entries = trusted
                .targets("targets")
                .is_some_and(|t| crate::layout::signs_index_entries(t.signed()));
            let listings = check_roles.iter().zip(&resolutions).zip(&covered);
            for ((role, resolutions), covered) in listings {
                for (path, _, resolution, flag) in listed(trusted, role, resolutions, covered) {
                    if !path.ends_with(".crate") {
                        continue;
                    }
                    // A path that resolves elsewhere is covered where it resolves.
                    let is_covered = match resolution {
                        Resolution::Own => flag.load(Ordering::Relaxed),
                        _ => resolved.get(path).is_some_and(|found| found.is_covered()),
                    };
                    if !is_covered {
                        self.uncovered_release(role, path, &index_dirs, signs_entries);
                    }
                }
            }
        }
    }

    /// Reports a release that no line of its crate's signed index file covers.
    fn uncovered_release(
        &mut self,
        role: &str,
        path: &str,
        index_dirs: &HashSet<&str>,
        signs_entries: bool,
    ) {
        if index_dirs.contains(parent_dir(path)) {
            self.report.error(
                Some(role),
                Some(path),
                "its crate's signed index file has no entry for it: the proxy serves it by \
                 cksum alone, or not at all where signed entries are required",
            );
        } else if signs_entries {
            self.report.push(
                Severity::Warning,
                Some(role),
                Some(path),
                "its crate has no signed index file: the proxy serves no version of it while \
                 signed entries are required (release add it again)",
            );
        }
    }
}

/// Targets per audit below which they are checked on one thread (a publish's partial
/// audit of a few bins): starting threads would cost more than it saves.
const TARGETS_PER_EXTRA_THREAD: usize = 20_000;

/// Threads for checking `targets` targets: one, or every core for a large audit.
fn threads_for(targets: usize) -> usize {
    if targets < TARGETS_PER_EXTRA_THREAD {
        1
    } else {
        cores()
    }
}

/// `work` applied to each of `items` on `threads` threads (this one among them, so one
/// thread starts none), the results in the order of `items`. `done` is called on this
/// thread for every result, as the results come in (for progress).
fn map_on_cores<I: Sync, T: Send>(
    items: &[I],
    threads: usize,
    work: impl Fn(&I) -> T + Sync,
    done: impl Fn(&T),
) -> Vec<T> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    let next = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel::<(usize, T)>();
    let mut results: Vec<Option<T>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    let take = || {
        let index = next.fetch_add(1, Ordering::Relaxed);
        items.get(index).map(|item| (index, item))
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            let sender = sender.clone();
            let (work, take) = (&work, &take);
            scope.spawn(move || {
                while let Some((index, item)) = take() {
                    // The receiver lives until every sender is gone.
                    sender.send((index, work(item))).ok();
                }
            });
        }
        drop(sender);
        let mut store = |index: usize, result: T| {
            done(&result);
            if let Some(slot) = results.get_mut(index) {
                *slot = Some(result);
            }
        };
        // This thread works too, and takes in the others' results between its items.
        while let Some((index, item)) = take() {
            let result = work(item);
            store(index, result);
            while let Ok((index, result)) = receiver.try_recv() {
                store(index, result);
            }
        }
        for (index, result) in receiver {
            store(index, result);
        }
    });
    results.into_iter().flatten().collect()
}

/// What a client looking up one of a role's listed paths gets (§5.6.7).
#[derive(Debug, Clone, Copy)]
enum Resolution<'t> {
    /// This role's entry.
    Own,
    /// The entry of another role (named), found first.
    Other(&'t str),
    /// Nothing: this role is not trusted for the path.
    NotFound,
    /// The search needs a role this (partial) audit did not load.
    Needs,
}

/// The lookup of every target `role` lists, in its listing order.
fn resolve_role<'t>(
    trusted: &'t TrustedMetadataSet,
    role: &str,
    limits: Limits,
) -> Vec<Resolution<'t>> {
    let Some(targets) = trusted.targets(role) else {
        return Vec::new();
    };
    targets
        .signed()
        .targets
        .keys()
        .map(
            |path| match find_target(trusted, path, limits.max_delegations) {
                TargetFind::Found { target, .. } if target.role == role => Resolution::Own,
                TargetFind::Found { target, .. } => Resolution::Other(target.role),
                TargetFind::NotFound => Resolution::NotFound,
                TargetFind::Needs { .. } => Resolution::Needs,
            },
        )
        .collect()
}

/// Each target `role` lists, in listing order, with how it resolves and its coverage
/// flag (`resolutions` and `covered` being that role's, in the same order).
fn listed<'t, 'x, 'f>(
    trusted: &'t TrustedMetadataSet,
    role: &str,
    resolutions: &'x [Resolution<'t>],
    covered: &'f [AtomicBool],
) -> impl Iterator<
    Item = (
        &'t String,
        &'t TargetFile,
        &'x Resolution<'t>,
        &'f AtomicBool,
    ),
> {
    let targets = trusted.targets(role).map(|t| &t.signed().targets);
    targets
        .into_iter()
        .flatten()
        .zip(resolutions)
        .zip(covered)
        .map(|(((path, info), resolution), flag)| (path, info, resolution, flag))
}

/// The entry a client gets for each path that a checked role lists and resolves to
/// itself: what an index line's release is looked up in, instead of a second search
/// from the top for the million releases the bins already resolved. Each entry carries
/// the flag that a signed index line covering it sets.
struct ResolvedTargets<'t, 'f>(HashMap<&'t str, Resolved<'t, 'f>>);

/// One entry of [`ResolvedTargets`].
#[derive(Clone, Copy)]
struct Resolved<'t, 'f> {
    info: &'t TargetFile,
    /// Set when a line of its crate's signed index file covers it.
    covered: &'f AtomicBool,
}

impl Resolved<'_, '_> {
    /// Whether a line of its crate's signed index file covers it.
    fn is_covered(&self) -> bool {
        self.covered.load(Ordering::Relaxed)
    }
}

impl<'t, 'f> ResolvedTargets<'t, 'f> {
    /// Room for `targets` entries.
    fn with_capacity(targets: usize) -> Self {
        Self(HashMap::with_capacity(targets))
    }

    /// Adds the entries of `role` that resolve to `role` itself, given how each of its
    /// listed targets resolves and one flag for each, in listing order.
    fn add(
        &mut self,
        trusted: &'t TrustedMetadataSet,
        role: &str,
        resolutions: &[Resolution<'t>],
        covered: &'f [AtomicBool],
    ) {
        for (path, info, resolution, covered) in listed(trusted, role, resolutions, covered) {
            if matches!(resolution, Resolution::Own) {
                self.0.insert(path.as_str(), Resolved { info, covered });
            }
        }
    }

    /// The entry of `path` a client gets, if a checked role resolved it; `None` means
    /// not looked up (not necessarily not signed).
    fn get(&self, path: &str) -> Option<Resolved<'t, 'f>> {
        self.0.get(path).copied()
    }
}

/// The checks of one role's targets ([`Audit::target_lookups`]): what it found, kept
/// apart so that roles can be checked at once.
struct RoleCheck<'a, 't, 'f> {
    options: &'a AuditOptions,
    limits: Limits,
    /// Every checked role's own resolved entries.
    resolved: &'a ResolvedTargets<'t, 'f>,
    /// Problems and counts (the other fields of the report stay empty).
    report: AuditReport,
    /// Name and version of each release path a signed index line covers.
    release_names: HashMap<String, (String, String)>,
    /// The crate directories that hold a signed index file (read and matching its
    /// signed hashes).
    index_dirs: HashSet<&'t str>,
}

impl<'a, 't, 'f> RoleCheck<'a, 't, 'f> {
    fn new(
        options: &'a AuditOptions,
        limits: Limits,
        resolved: &'a ResolvedTargets<'t, 'f>,
    ) -> Self {
        Self {
            options,
            limits,
            resolved,
            report: AuditReport::default(),
            release_names: HashMap::new(),
            index_dirs: HashSet::new(),
        }
    }

    /// Checks every target `role` lists, given how each resolves ([`resolve_role`]).
    fn role(
        &mut self,
        trusted: &'t TrustedMetadataSet,
        role: &'t str,
        resolutions: &[Resolution<'t>],
        consistent: bool,
    ) {
        let Some(targets) = trusted.targets(role) else {
            return;
        };
        for ((path, info), resolution) in targets.signed().targets.iter().zip(resolutions) {
            self.report.targets_checked += 1;
            match resolution {
                Resolution::Own => {}
                Resolution::Other(found_role) => self.report.error(
                    Some(role),
                    Some(path),
                    format!(
                        "listed here, but a client looking it up gets the entry of {found_role}"
                    ),
                ),
                Resolution::NotFound => self.report.error(
                    Some(role),
                    Some(path),
                    "listed here, but this role is not trusted for the path: clients will \
                     not find it",
                ),
                // The lookup needs a role this (partial) audit did not load.
                Resolution::Needs => {}
            }
            if self.options.targets_dir.is_some() && tarball_is_upstream(path, info) {
                self.report.releases_upstream += 1;
                if self.options.list_upstream_releases {
                    self.report.upstream_releases.push(UpstreamReleaseFile {
                        role: role.to_owned(),
                        path: path.clone(),
                        release: None,
                        info: info.clone(),
                    });
                }
            } else if let Some(dir) = &self.options.targets_dir {
                self.report.target_files_checked += 1;
                match check_target_file(dir, path, info, consistent) {
                    Err(e) => self.report.error(Some(role), Some(path), e.to_string()),
                    Ok(bytes) if is_crate_index_path(path) => {
                        self.index_file(trusted, role, path, &bytes);
                        self.index_dirs.insert(parent_dir(path));
                    }
                    Ok(_) => {}
                }
            }
        }
    }

    /// Checks a crate's signed index file, listed by `role` at `path`: each line is a
    /// signed release of that crate whose sha256 is the line's `cksum`, and each
    /// attestation verifies for it (a warning when not: an attestation authorises
    /// nothing). Marks each resolved release that a line covers.
    fn index_file(
        &mut self,
        trusted: &'t TrustedMetadataSet,
        role: &str,
        path: &str,
        bytes: &[u8],
    ) {
        let (name, index) = match CrateIndexFile::parse_unnamed(bytes) {
            Ok(Some(parsed)) => parsed,
            // A blank file: no versions to check.
            Ok(None) => return,
            Err(error) => {
                let first_line = bytes
                    .split(|&b| b == b'\n')
                    .position(|l| !l.iter().all(u8::is_ascii_whitespace));
                let message = match error {
                    CrateIndexError::Entry { line, .. }
                        if first_line.map(|i| i + 1) == Some(line) =>
                    {
                        "not a signed index file: its first line is not an index entry".into()
                    }
                    error => format!("not a signed index file: {error}"),
                };
                self.report.error(Some(role), Some(path), message);
                return;
            }
        };
        match crate_index_path(&name) {
            Ok(own) if own == path => {}
            _ => {
                self.report.error(
                    Some(role),
                    Some(path),
                    format!("the index file of {name} is not at its path"),
                );
                return;
            }
        }
        for line in &index.lines {
            let entry = &line.entry;
            let Ok(release) = crate_target_path(&entry.name, &entry.vers) else {
                self.report.error(
                    Some(role),
                    Some(path),
                    format!("{} {}: not a valid version", entry.name, entry.vers),
                );
                continue;
            };
            // Resolved in the first pass, or else (a role this partial audit does not
            // check, or no role) searched for now.
            let found = match self.resolved.get(&release) {
                Some(found) => (found.info, Some(found)),
                None => match find_target(trusted, &release, self.limits.max_delegations) {
                    TargetFind::Found { target, .. } => (target.info, None),
                    TargetFind::NotFound => {
                        self.report.error(
                            Some(role),
                            Some(path),
                            format!(
                                "{} {}: an entry for a release that is not signed ({release})",
                                entry.name, entry.vers
                            ),
                        );
                        continue;
                    }
                    TargetFind::Needs { .. } => continue,
                },
            };
            let (found_info, resolved) = found;
            let sha256 = found_info.hashes.get("sha256");
            if !sha256.is_some_and(|s| s.eq_ignore_ascii_case(&entry.cksum)) {
                self.report.error(
                    Some(role),
                    Some(path),
                    format!(
                        "{} {}: the entry's cksum {} is not the sha256 of the signed release ({})",
                        entry.name,
                        entry.vers,
                        entry.cksum,
                        sha256.unwrap_or("none")
                    ),
                );
                continue;
            }
            if self.options.list_upstream_releases {
                self.release_names
                    .insert(release, (entry.name.clone(), entry.vers.clone()));
            }
            // The line covers the release: every line names this file's crate and the
            // file is at that crate's path, so the release is in the file's directory. (A
            // release found only outside the checked roles, in a partial audit, is not
            // tracked: coverage is checked by whole audits.)
            if let Some(resolved) = resolved {
                resolved.covered.store(true, Ordering::Relaxed);
            }
            if line.attestations.is_empty() {
                continue;
            }
            let digest = entry.signed_digest();
            for attestation in &line.attestations {
                if let Err(error) = attestation.verify_for(
                    &entry.name,
                    &entry.vers,
                    found_info.length,
                    &found_info.hashes,
                    &digest,
                ) {
                    self.report.push(
                        Severity::Warning,
                        Some(role),
                        Some(path),
                        format!(
                            "{} {}: the {} attestation by {} counts for nothing: {error}",
                            entry.name,
                            entry.vers,
                            attestation.statement.kind,
                            attestation.statement.label
                        ),
                    );
                }
            }
        }
    }
}

fn is_crate_index_path(path: &str) -> bool {
    path.starts_with(crate::layout::CRATES_DIR)
        && path.rsplit('/').next() == Some(crate::layout::CRATE_INDEX_FILE)
}

/// The directory part of a target path.
fn parent_dir(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Why a release tarball on disk does not match its signed entry.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TargetFileError {
    /// The target path cannot be laid out below the targets directory.
    #[error(transparent)]
    Path(Box<RepositoryError>),
    /// The tarball cannot be opened or read.
    #[error("tarball {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The tarball is longer than its signed length.
    #[error("tarball {} is longer than signed", path.display())]
    TooLong { path: PathBuf },
    /// Its length or a digest differs from the signed ones.
    #[error("tarball {}: {source}", path.display())]
    Mismatch { path: PathBuf, source: HashError },
}

/// Checks the target file of `path` under `dir` against its signed length and hashes;
/// returns its bytes.
pub(crate) fn check_target_file(
    dir: &Path,
    path: &str,
    info: &TargetFile,
    consistent: bool,
) -> Result<Vec<u8>, TargetFileError> {
    let relative = if consistent {
        hashed_target_path(path, info).map_err(|e| TargetFileError::Path(Box::new(e)))?
    } else {
        check_relative_target_path(path).map_err(|e| TargetFileError::Path(Box::new(e)))?;
        path.to_owned()
    };
    let file_path = dir.join(&relative);
    let read = |source| TargetFileError::Read {
        path: file_path.clone(),
        source,
    };
    let file = std::fs::File::open(&file_path).map_err(read)?;
    let bytes = crate::fs::read_bounded(file, info.length).map_err(|e| match e {
        BoundedReadError::TooLong { .. } => TargetFileError::TooLong {
            path: file_path.clone(),
        },
        BoundedReadError::Io(source) => read(source),
    })?;
    verify_length_and_hashes(&bytes, Some(info.length), Some(&info.hashes)).map_err(|source| {
        TargetFileError::Mismatch {
            path: file_path.clone(),
            source,
        }
    })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::cell::Cell;

    use super::{
        cores, map_on_cores, threads_for, threads_for_bytes, BYTES_PER_EXTRA_THREAD,
        TARGETS_PER_EXTRA_THREAD,
    };

    #[test]
    fn work_on_several_threads_comes_back_in_order_and_each_result_is_counted() {
        let items: Vec<u64> = (0..1000).collect();
        for threads in [1, 2, 5] {
            let done = Cell::new(0u64);
            let squares = map_on_cores(
                &items,
                threads,
                |n| {
                    // Uneven work, so that the threads finish out of order.
                    if n % 7 == 0 {
                        std::thread::yield_now();
                    }
                    (std::thread::current().id(), n * n)
                },
                |(_, square)| done.set(done.get() + square),
            );
            let values: Vec<u64> = squares.iter().map(|(_, s)| *s).collect();
            assert_eq!(values, items.iter().map(|n| n * n).collect::<Vec<_>>());
            assert_eq!(done.get(), items.iter().map(|n| n * n).sum::<u64>());
            let mut ids: Vec<_> = squares.iter().map(|(id, _)| *id).collect();
            ids.sort_by_key(|id| format!("{id:?}"));
            ids.dedup();
            assert!(ids.len() <= threads, "{threads}: {}", ids.len());
            if threads == 1 {
                assert_eq!(ids, [std::thread::current().id()]);
            }
        }
    }

    #[test]
    fn a_small_audit_stays_on_one_thread() {
        assert_eq!(threads_for(0), 1);
        assert_eq!(threads_for(TARGETS_PER_EXTRA_THREAD - 1), 1);
        assert_eq!(threads_for(TARGETS_PER_EXTRA_THREAD), cores());
        assert_eq!(threads_for_bytes(0), 1);
        assert_eq!(threads_for_bytes(BYTES_PER_EXTRA_THREAD - 1), 1);
        assert_eq!(threads_for_bytes(BYTES_PER_EXTRA_THREAD), cores());
        let available = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(cores(), available);
    }
}
