//! How long a receiver waits for a missing packet before asking for it
//! again (NACK): as long as the path has lately been seen to reorder.
//!
//! webrtc-rs's NACK generator asks for every gap in the sequence numbers
//! at its next tick (every 20 ms here, `peer/setup.rs`). On a path that reorders,
//! most of those packets are only late: the sender resends them, and the
//! late original's transport-wide number is then never reported as
//! arrived — the sender's congestion control hears of a loss that never
//! happened. (Where the original is dropped was not traced; a resend that
//! overtakes it makes the original a repeat of an RTP sequence number
//! already seen, which SRTP's replay check refuses.) In the network lab's ±30 ms of per-packet
//! jitter the loss half read 5–19 % loss where the links dropped nothing
//! (`tc` and UDP counters: 0), fell by half, and video ran at 342–452 kbit/s
//! on a 2.5 Mbit/s path; with NACKs held back for the newest 30 packets it
//! ran at 930–1028 kbit/s and the loss window held no loss at all.
//!
//! [`ReorderWait`] sits just below the generator. On the read path it notes,
//! per stream, when each gap opened and, when a packet that was not asked
//! for yet fills one, how late it was. On the write path it takes out of
//! each NACK the packets missing for less than [`ReorderWait::wait`]: the
//! latest lateness seen in the last [`MEMORY`], plus a quarter, at most
//! [`MAX_WAIT`]. A path that does not reorder keeps a wait of zero (a loss
//! is asked for at the next tick, as before). The wait can only learn from
//! packets that arrived before they were asked for, so it grows in steps:
//! the generator's tick lets a packet a little later than the wait arrive
//! unasked, which lifts the wait by a quarter more (libwebrtc's receiver
//! likewise waits for the reordering it has seen, counted in packets).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rtc::interceptor::{Packet, Slot, TaggedPacket};

use crate::estimator::forget_older;
use crate::tap::{rewrite_nacks, Tap, Tapped};

/// Just below the NACK generator (7 000): on the read path it sees each
/// packet before the generator does, on the write path each NACK after.
pub const SLOT: usize = 6_800;

/// How long a lateness seen counts toward the wait.
pub const MEMORY: Duration = Duration::from_secs(2);
/// The longest wait: past it a packet is asked for however much the path
/// reorders (a picture is waited for 400 ms at most; asking still has to
/// fit in that).
pub const MAX_WAIT: Duration = Duration::from_millis(100);
/// A gap not filled within this is forgotten (the generator stops asking
/// long before).
const GAP_MEMORY: Duration = Duration::from_secs(1);
/// The most sequence numbers one jump opens as gaps (a longer jump is a
/// restart, not a loss).
const MAX_JUMP: u16 = 512;
/// Bounds on what a remote's packets can make this hold (a hostile peer
/// choosing its sequence numbers and SSRCs): gaps per stream, streams, and
/// lateness samples. Past them new entries are not kept — a NACK is then
/// only asked for without waiting, as before this module.
const MAX_GAPS: usize = 1024;
const MAX_STREAMS: usize = 32;
const MAX_SAMPLES: usize = 1024;

/// A sequence number seen missing.
#[derive(Debug, Clone, Copy)]
struct Gap {
    since: Instant,
    /// A NACK named it: when it comes it may be the resend.
    asked: bool,
}

/// One incoming stream's gaps.
#[derive(Debug, Default)]
struct Stream {
    highest: Option<u16>,
    gaps: HashMap<u16, Gap>,
}

/// Holds NACKs back for as long as the path reorders.
#[derive(Debug, Default)]
pub struct ReorderWait {
    streams: HashMap<u32, Stream>,
    /// (when, how late) of packets that filled a gap before being asked for.
    late: VecDeque<(Instant, Duration)>,
}

impl ReorderWait {
    pub fn interceptor() -> Tapped<ReorderWait> {
        Tapped::new(ReorderWait::default())
    }

    pub fn slot() -> Slot {
        Slot::from(SLOT)
    }

    /// How long a gap is left to fill itself before it is asked for.
    pub fn wait(&self) -> Duration {
        self.late
            .iter()
            .map(|l| l.1)
            .max()
            .map_or(Duration::ZERO, |d| (d + d / 4).min(MAX_WAIT))
    }

    fn arrived(&mut self, now: Instant, ssrc: u32, seq: u16) {
        if self.streams.len() >= MAX_STREAMS && !self.streams.contains_key(&ssrc) {
            return;
        }
        let stream = self.streams.entry(ssrc).or_default();
        let ahead = stream
            .highest
            .map_or(1, |highest| seq.wrapping_sub(highest));
        if ahead == 0 {
            // A repeat of the newest: nothing opens or fills.
        } else if ahead < 0x8000 {
            // Newer than any yet: the numbers skipped are gaps.
            let fits = ahead <= MAX_JUMP && stream.gaps.len() + usize::from(ahead) <= MAX_GAPS;
            if let (Some(highest), true) = (stream.highest, fits) {
                for missing in 1..ahead {
                    let gap = Gap {
                        since: now,
                        asked: false,
                    };
                    stream.gaps.insert(highest.wrapping_add(missing), gap);
                }
            }
            stream.highest = Some(seq);
        } else if let Some(gap) = stream.gaps.remove(&seq) {
            // Older: it fills a gap, late by as long as the gap was open.
            if !gap.asked && self.late.len() < MAX_SAMPLES {
                self.late
                    .push_back((now, now.saturating_duration_since(gap.since)));
            }
        }
        stream
            .gaps
            .retain(|_, g| now.saturating_duration_since(g.since) < GAP_MEMORY);
        forget_older(&mut self.late, now, MEMORY);
    }

    /// The sequence numbers of a NACK worth asking for now.
    fn ask(&mut self, now: Instant, ssrc: u32, seqs: Vec<u16>) -> Vec<u16> {
        let wait = self.wait();
        let Some(stream) = self.streams.get_mut(&ssrc) else {
            return seqs;
        };
        seqs.into_iter()
            .filter(|seq| match stream.gaps.get_mut(seq) {
                Some(gap) if now.saturating_duration_since(gap.since) < wait => false,
                Some(gap) => {
                    gap.asked = true;
                    true
                }
                None => true,
            })
            .collect()
    }
}

impl Tap for ReorderWait {
    fn read(&mut self, message: TaggedPacket) -> Option<TaggedPacket> {
        if let Packet::Rtp(packet) = &message.message.packet {
            self.arrived(
                message.now,
                packet.header.ssrc,
                packet.header.sequence_number,
            );
        }
        Some(message)
    }

    fn write(&mut self, message: TaggedPacket) -> Option<TaggedPacket> {
        let now = message.now;
        rewrite_nacks(message, |nack| {
            let seqs = nack.nacks.iter().flat_map(|p| p.packet_list()).collect();
            self.ask(now, nack.media_ssrc, seqs)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tap::tagged;
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
        nack_pairs_from_sequence_numbers, TransportLayerNack,
    };
    use rtc::sansio::Protocol;

    const SSRC: u32 = 9;

    fn arrive(w: &mut Tapped<ReorderWait>, now: Instant, seq: u16) {
        let mut packet = rtc::rtp::Packet::default();
        packet.header.ssrc = SSRC;
        packet.header.sequence_number = seq;
        w.handle_read(tagged(now, Packet::Rtp(packet))).unwrap();
        assert!(w.poll_read().is_some(), "media passes untouched");
    }

    /// What of a NACK for `seqs` leaves for the wire.
    fn nack(w: &mut Tapped<ReorderWait>, now: Instant, seqs: &[u16]) -> Vec<u16> {
        let nack = TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: SSRC,
            nacks: nack_pairs_from_sequence_numbers(seqs),
        };
        w.handle_write(tagged(now, Packet::Rtcp(vec![Box::new(nack)])))
            .unwrap();
        let Some(out) = w.poll_write() else {
            return Vec::new();
        };
        let Packet::Rtcp(packets) = out.message.packet else {
            panic!("RTCP stays RTCP");
        };
        packets
            .iter()
            .filter_map(|p| p.as_any().downcast_ref::<TransportLayerNack>())
            .flat_map(|n| n.nacks.iter().flat_map(|p| p.packet_list()))
            .collect()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn on_a_path_that_does_not_reorder_a_loss_is_asked_for_at_once() {
        let mut w = ReorderWait::interceptor();
        let t = Instant::now();
        arrive(&mut w, t, 1);
        arrive(&mut w, t + ms(10), 3);
        assert_eq!(nack(&mut w, t + ms(20), &[2]), vec![2]);
        assert_eq!(w.tap().wait(), Duration::ZERO);
    }

    #[test]
    fn after_late_packets_a_gap_is_given_their_lateness_and_a_quarter() {
        let mut w = ReorderWait::interceptor();
        let t = Instant::now();
        // 2 comes 40 ms after 3 did, unasked.
        arrive(&mut w, t, 1);
        arrive(&mut w, t + ms(10), 3);
        arrive(&mut w, t + ms(50), 2);
        assert_eq!(w.tap().wait(), ms(50));
        // Now a gap is held back for 50 ms, then asked for.
        arrive(&mut w, t + ms(100), 5);
        assert!(nack(&mut w, t + ms(120), &[4]).is_empty());
        assert_eq!(nack(&mut w, t + ms(150), &[4]), vec![4]);
        // Its arrival now may be the resend: it teaches nothing.
        arrive(&mut w, t + ms(400), 4);
        assert_eq!(w.tap().wait(), ms(50));
    }

    #[test]
    fn the_wait_is_capped_and_forgotten_once_the_path_stops_reordering() {
        let mut w = ReorderWait::interceptor();
        let t = Instant::now();
        arrive(&mut w, t, 1);
        arrive(&mut w, t, 3);
        arrive(&mut w, t + ms(300), 2);
        assert_eq!(w.tap().wait(), MAX_WAIT);
        // In order from here on, for longer than MEMORY.
        for (i, seq) in (4..400u16).enumerate() {
            arrive(&mut w, t + ms(300) + ms(10) * i as u32, seq);
        }
        assert_eq!(w.tap().wait(), Duration::ZERO);
    }

    #[test]
    fn what_a_hostile_sender_can_make_it_hold_is_bounded() {
        let mut w = ReorderWait::interceptor();
        let t = Instant::now();
        // Jumps of 512 again and again: gaps stop at MAX_GAPS.
        for i in 0..100u16 {
            arrive(&mut w, t, i.wrapping_mul(512));
        }
        let gaps: usize = w.tap().streams.values().map(|s| s.gaps.len()).sum();
        assert!(gaps <= MAX_GAPS, "{gaps}");
        // A new SSRC per packet: streams stop at MAX_STREAMS.
        for ssrc in 0..1000u32 {
            let mut packet = rtc::rtp::Packet::default();
            packet.header.ssrc = ssrc;
            w.handle_read(tagged(t, Packet::Rtp(packet))).unwrap();
            assert!(w.poll_read().is_some());
        }
        assert_eq!(w.tap().streams.len(), MAX_STREAMS);
    }

    #[test]
    fn other_rtcp_and_unknown_streams_pass() {
        let mut w = ReorderWait::interceptor();
        let t = Instant::now();
        // A stream never seen: nothing to judge by.
        assert_eq!(nack(&mut w, t, &[7, 8]), vec![7, 8]);
        let report = rtc::rtcp::receiver_report::ReceiverReport::default();
        w.handle_write(tagged(t, Packet::Rtcp(vec![Box::new(report)])))
            .unwrap();
        assert!(w.poll_write().is_some());
    }
}
