//! What a Rust source file can do, read with a real parser (`syn`): the paths it names,
//! the macros it calls, its `unsafe` code, its literals and its foreign blocks. Comments
//! and the text inside string literals never count as code.

use std::collections::BTreeMap;

use proc_macro2::Span;
use syn::visit::Visit;

/// A capability a source file uses, as the scanner flags it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Capability {
    /// Spawns processes (`std::process::Command`, `process::Command`).
    ProcessSpawn,
    /// Opens network connections (`std::net`, sockets, HTTP client crates).
    Network,
    /// Reads an environment variable whose name looks like a secret (`TOKEN`, `SECRET`,
    /// `PASSWORD`, `AWS_`, …).
    SecretEnvRead,
    /// Reads any environment variable (reported in build scripts only).
    EnvRead,
    /// Writes or creates files (`std::fs::write`, `File::create`, `OpenOptions`).
    FileWrite,
    /// Names the user's home or a credentials directory (`home_dir`, `HOME`, `.ssh`,
    /// `.aws`, `.cargo/credentials`).
    HomeDirectory,
    /// Names `OUT_DIR` (what a build script may write into).
    OutDir,
    /// `unsafe` blocks, functions, impls and traits.
    Unsafe,
    /// `include_bytes!` (data compiled in).
    IncludeBytes,
    /// A long base64 or hex literal: data or code hidden from review.
    EncodedLiteral,
    /// An `extern` block or a `#[link]` attribute: native code linked in.
    ForeignCode,
}

impl Capability {
    /// In words, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ProcessSpawn => "spawns processes",
            Self::Network => "opens network connections",
            Self::SecretEnvRead => "reads a secret-looking environment variable",
            Self::EnvRead => "reads environment variables",
            Self::FileWrite => "writes files",
            Self::HomeDirectory => "names the home directory or credentials",
            Self::OutDir => "names OUT_DIR",
            Self::Unsafe => "unsafe code",
            Self::IncludeBytes => "include_bytes!",
            Self::EncodedLiteral => "a long base64 or hex literal",
            Self::ForeignCode => "an extern block or #[link]",
        }
    }
}

/// Where a file uses each capability: 1-based line numbers, in order.
pub type Uses = BTreeMap<Capability, Vec<usize>>;

/// Literals this long (in characters) of only base64 or hex characters are flagged.
pub const ENCODED_LITERAL_MIN: usize = 200;

/// Crates whose paths mean network access.
const NETWORK_CRATES: [&str; 10] = [
    "reqwest",
    "ureq",
    "hyper",
    "curl",
    "isahc",
    "attohttpc",
    "surf",
    "minreq",
    "socket2",
    "tokio_tungstenite",
];

/// Environment variable names that look like secrets (compared in upper case).
const SECRET_NAMES: [&str; 12] = [
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "API_KEY",
    "PRIVATE",
    "CREDENTIAL",
    "AWS_",
    "GITHUB_",
    "CARGO_REGISTRY_TOKEN",
    "SSH",
    "NPM_",
];

/// Path fragments naming the home directory or credentials.
const HOME_MARKERS: [&str; 8] = [
    "/.ssh",
    ".ssh/",
    "/.aws",
    ".aws/",
    ".cargo/credentials",
    ".gnupg",
    ".netrc",
    ".docker/config",
];

/// Why a file could not be read as Rust.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line of the error.
    pub line: usize,
    /// The parser's message.
    pub message: String,
}

/// The capabilities `source` uses, with their lines.
pub fn analyse(source: &str) -> Result<Uses, ParseError> {
    let file = syn::parse_file(source).map_err(|e| ParseError {
        line: e.span().start().line,
        message: e.to_string(),
    })?;
    let mut visitor = Visitor::default();
    visitor.visit_file(&file);
    Ok(visitor.uses)
}

#[derive(Default)]
struct Visitor {
    uses: Uses,
}

impl Visitor {
    fn note(&mut self, capability: Capability, span: Span) {
        let lines = self.uses.entry(capability).or_default();
        let line = span.start().line;
        if lines.last() != Some(&line) {
            lines.push(line);
        }
    }

    /// A path (`std::process::Command::new`, `Command`, `TcpStream`) by its segments.
    fn path(&mut self, segments: &[String], span: Span) {
        let joined = segments.join("::");
        let has = |s: &str| segments.iter().any(|seg| seg == s);
        if (has("process") && (has("Command") || has("std"))) || joined.ends_with("Command::new") {
            self.note(Capability::ProcessSpawn, span);
        }
        if (has("net") && has("std"))
            || has("TcpStream")
            || has("UdpSocket")
            || has("TcpListener")
            || segments
                .first()
                .is_some_and(|first| NETWORK_CRATES.contains(&first.as_str()))
        {
            self.note(Capability::Network, span);
        }
        if has("home_dir") || has("dirs") || has("home") {
            self.note(Capability::HomeDirectory, span);
        }
        let fs_write = [
            "write",
            "create",
            "create_dir_all",
            "OpenOptions",
            "copy",
            "rename",
        ];
        if (has("fs") || has("File") || has("OpenOptions"))
            && segments
                .last()
                .is_some_and(|last| fs_write.contains(&last.as_str()))
            || joined.ends_with("OpenOptions::new")
        {
            self.note(Capability::FileWrite, span);
        }
    }

    /// A call of `env::var`-like functions or macros with a literal name.
    fn env_read(&mut self, name: Option<&str>, span: Span) {
        self.note(Capability::EnvRead, span);
        if let Some(name) = name {
            let upper = name.to_ascii_uppercase();
            if SECRET_NAMES.iter().any(|s| upper.contains(s)) {
                self.note(Capability::SecretEnvRead, span);
            }
            if upper == "HOME" || upper == "USERPROFILE" {
                self.note(Capability::HomeDirectory, span);
            }
            if upper == "OUT_DIR" {
                self.note(Capability::OutDir, span);
            }
        }
    }

    fn string_literal(&mut self, value: &str, span: Span) {
        if HOME_MARKERS.iter().any(|m| value.contains(m)) || value.starts_with("~/") {
            self.note(Capability::HomeDirectory, span);
        }
        if value.contains("OUT_DIR") {
            self.note(Capability::OutDir, span);
        }
        if is_encoded(value) {
            self.note(Capability::EncodedLiteral, span);
        }
    }
}

/// Whether `value` is a long run of base64 or hex characters.
fn is_encoded(value: &str) -> bool {
    let trimmed = value.trim();
    trimmed.len() >= ENCODED_LITERAL_MIN
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

fn segments_of(path: &syn::Path) -> Vec<String> {
    path.segments.iter().map(|s| s.ident.to_string()).collect()
}

/// The first argument of a call or macro when it is a string literal.
fn literal_argument(tokens: &proc_macro2::TokenStream) -> Option<String> {
    let first = tokens.clone().into_iter().next()?;
    match syn::parse2::<syn::LitStr>(first.into()) {
        Ok(literal) => Some(literal.value()),
        Err(_) => None,
    }
}

impl<'ast> Visit<'ast> for Visitor {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments = segments_of(path);
        let span = path
            .segments
            .first()
            .map_or_else(Span::call_site, |s| s.ident.span());
        self.path(&segments, span);
        syn::visit::visit_path(self, path);
    }

    fn visit_use_tree(&mut self, tree: &'ast syn::UseTree) {
        // `use std::process::Command;`: the whole path, as written.
        fn walk(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<(Vec<String>, Span)>) {
            match tree {
                syn::UseTree::Path(p) => {
                    prefix.push(p.ident.to_string());
                    walk(&p.tree, prefix, out);
                    prefix.pop();
                }
                syn::UseTree::Name(n) => {
                    let mut path = prefix.clone();
                    path.push(n.ident.to_string());
                    out.push((path, n.ident.span()));
                }
                syn::UseTree::Rename(r) => {
                    let mut path = prefix.clone();
                    path.push(r.ident.to_string());
                    out.push((path, r.ident.span()));
                }
                syn::UseTree::Glob(g) => out.push((prefix.clone(), g.star_token.span)),
                syn::UseTree::Group(g) => {
                    for item in &g.items {
                        walk(item, prefix, out);
                    }
                }
            }
        }
        let mut paths = Vec::new();
        walk(tree, &mut Vec::new(), &mut paths);
        for (path, span) in paths {
            self.path(&path, span);
        }
    }

    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        if let syn::Expr::Path(function) = &*call.func {
            let segments = segments_of(&function.path);
            let is_env_read = segments.last().is_some_and(|l| l == "var" || l == "var_os")
                && (segments.len() == 1 || segments.iter().any(|s| s == "env"));
            if is_env_read {
                let name = call.args.first().and_then(|arg| match arg {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) => Some(s.value()),
                    _ => None,
                });
                let span = function
                    .path
                    .segments
                    .first()
                    .map_or_else(Span::call_site, |s| s.ident.span());
                self.env_read(name.as_deref(), span);
            }
        }
        syn::visit::visit_expr_call(self, call);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let name = mac.path.segments.last().map(|s| s.ident.to_string());
        let span = mac
            .path
            .segments
            .first()
            .map_or_else(Span::call_site, |s| s.ident.span());
        match name.as_deref() {
            Some("env" | "option_env") => {
                self.env_read(literal_argument(&mac.tokens).as_deref(), span)
            }
            Some("include_bytes") => self.note(Capability::IncludeBytes, span),
            _ => {}
        }
        // Literals inside macro calls (`println!("{}", "…")`, `concat!`) are still
        // literals of the source: look at every string token.
        for token in mac.tokens.clone() {
            if let proc_macro2::TokenTree::Literal(literal) = &token {
                if let Ok(s) = syn::parse2::<syn::LitStr>(token.clone().into()) {
                    self.string_literal(&s.value(), literal.span());
                }
            }
        }
        syn::visit::visit_macro(self, mac);
    }

    fn visit_lit_str(&mut self, literal: &'ast syn::LitStr) {
        self.string_literal(&literal.value(), literal.span());
    }

    fn visit_lit_byte_str(&mut self, literal: &'ast syn::LitByteStr) {
        if let Ok(value) = std::str::from_utf8(&literal.value()) {
            self.string_literal(value, literal.span());
        }
    }

    fn visit_expr_unsafe(&mut self, block: &'ast syn::ExprUnsafe) {
        self.note(Capability::Unsafe, block.unsafe_token.span);
        syn::visit::visit_expr_unsafe(self, block);
    }

    fn visit_signature(&mut self, signature: &'ast syn::Signature) {
        if let Some(token) = &signature.unsafety {
            self.note(Capability::Unsafe, token.span);
        }
        syn::visit::visit_signature(self, signature);
    }

    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        if let Some(token) = &item.unsafety {
            self.note(Capability::Unsafe, token.span);
        }
        syn::visit::visit_item_impl(self, item);
    }

    fn visit_item_trait(&mut self, item: &'ast syn::ItemTrait) {
        if let Some(token) = &item.unsafety {
            self.note(Capability::Unsafe, token.span);
        }
        syn::visit::visit_item_trait(self, item);
    }

    fn visit_item_foreign_mod(&mut self, item: &'ast syn::ItemForeignMod) {
        self.note(Capability::ForeignCode, item.abi.extern_token.span);
        syn::visit::visit_item_foreign_mod(self, item);
    }

    fn visit_attribute(&mut self, attribute: &'ast syn::Attribute) {
        if attribute.path().is_ident("link") {
            let span = attribute.pound_token.span;
            self.note(Capability::ForeignCode, span);
        }
        syn::visit::visit_attribute(self, attribute);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lines(source: &str, capability: Capability) -> Vec<usize> {
        analyse(source)
            .unwrap()
            .get(&capability)
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn comments_and_strings_are_not_code() {
        let source = "// std::process::Command::new(\"sh\")\n\
                      /// TcpStream::connect\n\
                      fn f() -> &'static str { \"std::process::Command and unsafe { }\" }\n";
        let uses = analyse(source).unwrap();
        assert!(uses.is_empty(), "{uses:?}");
    }

    #[test]
    fn calls_uses_and_macros_are_found_with_their_lines() {
        let source = "use std::process::Command;\n\
                      use std::{net::TcpStream, env};\n\
                      fn f() {\n\
                      \x20   let _ = Command::new(\"curl\").status();\n\
                      \x20   let _ = TcpStream::connect(\"1.2.3.4:80\");\n\
                      \x20   let _ = env::var(\"GITHUB_TOKEN\");\n\
                      \x20   let _ = std::env::var(\"OUT_DIR\");\n\
                      \x20   let _ = std::fs::read(\"/home/u/.ssh/id_rsa\");\n\
                      \x20   let _ = unsafe { 1 };\n\
                      \x20   let _ = include_bytes!(\"blob.bin\");\n\
                      \x20   let _ = option_env!(\"AWS_SECRET_ACCESS_KEY\");\n\
                      }\n\
                      extern \"C\" { fn g(); }\n\
                      #[link(name = \"x\")] extern {}\n";
        assert_eq!(lines(source, Capability::ProcessSpawn), [1, 4]);
        assert_eq!(lines(source, Capability::Network), [2, 5]);
        assert_eq!(lines(source, Capability::SecretEnvRead), [6, 11]);
        assert_eq!(lines(source, Capability::OutDir), [7]);
        assert_eq!(lines(source, Capability::HomeDirectory), [8]);
        assert_eq!(lines(source, Capability::Unsafe), [9]);
        assert_eq!(lines(source, Capability::IncludeBytes), [10]);
        assert_eq!(lines(source, Capability::ForeignCode), [13, 14]);
        assert!(lines(source, Capability::FileWrite).is_empty());
    }

    #[test]
    fn encoded_literals_are_long_runs_of_base64_or_hex() {
        let long = "QUJD".repeat(60);
        let source = format!("const A: &str = \"{long}\";\nconst B: &str = \"short\";\n");
        assert_eq!(lines(&source, Capability::EncodedLiteral), [1]);
        let prose = "word ".repeat(60);
        let source = format!("const A: &str = \"{prose}\";\n");
        assert!(lines(&source, Capability::EncodedLiteral).is_empty());
    }

    #[test]
    fn file_writes_are_found() {
        let source = "fn f() { std::fs::write(\"x\", b\"y\").unwrap(); \
                      let _ = std::fs::OpenOptions::new(); let _ = File::create(\"z\"); }\n";
        assert_eq!(lines(source, Capability::FileWrite), [1]);
    }

    #[test]
    fn a_file_that_is_not_rust_is_an_error_with_its_line() {
        let error = analyse("fn f() {\n  let = ;\n}\n").unwrap_err();
        assert_eq!(error.line, 2);
    }
}
