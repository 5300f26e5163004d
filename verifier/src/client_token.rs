//! `tuf-verifier client-token new`: a token for a client of a proxy that requires
//! authentication (`client_tokens_file`). The token is printed once, on stdout; the
//! tokens file gets only its SHA-256 and the name, written atomically.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use zeroize::Zeroizing;

use crate::upstream_auth::{new_client_token, token_line, ClientTokens, MAX_TOKENS_FILE};

/// `client-token` options.
#[derive(Debug, Args)]
pub struct ClientTokenArgs {
    #[command(subcommand)]
    command: ClientTokenCommand,
    /// Print one JSON object on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
enum ClientTokenCommand {
    /// Make a new token for a client: its SHA-256 is added to the tokens file (created
    /// if missing) under NAME, and the token is printed once. The proxy reads the file
    /// when it starts.
    New {
        /// The tokens file (`client_tokens_file` of the proxy).
        #[arg(long, value_name = "FILE")]
        tokens_file: PathBuf,
        /// Who the token is for (a person, a CI runner): shown in the file and in the
        /// proxy's debug log, never the token.
        #[arg(long)]
        name: String,
    },
}

/// Whether `name` may name a client: 1 to 64 letters, digits, `-`, `_`, `.` or `@`.
fn is_client_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
}

/// Adds a new token for `name` to `tokens_file` (created if missing; a file that does
/// not parse is left alone) and returns the token.
fn add_token(tokens_file: &Path, name: &str) -> anyhow::Result<Zeroizing<String>> {
    if !is_client_name(name) {
        anyhow::bail!("--name {name:?}: use 1 to 64 letters, digits, '-', '_', '.' or '@'");
    }
    let existing = match std::fs::File::open(tokens_file) {
        Ok(file) => String::from_utf8(
            tuf_core::fs::read_bounded(file, MAX_TOKENS_FILE)
                .with_context(|| format!("reading {}", tokens_file.display()))?,
        )
        .with_context(|| format!("{}: not UTF-8", tokens_file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", tokens_file.display())),
    };
    ClientTokens::parse(&existing).map_err(|line| {
        anyhow::anyhow!(
            "{}:{line}: not a token line; fix the file before adding to it",
            tokens_file.display()
        )
    })?;
    let token = new_client_token().context("drawing a random token")?;
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&token_line(&token, name));
    text.push('\n');
    // Only digests: the file may be read by the proxy's user and others.
    tuf_core::fs::write_atomic_readable(tokens_file, text.as_bytes())
        .with_context(|| format!("writing {}", tokens_file.display()))?;
    Ok(token)
}

/// Runs `client-token`.
pub async fn run(args: ClientTokenArgs) -> anyhow::Result<bool> {
    match args.command {
        ClientTokenCommand::New { tokens_file, name } => {
            let token = add_token(&tokens_file, &name)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": true, "name": name, "token": token.as_str(),
                        "tokens_file": tokens_file})
                );
            } else {
                println!("{}", token.as_str());
                eprintln!(
                    "added {name} to {} (restart the proxy to accept it); the token is \
                     shown only this once",
                    tokens_file.display()
                );
            }
            Ok(true)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn client_names_are_short_plain_words() {
        for good in ["alice", "ci-runner_2", "a.b@c", &"x".repeat(64)] {
            assert!(is_client_name(good), "{good:?}");
        }
        for bad in ["", "bad name", "tab\tname", "ünïcode", &"x".repeat(65)] {
            assert!(!is_client_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn tokens_are_added_to_the_file_and_a_broken_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        // A file whose last line has no newline: the new line goes on a line of its own.
        let first = new_client_token().unwrap();
        std::fs::write(&file, token_line(&first, "alice")).unwrap();
        let second = add_token(&file, "bob").unwrap();
        let tokens = ClientTokens::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(tokens.check(&first), Some("alice"));
        assert_eq!(tokens.check(&second), Some("bob"));
        assert_eq!(tokens.len(), 2);
        // A missing file is created; a path that cannot be opened is an error, not an
        // empty file.
        let new = dir.path().join("new-tokens");
        add_token(&new, "carol").unwrap();
        assert_eq!(std::fs::read_to_string(&new).unwrap().lines().count(), 1);
        let error = add_token(&file.join("under-a-file"), "dave").unwrap_err();
        assert!(format!("{error:#}").starts_with("reading "), "{error:#}");
        // A file that does not parse is not written to.
        std::fs::write(&file, "not a token line\n").unwrap();
        assert!(add_token(&file, "erin").is_err());
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "not a token line\n"
        );
        assert!(add_token(&new, "bad name").is_err());
    }
}
