//! The writer: every Redis write and publish of an epoch, pipelined, in
//! the one order they are queued in (a room's frames, its stored state and
//! its ownership claims stay in order); its queue is bounded and never
//! waited on.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use huddle_protocol::model::RoomSummary;
use redis::RedisResult;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::backplane::bus::Envelope;
use crate::backplane::store::{self, Claim};
use crate::metrics::Metrics;
use crate::rooms::{Mirror, RoomSnapshot};

use super::{Epoch, MAX_PIPELINE};

/// A write of this instance, in the one order they reach Redis.
pub(super) enum Out {
    Publish {
        channel: String,
        payload: String,
    },
    /// Frames for member `conn` of instance `to`; the writer packs a run of
    /// these into one [`Envelope::Fanout`] per instance.
    Deliver {
        to: String,
        conn: u64,
        frames: Vec<Utf8Bytes>,
    },
    Save(RoomSnapshot),
    Drop(String),
    Claim(String, oneshot::Sender<RedisResult<Claim>>),
    List(oneshot::Sender<RedisResult<Vec<RoomSummary>>>),
}

/// A run of [`Out::Deliver`]s packed per receiving instance: each distinct
/// frame (the same shared bytes pushed to several members' queues) once.
#[derive(Default)]
pub(super) struct Fanouts {
    /// Per instance, in the order first seen.
    to: Vec<(String, Fanout)>,
}

#[derive(Default)]
pub(super) struct Fanout {
    frames: Vec<Utf8Bytes>,
    /// A frame's bytes (address, length) → its index in `frames`.
    index: HashMap<(usize, usize), u32>,
    deliveries: Vec<(u64, Vec<u32>)>,
}

impl Fanouts {
    fn add(&mut self, to: String, conn: u64, frames: Vec<Utf8Bytes>) {
        let at = match self.to.iter().position(|(t, _)| *t == to) {
            Some(at) => at,
            None => {
                self.to.push((to, Fanout::default()));
                self.to.len() - 1
            }
        };
        let fanout = &mut self.to[at].1;
        let indices = frames
            .into_iter()
            .map(|frame| {
                let key = (frame.as_str().as_ptr() as usize, frame.len());
                *fanout.index.entry(key).or_insert_with(|| {
                    fanout.frames.push(frame);
                    (fanout.frames.len() - 1) as u32
                })
            })
            .collect();
        fanout.deliveries.push((conn, indices));
    }

    /// Adds one publish per instance to `pipe`, and starts a new run.
    fn publish(&mut self, pipe: &mut redis::Pipeline, metrics: &Metrics) {
        for (to, fanout) in self.to.drain(..) {
            let envelope = Envelope::Fanout {
                frames: fanout
                    .frames
                    .iter()
                    .map(|f| f.as_str().to_owned())
                    .collect(),
                deliveries: fanout.deliveries,
            };
            metrics.backplane_published.fetch_add(1, Ordering::Relaxed);
            pipe.publish(store::bus(&to), envelope.encode()).ignore();
        }
    }
}

/// Who waits for the answer of a write that has one.
pub(super) enum Answer {
    Claim(oneshot::Sender<RedisResult<Claim>>),
    List(oneshot::Sender<RedisResult<Vec<RoomSummary>>>),
}

/// The writer's queue: bounded, and never waited on (rooms write under
/// their locks). When it is full, `full` is told and the epoch ends.
#[derive(Debug, Clone)]
pub(super) struct Outgoing {
    pub(super) tx: mpsc::Sender<Out>,
    pub(super) full: Arc<Notify>,
}

impl Outgoing {
    /// Queues a write; `false` when it could not be (full, or the epoch ended).
    pub(super) fn push(&self, out: Out) -> bool {
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.full.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// Hands the owned rooms' changes to the writer.
#[derive(Debug)]
pub(super) struct Writer(pub(super) Outgoing);

impl Mirror for Writer {
    fn changed(&self, snapshot: RoomSnapshot) {
        // A closed writer means the epoch ended; its rooms are being dropped.
        self.0.push(Out::Save(snapshot));
    }

    fn emptied(&self, name: &str) {
        self.0.push(Out::Drop(name.to_owned()));
    }
}

impl Epoch {
    /// The writer: every write in order, pipelined.
    pub(super) async fn write(self: Arc<Self>, mut writes: mpsc::Receiver<Out>) -> RedisResult<()> {
        let mut con = self.store.con();
        let mut batch = Vec::with_capacity(MAX_PIPELINE);
        while writes.recv_many(&mut batch, MAX_PIPELINE).await > 0 {
            // Let the other members' forwarders of the same room message
            // queue theirs, so the batch carries it once per instance.
            tokio::task::yield_now().await;
            while batch.len() < MAX_PIPELINE {
                match writes.try_recv() {
                    Ok(out) => batch.push(out),
                    Err(_) => break,
                }
            }
            let mut pipe = redis::pipe();
            let mut answers = Vec::new();
            let mut fanouts = Fanouts::default();
            for out in batch.drain(..) {
                if let Out::Deliver { to, conn, frames } = out {
                    fanouts.add(to, conn, frames);
                    continue;
                }
                // Anything else keeps its place after the deliveries before it.
                fanouts.publish(&mut pipe, &self.metrics);
                match out {
                    Out::Deliver { .. } => {}
                    Out::Publish { channel, payload } => {
                        pipe.publish(channel, payload).ignore();
                    }
                    Out::Save(snapshot) => self.store.save(&mut pipe, &snapshot),
                    Out::Drop(room) => self.store.drop_room(&mut pipe, &room),
                    Out::Claim(room, reply) => {
                        self.store.claim(&mut pipe, &room, self.config.max_rooms);
                        answers.push(Answer::Claim(reply));
                    }
                    Out::List(reply) => {
                        self.store.list(&mut pipe);
                        answers.push(Answer::List(reply));
                    }
                }
            }
            fanouts.publish(&mut pipe, &self.metrics);
            let values: Vec<redis::Value> = pipe.query_async(&mut con).await?;
            for (answer, value) in answers.into_iter().zip(values) {
                // A requester that stopped waiting is no concern of the writer.
                match answer {
                    Answer::Claim(reply) => drop(reply.send(Claim::parse(value))),
                    Answer::List(reply) => drop(reply.send(store::parse_list(value))),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_full_write_queue_is_told_not_waited_on() {
        let (tx, mut rx) = mpsc::channel(2);
        let full = Arc::new(Notify::new());
        let out = Outgoing {
            tx,
            full: full.clone(),
        };
        assert!(out.push(Out::Drop("a".into())));
        assert!(out.push(Out::Drop("b".into())));
        assert!(!out.push(Out::Drop("c".into())), "over the bound");
        // The overflow was signalled (a stored permit: no wait).
        tokio::time::timeout(Duration::from_secs(1), full.notified())
            .await
            .unwrap();
        assert!(rx.recv().await.is_some());
        assert!(out.push(Out::Drop("d".into())), "room again once drained");
    }
}
