//! Members connected elsewhere, in rooms held here: a join asked for by
//! their instance, the forwarding of their outbox to it, and their actions,
//! leaving and detaching as their instance reports them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use huddle_protocol::{ErrorCode, LeaveReason};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::backplane::bus::{Envelope, Granted};
use crate::outbox::{OutboxReceiver, HANDOVER_TIMEOUT, MAX_BATCH};
use crate::registry::{
    ConnId, JoinFields, JoinRequest, Kick, OutboxSource, Refusal, Registry, RoomAction,
};
use crate::rooms::MemberRef;
use crate::sync::lock;

use super::writer::Out;
use super::Epoch;

/// A member connected elsewhere, in a room held here.
#[derive(Debug)]
pub(super) struct Forward {
    pub(super) member: MemberRef,
    pub(super) stop: Option<oneshot::Sender<()>>,
    pub(super) task: Option<JoinHandle<Option<OutboxReceiver>>>,
    /// Stopped by [`Envelope::Detach`]: the queue waits for [`Envelope::Unread`].
    pub(super) released: Option<OutboxReceiver>,
}

impl Epoch {
    /// A join from another instance's connection, in a room held here.
    pub(super) async fn on_join(
        self: &Arc<Self>,
        from: String,
        req: u64,
        conn: u64,
        join: JoinFields,
    ) {
        let alias = ConnId(self.next_alias.fetch_add(1, Ordering::Relaxed));
        let (kick, kicked) = oneshot::channel();
        let request = JoinRequest {
            fields: join,
            conn: alias,
            kick,
        };
        // The answer goes back either way; a member let in is then forwarded.
        let (result, admitted) = match self.rooms.join(request).await {
            Ok(grant) => (
                Ok(Granted {
                    self_peer: grant.self_peer,
                    room: grant.room,
                    resume: grant.resume,
                    resumed: grant.resumed,
                }),
                Some((grant.outbox, grant.member)),
            ),
            Err(refusal) => (Err(refusal), None),
        };
        let reply = Envelope::Joined {
            from: self.me().to_owned(),
            req,
            conn,
            result,
        };
        self.send(&from, &reply);
        let Some((outbox, member)) = admitted else {
            return;
        };
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(
            self.clone()
                .forward(from.clone(), conn, outbox, kicked, stopped),
        );
        // The key is never used twice: each try of a join has its own id
        // (`join_remote`).
        lock(&self.forwards).insert(
            (from, conn),
            Forward {
                member,
                stop: Some(stop),
                task: Some(task),
                released: None,
            },
        );
    }

    /// Forwards member `conn`'s frames to instance `to` until stopped (then
    /// returns its queue) or until the member is removed.
    pub(super) async fn forward(
        self: Arc<Self>,
        to: String,
        conn: u64,
        source: OutboxSource,
        mut kicked: oneshot::Receiver<Kick>,
        mut stop: oneshot::Receiver<()>,
    ) -> Option<OutboxReceiver> {
        let mut rx = match source {
            OutboxSource::Ready(rx) => rx,
            OutboxSource::Handover(handover) => tokio::select! {
                got = tokio::time::timeout(HANDOVER_TIMEOUT, handover) => match got {
                    Ok(Ok(rx)) => rx,
                    _ => {
                        self.send(&to, &Envelope::Kick { conn, kick: Kick::Replaced });
                        return None;
                    }
                },
                _ = &mut stop => return None,
            },
        };
        let mut kick_pending = true;
        loop {
            tokio::select! {
                biased;
                _ = &mut stop => return Some(rx),
                kick = &mut kicked, if kick_pending => {
                    kick_pending = false;
                    if let Ok(kick) = kick {
                        self.send(&to, &Envelope::Kick { conn, kick });
                    }
                }
                frame = rx.recv() => match frame {
                    Some(first) => {
                        let mut frames = vec![first];
                        while frames.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Some(frame) => frames.push(frame),
                                None => break,
                            }
                        }
                        self.out.push(Out::Deliver { to: to.clone(), conn, frames });
                    }
                    None => {
                        self.send(&to, &Envelope::Closed { conn });
                        lock(&self.forwards).remove(&(to, conn));
                        return None;
                    }
                },
            }
        }
    }

    /// An action of a member connected elsewhere, answered with its result.
    pub(super) async fn on_act(&self, from: String, req: u64, conn: u64, action: RoomAction) {
        let member = lock(&self.forwards)
            .get(&(from.clone(), conn))
            .map(|f| f.member.clone());
        let result = match member {
            Some(member) => self.rooms.act(&member, action).await,
            None => Err(Refusal::new(
                ErrorCode::NotJoined,
                "you are no longer in the room",
            )),
        };
        self.send(&from, &Envelope::Done { req, result });
    }

    /// A member connected elsewhere leaves for good.
    pub(super) async fn on_leave(&self, from: String, conn: u64, reason: LeaveReason) {
        let forward = lock(&self.forwards).remove(&(from, conn));
        if let Some(forward) = forward {
            if let Some(task) = forward.task {
                task.abort();
            }
            self.rooms.leave(forward.member, reason).await;
        }
    }

    /// A member's connection elsewhere dropped: forwarding stops, and the
    /// queue is kept until its instance gives back what it had not sent
    /// ([`Envelope::Unread`]).
    pub(super) async fn on_detach(&self, from: String, conn: u64) {
        let (stop, task) = {
            let mut forwards = lock(&self.forwards);
            let Some(forward) = forwards.get_mut(&(from.clone(), conn)) else {
                return;
            };
            (forward.stop.take(), forward.task.take())
        };
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        let rx = match task {
            Some(task) => task.await.ok().flatten(),
            None => None,
        };
        match rx {
            Some(rx) => {
                if let Some(forward) = lock(&self.forwards).get_mut(&(from.clone(), conn)) {
                    forward.released = Some(rx);
                }
                self.send(&from, &Envelope::Release { conn });
            }
            None => {
                lock(&self.forwards).remove(&(from, conn));
            }
        }
    }

    /// What a detached member's instance had not sent goes back in front of
    /// its queue, which waits here for a resume.
    pub(super) async fn on_unread(&self, from: String, conn: u64, frames: Vec<String>) {
        let forward = lock(&self.forwards).remove(&(from, conn));
        if let Some(Forward {
            member,
            released: Some(mut rx),
            ..
        }) = forward
        {
            rx.put_back(frames.into_iter().map(Utf8Bytes::from).collect());
            self.rooms.detach(member, rx).await;
        }
    }
}
