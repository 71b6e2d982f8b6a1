//! Any bytes through the client decoder: it must never panic, and what it
//! accepts must re-encode to the same message.
#![no_main]

use huddle_protocol::codec::{decode_client, encode_client};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(frame) = decode_client(text) {
        let again = decode_client(&encode_client(&frame.message, frame.rid.as_deref()));
        assert_eq!(again.ok(), Some(frame));
    }
});
