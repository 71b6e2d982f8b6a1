//! H.264 with OpenH264: constrained baseline encoding (what every browser
//! decodes), Annex B in and out.

use openh264::decoder::Decoder;
pub use openh264::encoder::Complexity;
use openh264::encoder::{BitRate, Encoder, EncoderConfig, FrameRate, Profile, UsageType};
use openh264::formats::YUVSource;
use openh264::Timestamp;
use thiserror::Error;

use super::I420Frame;

/// The codec failed.
#[derive(Debug, Error)]
pub enum CodecError {
    #[error("H.264: {0}")]
    OpenH264(#[from] openh264::Error),
}

/// Encodes frames, once for every peer.
pub struct H264Encoder {
    inner: Encoder,
    bitrate_bps: u32,
    fps: f32,
    complexity: Complexity,
    /// Presentation time of the next frame: rate control budgets bits per
    /// unit of time, so it must see time pass (without it every frame is at
    /// zero and most are skipped).
    next_ms: f64,
    frame_ms: f64,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field("bitrate_bps", &self.bitrate_bps)
            .finish_non_exhaustive()
    }
}

impl H264Encoder {
    /// An encoder for camera video at `bitrate_bps` and up to `fps`, at the
    /// complexity calls use (medium: low measured no faster here, see the
    /// codec benchmark).
    pub fn new(bitrate_bps: u32, fps: f32) -> Result<H264Encoder, CodecError> {
        H264Encoder::with_complexity(bitrate_bps, fps, Complexity::Medium)
    }

    /// The same with another speed/quality trade-off (for benchmarks).
    pub fn with_complexity(
        bitrate_bps: u32,
        fps: f32,
        complexity: Complexity,
    ) -> Result<H264Encoder, CodecError> {
        let inner = H264Encoder::configure(bitrate_bps, fps, complexity)?;
        Ok(H264Encoder {
            inner,
            bitrate_bps,
            fps,
            complexity,
            next_ms: 0.0,
            frame_ms: 1000.0 / f64::from(fps.max(1.0)),
        })
    }

    fn configure(
        bitrate_bps: u32,
        fps: f32,
        complexity: Complexity,
    ) -> Result<Encoder, CodecError> {
        let config = EncoderConfig::new()
            .profile(Profile::Baseline)
            .usage_type(UsageType::CameraVideoRealTime)
            .bitrate(BitRate::from_bps(bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(fps))
            // Rate control needs permission to skip a frame when over budget.
            .skip_frames(true)
            // Synthetic and screen content trips scene-change detection into
            // frequent IDR frames; keyframes come when asked for instead.
            .scene_change_detect(false)
            .complexity(complexity);
        Ok(Encoder::with_api_config(
            openh264::OpenH264API::from_source(),
            config,
        )?)
    }

    /// The bitrate rate control aims for, bits per second.
    pub fn bitrate_bps(&self) -> u32 {
        self.bitrate_bps
    }

    /// Aims for another bitrate from the next frame on. The safe API of
    /// openh264 has no live setting for it, so the encoder is made anew and
    /// the next frame is a keyframe: callers change it seldom.
    pub fn set_bitrate(&mut self, bitrate_bps: u32) -> Result<(), CodecError> {
        self.inner = H264Encoder::configure(bitrate_bps, self.fps, self.complexity)?;
        self.bitrate_bps = bitrate_bps;
        Ok(())
    }

    /// The next access unit (Annex B); a keyframe when `keyframe`. Frames are
    /// taken to be captured at the configured rate. Empty when rate control
    /// skipped the frame.
    pub fn encode(&mut self, frame: &I420Frame, keyframe: bool) -> Result<Vec<u8>, CodecError> {
        if keyframe {
            self.inner.force_intra_frame();
        }
        let at = Timestamp::from_millis(self.next_ms as u64);
        self.next_ms += self.frame_ms;
        Ok(self.inner.encode_at(frame, at)?.to_vec())
    }
}

/// Decodes one peer's stream.
pub struct H264Decoder {
    inner: Decoder,
}

impl std::fmt::Debug for H264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Decoder").finish_non_exhaustive()
    }
}

impl H264Decoder {
    pub fn new() -> Result<H264Decoder, CodecError> {
        Ok(H264Decoder {
            inner: Decoder::new()?,
        })
    }

    /// Decodes an access unit (Annex B); `None` while the decoder has no
    /// picture yet (e.g. before the first keyframe).
    pub fn decode(&mut self, access_unit: &[u8]) -> Result<Option<I420Frame>, CodecError> {
        let Some(yuv) = self.inner.decode(access_unit)? else {
            return Ok(None);
        };
        let (width, height) = yuv.dimensions();
        Ok(I420Frame::from_planes(
            width,
            height,
            (yuv.y(), yuv.u(), yuv.v()),
            yuv.strides(),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::video::pattern::{read_stamp, TestPattern};

    #[test]
    fn the_pattern_survives_encoding_and_decoding() {
        let mut pattern = TestPattern::new(640, 360);
        let mut encoder = H264Encoder::new(800_000, 30.0).unwrap();
        let mut decoder = H264Decoder::new().unwrap();
        let mut decoded = Vec::new();
        for n in 0..30 {
            let frame = pattern.next_frame();
            let unit = encoder.encode(&frame, n == 0).unwrap();
            assert!(
                unit.starts_with(&[0, 0, 0, 1]) || unit.starts_with(&[0, 0, 1]),
                "Annex B"
            );
            if let Some(picture) = decoder.decode(&unit).unwrap() {
                assert_eq!((picture.width(), picture.height()), (640, 360));
                decoded.push(read_stamp(&picture).unwrap().sequence);
            }
        }
        assert_eq!(
            decoded,
            (0..30).collect::<Vec<_>>(),
            "every frame, in order, strip intact"
        );
    }
}
