//! The seam between connections and room state.
//!
//! A connection handler knows nothing of where rooms live: it turns frames
//! into calls on a [`Registry`] and writes what arrives in its member's
//! outbox. [`crate::rooms::Rooms`] keeps rooms in this process's memory; a
//! backplane that shares rooms between instances implements the same trait,
//! so handlers do not change.

use std::future::Future;
use std::sync::Arc;

use huddle_protocol::client::{
    CallJoin, ChatSend, RingReplySend, RingSend, SignalSend, TypingSend,
};
use huddle_protocol::model::{RoomState, RoomSummary};
use huddle_protocol::{ClientKind, ErrorCode, LeaveReason, Media, Peer};
use tokio::sync::{oneshot, watch};

use crate::outbox::OutboxReceiver;
use crate::source::Source;

/// Identifies one WebSocket connection for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ConnId(pub u64);

/// Why the registry tells a live connection to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Kick {
    /// A resume took the membership over: close 1000 `replaced`.
    Replaced,
    /// Its outbox overflowed and it was removed: close 1008 `too slow`.
    TooSlow,
    /// The room can no longer be served from this connection's server (its
    /// backplane was lost, or the instance that held the room died): close
    /// 1013 so the client reconnects and resumes, wherever it lands.
    Unavailable,
}

/// What a `join` asks, checked for everything that does not need room
/// state; a member's instance forwards it as it is to the room's instance.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JoinFields {
    /// Room name (valid).
    pub room: String,
    /// Display name (valid, trimmed).
    pub name: String,
    /// Client kind.
    pub client: ClientKind,
    /// Password; `None` when empty or absent.
    pub password: Option<String>,
    /// Initial media state.
    pub media: Media,
    /// Resume token, if the client has one.
    pub resume: Option<String>,
    /// Where it connects from: its rooms and members count against this
    /// source's quotas.
    pub source: Source,
}

/// A `join` from one connection.
#[derive(Debug)]
pub struct JoinRequest {
    /// What it asks.
    pub fields: JoinFields,
    /// The joining connection.
    pub conn: ConnId,
    /// Where the registry sends a [`Kick`] for this connection.
    pub kick: oneshot::Sender<Kick>,
}

/// How the joining connection gets its member's outbox.
#[derive(Debug)]
pub enum OutboxSource {
    /// Here it is.
    Ready(OutboxReceiver),
    /// The previous connection still holds it; it arrives when that one has
    /// closed. An error means the membership was taken over again meanwhile.
    Handover(oneshot::Receiver<OutboxReceiver>),
}

/// A successful join.
#[derive(Debug)]
pub struct Grant<M> {
    /// The handle for later calls.
    pub member: M,
    /// The member as others see it.
    pub self_peer: Peer,
    /// The room and its other members.
    pub room: RoomState,
    /// The fresh resume token.
    pub resume: String,
    /// Whether a dropped membership was taken back.
    pub resumed: bool,
    /// The member's outbox.
    pub outbox: OutboxSource,
}

/// A request the registry refused; answered with `error`, changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{message}")]
pub struct Refusal {
    /// The protocol error code.
    pub code: ErrorCode,
    /// For humans.
    pub message: String,
}

impl Refusal {
    /// A refusal with `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// What a joined member can do in its room.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum RoomAction {
    /// Send a chat message (the `rid` goes on the sender's copy).
    Chat(ChatSend, Option<String>),
    /// Typing indicator.
    Typing(TypingSend),
    /// Media state.
    Media(Media),
    /// Enter the call.
    CallJoin(CallJoin),
    /// Leave the call.
    CallLeave,
    /// Ring a member.
    Ring(RingSend),
    /// Answer a ring.
    RingReply(RingReplySend),
    /// Relay negotiation.
    Signal(SignalSend),
    /// Raise or lower the hand.
    Hand(bool),
    /// A reaction (already checked against the allowed set).
    Reaction(String),
}

/// Where rooms live.
pub trait Registry: Clone + Send + Sync + 'static {
    /// A joined member, as its connection refers to it.
    type Member: Send + Sync + std::fmt::Debug + 'static;

    /// Joins (or resumes) a room.
    fn join(
        &self,
        request: JoinRequest,
    ) -> impl Future<Output = Result<Grant<Self::Member>, Refusal>> + Send;

    /// Carries out an action of a member.
    fn act(
        &self,
        member: &Self::Member,
        action: RoomAction,
    ) -> impl Future<Output = Result<(), Refusal>> + Send;

    /// Removes the member for good, telling the others `reason`.
    fn leave(&self, member: Self::Member, reason: LeaveReason) -> impl Future<Output = ()> + Send;

    /// The member's connection is gone without `leave`: keep the member for
    /// its grace period, queueing into `outbox`.
    fn detach(
        &self,
        member: Self::Member,
        outbox: OutboxReceiver,
    ) -> impl Future<Output = ()> + Send;

    /// The current room list.
    fn room_list(&self) -> impl Future<Output = Arc<Vec<RoomSummary>>> + Send;

    /// Changes whenever a count in the room list changes.
    fn watch_rooms(&self) -> watch::Receiver<u64>;

    /// Whether new joins can be served (`/healthz` answers 503 otherwise).
    fn healthy(&self) -> bool {
        true
    }
}
