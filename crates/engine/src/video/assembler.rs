//! Reassembles H.264 access units from RTP packets: the receive side's
//! jitter buffer for video.
//!
//! A picture is complete once every sequence number from its first packet
//! through the one carrying the marker bit is here; it is released at once.
//! (webrtc-rs's `SampleBuilder` released a picture only when a packet of the
//! *next* one arrived, and gave up on a gap by RTP-timestamp span: when
//! video was sparse — a congested path, the sender skipping pictures — a
//! keyframe sat in the buffer for seconds and video never came back in the
//! network lab's 250 kbit/s dip.)
//!
//! A missing packet is waited for [`Assembler::new`]'s `max_wait` of wall
//! time (NACK's chance to bring it); then the broken picture and everything
//! up to the next picture's first packet are dropped, and the caller is told
//! ([`Assembled::Gap`]) so that it can ask for a keyframe. If a whole
//! keyframe is already here after the missing packet, nothing before it is
//! needed: the wait ends at once. (A sender's keyframe often follows a loss
//! — the periodic one, or the answer to a request — and a lost packet of
//! the picture just before it held it back for the whole wait; the sender
//! does not resend packets sent before its latest keyframe, `resend.rs`.)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::packetizer::Depacketizer;
use rtc::rtp::Packet;

use super::nal::starts_keyframe;

/// The most packets held: beyond this the oldest picture is given up.
const MAX_PACKETS: usize = 4096;

/// What [`Assembler::pop`] gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembled {
    /// An access unit (Annex B) and its RTP timestamp.
    Picture { data: Bytes, timestamp: u32 },
    /// Packets were given up: pictures are missing before the next one.
    Gap,
}

/// One stream's packets on their way to the decoder.
#[derive(Debug)]
pub struct Assembler {
    /// By extended sequence number.
    packets: BTreeMap<u64, (Instant, Packet)>,
    /// The extended sequence number the next picture starts at, once known.
    next: Option<u64>,
    /// The highest extended sequence number seen.
    highest: Option<u64>,
    max_wait: Duration,
}

fn is_picture_start(payload: &Bytes) -> bool {
    H264Packet::default().is_partition_head(payload)
}

impl Assembler {
    pub fn new(max_wait: Duration) -> Assembler {
        Assembler {
            packets: BTreeMap::new(),
            next: None,
            highest: None,
            max_wait,
        }
    }

    /// The extended form of a 16-bit sequence number, nearest the highest seen.
    fn extend(&mut self, seq: u16) -> u64 {
        let ext = match self.highest {
            None => u64::from(seq) + (1 << 16),
            Some(high) => {
                let delta = seq.wrapping_sub(high as u16) as i16;
                (high as i64 + i64::from(delta)).max(0) as u64
            }
        };
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
        ext
    }

    /// A packet arrived `now`. Duplicates and packets of pictures already
    /// released or given up are ignored.
    pub fn push(&mut self, now: Instant, packet: Packet) {
        let ext = self.extend(packet.header.sequence_number);
        if self.next.is_some_and(|next| ext < next) {
            tracing::trace!(
                seq = packet.header.sequence_number,
                "a packet arrived too late"
            );
            return;
        }
        if self.highest.is_some_and(|h| ext < h) && !self.packets.contains_key(&ext) {
            tracing::trace!(
                seq = packet.header.sequence_number,
                "a missing packet arrived"
            );
        }
        self.packets.entry(ext).or_insert((now, packet));
    }

    /// The next complete picture, or a gap given up on; `None` while waiting.
    pub fn pop(&mut self, now: Instant) -> Option<Assembled> {
        if self.next.is_none() {
            // Start at the first picture's first packet.
            let start = self
                .packets
                .iter()
                .find(|(_, (_, p))| is_picture_start(&p.payload))
                .map(|(&seq, _)| seq)?;
            self.packets = self.packets.split_off(&start);
            self.next = Some(start);
        }
        // Padding (an empty payload: a browser probing the path) holds no
        // picture; it only takes up sequence numbers between pictures.
        while let Some(next) = self.next {
            match self.packets.get(&next) {
                Some((_, p)) if p.payload.is_empty() => {
                    self.packets.remove(&next);
                    self.next = Some(next + 1);
                }
                _ => break,
            }
        }
        let next = self.next?;
        let Some((_, first)) = self.packets.get(&next) else {
            // The next picture's first packet is the one missing.
            return self.waiting(now, next, None);
        };
        let timestamp = first.header.timestamp;
        let mut seq = next;
        loop {
            match self.packets.get(&seq) {
                Some((_, p)) if p.header.timestamp != timestamp => {
                    // The picture ended without a marker: take what it had.
                    return Some(self.release(next, seq, timestamp));
                }
                Some((_, p)) if p.header.marker => {
                    return Some(self.release(next, seq + 1, timestamp));
                }
                Some(_) => seq += 1,
                None => return self.waiting(now, seq, Some(timestamp)),
            }
        }
    }

    /// `missing` is not here: give up on it at once if a whole keyframe
    /// is here after it (nothing before a keyframe is needed), or once it
    /// waited too long with later packets here (or the buffer is full);
    /// else wait.
    fn waiting(&mut self, now: Instant, missing: u64, broken: Option<u32>) -> Option<Assembled> {
        if let Some(key) = self.whole_keyframe_after(missing) {
            self.packets = self.packets.split_off(&key);
            self.next = Some(key);
            return Some(Assembled::Gap);
        }
        let oldest = self.packets.values().map(|(at, _)| *at).min()?;
        let later_here = self.packets.range(missing + 1..).next().is_some();
        let waited = now.saturating_duration_since(oldest) > self.max_wait;
        if later_here && (waited || self.packets.len() > MAX_PACKETS) {
            return Some(self.give_up(missing, broken));
        }
        None
    }

    /// Where the first keyframe after `missing` whose packets are all here
    /// (its first through the one with the marker bit) begins.
    fn whole_keyframe_after(&self, missing: u64) -> Option<u64> {
        let mut starts = self
            .packets
            .range(missing + 1..)
            .filter(|(_, (_, p))| is_picture_start(&p.payload) && starts_keyframe(&p.payload));
        starts.find_map(|(&start, (_, first))| {
            let timestamp = first.header.timestamp;
            let mut seq = start;
            loop {
                match self.packets.get(&seq) {
                    Some((_, p)) if p.header.timestamp != timestamp => return None,
                    Some((_, p)) if p.header.marker => return Some(start),
                    Some(_) => seq += 1,
                    None => return None,
                }
            }
        })
    }

    /// Drops the broken picture (RTP timestamp `broken`, if known) and
    /// whatever follows until the next picture's first packet.
    fn give_up(&mut self, missing: u64, broken: Option<u32>) -> Assembled {
        tracing::trace!(seq = missing as u16, "given up");
        let resume = self
            .packets
            .range(missing + 1..)
            .find(|(_, (_, p))| Some(p.header.timestamp) != broken && is_picture_start(&p.payload))
            .map(|(&seq, _)| seq);
        match resume {
            Some(start) => {
                self.packets = self.packets.split_off(&start);
                self.next = Some(start);
            }
            None => {
                self.packets.clear();
                self.next = None;
            }
        }
        Assembled::Gap
    }

    /// Depacketizes `from..to` into one access unit and moves past it.
    fn release(&mut self, from: u64, to: u64, timestamp: u32) -> Assembled {
        let rest = self.packets.split_off(&to);
        let taken = std::mem::replace(&mut self.packets, rest);
        self.next = Some(to);
        let mut depacketizer = H264Packet::default();
        let mut data = Vec::new();
        for (_, (_, packet)) in taken.range(from..to) {
            if packet.payload.is_empty() {
                continue;
            }
            match depacketizer.depacketize(&packet.payload) {
                Ok(part) => data.extend_from_slice(&part),
                Err(e) => {
                    tracing::debug!(error = %e, "a packet would not depacketize");
                    return Assembled::Gap;
                }
            }
        }
        if data.is_empty() {
            return Assembled::Gap;
        }
        Assembled::Picture {
            data: Bytes::from(data),
            timestamp,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rtc::rtp::Header;

    /// A single-NAL packet (an IDR slice when `key`, else a P slice).
    fn packet(seq: u16, timestamp: u32, marker: bool, key: bool) -> Packet {
        let nal = if key { 0x65 } else { 0x41 };
        Packet {
            header: Header {
                sequence_number: seq,
                timestamp,
                marker,
                ..Header::default()
            },
            payload: Bytes::from(vec![nal, seq as u8, 0xAA]),
        }
    }

    /// An FU-A fragment of an IDR slice: start, middle or end.
    fn fragment(seq: u16, timestamp: u32, start: bool, end: bool) -> Packet {
        let header = (0x80 * u8::from(start)) | (0x40 * u8::from(end)) | 5;
        Packet {
            header: Header {
                sequence_number: seq,
                timestamp,
                marker: end,
                ..Header::default()
            },
            payload: Bytes::from(vec![0x7C, header, seq as u8]),
        }
    }

    const WAIT: Duration = Duration::from_millis(400);

    #[test]
    fn a_complete_picture_leaves_at_once_without_waiting_for_the_next() {
        let t = Instant::now();
        let mut a = Assembler::new(WAIT);
        a.push(t, fragment(10, 900, true, false));
        a.push(t, fragment(11, 900, false, false));
        assert_eq!(a.pop(t), None, "not complete yet");
        a.push(t, fragment(12, 900, false, true));
        let Some(Assembled::Picture { timestamp, data }) = a.pop(t) else {
            panic!("the picture was held back");
        };
        assert_eq!(timestamp, 900);
        assert!(data.len() > 4);
        assert_eq!(a.pop(t), None);
    }

    #[test]
    fn a_late_packet_is_waited_for_then_given_up_on() {
        let t = Instant::now();
        let mut a = Assembler::new(WAIT);
        a.push(t, fragment(1, 100, true, false));
        // 2 is lost for now.
        a.push(t, fragment(3, 100, false, true));
        a.push(t, packet(4, 200, true, false));
        assert_eq!(
            a.pop(t + Duration::from_millis(100)),
            None,
            "NACK may still bring it"
        );
        // Retransmitted in time: the picture is whole.
        a.push(t, fragment(2, 100, false, false));
        assert!(matches!(
            a.pop(t + Duration::from_millis(150)),
            Some(Assembled::Picture { timestamp: 100, .. })
        ));
        assert!(matches!(
            a.pop(t + Duration::from_millis(150)),
            Some(Assembled::Picture { timestamp: 200, .. })
        ));

        // Never retransmitted: after the wait, the broken picture goes.
        a.push(t, fragment(5, 300, true, false));
        a.push(t, fragment(7, 300, false, true));
        a.push(t, packet(8, 400, true, false));
        assert_eq!(a.pop(t + Duration::from_millis(200)), None);
        assert_eq!(a.pop(t + Duration::from_millis(500)), Some(Assembled::Gap));
        assert!(matches!(
            a.pop(t + Duration::from_millis(500)),
            Some(Assembled::Picture { timestamp: 400, .. })
        ));
    }

    #[test]
    fn a_whole_keyframe_is_not_held_behind_a_missing_packet() {
        let t = Instant::now();
        let mut a = Assembler::new(WAIT);
        a.push(t, packet(1, 100, false, false));
        // 2 (the end of picture 100) is lost; a keyframe follows, in part.
        a.push(t, fragment(3, 200, true, false));
        assert_eq!(a.pop(t), None, "the keyframe is not whole: wait");
        a.push(t, fragment(4, 200, false, true));
        assert_eq!(a.pop(t), Some(Assembled::Gap), "no wait for 2");
        assert!(matches!(
            a.pop(t),
            Some(Assembled::Picture { timestamp: 200, .. })
        ));
        // A whole picture that is not a keyframe does not end the wait.
        a.push(t, packet(5, 300, false, false));
        a.push(t, packet(7, 400, true, false));
        assert_eq!(a.pop(t + Duration::from_millis(100)), None);
    }

    #[test]
    fn sequence_numbers_wrap_and_duplicates_are_ignored() {
        let t = Instant::now();
        let mut a = Assembler::new(WAIT);
        a.push(t, fragment(65_535, 7, true, false));
        a.push(t, fragment(0, 7, false, true));
        a.push(t, fragment(0, 7, false, true));
        assert!(matches!(
            a.pop(t),
            Some(Assembled::Picture { timestamp: 7, .. })
        ));
        a.push(t, packet(65_535, 7, true, true)); // already released
        a.push(t, packet(1, 8, true, true));
        assert!(matches!(
            a.pop(t),
            Some(Assembled::Picture { timestamp: 8, .. })
        ));
        assert_eq!(a.pop(t), None);
    }

    #[test]
    fn padding_between_pictures_is_skipped() {
        let t = Instant::now();
        let mut a = Assembler::new(WAIT);
        a.push(t, packet(1, 10, true, true));
        for seq in 2..5 {
            let mut pad = packet(seq, 10, false, false);
            pad.payload = Bytes::new();
            a.push(t, pad);
        }
        a.push(t, packet(5, 20, true, false));
        assert!(matches!(
            a.pop(t),
            Some(Assembled::Picture { timestamp: 10, .. })
        ));
        assert!(matches!(
            a.pop(t),
            Some(Assembled::Picture { timestamp: 20, .. })
        ));
    }

    #[test]
    fn a_stream_joined_mid_picture_starts_at_the_next_picture() {
        let t = Instant::now();
        let mut a = Assembler::new(WAIT);
        a.push(t, fragment(20, 50, false, true)); // the tail of a picture we missed
        a.push(t, packet(21, 60, true, true));
        assert!(matches!(
            a.pop(t),
            Some(Assembled::Picture { timestamp: 60, .. })
        ));
    }
}
