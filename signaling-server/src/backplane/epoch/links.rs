//! Members connected here whose rooms another instance holds: joining
//! through the owner, acting, leaving, detaching, and the frames the owner
//! forwards to them.

use std::sync::atomic::Ordering;

use huddle_protocol::{ErrorCode, LeaveReason};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::backplane::bus::Envelope;
use crate::metrics::Metrics;
use crate::outbox::{outbox, Outbox, OutboxReceiver};
use crate::registry::{ConnId, Grant, JoinRequest, Kick, OutboxSource, Refusal, RoomAction};
use crate::sync::lock;

use super::{Epoch, RemoteJoinError};

/// A member connected here whose room another instance holds.
#[derive(Debug)]
pub(super) struct Link {
    pub(super) owner: String,
    pub(super) outbox: Outbox,
    pub(super) kick: Option<oneshot::Sender<Kick>>,
    /// The connection is gone: its unread frames wait here for
    /// [`Envelope::Release`].
    pub(super) detached: Option<OutboxReceiver>,
}

impl Epoch {
    /// Joins a room that instance `owner` holds.
    pub async fn join_remote(
        &self,
        owner: &str,
        mut request: JoinRequest,
    ) -> Result<Grant<ConnId>, RemoteJoinError> {
        // Its own id on the bus, not the connection's: a try that went
        // unanswered is taken back below, and whatever the holder still
        // sends it must not reach the next try.
        let conn = ConnId(self.next_link.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = outbox(self.config.outbox_messages, self.config.outbox_bytes);
        // Registered first: frames may arrive before the answer.
        let (kick, _) = oneshot::channel();
        let kick = std::mem::replace(&mut request.kick, kick);
        lock(&self.links).insert(
            conn,
            Link {
                owner: owner.to_owned(),
                outbox: tx,
                kick: Some(kick),
                detached: None,
            },
        );
        let join = request.fields.clone();
        let answer = self
            .request(owner, |req| Envelope::Join {
                from: self.me().to_owned(),
                req,
                conn: conn.0,
                join,
            })
            .await;
        match answer {
            Some(Envelope::Joined {
                result: Ok(granted),
                ..
            }) => {
                Metrics::add(&self.metrics.backplane_links, 1);
                Ok(Grant {
                    member: conn,
                    self_peer: granted.self_peer,
                    room: granted.room,
                    resume: granted.resume,
                    resumed: granted.resumed,
                    outbox: OutboxSource::Ready(rx),
                })
            }
            Some(Envelope::Joined {
                result: Err(refusal),
                ..
            }) => {
                lock(&self.links).remove(&conn);
                Err(RemoteJoinError::Refused(refusal))
            }
            _ => {
                if let Some(link) = lock(&self.links).remove(&conn) {
                    if let Some(kick) = link.kick {
                        request.kick = kick;
                    }
                }
                // The holder may have let the member in and only its answer
                // be late: without this, the first would stay in the room
                // beside the retry's member, a ghost nobody forwards to.
                // The holder reads this after the join (one publisher, one
                // channel, in order); unknown there, it is nothing.
                self.send(
                    owner,
                    &Envelope::Leave {
                        from: self.me().to_owned(),
                        conn: conn.0,
                        reason: LeaveReason::Disconnected,
                    },
                );
                Err(RemoteJoinError::NoAnswer(request))
            }
        }
    }

    /// An action of member `conn` in a room held elsewhere.
    pub async fn act_remote(&self, conn: ConnId, action: RoomAction) -> Result<(), Refusal> {
        let Some(owner) = lock(&self.links).get(&conn).map(|l| l.owner.clone()) else {
            return Err(Refusal::new(
                ErrorCode::NotJoined,
                "you are no longer in the room",
            ));
        };
        let answer = self
            .request(&owner, |req| Envelope::Act {
                from: self.me().to_owned(),
                req,
                conn: conn.0,
                action,
            })
            .await;
        match answer {
            Some(Envelope::Done { result, .. }) => result,
            _ => {
                // The room's instance is gone or stuck: reconnecting finds
                // the room wherever it is now.
                self.kick_link(conn, Kick::Unavailable);
                Err(Refusal::new(
                    ErrorCode::NotJoined,
                    "the server holding the room did not answer; reconnecting",
                ))
            }
        }
    }

    /// Member `conn` leaves a room held elsewhere.
    pub fn leave_remote(&self, conn: ConnId, reason: LeaveReason) {
        if let Some(link) = self.remove_link(conn) {
            self.send(
                &link.owner,
                &Envelope::Leave {
                    from: self.me().to_owned(),
                    conn: conn.0,
                    reason,
                },
            );
        }
    }

    /// Member `conn`'s socket is gone; `rx` holds what it did not read.
    pub fn detach_remote(&self, conn: ConnId, rx: OutboxReceiver) {
        let mut links = lock(&self.links);
        let Some(link) = links.get_mut(&conn) else {
            return;
        };
        link.detached = Some(rx);
        let owner = link.owner.clone();
        drop(links);
        self.send(
            &owner,
            &Envelope::Detach {
                from: self.me().to_owned(),
                conn: conn.0,
            },
        );
    }

    pub(super) fn remove_link(&self, conn: ConnId) -> Option<Link> {
        let link = lock(&self.links).remove(&conn);
        if link.is_some() {
            Metrics::add(&self.metrics.backplane_links, -1);
        }
        link
    }

    pub(super) fn kick_link(&self, conn: ConnId, why: Kick) {
        if let Some(link) = self.remove_link(conn) {
            if let Some(kick) = link.kick {
                let _ = kick.send(why);
            }
        }
    }

    /// Puts frames from a room's instance in member `conn`'s outbox.
    pub(super) fn deliver(&self, conn: ConnId, frames: Vec<Utf8Bytes>) {
        let overflowed = {
            let links = lock(&self.links);
            let Some(link) = links.get(&conn) else {
                return;
            };
            frames
                .into_iter()
                .any(|frame| link.outbox.push(frame).is_err())
        };
        if overflowed {
            // The client cannot keep up: as with one instance, it is removed.
            if let Some(link) = self.remove_link(conn) {
                if let Some(kick) = link.kick {
                    let _ = kick.send(Kick::TooSlow);
                }
                self.send(
                    &link.owner,
                    &Envelope::Leave {
                        from: self.me().to_owned(),
                        conn: conn.0,
                        reason: LeaveReason::Disconnected,
                    },
                );
            }
        }
    }

    /// The room's instance tells connection `conn` to close.
    pub(super) fn on_kick(&self, conn: ConnId, kick: Kick) {
        let mut links = lock(&self.links);
        if let Some(sender) = links.get_mut(&conn).and_then(|l| l.kick.take()) {
            let _ = sender.send(kick);
        }
    }

    /// Everything forwarded to detached connection `conn` is here: what it
    /// had not sent goes back to the room's instance.
    pub(super) fn on_release(&self, conn: ConnId) {
        let Some(link) = self.remove_link(conn) else {
            return;
        };
        let mut frames = Vec::new();
        if let Some(mut rx) = link.detached {
            while let Some(frame) = rx.try_recv() {
                frames.push(frame.to_string());
            }
        }
        self.send(
            &link.owner,
            &Envelope::Unread {
                from: self.me().to_owned(),
                conn: conn.0,
                frames,
            },
        );
    }
}

/// An [`Envelope::Fanout`] as each member's frames, in the order given: each
/// distinct frame is made once and shared by its members; an index past the
/// frames names nothing.
pub(super) fn fan_out(
    frames: Vec<String>,
    deliveries: Vec<(u64, Vec<u32>)>,
) -> Vec<(ConnId, Vec<Utf8Bytes>)> {
    let frames: Vec<Utf8Bytes> = frames.into_iter().map(Utf8Bytes::from).collect();
    deliveries
        .into_iter()
        .map(|(conn, indices)| {
            let mine = indices
                .iter()
                .filter_map(|i| frames.get(*i as usize).cloned())
                .collect();
            (ConnId(conn), mine)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fanout_gives_each_member_its_frames_in_order() {
        let frames = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let out = fan_out(frames, vec![(7, vec![2, 0]), (3, vec![1, 9]), (5, vec![])]);
        let as_text: Vec<(u64, Vec<&str>)> = out
            .iter()
            .map(|(conn, frames)| (conn.0, frames.iter().map(|f| f.as_str()).collect()))
            .collect();
        assert_eq!(as_text, [(7, vec!["c", "a"]), (3, vec!["b"]), (5, vec![])]);
    }
}
