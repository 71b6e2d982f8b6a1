//! The far end's audio handed to the echo canceller one frame per captured
//! frame ([`Feed`]), whatever the two tasks' timing.
//!
//! AEC3 lines its reference up with the microphone by counting: each
//! captured block reads the next block of the far end's audio. When a
//! captured block finds none (the playout task came late: a busy machine),
//! AEC3 calls it a render underrun, takes a block off the delay it found
//! and starts finding it again; when underruns have let the far end's audio
//! pile up past 32 ms for a second, it flushes everything and starts over.
//! Measured with `bench-echo.mjs` beside a 720p video call on the same two
//! cores: every call began with two such runs, and each later run of three
//! blocks moved the delay 12 ms (76 → 64, 52 → 40, 36 → 24 ms), the
//! speaker's widening was followed by a flush — each time the canceller
//! lost its footing, and in double talk it regains it slowly.
//!
//! So the canceller is never left waiting: each captured frame takes the
//! next far-end frame, silence in its place if it has not come yet, and
//! that frame, when it comes, is left out. The count — which far-end frame
//! meets which captured one — then never moves, and with it the echo's
//! delay: what it costs is the late frames' sound (their echo is left to
//! the suppressor), not the canceller's footing.

use std::collections::VecDeque;

use super::processing::PROCESS_SAMPLES;

/// Far-end frames waiting before the first is handed (20 ms): the capture
/// side takes 20 ms at once and the playout 10 ms at a time, so with less
/// the second captured frame would often find its far-end frame not yet
/// come. It costs the canceller as much of its lead on the echo (measured
/// 24–84 ms before it).
const START_FRAMES: usize = 2;
/// Frames handed as silence in a row after which the far end is taken to
/// have stopped (no speaker, the call over): the count starts over with
/// its next frame.
const MOST_OWED: usize = 50;
/// Frames waiting after which the capture side is taken to have stopped
/// (no microphone): the count starts over.
const MOST_WAITING: usize = 100;

/// The far end's audio on its way to the canceller, in 10 ms frames.
#[derive(Debug, Default)]
pub struct Feed {
    waiting: VecDeque<Vec<i16>>,
    /// Whether frames are being handed (the far end has started).
    flowing: bool,
    /// Frames handed as silence whose own frames have not come yet: left
    /// out when they do.
    owed: usize,
    /// Frames handed as silence since [`Feed::take_late`] last asked.
    late: u64,
}

impl Feed {
    /// One 10 ms frame of the far end's audio.
    pub fn push(&mut self, frame: &[i16]) {
        debug_assert_eq!(frame.len(), PROCESS_SAMPLES);
        if self.owed > 0 {
            // Its place was taken by silence.
            self.owed -= 1;
            return;
        }
        if self.waiting.len() >= MOST_WAITING {
            *self = Feed {
                late: self.late,
                ..Feed::default()
            };
        }
        self.waiting.push_back(frame.to_vec());
        self.flowing |= self.waiting.len() >= START_FRAMES;
    }

    /// The far-end frame for the next captured frame; `None` while the
    /// far end has not started (nothing to cancel).
    pub fn next(&mut self) -> Option<Vec<i16>> {
        if !self.flowing {
            return None;
        }
        if let Some(frame) = self.waiting.pop_front() {
            return Some(frame);
        }
        if self.owed >= MOST_OWED {
            *self = Feed {
                late: self.late,
                ..Feed::default()
            };
            return None;
        }
        self.owed += 1;
        self.late += 1;
        Some(vec![0; PROCESS_SAMPLES])
    }

    /// Frames handed as silence since last asked.
    pub fn take_late(&mut self) -> u64 {
        std::mem::take(&mut self.late)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(value: i16) -> Vec<i16> {
        vec![value; PROCESS_SAMPLES]
    }

    #[test]
    fn a_late_frame_is_held_by_silence_and_left_out_so_the_count_stays() {
        let mut feed = Feed::default();
        assert_eq!(feed.next(), None, "nothing played yet");
        feed.push(&frame(1));
        assert_eq!(feed.next(), None, "one frame is not yet a start");
        feed.push(&frame(2));
        assert_eq!(feed.next(), Some(frame(1)));
        assert_eq!(feed.next(), Some(frame(2)));
        // Frames 3 and 4 come late: silence in their places.
        assert_eq!(feed.next(), Some(frame(0)));
        assert_eq!(feed.next(), Some(frame(0)));
        assert_eq!(feed.take_late(), 2);
        for value in 3..=6 {
            feed.push(&frame(value));
        }
        // Frame 5 meets the fifth captured frame, as if none had been late.
        assert_eq!(feed.next(), Some(frame(5)));
        assert_eq!(feed.next(), Some(frame(6)));
        assert_eq!(feed.take_late(), 0);
    }

    #[test]
    fn a_far_end_gone_quiet_for_long_starts_the_count_over() {
        let mut feed = Feed::default();
        feed.push(&frame(1));
        feed.push(&frame(2));
        for _ in 0..2 + MOST_OWED {
            assert!(feed.next().is_some());
        }
        assert_eq!(feed.next(), None, "the far end stopped");
        feed.push(&frame(7));
        feed.push(&frame(8));
        assert_eq!(feed.next(), Some(frame(7)), "its next frames start afresh");
    }

    #[test]
    fn a_microphone_gone_quiet_for_long_starts_the_count_over() {
        let mut feed = Feed::default();
        for value in 0..MOST_WAITING as i16 + 1 {
            feed.push(&frame(value));
        }
        assert_eq!(feed.waiting.len(), 1);
        assert_eq!(feed.next(), None, "one frame is not yet a start");
    }
}
