//! Signatures: what changed, signing here or elsewhere, and how a role's signatures
//! stand.

use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::editor::{Repository, View};
use super::{io_error, RepositoryError};
use crate::keys::KeyId;
use crate::metadata::Signature;
use crate::signer::Signer;
use crate::verify::{check_signatures, Authorization, Delegator, SignatureReport};

/// One difference between the published and the staged version of a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A field that was not there.
    Added {
        /// JSON path of the field.
        path: String,
        /// Its value (compact JSON).
        value: String,
    },
    /// A field that is gone.
    Removed {
        /// JSON path of the field.
        path: String,
        /// Its old value (compact JSON).
        value: String,
    },
    /// A field whose value changed.
    Changed {
        /// JSON path of the field.
        path: String,
        /// Old value (compact JSON).
        old: String,
        /// New value (compact JSON).
        new: String,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Added { path, value } => write!(f, "+ {path}: {value}"),
            Self::Removed { path, value } => write!(f, "- {path}: {value}"),
            Self::Changed { path, old, new } => write!(f, "~ {path}: {old} -> {new}"),
        }
    }
}

/// A signature made on one machine for staged metadata on another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetachedSignature {
    /// The role signed.
    pub role: String,
    /// Its staged version.
    pub version: u64,
    /// sha256 of the canonical bytes signed, to refuse a signature over other content.
    pub signed_sha256: String,
    /// The signature.
    pub signature: Signature,
}

/// How a role's signatures stand after a signature was added.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureOutcome {
    /// The role.
    pub role: String,
    /// The key that signed.
    pub keyid: KeyId,
    /// Against the keys that authorise the staged role.
    pub report: SignatureReport,
    /// For a new root: against the previous root's root keys, which must also sign it.
    pub previous_root: Option<SignatureReport>,
}

/// How the signatures of one staged role stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleSignatures {
    /// Against the keys that will authorise the role after the next publish.
    pub report: SignatureReport,
    /// For a staged root: against the root keys of the published root, which must sign
    /// it too (TUF §5.3.4).
    pub previous_root: Option<SignatureReport>,
}

impl RoleSignatures {
    /// Whether every threshold is met: the role's, and the previous root's for a root.
    pub fn threshold_met(&self) -> bool {
        self.report.threshold_met()
            && self
                .previous_root
                .as_ref()
                .is_none_or(SignatureReport::threshold_met)
    }
}

fn json_text(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 1000 {
        let short: String = text.chars().take(997).collect();
        format!("{short}...")
    } else {
        text
    }
}

fn diff_values(
    path: &str,
    old: &serde_json::Value,
    new: &serde_json::Value,
    out: &mut Vec<Change>,
) {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, old_value) in a {
                let child = format!("{path}.{key}");
                match b.get(key) {
                    Some(new_value) => diff_values(&child, old_value, new_value, out),
                    None => out.push(Change::Removed {
                        path: child,
                        value: json_text(old_value),
                    }),
                }
            }
            for (key, new_value) in b {
                if !a.contains_key(key) {
                    out.push(Change::Added {
                        path: format!("{path}.{key}"),
                        value: json_text(new_value),
                    });
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_values(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ if old != new => out.push(Change::Changed {
            path: path.to_owned(),
            old: json_text(old),
            new: json_text(new),
        }),
        _ => {}
    }
}

impl Repository {
    // ----- signing -------------------------------------------------------------------

    /// Differences between the published and the staged version of `role`.
    pub fn diff(&mut self, role: &str) -> Result<Vec<Change>, RepositoryError> {
        let (old, new) = if role == "root" {
            let new = self
                .staged_root
                .as_ref()
                .ok_or_else(|| RepositoryError::NotStaged(role.into()))?;
            let old = self.published.root.as_ref();
            (
                old.map(|m| serde_json::to_value(m.signed())).transpose(),
                serde_json::to_value(new.signed()),
            )
        } else {
            let new = serde_json::to_value(
                self.staged
                    .get(role)
                    .ok_or_else(|| RepositoryError::NotStaged(role.into()))?
                    .signed(),
            );
            let old = self
                .published
                .targets(role)?
                .map(|m| serde_json::to_value(m.signed()))
                .transpose();
            (old, new)
        };
        let schema = |e: serde_json::Error| RepositoryError::InvalidEdit {
            role: role.to_owned(),
            message: e.to_string(),
        };
        // A new role is compared with an empty object: every field shows as added.
        let old = old
            .map_err(schema)?
            .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()));
        let new = new.map_err(schema)?;
        let mut changes = Vec::new();
        diff_values("signed", &old, &new, &mut changes);
        Ok(changes)
    }

    /// The canonical bytes a signature of staged `role` covers.
    fn staged_signed_bytes(&self, role: &str) -> Result<(u64, Vec<u8>), RepositoryError> {
        let meta_err = |source| RepositoryError::Metadata {
            path: self.staged_path(role),
            source,
        };
        if role == "root" {
            let root = self
                .staged_root
                .as_ref()
                .ok_or_else(|| RepositoryError::NotStaged(role.into()))?;
            Ok((
                root.signed().version,
                root.signed_bytes().map_err(meta_err)?.to_vec(),
            ))
        } else {
            let doc = self
                .staged
                .get(role)
                .ok_or_else(|| RepositoryError::NotStaged(role.into()))?;
            Ok((
                doc.signed().version,
                doc.signed_bytes().map_err(meta_err)?.to_vec(),
            ))
        }
    }

    /// Whether `keyid` may sign staged `role`: authorised by its delegator after the next
    /// publish, or (for root) by the published root.
    fn check_authorized(&mut self, role: &str, keyid: &str) -> Result<(), RepositoryError> {
        let keyids = self.authorization_of(role)?.keyids;
        let by_previous_root = role == "root"
            && self
                .published
                .root
                .as_ref()
                .and_then(|r| r.signed().role("root"))
                .is_some_and(|r| r.keyids.iter().any(|k| k == keyid));
        if keyids.iter().any(|k| k == keyid) || by_previous_root {
            Ok(())
        } else {
            Err(RepositoryError::KeyNotAuthorized {
                role: role.to_owned(),
                keyid: keyid.to_owned(),
            })
        }
    }

    /// Whether `keyid` may sign staged `role` (see [`Self::sign`]).
    pub fn can_sign(&mut self, role: &str, keyid: &str) -> bool {
        self.check_authorized(role, keyid).is_ok()
    }

    /// Signs staged `role` with `signer`, keeping the other signatures and the signed
    /// bytes unchanged, then checks the new signature.
    pub fn sign(
        &mut self,
        role: &str,
        signer: &dyn Signer,
    ) -> Result<SignatureOutcome, RepositoryError> {
        let detached = self.detached_signature(role, signer)?;
        self.import_signature(&detached)
    }

    /// Makes a signature of staged `role` without changing the repository, to carry to
    /// the machine that collects signatures.
    pub fn detached_signature(
        &mut self,
        role: &str,
        signer: &dyn Signer,
    ) -> Result<DetachedSignature, RepositoryError> {
        self.check_authorized(role, signer.keyid())?;
        let (version, bytes) = self.staged_signed_bytes(role)?;
        let signature = Signature::create(signer, &bytes)?;
        Ok(DetachedSignature {
            role: role.to_owned(),
            version,
            signed_sha256: hex::encode(sha2::Sha256::digest(&bytes)),
            signature,
        })
    }

    /// Adds a signature made elsewhere to staged metadata, after checking it is over
    /// exactly the staged bytes, by an authorised key, and valid.
    pub fn import_signature(
        &mut self,
        detached: &DetachedSignature,
    ) -> Result<SignatureOutcome, RepositoryError> {
        let role = detached.role.as_str();
        let (version, bytes) = self.staged_signed_bytes(role)?;
        let staged_sha256 = hex::encode(sha2::Sha256::digest(&bytes));
        if version != detached.version || staged_sha256 != detached.signed_sha256 {
            return Err(RepositoryError::SignatureMismatch {
                role: role.to_owned(),
                staged_version: version,
                staged_sha256,
                signed_version: detached.version,
                signed_sha256: detached.signed_sha256.clone(),
            });
        }
        let keyid = detached.signature.keyid.clone();
        self.check_authorized(role, &keyid)?;
        // Find the key, in the new authorisation or (root) the previous root.
        let keys = self.authorization_of(role)?.keys;
        let key = keys.get(&keyid).cloned().or_else(|| {
            self.published
                .root
                .as_ref()
                .and_then(|r| r.signed().keys.get(&keyid).cloned())
        });
        let key = key.ok_or_else(|| RepositoryError::KeyNotAuthorized {
            role: role.to_owned(),
            keyid: keyid.clone(),
        })?;
        key.verify(&bytes, &detached.signature.sig)
            .map_err(|e| RepositoryError::BadSignature {
                role: role.to_owned(),
                keyid: keyid.clone(),
                reason: e.to_string(),
            })?;
        let signature = detached.signature.clone();
        let add = |signatures: &mut Vec<Signature>| {
            signatures.retain(|s| s.keyid != signature.keyid);
            signatures.push(signature.clone());
        };
        if role == "root" {
            if let Some(root) = self.staged_root.as_mut() {
                add(&mut root.signatures);
            }
        } else if let Some(doc) = self.staged.get_mut(role) {
            add(&mut doc.signatures);
        }
        self.dirty.insert(role.to_owned());
        self.save()?;
        let RoleSignatures {
            report,
            previous_root,
        } = self.signatures_of(role)?;
        Ok(SignatureOutcome {
            role: role.to_owned(),
            keyid,
            report,
            previous_root,
        })
    }

    /// How the signatures of staged `role` stand: against the keys that will authorise
    /// it and, for root, against the published root too.
    pub fn signatures_of(&mut self, role: &str) -> Result<RoleSignatures, RepositoryError> {
        self.signatures_in(role, View::AfterPublish)
    }

    /// [`Self::signatures_of`] against the delegators of `view`.
    pub(crate) fn signatures_in(
        &mut self,
        role: &str,
        view: View,
    ) -> Result<RoleSignatures, RepositoryError> {
        let owned = self.authorization_in(role, view)?;
        let authorization = Authorization {
            keys: &owned.keys,
            keyids: &owned.keyids,
            threshold: owned.threshold,
        };
        let (signatures, bytes) = if role == "root" {
            let root = self
                .staged_root
                .as_ref()
                .ok_or_else(|| RepositoryError::NotStaged(role.into()))?;
            (root.signatures.clone(), self.staged_signed_bytes(role)?.1)
        } else {
            let doc = self
                .staged
                .get(role)
                .ok_or_else(|| RepositoryError::NotStaged(role.into()))?;
            (doc.signatures.clone(), self.staged_signed_bytes(role)?.1)
        };
        let report = check_signatures(&authorization, &signatures, &bytes);
        let previous_root = if role == "root" {
            self.published.root.as_ref().and_then(|old| {
                old.signed()
                    .authorization("root")
                    .map(|authorization| check_signatures(&authorization, &signatures, &bytes))
            })
        } else {
            None
        };
        Ok(RoleSignatures {
            report,
            previous_root,
        })
    }

    /// Drops every staged change (and staged tarballs).
    pub fn discard(&mut self) -> Result<Vec<String>, RepositoryError> {
        let roles = self.staged_roles();
        self.staged_root = None;
        self.staged.clear();
        self.dirty.clear();
        let dir = self.staged_dir();
        std::fs::remove_dir_all(&dir).map_err(io_error(&dir))?;
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        Ok(roles)
    }
}
