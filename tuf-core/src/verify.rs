//! Threshold signature verification (TUF §5.3.4 and §5.6.3 for roots, §5.4.3, §5.5.3,
//! §5.6.3 and §5.6.7.2 for other roles).
//!
//! A role is trusted when at least `threshold` distinct authorised keys produced valid
//! signatures over the canonical bytes of `signed`. "Distinct" is judged on key material:
//! a keyid listed twice, or two keyids naming the same key, count once (the lesson of
//! tough's CVE-2020-15093). A malformed, unknown or invalid signature beside enough valid
//! ones does not fail the role.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::keys::{Key, KeyId};
use crate::metadata::{Metadata, MetadataError, Role, Root, Signature, Targets};

/// What a delegator says about one role: the keys it may use and how many must sign.
#[derive(Debug, Clone, Copy)]
pub struct Authorization<'a> {
    /// Keys by keyid (root's `keys`, or the delegator's `delegations.keys`).
    pub keys: &'a BTreeMap<KeyId, Key>,
    /// Keyids authorised for the role.
    pub keyids: &'a [KeyId],
    /// Distinct valid signatures needed.
    pub threshold: u64,
}

/// Metadata that authorises other roles: root for the top-level roles, targets roles for
/// their delegations.
pub trait Delegator {
    /// The authorisation of `role`, or `None` if this metadata does not delegate it.
    fn authorization(&self, role: &str) -> Option<Authorization<'_>>;
}

impl Delegator for Root {
    fn authorization(&self, role: &str) -> Option<Authorization<'_>> {
        let entry = self.roles.get(role)?;
        Some(Authorization {
            keys: &self.keys,
            keyids: &entry.keyids,
            threshold: entry.threshold,
        })
    }
}

impl Delegator for Targets {
    fn authorization(&self, role: &str) -> Option<Authorization<'_>> {
        let delegations = self.delegations.as_ref()?;
        if let Some(roles) = &delegations.roles {
            let entry = roles.iter().find(|r| r.name == role)?;
            return Some(Authorization {
                keys: &delegations.keys,
                keyids: &entry.keyids,
                threshold: entry.threshold,
            });
        }
        let succinct = delegations.succinct_roles.as_ref()?;
        succinct.is_delegated_role(role).then_some(Authorization {
            keys: &delegations.keys,
            keyids: &succinct.keyids,
            threshold: succinct.threshold,
        })
    }
}

/// How the signatures of one document stand against an authorisation.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SignatureReport {
    /// Signatures needed.
    pub threshold: u64,
    /// Authorised keyids with a valid signature that counted.
    pub valid: Vec<KeyId>,
    /// Authorised keyids with a valid signature by a key already counted under another
    /// keyid.
    pub duplicate_keys: Vec<KeyId>,
    /// Authorised keyids with no signature.
    pub missing: Vec<KeyId>,
    /// Authorised keyids whose signature (or key) is unusable, with the reason.
    pub invalid: Vec<(KeyId, String)>,
    /// Signatures by keyids the delegator does not authorise for this role.
    pub unauthorized: Vec<KeyId>,
}

impl SignatureReport {
    /// Whether enough distinct keys signed.
    pub fn threshold_met(&self) -> bool {
        self.valid.len() as u64 >= self.threshold
    }
}

/// Why a role's signatures were not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerificationError {
    /// The delegator does not delegate this role.
    #[error("{delegator} does not delegate the role {role:?}")]
    UnknownRole {
        /// The delegating role's type.
        delegator: &'static str,
        /// The role asked about.
        role: String,
    },
    /// Too few distinct authorised keys signed validly.
    #[error(
        "role {role:?} has {valid} of {threshold} required valid signatures (missing: {missing:?})"
    )]
    ThresholdNotMet {
        /// The role verified.
        role: String,
        /// Valid distinct signatures found.
        valid: usize,
        /// Signatures needed.
        threshold: u64,
        /// Authorised keyids that did not sign validly.
        missing: Vec<KeyId>,
    },
    /// The signed content could not be canonicalised.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
}

/// Checks every signature on `message` against `authorization`.
pub fn check_signatures(
    authorization: &Authorization<'_>,
    signatures: &[Signature],
    message: &[u8],
) -> SignatureReport {
    let mut by_keyid: HashMap<&str, Vec<&Signature>> = HashMap::new();
    for signature in signatures {
        by_keyid
            .entry(signature.keyid.as_str())
            .or_default()
            .push(signature);
    }
    let authorized: HashSet<&str> = authorization.keyids.iter().map(String::as_str).collect();
    let mut report = SignatureReport {
        threshold: authorization.threshold,
        unauthorized: by_keyid
            .keys()
            .filter(|keyid| !authorized.contains(*keyid))
            .map(|keyid| (*keyid).to_owned())
            .collect(),
        ..SignatureReport::default()
    };
    report.unauthorized.sort();
    let mut counted_keys: HashSet<Vec<u8>> = HashSet::new();
    let mut seen_keyids: HashSet<&str> = HashSet::new();
    for keyid in authorization.keyids {
        if !seen_keyids.insert(keyid) {
            continue;
        }
        let Some(candidates) = by_keyid.get(keyid.as_str()) else {
            report.missing.push(keyid.clone());
            continue;
        };
        let Some(key) = authorization.keys.get(keyid) else {
            report
                .invalid
                .push((keyid.clone(), "no key with this keyid".into()));
            continue;
        };
        let verifying_key = match key.verifying_key() {
            Ok(verifying_key) => verifying_key,
            Err(err) => {
                report.invalid.push((keyid.clone(), err.to_string()));
                continue;
            }
        };
        let mut last_error = String::new();
        let valid = candidates.iter().any(|signature| {
            let outcome = hex::decode(&signature.sig)
                .map_err(|e| format!("malformed signature: {e}"))
                .and_then(|raw| {
                    verifying_key
                        .verify(message, &raw)
                        .map_err(|e| e.to_string())
                });
            if let Err(err) = &outcome {
                last_error.clone_from(err);
            }
            outcome.is_ok()
        });
        if !valid {
            report.invalid.push((keyid.clone(), last_error));
        } else if counted_keys.insert(verifying_key.identity()) {
            report.valid.push(keyid.clone());
        } else {
            report.duplicate_keys.push(keyid.clone());
        }
    }
    report
}

impl<D: Role + Delegator> Metadata<D> {
    /// Checks that `delegate`, the metadata of `role`, is signed by a threshold of the
    /// keys this metadata authorises for it (python-tuf's `verify_delegate`).
    pub fn verify_delegate<T: Role>(
        &self,
        role: &str,
        delegate: &Metadata<T>,
    ) -> Result<SignatureReport, VerificationError> {
        let authorization =
            self.signed()
                .authorization(role)
                .ok_or_else(|| VerificationError::UnknownRole {
                    delegator: D::TYPE,
                    role: role.to_owned(),
                })?;
        let report = check_signatures(
            &authorization,
            &delegate.signatures,
            delegate.signed_bytes()?,
        );
        if report.threshold_met() {
            Ok(report)
        } else {
            Err(VerificationError::ThresholdNotMet {
                role: role.to_owned(),
                valid: report.valid.len(),
                threshold: report.threshold,
                missing: report
                    .missing
                    .iter()
                    .chain(report.invalid.iter().map(|(k, _)| k))
                    .cloned()
                    .collect(),
            })
        }
    }
}
