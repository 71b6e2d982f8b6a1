//! One encoding of our video: an H.264 encoder with its bitrate, its frame
//! rate and picture size for that bitrate (and for the CPU's
//! [`Level`]), its keyframe timing and its share of the path
//! ([`SendBudget`]). The video task runs one per entry
//! of the [`super::plan::Plan`].

use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, trace, warn};

use super::cadence::Cadence;
use super::cpu::{Level, CHEAPEST_FPS};
use crate::congestion::{frame_rate_for, size_ceiling_bps, Halving, SendBudget};
use crate::video::h264::H264Encoder;
use crate::video::I420Frame;

/// The shortest stretch between two keyframes sent on request; longer
/// while the last keyframe takes long to send at the bitrate (see
/// [`keyframe_spacing`]). Half a second, as the receiver asks (`peer`): a
/// keyframe lost in the full queue of a path that just narrowed costs that
/// much picture again (at a second, a mesh member behind a link fallen to
/// 0.6 Mbit/s lost two or three in a row in some runs: frozen for 5 s).
const KEYFRAME_AT_MOST: Duration = Duration::from_millis(500);
/// …but never longer than this.
const KEYFRAME_AT_MOST_SLOW: Duration = Duration::from_secs(4);
/// The longest stretch without a keyframe.
const KEYFRAME_EVERY: Duration = Duration::from_secs(10);

/// The shortest stretch between keyframes on request: three times what the
/// last one takes to send at the bitrate (a receiver that asks again before
/// the keyframe it asked for could arrive must not get another), within
/// [`KEYFRAME_AT_MOST`]..[`KEYFRAME_AT_MOST_SLOW`].
fn keyframe_spacing(last_keyframe_bytes: usize, bitrate_bps: u32) -> Duration {
    let sending = last_keyframe_bytes as f64 * 8.0 / f64::from(bitrate_bps.max(1));
    Duration::from_secs_f64(3.0 * sending).clamp(KEYFRAME_AT_MOST, KEYFRAME_AT_MOST_SLOW)
}

/// Why a member's next picture should be a keyframe.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyframeNeeds {
    /// It connected, or moved to another encoding: at its next picture.
    pub now: bool,
    /// It asked (PLI/FIR): at most once per [`keyframe_spacing`] — on a
    /// path that loses packets, requests would otherwise have the encoder
    /// send nothing but keyframes, each too large to get through.
    pub requested: bool,
}

/// The keyframe a member's needs call for, the least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Keyframe {
    None,
    /// A request: the member lost part of the stream, on a path that may
    /// lose a full keyframe as well (`H264Encoder::encode_repair_keyframe_at`).
    Repair,
    /// A new member, or a new stream: the picture it starts with.
    Full,
}

impl KeyframeNeeds {
    /// The keyframe the member's next picture is to be, `since_last` after
    /// its encoding's last, requests honoured at most once per `spacing`;
    /// what is answered is cleared.
    fn take(&mut self, since_last: Duration, spacing: Duration) -> Keyframe {
        let now = std::mem::take(&mut self.now);
        let asked = since_last >= spacing && std::mem::take(&mut self.requested);
        if now {
            Keyframe::Full
        } else if asked {
            Keyframe::Repair
        } else {
            Keyframe::None
        }
    }
}

/// Why no picture came of a frame.
#[derive(Debug)]
pub enum Skipped {
    /// Not this encoding's turn (its frame rate), rate control passed, or
    /// the path is still behind: nothing to send.
    Nothing,
    /// There is no encoder (it could not be made): no video at all.
    NoEncoder,
}

/// One encoding's encoder and the state of its pictures.
#[derive(Debug)]
pub struct Encoding {
    /// What the plan gives this encoding.
    bitrate_bps: u32,
    /// The most the source's pictures are worth (`size_ceiling_bps` of the
    /// last one's size): the encoder gets the lesser of the two.
    ceiling_bps: u32,
    encoder: Option<H264Encoder>,
    last_keyframe: Instant,
    last_keyframe_bytes: usize,
    budget: SendBudget,
    /// Camera pictures at half size while the bitrate is low (or the
    /// machine cannot keep up: `Level::HalfSize`).
    by_rate: Halving,
    /// Which pictures are taken (the frame rate follows the bitrate).
    cadence: Cadence,
    /// Where rate control's timeline is.
    rc_time: Duration,
    /// Every member's next picture is a keyframe (video resumed).
    all_now: bool,
    /// Time spent encoding since the video task last asked.
    spent: Duration,
}

/// A picture ready to send, and the frame period it was made for.
#[derive(Debug)]
pub struct Picture {
    pub unit: Bytes,
    pub period: Duration,
}

impl Encoding {
    pub fn new(bitrate_bps: u32) -> Encoding {
        Encoding {
            bitrate_bps,
            ceiling_bps: u32::MAX,
            encoder: None,
            last_keyframe: Instant::now(),
            last_keyframe_bytes: 0,
            budget: SendBudget::default(),
            by_rate: Halving::default(),
            cadence: Cadence::default(),
            rc_time: Duration::ZERO,
            all_now: false,
            spent: Duration::ZERO,
        }
    }

    /// What the encoder is set to: the plan's bitrate, at most the
    /// pictures' ceiling.
    pub fn bitrate(&self) -> u32 {
        self.bitrate_bps.min(self.ceiling_bps)
    }

    pub fn set_bitrate(&mut self, bps: u32) {
        let before = self.bitrate();
        self.bitrate_bps = bps;
        self.apply(before);
    }

    /// Tells the encoder of a change of [`Self::bitrate`] from `before`.
    fn apply(&mut self, before: u32) {
        let now = self.bitrate();
        if now == before {
            return;
        }
        if let Some(encoder) = self.encoder.as_mut() {
            if let Err(e) = encoder.set_bitrate(now) {
                warn!(error = %e, "could not change the video bitrate");
            }
        }
    }

    /// Lets go of the encoder: another source or size, or no members. The
    /// next picture starts a new one (with a keyframe).
    pub fn reset(&mut self) {
        self.encoder = None;
    }

    /// Every member's next picture is a keyframe.
    pub fn keyframe_now(&mut self) {
        self.all_now = true;
    }

    /// The time spent encoding since the last call (see `cpu`).
    pub fn take_spent(&mut self) -> Duration {
        std::mem::take(&mut self.spent)
    }

    /// Encodes `frame`, captured at `captured` from a source of `fps`, for
    /// members whose [`KeyframeNeeds`] are `needs` (those answered are
    /// cleared), as cheaply as the CPU's `level` asks; a shared `screen`
    /// keeps its size and rate.
    pub async fn encode<'a>(
        &mut self,
        frame: &I420Frame,
        fps: u32,
        captured: Instant,
        needs: impl Iterator<Item = &'a mut KeyframeNeeds>,
        screen: bool,
        level: Level,
    ) -> Result<Picture, Skipped> {
        let before = self.bitrate();
        self.ceiling_bps = size_ceiling_bps(frame.width(), frame.height());
        self.apply(before);
        let bitrate_bps = self.bitrate();
        let mut rate = frame_rate_for(bitrate_bps, fps);
        if level == Level::HalfSizeFewer && !screen {
            rate = rate.min(CHEAPEST_FPS);
        }
        let period = Duration::from_secs(1) / rate;
        if !self.cadence.take(captured, period) {
            return Err(Skipped::Nothing);
        }
        let mut current = match self.encoder.take() {
            Some(encoder) => encoder,
            None => match H264Encoder::new(bitrate_bps, rate as f32) {
                Ok(encoder) => {
                    self.rc_time = Duration::ZERO;
                    encoder
                }
                Err(e) => {
                    warn!(error = %e, "no H.264 encoder: sending no video");
                    return Err(Skipped::NoEncoder);
                }
            },
        };
        // Rate control budgets each picture for the rate pictures are sent
        // at (at 15 a second with the encoder set for 30, video used half
        // of what the path allowed).
        if let Err(e) = current.set_frame_rate(rate as f32) {
            warn!(error = %e, "no H.264 encoder: sending no video");
            return Err(Skipped::NoEncoder);
        }
        // A camera picture at half size on a narrow path (a shared screen
        // keeps its size: text must stay legible; it gets fewer pictures).
        let cpu_halves = level >= Level::HalfSize && frame.width() >= 480;
        let by_rate = self.by_rate.decide(captured, bitrate_bps, frame.width());
        let halved = !screen && (cpu_halves || by_rate);
        let size = if halved {
            frame.halved_size()
        } else {
            (frame.width(), frame.height())
        };
        // Another size starts the stream over with a keyframe (OpenH264
        // re-initialises), which answers every member's request and counts
        // for the spacing: uncounted, a request pending at a size change
        // had a second keyframe follow it after the spacing.
        let resized = current.size().is_some_and(|s| s != size);
        // A keyframe when a member needs one (see `KeyframeNeeds`; every
        // member's needs are looked at, so none is left for the next
        // picture), and at least every few seconds so that a member whose
        // request was lost still recovers.
        let since_last = self.last_keyframe.elapsed();
        let spacing = if resized {
            Duration::ZERO
        } else {
            keyframe_spacing(self.last_keyframe_bytes, bitrate_bps)
        };
        let asked = needs.fold(Keyframe::None, |key, need| {
            need.take(since_last, spacing).max(key)
        });
        // A keyframe only members' requests ask for is a repair (smaller);
        // any other is full.
        let full = std::mem::take(&mut self.all_now)
            || asked == Keyframe::Full
            || since_last > KEYFRAME_EVERY;
        // The encoder makes a repair keyframe full on a stream new or
        // resized with this picture.
        let repair = !full && asked == Keyframe::Repair;
        let needed = full || repair;
        // While earlier pictures still wait for the path, this one is
        // skipped (a keyframe a member needs is never held back; a size
        // change waits, and any request is answered with it).
        if !self.budget.allows(captured, bitrate_bps) && !needed {
            trace!(
                backlog_ms = self.budget.backlog(bitrate_bps).as_millis() as u64,
                "a picture skipped: the path is behind"
            );
            self.encoder = Some(current);
            return Err(Skipped::Nothing);
        }
        let key = needed || resized;
        if key {
            self.last_keyframe = Instant::now();
        }
        let frame = if halved {
            frame.halved()
        } else {
            frame.clone()
        };
        // Encoding is CPU work: off the async threads.
        // Rate control's timeline: one period of the intended frame rate per
        // picture encoded. (Real capture time measured worse at 720p on saturated
        // cores: when the encoder managed ~20 fps, rate control then sent
        // ~1.2 Mbit/s of a 2.5 Mbit/s target, against ~2.0 this way.)
        let at = self.rc_time;
        self.rc_time += period;
        let started = Instant::now();
        let encoded = tokio::task::spawn_blocking(move || {
            let unit = if repair {
                current.encode_repair_keyframe_at(&frame, at)
            } else {
                current.encode_at(&frame, key, at)
            };
            (current, unit)
        })
        .await;
        self.spent += started.elapsed();
        let Ok((returned, unit)) = encoded else {
            // The runtime is shutting down.
            return Err(Skipped::NoEncoder);
        };
        self.encoder = Some(returned);
        match unit {
            Ok(unit) if !unit.is_empty() => {
                self.budget.spend(unit.len());
                if key {
                    self.last_keyframe_bytes = unit.len();
                    debug!(
                        bytes = unit.len(),
                        nals = ?crate::video::h264::nal_types(&unit),
                        bitrate_bps,
                        on_request = repair,
                        backlog_ms = self.budget.backlog(bitrate_bps).as_millis() as u64,
                        "keyframe"
                    );
                } else if tracing::enabled!(tracing::Level::DEBUG)
                    && crate::video::h264::is_keyframe(&unit)
                {
                    // A new encoder's first picture, or the encoder's own.
                    debug!(
                        bytes = unit.len(),
                        bitrate_bps, "a keyframe nobody asked for"
                    );
                }
                Ok(Picture {
                    unit: Bytes::from(unit),
                    period,
                })
            }
            Ok(_) => {
                trace!(key, "a picture skipped by rate control");
                Err(Skipped::Nothing)
            }
            Err(e) => {
                warn!(error = %e, "encoding failed");
                Err(Skipped::Nothing)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_answered_at_most_once_per_spacing_and_connections_at_once() {
        let spacing = Duration::from_secs(1);
        let mut needs = KeyframeNeeds {
            now: false,
            requested: true,
        };
        assert_eq!(
            needs.take(Duration::from_millis(300), spacing),
            Keyframe::None
        );
        assert!(needs.requested, "kept for later");
        assert_eq!(
            needs.take(Duration::from_millis(1200), spacing),
            Keyframe::Repair
        );
        assert!(!needs.requested);
        needs.now = true;
        needs.requested = true;
        assert_eq!(needs.take(Duration::ZERO, spacing), Keyframe::Full);
        assert_eq!(needs.take(Duration::ZERO, spacing), Keyframe::None);
    }

    #[test]
    fn keyframes_on_request_are_spaced_by_what_one_takes_to_send() {
        assert_eq!(keyframe_spacing(0, 1_000_000), KEYFRAME_AT_MOST);
        // 60 kB at 200 kbit/s: 2.4 s to send, ×3 > 4 s.
        assert_eq!(keyframe_spacing(60_000, 200_000), KEYFRAME_AT_MOST_SLOW);
        let mid = keyframe_spacing(20_000, 200_000);
        assert!(
            mid > KEYFRAME_AT_MOST && mid < KEYFRAME_AT_MOST_SLOW,
            "{mid:?}"
        );
    }

    #[tokio::test]
    async fn the_encoder_gets_at_most_what_the_pictures_size_is_worth() {
        let mut encoding = Encoding::new(2_500_000);
        let mut needs = KeyframeNeeds::default();
        let start = Instant::now();
        // A second apart: the cadence takes a picture only a frame's period
        // after the last (a machine that encodes the first in less than a
        // period otherwise skips the second).
        for (second, (width, height, bps)) in [(640, 360, 1_700_000), (1280, 720, 2_500_000)]
            .into_iter()
            .enumerate()
        {
            let frame = crate::video::pattern::TestPattern::new(width, height).next_frame();
            let captured = start + Duration::from_secs(second as u64);
            let picture = encoding
                .encode(
                    &frame,
                    30,
                    captured,
                    std::iter::once(&mut needs),
                    false,
                    Level::Full,
                )
                .await;
            assert!(picture.is_ok(), "{width}×{height}: {:?}", picture.err());
            assert_eq!(encoding.bitrate(), bps, "{width}×{height}");
            encoding.reset();
        }
        encoding.set_bitrate(800_000);
        assert_eq!(encoding.bitrate(), 800_000, "under the ceiling: the plan's");
    }

    #[tokio::test]
    async fn a_change_of_size_is_the_keyframe_a_pending_request_waits_for() {
        /// The picture of the pattern's next frame, captured then.
        async fn picture(
            encoding: &mut Encoding,
            needs: &mut KeyframeNeeds,
            pattern: &mut crate::video::pattern::TestPattern,
            captured: Instant,
        ) -> Picture {
            let frame = pattern.next_frame();
            let needs = std::iter::once(needs);
            match encoding
                .encode(&frame, 30, captured, needs, false, Level::Full)
                .await
            {
                Ok(picture) => picture,
                Err(e) => panic!("no picture: {e:?}"),
            }
        }
        let start = Instant::now();
        let at = |second| start + Duration::from_secs(second);
        let mut encoding = Encoding::new(1_000_000);
        let mut needs = KeyframeNeeds::default();
        let mut pattern = crate::video::pattern::TestPattern::new(640, 360);
        picture(&mut encoding, &mut needs, &mut pattern, at(0)).await;
        // A member asks just after the stream began with a keyframe: the
        // request is held for the spacing.
        needs.requested = true;
        picture(&mut encoding, &mut needs, &mut pattern, at(1)).await;
        assert!(needs.requested, "a request within the spacing waits");
        // The path narrows: the pictures go at half size, with a keyframe
        // that answers the request.
        encoding.set_bitrate(200_000);
        let resized = picture(&mut encoding, &mut needs, &mut pattern, at(2)).await;
        assert!(
            crate::video::h264::is_keyframe(&resized.unit),
            "the first half-size picture is a keyframe"
        );
        assert!(!needs.requested, "the size change's keyframe answered it");
    }
}
