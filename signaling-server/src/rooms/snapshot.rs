//! What a room is, written down: enough to rebuild it in another process.
//!
//! The backplane stores a [`RoomSnapshot`] in Redis after every change of a
//! room it holds, so that another instance can take the room over when this
//! one dies. A snapshot has no connections and no queued messages: a
//! restored room's members are all detached, in a fresh grace period.

use huddle_protocol::model::{CallState, RoomSummary};
use huddle_protocol::Peer;
use serde::{Deserialize, Serialize};

/// A member: what others see of it and its current resume token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSnapshot {
    /// The member as others see it.
    pub peer: Peer,
    /// The SHA-256 digest of its current resume token (never the token:
    /// a snapshot in Redis must not let anyone resume the member).
    pub resume: String,
}

/// A room's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSnapshot {
    /// The room's name.
    pub name: String,
    /// Its password, as set by the first member.
    pub password: Option<String>,
    /// Its members, in join order.
    pub members: Vec<MemberSnapshot>,
    /// Its call, if one runs.
    pub call: Option<CallState>,
    /// The number of the next chat message (`m_<n>`).
    pub next_message: u64,
}

impl RoomSnapshot {
    /// The room's entry in the room list.
    pub fn summary(&self) -> RoomSummary {
        RoomSummary {
            name: self.name.clone(),
            peers: self.members.len() as u32,
            in_call: self.call.as_ref().map_or(0, |c| c.peers.len() as u32),
            locked: self.password.is_some(),
        }
    }
}

/// Receives a room's snapshots as they change. Called under the room's lock,
/// in the room's order: it must not block.
pub trait Mirror: Send + Sync + std::fmt::Debug + 'static {
    /// The room changed; `snapshot` is its new state.
    fn changed(&self, snapshot: RoomSnapshot);
    /// The room was emptied and is gone.
    fn emptied(&self, name: &str);
}
