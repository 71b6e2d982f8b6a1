//! Where outgoing video comes from: the [`VideoSource`] trait, and the
//! stamped test pattern as one (the camera is in [`super::camera`], the
//! screen in [`super::screen`]).

use std::time::Duration;

use thiserror::Error;
use tokio::time::{Interval, MissedTickBehavior};

use super::pattern::TestPattern;
use super::I420Frame;

/// Capturing video failed.
#[derive(Debug, Error)]
pub enum CaptureError {
    #[error("no camera found{0}")]
    NoCamera(String),
    #[error("camera {index} does not exist ({count} found)")]
    NoSuchCamera { index: u32, count: usize },
    #[error("no camera {0:?}")]
    UnknownCamera(String),
    #[error("the camera could not be opened: {0}")]
    Open(#[from] nokhwa::NokhwaError),
    #[error("the camera's capture thread could not start: {0}")]
    Thread(#[from] std::io::Error),
    #[error("the camera's capture thread ended")]
    ThreadEnded,
    #[error("the video source stopped delivering pictures: {0}")]
    Stopped(String),
    #[error("the screen cannot be shared: {0}")]
    Screen(String),
}

/// A stream of pictures to send.
#[async_trait::async_trait]
pub trait VideoSource: Send + std::fmt::Debug {
    /// Nominal pictures per second (what the encoder budgets for).
    fn fps(&self) -> u32;
    /// Waits for the next picture.
    async fn next_frame(&mut self) -> Result<I420Frame, CaptureError>;
}

/// The stamped test pattern, paced at its frame rate.
#[derive(Debug)]
pub struct PatternSource {
    pattern: TestPattern,
    fps: u32,
    ticks: Interval,
}

impl PatternSource {
    /// The plain pattern.
    pub fn new(width: usize, height: usize, fps: u32) -> PatternSource {
        PatternSource::with_pattern(TestPattern::new(width, height), fps)
    }

    /// Any pattern (e.g. [`TestPattern::busy`]) at `fps`.
    pub fn with_pattern(pattern: TestPattern, fps: u32) -> PatternSource {
        let fps = fps.clamp(1, 60);
        let mut ticks = tokio::time::interval(Duration::from_secs(1) / fps);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        PatternSource {
            pattern,
            fps,
            ticks,
        }
    }
}

#[async_trait::async_trait]
impl VideoSource for PatternSource {
    fn fps(&self) -> u32 {
        self.fps
    }

    async fn next_frame(&mut self) -> Result<I420Frame, CaptureError> {
        self.ticks.tick().await;
        Ok(self.pattern.next_frame())
    }
}
