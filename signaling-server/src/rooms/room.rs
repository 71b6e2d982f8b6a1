//! One room: its members in join order, its call, and every rule about who
//! receives what.
//!
//! All of it runs under the room's mutex, so the messages of one room are
//! put in each member's outbox in one total order, and delivery never waits
//! (outboxes are bounded and pushed without blocking). A member whose outbox
//! overflows is removed once the action that overflowed it is done.
//!
//! Over 600 lines on purpose: every rule about who receives what is here,
//! read together (a rule split from the others is one a change forgets),
//! and a quarter of the file is their unit tests.

use std::time::{Duration, SystemTime};

use huddle_protocol::client::{
    CallJoin, ChatSend, RingReplySend, RingSend, SignalSend, TypingSend,
};
use huddle_protocol::codec::encode_server;
use huddle_protocol::model::{CallState, RoomState, RoomSummary};
use huddle_protocol::{ErrorCode, LeaveReason, Peer, PeerId, ServerMessage};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::snapshot::{MemberSnapshot, RoomSnapshot};
use super::Shared;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, OutboxReceiver};
use crate::registry::{ConnId, Kick, Refusal, RoomAction};
use crate::secret::PasswordHash;
use crate::source::Ticket;

/// How a member is connected.
#[derive(Debug)]
pub(super) enum Connection {
    /// A connection drains the outbox.
    Live {
        conn: ConnId,
        kick: Option<oneshot::Sender<Kick>>,
    },
    /// A resume replaced connection `old`, which was told to close; its
    /// outbox receiver goes to `waiter` (the new connection `conn`) when it lets go.
    Moving {
        old: ConnId,
        conn: ConnId,
        kick: Option<oneshot::Sender<Kick>>,
        waiter: oneshot::Sender<OutboxReceiver>,
    },
    /// No connection: the grace period `grace_id` runs, the outbox fills.
    Detached {
        grace_id: u64,
        rx: Option<OutboxReceiver>,
    },
}

impl Connection {
    /// Whether `conn` is the connection that currently speaks for the member.
    pub(super) fn is(&self, conn: ConnId) -> bool {
        matches!(self, Connection::Live { conn: c, .. } | Connection::Moving { conn: c, .. } if *c == conn)
    }

    fn kick(&mut self, why: Kick) {
        if let Connection::Live { kick, .. } | Connection::Moving { kick, .. } = self {
            if let Some(kick) = kick.take() {
                // The connection may be gone already; then there is nobody to tell.
                let _ = kick.send(why);
            }
        }
    }
}

/// A member of a room.
#[derive(Debug)]
pub(super) struct Member {
    pub(super) peer: Peer,
    pub(super) outbox: Outbox,
    pub(super) connection: Connection,
    /// The digest of its current resume token (the token itself is only
    /// ever handed to the member).
    pub(super) resume_token: String,
    /// Its place in its source's member quota (none when restored from a
    /// snapshot); given back when the member is dropped.
    pub(super) _quota: Option<Ticket>,
    /// Its budgets for ringing someone and for starting a call: each alerts
    /// other people, so each is limited by an [`AlertBudget`].
    pub(super) alerted: Alerted,
}

/// A member's budgets for alerting others.
#[derive(Debug, Default)]
pub(super) struct Alerted {
    ring: AlertBudget,
    call_start: AlertBudget,
}

/// How many rings (or call starts) a member may make at once: enough to
/// cancel and ring again, or to ring two people in a row.
pub const ALERT_BURST: f64 = 3.0;
/// After the burst, one more alert per this long.
pub const ALERT_EVERY: Duration = Duration::from_secs(10);

/// A token bucket of alerts: [`ALERT_BURST`] at once, then one per
/// [`ALERT_EVERY`]. A flood at one victim rings at most three times, then
/// six times a minute.
#[derive(Debug, Default)]
pub(super) struct AlertBudget {
    /// Alerts left at `last` (meaningless before the first).
    left: f64,
    last: Option<Instant>,
}

impl AlertBudget {
    /// Takes one alert, if there is one left.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refilled = match self.last {
            None => ALERT_BURST,
            Some(t) => (self.left
                + now.duration_since(t).as_secs_f64() / ALERT_EVERY.as_secs_f64())
            .min(ALERT_BURST),
        };
        self.last = Some(now);
        let allowed = refilled >= 1.0;
        self.left = if allowed { refilled - 1.0 } else { refilled };
        allowed
    }
}

fn too_soon(what: &str) -> Refusal {
    Refusal::new(
        ErrorCode::RateLimited,
        format!(
            "{what}: at most {ALERT_BURST} in a row, then one every {} s",
            ALERT_EVERY.as_secs()
        ),
    )
}

#[derive(Debug)]
struct Call {
    started_at: u64,
    started: Instant,
    /// In the order they joined the call.
    peers: Vec<PeerId>,
}

/// A room's state.
#[derive(Debug)]
pub(super) struct Room {
    pub(super) name: String,
    password: Option<PasswordHash>,
    /// Its place in its creator's room quota; given back when the room empties.
    pub(super) creator: Option<Ticket>,
    pub(super) members: Vec<Member>,
    call: Option<Call>,
    next_message: u64,
    overflowed: Vec<PeerId>,
    /// Something a [`RoomSnapshot`] holds changed since the last one.
    changed: bool,
}

/// Milliseconds since the Unix epoch.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn unknown_peer(to: &str) -> Refusal {
    Refusal::new(
        ErrorCode::UnknownPeer,
        format!("no other member {to:?} in this room"),
    )
}

/// What a joiner showed of the room's password, checked (slowly) before
/// the room's lock is taken.
#[derive(Debug)]
pub(super) enum Proof {
    /// No password given.
    None,
    /// The given password matches this hash.
    Knows(PasswordHash),
    /// The given password matched no hash it was checked against.
    Wrong,
    /// The given password, hashed for a room it creates.
    Hashed(PasswordHash),
}

/// Why a joiner cannot be admitted.
#[derive(Debug)]
pub(super) enum NotAdmitted {
    /// Answer the joiner with this.
    Refused(Refusal),
    /// The proof was made against another state of the room (created,
    /// emptied or replaced meanwhile): check again.
    Stale,
}

impl Room {
    pub(super) fn new(
        name: String,
        password: Option<PasswordHash>,
        creator: Option<Ticket>,
    ) -> Self {
        Room {
            name,
            password,
            creator,
            members: Vec::new(),
            call: None,
            next_message: 1,
            overflowed: Vec::new(),
            changed: true,
        }
    }

    /// A room rebuilt from `snapshot`, its members given by `member` (which
    /// makes each one's outbox and connection state).
    pub(super) fn restore(
        snapshot: RoomSnapshot,
        mut member: impl FnMut(Peer, String) -> Member,
    ) -> Self {
        let now = now_ms();
        Room {
            name: snapshot.name,
            password: snapshot
                .password
                .as_deref()
                .and_then(PasswordHash::from_stored),
            creator: None,
            members: snapshot
                .members
                .into_iter()
                .map(|m| member(m.peer, m.resume))
                .collect(),
            call: snapshot.call.map(|c| Call {
                started_at: c.started_at,
                started: Instant::now()
                    .checked_sub(Duration::from_millis(now.saturating_sub(c.started_at)))
                    .unwrap_or_else(Instant::now),
                peers: c.peers,
            }),
            next_message: snapshot.next_message,
            overflowed: Vec::new(),
            changed: false,
        }
    }

    /// Everything needed to rebuild the room elsewhere, if it changed since
    /// the last call.
    pub(super) fn take_snapshot(&mut self) -> Option<RoomSnapshot> {
        if !std::mem::take(&mut self.changed) || self.is_empty() {
            return None;
        }
        Some(RoomSnapshot {
            name: self.name.clone(),
            password: self.password.as_ref().map(|h| h.as_str().to_owned()),
            members: self
                .members
                .iter()
                .map(|m| MemberSnapshot {
                    peer: m.peer.clone(),
                    resume: m.resume_token.clone(),
                })
                .collect(),
            call: self.call.as_ref().map(|c| CallState {
                started_at: c.started_at,
                peers: c.peers.clone(),
            }),
            next_message: self.next_message,
        })
    }

    /// Marks a change a snapshot must see (a new resume token, say).
    pub(super) fn touch(&mut self) {
        self.changed = true;
    }

    /// Tells every connected member's connection to close with `why`.
    pub(super) fn kick_all(&mut self, why: Kick) {
        for member in &mut self.members {
            member.connection.kick(why);
        }
    }

    /// Whether the room has been emptied (it is then dead and replaced by the
    /// next join of its name).
    pub(super) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub(super) fn summary(&self) -> RoomSummary {
        RoomSummary {
            name: self.name.clone(),
            peers: self.members.len() as u32,
            in_call: self.call.as_ref().map_or(0, |c| c.peers.len() as u32),
            locked: self.password.is_some(),
        }
    }

    pub(super) fn index_of(&self, id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.peer.id == id)
    }

    /// The room's password hash, if it is locked.
    pub(super) fn password(&self) -> Option<&PasswordHash> {
        self.password.as_ref()
    }

    /// Checks password and capacity for a new member.
    pub(super) fn admit(&self, proof: &Proof, max_peers: u32) -> Result<(), NotAdmitted> {
        if let Some(expected) = &self.password {
            match proof {
                // Knows it, or set it (this room is the one the join created).
                Proof::Knows(hash) | Proof::Hashed(hash) if hash == expected => {}
                Proof::None | Proof::Wrong => {
                    return Err(NotAdmitted::Refused(Refusal::new(
                        ErrorCode::BadPassword,
                        format!("room {} needs the right password", self.name),
                    )))
                }
                Proof::Knows(_) | Proof::Hashed(_) => return Err(NotAdmitted::Stale),
            }
        }
        if self.members.len() >= max_peers as usize {
            return Err(NotAdmitted::Refused(Refusal::new(
                ErrorCode::RoomFull,
                format!("room {} is full ({max_peers} peers)", self.name),
            )));
        }
        Ok(())
    }

    /// A peer id no current member has.
    pub(super) fn fresh_id(&self) -> PeerId {
        loop {
            let id = crate::ids::peer_id();
            if self.index_of(&id).is_none() {
                return id;
            }
        }
    }

    /// Adds a member, telling the others.
    pub(super) fn add(&mut self, shared: &Shared, member: Member) {
        let joined = ServerMessage::PeerJoined {
            peer: member.peer.clone(),
        };
        self.broadcast(shared, &joined, None);
        self.members.push(member);
        self.changed = true;
        Metrics::add(&shared.metrics.members, 1);
        self.settle(shared);
    }

    /// What the joiner `me` sees of the room.
    pub(super) fn state_for(&self, me: &str) -> RoomState {
        RoomState {
            name: self.name.clone(),
            locked: self.password.is_some(),
            peers: self
                .members
                .iter()
                .filter(|m| m.peer.id != me)
                .map(|m| m.peer.clone())
                .collect(),
            call: self.call.as_ref().map(|c| CallState {
                started_at: c.started_at,
                peers: c.peers.clone(),
            }),
        }
    }

    fn push(&mut self, index: usize, frame: Utf8Bytes) {
        let member = &self.members[index];
        if member.outbox.push(frame).is_err() && !self.overflowed.contains(&member.peer.id) {
            self.overflowed.push(member.peer.id.clone());
        }
    }

    /// Sends `message` to one member.
    fn send(&mut self, shared: &Shared, index: usize, message: &ServerMessage, rid: Option<&str>) {
        let frame = Utf8Bytes::from(encode_server(message, rid));
        shared.metrics.sent(message.type_name(), 1);
        self.push(index, frame);
    }

    /// Sends `message` to every member but `except`, encoding it once.
    fn broadcast(&mut self, shared: &Shared, message: &ServerMessage, except: Option<&str>) {
        let frame = Utf8Bytes::from(encode_server(message, None));
        let mut n = 0;
        for i in 0..self.members.len() {
            if Some(self.members[i].peer.id.as_str()) != except {
                self.push(i, frame.clone());
                n += 1;
            }
        }
        shared.metrics.sent(message.type_name(), n);
    }

    /// Removes members whose outbox overflowed, which may overflow others.
    pub(super) fn settle(&mut self, shared: &Shared) {
        while let Some(id) = self.overflowed.pop() {
            if let Some(index) = self.index_of(&id) {
                self.members[index].connection.kick(Kick::TooSlow);
                self.remove(shared, index, LeaveReason::Disconnected);
            }
        }
    }

    /// Removes the member at `index`, telling the others why.
    pub(super) fn remove(&mut self, shared: &Shared, index: usize, reason: LeaveReason) {
        let member = self.members.remove(index);
        self.changed = true;
        Metrics::add(&shared.metrics.members, -1);
        shared.forget_token(&member.resume_token);
        let id = member.peer.id;
        self.broadcast(
            shared,
            &ServerMessage::PeerLeft {
                id: id.clone(),
                reason,
            },
            None,
        );
        self.leave_call(shared, &id);
        shared.list_changed();
    }

    /// Takes `id` out of the call; ends the call when it was the last.
    fn leave_call(&mut self, shared: &Shared, id: &str) {
        let Some(call) = &mut self.call else { return };
        let Some(pos) = call.peers.iter().position(|p| p == id) else {
            return;
        };
        call.peers.remove(pos);
        self.changed = true;
        if call.peers.is_empty() {
            let duration_ms = call.started.elapsed().as_millis() as u64;
            self.call = None;
            Metrics::add(&shared.metrics.calls, -1);
            self.broadcast(shared, &ServerMessage::CallEnded { duration_ms }, None);
        }
        shared.list_changed();
    }

    /// Carries out `action` of the member at `index`.
    pub(super) fn act(
        &mut self,
        shared: &Shared,
        index: usize,
        action: RoomAction,
    ) -> Result<(), Refusal> {
        let from = self.members[index].peer.id.clone();
        let result = match action {
            RoomAction::Chat(chat, rid) => self.chat(shared, index, &from, chat, rid.as_deref()),
            RoomAction::Typing(typing) => self.typing(shared, &from, typing),
            RoomAction::Media(media) => {
                self.update_peer(shared, index, |p| p.media = media);
                Ok(())
            }
            RoomAction::CallJoin(join) => self.call_join(shared, index, &from, join),
            RoomAction::CallLeave => {
                if self.members[index].peer.in_call {
                    // A raised hand is a request to speak in the call: it goes down with it.
                    self.update_peer(shared, index, |p| {
                        p.in_call = false;
                        p.hand = false;
                    });
                    self.leave_call(shared, &from);
                }
                Ok(())
            }
            RoomAction::Ring(RingSend { to, video }) => {
                let target = self.other(&from, &to)?;
                if !self.members[index].alerted.ring.take() {
                    return Err(too_soon("too many rings"));
                }
                self.send(shared, target, &ServerMessage::Ring { from, video }, None);
                Ok(())
            }
            RoomAction::RingReply(RingReplySend { to, accept }) => {
                let target = self.other(&from, &to)?;
                self.send(
                    shared,
                    target,
                    &ServerMessage::RingReply { from, accept },
                    None,
                );
                Ok(())
            }
            RoomAction::Hand(raised) => {
                if self.members[index].peer.hand != raised {
                    self.update_peer(shared, index, |p| p.hand = raised);
                }
                Ok(())
            }
            RoomAction::Reaction(emoji) => {
                let message = ServerMessage::Reaction {
                    from: from.clone(),
                    emoji,
                };
                self.broadcast(shared, &message, Some(&from));
                Ok(())
            }
            RoomAction::Signal(SignalSend { to, data }) => {
                let target = self.other(&from, &to)?;
                self.send(shared, target, &ServerMessage::Signal { from, data }, None);
                Ok(())
            }
        };
        self.settle(shared);
        result
    }

    /// The index of member `to`, which must not be `from`.
    fn other(&self, from: &str, to: &str) -> Result<usize, Refusal> {
        match self.index_of(to) {
            Some(i) if to != from => Ok(i),
            _ => Err(unknown_peer(to)),
        }
    }

    fn chat(
        &mut self,
        shared: &Shared,
        index: usize,
        from: &str,
        chat: ChatSend,
        rid: Option<&str>,
    ) -> Result<(), Refusal> {
        let target = match &chat.to {
            Some(to) => Some(self.other(from, to)?),
            None => None,
        };
        let id = format!("m_{}", self.next_message);
        self.next_message += 1;
        self.changed = true;
        let message = ServerMessage::Chat {
            id,
            from: from.to_owned(),
            to: chat.to,
            text: chat.text,
            ts: now_ms(),
            attachment: chat.attachment,
        };
        match target {
            Some(target) => self.send(shared, target, &message, None),
            None => self.broadcast(shared, &message, Some(from)),
        }
        // The sender's copy, with its rid, is the delivery confirmation.
        self.send(shared, index, &message, rid);
        Ok(())
    }

    fn typing(&mut self, shared: &Shared, from: &str, typing: TypingSend) -> Result<(), Refusal> {
        match typing.to {
            Some(to) => {
                let target = self.other(from, &to)?;
                let message = ServerMessage::Typing {
                    from: from.to_owned(),
                    active: typing.active,
                    to: Some(to),
                };
                self.send(shared, target, &message, None);
            }
            None => {
                let message = ServerMessage::Typing {
                    from: from.to_owned(),
                    active: typing.active,
                    to: None,
                };
                self.broadcast(shared, &message, Some(from));
            }
        }
        Ok(())
    }

    fn call_join(
        &mut self,
        shared: &Shared,
        index: usize,
        from: &str,
        join: CallJoin,
    ) -> Result<(), Refusal> {
        let before: Vec<PeerId> = match &self.call {
            Some(call) => call.peers.iter().filter(|p| *p != from).cloned().collect(),
            None => Vec::new(),
        };
        // The call's ICE servers, with fresh TURN credentials: a relay is
        // handed to members of a call only.
        let joined = ServerMessage::CallJoined {
            peers: before,
            ice_servers: crate::turn::ice_servers(&shared.config, from, SystemTime::now(), true),
        };
        if self.members[index].peer.in_call {
            self.send(shared, index, &joined, None);
            return Ok(());
        }
        if self.call.is_none() && !self.members[index].alerted.call_start.take() {
            return Err(too_soon("too many calls started"));
        }
        self.send(shared, index, &joined, None);
        self.changed = true;
        match &mut self.call {
            Some(call) => call.peers.push(from.to_owned()),
            None => {
                let started_at = now_ms();
                self.call = Some(Call {
                    started_at,
                    started: Instant::now(),
                    peers: vec![from.to_owned()],
                });
                Metrics::add(&shared.metrics.calls, 1);
                let started = ServerMessage::CallStarted {
                    by: from.to_owned(),
                    video: join.video,
                    started_at,
                };
                self.broadcast(shared, &started, None);
            }
        }
        self.update_peer(shared, index, |p| p.in_call = true);
        shared.list_changed();
        Ok(())
    }

    /// Changes the member at `index` and tells the others.
    fn update_peer(&mut self, shared: &Shared, index: usize, change: impl FnOnce(&mut Peer)) {
        change(&mut self.members[index].peer);
        self.changed = true;
        let peer = self.members[index].peer.clone();
        let id = peer.id.clone();
        self.broadcast(shared, &ServerMessage::PeerUpdated { peer }, Some(&id));
    }
}

/// The delivery rules, on a room alone: who gets which frame, and what a
/// refused action leaves (nothing). Time is tokio's, paused where it counts.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::AtomicU64;
    use std::sync::{Arc, Mutex};

    use huddle_protocol::client::{ChatSend, RingSend, TypingSend};
    use huddle_protocol::codec::decode_server;
    use huddle_protocol::model::{ClientKind, Media};
    use tokio::sync::watch;

    use super::*;
    use crate::config::Config;
    use crate::outbox::outbox;

    fn shared() -> Shared {
        let (list_version, _) = watch::channel(0);
        Shared {
            config: Arc::new(Config::default()),
            metrics: Arc::default(),
            resume: Mutex::new(HashMap::new()),
            list_version,
            list_cache: Mutex::new((u64::MAX, Arc::new(Vec::new()))),
            next_grace_id: AtomicU64::new(1),
            mirror: None,
            quotas: Arc::default(),
        }
    }

    /// A room of members `p_a`, `p_b`, `p_c`, and what each receives; the
    /// joins' own frames are read away.
    fn room(shared: &Shared) -> (Room, Vec<OutboxReceiver>) {
        let mut room = Room::new("r".into(), None, None);
        let mut inboxes = Vec::new();
        for (i, id) in ["p_a", "p_b", "p_c"].into_iter().enumerate() {
            let (tx, rx) = outbox(64, 1 << 20);
            room.add(
                shared,
                Member {
                    peer: Peer {
                        id: id.into(),
                        name: id.into(),
                        client: ClientKind::Browser,
                        joined_at: 0,
                        in_call: false,
                        media: Media::default(),
                        hand: false,
                    },
                    outbox: tx,
                    connection: Connection::Live {
                        conn: ConnId(i as u64),
                        kick: None,
                    },
                    resume_token: String::new(),
                    _quota: None,
                    alerted: Alerted::default(),
                },
            );
            inboxes.push(rx);
        }
        for inbox in &mut inboxes {
            drain(inbox);
        }
        (room, inboxes)
    }

    /// The frames waiting in `inbox`, decoded: (rid, message).
    fn drain(inbox: &mut OutboxReceiver) -> Vec<(Option<String>, ServerMessage)> {
        std::iter::from_fn(|| inbox.try_recv())
            .map(|frame| {
                let frame = decode_server(&frame).expect("the server's own frame");
                (frame.rid, frame.message)
            })
            .collect()
    }

    fn chat(text: &str, to: Option<&str>) -> RoomAction {
        RoomAction::Chat(
            ChatSend {
                text: text.into(),
                to: to.map(Into::into),
                attachment: None,
            },
            Some("r1".into()),
        )
    }

    #[test]
    fn a_room_message_reaches_the_others_and_confirms_to_the_sender_with_its_rid() {
        let shared = shared();
        let (mut room, mut inboxes) = room(&shared);
        room.act(&shared, 0, chat("hi", None)).unwrap();
        let sender = drain(&mut inboxes[0]);
        assert!(
            matches!(&sender[..], [(Some(rid), ServerMessage::Chat { from, text, .. })]
                if rid == "r1" && from == "p_a" && text == "hi"),
            "{sender:?}"
        );
        for inbox in &mut inboxes[1..] {
            let got = drain(inbox);
            assert!(
                matches!(&got[..], [(None, ServerMessage::Chat { from, to: None, .. })] if from == "p_a"),
                "{got:?}"
            );
        }
    }

    #[test]
    fn a_direct_message_reaches_exactly_its_addressee() {
        let shared = shared();
        let (mut room, mut inboxes) = room(&shared);
        room.act(&shared, 0, chat("psst", Some("p_c"))).unwrap();
        assert_eq!(drain(&mut inboxes[0]).len(), 1, "the sender's confirmation");
        assert!(drain(&mut inboxes[1]).is_empty(), "p_b sees nothing of it");
        let got = drain(&mut inboxes[2]);
        assert!(
            matches!(&got[..], [(None, ServerMessage::Chat { to: Some(to), .. })] if to == "p_c"),
            "{got:?}"
        );
    }

    #[test]
    fn an_unknown_or_own_addressee_is_refused_and_nothing_is_delivered() {
        let shared = shared();
        let (mut room, mut inboxes) = room(&shared);
        for to in ["p_zz", "p_a"] {
            let refusal = room.act(&shared, 0, chat("x", Some(to))).unwrap_err();
            assert_eq!(refusal.code, ErrorCode::UnknownPeer);
        }
        let ring = RoomAction::Ring(RingSend {
            to: "p_zz".into(),
            video: true,
        });
        assert_eq!(
            room.act(&shared, 0, ring).unwrap_err().code,
            ErrorCode::UnknownPeer
        );
        for inbox in &mut inboxes {
            assert!(drain(inbox).is_empty());
        }
        // A refused message takes no message id.
        room.act(&shared, 0, chat("y", None)).unwrap();
        let got = drain(&mut inboxes[1]);
        assert!(
            matches!(&got[..], [(None, ServerMessage::Chat { id, .. })] if id == "m_1"),
            "{got:?}"
        );
    }

    #[test]
    fn typing_goes_to_the_others_or_to_one_never_back() {
        let shared = shared();
        let (mut room, mut inboxes) = room(&shared);
        let typing = |to: Option<&str>| {
            RoomAction::Typing(TypingSend {
                active: true,
                to: to.map(Into::into),
            })
        };
        room.act(&shared, 1, typing(None)).unwrap();
        assert!(drain(&mut inboxes[1]).is_empty());
        assert_eq!(drain(&mut inboxes[0]).len(), 1);
        assert_eq!(drain(&mut inboxes[2]).len(), 1);
        room.act(&shared, 1, typing(Some("p_a"))).unwrap();
        assert_eq!(drain(&mut inboxes[0]).len(), 1);
        assert!(drain(&mut inboxes[1]).is_empty());
        assert!(drain(&mut inboxes[2]).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn rings_come_three_at_once_then_one_per_ten_seconds() {
        let shared = shared();
        let (mut room, mut inboxes) = room(&shared);
        let ring = || {
            RoomAction::Ring(RingSend {
                to: "p_b".into(),
                video: false,
            })
        };
        for _ in 0..ALERT_BURST as usize {
            room.act(&shared, 0, ring()).unwrap();
        }
        let refusal = room.act(&shared, 0, ring()).unwrap_err();
        assert_eq!(refusal.code, ErrorCode::RateLimited);
        assert_eq!(drain(&mut inboxes[1]).len(), ALERT_BURST as usize);
        tokio::time::advance(ALERT_EVERY - Duration::from_millis(100)).await;
        assert!(room.act(&shared, 0, ring()).is_err(), "not yet");
        tokio::time::advance(Duration::from_millis(200)).await;
        room.act(&shared, 0, ring()).unwrap();
        assert_eq!(drain(&mut inboxes[1]).len(), 1);
        // Another member's budget is its own.
        let other = RoomAction::Ring(RingSend {
            to: "p_a".into(),
            video: false,
        });
        room.act(&shared, 2, other).unwrap();
    }
}
