//! Talking to an upstream sparse registry (the public registry, a mirror): its download
//! template, bounded fetches retried when the network fails, and a small pool of
//! download threads. Used by `release import`, `verify --fetch-targets` and `review`.

use std::sync::{mpsc, Mutex};
use std::time::Duration;

use anyhow::{Context, Error};
use serde::Deserialize;
use tuf_core::client::{FetchError, Fetcher};
use tuf_core::index_entry::{download_url, IndexEntry};

/// Largest upstream `config.json` read.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;
/// Largest upstream index file read (the proxy's default `max_index_size`).
pub const MAX_INDEX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The tarball of `entry` from the download template `dl`, at most `max` bytes, refused
/// unless its sha256 is the entry's `cksum`. The error is in words, naming the URL.
pub fn fetch_checked_tarball(
    fetch: &FetchFn<'_>,
    dl: &str,
    entry: &IndexEntry,
    max: u64,
) -> Result<Vec<u8>, String> {
    let url = download_url(dl, &entry.name, &entry.vers, &entry.cksum);
    let bytes = fetch(&url, max).map_err(|e| match e {
        FetchError::NotFound { .. } => format!("upstream has no such tarball ({url})"),
        other => format!("fetching the tarball: {other}"),
    })?;
    let sha256 = tuf_core::hash::sha256_hashes(&bytes)
        .remove("sha256")
        .unwrap_or_default();
    if !sha256.eq_ignore_ascii_case(&entry.cksum) {
        return Err(format!(
            "the tarball from {url} has sha256 {sha256}, not the index's cksum {}: refused",
            entry.cksum
        ));
    }
    Ok(bytes)
}

/// The newest of `candidates` whose version is earlier than `version` (semver; `None`
/// when `version` is not semver or nothing is earlier).
pub fn newest_earlier<'a>(
    version: &str,
    candidates: impl IntoIterator<Item = &'a IndexEntry>,
) -> Option<&'a IndexEntry> {
    let version = semver::Version::parse(version).ok()?;
    candidates
        .into_iter()
        .filter_map(|e| {
            semver::Version::parse(&e.vers)
                .ok()
                .filter(|v| *v < version)
                .map(|v| (v, e))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, e)| e)
}

/// A bounded fetch of one URL (retried).
pub type FetchFn<'a> = dyn Fn(&str, u64) -> Result<Vec<u8>, FetchError> + Sync + 'a;

#[derive(Debug, Deserialize)]
struct RegistryConfig {
    dl: String,
}

/// The download template (`dl`) of the sparse index at `index` (ending in `/`).
pub fn registry_dl(fetch: &FetchFn<'_>, index: &str) -> Result<String, Error> {
    let url = format!("{index}config.json");
    let bytes = fetch(&url, MAX_CONFIG_BYTES)
        .with_context(|| format!("cannot read the upstream registry's {url}"))?;
    Ok(serde_json::from_slice::<RegistryConfig>(&bytes)
        .with_context(|| format!("{url}: not a registry configuration"))?
        .dl)
}

/// A fetch retried `retries` times, with a pause of 0.5 s, 1 s, 2 s, … between attempts,
/// when it failed for a reason a later attempt may not meet: the network (timeouts,
/// broken connections, truncated bodies), `429` and `5xx` answers.
pub fn fetch_with_retries(
    fetcher: &dyn Fetcher,
    url: &str,
    max: u64,
    retries: u32,
) -> Result<Vec<u8>, FetchError> {
    let mut attempt = 0;
    loop {
        match fetcher.fetch(url, max) {
            Err(error) if attempt < retries && is_transient(&error) => {
                tracing::warn!(%url, %error, attempt = attempt + 1, "fetch failed; retrying");
                std::thread::sleep(Duration::from_millis(500u64 << attempt.min(6)));
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn is_transient(error: &FetchError) -> bool {
    match error {
        FetchError::Transport { .. } => true,
        FetchError::Status { status, .. } => *status == 429 || *status >= 500,
        _ => false,
    }
}

/// Runs `work` over `items` on `jobs` threads and hands each result to `done` on this
/// thread, as results arrive.
pub fn parallel<I, O>(
    items: Vec<I>,
    jobs: usize,
    work: impl Fn(I) -> O + Sync,
    mut done: impl FnMut(O),
) where
    I: Send,
    O: Send,
{
    let queue = Mutex::new(items.into_iter());
    let (sender, receiver) = mpsc::sync_channel::<O>(jobs * 2);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let sender = sender.clone();
            let queue = &queue;
            let work = &work;
            scope.spawn(move || loop {
                let next = match queue.lock() {
                    Ok(mut queue) => queue.next(),
                    Err(_) => None,
                };
                let Some(item) = next else { break };
                if sender.send(work(item)).is_err() {
                    break;
                }
            });
        }
        drop(sender);
        for result in receiver {
            done(result);
        }
    });
}
