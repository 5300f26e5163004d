//! One line for an error and its causes, shared by the binaries' messages.

/// The cause chain of `error` in one line, `outer: inner: innermost`, leaving out a cause
/// whose words the line already ends with: this workspace's errors say their cause in
/// their own message and also name it as their source, which `{:#}` would show twice.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = String::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
        next = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("/var/lib/tuf-verifier/metadata: {source}")]
    struct SaysItsCause {
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("starting")]
    struct Outer {
        source: SaysItsCause,
    }

    /// `Outer`'s message does not include its cause, which is added; `SaysItsCause`'s
    /// does, and it is not added again.
    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let cause = io.to_string();
        let error = Outer {
            source: SaysItsCause { source: io },
        };
        assert_eq!(
            error_chain(&error),
            format!("starting: /var/lib/tuf-verifier/metadata: {cause}")
        );
    }
}
