//! The engine's own interceptors as what they decide, without webrtc-rs's
//! plumbing: a [`Tap`] says what becomes of each inbound packet and of
//! each outbound one (most only look at those); [`Tapped`] is the one interceptor around it —
//! the read and write queues, the protocol's methods, no per-stream state.
//! `coverage.rs`, `resend.rs`, `reorder.rs`, `repair.rs` and `feedback.rs`
//! are taps.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    nack_pairs_from_sequence_numbers, TransportLayerNack,
};
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

    /// A remote stream is bound to the chain (most taps need not know).
    fn bound_remote(&mut self, _info: &StreamInfo) {}

    /// A remote stream is gone from the chain.
    fn unbound_remote(&mut self, _info: &StreamInfo) {}
}

/// Rewrites the NACKs of an RTCP message: `keep` says which of each
/// NACK's sequence numbers stay; a NACK left with none is taken out, and a
/// message left with nothing at all ends here (`None`). Other packets, and
/// messages without a NACK, pass unchanged.
pub fn rewrite_nacks(
    mut message: TaggedPacket,
    mut keep: impl FnMut(&TransportLayerNack) -> Vec<u16>,
) -> Option<TaggedPacket> {
    let Packet::Rtcp(packets) = &message.message.packet else {
        return Some(message);
    };
    if !packets
        .iter()
        .any(|p| p.as_any().is::<TransportLayerNack>())
    {
        return Some(message);
    }
    let mut kept: Vec<Box<dyn rtc::rtcp::Packet>> = Vec::with_capacity(packets.len());
    for packet in packets {
        let Some(nack) = packet.as_any().downcast_ref::<TransportLayerNack>() else {
            kept.push(packet.clone());
            continue;
        };
        let wanted = keep(nack);
        if !wanted.is_empty() {
            kept.push(Box::new(TransportLayerNack {
                sender_ssrc: nack.sender_ssrc,
                media_ssrc: nack.media_ssrc,
                nacks: nack_pairs_from_sequence_numbers(&wanted),
            }));
        }
    }
    if kept.is_empty() {
        return None;
    }
    message.message.packet = Packet::Rtcp(kept);
    Some(message)
}

/// A packet as the chain carries it, for taps' tests.
#[cfg(test)]
pub(crate) fn tagged(now: Instant, packet: Packet) -> TaggedPacket {
    rtc::shared::TransportMessage {
        now,
        transport: rtc::shared::TransportContext::default(),
        message: rtc::interceptor::AttributedPacket::new(packet),
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
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.tap.bound_remote(info);
    }
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.tap.unbound_remote(info);
    }
}
