//! Liveness: this instance's heartbeat, the instances it depends on, and
//! what is taken over when one of them dies.

use std::sync::Arc;

use redis::RedisResult;
use tracing::warn;

use crate::backplane::store::{self};
use crate::registry::{ConnId, Kick, Registry};
use crate::sync::lock;

use super::forwards::Forward;
use super::Epoch;

impl Epoch {
    /// The heartbeat: renews this instance's, checks the instances this one
    /// depends on, takes over the rooms of dead ones.
    pub(super) async fn beat(self: Arc<Self>) -> RedisResult<()> {
        let mut every = tokio::time::interval(store::HEARTBEAT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if !self.store.heartbeat().await? {
                self.end("this instance's heartbeat expired");
                return Ok(());
            }
            self.check_peers().await?;
            for dead in self.store.dead_instances().await? {
                for room in self.store.rooms_of(&dead).await? {
                    // Restores the room here if this instance wins it.
                    let _ = self.claim(&room).await;
                }
                self.store.forget(&dead).await?;
            }
        }
    }

    /// Drops links and forwards of instances that died.
    pub(super) async fn check_peers(&self) -> RedisResult<()> {
        let mut ids: Vec<String> = lock(&self.links)
            .values()
            .map(|l| l.owner.clone())
            .collect();
        ids.extend(lock(&self.forwards).keys().map(|(from, _)| from.clone()));
        ids.sort();
        ids.dedup();
        let alive = self.store.alive(&ids).await?;
        for (id, alive) in ids.into_iter().zip(alive) {
            if !alive {
                self.instance_died(&id).await;
            }
        }
        Ok(())
    }

    /// Instance `id` died: its members here are detached (their grace period
    /// starts), and members here of its rooms are told to reconnect.
    pub(super) async fn instance_died(&self, id: &str) {
        warn!(instance = id, "instance died");
        let conns: Vec<ConnId> = lock(&self.links)
            .iter()
            .filter(|(_, l)| l.owner == id)
            .map(|(c, _)| *c)
            .collect();
        for conn in conns {
            self.kick_link(conn, Kick::Unavailable);
        }
        let gone: Vec<Forward> = {
            let mut forwards = lock(&self.forwards);
            let keys: Vec<(String, u64)> = forwards
                .keys()
                .filter(|(from, _)| from == id)
                .cloned()
                .collect();
            keys.iter().filter_map(|k| forwards.remove(k)).collect()
        };
        for forward in gone {
            if let Some(stop) = forward.stop {
                let _ = stop.send(());
            }
            let rx = match (forward.released, forward.task) {
                (Some(rx), _) => Some(rx),
                (None, Some(task)) => task.await.ok().flatten(),
                (None, None) => None,
            };
            if let Some(rx) = rx {
                self.rooms.detach(forward.member, rx).await;
            }
        }
    }
}
