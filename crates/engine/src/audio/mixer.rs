//! Mixes call members' decoded audio into one 20 ms stream for the sink.
//!
//! Each member has a queue of decoded samples that is also its playout
//! buffer: a member starts playing once [`PREBUFFER`] has arrived (so a late
//! packet does not cut the sound at once), and a queue longer than
//! [`MAX_QUEUED`] drops its oldest samples (so a burst after a stall does
//! not leave the member delayed for the rest of the call). A member whose
//! queue runs dry is silent and prebuffers again. Loss itself is concealed
//! before the mixer, by the Opus decoder.

use std::collections::{HashMap, VecDeque};

use super::FRAME_SAMPLES;

/// What a member's queue holds before it starts playing: 40 ms.
pub const PREBUFFER: usize = 2 * FRAME_SAMPLES;
/// The most a member's queue holds: 200 ms.
pub const MAX_QUEUED: usize = 10 * FRAME_SAMPLES;

#[derive(Debug, Default)]
struct Queue {
    samples: VecDeque<i16>,
    playing: bool,
}

/// The members' playout queues.
#[derive(Debug, Default)]
pub struct Mixer {
    queues: HashMap<String, Queue>,
    /// Samples dropped because a queue overflowed (latency held down).
    pub dropped: u64,
}

impl Mixer {
    /// Adds decoded audio of `member`.
    pub fn push(&mut self, member: &str, samples: &[i16]) {
        let queue = self.queues.entry(member.to_owned()).or_default();
        queue.samples.extend(samples);
        let excess = queue.samples.len().saturating_sub(MAX_QUEUED);
        if excess > 0 {
            queue.samples.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    /// Forgets a member (it left).
    pub fn remove(&mut self, member: &str) {
        self.queues.remove(member);
    }

    /// The next 20 ms: every playing member's samples summed, saturating.
    pub fn mix(&mut self) -> Vec<i16> {
        let mut sum = vec![0i32; FRAME_SAMPLES];
        for queue in self.queues.values_mut() {
            if !queue.playing && queue.samples.len() >= PREBUFFER {
                queue.playing = true;
            }
            if !queue.playing {
                continue;
            }
            let take = queue.samples.len().min(FRAME_SAMPLES);
            for (slot, sample) in sum.iter_mut().zip(queue.samples.drain(..take)) {
                *slot += i32::from(sample);
            }
            if queue.samples.is_empty() {
                queue.playing = false;
            }
        }
        sum.into_iter()
            .map(|s| s.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tone::{power_at, ToneSource};

    #[test]
    fn two_members_are_heard_together_once_buffered() {
        let (mut a, mut b) = (ToneSource::new(440.0), ToneSource::new(1000.0));
        let mut mixer = Mixer::default();
        mixer.push("a", &a.next_frame());
        mixer.push("b", &b.next_frame());
        assert!(mixer.mix().iter().all(|&s| s == 0), "prebuffering");
        mixer.push("a", &a.next_frame());
        mixer.push("b", &b.next_frame());
        let mixed = mixer.mix();
        let (low, high) = (power_at(&mixed, 440.0), power_at(&mixed, 1000.0));
        assert!(high > low / 4.0 && low > high / 4.0, "both: {low} {high}");
        mixer.remove("b");
        let alone = mixer.mix();
        let (low, high) = (power_at(&alone, 440.0), power_at(&alone, 1000.0));
        assert!(high < low / 100.0, "only a: {low} {high}");
    }

    #[test]
    fn a_long_queue_drops_its_oldest_samples() {
        let mut mixer = Mixer::default();
        for n in 0..15i16 {
            mixer.push("a", &[n; FRAME_SAMPLES]);
        }
        assert_eq!(mixer.dropped, 5 * FRAME_SAMPLES as u64);
        assert_eq!(mixer.mix()[0], 5, "the newest 200 ms are kept");
    }

    #[test]
    fn loud_members_saturate_rather_than_wrap() {
        let mut mixer = Mixer::default();
        for member in ["a", "b"] {
            mixer.push(member, &[30_000; PREBUFFER]);
        }
        assert!(mixer.mix().iter().all(|&s| s == i16::MAX));
    }
}
