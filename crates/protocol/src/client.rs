//! Messages a client sends to the server.
//!
//! Variants that carry data wrap a struct of their own, so that the codec can
//! decode the one struct a frame's `type` names without buffering the frame
//! (see [`crate::codec`]).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::model::{Attachment, ClientKind, Media, PeerId};
use crate::signal::SignalData;

/// Everything a client may send. Any of them may also carry a `rid` (see
/// [`crate::codec::ClientFrame`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Ask for the room list, and optionally keep watching it.
    Rooms(RoomsRequest),
    /// App-level keepalive; answered with `pong`.
    Ping,
    /// Enter a room (or resume a dropped membership).
    Join(Join),
    /// Leave the room.
    Leave,
    /// A chat message to the room or, with `to`, to one member.
    Chat(ChatSend),
    /// Typing indicator.
    Typing(TypingSend),
    /// Update the sender's media state.
    Media(Media),
    /// Enter the room's call.
    CallJoin(CallJoin),
    /// Leave the room's call.
    CallLeave,
    /// Ring one member.
    Ring(RingSend),
    /// Answer a ring.
    RingReply(RingReplySend),
    /// Relay WebRTC negotiation to one member.
    Signal(SignalSend),
    /// **Huddle:** raise or lower the sender's hand.
    Hand(HandSend),
    /// **Huddle:** a passing reaction (one emoji of [`crate::limits::REACTIONS`]).
    Reaction(ReactionSend),
}

impl ClientMessage {
    /// Every message's `type`, as [`ClientMessage::type_name`] names it
    /// (the docs test checks the two agree).
    pub const TYPES: [&'static str; 14] = [
        "rooms",
        "ping",
        "join",
        "leave",
        "chat",
        "typing",
        "media",
        "call_join",
        "call_leave",
        "ring",
        "ring_reply",
        "signal",
        "hand",
        "reaction",
    ];

    /// The wire name of this message's `type`, for metrics and logs.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMessage::Rooms(_) => "rooms",
            ClientMessage::Ping => "ping",
            ClientMessage::Join(_) => "join",
            ClientMessage::Leave => "leave",
            ClientMessage::Chat(_) => "chat",
            ClientMessage::Typing(_) => "typing",
            ClientMessage::Media(_) => "media",
            ClientMessage::CallJoin(_) => "call_join",
            ClientMessage::CallLeave => "call_leave",
            ClientMessage::Ring(_) => "ring",
            ClientMessage::RingReply(_) => "ring_reply",
            ClientMessage::Signal(_) => "signal",
            ClientMessage::Hand(_) => "hand",
            ClientMessage::Reaction(_) => "reaction",
        }
    }
}

/// `rooms`: ask for the room list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RoomsRequest {
    /// Keep sending the list when it changes (at most once a second).
    #[serde(default)]
    pub watch: bool,
    /// Access token, when the operator configured tokens and the sender has
    /// not joined a room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub token: Option<String>,
}

/// `join`: enter a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Join {
    /// Protocol version; must be 1.
    pub v: u32,
    /// Room name: 1–64 characters, no control characters, case-sensitive.
    pub room: String,
    /// Display name: 1–32 characters after trimming, no control characters.
    pub name: String,
    /// What kind of client this is.
    #[serde(default)]
    pub client: ClientKind,
    /// Room password; locks a new room, opens a locked one. Empty means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub password: Option<String>,
    /// Access token, when the operator configured tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub token: Option<String>,
    /// Resume token from the last `joined`, to take back a dropped membership.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub resume: Option<String>,
    /// Initial media state.
    #[serde(default)]
    pub media: Media,
}

/// `chat` as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ChatSend {
    /// 1–4000 characters; may be empty only with an attachment.
    #[serde(default)]
    pub text: String,
    /// Recipient of a direct message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub to: Option<PeerId>,
    /// One image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub attachment: Option<Attachment>,
}

/// `typing` as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct TypingSend {
    /// Typing or stopped.
    pub active: bool,
    /// Only this member sees it (typing in a direct conversation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub to: Option<PeerId>,
}

/// `call_join`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct CallJoin {
    /// Whether the sender joins with video; shown in `call_started`.
    pub video: bool,
}

/// `ring` as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RingSend {
    /// The member to ring.
    pub to: PeerId,
    /// A video call (else audio only).
    pub video: bool,
}

/// `ring_reply` as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RingReplySend {
    /// The member that rang.
    pub to: PeerId,
    /// Accepted (the callee then sends `call_join`) or declined.
    pub accept: bool,
}

/// `signal` as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SignalSend {
    /// The member to relay to.
    pub to: PeerId,
    /// The negotiation payload.
    pub data: SignalData,
}

/// `hand`: raise or lower the sender's hand (a Huddle addition to v1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct HandSend {
    /// Raised (`true`) or lowered.
    pub raised: bool,
}

/// `reaction` as a client sends it (a Huddle addition to v1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ReactionSend {
    /// One of [`crate::limits::REACTIONS`].
    pub emoji: String,
}
