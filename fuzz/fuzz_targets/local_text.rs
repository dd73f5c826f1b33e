//! The text parsers that read local input: pppd secrets files
//! (portdial::secrets) and control-socket request lines (portdial::control).
//! A local user's file or request must never panic the daemon; the secrets
//! parser must also agree with itself (the entry `find_entry` picks is one
//! `parse_entries` lists), and a request that parses must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portdial::control::Request;
use portdial::secrets::{find_entry, parse_entries};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let entries = parse_entries(text);
    if let Some(first) = entries.first() {
        let picked = find_entry(text, &first.client, None);
        assert!(picked.is_some_and(|picked| entries
            .iter()
            .any(|entry| entry.client == picked.client && entry.server == picked.server)));
    }
    for line in text.lines() {
        if let Ok(request) = serde_json::from_str::<Request>(line) {
            let again = serde_json::to_string(&request).expect("a request serializes");
            let parsed: Request = serde_json::from_str(&again).expect("and parses back");
            assert_eq!(parsed, request);
            let _ = request.changes_state();
        }
    }
});
