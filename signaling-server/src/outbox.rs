//! A member's outbox: a bounded queue of encoded frames, bounded in messages
//! and in bytes, that outlives the member's connection.
//!
//! While the member is connected its handler drains the queue; while it is in
//! its resume grace period the queue simply fills, and a resuming connection
//! takes over the receiving end. So the resume queue and the outbox are one
//! thing, and nothing is copied on resume. A full outbox means the member
//! cannot keep up: the room removes it rather than wait.
//!
//! Not a `tokio::sync::mpsc` channel: that allocates a cache-padded channel
//! and a 32-slot block up front (~1.5 KB measured per member), while this
//! queue costs ~150 bytes until frames are actually waiting.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::sync::lock;

/// Frames taken from an outbox at a time: per flush to the member's socket,
/// per frame batch handed to another instance over the backplane.
pub const MAX_BATCH: usize = 64;
/// How long a resuming member's new connection waits for the replaced one
/// (on this instance or another) to let go of the outbox.
pub const HANDOVER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Frames queued and what they weigh.
#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Utf8Bytes>,
    bytes: usize,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled on every push and when the last sender goes. `notify_one`
    /// keeps a permit when the reader is not waiting, so no wake-up is lost.
    ready: Notify,
    /// Live `Outbox` handles; at zero the reader sees the end.
    senders: AtomicUsize,
    max_messages: usize,
    max_bytes: usize,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue inconsistent
        // (every update is a single push or pop), so poisoning is ignored.
        lock(&self.queue)
    }
}

/// The sending half, held by the room.
#[derive(Debug)]
pub struct Outbox {
    shared: Arc<Shared>,
}

/// The receiving half, held by the member's current connection (or parked in
/// the room while it has none).
#[derive(Debug)]
pub struct OutboxReceiver {
    shared: Arc<Shared>,
}

/// The outbox is full (in messages or bytes), or nobody will ever read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// A new outbox holding at most `max_messages` frames and `max_bytes` bytes.
pub fn outbox(max_messages: usize, max_bytes: usize) -> (Outbox, OutboxReceiver) {
    let shared = Arc::new(Shared {
        queue: Mutex::default(),
        ready: Notify::new(),
        senders: AtomicUsize::new(1),
        max_messages: max_messages.max(1),
        max_bytes,
    });
    (
        Outbox {
            shared: shared.clone(),
        },
        OutboxReceiver { shared },
    )
}

impl Outbox {
    /// Queues a frame without waiting.
    pub fn push(&self, frame: Utf8Bytes) -> Result<(), Overflow> {
        {
            let mut queue = self.shared.queue();
            if queue.frames.len() >= self.shared.max_messages
                || queue.bytes + frame.len() > self.shared.max_bytes
            {
                return Err(Overflow);
            }
            queue.bytes += frame.len();
            queue.frames.push_back(frame);
        }
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Outbox {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.ready.notify_one();
        }
    }
}

impl OutboxReceiver {
    /// The next frame; `None` once the room dropped the sending half and
    /// everything queued has been read.
    pub async fn recv(&mut self) -> Option<Utf8Bytes> {
        loop {
            if let Some(frame) = self.try_recv() {
                return Some(frame);
            }
            if self.shared.senders.load(Ordering::Acquire) == 0 {
                // A last push may have raced with the check above.
                return self.try_recv();
            }
            self.shared.ready.notified().await;
        }
    }

    /// The next frame if one is ready.
    pub fn try_recv(&mut self) -> Option<Utf8Bytes> {
        let mut queue = self.shared.queue();
        let frame = queue.frames.pop_front()?;
        queue.bytes -= frame.len();
        if queue.frames.is_empty() && queue.frames.capacity() > IDLE_CAPACITY {
            // A burst is over: give its memory back.
            queue.frames.shrink_to(IDLE_CAPACITY);
        }
        Some(frame)
    }
}

impl OutboxReceiver {
    /// Puts `frames`, read earlier, back in front of what is queued, in their
    /// order (limits are not checked: they held when the frames were queued).
    pub fn put_back(&mut self, frames: Vec<Utf8Bytes>) {
        let mut queue = self.shared.queue();
        for frame in frames.into_iter().rev() {
            queue.bytes += frame.len();
            queue.frames.push_front(frame);
        }
    }
}

/// Frames of capacity an emptied queue keeps.
const IDLE_CAPACITY: usize = 8;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bounded_in_messages_and_bytes() {
        let (tx, mut rx) = outbox(3, 10);
        assert_eq!(tx.push("aaaa".into()), Ok(()));
        assert_eq!(tx.push("bbbb".into()), Ok(()));
        assert_eq!(tx.push("ccc".into()), Err(Overflow), "11 bytes > 10");
        assert_eq!(tx.push("cc".into()), Ok(()));
        assert_eq!(tx.push("d".into()), Err(Overflow), "4 messages > 3");
        assert_eq!(rx.try_recv().as_deref(), Some("aaaa"));
        assert_eq!(tx.push("dddd".into()), Ok(()), "room again after a read");
        assert_eq!(rx.try_recv().as_deref(), Some("bbbb"));
        assert_eq!(rx.try_recv().as_deref(), Some("cc"));
        assert_eq!(rx.try_recv().as_deref(), Some("dddd"));
        assert_eq!(rx.try_recv(), None);
    }

    #[test]
    fn frames_put_back_come_first_in_their_order() {
        let (tx, mut rx) = outbox(8, 1024);
        tx.push("c".into()).unwrap();
        rx.put_back(vec!["a".into(), "b".into()]);
        let got: Vec<String> = std::iter::from_fn(|| rx.try_recv())
            .map(|f| f.to_string())
            .collect();
        assert_eq!(got, ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn the_reader_wakes_for_a_push_and_sees_the_end_after_the_last_frame() {
        let (tx, mut rx) = outbox(8, 1024);
        let copy = tx.clone();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(frame) = rx.recv().await {
                got.push(frame.to_string());
            }
            got
        });
        tokio::task::yield_now().await;
        tx.push("one".into()).unwrap();
        drop(tx);
        copy.push("two".into()).unwrap();
        drop(copy);
        assert_eq!(reader.await.unwrap(), ["one", "two"]);
    }
}
