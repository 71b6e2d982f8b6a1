//! Resume after a dropped connection: queued messages in order, the same id,
//! nobody else notices; replaced connections; grace timeout; slow readers.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Closed, TestServer};
use huddle_server::Config;
use serde_json::json;

/// The default configuration without rate limits (for floods).
fn unlimited() -> Config {
    Config {
        msg_rate: 1e6,
        msg_burst: 1e6,
        byte_rate: 1e12,
        byte_burst: 1e12,
        ..Config::default()
    }
}

fn resume_join(room: &str, token: &str) -> serde_json::Value {
    json!({"type":"join","v":1,"room":room,"name":"B","resume":token,"rid":"again"})
}

#[tokio::test]
async fn a_dropped_member_resumes_with_its_queue_in_order() {
    let server = TestServer::default().await;
    let (mut a, _) = server.join("r", "A").await;
    let (mut b, joined) = server.join("r", "B").await;
    a.expect("peer_joined").await;
    a.send(json!({"type":"call_join","video":true})).await;
    a.expect("call_joined").await;
    a.expect("call_started").await;
    b.expect("call_started").await;
    b.expect("peer_updated").await;
    let token = joined["resume"].as_str().unwrap().to_owned();
    let b_id = b.id.clone();
    b.drop_connection();

    // Everything sent meanwhile is queued for B, and A notices nothing.
    a.send(json!({"type":"chat","text":"while you were away"}))
        .await;
    for i in 0..50 {
        a.send(json!({"type":"signal","to":b_id,"data":{"candidate":{"candidate":format!("candidate:{i}")}}})).await;
    }
    a.expect("chat").await;
    a.barrier("a").await;

    let mut b = server.connect().await;
    let joined = b.join_with(resume_join("r", &token)).await;
    assert_eq!(joined["type"], "joined");
    assert_eq!(joined["rid"], "again");
    assert_eq!(joined["resumed"], true);
    assert_eq!(joined["self"]["id"], b_id);
    assert_ne!(
        joined["resume"], token,
        "every joined carries a fresh token"
    );
    assert_eq!(joined["room"]["call"]["peers"], json!([a.id]));
    // The queue, in order: the chat of A, 50 signals, the barrier.
    assert_eq!(b.expect("chat").await["text"], "while you were away");
    for i in 0..50 {
        let s = b.expect("signal").await;
        assert_eq!(
            s["data"]["candidate"]["candidate"],
            format!("candidate:{i}")
        );
    }
    b.expect_barrier_of("a").await;
    b.barrier("b").await;
    a.expect_barrier_of("b").await;
    // And A never saw B leave or join.
    a.barrier("a2").await;

    // The old token is spent: using it is an ordinary join with a new id.
    let mut c = server.connect().await;
    let fresh = c.join_with(resume_join("r", &token)).await;
    assert_eq!(fresh["resumed"], false);
    assert_ne!(fresh["self"]["id"], b_id);
}

#[tokio::test]
async fn a_clean_close_also_keeps_the_member_for_resume() {
    let server = TestServer::default().await;
    let (mut a, _) = server.join("r", "A").await;
    let (mut b, joined) = server.join("r", "B").await;
    a.expect("peer_joined").await;
    b.ws.close(None).await.unwrap();
    a.send(json!({"type":"chat","text":"queued"})).await;
    a.expect("chat").await;
    let mut b = server.connect().await;
    let again = b
        .join_with(resume_join("r", joined["resume"].as_str().unwrap()))
        .await;
    assert_eq!(again["resumed"], true);
    assert_eq!(b.expect("chat").await["text"], "queued");
}

#[tokio::test]
async fn resuming_while_the_old_connection_is_open_replaces_it() {
    let server = TestServer::default().await;
    let (mut a, _) = server.join("r", "A").await;
    let (mut old, joined) = server.join("r", "B").await;
    a.expect("peer_joined").await;
    let mut new = server.connect().await;
    let again = new
        .join_with(resume_join("r", joined["resume"].as_str().unwrap()))
        .await;
    assert_eq!(again["resumed"], true);
    assert_eq!(again["self"]["id"], old.id);
    assert_eq!(old.closed().await, Closed::Frame(1000, "replaced".into()));
    a.send(json!({"type":"chat","text":"to the new one"})).await;
    assert_eq!(new.expect("chat").await["text"], "to the new one");
    a.expect("chat").await;
    a.barrier("nothing else").await;
}

#[tokio::test]
async fn the_grace_period_ends_with_timeout_and_the_call_with_it() {
    let config = Config {
        resume_grace: Duration::from_millis(300),
        ..Config::default()
    };
    let server = TestServer::start(config).await;
    let (mut a, _) = server.join("r", "A").await;
    let (mut b, joined) = server.join("r", "B").await;
    a.expect("peer_joined").await;
    b.send(json!({"type":"call_join","video":false})).await;
    b.expect("call_joined").await;
    b.expect("call_started").await;
    a.expect("call_started").await;
    a.expect("peer_updated").await;
    let b_id = b.id.clone();
    let started = std::time::Instant::now();
    b.drop_connection();
    let left = a.expect("peer_left").await;
    assert_eq!(
        left,
        json!({"type":"peer_left","id":b_id,"reason":"timeout"})
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "left after {:?}",
        started.elapsed()
    );
    a.expect("call_ended").await;
    // The token died with the membership.
    let mut late = server.connect().await;
    let fresh = late
        .join_with(resume_join("r", joined["resume"].as_str().unwrap()))
        .await;
    assert_eq!(fresh["resumed"], false);
}

#[tokio::test]
async fn a_resume_queue_overflow_removes_the_member_at_once() {
    let config = Config {
        outbox_messages: 16,
        ..Config::default()
    };
    let server = TestServer::start(config).await;
    let (mut a, _) = server.join("r", "A").await;
    let (b, _) = server.join("r", "B").await;
    a.expect("peer_joined").await;
    let b_id = b.id.clone();
    b.drop_connection();
    // Wait until the server has noticed the drop: B's typing relay keeps
    // succeeding either way, so poll the only observable, the overflow.
    let mut sent = 0;
    let left = loop {
        a.send(json!({"type":"typing","active":true,"to":b_id,"rid":"t"}))
            .await;
        sent += 1;
        a.send(json!({"type":"ping","rid":"p"})).await;
        let msg = a.recv().await;
        match msg["type"].as_str() {
            Some("pong") => continue,
            Some("peer_left") => break msg,
            Some("error") => panic!("{msg}"),
            _ => panic!("{msg}"),
        }
    };
    assert_eq!(left["reason"], "disconnected");
    assert!(sent >= 16, "removed after {sent} messages");
}

#[tokio::test]
async fn a_reader_that_does_not_keep_up_is_removed_and_others_never_wait() {
    // Small outbox; no rate limit in the way of the flood.
    let config = Config {
        outbox_messages: 64,
        ..unlimited()
    };
    let server = TestServer::start(config).await;
    let (mut a, _) = server.join("r", "A").await;
    let (mut c, _) = server.join("r", "C").await;
    // S never reads: its socket buffers fill, then its outbox.
    let (slow, _) = server.join("r", "S").await;
    a.expect("peer_joined").await;
    a.expect("peer_joined").await;
    c.expect("peer_joined").await;
    let text = "x".repeat(3900);
    let mut n = 0;
    let left = loop {
        a.send(json!({"type":"chat","text":text})).await;
        n += 1;
        // A and C keep receiving every message without delay.
        let echo = a.recv().await;
        let msg = c.recv().await;
        if msg["type"] == "peer_left" {
            assert_eq!(echo, msg, "A learns of it in the same order");
            break msg;
        }
        assert_eq!(
            (echo["type"].as_str(), msg["type"].as_str()),
            (Some("chat"), Some("chat"))
        );
        assert!(n < 20_000, "the slow reader was never removed");
    };
    assert_eq!(left["id"], slow.id);
    assert_eq!(left["reason"], "disconnected");
    drop(slow);
}

/// The complete text frames at the start of `bytes` (a server's, unmasked);
/// a frame cut off at the end is not one.
#[cfg(target_os = "linux")]
fn whole_frames(mut bytes: &[u8]) -> Vec<serde_json::Value> {
    let mut frames = Vec::new();
    while bytes.len() >= 2 {
        let (header, len) = match bytes[1] & 0x7f {
            126 => (4, usize::from(u16::from_be_bytes([bytes[2], bytes[3]]))),
            127 => panic!("no frame here is that large"),
            n => (2, usize::from(n)),
        };
        if bytes.len() < header + len {
            break;
        }
        assert_eq!(bytes[0], 0x81, "a whole text frame");
        frames.push(serde_json::from_slice(&bytes[header..header + len]).unwrap());
        bytes = &bytes[header + len..];
    }
    frames
}

/// A laptop changes networks: the server keeps writing into the old
/// connection, whose TCP no longer acknowledges anything, until the member
/// resumes on a new one. Stood in for on loopback by a client that stops
/// reading with a small receive buffer: its TCP acknowledges what fits in
/// the buffer and the rest waits in the server's send queue, as over a dead
/// path. Every message arrives exactly once: what the old connection had
/// received, then the rest on the new one.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn what_a_dead_connection_never_acknowledged_comes_with_the_resume() {
    if common::clustered() {
        // Through the cluster's balancer, a TCP proxy acknowledges for the
        // client, as a reverse proxy would: the server cannot know.
        return;
    }
    let server = TestServer::start(unlimited()).await;
    let (mut a, _) = server.join("r", "A").await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(
        format!("ws://{}/ws", server.addr),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .unwrap();
    let mut old = common::Client {
        ws,
        id: String::new(),
    };
    let joined = old.join("r", "B").await;
    a.expect("peer_joined").await;

    // The old connection reads nothing more.
    let texts: Vec<String> = (0..24)
        .map(|i| format!("{i:02} {}", "x".repeat(600)))
        .collect();
    for text in &texts {
        a.send(json!({"type":"chat","text":text})).await;
        a.expect("chat").await;
    }
    let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = old.ws.get_ref() else {
        unreachable!("a plain connection")
    };
    let mut received = vec![0; 1 << 20];
    let n = tcp.peek(&mut received).await.unwrap();
    let before: Vec<String> = whole_frames(&received[..n])
        .iter()
        .map(|chat| chat["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        before.len() < texts.len(),
        "the old connection must be left owing something ({} received)",
        before.len()
    );

    let mut new = server.connect().await;
    let again = new
        .join_with(resume_join("r", joined["resume"].as_str().unwrap()))
        .await;
    assert_eq!(again["resumed"], true);
    a.barrier("after").await;
    let mut after = Vec::new();
    loop {
        let chat = new.expect("chat").await;
        let text = chat["text"].as_str().unwrap().to_owned();
        if text == "barrier after" {
            break;
        }
        after.push(text);
    }
    assert_eq!([before, after].concat(), texts, "each once, in order");
    let metrics = common::get(server.addr, "/metrics").await;
    assert!(
        !metrics.contains("huddle_frames_requeued_total 0\n"),
        "{metrics}"
    );
}
