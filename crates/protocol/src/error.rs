//! Error codes the server answers with, and the WebSocket close codes that go
//! with the fatal ones.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// `code` of an `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, not an object, a binary frame, a missing or mistyped field, a
    /// value out of bounds.
    BadMessage,
    /// An unknown `type`.
    UnknownType,
    /// `join.v` is not 1; the connection is closed (1008).
    UnsupportedVersion,
    /// The message needs a room and the sender is in none.
    NotJoined,
    /// `join` while already in a room.
    AlreadyJoined,
    /// The room name breaks the rules.
    InvalidRoom,
    /// The display name breaks the rules.
    InvalidName,
    /// The room has its maximum number of members.
    RoomFull,
    /// Wrong or missing password for a locked room.
    BadPassword,
    /// `to` is not a member of the sender's room.
    UnknownPeer,
    /// A frame or attachment over its limit.
    TooLarge,
    /// The sender exceeds its message or byte rate.
    RateLimited,
    /// A missing or wrong access token, or a feature the operator disabled.
    Forbidden,
    /// The server is at its connection or room limit; closed (1013).
    ServerFull,
    /// A bug in the server; it is logged there.
    Internal,
}

impl ErrorCode {
    /// Every code, in the order of the protocol's table.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::BadMessage,
        ErrorCode::UnknownType,
        ErrorCode::UnsupportedVersion,
        ErrorCode::NotJoined,
        ErrorCode::AlreadyJoined,
        ErrorCode::InvalidRoom,
        ErrorCode::InvalidName,
        ErrorCode::RoomFull,
        ErrorCode::BadPassword,
        ErrorCode::UnknownPeer,
        ErrorCode::TooLarge,
        ErrorCode::RateLimited,
        ErrorCode::Forbidden,
        ErrorCode::ServerFull,
        ErrorCode::Internal,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::AlreadyJoined => "already_joined",
            ErrorCode::InvalidRoom => "invalid_room",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::BadPassword => "bad_password",
            ErrorCode::UnknownPeer => "unknown_peer",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::ServerFull => "server_full",
            ErrorCode::Internal => "internal",
        }
    }
}

/// WebSocket close codes the protocol uses.
pub mod close {
    /// Normal closure; with reason `replaced` when a resume took over the connection.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down; clients resume elsewhere.
    pub const GOING_AWAY: u16 = 1001;
    /// Policy violation: bad token, unsupported version, sustained rate abuse.
    pub const POLICY: u16 = 1008;
    /// A frame over `max_frame_bytes`.
    pub const TOO_BIG: u16 = 1009;
    /// Server full: try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}
