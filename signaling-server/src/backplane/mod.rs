//! Rooms shared by several instances through Redis: the [`Backplane`]
//! registry (`--redis URL`).
//!
//! Each room is *held* by one instance at a time — the one that created it,
//! or took it over — and runs there exactly as in a single server (the same
//! [`Rooms`] code), so its order, its call and its ids stay those of one
//! server. Members connected to other instances reach it through Redis
//! pub/sub ([`bus`]): their instance forwards their actions, and the room's
//! instance forwards their frames back in the room's order. The holder
//! writes the room's state to Redis after every change ([`store`]); when
//! it dies (its heartbeat expires), another instance takes the room over
//! from that state. See ARCHITECTURE.md for why pub/sub and why a holder.

mod bus;
mod epoch;
mod store;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use huddle_protocol::model::RoomSummary;
use huddle_protocol::LeaveReason;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::outbox::OutboxReceiver;
use crate::registry::{ConnId, Grant, JoinRequest, Refusal, Registry, RoomAction};
use crate::rooms::MemberRef;
use crate::sync::lock;
use epoch::{unavailable, Epoch, RemoteJoinError};

pub use store::{HEARTBEAT_EVERY, HEARTBEAT_TTL};

/// Tries a join makes before giving up on the room's instance.
const JOIN_ATTEMPTS: usize = 4;
/// Longest wait between reconnection attempts to Redis.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why the backplane could not start.
#[derive(Debug, thiserror::Error)]
pub enum BackplaneError {
    /// The URL is not a Redis URL.
    #[error("bad Redis URL: {0}")]
    Url(#[source] redis::RedisError),
    /// Redis did not answer.
    #[error("cannot reach Redis at {url}: {source}")]
    Connect {
        /// The URL tried (without its password).
        url: String,
        /// What failed.
        #[source]
        source: redis::RedisError,
    },
}

/// A member, as its connection holds it.
#[derive(Debug)]
pub struct Member(Where);

/// Where a member's room is.
#[derive(Debug)]
enum Where {
    /// In a room this instance holds.
    Held {
        epoch: Arc<Epoch>,
        member: MemberRef,
    },
    /// In a room another instance holds.
    Linked { epoch: Arc<Epoch>, conn: ConnId },
}

/// The room list, and the versions (notifications, own rooms) it was read at.
type ListCache = ((u64, u64), Arc<Vec<RoomSummary>>);

#[derive(Debug)]
struct Inner {
    current: Mutex<Option<Arc<Epoch>>>,
    metrics: Arc<Metrics>,
    list_version: watch::Sender<u64>,
    list_cache: Mutex<ListCache>,
}

/// The Redis-backed registry. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Backplane {
    inner: Arc<Inner>,
}

/// `url` without a password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

impl Backplane {
    /// Connects to Redis at `url` and registers this instance; keeps
    /// reconnecting (with backoff) whenever Redis is lost later.
    pub async fn connect(
        url: &str,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
    ) -> Result<Backplane, BackplaneError> {
        let client = match &config.redis_ca {
            // `rediss://` with a private CA; otherwise the system's roots.
            Some(ca) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.clone()),
                },
            ),
            None => redis::Client::open(url),
        }
        .map_err(BackplaneError::Url)?;
        let list_version = watch::channel(0).0;
        let epoch = Epoch::start(
            &client,
            config.clone(),
            metrics.clone(),
            list_version.clone(),
        )
        .await
        .map_err(|source| BackplaneError::Connect {
            url: redacted(url),
            source,
        })?;
        metrics.backplane.store(true, Ordering::Relaxed);
        metrics.backplane_up.store(1, Ordering::Relaxed);
        let backplane = Backplane {
            inner: Arc::new(Inner {
                current: Mutex::new(Some(epoch.clone())),
                metrics,
                list_version,
                list_cache: Mutex::new(((u64::MAX, u64::MAX), Arc::new(Vec::new()))),
            }),
        };
        tokio::spawn(backplane.clone().supervise(client, config, epoch));
        Ok(backplane)
    }

    /// The current registration, if Redis is there.
    fn epoch(&self) -> Option<Arc<Epoch>> {
        lock(&self.inner.current).clone().filter(|e| !e.is_ended())
    }

    fn set_epoch(&self, epoch: Option<Arc<Epoch>>) {
        *lock(&self.inner.current) = epoch;
        self.inner.list_version.send_modify(|v| *v += 1);
    }

    /// Whether Redis is reachable and this instance registered.
    pub fn is_up(&self) -> bool {
        self.epoch().is_some()
    }

    /// This instance's current id in the cluster.
    pub fn instance(&self) -> Option<String> {
        self.epoch().map(|e| e.me().to_owned())
    }

    /// Replaces each ended registration with a new one, retrying with backoff.
    async fn supervise(self, client: redis::Client, config: Arc<Config>, mut epoch: Arc<Epoch>) {
        let metrics = self.inner.metrics.clone();
        loop {
            epoch.ended().await;
            self.set_epoch(None);
            metrics.backplane_up.store(0, Ordering::Relaxed);
            let mut backoff = Duration::from_millis(100);
            epoch = loop {
                tokio::time::sleep(backoff).await;
                match Epoch::start(
                    &client,
                    config.clone(),
                    metrics.clone(),
                    self.inner.list_version.clone(),
                )
                .await
                {
                    Ok(epoch) => break epoch,
                    Err(e) => {
                        warn!("backplane reconnection failed (next in {backoff:?}): {e}");
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            };
            info!(instance = epoch.me(), "backplane back");
            metrics.backplane_reconnects.fetch_add(1, Ordering::Relaxed);
            metrics.backplane_up.store(1, Ordering::Relaxed);
            self.set_epoch(Some(epoch.clone()));
        }
    }
}

fn held(epoch: &Arc<Epoch>, grant: Grant<MemberRef>) -> Grant<Member> {
    Grant {
        member: Member(Where::Held {
            epoch: epoch.clone(),
            member: grant.member,
        }),
        self_peer: grant.self_peer,
        room: grant.room,
        resume: grant.resume,
        resumed: grant.resumed,
        outbox: grant.outbox,
    }
}

impl Registry for Backplane {
    type Member = Member;

    async fn join(&self, mut request: JoinRequest) -> Result<Grant<Member>, Refusal> {
        for _ in 0..JOIN_ATTEMPTS {
            let epoch = self.epoch().ok_or_else(unavailable)?;
            let owner = epoch.claim(&request.fields.room).await?;
            if owner == epoch.me() {
                return epoch.rooms.join(request).await.map(|g| held(&epoch, g));
            }
            match epoch.join_remote(&owner, request).await {
                Ok(grant) => {
                    return Ok(Grant {
                        member: Member(Where::Linked {
                            epoch: epoch.clone(),
                            conn: grant.member,
                        }),
                        self_peer: grant.self_peer,
                        room: grant.room,
                        resume: grant.resume,
                        resumed: grant.resumed,
                        outbox: grant.outbox,
                    })
                }
                Err(RemoteJoinError::Refused(refusal)) => return Err(refusal),
                // The holder did not answer: ask again (once its heartbeat
                // has expired, the room is taken over).
                Err(RemoteJoinError::NoAnswer(back)) => request = back,
            }
        }
        Err(unavailable())
    }

    async fn act(&self, member: &Member, action: RoomAction) -> Result<(), Refusal> {
        match &member.0 {
            Where::Held { epoch, member } => epoch.rooms.act(member, action).await,
            Where::Linked { epoch, conn } => epoch.act_remote(*conn, action).await,
        }
    }

    async fn leave(&self, member: Member, reason: LeaveReason) {
        match member.0 {
            Where::Held { epoch, member } => epoch.rooms.leave(member, reason).await,
            Where::Linked { epoch, conn } => epoch.leave_remote(conn, reason),
        }
    }

    async fn detach(&self, member: Member, rx: OutboxReceiver) {
        match member.0 {
            Where::Held { epoch, member } => epoch.rooms.detach(member, rx).await,
            Where::Linked { epoch, conn } => epoch.detach_remote(conn, rx),
        }
    }

    async fn room_list(&self) -> Arc<Vec<RoomSummary>> {
        let Some(epoch) = self.epoch() else {
            return lock(&self.inner.list_cache).1.clone();
        };
        // Other instances' changes arrive as notifications, this instance's
        // own as changes of its rooms: either makes the cache stale.
        let version = (
            *self.inner.list_version.borrow(),
            *epoch.rooms.watch_rooms().borrow(),
        );
        let cached = {
            let cache = lock(&self.inner.list_cache);
            if cache.0 == version {
                return cache.1.clone();
            }
            cache.1.clone()
        };
        match epoch.room_list().await {
            Some(list) => {
                let list = Arc::new(list);
                *lock(&self.inner.list_cache) = (version, list.clone());
                list
            }
            // The last list known beats none; the writer notices the loss.
            None => cached,
        }
    }

    fn watch_rooms(&self) -> watch::Receiver<u64> {
        self.inner.list_version.subscribe()
    }

    fn healthy(&self) -> bool {
        self.is_up()
    }
}
