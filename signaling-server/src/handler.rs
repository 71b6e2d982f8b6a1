//! One client connection from its upgrade to its end: reads frames, applies
//! the rate limit, dispatches each message with one `match`, and writes what
//! the member's outbox receives.
//!
//! Direct answers (`joined`, `rooms`, `pong`, `error`) are written straight to
//! the socket; everything from the room arrives through the outbox, in the
//! room's order.
//!
//! Over 600 lines: one connection's life — its one `match` over the
//! protocol's messages and the checks before each — reads best whole.

use std::future::{Future, Pending};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::Either;
use huddle_protocol::client::{Join, RoomsRequest};
use huddle_protocol::codec::{decode_client, encode_server, DecodeErrorKind};
use huddle_protocol::error::close;
use huddle_protocol::limits::{check_room, normalize_name};
use huddle_protocol::{ClientMessage, ErrorCode, LeaveReason, ServerMessage};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{oneshot, watch};
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::connection::{Connection, Inbound};
use crate::delivery::{Delivery, Unacknowledged};
use crate::guesses::Slot;
use crate::outbox::{OutboxReceiver, HANDOVER_TIMEOUT, MAX_BATCH};
use crate::ratelimit::{RateLimiter, Verdict};
use crate::registry::{
    ConnId, Grant, JoinFields, JoinRequest, Kick, OutboxSource, Refusal, Registry, RoomAction,
};
use crate::secret::same_secret;
use crate::server::Context;
use crate::source::Source;

/// Time allowed for any one write to the socket before the client is
/// considered gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);

/// How soon after a write the frames kept for the client's acknowledgement
/// are looked at again: an idle connection lets go of them within about
/// this (a busy one also every 64 frames).
const SETTLE: Duration = Duration::from_secs(1);

/// The membership a connection holds.
#[derive(Debug)]
struct Membership<M> {
    member: M,
    outbox: OutboxReceiver,
    kick: oneshot::Receiver<Kick>,
}

/// Room-list watching.
#[derive(Debug)]
struct ListWatch {
    changes: watch::Receiver<u64>,
    /// A change is waiting to be sent.
    dirty: bool,
    /// Not before this (at most one list a second).
    next: Instant,
}

/// How the connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client went away (or must be treated so): a joined member is detached.
    Dropped,
    /// Close with this code and reason; a joined member is detached.
    Close(u16, &'static str),
    /// Close, and the member is removed for good with this reason.
    CloseAndRemove(u16, &'static str, LeaveReason),
    /// Close; the registry already removed or moved the member.
    Kicked(Kick),
}

/// What woke the connection up.
enum Event {
    Shutdown,
    Kick(Kick),
    Outbox(Option<Utf8Bytes>),
    Inbound(Inbound),
    ListChanged,
    SendList,
    Tick,
    JoinDeadline,
}

/// A client connection.
pub struct Handler<S, R: Registry> {
    conn: Connection<S>,
    id: ConnId,
    /// Where the client connects from.
    source: Source,
    ctx: Arc<Context<R>>,
    limiter: RateLimiter,
    joined: Option<Membership<R::Member>>,
    list: Option<ListWatch>,
    /// Passed a token check (with `rooms` or `join`).
    authorized: bool,
    last_heard: Instant,
    /// Until the connection has joined or listed rooms: when it is closed.
    join_by: Option<Instant>,
    /// Outbox frames written that the client has not acknowledged yet.
    sent: Unacknowledged,
}

/// Runs one socket write, bounded in time: a client that stops reading
/// is treated as gone rather than allowed to stall its handler.
async fn timed(
    write: impl std::future::Future<Output = Result<(), tokio_tungstenite::tungstenite::Error>>,
) -> Result<(), End> {
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(End::Dropped),
    }
}

impl<S, R: Registry> std::fmt::Debug for Handler<S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("id", &self.id)
            .field("joined", &self.joined.is_some())
            .finish_non_exhaustive()
    }
}

/// The future, or one that never completes. Not an `async fn`: that would
/// store the wrapped future three times over (argument, local, awaitee), and
/// these live in every idle connection's state.
fn maybe<F: Future>(f: Option<F>) -> Either<F, Pending<F::Output>> {
    match f {
        Some(f) => Either::Left(f),
        None => Either::Right(std::future::pending()),
    }
}

impl<S: AsyncRead + AsyncWrite + Delivery + Unpin, R: Registry> Handler<S, R> {
    /// A handler for an upgraded connection.
    pub fn new(conn: Connection<S>, id: ConnId, source: Source, ctx: Arc<Context<R>>) -> Self {
        let now = Instant::now();
        // A new connection must join a room or ask for the room list in
        // time; WebSocket pings do not count.
        let join_by = now + ctx.config.join_timeout;
        Handler {
            conn,
            id,
            source,
            limiter: RateLimiter::new(&ctx.config, now),
            ctx,
            joined: None,
            list: None,
            authorized: false,
            last_heard: now,
            join_by: Some(join_by),
            sent: Unacknowledged::default(),
        }
    }

    /// Serves the client until it leaves, drops, is closed or the server shuts down.
    ///
    /// A plain `fn` returning an `async move` block rather than an `async fn`:
    /// an `async fn` keeps a second copy of `self` in its state.
    #[allow(clippy::manual_async_fn)] // on purpose, see above
    pub fn run(mut self, mut shutdown: watch::Receiver<bool>) -> impl Future<Output = ()> {
        async move {
            // Both stay registered across events: re-creating them for every
            // message would insert into and remove from the timer wheel and the
            // shutdown signal's waiter list (shared by all connections) each time.
            let shutting_down = shutdown.changed();
            tokio::pin!(shutting_down);
            // The tick pings the client, and in between lets go of the
            // frames the client has acknowledged (see `SETTLE`).
            let mut ping_at = Instant::now() + self.ctx.config.ping_interval;
            let tick = sleep_until(ping_at);
            tokio::pin!(tick);
            let end = loop {
                let event = {
                    let joined = self.joined.as_mut();
                    let (kick, outbox) = match joined {
                        Some(m) => (Some(&mut m.kick), Some(&mut m.outbox)),
                        None => (None, None),
                    };
                    let (changes, send_at) = match self.list.as_mut() {
                        Some(w) if w.dirty => (None, Some(w.next)),
                        Some(w) => (Some(&mut w.changes), None),
                        None => (None, None),
                    };
                    tokio::select! {
                        biased;
                        _ = &mut shutting_down => Event::Shutdown,
                        k = maybe(kick) => Event::Kick(k.unwrap_or(Kick::Replaced)),
                        // What the client sent comes before what it is sent:
                        // a client that has gone (its close or EOF waiting
                        // here) is detached before anything more is written
                        // into its dead socket — written, it would be lost to
                        // its resume.
                        inbound = self.conn.read() => Event::Inbound(inbound),
                        frame = maybe(outbox.map(|o| o.recv())) => Event::Outbox(frame),
                        _ = maybe(changes.map(|c| c.changed())) => Event::ListChanged,
                        _ = maybe(send_at.map(sleep_until)) => Event::SendList,
                        _ = &mut tick => Event::Tick,
                        _ = maybe(self.join_by.map(sleep_until)) => Event::JoinDeadline,
                    }
                };
                let outcome = match event {
                    Event::Shutdown => Err(End::Close(close::GOING_AWAY, "server shutting down")),
                    Event::Kick(kick) => Err(End::Kicked(kick)),
                    // Rare or transient work is boxed: its state must not widen
                    // the future every idle connection keeps (see ARCHITECTURE.md).
                    Event::Outbox(Some(frame)) => {
                        let written = Box::pin(self.write_batch(frame)).await;
                        if self.sent.holds_any() {
                            let settled = Instant::now() + SETTLE;
                            if tick.deadline() > settled {
                                tick.as_mut().reset(settled);
                            }
                        }
                        written
                    }
                    // The room dropped the member's outbox: it is no longer a member.
                    Event::Outbox(None) => {
                        self.joined = None;
                        Ok(())
                    }
                    Event::Inbound(inbound) => {
                        self.last_heard = Instant::now();
                        Box::pin(self.inbound(inbound)).await
                    }
                    Event::ListChanged => {
                        if let Some(w) = self.list.as_mut() {
                            w.dirty = true;
                        }
                        Ok(())
                    }
                    Event::SendList => Box::pin(self.send_list(None)).await,
                    Event::JoinDeadline => Err(End::Close(close::POLICY, "join a room first")),
                    Event::Tick => {
                        self.sent.forget_acknowledged(self.conn.transport());
                        let now = Instant::now();
                        let pinging = now >= ping_at;
                        if pinging {
                            ping_at = now + self.ctx.config.ping_interval;
                        }
                        tick.as_mut().reset(match self.sent.holds_any() {
                            true => ping_at.min(now + SETTLE),
                            false => ping_at,
                        });
                        if !pinging {
                            continue;
                        }
                        let unfinished = self.conn.unfinished_since().is_some_and(|since| {
                            since.elapsed() >= self.ctx.config.message_timeout
                        });
                        if self.last_heard.elapsed() >= self.ctx.config.idle_timeout {
                            Err(End::Close(close::GOING_AWAY, "idle"))
                        } else if unfinished {
                            Err(End::Close(close::POLICY, "message not finished"))
                        } else {
                            Box::pin(timed(self.conn.ping())).await
                        }
                    }
                };
                if let Err(end) = outcome {
                    break end;
                }
            };
            Box::pin(self.finish(end)).await;
        }
    }

    /// Ends the connection and settles the membership.
    async fn finish(self, end: End) {
        let Handler {
            conn,
            ctx,
            joined,
            sent,
            ..
        } = self;
        if let Some(Membership {
            member, mut outbox, ..
        }) = joined
        {
            match end {
                End::Dropped
                | End::Close(..)
                | End::Kicked(Kick::Replaced)
                | End::Kicked(Kick::Unavailable) => {
                    // What the client never got is still owed to its resume.
                    let unacknowledged = sent.take(conn.transport());
                    if !unacknowledged.is_empty() {
                        tracing::info!(
                            frames = unacknowledged.len(),
                            "queued again what the dropped connection never acknowledged"
                        );
                        ctx.metrics
                            .frames_requeued
                            .fetch_add(unacknowledged.len() as u64, Ordering::Relaxed);
                        outbox.put_back(unacknowledged);
                    }
                    ctx.registry.detach(member, outbox).await
                }
                End::CloseAndRemove(_, _, reason) => ctx.registry.leave(member, reason).await,
                End::Kicked(Kick::TooSlow) => {}
            }
        }
        match end {
            End::Dropped => {}
            End::Close(code, reason) | End::CloseAndRemove(code, reason, _) => {
                conn.close(code, reason).await
            }
            End::Kicked(Kick::Replaced) => conn.close(close::NORMAL, "replaced").await,
            End::Kicked(Kick::TooSlow) => conn.close(close::POLICY, "too slow").await,
            End::Kicked(Kick::Unavailable) => conn.close(close::TRY_AGAIN_LATER, "reconnect").await,
        }
    }

    /// Writes `first` and whatever else the outbox holds, then flushes.
    async fn write_batch(&mut self, first: Utf8Bytes) -> Result<(), End> {
        let mut frames = vec![first];
        if let Some(m) = self.joined.as_mut() {
            while frames.len() < MAX_BATCH {
                match m.outbox.try_recv() {
                    Some(frame) => frames.push(frame),
                    None => break,
                }
            }
        }
        let conn = &mut self.conn;
        let start = conn.transport().written();
        let written = timed(async {
            for frame in &frames {
                conn.feed(frame.clone()).await?;
            }
            conn.flush().await
        })
        .await;
        let transport = self.conn.transport();
        let end = written.is_ok().then(|| transport.written());
        let limits = (
            self.ctx.config.outbox_messages,
            self.ctx.config.outbox_bytes,
        );
        self.sent.wrote(&frames, start, end, transport, limits);
        written
    }

    /// Sends a direct answer.
    async fn reply(&mut self, message: &ServerMessage, rid: Option<&str>) -> Result<(), End> {
        timed(self.conn.send(message, rid)).await
    }

    /// Answers with an error; `close` also ends the connection.
    async fn error(
        &mut self,
        code: ErrorCode,
        message: impl Into<String>,
        rid: Option<&str>,
    ) -> Result<(), End> {
        self.ctx.metrics.error(code);
        self.reply(&ServerMessage::error(code, message), rid)
            .await?;
        match code {
            ErrorCode::UnsupportedVersion => Err(End::Close(close::POLICY, "unsupported version")),
            ErrorCode::ServerFull => Err(End::Close(close::TRY_AGAIN_LATER, "server full")),
            _ => Ok(()),
        }
    }

    async fn refused(&mut self, refusal: Refusal, rid: Option<&str>) -> Result<(), End> {
        self.error(refusal.code, refusal.message, rid).await
    }

    async fn inbound(&mut self, inbound: Inbound) -> Result<(), End> {
        let text = match inbound {
            Inbound::Control => {
                // Pings and pongs cost a message of the rate limit like any
                // frame, but never answer `rate_limited`.
                return match self.limiter.check(0, Instant::now()) {
                    Verdict::Allow | Verdict::Drop { .. } => Ok(()),
                    Verdict::Close => {
                        self.ctx.metrics.error(ErrorCode::RateLimited);
                        Err(End::CloseAndRemove(
                            close::POLICY,
                            "rate limit exceeded",
                            LeaveReason::Kicked,
                        ))
                    }
                };
            }
            Inbound::Closed => return Err(End::Dropped),
            Inbound::TooLarge => {
                let limit = self.ctx.config.max_frame_bytes;
                self.error(
                    ErrorCode::TooLarge,
                    format!("frames are limited to {limit} bytes"),
                    None,
                )
                .await?;
                return Err(End::Close(close::TOO_BIG, "frame too large"));
            }
            Inbound::Binary => None,
            Inbound::Text(text) => Some(text),
        };
        let len = text.as_ref().map_or(0, |t| t.len());
        match self.limiter.check(len, Instant::now()) {
            Verdict::Allow => {}
            Verdict::Drop { notify: false } => return Ok(()),
            Verdict::Drop { notify: true } => {
                return self
                    .error(ErrorCode::RateLimited, "too many messages; slow down", None)
                    .await;
            }
            Verdict::Close => {
                self.ctx.metrics.error(ErrorCode::RateLimited);
                return Err(End::CloseAndRemove(
                    close::POLICY,
                    "rate limit exceeded",
                    LeaveReason::Kicked,
                ));
            }
        }
        let Some(text) = text else {
            self.ctx.metrics.received(crate::metrics::INVALID);
            return self
                .error(
                    ErrorCode::BadMessage,
                    "binary frames are not accepted",
                    None,
                )
                .await;
        };
        let frame = match decode_client(&text) {
            Ok(frame) => frame,
            Err(e) => {
                self.ctx
                    .metrics
                    .received(e.message_type.unwrap_or(crate::metrics::INVALID));
                let code = match (&e.kind, e.message_type) {
                    (DecodeErrorKind::UnsupportedVersion, _) => ErrorCode::UnsupportedVersion,
                    (_, Some("join")) if self.joined.is_some() => ErrorCode::AlreadyJoined,
                    _ => e.code(),
                };
                let message = if code == ErrorCode::AlreadyJoined {
                    "leave the room first".into()
                } else {
                    e.to_string()
                };
                return self.error(code, message, e.rid.as_deref()).await;
            }
        };
        let rid = frame.rid;
        self.dispatch(frame.message, rid).await
    }

    async fn dispatch(&mut self, message: ClientMessage, rid: Option<String>) -> Result<(), End> {
        let rid_ref = rid.as_deref();
        self.ctx.metrics.received(message.type_name());
        let action = match message {
            ClientMessage::Ping => return self.reply(&ServerMessage::Pong, rid_ref).await,
            ClientMessage::Rooms(request) => return self.rooms(request, rid_ref).await,
            ClientMessage::Join(join) => return self.join(join, rid_ref).await,
            ClientMessage::Leave => {
                return match self.joined.take() {
                    Some(m) => {
                        self.ctx.registry.leave(m.member, LeaveReason::Left).await;
                        Ok(())
                    }
                    None => {
                        self.error(ErrorCode::NotJoined, "you are not in a room", rid_ref)
                            .await
                    }
                };
            }
            ClientMessage::Chat(chat) => {
                if chat.attachment.is_some() && !self.ctx.config.attachments {
                    return self
                        .error(
                            ErrorCode::Forbidden,
                            "attachments are disabled on this server",
                            rid_ref,
                        )
                        .await;
                }
                RoomAction::Chat(chat, rid.clone())
            }
            ClientMessage::Typing(typing) => RoomAction::Typing(typing),
            ClientMessage::Media(media) => RoomAction::Media(media),
            ClientMessage::CallJoin(join) => RoomAction::CallJoin(join),
            ClientMessage::CallLeave => RoomAction::CallLeave,
            ClientMessage::Ring(ring) => RoomAction::Ring(ring),
            ClientMessage::RingReply(reply) => RoomAction::RingReply(reply),
            ClientMessage::Signal(signal) => RoomAction::Signal(signal),
            ClientMessage::Hand(hand) => RoomAction::Hand(hand.raised),
            ClientMessage::Reaction(reaction) => RoomAction::Reaction(reaction.emoji),
        };
        let Some(m) = self.joined.as_ref() else {
            return self
                .error(ErrorCode::NotJoined, "join a room first", rid_ref)
                .await;
        };
        match self.ctx.registry.act(&m.member, action).await {
            Ok(()) => Ok(()),
            Err(refusal) => self.refused(refusal, rid_ref).await,
        }
    }

    /// Whether `token` opens this server; closes with `forbidden` if not.
    async fn check_token(&mut self, token: Option<&str>, rid: Option<&str>) -> Result<(), End> {
        let tokens = &self.ctx.config.tokens;
        if tokens.is_empty() || self.authorized {
            return Ok(());
        }
        if token.is_some_and(|t| tokens.iter().any(|known| same_secret(known, t))) {
            self.authorized = true;
            return Ok(());
        }
        self.error(
            ErrorCode::Forbidden,
            "a valid access token is required",
            rid,
        )
        .await?;
        Err(End::Close(close::POLICY, "forbidden"))
    }

    async fn rooms(&mut self, request: RoomsRequest, rid: Option<&str>) -> Result<(), End> {
        if !self.ctx.config.room_list {
            return self
                .error(
                    ErrorCode::Forbidden,
                    "the room list is disabled on this server",
                    rid,
                )
                .await;
        }
        if self.joined.is_none() {
            self.check_token(request.token.as_deref(), rid).await?;
        }
        self.join_by = None;
        self.list = request.watch.then(|| ListWatch {
            changes: self.ctx.registry.watch_rooms(),
            dirty: false,
            next: Instant::now(),
        });
        self.send_list(rid).await
    }

    async fn send_list(&mut self, rid: Option<&str>) -> Result<(), End> {
        if let Some(w) = self.list.as_mut() {
            w.changes.borrow_and_update();
            w.dirty = false;
            w.next = Instant::now() + Duration::from_secs(1);
        }
        let rooms = self.ctx.registry.room_list().await;
        let frame = self.ctx.list_frames.frame(&rooms, rid);
        self.ctx.metrics.sent("rooms", 1);
        let conn = &mut self.conn;
        timed(async move {
            conn.feed(frame).await?;
            conn.flush().await
        })
        .await
    }

    async fn join(&mut self, join: Join, rid: Option<&str>) -> Result<(), End> {
        if self.joined.is_some() {
            return self
                .error(ErrorCode::AlreadyJoined, "leave the room first", rid)
                .await;
        }
        self.check_token(join.token.as_deref(), rid).await?;
        if let Err(e) = check_room(&join.room) {
            return self.error(e.code(), e.to_string(), rid).await;
        }
        let name = match normalize_name(&join.name) {
            Ok(name) => name.to_owned(),
            Err(e) => return self.error(e.code(), e.to_string(), rid).await,
        };
        // A password costs a slow hash to check or set: each source has a
        // budget of them.
        if join.password.is_some() {
            if let Err(after) = self.ctx.guesses.take_hash(self.source, Instant::now()) {
                return self
                    .error(
                        ErrorCode::RateLimited,
                        format!(
                            "too many joins with a password from your address; try again in {} s",
                            after.as_secs().max(1)
                        ),
                        rid,
                    )
                    .await;
            }
        }
        // Only a join that gives a password can guess one: it waits for its
        // source's slot (a join without one never checks a password).
        let slot = match join.password {
            Some(_) => self
                .ctx
                .guesses
                .reserve(self.source, &join.room, Instant::now()),
            None => Slot::Now,
        };
        match slot {
            Slot::Now => {}
            Slot::At(at) => sleep_until(at).await,
            Slot::Refused(after) => {
                self.error(
                    ErrorCode::RateLimited,
                    format!(
                        "too many wrong passwords from your address; try again in {} s",
                        after.as_secs().max(1)
                    ),
                    rid,
                )
                .await?;
                return Err(End::Close(close::POLICY, "too many wrong passwords"));
            }
        }
        let room_name = join.room.clone();
        let (kick, kick_rx) = oneshot::channel();
        let request = JoinRequest {
            fields: JoinFields {
                room: join.room,
                name,
                client: join.client,
                password: join.password,
                media: join.media,
                resume: join.resume,
                source: self.source,
            },
            conn: self.id,
            kick,
        };
        let grant = match self.ctx.registry.join(request).await {
            Ok(grant) => grant,
            Err(refusal) => {
                if refusal.code == ErrorCode::BadPassword {
                    self.ctx
                        .guesses
                        .failed(self.source, &room_name, Instant::now());
                }
                return self.refused(refusal, rid).await;
            }
        };
        let Grant {
            member,
            self_peer,
            room,
            resume,
            resumed,
            outbox,
        } = grant;
        let outbox = match outbox {
            OutboxSource::Ready(rx) => rx,
            OutboxSource::Handover(handover) => {
                match tokio::time::timeout(HANDOVER_TIMEOUT, handover).await {
                    Ok(Ok(rx)) => rx,
                    // Replaced again meanwhile, or the old connection never let go.
                    _ => return Err(End::Close(close::NORMAL, "replaced")),
                }
            }
        };
        let with_turn = crate::turn::turn_on_join(&self.ctx.config, self_peer.in_call);
        let ice_servers = crate::turn::ice_servers(
            &self.ctx.config,
            &self_peer.id,
            SystemTime::now(),
            with_turn,
        );
        let joined = ServerMessage::Joined {
            self_peer,
            room,
            ice_servers,
            resume,
            resumed,
            limits: self.ctx.config.limits(),
        };
        self.joined = Some(Membership {
            member,
            outbox,
            kick: kick_rx,
        });
        self.join_by = None;
        self.ctx.metrics.sent("joined", 1);
        let frame = encode_server(&joined, rid);
        let conn = &mut self.conn;
        timed(async move {
            conn.feed(frame.into()).await?;
            conn.flush().await
        })
        .await
    }
}
