//! Property tests: no input makes the decoder panic, and whatever decodes
//! re-encodes to something that decodes to the same message.

use huddle_protocol::codec::{decode_client, encode_client};
use proptest::prelude::*;

fn json_like() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-z_\\u{0}-\\u{1f}\\u{80}-\\u{10ffff}]{0,12}"
            .prop_map(|s| serde_json::Value::String(s).to_string()),
    ];
    let keys = prop_oneof![
        Just("type"),
        Just("rid"),
        Just("v"),
        Just("room"),
        Just("name"),
        Just("to"),
        Just("data"),
        Just("sdp"),
        Just("candidate"),
        Just("text"),
        Just("attachment"),
        Just("watch"),
        Just("media"),
        Just("audio"),
        Just("video"),
        Just("screen"),
        Just("active"),
        Just("accept"),
        Just("password"),
    ];
    let value = leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|kv| {
                let body: Vec<String> = kv
                    .into_iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    });
    let types = prop_oneof![
        Just("join"),
        Just("chat"),
        Just("signal"),
        Just("rooms"),
        Just("typing"),
        Just("media"),
        Just("ring"),
        Just("ring_reply"),
        Just("call_join"),
        Just("ping"),
        Just("leave"),
        Just("hand"),
        Just("reaction"),
        Just("x"),
    ];
    (types, value).prop_map(|(t, v)| match v.strip_prefix('{') {
        Some(rest) if rest != "}" => format!("{{\"type\":\"{t}\",{rest}"),
        _ => format!("{{\"type\":\"{t}\"}}"),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = decode_client(&text);
    }

    #[test]
    fn json_shaped_input_never_panics_and_round_trips(text in json_like()) {
        if let Ok(frame) = decode_client(&text) {
            let again = decode_client(&encode_client(&frame.message, frame.rid.as_deref()));
            prop_assert_eq!(again.ok(), Some(frame));
        }
    }
}
