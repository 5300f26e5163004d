//! Helpers shared by the workspace-level integration tests.
#![forbid(unsafe_code)]
