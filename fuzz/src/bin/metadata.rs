//! Loading signed metadata of every role from untrusted bytes (what a client downloads):
//! a typed error or metadata, never a panic; what loads has canonical bytes to verify.
#![forbid(unsafe_code)]

use tuf_core::{Metadata, Role, Root, Snapshot, Targets, Timestamp};

fn load<T: Role>(data: &[u8]) {
    if let Ok(metadata) = Metadata::<T>::from_bytes(data) {
        let _ = metadata.to_bytes();
    }
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        load::<Root>(data);
        load::<Timestamp>(data);
        load::<Snapshot>(data);
        load::<Targets>(data);
    });
}
