//! A sine-tone source, and finding the dominant frequency of what arrives.

use super::{FRAME_SAMPLES, SAMPLE_RATE};

/// An endless sine tone, 20 ms at a time.
#[derive(Debug, Clone)]
pub struct ToneSource {
    frequency: f32,
    amplitude: f32,
    phase: f32,
}

impl ToneSource {
    /// A tone at `frequency` Hz, at a quarter of full scale.
    pub fn new(frequency: f32) -> ToneSource {
        ToneSource {
            frequency,
            amplitude: 0.25 * f32::from(i16::MAX),
            phase: 0.0,
        }
    }

    /// The next 20 ms.
    pub fn next_frame(&mut self) -> Vec<i16> {
        let step = std::f32::consts::TAU * self.frequency / SAMPLE_RATE as f32;
        (0..FRAME_SAMPLES)
            .map(|_| {
                let sample = (self.phase.sin() * self.amplitude) as i16;
                self.phase = (self.phase + step) % std::f32::consts::TAU;
                sample
            })
            .collect()
    }
}

/// Power of `samples` at `frequency` (Goertzel), normalised by length.
pub fn power_at(samples: &[i16], frequency: f32) -> f32 {
    let w = std::f32::consts::TAU * frequency / SAMPLE_RATE as f32;
    let coefficient = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in samples {
        let s0 = f32::from(x) + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
    power / (samples.len().max(1) as f32).powi(2)
}

/// The strongest frequency between 100 Hz and 4 kHz in 10 Hz steps, if the
/// signal is more than silence.
pub fn dominant_frequency(samples: &[i16]) -> Option<f32> {
    let (best, power) = (10..=400)
        .map(|step| step as f32 * 10.0)
        .map(|f| (f, power_at(samples, f)))
        .fold((0.0, 0.0), |a, b| if b.1 > a.1 { b } else { a });
    // A quarter-scale tone gives ~1e6; silence and codec noise far less.
    (power > 1e4).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_tone_it_made_and_nothing_in_silence() {
        let mut tone = ToneSource::new(440.0);
        let samples: Vec<i16> = (0..5).flat_map(|_| tone.next_frame()).collect();
        assert_eq!(dominant_frequency(&samples), Some(440.0));
        assert_eq!(dominant_frequency(&vec![0; 4800]), None);
    }
}
