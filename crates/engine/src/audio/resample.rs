//! Sample-rate conversion between a device's rate and the call's 48 kHz,
//! by linear interpolation: cheap, no added delay, and good enough for
//! speech (a band-limited resampler would be the step up for music).

/// A streaming converter from one rate to another, mono.
#[derive(Debug, Clone)]
pub struct Resampler {
    /// Input samples per output sample.
    step: f64,
    /// Where the next output falls, in input samples from `previous`.
    position: f64,
    previous: f32,
}

impl Resampler {
    pub fn new(from_hz: u32, to_hz: u32) -> Resampler {
        Resampler {
            step: f64::from(from_hz.max(1)) / f64::from(to_hz.max(1)),
            position: 0.0,
            previous: 0.0,
        }
    }

    /// From now on, `input_per_output` input samples per output sample (a
    /// ratio that moves, as a clock's drift is measured).
    pub fn set_step(&mut self, input_per_output: f64) {
        self.step = input_per_output;
    }

    /// Converts the next piece of input (continuing where the last ended).
    pub fn process(&mut self, input: &[f32], output: &mut Vec<f32>) {
        if (self.step - 1.0).abs() < f64::EPSILON {
            output.extend_from_slice(input);
            if let Some(&last) = input.last() {
                self.previous = last;
            }
            return;
        }
        // Position 0 is `previous`, position i + 1 is `input[i]`.
        let at = |i: usize| if i == 0 { self.previous } else { input[i - 1] };
        while self.position < input.len() as f64 {
            let index = self.position.floor() as usize;
            let fraction = (self.position - index as f64) as f32;
            let (a, b) = (at(index), at(index + 1));
            output.push(a + (b - a) * fraction);
            self.position += self.step;
        }
        self.position -= input.len() as f64;
        if let Some(&last) = input.last() {
            self.previous = last;
        }
    }
}

/// Averages interleaved channels down to mono.
pub fn to_mono(interleaved: &[f32], channels: usize, output: &mut Vec<f32>) {
    let channels = channels.max(1);
    output.extend(
        interleaved
            .chunks_exact(channels)
            .map(|frame| frame.iter().sum::<f32>() / channels as f32),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tone::{dominant_frequency, ToneSource};

    #[test]
    fn a_tone_keeps_its_pitch_and_the_length_follows_the_ratio() {
        // 1 s of a 48 kHz tone, in 20 ms pieces, to 44.1 kHz and back.
        let mut tone = ToneSource::new(440.0);
        let input: Vec<f32> = (0..50)
            .flat_map(|_| tone.next_frame())
            .map(|s| f32::from(s) / 32768.0)
            .collect();
        let (mut down, mut up) = (
            Resampler::new(48_000, 44_100),
            Resampler::new(44_100, 48_000),
        );
        let mut at_44 = Vec::new();
        input.chunks(960).for_each(|c| down.process(c, &mut at_44));
        assert!((at_44.len() as i64 - 44_100).abs() <= 2, "{}", at_44.len());
        let mut back = Vec::new();
        at_44.chunks(441).for_each(|c| up.process(c, &mut back));
        assert!((back.len() as i64 - 48_000).abs() <= 2, "{}", back.len());
        let samples: Vec<i16> = back.iter().map(|s| (s * 32767.0) as i16).collect();
        assert_eq!(dominant_frequency(&samples[4800..]), Some(440.0));
    }

    #[test]
    fn stereo_is_averaged() {
        let mut mono = Vec::new();
        to_mono(&[1.0, 0.0, 0.5, 0.5], 2, &mut mono);
        assert_eq!(mono, vec![0.5, 0.5]);
    }
}
