//! The engine's own interceptors as what they decide, without webrtc-rs's
//! plumbing: a [`Tap`] says what becomes of each inbound packet and of
//! each outbound one (most only look at those); [`Tapped`] is the one interceptor around it —
//! the read and write queues, the protocol's methods, no per-stream state.
//! `coverage.rs`, `resend.rs`, `reorder.rs` and `feedback.rs` are taps.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Interceptor, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// What an interceptor of ours does with the packets going by.
pub trait Tap: Send + Sync {
    /// An inbound packet: what goes on up the chain (`None`: it ends here).
    fn read(&mut self, message: TaggedPacket) -> Option<TaggedPacket>;

    /// An outbound packet on its way to the wire; it goes on unchanged.
    fn wrote(&mut self, _message: &TaggedPacket) {}

    /// An outbound packet: what goes on toward the wire (`None`: it ends
    /// here). By default it is looked at ([`Tap::wrote`]) and goes on.
    fn write(&mut self, message: TaggedPacket) -> Option<TaggedPacket> {
        self.wrote(&message);
        Some(message)
    }
}

/// A [`Tap`] in webrtc-rs's interceptor chain.
pub struct Tapped<T> {
    tap: T,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl<T: std::fmt::Debug> std::fmt::Debug for Tapped<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tapped")
            .field("tap", &self.tap)
            .field("queued", &(self.reads.len() + self.writes.len()))
            .finish()
    }
}

impl<T> Tapped<T> {
    pub fn new(tap: T) -> Tapped<T> {
        Tapped {
            tap,
            reads: VecDeque::new(),
            writes: VecDeque::new(),
        }
    }

    pub fn tap(&self) -> &T {
        &self.tap
    }
}

impl<T: Tap> Protocol<TaggedPacket, TaggedPacket, ()> for Tapped<T> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, message: TaggedPacket) -> Result<(), Self::Error> {
        if let Some(message) = self.tap.read(message) {
            self.reads.push_back(message);
        }
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, message: TaggedPacket) -> Result<(), Self::Error> {
        if let Some(message) = self.tap.write(message) {
            self.writes.push_back(message);
        }
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }
}

impl<T: Tap> Interceptor for Tapped<T> {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
