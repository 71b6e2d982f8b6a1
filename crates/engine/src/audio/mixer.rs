//! The members' playout: one [`JitterBuffer`] per member, pulled 10 ms at a
//! time and summed into one stream for the sink.
//!
//! A member is heard from when its buffer has started (its target's worth
//! arrived) until it has had nothing for [`super::jitter::MAX_CONCEAL`];
//! each member's own 10 ms are handed back too, for the application.

use std::collections::HashMap;
use std::time::Instant;

use huddle_protocol::PeerId;

use super::jitter::{AudioPacket, JitterBuffer, PlayoutStats, PULL_SAMPLES};

/// The members' playout buffers.
#[derive(Debug, Default)]
pub struct Mixer {
    members: HashMap<PeerId, JitterBuffer>,
}

/// 10 ms of the call: the sum, and each audible member's part.
#[derive(Debug)]
pub struct Mixed {
    pub sum: Vec<i16>,
    pub members: Vec<(PeerId, Vec<i16>)>,
}

impl Mixer {
    /// A packet of `member`'s audio arrived.
    pub fn insert(&mut self, member: &PeerId, packet: &AudioPacket) {
        if !self.members.contains_key(member) {
            match JitterBuffer::new() {
                Ok(buffer) => {
                    self.members.insert(member.clone(), buffer);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no Opus decoder: the member is not heard");
                    return;
                }
            }
        }
        if let Some(buffer) = self.members.get_mut(member) {
            buffer.insert(packet.at, packet.timestamp, &packet.payload);
        }
    }

    /// Forgets a member (it left).
    pub fn remove(&mut self, member: &PeerId) {
        self.members.remove(member);
    }

    /// The next 10 ms: every audible member's audio summed, saturating.
    pub fn mix(&mut self, now: Instant) -> Mixed {
        let mut sum = vec![0i32; PULL_SAMPLES];
        let mut members = Vec::new();
        for (member, buffer) in &mut self.members {
            let Some(samples) = buffer.pull(now) else {
                continue;
            };
            for (slot, sample) in sum.iter_mut().zip(&samples) {
                *slot += i32::from(*sample);
            }
            members.push((member.clone(), samples));
        }
        let sum = sum
            .into_iter()
            .map(|s| s.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
            .collect();
        Mixed { sum, members }
    }

    /// Each member's playout figures.
    pub fn stats(&self) -> impl Iterator<Item = (&PeerId, PlayoutStats)> {
        self.members
            .iter()
            .map(|(member, buffer)| (member, buffer.stats()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;
    use crate::audio::opus::OpusEncoder;
    use crate::audio::tone::{power_at, ToneSource};
    use crate::audio::FRAME_SAMPLES;

    /// Feeds `members` (id, tone) for `frames` 20 ms steps; the last mix.
    fn play(mixer: &mut Mixer, members: &[(&str, f32)], frames: u32) -> Mixed {
        let t0 = Instant::now();
        let mut sources: Vec<(PeerId, ToneSource, OpusEncoder)> = members
            .iter()
            .map(|(id, f)| {
                (
                    (*id).to_owned(),
                    ToneSource::new(*f),
                    OpusEncoder::new().unwrap(),
                )
            })
            .collect();
        let mut last = None;
        for n in 0..frames {
            let now = t0 + Duration::from_millis(20) * n;
            for (id, tone, encoder) in &mut sources {
                let packet = AudioPacket {
                    at: now,
                    timestamp: n * FRAME_SAMPLES as u32,
                    payload: encoder.encode(&tone.next_frame()).unwrap(),
                };
                mixer.insert(id, &packet);
            }
            mixer.mix(now + Duration::from_millis(5));
            last = Some(mixer.mix(now + Duration::from_millis(15)));
        }
        last.unwrap()
    }

    #[test]
    fn two_members_are_heard_together_and_each_on_its_own() {
        let mut mixer = Mixer::default();
        let mixed = play(&mut mixer, &[("a", 440.0), ("b", 1000.0)], 20);
        let (low, high) = (power_at(&mixed.sum, 440.0), power_at(&mixed.sum, 1000.0));
        assert!(high > low / 4.0 && low > high / 4.0, "both: {low} {high}");
        assert_eq!(mixed.members.len(), 2);
        let a = &mixed.members.iter().find(|(id, _)| id == "a").unwrap().1;
        assert!(power_at(a, 1000.0) < power_at(a, 440.0) / 100.0, "a alone");
        mixer.remove(&"b".to_owned());
        let alone = mixer.mix(Instant::now()).sum;
        let (low, high) = (power_at(&alone, 440.0), power_at(&alone, 1000.0));
        assert!(high < low / 100.0, "only a: {low} {high}");
    }

    #[test]
    fn a_member_is_not_heard_before_its_audio_arrives() {
        let mut mixer = Mixer::default();
        let mixed = mixer.mix(Instant::now());
        assert!(mixed.members.is_empty());
        assert!(mixed.sum.iter().all(|&s| s == 0));
    }
}
