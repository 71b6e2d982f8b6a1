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
use std::time::Instant;

use rtc::interceptor::{Interceptor, Packet, Slot, StreamInfo, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

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
pub struct CoverageTap {
    coverage: Arc<Coverage>,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl std::fmt::Debug for CoverageTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoverageTap").finish_non_exhaustive()
    }
}

impl CoverageTap {
    pub fn new(coverage: Arc<Coverage>) -> CoverageTap {
        CoverageTap {
            coverage,
            reads: VecDeque::new(),
            writes: VecDeque::new(),
        }
    }

    pub fn slot() -> Slot {
        Slot::from(SLOT)
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for CoverageTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, message: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &message.message.packet {
            for packet in packets {
                if let Some(cc) = packet.as_any().downcast_ref::<TransportLayerCc>() {
                    self.coverage
                        .note(cc.base_sequence_number, cc.packet_status_count);
                }
            }
        }
        self.reads.push_back(message);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, message: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(message);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }
}

impl Interceptor for CoverageTap {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
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
