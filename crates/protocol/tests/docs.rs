//! Keeps `docs/protocol.md` true: every JSON example in it must decode into
//! the Rust types, and encoding the result must keep every field it shows.

use std::collections::BTreeSet;

use huddle_protocol::codec::{decode_client, decode_server, encode_client, encode_server};
use huddle_protocol::{ClientMessage, ServerMessage};
use serde_json::Value;

const DOC: &str = include_str!("../../../docs/protocol.md");

/// `(side, json)` of every ```json client / ```json server block.
fn examples() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut lines = DOC.lines();
    while let Some(line) = lines.next() {
        let side = match line.trim() {
            "```json client" => "client",
            "```json server" => "server",
            other => {
                assert_ne!(
                    other, "```json",
                    "a json block in docs/protocol.md must say `client` or `server`"
                );
                continue;
            }
        };
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        out.push((side, body.join("\n")));
    }
    out
}

/// Every key and value of `shown` appears in `encoded` (which may add defaults).
fn assert_kept(shown: &Value, encoded: &Value, path: &str) {
    match (shown, encoded) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let Some(e) = b.get(k) else {
                    panic!("{path}.{k} is lost when re-encoded")
                };
                assert_kept(v, e, &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}: array length changed");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_kept(x, y, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(shown, encoded, "{path} changed when re-encoded"),
    }
}

#[test]
fn every_example_in_the_protocol_doc_parses_into_the_types() {
    let examples = examples();
    assert!(
        examples.len() >= 25,
        "found only {} examples",
        examples.len()
    );
    let (mut clients, mut servers) = (0, 0);
    let (mut client_types, mut server_types) = (BTreeSet::new(), BTreeSet::new());
    for (side, json) in examples {
        let shown: Value =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"));
        let encoded = if side == "client" {
            clients += 1;
            let frame = decode_client(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
            client_types.insert(frame.message.type_name());
            encode_client(&frame.message, frame.rid.as_deref())
        } else {
            servers += 1;
            let frame = decode_server(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
            server_types.insert(frame.message.type_name());
            encode_server(&frame.message, frame.rid.as_deref())
        };
        let encoded: Value = serde_json::from_str(&encoded).expect("our own output is JSON");
        assert_kept(&shown, &encoded, side);
        if side == "server" {
            assert_eq!(shown, encoded, "server examples must be exact");
        }
    }
    assert!(
        clients >= 10 && servers >= 12,
        "{clients} client and {servers} server examples"
    );
    // Every type has an example, and the lists the metrics count by are
    // the names the types give themselves.
    assert_eq!(client_types, BTreeSet::from(ClientMessage::TYPES));
    assert_eq!(server_types, BTreeSet::from(ServerMessage::TYPES));
}
