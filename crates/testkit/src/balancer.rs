//! A round-robin TCP load balancer, as nginx would be in front of a
//! cluster: each new connection goes to the next backend that accepts it.
//! Each direction is copied on its own and ended with a shutdown, so a
//! backend's last words (an error, a close frame) reach the client even
//! while the client is still sending.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running balancer; stops when dropped.
#[derive(Debug)]
pub struct Balancer {
    /// Where clients connect.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

/// Copies until the end of `from`, then shuts `to` down; a write error
/// drains `from` instead, so its sender never meets a reset.
async fn pipe(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut writable = true;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if writable && to.write_all(&buf[..n]).await.is_err() {
            writable = false;
        }
    }
    let _ = to.shutdown().await;
}

impl Balancer {
    /// Balances over `backends`, starting with the first.
    pub async fn start(backends: Vec<SocketAddr>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let next = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let first = next.fetch_add(1, Ordering::Relaxed);
                let backends = backends.clone();
                tokio::spawn(async move {
                    for i in 0..backends.len() {
                        let backend = backends[(first + i) % backends.len()];
                        if let Ok(server) = TcpStream::connect(backend).await {
                            let _ = server.set_nodelay(true);
                            let _ = client.set_nodelay(true);
                            let (client_read, client_write) = client.into_split();
                            let (server_read, server_write) = server.into_split();
                            let down = tokio::spawn(pipe(server_read, client_write));
                            pipe(client_read, server_write).await;
                            let _ = down.await;
                            return;
                        }
                    }
                });
            }
        });
        Balancer { addr, task }
    }

    /// The WebSocket URL through the balancer.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
