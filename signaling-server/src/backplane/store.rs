//! What the cluster keeps in Redis, and the few scripts that change it
//! atomically.
//!
//! Keys (all under `huddle:`):
//! - `instances`: set of registered instance ids (removed once reaped);
//! - `instance:<id>`: an instance's heartbeat, expiring after [`HEARTBEAT_TTL`];
//! - `owned:<id>`: set of the rooms instance `<id>` holds;
//! - `room:<name>:owner`: the instance holding the room;
//! - `room:<name>:state`: the room's [`RoomSnapshot`] (JSON);
//! - `rooms`: hash room name → its room-list entry (JSON).
//!
//! Channels: `bus:<id>` (an instance's [`super::bus::Envelope`]s) and
//! `rooms-changed` (the room list changed).
//!
//! Ownership is *fenced*: only the instance named in `room:<name>:owner`
//! writes the room's state, and a room changes hands only when its owner's
//! heartbeat has expired.

use std::sync::LazyLock;
use std::time::Duration;

use huddle_protocol::model::RoomSummary;
use redis::aio::MultiplexedConnection;
use redis::{AsyncTypedCommands, Pipeline, RedisResult, Script};

use crate::rooms::RoomSnapshot;

/// How long an instance counts as alive after its last heartbeat.
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(3);
/// How often an instance renews its heartbeat and checks the others'.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// The channel announcing room-list changes.
pub const ROOMS_CHANGED: &str = "huddle:rooms-changed";
const ROOMS: &str = "huddle:rooms";
const INSTANCES: &str = "huddle:instances";
const INSTANCE_PREFIX: &str = "huddle:instance:";
const OWNED_PREFIX: &str = "huddle:owned:";

/// Instance `id`'s bus channel.
pub fn bus(id: &str) -> String {
    format!("huddle:bus:{id}")
}

fn heartbeat_key(id: &str) -> String {
    format!("{INSTANCE_PREFIX}{id}")
}

fn owned_key(id: &str) -> String {
    format!("{OWNED_PREFIX}{id}")
}

fn owner_key(room: &str) -> String {
    format!("huddle:room:{room}:owner")
}

fn state_key(room: &str) -> String {
    format!("huddle:room:{room}:state")
}

/// Makes ARGV[1] the owner of room ARGV[2] unless a live instance holds it.
/// Returns {owner, 1 if taken over from a dead instance else 0}; {'', 2}
/// when the room would be new and the cluster has ARGV[5] rooms; false when
/// ARGV[1] itself is no longer registered.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('EXISTS', ARGV[3] .. ARGV[1]) == 0 then return false end
        local owner = redis.call('GET', KEYS[1])
        if owner == ARGV[1] then return {owner, 0} end
        if owner and redis.call('EXISTS', ARGV[3] .. owner) == 1 then return {owner, 0} end
        if not owner and redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[5]) then return {'', 2} end
        redis.call('SET', KEYS[1], ARGV[1])
        redis.call('SADD', ARGV[4] .. ARGV[1], ARGV[2])
        if owner then
            redis.call('SREM', ARGV[4] .. owner, ARGV[2])
            return {ARGV[1], 1}
        end
        return {ARGV[1], 0}
        ",
    )
});

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The room's owner.
    Owner {
        /// Its id.
        owner: String,
        /// This instance just took the room over from a dead one: its
        /// stored state is to be restored.
        took_over: bool,
    },
    /// The room does not exist and the cluster is at its room limit.
    Full,
    /// This instance is not registered any more (its heartbeat expired).
    Unregistered,
}

impl Claim {
    /// Parses the script's answer.
    pub fn parse(value: redis::Value) -> RedisResult<Claim> {
        let answer: Option<(String, i64)> = redis::from_redis_value(value)?;
        Ok(match answer {
            None => Claim::Unregistered,
            Some((_, 2)) => Claim::Full,
            Some((owner, flag)) => Claim::Owner {
                owner,
                took_over: flag == 1,
            },
        })
    }
}

/// Stores a room's state and list entry if ARGV[1] still owns it.
static SAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        redis.call('SET', KEYS[2], ARGV[3])
        if redis.call('HGET', KEYS[3], ARGV[2]) ~= ARGV[4] then
            redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
            redis.call('PUBLISH', ARGV[5], ARGV[2])
        end
        return 1
        ",
    )
});

/// Deletes an emptied room if ARGV[1] still owns it.
static DROP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1], KEYS[2])
        redis.call('SREM', KEYS[4], ARGV[2])
        if redis.call('HDEL', KEYS[3], ARGV[2]) == 1 then
            redis.call('PUBLISH', ARGV[3], ARGV[2])
        end
        return 1
        ",
    )
});

/// Forgets dead instance ARGV[1] once it holds no room.
static FORGET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        if redis.call('SCARD', KEYS[2]) > 0 then return 0 end
        redis.call('SREM', KEYS[3], ARGV[1])
        return 1
        ",
    )
});

/// One registration's view of Redis.
#[derive(Clone)]
pub struct Store {
    con: MultiplexedConnection,
    me: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("me", &self.me).finish()
    }
}

impl Store {
    /// Registers instance `me` (heartbeat and membership of `instances`) and
    /// loads the scripts.
    pub async fn register(mut con: MultiplexedConnection, me: String) -> RedisResult<Store> {
        for script in [&*CLAIM, &*SAVE, &*DROP, &*FORGET] {
            script.prepare_invoke().load_async(&mut con).await?;
        }
        redis::pipe()
            .set_options(
                heartbeat_key(&me),
                1,
                redis::SetOptions::default()
                    .with_expiration(redis::SetExpiry::PX(HEARTBEAT_TTL.as_millis() as u64)),
            )
            .ignore()
            .sadd(INSTANCES, &me)
            .ignore()
            .exec_async(&mut con)
            .await?;
        Ok(Store { con, me })
    }

    /// This instance's id.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// A connection for commands of this registration.
    pub fn con(&self) -> MultiplexedConnection {
        self.con.clone()
    }

    /// Renews the heartbeat; `false` if it had expired (the cluster has
    /// counted this instance as dead and may have taken its rooms).
    pub async fn heartbeat(&self) -> RedisResult<bool> {
        let mut con = self.con();
        con.pexpire(heartbeat_key(&self.me), HEARTBEAT_TTL.as_millis() as i64)
            .await
    }

    /// Adds claiming `room` to `pipe`, refused if it would be new and the
    /// cluster holds `max_rooms` (not ignored: see [`Claim::parse`]).
    pub fn claim(&self, pipe: &mut Pipeline, room: &str, max_rooms: usize) {
        pipe.invoke_script(
            CLAIM
                .key(owner_key(room))
                .key(ROOMS)
                .arg(&self.me)
                .arg(room)
                .arg(INSTANCE_PREFIX)
                .arg(OWNED_PREFIX)
                .arg(max_rooms),
        );
    }

    /// Adds reading the room list to `pipe` (not ignored: see [`parse_list`]).
    pub fn list(&self, pipe: &mut Pipeline) {
        pipe.hvals(ROOMS);
    }

    /// The stored state of `room`, if any (unreadable state counts as none).
    pub async fn load(&self, room: &str) -> RedisResult<Option<RoomSnapshot>> {
        let json: Option<String> = self.con().get(state_key(room)).await?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Adds storing `snapshot` (fenced) to `pipe`.
    pub fn save(&self, pipe: &mut Pipeline, snapshot: &RoomSnapshot) {
        let state = serde_json::to_string(snapshot).unwrap_or_default();
        let entry = serde_json::to_string(&snapshot.summary()).unwrap_or_default();
        pipe.invoke_script(
            SAVE.key(owner_key(&snapshot.name))
                .key(state_key(&snapshot.name))
                .key(ROOMS)
                .arg(&self.me)
                .arg(&snapshot.name)
                .arg(state)
                .arg(entry)
                .arg(ROOMS_CHANGED),
        )
        .ignore();
    }

    /// Adds deleting emptied `room` (fenced) to `pipe`.
    pub fn drop_room(&self, pipe: &mut Pipeline, room: &str) {
        pipe.invoke_script(
            DROP.key(owner_key(room))
                .key(state_key(room))
                .key(ROOMS)
                .key(owned_key(&self.me))
                .arg(&self.me)
                .arg(room)
                .arg(ROOMS_CHANGED),
        )
        .ignore();
    }

    /// Which of `ids` are alive (same order).
    pub async fn alive(&self, ids: &[String]) -> RedisResult<Vec<bool>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.exists(heartbeat_key(id));
        }
        pipe.query_async(&mut self.con()).await
    }

    /// Registered instances other than this one whose heartbeat expired.
    pub async fn dead_instances(&self) -> RedisResult<Vec<String>> {
        let all: Vec<String> = self
            .con()
            .smembers(INSTANCES)
            .await?
            .into_iter()
            .filter(|id| *id != self.me)
            .collect();
        let alive = self.alive(&all).await?;
        Ok(all
            .into_iter()
            .zip(alive)
            .filter_map(|(id, alive)| (!alive).then_some(id))
            .collect())
    }

    /// The rooms instance `id` holds.
    pub async fn rooms_of(&self, id: &str) -> RedisResult<Vec<String>> {
        Ok(self
            .con()
            .smembers(owned_key(id))
            .await?
            .into_iter()
            .collect())
    }

    /// Forgets dead instance `id` if it holds no room any more.
    pub async fn forget(&self, id: &str) -> RedisResult<()> {
        FORGET
            .key(heartbeat_key(id))
            .key(owned_key(id))
            .key(INSTANCES)
            .arg(id)
            .invoke_async::<i64>(&mut self.con())
            .await
            .map(drop)
    }
}

/// The room list from [`Store::list`]'s answer, sorted by name (unreadable
/// entries skipped).
pub fn parse_list(value: redis::Value) -> RedisResult<Vec<RoomSummary>> {
    let entries: Vec<String> = redis::from_redis_value(value)?;
    let mut list: Vec<RoomSummary> = entries
        .iter()
        .filter_map(|e| serde_json::from_str(e).ok())
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list)
}
