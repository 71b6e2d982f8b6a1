//! Every bound of protocol v1, and the checks that enforce them.
//!
//! The spec fixes some bounds (room 1–64 characters, name 1–32, chat 4000,
//! attachments 512 KiB, `rid` 64); the rest are this project's and are
//! documented in `docs/protocol.md` under "Limits". Lengths count Unicode
//! code points; "control character" means category Cc (`char::is_control`).

use base64::Engine as _;
use thiserror::Error;

use crate::client::{
    ChatSend, ClientMessage, Join, ReactionSend, RingReplySend, RingSend, RoomsRequest, SignalSend,
    TypingSend,
};
use crate::error::ErrorCode;
use crate::model::Attachment;
use crate::signal::{IceCandidate, SdpKind, SignalData};

/// Longest room name, in characters.
pub const MAX_ROOM_CHARS: usize = 64;
/// Longest display name after trimming, in characters.
pub const MAX_NAME_CHARS: usize = 32;
/// Longest chat text, in characters.
pub const MAX_CHAT_CHARS: usize = 4000;
/// Largest decoded attachment, in bytes.
pub const MAX_ATTACHMENT_BYTES: usize = 512 * 1024;
/// Longest attachment file name, in characters.
pub const MAX_ATTACHMENT_NAME_CHARS: usize = 255;
/// Image types an attachment may have.
pub const ATTACHMENT_MIMES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];
/// Longest `rid`, in characters.
pub const MAX_RID_CHARS: usize = 64;
/// Longest password, in characters.
pub const MAX_PASSWORD_CHARS: usize = 128;
/// Longest access token, in characters.
pub const MAX_TOKEN_CHARS: usize = 512;
/// Longest resume token, in characters.
pub const MAX_RESUME_CHARS: usize = 128;
/// Longest peer id in `to`, in characters.
pub const MAX_PEER_ID_CHARS: usize = 64;
/// Largest SDP text, in bytes.
pub const MAX_SDP_BYTES: usize = 256 * 1024;
/// Longest ICE candidate line, in characters.
pub const MAX_CANDIDATE_CHARS: usize = 2048;
/// Longest `sdpMid` or `usernameFragment`, in characters.
pub const MAX_ICE_FIELD_CHARS: usize = 256;
/// The reactions a member may send: a fixed set, so that a reaction is never
/// a channel for text (thumbs up, clapping, laughing, surprise, heart, party).
pub const REACTIONS: [&str; 6] = [
    "\u{1F44D}",
    "\u{1F44F}",
    "\u{1F602}",
    "\u{1F62E}",
    "\u{2764}\u{FE0F}",
    "\u{1F389}",
];
/// The smallest `max_frame_bytes` a server may announce (1 MiB).
pub const MIN_FRAME_BYTES: usize = 1 << 20;

/// A value outside its bounds. [`LimitError::code`] names the protocol error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LimitError {
    /// The room name is empty, too long or has control or invisible characters.
    #[error(
        "room name must be 1-{MAX_ROOM_CHARS} characters without control, invisible or \
         direction-changing characters"
    )]
    InvalidRoom,
    /// The display name is empty, too long or has control or invisible characters.
    #[error(
        "name must be 1-{MAX_NAME_CHARS} characters (after trimming) without control, \
         invisible or direction-changing characters"
    )]
    InvalidName,
    /// A field is longer than allowed.
    #[error("`{field}` is longer than {max}")]
    TooLong {
        /// The field's name.
        field: &'static str,
        /// Its bound.
        max: usize,
    },
    /// A field that must not be empty is.
    #[error("`{0}` must not be empty")]
    Empty(&'static str),
    /// A field holds control characters.
    #[error("`{0}` must not contain control characters")]
    ControlCharacters(&'static str),
    /// A field holds invisible or direction-changing characters.
    #[error("`{0}` must not contain invisible or direction-changing characters")]
    Invisible(&'static str),
    /// The attachment's type is not an allowed image type.
    #[error("attachment type must be one of image/png, image/jpeg, image/gif, image/webp")]
    AttachmentType,
    /// The attachment is not valid base64, or its bytes are not the image type it claims.
    #[error("attachment data is not a {0} image in base64")]
    AttachmentData(&'static str),
    /// The attachment decodes to more than [`MAX_ATTACHMENT_BYTES`].
    #[error("attachment is larger than {} KiB", MAX_ATTACHMENT_BYTES / 1024)]
    AttachmentTooLarge,
    /// A reaction outside [`REACTIONS`].
    #[error("reaction must be one of {}", REACTIONS.join(" "))]
    Reaction,
    /// An SDP of a kind that needs text came without.
    #[error("an {0} needs sdp text")]
    MissingSdp(&'static str),
}

impl LimitError {
    /// The protocol error this violation is answered with.
    pub fn code(&self) -> ErrorCode {
        match self {
            LimitError::InvalidRoom => ErrorCode::InvalidRoom,
            LimitError::InvalidName => ErrorCode::InvalidName,
            LimitError::AttachmentTooLarge => ErrorCode::TooLarge,
            _ => ErrorCode::BadMessage,
        }
    }
}

/// Checks a room name.
pub fn check_room(room: &str) -> Result<(), LimitError> {
    let ok = !room.is_empty()
        && !has_control(room)
        && !has_deceptive(room)
        && room.chars().count() <= MAX_ROOM_CHARS;
    if ok {
        Ok(())
    } else {
        Err(LimitError::InvalidRoom)
    }
}

/// Checks a display name and returns it trimmed.
pub fn normalize_name(name: &str) -> Result<&str, LimitError> {
    let name = name.trim();
    let ok = !name.is_empty()
        && !has_control(name)
        && !has_deceptive(name)
        && name.chars().count() <= MAX_NAME_CHARS;
    if ok {
        Ok(name)
    } else {
        Err(LimitError::InvalidName)
    }
}

/// Checks a `rid`.
pub fn check_rid(rid: &str) -> Result<(), LimitError> {
    max_chars("rid", rid, MAX_RID_CHARS)
}

/// The bounds a message must meet before the server looks at it. `join`'s
/// room and name are not checked here: the protocol orders those errors after
/// the token check, so the server calls [`check_room`] and [`normalize_name`]
/// itself.
pub fn check_message(msg: &ClientMessage) -> Result<(), LimitError> {
    match msg {
        ClientMessage::Rooms(RoomsRequest { token, .. }) => {
            opt_chars("token", token, MAX_TOKEN_CHARS)
        }
        ClientMessage::Join(join) => check_join_fields(join),
        ClientMessage::Chat(chat) => check_chat(chat),
        ClientMessage::Typing(TypingSend { to, .. }) => opt_chars("to", to, MAX_PEER_ID_CHARS),
        ClientMessage::Ring(RingSend { to, .. })
        | ClientMessage::RingReply(RingReplySend { to, .. }) => {
            max_chars("to", to, MAX_PEER_ID_CHARS)
        }
        ClientMessage::Signal(SignalSend { to, data }) => {
            max_chars("to", to, MAX_PEER_ID_CHARS)?;
            check_signal(data)
        }
        ClientMessage::Reaction(ReactionSend { emoji }) => {
            if REACTIONS.contains(&emoji.as_str()) {
                Ok(())
            } else {
                Err(LimitError::Reaction)
            }
        }
        ClientMessage::Ping
        | ClientMessage::Leave
        | ClientMessage::Hand(_)
        | ClientMessage::Media(_)
        | ClientMessage::CallJoin(_)
        | ClientMessage::CallLeave => Ok(()),
    }
}

fn check_join_fields(join: &Join) -> Result<(), LimitError> {
    opt_chars("password", &join.password, MAX_PASSWORD_CHARS)?;
    opt_chars("token", &join.token, MAX_TOKEN_CHARS)?;
    opt_chars("resume", &join.resume, MAX_RESUME_CHARS)
}

fn check_chat(chat: &ChatSend) -> Result<(), LimitError> {
    opt_chars("to", &chat.to, MAX_PEER_ID_CHARS)?;
    if chat.text.is_empty() && chat.attachment.is_none() {
        return Err(LimitError::Empty("text"));
    }
    max_chars("text", &chat.text, MAX_CHAT_CHARS)?;
    match &chat.attachment {
        Some(attachment) => check_attachment(attachment),
        None => Ok(()),
    }
}

/// Checks an attachment: an allowed image type whose bytes really are that
/// type, a printable name, at most [`MAX_ATTACHMENT_BYTES`] decoded.
pub fn check_attachment(attachment: &Attachment) -> Result<(), LimitError> {
    let Some(mime) = ATTACHMENT_MIMES
        .iter()
        .copied()
        .find(|m| *m == attachment.mime)
    else {
        return Err(LimitError::AttachmentType);
    };
    if attachment.name.is_empty() {
        return Err(LimitError::Empty("attachment.name"));
    }
    if has_deceptive(&attachment.name) {
        return Err(LimitError::Invisible("attachment.name"));
    }
    max_chars(
        "attachment.name",
        &attachment.name,
        MAX_ATTACHMENT_NAME_CHARS,
    )?;
    // Base64 carries 3 bytes in 4 characters; refuse before decoding anything big.
    if attachment.data.len() / 4 * 3 > MAX_ATTACHMENT_BYTES + 3 {
        return Err(LimitError::AttachmentTooLarge);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(attachment.data.as_bytes())
        .map_err(|_| LimitError::AttachmentData(mime))?;
    if bytes.len() > MAX_ATTACHMENT_BYTES {
        return Err(LimitError::AttachmentTooLarge);
    }
    if !has_image_signature(mime, &bytes) {
        return Err(LimitError::AttachmentData(mime));
    }
    Ok(())
}

/// Whether `bytes` start like a file of the image type `mime`.
fn has_image_signature(mime: &str, bytes: &[u8]) -> bool {
    match mime {
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/gif" => bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a"),
        "image/webp" => bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        _ => false,
    }
}

/// Checks a signal payload.
pub fn check_signal(data: &SignalData) -> Result<(), LimitError> {
    match data {
        SignalData::Sdp { sdp } => {
            if sdp.sdp.len() > MAX_SDP_BYTES {
                return Err(LimitError::TooLong {
                    field: "sdp",
                    max: MAX_SDP_BYTES,
                });
            }
            match sdp.kind {
                SdpKind::Offer if sdp.sdp.is_empty() => Err(LimitError::MissingSdp("offer")),
                SdpKind::Answer if sdp.sdp.is_empty() => Err(LimitError::MissingSdp("answer")),
                _ => Ok(()),
            }
        }
        SignalData::Candidate { candidate: None } => Ok(()),
        SignalData::Candidate { candidate: Some(c) } => check_candidate(c),
    }
}

fn check_candidate(c: &IceCandidate) -> Result<(), LimitError> {
    max_chars("candidate", &c.candidate, MAX_CANDIDATE_CHARS)?;
    if has_control(&c.candidate) {
        return Err(LimitError::ControlCharacters("candidate"));
    }
    opt_chars("sdpMid", &c.sdp_mid, MAX_ICE_FIELD_CHARS)?;
    opt_chars(
        "usernameFragment",
        &c.username_fragment,
        MAX_ICE_FIELD_CHARS,
    )
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Whether `s` holds characters that change how text around it is shown
/// without being seen: bidirectional overrides, embeddings, isolates and
/// marks (`evil\u{202E}gnp.exe` shows as `evilexe.png`), and zero-width
/// characters (two names that look the same). A zero-width joiner between
/// two emoji (as in 👩‍💻) is allowed.
pub fn has_deceptive(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    chars.iter().enumerate().any(|(i, &c)| match c {
        '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{061C}'
        | '\u{200B}'
        | '\u{200C}'
        | '\u{2060}'
        | '\u{FEFF}' => true,
        '\u{200D}' => {
            let emoji = |c: Option<&char>| {
                c.is_some_and(|&c| c >= '\u{1F000}' || ('\u{2600}'..='\u{27BF}').contains(&c))
            };
            !(i > 0 && emoji(chars.get(i - 1)) && emoji(chars.get(i + 1)))
        }
        _ => false,
    })
}

fn max_chars(field: &'static str, value: &str, max: usize) -> Result<(), LimitError> {
    // Bytes bound characters from above: skip counting for short values.
    if value.len() > max && value.chars().count() > max {
        return Err(LimitError::TooLong { field, max });
    }
    Ok(())
}

fn opt_chars(field: &'static str, value: &Option<String>, max: usize) -> Result<(), LimitError> {
    match value {
        Some(v) => max_chars(field, v, max),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        assert_eq!(check_room("standup"), Ok(()));
        assert_eq!(
            check_room(&"é".repeat(64)),
            Ok(()),
            "64 code points, 128 bytes"
        );
        assert_eq!(check_room(&"é".repeat(65)), Err(LimitError::InvalidRoom));
        assert_eq!(check_room(""), Err(LimitError::InvalidRoom));
        assert_eq!(check_room("a\u{7}b"), Err(LimitError::InvalidRoom));
        assert_eq!(check_room(" spaced room "), Ok(()), "rooms are not trimmed");
    }

    #[test]
    fn names_are_trimmed_then_checked() {
        assert_eq!(normalize_name("  Ada "), Ok("Ada"));
        assert_eq!(normalize_name("   "), Err(LimitError::InvalidName));
        assert_eq!(
            normalize_name(&"x".repeat(33)),
            Err(LimitError::InvalidName)
        );
        assert_eq!(
            normalize_name(&format!(" {} ", "x".repeat(32))),
            Ok(&*"x".repeat(32))
        );
        assert_eq!(normalize_name("A\u{0}"), Err(LimitError::InvalidName));
    }

    #[test]
    fn invisible_and_direction_changing_characters_are_refused() {
        for bad in [
            "Ada\u{202E}",
            "A\u{200B}da",
            "\u{2066}Ada",
            "Ad\u{200D}a",
            "\u{FEFF}Ada",
        ] {
            assert_eq!(normalize_name(bad), Err(LimitError::InvalidName), "{bad:?}");
            assert_eq!(check_room(bad), Err(LimitError::InvalidRoom), "{bad:?}");
        }
        assert_eq!(normalize_name("👩\u{200D}💻 Ada"), Ok("👩\u{200D}💻 Ada"));
        assert_eq!(
            normalize_name("עדה"),
            Ok("עדה"),
            "right-to-left letters are fine"
        );
    }

    fn png_b64(extra: usize) -> String {
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        bytes.resize(8 + extra, 0);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn attachments() {
        let ok = Attachment {
            mime: "image/png".into(),
            name: "cat.png".into(),
            data: png_b64(100),
        };
        assert_eq!(check_attachment(&ok), Ok(()));
        let big = Attachment {
            data: png_b64(MAX_ATTACHMENT_BYTES - 7),
            ..ok.clone()
        };
        assert_eq!(check_attachment(&big), Err(LimitError::AttachmentTooLarge));
        let exact = Attachment {
            data: png_b64(MAX_ATTACHMENT_BYTES - 8),
            ..ok.clone()
        };
        assert_eq!(check_attachment(&exact), Ok(()));
        let lying = Attachment {
            mime: "image/gif".into(),
            ..ok.clone()
        };
        assert_eq!(
            check_attachment(&lying),
            Err(LimitError::AttachmentData("image/gif"))
        );
        let svg = Attachment {
            mime: "image/svg+xml".into(),
            ..ok.clone()
        };
        assert_eq!(check_attachment(&svg), Err(LimitError::AttachmentType));
        let garbage = Attachment {
            data: "!!!!".into(),
            ..ok
        };
        assert_eq!(
            check_attachment(&garbage),
            Err(LimitError::AttachmentData("image/png"))
        );
    }
}
