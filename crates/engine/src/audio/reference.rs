//! The echo canceller's render reference kept in step with what the
//! speaker really played ([`Reference`]): the speaker's slips
//! (`AudioSink::take_slip`) made again on the far end's audio before the
//! canceller gets it.

use super::processing::PROCESS_SAMPLES;

/// The most a slip moves the reference at once (1 s): a device that
/// stalled longer has the canceller start over anyway.
const MAX_SLIP: usize = 48_000;

/// The render side kept in step with what the speaker really played: a
/// speaker that ran dry played silence the render side never had, and one
/// that dropped what it was given did not play what it had — either moves
/// the echo against its reference by as much, and AEC3, which models one
/// delay, may then find it anew and start its filter over (under a video
/// call's load on two cores the speaker's queue ran dry 2–8 times a call;
/// idle, not at all). So the same slip is made here: silence added, or the
/// next samples left out, before the frames go on. The slip lands ahead of
/// where the speaker made it by what the speaker has queued (~20 ms), so
/// for that long the two are misaligned — less than the canceller's own
/// filter spans — and then in step again.
#[derive(Debug, Default)]
pub struct Reference {
    /// Samples not yet a whole 10 ms frame (empty while nothing slipped).
    pending: Vec<i16>,
    /// Samples still to be left out.
    skip: usize,
}

impl Reference {
    pub fn slip(&mut self, samples: i64) {
        let n = usize::try_from(samples.unsigned_abs())
            .unwrap_or(MAX_SLIP)
            .min(MAX_SLIP);
        if samples > 0 {
            let cancelled = n.min(self.skip);
            self.skip -= cancelled;
            self.pending.resize(self.pending.len() + n - cancelled, 0);
        } else {
            let dropped = n.min(self.pending.len());
            self.pending.truncate(self.pending.len() - dropped);
            self.skip += n - dropped;
        }
    }

    /// `samples` with the slips made: whole frames, or `None` for
    /// `samples` as they are (nothing slipped).
    pub fn shift(&mut self, samples: &[i16]) -> Option<Vec<i16>> {
        if self.pending.is_empty() && self.skip == 0 && samples.len() % PROCESS_SAMPLES == 0 {
            return None;
        }
        let left_out = self.skip.min(samples.len());
        self.skip -= left_out;
        self.pending.extend_from_slice(&samples[left_out..]);
        let whole = self.pending.len() / PROCESS_SAMPLES * PROCESS_SAMPLES;
        Some(self.pending.drain(..whole).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_slips_as_the_speaker_did_and_keeps_whole_frames() {
        let mut reference = Reference::default();
        let frame = vec![7i16; PROCESS_SAMPLES];
        assert_eq!(reference.shift(&frame), None, "nothing slipped: as given");
        // The speaker played 160 samples of silence it was not given.
        reference.slip(160);
        let out = reference.shift(&frame).expect("slipped: shifted");
        assert_eq!(out.len(), PROCESS_SAMPLES);
        assert!(out[..160].iter().all(|&s| s == 0));
        assert!(out[160..].iter().all(|&s| s == 7));
        // It dropped 100 unplayed: 60 of the 160 held back are left.
        reference.slip(-100);
        let out = reference.shift(&frame).expect("slipped: shifted");
        assert_eq!(out.len(), 480);
        assert_eq!(reference.pending.len(), 60);
        // More dropped than held back: the next samples are left out.
        reference.slip(-100);
        assert_eq!((reference.pending.len(), reference.skip), (0, 40));
        let out = reference.shift(&frame).expect("slipped: shifted");
        assert!(out.is_empty(), "440 are not a whole frame");
        assert_eq!(reference.pending.len(), 440);
        // A stall of a minute slips one second at most.
        reference.slip(60 * 48_000);
        assert_eq!(reference.pending.len(), 440 + MAX_SLIP);
    }
}
