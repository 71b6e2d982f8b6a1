//! `wss://` against the real huddle-server serving TLS: a self-signed
//! certificate (as a room hosted from the app has) is trusted when pinned by
//! its fingerprint, and refused — with why — when the pin or the system's
//! authorities say otherwise. The room list watch goes the same way.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use huddle_engine::lobby::{LobbyEvent, RoomWatch};
use huddle_engine::signaling::StopReason;
use huddle_engine::tls::{Fingerprint, ServerTrust};
use huddle_engine::{Event, Signaling};
use huddle_protocol::ServerMessage;
use huddle_server::Config;

use common::{params, server_with};

/// A TLS server with a fresh self-signed certificate for 127.0.0.1; its URL
/// and the certificate's fingerprint.
async fn tls_server() -> (String, Fingerprint) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "huddle-engine-tls-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let tls = huddle_server::tls::server_config(&cert_path, &key_path).unwrap();
    let addr = server_with(Config {
        tls: Some(tls),
        ..Config::default()
    })
    .await;
    (format!("wss://{addr}/ws"), Fingerprint::of(cert.cert.der()))
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

async fn first_event(url: &str, trust: ServerTrust) -> Option<Event> {
    let mut p = params("secure", "Ada");
    p.trust = trust;
    let mut client = Signaling::start(url.to_owned(), p);
    tokio::time::timeout(Duration::from_secs(12), client.next_event())
        .await
        .expect("no answer within 12 s")
}

#[tokio::test]
async fn a_pinned_certificate_joins_over_wss() {
    let (url, fingerprint) = tls_server().await;
    match first_event(&url, ServerTrust::Pinned(fingerprint)).await {
        Some(Event::Message(ServerMessage::Joined { .. })) => {}
        other => panic!("expected joined over wss, got {other:?}"),
    }
}

#[tokio::test]
async fn another_certificate_than_the_pinned_one_is_refused_with_why() {
    let (url, _) = tls_server().await;
    let wrong = Fingerprint::of(b"some other certificate");
    match first_event(&url, ServerTrust::Pinned(wrong)).await {
        Some(Event::Stopped(StopReason::Unreachable { why })) => {
            assert!(why.contains("TLS") && why.contains("fingerprint"), "{why}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_self_signed_certificate_is_not_trusted_by_the_system_roots() {
    let (url, _) = tls_server().await;
    match first_event(&url, ServerTrust::System).await {
        Some(Event::Stopped(StopReason::Unreachable { why })) => {
            assert!(why.contains("TLS"), "{why}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_room_list_is_watched_over_wss_with_a_pin() {
    let (url, fingerprint) = tls_server().await;
    let mut watch = RoomWatch::start(url, None, ServerTrust::Pinned(fingerprint));
    let event = tokio::time::timeout(Duration::from_secs(10), watch.next_event())
        .await
        .expect("no room list within 10 s");
    assert_eq!(event, Some(LobbyEvent::Rooms(Vec::new())));
}
