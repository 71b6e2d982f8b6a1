//! Which of a receiver's retransmission requests (NACK) are answered.
//!
//! webrtc-rs's NACK responder resends every packet a NACK names that is
//! still in its buffer, however often it is asked and however old the
//! packet is. Its buffer holds packets by count (256 per stream), which at
//! a low bitrate is tens of seconds of video, and its retransmissions wait
//! in the pacer behind nothing — ahead of new pictures. Chromium asks for a
//! missing packet again every round trip, up to ten times: after the
//! network lab's 250 kbit/s dip the pacer's whole rate went to resending
//! the same sixty stale packets in a loop (captured on the wire: 58
//! distinct video packets and 254 repeats in 12 s), new pictures queued
//! behind them, Chromium asked for those too, and video to Chromium never
//! came back although 1.5 Mbit/s was free again.
//!
//! [`ResendFilter`] sits between the pacer and the NACK responder. On the
//! write path it notes when each packet first left the application; on the
//! read path it takes out of each NACK the packets that are older than
//! [`MAX_AGE`] (their picture has been shown or given up by now), that
//! were resent less than [`RESEND_GAP`] ago (the first resend is still on
//! its way) or already [`MAX_RESENDS`] times. libwebrtc bounds its
//! retransmissions in the same spirit (a packet history kept by time, a
//! packet not resent within a round trip).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, Packet, Slot, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    nack_pairs_from_sequence_numbers, TransportLayerNack,
};

use crate::tap::{Tap, Tapped};

/// Between the pacer (3 000) and the NACK responder (4 000): on the read
/// path NACKs reach it before the responder; on the write path it sees
/// each packet as it goes to the pacer.
pub const SLOT: usize = 3_500;

/// A packet older than this is not resent: it would reach the receiver
/// after its picture's deadline (ours waits 400 ms; Chromium's jitter
/// buffer rarely longer than a second).
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// A packet is resent at most once in this long, however often it is asked
/// for (a NACK repeated within it asks for what is already on its way;
/// our own receivers ask every 100 ms)…
pub const RESEND_GAP: Duration = Duration::from_millis(100);
/// …and at most this many times: on a path that loses the resends too,
/// more would only add to the loss.
pub const MAX_RESENDS: u8 = 3;

/// When a packet first left, and when and how often it was resent.
#[derive(Debug, Clone, Copy)]
struct Sent {
    first: Instant,
    resent: Option<Instant>,
    resends: u8,
}

/// Answers NACKs only for packets worth resending; passes the rest of the
/// traffic on untouched.
#[derive(Default)]
pub struct ResendFilter {
    /// By (SSRC, sequence number), for the last [`MAX_AGE`].
    sent: HashMap<(u32, u16), Sent>,
    /// The same keys in sending order, to forget them when they age out.
    order: VecDeque<(Instant, (u32, u16))>,
}

impl std::fmt::Debug for ResendFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResendFilter")
            .field("remembered", &self.sent.len())
            .finish_non_exhaustive()
    }
}

impl ResendFilter {
    pub fn interceptor() -> Tapped<ResendFilter> {
        Tapped::new(ResendFilter::default())
    }

    pub fn slot() -> Slot {
        Slot::from(SLOT)
    }

    fn forget_old(&mut self, now: Instant) {
        while let Some(&(at, key)) = self.order.front() {
            if now.saturating_duration_since(at) <= MAX_AGE {
                break;
            }
            self.order.pop_front();
            if self.sent.get(&key).is_some_and(|s| s.first == at) {
                self.sent.remove(&key);
            }
        }
    }

    /// The sequence numbers of `nack` worth resending `now`; those are
    /// marked as resent.
    fn worth_resending(&mut self, now: Instant, nack: &TransportLayerNack) -> Vec<u16> {
        let mut wanted = Vec::new();
        for pair in &nack.nacks {
            for seq in pair.packet_list() {
                let Some(sent) = self.sent.get_mut(&(nack.media_ssrc, seq)) else {
                    continue; // unknown, or aged out
                };
                if now.saturating_duration_since(sent.first) > MAX_AGE {
                    continue;
                }
                let too_soon = sent
                    .resent
                    .is_some_and(|t| now.saturating_duration_since(t) < RESEND_GAP);
                if too_soon || sent.resends >= MAX_RESENDS {
                    continue;
                }
                sent.resent = Some(now);
                sent.resends += 1;
                wanted.push(seq);
            }
        }
        wanted
    }
}

impl Tap for ResendFilter {
    fn read(&mut self, mut message: TaggedPacket) -> Option<TaggedPacket> {
        let now = message.now;
        self.forget_old(now);
        if let Packet::Rtcp(packets) = &message.message.packet {
            if packets
                .iter()
                .any(|p| p.as_any().is::<TransportLayerNack>())
            {
                let mut kept: Vec<Box<dyn rtc::rtcp::Packet>> = Vec::with_capacity(packets.len());
                for packet in packets {
                    let Some(nack) = packet.as_any().downcast_ref::<TransportLayerNack>() else {
                        kept.push(packet.clone());
                        continue;
                    };
                    let wanted = self.worth_resending(now, nack);
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
            }
        }
        Some(message)
    }

    fn wrote(&mut self, message: &TaggedPacket) {
        let Packet::Rtp(packet) = &message.message.packet else {
            return;
        };
        if message.message.has(&Attribute::Retransmission) {
            return;
        }
        let key = (packet.header.ssrc, packet.header.sequence_number);
        let now = message.now;
        self.sent.insert(
            key,
            Sent {
                first: now,
                resent: None,
                resends: 0,
            },
        );
        self.order.push_back((now, key));
        self.forget_old(now);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rtc::interceptor::AttributedPacket;
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::sansio::Protocol;
    use rtc::shared::{TransportContext, TransportMessage};

    const SSRC: u32 = 7;

    fn tagged(now: Instant, packet: Packet) -> TaggedPacket {
        TransportMessage {
            now,
            transport: TransportContext::default(),
            message: AttributedPacket::new(packet),
        }
    }

    fn send(f: &mut Tapped<ResendFilter>, now: Instant, seq: u16) {
        let mut packet = rtc::rtp::Packet::default();
        packet.header.ssrc = SSRC;
        packet.header.sequence_number = seq;
        f.handle_write(tagged(now, Packet::Rtp(packet))).unwrap();
        assert!(f.poll_write().is_some(), "media passes untouched");
    }

    /// Reads a NACK for `seqs` (and a receiver report beside it); returns
    /// what reaches the responder: the NACKed numbers, and whether the
    /// report went on.
    fn nack(f: &mut Tapped<ResendFilter>, now: Instant, seqs: &[u16]) -> (Vec<u16>, bool) {
        let nack = TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: SSRC,
            nacks: nack_pairs_from_sequence_numbers(seqs),
        };
        let rr = ReceiverReport::default();
        f.handle_read(tagged(
            now,
            Packet::Rtcp(vec![Box::new(nack), Box::new(rr)]),
        ))
        .unwrap();
        let Some(out) = f.poll_read() else {
            return (Vec::new(), false);
        };
        let Packet::Rtcp(packets) = out.message.packet else {
            panic!("RTCP in, RTCP out");
        };
        let asked = packets
            .iter()
            .filter_map(|p| p.as_any().downcast_ref::<TransportLayerNack>())
            .flat_map(|n| n.nacks.iter().flat_map(|pair| pair.packet_list()))
            .collect();
        let report = packets.iter().any(|p| p.as_any().is::<ReceiverReport>());
        (asked, report)
    }

    #[test]
    fn a_packet_asked_for_again_and_again_is_resent_once_per_gap_three_times_at_most() {
        let t = Instant::now();
        let mut f = ResendFilter::interceptor();
        for seq in 100..110 {
            send(&mut f, t, seq);
        }
        let ms = |n| t + Duration::from_millis(n);
        assert_eq!(nack(&mut f, ms(50), &[102, 105]), (vec![102, 105], true));
        // Chromium asks again every round trip (a few ms on a LAN).
        assert_eq!(nack(&mut f, ms(70), &[102, 105]), (vec![], true));
        assert_eq!(nack(&mut f, ms(120), &[102, 106]), (vec![106], true));
        assert_eq!(nack(&mut f, ms(160), &[102, 105]), (vec![102, 105], true));
        assert_eq!(nack(&mut f, ms(270), &[102]), (vec![102], true));
        // Three resends are all a packet gets.
        assert_eq!(nack(&mut f, ms(400), &[102, 106]), (vec![106], true));
    }

    #[test]
    fn stale_and_unknown_packets_are_not_resent() {
        let t = Instant::now();
        let mut f = ResendFilter::interceptor();
        send(&mut f, t, 1);
        send(&mut f, t + Duration::from_millis(900), 2);
        let later = t + MAX_AGE + Duration::from_millis(100);
        // 1 is past its deadline, 3 was never sent; 2 is still worth it.
        assert_eq!(nack(&mut f, later, &[1, 2, 3]), (vec![2], true));
        // What ages out is forgotten, not kept for ever.
        send(&mut f, t + Duration::from_secs(5), 4);
        assert_eq!(f.tap().sent.len(), 1, "{f:?}");
    }

    #[test]
    fn a_resend_does_not_restart_the_packets_age() {
        let t = Instant::now();
        let mut f = ResendFilter::interceptor();
        send(&mut f, t, 9);
        assert_eq!(
            nack(&mut f, t + Duration::from_millis(200), &[9]).0,
            vec![9]
        );
        let mut resent = rtc::rtp::Packet::default();
        resent.header.ssrc = SSRC;
        resent.header.sequence_number = 9;
        let message = TransportMessage {
            now: t + Duration::from_millis(200),
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtp(resent)).with(Attribute::Retransmission),
        };
        f.handle_write(message).unwrap();
        assert!(nack(&mut f, t + Duration::from_millis(1_100), &[9])
            .0
            .is_empty());
    }
}
