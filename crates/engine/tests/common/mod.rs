//! Shared by the engine's integration tests: a real server, a TCP proxy
//! whose connections a test can cut, a real TURN server (coturn), and the
//! join parameters of a test member.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use huddle_server::Config;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A member named `name` joining `room`: a bot, no password, no media yet.
pub fn params(room: &str, name: &str) -> huddle_engine::JoinParams {
    huddle_engine::JoinParams {
        room: room.into(),
        name: name.into(),
        password: None,
        token: None,
        client: huddle_protocol::ClientKind::Bot,
        media: huddle_protocol::Media::default(),
    }
}

/// A real huddle-server on loopback.
pub async fn server_with(config: Config) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(huddle_server::run(
        listener,
        config,
        std::future::pending::<()>(),
    ));
    addr
}

pub async fn server() -> SocketAddr {
    server_with(Config::default()).await
}

/// Forwards TCP to `upstream`; `cut` drops every connection open now.
pub struct Proxy {
    pub addr: SocketAddr,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let registry = links.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let link = tokio::spawn(async move {
                    let mut server = TcpStream::connect(upstream).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                registry.lock().unwrap().push(link);
            }
        });
        Proxy { addr, links }
    }

    pub fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

/// A coturn TURN server on loopback, killed when dropped.
pub struct Coturn {
    child: std::process::Child,
    pub port: u16,
    pub secret: String,
    max_bytes_per_second: u32,
}

impl Coturn {
    /// Starts coturn with REST credentials; `max_bytes_per_second` caps
    /// each relay session (coturn drops what exceeds it), 0 for no cap.
    pub async fn start(max_bytes_per_second: u32) -> Coturn {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let secret = format!("secret-{}", std::process::id());
        let child = Coturn::spawn(port, &secret, max_bytes_per_second).await;
        Coturn {
            child,
            port,
            secret,
            max_bytes_per_second,
        }
    }

    /// Kills coturn: every relayed path through it dies.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port with the same secret (credentials
    /// handed out before stay valid; allocations do not survive).
    pub async fn restart(&mut self) {
        self.kill();
        self.child = Coturn::spawn(self.port, &self.secret, self.max_bytes_per_second).await;
    }

    async fn spawn(port: u16, secret: &str, max_bytes_per_second: u32) -> std::process::Child {
        let child = std::process::Command::new("turnserver")
            .args([
                "-n",
                "--listening-ip=127.0.0.1",
                &format!("--listening-port={port}"),
            ])
            .args([
                "--use-auth-secret",
                &format!("--static-auth-secret={secret}"),
            ])
            .args(["--realm=huddle.test", "--no-tls", "--no-dtls", "--no-cli"])
            .args(["--allow-loopback-peers", "--relay-ip=127.0.0.1"])
            .arg(format!("--max-bps={max_bytes_per_second}"))
            .args(["--min-port=49152", "--max-port=65535"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("turnserver (Debian package coturn) must be installed");
        // coturn listens on TCP too: ready when that answers.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(std::time::Instant::now() < deadline, "coturn did not start");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        child
    }

    /// A server configuration that hands out this TURN server.
    pub fn config(&self) -> Config {
        Config {
            turn: Some(huddle_server::config::TurnConfig {
                urls: vec![format!("turn:127.0.0.1:{}?transport=udp", self.port)],
                secret: self.secret.clone(),
                ttl: std::time::Duration::from_secs(3600),
            }),
            ..Config::default()
        }
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        self.kill();
    }
}
