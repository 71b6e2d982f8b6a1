//! The network's jitter as one stream's arrival times show it (NetEQ's
//! relative delay), for the audio and the video playout buffers alike.
//!
//! Each arrival is compared with its RTP time: its *transit* (arrival minus
//! RTP time, against the first arrival) less the least transit of the last
//! [`REFERENCE_WINDOW`] is how much later than the fastest recent packet it
//! came — clock drift and a path whose delay changes for good drop out. The
//! 95th percentile of those over [`DELAY_WINDOW`] is what a buffer aims to
//! absorb.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::estimator::forget_older;

/// Window for the fastest arrival (the reference for relative delay).
pub const REFERENCE_WINDOW: Duration = Duration::from_secs(2);
/// Window for the delay percentile.
pub const DELAY_WINDOW: Duration = Duration::from_secs(10);
/// Arrivals kept at most: 10 s of 10 ms audio packets. A member sending far
/// more than media needs must not make every arrival sort an ever longer
/// window.
const MAX_OBSERVED: usize = 1_000;

/// RTP timestamps (32 bits, wrapping) as a growing count.
#[derive(Debug, Default)]
pub struct RtpClock {
    /// The newest timestamp seen and its extended value.
    newest: Option<(u32, i64)>,
}

impl RtpClock {
    /// `timestamp` extended next to the newest seen (a later one moves it).
    pub fn extend(&mut self, timestamp: u32) -> i64 {
        let at = match self.newest {
            None => i64::from(timestamp),
            Some((last, extended)) => extended + i64::from(timestamp.wrapping_sub(last) as i32),
        };
        if self.newest.is_none_or(|(_, extended)| at > extended) {
            self.newest = Some((timestamp, at));
        }
        at
    }
}

/// One stream's relative delays and their 95th percentile.
#[derive(Debug)]
pub struct Transit {
    /// The RTP clock's rate.
    clock_hz: u32,
    /// (arrival, transit ms) — against an arbitrary origin.
    transits: VecDeque<(Instant, f32)>,
    /// (arrival, ms later than the fastest arrival of the window before).
    relative: VecDeque<(Instant, f32)>,
    origin: Option<(Instant, i64)>,
    /// The 95th percentile of `relative`, ms, as of the last arrival
    /// (asked for far more often than it changes).
    p95_ms: f32,
}

/// Appends `entry`, dropping the oldest beyond [`MAX_OBSERVED`].
fn push_capped<T>(queue: &mut VecDeque<T>, entry: T) {
    queue.push_back(entry);
    if queue.len() > MAX_OBSERVED {
        queue.pop_front();
    }
}

impl Transit {
    /// For an RTP clock of `clock_hz`.
    pub fn new(clock_hz: u32) -> Transit {
        Transit {
            clock_hz,
            transits: VecDeque::new(),
            relative: VecDeque::new(),
            origin: None,
            p95_ms: 0.0,
        }
    }

    /// Something with (extended) RTP time `at` arrived `now`; returns how
    /// much later than the fastest recent arrival it came, ms.
    pub fn observe(&mut self, now: Instant, at: i64) -> f32 {
        let (t0, at0) = *self.origin.get_or_insert((now, at));
        let arrived_ms = now.saturating_duration_since(t0).as_secs_f32() * 1000.0;
        let sent_ms = (at - at0) as f32 * 1000.0 / self.clock_hz as f32;
        let transit = arrived_ms - sent_ms;
        forget_older(&mut self.transits, now, REFERENCE_WINDOW);
        forget_older(&mut self.relative, now, DELAY_WINDOW);
        push_capped(&mut self.transits, (now, transit));
        let fastest = self
            .transits
            .iter()
            .map(|e| e.1)
            .fold(f32::INFINITY, f32::min);
        let relative = transit - fastest;
        push_capped(&mut self.relative, (now, relative));
        let mut delays: Vec<f32> = self.relative.iter().map(|e| e.1).collect();
        let at = (delays.len() - 1) * 95 / 100;
        let (_, value, _) = delays.select_nth_unstable_by(at, f32::total_cmp);
        self.p95_ms = *value;
        relative
    }

    /// The 95th percentile of the relative delays, ms (0 before any).
    pub fn percentile_ms(&self) -> f32 {
        self.p95_ms
    }

    /// Forgets everything (the sender started over).
    pub fn reset(&mut self) {
        *self = Transit::new(self.clock_hz);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_wrap_into_a_growing_count() {
        let mut clock = RtpClock::default();
        assert_eq!(clock.extend(u32::MAX - 10), i64::from(u32::MAX - 10));
        assert_eq!(clock.extend(5), i64::from(u32::MAX) + 6);
        assert_eq!(
            clock.extend(u32::MAX - 20),
            i64::from(u32::MAX - 20),
            "a late one"
        );
        assert_eq!(clock.extend(10), i64::from(u32::MAX) + 11);
    }

    #[test]
    fn the_percentile_is_of_the_delays_beyond_the_fastest() {
        let t = Instant::now();
        let mut transit = Transit::new(90_000);
        // A picture every 33 ms; every tenth 60 ms late, the rest on time.
        for n in 0..300i64 {
            let late = if n % 10 == 5 { 60 } else { 0 };
            let arrived = t + Duration::from_millis((n * 33 + late) as u64);
            let relative = transit.observe(arrived, n * 33 * 90);
            assert!((relative - late as f32).abs() < 1.0, "{n}: {relative}");
        }
        assert!((transit.percentile_ms() - 60.0).abs() < 1.0);
        // A path 100 ms longer for good: relative again after the window.
        for n in 300..400i64 {
            let arrived = t + Duration::from_millis((n * 33 + 100) as u64);
            transit.observe(arrived, n * 33 * 90);
        }
        let arrived = t + Duration::from_millis(400 * 33 + 100);
        assert!(transit.observe(arrived, 400 * 33 * 90) < 1.0);
    }
}
