//! Synthetic audio for tests and benches where no one talks: a speech-like
//! talker and a room that sends the speaker back to the microphone.
//!
//! The room is linear (a delayed, attenuated copy with two reflections),
//! which flatters an echo canceller: real loudspeakers distort and real
//! rooms ring for hundreds of milliseconds. Figures measured with it are an
//! upper bound.

/// A speech-like voice, 48 kHz mono: a few harmonics whose pitch and
/// loudness change syllable by syllable (every 200 ms), with pauses.
/// Different seeds are different talkers.
pub fn talker(seconds: f32, seed: u32) -> Vec<i16> {
    let n = (seconds * 48_000.0) as usize;
    let mut state = seed.max(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as f32 / u32::MAX as f32
    };
    let mut out = Vec::with_capacity(n);
    let mut phase = 0.0f32;
    let (mut pitch, mut loud) = (140.0, 0.5);
    for i in 0..n {
        if i % 9_600 == 0 {
            pitch = 100.0 + 120.0 * next();
            loud = if next() < 0.2 {
                0.0
            } else {
                0.3 + 0.6 * next()
            };
        }
        phase = (phase + pitch / 48_000.0).fract();
        let p = phase * std::f32::consts::TAU;
        let s = p.sin() + 0.6 * (2.0 * p).sin() + 0.4 * (3.0 * p).sin() + 0.2 * (5.0 * p).sin();
        out.push((s * loud * 6_000.0) as i16);
    }
    out
}

/// What a microphone hears of `played` in a small room: the sound 40 ms
/// later and 6 dB quieter, with reflections 5 ms and 15 ms after that.
pub fn room(played: &[i16]) -> Vec<i16> {
    let delay = 48 * 40;
    (0..played.len())
        .map(|i| {
            let at = |d: usize| i.checked_sub(d).map_or(0.0, |j| f32::from(played[j]));
            (0.5 * at(delay) + 0.15 * at(delay + 240) + 0.05 * at(delay + 720)) as i16
        })
        .collect()
}

/// Sample-wise sum, saturating.
pub fn mix(a: &[i16], b: &[i16]) -> Vec<i16> {
    a.iter().zip(b).map(|(x, y)| x.saturating_add(*y)).collect()
}
