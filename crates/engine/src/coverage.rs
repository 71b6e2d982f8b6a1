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

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use rtc::interceptor::{Packet, Slot, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;

use crate::tap::{Tap, Tapped};

/// Before congestion control (1 000) on the read path, which runs from the
/// lowest slot up.
pub const SLOT: usize = 900;

/// How many recent feedback ranges are kept (a few seconds' worth).
const KEPT: usize = 128;

/// The transport-wide sequence ranges recent feedback covered.
#[derive(Debug, Default)]
pub struct Coverage {
    ranges: Mutex<VecDeque<(u16, u16)>>,
}

impl Coverage {
    fn note(&self, base: u16, count: u16) {
        let mut ranges = self.ranges.lock().unwrap_or_else(PoisonError::into_inner);
        if ranges.len() == KEPT {
            ranges.pop_front();
        }
        ranges.push_back((base, count));
    }

    /// Whether some recent feedback spoke about transport-wide `seq`.
    pub fn covers(&self, seq: u16) -> bool {
        self.ranges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|&(base, count)| seq.wrapping_sub(base) < count)
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
}
