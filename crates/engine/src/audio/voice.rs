//! Voice activity: whether 10 ms of (processed) microphone audio holds
//! someone talking, for the speaking indicator and the "you are talking
//! while muted" hint.
//!
//! An energy detector against a tracked noise floor: the floor follows a
//! quieter frame at once and a louder one slowly ([`FLOOR_RISE_DB_PER_S`]),
//! so a steady fan raises it within seconds while a sentence does not; a
//! frame [`ABOVE_FLOOR_DB`] over the floor (and over [`MIN_DBFS`]) is voice,
//! and voice holds for [`HANGOVER`] so the pauses between words do not flap.
//! Noise suppression runs before it, which is what keeps a keyboard from
//! reading as speech.

use std::time::Duration;

/// How far above the noise floor a frame must be to count as voice.
pub const ABOVE_FLOOR_DB: f32 = 10.0;
/// Quieter than this is never voice (a muted or disconnected microphone).
pub const MIN_DBFS: f32 = -55.0;
/// How fast the floor rises toward louder frames.
pub const FLOOR_RISE_DB_PER_S: f32 = 3.0;
/// How long voice lasts past the last voiced frame.
pub const HANGOVER: Duration = Duration::from_millis(300);

/// The level of a frame in dB relative to full scale (−100 for silence).
pub fn dbfs(frame: &[i16]) -> f32 {
    if frame.is_empty() {
        return -100.0;
    }
    let energy: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (energy / frame.len() as f64).sqrt() / 32_768.0;
    if rms <= 1e-5 {
        -100.0
    } else {
        (20.0 * rms.log10()) as f32
    }
}

/// What the detector heard in some audio.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    /// Voice, held through the pauses between words ([`HANGOVER`]): the
    /// speaking indicator.
    pub talking: bool,
    /// Voice in this audio itself, no hangover: what keeps Opus DTX off
    /// (libopus holds its own 200 ms before it stops sending).
    pub now: bool,
}

/// Tracks the noise floor and says which frames are voice.
#[derive(Debug, Clone)]
pub struct VoiceDetector {
    floor_db: f32,
    /// Frames of hangover left.
    hold: u32,
    /// The last frame itself was voice.
    now: bool,
}

impl Default for VoiceDetector {
    fn default() -> Self {
        VoiceDetector {
            floor_db: MIN_DBFS,
            hold: 0,
            now: false,
        }
    }
}

impl VoiceDetector {
    /// Judges the next frame, `frame_ms` long: voice, held.
    pub fn update(&mut self, frame: &[i16], frame_ms: u32) -> bool {
        let level = dbfs(frame);
        if level < self.floor_db {
            self.floor_db = level.max(-100.0);
        } else {
            let rise = FLOOR_RISE_DB_PER_S * frame_ms as f32 / 1000.0;
            self.floor_db = (self.floor_db + rise).min(level);
        }
        let voiced = level > MIN_DBFS && level > self.floor_db + ABOVE_FLOOR_DB;
        self.now = voiced;
        if voiced {
            self.hold = (HANGOVER.as_millis() as u32 / frame_ms.max(1)).max(1);
            true
        } else if self.hold > 0 {
            self.hold -= 1;
            true
        } else {
            false
        }
    }

    /// Whether the last frame judged was voice itself (no hangover).
    pub fn now(&self) -> bool {
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(amplitude: f32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| (amplitude * (i as f32 * 0.06).sin()) as i16)
            .collect()
    }

    fn noise(amplitude: f32, n: usize, state: &mut u32) -> Vec<i16> {
        (0..n)
            .map(|_| {
                *state ^= *state << 13;
                *state ^= *state >> 17;
                *state ^= *state << 5;
                (amplitude * ((*state as f32 / u32::MAX as f32) * 2.0 - 1.0)) as i16
            })
            .collect()
    }

    #[test]
    fn speech_over_a_steady_noise_is_voice_and_the_noise_alone_is_not() {
        let mut v = VoiceDetector::default();
        let mut state = 1;
        // Five seconds of a fan at about −40 dBFS: the floor climbs to it.
        let fan: Vec<bool> = (0..500)
            .map(|_| v.update(&noise(600.0, 480, &mut state), 10))
            .collect();
        assert!(
            fan[300..].iter().all(|&voiced| !voiced),
            "a steady fan is not voice once the floor found it"
        );
        // A talker 20 dB over it.
        let mut talk = noise(600.0, 480, &mut state);
        for (s, t) in talk.iter_mut().zip(tone(8_000.0, 480)) {
            *s = s.saturating_add(t);
        }
        assert!(v.update(&talk, 10));
        assert!(v.now());
        // The pause between two words is held, a long silence is not.
        assert!(v.update(&noise(600.0, 480, &mut state), 10));
        assert!(!v.now(), "held, not heard");
        let after: Vec<bool> = (0..60)
            .map(|_| v.update(&noise(600.0, 480, &mut state), 10))
            .collect();
        assert!(!after[40..].iter().any(|&voiced| voiced));
    }

    #[test]
    fn digital_silence_and_a_whisper_of_hiss_are_not_voice() {
        let mut v = VoiceDetector::default();
        assert!(!v.update(&[0; 480], 10));
        let mut state = 9;
        assert!(!v.update(&noise(20.0, 480, &mut state), 10), "−64 dBFS");
        assert!((dbfs(&tone(32_767.0, 4_800)) - -3.0).abs() < 0.2);
    }
}
