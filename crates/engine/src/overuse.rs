//! Overuse: the delay trend against a threshold that follows the trend.
//!
//! GCC calls the path overused when the (scaled) delay trend stays above a
//! threshold, and adapts that threshold to the size of the trend itself so
//! that a path whose delay swings by nature (Wi-Fi, a loaded machine) is
//! not read as congested. How fast it adapts each way decides whether the
//! detector stays awake. webrtc-rs's `OveruseDetector` uses the draft's
//! gains (raised 0.01 per ms, lowered 0.00018 per ms): in the network
//! lab's 250 kbit/s dip one overuse lifted the threshold to 47 and it took
//! 20 s to come back down to 6, while the queue filled again with the trend
//! at 25–46 — under it, so the delay half climbed from 180 to 630 kbit/s on
//! a 250 kbit/s path and only the losses of a full queue brought it down.
//! libwebrtc lowers the threshold faster than it raises it (0.039 and
//! 0.0087 per ms), which is what [`Detector`] does.

use std::time::{Duration, Instant};

use rtc::interceptor::Usage;

/// The threshold's first value, and its limits (ms).
const INITIAL: f64 = 12.5;
const FLOOR: f64 = 6.0;
const CEILING: f64 = 600.0;
/// Gains per millisecond while the trend is above / below the threshold.
const RAISE_PER_MS: f64 = 0.0087;
const LOWER_PER_MS: f64 = 0.039;
/// A trend this far beyond the threshold is an outlier (a stall, a
/// keyframe's burst): it does not move the threshold.
const OUTLIER_MS: f64 = 15.0;
/// At most this long between updates counts towards a step.
const MAX_STEP: Duration = Duration::from_millis(100);
/// The trend must stay above the threshold this long (and for more than
/// one reading, still growing) to be overuse. libwebrtc now waits 10 ms;
/// with that, the network lab's ±30 ms of per-packet jitter read as
/// overuse several times a second and the delay half fell to 250 kbit/s
/// on a 2.5 Mbit/s path; at 100 ms it stays at its ceiling there, and the
/// 250 kbit/s dip froze about as long (2.4–4.9 s a direction in two runs,
/// against 2.1–3.5 s at 10 ms).
const OVERUSE_AFTER: Duration = Duration::from_millis(100);

/// The threshold that follows the trend's size.
#[derive(Debug, Clone, Copy)]
struct Threshold {
    value: f64,
    updated: Option<Instant>,
}

impl Threshold {
    fn update(&mut self, at: Instant, trend: f64) {
        let Some(last) = self.updated.replace(at) else {
            return;
        };
        let magnitude = trend.abs();
        if magnitude > self.value + OUTLIER_MS {
            return;
        }
        let gain = if magnitude < self.value {
            LOWER_PER_MS
        } else {
            RAISE_PER_MS
        };
        let ms = at
            .saturating_duration_since(last)
            .min(MAX_STEP)
            .as_secs_f64()
            * 1000.0;
        // Never past the trend itself, however long the step.
        let step = (gain * ms).min(1.0);
        self.value = (self.value + step * (magnitude - self.value)).clamp(FLOOR, CEILING);
    }
}

/// Scaled delay trends in, [`Usage`] out.
#[derive(Debug, Clone, Copy)]
pub struct Detector {
    threshold: Threshold,
    /// Since when, and for how many readings, the trend has been above.
    above_since: Option<Instant>,
    above_count: u32,
    previous: f64,
    usage: Usage,
}

impl Default for Detector {
    fn default() -> Detector {
        Detector {
            threshold: Threshold {
                value: INITIAL,
                updated: None,
            },
            above_since: None,
            above_count: 0,
            previous: 0.0,
            usage: Usage::Normal,
        }
    }
}

impl Detector {
    pub fn usage(&self) -> Usage {
        self.usage
    }

    pub fn threshold_ms(&self) -> f64 {
        self.threshold.value
    }

    /// Takes the trend (ms, already scaled) after the group that left `at`
    /// (the sender's clock, as the trend's own times).
    pub fn update(&mut self, at: Instant, trend: f64) -> Usage {
        let threshold = self.threshold.value;
        if trend > threshold {
            let since = *self.above_since.get_or_insert(at);
            self.above_count += 1;
            if at.saturating_duration_since(since) >= OVERUSE_AFTER
                && self.above_count > 1
                && trend >= self.previous
            {
                self.usage = Usage::Over;
            }
        } else {
            self.above_since = None;
            self.above_count = 0;
            self.usage = if trend < -threshold {
                Usage::Under
            } else {
                Usage::Normal
            };
        }
        self.previous = trend;
        self.threshold.update(at, trend);
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `trend` every 20 ms for `ms`; the usage after.
    fn feed(d: &mut Detector, at: &mut Instant, ms: u64, trend: impl Fn(u64) -> f64) -> Usage {
        for i in 0..ms / 20 {
            *at += Duration::from_millis(20);
            d.update(*at, trend(i));
        }
        d.usage()
    }

    #[test]
    fn a_quiet_path_is_normal_and_a_lone_spike_is_not_overuse() {
        let mut d = Detector::default();
        let mut at = Instant::now();
        assert_eq!(feed(&mut d, &mut at, 2000, |_| 1.0), Usage::Normal);
        assert_eq!(d.threshold_ms(), FLOOR);
        assert_eq!(feed(&mut d, &mut at, 20, |_| 40.0), Usage::Normal);
        assert_eq!(feed(&mut d, &mut at, 200, |_| 1.0), Usage::Normal);
    }

    #[test]
    fn a_growing_queue_is_overuse_and_a_draining_one_underuse() {
        let mut d = Detector::default();
        let mut at = Instant::now();
        let usage = feed(&mut d, &mut at, 200, |i| 20.0 + i as f64);
        assert_eq!(usage, Usage::Over);
        // Back inside the threshold is believed at once.
        assert_eq!(feed(&mut d, &mut at, 20, |_| 0.0), Usage::Normal);
        assert_eq!(feed(&mut d, &mut at, 20, |_| -30.0), Usage::Under);
    }

    #[test]
    fn after_an_overuse_a_moderate_growth_is_still_seen_within_a_second() {
        // The network lab's dip: an overuse at ~50, a quiet second, then a
        // queue filling again with the trend at 25–35.
        let mut d = Detector::default();
        let mut at = Instant::now();
        feed(&mut d, &mut at, 1000, |i| 30.0 + i as f64 * 0.5);
        assert_eq!(d.usage(), Usage::Over);
        feed(&mut d, &mut at, 1000, |_| 0.0);
        assert!(d.threshold_ms() < 10.0, "{d:?}");
        let mut seen = None;
        for step in 0..50u64 {
            at += Duration::from_millis(20);
            if d.update(at, 25.0 + step as f64 * 0.2) == Usage::Over {
                seen = Some(step * 20);
                break;
            }
        }
        assert!(seen.is_some_and(|ms| ms <= 1000), "{seen:?} {d:?}");
    }

    #[test]
    fn a_path_that_swings_by_nature_raises_the_threshold() {
        // ±20 every reading: the threshold climbs above the swings' size
        // and they stop being read as overuse.
        let mut d = Detector::default();
        let mut at = Instant::now();
        feed(&mut d, &mut at, 10_000, |i| {
            if i % 2 == 0 {
                20.0
            } else {
                -20.0
            }
        });
        assert!(d.threshold_ms() > 15.0, "{d:?}");
    }
}
