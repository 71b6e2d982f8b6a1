//! Clock drift between the speaker and the microphone, taken out of the
//! echo canceller's reference. Two devices (a USB headset's microphone and
//! the laptop's speaker; two USB devices) run on two clocks: at 0.1 %
//! apart the microphone delivers 48 048 samples while the speaker plays
//! 48 000, the echo's delay creeps by a millisecond a second, and the
//! canceller's queue of far-end audio runs over or dry. Measured with the
//! audio bench (10 minutes, AEC3 alone): a microphone 0.1 % slow left 76
//! seconds where less than 25 dB of echo came off, against 10 on one clock.
//!
//! No clock is needed to see the drift: both streams arrive in real time,
//! so the ratio of samples captured to samples played since a starting
//! point *is* the ratio of the two devices' rates. [`Drift`] counts both
//! and resamples the far end's audio by that ratio before the canceller
//! gets it, so that both of its inputs run on the microphone's clock. The
//! count is off by at most a device's burst ([`BURST`]) at either end, so
//! the ratio is trusted once the drift it reads is twice that error (80 s
//! into a call at 0.1 %), and grows more exact as the count runs on. It is
//! judged once a second: a ratio that moved more than its error since the
//! last judgement is no drift but a stream that stalled or restarted, and
//! the count starts over (the ratio in use is kept). A plain state
//! machine: sample counts in, resampled frames out.

use super::processing::PROCESS_SAMPLES;
use super::resample::Resampler;
use super::SAMPLE_RATE;

/// The largest lump a device hands over or asks for at once (a
/// PulseAudio or WASAPI period; the playout pulls 10 ms): what one count
/// can be off by at any moment.
pub const BURST: f64 = 0.04;
/// Counting starts this long after the streams start (the devices' first
/// buffers fill unevenly).
pub const SETTLE_S: f64 = 5.0;
/// Rates further apart than this are no clock drift (real crystals are
/// within ±0.01 %–0.1 %): one stream stalled, and the count starts over.
pub const MAX_DRIFT: f64 = 0.005;

/// The drift between what is played (render) and what is captured.
#[derive(Debug)]
pub struct Drift {
    rendered: u64,
    captured: u64,
    /// The counts where the current measurement began.
    from: Option<(u64, u64)>,
    /// The render count at the last judgement (made once a second).
    judged: u64,
    /// The ratio measured at the last judgement.
    last: Option<f64>,
    /// Render samples per capture sample in use (1: none taken out yet).
    ratio: f64,
    resampler: Resampler,
    /// Resampled render audio not yet a whole 10 ms frame.
    pending: Vec<i16>,
    /// The resampler's input and output, kept between calls.
    input: Vec<f32>,
    output: Vec<f32>,
}

impl Default for Drift {
    fn default() -> Self {
        Drift {
            rendered: 0,
            captured: 0,
            from: None,
            judged: 0,
            last: None,
            ratio: 1.0,
            resampler: Resampler::new(SAMPLE_RATE, SAMPLE_RATE),
            pending: Vec::new(),
            input: Vec::new(),
            output: Vec::new(),
        }
    }
}

impl Drift {
    /// `samples` captured by the microphone.
    pub fn captured(&mut self, samples: usize) {
        self.captured += samples as u64;
    }

    /// Render samples per capture sample now taken out (1.0: none).
    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// The far end's audio about to be played, `samples`; returns it on the
    /// microphone's clock, as whole 10 ms frames (a frame more or fewer now
    /// and then than went in).
    pub fn render(&mut self, samples: &[i16]) -> Vec<i16> {
        self.rendered += samples.len() as u64;
        self.measure();
        self.resampler.set_step(self.ratio);
        self.input.clear();
        self.input.extend(samples.iter().map(|&s| f32::from(s)));
        self.output.clear();
        self.resampler.process(&self.input, &mut self.output);
        self.pending.extend(
            self.output
                .iter()
                .map(|&s| s.round().clamp(-32_768.0, 32_767.0) as i16),
        );
        let whole = self.pending.len() / PROCESS_SAMPLES * PROCESS_SAMPLES;
        self.pending.drain(..whole).collect()
    }

    fn measure(&mut self) {
        let settle = (SETTLE_S * f64::from(SAMPLE_RATE)) as u64;
        let Some((r0, c0)) = self.from else {
            if self.rendered >= settle && self.captured >= settle {
                self.start_over();
            }
            return;
        };
        if self.rendered < self.judged + u64::from(SAMPLE_RATE) {
            return;
        }
        self.judged = self.rendered;
        let (rendered, captured) = (
            (self.rendered - r0) as f64,
            (self.captured.saturating_sub(c0)) as f64,
        );
        if captured <= 0.0 {
            return self.start_over();
        }
        let measured = rendered / captured;
        // How far off the ratio can be: a burst on either count.
        let error = BURST * f64::from(SAMPLE_RATE) / captured;
        let last = self.last.replace(measured);
        // Drift moves the count's ratio by less than its error in a
        // second; a stream that stalled or restarted, by more.
        let steady = last.is_none_or(|l| (measured - l).abs() <= 2.0 * error);
        if !steady || (measured - 1.0).abs() > MAX_DRIFT + error {
            return self.start_over();
        }
        if last.is_some() && (measured - 1.0).abs() >= 2.0 * error {
            self.ratio = measured;
        }
    }

    /// Measures again from here, keeping the ratio in use.
    fn start_over(&mut self) {
        self.from = Some((self.rendered, self.captured));
        self.judged = self.rendered;
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays and captures `seconds` with the microphone at `mic_hz` by the
    /// speaker's clock, in 10 ms pieces as each is due; returns the render
    /// frames out against the capture samples in.
    fn run(drift: &mut Drift, seconds: f64, mic_hz: f64) -> (usize, u64) {
        let (mut played, mut captured, mut out) = (0u64, 0u64, 0usize);
        let frame = vec![1000i16; PROCESS_SAMPLES];
        while (played as f64) < seconds * 100.0 {
            let play_due = played as f64 / 100.0;
            let capture_due = captured as f64 * PROCESS_SAMPLES as f64 / mic_hz;
            if play_due <= capture_due {
                out += drift.render(&frame).len();
                played += 1;
            } else {
                drift.captured(PROCESS_SAMPLES);
                captured += 1;
            }
        }
        (out, captured * PROCESS_SAMPLES as u64)
    }

    /// Two minutes with the microphone at `mic_hz`: by then the drift is
    /// measured to within 0.01 %.
    fn measured(mic_hz: f64) -> Drift {
        let mut drift = Drift::default();
        run(&mut drift, 120.0, mic_hz);
        let want = f64::from(SAMPLE_RATE) / mic_hz;
        assert!((drift.ratio() - want).abs() < 1e-4, "{}", drift.ratio());
        drift
    }

    #[test]
    fn a_slow_microphone_gets_fewer_render_samples_to_match() {
        let mut drift = measured(47_952.0);
        // From now on, render and capture keep step: over ten minutes the
        // canceller's two inputs differ by less than a frame or two, where
        // without the drift taken out they would by 600 ms.
        let (out, captured) = run(&mut drift, 600.0, 47_952.0);
        let apart = out as i64 - captured as i64;
        assert!(apart.abs() <= 2 * PROCESS_SAMPLES as i64, "{apart}");
    }

    #[test]
    fn a_fast_microphone_gets_more() {
        measured(48_048.0);
    }

    #[test]
    fn one_clock_is_left_alone() {
        let mut drift = Drift::default();
        let (out, captured) = run(&mut drift, 120.0, 48_000.0);
        assert_eq!(drift.ratio(), 1.0);
        assert!((out as i64 - captured as i64).abs() <= PROCESS_SAMPLES as i64);
    }

    #[test]
    fn a_stalled_stream_starts_the_count_over() {
        let mut drift = Drift::default();
        run(&mut drift, 30.0, 48_000.0);
        // The microphone delivers nothing for two seconds (a device
        // restarting): no drift of 7 % is believed.
        for _ in 0..200 {
            drift.render(&[0; PROCESS_SAMPLES]);
        }
        run(&mut drift, 30.0, 48_000.0);
        assert_eq!(drift.ratio(), 1.0);
    }
}
