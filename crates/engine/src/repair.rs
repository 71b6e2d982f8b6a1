//! Retransmissions on a stream of their own (RTX, RFC 4588).
//!
//! Without RTX a resend is the original packet again: same SSRC, same
//! sequence number. On a path that reorders, the resend of a packet that
//! was only late overtakes it, and the receiver's SRTP replay check then
//! refuses the original as a repeat — the sender's congestion control
//! hears of a loss that never happened (see `reorder.rs`). Chromium
//! receiving our video showed it worst: in the network lab's `jitter`
//! (±30 ms, then ±80 ms per packet on a 2.5 Mbit/s path) native → Chromium
//! ran at 387, then 162 kbit/s, while Chromium → native held 1723 and 837.
//! With RTX the resend travels on its own SSRC, sequence numbers and SRTP
//! context (its payload: the original sequence number, then the original
//! payload), and the original is accepted whenever it comes.
//!
//! webrtc-rs does most of it once a `video/rtx` codec is registered
//! (`peer/setup.rs`): the offer names a repair SSRC, the NACK responder resends
//! on it, and the receiver turns an RTX packet back into its original on
//! the way to the application. Two places of the interceptor chain see the
//! packets before that, and this module mends them:
//! - [`RtxUnwrap`], on the receiving side, turns each RTX packet back into
//!   its original *before* the NACK generator and `reorder.rs` look at it
//!   (else a resent packet counts as still missing: asked for again and
//!   again), and keeps the generator from asking for the repair stream's
//!   own gaps (only resends travel on it, so its numbers always jump);
//! - [`WithRepairStreams`], on the sending side, binds each stream's repair
//!   SSRC to the transport-wide numbering and the send history (they
//!   number and record only streams bound to them): an unnumbered resend
//!   is bytes on the wire the congestion controller never hears of.

use std::collections::HashMap;
use std::time::Instant;

use rtc::interceptor::{Interceptor, Packet, Slot, StreamInfo, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use tracing::debug;

use crate::tap::{rewrite_nacks, Tap, Tapped};

/// Just above the FEC decoder (6 000) and below `reorder.rs` (6 800) and
/// the NACK generator (7 000): every reader of sequence numbers above it
/// sees originals only.
pub const SLOT: usize = 6_500;

/// Streams whose repairs this keeps track of: one per bound remote stream;
/// past it a stream's repairs are left to webrtc-rs's endpoint (asked for
/// again, as before this module).
const MAX_STREAMS: usize = 64;

/// The stream a repair stream repairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Repaired {
    ssrc: u32,
    payload_type: u8,
    repair_payload_type: u8,
}

/// Turns inbound RTX packets back into the packets they resend.
#[derive(Debug, Default)]
pub struct RtxUnwrap {
    /// By repair SSRC.
    repairs: HashMap<u32, Repaired>,
}

impl RtxUnwrap {
    pub fn interceptor() -> Tapped<RtxUnwrap> {
        Tapped::new(RtxUnwrap::default())
    }

    pub fn slot() -> Slot {
        Slot::from(SLOT)
    }
}

impl Tap for RtxUnwrap {
    fn bound_remote(&mut self, info: &StreamInfo) {
        let (Some(ssrc), Some(repair_payload_type)) = (info.ssrc_rtx, info.payload_type_rtx) else {
            return;
        };
        if self.repairs.len() >= MAX_STREAMS && !self.repairs.contains_key(&ssrc) {
            return;
        }
        debug!(
            media = info.ssrc,
            repair = ssrc,
            "resends come on a stream of their own"
        );
        self.repairs.insert(
            ssrc,
            Repaired {
                ssrc: info.ssrc,
                payload_type: info.payload_type,
                repair_payload_type,
            },
        );
    }

    fn unbound_remote(&mut self, info: &StreamInfo) {
        if let Some(ssrc) = info.ssrc_rtx {
            self.repairs.remove(&ssrc);
        }
    }

    fn read(&mut self, mut message: TaggedPacket) -> Option<TaggedPacket> {
        if let Packet::Rtp(packet) = &mut message.message.packet {
            if let Some(repaired) = self.repairs.get(&packet.header.ssrc) {
                unwrap(packet, repaired);
            }
        }
        Some(message)
    }

    fn write(&mut self, message: TaggedPacket) -> Option<TaggedPacket> {
        // Most messages name no repair stream: they pass as they are,
        // without their NACKs taken apart and put together again.
        let names_repair = matches!(&message.message.packet, Packet::Rtcp(packets)
            if packets
                .iter()
                .filter_map(|p| p.as_any().downcast_ref::<TransportLayerNack>())
                .any(|nack| self.repairs.contains_key(&nack.media_ssrc)));
        if !names_repair {
            return Some(message);
        }
        rewrite_nacks(message, |nack| {
            if self.repairs.contains_key(&nack.media_ssrc) {
                Vec::new()
            } else {
                nack.nacks
                    .iter()
                    .flat_map(|pair| pair.packet_list())
                    .collect()
            }
        })
    }
}

/// Turns `packet`, of `repaired`'s repair stream, back into the packet it
/// resends. One without the original's sequence number (a sender's
/// padding, sent on the repair stream to probe the path) stays as it is:
/// the transport-wide feedback still reports it, and the endpoint drops it.
fn unwrap(packet: &mut rtc::rtp::Packet, repaired: &Repaired) {
    if packet.header.payload_type != repaired.repair_payload_type || packet.payload.len() < 2 {
        return;
    }
    let original = u16::from_be_bytes([packet.payload[0], packet.payload[1]]);
    packet.header.ssrc = repaired.ssrc;
    packet.header.payload_type = repaired.payload_type;
    packet.header.sequence_number = original;
    packet.header.padding = false;
    packet.payload = packet.payload.slice(2..);
}

/// An interceptor that is also told of each local stream's repair stream,
/// as a stream of its own (webrtc-rs binds only the stream it repairs).
#[derive(Debug)]
pub struct WithRepairStreams<I>(pub I);

/// The repair stream of `info`'s stream, as a stream of its own.
fn repair_stream(info: &StreamInfo) -> Option<StreamInfo> {
    Some(StreamInfo {
        ssrc: info.ssrc_rtx?,
        payload_type: info.payload_type_rtx?,
        ssrc_rtx: None,
        payload_type_rtx: None,
        ..info.clone()
    })
}

impl<I: Interceptor> Protocol<TaggedPacket, TaggedPacket, ()> for WithRepairStreams<I> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, message: TaggedPacket) -> Result<(), Error> {
        self.0.handle_read(message)
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.0.poll_read()
    }

    fn handle_write(&mut self, message: TaggedPacket) -> Result<(), Error> {
        self.0.handle_write(message)
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.0.poll_write()
    }

    fn handle_event(&mut self, event: ()) -> Result<(), Error> {
        self.0.handle_event(event)
    }

    fn poll_event(&mut self) -> Option<()> {
        self.0.poll_event()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.0.handle_timeout(now)
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.0.poll_timeout()
    }

    fn close(&mut self) -> Result<(), Error> {
        self.0.close()
    }
}

impl<I: Interceptor> Interceptor for WithRepairStreams<I> {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.0.bind_local_stream(info);
        if let Some(repair) = repair_stream(info) {
            self.0.bind_local_stream(&repair);
        }
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        if let Some(repair) = repair_stream(info) {
            self.0.unbind_local_stream(&repair);
        }
        self.0.unbind_local_stream(info);
    }

    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.0.bind_remote_stream(info);
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.0.unbind_remote_stream(info);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tap::tagged;
    use bytes::Bytes;
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::nack_pairs_from_sequence_numbers;

    const MEDIA: u32 = 1111;
    const REPAIR: u32 = 2222;

    fn bound() -> RtxUnwrap {
        let mut tap = RtxUnwrap::default();
        tap.bound_remote(&StreamInfo {
            ssrc: MEDIA,
            ssrc_rtx: Some(REPAIR),
            payload_type: 102,
            payload_type_rtx: Some(103),
            ..StreamInfo::default()
        });
        tap
    }

    fn rtp(ssrc: u32, payload_type: u8, sequence_number: u16, payload: &[u8]) -> Packet {
        Packet::Rtp(rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                ssrc,
                payload_type,
                sequence_number,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(payload),
        })
    }

    fn read(tap: &mut RtxUnwrap, packet: Packet) -> rtc::rtp::Packet {
        let out = tap.read(tagged(Instant::now(), packet)).expect("passes");
        let Packet::Rtp(p) = out.message.packet else {
            panic!("RTP in, RTP out");
        };
        p
    }

    #[test]
    fn a_resend_reads_as_the_packet_it_resends() {
        let mut tap = bound();
        let p = read(&mut tap, rtp(REPAIR, 103, 7, &[0x12, 0x34, 0xAA, 0xBB]));
        assert_eq!(
            (
                p.header.ssrc,
                p.header.payload_type,
                p.header.sequence_number
            ),
            (MEDIA, 102, 0x1234)
        );
        assert_eq!(&p.payload[..], &[0xAA, 0xBB]);
    }

    #[test]
    fn media_padding_and_strangers_pass_unchanged() {
        let mut tap = bound();
        // The media stream itself.
        let p = read(&mut tap, rtp(MEDIA, 102, 9, &[1, 2, 3]));
        assert_eq!((p.header.ssrc, p.header.sequence_number), (MEDIA, 9));
        // Padding on the repair stream: no original sequence number.
        let p = read(&mut tap, rtp(REPAIR, 103, 8, &[]));
        assert_eq!((p.header.ssrc, p.header.sequence_number), (REPAIR, 8));
        // Another payload type on the repair SSRC, and an unknown SSRC.
        let p = read(&mut tap, rtp(REPAIR, 96, 10, &[0, 1, 2]));
        assert_eq!((p.header.ssrc, p.header.payload_type), (REPAIR, 96));
        let p = read(&mut tap, rtp(3333, 103, 11, &[0, 1, 2]));
        assert_eq!((p.header.ssrc, p.header.sequence_number), (3333, 11));
    }

    #[test]
    fn unbound_repairs_are_no_longer_unwrapped() {
        let mut tap = bound();
        tap.unbound_remote(&StreamInfo {
            ssrc: MEDIA,
            ssrc_rtx: Some(REPAIR),
            ..StreamInfo::default()
        });
        let p = read(&mut tap, rtp(REPAIR, 103, 7, &[0x12, 0x34, 0xAA]));
        assert_eq!(p.header.ssrc, REPAIR);
    }

    fn nack(ssrc: u32, seqs: &[u16]) -> Box<dyn rtc::rtcp::Packet> {
        Box::new(TransportLayerNack {
            sender_ssrc: 0,
            media_ssrc: ssrc,
            nacks: nack_pairs_from_sequence_numbers(seqs),
        })
    }

    #[test]
    fn the_repair_streams_own_gaps_are_never_asked_for() {
        let mut tap = bound();
        let out = tap
            .write(tagged(
                Instant::now(),
                Packet::Rtcp(vec![nack(REPAIR, &[3, 4]), nack(MEDIA, &[5])]),
            ))
            .expect("the media's NACK stays");
        let Packet::Rtcp(packets) = out.message.packet else {
            panic!("RTCP in, RTCP out");
        };
        let ssrcs: Vec<u32> = packets
            .iter()
            .filter_map(|p| p.as_any().downcast_ref::<TransportLayerNack>())
            .map(|n| n.media_ssrc)
            .collect();
        assert_eq!(ssrcs, vec![MEDIA]);
        // A message of repair NACKs only ends here.
        assert!(tap
            .write(tagged(
                Instant::now(),
                Packet::Rtcp(vec![nack(REPAIR, &[3])])
            ))
            .is_none());
    }

    #[test]
    fn the_repair_stream_is_bound_as_a_stream_of_its_own() {
        let info = StreamInfo {
            ssrc: MEDIA,
            ssrc_rtx: Some(REPAIR),
            payload_type: 102,
            payload_type_rtx: Some(103),
            ..StreamInfo::default()
        };
        let repair = repair_stream(&info).expect("a repair stream");
        assert_eq!((repair.ssrc, repair.payload_type), (REPAIR, 103));
        assert_eq!(repair.ssrc_rtx, None);
        let without = StreamInfo {
            ssrc_rtx: None,
            ..info
        };
        assert!(repair_stream(&without).is_none());
    }
}
