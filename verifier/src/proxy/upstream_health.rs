//! How upstream has answered lately, for the status page: requests and failures in the
//! last minute, five minutes and hour (per-minute counts, so the memory is fixed), and
//! the last failure.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// Minutes of history kept.
const MINUTES_KEPT: usize = 60;

/// What the proxy asked upstream for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamRequest {
    /// An index file.
    Index,
    /// A tarball.
    Download,
    /// The registry's `config.json` (its download URL).
    Config,
}

#[derive(Debug, Clone, Copy, Default)]
struct Minute {
    /// Minutes since the Unix epoch this bucket counts.
    minute: i64,
    requests: u64,
    failed: u64,
}

/// The last failure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UpstreamFailure {
    /// When (RFC 3339, UTC).
    pub time: String,
    /// What was asked for.
    pub request: UpstreamRequest,
    /// What went wrong (bounded).
    pub error: String,
}

/// Requests and failures over a window.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Window {
    /// Requests made upstream.
    pub requests: u64,
    /// Of which failed.
    pub failed: u64,
    /// `failed / requests`, 0 with no request.
    pub error_rate: f64,
}

/// What the status page shows of upstream.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UpstreamStatus {
    /// The last minute.
    pub last_minute: Window,
    /// The last five minutes.
    pub last_5_minutes: Window,
    /// The last hour.
    pub last_hour: Window,
    /// The last failure since start, if any.
    pub last_failure: Option<UpstreamFailure>,
}

#[derive(Debug)]
struct State {
    minutes: [Minute; MINUTES_KEPT],
    last_failure: Option<UpstreamFailure>,
}

/// The record of upstream's answers.
#[derive(Debug)]
pub struct UpstreamHealth {
    state: Mutex<State>,
}

impl Default for UpstreamHealth {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                minutes: [Minute {
                    minute: i64::MIN,
                    ..Minute::default()
                }; MINUTES_KEPT],
                last_failure: None,
            }),
        }
    }
}

fn minute_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(60)
}

fn slot(minute: i64) -> usize {
    // rem_euclid of a positive modulus is in 0..MINUTES_KEPT.
    usize::try_from(minute.rem_euclid(MINUTES_KEPT as i64)).unwrap_or(0)
}

impl UpstreamHealth {
    /// Records one answer (or failure, with why) of upstream at `at`.
    pub fn record(&self, at: DateTime<Utc>, request: UpstreamRequest, failure: Option<&str>) {
        let minute = minute_of(at);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(bucket) = state.minutes.get_mut(slot(minute)) else {
            return;
        };
        if bucket.minute != minute {
            *bucket = Minute {
                minute,
                requests: 0,
                failed: 0,
            };
        }
        bucket.requests += 1;
        if let Some(error) = failure {
            bucket.failed += 1;
            state.last_failure = Some(UpstreamFailure {
                time: crate::refresh_schedule::format_time(&at),
                request,
                error: super::refusals::bounded(error).into_owned(),
            });
        }
    }

    /// The windows ending at `now`, and the last failure.
    pub fn status(&self, now: DateTime<Utc>) -> UpstreamStatus {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let current = minute_of(now);
        let window = |minutes: i64| {
            let (requests, failed) = state
                .minutes
                .iter()
                .filter(|m| m.minute <= current && m.minute > current - minutes)
                .fold((0, 0), |(r, f), m| (r + m.requests, f + m.failed));
            Window {
                requests,
                failed,
                error_rate: if requests == 0 {
                    0.0
                } else {
                    failed as f64 / requests as f64
                },
            }
        };
        UpstreamStatus {
            last_minute: window(1),
            last_5_minutes: window(5),
            last_hour: window(MINUTES_KEPT as i64),
            last_failure: state.last_failure.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::float_cmp)]
    use super::*;

    fn at(minute: i64, second: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_799_999_940 + minute * 60 + second, 0).unwrap()
    }

    #[test]
    fn windows_count_the_requests_and_failures_of_their_minutes() {
        let health = UpstreamHealth::default();
        let empty = health.status(at(0, 0));
        assert_eq!(empty.last_hour.requests, 0);
        assert_eq!(empty.last_hour.error_rate, 0.0);
        assert!(empty.last_failure.is_none());
        // Ten minutes ago: 4 requests, 1 failed. Three minutes ago: 2, 2 failed. Now: 4, 1.
        for _ in 0..3 {
            health.record(at(0, 5), UpstreamRequest::Index, None);
        }
        health.record(at(0, 50), UpstreamRequest::Download, Some("timed out"));
        for _ in 0..2 {
            health.record(at(7, 1), UpstreamRequest::Index, Some("503"));
        }
        for _ in 0..3 {
            health.record(at(10, 0), UpstreamRequest::Index, None);
        }
        health.record(at(10, 59), UpstreamRequest::Config, Some("refused"));
        let status = health.status(at(10, 59));
        assert_eq!(
            (status.last_minute.requests, status.last_minute.failed),
            (4, 1)
        );
        assert_eq!(status.last_minute.error_rate, 0.25);
        assert_eq!(
            (status.last_5_minutes.requests, status.last_5_minutes.failed),
            (6, 3)
        );
        assert_eq!(
            (status.last_hour.requests, status.last_hour.failed),
            (10, 4)
        );
        let last = status.last_failure.unwrap();
        assert_eq!(last.request, UpstreamRequest::Config);
        assert_eq!(last.error, "refused");
        // An hour on, the old minutes have left every window; a bucket reused for a
        // new minute starts from zero.
        let later = health.status(at(70, 30));
        assert_eq!(later.last_hour.requests, 0);
        assert_eq!(health.status(at(69, 0)).last_hour.requests, 4);
        health.record(at(70, 30), UpstreamRequest::Index, None);
        let later = health.status(at(70, 30));
        assert_eq!(later.last_minute.requests, 1);
        assert_eq!(later.last_hour.requests, 1);
    }
}
