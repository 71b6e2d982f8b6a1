//! The bandwidth estimate: GCC's delay half (webrtc-rs's `Gcc`) with a loss
//! half of our own, measured over time rather than per feedback batch.
//!
//! webrtc-rs's loss half averages each feedback batch into an exponential
//! mean (0.8/0.2) and raises its target only when both the mean and the
//! batch are under 2 %. On a path that just recovered, feedback is sparse —
//! little is being sent — so the mean took ~5 s to fall under 2 % and the
//! target then rose 27 %/s from its floor: in the network lab's dip video
//! came back 14–16 s after the capacity did. Here the loss fraction is that
//! of the packets reported in the last [`LOSS_WINDOW`], judged every
//! [`DECIDE_EVERY`]: under 2 % the target grows [`GROWTH`] per decision
//! (about doubling a second, as libwebrtc's probing would find the room),
//! over 10 % it falls by half the loss, in between it holds (libwebrtc's
//! loss-based v1 thresholds).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc::interceptor::{BandwidthEstimator, EstimatorStats, Gcc, PacketReport};

/// The stretch of reports the loss fraction is taken over.
pub const LOSS_WINDOW: Duration = Duration::from_secs(1);
/// How often the loss half decides.
pub const DECIDE_EVERY: Duration = Duration::from_millis(200);
/// The growth per decision while loss is low (about doubling a second).
pub const GROWTH: f64 = 1.15;
/// Fewer reported packets than this in the window decide nothing.
const MIN_PACKETS: usize = 10;
const LOW_LOSS: f64 = 0.02;
const HIGH_LOSS: f64 = 0.10;

/// GCC's delay half and a windowed loss half; the lower one is the target.
pub struct Estimator {
    gcc: Gcc,
    /// (when reported, lost) of the packets in the window.
    window: VecDeque<(Instant, bool)>,
    loss_target: f64,
    last_decision: Option<Instant>,
    min: f64,
    max: f64,
}

impl std::fmt::Debug for Estimator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Estimator")
            .field("loss_target", &self.loss_target)
            .field("delay_target", &self.gcc.delay_based_bitrate())
            .finish_non_exhaustive()
    }
}

impl Estimator {
    pub fn new(initial: f64, min: f64, max: f64) -> Estimator {
        Estimator {
            gcc: Gcc::new(initial, min, max),
            window: VecDeque::new(),
            loss_target: initial.clamp(min, max),
            last_decision: None,
            min,
            max,
        }
    }

    /// The loss fraction over the window, if enough packets were reported.
    fn loss(&self) -> Option<f64> {
        (self.window.len() >= MIN_PACKETS).then(|| {
            self.window.iter().filter(|(_, lost)| *lost).count() as f64 / self.window.len() as f64
        })
    }
}

impl BandwidthEstimator for Estimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.gcc.on_reports(now, reports);
        self.window
            .extend(reports.iter().map(|r| (now, !r.arrived)));
        while self
            .window
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > LOSS_WINDOW)
        {
            self.window.pop_front();
        }
        if self
            .last_decision
            .is_some_and(|t| now.saturating_duration_since(t) < DECIDE_EVERY)
        {
            return;
        }
        let Some(loss) = self.loss() else {
            return;
        };
        self.last_decision = Some(now);
        if loss < LOW_LOSS {
            self.loss_target *= GROWTH;
        } else if loss > HIGH_LOSS {
            self.loss_target *= 1.0 - 0.5 * loss;
        }
        self.loss_target = self.loss_target.clamp(self.min, self.max);
    }

    fn target_bitrate(&self) -> f64 {
        self.gcc
            .delay_based_bitrate()
            .min(self.loss_target)
            .clamp(self.min, self.max)
    }

    fn stats(&self) -> EstimatorStats {
        let mut stats = self.gcc.stats();
        stats.loss_based_bitrate = Some(self.loss_target);
        stats.packet_loss = self.loss();
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    fn batch(start: u64, at: Instant, count: u64, lost_every: Option<u64>) -> Vec<PacketReport> {
        (0..count)
            .map(|i| {
                let lost = lost_every.is_some_and(|n| i % n == 0);
                PacketReport {
                    ssrc: 1,
                    id: start + i,
                    rtp_sequence_number: (start + i) as u16,
                    is_twcc: true,
                    twcc_sequence_number: (start + i) as u16,
                    size: 1200,
                    arrived: !lost,
                    departure: at,
                    arrival: (!lost).then(|| Duration::from_millis((start + i) * 2)),
                    ecn: Ecn::default(),
                }
            })
            .collect()
    }

    /// Feeds `seconds` of feedback, 10 batches a second; the target after.
    fn run(
        e: &mut Estimator,
        from: Instant,
        seconds: u64,
        lost_every: Option<u64>,
        id: &mut u64,
    ) -> Instant {
        let mut at = from;
        for _ in 0..seconds * 10 {
            at += Duration::from_millis(100);
            e.on_reports(at, &batch(*id, at, 20, lost_every));
            *id += 20;
        }
        at
    }

    #[test]
    fn heavy_loss_brings_it_down_and_a_clean_path_back_up_within_seconds() {
        let mut e = Estimator::new(1_200_000.0, 100_000.0, 1_200_000.0);
        let mut id = 0;
        let t = run(&mut e, Instant::now(), 5, Some(3), &mut id); // 33 % lost
        assert!(e.loss_target <= 150_000.0, "{e:?}");
        let t = run(&mut e, t, 5, None, &mut id);
        assert!(e.loss_target >= 1_000_000.0, "not back within 5 s: {e:?}");
        // Moderate loss (5 %) holds.
        let before = e.loss_target;
        run(&mut e, t, 3, Some(20), &mut id);
        assert!((e.loss_target - before).abs() < 1.0, "{e:?}");
    }
}
