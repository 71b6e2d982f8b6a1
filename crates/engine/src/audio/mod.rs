//! Audio: 48 kHz mono, 20 ms frames, Opus on the wire.
//!
//! Out: an [`source::AudioSource`] — the microphone ([`device::Microphone`])
//! or a tone ([`source::ToneInput`]) — encoded once by [`opus`]. In: each
//! member's packets are decoded (losses concealed) and [`mixer::Mixer`]
//! sums them into one stream for an [`sink::AudioSink`] — the speaker
//! ([`device::Speaker`]), a WAV file, or nothing — at the playback
//! [`volume::Volume`]. [`tone::dominant_frequency`]
//! lets a receiver check which tone it heard.

pub mod blend;
pub mod device;
pub mod drift;
pub mod feed;
pub mod jitter;
pub mod mixer;
pub mod opus;
pub mod processing;
pub mod reference;
pub mod resample;
pub mod sink;
pub mod source;
pub mod stretch;
pub mod synthetic;
pub mod tone;
pub mod voice;
pub mod volume;
pub mod wav;

pub use device::{AudioError, Direction, Microphone, Speaker, SystemSound};
pub use sink::{AudioSink, NullSink, WavSink};
pub use source::{AudioSource, SamplesInput, ToneInput};
pub use volume::Volume;

/// Samples per second.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples per 20 ms frame (one Opus packet).
pub const FRAME_SAMPLES: usize = 960;
