//! When the proxy refreshes its TUF metadata, and the record of its attempts.
//!
//! After a successful refresh the next one is due a whole `refresh_interval` later.
//! After a failed one (the first refresh at start included) the proxy tries again with
//! exponential backoff: about [`FIRST_RETRY`], doubling with each failure in a row, up
//! to the interval, with jitter. A proxy started before its TUF repository answers
//! therefore serves within seconds of the repository coming up, instead of a whole
//! interval later, and replicas that failed together do not retry together.
//!
//! Sans-I/O: [`RefreshLog`] keeps the recent attempts and the next one due, for the
//! schedule ([`next_wait`]), `/healthz` and the status page; the serve loop sleeps.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The wait after the first failure in a row, before jitter.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);

/// How many attempts [`RefreshLog`] keeps.
pub const ATTEMPTS_KEPT: usize = 32;

/// The wait after the `failures`-th failed refresh in a row: [`FIRST_RETRY`] doubled for
/// each failure after the first, at most `interval`; then "equal jitter": `jitter` (in
/// `[0, 1]`, clamped) picks a wait between half of that and all of it. The wait never
/// exceeds `interval`.
pub fn backoff(failures: u32, interval: Duration, jitter: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(63);
    let base = FIRST_RETRY
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(interval);
    // NaN is clamped to neither bound: treat it as no jitter.
    let jitter = if jitter.is_nan() {
        1.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    // A factor in [0.5, 1] of a duration of at most 1000 years cannot overflow.
    base.mul_f64(0.5 + 0.5 * jitter)
}

/// How long to wait before the next refresh, after `failures_in_a_row` failed attempts
/// since the last success: `interval` after a success, else [`backoff`]. `jitter` is a
/// uniform random number in `[0, 1]`.
pub fn next_wait(failures_in_a_row: u32, interval: Duration, jitter: f64) -> Duration {
    if failures_in_a_row == 0 {
        interval
    } else {
        backoff(failures_in_a_row, interval, jitter)
    }
}

/// One refresh attempt.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Attempt {
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// How long it took, in milliseconds.
    pub millis: u64,
    /// Whether the metadata was refreshed.
    pub ok: bool,
    /// Why not, when not.
    pub error: Option<String>,
}

#[derive(Debug, Default)]
struct LogState {
    attempts: VecDeque<Attempt>,
    next_due: Option<DateTime<Utc>>,
    failures_in_a_row: u32,
}

/// The recent refresh attempts and the next one due, shared by the serve loop (which
/// writes) and the status handlers (which read). Short locks only.
#[derive(Debug, Default)]
pub struct RefreshLog {
    state: Mutex<LogState>,
}

/// What [`RefreshLog`] shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RefreshStatus {
    /// The last [`ATTEMPTS_KEPT`] attempts, oldest first.
    pub attempts: Vec<Attempt>,
    /// When the next attempt is due (RFC 3339, UTC), once one is scheduled.
    pub next_attempt: Option<String>,
    /// Seconds until then (0 when due now or late).
    pub next_attempt_in_seconds: Option<i64>,
    /// Failed attempts since the last success.
    pub failures_in_a_row: u32,
}

impl RefreshLog {
    fn state(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an attempt that started at `started` and ended at `ended`; `error` is why
    /// it failed.
    pub fn record(&self, started: DateTime<Utc>, ended: DateTime<Utc>, error: Option<String>) {
        let millis = (ended - started).num_milliseconds().max(0).unsigned_abs();
        let mut state = self.state();
        if state.attempts.len() >= ATTEMPTS_KEPT {
            state.attempts.pop_front();
        }
        state.failures_in_a_row = match error {
            Some(_) => state.failures_in_a_row.saturating_add(1),
            None => 0,
        };
        state.attempts.push_back(Attempt {
            started: format_time(&started),
            millis,
            ok: error.is_none(),
            error,
        });
    }

    /// Failed attempts since the last success.
    pub fn failures_in_a_row(&self) -> u32 {
        self.state().failures_in_a_row
    }

    /// Records when the next attempt is due.
    pub fn schedule(&self, at: DateTime<Utc>) {
        self.state().next_due = Some(at);
    }

    /// What `/healthz` adds to its first line: why the last attempt failed, if it did,
    /// and when the next one is due.
    pub fn health_lines(&self, now: DateTime<Utc>) -> String {
        let state = self.state();
        let mut lines = String::new();
        if let Some(Attempt {
            started,
            error: Some(error),
            ..
        }) = state.attempts.back()
        {
            lines.push_str(&format!(
                "the last refresh attempt ({started}) failed: {error}\n"
            ));
        }
        if let Some(at) = state.next_due {
            lines.push_str(&format!(
                "next refresh attempt: {} (in {} s)\n",
                format_time(&at),
                (at - now).num_seconds().max(0)
            ));
        }
        lines
    }

    /// The attempts and the next one due, as of `now`.
    pub fn status(&self, now: DateTime<Utc>) -> RefreshStatus {
        let state = self.state();
        RefreshStatus {
            attempts: state.attempts.iter().cloned().collect(),
            next_attempt: state.next_due.as_ref().map(format_time),
            next_attempt_in_seconds: state.next_due.map(|at| (at - now).num_seconds().max(0)),
            failures_in_a_row: state.failures_in_a_row,
        }
    }
}

/// A time as the status pages show it: RFC 3339 in UTC, to the millisecond.
pub fn format_time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn backoff_doubles_from_about_a_second_up_to_the_interval() {
        let waits: Vec<Duration> = (1..=9).map(|n| backoff(n, MINUTE, 1.0)).collect();
        let seconds: Vec<u64> = waits.iter().map(Duration::as_secs).collect();
        assert_eq!(seconds, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        // However many failures: never past the interval, and no overflow.
        assert_eq!(backoff(u32::MAX, MINUTE, 1.0), MINUTE);
        // An interval shorter than the first retry caps it too.
        let short = Duration::from_millis(1500);
        assert_eq!(backoff(5, short, 1.0), short);
    }

    #[test]
    fn jitter_picks_between_half_and_all_of_the_wait() {
        let base = Duration::from_secs(8);
        assert_eq!(backoff(4, MINUTE, 0.0), base / 2);
        assert_eq!(backoff(4, MINUTE, 0.5), base.mul_f64(0.75));
        assert_eq!(backoff(4, MINUTE, 1.0), base);
        // Out of range or not a number: clamped, never more than the interval.
        assert_eq!(backoff(4, MINUTE, 7.0), base);
        assert_eq!(backoff(4, MINUTE, -3.0), base / 2);
        assert_eq!(backoff(4, MINUTE, f64::NAN), base);
    }

    #[test]
    fn a_success_resets_the_backoff_and_waits_the_interval() {
        let log = RefreshLog::default();
        let now = Utc::now();
        let attempt = |error: Option<&str>| {
            log.record(now, now, error.map(str::to_owned));
            next_wait(log.failures_in_a_row(), MINUTE, 1.0)
        };
        assert_eq!(next_wait(log.failures_in_a_row(), MINUTE, 0.0), MINUTE);
        assert_eq!(attempt(Some("down")), Duration::from_secs(1));
        assert_eq!(attempt(Some("down")), Duration::from_secs(2));
        assert_eq!(attempt(Some("down")), Duration::from_secs(4));
        assert_eq!(log.failures_in_a_row(), 3);
        assert_eq!(attempt(None), MINUTE);
        assert_eq!(log.failures_in_a_row(), 0);
        assert_eq!(attempt(Some("down")), Duration::from_secs(1));
    }

    #[test]
    fn the_log_keeps_the_recent_attempts_and_the_next_one_due() {
        let log = RefreshLog::default();
        let start = DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |seconds: i64| start + chrono::Duration::seconds(seconds);
        log.record(
            at(0),
            at(0) + chrono::Duration::milliseconds(250),
            Some("down".into()),
        );
        log.record(at(1), at(1), Some("down".into()));
        let status = log.status(at(1));
        assert_eq!(status.failures_in_a_row, 2);
        assert_eq!(status.attempts[0].millis, 250);
        assert_eq!(status.attempts[0].started, "2026-12-03T10:00:00.000Z");
        assert_eq!(status.attempts[1].error.as_deref(), Some("down"));
        assert!(!status.attempts[1].ok);
        assert_eq!(status.next_attempt, None);
        assert_eq!(
            log.health_lines(at(1)),
            "the last refresh attempt (2026-12-03T10:00:01.000Z) failed: down\n"
        );
        log.schedule(at(3));
        assert_eq!(
            log.health_lines(at(1)),
            "the last refresh attempt (2026-12-03T10:00:01.000Z) failed: down\n\
             next refresh attempt: 2026-12-03T10:00:03.000Z (in 2 s)\n"
        );
        let status = log.status(at(1));
        assert_eq!(
            status.next_attempt.as_deref(),
            Some("2026-12-03T10:00:03.000Z")
        );
        assert_eq!(status.next_attempt_in_seconds, Some(2));
        // Late is shown as due now.
        assert_eq!(log.status(at(10)).next_attempt_in_seconds, Some(0));
        log.record(at(3), at(3), None);
        let status = log.status(at(3));
        assert_eq!(status.failures_in_a_row, 0);
        assert!(status.attempts[2].ok);
        assert_eq!(
            log.health_lines(at(3)),
            "next refresh attempt: 2026-12-03T10:00:03.000Z (in 0 s)\n"
        );
        for n in 0..100 {
            log.record(at(n), at(n), None);
        }
        let status = log.status(at(100));
        assert_eq!(status.attempts.len(), ATTEMPTS_KEPT);
        assert_eq!(
            status.attempts[ATTEMPTS_KEPT - 1].started,
            format_time(&at(99))
        );
    }
}
