//! The room as this client knows it, kept from the server's messages: who
//! is here, the call and who is in it — and what the call mesh must do about
//! each change. The protocol's mesh rules live here, in one place:
//!
//! - the member that joins the call later offers, to exactly the members in
//!   its `call_joined`; everyone else waits for offers;
//! - an offer is accepted only from a call member while this client is in
//!   the call;
//! - the polite side of a pair is the greater id;
//! - a connection closes when its member leaves the call or the room, and all
//!   close when the call ends or the membership is new (a resume that failed).

use huddle_protocol::model::{CallState, RoomState, ServerLimits};
use huddle_protocol::{ClientKind, IceServer, Peer, PeerId, ServerMessage};

/// What the mesh must do after a server message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshAction {
    /// Open a connection to this member and send it the first offer.
    Offer(PeerId),
    /// Close the connection to this member.
    Close(PeerId),
    /// Close every connection.
    CloseAll,
}

/// The room's call as the server last described it (the call this
/// client runs is `call::Call`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomCall {
    /// When it started, ms since the epoch.
    pub started_at: u64,
    /// Its members, this client included when it is in the call.
    pub members: Vec<PeerId>,
}

/// The joined room.
#[derive(Debug, Clone)]
pub struct Room {
    pub me: Peer,
    pub name: String,
    pub locked: bool,
    /// The other members, in the order they joined.
    pub members: Vec<Peer>,
    pub call: Option<RoomCall>,
    pub ice_servers: Vec<IceServer>,
    pub limits: ServerLimits,
}

impl Room {
    /// The room from a `joined` message; `None` for any other message.
    pub fn from_joined(message: &ServerMessage) -> Option<Room> {
        let ServerMessage::Joined {
            self_peer,
            room,
            ice_servers,
            limits,
            ..
        } = message
        else {
            return None;
        };
        let RoomState {
            name,
            locked,
            peers,
            call,
        } = room.clone();
        Some(Room {
            me: self_peer.clone(),
            name,
            locked,
            members: peers,
            call: call.map(|CallState { started_at, peers }| RoomCall {
                started_at,
                members: peers,
            }),
            ice_servers: ice_servers.clone(),
            limits: *limits,
        })
    }

    /// Whether this client is in the call.
    pub fn in_call(&self) -> bool {
        self.me.in_call
    }

    /// Whether this client is the polite side towards `peer`.
    pub fn polite_towards(&self, peer: &str) -> bool {
        self.me.id.as_str() > peer
    }

    /// Whether `peer` runs a Huddle engine, which restarts ICE by itself
    /// when its own addresses change (`network.rs`): the desktop app or a
    /// `huddle-peer` (a bot). A browser cannot watch its addresses. What a
    /// member says it is only decides how soon this side restarts towards
    /// it.
    pub fn watches_its_network(&self, peer: &str) -> bool {
        self.members
            .iter()
            .find(|m| m.id == peer)
            .is_some_and(|m| m.client != ClientKind::Browser)
    }

    /// Whether an offer from `peer` may open a connection.
    pub fn accepts_offer_from(&self, peer: &str) -> bool {
        self.in_call()
            && peer != self.me.id
            && self
                .call
                .as_ref()
                .is_some_and(|c| c.members.iter().any(|m| m == peer))
    }

    /// Applies a message; returns what the mesh must do.
    pub fn apply(&mut self, message: &ServerMessage) -> Vec<MeshAction> {
        match message {
            ServerMessage::Joined { resumed, .. } => {
                let Some(fresh) = Room::from_joined(message) else {
                    return Vec::new();
                };
                *self = fresh;
                if *resumed {
                    // Same membership: the connections never depended on the socket.
                    Vec::new()
                } else {
                    vec![MeshAction::CloseAll]
                }
            }
            ServerMessage::PeerJoined { peer } => {
                self.upsert(peer.clone());
                Vec::new()
            }
            ServerMessage::PeerLeft { id, .. } => {
                self.members.retain(|m| &m.id != id);
                let was_in_call = self.remove_from_call(id);
                if was_in_call {
                    vec![MeshAction::Close(id.clone())]
                } else {
                    Vec::new()
                }
            }
            ServerMessage::PeerUpdated { peer } => {
                self.upsert(peer.clone());
                if peer.in_call {
                    if let Some(call) = &mut self.call {
                        if !call.members.contains(&peer.id) {
                            call.members.push(peer.id.clone());
                        }
                    }
                    Vec::new()
                } else if self.remove_from_call(&peer.id) {
                    vec![MeshAction::Close(peer.id.clone())]
                } else {
                    Vec::new()
                }
            }
            ServerMessage::CallJoined { peers, ice_servers } => {
                self.me.in_call = true;
                // The call's own ICE servers (TURN given only to callers).
                if !ice_servers.is_empty() {
                    self.ice_servers = ice_servers.clone();
                }
                let started_at = self.call.as_ref().map_or(0, |c| c.started_at);
                let mut members = peers.clone();
                members.push(self.me.id.clone());
                self.call = Some(RoomCall {
                    started_at,
                    members,
                });
                peers
                    .iter()
                    .filter(|p| **p != self.me.id)
                    .map(|p| MeshAction::Offer(p.clone()))
                    .collect()
            }
            ServerMessage::CallStarted { by, started_at, .. } => {
                let call = self.call.get_or_insert_with(|| RoomCall {
                    started_at: *started_at,
                    members: vec![by.clone()],
                });
                call.started_at = *started_at;
                if !call.members.contains(by) {
                    call.members.push(by.clone());
                }
                Vec::new()
            }
            ServerMessage::CallEnded { .. } => {
                self.call = None;
                self.me.in_call = false;
                vec![MeshAction::CloseAll]
            }
            _ => Vec::new(),
        }
    }

    /// This client left the call itself (`call_leave` sent).
    pub fn leave_call(&mut self) -> Vec<MeshAction> {
        self.me.in_call = false;
        let me = self.me.id.clone();
        self.remove_from_call(&me);
        vec![MeshAction::CloseAll]
    }

    fn upsert(&mut self, peer: Peer) {
        if peer.id == self.me.id {
            self.me = peer;
        } else if let Some(m) = self.members.iter_mut().find(|m| m.id == peer.id) {
            *m = peer;
        } else {
            self.members.push(peer);
        }
    }

    fn remove_from_call(&mut self, id: &str) -> bool {
        let Some(call) = &mut self.call else {
            return false;
        };
        let before = call.members.len();
        call.members.retain(|m| m != id);
        before != call.members.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use huddle_protocol::{LeaveReason, Media};

    fn peer(id: &str, in_call: bool) -> Peer {
        Peer {
            id: id.into(),
            name: id.to_uppercase(),
            client: ClientKind::Desktop,
            joined_at: 1,
            in_call,
            media: Media::default(),
            hand: false,
        }
    }

    fn joined(
        me: &str,
        others: Vec<Peer>,
        call: Option<Vec<&str>>,
        resumed: bool,
    ) -> ServerMessage {
        ServerMessage::Joined {
            self_peer: peer(me, false),
            room: RoomState {
                name: "standup".into(),
                locked: false,
                peers: others,
                call: call.map(|ids| CallState {
                    started_at: 7,
                    peers: ids.into_iter().map(String::from).collect(),
                }),
            },
            ice_servers: Vec::new(),
            resume: "t".into(),
            resumed,
            limits: ServerLimits {
                max_frame_bytes: 1 << 20,
                max_chat_chars: 4000,
                max_peers: 8,
                max_attachment_bytes: 524_288,
            },
        }
    }

    #[test]
    fn the_later_joiner_offers_to_exactly_the_call_members_it_was_given() {
        let msg = joined(
            "p_3",
            vec![peer("p_1", true), peer("p_2", true)],
            Some(vec!["p_1", "p_2"]),
            false,
        );
        let mut room = Room::from_joined(&msg).unwrap();
        assert!(!room.accepts_offer_from("p_1"), "not in the call yet");
        let actions = room.apply(&ServerMessage::CallJoined {
            peers: vec!["p_1".into(), "p_2".into()],
            ice_servers: vec![],
        });
        assert_eq!(
            actions,
            [
                MeshAction::Offer("p_1".into()),
                MeshAction::Offer("p_2".into())
            ]
        );
        assert!(room.in_call());
        assert!(room.accepts_offer_from("p_1"));
        assert!(!room.accepts_offer_from("p_9"), "not a call member");
        assert_eq!(room.call.as_ref().unwrap().started_at, 7);
    }

    #[test]
    fn only_a_member_running_an_engine_watches_its_network() {
        let browser = Peer {
            client: ClientKind::Browser,
            ..peer("p_2", true)
        };
        let bot = Peer {
            client: ClientKind::Bot,
            ..peer("p_3", true)
        };
        let msg = joined("p_4", vec![peer("p_1", true), browser, bot], None, false);
        let room = Room::from_joined(&msg).unwrap();
        assert!(room.watches_its_network("p_1"), "the desktop app");
        assert!(!room.watches_its_network("p_2"), "a browser");
        assert!(room.watches_its_network("p_3"), "huddle-peer");
        assert!(!room.watches_its_network("p_9"), "not a member");
    }

    #[test]
    fn a_later_member_is_answered_not_offered_to() {
        let mut room = Room::from_joined(&joined("p_1", vec![], None, false)).unwrap();
        assert!(room
            .apply(&ServerMessage::CallJoined {
                peers: vec![],
                ice_servers: vec![],
            })
            .is_empty());
        room.apply(&ServerMessage::CallStarted {
            by: "p_1".into(),
            video: true,
            started_at: 9,
        });
        room.apply(&ServerMessage::PeerJoined {
            peer: peer("p_2", false),
        });
        let actions = room.apply(&ServerMessage::PeerUpdated {
            peer: peer("p_2", true),
        });
        assert!(actions.is_empty(), "p_2 offers to us");
        assert!(room.accepts_offer_from("p_2"));
        assert!(room.polite_towards("p_0") && !room.polite_towards("p_2"));
    }

    #[test]
    fn connections_close_when_members_go_and_all_close_when_the_call_ends() {
        let msg = joined(
            "p_1",
            vec![peer("p_2", true), peer("p_3", true)],
            Some(vec!["p_2", "p_3"]),
            false,
        );
        let mut room = Room::from_joined(&msg).unwrap();
        room.apply(&ServerMessage::CallJoined {
            peers: vec!["p_2".into(), "p_3".into()],
            ice_servers: vec![],
        });
        assert_eq!(
            room.apply(&ServerMessage::PeerUpdated {
                peer: peer("p_2", false)
            }),
            [MeshAction::Close("p_2".into())]
        );
        assert_eq!(
            room.apply(&ServerMessage::PeerLeft {
                id: "p_3".into(),
                reason: LeaveReason::Timeout
            }),
            [MeshAction::Close("p_3".into())]
        );
        let ids: Vec<&str> = room.members.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["p_2"], "p_2 left the call, p_3 the room");
        assert_eq!(
            room.apply(&ServerMessage::CallEnded { duration_ms: 5 }),
            [MeshAction::CloseAll]
        );
        assert!(!room.in_call() && room.call.is_none());
    }

    #[test]
    fn a_failed_resume_closes_everything_and_a_successful_one_nothing() {
        let msg = joined("p_1", vec![peer("p_2", true)], Some(vec!["p_2"]), false);
        let mut room = Room::from_joined(&msg).unwrap();
        room.apply(&ServerMessage::CallJoined {
            peers: vec!["p_2".into()],
            ice_servers: vec![],
        });
        assert!(room
            .apply(&joined(
                "p_1",
                vec![peer("p_2", true)],
                Some(vec!["p_2", "p_1"]),
                true
            ))
            .is_empty());
        assert_eq!(
            room.apply(&joined("p_7", vec![], None, false)),
            [MeshAction::CloseAll]
        );
        assert_eq!(room.me.id, "p_7");
    }

    #[test]
    fn the_calls_ice_servers_replace_those_of_joined() {
        let msg = joined("p_1", vec![], None, false);
        let mut room = Room::from_joined(&msg).unwrap();
        let turn = IceServer {
            urls: vec!["turn:turn.example.org:3478".into()],
            username: Some("1:p_1".into()),
            credential: Some("c".into()),
        };
        room.apply(&ServerMessage::CallJoined {
            peers: vec![],
            ice_servers: vec![turn.clone()],
        });
        assert_eq!(room.ice_servers, vec![turn]);
    }
}
