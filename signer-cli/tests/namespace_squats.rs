//! `tuf-signer namespace delegate` refuses a namespace that squats one already delegated
//! or a well-known crate, unless `--force`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{describe_output, Workspace};

#[test]
fn a_namespace_that_squats_another_is_refused_without_force() {
    let ws = Workspace::new();
    ws.init(2);
    ws.key("owner");
    let owner = ws.public("owner");
    let delegate = |namespace: &str, force: bool| {
        let mut args = vec!["namespace", "delegate", "--key", owner.as_str(), namespace];
        if force {
            args.push("--force");
        }
        ws.run("repo", &args)
    };
    let ok = delegate("acmewidgets", false);
    assert!(ok.status.success(), "{}", describe_output(&ok));
    // One already delegated, and one well-known crate.
    for (squat, like, how) in [
        ("acmewigdets", "acmewidgets", "swapped characters"),
        ("serde_jsno", "serde_json", "swapped characters"),
        ("tokio-rs", "tokio", "adds the affix `rs`"),
    ] {
        let refused = delegate(squat, false);
        assert!(!refused.status.success(), "{}", describe_output(&refused));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains(&format!(
                "the namespace {squat} looks like `{like}` ({how})"
            )) && stderr.contains("--force"),
            "{stderr}"
        );
    }
    // Nothing was staged for the refused ones; --force delegates with a warning.
    let forced = delegate("acmewigdets", true);
    assert!(forced.status.success(), "{}", describe_output(&forced));
    assert!(String::from_utf8_lossy(&forced.stderr)
        .contains("warning: the namespace acmewigdets looks like `acmewidgets`"));
    let status = ws.json("repo", &["status"]);
    let text = status.to_string();
    assert!(
        text.contains("ns-acmewigdets") && !text.contains("ns-serde_jsno"),
        "{text}"
    );
}
