//! One registration of this instance in Redis, from connecting to losing
//! Redis (or being counted as dead). Everything it holds dies with it: the
//! rooms it owns, its members' links to rooms elsewhere, the forwarding of
//! other instances' members. A new registration starts from nothing.
//!
//! Three tasks run per epoch: the *writer* (every Redis write and publish of
//! this instance, pipelined, in one order — which is what keeps a room's
//! frames, its stored state and its ownership claims in order), the *bus
//! reader* (envelopes addressed to this instance, handled one at a time, in
//! arrival order) and the *heartbeat* (liveness of this instance and of the
//! instances it depends on; rooms of dead instances are taken over).
//!
//! Here: the registration, claims and the bus reader; `writer.rs` the
//! writer, `links.rs` and `forwards.rs` the two sides of membership across
//! instances, `heartbeat.rs` the heartbeat.

mod forwards;
mod heartbeat;
mod links;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use huddle_protocol::model::RoomSummary;
use huddle_protocol::ErrorCode;
use redis::RedisResult;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tracing::{info, warn};

use super::bus::Envelope;
use super::store::{self, Claim, Store};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::registry::{ConnId, JoinRequest, Kick, Refusal};
use crate::rooms::Rooms;
use crate::sync::lock;
use forwards::Forward;
use links::Link;
use writer::{Out, Outgoing, Writer};

/// How long a request to another instance may take before that instance
/// counts as unreachable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Writes per pipeline.
const MAX_PIPELINE: usize = 256;
/// Writes waiting for Redis, at most: about three seconds of this instance's
/// heaviest measured load (20,000 signals a second). A Redis that stops
/// taking writes for longer ends the epoch instead of growing memory.
pub const MAX_QUEUED_WRITES: usize = 65_536;

/// Why a join through another instance did not happen.
pub enum RemoteJoinError {
    /// The room's instance refused it.
    Refused(Refusal),
    /// No answer in time: the request is given back for another try.
    NoAnswer(JoinRequest),
}

/// The refusal of a join this instance cannot serve now.
pub fn unavailable() -> Refusal {
    Refusal::new(
        ErrorCode::ServerFull,
        "this server has lost its backplane; reconnect to reach another",
    )
}

/// One registration.
pub struct Epoch {
    store: Store,
    /// The rooms this instance holds.
    pub rooms: Rooms,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    out: Outgoing,
    pending: Mutex<HashMap<u64, oneshot::Sender<Envelope>>>,
    next_req: AtomicU64,
    links: Mutex<HashMap<ConnId, Link>>,
    forwards: Mutex<HashMap<(String, u64), Forward>>,
    /// Connection ids given to members of other instances in rooms held here
    /// (above every id the listener hands out).
    next_alias: AtomicU64,
    /// Ids of this instance's members in rooms held elsewhere, one per
    /// try of a join (so that nothing sent to an earlier try reaches a
    /// later one).
    next_link: AtomicU64,
    /// Claims and the restores they trigger, one at a time.
    claiming: tokio::sync::Mutex<()>,
    ended: watch::Sender<bool>,
    list_changed: watch::Sender<u64>,
}

impl std::fmt::Debug for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Epoch")
            .field("me", &self.me())
            .finish_non_exhaustive()
    }
}

impl Epoch {
    /// Registers a new instance id and starts its tasks.
    pub async fn start(
        client: &redis::Client,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        list_changed: watch::Sender<u64>,
    ) -> RedisResult<Arc<Epoch>> {
        let me = format!("i_{}", crate::ids::resume_token().get(..12).unwrap_or("x"));
        let settings = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REQUEST_TIMEOUT))
            .set_response_timeout(Some(REQUEST_TIMEOUT));
        let con = client
            .get_multiplexed_async_connection_with_config(&settings)
            .await?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(store::bus(&me)).await?;
        pubsub.subscribe(store::ROOMS_CHANGED).await?;
        let store = Store::register(con, me).await?;
        let (tx, writes) = mpsc::channel(MAX_QUEUED_WRITES);
        let full = Arc::new(Notify::new());
        let out = Outgoing {
            tx,
            full: full.clone(),
        };
        let rooms = Rooms::mirrored(
            config.clone(),
            metrics.clone(),
            Arc::new(Writer(out.clone())),
        );
        let epoch = Arc::new(Epoch {
            store,
            rooms,
            config,
            metrics,
            out,
            pending: Mutex::default(),
            next_req: AtomicU64::new(1),
            links: Mutex::default(),
            forwards: Mutex::default(),
            next_alias: AtomicU64::new(1 << 62),
            next_link: AtomicU64::new(1 << 61),
            claiming: tokio::sync::Mutex::new(()),
            ended: watch::channel(false).0,
            list_changed,
        });
        info!(instance = epoch.me(), "registered with the backplane");
        tokio::spawn(epoch.clone().guard("writer", epoch.clone().write(writes)));
        tokio::spawn(epoch.clone().end_when_full(full));
        tokio::spawn(epoch.clone().guard("bus", epoch.clone().read(pubsub)));
        tokio::spawn(epoch.clone().guard("heartbeat", epoch.clone().beat()));
        Ok(epoch)
    }

    /// This instance's id in this epoch.
    pub fn me(&self) -> &str {
        self.store.me()
    }

    /// Whether the epoch has ended.
    pub fn is_ended(&self) -> bool {
        *self.ended.borrow()
    }

    /// Completes when the epoch ends.
    pub async fn ended(&self) {
        let mut ended = self.ended.subscribe();
        let _ = ended.wait_for(|e| *e).await;
    }

    /// Ends the epoch: every member of this instance is told to reconnect,
    /// and nothing of it is used again.
    pub fn end(&self, why: &str) {
        if self.ended.send_replace(true) {
            return;
        }
        warn!(instance = self.me(), "backplane epoch ended: {why}");
        self.rooms.kick_all();
        for (_, mut link) in lock(&self.links).drain() {
            if let Some(kick) = link.kick.take() {
                let _ = kick.send(Kick::Unavailable);
            }
        }
        for (_, forward) in lock(&self.forwards).drain() {
            if let Some(task) = forward.task {
                task.abort();
            }
        }
        lock(&self.pending).clear();
        Metrics::add(
            &self.metrics.backplane_links,
            -self.metrics.backplane_links.load(Ordering::Relaxed),
        );
    }

    /// Ends the epoch once the writer's queue overflows: Redis is not keeping
    /// up, and this instance must not hold the difference in memory.
    async fn end_when_full(self: Arc<Self>, full: Arc<Notify>) {
        tokio::select! {
            _ = full.notified() => {
                self.metrics.backplane_errors.fetch_add(1, Ordering::Relaxed);
                self.end(&format!("Redis fell {MAX_QUEUED_WRITES} writes behind"));
            }
            _ = self.ended() => {}
        }
    }

    /// Runs `task` until it fails or the epoch ends; a failure ends the epoch.
    async fn guard(
        self: Arc<Self>,
        name: &'static str,
        task: impl std::future::Future<Output = RedisResult<()>>,
    ) {
        tokio::select! {
            result = task => {
                let why = match result {
                    Ok(()) => format!("{name}: connection closed"),
                    Err(e) => format!("{name}: {e}"),
                };
                self.metrics.backplane_errors.fetch_add(1, Ordering::Relaxed);
                self.end(&why);
            }
            _ = self.ended() => {}
        }
    }

    /// Sends `envelope` to instance `to`.
    fn send(&self, to: &str, envelope: &Envelope) {
        self.metrics
            .backplane_published
            .fetch_add(1, Ordering::Relaxed);
        self.out.push(Out::Publish {
            channel: store::bus(to),
            payload: envelope.encode(),
        });
    }

    /// Sends a request to `to` and waits for its answer.
    async fn request(&self, to: &str, make: impl FnOnce(u64) -> Envelope) -> Option<Envelope> {
        let req = self.next_req.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(req, tx);
        self.send(to, &make(req));
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, rx).await;
        lock(&self.pending).remove(&req);
        answer.ok()?.ok()
    }

    /// The owner of `room` (this instance unless a live one holds it); a room
    /// taken over from a dead instance is restored before this returns.
    pub async fn claim(&self, room: &str) -> Result<String, Refusal> {
        let _one_at_a_time = self.claiming.lock().await;
        let (tx, rx) = oneshot::channel();
        if !self.out.push(Out::Claim(room.to_owned(), tx)) {
            return Err(unavailable());
        }
        let (owner, took_over) = match rx.await {
            Ok(Ok(Claim::Owner { owner, took_over })) => (owner, took_over),
            Ok(Ok(Claim::Full)) => {
                return Err(Refusal::new(
                    ErrorCode::ServerFull,
                    "the server has no room for more rooms",
                ))
            }
            Ok(Ok(Claim::Unregistered)) => {
                self.end("this instance's heartbeat expired");
                return Err(unavailable());
            }
            Ok(Err(e)) => {
                self.end(&format!("claim: {e}"));
                return Err(unavailable());
            }
            Err(_) => return Err(unavailable()),
        };
        if took_over {
            match self.store.load(room).await {
                Ok(Some(snapshot)) => {
                    info!(room, "took the room over from a dead instance");
                    self.metrics
                        .backplane_takeovers
                        .fetch_add(1, Ordering::Relaxed);
                    self.rooms.restore(snapshot);
                }
                // Nothing stored: the room was never saved or is gone.
                Ok(None) if !self.rooms.holds(room) => {
                    self.out.push(Out::Drop(room.to_owned()));
                }
                Ok(None) => {}
                Err(e) => {
                    self.end(&format!("load: {e}"));
                    return Err(unavailable());
                }
            }
        }
        Ok(owner)
    }

    /// The room list, read after every write of this instance so far.
    pub async fn room_list(&self) -> Option<Vec<RoomSummary>> {
        let (tx, rx) = oneshot::channel();
        self.out.push(Out::List(tx)).then_some(())?;
        rx.await.ok()?.ok()
    }

    /// The bus reader.
    async fn read(self: Arc<Self>, pubsub: redis::aio::PubSub) -> RedisResult<()> {
        let mut messages = pubsub.into_on_message();
        while let Some(message) = messages.next().await {
            if message.get_channel_name() == store::ROOMS_CHANGED {
                self.list_changed.send_modify(|v| *v += 1);
                continue;
            }
            self.metrics
                .backplane_received
                .fetch_add(1, Ordering::Relaxed);
            match Envelope::decode(message.get_payload_bytes()) {
                Some(envelope) => self.handle(envelope).await,
                None => warn!("malformed backplane message ignored"),
            }
        }
        Ok(())
    }

    /// One envelope from the bus, each kind handled by the side it
    /// concerns: members of rooms held here (`forwards.rs`), members
    /// connected here (`links.rs`), or the request waiting for an answer.
    async fn handle(self: &Arc<Self>, envelope: Envelope) {
        match envelope {
            Envelope::Join {
                from,
                req,
                conn,
                join,
            } => self.on_join(from, req, conn, join).await,
            Envelope::Act {
                from,
                req,
                conn,
                action,
            } => self.on_act(from, req, conn, action).await,
            Envelope::Leave { from, conn, reason } => self.on_leave(from, conn, reason).await,
            Envelope::Detach { from, conn } => self.on_detach(from, conn).await,
            Envelope::Unread { from, conn, frames } => self.on_unread(from, conn, frames).await,
            Envelope::Joined { req, .. } | Envelope::Done { req, .. } => {
                self.on_answer(req, envelope)
            }
            Envelope::Deliver { conn, frames } => self.deliver(
                ConnId(conn),
                frames.into_iter().map(Utf8Bytes::from).collect(),
            ),
            Envelope::Fanout { frames, deliveries } => {
                for (conn, frames) in links::fan_out(frames, deliveries) {
                    self.deliver(conn, frames);
                }
            }
            Envelope::Kick { conn, kick } => self.on_kick(ConnId(conn), kick),
            Envelope::Closed { conn } => {
                self.remove_link(ConnId(conn));
            }
            Envelope::Release { conn } => self.on_release(ConnId(conn)),
        }
    }

    /// The answer to a request of ours: to whoever waits for it. An answer
    /// nobody waits for any more is dropped: a join that went unanswered
    /// was already taken back by its [`Envelope::Leave`] (see
    /// `join_remote`), under an id no later try uses.
    fn on_answer(&self, req: u64, answer: Envelope) {
        if let Some(waiter) = lock(&self.pending).remove(&req) {
            let _ = waiter.send(answer);
        }
    }
}
