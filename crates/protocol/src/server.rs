//! Messages the server sends to clients.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::ErrorCode;
use crate::model::{
    Attachment, IceServer, LeaveReason, Peer, PeerId, RoomState, RoomSummary, ServerLimits,
};
use crate::signal::SignalData;

/// Everything the server sends. Direct answers (`joined`, `rooms`, `pong`,
/// `error`, the sender's echo of `chat`) also carry the request's `rid`
/// (see [`crate::codec::encode_server`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The room list.
    Rooms {
        /// Every room, sorted by name.
        rooms: Vec<RoomSummary>,
    },
    /// Answer to `ping`.
    Pong,
    /// The sender is in the room.
    Joined {
        /// The joiner as the others see it.
        #[serde(rename = "self")]
        #[ts(rename = "self")]
        self_peer: Peer,
        /// The room and its other members.
        room: RoomState,
        /// STUN/TURN servers to use for calls in this room.
        ice_servers: Vec<IceServer>,
        /// Secret, single-use token to resume this membership after a drop.
        resume: String,
        /// Whether this `join` took back a dropped membership.
        resumed: bool,
        /// Limits the server enforces.
        limits: ServerLimits,
    },
    /// Someone joined the room.
    PeerJoined {
        /// The new member.
        peer: Peer,
    },
    /// Someone left the room.
    PeerLeft {
        /// Its id.
        id: PeerId,
        /// Why.
        reason: LeaveReason,
    },
    /// A member's state changed (media, call membership).
    PeerUpdated {
        /// The member as it is now.
        peer: Peer,
    },
    /// A chat message, stamped by the server.
    Chat {
        /// Server-assigned message id, unique within the room.
        id: String,
        /// Sender.
        from: PeerId,
        /// Recipient of a direct message; absent for room messages.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        to: Option<PeerId>,
        /// The text (may be empty with an attachment).
        text: String,
        /// When the server received it, ms since the epoch.
        ts: u64,
        /// The image, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        attachment: Option<Attachment>,
    },
    /// Someone is typing or stopped.
    Typing {
        /// Who.
        from: PeerId,
        /// Typing or stopped.
        active: bool,
        /// Present when it was directed to the recipient only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        to: Option<PeerId>,
    },
    /// The sender is in the call; these members were there before it.
    CallJoined {
        /// Members already in the call, in the server's order. The sender
        /// offers to each of them.
        peers: Vec<PeerId>,
        /// **Huddle:** the ICE servers for the call's connections, with
        /// fresh TURN credentials; absent: those of `joined`. A server that
        /// hands TURN only to members in a call sends them here.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[ts(optional, as = "Option<Vec<IceServer>>")]
        ice_servers: Vec<IceServer>,
    },
    /// A call started in the room.
    CallStarted {
        /// Who started it.
        by: PeerId,
        /// Whether the starter joined with video.
        video: bool,
        /// When, ms since the epoch.
        started_at: u64,
    },
    /// The call ended: its last member left.
    CallEnded {
        /// How long it lasted.
        duration_ms: u64,
    },
    /// Someone rings the recipient.
    Ring {
        /// The caller.
        from: PeerId,
        /// A video call.
        video: bool,
    },
    /// The answer to a ring.
    RingReply {
        /// The callee.
        from: PeerId,
        /// Accepted or declined.
        accept: bool,
    },
    /// Negotiation relayed from another member.
    Signal {
        /// The sender.
        from: PeerId,
        /// Its payload, unchanged.
        data: SignalData,
    },
    /// **Huddle:** a member reacted (to every other member of the room).
    Reaction {
        /// Who.
        from: PeerId,
        /// One of [`crate::limits::REACTIONS`].
        emoji: String,
    },
    /// Something the sender did was refused. Never changes room state.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// For humans; never contains message content.
        message: String,
    },
}

impl ServerMessage {
    /// Every message's `type`, as [`ServerMessage::type_name`] names it
    /// (the docs test checks the two agree).
    pub const TYPES: [&'static str; 16] = [
        "rooms",
        "pong",
        "joined",
        "peer_joined",
        "peer_left",
        "peer_updated",
        "chat",
        "typing",
        "call_joined",
        "call_started",
        "call_ended",
        "ring",
        "ring_reply",
        "signal",
        "reaction",
        "error",
    ];

    /// The wire name of this message's `type`, for metrics and logs.
    pub fn type_name(&self) -> &'static str {
        match self {
            ServerMessage::Rooms { .. } => "rooms",
            ServerMessage::Pong => "pong",
            ServerMessage::Joined { .. } => "joined",
            ServerMessage::PeerJoined { .. } => "peer_joined",
            ServerMessage::PeerLeft { .. } => "peer_left",
            ServerMessage::PeerUpdated { .. } => "peer_updated",
            ServerMessage::Chat { .. } => "chat",
            ServerMessage::Typing { .. } => "typing",
            ServerMessage::CallJoined { .. } => "call_joined",
            ServerMessage::CallStarted { .. } => "call_started",
            ServerMessage::CallEnded { .. } => "call_ended",
            ServerMessage::Ring { .. } => "ring",
            ServerMessage::RingReply { .. } => "ring_reply",
            ServerMessage::Signal { .. } => "signal",
            ServerMessage::Reaction { .. } => "reaction",
            ServerMessage::Error { .. } => "error",
        }
    }

    /// An `error` message.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
        }
    }
}
