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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use huddle_protocol::model::RoomSummary;
use huddle_protocol::{ErrorCode, LeaveReason};
use redis::RedisResult;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tracing::{info, warn};

use super::bus::{Envelope, Granted, JoinFields};
use super::store::{self, Claim, Store};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::outbox::{outbox, Outbox, OutboxReceiver, HANDOVER_TIMEOUT, MAX_BATCH};
use crate::registry::{
    ConnId, Grant, JoinRequest, Kick, OutboxSource, Refusal, Registry, RoomAction,
};
use crate::rooms::{MemberRef, Mirror, RoomSnapshot, Rooms};
use crate::sync::lock;

/// How long a request to another instance may take before that instance
/// counts as unreachable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Writes per pipeline.
const MAX_PIPELINE: usize = 256;
/// Writes waiting for Redis, at most: about three seconds of this instance's
/// heaviest measured load (20,000 signals a second). A Redis that stops
/// taking writes for longer ends the epoch instead of growing memory.
pub const MAX_QUEUED_WRITES: usize = 65_536;

/// A write of this instance, in the one order they reach Redis.
enum Out {
    Publish {
        channel: String,
        payload: String,
    },
    /// Frames for member `conn` of instance `to`; the writer packs a run of
    /// these into one [`Envelope::Fanout`] per instance.
    Deliver {
        to: String,
        conn: u64,
        frames: Vec<Utf8Bytes>,
    },
    Save(RoomSnapshot),
    Drop(String),
    Claim(String, oneshot::Sender<RedisResult<Claim>>),
    List(oneshot::Sender<RedisResult<Vec<RoomSummary>>>),
}

/// A run of [`Out::Deliver`]s packed per receiving instance: each distinct
/// frame (the same shared bytes pushed to several members' queues) once.
#[derive(Default)]
struct Fanouts {
    /// Per instance, in the order first seen.
    to: Vec<(String, Fanout)>,
}

#[derive(Default)]
struct Fanout {
    frames: Vec<Utf8Bytes>,
    /// A frame's bytes (address, length) → its index in `frames`.
    index: HashMap<(usize, usize), u32>,
    deliveries: Vec<(u64, Vec<u32>)>,
}

impl Fanouts {
    fn add(&mut self, to: String, conn: u64, frames: Vec<Utf8Bytes>) {
        let at = match self.to.iter().position(|(t, _)| *t == to) {
            Some(at) => at,
            None => {
                self.to.push((to, Fanout::default()));
                self.to.len() - 1
            }
        };
        let fanout = &mut self.to[at].1;
        let indices = frames
            .into_iter()
            .map(|frame| {
                let key = (frame.as_str().as_ptr() as usize, frame.len());
                *fanout.index.entry(key).or_insert_with(|| {
                    fanout.frames.push(frame);
                    (fanout.frames.len() - 1) as u32
                })
            })
            .collect();
        fanout.deliveries.push((conn, indices));
    }

    /// Adds one publish per instance to `pipe`, and starts a new run.
    fn publish(&mut self, pipe: &mut redis::Pipeline, metrics: &Metrics) {
        for (to, fanout) in self.to.drain(..) {
            let envelope = Envelope::Fanout {
                frames: fanout
                    .frames
                    .iter()
                    .map(|f| f.as_str().to_owned())
                    .collect(),
                deliveries: fanout.deliveries,
            };
            metrics.backplane_published.fetch_add(1, Ordering::Relaxed);
            pipe.publish(store::bus(&to), envelope.encode()).ignore();
        }
    }
}

/// Who waits for the answer of a write that has one.
enum Answer {
    Claim(oneshot::Sender<RedisResult<Claim>>),
    List(oneshot::Sender<RedisResult<Vec<RoomSummary>>>),
}

/// The writer's queue: bounded, and never waited on (rooms write under
/// their locks). When it is full, `full` is told and the epoch ends.
#[derive(Debug, Clone)]
struct Outgoing {
    tx: mpsc::Sender<Out>,
    full: Arc<Notify>,
}

impl Outgoing {
    /// Queues a write; `false` when it could not be (full, or the epoch ended).
    fn push(&self, out: Out) -> bool {
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.full.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// Hands the owned rooms' changes to the writer.
#[derive(Debug)]
struct Writer(Outgoing);

impl Mirror for Writer {
    fn changed(&self, snapshot: RoomSnapshot) {
        // A closed writer means the epoch ended; its rooms are being dropped.
        self.0.push(Out::Save(snapshot));
    }

    fn emptied(&self, name: &str) {
        self.0.push(Out::Drop(name.to_owned()));
    }
}

/// A member connected here whose room another instance holds.
#[derive(Debug)]
struct Link {
    owner: String,
    outbox: Outbox,
    kick: Option<oneshot::Sender<Kick>>,
    /// The connection is gone: its unread frames wait here for
    /// [`Envelope::Release`].
    detached: Option<OutboxReceiver>,
}

/// A member connected elsewhere, in a room held here.
#[derive(Debug)]
struct Forward {
    member: MemberRef,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Option<OutboxReceiver>>>,
    /// Stopped by [`Envelope::Detach`]: the queue waits for [`Envelope::Unread`].
    released: Option<OutboxReceiver>,
}

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

    /// Joins a room that instance `owner` holds.
    pub async fn join_remote(
        &self,
        owner: &str,
        mut request: JoinRequest,
    ) -> Result<Grant<ConnId>, RemoteJoinError> {
        let conn = request.conn;
        let (tx, rx) = outbox(self.config.outbox_messages, self.config.outbox_bytes);
        // Registered first: frames may arrive before the answer.
        let (kick, _) = oneshot::channel();
        let kick = std::mem::replace(&mut request.kick, kick);
        lock(&self.links).insert(
            conn,
            Link {
                owner: owner.to_owned(),
                outbox: tx,
                kick: Some(kick),
                detached: None,
            },
        );
        let join = JoinFields {
            room: request.room.clone(),
            name: request.name.clone(),
            client: request.client,
            password: request.password.clone(),
            media: request.media,
            resume: request.resume.clone(),
            source: request.source,
        };
        let answer = self
            .request(owner, |req| Envelope::Join {
                from: self.me().to_owned(),
                req,
                conn: conn.0,
                join,
            })
            .await;
        match answer {
            Some(Envelope::Joined {
                result: Ok(granted),
                ..
            }) => {
                Metrics::add(&self.metrics.backplane_links, 1);
                Ok(Grant {
                    member: conn,
                    self_peer: granted.self_peer,
                    room: granted.room,
                    resume: granted.resume,
                    resumed: granted.resumed,
                    outbox: OutboxSource::Ready(rx),
                })
            }
            Some(Envelope::Joined {
                result: Err(refusal),
                ..
            }) => {
                lock(&self.links).remove(&conn);
                Err(RemoteJoinError::Refused(refusal))
            }
            _ => {
                if let Some(link) = lock(&self.links).remove(&conn) {
                    if let Some(kick) = link.kick {
                        request.kick = kick;
                    }
                }
                Err(RemoteJoinError::NoAnswer(request))
            }
        }
    }

    /// An action of member `conn` in a room held elsewhere.
    pub async fn act_remote(&self, conn: ConnId, action: RoomAction) -> Result<(), Refusal> {
        let Some(owner) = lock(&self.links).get(&conn).map(|l| l.owner.clone()) else {
            return Err(Refusal::new(
                ErrorCode::NotJoined,
                "you are no longer in the room",
            ));
        };
        let answer = self
            .request(&owner, |req| Envelope::Act {
                from: self.me().to_owned(),
                req,
                conn: conn.0,
                action,
            })
            .await;
        match answer {
            Some(Envelope::Done { result, .. }) => result,
            _ => {
                // The room's instance is gone or stuck: reconnecting finds
                // the room wherever it is now.
                self.kick_link(conn, Kick::Unavailable);
                Err(Refusal::new(
                    ErrorCode::NotJoined,
                    "the server holding the room did not answer; reconnecting",
                ))
            }
        }
    }

    /// Member `conn` leaves a room held elsewhere.
    pub fn leave_remote(&self, conn: ConnId, reason: LeaveReason) {
        if let Some(link) = self.remove_link(conn) {
            self.send(
                &link.owner,
                &Envelope::Leave {
                    from: self.me().to_owned(),
                    conn: conn.0,
                    reason,
                },
            );
        }
    }

    /// Member `conn`'s socket is gone; `rx` holds what it did not read.
    pub fn detach_remote(&self, conn: ConnId, rx: OutboxReceiver) {
        let mut links = lock(&self.links);
        let Some(link) = links.get_mut(&conn) else {
            return;
        };
        link.detached = Some(rx);
        let owner = link.owner.clone();
        drop(links);
        self.send(
            &owner,
            &Envelope::Detach {
                from: self.me().to_owned(),
                conn: conn.0,
            },
        );
    }

    fn remove_link(&self, conn: ConnId) -> Option<Link> {
        let link = lock(&self.links).remove(&conn);
        if link.is_some() {
            Metrics::add(&self.metrics.backplane_links, -1);
        }
        link
    }

    fn kick_link(&self, conn: ConnId, why: Kick) {
        if let Some(link) = self.remove_link(conn) {
            if let Some(kick) = link.kick {
                let _ = kick.send(why);
            }
        }
    }

    /// The writer: every write in order, pipelined.
    async fn write(self: Arc<Self>, mut writes: mpsc::Receiver<Out>) -> RedisResult<()> {
        let mut con = self.store.con();
        let mut batch = Vec::with_capacity(MAX_PIPELINE);
        while writes.recv_many(&mut batch, MAX_PIPELINE).await > 0 {
            // Let the other members' forwarders of the same room message
            // queue theirs, so the batch carries it once per instance.
            tokio::task::yield_now().await;
            while batch.len() < MAX_PIPELINE {
                match writes.try_recv() {
                    Ok(out) => batch.push(out),
                    Err(_) => break,
                }
            }
            let mut pipe = redis::pipe();
            let mut answers = Vec::new();
            let mut fanouts = Fanouts::default();
            for out in batch.drain(..) {
                if let Out::Deliver { to, conn, frames } = out {
                    fanouts.add(to, conn, frames);
                    continue;
                }
                // Anything else keeps its place after the deliveries before it.
                fanouts.publish(&mut pipe, &self.metrics);
                match out {
                    Out::Deliver { .. } => {}
                    Out::Publish { channel, payload } => {
                        pipe.publish(channel, payload).ignore();
                    }
                    Out::Save(snapshot) => self.store.save(&mut pipe, &snapshot),
                    Out::Drop(room) => self.store.drop_room(&mut pipe, &room),
                    Out::Claim(room, reply) => {
                        self.store.claim(&mut pipe, &room, self.config.max_rooms);
                        answers.push(Answer::Claim(reply));
                    }
                    Out::List(reply) => {
                        self.store.list(&mut pipe);
                        answers.push(Answer::List(reply));
                    }
                }
            }
            fanouts.publish(&mut pipe, &self.metrics);
            let values: Vec<redis::Value> = pipe.query_async(&mut con).await?;
            for (answer, value) in answers.into_iter().zip(values) {
                // A requester that stopped waiting is no concern of the writer.
                match answer {
                    Answer::Claim(reply) => drop(reply.send(Claim::parse(value))),
                    Answer::List(reply) => drop(reply.send(store::parse_list(value))),
                }
            }
        }
        Ok(())
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
            } => {
                let member = lock(&self.forwards)
                    .get(&(from.clone(), conn))
                    .map(|f| f.member.clone());
                let result = match member {
                    Some(member) => self.rooms.act(&member, action).await,
                    None => Err(Refusal::new(
                        ErrorCode::NotJoined,
                        "you are no longer in the room",
                    )),
                };
                self.send(&from, &Envelope::Done { req, result });
            }
            Envelope::Leave { from, conn, reason } => {
                let forward = lock(&self.forwards).remove(&(from, conn));
                if let Some(forward) = forward {
                    if let Some(task) = forward.task {
                        task.abort();
                    }
                    self.rooms.leave(forward.member, reason).await;
                }
            }
            Envelope::Detach { from, conn } => {
                let (stop, task) = {
                    let mut forwards = lock(&self.forwards);
                    let Some(forward) = forwards.get_mut(&(from.clone(), conn)) else {
                        return;
                    };
                    (forward.stop.take(), forward.task.take())
                };
                if let Some(stop) = stop {
                    let _ = stop.send(());
                }
                let rx = match task {
                    Some(task) => task.await.ok().flatten(),
                    None => None,
                };
                match rx {
                    Some(rx) => {
                        if let Some(forward) = lock(&self.forwards).get_mut(&(from.clone(), conn)) {
                            forward.released = Some(rx);
                        }
                        self.send(&from, &Envelope::Release { conn });
                    }
                    None => {
                        lock(&self.forwards).remove(&(from, conn));
                    }
                }
            }
            Envelope::Unread { from, conn, frames } => {
                let forward = lock(&self.forwards).remove(&(from, conn));
                if let Some(Forward {
                    member,
                    released: Some(mut rx),
                    ..
                }) = forward
                {
                    rx.put_back(frames.into_iter().map(Utf8Bytes::from).collect());
                    self.rooms.detach(member, rx).await;
                }
            }
            Envelope::Joined { req, .. } | Envelope::Done { req, .. } => {
                let waiter = lock(&self.pending).remove(&req);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(envelope);
                } else if let Envelope::Joined {
                    from,
                    conn,
                    result: Ok(_),
                    ..
                } = &envelope
                {
                    // The joiner gave up waiting: undo the join.
                    self.send(
                        from,
                        &Envelope::Leave {
                            from: self.me().to_owned(),
                            conn: *conn,
                            reason: LeaveReason::Disconnected,
                        },
                    );
                }
            }
            Envelope::Deliver { conn, frames } => self.deliver(
                ConnId(conn),
                frames.into_iter().map(Utf8Bytes::from).collect(),
            ),
            Envelope::Fanout { frames, deliveries } => {
                // Each distinct frame is made once and shared by its members.
                let frames: Vec<Utf8Bytes> = frames.into_iter().map(Utf8Bytes::from).collect();
                for (conn, indices) in deliveries {
                    let mine = indices
                        .iter()
                        .filter_map(|i| frames.get(*i as usize).cloned())
                        .collect();
                    self.deliver(ConnId(conn), mine);
                }
            }
            Envelope::Kick { conn, kick } => {
                let mut links = lock(&self.links);
                if let Some(sender) = links.get_mut(&ConnId(conn)).and_then(|l| l.kick.take()) {
                    let _ = sender.send(kick);
                }
            }
            Envelope::Closed { conn } => {
                self.remove_link(ConnId(conn));
            }
            Envelope::Release { conn } => {
                let Some(link) = self.remove_link(ConnId(conn)) else {
                    return;
                };
                let mut frames = Vec::new();
                if let Some(mut rx) = link.detached {
                    while let Some(frame) = rx.try_recv() {
                        frames.push(frame.to_string());
                    }
                }
                self.send(
                    &link.owner,
                    &Envelope::Unread {
                        from: self.me().to_owned(),
                        conn,
                        frames,
                    },
                );
            }
        }
    }

    /// Puts frames from a room's instance in member `conn`'s outbox.
    fn deliver(&self, conn: ConnId, frames: Vec<Utf8Bytes>) {
        let overflowed = {
            let links = lock(&self.links);
            let Some(link) = links.get(&conn) else {
                return;
            };
            frames
                .into_iter()
                .any(|frame| link.outbox.push(frame).is_err())
        };
        if overflowed {
            // The client cannot keep up: as with one instance, it is removed.
            if let Some(link) = self.remove_link(conn) {
                if let Some(kick) = link.kick {
                    let _ = kick.send(Kick::TooSlow);
                }
                self.send(
                    &link.owner,
                    &Envelope::Leave {
                        from: self.me().to_owned(),
                        conn: conn.0,
                        reason: LeaveReason::Disconnected,
                    },
                );
            }
        }
    }

    /// A join from another instance's connection, in a room held here.
    async fn on_join(self: &Arc<Self>, from: String, req: u64, conn: u64, join: JoinFields) {
        let alias = ConnId(self.next_alias.fetch_add(1, Ordering::Relaxed));
        let (kick, kicked) = oneshot::channel();
        let request = JoinRequest {
            room: join.room,
            name: join.name,
            client: join.client,
            password: join.password,
            media: join.media,
            resume: join.resume,
            conn: alias,
            source: join.source,
            kick,
        };
        let grant = match self.rooms.join(request).await {
            Ok(grant) => grant,
            Err(refusal) => {
                self.send(
                    &from,
                    &Envelope::Joined {
                        from: self.me().to_owned(),
                        req,
                        conn,
                        result: Err(refusal),
                    },
                );
                return;
            }
        };
        self.send(
            &from,
            &Envelope::Joined {
                from: self.me().to_owned(),
                req,
                conn,
                result: Ok(Granted {
                    self_peer: grant.self_peer,
                    room: grant.room,
                    resume: grant.resume,
                    resumed: grant.resumed,
                }),
            },
        );
        let (stop, stopped) = oneshot::channel();
        let task =
            tokio::spawn(
                self.clone()
                    .forward(from.clone(), conn, grant.outbox, kicked, stopped),
            );
        lock(&self.forwards).insert(
            (from, conn),
            Forward {
                member: grant.member,
                stop: Some(stop),
                task: Some(task),
                released: None,
            },
        );
    }

    /// Forwards member `conn`'s frames to instance `to` until stopped (then
    /// returns its queue) or until the member is removed.
    async fn forward(
        self: Arc<Self>,
        to: String,
        conn: u64,
        source: OutboxSource,
        mut kicked: oneshot::Receiver<Kick>,
        mut stop: oneshot::Receiver<()>,
    ) -> Option<OutboxReceiver> {
        let mut rx = match source {
            OutboxSource::Ready(rx) => rx,
            OutboxSource::Handover(handover) => tokio::select! {
                got = tokio::time::timeout(HANDOVER_TIMEOUT, handover) => match got {
                    Ok(Ok(rx)) => rx,
                    _ => {
                        self.send(&to, &Envelope::Kick { conn, kick: Kick::Replaced });
                        return None;
                    }
                },
                _ = &mut stop => return None,
            },
        };
        let mut kick_pending = true;
        loop {
            tokio::select! {
                biased;
                _ = &mut stop => return Some(rx),
                kick = &mut kicked, if kick_pending => {
                    kick_pending = false;
                    if let Ok(kick) = kick {
                        self.send(&to, &Envelope::Kick { conn, kick });
                    }
                }
                frame = rx.recv() => match frame {
                    Some(first) => {
                        let mut frames = vec![first];
                        while frames.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Some(frame) => frames.push(frame),
                                None => break,
                            }
                        }
                        self.out.push(Out::Deliver { to: to.clone(), conn, frames });
                    }
                    None => {
                        self.send(&to, &Envelope::Closed { conn });
                        lock(&self.forwards).remove(&(to, conn));
                        return None;
                    }
                },
            }
        }
    }

    /// The heartbeat: renews this instance's, checks the instances this one
    /// depends on, takes over the rooms of dead ones.
    async fn beat(self: Arc<Self>) -> RedisResult<()> {
        let mut every = tokio::time::interval(store::HEARTBEAT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if !self.store.heartbeat().await? {
                self.end("this instance's heartbeat expired");
                return Ok(());
            }
            self.check_peers().await?;
            for dead in self.store.dead_instances().await? {
                for room in self.store.rooms_of(&dead).await? {
                    // Restores the room here if this instance wins it.
                    let _ = self.claim(&room).await;
                }
                self.store.forget(&dead).await?;
            }
        }
    }

    /// Drops links and forwards of instances that died.
    async fn check_peers(&self) -> RedisResult<()> {
        let mut ids: Vec<String> = lock(&self.links)
            .values()
            .map(|l| l.owner.clone())
            .collect();
        ids.extend(lock(&self.forwards).keys().map(|(from, _)| from.clone()));
        ids.sort();
        ids.dedup();
        let alive = self.store.alive(&ids).await?;
        for (id, alive) in ids.into_iter().zip(alive) {
            if !alive {
                self.instance_died(&id).await;
            }
        }
        Ok(())
    }

    /// Instance `id` died: its members here are detached (their grace period
    /// starts), and members here of its rooms are told to reconnect.
    async fn instance_died(&self, id: &str) {
        warn!(instance = id, "instance died");
        let conns: Vec<ConnId> = lock(&self.links)
            .iter()
            .filter(|(_, l)| l.owner == id)
            .map(|(c, _)| *c)
            .collect();
        for conn in conns {
            self.kick_link(conn, Kick::Unavailable);
        }
        let gone: Vec<Forward> = {
            let mut forwards = lock(&self.forwards);
            let keys: Vec<(String, u64)> = forwards
                .keys()
                .filter(|(from, _)| from == id)
                .cloned()
                .collect();
            keys.iter().filter_map(|k| forwards.remove(k)).collect()
        };
        for forward in gone {
            if let Some(stop) = forward.stop {
                let _ = stop.send(());
            }
            let rx = match (forward.released, forward.task) {
                (Some(rx), _) => Some(rx),
                (None, Some(task)) => task.await.ok().flatten(),
                (None, None) => None,
            };
            if let Some(rx) = rx {
                self.rooms.detach(forward.member, rx).await;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_write_queue_is_told_not_waited_on() {
        let (tx, mut rx) = mpsc::channel(2);
        let full = Arc::new(Notify::new());
        let out = Outgoing {
            tx,
            full: full.clone(),
        };
        assert!(out.push(Out::Drop("a".into())));
        assert!(out.push(Out::Drop("b".into())));
        assert!(!out.push(Out::Drop("c".into())), "over the bound");
        // The overflow was signalled (a stored permit: no wait).
        tokio::time::timeout(Duration::from_secs(1), full.notified())
            .await
            .unwrap();
        assert!(rx.recv().await.is_some());
        assert!(out.push(Out::Drop("d".into())), "room again once drained");
    }
}
