//! Attacks on the server by strangers and room members, performed over real
//! sockets against the real server. Each test prints one `attack:` line
//! (what was tried | what must happen | what was observed) that
//! `cargo xtask attack` gathers into a table.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use common::{Client, Closed, TestServer};
use futures_util::{SinkExt, StreamExt};
use huddle_server::Config;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// How long the password guesser keeps trying.
const ATTACK_FOR: Duration = Duration::from_secs(60);

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The next message, or how the server closed the connection.
async fn next_or_close(c: &mut Client) -> Result<serde_json::Value, Closed> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), c.ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Ok(serde_json::from_str(&text).unwrap()),
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                return Err(Closed::Frame(
                    u16::from(frame.code),
                    frame.reason.to_string(),
                ))
            }
            Ok(Some(Ok(Message::Close(None)) | Err(_)) | None) => return Err(Closed::NoFrame),
            Ok(Some(Ok(_))) => continue,
            Err(_) => panic!("no answer within 30 s"),
        }
    }
}

/// Sends a WebSocket ping every 200 ms until the server closes `c` (at most
/// `limit`); how it closed and after how long.
async fn ping_until_closed(c: &mut Client, limit: Duration) -> (Closed, Duration) {
    let start = Instant::now();
    let closed = loop {
        tokio::select! {
            frame = c.ws.next() => match frame {
                Some(Ok(Message::Close(Some(f)))) => break Closed::Frame(u16::from(f.code), f.reason.to_string()),
                Some(Ok(_)) => continue,
                _ => break Closed::NoFrame,
            },
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                assert!(start.elapsed() < limit, "still open after {limit:?}");
                c.ws.send(Message::Ping(Default::default())).await.unwrap();
            }
        }
    };
    (closed, start.elapsed())
}

fn report(attack: &str, expected: &str, observed: &str) {
    println!("attack: {attack} | {expected} | {observed}");
}

fn join_msg(room: &str, name: &str, password: &str) -> serde_json::Value {
    json!({"type":"join","v":1,"room":room,"name":name,"password":password})
}

// On paused time: the server runs in this test's runtime, so its waits
// and the attacker's pass without a minute on the wall clock (the
// clock moves on only while every task, and every password hash on the
// blocking pool, is idle).
#[tokio::test(start_paused = true)]
async fn password_guessing_is_slowed_per_address_and_the_right_password_elsewhere_still_works() {
    let server = TestServer::start(Config::default()).await;
    let mut owner = Client::connect_from(server.addr, ip("127.0.0.2")).await;
    let joined = owner
        .join_with(join_msg("vault", "Owner", "correct horse battery"))
        .await;
    assert_eq!(joined["type"], "joined", "{joined}");

    // The attacker guesses for a minute as fast as the server lets it: it
    // reconnects whenever a socket is closed, and after a refusal waits
    // exactly as long as it was told to (the best it can do).
    let attacker = async {
        let mut c = Client::connect_from(server.addr, ip("127.0.0.1")).await;
        let start = Instant::now();
        let mut answered = Vec::new();
        let (mut sockets, mut refusals) = (1, 0);
        let mut first_refusal = None;
        while start.elapsed() < ATTACK_FOR {
            let asked = Instant::now();
            c.send(join_msg(
                "vault",
                "Mallory",
                &format!("guess {}", answered.len()),
            ))
            .await;
            let answer = match next_or_close(&mut c).await {
                Ok(answer) => answer,
                Err(Closed::Frame(1008, reason)) if reason == "join a room first" => {
                    c = Client::connect_from(server.addr, ip("127.0.0.1")).await;
                    sockets += 1;
                    continue;
                }
                Err(other) => panic!("closed: {other:?}"),
            };
            match answer["code"].as_str() {
                Some("bad_password") => answered.push(asked.elapsed()),
                Some("rate_limited") => {
                    refusals += 1;
                    first_refusal.get_or_insert((answered.len(), start.elapsed()));
                    let closed = c.closed().await;
                    assert_eq!(
                        closed,
                        Closed::Frame(1008, "too many wrong passwords".into())
                    );
                    let after: u64 = answer["message"]
                        .as_str()
                        .and_then(|m| m.split("try again in ").nth(1))
                        .and_then(|rest| rest.split(' ').next())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("no wait in {answer}"));
                    let left = ATTACK_FOR.saturating_sub(start.elapsed());
                    tokio::time::sleep(Duration::from_secs(after).min(left)).await;
                    c = Client::connect_from(server.addr, ip("127.0.0.1")).await;
                    sockets += 1;
                }
                _ => panic!("unexpected answer {answer}"),
            }
        }
        (start.elapsed(), answered, first_refusal, refusals, sockets)
    };
    // Meanwhile a member with the link (another address) joins at once.
    let guest = async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        let mut g = Client::connect_from(server.addr, ip("127.0.0.3")).await;
        let asked = Instant::now();
        let answer = g
            .join_with(join_msg("vault", "Grace", "correct horse battery"))
            .await;
        (answer, asked.elapsed())
    };
    let ((took, answered, first_refusal, refusals, sockets), (guest_answer, guest_took)) =
        tokio::join!(attacker, guest);
    assert_eq!(guest_answer["type"], "joined", "{guest_answer}");
    assert!(guest_took < Duration::from_secs(1), "{guest_took:?}");
    // Five free (and a sixth at once), then 1, 2, 4, 8 s between checks,
    // then refused: the 11th check comes after 31 s, the 12th after 63 s.
    let (refused_after, refused_at) = first_refusal.expect("never refused");
    assert_eq!(refused_after, 10, "{answered:?}");
    assert!(refused_at >= Duration::from_secs(15), "{refused_at:?}");
    assert!(
        answered[..6]
            .iter()
            .all(|t| *t < Duration::from_millis(500)),
        "{answered:?}"
    );
    let guesses = answered.len();
    assert!(
        (10..=12).contains(&guesses),
        "{guesses} guesses in {took:?}: {answered:?}"
    );
    // So 200 guesses in a row take far more than a minute.
    assert!(guesses < 200 && took >= ATTACK_FOR);

    // The address is not locked out for good: the right password from it
    // gets in once its next slot comes (held until then, not refused).
    let mut again = Client::connect_from(server.addr, ip("127.0.0.1")).await;
    let asked = Instant::now();
    let back = again
        .join_with(join_msg("vault", "Mallory", "correct horse battery"))
        .await;
    let slot_wait = asked.elapsed();
    assert_eq!(back["type"], "joined", "{back}");
    report(
        "online password guessing from one address, for a minute",
        "5 free, then doubling waits, rate_limited + close beyond 10 s; others unaffected; 200 guesses take ≥ 60 s",
        &format!(
            "{guesses} guesses checked in {:.0} s ({sockets} sockets, {refusals} refusals; the first \
             after 10 guesses and {:.1} s); the right password from another address joined in {} ms, \
             from the guessing address at its next slot ({:.1} s later)",
            took.as_secs_f64(),
            refused_at.as_secs_f64(),
            guest_took.as_millis(),
            slot_wait.as_secs_f64()
        ),
    );
}

#[tokio::test]
async fn an_unjoined_socket_that_only_pings_is_closed() {
    let config = Config {
        tokens: vec!["letmein".into()],
        join_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let server = TestServer::start(config).await;
    let mut squatter = server.connect().await;
    let start = Instant::now();
    // The watcher that lists rooms with its token in time stays.
    let mut lister = server.connect().await;
    lister.send(json!({"type":"rooms","token":"letmein"})).await;
    lister.expect("rooms").await;
    // The squatter pings every 200 ms until the server closes it.
    let (closed, _) = ping_until_closed(&mut squatter, Duration::from_secs(10)).await;
    let held = start.elapsed();
    assert_eq!(closed, Closed::Frame(1008, "join a room first".into()));
    assert!(
        held >= Duration::from_millis(1900) && held < Duration::from_secs(4),
        "{held:?}"
    );
    lister.send(json!({"type":"ping","rid":"p"})).await;
    assert_eq!(lister.expect("pong").await["rid"], "p");
    report(
        "unjoined socket kept open with WebSocket pings",
        "closed 1008 at the join deadline (10 s by default)",
        &format!(
            "closed 1008 after {:.1} s (deadline 2 s in this test); a lister stays",
            held.as_secs_f64()
        ),
    );
}

#[tokio::test]
async fn a_ping_flood_is_rate_limited_like_messages() {
    let config = Config {
        abuse_after: Duration::from_secs(1),
        ..Config::default()
    };
    let server = TestServer::start(config).await;
    let (mut flooder, _) = server.join("r", "Flood").await;
    let start = Instant::now();
    let mut sent = 0u32;
    while start.elapsed() < Duration::from_secs(8) {
        if flooder
            .ws
            .send(Message::Ping(Default::default()))
            .await
            .is_err()
        {
            break;
        }
        sent += 1;
    }
    let closed = flooder.closed().await;
    assert_eq!(closed, Closed::Frame(1008, "rate limit exceeded".into()));
    report(
        "flood of WebSocket pings from a member",
        "counted by the rate limit; closed 1008 when sustained",
        &format!(
            "closed 1008 after {sent} pings in {:.1} s",
            start.elapsed().as_secs_f64()
        ),
    );
}

#[tokio::test]
async fn one_address_cannot_fill_the_room_table_with_abandoned_rooms() {
    let config = Config {
        max_room_peers: 64,
        max_rooms_per_ip: 16,
        max_connections_per_ip: 40,
        resume_grace: Duration::from_secs(60),
        ..Config::default()
    };
    let server = TestServer::start(config).await;
    let attacker = ip("127.0.0.1");
    // Connect, join a fresh room, drop: each room lives on for the grace period.
    let mut refused = None;
    for i in 0..17 {
        let mut c = Client::connect_from(server.addr, attacker).await;
        let answer = c
            .join_with(json!({"type":"join","v":1,"room":format!("junk-{i}"),"name":"x"}))
            .await;
        if answer["type"] != "joined" {
            refused = Some((i, answer));
            break;
        }
        c.drop_connection();
    }
    let (at, answer) = refused.expect("17 abandoned rooms from one address were all created");
    assert_eq!(at, 16);
    assert_eq!(answer["code"], "server_full", "{answer}");
    // The same address may still join an existing room; others create rooms.
    let mut c = Client::connect_from(server.addr, attacker).await;
    assert_eq!(
        c.join_with(json!({"type":"join","v":1,"room":"junk-0","name":"y"}))
            .await["type"],
        "joined"
    );
    let mut other = Client::connect_from(server.addr, ip("127.0.0.2")).await;
    assert_eq!(other.join("fresh", "Grace").await["type"], "joined");

    // Members held (connected or in grace) per address are capped too.
    let mut members = 17; // the 16 rooms' abandoned members + the one in junk-0
    let mut capped = None;
    while members < 45 {
        let mut c = Client::connect_from(server.addr, attacker).await;
        let answer = c
            .join_with(json!({"type":"join","v":1,"room":"junk-1","name":"z"}))
            .await;
        if answer["type"] != "joined" {
            capped = Some(answer);
            break;
        }
        members += 1;
        c.drop_connection();
    }
    let capped = capped.expect("no cap on members held per address");
    assert_eq!(members, 40, "the cap is --max-connections-per-ip");
    assert_eq!(capped["code"], "server_full", "{capped}");
    report(
        "room-table exhaustion: connect, join a new room, drop (repeat)",
        "rooms and members held per address capped; others unaffected",
        &format!(
            "the 17th room was refused server_full; members capped at {members}; \
             another address created a room"
        ),
    );
}

#[tokio::test]
async fn a_ring_or_call_toggle_flood_alerts_the_victim_three_times() {
    let server = TestServer::default().await;
    let [mut mallory, mut victim] = server.room("lobby", ["Mallory", "Victim"]).await;
    let victim_id = victim.id.clone();
    for _ in 0..50 {
        mallory
            .send(json!({"type":"ring","to":victim_id,"video":true}))
            .await;
    }
    let mut refused = 0;
    for _ in 0..47 {
        let answer = mallory.expect_error("rate_limited").await;
        assert!(answer["message"].as_str().unwrap().contains("ring"));
        refused += 1;
    }
    // Calls started and ended in a loop: only the first three starts reach anyone.
    for _ in 0..20 {
        mallory.send(json!({"type":"call_join","video":true})).await;
        mallory.send(json!({"type":"call_leave"})).await;
    }
    mallory.send(json!({"type":"chat","text":"done"})).await;
    let mut rings = 0;
    let mut starts = 0;
    loop {
        let msg = victim.recv().await;
        match msg["type"].as_str() {
            Some("ring") => rings += 1,
            Some("call_started") => starts += 1,
            Some("chat") if msg["text"] == "done" => break,
            _ => {}
        }
    }
    assert_eq!((rings, starts), (3, 3));
    report(
        "ring flood and call start/leave toggling at one member",
        "rings and call starts per caller: 3 in a row, then 1 per 10 s",
        &format!("50 rings → {rings} delivered ({refused} rate_limited); 20 call toggles → {starts} call_started"),
    );
}

#[tokio::test]
async fn a_message_left_unfinished_behind_pings_is_closed() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    let config = Config {
        ping_interval: Duration::from_millis(500),
        message_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let server = TestServer::start(config).await;
    let (mut honest, _) = server.join("r", "Honest").await;
    let fragment = |text: &str, first: bool, last: bool| {
        let opcode = if first {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        Message::Frame(Frame::message(text.as_bytes().to_vec(), opcode, last))
    };
    // A message in fragments with a ping between them is fine.
    honest
        .ws
        .send(fragment(r#"{"type":"chat","text":"in "#, true, false))
        .await
        .unwrap();
    honest
        .ws
        .send(Message::Ping(Default::default()))
        .await
        .unwrap();
    honest
        .ws
        .send(fragment(r#"two parts","rid":"f"}"#, false, true))
        .await
        .unwrap();
    assert_eq!(honest.expect("chat").await["text"], "in two parts");

    // One that never ends, kept alive by pings, is not.
    let (mut holder, _) = server.join("r", "Holder").await;
    holder
        .ws
        .send(fragment(r#"{"type":"chat","text":""#, true, false))
        .await
        .unwrap();
    let (closed, held) = ping_until_closed(&mut holder, Duration::from_secs(10)).await;
    assert_eq!(closed, Closed::Frame(1008, "message not finished".into()));
    assert!(held >= Duration::from_secs(2), "{held:?}");
    report(
        "a fragmented message never finished, kept open with pings",
        "closed 1008 once the message is older than its limit (10 s by default)",
        &format!(
            "closed 1008 after {:.1} s (limit 2 s, checked every 0.5 s in this test); a message in two fragments with a ping between was delivered",
            held.as_secs_f64()
        ),
    );
}

#[tokio::test]
async fn locked_rooms_made_in_a_loop_cannot_spend_the_servers_cpu() {
    let server = TestServer::start(Config::default()).await;
    let mut c = Client::connect_from(server.addr, ip("127.0.0.1")).await;
    let start = Instant::now();
    let (mut hashed, mut refused) = (0, 0);
    // Create a locked room, leave it (the room goes), again: each costs a
    // slow hash of its password.
    for i in 0..40 {
        let answer = c
            .join_with(join_msg(&format!("burn-{i}"), "Mallory", "a password"))
            .await;
        match answer["type"].as_str() {
            Some("joined") => {
                hashed += 1;
                c.send(json!({"type":"leave"})).await;
            }
            _ => {
                assert_eq!(answer["code"], "rate_limited", "{answer}");
                refused += 1;
            }
        }
    }
    let took = start.elapsed();
    // A burst of 10, then one a second.
    assert!(
        hashed <= 10 + took.as_secs() as usize + 1,
        "{hashed} hashes in {took:?}"
    );
    assert!(refused > 0);
    // Another address is not held up.
    let mut other = Client::connect_from(server.addr, ip("127.0.0.2")).await;
    let joined = other.join_with(join_msg("own-room", "Grace", "hers")).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    report(
        "locked rooms created and left in a loop (each a slow password hash)",
        "a burst of 10 hashes per address, then 1 a second; others unaffected",
        &format!(
            "{hashed} hashed and {refused} refused rate_limited in {:.1} s; another address joined its locked room",
            took.as_secs_f64()
        ),
    );
}
