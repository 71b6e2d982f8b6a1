//! H.264 with OpenH264: constrained baseline encoding (what every browser
//! decodes), Annex B in and out.

use openh264::decoder::Decoder;
pub use openh264::encoder::Complexity;
use openh264::encoder::{BitRate, Encoder, EncoderConfig, FrameRate, Profile, UsageType};
use openh264::formats::YUVSource;
use openh264::Timestamp;
use std::time::Duration;

use thiserror::Error;

use super::I420Frame;

/// The codec failed.
#[derive(Debug, Error)]
pub enum CodecError {
    #[error("H.264: {0}")]
    OpenH264(#[from] openh264::Error),
}

/// The share of the bitrate a keyframe answering a receiver's request is
/// aimed at ([`H264Encoder::encode_repair_keyframe_at`]). OpenH264 gives a
/// keyframe far more than its share of a second: on the network lab's busy
/// 640×360 pattern, 14.6 kB at 1 Mbit/s (three and a half times a delta
/// picture) against 3.9 kB aimed at half that, and 6.9 kB at 500 kbit/s
/// against 2.9 kB — over the lab's 500 kbit/s policer, whose burst is
/// 6.25 kB, the full-size one was lost. The pictures after it make up
/// the quality within a fraction of a second.
pub const REPAIR_KEYFRAME_SHARE: f64 = 0.5;

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
    /// The size of the pictures so far: OpenH264 initialises itself on the
    /// first picture, and again (from its own copy of the configuration)
    /// when the size changes.
    size: Option<(usize, usize)>,
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
            size: None,
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

    /// The size of the pictures so far (none before the first).
    pub fn size(&self) -> Option<(usize, usize)> {
        self.size
    }

    /// The bitrate rate control aims for, bits per second.
    pub fn bitrate_bps(&self) -> u32 {
        self.bitrate_bps
    }

    /// Aims for another bitrate from the next frame on, without a keyframe
    /// (congestion control changes it while the call goes on; a keyframe per
    /// change was measured to overflow a narrow path and freeze the video).
    ///
    /// OpenH264 refuses a target over the layer's maximum, which it sets to
    /// the bitrate it was made with: every rise made a new encoder and a
    /// keyframe nobody asked for (seen in the network lab, 4 in one
    /// direction's 45 s over the policer, 2.1–9.7 kB each). The maximum
    /// moves with the target: first when rising, after it when falling.
    pub fn set_bitrate(&mut self, bitrate_bps: u32) -> Result<(), CodecError> {
        let rising = bitrate_bps > self.bitrate_bps;
        self.bitrate_bps = bitrate_bps;
        let bitrate = i32::try_from(bitrate_bps).unwrap_or(i32::MAX);
        let most = openh264_sys2::SBitrateInfo {
            iLayer: openh264_sys2::SPATIAL_LAYER_0,
            iBitrate: bitrate,
        };
        let target = openh264_sys2::SBitrateInfo {
            iLayer: openh264_sys2::SPATIAL_LAYER_ALL,
            iBitrate: bitrate,
        };
        let mut steps = [
            (openh264_sys2::ENCODER_OPTION_MAX_BITRATE, most),
            (openh264_sys2::ENCODER_OPTION_BITRATE, target),
        ];
        if !rising {
            steps.reverse();
        }
        let taken = self.size.is_some()
            && steps
                .iter_mut()
                .all(|(option, info)| self.set_option(*option, info) == 0);
        if !taken {
            self.reconfigure()?;
        }
        Ok(())
    }

    /// Budgets each picture for `fps` pictures a second from the next one
    /// on. OpenH264's rate control gives every picture the bitrate divided
    /// by the frame rate it was configured with and does not look at the
    /// pictures' timestamps: configured for 30 and given 15 a second, it
    /// sent exactly half its bitrate (measured 75/149/249 kbit/s for
    /// 150/300/500 kbit/s, at 320×180 and 640×360 alike).
    pub fn set_frame_rate(&mut self, fps: f32) -> Result<(), CodecError> {
        let fps = fps.max(1.0);
        if fps == self.fps {
            return Ok(());
        }
        self.fps = fps;
        self.frame_ms = 1000.0 / f64::from(fps);
        let mut rate = fps;
        self.apply(openh264_sys2::ENCODER_OPTION_FRAME_RATE, &mut rate)
    }

    /// Puts the settings (`bitrate_bps`, `fps`) into effect: through
    /// `option` on a running encoder, else — not initialised yet, or the
    /// option refused — with a new encoder (its first picture a keyframe).
    fn apply<T>(
        &mut self,
        option: openh264_sys2::ENCODER_OPTION,
        value: &mut T,
    ) -> Result<(), CodecError> {
        if self.size.is_some() && self.set_option(option, value) == 0 {
            return Ok(());
        }
        self.reconfigure()
    }

    /// A new encoder with the settings (its first picture a keyframe).
    fn reconfigure(&mut self) -> Result<(), CodecError> {
        self.inner = H264Encoder::configure(self.bitrate_bps, self.fps, self.complexity)?;
        self.size = None;
        Ok(())
    }

    /// OpenH264's `SetOption` on the initialised encoder: 0 when taken.
    /// The safe API has no live settings; this is OpenH264's own way to
    /// change them without a new encoder (and its keyframe).
    fn set_option<T>(&mut self, option: openh264_sys2::ENCODER_OPTION, value: &mut T) -> i32 {
        // SAFETY: callers pass the value type OpenH264 reads for `option`
        // (`SBitrateInfo` for the bitrates, `f32` for the frame rate); the
        // encoder is initialised (a picture was encoded: `size` is set);
        // `value` outlives the call, and OpenH264 reads it during the call
        // and keeps no pointer to it.
        #[allow(unsafe_code)]
        unsafe {
            self.inner
                .raw_api()
                .set_option(option, std::ptr::addr_of_mut!(*value).cast())
        }
    }

    /// The next access unit (Annex B); a keyframe when `keyframe`. Frames are
    /// taken to be captured at the configured rate. Empty when rate control
    /// skipped the frame.
    pub fn encode(&mut self, frame: &I420Frame, keyframe: bool) -> Result<Vec<u8>, CodecError> {
        let at = Duration::from_secs_f64(self.next_ms / 1000.0);
        self.next_ms += self.frame_ms;
        self.encode_at(frame, keyframe, at)
    }

    /// The same for a picture at `at` on rate control's timeline (from the
    /// start of the stream): rate control budgets bits per unit of this time.
    pub fn encode_at(
        &mut self,
        frame: &I420Frame,
        keyframe: bool,
        at: Duration,
    ) -> Result<Vec<u8>, CodecError> {
        let size = (frame.width(), frame.height());
        if self.size.is_some_and(|s| s != size) {
            // OpenH264 would re-initialise from the bitrate it was built with.
            self.inner = H264Encoder::configure(self.bitrate_bps, self.fps, self.complexity)?;
        }
        self.size = Some(size);
        if keyframe {
            self.inner.force_intra_frame();
        }
        let at = Timestamp::from_millis(at.as_millis() as u64);
        Ok(self.inner.encode_at(frame, at)?.to_vec())
    }

    /// A keyframe that rate control aims at [`REPAIR_KEYFRAME_SHARE`] of
    /// the bitrate, for a receiver that lost part of the stream: on the
    /// path that lost it, a keyframe of the usual size is the first thing
    /// lost again. The bitrate is back for the next picture. A stream
    /// that starts with this picture — the encoder's first, or the first
    /// at another size — starts with a full keyframe, for every member.
    pub fn encode_repair_keyframe_at(
        &mut self,
        frame: &I420Frame,
        at: Duration,
    ) -> Result<Vec<u8>, CodecError> {
        if self.size != Some((frame.width(), frame.height())) {
            return self.encode_at(frame, true, at);
        }
        let bitrate_bps = self.bitrate_bps;
        self.set_bitrate((f64::from(bitrate_bps) * REPAIR_KEYFRAME_SHARE) as u32)?;
        let unit = self.encode_at(frame, true, at);
        self.set_bitrate(bitrate_bps)?;
        unit
    }
}

/// The NAL unit types of an Annex B access unit, in order (7 SPS, 8 PPS,
/// 5 IDR slice, 1 other slice).
pub fn nal_types(unit: &[u8]) -> Vec<u8> {
    nal_type_iter(unit).collect()
}

/// Whether an Annex B access unit is a keyframe (its slices are IDR
/// slices). A picture's slices are all IDR or none (H.264 7.4.1.2.4), so
/// the first slice decides: a delta picture, read for every picture
/// received, stops at its first unit instead of scanning all its bytes.
pub fn is_keyframe(unit: &[u8]) -> bool {
    nal_type_iter(unit).find(|t| *t == super::nal::IDR || *t == super::nal::SLICE)
        == Some(super::nal::IDR)
}

fn nal_type_iter(unit: &[u8]) -> impl Iterator<Item = u8> + '_ {
    unit.windows(4)
        .filter(|w| w[..3] == [0, 0, 1])
        .map(|w| w[3] & 0x1f)
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

    #[test]
    fn the_bitrate_and_frame_rate_change_without_a_keyframe() {
        // A camera's pictures at half size, the bitrate climbing and
        // falling as congestion control's estimate does, the frame rate
        // with it: only the first picture is a keyframe.
        let mut pattern = TestPattern::busy(640, 360);
        let mut encoder = H264Encoder::new(296_000, 20.0).unwrap();
        let steps = [
            (296_000, 20.0),
            (432_000, 20.0),
            (705_000, 30.0),
            (1_000_000, 30.0),
            (150_000, 15.0),
            (600_000, 30.0),
        ];
        let (mut keyframes, mut rates) = (Vec::new(), Vec::new());
        let mut at = Duration::ZERO;
        for (step, (bps, fps)) in steps.into_iter().enumerate() {
            encoder.set_bitrate(bps).unwrap();
            encoder.set_frame_rate(fps).unwrap();
            let mut bytes = 0;
            for n in 0..20 {
                let frame = pattern.next_frame().halved();
                let unit = encoder.encode_at(&frame, step == 0 && n == 0, at).unwrap();
                at += Duration::from_secs_f32(1.0 / fps);
                if is_keyframe(&unit) {
                    keyframes.push((bps, n));
                } else if n >= 10 {
                    bytes += unit.len();
                }
            }
            // What the last half of the step's pictures came to, bit/s.
            rates.push(bytes as f32 * 8.0 * fps / 10.0);
        }
        assert_eq!(keyframes, vec![(296_000, 0)]);
        // And rate control took each bitrate (within a third of it).
        for ((bps, _), rate) in steps.iter().zip(&rates) {
            let bps = *bps as f32;
            assert!(
                (bps * 0.67..bps * 1.33).contains(rate),
                "{bps} bit/s made {rate:.0}: {rates:?}"
            );
        }
    }

    #[test]
    fn a_halved_pattern_keeps_its_strip_at_a_low_bitrate() {
        // What a sender short of bandwidth sends: 320×180 at 100 kbit/s.
        let mut pattern = TestPattern::busy(640, 360);
        let mut encoder = H264Encoder::new(100_000, 15.0).unwrap();
        let mut decoder = H264Decoder::new().unwrap();
        let mut read = Vec::new();
        // Rate control on the pictures' own timeline, not the wall clock's
        // (a loaded machine's would have it skip pictures at random).
        for n in 0..45u32 {
            let frame = pattern.next_frame().halved();
            let at = Duration::from_millis(u64::from(n) * 1000 / 15);
            let unit = encoder.encode_at(&frame, n == 0, at).unwrap();
            if let Some(picture) = decoder.decode(&unit).unwrap() {
                read.push(read_stamp(&picture).map(|s| s.sequence));
            }
        }
        // Rate control may skip a picture; every one decoded is read.
        assert!(read.len() >= 40, "{} pictures", read.len());
        let sequences: Vec<u32> = read.iter().flatten().copied().collect();
        assert_eq!(
            sequences.len(),
            read.len(),
            "every picture's strip: {read:?}"
        );
        assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{read:?}");
    }

    /// Whether an access unit holds an IDR picture (NAL type 5).
    fn has_idr(unit: &[u8]) -> bool {
        openh264::nal_units(unit).any(|nal| {
            nal.get(nal.iter().position(|&b| b != 0).map_or(0, |i| i + 1))
                .is_some_and(|h| h & 0x1f == 5)
        })
    }

    /// Kilobits a second of `seconds` of the busy pattern at `fps`
    /// (after a second to settle), each picture stamped with its time
    /// from `start_s` on.
    fn rate_at(encoder: &mut H264Encoder, fps: u32, seconds: u32, start_s: u32) -> usize {
        let mut pattern = TestPattern::busy(320, 180);
        let mut bytes = 0;
        for i in 0..fps * (seconds + 1) {
            let at = Duration::from_millis(u64::from(start_s * 1000 + i * 1000 / fps));
            let first = i == 0 && start_s == 0;
            let unit = encoder.encode_at(&pattern.next_frame(), first, at).unwrap();
            if i >= fps {
                bytes += unit.len();
            }
        }
        bytes * 8 / seconds as usize / 1000
    }

    #[test]
    fn fewer_pictures_a_second_each_get_a_larger_share_of_the_bitrate() {
        let mut encoder = H264Encoder::new(300_000, 30.0).unwrap();
        encoder.set_frame_rate(15.0).unwrap();
        let kbps = rate_at(&mut encoder, 15, 4, 0);
        assert!((255..=345).contains(&kbps), "{kbps} kbit/s of 300");
        // Live, on an encoder already running at 30.
        let mut encoder = H264Encoder::new(300_000, 30.0).unwrap();
        rate_at(&mut encoder, 30, 1, 0);
        encoder.set_frame_rate(15.0).unwrap();
        let kbps = rate_at(&mut encoder, 15, 4, 2);
        assert!(
            (255..=345).contains(&kbps),
            "{kbps} kbit/s of 300 after the change"
        );
    }

    #[test]
    fn the_bitrate_changes_mid_stream_without_a_keyframe() {
        let mut pattern = TestPattern::busy(640, 360);
        let mut encoder = H264Encoder::new(2_000_000, 30.0).unwrap();
        let mut bytes = |encoder: &mut H264Encoder, frames: usize, starts_key: bool| {
            let mut total = 0;
            for n in 0..frames {
                let unit = encoder.encode(&pattern.next_frame(), false).unwrap();
                assert_eq!(has_idr(&unit), starts_key && n == 0, "frame {n}");
                total += unit.len();
            }
            total
        };
        let high = bytes(&mut encoder, 60, true);
        encoder.set_bitrate(200_000).unwrap();
        let low = bytes(&mut encoder, 60, false);
        assert!(
            low * 3 < high,
            "{high} bytes at 2 Mbit/s, {low} at 200 kbit/s"
        );
    }

    #[test]
    fn a_repair_keyframe_is_a_fraction_of_a_full_one_and_the_bitrate_comes_back() {
        // Two encoders in the same state (two seconds of the busy pattern
        // at 1 Mbit/s); one's next picture is a full keyframe, the other's
        // a repair keyframe.
        let warmed = || {
            let mut pattern = TestPattern::busy(640, 360);
            let mut encoder = H264Encoder::new(1_000_000, 30.0).unwrap();
            for n in 0..60 {
                encoder.encode(&pattern.next_frame(), n == 0).unwrap();
            }
            (pattern, encoder)
        };
        let (mut pattern, mut encoder) = warmed();
        let full = encoder.encode(&pattern.next_frame(), true).unwrap();
        let (mut pattern, mut encoder) = warmed();
        let at = Duration::from_secs(2);
        let repair = encoder
            .encode_repair_keyframe_at(&pattern.next_frame(), at)
            .unwrap();
        assert!(has_idr(&full) && has_idr(&repair));
        assert!(
            repair.len() * 2 < full.len(),
            "repair {} bytes, full {}",
            repair.len(),
            full.len()
        );
        assert_eq!(encoder.bitrate_bps(), 1_000_000);
        // It decodes (the strip read), and so do the pictures after it.
        let mut decoder = H264Decoder::new().unwrap();
        let picture = decoder.decode(&repair).unwrap().unwrap();
        assert!(read_stamp(&picture).is_some());
        let mut after = 0;
        for n in 1..=30u32 {
            let at = at + Duration::from_millis(u64::from(n) * 1000 / 30);
            let unit = encoder.encode_at(&pattern.next_frame(), false, at).unwrap();
            assert!(!has_idr(&unit), "picture {n} after it");
            after += usize::from(decoder.decode(&unit).unwrap().is_some());
        }
        assert!(after >= 25, "{after} of 30 pictures after it decoded");
    }

    #[test]
    fn a_new_encoders_first_keyframe_is_full_even_when_asked_as_a_repair() {
        let frame = TestPattern::busy(640, 360).next_frame();
        let mut usual = H264Encoder::new(1_000_000, 30.0).unwrap();
        let mut asked = H264Encoder::new(1_000_000, 30.0).unwrap();
        let first = usual.encode_at(&frame, true, Duration::ZERO).unwrap();
        let repair = asked
            .encode_repair_keyframe_at(&frame, Duration::ZERO)
            .unwrap();
        assert!(has_idr(&first));
        assert!(
            repair == first,
            "{} bytes, a full keyframe {}",
            repair.len(),
            first.len()
        );
    }
}
