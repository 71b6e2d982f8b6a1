//! Video: frames, sources and the H.264 codec.
//!
//! Frames are I420 (the codec's and the renderer's format). Outgoing video
//! comes from a [`source::VideoSource`]: the camera ([`camera`]), the
//! screen ([`screen`]) or a
//! [`pattern::TestPattern`], which writes its sequence number and capture
//! time into every frame in a strip of large blocks that survives
//! compression, so a receiver can check that the video it decodes is the
//! video that was sent, and measure loss and glass-to-glass latency.

pub mod assembler;
pub mod camera;
pub mod convert;
pub mod frame;
pub mod h264;
pub mod nal;
pub mod pattern;
pub mod playout;
pub mod screen;
pub mod source;

pub use frame::I420Frame;
pub use source::{CaptureError, PatternSource, VideoSource};
