//! The delay trend: how fast the path's queue grows, as the slope of a
//! line fitted through the last [`WINDOW`] packet groups' (smoothed)
//! accumulated delay — libwebrtc's trendline filter, in place of
//! webrtc-rs's Kalman filter.
//!
//! webrtc-rs's `SlopeEstimator` filters each group's delay change with a
//! Kalman filter whose gain shrinks as the changes get noisy. At the
//! 250 kbit/s of the network lab's dip they swing by ±15 ms (a picture's
//! packets leave together, a group is often one packet), and the estimate
//! lagged seconds behind the queue: once the queue had drained, the delay
//! half read "underuse" for 3 s more with the delay no longer changing
//! (the rate holds on underuse), and a refilling queue read as growing only
//! when 70–150 ms more of it had built up. A line through the last groups
//! forgets a drained queue once they (and the smoothing) have passed.
//!
//! The slope is scaled as libwebrtc scales it: times the groups seen (at
//! most [`MAX_SCALE`]) and a gain of [`GAIN`], so that the overuse
//! threshold (`overuse.rs`) means the same as there.

use std::collections::VecDeque;
use std::time::Instant;

/// Groups the line is fitted through.
pub const WINDOW: usize = 20;
/// At most this many groups multiply the slope.
pub const MAX_SCALE: u32 = 60;
/// The slope's gain.
pub const GAIN: f64 = 4.0;
/// The accumulated delay's exponential smoothing.
const SMOOTHING: f64 = 0.9;
/// A line is fitted once this many groups are in: libwebrtc waits for a
/// full window, but a path narrower than the first rate fills its queue
/// within the first groups and then, full, shows no growth at all.
const MIN_POINTS: usize = 4;

/// Groups' delay changes in, the scaled trend out.
#[derive(Debug, Clone, Default)]
pub struct Trendline {
    first: Option<Instant>,
    accumulated_ms: f64,
    smoothed_ms: f64,
    /// (ms since the first group left, smoothed accumulated delay).
    points: VecDeque<(f64, f64)>,
    groups: u32,
    slope: f64,
}

impl Trendline {
    /// Takes the delay change (ms) of the group that left `at` (times are
    /// the sender's: a queue that grows shows against the send times as it
    /// does against the arrivals); returns the scaled trend.
    pub fn update(&mut self, at: Instant, delta_ms: f64) -> f64 {
        let first = *self.first.get_or_insert(at);
        let x = at.saturating_duration_since(first).as_secs_f64() * 1000.0;
        self.groups = (self.groups + 1).min(MAX_SCALE);
        self.accumulated_ms += delta_ms;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        self.points.push_back((x, self.smoothed_ms));
        if self.points.len() > WINDOW {
            self.points.pop_front();
        }
        if self.points.len() >= MIN_POINTS {
            if let Some(slope) = fit(&self.points) {
                self.slope = slope;
            }
        }
        self.scaled()
    }

    /// The last trend, scaled.
    pub fn scaled(&self) -> f64 {
        self.slope * f64::from(self.groups) * GAIN
    }
}

/// The least-squares slope through the points; None if they share one x.
fn fit(points: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (x, y) in points {
        num += (x - mean_x) * (y - mean_y);
        den += (x - mean_x) * (x - mean_x);
    }
    (den > 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Groups every `every` ms, each delayed by `delta(i)` ms more than
    /// the last; the scaled trend after each.
    fn run(
        t: &mut Trendline,
        at: &mut Instant,
        every: u64,
        n: u64,
        delta: impl Fn(u64) -> f64,
    ) -> Vec<f64> {
        (0..n)
            .map(|i| {
                *at += Duration::from_millis(every);
                t.update(*at, delta(i))
            })
            .collect()
    }

    #[test]
    fn a_steady_path_reads_flat_and_noise_stays_small() {
        let mut t = Trendline::default();
        let mut at = Instant::now();
        let flat = run(&mut t, &mut at, 20, 100, |_| 0.0);
        assert!(flat.iter().all(|s| s.abs() < 1e-9), "{flat:?}");
        // ±15 ms of swing group to group, no queue: well under the
        // overuse threshold's floor (6).
        let noisy = run(&mut t, &mut at, 60, 200, |i| {
            if i % 2 == 0 {
                15.0
            } else {
                -15.0
            }
        });
        assert!(noisy.iter().all(|s| s.abs() < 6.0), "{noisy:?}");
    }

    #[test]
    fn a_growing_queue_reads_positive_and_a_drained_one_is_forgotten() {
        let mut t = Trendline::default();
        let mut at = Instant::now();
        run(&mut t, &mut at, 60, 60, |_| 0.0);
        // Sending 10 % over the capacity: 6 ms more queue every 60 ms.
        // Past the overuse threshold's floor (6) within a second.
        let growing = run(&mut t, &mut at, 60, 16, |_| 6.0);
        assert!(growing[15] > 6.0, "{growing:?}");
        // The queue drains as fast, then holds: the trend turns negative
        // (the line lags by most of its window); once held, it is inside
        // the threshold's floor a little after the window (24 groups, 1.4 s
        // here) — no longer "underuse" — and near zero after 40.
        let draining = run(&mut t, &mut at, 60, 24, |_| -6.0);
        assert!(draining[23] < -6.0, "{draining:?}");
        let held = run(&mut t, &mut at, 60, 40, |_| 0.0);
        assert!(held[23].abs() < 6.0, "{held:?}");
        assert!(held[39].abs() < 1.0, "{held:?}");
    }
}
