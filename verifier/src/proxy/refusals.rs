//! The last refusals, as the status page and `/status.json` list them: when, which crate
//! and version, the reason exactly as cargo saw it, and for a trust-policy refusal the
//! fix. Also the bounds every refusal is held to: a name or version taken from a request
//! is shown escaped and cut to [`MAX_SHOWN_NAME`] characters, and a whole reason to
//! [`MAX_REASON`] bytes, so a client cannot make the proxy echo (or keep) what it likes.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// How many refusals are kept.
pub const REFUSALS_KEPT: usize = 100;

/// The most characters of a requested name or version shown (crates.io names are at most
/// 64 characters long).
pub const MAX_SHOWN_NAME: usize = 64;

/// The most bytes of a refusal's reason sent to cargo or kept.
pub const MAX_REASON: usize = 2048;

/// `untrusted` (a name or version from a request) as messages show it: control and
/// other invisible characters escaped, at most [`MAX_SHOWN_NAME`] characters, and how
/// much more there was.
pub fn shown(untrusted: &str) -> Cow<'_, str> {
    let total = untrusted.chars().count();
    // `is_control` covers DEL and the C1 controls too.
    if total <= MAX_SHOWN_NAME && !untrusted.chars().any(char::is_control) {
        return Cow::Borrowed(untrusted);
    }
    let mut out = String::new();
    let mut shown_chars = 0;
    for c in untrusted.chars() {
        if shown_chars == MAX_SHOWN_NAME {
            break;
        }
        shown_chars += 1;
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if total > shown_chars {
        out.push_str(&format!("… ({total} characters)"));
    }
    Cow::Owned(out)
}

/// `reason` cut to at most [`MAX_REASON`] bytes, on a character boundary, saying so.
pub fn bounded(reason: &str) -> Cow<'_, str> {
    if reason.len() <= MAX_REASON {
        return Cow::Borrowed(reason);
    }
    const CUT: &str = " … (cut)";
    let mut end = MAX_REASON - CUT.len();
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{CUT}", &reason[..end]))
}

/// What was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Asked {
    /// An index file.
    Index,
    /// A tarball.
    Download,
}

/// What refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusedBy {
    /// The TUF metadata: not signed, not what was signed, or the metadata refused.
    Tuf,
    /// The trust policy.
    Policy,
    /// The typosquat guard.
    Typosquat,
    /// No trusted metadata now (a 503: cargo may retry).
    Unavailable,
}

/// One refusal, as cargo saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refused {
    /// When (RFC 3339, UTC).
    pub time: String,
    /// An index file or a tarball.
    pub asked: Asked,
    /// The crate, as [`shown`].
    #[serde(rename = "crate")]
    pub crate_name: String,
    /// The version, for a download, as [`shown`].
    pub version: Option<String>,
    /// The HTTP status sent.
    pub status: u16,
    /// What refused it.
    pub by: RefusedBy,
    /// The answer's body, which cargo prints, [`bounded`] and without its newline.
    pub reason: String,
    /// What would admit it, for a trust-policy refusal that trusting someone would cure.
    pub fix: Option<String>,
}

/// The last [`REFUSALS_KEPT`] refusals.
#[derive(Debug, Default)]
pub struct RefusalLog {
    recent: Mutex<VecDeque<Refused>>,
    total: AtomicU64,
}

impl RefusalLog {
    /// Keeps `refused`, dropping the oldest beyond [`REFUSALS_KEPT`].
    pub fn record(&self, refused: Refused) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() >= REFUSALS_KEPT {
            recent.pop_back();
        }
        recent.push_front(refused);
    }

    /// The refusals kept, newest first.
    pub fn recent(&self) -> Vec<Refused> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().cloned().collect()
    }

    /// Refusals since start, kept or not.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// A refusal about to be answered: [`Refusing::answer`] records it and makes the body.
#[derive(Debug)]
pub struct Refusing<'a> {
    /// An index file or a tarball.
    pub asked: Asked,
    /// The crate name as requested.
    pub crate_name: &'a str,
    /// The version as requested, for a download.
    pub version: Option<&'a str>,
    /// What refused it.
    pub by: RefusedBy,
    /// The fix, if any.
    pub fix: Option<String>,
}

impl Refusing<'_> {
    /// Records the refusal with reason `message` at `now`, and returns the body to send:
    /// `message` [`bounded`], with a newline.
    pub fn answer(
        self,
        log: &RefusalLog,
        status: u16,
        message: &str,
        now: DateTime<Utc>,
    ) -> String {
        let reason = bounded(message.trim_end()).into_owned();
        let body = format!("{reason}\n");
        log.record(Refused {
            time: crate::refresh_schedule::format_time(&now),
            asked: self.asked,
            crate_name: shown(self.crate_name).into_owned(),
            version: self.version.map(|v| shown(v).into_owned()),
            status,
            by: self.by,
            reason,
            fix: self.fix,
        });
        body
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn names_from_requests_are_shown_escaped_and_cut() {
        assert!(matches!(shown("serde"), Cow::Borrowed("serde")));
        let long = "a".repeat(5000);
        let cut = shown(&long);
        assert_eq!(cut, format!("{}… (5000 characters)", "a".repeat(64)));
        // Exactly the limit is shown whole.
        assert_eq!(shown(&long[..64]), &long[..64]);
        assert_eq!(
            shown(&long[..65]),
            format!("{}… (65 characters)", "a".repeat(64))
        );
        // A newline cannot forge a second line of the answer, the log or the page.
        assert_eq!(shown("evil\nINFO served"), "evil\\nINFO served");
        assert_eq!(shown("a\u{1b}[31m"), "a\\u{1b}[31m");
        assert_eq!(shown("a\u{7f}"), "a\\u{7f}");
        // Characters, not bytes, are counted: no cut inside one.
        let wide = "é".repeat(70);
        assert_eq!(shown(&wide), format!("{}… (70 characters)", "é".repeat(64)));
    }

    #[test]
    fn reasons_are_bounded_on_a_character_boundary() {
        let short = "x".repeat(MAX_REASON);
        assert!(matches!(bounded(&short), Cow::Borrowed(_)));
        let long = "é".repeat(MAX_REASON);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_REASON, "{}", cut.len());
        assert!(cut.ends_with(" … (cut)"));
        assert!(cut.len() > MAX_REASON - 12);
    }

    #[test]
    fn the_log_keeps_the_newest_hundred_newest_first() {
        let log = RefusalLog::default();
        let now = Utc::now();
        for n in 0..150 {
            let body = Refusing {
                asked: Asked::Download,
                crate_name: "tufdemo",
                version: Some(&format!("0.{n}.0")),
                by: RefusedBy::Tuf,
                fix: None,
            }
            .answer(&log, 403, &format!("refused 0.{n}.0\n"), now);
            assert_eq!(body, format!("refused 0.{n}.0\n"));
        }
        let recent = log.recent();
        assert_eq!(recent.len(), REFUSALS_KEPT);
        assert_eq!(recent[0].version.as_deref(), Some("0.149.0"));
        assert_eq!(recent[0].reason, "refused 0.149.0");
        assert_eq!(recent[99].version.as_deref(), Some("0.50.0"));
        assert_eq!(log.total(), 150);
    }

    #[test]
    fn a_kept_refusal_holds_the_bounded_name_and_reason() {
        let log = RefusalLog::default();
        let name = "n".repeat(5000);
        let message = format!("tuf-verifier refused {name} 1.0.0: invalid crate name {name:?}");
        let body = Refusing {
            asked: Asked::Download,
            crate_name: &name,
            version: Some("1.0.0"),
            by: RefusedBy::Tuf,
            fix: None,
        }
        .answer(&log, 403, &message, Utc::now());
        assert!(body.len() <= MAX_REASON + 1, "{}", body.len());
        assert!(body.ends_with('\n'));
        let kept = &log.recent()[0];
        assert_eq!(
            kept.crate_name.chars().count(),
            64 + "… (5000 characters)".chars().count()
        );
        assert_eq!(format!("{}\n", kept.reason), body);
        assert_eq!(kept.status, 403);
    }
}
