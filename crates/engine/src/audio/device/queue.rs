//! What the speaker's callback plays from, and what it played: the
//! device-rate samples queued for it beside the same sound at 48 kHz, so
//! that what the device takes — silence where it ran dry, nothing of what
//! was dropped unplayed — comes back, when it takes it, as the echo
//! canceller's reference ([`crate::audio::AudioSink::take_played`]).

use std::collections::VecDeque;

use crate::audio::SAMPLE_RATE;

/// The most of what was played kept for the reference when nobody takes
/// it (1 s): the oldest goes first.
const MAX_PLAYED: usize = SAMPLE_RATE as usize;

/// The speaker's queue (see the module's header).
#[derive(Debug)]
pub struct PlayQueue {
    /// Mono samples at the device's rate, next to play first.
    device: VecDeque<f32>,
    /// The same sound at 48 kHz, as it was given.
    reference: VecDeque<i16>,
    /// The device's rate.
    rate: u64,
    /// 48 kHz samples owed for the device samples taken, scaled by the
    /// device's rate (the rest of a conversion, kept for the next take).
    owed: u64,
    /// What the device took, at 48 kHz, not yet asked for.
    played: Vec<i16>,
}

impl PlayQueue {
    pub fn new(rate: u32) -> PlayQueue {
        PlayQueue {
            device: VecDeque::new(),
            reference: VecDeque::new(),
            rate: u64::from(rate.max(1)),
            owed: 0,
            played: Vec::new(),
        }
    }

    /// Device samples queued.
    pub fn len(&self) -> usize {
        self.device.len()
    }

    /// Queues `device` (the device's rate) and the same sound as it was
    /// given, `reference` (48 kHz).
    pub fn push(&mut self, device: &[f32], reference: &[i16]) {
        self.device.extend(device.iter().copied());
        self.reference.extend(reference.iter().copied());
    }

    /// Drops the oldest `samples` device samples unplayed, and as much of
    /// the reference.
    pub fn drop_oldest(&mut self, samples: usize) {
        let samples = samples.min(self.device.len());
        self.device.drain(..samples);
        let at_48k = (samples as u64 * u64::from(SAMPLE_RATE) + self.rate / 2) / self.rate;
        let at_48k = usize::try_from(at_48k)
            .unwrap_or(usize::MAX)
            .min(self.reference.len());
        self.reference.drain(..at_48k);
    }

    /// The device takes `wanted` samples: `each` is handed every one, 0.0
    /// where the queue ran short; returns how many were short. The
    /// reference moves on by as long, silence where it ran short.
    pub fn take(&mut self, wanted: usize, mut each: impl FnMut(f32)) -> usize {
        let missing = wanted.saturating_sub(self.device.len());
        for _ in 0..wanted {
            each(self.device.pop_front().unwrap_or(0.0));
        }
        self.owed += wanted as u64 * u64::from(SAMPLE_RATE);
        let at_48k = self.owed / self.rate;
        self.owed -= at_48k * self.rate;
        for _ in 0..at_48k {
            self.played.push(self.reference.pop_front().unwrap_or(0));
        }
        let over = self.played.len().saturating_sub(MAX_PLAYED);
        self.played.drain(..over);
        missing
    }

    /// What the device took since the last call, at 48 kHz, appended to
    /// `out`.
    pub fn take_played(&mut self, out: &mut Vec<i16>) {
        out.append(&mut self.played);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(queue: &mut PlayQueue, wanted: usize) -> (Vec<f32>, usize) {
        let mut out = Vec::new();
        let missing = queue.take(wanted, |s| out.push(s));
        (out, missing)
    }

    fn played(queue: &mut PlayQueue) -> Vec<i16> {
        let mut out = Vec::new();
        queue.take_played(&mut out);
        out
    }

    #[test]
    fn what_the_device_took_comes_back_as_it_took_it() {
        let mut queue = PlayQueue::new(48_000);
        queue.push(&[0.5; 480], &[5; 480]);
        assert!(played(&mut queue).is_empty(), "queued is not played");
        let (out, missing) = take(&mut queue, 320);
        assert_eq!((out.len(), missing), (320, 0));
        assert_eq!(played(&mut queue), vec![5; 320]);
        // Short by 160: silence played, and silence in the reference.
        let (out, missing) = take(&mut queue, 320);
        assert_eq!(missing, 160);
        assert_eq!(&out[160..], &[0.0; 160]);
        let back = played(&mut queue);
        assert_eq!(&back[..160], &[5; 160]);
        assert_eq!(&back[160..], &[0; 160]);
        // Dropped unplayed: not in the reference either.
        queue.push(&[0.5; 480], &[1; 240]);
        queue.push(&[0.5; 480], &[2; 240]);
        queue.drop_oldest(240);
        take(&mut queue, 240);
        assert_eq!(played(&mut queue), vec![2; 240]);
    }

    #[test]
    fn at_another_rate_the_reference_follows_in_48_khz_samples() {
        let mut queue = PlayQueue::new(44_100);
        queue.push(&[0.1; 4_410], &[3; 4_800]);
        let mut back = 0;
        // Pulls of 441 at 44.1 kHz are 480 at 48 kHz; odd sizes add up.
        for wanted in [441, 441, 100, 341, 1_000, 2_087] {
            take(&mut queue, wanted);
            back += played(&mut queue).len();
        }
        assert_eq!(back, 4_800);
        queue.drop_oldest(441);
        assert!(played(&mut queue).is_empty());
    }

    #[test]
    fn what_nobody_takes_is_kept_for_a_second_at_most() {
        let mut queue = PlayQueue::new(48_000);
        for _ in 0..150 {
            queue.push(&[0.0; 480], &[1; 480]);
            take(&mut queue, 480);
        }
        assert_eq!(played(&mut queue).len(), MAX_PLAYED);
    }
}
