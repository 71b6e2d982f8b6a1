//! Congestion control's estimate where the application can read it.
//!
//! webrtc-rs runs the estimator (GCC) inside its interceptor chain and
//! tells the rest of the chain only when the target changes, so a path
//! that never needs a change never shows an estimate at all. [`Shared`]
//! wraps the estimator and publishes its target after every round of
//! feedback, with whether any feedback has arrived yet: the link's stats
//! and the encoder's bitrate read it from there. The chain itself — its
//! pacer — is told a multiple of it ([`PACING_FACTOR`]).
//!
//! [`BitrateControl`] turns a link's estimate into the video bitrate it
//! is given.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::interceptor::{BandwidthEstimator, EstimatorStats, PacketReport};

use crate::peer::MIN_BITRATE_BPS;
use crate::resent_share;

/// The estimate as last published.
#[derive(Debug, Default)]
pub struct Estimate {
    bits_per_second: AtomicU64,
    informed: AtomicBool,
    /// The round trip the feedback implies, in microseconds (0: unknown).
    rtt_us: AtomicU64,
    /// The share of the last second's RTP that was resent, as `f64` bits
    /// (`resent_share.rs`).
    resent_share: AtomicU64,
}

impl Estimate {
    /// The target in bits per second, once feedback from the remote has
    /// informed it (before that it is only the starting guess).
    pub fn get(&self) -> Option<f64> {
        self.informed
            .load(Ordering::Relaxed)
            .then(|| f64::from_bits(self.bits_per_second.load(Ordering::Relaxed)))
    }

    /// The round trip the recent feedback implies (`None` before any; see
    /// `Estimator::rtt`).
    pub fn rtt(&self) -> Option<Duration> {
        match self.rtt_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// What the link's media may take of the estimate: the estimate less
    /// the share resends took of the last second, at most
    /// [`resent_share::MAX_SHARE`] (`None` before feedback).
    pub fn for_media(&self) -> Option<f64> {
        let resent = self.resent_share().clamp(0.0, resent_share::MAX_SHARE);
        self.get().map(|bps| bps * (1.0 - resent))
    }

    /// The share of the last second's RTP that was resent.
    pub fn resent_share(&self) -> f64 {
        f64::from_bits(self.resent_share.load(Ordering::Relaxed))
    }

    pub(crate) fn set_resent_share(&self, share: f64) {
        self.resent_share.store(share.to_bits(), Ordering::Relaxed);
    }

    pub(crate) fn set_rtt(&self, rtt: Duration) {
        let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX).max(1);
        self.rtt_us.store(us, Ordering::Relaxed);
    }

    pub(crate) fn set(&self, bits_per_second: f64, informed: bool) {
        self.bits_per_second
            .store(bits_per_second.to_bits(), Ordering::Relaxed);
        if informed {
            self.informed.store(true, Ordering::Relaxed);
        }
    }
}

/// How much faster than the estimate packets may leave: a keyframe is many
/// times an average frame, and pacing it at the estimate itself would hold
/// it back for hundreds of milliseconds (libwebrtc uses the same factor).
/// Unpaced, a 720p keyframe's burst overflows a receiver's socket buffer
/// even on loopback (measured: loss, retransmission storms, the estimate
/// at its floor).
pub const PACING_FACTOR: f64 = 2.5;

/// An estimator that publishes its target to an [`Estimate`].
#[derive(Debug)]
pub struct Shared<E> {
    inner: E,
    estimate: Arc<Estimate>,
    logged: Option<Instant>,
}

impl<E: BandwidthEstimator> Shared<E> {
    pub fn new(inner: E) -> (Shared<E>, Arc<Estimate>) {
        let estimate = Arc::new(Estimate::default());
        estimate.set(inner.target_bitrate(), false);
        (
            Shared {
                inner,
                estimate: estimate.clone(),
                logged: None,
            },
            estimate,
        )
    }
}

impl<E: BandwidthEstimator> BandwidthEstimator for Shared<E> {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.inner.on_reports(now, reports);
        self.estimate
            .set(self.inner.target_bitrate(), !reports.is_empty());
        if let Some(rtt) = self.inner.stats().round_trip_time {
            self.estimate.set_rtt(rtt);
        }
        if self
            .logged
            .is_none_or(|t| now.saturating_duration_since(t) > Duration::from_secs(1))
        {
            self.logged = Some(now);
            let stats = self.inner.stats();
            tracing::debug!(
                target_bps = self.inner.target_bitrate(),
                delay_bps = ?stats.delay_based_bitrate,
                loss_bps = ?stats.loss_based_bitrate,
                loss = ?stats.packet_loss,
                reports = reports.len(),
                lost = reports.iter().filter(|r| !r.arrived).count(),
                resent_share = self.estimate.resent_share(),
                "congestion estimate"
            );
        }
    }

    /// What the interceptor chain is told — the pacer paces at it — is
    /// [`PACING_FACTOR`] times the estimate; the application reads the
    /// estimate itself from the [`Estimate`].
    fn target_bitrate(&self) -> f64 {
        self.inner.target_bitrate() * PACING_FACTOR
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
        self.estimate.set(self.inner.target_bitrate(), false);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.inner.stats()
    }
}

/// What audio takes from a link's estimate: Opus at 32 kbit/s and its RTP
/// headers (~10 kbit/s at 50 packets a second). The estimate counts RTP
/// packets, not IP and UDP headers (`PacketReport::size`); this was 60 kbit/s.
const AUDIO_AND_OVERHEAD_BPS: f64 = 45_000.0;
/// The share of what is left that video aims for: its RTP headers take
/// ~3 % of a 1,200-byte packet, the rest is headroom for a frame over its
/// share — a keyframe above all, which weighs most where bits are fewest.
/// Measured in the network lab (native↔native, one run each, same
/// session), one share for every rate: at 0.95 the RFC 8867 §5.1 plateaus
/// of 1 / 0.6 / 1 Mbit/s carried 83 / 80–81 / 78–82 % of capacity as media
/// (0.9: 81 / 78 / 80–81 %) but the 250 kbit/s dip froze 7.4 and 6.2 s
/// (0.9: 3.9 s) — less headroom, more keyframes stuck in a full queue. So
/// the share is [`NARROW_SHARE`] up to [`NARROW_LINK_BPS`] and
/// [`WIDE_SHARE`] from [`WIDE_LINK_BPS`] on, in a straight line between.
const NARROW_SHARE: f64 = 0.9;
const WIDE_SHARE: f64 = 0.95;
const NARROW_LINK_BPS: f64 = 300_000.0;
const WIDE_LINK_BPS: f64 = 500_000.0;

fn video_fraction(link_bps: f64) -> f64 {
    let wide = ((link_bps - NARROW_LINK_BPS) / (WIDE_LINK_BPS - NARROW_LINK_BPS)).clamp(0.0, 1.0);
    NARROW_SHARE + (WIDE_SHARE - NARROW_SHARE) * wide
}

/// What a link must carry for video at `video_bps` with its audio and
/// overhead: where the estimator starts and the most it will ask for (the
/// inverse of [`video_share`], which only grows: found by halving).
pub fn link_budget(video_bps: u32) -> f64 {
    let wanted = f64::from(video_bps);
    let (mut low, mut high) = (
        AUDIO_AND_OVERHEAD_BPS,
        wanted / NARROW_SHARE + AUDIO_AND_OVERHEAD_BPS,
    );
    while high - low > 0.5 {
        let mid = (low + high) / 2.0;
        if video_share(mid) < wanted {
            low = mid;
        } else {
            high = mid;
        }
    }
    high
}

/// Where a call's video starts, at most, before any path has said what it
/// carries. The estimate climbs from there at the far pace (×1.5 a second,
/// `aimd.rs`) while the path allows: a call that wants 2.5 Mbit/s has it
/// ~3 s later on a path that carries it. Started at 2.5 Mbit/s, a 720p
/// call on a 1 Mbit/s path (RFC 8867 §5.1's first plateau, in the network
/// lab) overfilled the 300 ms queue before the first feedback could tell —
/// a round trip, and the delay trend a few more — and its first ~1.5 s
/// froze in both directions. libwebrtc starts at 300 kbit/s and probes at
/// 3× and 6× within the first second; with no probing here, a start that
/// low would climb for 5 s.
pub const START_VIDEO_BPS: u32 = 1_000_000;

/// The video bitrate a call that wants at most `max_bps` starts at.
pub fn start_bps(max_bps: u32) -> u32 {
    max_bps.min(START_VIDEO_BPS)
}

/// The video bitrate a link estimate leaves room for.
pub fn video_share(link_bps: f64) -> f64 {
    (link_bps - AUDIO_AND_OVERHEAD_BPS) * video_fraction(link_bps)
}

/// How long the bitrate stays before it may go up again (half a second:
/// a step's overshoot shows in the delay signal within a round trip or
/// two; at a second a step, climbing from the floor back to 1 Mbit/s after
/// the network lab's dip took 6–8 s). Until the links' estimates were read
/// every 100 ms (`call`'s `RATE_EVERY`), the one-second reading made it a
/// step a second at most; at 0.6 s a step, the dip's full rate came back
/// 4 s after the path (native↔native and native→Chromium)…
pub const UP_AFTER: Duration = Duration::from_millis(500);
/// …and how far, at most: the estimate climbs whether the encoder uses it
/// or not (there is no probing), so each step up is the path's test. One
/// jump to the whole estimate (~590 kbit/s of video, in the lab's 250
/// kbit/s dip) filled the queue and froze Chromium's picture for 3.4 s.
pub const UP_STEP: f64 = 1.5;
/// A rise is worth a change once it is over 1/`UP_AT` of the bitrate: at
/// 1/10 the encoder followed a climbing estimate in steps two seconds
/// apart, 100–200 kbit/s under it on a 1 Mbit/s path.
const UP_AT: u32 = 20;

/// Sets the video bitrate a link is given from its congestion estimate
/// (`encodings` groups the links' bitrates into encodings). Down at once,
/// up only after a quiet spell ([`UP_AFTER`]) and by [`UP_STEP`] at most,
/// and only for a real change, so rate control settles between changes.
#[derive(Debug)]
pub struct BitrateControl {
    max_bps: u32,
    current_bps: u32,
    last_change: Instant,
}

impl BitrateControl {
    pub fn new(max_bps: u32) -> BitrateControl {
        BitrateControl::new_at(Instant::now(), max_bps)
    }

    pub fn new_at(now: Instant, max_bps: u32) -> BitrateControl {
        BitrateControl {
            max_bps,
            current_bps: max_bps,
            last_change: now,
        }
    }

    /// The new bitrate, if it should change, given the link's estimate.
    pub fn update(&mut self, estimate_bps: f64) -> Option<u32> {
        self.update_at(Instant::now(), estimate_bps)
    }

    pub fn update_at(&mut self, now: Instant, estimate_bps: f64) -> Option<u32> {
        let floor = MIN_BITRATE_BPS.min(self.max_bps);
        let wanted = video_share(estimate_bps)
            .clamp(f64::from(floor), f64::from(self.max_bps))
            .round() as u32;
        let current = self.current_bps;
        let quiet = now.saturating_duration_since(self.last_change) > UP_AFTER;
        let down = wanted < current - current / 10;
        let up = quiet
            && (wanted > current + current / UP_AT || wanted == self.max_bps && wanted > current);
        if !(down || up) {
            return None;
        }
        let wanted = if up {
            wanted.min((f64::from(current) * UP_STEP).round() as u32)
        } else {
            wanted
        };
        self.current_bps = wanted;
        self.last_change = now;
        Some(wanted)
    }

    /// The bitrate the encoder aims for now.
    pub fn current(&self) -> u32 {
        self.current_bps
    }
}

/// The encoder's share of the path as a leaky bucket: what was encoded
/// drains at the video bitrate, and while more than [`MAX_BACKLOG`] of it
/// waits, pictures are skipped at the source.
///
/// Without it the encoder outran the pacer whenever its output exceeded its
/// target — a keyframe for every loss report at a low bitrate does — and the
/// pacer (webrtc-rs queues up to 4096 packets) held tens of seconds of stale
/// video: in the network lab's 250 kbit/s dip the delay reached 31 s and
/// video never came back. libwebrtc pushes back on the encoder the same way.
#[derive(Debug, Default)]
pub struct SendBudget {
    backlog_bits: f64,
    at: Option<Instant>,
}

/// How much encoded video may wait for the path, in time at its bitrate.
pub const MAX_BACKLOG: Duration = Duration::from_millis(500);

impl SendBudget {
    /// Whether a picture may be encoded `now`, at `bitrate_bps`.
    pub fn allows(&mut self, now: Instant, bitrate_bps: u32) -> bool {
        let rate = f64::from(bitrate_bps.max(1));
        if let Some(at) = self.at {
            let drained = now.saturating_duration_since(at).as_secs_f64() * rate;
            self.backlog_bits = (self.backlog_bits - drained).max(0.0);
        }
        self.at = Some(now);
        self.backlog_bits <= rate * MAX_BACKLOG.as_secs_f64()
    }

    /// A picture of `bytes` was encoded.
    pub fn spend(&mut self, bytes: usize) {
        self.backlog_bits += bytes as f64 * 8.0;
    }

    /// How long what waits takes at `bitrate_bps`.
    pub fn backlog(&self, bitrate_bps: u32) -> Duration {
        Duration::from_secs_f64(self.backlog_bits / f64::from(bitrate_bps.max(1)))
    }
}

/// Below this video bitrate a camera picture is sent at half its width and
/// height (a 640×360 keyframe at 100 kbit/s takes most of a second to send,
/// and its P-frames leave room for 3 a second)…
pub const HALVE_BELOW_BPS: u32 = 300_000;
/// …and back at full size above this one (the gap keeps it from flapping).
/// libwebrtc starts 640×360 from 500 kbit/s too. At 450 kbit/s, over the
/// network lab's 500 kbit/s policer, video crossed it on its climbs towards
/// the policer's rate, and the full-size keyframe (7–10 kB, against the
/// policer's 6 kB burst) lost packets: freezes of up to 0.9 s.
pub const FULL_ABOVE_BPS: u32 = 500_000;

/// …once it has stayed above it this long. Over the network lab's 500
/// kbit/s policer, every climb past 500 kbit/s was lost to the policer
/// within 0.3–0.9 s, and the full-size keyframe (7–10 kB against its 6 kB
/// burst) with it: a freeze each time.
pub const FULL_AFTER: Duration = Duration::from_secs(1);

/// Whether camera pictures go at half size: the bitrate's thresholds with
/// a gap between them, and a while above the upper one before going back.
#[derive(Debug, Default)]
pub struct Halving {
    halved: bool,
    /// Since when the bitrate has been above [`FULL_ABOVE_BPS`], halved.
    above_since: Option<Instant>,
}

impl Halving {
    /// Whether to send pictures `width` wide at half size, at `bitrate_bps`
    /// at `now`. Pictures under 480 wide are never halved.
    pub fn decide(&mut self, now: Instant, bitrate_bps: u32, width: usize) -> bool {
        if width < 480 {
            self.halved = false;
        } else if !self.halved {
            self.halved = bitrate_bps < HALVE_BELOW_BPS;
        } else if bitrate_bps > FULL_ABOVE_BPS {
            let since = *self.above_since.get_or_insert(now);
            self.halved = now.saturating_duration_since(since) < FULL_AFTER;
        } else {
            self.above_since = None;
        }
        if !self.halved {
            self.above_since = None;
        }
        self.halved
    }
}

/// The most video of pictures `width` × `height` is sent at, whatever the
/// call and the path allow: past it, more bits buy a picture of that size
/// little. libwebrtc's defaults for one stream (0.6 Mbit/s up to 320×240,
/// 1.7 up to 640×480, 2.0 up to 960×540, 2.5 above), so a desktop camera
/// at 1280×720 may use what Chromium's does, and a smaller picture is not
/// handed bits it cannot use.
pub fn size_ceiling_bps(width: usize, height: usize) -> u32 {
    match width * height {
        0..=76_800 => 600_000,
        76_801..=307_200 => 1_700_000,
        307_201..=518_400 => 2_000_000,
        _ => 2_500_000,
    }
}

/// The frame rate video is sent at for a bitrate: fewer, better pictures
/// when bits are scarce, rather than many that turn to mush (or that rate
/// control skips unevenly).
pub fn frame_rate_for(bitrate_bps: u32, nominal_fps: u32) -> u32 {
    let cap = match bitrate_bps {
        500_000.. => nominal_fps,
        250_000..500_000 => 20,
        _ => 15,
    };
    cap.min(nominal_fps).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::ConstantBitrate;

    #[test]
    fn a_pictures_size_sets_the_most_it_is_sent_at() {
        assert_eq!(size_ceiling_bps(320, 180), 600_000);
        assert_eq!(size_ceiling_bps(640, 360), 1_700_000);
        assert_eq!(size_ceiling_bps(640, 480), 1_700_000);
        assert_eq!(size_ceiling_bps(960, 540), 2_000_000);
        assert_eq!(size_ceiling_bps(1280, 720), 2_500_000);
        assert_eq!(size_ceiling_bps(1920, 1080), 2_500_000);
    }

    #[test]
    fn the_estimate_is_shown_once_feedback_informed_it() {
        let (mut shared, estimate) = Shared::new(ConstantBitrate::new(500_000.0));
        assert_eq!(estimate.get(), None, "a starting guess is not an estimate");
        shared.on_reports(Instant::now(), &[]);
        assert_eq!(estimate.get(), None, "no news");
    }

    #[test]
    fn the_encoder_waits_while_a_large_picture_drains() {
        let start = Instant::now();
        let mut budget = SendBudget::default();
        assert!(budget.allows(start, 100_000));
        budget.spend(35_000); // a keyframe: 2.8 s at 100 kbit/s
        assert!(!budget.allows(start + Duration::from_millis(33), 100_000));
        assert!(!budget.allows(start + Duration::from_secs(2), 100_000));
        assert!(budget.allows(start + Duration::from_millis(2_400), 100_000));
        // At a bitrate that carries it, the same picture is no pause.
        let mut fast = SendBudget::default();
        fast.allows(start, 2_000_000);
        fast.spend(35_000);
        assert!(fast.allows(start + Duration::from_millis(33), 2_000_000));
    }

    #[test]
    fn pictures_shrink_on_a_narrow_path_and_grow_back_without_flapping() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut size = Halving::default();
        assert!(!size.decide(at(0), 1_000_000, 640));
        assert!(
            !size.decide(at(0), 400_000, 640),
            "in the gap it stays full"
        );
        assert!(size.decide(at(0), 250_000, 640));
        assert!(
            size.decide(at(0), 400_000, 640),
            "in the gap it stays halved"
        );
        // Back to full size once above the gap for a while, not at once.
        assert!(size.decide(at(100), 600_000, 640));
        assert!(size.decide(at(900), 600_000, 640));
        // A dip into the gap starts the while over.
        assert!(size.decide(at(1_000), 450_000, 640));
        assert!(size.decide(at(1_200), 600_000, 640));
        assert!(size.decide(at(2_100), 600_000, 640));
        assert!(!size.decide(at(2_200), 600_000, 640));
        let mut small = Halving::default();
        assert!(!small.decide(at(0), 100_000, 320), "small pictures stay");
    }

    #[test]
    fn scarce_bits_go_to_fewer_pictures() {
        assert_eq!(frame_rate_for(1_000_000, 30), 30);
        assert_eq!(frame_rate_for(300_000, 30), 20);
        assert_eq!(frame_rate_for(100_000, 30), 15);
        assert_eq!(frame_rate_for(100_000, 10), 10, "never above the source");
    }

    #[test]
    fn video_leaves_more_headroom_where_bits_are_few() {
        // 250 kbit/s: 0.9 of what audio leaves; 1 Mbit/s: 0.95.
        assert!((video_share(250_000.0) - 184_500.0).abs() < 1.0);
        assert!((video_share(1_000_000.0) - 907_250.0).abs() < 1.0);
        // In between, a straight line: no rate gets less video than a lower one.
        let mut last = 0.0;
        for link in (50_000..1_000_000).step_by(10_000) {
            let video = video_share(f64::from(link));
            assert!(video > last, "{link}: {video} after {last}");
            last = video;
        }
        for video in [100_000, 230_000, 400_000, 1_000_000, 2_500_000] {
            assert!((video_share(link_budget(video)) - f64::from(video)).abs() < 1.0);
        }
    }

    #[test]
    fn an_uncongested_link_leaves_video_its_whole_budget() {
        assert!((video_share(link_budget(1_000_000)) - 1_000_000.0).abs() < 1.0);
        let mut control = BitrateControl::new(1_000_000);
        assert_eq!(control.update(link_budget(1_000_000)), None);
    }

    #[test]
    fn the_bitrate_drops_at_once_and_never_below_the_floor() {
        let mut control = BitrateControl::new(1_000_000);
        assert_eq!(control.update(link_budget(500_000)), Some(500_000));
        assert_eq!(
            control.update(link_budget(480_000)),
            None,
            "small changes wait"
        );
        assert_eq!(control.update(10_000.0), Some(MIN_BITRATE_BPS));
        assert_eq!(
            control.update(link_budget(1_000_000)),
            None,
            "up only after a quiet spell"
        );
    }

    #[test]
    fn the_bitrate_climbs_back_in_steps_each_tested_before_the_next() {
        let mut control = BitrateControl::new(1_000_000);
        let t = Instant::now();
        assert_eq!(control.update_at(t, 10_000.0), Some(MIN_BITRATE_BPS));
        let mut at = t;
        let mut steps = Vec::new();
        while control.current() < 1_000_000 {
            at += UP_AFTER + Duration::from_millis(100);
            steps.extend(control.update_at(at, link_budget(1_000_000)));
        }
        assert_eq!(
            steps,
            [150_000, 225_000, 337_500, 506_250, 759_375, 1_000_000]
        );
    }
}
