//! Index lines as upstream sends them, and crates' signed index files: each line parsed
//! strictly (an entry or a typed error), and a whole file checked line by line.
#![forbid(unsafe_code)]

use tuf_core::crate_index::CrateIndexFile;
use tuf_core::index_entry::IndexEntry;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let mut first_name = None;
        for line in data.split(|&b| b == b'\n') {
            if let Ok(entry) = IndexEntry::parse_line(line) {
                first_name.get_or_insert(entry.name);
            }
        }
        let _ = CrateIndexFile::parse(first_name.as_deref().unwrap_or("fuzzed"), data);
    });
}
