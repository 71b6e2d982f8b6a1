//! What instances say to each other: one [`Envelope`] per Redis pub/sub
//! message on the recipient instance's channel, JSON-encoded.
//!
//! Two conversations run over it. A *member's instance* (which holds the
//! member's socket) asks the *room's instance* (which holds the room) to
//! join, act, leave or detach; the room's instance answers requests and
//! forwards the member's frames, in the room's order. Connection ids are
//! those of the instance that sent them; the pair (instance, connection) is
//! unique across the cluster.

use huddle_protocol::model::RoomState;
use huddle_protocol::{LeaveReason, Peer};
use serde::{Deserialize, Serialize};

use crate::registry::{JoinFields, Kick, Refusal, RoomAction};

/// A granted join, as the room's instance answers it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Granted {
    /// The member as others see it.
    pub self_peer: Peer,
    /// The room and its other members.
    pub room: RoomState,
    /// The fresh resume token.
    pub resume: String,
    /// Whether a dropped membership was taken back.
    pub resumed: bool,
}

/// One message between instances.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Envelope {
    // Member's instance → room's instance.
    /// Join (or resume) for connection `conn` of instance `from`.
    Join {
        from: String,
        req: u64,
        conn: u64,
        join: JoinFields,
    },
    /// An action of a joined member; answered with [`Envelope::Done`].
    Act {
        from: String,
        req: u64,
        conn: u64,
        action: RoomAction,
    },
    /// The member leaves for good.
    Leave {
        from: String,
        conn: u64,
        reason: LeaveReason,
    },
    /// The member's socket is gone: stop forwarding and answer with
    /// [`Envelope::Release`] once the last forwarded frame is on its way.
    Detach { from: String, conn: u64 },
    /// The frames of a detached member that reached its instance but not its
    /// socket, oldest first: they go back in front of its queue.
    Unread {
        from: String,
        conn: u64,
        frames: Vec<String>,
    },

    // Room's instance → member's instance.
    /// Answer to [`Envelope::Join`] of connection `conn`, from instance `from`.
    Joined {
        from: String,
        req: u64,
        conn: u64,
        result: Result<Granted, Refusal>,
    },
    /// Answer to [`Envelope::Act`].
    Done {
        req: u64,
        result: Result<(), Refusal>,
    },
    /// Frames for the member on connection `conn`, in order.
    Deliver { conn: u64, frames: Vec<String> },
    /// Frames for several members of this instance, each distinct frame
    /// once (a room's message to k members here is one frame, not k):
    /// `deliveries` are `(conn, indices into frames)`, each conn's frames in
    /// order, handled in the order given.
    Fanout {
        frames: Vec<String>,
        deliveries: Vec<(u64, Vec<u32>)>,
    },
    /// Tell connection `conn` to close.
    Kick { conn: u64, kick: Kick },
    /// The member on `conn` is no longer in the room (nothing follows).
    Closed { conn: u64 },
    /// Every frame forwarded to detached connection `conn` has been sent:
    /// return the unread ones with [`Envelope::Unread`].
    Release { conn: u64 },
}

impl Envelope {
    /// The envelope as a pub/sub payload.
    pub fn encode(&self) -> String {
        // Serializing these types cannot fail (string keys, no maps of
        // non-string keys, no custom serializers).
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a payload; `None` for anything malformed.
    pub fn decode(payload: &[u8]) -> Option<Envelope> {
        serde_json::from_slice(payload).ok()
    }
}
