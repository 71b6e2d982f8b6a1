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
//! were resent less than a round trip ago (the first resend is still on
//! its way; [`RESEND_MARGIN`], [`RESEND_GAP`]) or already [`MAX_RESENDS`]
//! times. libwebrtc bounds its
//! retransmissions in the same spirit (a packet history kept by time, a
//! packet not resent within a round trip, a retransmission rate limit).
//!
//! Two more rules came from the network lab's dip (2.5 Mbit/s to 250
//! kbit/s): the ~0.7 s of 1 Mbit/s video sent before the estimate fell
//! was mostly dropped at the bottleneck, and resending it kept the path
//! saturated for 6 s (measured on the sender: 250–440 kbit/s leaving
//! against a 100 kbit/s target, a round trip of 500 ms, half of every
//! keyframe lost) — video froze until it drained. So:
//! - a packet sent before its stream's latest keyframe is never resent:
//!   the keyframe starts the picture over, nothing before it is needed;
//! - what is resent in any [`BUDGET_WINDOW`] stays within [`RESEND_SHARE`]
//!   of the congestion estimate (packets never resent go before repeats,
//!   each in the NACK's order; one out of budget waits for the receiver's
//!   next request). That share was a quarter until the bursty-loss
//!   scenario: one burst (25 packets in a row, 230 ms) spent the whole
//!   second's budget in its first NACK, the two packets whose resend was
//!   lost too then waited 0.9 s for the window to pass, and video to
//!   Chromium froze until the keyframe that followed (1.1–2.0 s frozen a
//!   run). It is the whole estimate now, as libwebrtc's retransmission rate
//!   limit is: frozen 0.0–0.4 s, the dip within its run-to-run spread.
//!
//! And one from the bursty-loss scenario: a NACK for a packet that will
//! not be resent any more — resent [`MAX_RESENDS`] times already, or
//! forgotten — names a picture the receiver cannot complete before the
//! next keyframe. Chromium keeps asking and requests that keyframe only
//! when nothing has been decodable for 3 s (measured: native → Chromium
//! frozen 3.1–3.2 s after a long burst, Chromium's own PLI ending it). The
//! filter reads such a NACK as the keyframe request it means: it adds a
//! PLI for the stream, which reaches the encoder as the receiver's own
//! would (spaced as those are); the receiver's picture resumes a round
//! trip later. Packets from before the stream's latest keyframe are not
//! needed and ask for nothing.
//!
//! And one from the network lab's `network-drop-3s`: after an outage (the
//! receiver silent for [`OUTAGE`]), nothing *after* a packet past repair
//! because forgotten (older than [`MAX_AGE`]) is resent until the stream's
//! next keyframe: every picture from it on references what cannot come,
//! so only the keyframe helps, and resends would only go ahead of it. The
//! receiver asked for all the outage took, the last third of a second of
//! it was still young enough to resend, and the keyframe reached the
//! receiver 0.46 s after it was sent, behind pictures that could not
//! decode. Only after an outage: through congestion (the dip) a decoder
//! still makes pictures of what follows a loss, and cutting the resends
//! there froze more — summed over both ways, medians of 4.9 s (six runs)
//! and 6.7 s (five) against 3.3 s (five) without the cut.
//!
//! Over 600 lines with its tests (about 290 of them, one or more per rule
//! above): the rules all read one record of what was sent, and apart they
//! would each need it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, AttributedPacket, Packet, Slot, TaggedPacket};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;

use crate::congestion::Estimate;
use crate::estimator::forget_older;
use crate::resent_share::ResentShare;
use crate::tap::{rewrite_nacks, Tap, Tapped};
use crate::video::nal::begins_with_sps;

/// Between the pacer (3 000) and the NACK responder (4 000): on the read
/// path NACKs reach it before the responder; on the write path it sees
/// each packet as it goes to the pacer.
pub const SLOT: usize = 3_500;

/// A packet older than this is not resent: it would reach the receiver
/// after its picture's deadline (ours waits 400 ms; Chromium's jitter
/// buffer rarely longer than a second).
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// A packet is resent at most once a round trip (a NACK repeated within
/// it asks for what is already on its way; our own receivers ask every
/// 20 ms), plus this margin for the path's jitter. A lost resend costs the
/// picture this gap again: at 5 % loss, 30 ms made the second resend come
/// 85 ms after the first on a 45 ms round trip, and pictures waiting for
/// it froze (a gap over ~180 ms at 30 fps). libwebrtc waits one round trip.
pub const RESEND_MARGIN: Duration = Duration::from_millis(10);
/// …and, before the path's round trip is known, at most once in this long.
pub const RESEND_GAP: Duration = Duration::from_millis(100);
/// …and at most this many times: on a path that loses the resends too,
/// more would only add to the loss.
pub const MAX_RESENDS: u8 = 3;

/// The share of the congestion estimate resends may take (all of it, as
/// libwebrtc allows; the pacer runs at 2.5× the estimate, so a burst's
/// resends still leave within a fraction of the second)…
pub const RESEND_SHARE: f64 = 1.0;
/// …over this long.
pub const BUDGET_WINDOW: Duration = Duration::from_secs(1);

/// Nothing heard from the receiver for this long is an outage, not
/// congestion: through the dip's full 300 ms queue feedback kept coming.
pub const OUTAGE: Duration = Duration::from_secs(1);

/// A packet's RTP header and SRTP tag, about (for the budget).
const OVERHEAD_BYTES: usize = 40;

/// When a packet first left, its size, and when and how often it was
/// resent.
#[derive(Debug, Clone, Copy)]
struct Sent {
    first: Instant,
    bytes: usize,
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
    /// When each stream's latest keyframe began.
    keyframes: HashMap<u32, Instant>,
    /// (when, bytes) of the resends within the last [`BUDGET_WINDOW`].
    resent: VecDeque<(Instant, usize)>,
    /// The path's estimate; without one there is no budget.
    estimate: Option<Arc<Estimate>>,
    /// When anything last came back from the receiver.
    last_heard: Option<Instant>,
    /// When the receiver was last heard again after [`OUTAGE`] of silence.
    outage_over: Option<Instant>,
    /// What left lately, and how much of it was resent, for the estimate.
    share: ResentShare,
}

impl std::fmt::Debug for ResendFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResendFilter")
            .field("remembered", &self.sent.len())
            .finish_non_exhaustive()
    }
}

impl ResendFilter {
    /// A filter whose resends stay within [`RESEND_SHARE`] of `estimate`.
    pub fn interceptor(estimate: Arc<Estimate>) -> Tapped<ResendFilter> {
        Tapped::new(ResendFilter {
            estimate: Some(estimate),
            ..ResendFilter::default()
        })
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

    /// Bytes the budget still allows `now` (unbounded without an estimate
    /// informed by feedback).
    fn budget_left(&mut self, now: Instant) -> usize {
        forget_older(&mut self.resent, now, BUDGET_WINDOW);
        let Some(bps) = self.estimate.as_ref().and_then(|e| e.get()) else {
            return usize::MAX;
        };
        let allowed = (bps * RESEND_SHARE * BUDGET_WINDOW.as_secs_f64() / 8.0) as usize;
        let spent: usize = self.resent.iter().map(|r| r.1).sum();
        allowed.saturating_sub(spent)
    }

    /// How long after a resend the same packet may go again.
    fn gap(&self) -> Duration {
        self.estimate
            .as_ref()
            .and_then(|e| e.rtt())
            .map_or(RESEND_GAP, |rtt| rtt + RESEND_MARGIN)
    }

    /// What of `nack` is past repair `now`: packets resent as often as they
    /// get and asked again after the last one had its round trip, and
    /// packets forgotten while the latest keyframe is older than what is
    /// remembered (they came after it). Only for a stream of ours (it has
    /// had a keyframe).
    fn past_repair(&self, now: Instant, nack: &TransportLayerNack) -> PastRepair {
        let ssrc = nack.media_ssrc;
        let Some(keyframe) = self.keyframes.get(&ssrc).copied() else {
            return PastRepair::default();
        };
        let gap = self.gap();
        let mut past = PastRepair::default();
        for seq in nack.nacks.iter().flat_map(|p| p.packet_list()) {
            match self.sent.get(&(ssrc, seq)) {
                Some(sent)
                    if sent.first >= keyframe
                        && sent.resends >= MAX_RESENDS
                        && sent
                            .resent
                            .is_none_or(|t| now.saturating_duration_since(t) >= gap) =>
                {
                    past.any = Some(first_of(past.any, seq));
                }
                Some(_) => {}
                None if now.saturating_duration_since(keyframe) > MAX_AGE => {
                    past.any = Some(first_of(past.any, seq));
                    past.forgotten = Some(first_of(past.forgotten, seq));
                }
                None => {}
            }
        }
        past
    }

    /// Whether the receiver was silent for an [`OUTAGE`] since stream
    /// `ssrc`'s latest keyframe: it is back, and still needs a keyframe.
    fn outage_unrepaired(&self, ssrc: u32) -> bool {
        self.outage_over
            .is_some_and(|over| self.keyframes.get(&ssrc).is_none_or(|k| *k < over))
    }

    /// The sequence numbers of `nack` worth resending `now`, first resends
    /// before repeats while the budget lasts; those are marked as resent.
    /// Nothing from `broken` on: the pictures after a packet that cannot
    /// come do not decode before the next keyframe.
    fn worth_resending(
        &mut self,
        now: Instant,
        nack: &TransportLayerNack,
        broken: Option<u16>,
    ) -> Vec<u16> {
        let ssrc = nack.media_ssrc;
        let keyframe = self.keyframes.get(&ssrc).copied();
        let gap = self.gap();
        let eligible = |sent: &Sent| {
            now.saturating_duration_since(sent.first) <= MAX_AGE
                && keyframe.is_none_or(|k| sent.first >= k)
                && sent.resends < MAX_RESENDS
                && sent
                    .resent
                    .is_none_or(|t| now.saturating_duration_since(t) >= gap)
        };
        let asked: Vec<u16> = nack.nacks.iter().flat_map(|p| p.packet_list()).collect();
        let mut chosen: Vec<u16> = asked
            .iter()
            .copied()
            .filter(|seq| broken.is_none_or(|b| precedes(*seq, b)))
            .filter(|seq| self.sent.get(&(ssrc, *seq)).is_some_and(eligible))
            .collect();
        // Stable: within first resends and within repeats, NACK order.
        chosen.sort_by_key(|seq| self.sent.get(&(ssrc, *seq)).map_or(0, |s| s.resends));
        let mut left = self.budget_left(now);
        let mut wanted = Vec::new();
        for seq in chosen {
            let Some(sent) = self.sent.get_mut(&(ssrc, seq)) else {
                continue;
            };
            if sent.bytes > left {
                continue;
            }
            left -= sent.bytes;
            self.resent.push_back((now, sent.bytes));
            sent.resent = Some(now);
            sent.resends += 1;
            wanted.push(seq);
        }
        wanted.sort_by_key(|seq| asked.iter().position(|a| a == seq));
        tracing::trace!(
            ssrc,
            asked = ?asked
                .iter()
                .map(|seq| (*seq, self.sent.get(&(ssrc, *seq)).map(|s| now.saturating_duration_since(s.first).as_millis())))
                .collect::<Vec<_>>(),
            resent = ?wanted,
            "NACK"
        );
        wanted
    }
}

/// Whether sequence number `a` comes before `b` (RTP's wrapping order).
fn precedes(a: u16, b: u16) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000
}

/// The earlier of `first` (if any) and `seq` in RTP's wrapping order.
fn first_of(first: Option<u16>, seq: u16) -> u16 {
    match first {
        Some(first) if precedes(first, seq) => first,
        _ => seq,
    }
}

/// What a NACK names that is past repair, each the first in sequence order.
#[derive(Debug, Default)]
struct PastRepair {
    /// Any packet past repair: the stream needs a keyframe.
    any: Option<u16>,
    /// A packet forgotten (sent over [`MAX_AGE`] ago).
    forgotten: Option<u16>,
}

impl Tap for ResendFilter {
    fn read(&mut self, message: TaggedPacket) -> Option<TaggedPacket> {
        let now = message.now;
        self.forget_old(now);
        if self
            .last_heard
            .is_some_and(|t| now.saturating_duration_since(t) >= OUTAGE)
        {
            self.outage_over = Some(now);
        }
        self.last_heard = Some(now);
        let transport = message.transport;
        // Keyframe requests for streams a NACK asks a packet past repair of
        // (judged before this NACK's own resends count).
        let mut plis: Vec<Box<dyn rtc::rtcp::Packet>> = Vec::new();
        let rewritten = rewrite_nacks(message, |nack| {
            let past = self.past_repair(now, nack);
            let broken = past
                .forgotten
                .filter(|_| self.outage_unrepaired(nack.media_ssrc));
            if let Some(seq) = past.any {
                tracing::debug!(
                    ssrc = nack.media_ssrc,
                    seq,
                    ?broken,
                    "a NACKed packet is past repair: a keyframe instead"
                );
                plis.push(Box::new(PictureLossIndication {
                    sender_ssrc: nack.sender_ssrc,
                    media_ssrc: nack.media_ssrc,
                }));
            }
            self.worth_resending(now, nack, broken)
        });
        if plis.is_empty() {
            return rewritten;
        }
        match rewritten {
            Some(mut message) => {
                if let Packet::Rtcp(packets) = &mut message.message.packet {
                    packets.extend(plis);
                }
                Some(message)
            }
            None => Some(TaggedPacket {
                now,
                transport,
                message: AttributedPacket::new(Packet::Rtcp(plis)),
            }),
        }
    }

    fn wrote(&mut self, message: &TaggedPacket) {
        let Packet::Rtp(packet) = &message.message.packet else {
            return;
        };
        let now = message.now;
        let resend = message.message.has(&Attribute::Retransmission);
        self.share
            .note(now, packet.payload.len() + OVERHEAD_BYTES, resend);
        if let Some(estimate) = &self.estimate {
            estimate.set_resent_share(self.share.share(now));
        }
        if resend {
            return;
        }
        let key = (packet.header.ssrc, packet.header.sequence_number);
        // Every keyframe of ours starts with its parameter sets. (An Opus
        // payload may read as one too; audio is never NACKed here.)
        if begins_with_sps(&packet.payload) {
            self.keyframes.insert(packet.header.ssrc, now);
        }
        self.sent.insert(
            key,
            Sent {
                first: now,
                bytes: packet.payload.len() + OVERHEAD_BYTES,
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
    use crate::tap::tagged;
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::nack_pairs_from_sequence_numbers;
    use rtc::sansio::Protocol;

    const SSRC: u32 = 7;

    fn send(f: &mut Tapped<ResendFilter>, now: Instant, seq: u16) {
        send_payload(f, now, seq, &[0x41, 0x9a, 0, 0]); // a P-slice
    }

    fn send_payload(f: &mut Tapped<ResendFilter>, now: Instant, seq: u16, payload: &[u8]) {
        let mut packet = rtc::rtp::Packet::default();
        packet.header.ssrc = SSRC;
        packet.header.sequence_number = seq;
        packet.payload = bytes::Bytes::copy_from_slice(payload);
        f.handle_write(tagged(now, Packet::Rtp(packet))).unwrap();
        assert!(f.poll_write().is_some(), "media passes untouched");
    }

    /// Reads a NACK for `seqs` (and a receiver report beside it); returns
    /// what reaches the responder: the NACKed numbers, and whether the
    /// report went on.
    fn nack(f: &mut Tapped<ResendFilter>, now: Instant, seqs: &[u16]) -> (Vec<u16>, bool) {
        let (asked, report, _) = nack_pli(f, now, seqs);
        (asked, report)
    }

    /// As [`nack`], and whether a keyframe request for the stream went on.
    fn nack_pli(
        f: &mut Tapped<ResendFilter>,
        now: Instant,
        seqs: &[u16],
    ) -> (Vec<u16>, bool, bool) {
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
            return (Vec::new(), false, false);
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
        let pli = packets.iter().any(|p| {
            p.as_any()
                .downcast_ref::<PictureLossIndication>()
                .is_some_and(|pli| pli.media_ssrc == SSRC && pli.sender_ssrc == 1)
        });
        (asked, report, pli)
    }

    #[test]
    fn a_packet_asked_for_again_and_again_is_resent_once_per_gap_three_times_at_most() {
        let t = Instant::now();
        let mut f = Tapped::new(ResendFilter::default());
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
    fn a_packet_past_repair_asks_for_a_keyframe_instead() {
        let t = Instant::now();
        let mut f = Tapped::new(ResendFilter::default());
        let ms = |n| t + Duration::from_millis(n);
        send_payload(&mut f, t, 1, &[0x78, 0, 4, 0x67, 0x42, 0, 0]); // a keyframe
        send(&mut f, ms(10), 2);
        send(&mut f, ms(20), 3);
        for n in 0..3 {
            let (resent, _, pli) = nack_pli(&mut f, ms(50 + 100 * n), &[2]);
            assert_eq!((resent, pli), (vec![2], false), "resend {n}");
        }
        // Asked again within the gap: the last resend may still arrive.
        assert_eq!(nack_pli(&mut f, ms(300), &[2]), (vec![], true, false));
        // After it: never coming. The NACK goes no further, a PLI does.
        assert_eq!(nack_pli(&mut f, ms(400), &[2]), (vec![], true, true));
        let (resent, _, pli) = nack_pli(&mut f, ms(410), &[1, 2, 3]);
        assert_eq!(
            (resent, pli),
            (vec![1, 3], true),
            "2 is past repair by the round trip, and may still come"
        );
    }

    /// A network back after an outage (nothing heard from the receiver for
    /// a second): it asks for everything the outage took. The packets it
    /// can no longer have break every picture after them, so none of those
    /// is resent — the keyframe goes at once instead of behind them
    /// (measured in the network lab's `network-drop-3s`: a third of a
    /// second of resent pictures that could not decode arrived first, and
    /// the keyframe 0.46 s after it was sent).
    #[test]
    fn after_an_outage_nothing_after_a_forgotten_packet_is_resent() {
        let t = Instant::now();
        let mut f = Tapped::new(ResendFilter::default());
        let ms = |n| t + Duration::from_millis(n);
        send_payload(&mut f, t, 65_530, &[0x78, 0, 4, 0x67, 0x42, 0, 0]);
        for (n, seq) in (65_531..=65_535).chain(0..=20).enumerate() {
            send(&mut f, ms(40 * n as u64), seq);
        }
        // The receiver's last report came before the outage.
        assert_eq!(nack(&mut f, ms(100), &[]), (vec![], true));
        // 65_531…65_534 are forgotten by now (and the keyframe is older
        // than what is remembered); 65_535 on are still remembered, across
        // the sequence numbers' wrap.
        let asked: Vec<u16> = (65_531..=65_535).chain(0..=20).collect();
        let (resent, _, pli) = nack_pli(&mut f, ms(1_150), &asked);
        assert_eq!((resent, pli), (vec![], true));
        assert!(precedes(65_535, 3) && !precedes(3, 65_535) && !precedes(3, 3));
        // Once the keyframe it asked for has gone, resends are as before.
        send_payload(&mut f, ms(1_160), 21, &[0x78, 0, 4, 0x67, 0x42, 0, 0]);
        send(&mut f, ms(1_170), 22);
        assert_eq!(nack(&mut f, ms(1_200), &[22]), (vec![22], true));
    }

    /// Through congestion the receiver keeps sending feedback: a packet
    /// past repair asks for a keyframe, and what else is asked for is
    /// still resent (a decoder makes pictures of it).
    #[test]
    fn without_an_outage_resends_go_on_behind_a_packet_past_repair() {
        let t = Instant::now();
        let mut f = Tapped::new(ResendFilter::default());
        let ms = |n| t + Duration::from_millis(n);
        send_payload(&mut f, t, 1, &[0x78, 0, 4, 0x67, 0x42, 0, 0]);
        for seq in [2, 3, 60] {
            send(&mut f, ms(800 + u64::from(seq)), seq);
        }
        for n in 0..3 {
            assert_eq!(nack(&mut f, ms(900 + 110 * n), &[2]), (vec![2], true));
        }
        // 2 is past repair by the round trip, 50 was never remembered
        // (forgotten, the keyframe being over a second old).
        let (resent, _, pli) = nack_pli(&mut f, ms(1_300), &[2, 3, 50, 60]);
        assert_eq!((resent, pli), (vec![3, 60], true));
    }

    #[test]
    fn a_forgotten_packet_asks_for_a_keyframe_only_if_none_came_since() {
        let t = Instant::now();
        let mut f = Tapped::new(ResendFilter::default());
        send_payload(&mut f, t, 1, &[0x78, 0, 4, 0x67, 0x42, 0, 0]);
        send(&mut f, t + Duration::from_millis(10), 2);
        let later = t + MAX_AGE + Duration::from_millis(100);
        send(&mut f, later, 3);
        assert_eq!(nack_pli(&mut f, later, &[2]), (vec![], true, true));
        // A keyframe since: whatever was forgotten came before it.
        let t = later + Duration::from_millis(10);
        send_payload(&mut f, t, 4, &[0x78, 0, 4, 0x67, 0x42, 0, 0]);
        assert_eq!(nack_pli(&mut f, t, &[2]), (vec![], true, false));
        // Nor does anything before the latest keyframe, or another stream.
        let mut fresh = Tapped::new(ResendFilter::default());
        assert_eq!(nack_pli(&mut fresh, t, &[2]), (vec![], true, false));
    }

    #[test]
    fn stale_and_unknown_packets_are_not_resent() {
        let t = Instant::now();
        let mut f = Tapped::new(ResendFilter::default());
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
    fn what_resends_take_is_taken_off_the_media_budget() {
        let t = Instant::now();
        let estimate = Arc::new(Estimate::default());
        estimate.set(100_000.0, true);
        let mut f = ResendFilter::interceptor(estimate.clone());
        for seq in 0..3 {
            send_payload(&mut f, t, seq, &[0x41; 960]);
        }
        assert_eq!(estimate.for_media(), Some(100_000.0), "nothing resent");
        let mut resent = rtc::rtp::Packet::default();
        resent.header.ssrc = SSRC;
        resent.payload = bytes::Bytes::copy_from_slice(&[0x41; 960]);
        let mut message = tagged(t + Duration::from_millis(100), Packet::Rtp(resent));
        message.message.add(Attribute::Retransmission);
        f.handle_write(message).unwrap();
        // One of four packets was a resend.
        let media = estimate.for_media().unwrap();
        assert!((media - 75_000.0).abs() < 1.0, "{media}");
    }

    #[test]
    fn a_resend_does_not_restart_the_packets_age() {
        let t = Instant::now();
        let mut f = Tapped::new(ResendFilter::default());
        send(&mut f, t, 9);
        assert_eq!(
            nack(&mut f, t + Duration::from_millis(200), &[9]).0,
            vec![9]
        );
        let mut resent = rtc::rtp::Packet::default();
        resent.header.ssrc = SSRC;
        resent.header.sequence_number = 9;
        let mut message = tagged(t + Duration::from_millis(200), Packet::Rtp(resent));
        message.message.add(Attribute::Retransmission);
        f.handle_write(message).unwrap();
        assert!(nack(&mut f, t + Duration::from_millis(1_100), &[9])
            .0
            .is_empty());
    }

    #[test]
    fn nothing_before_the_latest_keyframe_is_resent() {
        let t = Instant::now();
        let mut f = Tapped::new(ResendFilter::default());
        let ms = |n| t + Duration::from_millis(n);
        send(&mut f, t, 1);
        send(&mut f, ms(10), 2);
        // A keyframe: SPS and PPS aggregated (STAP-A), then the IDR slice.
        send_payload(&mut f, ms(20), 3, &[0x78, 0, 4, 0x67, 0x42, 0, 0]);
        send_payload(&mut f, ms(20), 4, &[0x65, 0x88, 0, 0]);
        send(&mut f, ms(40), 5);
        assert_eq!(nack(&mut f, ms(60), &[1, 2, 3, 4, 5]).0, vec![3, 4, 5]);
    }

    #[test]
    fn resends_stay_within_their_share_of_the_estimate() {
        let t = Instant::now();
        let estimate = Arc::new(Estimate::default());
        estimate.set(32_000.0, true); // 4,000 bytes a second
        let mut f = ResendFilter::interceptor(estimate);
        let ms = |n| t + Duration::from_millis(n);
        for seq in 0..10 {
            send_payload(&mut f, t, seq, &[0x41; 960]); // 1,000 bytes each
        }
        assert_eq!(nack(&mut f, ms(50), &[0, 1, 2]).0, vec![0, 1, 2]);
        // One packet's worth left: a packet never resent goes before a
        // repeat.
        let all: Vec<u16> = (0..10).collect();
        assert_eq!(nack(&mut f, ms(200), &all).0, vec![3]);
        assert!(nack(&mut f, ms(500), &all).0.is_empty(), "spent");
        // Once the window has passed, the budget is back.
        send_payload(&mut f, ms(900), 10, &[0x41; 960]);
        assert_eq!(nack(&mut f, ms(1_100), &[10]).0, vec![10]);
    }

    #[test]
    fn a_resend_waits_a_round_trip_once_the_round_trip_is_known() {
        let t = Instant::now();
        let estimate = Arc::new(Estimate::default());
        estimate.set(10_000_000.0, true);
        estimate.set_rtt(Duration::from_millis(40));
        let mut f = ResendFilter::interceptor(estimate.clone());
        let ms = |n| t + Duration::from_millis(n);
        send(&mut f, t, 1);
        assert_eq!(nack(&mut f, ms(10), &[1]).0, vec![1]);
        assert!(nack(&mut f, ms(45), &[1]).0.is_empty(), "still on its way");
        assert_eq!(nack(&mut f, ms(61), &[1]).0, vec![1], "40 + 10 ms later");
        // A long round trip: no second copy while the first travels.
        estimate.set_rtt(Duration::from_millis(300));
        assert!(nack(&mut f, ms(300), &[1]).0.is_empty());
        assert_eq!(nack(&mut f, ms(400), &[1]).0, vec![1]);
    }
}
