//! Where outgoing audio comes from: the [`AudioSource`] trait, a tone and
//! recorded samples as sources (the microphone is in [`super::device`]).

use std::time::Duration;

use tokio::time::{Interval, MissedTickBehavior};

use super::device::AudioError;
use super::tone::ToneSource;

/// A stream of 20 ms frames of 48 kHz mono audio.
#[async_trait::async_trait]
pub trait AudioSource: Send + std::fmt::Debug {
    /// Waits for the next frame ([`super::FRAME_SAMPLES`] samples).
    async fn next_frame(&mut self) -> Result<Vec<i16>, AudioError>;

    /// Samples (48 kHz) the source captured and dropped since the last
    /// call, before they were taken (a microphone whose call fell behind):
    /// what follows came that much later, so the echo's delay as the
    /// canceller sees it shortens by as much, and its reference leaves out
    /// as many ([`super::processing::Processing::slipped`]).
    fn take_dropped(&mut self) -> u64 {
        0
    }
}

/// A sine tone, paced in real time.
#[derive(Debug)]
pub struct ToneInput {
    tone: ToneSource,
    ticks: Interval,
}

impl ToneInput {
    pub fn new(frequency: f32) -> ToneInput {
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        // A late tick is made up for: the receiver expects 50 frames a second.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
        ToneInput {
            tone: ToneSource::new(frequency),
            ticks,
        }
    }
}

#[async_trait::async_trait]
impl AudioSource for ToneInput {
    async fn next_frame(&mut self) -> Result<Vec<i16>, AudioError> {
        self.ticks.tick().await;
        Ok(self.tone.next_frame())
    }
}

/// Recorded (or synthetic) samples, looped, paced in real time.
#[derive(Debug)]
pub struct SamplesInput {
    samples: Vec<i16>,
    at: usize,
    ticks: Interval,
}

impl SamplesInput {
    /// Loops `samples` (48 kHz mono; silence if empty).
    pub fn new(samples: Vec<i16>) -> SamplesInput {
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
        SamplesInput {
            samples,
            at: 0,
            ticks,
        }
    }
}

#[async_trait::async_trait]
impl AudioSource for SamplesInput {
    async fn next_frame(&mut self) -> Result<Vec<i16>, AudioError> {
        self.ticks.tick().await;
        if self.samples.is_empty() {
            return Ok(vec![0; super::FRAME_SAMPLES]);
        }
        let frame = (0..super::FRAME_SAMPLES)
            .map(|i| self.samples[(self.at + i) % self.samples.len()])
            .collect();
        self.at = (self.at + super::FRAME_SAMPLES) % self.samples.len();
        Ok(frame)
    }
}
