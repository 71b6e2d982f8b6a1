//! Which packets the remote's transport-wide feedback has actually spoken
//! about.
//!
//! webrtc-rs's congestion history reports every packet sent before the
//! newest acknowledged one, and one that no feedback mentioned counts as
//! lost. A feedback packet lost on the way (RTCP is lost like the rest)
//! thus turned its ~100 ms of packets into "losses": under 5 % random loss
//! the loss half read 10–50 % in bursts and fell to its floor, where
//! Chromium held 1.7 Mbit/s. libwebrtc counts only what a feedback covers.
//! [`CoverageTap`] sits before the congestion controller on the read path
//! and notes each TWCC feedback's range in a shared [`Coverage`]; the
//! estimator leaves out losses no feedback covered.
//!
//! It also notes which packets each feedback says arrived. webrtc-rs
//! reports a packet lost as soon as a packet sent after it is acknowledged
//! and forgets it; on a path that reorders, the late packet then arrives,
//! and the receiver says so in its next feedback (both webrtc-rs's and
//! libwebrtc's receivers report a late packet with the next batch) — but
//! nobody was listening. With ±30 ms of jitter per packet the loss half read
//! 5–14 % loss where the receiver counted 28 packets lost in 45 s.
//! [`Coverage::arrivals`] lets the estimator take such a loss back.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use rtc::interceptor::{convert_twcc, Packet, Slot, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;

use crate::sync::lock;
use crate::tap::{Tap, Tapped};

/// Before congestion control (1 000) on the read path, which runs from the
/// lowest slot up.
pub const SLOT: usize = 900;

/// How many recent feedback ranges are kept (a few seconds' worth).
const KEPT: usize = 128;
/// How many of the packets feedback said arrived are remembered: over the
/// estimator's one-second loss window at several hundred packets a second.
const KEPT_ARRIVED: usize = 4096;

/// The transport-wide sequence ranges recent feedback covered, and the
/// packets it said arrived.
#[derive(Debug, Default)]
pub struct Coverage {
    ranges: Mutex<VecDeque<(u16, u16)>>,
    arrived: Mutex<Arrived>,
}

/// Transport-wide sequence numbers, oldest first, and the same as a set.
#[derive(Debug, Default)]
struct Arrived {
    order: VecDeque<u16>,
    set: HashSet<u16>,
}

impl Coverage {
    pub(crate) fn note(&self, base: u16, count: u16) {
        let mut ranges = lock(&self.ranges);
        if ranges.len() == KEPT {
            ranges.pop_front();
        }
        ranges.push_back((base, count));
    }

    pub(crate) fn note_arrived(&self, seqs: impl IntoIterator<Item = u16>) {
        let mut arrived = lock(&self.arrived);
        for seq in seqs {
            if !arrived.set.insert(seq) {
                continue;
            }
            arrived.order.push_back(seq);
            if arrived.order.len() > KEPT_ARRIVED {
                if let Some(old) = arrived.order.pop_front() {
                    arrived.set.remove(&old);
                }
            }
        }
    }

    /// The packets recent feedback said arrived, held for a run of
    /// lookups (one lock for the estimator's whole window).
    pub fn arrivals(&self) -> Arrivals<'_> {
        Arrivals(lock(&self.arrived))
    }

    /// Whether some recent feedback spoke about transport-wide `seq`.
    pub fn covers(&self, seq: u16) -> bool {
        lock(&self.ranges)
            .iter()
            .any(|&(base, count)| seq.wrapping_sub(base) < count)
    }
}

/// A look at the arrivals, locked while it lives.
#[derive(Debug)]
pub struct Arrivals<'a>(MutexGuard<'a, Arrived>);

impl Arrivals<'_> {
    /// Whether some recent feedback said transport-wide `seq` arrived.
    pub fn contains(&self, seq: u16) -> bool {
        self.0.set.contains(&seq)
    }
}

/// Notes the range of each inbound TWCC feedback; passes everything on.
#[derive(Debug)]
pub struct CoverageTap {
    coverage: Arc<Coverage>,
}

impl CoverageTap {
    pub fn interceptor(coverage: Arc<Coverage>) -> Tapped<CoverageTap> {
        Tapped::new(CoverageTap { coverage })
    }

    pub fn slot() -> Slot {
        Slot::from(SLOT)
    }
}

impl Tap for CoverageTap {
    fn read(&mut self, message: TaggedPacket) -> Option<TaggedPacket> {
        if let Packet::Rtcp(packets) = &message.message.packet {
            for packet in packets {
                if let Some(cc) = packet.as_any().downcast_ref::<TransportLayerCc>() {
                    self.coverage
                        .note(cc.base_sequence_number, cc.packet_status_count);
                    self.coverage.note_arrived(
                        convert_twcc(cc)
                            .into_iter()
                            .filter(|ack| ack.arrived)
                            .map(|ack| ack.sequence_number),
                    );
                }
            }
        }
        Some(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_covers_its_sequence_numbers_across_the_wrap() {
        let c = Coverage::default();
        c.note(65_530, 10);
        assert!(c.covers(65_530) && c.covers(65_535) && c.covers(3));
        assert!(!c.covers(4) && !c.covers(65_529));
        c.note(100, 5);
        assert!(c.covers(104) && !c.covers(105) && !c.covers(50));
    }

    #[test]
    fn arrivals_are_remembered_for_a_while() {
        let c = Coverage::default();
        c.note_arrived([7, 9, 9]);
        let a = c.arrivals();
        assert!(a.contains(7) && a.contains(9) && !a.contains(8));
        drop(a);
        c.note_arrived((10..).take(KEPT_ARRIVED - 1).map(|n: u32| n as u16));
        let a = c.arrivals();
        assert!(!a.contains(7) && a.contains(9), "the oldest goes first");
    }
}
