//! Rooms in this process's memory: the default [`Registry`].
//!
//! Locks, always taken in this order and never held across `.await`:
//! 1. `rooms`: the name → room map (joins, and removing emptied rooms);
//! 2. a room's own mutex (everything that happens inside the room);
//! 3. `resume`: the token → member index.
//!
//! A relay takes only its room's lock, so rooms never contend with each
//! other. A room emptied under its own lock is left in the map, dead; the
//! next `join` of its name replaces it and [`Rooms::prune`] removes it.
//!
//! Over 600 lines: the registry's operations all take the locks above
//! in that order, which is checked by reading them side by side here.

mod room;
mod snapshot;

pub use snapshot::{MemberSnapshot, Mirror, RoomSnapshot};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use huddle_protocol::model::RoomSummary;
use huddle_protocol::{ErrorCode, LeaveReason, Peer, PeerId};
use tokio::sync::{oneshot, watch};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::outbox::{outbox, OutboxReceiver};
use crate::registry::{ConnId, Grant, JoinRequest, OutboxSource, Refusal, Registry, RoomAction};
use room::{Connection, Member, NotAdmitted, Proof, Room};

use crate::secret::{token_digest, PasswordHash};
use crate::source::{Held, Quotas};
use crate::sync::lock;

/// Why a new member was not let in.
#[derive(Debug)]
enum NewJoin {
    Refused(Refusal),
    /// The room changed since the password was checked: the request back.
    Stale(Box<JoinRequest>),
}

/// A room and its lock.
#[derive(Debug)]
struct RoomCell {
    state: Mutex<Room>,
}

/// A joined member, as its connection holds it.
#[derive(Debug, Clone)]
pub struct MemberRef {
    room: Arc<RoomCell>,
    id: PeerId,
    conn: ConnId,
}

/// What rooms share: settings, counters, the resume index, the list's version.
#[derive(Debug)]
struct Shared {
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    /// Resume token digests → their members.
    resume: Mutex<HashMap<String, (Arc<RoomCell>, PeerId)>>,
    list_version: watch::Sender<u64>,
    list_cache: Mutex<(u64, Arc<Vec<RoomSummary>>)>,
    next_grace_id: AtomicU64,
    mirror: Option<Arc<dyn Mirror>>,
    /// Rooms and members held per source.
    quotas: Arc<Quotas>,
}

impl Shared {
    fn forget_token(&self, digest: &str) {
        lock(&self.resume).remove(digest);
    }

    fn list_changed(&self) {
        self.list_version.send_modify(|v| *v += 1);
    }

    /// Hands the room's new state to the mirror, if it changed.
    fn mirror(&self, room: &mut Room) {
        if let Some(mirror) = &self.mirror {
            if let Some(snapshot) = room.take_snapshot() {
                mirror.changed(snapshot);
            }
        }
    }
}

#[derive(Debug)]
struct Inner {
    rooms: Mutex<HashMap<String, Arc<RoomCell>>>,
    shared: Shared,
}

/// The in-memory registry. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Rooms {
    inner: Arc<Inner>,
}

impl Rooms {
    /// An empty registry.
    pub fn new(config: Arc<Config>, metrics: Arc<Metrics>) -> Self {
        Self::build(config, metrics, None)
    }

    /// An empty registry that tells `mirror` every change of every room.
    pub fn mirrored(config: Arc<Config>, metrics: Arc<Metrics>, mirror: Arc<dyn Mirror>) -> Self {
        Self::build(config, metrics, Some(mirror))
    }

    fn build(config: Arc<Config>, metrics: Arc<Metrics>, mirror: Option<Arc<dyn Mirror>>) -> Self {
        let (list_version, _) = watch::channel(0);
        Rooms {
            inner: Arc::new(Inner {
                rooms: Mutex::new(HashMap::new()),
                shared: Shared {
                    config,
                    metrics,
                    resume: Mutex::new(HashMap::new()),
                    list_version,
                    list_cache: Mutex::new((u64::MAX, Arc::new(Vec::new()))),
                    next_grace_id: AtomicU64::new(1),
                    mirror,
                    quotas: Arc::new(Quotas::default()),
                },
            }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Removes the room `cell` from the map if it is (still) empty.
    fn prune(&self, cell: &Arc<RoomCell>) {
        let mut rooms = lock(&self.inner.rooms);
        let mut room = lock(&cell.state);
        if room.is_empty() {
            // Its creator's share is given back whether or not it is still mapped.
            room.creator = None;
        }
        if room.is_empty() && rooms.get(&room.name).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            rooms.remove(&room.name);
            Metrics::add(&self.shared().metrics.rooms, -1);
            self.shared().list_changed();
            if let Some(mirror) = &self.shared().mirror {
                mirror.emptied(&room.name);
            }
        }
    }

    /// Whether this registry holds a live room `name`.
    pub fn holds(&self, name: &str) -> bool {
        lock(&self.inner.rooms)
            .get(name)
            .is_some_and(|cell| !lock(&cell.state).is_empty())
    }

    /// Rebuilds a room from its snapshot (taken over from an instance that
    /// died): every member is detached and its grace period starts now.
    /// Does nothing if a live room of that name is here already.
    pub fn restore(&self, snapshot: RoomSnapshot) {
        let shared = self.shared();
        let mut rooms = lock(&self.inner.rooms);
        if rooms
            .get(&snapshot.name)
            .is_some_and(|cell| !lock(&cell.state).is_empty())
        {
            return;
        }
        let replacing = rooms.contains_key(&snapshot.name);
        let mut parked = Vec::new();
        let room = Room::restore(snapshot, |peer, resume_token| {
            let (tx, rx) = outbox(shared.config.outbox_messages, shared.config.outbox_bytes);
            parked.push(rx);
            Member {
                peer,
                outbox: tx,
                connection: Connection::Detached {
                    grace_id: 0,
                    rx: None,
                },
                resume_token,
                _quota: None,
                alerted: Default::default(),
            }
        });
        let cell = Arc::new(RoomCell {
            state: Mutex::new(room),
        });
        let name = {
            let mut room = lock(&cell.state);
            Metrics::add(&shared.metrics.members, room.members.len() as i64);
            if room.summary().in_call > 0 {
                Metrics::add(&shared.metrics.calls, 1);
            }
            let mut index = lock(&shared.resume);
            for (member, rx) in room.members.iter_mut().zip(parked) {
                index.insert(
                    member.resume_token.clone(),
                    (cell.clone(), member.peer.id.clone()),
                );
                self.park(&cell, member, rx);
            }
            room.name.clone()
        };
        rooms.insert(name, cell);
        if !replacing {
            Metrics::add(&shared.metrics.rooms, 1);
        }
        shared.list_changed();
    }

    /// Tells every connected member of every room to reconnect (its server
    /// can no longer serve the room).
    pub fn kick_all(&self) {
        let cells: Vec<Arc<RoomCell>> = lock(&self.inner.rooms).values().cloned().collect();
        for cell in cells {
            lock(&cell.state).kick_all(crate::registry::Kick::Unavailable);
        }
    }

    /// Takes back a dropped membership; `Err` gives the request back for an
    /// ordinary join (unknown, spent or foreign token).
    fn resume(&self, request: JoinRequest) -> Result<Grant<MemberRef>, Box<JoinRequest>> {
        let Some(token) = request.fields.resume.as_deref() else {
            return Err(Box::new(request));
        };
        let Some((cell, id)) = lock(&self.shared().resume)
            .get(&token_digest(token))
            .cloned()
        else {
            return Err(Box::new(request));
        };
        let shared = self.shared();
        let mut room = lock(&cell.state);
        let Some(index) = room
            .index_of(&id)
            .filter(|_| room.name == request.fields.room)
        else {
            return Err(Box::new(request));
        };
        if matches!(
            room.members[index].connection,
            Connection::Detached { rx: None, .. }
        ) {
            // Unreachable by construction (a detached member always parks its
            // receiver); an ordinary join beats handing out a dead member.
            return Err(Box::new(request));
        }
        let fresh = crate::ids::resume_token();
        let fresh_digest = token_digest(&fresh);
        {
            let mut index_map = lock(&shared.resume);
            index_map.remove(&token_digest(token));
            index_map.insert(fresh_digest.clone(), (cell.clone(), id.clone()));
        }
        let member = &mut room.members[index];
        member.resume_token = fresh_digest;
        let conn = request.conn;
        let kick = Some(request.kick);
        let previous = std::mem::replace(
            &mut member.connection,
            Connection::Detached {
                grace_id: 0,
                rx: None,
            },
        );
        let (connection, source) = match previous {
            Connection::Detached { rx: Some(rx), .. } => {
                (Connection::Live { conn, kick }, OutboxSource::Ready(rx))
            }
            // The connection holding the outbox (`old`) is told to close and
            // hands it over on its way out. If a replacement was already
            // waiting for it, that one gives up and the newest one waits.
            Connection::Live {
                conn: old,
                kick: previous,
            }
            | Connection::Moving {
                old,
                kick: previous,
                ..
            } => {
                if let Some(k) = previous {
                    let _ = k.send(crate::registry::Kick::Replaced);
                }
                let (waiter, handover) = oneshot::channel();
                (
                    Connection::Moving {
                        old,
                        conn,
                        kick,
                        waiter,
                    },
                    OutboxSource::Handover(handover),
                )
            }
            Connection::Detached { rx: None, .. } => unreachable!("checked above"),
        };
        member.connection = connection;
        let self_peer = member.peer.clone();
        room.touch();
        shared.mirror(&mut room);
        let state = room.state_for(&id);
        shared.metrics.resumes.fetch_add(1, Ordering::Relaxed);
        drop(room);
        Ok(Grant {
            member: MemberRef {
                room: cell,
                id,
                conn,
            },
            self_peer,
            room: state,
            resume: fresh,
            resumed: true,
            outbox: source,
        })
    }

    /// An ordinary join: the password is checked (or hashed, for a room the
    /// join creates) first, without any lock, then the join is made under
    /// the locks if the room is still as it was checked.
    async fn join_new(&self, request: JoinRequest) -> Result<Grant<MemberRef>, Refusal> {
        let mut request = request;
        for _ in 0..3 {
            let proof = self.proof(&request).await?;
            match self.join_checked(request, proof) {
                Ok(grant) => return Ok(grant),
                Err(NewJoin::Refused(refusal)) => return Err(refusal),
                Err(NewJoin::Stale(again)) => request = *again,
            }
        }
        Err(Refusal::new(
            ErrorCode::Internal,
            "the room changed while joining; try again",
        ))
    }

    /// Checks the request's password against the room as it is now.
    async fn proof(&self, request: &JoinRequest) -> Result<Proof, Refusal> {
        let lock_now = {
            let rooms = lock(&self.inner.rooms);
            rooms.get(&request.fields.room).and_then(|cell| {
                let room = lock(&cell.state);
                (!room.is_empty()).then(|| room.password().cloned())
            })
        };
        Ok(match (lock_now, request.fields.password.as_deref()) {
            (Some(Some(hash)), Some(given)) => {
                if hash.matches(given).await {
                    Proof::Knows(hash)
                } else {
                    Proof::Wrong
                }
            }
            (Some(Some(_)), None) | (Some(None), _) | (None, None) => Proof::None,
            (None, Some(given)) => Proof::Hashed(PasswordHash::new(given).await.map_err(|e| {
                tracing::error!(error = %e, "cannot hash a room password");
                Refusal::new(ErrorCode::Internal, "the password could not be set")
            })?),
        })
    }

    fn join_checked(
        &self,
        request: JoinRequest,
        proof: Proof,
    ) -> Result<Grant<MemberRef>, NewJoin> {
        let shared = self.shared();
        let config = &shared.config;
        let mut rooms = lock(&self.inner.rooms);
        let existing = rooms
            .get(&request.fields.room)
            .filter(|cell| !lock(&cell.state).is_empty())
            .cloned();
        let Some(quota) = shared.quotas.take(
            request.fields.source,
            Held::Member,
            config.max_connections_per_ip,
        ) else {
            return Err(NewJoin::Refused(Refusal::new(
                ErrorCode::ServerFull,
                "too many members (connected or reconnecting) from your address",
            )));
        };
        let cell = match existing {
            Some(cell) => cell,
            None => {
                let password = match (&proof, &request.fields.password) {
                    (Proof::Hashed(hash), _) => Some(hash.clone()),
                    (Proof::None, None) => None,
                    // Checked against a room that is gone, or a password
                    // given for a room that was open: hash it first.
                    _ => return Err(NewJoin::Stale(Box::new(request))),
                };
                let replacing = rooms.contains_key(&request.fields.room);
                if !replacing && rooms.len() >= config.max_rooms {
                    return Err(NewJoin::Refused(Refusal::new(
                        ErrorCode::ServerFull,
                        "the server has no room for more rooms",
                    )));
                }
                let Some(creator) =
                    shared
                        .quotas
                        .take(request.fields.source, Held::Room, config.max_rooms_per_ip)
                else {
                    return Err(NewJoin::Refused(Refusal::new(
                        ErrorCode::ServerFull,
                        "too many rooms created from your address; join an existing one",
                    )));
                };
                let cell = Arc::new(RoomCell {
                    state: Mutex::new(Room::new(
                        request.fields.room.clone(),
                        password,
                        Some(creator),
                    )),
                });
                rooms.insert(request.fields.room.clone(), cell.clone());
                if !replacing {
                    Metrics::add(&shared.metrics.rooms, 1);
                }
                cell
            }
        };
        let mut room = lock(&cell.state);
        drop(rooms);
        match room.admit(&proof, config.max_room_peers) {
            Ok(()) => {}
            Err(NotAdmitted::Refused(refusal)) => return Err(NewJoin::Refused(refusal)),
            Err(NotAdmitted::Stale) => {
                drop(room);
                return Err(NewJoin::Stale(Box::new(request)));
            }
        }
        let id = room.fresh_id();
        let token = crate::ids::resume_token();
        let (tx, rx) = outbox(config.outbox_messages, config.outbox_bytes);
        let peer = Peer {
            id: id.clone(),
            name: request.fields.name,
            client: request.fields.client,
            joined_at: room::now_ms(),
            in_call: false,
            media: request.fields.media,
            hand: false,
        };
        let digest = token_digest(&token);
        lock(&shared.resume).insert(digest.clone(), (cell.clone(), id.clone()));
        room.add(
            shared,
            Member {
                peer: peer.clone(),
                outbox: tx,
                connection: Connection::Live {
                    conn: request.conn,
                    kick: Some(request.kick),
                },
                resume_token: digest,
                _quota: Some(quota),
                alerted: Default::default(),
            },
        );
        shared.list_changed();
        shared.mirror(&mut room);
        let state = room.state_for(&id);
        drop(room);
        Ok(Grant {
            member: MemberRef {
                room: cell,
                id,
                conn: request.conn,
            },
            self_peer: peer,
            room: state,
            resume: token,
            resumed: false,
            outbox: OutboxSource::Ready(rx),
        })
    }

    /// Ends the grace period `grace_id` of member `id`, if it is still detached in it.
    fn expire(&self, cell: &Arc<RoomCell>, id: &str, grace_id: u64) {
        {
            let mut room = lock(&cell.state);
            let Some(index) = room.index_of(id) else {
                return;
            };
            if !matches!(room.members[index].connection, Connection::Detached { grace_id: e, .. } if e == grace_id)
            {
                return;
            }
            room.remove(self.shared(), index, LeaveReason::Timeout);
            room.settle(self.shared());
            self.shared().mirror(&mut room);
        }
        self.prune(cell);
    }

    /// Parks `rx` in the member and starts its grace period.
    fn park(&self, cell: &Arc<RoomCell>, member: &mut Member, rx: OutboxReceiver) {
        let grace_id = self.shared().next_grace_id.fetch_add(1, Ordering::Relaxed);
        member.connection = Connection::Detached {
            grace_id,
            rx: Some(rx),
        };
        let rooms = self.clone();
        let cell = cell.clone();
        let id = member.peer.id.clone();
        let grace = self.shared().config.resume_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            rooms.expire(&cell, &id, grace_id);
        });
    }
}

impl Registry for Rooms {
    type Member = MemberRef;

    async fn join(&self, request: JoinRequest) -> Result<Grant<MemberRef>, Refusal> {
        match self.resume(request) {
            Ok(grant) => Ok(grant),
            Err(request) => self.join_new(*request).await,
        }
    }

    async fn act(&self, member: &MemberRef, action: RoomAction) -> Result<(), Refusal> {
        let emptied = {
            let mut room = lock(&member.room.state);
            let Some(index) = room
                .index_of(&member.id)
                .filter(|i| room.members[*i].connection.is(member.conn))
            else {
                return Err(Refusal::new(
                    ErrorCode::NotJoined,
                    "you are no longer in the room",
                ));
            };
            let result = room.act(self.shared(), index, action);
            self.shared().mirror(&mut room);
            if room.is_empty() {
                Some(result)
            } else {
                return result;
            }
        };
        self.prune(&member.room);
        emptied.unwrap_or(Ok(()))
    }

    async fn leave(&self, member: MemberRef, reason: LeaveReason) {
        {
            let mut room = lock(&member.room.state);
            let Some(index) = room.index_of(&member.id) else {
                return;
            };
            if !room.members[index].connection.is(member.conn) {
                return;
            }
            room.remove(self.shared(), index, reason);
            room.settle(self.shared());
            self.shared().mirror(&mut room);
        }
        self.prune(&member.room);
    }

    async fn detach(&self, member: MemberRef, rx: OutboxReceiver) {
        let mut room = lock(&member.room.state);
        let Some(index) = room.index_of(&member.id) else {
            return;
        };
        let m = &mut room.members[index];
        match std::mem::replace(
            &mut m.connection,
            Connection::Detached {
                grace_id: 0,
                rx: None,
            },
        ) {
            Connection::Live { conn, .. } if conn == member.conn => self.park(&member.room, m, rx),
            Connection::Moving {
                old,
                conn,
                kick,
                waiter,
            } if old == member.conn => match waiter.send(rx) {
                Ok(()) => m.connection = Connection::Live { conn, kick },
                // The new connection gave up waiting: the member is detached.
                Err(rx) => self.park(&member.room, m, rx),
            },
            other => m.connection = other,
        }
    }

    async fn room_list(&self) -> Arc<Vec<RoomSummary>> {
        let version = *self.shared().list_version.borrow();
        {
            let cache = lock(&self.shared().list_cache);
            if cache.0 == version {
                return cache.1.clone();
            }
        }
        let cells: Vec<Arc<RoomCell>> = lock(&self.inner.rooms).values().cloned().collect();
        let mut list: Vec<RoomSummary> = cells
            .iter()
            .filter_map(|cell| {
                let room = lock(&cell.state);
                (!room.is_empty()).then(|| room.summary())
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        let list = Arc::new(list);
        *lock(&self.shared().list_cache) = (version, list.clone());
        list
    }

    fn watch_rooms(&self) -> watch::Receiver<u64> {
        self.shared().list_version.subscribe()
    }
}
