//! What the commands print: human text on stdout, or one JSON object with `--json`;
//! errors on stderr (and as JSON on stdout with `--json`); progress bars on stderr when
//! it is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::GlobalArgs;

/// `println!` that ignores a closed stdout (`tuf-signer status | head -1`) instead of
/// panicking on the broken pipe.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Prints `value` as one JSON object with `"ok": true` (with `--json`), else runs
/// `human`. `value` must serialize to an object: a list goes under a named field, so that
/// every command's output is read the same way.
pub fn emit<T: Serialize>(global: &GlobalArgs, value: &T, human: impl FnOnce()) {
    emit_outcome(global, value, true, human);
}

/// Like [`emit`] for a command whose result may be a failure it reports itself (`verify`
/// finding problems): `"ok"` is `ok`.
pub fn emit_outcome<T: Serialize>(global: &GlobalArgs, value: &T, ok: bool, human: impl FnOnce()) {
    if !global.json {
        human();
        return;
    }
    let text = serde_json::to_value(value).and_then(|value| {
        let mut object = match value {
            serde_json::Value::Object(object) => object,
            other => {
                // A programming error in a command; say so rather than print a non-object.
                let mut object = serde_json::Map::new();
                object.insert("result".into(), other);
                tracing::error!("a command's JSON output is not an object; it is under \"result\"");
                object
            }
        };
        object.insert("ok".into(), serde_json::Value::Bool(ok));
        serde_json::to_string_pretty(&object)
    });
    match text {
        Ok(text) => crate::say!("{text}"),
        Err(e) => eprintln!("tuf-signer: could not write JSON output: {e}"),
    }
}

/// The cause chain in one line ([`tuf_core::error_chain::error_chain`]).
pub fn error_chain(error: &anyhow::Error) -> String {
    tuf_core::error_chain::error_chain(error.as_ref())
}

/// Prints a failure: the whole cause chain on stderr, and `{"ok": false, "error"}` on
/// stdout with `--json`.
pub fn print_error(global: &GlobalArgs, error: &anyhow::Error) {
    let message = error_chain(error);
    eprintln!("tuf-signer: error: {message}");
    if global.json {
        let value = serde_json::json!({ "ok": false, "error": message });
        crate::say!("{value}");
    }
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar with a message.
    pub fn new(message: &'static str) -> Self {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new(0)
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(message);
        Self(bar)
    }

    /// Ends the bar, clearing it.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }

    /// Advances by one.
    pub fn inc(&self) {
        self.0.inc(1);
    }
}

impl tuf_core::repository::Progress for Bar {
    fn set_length(&self, length: u64) {
        self.0.set_length(length);
    }

    fn advance(&self, steps: u64) {
        self.0.inc(steps);
    }
}
