//! TURN REST credentials: checked against an independent HMAC (Python's
//! standard library) and accepted by a real coturn.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::TestServer;
use huddle_server::config::TurnConfig;
use huddle_server::Config;
use huddle_testkit::Coturn;
use serde_json::json;

fn turn_config(port: u16, secret: &str) -> Config {
    Config {
        stun_urls: vec![format!("stun:127.0.0.1:{port}")],
        turn: Some(TurnConfig {
            urls: vec![format!("turn:127.0.0.1:{port}?transport=udp")],
            secret: secret.into(),
            ttl: Duration::from_secs(3600),
        }),
        ..Config::default()
    }
}

/// base64(HMAC-SHA1(secret, username)) computed by Python, not by us.
fn independent_hmac(secret: &str, username: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import base64,hashlib,hmac,sys; print(base64.b64encode(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha1).digest()).decode())",
            secret,
            username,
        ])
        .output()
        .expect("python3 runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The ICE servers a member gets for a call: `call_joined`'s.
async fn call_ice_servers(c: &mut common::Client) -> serde_json::Value {
    c.send(json!({"type":"call_join","video":true})).await;
    let joined = c.expect("call_joined").await;
    joined["ice_servers"].clone()
}

#[tokio::test]
async fn a_call_carries_turn_rest_credentials() {
    let server = TestServer::start(turn_config(3478, "sh4red secret")).await;
    let (mut c, joined) = server.join("r", "A").await;
    let servers = call_ice_servers(&mut c).await;
    let servers = servers.as_array().unwrap();
    assert_eq!(servers[0], json!({"urls":["stun:127.0.0.1:3478"]}));
    let turn = &servers[1];
    assert_eq!(turn["urls"], json!(["turn:127.0.0.1:3478?transport=udp"]));
    let username = turn["username"].as_str().unwrap();
    let (expiry, peer) = username.split_once(':').unwrap();
    assert_eq!(peer, joined["self"]["id"]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expiry: u64 = expiry.parse().unwrap();
    assert!(
        (now + 3590..=now + 3610).contains(&expiry),
        "expiry {expiry} vs now {now}"
    );
    assert_eq!(
        turn["credential"],
        independent_hmac("sh4red secret", username)
    );
}

#[tokio::test]
async fn turn_is_handed_only_to_callers_or_token_holders() {
    // An open server: joining gives STUN only; the call gives TURN; a
    // member resuming in its call gets TURN in `joined` again.
    let server = TestServer::start(turn_config(3478, "s")).await;
    let (mut c, joined) = server.join("r", "Lurker").await;
    assert_eq!(
        joined["ice_servers"],
        json!([{"urls":["stun:127.0.0.1:3478"]}])
    );
    let servers = call_ice_servers(&mut c).await;
    assert_eq!(servers.as_array().unwrap().len(), 2, "{servers}");
    let resume = joined["resume"].as_str().unwrap().to_owned();
    c.drop_connection();
    let mut again = server.connect().await;
    let rejoined = again
        .join_with(json!({"type":"join","v":1,"room":"r","name":"Lurker","resume":resume}))
        .await;
    assert_eq!(rejoined["resumed"], true, "{rejoined}");
    assert!(
        rejoined["ice_servers"][1]["username"].is_string(),
        "{rejoined}"
    );
    // With access tokens every member is known: TURN comes with `joined`.
    let config = Config {
        tokens: vec!["t".into()],
        ..turn_config(3478, "s")
    };
    let server = TestServer::start(config).await;
    let mut c = server.connect().await;
    let joined = c
        .join_with(json!({"type":"join","v":1,"room":"r","name":"A","token":"t"}))
        .await;
    assert!(joined["ice_servers"][1]["username"].is_string(), "{joined}");
}

fn allocate(port: u16, username: &str, credential: &str) -> (bool, String) {
    let out = Command::new("turnutils_uclient")
        .args([
            "-u",
            username,
            "-w",
            credential,
            "-p",
            &port.to_string(),
            "-e",
            "127.0.0.1",
            "-n",
            "1",
            "-m",
            "1",
        ])
        .args(["-y", "-c", "127.0.0.1"])
        .stdin(Stdio::null())
        .output()
        .expect("turnutils_uclient (Debian package coturn) must be installed");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test]
async fn coturn_accepts_the_credentials_we_issue() {
    let coturn = Coturn::start(0).await;
    let (port, secret) = (coturn.port, coturn.secret.as_str());

    let server = TestServer::start(turn_config(port, secret)).await;
    let (mut c, _) = server.join("r", "A").await;
    let servers = call_ice_servers(&mut c).await;
    let turn = &servers[1];
    let (username, credential) = (
        turn["username"].as_str().unwrap(),
        turn["credential"].as_str().unwrap(),
    );
    let (ok, log) = allocate(port, username, credential);
    assert!(
        ok && log.contains("tot_recv_bytes ~ 200"),
        "coturn refused our credentials:\n{log}"
    );
    // The check can fail: a wrong credential is refused.
    let (ok, _) = allocate(port, username, "d3JvbmcgY3JlZGVudGlhbA==");
    assert!(!ok, "coturn accepted a wrong credential");
}
