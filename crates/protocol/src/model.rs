//! The nouns shared by client and server messages: peers, their media state,
//! room summaries, call state, ICE servers and the limits a server announces.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// A peer id: opaque, assigned by the server, unique within a room and never
/// reused while the room lives. Clients address peers by id, never by name.
pub type PeerId = String;

/// Which kind of program a peer is, as it said in `join`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// The native desktop app.
    Desktop,
    /// The UI running in a web browser (the default when `join` omits `client`).
    #[default]
    Browser,
    /// A program without a human: `huddle-peer`, load testers.
    Bot,
}

/// What a peer is sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
pub struct Media {
    /// Microphone on (not muted).
    pub audio: bool,
    /// Camera on.
    pub video: bool,
    /// Sharing its screen.
    pub screen: bool,
}

/// A member of a room, as everybody else sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Peer {
    /// Server-assigned id.
    pub id: PeerId,
    /// Display name, trimmed; two peers may share one.
    pub name: String,
    /// What kind of client it is.
    pub client: ClientKind,
    /// When it joined the room, milliseconds since the Unix epoch.
    pub joined_at: u64,
    /// Whether it is in the room's call.
    pub in_call: bool,
    /// What it sends.
    pub media: Media,
    /// **Huddle:** its hand is raised (`hand`). Absent when lowered, so a
    /// peer that never raises one looks exactly as in v1.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[ts(optional, as = "Option<bool>")]
    pub hand: bool,
}

/// One line of the lobby's room list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RoomSummary {
    /// The room's name (case-sensitive).
    pub name: String,
    /// Members in the room.
    pub peers: u32,
    /// Members in the room's call.
    pub in_call: u32,
    /// Whether joining needs a password.
    pub locked: bool,
}

/// The room as the joiner first sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RoomState {
    /// The room's name.
    pub name: String,
    /// Whether the room has a password.
    pub locked: bool,
    /// Every member but the joiner, in the order they joined.
    pub peers: Vec<Peer>,
    /// The running call, or `null`.
    pub call: Option<CallState>,
}

/// A running call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct CallState {
    /// When the call started (its first member joined), ms since the epoch.
    pub started_at: u64,
    /// Members in the call, in the order they joined it.
    pub peers: Vec<PeerId>,
}

/// An ICE server, in the shape of the browser's `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct IceServer {
    /// `stun:` / `turn:` / `turns:` URLs.
    pub urls: Vec<String>,
    /// TURN REST username, `"<expiry unix seconds>:<peer id>"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub username: Option<String>,
    /// TURN REST credential, `base64(HMAC-SHA1(secret, username))`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub credential: Option<String>,
}

/// Limits the server enforces, announced in `joined`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ServerLimits {
    /// Largest text frame accepted, in bytes.
    pub max_frame_bytes: u32,
    /// Longest chat text, in characters.
    pub max_chat_chars: u32,
    /// Most members in one room.
    pub max_peers: u32,
    /// Largest decoded image attachment in bytes; 0 when the operator disabled
    /// attachments. (Addition to the v1 text: optional for clients to read.)
    #[serde(default)]
    pub max_attachment_bytes: u32,
}

/// An image attached to a chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Attachment {
    /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
    pub mime: String,
    /// File name shown to the recipients.
    pub name: String,
    /// The image, base64 (standard alphabet, padded).
    pub data: String,
}

/// Why a peer left a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// It sent `leave`.
    Left,
    /// Its connection dropped and its grace period ran out.
    Timeout,
    /// Removed without grace, e.g. its resume queue overflowed.
    Disconnected,
    /// The server removed it, e.g. for sustained abuse.
    Kicked,
}
