//! Rooms over real sockets: presence, chat, typing, media, calls, ringing,
//! signal relay, room isolation and ordering.

#![allow(clippy::unwrap_used)]

mod common;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn join_presence_and_leave() {
    let server = TestServer::default().await;
    let (mut ada, joined) = server.join("standup", "  Ada ").await;
    assert_eq!(joined["rid"], "j");
    assert_eq!(joined["self"]["name"], "Ada", "names are trimmed");
    assert_eq!(joined["self"]["client"], "browser");
    assert_eq!(
        joined["room"],
        json!({"name":"standup","locked":false,"peers":[],"call":null})
    );
    assert_eq!(joined["resumed"], false);
    assert!(joined["resume"].as_str().unwrap().len() >= 32);
    assert_eq!(
        joined["limits"],
        json!({"max_frame_bytes":1048576,"max_chat_chars":4000,"max_peers":8,"max_attachment_bytes":524288})
    );
    assert_eq!(joined["ice_servers"], json!([]));

    let mut grace = server.connect().await;
    let joined = grace
        .join_with(
            json!({"type":"join","v":1,"room":"standup","name":"Grace","client":"desktop",
                          "media":{"audio":true,"video":false,"screen":false}}),
        )
        .await;
    assert_eq!(joined["room"]["peers"].as_array().unwrap().len(), 1);
    assert_eq!(joined["room"]["peers"][0]["id"], ada.id);
    assert_ne!(grace.id, ada.id);
    let seen = ada.expect("peer_joined").await;
    assert_eq!(seen["peer"]["id"], grace.id);
    assert_eq!(seen["peer"]["client"], "desktop");
    assert_eq!(
        seen["peer"]["media"],
        json!({"audio":true,"video":false,"screen":false})
    );

    grace.send(json!({"type":"leave"})).await;
    let left = ada.expect("peer_left").await;
    assert_eq!(
        left,
        json!({"type":"peer_left","id":grace.id,"reason":"left"})
    );
    // A connection can join again after leaving, with a new id.
    let again = grace.join("standup", "Grace").await;
    assert_ne!(again["self"]["id"], left["id"]);
    ada.expect("peer_joined").await;
}

#[tokio::test]
async fn rooms_are_case_sensitive_and_vanish_when_empty() {
    let server = TestServer::default().await;
    let (mut a, _) = server.join("Team", "A").await;
    let (_b, joined) = server.join("team", "B").await;
    assert_eq!(
        joined["room"]["peers"],
        json!([]),
        "Team and team are different rooms"
    );
    let mut lobby = server.connect().await;
    lobby.send(json!({"type":"rooms","rid":"l"})).await;
    assert_eq!(lobby.expect("rooms").await["rid"], "l");
    lobby
        .rooms_become(json!([{"name":"Team","peers":1,"in_call":0,"locked":false},{"name":"team","peers":1,"in_call":0,"locked":false}]))
        .await;
    a.send(json!({"type":"leave"})).await;
    lobby
        .rooms_become(json!([{"name":"team","peers":1,"in_call":0,"locked":false}]))
        .await;
}

#[tokio::test]
async fn watched_room_list_follows_changes_at_most_once_a_second() {
    let server = TestServer::default().await;
    let mut lobby = server.connect().await;
    lobby.send(json!({"type":"rooms","watch":true})).await;
    assert_eq!(lobby.expect("rooms").await["rooms"], json!([]));

    let (mut a, _) = server.join("standup", "A").await;
    let started = std::time::Instant::now();
    let list = lobby.expect("rooms").await;
    assert!(list.get("rid").is_none());
    assert_eq!(
        list["rooms"],
        json!([{"name":"standup","peers":1,"in_call":0,"locked":false}])
    );
    a.send(json!({"type":"call_join","video":true})).await;
    // Coalesced: the next list comes a second after the previous one at the earliest.
    let list = lobby.expect("rooms").await;
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        list["rooms"],
        json!([{"name":"standup","peers":1,"in_call":1,"locked":false}])
    );

    lobby
        .send(json!({"type":"rooms","watch":false,"rid":"off"}))
        .await;
    assert_eq!(lobby.expect("rooms").await["rid"], "off");
    a.send(json!({"type":"leave"})).await;
    // No list follows: the next thing the lobby gets is its pong.
    lobby.send(json!({"type":"ping","rid":"after"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let next = lobby.recv().await;
    assert_eq!(next["type"], "pong", "{next}");
}

#[tokio::test]
async fn chat_reaches_the_room_and_direct_messages_only_their_recipient() {
    let server = TestServer::default().await;
    let [mut a, mut b, mut c] = server.room("r", ["A", "B", "C"]).await;

    a.send(json!({"type":"chat","text":"hello all","rid":"m1"}))
        .await;
    let echo = a.expect("chat").await;
    assert_eq!(echo["rid"], "m1");
    assert_eq!(echo["from"], a.id);
    assert!(echo["id"].as_str().unwrap().starts_with("m_"));
    assert!(echo["ts"].as_u64().unwrap() > 1_700_000_000_000);
    for other in [&mut b, &mut c] {
        let got = other.expect("chat").await;
        assert_eq!(got["text"], "hello all");
        assert_eq!(got["id"], echo["id"]);
        assert!(
            got.get("rid").is_none(),
            "only the sender's copy carries the rid"
        );
        assert!(got.get("to").is_none());
    }

    a.send(json!({"type":"chat","text":"psst","to":b.id,"rid":"dm"}))
        .await;
    let echo = a.expect("chat").await;
    assert_eq!(
        (echo["to"].as_str(), echo["rid"].as_str()),
        (Some(b.id.as_str()), Some("dm"))
    );
    let got = b.expect("chat").await;
    assert_eq!(got["text"], "psst");
    assert_eq!(got["to"], b.id);
    c.barrier("c1").await;
    a.expect_barrier_of("c1").await;
    b.expect_barrier_of("c1").await;
}

fn png_base64(len: usize) -> String {
    use base64::Engine as _;
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.resize(len, 7);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn image_attachments_round_trip_and_are_bounded() {
    let server = TestServer::default().await;
    let [mut a, mut b] = server.room("r", ["A", "B"]).await;

    let data = png_base64(300 * 1024);
    let attachment = json!({"mime":"image/png","name":"cat.png","data":data});
    a.send(json!({"type":"chat","text":"","attachment":attachment,"rid":"img"}))
        .await;
    assert_eq!(a.expect("chat").await["rid"], "img");
    let got = b.expect("chat").await;
    assert_eq!(
        got["attachment"], attachment,
        "the image arrives byte for byte"
    );
    assert_eq!(got["text"], "");

    let big = json!({"mime":"image/png","name":"big.png","data":png_base64(512 * 1024 + 1)});
    a.send(json!({"type":"chat","text":"big","attachment":big,"rid":"big"}))
        .await;
    let err = a.expect_error("too_large").await;
    assert_eq!(err["rid"], "big");
    let svg = json!({"mime":"image/svg+xml","name":"x.svg","data":"PHN2Zz4="});
    a.send(json!({"type":"chat","text":"svg","attachment":svg}))
        .await;
    a.expect_error("bad_message").await;
    let fake = json!({"mime":"image/jpeg","name":"x.jpg","data":png_base64(100)});
    a.send(json!({"type":"chat","text":"fake","attachment":fake}))
        .await;
    a.expect_error("bad_message").await;
    // Still connected, nothing delivered.
    a.barrier("after").await;
    b.expect_barrier_of("after").await;
}

#[tokio::test]
async fn attachments_can_be_disabled() {
    let server = TestServer::start(huddle_server::Config {
        attachments: false,
        ..Default::default()
    })
    .await;
    let (mut a, joined) = server.join("r", "A").await;
    assert_eq!(joined["limits"]["max_attachment_bytes"], 0);
    let attachment = json!({"mime":"image/png","name":"cat.png","data":png_base64(64)});
    a.send(json!({"type":"chat","text":"x","attachment":attachment,"rid":"a"}))
        .await;
    let err = a.expect_error("forbidden").await;
    assert_eq!(err["rid"], "a");
    a.barrier("still open").await;
}

#[tokio::test]
async fn typing_and_media_state() {
    let server = TestServer::default().await;
    let [mut a, mut b, mut c] = server.room("r", ["A", "B", "C"]).await;

    a.send(json!({"type":"typing","active":true})).await;
    for other in [&mut b, &mut c] {
        assert_eq!(
            other.expect("typing").await,
            json!({"type":"typing","from":a.id,"active":true})
        );
    }
    a.send(json!({"type":"typing","active":false,"to":c.id}))
        .await;
    assert_eq!(
        c.expect("typing").await,
        json!({"type":"typing","from":a.id,"active":false,"to":c.id})
    );

    a.send(json!({"type":"media","audio":true,"video":true,"screen":true}))
        .await;
    for other in [&mut b, &mut c] {
        let update = other.expect("peer_updated").await;
        assert_eq!(update["peer"]["id"], a.id);
        assert_eq!(
            update["peer"]["media"],
            json!({"audio":true,"video":true,"screen":true})
        );
    }
    // The directed typing never reached B, and A got nothing of its own.
    a.barrier("a").await;
    b.expect_barrier_of("a").await;
    c.expect_barrier_of("a").await;
    b.barrier("b").await;
}

/// Huddle's addition to v1: a raised hand is member state (`peer_updated`,
/// kept for joiners, lowered with the call); a reaction passes to the others
/// and is one of a fixed set.
#[tokio::test]
async fn hands_and_reactions() {
    let server = TestServer::default().await;
    let [mut a, mut b] = server.room("r", ["A", "B"]).await;

    a.send(json!({"type":"call_join","video":false})).await;
    a.expect("call_joined").await;
    a.expect("call_started").await;
    b.expect("call_started").await;
    b.expect("peer_updated").await;

    a.send(json!({"type":"hand","raised":true})).await;
    let update = b.expect("peer_updated").await;
    assert_eq!(update["peer"]["id"], a.id);
    assert_eq!(update["peer"]["hand"], true);
    // Raising it again changes nothing and tells nobody.
    a.send(json!({"type":"hand","raised":true})).await;

    // A joiner sees the hand in the member list.
    let (mut c, joined) = server.join("r", "C").await;
    b.expect("peer_joined").await;
    a.expect("peer_joined").await;
    let a_seen = joined["room"]["peers"]
        .as_array()
        .and_then(|peers| peers.iter().find(|p| p["id"] == a.id))
        .cloned()
        .expect("A is listed");
    assert_eq!(a_seen["hand"], true);

    b.send(json!({"type":"reaction","emoji":"\u{1F44F}"})).await;
    for other in [&mut a, &mut c] {
        assert_eq!(
            other.expect("reaction").await,
            json!({"type":"reaction","from":b.id,"emoji":"\u{1F44F}"})
        );
    }
    // Anything but the six is refused, and reaches nobody.
    for emoji in ["hello", "", "\u{1F44D}\u{1F44D}", "\u{2764}"] {
        b.send(json!({"type":"reaction","emoji":emoji})).await;
        b.expect_error("bad_message").await;
    }
    b.send(json!({"type":"hand","raised":"yes"})).await;
    b.expect_error("bad_message").await;

    // Leaving the call lowers the hand, in the same update.
    a.send(json!({"type":"call_leave"})).await;
    for other in [&mut b, &mut c] {
        let update = other.expect("peer_updated").await;
        assert_eq!(update["peer"]["in_call"], false);
        assert!(update["peer"].get("hand").is_none(), "{update}");
        other.expect("call_ended").await;
    }
    a.expect("call_ended").await;
    // Nothing else reached anyone: not A's own updates, not the refused reactions.
    a.barrier("a").await;
    b.expect_barrier_of("a").await;
    c.expect_barrier_of("a").await;
    b.barrier("b").await;
    c.expect_barrier_of("b").await;
}

#[tokio::test]
async fn call_lifecycle() {
    let server = TestServer::default().await;
    let [mut a, mut b, mut c] = server.room("r", ["A", "B", "C"]).await;

    a.send(json!({"type":"call_join","video":true})).await;
    assert_eq!(a.expect("call_joined").await["peers"], json!([]));
    let started = a.expect("call_started").await;
    assert_eq!(started["by"], a.id);
    assert_eq!(started["video"], true);
    for other in [&mut b, &mut c] {
        assert_eq!(other.expect("call_started").await, started);
        let update = other.expect("peer_updated").await;
        assert_eq!(
            (
                update["peer"]["id"].as_str(),
                update["peer"]["in_call"].as_bool()
            ),
            (Some(a.id.as_str()), Some(true))
        );
    }

    b.send(json!({"type":"call_join","video":false})).await;
    assert_eq!(b.expect("call_joined").await["peers"], json!([a.id]));
    assert_eq!(a.expect("peer_updated").await["peer"]["id"], b.id);
    assert_eq!(c.expect("peer_updated").await["peer"]["id"], b.id);

    // A late joiner sees the running call in `joined`.
    let (mut d, joined) = server.join("r", "D").await;
    assert_eq!(joined["room"]["call"]["peers"], json!([a.id, b.id]));
    assert_eq!(joined["room"]["call"]["started_at"], started["started_at"]);
    for m in [&mut a, &mut b, &mut c] {
        m.expect("peer_joined").await;
    }

    // call_join again: answered, changes nothing.
    b.send(json!({"type":"call_join","video":true})).await;
    assert_eq!(b.expect("call_joined").await["peers"], json!([a.id]));

    a.send(json!({"type":"call_leave"})).await;
    for m in [&mut b, &mut c, &mut d] {
        let update = m.expect("peer_updated").await;
        assert_eq!(update["peer"]["in_call"], false);
    }
    b.send(json!({"type":"call_leave"})).await;
    let ended = b.expect("call_ended").await;
    assert!(ended["duration_ms"].as_u64().is_some());
    for m in [&mut a, &mut c, &mut d] {
        m.expect("peer_updated").await;
        assert_eq!(m.expect("call_ended").await, ended);
    }
    // The next call starts afresh.
    c.send(json!({"type":"call_join","video":false})).await;
    assert_eq!(c.expect("call_joined").await["peers"], json!([]));
    assert_eq!(c.expect("call_started").await["by"], c.id);
}

#[tokio::test]
async fn leaving_the_room_ends_the_call_for_the_last_member() {
    let server = TestServer::default().await;
    let [mut a, mut b] = server.room("r", ["A", "B"]).await;
    a.send(json!({"type":"call_join","video":true})).await;
    a.expect("call_joined").await;
    a.expect("call_started").await;
    b.expect("call_started").await;
    b.expect("peer_updated").await;
    a.send(json!({"type":"leave"})).await;
    assert_eq!(b.expect("peer_left").await["reason"], "left");
    b.expect("call_ended").await;
}

#[tokio::test]
async fn ringing() {
    let server = TestServer::default().await;
    let [mut a, mut b, mut c] = server.room("r", ["A", "B", "C"]).await;
    a.send(json!({"type":"ring","to":b.id,"video":true})).await;
    assert_eq!(
        b.expect("ring").await,
        json!({"type":"ring","from":a.id,"video":true})
    );
    b.send(json!({"type":"ring_reply","to":a.id,"accept":false}))
        .await;
    assert_eq!(
        a.expect("ring_reply").await,
        json!({"type":"ring_reply","from":b.id,"accept":false})
    );
    a.send(json!({"type":"ring","to":a.id,"video":true,"rid":"self"}))
        .await;
    assert_eq!(a.expect_error("unknown_peer").await["rid"], "self");
    c.barrier("c").await;
    a.expect_barrier_of("c").await;
    b.expect_barrier_of("c").await;
}

#[tokio::test]
async fn signal_is_relayed_within_a_room_and_never_across() {
    let server = TestServer::default().await;
    let (mut a, _) = server.join("one", "A").await;
    let (mut b, _) = server.join("one", "B").await;
    let (mut x, _) = server.join("two", "X").await;
    a.expect("peer_joined").await;

    let offer = json!({"sdp":{"type":"offer","sdp":"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"}});
    a.send(json!({"type":"signal","to":b.id,"data":offer}))
        .await;
    assert_eq!(
        b.expect("signal").await,
        json!({"type":"signal","from":a.id,"data":offer})
    );
    let end = json!({"candidate":null});
    b.send(json!({"type":"signal","to":a.id,"data":end})).await;
    assert_eq!(
        a.expect("signal").await,
        json!({"type":"signal","from":b.id,"data":end})
    );

    // Across rooms: every addressed message is refused and nothing arrives.
    for msg in [
        json!({"type":"signal","to":a.id,"data":offer,"rid":"s"}),
        json!({"type":"chat","text":"hi","to":a.id,"rid":"s"}),
        json!({"type":"ring","to":a.id,"video":false,"rid":"s"}),
        json!({"type":"ring_reply","to":a.id,"accept":true,"rid":"s"}),
        json!({"type":"typing","active":true,"to":a.id,"rid":"s"}),
    ] {
        x.send(msg).await;
        assert_eq!(x.expect_error("unknown_peer").await["rid"], "s");
    }
    x.send(json!({"type":"chat","text":"room two only"})).await;
    x.expect("chat").await;
    a.barrier("a").await;
    b.expect_barrier_of("a").await;
}

#[tokio::test]
async fn a_thousand_signals_arrive_in_order() {
    // Ordering, not rate limits, is under test here.
    let config = huddle_server::Config {
        msg_rate: 1e6,
        msg_burst: 1e6,
        ..Default::default()
    };
    let server = TestServer::start(config).await;
    let (mut a, _) = server.join("r", "A").await;
    let (b, _) = server.join("r", "B").await;
    a.expect("peer_joined").await;
    let to = b.id.clone();
    let sender = tokio::spawn(async move {
        for i in 0..1000 {
            let cand = format!(
                "candidate:{i} 1 udp 2122260223 192.0.2.1 {} typ host",
                10000 + i
            );
            a.send(json!({"type":"signal","to":to,"data":{"candidate":{"candidate":cand,"sdpMid":"0","sdpMLineIndex":0}}}))
                .await;
        }
        a
    });
    let mut b2 = b;
    for i in 0..1000 {
        let msg = b2.expect("signal").await;
        let cand = msg["data"]["candidate"]["candidate"].as_str().unwrap();
        assert!(
            cand.starts_with(&format!("candidate:{i} ")),
            "message {i} was {cand}"
        );
    }
    let mut a = sender.await.unwrap();
    a.barrier("done").await;
}
