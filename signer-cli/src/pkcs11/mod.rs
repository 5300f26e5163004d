//! Hardware keys through PKCS#11: HSMs, YubiKeys (ykcs11, or OpenSC for PIV), SoftHSM2.
//!
//! A key on a token is named by an RFC 7512 URI ([`Pkcs11Uri`]). [`TokenSigner`] signs
//! behind tuf-core's `Signer` seam, so the repository editor never learns that a key is
//! on a token. Ed25519 keys sign with `CKM_EDDSA`; ECDSA P-256 keys sign a SHA-256 digest
//! with `CKM_ECDSA`, and the raw `r || s` the token returns is DER-encoded as TUF's
//! `ecdsa-sha2-nistp256` scheme expects.
//!
//! - [`uri`]: parsing RFC 7512 URIs, with the PIN redacted in every rendering;
//! - [`token`]: the module, the token, the PIN and login, key objects, public keys;
//! - [`signer`]: signing on the token;
//! - [`generate`](mod@generate): making a key pair on the token;
//! - [`error`]: what went wrong, in words that name the URI.

mod error;
mod generate;
mod signer;
mod token;
mod uri;

pub use generate::generate;
pub use signer::TokenSigner;
pub use token::public_key;
pub use uri::{Pkcs11Uri, UriError};

#[cfg(test)]
mod tests {
    /// The property the key ceremony rests on, kept true by construction: no code here
    /// asks a token for a private key's value, copies a key object, or wraps (exports) a
    /// key out of a token.
    #[test]
    fn no_code_path_asks_a_token_for_private_key_material() {
        let sources = [
            ("error.rs", include_str!("error.rs")),
            ("generate.rs", include_str!("generate.rs")),
            ("signer.rs", include_str!("signer.rs")),
            ("token.rs", include_str!("token.rs")),
            ("uri.rs", include_str!("uri.rs")),
        ];
        for (file, text) in sources {
            for call in [
                "AttributeType::Value",
                "Attribute::Value",
                "AttributeType::PrivateExponent",
                "AttributeType::Prime",
                "wrap_key",
                "copy_object",
                "Attribute::Extractable(true),",
            ] {
                assert!(!text.contains(call), "{file} uses {call}");
            }
        }
    }
}
