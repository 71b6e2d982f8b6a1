//! A member's outbox: a bounded queue of encoded frames, bounded in messages
//! and in bytes, that outlives the member's connection.
//!
//! While the member is connected its handler drains the queue; while it is in
//! its resume grace period the queue simply fills, and a resuming connection
//! takes over the receiving end. So the resume queue and the outbox are one
//! thing, and nothing is copied on resume. A full outbox means the member
//! cannot keep up: the room removes it rather than wait.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// The sending half, held by the room.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Utf8Bytes>,
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The receiving half, held by the member's current connection (or parked in
/// the room while it has none).
#[derive(Debug)]
pub struct OutboxReceiver {
    rx: mpsc::Receiver<Utf8Bytes>,
    bytes: Arc<AtomicUsize>,
}

/// The outbox is full (in messages or bytes), or nobody will ever read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// A new outbox holding at most `max_messages` frames and `max_bytes` bytes.
pub fn outbox(max_messages: usize, max_bytes: usize) -> (Outbox, OutboxReceiver) {
    let (tx, rx) = mpsc::channel(max_messages.max(1));
    let bytes = Arc::new(AtomicUsize::new(0));
    (
        Outbox {
            tx,
            bytes: bytes.clone(),
            max_bytes,
        },
        OutboxReceiver { rx, bytes },
    )
}

impl Outbox {
    /// Queues a frame without waiting.
    pub fn push(&self, frame: Utf8Bytes) -> Result<(), Overflow> {
        let len = frame.len();
        if self.bytes.fetch_add(len, Ordering::Relaxed) + len > self.max_bytes {
            self.bytes.fetch_sub(len, Ordering::Relaxed);
            return Err(Overflow);
        }
        self.tx.try_send(frame).map_err(|_| {
            self.bytes.fetch_sub(len, Ordering::Relaxed);
            Overflow
        })
    }
}

impl OutboxReceiver {
    /// The next frame; `None` once the room dropped the sending half.
    pub async fn recv(&mut self) -> Option<Utf8Bytes> {
        let frame = self.rx.recv().await?;
        self.bytes.fetch_sub(frame.len(), Ordering::Relaxed);
        Some(frame)
    }

    /// The next frame if one is ready.
    pub fn try_recv(&mut self) -> Option<Utf8Bytes> {
        let frame = self.rx.try_recv().ok()?;
        self.bytes.fetch_sub(frame.len(), Ordering::Relaxed);
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
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
}
