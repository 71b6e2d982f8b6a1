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
//! that frame, when it comes, is left out if the one after it is there by
//! the next captured frame (the far end caught up). The count — which
//! far-end frame meets which captured one — then does not move, and with
//! it the echo's delay: what a late frame costs is its sound (its echo is
//! left to the suppressor), not the canceller's footing. A late frame with
//! none after it is handed after all: the far end now comes later than the
//! count (a microphone clock faster than the speaker's, until
//! [`super::drift`] has measured it), and the count moves by the silence
//! handed — as AEC3 itself moved by a block; leaving it out would have
//! had every captured frame after it find none. Frames that keep coming late
//! (a speaker taking 40 ms at once, a count begun while the microphone was
//! behind) start the count over, once, a frame further back; frames that
//! keep running further ahead of the microphone than they began (its clock
//! slower than the speaker's, until [`super::drift`] has measured it) are
//! left out — the two moves AEC3 made itself, with its reset, before.

use std::collections::VecDeque;

use super::processing::PROCESS_SAMPLES;

/// Far-end frames waiting before the first is handed, to begin with: the
/// fewer, the more of its lead on the echo the canceller keeps (each frame
/// held back is 10 ms less of it; measured 4–84 ms from call to call).
const FIRST_HEADROOM: usize = 1;
/// The most frames held back: a speaker that takes 40 ms at once hands
/// the playout four frames at a time.
const MOST_HEADROOM: usize = 4;
/// Captured frames in which late far-end frames are counted.
const WINDOW: u32 = 100;
/// Late frames in a window from which their lateness is taken to be the
/// far end's way of coming (a speaker with long periods, a microphone that
/// caught up after a backlog) rather than a passing hitch: the count
/// starts over, holding back one frame more — the one move of the echo
/// under the canceller this makes, against silence in the reference every
/// few frames for the rest of the call.
const TOO_LATE: u32 = 5;
/// How much further ahead of the microphone than it began (frames, 30 ms)
/// the far end's audio must run, all through a window, to be taken as the
/// microphone's clock running slower than the speaker's (before
/// [`super::drift`] has measured it: 80 s at 0.1 %): so many frames are left
/// out, or the echo would come ever sooner against its reference, past
/// where the canceller can follow. AEC3 flushes itself at 32 ms.
const MOST_AHEAD: i64 = 3;
/// Frames handed as silence in a row after which the far end is taken to
/// have stopped (no speaker, the call over): the count starts over with
/// its next frame.
const MOST_OWED: usize = 50;
/// Frames waiting after which the capture side is taken to have stopped
/// (no microphone): the count starts over.
const MOST_WAITING: usize = 100;

/// Where the count stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No far end (yet, or any more): nothing handed, nothing to cancel.
    Idle,
    /// Started over mid-call: silence handed until the headroom waits.
    Filling,
    /// A frame handed for each captured frame.
    Flowing,
}

/// The far end's audio on its way to the canceller, in 10 ms frames.
#[derive(Debug)]
pub struct Feed {
    waiting: VecDeque<Vec<i16>>,
    state: State,
    /// Frames waiting before the count starts.
    headroom: usize,
    /// Frames handed as silence whose own frames have not come yet.
    owed: usize,
    /// Of those, frames come since, at the front of `waiting`: left out if
    /// a frame after them is there by the next take (the far end caught
    /// up), handed if not (it comes later than the count: the count moves).
    stale: usize,
    /// Frames handed, and of them late, in the current window.
    handed: u32,
    late: u32,
    /// What the speaker holds, given and not yet played (48 kHz samples).
    queued: usize,
    /// The least, in this window, of how far the far end's audio ran ahead
    /// of the microphone (samples waiting here less the speaker's queue:
    /// how many more the speaker's device took than were captured).
    ahead_low: i64,
    /// That least in the count's first window: where it began.
    ahead_from: Option<i64>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            waiting: VecDeque::new(),
            state: State::Idle,
            headroom: FIRST_HEADROOM,
            owed: 0,
            stale: 0,
            handed: 0,
            late: 0,
            queued: 0,
            ahead_low: i64::MAX,
            ahead_from: None,
        }
    }
}

impl Feed {
    /// One 10 ms frame of the far end's audio.
    pub fn push(&mut self, frame: &[i16]) {
        debug_assert_eq!(frame.len(), PROCESS_SAMPLES);
        if self.waiting.len() >= MOST_WAITING {
            tracing::debug!("no microphone for a second: the canceller's count starts over");
            self.waiting.clear();
            self.stop();
        }
        if self.owed > 0 {
            // Its place was taken by silence.
            self.owed -= 1;
            self.stale += 1;
        }
        self.waiting.push_back(frame.to_vec());
        if self.waiting.len() >= self.headroom {
            self.state = State::Flowing;
        }
    }

    /// What the speaker holds, given and not yet played (48 kHz samples).
    pub fn set_queued(&mut self, samples: usize) {
        self.queued = samples;
    }

    /// The far-end frame for the next captured frame; `None` while the
    /// far end has not started (nothing to cancel).
    pub fn take(&mut self) -> Option<Vec<i16>> {
        match self.state {
            State::Idle => return None,
            State::Filling => return Some(vec![0; PROCESS_SAMPLES]),
            State::Flowing => {}
        }
        self.handed += 1;
        self.settle_stale();
        let ahead = (self.waiting.len() * PROCESS_SAMPLES) as i64 - self.queued as i64;
        self.ahead_low = self.ahead_low.min(ahead);
        let frame = match self.waiting.pop_front() {
            Some(frame) => frame,
            None if self.owed >= MOST_OWED => {
                tracing::debug!("no far end for half a second: the canceller's count starts over");
                self.stop();
                return None;
            }
            None => {
                self.owed += 1;
                self.late += 1;
                vec![0; PROCESS_SAMPLES]
            }
        };
        if self.handed >= WINDOW {
            self.judge();
        }
        Some(frame)
    }

    /// Late frames come since they were handed as silence: left out if a
    /// frame after them is here, handed if not.
    fn settle_stale(&mut self) {
        if self.stale == 0 {
            return;
        }
        if self.waiting.len() > self.stale {
            // A frame after them is here: the far end caught up, and the
            // count stays where it was.
            self.waiting.drain(..self.stale);
        } else {
            // Nothing after them: the far end comes later than the count (a
            // microphone clock faster than the speaker's, a step) — handed,
            // the count moves by the silence handed.
            tracing::debug!(
                frames = self.stale + self.owed,
                "far-end audio came later than the canceller's count: the count moves"
            );
            self.owed = 0;
        }
        self.stale = 0;
    }

    /// Once a window: far-end frames that kept coming late start the count
    /// over further back; ones that kept running further ahead are left out.
    fn judge(&mut self) {
        let ahead_low = std::mem::replace(&mut self.ahead_low, i64::MAX);
        let (late, begun) = (self.late, self.ahead_from.is_some());
        (self.handed, self.late) = (0, 0);
        tracing::trace!(
            late,
            ahead_low,
            waiting = self.waiting.len(),
            queued = self.queued,
            headroom = self.headroom,
            "the canceller's count, this window"
        );
        if late >= WINDOW * 9 / 10 {
            // (Nearly) all of them: the far end comes that much later for good (a
            // device that stopped for a moment, a count begun while the
            // microphone was behind).
            tracing::debug!(
                late,
                "far-end audio came late for good: the canceller's count starts over"
            );
            self.start_over();
        } else if late >= TOO_LATE && self.headroom < MOST_HEADROOM {
            // Some of them: it comes in lumps.
            self.headroom += 1;
            tracing::debug!(
                late,
                headroom = self.headroom,
                "far-end audio kept coming late for the canceller: its count starts over"
            );
            self.start_over();
        } else if late > 0 {
            tracing::debug!(
                late,
                "far-end audio late for the canceller: silence in its place"
            );
        } else if !begun {
            self.ahead_from = Some(ahead_low);
        } else if let Some(from) = self.ahead_from {
            let over = (ahead_low - from) / PROCESS_SAMPLES as i64;
            if over >= MOST_AHEAD {
                let left_out = (over as usize).min(self.waiting.len());
                self.waiting.drain(..left_out);
                tracing::debug!(
                    frames = left_out,
                    "far-end audio ran ahead of the microphone: frames left out"
                );
            }
        }
    }

    /// The count starts again once the headroom waits (those waiting are
    /// kept, the ones owed are not left out), silence handed till then.
    fn start_over(&mut self) {
        self.forget_count();
        if self.waiting.len() < self.headroom {
            self.state = State::Filling;
        }
    }

    /// No far end, or no microphone: nothing handed until frames come again.
    fn stop(&mut self) {
        self.forget_count();
        self.state = State::Idle;
    }

    /// What the count knew of late frames and of where it began.
    fn forget_count(&mut self) {
        (self.owed, self.stale) = (0, 0);
        self.ahead_from = None;
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
        assert_eq!(feed.take(), None, "nothing played yet");
        feed.push(&frame(1));
        assert_eq!(feed.take(), Some(frame(1)));
        // Frames 2 and 3 come late: silence in their places.
        assert_eq!(feed.take(), Some(frame(0)));
        assert_eq!(feed.take(), Some(frame(0)));
        for value in 2..=5 {
            feed.push(&frame(value));
        }
        // Frame 4 meets the fourth captured frame, as if none had been late.
        assert_eq!(feed.take(), Some(frame(4)));
        assert_eq!(feed.take(), Some(frame(5)));
    }

    #[test]
    fn frames_late_again_and_again_start_the_count_over_further_back() {
        let mut feed = Feed::default();
        // The far end's frames come one before, one after the captured
        // frames that want them (20 ms at once): every other one is late.
        let mut value = 0;
        let mut silent = Vec::new();
        for _ in 0..100 {
            value += 1;
            feed.push(&frame(value));
            let handed = [feed.take(), feed.take()];
            assert!(handed.iter().all(Option::is_some));
            silent.push(handed.iter().filter(|f| **f == Some(frame(0))).count());
            value += 1;
            feed.push(&frame(value));
        }
        assert!(silent[..50].iter().all(|&n| n == 1), "{silent:?}");
        assert_eq!(feed.headroom, 2, "one frame more held back");
        assert!(silent[51..].iter().all(|&n| n == 0), "{silent:?}");
    }

    #[test]
    fn a_far_end_running_ever_further_ahead_has_frames_left_out() {
        let mut feed = Feed::default();
        let mut value = 0;
        let mut silent = 0;
        for round in 0..1_000 {
            // The speaker's device takes a tenth more than is captured.
            for _ in 0..1 + usize::from(round % 10 == 9) {
                value += 1;
                feed.push(&frame(value));
            }
            silent += usize::from(feed.take() == Some(frame(0)));
        }
        assert_eq!(silent, 0);
        assert!(
            feed.waiting.len() <= 1 + 10 + 3,
            "{} waiting",
            feed.waiting.len()
        );
    }

    #[test]
    fn a_far_end_falling_ever_further_behind_is_waited_for_not_silenced() {
        let mut feed = Feed::default();
        let (mut value, mut silent, mut kept_back) = (0, 0, 0);
        for round in 0..1_000 {
            // The microphone captures a tenth more than the speaker's
            // device takes: every tenth captured frame has no far end.
            if round % 10 != 9 {
                value += 1;
                feed.push(&frame(value));
            }
            let handed = feed.take().expect("flowing");
            if handed == frame(0) {
                silent += 1;
            } else {
                kept_back = value - handed[0];
            }
        }
        // A frame of silence for each one the microphone gained, no more —
        // not silence from then on until the count starts over.
        assert!(silent <= 100 + MOST_HEADROOM, "{silent} frames of silence");
        assert!(
            kept_back <= MOST_HEADROOM as i16,
            "{kept_back} frames behind"
        );
    }

    #[test]
    fn what_the_speaker_queues_is_not_running_ahead() {
        let mut feed = Feed::default();
        let mut value = 0;
        for round in 0..1_000 {
            value += 1;
            feed.push(&frame(value));
            if round == 300 {
                // The speaker keeps 50 ms more from now on: five frames
                // come at once, and wait there as here.
                for _ in 0..5 {
                    value += 1;
                    feed.push(&frame(value));
                }
                feed.set_queued(5 * PROCESS_SAMPLES);
            }
            let handed = feed.take().expect("flowing");
            assert_eq!(handed, frame(value - if round >= 300 { 5 } else { 0 }));
        }
    }

    #[test]
    fn a_far_end_gone_quiet_for_long_starts_the_count_over() {
        let mut feed = Feed::default();
        feed.push(&frame(1));
        for _ in 0..1 + MOST_OWED {
            assert!(feed.take().is_some());
        }
        assert_eq!(feed.take(), None, "the far end stopped");
        feed.push(&frame(7));
        assert_eq!(feed.take(), Some(frame(7)), "its next frames start afresh");
    }

    #[test]
    fn a_microphone_gone_quiet_for_long_starts_the_count_over() {
        let mut feed = Feed::default();
        for value in 0..MOST_WAITING as i16 + 1 {
            feed.push(&frame(value));
        }
        assert_eq!(feed.waiting.len(), 1);
        assert_eq!(feed.take(), Some(frame(MOST_WAITING as i16)));
    }
}
