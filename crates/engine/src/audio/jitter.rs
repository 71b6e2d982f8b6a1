//! One member's adaptive playout buffer (a jitter buffer in the spirit of
//! NetEQ): Opus packets in as they arrive, 10 ms of audio out whenever the
//! speaker wants it.
//!
//! - **Target delay from the network**: each packet's arrival is compared
//!   with its RTP time; its delay relative to the fastest packet of the last
//!   2 s (so clock drift and a changing path do not count) goes into a 10 s
//!   window, and the buffer aims at that window's 95th percentile plus a
//!   packet and a pull (see [`JitterBuffer::target_samples`]). An underrun adds a
//!   margin that fades (−1 ms a second), for what arrival times cannot show
//!   (a speaker pulling in uneven chunks).
//! - **Growing and shrinking while people talk**: a buffer fuller than its
//!   target plays frames one pitch period shorter, an emptier one plays them
//!   a period longer ([`super::stretch`]); no packet is thrown away for
//!   being early, no gap is inserted for being late. The speaker's clock
//!   paces the pulls, so the same mechanism absorbs drift between the
//!   sender's and the speaker's clocks.
//! - **Loss**: a packet missing while a later one is here is lost; the later
//!   one's in-band FEC rebuilds it when it carries a copy, else the decoder
//!   conceals it. A packet missing with nothing behind it is late: the gap is
//!   concealed *without* skipping it, so the packet still plays when it
//!   comes (the delay grew; shrinking brings it back). After
//!   [`MAX_CONCEAL`] of nothing the member stopped sending (muted, left):
//!   the buffer goes quiet and starts over with the next packet.
//! - **Silence sent as silence** (Opus DTX): a packet that is only a table
//!   of contents says the sender stopped sending while nobody talks. The
//!   buffer goes quiet at once — no concealment counted, no underrun, no
//!   margin — and plays the decoder's comfort noise until the next talk
//!   spurt has its target's worth here (as it starts after any quiet), or
//!   for [`COMFORT_FOR`] after the last packet (a refresh comes every
//!   400 ms while the sender is there).
//!
//! Over 600 lines with its tests (about 250 of them): each rule above is
//! pinned by a test that plays it through, and they read best beside it.
//!
//! Sans-IO: time comes in with every call, so tests and the bench run hours
//! of audio in a second.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::opus::{self, OpusDecoder, OpusError};
use super::{stretch, FRAME_SAMPLES, SAMPLE_RATE};
use crate::transit::{RtpClock, Transit};

/// Samples per millisecond.
const PER_MS: usize = SAMPLE_RATE as usize / 1000;
/// What one pull plays: 10 ms (NetEQ's step; half a packet, which keeps the
/// buffer a packet's phase shallower than 20 ms pulls would).
pub const PULL_SAMPLES: usize = 480;
/// The longest the buffer conceals with nothing arriving before it takes
/// the member as silent.
pub const MAX_CONCEAL: Duration = Duration::from_millis(100);
/// The most a target may be (a path worse than this is not a conversation).
const MAX_TARGET_MS: f32 = 500.0;
/// Beyond the target by this much, the oldest packets are dropped at once
/// rather than played faster (a burst after a long stall).
const FLUSH_ABOVE_MS: f32 = 400.0;
/// A jump forward in RTP time larger than this is the sender starting over
/// (a new source), not loss: playout resynchronises.
const MAX_GAP_MS: usize = 200;
/// Packets kept at most (2 s of 20 ms packets, and then some).
const MAX_PACKETS: usize = 128;
/// Comfort noise lasts this long after the last packet (DTX refreshes it
/// every 400 ms); then the sender is gone, not silent.
pub const COMFORT_FOR: Duration = Duration::from_secs(1);

/// What the buffer did so far, for stats and tests. Durations in samples.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct PlayoutStats {
    /// Samples played that were decoded from packets.
    pub decoded: u64,
    /// Samples rebuilt from in-band FEC.
    pub recovered: u64,
    /// Samples concealed (loss, and waiting for a late packet).
    pub concealed: u64,
    /// Samples of comfort noise played while the sender sent silence as
    /// silence (DTX): neither loss nor a wait.
    pub comfort: u64,
    /// Samples taken out by shortening, and added by lengthening.
    pub shortened: u64,
    pub lengthened: u64,
    /// Packets that came after their time had been played.
    pub late: u64,
    /// Packets dropped because the buffer was far over its target.
    pub flushed: u64,
    /// Times the buffer ran dry while playing.
    pub underruns: u64,
    /// What the buffer holds now, and what it aims at, milliseconds.
    pub delay_ms: f32,
    pub target_ms: f32,
    /// The sum of [`PlayoutStats::delay_ms`] over every pull, and the pulls.
    pub delay_sum_ms: f64,
    pub pulls: u64,
}

impl PlayoutStats {
    /// The mean time audio waited in the buffer (as Chromium's
    /// `jitterBufferDelay / jitterBufferEmittedCount`), ms.
    pub fn mean_delay_ms(&self) -> f64 {
        if self.pulls == 0 {
            0.0
        } else {
            self.delay_sum_ms / self.pulls as f64
        }
    }

    /// The share of played audio that was concealed.
    pub fn concealed_share(&self) -> f64 {
        let all = self.decoded + self.recovered + self.concealed;
        if all == 0 {
            0.0
        } else {
            self.concealed as f64 / all as f64
        }
    }
}

/// An audio packet of a member, as it arrived.
#[derive(Debug, Clone)]
pub struct AudioPacket {
    pub at: Instant,
    /// RTP time (48 kHz).
    pub timestamp: u32,
    /// Opus.
    pub payload: Vec<u8>,
}

#[derive(Debug)]
struct Packet {
    payload: Vec<u8>,
    samples: usize,
}

/// One member's playout buffer.
#[derive(Debug)]
pub struct JitterBuffer {
    decoder: OpusDecoder,
    /// By extended RTP timestamp.
    packets: BTreeMap<i64, Packet>,
    /// The RTP time of the next sample to decode; `None` while quiet.
    next: Option<i64>,
    /// Decoded, not yet played.
    ready: VecDeque<i16>,
    clock: RtpClock,
    delay: Transit,
    /// The buffer level, smoothed (samples).
    level: f32,
    /// Samples concealed in a row with nothing to decode.
    starved: usize,
    /// The last packet decoded was a DTX frame: quiet means comfort noise.
    comfort: bool,
    /// When the last packet arrived.
    arrived: Option<Instant>,
    /// Extra target after underruns, ms, and when it was last lowered.
    margin_ms: f32,
    margin_at: Option<Instant>,
    stats: PlayoutStats,
}

impl JitterBuffer {
    pub fn new() -> Result<JitterBuffer, OpusError> {
        Ok(JitterBuffer {
            decoder: OpusDecoder::new()?,
            packets: BTreeMap::new(),
            next: None,
            ready: VecDeque::new(),
            clock: RtpClock::default(),
            delay: Transit::new(SAMPLE_RATE),
            level: 0.0,
            starved: 0,
            comfort: false,
            arrived: None,
            margin_ms: 0.0,
            margin_at: None,
            stats: PlayoutStats::default(),
        })
    }

    /// A packet with RTP `timestamp` arrived at `now`. Not Opus: ignored.
    pub fn insert(&mut self, now: Instant, timestamp: u32, payload: &[u8]) {
        let Ok(samples) = opus::duration(payload) else {
            return;
        };
        if samples == 0 {
            return;
        }
        let at = self.clock.extend(timestamp);
        self.delay.observe(now, at);
        self.arrived = Some(now);
        if self.next.is_some_and(|next| at < next) {
            self.stats.late += 1;
            return;
        }
        self.packets.entry(at).or_insert(Packet {
            payload: payload.to_vec(),
            samples,
        });
        while self.packets.len() > MAX_PACKETS {
            self.packets.pop_first();
            self.stats.flushed += 1;
        }
    }

    /// The next 10 ms ([`PULL_SAMPLES`]), or `None` while the member is quiet (nothing has
    /// come for [`MAX_CONCEAL`], or it has not started); while the member
    /// sends silence as silence (DTX), its comfort noise.
    pub fn pull(&mut self, now: Instant) -> Option<Vec<i16>> {
        self.lower_margin(now);
        let target = self.target_samples();
        if self.next.is_none() {
            // Start once a target's worth is here (or the packets span it).
            let span = match (self.packets.keys().next(), self.buffered_end()) {
                (Some(&first), Some(end)) => Some((first, end - first)),
                _ => None,
            };
            match span {
                Some((first, span)) if span >= target as i64 - FRAME_SAMPLES as i64 / 2 => {
                    self.next = Some(first);
                    self.level = self.level_now() as f32;
                }
                _ => return self.comfort_noise(now),
            }
        }
        let level = self.level_now() as f32;
        self.level += 0.05 * (level - self.level);
        if level - target > FLUSH_ABOVE_MS * PER_MS as f32 {
            self.flush(target);
        }
        while self.ready.len() < PULL_SAMPLES {
            if !self.decode_next(target) {
                self.go_quiet();
                return self.comfort_noise(now);
            }
        }
        self.stats.delay_ms = level / PER_MS as f32;
        self.stats.target_ms = target / PER_MS as f32;
        self.stats.delay_sum_ms += f64::from(self.stats.delay_ms);
        self.stats.pulls += 1;
        Some(self.ready.drain(..PULL_SAMPLES).collect())
    }

    /// The RTP time of the next sample to be played (`None`: quiet); a
    /// stretched frame makes it off by a few milliseconds.
    pub fn position(&self) -> Option<u32> {
        let next = self.next? - self.ready.len() as i64;
        Some(next as u32)
    }

    /// What happened so far.
    pub fn stats(&self) -> PlayoutStats {
        self.stats
    }

    /// Decodes (or rebuilds, or conceals) the next piece into `ready`,
    /// stretched toward the target. `false`: the member went quiet.
    fn decode_next(&mut self, target: f32) -> bool {
        let Some(next) = self.next else {
            return false;
        };
        // Packets behind the playout point (it moved past them) are late.
        while let Some(entry) = self.packets.first_entry() {
            if *entry.key() >= next {
                break;
            }
            entry.remove();
            self.stats.late += 1;
        }
        let first = self
            .packets
            .first_key_value()
            .map(|(&at, p)| (at, p.samples));
        let (samples, decoded) = match first {
            // After a DTX frame the sender is silent until its next
            // packet, whenever that is: quiet, with comfort noise.
            Some((at, _)) if self.comfort && at != next => return false,
            None if self.comfort => return false,
            Some((at, _)) if at == next => {
                let Some(packet) = self.packets.remove(&at) else {
                    return false;
                };
                self.starved = 0;
                self.next = Some(at + packet.samples as i64);
                self.comfort = opus::is_dtx(&packet.payload);
                let samples = self.decoder.decode(&packet.payload).unwrap_or_default();
                self.stats.decoded += samples.len() as u64;
                (samples, true)
            }
            Some((at, _)) if (at - next) as usize > MAX_GAP_MS * PER_MS => {
                // The sender started over: play on from its new time.
                self.next = Some(at);
                return true;
            }
            Some((at, _)) if self.starved > 0 => {
                // A later packet after concealment: what was concealed
                // stands for the missing audio (NetEQ's merge), as far as it
                // goes — the delay does not grow for a lost packet.
                let covered = (self.starved as i64).min(at - next);
                self.next = Some(next + covered);
                self.starved = 0;
                return true;
            }
            Some((at, samples)) => {
                // Lost: the one after it is here.
                let gap = (at - next) as usize;
                let rebuilt = if gap == samples {
                    self.packets
                        .get(&at)
                        .and_then(|p| self.decoder.recover(&p.payload, gap).ok())
                } else {
                    None
                };
                let samples = match rebuilt {
                    Some(samples) => {
                        self.stats.recovered += samples.len() as u64;
                        samples
                    }
                    None => {
                        let samples = self.conceal(gap.min(FRAME_SAMPLES));
                        self.stats.concealed += samples.len() as u64;
                        samples
                    }
                };
                self.next = Some(next + samples.len().max(1) as i64);
                (samples, true)
            }
            None => {
                // Late (or the member stopped): conceal, keep waiting.
                if self.starved == 0 {
                    self.stats.underruns += 1;
                    self.margin_ms = (self.margin_ms + 10.0).min(MAX_TARGET_MS);
                }
                if self.starved >= MAX_CONCEAL.as_millis() as usize * PER_MS {
                    return false;
                }
                let samples = self.conceal(FRAME_SAMPLES);
                self.starved += FRAME_SAMPLES;
                self.stats.concealed += samples.len() as u64;
                (samples, false)
            }
        };
        if samples.is_empty() {
            // A decoder that gives nothing: play silence rather than spin.
            self.ready.extend(std::iter::repeat_n(0, FRAME_SAMPLES));
            return true;
        }
        let stretched = if decoded && samples.len() >= FRAME_SAMPLES {
            self.stretch(&samples, target)
        } else {
            None
        };
        match stretched {
            Some(stretched) => self.ready.extend(stretched),
            None => self.ready.extend(samples),
        }
        true
    }

    /// `samples` shortened or lengthened when the smoothed level is off
    /// target (`None`: as they are).
    fn stretch(&mut self, samples: &[i16], target: f32) -> Option<Vec<i16>> {
        // The band above the target widens with the jitter (a quarter of
        // it, at least 10 ms): under ±80 ms the level swings so much that a
        // 10 ms band kept stretching 4 % of the audio back and forth.
        let jitter = self.jitter_ms() * PER_MS as f32;
        let high = target + (jitter / 4.0).max(10.0 * PER_MS as f32);
        let low = target;
        let out = if self.level > high {
            let out = stretch::shorten(samples)?;
            self.stats.shortened += (samples.len() - out.len()) as u64;
            out
        } else if self.level < low {
            let out = stretch::lengthen(samples)?;
            self.stats.lengthened += (out.len() - samples.len()) as u64;
            out
        } else {
            return None;
        };
        // The smoothed level learns of the change now, not over the next
        // ten pulls (or it would stretch again and overshoot).
        self.level += out.len() as f32 - samples.len() as f32;
        Some(out)
    }

    /// 10 ms of the decoder's comfort noise while the sender is in DTX and
    /// still there; `None` otherwise (the member is quiet).
    fn comfort_noise(&mut self, now: Instant) -> Option<Vec<i16>> {
        let recent = self
            .arrived
            .is_some_and(|at| now.saturating_duration_since(at) < COMFORT_FOR);
        if !(self.comfort && recent) {
            self.comfort = false;
            return None;
        }
        let noise = self.conceal(PULL_SAMPLES);
        self.stats.comfort += noise.len() as u64;
        Some(noise)
    }

    fn conceal(&mut self, samples: usize) -> Vec<i16> {
        // Concealment in whole 2.5 ms steps, as libopus wants.
        let samples = (samples / 120).max(1) * 120;
        self.decoder
            .conceal(samples)
            .unwrap_or_else(|_| vec![0; samples])
    }

    /// Drops the oldest packets until the buffer is at its target.
    fn flush(&mut self, target: f32) {
        while self.level_now() as f32 > target {
            let Some((_, packet)) = self.packets.pop_first() else {
                break;
            };
            self.stats.flushed += 1;
            if let Some(next) = self.next.as_mut() {
                *next += packet.samples as i64;
            }
            if let Some((&at, _)) = self.packets.first_key_value() {
                self.next = Some(at);
            }
        }
        self.level = self.level_now() as f32;
    }

    fn go_quiet(&mut self) {
        self.next = None;
        self.ready.clear();
        self.starved = 0;
        self.level = 0.0;
        self.stats.delay_ms = 0.0;
    }

    /// Samples decoded or waiting to be: `ready` plus the packets from
    /// `next` to the end of the newest.
    fn level_now(&self) -> usize {
        let waiting = match (self.next, self.buffered_end()) {
            (Some(next), Some(end)) => (end - next).max(0) as usize,
            _ => 0,
        };
        self.ready.len() + waiting
    }

    fn buffered_end(&self) -> Option<i64> {
        self.packets
            .last_key_value()
            .map(|(&at, p)| at + p.samples as i64)
    }

    /// What the buffer aims to hold just before a pull, in samples: what
    /// the pull takes, plus a packet — when arrivals and pulls change places
    /// (a sender slower than the speaker), the level drops by a whole packet
    /// at once — plus the network's jitter and the margin underruns added.
    /// Lengthening starts right below it, so that drop still finds a pull's
    /// worth.
    fn target_samples(&self) -> f32 {
        (FRAME_SAMPLES + PULL_SAMPLES) as f32 + self.jitter_ms() * PER_MS as f32
    }

    /// The network's jitter and the underruns' margin, ms.
    fn jitter_ms(&self) -> f32 {
        (self.delay.percentile_ms() + self.margin_ms).min(MAX_TARGET_MS)
    }

    fn lower_margin(&mut self, now: Instant) {
        let since = self.margin_at.map_or(Duration::ZERO, |at| now - at);
        self.margin_ms = (self.margin_ms - since.as_secs_f32()).max(0.0);
        self.margin_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::audio::opus::OpusEncoder;
    use crate::audio::tone::{dominant_frequency, ToneSource};

    const FRAME: Duration = Duration::from_millis(20);

    /// 20 ms as the speaker takes it: two pulls, 10 ms apart.
    fn pull20(buffer: &mut JitterBuffer, now: Instant) -> Option<Vec<i16>> {
        let first = buffer.pull(now);
        let second = buffer.pull(now + Duration::from_millis(10));
        match (first, second) {
            (None, None) => None,
            (a, b) => Some([a.unwrap_or_default(), b.unwrap_or_default()].concat()),
        }
    }

    /// `count` packets of a 440 Hz tone with their RTP timestamps.
    fn packets(count: usize) -> Vec<(u32, Vec<u8>)> {
        let mut tone = ToneSource::new(440.0);
        let mut encoder = OpusEncoder::new().unwrap();
        (0..count)
            .map(|n| {
                let ts = (n * FRAME_SAMPLES) as u32;
                (
                    ts.wrapping_add(4_294_900_000),
                    encoder.encode(&tone.next_frame()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn a_steady_stream_plays_every_packet_with_little_delay() {
        let t0 = Instant::now();
        let mut buffer = JitterBuffer::new().unwrap();
        let mut heard = Vec::new();
        for (n, (ts, packet)) in packets(300).into_iter().enumerate() {
            let now = t0 + FRAME * n as u32;
            buffer.insert(now, ts, &packet);
            // Pulls 7 ms after arrivals.
            heard.extend(pull20(&mut buffer, now + Duration::from_millis(7)).unwrap_or_default());
        }
        let stats = buffer.stats();
        assert_eq!(dominant_frequency(&heard[9_600..]), Some(440.0));
        assert_eq!(stats.concealed, 0, "{stats:?}");
        assert_eq!(stats.late, 0);
        assert!(stats.delay_ms < 50.0, "{stats:?}");
    }

    #[test]
    fn a_lost_packet_is_rebuilt_from_the_next_ones_copy() {
        let t0 = Instant::now();
        let mut buffer = JitterBuffer::new().unwrap();
        let packets = packets(100);
        for tick in 0..99 {
            // Each packet arrives a pull before its time.
            let now = t0 + FRAME * tick as u32;
            for (n, (ts, packet)) in packets.iter().enumerate().take(tick + 2) {
                if n >= tick && n != 50 {
                    buffer.insert(now, *ts, packet);
                }
            }
            pull20(&mut buffer, now + Duration::from_millis(7));
        }
        let stats = buffer.stats();
        assert_eq!(stats.recovered, FRAME_SAMPLES as u64, "{stats:?}");
        assert_eq!(stats.concealed, 0, "{stats:?}");
    }

    #[test]
    fn a_late_packet_still_plays_and_the_delay_comes_back_down() {
        let t0 = Instant::now();
        let mut buffer = JitterBuffer::new().unwrap();
        let mut arrivals: Vec<(Instant, u32, Vec<u8>)> = packets(500)
            .into_iter()
            .enumerate()
            .map(|(n, (ts, p))| {
                // Packets 100..115 are held up to 300 ms (a spike).
                let held = if (100..115).contains(&n) {
                    300 - (n - 100) as u64 * 20
                } else {
                    0
                };
                (t0 + FRAME * n as u32 + Duration::from_millis(held), ts, p)
            })
            .collect();
        arrivals.sort_by_key(|a| a.0);
        let mut arrivals = arrivals.into_iter().peekable();
        let mut delays = Vec::new();
        for tick in 0..500u32 {
            let now = t0 + FRAME * tick + Duration::from_millis(7);
            while let Some((_, ts, packet)) = arrivals.next_if(|a| a.0 <= now) {
                buffer.insert(now, ts, &packet);
            }
            pull20(&mut buffer, now);
            delays.push(buffer.stats().delay_ms);
        }
        let stats = buffer.stats();
        assert_eq!(stats.late, 0, "every held packet played: {stats:?}");
        assert!(stats.concealed > 0, "the spike was concealed");
        assert!(
            stats.shortened > 0,
            "and the delay it left shrank: {stats:?}"
        );
        // Ten seconds later the delay is back near where it was.
        let before = delays[90];
        let after = *delays.last().unwrap();
        assert!(
            after < 150.0 && after < before + 120.0,
            "{before} → {after}: {stats:?}"
        );
    }

    #[test]
    fn a_member_that_stops_goes_quiet_and_starts_again() {
        let t0 = Instant::now();
        let mut buffer = JitterBuffer::new().unwrap();
        let packets = packets(100);
        let mut out = Vec::new();
        for tick in 0..100u32 {
            let now = t0 + FRAME * tick;
            // Packets 30..70 are never sent (muted).
            if !(30..70).contains(&tick) {
                let (ts, packet) = &packets[tick as usize];
                buffer.insert(now, *ts, packet);
            }
            out.push(pull20(&mut buffer, now + Duration::from_millis(7)).is_some());
        }
        assert!(out[20] && out[90]);
        assert!(!out[45], "quiet while nothing comes");
        let conceal_frames = buffer.stats().concealed / FRAME_SAMPLES as u64;
        assert!(conceal_frames <= 6, "{:?}", buffer.stats());
    }

    #[test]
    fn silence_sent_as_silence_plays_comfort_noise_and_costs_no_delay() {
        use crate::audio::synthetic::talker;
        use crate::audio::voice::dbfs;
        // A talker for 1 s, a quiet room (−70 dBFS of hiss) for 3 s, the
        // talker again for 1 s; DTX off while talking, as the pipeline sets it.
        let mut state = 7u32;
        let mut hiss = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            ((state as f32 / u32::MAX as f32) * 2.0 - 1.0) * 18.0
        };
        let quiet: Vec<i16> = (0..48_000 * 3).map(|_| hiss() as i16).collect();
        let frames: Vec<(bool, Vec<i16>)> = [
            (true, talker(1.0, 3)),
            (false, quiet),
            (true, talker(1.0, 5)),
        ]
        .into_iter()
        .flat_map(|(talking, audio)| {
            audio
                .chunks_exact(FRAME_SAMPLES)
                .map(|f| (talking, f.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect();
        let mut encoder = OpusEncoder::new().unwrap();
        let t0 = Instant::now();
        let mut buffer = JitterBuffer::new().unwrap();
        let (mut sent_quiet, mut heard) = (0, Vec::new());
        for (n, (talking, frame)) in frames.iter().enumerate() {
            encoder.set_dtx(!talking).unwrap();
            let now = t0 + FRAME * n as u32;
            if let Some(packet) = encoder.next_packet(frame).unwrap() {
                // The last two seconds of the quiet (libopus's own detector
                // takes most of a second to call it quiet).
                sent_quiet += usize::from((100..200).contains(&n));
                buffer.insert(now, (n * FRAME_SAMPLES) as u32, &packet);
            }
            let pulled = pull20(&mut buffer, now + Duration::from_millis(7));
            heard.push(pulled.map(|p| dbfs(&p)));
        }
        let stats = buffer.stats();
        // 100 frames of quiet: a refresh and a DTX frame every 400 ms.
        assert!(
            sent_quiet <= 12,
            "{sent_quiet} packets sent in 2 s of quiet"
        );
        assert_eq!(stats.underruns, 0, "{stats:?}");
        assert_eq!(stats.concealed, 0, "{stats:?}");
        // Comfort noise from the DTX frame on (~0.85 s into the quiet), but
        // for the refreshes it decodes.
        assert!(stats.comfort > 48_000 * 3 / 2, "{stats:?}");
        // Comfort noise all through the quiet, and quietly.
        let quiet_heard = &heard[60..200];
        assert!(
            quiet_heard.iter().all(|l| l.is_some_and(|l| l < -50.0)),
            "{quiet_heard:?}"
        );
        // The second talk spurt is heard whole: as many loud frames as were
        // said (less the few its playout delay leaves past the end).
        let said = frames[200..]
            .iter()
            .filter(|(_, f)| dbfs(f) > -40.0)
            .count();
        let back = heard[200..]
            .iter()
            .filter(|l| l.is_some_and(|l| l > -40.0))
            .count();
        assert!(back + 3 >= said, "{back} of {said}: {:?}", &heard[200..]);
        // Once the sender is gone, so is its comfort noise.
        let mut after = t0 + FRAME * frames.len() as u32;
        let mut last = Some(Vec::new());
        for _ in 0..100 {
            after += FRAME;
            last = pull20(&mut buffer, after);
        }
        assert!(last.is_none());
    }

    #[test]
    fn what_is_not_opus_is_ignored() {
        let mut buffer = JitterBuffer::new().unwrap();
        buffer.insert(Instant::now(), 0, &[]);
        buffer.insert(Instant::now(), 0, &[0xff, 0xff, 0xff]);
        assert_eq!(buffer.pull(Instant::now()), None);
    }

    /// A minute of a sender whose clock runs `skew` fast against the
    /// speaker's: returns the buffer's stats and its delay at the end.
    fn drift(skew: f64) -> (PlayoutStats, Vec<f32>) {
        let t0 = Instant::now();
        let mut buffer = JitterBuffer::new().unwrap();
        let packets = packets(3_000);
        let sent_at = |n: usize| t0 + FRAME.mul_f64(n as f64 / (1.0 + skew));
        let mut sent = 0;
        let mut delays = Vec::new();
        for tick in 0..2_990u32 {
            let now = t0 + FRAME * tick + Duration::from_millis(7);
            while sent < packets.len() && sent_at(sent) <= now {
                buffer.insert(sent_at(sent), packets[sent].0, &packets[sent].1);
                sent += 1;
            }
            pull20(&mut buffer, now);
            delays.push(buffer.stats().delay_ms);
        }
        (buffer.stats(), delays)
    }

    #[test]
    fn clocks_that_drift_apart_neither_grow_the_delay_nor_run_it_dry() {
        // 0.5 % is 300 ms a minute: five times a bad pair of devices.
        for skew in [0.005, -0.005] {
            let (stats, delays) = drift(skew);
            assert!(stats.underruns <= 1, "{skew}: {stats:?}");
            let worst = delays[500..].iter().copied().fold(0.0, f32::max);
            assert!(worst < 80.0, "{skew}: delay up to {worst} ms: {stats:?}");
            let stretched = stats.shortened + stats.lengthened;
            assert!(stretched > 48 * 200, "{skew}: {stats:?}");
        }
    }
}
