//! The proxy's own credential for a private upstream registry, and the client tokens
//! cargo authenticates to the proxy with.
//!
//! The upstream token is read from a file or an environment variable, held in zeroizing
//! memory, and attached only to requests whose origin (scheme, host, port) is the
//! upstream index's or one listed in `upstream_token_origins`: never to the TUF
//! repository, a policy import, or another origin a redirect leads to (reqwest drops
//! `Authorization` on a redirect to another origin, and the header is marked sensitive
//! so that no log of hyper's shows it). Its `Debug` shows no token.
//!
//! Client tokens are stored as their SHA-256 only (`sha256:HEX NAME` lines): the tokens
//! file reveals no token. Tokens are 32 random bytes, so a fast hash is enough: there is
//! nothing to guess.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use reqwest::header::HeaderValue;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Longest token file read.
const MAX_TOKEN_FILE: u64 = 4096;
/// Longest client tokens file read.
pub const MAX_TOKENS_FILE: u64 = 4 * 1024 * 1024;
/// The prefix of the tokens `client-token new` makes (so that leaked ones are easy to
/// find with a secret scanner).
pub const CLIENT_TOKEN_PREFIX: &str = "tvp_";

/// Why a credential could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// Both or neither of a file and a variable.
    #[error("give upstream_token_file or upstream_token_env, not both")]
    BothSources,
    /// The environment variable is unset or not UTF-8.
    #[error("upstream_token_env: the environment variable {0} is not set or not UTF-8")]
    NoVariable(String),
    /// The file could not be read.
    #[error("{}: cannot read the token: {reason}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The token is empty or not a usable header value.
    #[error(
        "{what}: the token is empty or holds characters an HTTP header cannot carry \
         (control characters, non-ASCII)"
    )]
    BadToken {
        /// Where it came from.
        what: String,
    },
    /// An origin that is not an http(s) URL.
    #[error("upstream_token_origins: {0:?} is not an http:// or https:// URL")]
    BadOrigin(String),
    /// A line of the client tokens file that is not `sha256:HEX NAME`.
    #[error(
        "{}:{line}: not a token line: want `sha256:<64 hex digits> NAME` (`tuf-verifier \
         client-token new` writes them)",
        path.display()
    )]
    BadTokenLine {
        /// The file.
        path: PathBuf,
        /// The line number.
        line: usize,
    },
    /// A client tokens file with no token.
    #[error("{}: lists no token, so no client could authenticate", path.display())]
    NoClientTokens {
        /// The file.
        path: PathBuf,
    },
}

/// An origin: scheme, host and port, as RFC 6454 compares them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin(reqwest::Url);

impl Origin {
    fn of(url: &str) -> Option<Self> {
        let parsed = reqwest::Url::parse(url).ok()?;
        match parsed.scheme() {
            "http" | "https" if parsed.host().is_some() => Some(Self(parsed)),
            _ => None,
        }
    }

    fn same(&self, other: &Self) -> bool {
        self.0.origin() == other.0.origin()
    }
}

/// The proxy's token for upstream, and the origins it may go to.
pub struct UpstreamCredential {
    header: HeaderValue,
    origins: Vec<Origin>,
    /// Where it came from, for messages: `upstream_token_file /path` or
    /// `upstream_token_env NAME`.
    source: String,
}

impl std::fmt::Debug for UpstreamCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamCredential")
            .field("source", &self.source)
            .field("origins", &self.origins.len())
            .finish_non_exhaustive()
    }
}

impl UpstreamCredential {
    /// Reads the token from `file` (its first line) or the variable `env`, for
    /// `upstream_index` and `extra_origins`. `Ok(None)` when neither is given.
    pub fn load(
        file: Option<&Path>,
        env: Option<&str>,
        upstream_index: &str,
        extra_origins: &[String],
    ) -> Result<Option<Self>, CredentialError> {
        let (token, source) = match (file, env) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => return Err(CredentialError::BothSources),
            (Some(path), None) => (
                read_first_line(path, MAX_TOKEN_FILE)?,
                format!("upstream_token_file {}", path.display()),
            ),
            (None, Some(name)) => (
                Zeroizing::new(
                    std::env::var(name)
                        .map_err(|_| CredentialError::NoVariable(name.to_owned()))?
                        .trim()
                        .to_owned(),
                ),
                format!("upstream_token_env {name}"),
            ),
        };
        // Visible ASCII and spaces only (HeaderValue alone would take any byte above
        // 0x7f too).
        let printable = token.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
        let mut header = match HeaderValue::from_str(&token) {
            Ok(header) if !token.is_empty() && printable => header,
            _ => return Err(CredentialError::BadToken { what: source }),
        };
        header.set_sensitive(true);
        let mut origins = vec![Origin::of(upstream_index)
            .ok_or_else(|| CredentialError::BadOrigin(upstream_index.to_owned()))?];
        for origin in extra_origins {
            origins.push(
                Origin::of(origin).ok_or_else(|| CredentialError::BadOrigin(origin.clone()))?,
            );
        }
        Ok(Some(Self {
            header,
            origins,
            source,
        }))
    }

    /// The `Authorization` value for a request to `url`: only when its origin is one
    /// the token may go to.
    pub fn header_for(&self, url: &str) -> Option<HeaderValue> {
        let origin = Origin::of(url)?;
        self.origins
            .iter()
            .any(|allowed| allowed.same(&origin))
            .then(|| self.header.clone())
    }

    /// Where the token came from (`upstream_token_file /path`), for messages.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Whether the next redirect may be followed, the request having gone through `previous`
/// (the first URL asked for first). The hop that leaves the first URL's origin may be
/// followed (reqwest drops the token on it); once a chain has left, it stops: reqwest drops `Authorization` on the hop that leaves, but rebuilds
/// each later hop from the first request's headers and compares only with the hop
/// before, so a second hop inside the other origin would carry the token there
/// (A → B → B/x).
pub fn may_follow_redirect(previous: &[reqwest::Url]) -> bool {
    let Some(first) = previous.first() else {
        return true;
    };
    previous.len() < 10 && previous.iter().all(|u| u.origin() == first.origin())
}

/// Reads the first line of a file of at most `max` bytes, trimmed, into zeroizing
/// memory.
fn read_first_line(path: &Path, max: u64) -> Result<Zeroizing<String>, CredentialError> {
    let unreadable = |reason: String| CredentialError::Unreadable {
        path: path.to_owned(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let bytes = Zeroizing::new(
        tuf_core::fs::read_bounded(file, max).map_err(|e| unreadable(e.to_string()))?,
    );
    let text = std::str::from_utf8(&bytes).map_err(|_| unreadable("not UTF-8".to_owned()))?;
    Ok(Zeroizing::new(
        text.lines().next().unwrap_or("").trim().to_owned(),
    ))
}

/// The client tokens the proxy accepts, by their SHA-256, with each one's name.
#[derive(Clone)]
pub struct ClientTokens {
    names: HashMap<[u8; 32], String>,
}

impl std::fmt::Debug for ClientTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTokens")
            .field("count", &self.names.len())
            .finish()
    }
}

/// The SHA-256 of a token.
fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The tokens file line of a token: `sha256:HEX NAME`.
pub fn token_line(token: &str, name: &str) -> String {
    format!("sha256:{} {name}", hex::encode(digest(token)))
}

/// A new client token: the prefix and 32 bytes of the operating system's random source,
/// hex-encoded.
pub fn new_client_token() -> Result<Zeroizing<String>, std::io::Error> {
    use rand_core::RngCore;
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand_core::OsRng
        .try_fill_bytes(bytes.as_mut_slice())
        .map_err(std::io::Error::other)?;
    Ok(Zeroizing::new(format!(
        "{CLIENT_TOKEN_PREFIX}{}",
        hex::encode(bytes.as_slice())
    )))
}

impl ClientTokens {
    /// Reads a tokens file: `sha256:HEX NAME` lines, `#` comments and blank lines.
    pub fn load(path: &Path) -> Result<Self, CredentialError> {
        let unreadable = |reason: String| CredentialError::Unreadable {
            path: path.to_owned(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
        let bytes = tuf_core::fs::read_bounded(file, MAX_TOKENS_FILE)
            .map_err(|e| unreadable(e.to_string()))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| unreadable("not UTF-8".to_owned()))?;
        let tokens = Self::parse(text).map_err(|line| CredentialError::BadTokenLine {
            path: path.to_owned(),
            line,
        })?;
        if tokens.names.is_empty() {
            return Err(CredentialError::NoClientTokens {
                path: path.to_owned(),
            });
        }
        Ok(tokens)
    }

    /// Parses the lines of a tokens file; the error is the number of the first bad line.
    pub fn parse(text: &str) -> Result<Self, usize> {
        let mut names = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (hash, name) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let digest: [u8; 32] = hash
                .strip_prefix("sha256:")
                .and_then(|hex_digits| hex::decode(hex_digits).ok())
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or(number + 1)?;
            names.insert(digest, name.trim().to_owned());
        }
        Ok(Self { names })
    }

    /// How many tokens are accepted (a loaded file has at least one).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// The name of the client a request's `Authorization` value belongs to: cargo sends
    /// the token as it is; `Bearer TOKEN` is accepted too.
    pub fn check(&self, authorization: &str) -> Option<&str> {
        let token = authorization
            .strip_prefix("Bearer ")
            .unwrap_or(authorization)
            .trim();
        self.names.get(&digest(token)).map(String::as_str)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn credential(extra: &[&str]) -> UpstreamCredential {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "Bearer s3cret\nignored\n").unwrap();
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        UpstreamCredential::load(Some(&path), None, "https://reg.example/index/", &extra)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn the_token_goes_only_to_its_origins() {
        let credential = credential(&["https://dl.example:8443"]);
        let header = credential
            .header_for("https://reg.example/index/se/rd/serde")
            .unwrap();
        assert_eq!(header.to_str().unwrap(), "Bearer s3cret");
        assert!(header.is_sensitive());
        assert!(credential
            .header_for("https://dl.example:8443/x/1.0.0/download")
            .is_some());
        for other in [
            "http://reg.example/index/",
            "https://reg.example:444/index/",
            "https://evil.example/index/",
            "https://reg.example.evil.example/",
            "https://dl.example/x",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(credential.header_for(other).is_none(), "{other}");
        }
        let shown = format!("{credential:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn a_redirect_chain_stops_once_it_left_the_origin() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        let a = url("https://reg.example/dl/x");
        let a2 = url("https://reg.example/dl/y");
        let b = url("https://bucket.example/x");
        // The first hop goes anywhere (leaving the origin drops the token), and so does
        // any hop of a chain still on the first origin.
        assert!(may_follow_redirect(std::slice::from_ref(&a)));
        assert!(may_follow_redirect(&[a.clone(), a2.clone()]));
        // Once the chain has left, no further hop: reqwest would send the token again.
        assert!(!may_follow_redirect(&[a.clone(), b.clone()]));
        assert!(!may_follow_redirect(&[a.clone(), a2, b]));
        let many: Vec<reqwest::Url> = std::iter::repeat_n(a.clone(), 10).collect();
        assert!(!may_follow_redirect(&many));
    }

    #[test]
    fn bad_credentials_are_refused() {
        assert!(matches!(
            UpstreamCredential::load(None, Some("TUF_TEST_NO_SUCH_VARIABLE"), "https://a/", &[]),
            Err(CredentialError::NoVariable(_))
        ));
        assert!(UpstreamCredential::load(None, None, "https://a/", &[])
            .unwrap()
            .is_none());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        for bad in ["", "\n", "tok\u{7}en", "tökén"] {
            std::fs::write(&path, bad).unwrap();
            assert!(matches!(
                UpstreamCredential::load(Some(&path), None, "https://a/", &[]),
                Err(CredentialError::BadToken { .. })
            ));
        }
        std::fs::write(&path, "ok").unwrap();
        assert!(matches!(
            UpstreamCredential::load(Some(&path), Some("X"), "https://a/", &[]),
            Err(CredentialError::BothSources)
        ));
        assert!(matches!(
            UpstreamCredential::load(Some(&path), None, "https://a/", &["ftp://b".to_owned()]),
            Err(CredentialError::BadOrigin(_))
        ));
    }

    #[test]
    fn client_tokens_are_checked_by_their_digest() {
        let alice = new_client_token().unwrap();
        let bob = new_client_token().unwrap();
        assert!(alice.starts_with(CLIENT_TOKEN_PREFIX));
        assert_eq!(alice.len(), CLIENT_TOKEN_PREFIX.len() + 64);
        assert_ne!(*alice, *bob);
        let file = format!(
            "# who may use the proxy\n{}\n\n{}\n",
            token_line(&alice, "alice"),
            token_line(&bob, "ci")
        );
        assert!(!file.contains(alice.as_str()));
        let tokens = ClientTokens::parse(&file).unwrap();
        assert_eq!(tokens.check(&alice), Some("alice"));
        assert_eq!(tokens.check(&format!("Bearer {}", *bob)), Some("ci"));
        assert_eq!(tokens.check("tvp_guess"), None);
        assert_eq!(tokens.check(""), None);
        assert!(matches!(ClientTokens::parse("sha256:abcd alice\n"), Err(1)));
        assert!(matches!(ClientTokens::parse("# c\nalice\n"), Err(2)));
    }
}
