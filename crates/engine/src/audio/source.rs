//! Where outgoing audio comes from: the [`AudioSource`] trait, and a tone
//! as one (the microphone is in [`super::device`]).

use std::time::Duration;

use tokio::time::{Interval, MissedTickBehavior};

use super::device::AudioError;
use super::tone::ToneSource;

/// A stream of 20 ms frames of 48 kHz mono audio.
#[async_trait::async_trait]
pub trait AudioSource: Send + std::fmt::Debug {
    /// Waits for the next frame ([`super::FRAME_SAMPLES`] samples).
    async fn next_frame(&mut self) -> Result<Vec<i16>, AudioError>;
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
