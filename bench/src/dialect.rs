//! What each server's clients say: joining, relaying a signal, a room chat.
//!
//! Every measured message carries a marker `@t=<nanos>;` with its send time
//! (nanoseconds since the bench started), so receivers can time it without
//! parsing the JSON around it.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::target::Kind;
use crate::BenchError;

pub type Ws = WebSocketStream<TcpStream>;

/// Nanoseconds since the bench started.
pub fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// The send time in a received message, if it is a measured one.
pub fn marker(text: &str) -> Option<u64> {
    let start = text.find("@t=")? + 3;
    let digits = &text[start..];
    let end = digits.find(';')?;
    digits[..end].parse().ok()
}

/// A connected client that has joined: its socket, its id and how long the
/// join took from the first TCP packet.
pub struct Joined {
    pub ws: Ws,
    pub id: String,
    pub took: Duration,
}

/// Connects and joins `room` as `name` (PeerJS has no rooms: its client
/// registers its id, and that is its "join").
pub async fn join(
    kind: Kind,
    addr: SocketAddr,
    room: &str,
    name: &str,
) -> Result<Joined, BenchError> {
    let start = Instant::now();
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    // A small read buffer keeps 10,000 client sockets cheap.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let url = match kind {
        Kind::Huddle => format!("ws://{addr}/ws"),
        Kind::PeerJs => format!("ws://{addr}/peerjs?key=peerjs&id={name}&token=t{name}"),
    };
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(config)).await?;
    if kind == Kind::Huddle {
        let join = serde_json::json!({"type":"join","v":1,"room":room,"name":name});
        ws.send(Message::text(join.to_string())).await?;
    }
    let ready = match kind {
        Kind::Huddle => "\"type\":\"joined\"",
        Kind::PeerJs => "\"type\":\"OPEN\"",
    };
    while let Some(message) = ws.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        if !text.contains(ready) {
            if text.contains("\"error\"") || text.contains("ERROR") || text.contains("ID-TAKEN") {
                return Err(BenchError::Refused(text.to_string()));
            }
            continue;
        }
        let id = match kind {
            Kind::Huddle => {
                let value: serde_json::Value = serde_json::from_str(&text)?;
                value["self"]["id"]
                    .as_str()
                    .ok_or(BenchError::Refused(text.to_string()))?
                    .to_owned()
            }
            Kind::PeerJs => name.to_owned(),
        };
        return Ok(Joined {
            ws,
            id,
            took: start.elapsed(),
        });
    }
    Err(BenchError::Refused("closed before joining".into()))
}

/// A relayed ICE candidate of realistic size, to `to`.
pub fn signal(kind: Kind, to: &str, sent_ns: u64) -> String {
    let candidate = format!(
        "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0 @t={sent_ns};"
    );
    match kind {
        Kind::Huddle => format!(
            r#"{{"type":"signal","to":"{to}","data":{{"candidate":{{"candidate":"{candidate}","sdpMid":"0","sdpMLineIndex":0}}}}}}"#
        ),
        Kind::PeerJs => format!(
            r#"{{"type":"CANDIDATE","dst":"{to}","payload":{{"candidate":{{"candidate":"{candidate}","sdpMid":"0","sdpMLineIndex":0}},"type":"media","connectionId":"mc_bench"}}}}"#
        ),
    }
}

/// One chat line from member `from` to the room. PeerJS's server knows no
/// rooms, so its client sends one copy to each other member.
pub fn chat(kind: Kind, from: usize, others: &[String], sent_ns: u64) -> Vec<String> {
    let text = format!("see you at the standup in five minutes @s={from}; @t={sent_ns};");
    match kind {
        Kind::Huddle => vec![format!(r#"{{"type":"chat","text":"{text}"}}"#)],
        Kind::PeerJs => others
            .iter()
            .map(|to| format!(r#"{{"type":"OFFER","dst":"{to}","payload":{{"text":"{text}"}}}}"#))
            .collect(),
    }
}

/// The tag that marks member `me`'s own chat lines (our server echoes a
/// sender's chat back as its delivery confirmation; that copy is not
/// counted). Made once per member, not per message.
pub fn own_tag(me: usize) -> String {
    format!("@s={me};")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_survive_both_dialects() {
        for kind in [Kind::Huddle, Kind::PeerJs] {
            assert_eq!(marker(&signal(kind, "p_1", 12345)), Some(12345));
            let chats = chat(kind, 3, &["a".into(), "b".into()], 99);
            assert!(chats
                .iter()
                .all(|c| marker(c) == Some(99) && c.contains(&own_tag(3))));
        }
        assert_eq!(marker("no marker"), None);
    }
}
