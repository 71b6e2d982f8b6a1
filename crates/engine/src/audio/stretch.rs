//! Time-scale modification of speech: a 20 ms frame made shorter or longer
//! by one pitch period, without a gap or a click, so playout can drain or
//! grow its buffer while people talk.
//!
//! The idea is the one NetEQ's accelerate and preemptive expand use: voiced
//! speech repeats itself every pitch period, so one period can be taken out
//! (or played twice) with a cross-fade between two neighbouring periods.
//! Where the frame is not periodic (consonants, noise) nothing is changed —
//! the caller tries again on a later frame; where it is near silence, any
//! stretch is inaudible and 10 ms go at once.

use super::voice::dbfs;

/// The shortest period looked for: 2.5 ms (a 400 Hz voice).
const MIN_PERIOD: usize = 120;
/// The longest: 10 ms (100 Hz). A frame of 20 ms holds two of them, which
/// taking one out needs.
const MAX_PERIOD: usize = 480;
/// How alike two neighbouring periods must be (normalised correlation).
const PERIODIC: f32 = 0.8;
/// Below this level a frame is near silence and is stretched regardless.
const QUIET_DBFS: f32 = -45.0;
/// The coarse search looks at every fourth sample (12 kHz is plenty for a
/// voice's fundamental), then refines around the best lag.
const DECIMATION: usize = 4;

/// `frame` one period shorter (`None`: it is neither periodic nor quiet;
/// play it as it is).
pub fn shorten(frame: &[i16]) -> Option<Vec<i16>> {
    let period = period_of(frame)?;
    // Cross-fade the first period into the second, then the rest.
    let mut out = cross_fade(&frame[..period], &frame[period..2 * period]);
    out.extend_from_slice(&frame[2 * period..]);
    Some(out)
}

/// `frame` one period longer (`None`: as for [`shorten`]).
pub fn lengthen(frame: &[i16]) -> Option<Vec<i16>> {
    let period = period_of(frame)?;
    // The first period, then the second fading into the first again (so it
    // is heard twice), then everything from the second period on.
    let mut out = frame[..period].to_vec();
    out.extend(cross_fade(&frame[period..2 * period], &frame[..period]));
    out.extend_from_slice(&frame[period..]);
    Some(out)
}

/// The period to stretch `frame` by: its pitch period when it is periodic,
/// the longest when it is near silence, `None` otherwise.
fn period_of(frame: &[i16]) -> Option<usize> {
    if frame.len() < 2 * MAX_PERIOD {
        return None;
    }
    if dbfs(frame) < QUIET_DBFS {
        return Some(MAX_PERIOD);
    }
    let x: Vec<f32> = frame.iter().map(|&s| f32::from(s)).collect();
    let window = frame.len() - MAX_PERIOD;
    // Coarse: every DECIMATION-th sample and lag.
    let coarse = (MIN_PERIOD / DECIMATION..=MAX_PERIOD / DECIMATION)
        .map(|lag| {
            let c = correlation(&x, lag * DECIMATION, window, DECIMATION);
            (lag * DECIMATION, c)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))?
        .0;
    // Fine: every sample and lag around the coarse one.
    let low = coarse.saturating_sub(DECIMATION).max(MIN_PERIOD);
    let high = (coarse + DECIMATION).min(MAX_PERIOD);
    let (period, c) = (low..=high)
        .map(|lag| (lag, correlation(&x, lag, window, 1)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    (c >= PERIODIC).then_some(period)
}

/// Normalised correlation of `x[i]` with `x[i + lag]` over `window`
/// samples, every `step`-th.
fn correlation(x: &[f32], lag: usize, window: usize, step: usize) -> f32 {
    let (mut xy, mut xx, mut yy) = (0.0f32, 0.0f32, 0.0f32);
    for i in (0..window).step_by(step) {
        let (a, b) = (x[i], x[i + lag]);
        xy += a * b;
        xx += a * a;
        yy += b * b;
    }
    if xx <= 0.0 || yy <= 0.0 {
        return 0.0;
    }
    xy / (xx * yy).sqrt()
}

/// `from` fading out while `to` fades in (same lengths).
fn cross_fade(from: &[i16], to: &[i16]) -> Vec<i16> {
    let n = from.len() as f32;
    from.iter()
        .zip(to)
        .enumerate()
        .map(|(i, (&a, &b))| {
            let w = (i as f32 + 0.5) / n;
            (f32::from(a) * (1.0 - w) + f32::from(b) * w) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tone::{dominant_frequency, ToneSource};

    /// The largest step between neighbouring samples (a click is a big one).
    fn largest_step(samples: &[i16]) -> i32 {
        samples
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn a_voice_is_shortened_and_lengthened_by_its_period_without_a_click() {
        // 200 Hz: a period of 240 samples.
        let mut tone = ToneSource::new(200.0);
        let (before, frame, after) = (tone.next_frame(), tone.next_frame(), tone.next_frame());
        let natural = largest_step(&frame);
        for (stretched, expected) in [
            (shorten(&frame).expect("periodic"), 960 - 240),
            (lengthen(&frame).expect("periodic"), 960 + 240),
        ] {
            assert!(
                stretched.len().abs_diff(expected) <= 2,
                "{}",
                stretched.len()
            );
            // Joined to its neighbours, no step is much larger than the
            // tone's own, and the pitch is the same.
            let joined: Vec<i16> = [&before[..], &stretched, &after[..]].concat();
            assert!(largest_step(&joined) <= natural * 3 / 2, "a click");
            assert_eq!(dominant_frequency(&joined), Some(200.0));
        }
    }

    #[test]
    fn silence_goes_ten_milliseconds_at_a_time() {
        let quiet = vec![3i16; 960];
        assert_eq!(shorten(&quiet).map(|f| f.len()), Some(480));
        assert_eq!(lengthen(&quiet).map(|f| f.len()), Some(1_440));
    }

    #[test]
    fn noise_is_left_alone() {
        let mut state = 1u32;
        let noise: Vec<i16> = (0..960)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 16) as i16
            })
            .collect();
        assert_eq!(shorten(&noise), None);
        assert_eq!(lengthen(&noise), None);
    }
}
