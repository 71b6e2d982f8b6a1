//! The signaling client against the real huddle-server over real sockets,
//! with a TCP proxy in between that the tests can cut to drop connections.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use huddle_engine::signaling::StopReason;
use huddle_engine::{Event, JoinParams, Signaling};
use huddle_protocol::client::ChatSend;
use huddle_protocol::{ClientMessage, ErrorCode, ServerMessage};

use common::{params, server, Proxy};

/// The next server message, skipping other events; fails after 10 s.
async fn message(client: &mut Signaling) -> ServerMessage {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), client.next_event()).await {
            Ok(Some(Event::Message(m))) => return m,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("client stopped"),
            Err(_) => panic!("no message within 10 s"),
        }
    }
}

async fn joined(client: &mut Signaling) -> (String, bool) {
    match message(client).await {
        ServerMessage::Joined {
            self_peer, resumed, ..
        } => (self_peer.id.to_string(), resumed),
        other => panic!("expected joined, got {}", other.type_name()),
    }
}

fn chat(text: &str) -> ClientMessage {
    ClientMessage::Chat(ChatSend {
        text: text.into(),
        to: None,
        attachment: None,
    })
}

async fn chat_text(client: &mut Signaling) -> String {
    loop {
        if let ServerMessage::Chat { text, .. } = message(client).await {
            return text;
        }
    }
}

#[tokio::test]
async fn a_dropped_socket_resumes_the_same_membership_without_losing_messages() {
    let server = server().await;
    let proxy = Proxy::start(server).await;
    let mut ada = Signaling::start(proxy.url(), params("standup", "Ada"));
    let (ada_id, _) = joined(&mut ada).await;
    let mut grace = Signaling::start(format!("ws://{server}/ws"), params("standup", "Grace"));
    joined(&mut grace).await;
    assert!(matches!(
        message(&mut ada).await,
        ServerMessage::PeerJoined { .. }
    ));

    // Ada's socket drops; Grace keeps talking meanwhile.
    proxy.cut();
    loop {
        match ada.next_event().await {
            Some(Event::Reconnecting { attempt: 0, .. }) => break,
            Some(Event::Message(_)) => continue,
            other => panic!("expected a reconnect, got {other:?}"),
        }
    }
    for n in 0..5 {
        grace.send(chat(&format!("while away {n}"))).unwrap();
    }
    // Ada also sends while disconnected: queued, delivered after the resume.
    ada.send(chat("queued by ada")).unwrap();

    let (id, resumed) = joined(&mut ada).await;
    assert_eq!(id, ada_id, "the same membership");
    assert!(resumed);
    for n in 0..5 {
        assert_eq!(chat_text(&mut ada).await, format!("while away {n}"));
    }
    // Grace sees her own five echoes, then Ada's queued line, and never a
    // peer_left for Ada.
    let mut seen = Vec::new();
    while seen.len() < 6 {
        match message(&mut grace).await {
            ServerMessage::Chat { text, .. } => seen.push(text),
            ServerMessage::PeerLeft { .. } => panic!("Grace saw Ada leave"),
            _ => {}
        }
    }
    assert_eq!(seen.last().unwrap(), "queued by ada");
    ada.leave().await;
    assert!(matches!(
        message(&mut grace).await,
        ServerMessage::PeerLeft { .. }
    ));
}

#[tokio::test]
async fn asked_to_reconnect_it_resumes_at_once_and_loses_nothing() {
    let server = server().await;
    let mut ada = Signaling::start(format!("ws://{server}/ws"), params("move", "Ada"));
    let (ada_id, _) = joined(&mut ada).await;
    let mut grace = Signaling::start(format!("ws://{server}/ws"), params("move", "Grace"));
    joined(&mut grace).await;
    // The machine's network changed: Ada drops her socket herself and
    // joins again, sending what she queued meanwhile.
    ada.reconnect().unwrap();
    ada.send(chat("from the new network")).unwrap();
    loop {
        match message(&mut ada).await {
            ServerMessage::Joined {
                self_peer, resumed, ..
            } => {
                assert_eq!(self_peer.id.to_string(), ada_id, "the same membership");
                assert!(resumed);
                break;
            }
            _ => continue,
        }
    }
    loop {
        match message(&mut grace).await {
            ServerMessage::Chat { text, .. } => {
                assert_eq!(text, "from the new network");
                break;
            }
            ServerMessage::PeerLeft { .. } => panic!("Grace saw Ada leave"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_refused_join_stops_with_the_reason() {
    let server = server().await;
    let url = format!("ws://{server}/ws");
    let mut owner = Signaling::start(
        url.clone(),
        JoinParams {
            password: Some("s3cret".into()),
            ..params("locked", "Owner")
        },
    );
    joined(&mut owner).await;
    let mut guest = Signaling::start(
        url,
        JoinParams {
            password: Some("wrong".into()),
            ..params("locked", "Guest")
        },
    );
    let event = tokio::time::timeout(Duration::from_secs(10), guest.next_event())
        .await
        .unwrap();
    match event {
        Some(Event::Stopped(StopReason::JoinRefused { code, .. })) => {
            assert_eq!(code, ErrorCode::BadPassword)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(guest.next_event().await, None);
}

#[tokio::test]
async fn leaving_while_reconnecting_stops_at_once() {
    let server = server().await;
    let proxy = Proxy::start(server).await;
    let mut ada = Signaling::start(proxy.url(), params("r", "Ada"));
    joined(&mut ada).await;
    proxy.cut();
    loop {
        if let Some(Event::Reconnecting { .. }) = ada.next_event().await {
            break;
        }
    }
    tokio::time::timeout(Duration::from_secs(2), ada.leave())
        .await
        .expect("leave returns without waiting for the reconnect");
}

/// The first event of a client that never reaches its server: a stop with
/// why, well within the join timeout (not a minute of retries).
async fn unreachable(url: String) -> String {
    let started = std::time::Instant::now();
    let mut client = Signaling::start(url, params("standup", "Ada"));
    let event = tokio::time::timeout(
        huddle_engine::signaling::JOIN_TIMEOUT + Duration::from_secs(2),
        client.next_event(),
    )
    .await
    .expect("no answer within the join timeout");
    assert!(started.elapsed() < huddle_engine::signaling::JOIN_TIMEOUT + Duration::from_secs(1));
    match event {
        Some(Event::Stopped(StopReason::Unreachable { why })) => why,
        other => panic!("expected unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn an_address_that_never_answers_is_said_at_once_with_why() {
    // Nothing listens: refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let why = unreachable(format!("ws://127.0.0.1:{port}/ws")).await;
    assert!(why.contains("refused"), "{why}");

    // A web server that is not Huddle's: its HTTP answer is named.
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = web.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = web.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let why = unreachable(format!("ws://{addr}/ws")).await;
    assert!(
        why.contains("not a Huddle server") && why.contains("404"),
        "{why}"
    );

    // A name nobody resolves.
    let why = unreachable("ws://no-such-host.invalid:8443/ws".into()).await;
    assert!(why.contains("DNS") || why.contains("failed"), "{why}");
}
