//! Audio: 48 kHz mono, 20 ms frames, Opus on the wire.
//!
//! [`tone::ToneSource`] stands in for a microphone where there is none;
//! [`tone::dominant_frequency`] lets a receiver check it heard that tone.
//! [`opus`] wraps libopus; its decoder conceals lost packets.

pub mod opus;
pub mod tone;

/// Samples per second.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples per 20 ms frame (one Opus packet).
pub const FRAME_SAMPLES: usize = 960;
