//! The listener: accepts TCP connections, enforces connection limits and the
//! handshake deadline, answers plain HTTP, upgrades `/ws` to a [`Handler`],
//! and shuts down gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use huddle_protocol::error::close;
use huddle_protocol::{ErrorCode, ServerMessage};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::connection::Connection;
use crate::delivery::{Counted, Delivery};
use crate::guesses::Guesses;
use crate::handler::Handler;
use crate::http::{self, Head};
use crate::listing::ListFrames;
use crate::metrics::Metrics;
use crate::registry::{ConnId, Registry};
use crate::rooms::Rooms;
use crate::secret::same_secret;
use crate::source::{Held, Quotas, Source};

/// How long shutdown waits for connections to close before giving up.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Connections refused with `server_full` that may be in their handshake at once.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// What every connection shares.
#[derive(Debug)]
pub struct Context<R> {
    /// Settings.
    pub config: Arc<Config>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Where rooms live.
    pub registry: R,
    /// Wrong room passwords per source, and when each may guess again.
    pub guesses: Guesses,
    /// The room list's frame, encoded once per version.
    pub list_frames: ListFrames,
}

impl<R> Context<R> {
    /// What connections share, with no password failures yet.
    pub fn new(config: Arc<Config>, metrics: Arc<Metrics>, registry: R) -> Self {
        Context {
            config,
            metrics,
            registry,
            guesses: Guesses::default(),
            list_frames: ListFrames::default(),
        }
    }
}

/// The accept loop's shared pieces.
struct Listener<R> {
    ctx: Arc<Context<R>>,
    tls: Option<TlsAcceptor>,
    connections: Arc<Semaphore>,
    refusals: Arc<Semaphore>,
    /// Connections per source (IPv4 address or IPv6 /64).
    per_source: Arc<Quotas>,
    next_id: AtomicU64,
    shutdown: watch::Receiver<bool>,
    /// Each connection task holds a clone; shutdown waits for all to drop.
    done: mpsc::Sender<()>,
}

/// Serves on `listener` with the in-memory registry until `shutdown`
/// completes, then closes every connection with 1001 and returns.
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future) {
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::default());
    let rooms = Rooms::new(config.clone(), metrics.clone());
    run_with(listener, Context::new(config, metrics, rooms), shutdown).await;
}

/// Serves with any registry.
pub async fn run_with<R: Registry>(listener: TcpListener, ctx: Context<R>, shutdown: impl Future) {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = mpsc::channel(1);
    let server = Arc::new(Listener {
        tls: ctx.config.tls.clone().map(TlsAcceptor::from),
        connections: Arc::new(Semaphore::new(ctx.config.max_connections)),
        refusals: Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT)),
        per_source: Arc::new(Quotas::default()),
        ctx: Arc::new(ctx),
        next_id: AtomicU64::new(1),
        shutdown: shutdown_rx,
        done: done_tx,
    });
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let server = server.clone();
                    tokio::spawn(async move { server.serve(stream, peer).await });
                }
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = &mut shutdown => break,
        }
    }
    info!("shutting down: closing connections");
    drop(listener);
    let _ = shutdown_tx.send(true);
    let done = server.done.clone();
    drop(server);
    drop(done);
    if tokio::time::timeout(SHUTDOWN_GRACE, done_rx.recv())
        .await
        .is_err()
    {
        warn!("some connections did not close in time");
    }
}

impl<R: Registry> Listener<R> {
    async fn serve(self: Arc<Self>, stream: TcpStream, peer: SocketAddr) {
        let _done = self.done.clone();
        let metrics = &self.ctx.metrics;
        let source = Source::of(peer.ip());
        let Some(_slot) = self.per_source.take(
            source,
            Held::Connection,
            self.ctx.config.max_connections_per_ip,
        ) else {
            metrics.connections_refused.fetch_add(1, Ordering::Relaxed);
            let mut stream = stream;
            // Boxed: this rare path must not widen every connection's task.
            let _ = Box::pin(tokio::time::timeout(
                Duration::from_secs(2),
                http::respond(
                    &mut stream,
                    "429 Too Many Requests",
                    "text/plain",
                    "too many connections from your address\n",
                ),
            ))
            .await;
            return;
        };
        crate::tcp::tune(&stream);
        let stream = Counted::new(stream);
        let deadline = tokio::time::Instant::now() + self.ctx.config.handshake_timeout;
        // Each stage is boxed: an idle connection keeps only the handler's
        // state, not the (larger) states of TLS and the HTTP handshake.
        match &self.tls {
            None => {
                // Bound first: a temporary in the `if let` would keep the
                // boxed handshake alive for the whole connection.
                let upgraded = Box::pin(self.handshake(stream, deadline)).await;
                if let Some(upgraded) = upgraded {
                    self.serve_websocket(upgraded, source).await;
                }
            }
            // Boxed as a whole: a TLS stream (several KB of rustls state)
            // held anywhere in this function would widen every connection's
            // task, TLS or not.
            Some(acceptor) => Box::pin(self.serve_tls(acceptor, stream, deadline, source)).await,
        }
    }

    /// The TLS handshake, then as for plain connections.
    async fn serve_tls(
        &self,
        acceptor: &TlsAcceptor,
        stream: Counted,
        deadline: tokio::time::Instant,
        source: Source,
    ) {
        match tokio::time::timeout_at(deadline, Box::pin(acceptor.accept(stream))).await {
            Ok(Ok(tls)) => {
                let upgraded = Box::pin(self.handshake(tls, deadline)).await;
                if let Some(upgraded) = upgraded {
                    self.serve_websocket(upgraded, source).await;
                }
            }
            Ok(Err(e)) => debug!(error = %e, "TLS handshake failed"),
            Err(_) => {
                self.ctx
                    .metrics
                    .connections_refused
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Runs the handler of an upgraded connection.
    ///
    /// Not an `async fn`: its state would hold the connection argument inline
    /// (with TLS, several KB), and that size would then be paid by every
    /// connection's task, TLS or not. Here the connection moves straight into
    /// the boxed handler.
    fn serve_websocket<'a, S>(
        &'a self,
        (conn, permit): (Connection<S>, OwnedSemaphorePermit),
        source: Source,
    ) -> impl Future<Output = ()> + 'a
    where
        S: AsyncRead + AsyncWrite + Delivery + Unpin + Send + 'a,
    {
        let metrics = &self.ctx.metrics;
        let id = ConnId(self.next_id.fetch_add(1, Ordering::Relaxed));
        metrics.connections_total.fetch_add(1, Ordering::Relaxed);
        Metrics::add(&metrics.connections, 1);
        let run =
            Box::pin(Handler::new(conn, id, source, self.ctx.clone()).run(self.shutdown.clone()));
        async move {
            run.await;
            Metrics::add(&self.ctx.metrics.connections, -1);
            drop(permit);
        }
    }

    /// Reads the request head and routes it; returns the upgraded WebSocket.
    async fn handshake<S>(
        &self,
        mut stream: S,
        deadline: tokio::time::Instant,
    ) -> Option<(Connection<S>, OwnedSemaphorePermit)>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let head =
            match tokio::time::timeout_at(deadline, Box::pin(http::read_head(&mut stream))).await {
                Ok(Ok(head)) => head,
                Ok(Err(http::HttpError::TooLarge)) => {
                    let _ = http::respond(
                        &mut stream,
                        "431 Request Header Fields Too Large",
                        "text/plain",
                        "",
                    )
                    .await;
                    return None;
                }
                Ok(Err(e)) => {
                    debug!(error = %e, "bad request");
                    let _ = http::respond(
                        &mut stream,
                        "400 Bad Request",
                        "text/plain",
                        "bad request\n",
                    )
                    .await;
                    return None;
                }
                Err(_) => {
                    // Slowloris: the head did not arrive in time.
                    self.ctx
                        .metrics
                        .connections_refused
                        .fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            };
        let (head, read_ahead) = head;
        tokio::time::timeout_at(deadline, self.route(stream, head, read_ahead))
            .await
            .ok()
            .flatten()
    }

    /// Answers plain HTTP, or upgrades to a WebSocket and returns it with
    /// its connection permit.
    async fn route<S>(
        &self,
        mut stream: S,
        head: Head,
        read_ahead: Vec<u8>,
    ) -> Option<(Connection<S>, OwnedSemaphorePermit)>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let respond = |status, ty, body| (status, ty, body);
        let path = head.path.split('?').next().unwrap_or_default();
        let answer: (&str, &str, String) = match (head.method.as_str(), path) {
            ("GET", "/ws") if head.wants_websocket => {
                return self.upgrade(stream, head, read_ahead).await;
            }
            ("GET", "/ws") => respond(
                "426 Upgrade Required",
                "text/plain",
                "this is a WebSocket endpoint\n".into(),
            ),
            ("GET", "/healthz") => {
                if *self.shutdown.borrow() {
                    respond(
                        "503 Service Unavailable",
                        "text/plain",
                        "shutting down\n".into(),
                    )
                } else if !self.ctx.registry.healthy() {
                    respond(
                        "503 Service Unavailable",
                        "text/plain",
                        "backplane unavailable\n".into(),
                    )
                } else {
                    respond("200 OK", "text/plain", "ok\n".into())
                }
            }
            ("GET", "/metrics") => match &self.ctx.config.metrics_token {
                Some(token)
                    if !head
                        .bearer
                        .as_deref()
                        .is_some_and(|given| same_secret(given, token)) =>
                {
                    respond(
                        "401 Unauthorized",
                        "text/plain",
                        "metrics need a bearer token\n".into(),
                    )
                }
                _ => respond(
                    "200 OK",
                    "text/plain; version=0.0.4",
                    self.ctx.metrics.render(),
                ),
            },
            ("GET", _) => match crate::ui::lookup(&head.path) {
                Some(asset) => {
                    let _ = http::respond_with(
                        &mut stream,
                        "200 OK",
                        asset.content_type,
                        asset.cache_control,
                        &asset.body,
                    )
                    .await;
                    return None;
                }
                None if path == "/" => respond(
                    "200 OK",
                    "text/plain",
                    "Huddle signaling server. WebSocket at /ws; see /healthz and /metrics.\n\
                     The browser UI is not built into this binary: run `npm run build` in \
                     src-ui/ and rebuild.\n"
                        .into(),
                ),
                None => respond("404 Not Found", "text/plain", "not found\n".into()),
            },
            _ => respond(
                "405 Method Not Allowed",
                "text/plain",
                "method not allowed\n".into(),
            ),
        };
        let _ = http::respond(&mut stream, answer.0, answer.1, &answer.2).await;
        None
    }

    async fn upgrade<S>(
        &self,
        mut stream: S,
        head: Head,
        read_ahead: Vec<u8>,
    ) -> Option<(Connection<S>, OwnedSemaphorePermit)>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let config = &self.ctx.config;
        let metrics = &self.ctx.metrics;
        let (Some(key), true) = (head.websocket_key.as_deref(), head.websocket_version_ok) else {
            let _ = http::respond(
                &mut stream,
                "400 Bad Request",
                "text/plain",
                "bad WebSocket handshake\n",
            )
            .await;
            return None;
        };
        if let (Some(origin), false) = (&head.origin, config.allowed_origins.is_empty()) {
            if !config.allowed_origins.iter().any(|o| o == origin) {
                metrics.connections_refused.fetch_add(1, Ordering::Relaxed);
                let _ = http::respond(
                    &mut stream,
                    "403 Forbidden",
                    "text/plain",
                    "origin not allowed\n",
                )
                .await;
                return None;
            }
        }
        let permit: Result<OwnedSemaphorePermit, _> = self.connections.clone().try_acquire_owned();
        let Ok(permit) = permit else {
            self.refuse_full(stream, key, read_ahead).await;
            return None;
        };
        http::switch_protocols(&mut stream, key).await.ok()?;
        Some((
            Connection::new(stream, read_ahead, config.max_frame_bytes).await,
            permit,
        ))
    }

    /// Completes the handshake only to say `server_full` and close (1013).
    async fn refuse_full<S>(&self, mut stream: S, key: &str, read_ahead: Vec<u8>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        self.ctx
            .metrics
            .connections_refused
            .fetch_add(1, Ordering::Relaxed);
        let Ok(_slot) = self.refusals.try_acquire() else {
            return;
        };
        if http::switch_protocols(&mut stream, key).await.is_err() {
            return;
        }
        let mut conn = Connection::new(stream, read_ahead, self.ctx.config.max_frame_bytes).await;
        self.ctx.metrics.error(ErrorCode::ServerFull);
        let full = ServerMessage::error(
            ErrorCode::ServerFull,
            "the server is at its connection limit",
        );
        if conn.send(&full, None).await.is_ok() {
            conn.close(close::TRY_AGAIN_LATER, "server full").await;
        }
    }
}
