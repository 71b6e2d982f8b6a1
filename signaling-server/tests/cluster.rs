//! Failures of a cluster (instances sharing rooms through a real Redis):
//! an instance killed under its rooms and members, and Redis itself lost
//! and back. The rest of the protocol suite runs against a cluster too
//! (`HUDDLE_TEST_CLUSTER=1`, see `common`).

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{get, Client, Closed};
use huddle_server::metrics::Metrics;
use huddle_server::Config;
use huddle_testkit::Cluster;
use serde_json::{json, Value};

/// Longer than the suite's usual wait: noticing a dead instance takes its
/// heartbeat's lifetime (3 s) and a check.
const FAILOVER: Duration = Duration::from_secs(15);

fn config(grace: Duration) -> Config {
    Config {
        resume_grace: grace,
        ..Config::default()
    }
}

async fn join_at(url: &str, room: &str, name: &str) -> (Client, Value) {
    let mut c = Client::connect(url).await;
    let joined = c.join(room, name).await;
    (c, joined)
}

fn token(joined: &Value) -> String {
    joined["resume"].as_str().unwrap().to_owned()
}

/// Resumes `name` at `url` with `token`; retries while the instance cannot
/// serve the room yet (the backplane says so with `server_full`).
async fn resume_at(url: &str, room: &str, name: &str, token: &str) -> (Client, Value) {
    let deadline = Instant::now() + FAILOVER;
    loop {
        let mut c = Client::connect(url).await;
        c.send(json!({"type":"join","v":1,"room":room,"name":name,"resume":token,"rid":"again"}))
            .await;
        // A join waits while the room's old instance may still answer.
        let answer = c.recv_within(FAILOVER).await;
        if answer["type"] == "joined" {
            c.id = answer["self"]["id"].as_str().unwrap().to_owned();
            return (c, answer);
        }
        assert_eq!(answer["code"], "server_full", "{answer}");
        assert!(Instant::now() < deadline, "no resume at {url}: {answer}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `condition` holds of `metrics`.
async fn until(what: &str, metrics: &Arc<Metrics>, condition: impl Fn(&Metrics) -> bool) {
    let deadline = Instant::now() + FAILOVER;
    while !condition(metrics) {
        assert!(Instant::now() < deadline, "not within {FAILOVER:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every instance answers `/healthz` with `status`.
async fn health_is(cluster: &Cluster, status: &str) {
    let deadline = Instant::now() + FAILOVER;
    for instance in &cluster.instances {
        loop {
            let answer = get(instance.addr, "/healthz").await;
            if answer.starts_with(&format!("HTTP/1.1 {status}")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: /healthz still answers {answer:?}",
                instance.addr
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_s_members_resume_elsewhere_or_leave_after_their_grace() {
    let mut cluster = Cluster::start(2, config(Duration::from_secs(6))).await;
    let (a, b) = (cluster.instances[0].url(), cluster.instances[1].url());
    // The room is held by A, where it was made. Ada and Xavier are on A,
    // Grace on B.
    let (mut ada, ada_joined) = join_at(&a, "r", "Ada").await;
    let (mut grace, grace_joined) = join_at(&b, "r", "Grace").await;
    ada.expect("peer_joined").await;
    let (mut xavier, _) = join_at(&a, "r", "Xavier").await;
    ada.expect("peer_joined").await;
    grace.expect("peer_joined").await;
    assert_eq!(
        cluster.instances[0].metrics.rooms.load(Ordering::Relaxed),
        1
    );
    assert_eq!(
        cluster.instances[1].metrics.rooms.load(Ordering::Relaxed),
        0
    );
    ada.send(json!({"type":"call_join","video":true})).await;
    ada.expect("call_joined").await;
    ada.expect("call_started").await;
    grace.expect("call_started").await;
    grace.expect("peer_updated").await;
    xavier.expect("call_started").await;
    xavier.expect("peer_updated").await;
    let xavier_id = xavier.id.clone();

    tokio::task::block_in_place(|| cluster.instances[0].kill());
    drop(xavier); // Xavier's socket is gone with A; he never comes back.

    // B notices A's death: Grace, linked to A's room, is told to reconnect…
    assert_eq!(
        grace.closed_within(FAILOVER).await,
        Closed::Frame(1013, "reconnect".into()),
        "a member of a dead instance's room is told to reconnect"
    );
    // …and resumes on B, which takes the room over from what A stored.
    let (mut grace, joined) = resume_at(&b, "r", "Grace", &token(&grace_joined)).await;
    assert_eq!(joined["resumed"], true, "{joined}");
    assert_eq!(joined["self"]["id"], grace_joined["self"]["id"]);
    assert_eq!(
        joined["room"]["call"]["peers"],
        json!([ada_joined["self"]["id"]])
    );
    let b_metrics = cluster.instances[1].metrics.clone();
    assert_eq!(b_metrics.backplane_takeovers.load(Ordering::Relaxed), 1);
    assert_eq!(b_metrics.rooms.load(Ordering::Relaxed), 1);

    // Grace talks while Ada is away: it waits for her, in order.
    for i in 0..20 {
        grace
            .send(json!({"type":"signal","to":ada.id,"data":{"candidate":{"candidate":format!("candidate:{i}")}}}))
            .await;
    }
    grace.barrier("g").await;
    drop(ada);
    let (mut ada, joined) = resume_at(&b, "r", "Ada", &token(&ada_joined)).await;
    assert_eq!(joined["resumed"], true, "{joined}");
    assert_eq!(joined["self"]["id"], ada_joined["self"]["id"]);
    for i in 0..20 {
        let signal = ada.expect("signal").await;
        assert_eq!(signal["from"], grace.id);
        assert_eq!(
            signal["data"]["candidate"]["candidate"],
            format!("candidate:{i}")
        );
    }
    ada.expect_barrier_of("g").await;

    // Xavier's grace runs out: both are told, once, with `timeout`; the
    // call goes on without him and nobody else left.
    for member in [&mut ada, &mut grace] {
        let left = member.expect_within("peer_left", FAILOVER).await;
        assert_eq!(left["id"], xavier_id);
        assert_eq!(left["reason"], "timeout");
    }
    ada.barrier("a").await;
    grace.expect_barrier_of("a").await;

    // The room is not stuck: a newcomer on B finds exactly Ada and Grace.
    let (_newcomer, joined) = join_at(&b, "r", "Newcomer").await;
    let mut names: Vec<&str> = joined["room"]["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["Ada", "Grace"], "{joined}");
    assert_eq!(joined["room"]["call"]["peers"], json!([ada.id]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_whose_instance_died_empty_handed_is_not_left_stuck() {
    let mut cluster = Cluster::start(2, config(Duration::from_secs(1))).await;
    let (a, b) = (cluster.instances[0].url(), cluster.instances[1].url());
    let (lonely, _) = join_at(&a, "lonely", "Ada").await;
    tokio::task::block_in_place(|| cluster.instances[0].kill());
    drop(lonely);
    // B takes the room over, lets Ada's grace run out, and the room goes.
    let metrics = cluster.instances[1].metrics.clone();
    until("B took the room over", &metrics, |m| {
        m.backplane_takeovers.load(Ordering::Relaxed) == 1
    })
    .await;
    until("the room is gone", &metrics, |m| {
        m.rooms.load(Ordering::Relaxed) == 0
    })
    .await;
    let mut lobby = Client::connect(&b).await;
    lobby.send(json!({"type":"rooms","rid":"l"})).await;
    let list = lobby.expect("rooms").await;
    assert_eq!(list["rooms"], json!([]), "{list}");
    // Its name is free: a fresh join makes a fresh room.
    let (_c, joined) = join_at(&b, "lonely", "Grace").await;
    assert_eq!(joined["room"]["peers"], json!([]), "{joined}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lost_is_said_clearly_and_the_cluster_recovers_when_it_returns() {
    let mut cluster = Cluster::start(2, config(Duration::from_secs(10))).await;
    let (a, b) = (cluster.instances[0].url(), cluster.instances[1].url());
    let (mut ada, _) = join_at(&a, "r", "Ada").await;
    let (mut grace, _) = join_at(&b, "r", "Grace").await;
    ada.expect("peer_joined").await;
    health_is(&cluster, "200").await;

    cluster.redis.kill();
    // Everyone is told to reconnect (1013), on both instances.
    for member in [&mut ada, &mut grace] {
        assert_eq!(
            member.closed_within(FAILOVER).await,
            Closed::Frame(1013, "reconnect".into())
        );
    }
    // While Redis is away, joins are refused with a reason, and the
    // instances say so to their load balancer.
    health_is(&cluster, "503").await;
    for url in [&a, &b] {
        let mut c = Client::connect(url).await;
        let refused = c
            .join_with(json!({"type":"join","v":1,"room":"r","name":"Lin","rid":"j"}))
            .await;
        assert_eq!(refused["code"], "server_full", "{refused}");
        assert!(
            refused["message"].as_str().unwrap().contains("backplane"),
            "{refused}"
        );
    }
    let metrics = get(cluster.instances[0].addr, "/metrics").await;
    assert!(
        metrics.lines().any(|l| l == "huddle_backplane_up 0"),
        "{metrics}"
    );

    // Redis returns (empty): the instances register again by themselves and
    // rooms span them as before.
    cluster.redis.restart().await;
    health_is(&cluster, "200").await;
    for instance in &cluster.instances {
        until("re-registered", &instance.metrics, |m| {
            m.backplane_reconnects.load(Ordering::Relaxed) >= 1
        })
        .await;
    }
    let (mut ada, _) = join_at(&a, "r", "Ada").await;
    let (mut grace, _) = join_at(&b, "r", "Grace").await;
    ada.expect("peer_joined").await;
    grace
        .send(json!({"type":"chat","text":"back","rid":"c"}))
        .await;
    assert_eq!(grace.expect("chat").await["text"], "back");
    let chat = ada.expect("chat").await;
    assert_eq!(chat["text"], "back");
    assert_eq!(chat["from"], grace.id);
}

/// Sends `signal` (e.g. `-STOP`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {signal} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_for_a_while_keeps_the_rooms_and_members_resume() {
    let cluster = Cluster::start(2, config(Duration::from_secs(30))).await;
    let (a, b) = (cluster.instances[0].url(), cluster.instances[1].url());
    let (mut ada, ada_joined) = join_at(&a, "r", "Ada").await;
    let (mut grace, grace_joined) = join_at(&b, "r", "Grace").await;
    ada.expect("peer_joined").await;

    // Redis stops answering (it keeps its data): both instances give up on
    // it and tell their members to reconnect.
    let redis = cluster.redis.pid().unwrap();
    signal(redis, "-STOP");
    for member in [&mut ada, &mut grace] {
        assert_eq!(
            member.closed_within(FAILOVER).await,
            Closed::Frame(1013, "reconnect".into())
        );
    }
    health_is(&cluster, "503").await;
    signal(redis, "-CONT");
    health_is(&cluster, "200").await;

    // The room is still in Redis: its members resume, each on the other
    // instance, with their ids, and talk again.
    let (mut ada, joined) = resume_at(&b, "r", "Ada", &token(&ada_joined)).await;
    assert_eq!(joined["resumed"], true, "{joined}");
    assert_eq!(joined["self"]["id"], ada_joined["self"]["id"]);
    let (mut grace, joined) = resume_at(&a, "r", "Grace", &token(&grace_joined)).await;
    assert_eq!(joined["resumed"], true, "{joined}");
    assert_eq!(joined["self"]["id"], grace_joined["self"]["id"]);
    grace.barrier("g").await;
    ada.expect_barrier_of("g").await;
}

/// What `huddle-server --redis URL` prints and exits with, Redis being absent.
fn start_without_redis(url: &str) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_huddle-server"))
        .args(["--listen", "127.0.0.1:0", "--redis", url])
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), said)
}

#[test]
fn redis_unreachable_at_start_is_a_clear_error_without_the_password() {
    let port = huddle_testkit::free_port();
    let (code, said) = start_without_redis(&format!("redis://:hunter2@127.0.0.1:{port}/0"));
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "cannot reach Redis at redis://…@127.0.0.1:{port}/0"
        )),
        "{said}"
    );
    assert!(!said.contains("hunter2"), "the password leaked: {said}");
    let (code, said) = start_without_redis("http://not-redis");
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("bad Redis URL"), "{said}");
}

/// A room message to many members on another instance crosses Redis once,
/// not once per member: the holder packs the frames per instance.
#[tokio::test]
async fn a_room_message_crosses_redis_once_per_instance() {
    let cluster = Cluster::start(2, config(Duration::from_secs(15))).await;
    let (a, b) = (&cluster.instances[0], &cluster.instances[1]);
    // The room is created at A: A holds it; six members join through B.
    let (mut host, _) = join_at(&a.url(), "town-hall", "Host").await;
    let mut listeners = Vec::new();
    for i in 0..6 {
        let (c, _) = join_at(&b.url(), "town-hall", &format!("Listener {i}")).await;
        listeners.push(c);
    }
    // Everyone has seen everyone join (nothing else is in flight).
    host.send(json!({"type":"chat","text":"barrier settled","rid":"s"}))
        .await;
    for c in std::iter::once(&mut host).chain(listeners.iter_mut()) {
        loop {
            let msg = c.recv().await;
            if msg["type"] == "chat" && msg["text"] == "barrier settled" {
                break;
            }
        }
    }
    let published = a.metrics.backplane_published.load(Ordering::Relaxed);
    host.send(json!({"type":"chat","text":"one message for six","rid":"m"}))
        .await;
    for c in &mut listeners {
        let msg = c.expect("chat").await;
        assert_eq!(msg["text"], "one message for six");
    }
    let envelopes = a.metrics.backplane_published.load(Ordering::Relaxed) - published;
    println!("attack: a room message to 6 members on another instance | one Redis publish per instance, not per member | {envelopes} publish(es)");
    assert!(
        envelopes <= 2,
        "the message crossed Redis {envelopes} times for 6 members on one instance"
    );
}

/// A join whose answer came too late is undone before it is asked again,
/// and the late answer undoes nothing more: the room never holds the member
/// twice, nor loses the one that stayed. The room's holder is played by the
/// test on the bus (alive and owning the room in Redis), so that it can
/// answer late on purpose.
#[tokio::test]
async fn a_join_answered_too_late_is_undone_once_and_the_retry_stays() {
    use futures_util::StreamExt;

    let cluster = Cluster::start(1, config(Duration::from_secs(15))).await;
    let redis = redis::Client::open(cluster.redis.url()).unwrap();
    let mut con = redis.get_multiplexed_async_connection().await.unwrap();
    redis::pipe()
        .cmd("SET")
        .arg("huddle:instance:i_played")
        .arg("1")
        .arg("EX")
        .arg(60)
        .cmd("SET")
        .arg("huddle:room:r:owner")
        .arg("i_played")
        .exec_async(&mut con)
        .await
        .unwrap();
    let mut pubsub = redis.get_async_pubsub().await.unwrap();
    pubsub.subscribe("huddle:bus:i_played").await.unwrap();
    let mut bus = pubsub.into_on_message();
    let mut next = async || -> Value {
        let message = tokio::time::timeout(FAILOVER, bus.next())
            .await
            .expect("an envelope for the room's holder")
            .unwrap();
        serde_json::from_slice(message.get_payload_bytes()).unwrap()
    };

    let mut b = Client::connect(&cluster.instances[0].url()).await;
    b.send(json!({"type":"join","v":1,"room":"r","name":"B","rid":"j"}))
        .await;
    let first = next().await;
    assert_eq!(first["t"], "join", "{first}");
    // No answer: after its wait the instance takes the join back, then asks again.
    let undo = next().await;
    assert_eq!(undo["t"], "leave", "{undo}");
    assert_eq!(undo["conn"], first["conn"]);
    let again = next().await;
    assert_eq!(again["t"], "join", "{again}");
    assert_ne!(again["req"], first["req"]);
    // A new id on the bus: what the holder still sends the first try
    // cannot reach the second.
    assert_ne!(again["conn"], first["conn"]);

    // Now both answers: the first one late, then the second.
    let joined = |ask: &Value| {
        json!({"t":"joined","from":"i_played","req":ask["req"],"conn":ask["conn"],"result":{"Ok":{
            "self_peer":{"id":"p_playedplay","name":"B","client":"browser","in_call":false,
                         "joined_at":0,"media":{"audio":false,"video":false,"screen":false}},
            "room":{"name":"r","locked":false,"peers":[],"call":null},
            "resume":"played-token","resumed":false}}})
        .to_string()
    };
    let to = format!("huddle:bus:{}", first["from"].as_str().unwrap());
    redis::pipe()
        .publish(&to, joined(&first))
        .publish(&to, joined(&again))
        .exec_async(&mut con)
        .await
        .unwrap();
    let answer = b.recv().await;
    assert_eq!(answer["type"], "joined", "{answer}");

    // The member acts: its action is the next thing the holder hears — no
    // second leave taking away the member that stayed.
    b.send(json!({"type":"chat","text":"still here"})).await;
    let act = next().await;
    assert_eq!(act["t"], "act", "{act}");
    assert_eq!(act["conn"], again["conn"]);
}
