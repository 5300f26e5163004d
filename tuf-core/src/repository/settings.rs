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

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?}: expected a whole number followed by s, m, h, d or w (e.g. 90d, 12h)")]
pub struct DurationError {
    /// The text given.
    pub text: String,
}

/// Reads a duration such as `90d`, `12h`, `30m`, `45s` or `2w` as seconds.
pub fn parse_duration(text: &str) -> Result<u64, DurationError> {
    let err = || DurationError {
        text: text.to_owned(),
    };
    let unit_at = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (number, unit) = text.split_at(unit_at);
    let number: u64 = number.parse().map_err(|_| err())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        "d" => DAY,
        "w" => 7 * DAY,
        _ => return Err(err()),
    };
    let seconds = number.checked_mul(scale).ok_or_else(err)?;
    // Dates must stay representable: at most about 1,000 years.
    if seconds == 0 || seconds > 1000 * 365 * DAY {
        return Err(err());
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
        assert_eq!(parse_duration("90d").unwrap(), 90 * DAY);
        assert_eq!(parse_duration("12h").unwrap(), 12 * 3600);
        assert_eq!(parse_duration("2w").unwrap(), 14 * DAY);
        for bad in [
            "",
            "d",
            "12",
            "1.5d",
            "-1d",
            "0d",
            "1y",
            "99999999999999999999d",
            "9999999w",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(format_duration(7 * DAY), "1w");
        assert_eq!(format_duration(DAY), "1d");
        assert_eq!(format_duration(90), "90s");
    }
}
