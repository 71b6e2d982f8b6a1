//! A coturn TURN server (Debian package `coturn`) on a loopback port with
//! REST credentials (a shared secret), killed when dropped.

/// A coturn TURN server on loopback, killed when dropped.
#[derive(Debug)]
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
        let port = crate::free_port();
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
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(std::time::Instant::now() < deadline, "coturn did not start");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        child
    }

    /// A server configuration that hands out this TURN server.
    pub fn config(&self) -> huddle_server::Config {
        huddle_server::Config {
            turn: Some(huddle_server::config::TurnConfig {
                urls: vec![format!("turn:127.0.0.1:{}?transport=udp", self.port)],
                secret: self.secret.clone(),
                ttl: std::time::Duration::from_secs(3600),
            }),
            ..huddle_server::Config::default()
        }
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        self.kill();
    }
}
