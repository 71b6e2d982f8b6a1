//! Test harness: the real server on a loopback port, and a raw-JSON client
//! over a real WebSocket.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use huddle_server::Config;
use huddle_testkit::Cluster;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for an expected message before failing.
pub const WAIT: Duration = Duration::from_secs(5);

/// A running server: one process, or — with `HUDDLE_TEST_CLUSTER=1` — two
/// instances sharing a real Redis behind a round-robin balancer, so that a
/// test's clients alternate between the instances.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    cluster: Option<Cluster>,
}

/// Whether the suite runs against a cluster.
pub fn clustered() -> bool {
    std::env::var_os("HUDDLE_TEST_CLUSTER").is_some_and(|v| v == "1")
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        if clustered() {
            let cluster = Cluster::start(2, config).await;
            return TestServer {
                addr: cluster.balancer.addr,
                stop: None,
                task: None,
                cluster: Some(cluster),
            };
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(huddle_server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            task: Some(task),
            cluster: None,
        }
    }

    pub async fn default() -> TestServer {
        Self::start(Config::default()).await
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub async fn connect(&self) -> Client {
        Client::connect(&self.url()).await
    }

    /// A client that has joined `room` as `name`; returns it and its `joined`.
    pub async fn join(&self, room: &str, name: &str) -> (Client, Value) {
        let mut c = self.connect().await;
        let joined = c.join(room, name).await;
        (c, joined)
    }

    /// Joins `names` to `room` one after the other, and takes from each
    /// member the `peer_joined` of everyone who came after it.
    pub async fn room<const N: usize>(&self, room: &str, names: [&str; N]) -> [Client; N] {
        let mut members: Vec<Client> = Vec::with_capacity(N);
        for name in names {
            let (client, _) = self.join(room, name).await;
            for earlier in &mut members {
                earlier.expect("peer_joined").await;
            }
            members.push(client);
        }
        match members.try_into() {
            Ok(members) => members,
            Err(_) => unreachable!("N members were joined"),
        }
    }

    /// Stops the server as SIGTERM would, and waits until it has.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        if let Some(mut cluster) = self.cluster.take() {
            tokio::task::spawn_blocking(move || {
                for instance in &mut cluster.instances {
                    instance.stop();
                }
            })
            .await
            .unwrap();
        }
    }
}

/// The whole answer to `GET path` on `addr`, status line to body.
pub async fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// A protocol client speaking raw JSON.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub id: String,
}

/// How a connection ended.
#[derive(Debug, PartialEq)]
pub enum Closed {
    Frame(u16, String),
    NoFrame,
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Client {
            ws,
            id: String::new(),
        }
    }

    /// Connects from the loopback address `from` (e.g. 127.0.0.2): another
    /// client address as far as the server can tell.
    pub async fn connect_from(addr: SocketAddr, from: std::net::IpAddr) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(
            format!("ws://{addr}/ws"),
            MaybeTlsStream::Plain(stream),
        )
        .await
        .unwrap();
        Client {
            ws,
            id: String::new(),
        }
    }

    pub async fn send(&mut self, value: Value) {
        self.ws
            .send(Message::Text(value.to_string().into()))
            .await
            .unwrap();
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    /// The next protocol message; fails the test after [`WAIT`].
    pub async fn recv(&mut self) -> Value {
        self.recv_within(WAIT).await
    }

    /// The next protocol message; fails the test after `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: no message within {wait:?}", self.id))
                .unwrap_or_else(|| panic!("{}: connection ended", self.id))
                .unwrap_or_else(|e| panic!("{}: {e}", self.id));
            match msg {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Close(frame) => panic!("{}: closed: {frame:?}", self.id),
                _ => continue,
            }
        }
    }

    /// The next message, which must have `type`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        self.expect_within(kind, WAIT).await
    }

    /// The next message within `wait`, which must have `type`.
    pub async fn expect_within(&mut self, kind: &str, wait: Duration) -> Value {
        let msg = self.recv_within(wait).await;
        assert_eq!(msg["type"], kind, "{}: expected {kind}, got {msg}", self.id);
        msg
    }

    /// The next message, which must be `error` with `code`.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let msg = self.expect("error").await;
        assert_eq!(msg["code"], code, "{}: {msg}", self.id);
        msg
    }

    /// Waits for the server to close; returns the close frame.
    pub async fn closed(&mut self) -> Closed {
        self.closed_within(WAIT).await
    }

    /// Waits up to `wait` for the server to close; returns the close frame.
    pub async fn closed_within(&mut self, wait: Duration) -> Closed {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: no close within {wait:?}", self.id))
            {
                Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                    return Closed::Frame(u16::from(code), reason.to_string())
                }
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return Closed::NoFrame,
                Some(Ok(_)) => continue,
            }
        }
    }

    pub async fn join_with(&mut self, join: Value) -> Value {
        self.send(join).await;
        let msg = self.recv().await;
        if msg["type"] == "joined" {
            self.id = msg["self"]["id"].as_str().unwrap().to_owned();
        }
        msg
    }

    pub async fn join(&mut self, room: &str, name: &str) -> Value {
        let msg = self
            .join_with(json!({"type":"join","v":1,"room":room,"name":name,"rid":"j"}))
            .await;
        assert_eq!(msg["type"], "joined", "{msg}");
        msg
    }

    /// Watches the room list until it is `expected`, then stops watching.
    /// One server answers at once; in a cluster, an instance learns of the
    /// other's rooms a moment after they change (the list is kept in Redis
    /// and announced), so a client may first be sent a list from before.
    pub async fn rooms_become(&mut self, expected: Value) {
        self.send(json!({"type":"rooms","watch":true})).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut last = Value::Null;
        while last != expected {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "{}: the room list stayed {last}, not {expected}",
                self.id
            );
            last = self.expect_within("rooms", left).await["rooms"].clone();
        }
        self.send(json!({"type":"rooms","watch":false,"rid":"unwatch"}))
            .await;
        while self.expect("rooms").await["rid"] != "unwatch" {}
    }

    /// Proves that nothing else is queued for this member: sends a chat with a
    /// fresh rid and requires its echo to be the very next message. (Chat
    /// travels through the outbox, behind anything queued before it.)
    pub async fn barrier(&mut self, tag: &str) {
        self.send(json!({"type":"chat","text":format!("barrier {tag}"),"rid":tag}))
            .await;
        let msg = self.recv().await;
        assert_eq!(
            msg["type"], "chat",
            "{}: something arrived before the barrier: {msg}",
            self.id
        );
        assert_eq!(msg["rid"], tag, "{}: {msg}", self.id);
    }

    /// Reads the room chat `barrier {tag}` sent by another member.
    pub async fn expect_barrier_of(&mut self, tag: &str) {
        let msg = self.expect("chat").await;
        assert_eq!(msg["text"], format!("barrier {tag}"));
    }

    /// Drops the TCP connection without a close frame.
    pub fn drop_connection(self) {
        drop(self.ws);
    }
}
