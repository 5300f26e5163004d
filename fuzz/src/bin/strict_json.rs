//! The strict JSON parser (duplicate keys, number rules, depth and size caps) and the
//! canonical writer after it: every input gets a value or a typed error, never a panic.
#![forbid(unsafe_code)]

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(value) = tuf_core::json::parse_strict(data, 1 << 20) {
            let _ = tuf_core::json::to_canonical(&value);
        }
    });
}
