//! A repository's own settings (`repository.json` in the signer's working directory):
//! how long each role's metadata stays valid, and how many hash bins the fallback role
//! uses.

use serde::{Deserialize, Serialize};

/// How long each kind of role's metadata is valid after it is signed, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiryPolicy {
    /// `root` (offline keys; re-signed at ceremonies).
    pub root: u64,
    /// `targets` (offline keys).
    pub targets: u64,
    /// Namespace roles (`ns-*`, the owners' keys).
    pub namespace: u64,
    /// The fallback role and its hash bins (online key).
    pub fallback: u64,
    /// `snapshot` (online key).
    pub snapshot: u64,
    /// `timestamp` (online key; refresh it well within this period).
    pub timestamp: u64,
}

const DAY: u64 = 24 * 60 * 60;

impl Default for ExpiryPolicy {
    fn default() -> Self {
        Self {
            root: 365 * DAY,
            targets: 365 * DAY,
            namespace: 365 * DAY,
            fallback: 90 * DAY,
            snapshot: 7 * DAY,
            timestamp: DAY,
        }
    }
}

impl ExpiryPolicy {
    /// Checks that every period is at least one second and at most 1000 years (what a
    /// duration flag of `init` accepts): `repository.json` is edited by hand. The error
    /// names the field.
    pub fn validate(&self) -> Result<(), String> {
        for (name, seconds) in [
            ("root", self.root),
            ("targets", self.targets),
            ("namespace", self.namespace),
            ("fallback", self.fallback),
            ("snapshot", self.snapshot),
            ("timestamp", self.timestamp),
        ] {
            if !(1..=MAX_DURATION_SECONDS).contains(&seconds) {
                return Err(format!(
                    "expiry.{name} is {seconds} seconds: give whole seconds from 1 to \
                     {MAX_DURATION_SECONDS} (1000 years)"
                ));
            }
        }
        Ok(())
    }
}

/// Bits of the fallback role's hash-bin split by default: 256 bins.
pub const DEFAULT_FALLBACK_BIN_BITS: u32 = 8;

/// The settings file format this code writes and reads.
pub const SETTINGS_FORMAT: u32 = 1;

/// A repository's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Format of this file ([`SETTINGS_FORMAT`]).
    pub format: u32,
    /// Validity periods per role kind.
    pub expiry: ExpiryPolicy,
    /// The fallback role splits its targets into 2^`fallback_bin_bits` succinct hash bins.
    pub fallback_bin_bits: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            format: SETTINGS_FORMAT,
            expiry: ExpiryPolicy::default(),
            fallback_bin_bits: DEFAULT_FALLBACK_BIN_BITS,
        }
    }
}

/// Longest validity period accepted: dates must stay representable.
const MAX_DURATION_SECONDS: u64 = 1000 * 365 * DAY;

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// Not a duration at all.
    #[error("invalid duration {text:?}: {source} (write e.g. 90d, 12h, 30m or 2w)")]
    Syntax {
        /// The text given.
        text: String,
        /// What the parser found wrong.
        source: humantime::DurationError,
    },
    /// Not a whole number of seconds.
    #[error("invalid duration {text:?}: validity periods are whole seconds")]
    Fractional {
        /// The text given.
        text: String,
    },
    /// Zero, or longer than dates can represent.
    #[error("invalid duration {text:?}: must be at least 1s and at most 1000 years")]
    OutOfRange {
        /// The text given.
        text: String,
    },
}

/// Reads a duration such as `90d`, `12h`, `30m`, `45s` or `2w` as whole seconds,
/// with [`humantime::parse_duration`]: units `s`, `m`, `h`, `d`, `w` and their long
/// names (`90days`), combinations (`1d12h`), decimals that come out in whole seconds
/// (`1.5d`), `M` (30.44 days) and `y` (365.25 days). Between 1 second and 1000 years.
pub fn parse_duration(text: &str) -> Result<u64, DurationError> {
    let duration = humantime::parse_duration(text).map_err(|source| DurationError::Syntax {
        text: text.to_owned(),
        source,
    })?;
    if duration.subsec_nanos() != 0 {
        return Err(DurationError::Fractional {
            text: text.to_owned(),
        });
    }
    let seconds = duration.as_secs();
    if seconds == 0 || seconds > MAX_DURATION_SECONDS {
        return Err(DurationError::OutOfRange {
            text: text.to_owned(),
        });
    }
    Ok(seconds)
}

/// Writes seconds back in the largest whole unit (`86400` → `1d`).
pub fn format_duration(seconds: u64) -> String {
    for (unit, scale) in [("w", 7 * DAY), ("d", DAY), ("h", 3600), ("m", 60)] {
        if seconds >= scale && seconds.is_multiple_of(scale) {
            return format!("{}{unit}", seconds / scale);
        }
    }
    format!("{seconds}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_write() {
        // Every form the README and spec/ show.
        for (text, seconds) in [
            ("30s", 30),
            ("10s", 10),
            ("5m", 300),
            ("1m", 60),
            ("1h", 3600),
            ("6h", 6 * 3600),
            ("12h", 12 * 3600),
            ("1d", DAY),
            ("7d", 7 * DAY),
            ("30d", 30 * DAY),
            ("90d", 90 * DAY),
            ("365d", 365 * DAY),
            ("1000d", 1000 * DAY),
            ("2w", 14 * DAY),
        ] {
            assert_eq!(parse_duration(text).unwrap(), seconds, "{text}");
        }
        // What humantime adds: long unit names, combinations, decimals in whole seconds,
        // months and years.
        for (text, seconds) in [
            ("90days", 90 * DAY),
            ("1d12h", DAY + 12 * 3600),
            ("1h 30m", 5400),
            ("1.5d", DAY + 12 * 3600),
            ("1y", 365 * DAY + 6 * 3600),
            ("1M", 2_630_016),
        ] {
            assert_eq!(parse_duration(text).unwrap(), seconds, "{text}");
        }
        for bad in ["", "d", "12", "-1d", "1x", "99999999999999999999d"] {
            assert!(
                matches!(parse_duration(bad), Err(DurationError::Syntax { .. })),
                "{bad:?} accepted"
            );
        }
        for fractional in ["500ms", "1.5s"] {
            assert!(
                matches!(
                    parse_duration(fractional),
                    Err(DurationError::Fractional { .. })
                ),
                "{fractional:?} accepted"
            );
        }
        for out_of_range in ["0d", "0s", "9999999w", "1001y"] {
            assert!(
                matches!(
                    parse_duration(out_of_range),
                    Err(DurationError::OutOfRange { .. })
                ),
                "{out_of_range:?} accepted"
            );
        }
        assert_eq!(format_duration(7 * DAY), "1w");
        assert_eq!(format_duration(DAY), "1d");
        assert_eq!(format_duration(90), "90s");
        // What format_duration writes reads back.
        for seconds in [90, 3600, DAY, 7 * DAY, 90 * DAY, 365 * DAY + 1] {
            assert_eq!(parse_duration(&format_duration(seconds)).unwrap(), seconds);
        }
    }
}
