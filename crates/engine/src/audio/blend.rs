//! A second sound sent with the microphone's: a shared screen's sound
//! ([`super::SystemSound`]), added to each processed microphone frame.
//!
//! It is added *after* the processing, so that the noise suppressor does
//! not take music for noise, the gain control does not pump it, and voice
//! activity stays the talker's. The two arrive on different clocks (the
//! output device's and the microphone's), so frames wait in a short queue:
//! mixing starts once [`PRIME`] frames wait (40 ms, the capture's jitter),
//! a queue grown past [`MOST`] loses its oldest frame (a faster source:
//! 20 ms lost every ~60 s at a 0.1 % mismatch), and an empty one pauses the
//! sound until it is primed again (a slower source, or nothing playing,
//! when a loopback may deliver nothing).

use std::collections::VecDeque;

/// Frames waiting before the sound starts (again).
pub const PRIME: usize = 2;
/// The most frames that may wait (100 ms).
pub const MOST: usize = 5;

/// The queue of a second sound's frames.
#[derive(Debug, Default)]
pub struct Blend {
    waiting: VecDeque<Vec<i16>>,
    playing: bool,
    /// Frames lost to a full queue, and pauses for an empty one.
    pub dropped: u64,
    pub paused: u64,
}

impl Blend {
    /// A frame of the second sound arrived.
    pub fn push(&mut self, frame: Vec<i16>) {
        self.waiting.push_back(frame);
        while self.waiting.len() > MOST {
            self.waiting.pop_front();
            self.dropped += 1;
        }
    }

    /// Adds the next waiting frame to `frame` (saturating); whether any
    /// sound was added.
    pub fn add_into(&mut self, frame: &mut [i16]) -> bool {
        if !self.playing && self.waiting.len() < PRIME {
            return false;
        }
        let Some(sound) = self.waiting.pop_front() else {
            self.playing = false;
            self.paused += 1;
            return false;
        };
        self.playing = true;
        for (out, s) in frame.iter_mut().zip(sound) {
            *out = out.saturating_add(s);
        }
        true
    }

    /// Whether nothing waits and nothing plays: [`Blend::add_into`] would
    /// change nothing.
    pub fn idle(&self) -> bool {
        self.waiting.is_empty() && !self.playing
    }

    /// Forgets what waits (the sound was stopped or replaced).
    pub fn clear(&mut self) {
        self.waiting.clear();
        self.playing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sound_starts_once_primed_and_is_added_in_order() {
        let mut blend = Blend::default();
        let mut mic = vec![100i16; 4];
        blend.push(vec![1; 4]);
        assert!(
            !blend.add_into(&mut mic),
            "one frame is not enough to start"
        );
        assert_eq!(mic, [100; 4]);
        blend.push(vec![2; 4]);
        assert!(blend.add_into(&mut mic));
        assert_eq!(mic, [101; 4]);
        // Playing: a single waiting frame is used.
        let mut next = vec![0i16; 4];
        assert!(blend.add_into(&mut next));
        assert_eq!(next, [2; 4]);
        // Empty: a pause, then primed again before it goes on.
        assert!(!blend.add_into(&mut next));
        assert_eq!(blend.paused, 1);
        blend.push(vec![3; 4]);
        assert!(!blend.add_into(&mut next));
    }

    #[test]
    fn a_faster_source_loses_its_oldest_frames_and_loud_sums_saturate() {
        let mut blend = Blend::default();
        for i in 0..(MOST as i16 + 3) {
            blend.push(vec![i; 2]);
        }
        assert_eq!(blend.dropped, 3);
        let mut frame = vec![i16::MAX - 1; 2];
        assert!(blend.add_into(&mut frame));
        assert_eq!(frame, [i16::MAX; 2]);
        let mut quiet = vec![0i16; 2];
        assert!(blend.add_into(&mut quiet));
        assert_eq!(quiet, [4; 2], "the oldest three were dropped");
        blend.clear();
        assert!(blend.idle());
        assert!(!blend.add_into(&mut quiet));
    }
}
