//! The capture path's audio processing: echo cancellation, noise
//! suppression, gain control — what a browser does to `getUserMedia` audio
//! and a native client must do itself — and voice activity.
//!
//! Two streams meet here, both 48 kHz mono in 10 ms frames: the *render*
//! stream, what the mixer hands the speaker (the far end, the source of the
//! echo), and the *capture* stream, the microphone, processed in place
//! before it is encoded. [`AudioProcessor`] is the one seam: [`WebRtcApm`]
//! (sonora, a pure-Rust port of libwebrtc's audio processing module: AEC3,
//! noise suppression, AGC2, high-pass filter) implements it today, and
//! [`Passthrough`] when everything is off. Why sonora: it is the only
//! AEC3 that builds here (`webrtc-audio-processing` needs Debian's pre-AEC3
//! library or downloads abseil), it is the same canceller Chromium runs, and
//! it needs no C toolchain for the Windows and macOS builds.
//!
//! [`Processing`] is what the pipelines share: the render side is fed by
//! the playout task (10 ms at a time, on the speaker's clock), the capture
//! side by the audio-out task (20 ms, split into the 10 ms frames the
//! processor takes, on the microphone's); the render side is first moved
//! onto the microphone's clock ([`super::drift`]), then handed to the
//! processor a frame before each captured frame ([`super::feed`]). A shared screen's sound
//! ([`Processing::also_playing`]) is played by the speaker beside the call
//! and reaches the microphone the same way: it is added to the render side
//! too, so that it goes out once (as itself, [`super::blend`]), not again
//! as an echo.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::blend::Blend;
use super::drift::Drift;
use super::feed::Feed;
use super::reference::Reference;
use super::voice::{dbfs, Activity, VoiceDetector};

use crate::sync::lock;

/// Samples in one 10 ms frame at 48 kHz: what the processor takes.
pub const PROCESS_SAMPLES: usize = 480;

/// Which parts of the processing are on (all by default, as in a browser).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessingSettings {
    pub echo_cancellation: bool,
    pub noise_suppression: bool,
    pub gain_control: bool,
}

impl Default for ProcessingSettings {
    fn default() -> Self {
        ProcessingSettings {
            echo_cancellation: true,
            noise_suppression: true,
            gain_control: true,
        }
    }
}

impl ProcessingSettings {
    /// Everything off: the microphone as it is.
    pub const OFF: ProcessingSettings = ProcessingSettings {
        echo_cancellation: false,
        noise_suppression: false,
        gain_control: false,
    };

    fn any(self) -> bool {
        self.echo_cancellation || self.noise_suppression || self.gain_control
    }
}

/// An audio processing module: 10 ms frames ([`PROCESS_SAMPLES`]) of
/// 48 kHz mono in both directions.
pub trait AudioProcessor: Send + std::fmt::Debug {
    /// What is about to be played (the far end): the echo's reference.
    fn render(&mut self, frame: &[i16]);
    /// The microphone's frame, processed in place.
    fn capture(&mut self, frame: &mut [i16]);
}

/// Nothing on: the microphone passes as it is.
#[derive(Debug, Default)]
pub struct Passthrough;

impl AudioProcessor for Passthrough {
    fn render(&mut self, _frame: &[i16]) {}
    fn capture(&mut self, _frame: &mut [i16]) {}
}

/// libwebrtc's audio processing (AEC3, NS, AGC2, high-pass) through sonora,
/// in two instances: high-pass, canceller and noise suppression in one, gain
/// control in the other, so that the gain is held while only the far end
/// talks (see [`FarEnd`]).
pub struct WebRtcApm {
    apm: sonora::AudioProcessing,
    gain: Option<sonora::AudioProcessing>,
    held: HeldGain,
    far: FarEnd,
    out: Vec<i16>,
    /// Capture frames processed, for the canceller's figures in the log.
    frames: u64,
}

/// Capture frames (10 ms) between two logs of the canceller's figures.
const LOG_EVERY: u64 = 100;

/// The render frames (10 ms) the far end's activity is remembered for: an
/// echo's path through the room and its ring.
const FAR_WINDOW: usize = 50;
/// A far end quieter than this is not talking.
const FAR_TALKS_DBFS: f32 = -50.0;

/// What the far end did lately. Gain control adapts to the level of the
/// speech it hears; while the far end talks, what it hears is mostly what the
/// canceller left of the far end's voice, and raising that sends the far end
/// its own echo back (measured in the acoustic loop: with AGC2 adapting freely
/// the echo came back at −18 to −20 dBFS, as loud as no processing at all, in
/// four calls of seven). So gain control does not hear a frame while the far
/// end talked in the last 500 ms: the gain it last applied to speech is held
/// and applied as it was ([`HeldGain`]). No exception for double talk: an
/// echo the canceller has not locked on to is as loud as a talker (a first
/// rule let the near end through within 6 dB of the far end, and the
/// side-by-side loop sent the echo back at −13 dBFS). Until this held the
/// gain, it skipped it: a near end talking over the far end lost the whole
/// gain it had (measured side by side: −7.5 to −10.5 dB, all counted as what
/// the canceller took).
#[derive(Debug, Default)]
struct FarEnd {
    levels: VecDeque<f32>,
}

impl FarEnd {
    fn push(&mut self, frame: &[i16]) {
        self.levels.push_back(dbfs(frame));
        if self.levels.len() > FAR_WINDOW {
            self.levels.pop_front();
        }
    }

    /// Whether gain control may hear the capture frames now.
    fn lets_gain_adapt(&self) -> bool {
        let loudest = self
            .levels
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        loudest < FAR_TALKS_DBFS
    }
}

/// The gain control's gain as it was last applied to speech, in dB: the
/// level it sent over the level it heard, smoothed over ~100 ms of speech.
#[derive(Debug, Default, Clone, Copy)]
struct HeldGain {
    db: f32,
}

/// Quieter frames than this tell nothing of the gain (the limiter and
/// rounding dominate them).
const GAIN_SPEECH_DBFS: f32 = -50.0;

impl HeldGain {
    /// Notes a frame the gain control turned from `heard` into `sent` (dBFS).
    fn note(&mut self, heard: f32, sent: f32) {
        if heard > GAIN_SPEECH_DBFS {
            self.db += 0.1 * ((sent - heard) - self.db);
        }
    }

    /// Applies the held gain to `frame`.
    fn apply(self, frame: &mut [i16]) {
        if self.db.abs() < 0.05 {
            return;
        }
        let factor = 10f32.powf(self.db / 20.0);
        for sample in frame {
            *sample = (f32::from(*sample) * factor).clamp(-32_768.0, 32_767.0) as i16;
        }
    }
}

impl std::fmt::Debug for WebRtcApm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcApm").finish_non_exhaustive()
    }
}

/// The most gain control adds. AGC2's default, 50 dB, takes what the echo
/// canceller leaves of the far end's voice (−55 to −79 dBFS in the
/// acoustic-loop test) for quiet speech and raises it: with everything on,
/// the echo came back at −29 to −34 dBFS in two runs of four, 7–12 dB under
/// no processing at all. 30 dB still brings a microphone at −50 dBFS to
/// speaking level.
const MAX_GAIN_DB: f32 = 30.0;

impl WebRtcApm {
    pub fn new(settings: ProcessingSettings) -> WebRtcApm {
        use sonora::config::{
            AdaptiveDigital, EchoCanceller, GainController2, HighPassFilter, NoiseSuppression,
            NoiseSuppressionLevel,
        };
        let config = sonora::Config {
            high_pass_filter: Some(HighPassFilter::default()),
            echo_canceller: settings.echo_cancellation.then(EchoCanceller::default),
            // One step stronger than Chromium's default (High), measured
            // side by side (`bench-noise.mjs`): 2.2 dB more SNR gain on pink
            // noise at 5 dB SNR, 2.4 on a fan, 3.6 on pink at 0 dB, for
            // 0.3–1 dB more of the talker's level.
            noise_suppression: settings.noise_suppression.then(|| NoiseSuppression {
                level: NoiseSuppressionLevel::VeryHigh,
                ..NoiseSuppression::default()
            }),
            ..Default::default()
        };
        let gain = sonora::Config {
            gain_controller2: Some(GainController2 {
                adaptive_digital: Some(AdaptiveDigital {
                    max_gain_db: MAX_GAIN_DB,
                    ..AdaptiveDigital::default()
                }),
                ..GainController2::default()
            }),
            ..Default::default()
        };
        let stream = sonora::StreamConfig::new(super::SAMPLE_RATE, 1);
        let build = |config| {
            sonora::AudioProcessing::builder()
                .config(config)
                .capture_config(stream)
                .render_config(stream)
                .build()
        };
        WebRtcApm {
            apm: build(config),
            gain: settings.gain_control.then(|| build(gain)),
            held: HeldGain::default(),
            far: FarEnd::default(),
            out: vec![0; PROCESS_SAMPLES],
            frames: 0,
        }
    }
}

impl AudioProcessor for WebRtcApm {
    fn render(&mut self, frame: &[i16]) {
        self.far.push(frame);
        self.out.resize(frame.len(), 0);
        if let Err(e) = self.apm.process_render_i16(frame, &mut self.out) {
            tracing::debug!(error = ?e, "render frame not processed");
        }
    }

    fn capture(&mut self, frame: &mut [i16]) {
        self.out.resize(frame.len(), 0);
        match self.apm.process_capture_i16(frame, &mut self.out) {
            Ok(()) => frame.copy_from_slice(&self.out),
            Err(e) => tracing::debug!(error = ?e, "capture frame not processed"),
        }
        self.frames += 1;
        if self.frames % LOG_EVERY == 0 && tracing::enabled!(tracing::Level::DEBUG) {
            let s = self.apm.statistics();
            tracing::debug!(
                erl = ?s.echo_return_loss,
                erle = ?s.echo_return_loss_enhancement,
                divergent = ?s.divergent_filter_fraction,
                delay_ms = ?s.delay_ms,
                delay_median_ms = ?s.delay_median_ms,
                delay_std_ms = ?s.delay_standard_deviation_ms,
                held_gain_db = self.held.db,
                "echo canceller"
            );
        }
        let Some(gain) = self.gain.as_mut() else {
            return;
        };
        if !self.far.lets_gain_adapt() {
            self.held.apply(frame);
            return;
        }
        match gain.process_capture_i16(frame, &mut self.out) {
            Ok(()) => {
                self.held.note(dbfs(frame), dbfs(&self.out));
                frame.copy_from_slice(&self.out);
            }
            Err(e) => tracing::debug!(error = ?e, "capture frame not gain-controlled"),
        }
    }
}

/// The processor for `settings`.
pub fn processor_for(settings: ProcessingSettings) -> Box<dyn AudioProcessor> {
    if settings.any() {
        Box::new(WebRtcApm::new(settings))
    } else {
        Box::new(Passthrough)
    }
}

/// The processing both audio pipelines share.
#[derive(Debug)]
pub struct Processing {
    processor: Mutex<Box<dyn AudioProcessor>>,
    /// The speaker's and the microphone's clocks apart, taken out of the
    /// far end's audio before the canceller gets it; `None`: left in.
    drift: Option<Mutex<Drift>>,
    voice: Mutex<VoiceDetector>,
    talking: AtomicBool,
    /// The shared screen's sound, in 10 ms frames, on its way into the
    /// render side.
    playing: Mutex<Blend>,
    /// The render side as the speaker played it ([`Processing::slipped`]).
    reference: Mutex<Reference>,
    /// The render side on its way to the processor ([`Feed`]).
    feed: Mutex<Feed>,
}

impl Processing {
    pub fn new(settings: ProcessingSettings) -> Processing {
        Processing::with(processor_for(settings))
    }

    pub fn with(processor: Box<dyn AudioProcessor>) -> Processing {
        Processing {
            processor: Mutex::new(processor),
            drift: Some(Mutex::new(Drift::default())),
            voice: Mutex::new(VoiceDetector::default()),
            talking: AtomicBool::new(false),
            playing: Mutex::new(Blend::default()),
            reference: Mutex::new(Reference::default()),
            feed: Mutex::new(Feed::default()),
        }
    }

    /// As [`Processing::new`], but with the clocks' drift left in (the
    /// audio bench's comparison).
    pub fn with_drift_left_in(settings: ProcessingSettings) -> Processing {
        Processing {
            drift: None,
            ..Processing::new(settings)
        }
    }

    /// Other settings from now on (the canceller starts afresh).
    pub fn set(&self, settings: ProcessingSettings) {
        *lock(&self.processor) = processor_for(settings);
    }

    /// The computer's own sound, which the speaker plays beside the call
    /// (a shared screen's; on the speaker's clock): part of the echo.
    pub fn also_playing(&self, samples: &[i16]) {
        let mut playing = lock(&self.playing);
        for frame in samples.chunks_exact(PROCESS_SAMPLES) {
            playing.push(frame.to_vec());
        }
    }

    /// The computer's sound stopped (or another took its place).
    pub fn stopped_playing(&self) {
        lock(&self.playing).clear();
    }

    /// The speaker played `samples` (48 kHz) more than it was given, or
    /// fewer if negative ([`super::AudioSink::take_slip`]) — or, negative,
    /// the microphone dropped as many ([`super::AudioSource::take_dropped`]):
    /// the render side slips as much ([`Reference`]).
    pub fn slipped(&self, samples: i64) {
        if samples != 0 {
            lock(&self.reference).slip(samples);
        }
    }

    /// 48 kHz samples the speaker holds unplayed, told before each render.
    pub fn queued_to_play(&self, samples: usize) {
        lock(&self.feed).set_queued(samples);
    }

    /// Audio about to be played, any whole number of 10 ms frames.
    pub fn render(&self, samples: &[i16]) {
        let shifted = lock(&self.reference).shift(samples);
        let samples = shifted.as_deref().unwrap_or(samples);
        if samples.is_empty() {
            return;
        }
        // Copied only while the computer's sound is being added (this
        // runs every 10 ms).
        let with_sound = {
            let mut playing = lock(&self.playing);
            (!playing.idle()).then(|| {
                let mut mixed = samples.to_vec();
                for frame in mixed.chunks_exact_mut(PROCESS_SAMPLES) {
                    playing.add_into(frame);
                }
                mixed
            })
        };
        let samples = with_sound.as_deref().unwrap_or(samples);
        let on_mic_clock = self.drift.as_ref().map(|d| lock(d).render(samples));
        let mut feed = lock(&self.feed);
        for frame in on_mic_clock
            .as_deref()
            .unwrap_or(samples)
            .chunks_exact(PROCESS_SAMPLES)
        {
            feed.push(frame);
        }
    }

    /// The microphone's audio, any whole number of 10 ms frames, processed
    /// in place; returns the voice it held.
    pub fn capture(&self, samples: &mut [i16]) -> Activity {
        if let Some(drift) = &self.drift {
            lock(drift).captured(samples.len());
        }
        let mut activity = Activity::default();
        let mut processor = lock(&self.processor);
        let mut voice = lock(&self.voice);
        for frame in samples.chunks_exact_mut(PROCESS_SAMPLES) {
            if let Some(far) = lock(&self.feed).take() {
                processor.render(&far);
            }
            processor.capture(frame);
            activity.talking |= voice.update(frame, 10);
            activity.now |= voice.now();
        }
        self.talking.store(activity.talking, Ordering::Relaxed);
        activity
    }

    /// Whether the microphone heard voice in its last frames (muted or not).
    pub fn talking(&self) -> bool {
        self.talking.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::synthetic::{room, talker};
    use crate::audio::voice::dbfs;

    /// What `processing` sends of the microphone's `near` while `far` is
    /// played, both handed over in chunks of `chunk` samples.
    fn through(processing: &Processing, near: &[i16], far: &[i16], chunk: usize) -> Vec<i16> {
        let mut sent = Vec::with_capacity(near.len());
        for (near, far) in near.chunks_exact(chunk).zip(far.chunks_exact(chunk)) {
            processing.render(far);
            let mut frame = near.to_vec();
            processing.capture(&mut frame);
            sent.extend(frame);
        }
        sent
    }

    /// Runs the far end through `processing` and the room; returns the
    /// echo's level (dBFS) left in the last second, and the level without
    /// processing.
    fn echo_left(processing: &Processing, seconds: f32) -> (f32, f32) {
        let far = talker(seconds, 7);
        let mic = room(&far);
        let sent = through(processing, &mic, &far, 960);
        let last = sent.len() - 48_000;
        (dbfs(&sent[last..]), dbfs(&mic[last..]))
    }

    #[test]
    fn the_canceller_takes_the_rooms_echo_out() {
        let processing = Processing::new(ProcessingSettings {
            echo_cancellation: true,
            noise_suppression: false,
            gain_control: false,
        });
        let (left, before) = echo_left(&processing, 8.0);
        assert!(
            before - left >= 25.0,
            "echo at {before:.1} dBFS, {left:.1} after the canceller"
        );
    }

    #[test]
    fn the_computers_own_sound_is_cancelled_as_an_echo_too() {
        // Nobody in the call talks; the computer plays a shared screen's
        // sound, which the microphone hears through the room.
        let sound = talker(8.0, 3);
        let mic = room(&sound);
        let silence = vec![0i16; mic.len()];
        let settings = ProcessingSettings {
            echo_cancellation: true,
            noise_suppression: false,
            gain_control: false,
        };
        let sent = |told: bool| {
            let processing = Processing::new(settings);
            let mut sent = Vec::with_capacity(mic.len());
            for ((near, far), played) in mic
                .chunks_exact(960)
                .zip(silence.chunks_exact(960))
                .zip(sound.chunks_exact(960))
            {
                if told {
                    processing.also_playing(played);
                }
                processing.render(far);
                let mut frame = near.to_vec();
                processing.capture(&mut frame);
                sent.extend(frame);
            }
            dbfs(&sent[sent.len() - 48_000..])
        };
        let (untold, told) = (sent(false), sent(true));
        eprintln!("the sound's echo sent: {untold:.1} dBFS untold, {told:.1} told");
        assert!(
            untold - told >= 25.0,
            "the sound's echo at {untold:.1} dBFS untold, {told:.1} told"
        );
    }

    #[test]
    fn with_everything_off_the_microphone_passes_as_it_is() {
        let processing = Processing::new(ProcessingSettings::OFF);
        let (left, before) = echo_left(&processing, 2.0);
        assert!((left - before).abs() < 0.01);
    }

    /// The far end talks through the room for `seconds`; the level of what
    /// is sent in the last 2 s.
    fn echo_sent(settings: ProcessingSettings, seconds: f32) -> f32 {
        let far = talker(seconds, 5);
        let mic = room(&far);
        let sent = through(&Processing::new(settings), &mic, &far, 480);
        dbfs(&sent[sent.len() - 96_000..])
    }

    #[test]
    fn gain_control_does_not_raise_the_far_ends_echo() {
        let cancelled = echo_sent(
            ProcessingSettings {
                noise_suppression: false,
                gain_control: false,
                ..ProcessingSettings::default()
            },
            8.0,
        );
        let everything = echo_sent(
            ProcessingSettings {
                noise_suppression: false,
                ..ProcessingSettings::default()
            },
            8.0,
        );
        assert!(
            everything <= cancelled + 1.0,
            "echo {cancelled:.1} dBFS cancelled, {everything:.1} with gain control"
        );
    }

    /// A quiet near end talks alone, then on while the far end talks too
    /// (its echo kept out of the microphone). How much `settings` change its
    /// level in the last 2 s of each part (dB).
    fn quiet_talker_alone_then_over_the_far_end(settings: ProcessingSettings) -> (f32, f32) {
        let quiet: Vec<i16> = talker(20.0, 9).iter().map(|s| s / 20).collect();
        // The far end silent for the first 10 s, then talking.
        let far: Vec<i16> = std::iter::repeat_n(0, 480_000)
            .chain(talker(10.0, 5))
            .collect();
        let sent = through(&Processing::new(settings), &quiet, &far, 480);
        let level = |at: usize| dbfs(&sent[at - 96_000..at]) - dbfs(&quiet[at - 96_000..at]);
        (level(480_000), level(sent.len()))
    }

    #[test]
    fn a_near_end_talking_over_the_far_end_keeps_its_gain() {
        // What gain control adds: everything on against everything but it.
        let (alone, over) = quiet_talker_alone_then_over_the_far_end(ProcessingSettings::default());
        let (alone_without, over_without) =
            quiet_talker_alone_then_over_the_far_end(ProcessingSettings {
                gain_control: false,
                ..ProcessingSettings::default()
            });
        let (gain_alone, gain_over) = (alone - alone_without, over - over_without);
        assert!(gain_alone >= 10.0, "gain {gain_alone:.1} dB alone");
        assert!(
            (gain_alone - gain_over).abs() <= 3.0,
            "gain {gain_alone:.1} dB alone, {gain_over:.1} dB over the far end"
        );
    }

    #[test]
    fn a_quiet_talker_is_brought_up_to_speaking_level() {
        let processing = Processing::new(ProcessingSettings::default());
        // The talker 26 dB down: about −40 dBFS while talking.
        let quiet: Vec<i16> = talker(12.0, 9).iter().map(|s| s / 20).collect();
        let sent = through(&processing, &quiet, &vec![0; quiet.len()], 480);
        let last = quiet.len() - 4 * 48_000;
        let (before, after) = (dbfs(&quiet[last..]), dbfs(&sent[last..]));
        eprintln!("quiet talker {before:.1} dBFS → {after:.1} dBFS");
        assert!(after - before >= 10.0, "{before:.1} → {after:.1} dBFS");
    }
}
