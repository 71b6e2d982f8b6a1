//! Text frames to messages and back: the only place protocol JSON is parsed
//! or printed.
//!
//! Decoding a client frame takes two passes over the text, neither of which
//! buffers it: the first reads only `type` and `rid` (skipping everything
//! else), the second decodes the one struct that `type` names. This keeps the
//! error codes exact (`unknown_type` vs `bad_message`, `rid` echoed even when
//! the body is wrong) and avoids serde's buffering of internally tagged enums,
//! which would copy every SDP once more.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::client::{self, ClientMessage};
use crate::error::ErrorCode;
use crate::limits::{self, LimitError};
use crate::server::ServerMessage;
use crate::PROTOCOL_VERSION;

/// A decoded client frame: the message and its optional request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    /// Echoed on the server's direct answer.
    pub rid: Option<String>,
    /// The message.
    pub message: ClientMessage,
}

/// A decoded server frame, as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFrame {
    /// The `rid` of the request this answers, if any.
    pub rid: Option<String>,
    /// The message.
    pub message: ServerMessage,
}

/// Why a frame could not be decoded, with what is known of it so that the
/// error can still echo its `rid`.
#[derive(Debug, Error)]
#[error("{kind}")]
pub struct DecodeError {
    /// The frame's `rid`, when it had a valid one.
    pub rid: Option<String>,
    /// The frame's `type`, when it named a known one.
    pub message_type: Option<&'static str>,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

/// What was wrong with a frame.
#[derive(Debug, Error)]
pub enum DecodeErrorKind {
    /// Not a JSON object.
    #[error("a frame must be one JSON object")]
    NotAnObject,
    /// The envelope (`type`, `rid`) could not be read.
    #[error("malformed message: {0}")]
    Envelope(serde_json::Error),
    /// No `type` field.
    #[error("message has no `type`")]
    MissingType,
    /// A `type` this protocol does not know.
    #[error("unknown message type")]
    UnknownType,
    /// `join.v` is missing or not 1.
    #[error("protocol version must be 1")]
    UnsupportedVersion,
    /// A field is missing or of the wrong type.
    #[error("bad `{message_type}`: {source}")]
    Fields {
        /// The message's type.
        message_type: &'static str,
        /// What serde found.
        source: serde_json::Error,
    },
    /// A field is outside its bounds.
    #[error(transparent)]
    Limit(#[from] LimitError),
}

impl DecodeError {
    /// The protocol error code to answer with.
    pub fn code(&self) -> ErrorCode {
        match &self.kind {
            DecodeErrorKind::UnknownType => ErrorCode::UnknownType,
            DecodeErrorKind::UnsupportedVersion => ErrorCode::UnsupportedVersion,
            DecodeErrorKind::Limit(limit) => limit.code(),
            DecodeErrorKind::NotAnObject
            | DecodeErrorKind::Envelope(_)
            | DecodeErrorKind::MissingType
            | DecodeErrorKind::Fields { .. } => ErrorCode::BadMessage,
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    rid: Option<String>,
}

#[derive(Deserialize)]
struct VersionProbe {
    #[serde(default)]
    v: Option<serde_json::Value>,
}

/// Decodes and bounds-checks one client text frame.
///
/// `join`'s room and name are left to the caller (see
/// [`limits::check_message`]); every other bound is checked here.
pub fn decode_client(text: &str) -> Result<ClientFrame, DecodeError> {
    let fail = |rid: &Option<String>, message_type, kind| DecodeError {
        rid: rid.clone(),
        message_type,
        kind,
    };
    if !text.trim_start().starts_with('{') {
        return Err(fail(&None, None, DecodeErrorKind::NotAnObject));
    }
    let envelope: Envelope<'_> =
        serde_json::from_str(text).map_err(|e| fail(&None, None, DecodeErrorKind::Envelope(e)))?;
    let rid = envelope.rid;
    if let Some(r) = &rid {
        limits::check_rid(r).map_err(|e| fail(&None, None, e.into()))?;
    }
    let Some(kind) = envelope.kind else {
        return Err(fail(&rid, None, DecodeErrorKind::MissingType));
    };

    fn body<'a, T: Deserialize<'a>>(
        text: &'a str,
        message_type: &'static str,
    ) -> Result<T, DecodeErrorKind> {
        serde_json::from_str(text).map_err(|source| DecodeErrorKind::Fields {
            message_type,
            source,
        })
    }

    let (message_type, decoded): (&'static str, Result<ClientMessage, DecodeErrorKind>) =
        match kind.as_ref() {
            "rooms" => ("rooms", body(text, "rooms").map(ClientMessage::Rooms)),
            "ping" => ("ping", Ok(ClientMessage::Ping)),
            "join" => ("join", decode_join(text)),
            "leave" => ("leave", Ok(ClientMessage::Leave)),
            "chat" => ("chat", body(text, "chat").map(ClientMessage::Chat)),
            "typing" => ("typing", body(text, "typing").map(ClientMessage::Typing)),
            "media" => ("media", body(text, "media").map(ClientMessage::Media)),
            "call_join" => (
                "call_join",
                body(text, "call_join").map(ClientMessage::CallJoin),
            ),
            "call_leave" => ("call_leave", Ok(ClientMessage::CallLeave)),
            "ring" => ("ring", body(text, "ring").map(ClientMessage::Ring)),
            "ring_reply" => (
                "ring_reply",
                body(text, "ring_reply").map(ClientMessage::RingReply),
            ),
            "signal" => ("signal", body(text, "signal").map(ClientMessage::Signal)),
            "hand" => ("hand", body(text, "hand").map(ClientMessage::Hand)),
            "reaction" => (
                "reaction",
                body(text, "reaction").map(ClientMessage::Reaction),
            ),
            _ => return Err(fail(&rid, None, DecodeErrorKind::UnknownType)),
        };
    let message = decoded.map_err(|kind| fail(&rid, Some(message_type), kind))?;
    limits::check_message(&message).map_err(|e| fail(&rid, Some(message_type), e.into()))?;
    Ok(ClientFrame { rid, message })
}

fn decode_join(text: &str) -> Result<ClientMessage, DecodeErrorKind> {
    // The version is checked before anything else in `join`: a future client
    // must learn that it speaks the wrong version, not that a field is off.
    let probe: VersionProbe =
        serde_json::from_str(text).map_err(|source| DecodeErrorKind::Fields {
            message_type: "join",
            source,
        })?;
    if probe.v.as_ref().and_then(serde_json::Value::as_u64) != Some(u64::from(PROTOCOL_VERSION)) {
        return Err(DecodeErrorKind::UnsupportedVersion);
    }
    let mut join: client::Join =
        serde_json::from_str(text).map_err(|source| DecodeErrorKind::Fields {
            message_type: "join",
            source,
        })?;
    if join.password.as_deref() == Some("") {
        join.password = None;
    }
    Ok(ClientMessage::Join(join))
}

#[derive(Serialize)]
struct WithRid<'a, M> {
    #[serde(flatten)]
    message: &'a M,
    rid: &'a str,
}

fn encode<M: Serialize>(message: &M, rid: Option<&str>) -> String {
    let result = match rid {
        None => serde_json::to_string(message),
        Some(rid) => serde_json::to_string(&WithRid { message, rid }),
    };
    // Our message types have string keys only and no fallible Serialize
    // impls, so serialization cannot fail.
    result.unwrap_or_else(|e| unreachable!("protocol types always serialize: {e}"))
}

/// Encodes a server message, with the `rid` of the request it answers.
pub fn encode_server(message: &ServerMessage, rid: Option<&str>) -> String {
    encode(message, rid)
}

/// Encodes a client message, with an optional request id.
pub fn encode_client(message: &ClientMessage, rid: Option<&str>) -> String {
    encode(message, rid)
}

/// Decodes a server frame (for clients: the engine, tests, tools).
pub fn decode_server(text: &str) -> Result<ServerFrame, DecodeError> {
    if !text.trim_start().starts_with('{') {
        return Err(DecodeError {
            rid: None,
            message_type: None,
            kind: DecodeErrorKind::NotAnObject,
        });
    }
    let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|e| DecodeError {
        rid: None,
        message_type: None,
        kind: DecodeErrorKind::Envelope(e),
    })?;
    let rid = envelope.rid;
    let message = serde_json::from_str(text).map_err(|source| DecodeError {
        rid: rid.clone(),
        message_type: None,
        kind: DecodeErrorKind::Fields {
            message_type: "server message",
            source,
        },
    })?;
    Ok(ServerFrame { rid, message })
}

/// The optional request id any client message may carry; in TypeScript a
/// frame is `ClientMessage & RequestId` (and `ServerMessage & RequestId`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct RequestId {
    /// At most 64 characters; echoed on the direct answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub rid: Option<String>,
}
