//! Every error code of protocol v1, with its close behaviour, over real sockets.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, Closed, TestServer};
use futures_util::SinkExt;
use huddle_server::Config;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn malformed_frames_are_bad_message_and_keep_the_connection() {
    let server = TestServer::default().await;
    let mut c = server.connect().await;
    c.send_text("not json").await;
    c.expect_error("bad_message").await;
    c.send_text("[1,2,3]").await;
    c.expect_error("bad_message").await;
    c.ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    c.expect_error("bad_message").await;
    c.send(json!({"type":"chat","rid":"r1"})).await;
    assert_eq!(c.expect_error("bad_message").await["rid"], "r1");
    c.send(json!({"type":"dance","rid":"r2"})).await;
    assert_eq!(c.expect_error("unknown_type").await["rid"], "r2");
    c.send(json!({"type":"ping","rid":"ok","unknown_field":[1]}))
        .await;
    assert_eq!(c.expect("pong").await["rid"], "ok");
}

#[tokio::test]
async fn messages_that_need_a_room() {
    let server = TestServer::default().await;
    let mut c = server.connect().await;
    for msg in [
        json!({"type":"leave"}),
        json!({"type":"chat","text":"x"}),
        json!({"type":"typing","active":true}),
        json!({"type":"media","audio":true,"video":false,"screen":false}),
        json!({"type":"call_join","video":true}),
        json!({"type":"call_leave"}),
        json!({"type":"ring","to":"p_x","video":true}),
        json!({"type":"signal","to":"p_x","data":{"candidate":null}}),
    ] {
        c.send(msg).await;
        c.expect_error("not_joined").await;
    }
}

#[tokio::test]
async fn unsupported_version_closes_with_1008() {
    let server = TestServer::default().await;
    let mut c = server.connect().await;
    c.send(json!({"type":"join","v":2,"room":"r","name":"n","rid":"v"}))
        .await;
    assert_eq!(c.expect_error("unsupported_version").await["rid"], "v");
    assert_eq!(
        c.closed().await,
        Closed::Frame(1008, "unsupported version".into())
    );
    let mut c = server.connect().await;
    c.send(json!({"type":"join","room":"r","name":"n"})).await;
    c.expect_error("unsupported_version").await;
}

#[tokio::test]
async fn join_errors_in_the_protocol_order() {
    let config = Config {
        tokens: vec!["secret".into()],
        max_room_peers: 1,
        ..Config::default()
    };
    let server = TestServer::start(config).await;
    let mut a = server.connect().await;
    let ok = a
        .join_with(json!({"type":"join","v":1,"room":"locked","name":"A","password":"pw","token":"secret"}))
        .await;
    assert_eq!(ok["type"], "joined");
    assert_eq!(ok["room"]["locked"], true);
    // already_joined before bad_message before forbidden.
    a.send(json!({"type":"join","v":1,"room":7,"name":"A"}))
        .await;
    a.expect_error("already_joined").await;

    let mut c = server.connect().await;
    let wrong = |extra: serde_json::Value| {
        let mut base = json!({"type":"join","v":1,"room":"locked","name":"B","token":"secret","password":"pw"});
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base
    };
    c.send(wrong(json!({"room":7,"name":"","token":"bad"})))
        .await;
    c.expect_error("bad_message").await;
    c.send(wrong(json!({"room":"","name":"","password":"no"})))
        .await;
    c.expect_error("invalid_room").await;
    c.send(wrong(json!({"room":"a\u{1}b"}))).await;
    c.expect_error("invalid_room").await;
    c.send(wrong(json!({"room":"x".repeat(65)}))).await;
    c.expect_error("invalid_room").await;
    c.send(wrong(json!({"name":"   ","password":"no"}))).await;
    c.expect_error("invalid_name").await;
    c.send(wrong(json!({"name":"n".repeat(33)}))).await;
    c.expect_error("invalid_name").await;
    c.send(wrong(json!({"password":"no"}))).await;
    c.expect_error("bad_password").await;
    c.send(wrong(json!({"password":""}))).await;
    c.expect_error("bad_password").await;
    c.send(wrong(json!({}))).await;
    let full = c.expect_error("room_full").await;
    assert!(full["message"].as_str().unwrap().contains("full"));
    // None of that changed the room.
    a.barrier("a").await;
    // Finally the token: missing closes with 1008.
    let mut d = server.connect().await;
    d.send(json!({"type":"join","v":1,"room":"other","name":"D"}))
        .await;
    d.expect_error("forbidden").await;
    assert_eq!(d.closed().await, Closed::Frame(1008, "forbidden".into()));
}

#[tokio::test]
async fn tokens_guard_the_room_list_too() {
    let server = TestServer::start(Config {
        tokens: vec!["t1".into(), "t2".into()],
        ..Config::default()
    })
    .await;
    let mut c = server.connect().await;
    c.send(json!({"type":"rooms","token":"t2","rid":"ok"}))
        .await;
    assert_eq!(c.expect("rooms").await["rid"], "ok");
    let mut d = server.connect().await;
    d.send(json!({"type":"rooms","token":"nope"})).await;
    d.expect_error("forbidden").await;
    assert_eq!(d.closed().await, Closed::Frame(1008, "forbidden".into()));
    // A joined connection needs no token for the list.
    let mut e = server.connect().await;
    e.join_with(json!({"type":"join","v":1,"room":"r","name":"E","token":"t1"}))
        .await;
    e.send(json!({"type":"rooms"})).await;
    assert_eq!(e.expect("rooms").await["rooms"][0]["name"], "r");
}

#[tokio::test]
async fn room_list_can_be_disabled() {
    let server = TestServer::start(Config {
        room_list: false,
        ..Config::default()
    })
    .await;
    let mut c = server.connect().await;
    c.send(json!({"type":"rooms","rid":"x"})).await;
    assert_eq!(c.expect_error("forbidden").await["rid"], "x");
    c.send(json!({"type":"ping"})).await;
    c.expect("pong").await;
}

#[tokio::test]
async fn unknown_peer() {
    let server = TestServer::default().await;
    let (mut a, _) = server.join("r", "A").await;
    a.send(json!({"type":"signal","to":"p_nobody","data":{"candidate":null},"rid":"s"}))
        .await;
    let err = a.expect_error("unknown_peer").await;
    assert_eq!(err["rid"], "s");
    a.send(json!({"type":"chat","text":"x","to":a.id})).await;
    a.expect_error("unknown_peer").await;
}

#[tokio::test]
async fn an_oversized_frame_is_too_large_and_closes_with_1009() {
    let server = TestServer::default().await;
    let [mut a, mut b] = server.room("r", ["A", "B"]).await;
    let huge = format!(
        r#"{{"type":"chat","text":"{}","rid":"huge"}}"#,
        "x".repeat(1 << 20)
    );
    a.send_text(&huge).await;
    let err = a.expect_error("too_large").await;
    assert!(
        err.get("rid").is_none(),
        "the frame was not read, so its rid is unknown"
    );
    assert_eq!(
        a.closed().await,
        Closed::Frame(1009, "frame too large".into())
    );
    b.barrier("b").await;
}

#[tokio::test]
async fn rate_limit_answers_once_a_second_then_closes_sustained_abuse() {
    let config = Config {
        abuse_after: Duration::from_millis(1500),
        ..Config::default()
    };
    let server = TestServer::start(config).await;
    let [mut a, mut b] = server.room("r", ["A", "B"]).await;
    // The burst of 256 passes (including the join above).
    for i in 0..255 {
        a.send(json!({"type":"ping","rid":i.to_string()})).await;
    }
    for i in 0..255 {
        assert_eq!(a.expect("pong").await["rid"], i.to_string());
    }
    for _ in 0..20 {
        a.send(json!({"type":"ping"})).await;
    }
    // Most of those were dropped, with exactly one error (a few may refill in time).
    let mut errors = 0;
    a.send(json!({"type":"typing","active":true})).await;
    loop {
        let msg = a.recv().await;
        match msg["type"].as_str() {
            Some("error") => {
                assert_eq!(msg["code"], "rate_limited");
                errors += 1;
            }
            Some("pong") => continue,
            _ => panic!("{msg}"),
        }
        if errors == 1 {
            break;
        }
    }
    // Keep flooding: after `abuse_after` the server closes and removes A.
    let flood = tokio::spawn(async move {
        loop {
            if a.ws
                .send(Message::Text(r#"{"type":"ping"}"#.into()))
                .await
                .is_err()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let left = b.expect("peer_left").await;
    assert_eq!(left["reason"], "kicked");
    flood.await.unwrap();
}

#[tokio::test]
async fn server_full_closes_with_1013() {
    let server = TestServer::start(Config {
        max_connections: 1,
        max_rooms: 1,
        ..Config::default()
    })
    .await;
    let (mut a, _) = server.join("only", "A").await;
    let mut b = Client::connect(&server.url()).await;
    b.expect_error("server_full").await;
    assert_eq!(b.closed().await, Closed::Frame(1013, "server full".into()));
    // Room limit: a second room cannot be created.
    a.send(json!({"type":"leave"})).await;
    a.join("only", "A").await;
    a.send(json!({"type":"leave"})).await;
    let msg = a
        .join_with(json!({"type":"join","v":1,"room":"second","name":"A"}))
        .await;
    // Room "only" is gone after the leave, so "second" fits.
    assert_eq!(msg["type"], "joined");
}

#[tokio::test]
async fn room_limit_is_server_full() {
    let server = TestServer::start(Config {
        max_rooms: 1,
        ..Config::default()
    })
    .await;
    let (_a, _) = server.join("first", "A").await;
    let mut b = server.connect().await;
    let msg = b
        .join_with(json!({"type":"join","v":1,"room":"second","name":"B","rid":"b"}))
        .await;
    assert_eq!(
        (msg["code"].as_str(), msg["rid"].as_str()),
        (Some("server_full"), Some("b"))
    );
    assert_eq!(b.closed().await, Closed::Frame(1013, "server full".into()));
    let (_c, joined) = server.join("first", "C").await;
    assert_eq!(
        joined["room"]["peers"].as_array().unwrap().len(),
        1,
        "joining an existing room still works"
    );
}
