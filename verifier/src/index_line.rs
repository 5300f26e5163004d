//! Cargo's sparse index lines as the proxy reads them, and the rule that keeps cargo on
//! the proxy: every dependency of a line passed on must resolve through the proxy.
//!
//! An index line's dependency may carry a `registry` field, the index URL of another
//! registry. Cargo then resolves, downloads and builds that dependency from there,
//! straight, not through the proxy: source replacement replaces the crates-io source,
//! and the dependency names another one. Such a line needs no TUF key to forge, only the
//! upstream index. So a line is passed on only when none of its dependencies names a
//! registry, unless that registry is in the operator's explicit allowlist
//! ([`RegistryAllowlist`], empty by default).
//!
//! A dependency's `package` field (a rename) is a crate name that cargo looks up in the
//! *same* source as the dependency, so it cannot leave the proxy's host. Cargo does not
//! check that it is a crate name, though: `"package": "../../../x"` makes it request
//! `/x` from the proxy. Lines whose dependency names are not crate names are dropped too.
//!
//! Lines are parsed with serde's derive, as cargo parses them: a repeated field (two
//! `registry` keys, two `deps` arrays) makes the line unreadable to cargo and to the
//! proxy alike, so the two can never read different dependencies from the same bytes.

use std::borrow::Cow;

use serde::Deserialize;
use url::Url;

/// The fields of an index line that the proxy checks. Other fields are passed on as they
/// are, with the line.
#[derive(Debug, Deserialize)]
pub struct IndexLine<'a> {
    /// The crate name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// The version.
    #[serde(borrow)]
    pub vers: Cow<'a, str>,
    /// The sha256 of the tarball, hex.
    #[serde(borrow)]
    pub cksum: Cow<'a, str>,
    /// Every dependency, of every kind. Required, as cargo requires it.
    #[serde(borrow)]
    pub deps: Vec<IndexDependency<'a>>,
}

/// The fields of a dependency that say where cargo resolves it from.
#[derive(Debug, Deserialize)]
pub struct IndexDependency<'a> {
    /// The name the depending crate uses (the crate itself unless renamed).
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// The index URL of the registry the dependency comes from; none for the same one.
    #[serde(borrow, default)]
    pub registry: Option<Cow<'a, str>>,
    /// The crate's real name when the dependency is renamed.
    #[serde(borrow, default)]
    pub package: Option<Cow<'a, str>>,
}

impl<'a> IndexLine<'a> {
    /// Parses one line; `None` if cargo could not read it as a version entry either.
    pub fn parse(line: &'a [u8]) -> Option<Self> {
        serde_json::from_slice(line).ok()
    }

    /// Why cargo would leave the proxy for a dependency of this line, if it would: the
    /// first dependency that names a registry not in `allowed`, or whose names are not
    /// crate names.
    pub fn escape(&self, allowed: &RegistryAllowlist) -> Option<Escape> {
        first_escape(
            self.deps.iter().map(|dep| {
                (
                    dep.name.as_ref(),
                    dep.package.as_deref(),
                    dep.registry.as_deref(),
                )
            }),
            allowed,
        )
    }
}

/// The same rule for a signed entry's dependencies.
pub fn entry_escape(
    entry: &tuf_core::index_entry::IndexEntry,
    allowed: &RegistryAllowlist,
) -> Option<Escape> {
    first_escape(
        entry.deps.iter().map(|dep| {
            (
                dep.name.as_str(),
                dep.package.as_deref(),
                dep.registry.as_deref(),
            )
        }),
        allowed,
    )
}

/// The first dependency, given as (name, package, registry), that cargo would not
/// resolve through the proxy.
fn first_escape<'a>(
    deps: impl IntoIterator<Item = (&'a str, Option<&'a str>, Option<&'a str>)>,
    allowed: &RegistryAllowlist,
) -> Option<Escape> {
    deps.into_iter().find_map(|(name, package, registry)| {
        let package = package.unwrap_or(name);
        if !is_crate_name(name) || !is_crate_name(package) {
            return Some(Escape::NotACrateName {
                dependency: name.to_owned(),
                package: package.to_owned(),
            });
        }
        match registry {
            Some(registry) if !allowed.allows(registry) => Some(Escape::ForeignRegistry {
                dependency: name.to_owned(),
                registry: registry.to_owned(),
            }),
            _ => None,
        }
    })
}

/// A dependency that cargo would not resolve through the proxy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Escape {
    /// The dependency names another registry, not in the allowlist.
    #[error("its dependency {dependency} comes from another registry, {registry}")]
    ForeignRegistry {
        /// The dependency's name in the line.
        dependency: String,
        /// The `registry` field, as upstream sent it.
        registry: String,
    },
    /// The dependency's name or `package` is not a crate name.
    #[error("its dependency {dependency:?} (package {package:?}) is not a crate name")]
    NotACrateName {
        /// The dependency's `name` field.
        dependency: String,
        /// Its `package` field, or its name when not renamed.
        package: String,
    },
}

/// True for what a registry can call a crate: 1 to 64 ASCII letters, digits, `-`, `_`.
fn is_crate_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A registry index URL as cargo tells registries apart: sparse (`sparse+` prefix) or
/// git, and the URL as the `url` crate (cargo's) normalises it: scheme and host
/// lowercased, a default port dropped. Nothing else is folded: a sparse URL without its
/// trailing `/` is one cargo refuses, and it does not match an entry with one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryUrl {
    sparse: bool,
    url: String,
}

/// An allowlist entry that is not a registry index URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a registry index URL (like sparse+https://index.example/ or https://github.com/rust-lang/crates.io-index)")]
pub struct InvalidRegistryUrl(pub String);

impl RegistryUrl {
    /// Parses `text` as cargo does a dependency's `registry` field: `sparse+` then a URL
    /// for a sparse index, a URL for a git index.
    pub fn parse(text: &str) -> Result<Self, InvalidRegistryUrl> {
        let (sparse, rest) = match text.strip_prefix("sparse+") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let url = Url::parse(rest).map_err(|_| InvalidRegistryUrl(text.to_owned()))?;
        if url.cannot_be_a_base() || url.host_str().is_none() {
            return Err(InvalidRegistryUrl(text.to_owned()));
        }
        Ok(Self {
            sparse,
            url: url.into(),
        })
    }
}

impl std::fmt::Display for RegistryUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.sparse {
            f.write_str("sparse+")?;
        }
        f.write_str(&self.url)
    }
}

/// The registries, other than the proxy's own, that a dependency in a line passed on may
/// come from. Empty by default: any dependency that names a registry drops its line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryAllowlist(Vec<RegistryUrl>);

impl RegistryAllowlist {
    /// The allowlist of these index URLs.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, InvalidRegistryUrl> {
        entries
            .iter()
            .map(|entry| RegistryUrl::parse(entry.as_ref()))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// True when a dependency's `registry` field names a registry on the list. A field
    /// that is not a URL is never allowed.
    pub fn allows(&self, registry: &str) -> bool {
        RegistryUrl::parse(registry).is_ok_and(|url| self.0.contains(&url))
    }

    /// The entries, as configured.
    pub fn entries(&self) -> &[RegistryUrl] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn line_with_deps(deps: &str) -> String {
        format!(
            r#"{{"name":"base","vers":"1.0.0","deps":[{deps}],"cksum":"ab","features":{{}},"yanked":false}}"#
        )
    }

    fn escape_of(line: &str, allowed: &[&str]) -> Option<Escape> {
        let allowed = RegistryAllowlist::parse(allowed).unwrap();
        IndexLine::parse(line.as_bytes())
            .expect("a version entry")
            .escape(&allowed)
    }

    #[test]
    fn a_dependency_from_the_same_registry_stays() {
        let line = line_with_deps(
            r#"{"name":"plain","req":"^1","registry":null},{"name":"alias","package":"real-crate","req":"^1"}"#,
        );
        assert_eq!(escape_of(&line, &[]), None);
    }

    #[test]
    fn every_spelling_of_another_registry_escapes_unless_allowed() {
        for registry in [
            "sparse+http://127.0.0.1:9/index/",
            "sparse+http://127.0.0.1:9/index",
            "http://127.0.0.1:9/index/",
            "https://github.com/rust-lang/crates.io-index",
            "sparse+https://index.crates.io/",
            "",
            "not a url",
            "registry+https://example.com/index",
        ] {
            let line = line_with_deps(&format!(
                r#"{{"name":"evil","req":"^0.1","kind":"build","registry":{}}}"#,
                serde_json::to_string(registry).unwrap()
            ));
            assert_eq!(
                escape_of(&line, &[]),
                Some(Escape::ForeignRegistry {
                    dependency: "evil".into(),
                    registry: registry.into()
                }),
                "{registry}"
            );
        }
    }

    #[test]
    fn an_allowed_registry_matches_in_cargos_sense_only() {
        let allowed = ["sparse+https://Index.Example.com/index/"];
        for same in [
            "sparse+https://index.example.com/index/",
            "sparse+HTTPS://index.example.COM/index/",
            "sparse+https://index.example.com:443/index/",
        ] {
            let line = line_with_deps(&format!(r#"{{"name":"x","req":"1","registry":"{same}"}}"#));
            assert_eq!(escape_of(&line, &allowed), None, "{same}");
        }
        for other in [
            // A git index at the same URL is another source to cargo.
            "https://index.example.com/index/",
            "sparse+http://index.example.com/index/",
            "sparse+https://index.example.com/index",
            "sparse+https://index.example.com/index/more/",
            "sparse+https://index.example.com.evil/index/",
            "sparse+https://index.example.com@evil.example/index/",
        ] {
            let line = line_with_deps(&format!(r#"{{"name":"x","req":"1","registry":"{other}"}}"#));
            assert!(escape_of(&line, &allowed).is_some(), "{other}");
        }
    }

    #[test]
    fn an_escaped_key_is_the_same_key() {
        // JSON escapes in a key spell the same key for cargo and for the proxy.
        let line =
            line_with_deps(r#"{"name":"evil","req":"1","regi\u0073try":"sparse+http://e/i/"}"#);
        assert!(matches!(
            escape_of(&line, &[]),
            Some(Escape::ForeignRegistry { .. })
        ));
    }

    #[test]
    fn repeated_fields_make_the_line_unreadable() {
        let twice = line_with_deps(
            r#"{"name":"evil","req":"1","registry":null,"registry":"sparse+http://e/i/"}"#,
        );
        assert!(IndexLine::parse(twice.as_bytes()).is_none());
        let deps_twice = r#"{"name":"base","vers":"1.0.0","deps":[],"cksum":"ab","deps":[{"name":"evil","req":"1","registry":"sparse+http://e/i/"}]}"#;
        assert!(IndexLine::parse(deps_twice.as_bytes()).is_none());
        // cargo requires `deps`.
        let no_deps = r#"{"name":"base","vers":"1.0.0","cksum":"ab"}"#;
        assert!(IndexLine::parse(no_deps.as_bytes()).is_none());
    }

    #[test]
    fn dependency_names_must_be_crate_names() {
        for (name, package) in [
            ("helper", "../../../x/evil"),
            ("helper", "http://127.0.0.1:9/index/evil"),
            ("helper", ""),
            ("../x", "real"),
        ] {
            let line = line_with_deps(&format!(
                r#"{{"name":{},"package":{},"req":"1"}}"#,
                serde_json::to_string(name).unwrap(),
                serde_json::to_string(package).unwrap()
            ));
            assert_eq!(
                escape_of(&line, &[]),
                Some(Escape::NotACrateName {
                    dependency: name.into(),
                    package: package.into()
                }),
                "{name} {package}"
            );
        }
    }

    #[test]
    fn allowlist_entries_must_be_urls() {
        assert!(RegistryAllowlist::parse(&["crates-io"]).is_err());
        assert!(RegistryAllowlist::parse(&["sparse+"]).is_err());
        assert!(RegistryAllowlist::parse(&["mailto:x@example.com"]).is_err());
        // A URL with no host names a place on whichever machine cargo runs on.
        assert!(RegistryAllowlist::parse(&["file:///srv/index"]).is_err());
        assert!(RegistryAllowlist::parse(&["sparse+file:///srv/index/"]).is_err());
        let list = RegistryAllowlist::parse(&["sparse+https://a.example/index/"]).unwrap();
        assert_eq!(
            list.entries()[0].to_string(),
            "sparse+https://a.example/index/"
        );
    }
}
