//! When a decoded picture is shown: video's playout delay.
//!
//! Pictures used to be shown the moment they decoded, so every picture
//! that waited for a retransmission showed as a freeze: at 5 % loss a
//! picture needs a resend every few pictures, and a lost resend keeps it
//! ~150–250 ms (measured in the network lab: most of the freezes left, on
//! our receiving side only — Chromium's receiver showed none). Like
//! Chromium's jitter buffer, pictures now go out at a steady delay that
//! covers what the network has lately been doing: each whole picture's
//! relative delay (`transit`, as the audio buffer measures it, on the
//! 90 kHz clock) sets the target, the 95th percentile of the last 10 s,
//! and a picture is held until it is that late. On a clean path that is a
//! few milliseconds; under loss, about one retransmission; a picture later
//! than the target is shown at once.

use std::time::{Duration, Instant};

use crate::transit::{RtpClock, Transit};

/// The video RTP clock.
const CLOCK_HZ: u32 = 90_000;
/// The most a picture is held (beyond this a path is not a conversation;
/// pictures later than it are shown as they come).
const MAX_TARGET_MS: f32 = 300.0;
/// A picture this much later than the fastest is a sender that started
/// over (a new timeline), not a late picture: the estimate starts again.
const RESYNC_MS: f32 = 2_000.0;

/// One stream's playout delay.
#[derive(Debug)]
pub struct VideoPlayout {
    clock: RtpClock,
    transit: Transit,
    /// When the last picture was due (pictures go out in order).
    last_due: Option<Instant>,
}

impl Default for VideoPlayout {
    fn default() -> VideoPlayout {
        VideoPlayout {
            clock: RtpClock::default(),
            transit: Transit::new(CLOCK_HZ),
            last_due: None,
        }
    }
}

impl VideoPlayout {
    /// A picture with RTP time `timestamp` became whole `now`: when to
    /// show it (never before `now`, never before the picture before it).
    pub fn due(&mut self, now: Instant, timestamp: u32) -> Instant {
        let at = self.clock.extend(timestamp);
        let mut relative = self.transit.observe(now, at);
        if relative > RESYNC_MS {
            self.transit.reset();
            relative = self.transit.observe(now, at);
        }
        let target = self.transit.percentile_ms().min(MAX_TARGET_MS);
        let hold = Duration::from_secs_f32((target - relative).max(0.0) / 1000.0);
        let due = (now + hold).max(self.last_due.unwrap_or(now));
        self.last_due = Some(due);
        due
    }

    /// The delay pictures are held to now, ms.
    pub fn target_ms(&self) -> f32 {
        self.transit.percentile_ms().min(MAX_TARGET_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RTP time of picture `n` at 30 fps.
    fn rtp(n: u64) -> u32 {
        (n * 3_000) as u32
    }

    #[test]
    fn a_clean_stream_is_shown_as_it_comes() {
        let t = Instant::now();
        let mut playout = VideoPlayout::default();
        for n in 0..300 {
            let now = t + Duration::from_micros(n * 33_333);
            assert!(playout.due(now, rtp(n)) - now < Duration::from_millis(2));
        }
    }

    #[test]
    fn pictures_around_a_retransmission_are_spaced_evenly() {
        let t = Instant::now();
        let mut playout = VideoPlayout::default();
        let mut shown = Vec::new();
        // Every eighth picture waits 100 ms for a resend; the ones behind
        // it come whole at the same moment (they are released in order).
        for n in 0..600u64 {
            let waits = (0..=3)
                .filter(|k| n >= *k && (n - k) % 8 == 0)
                .map(|k| 100u64.saturating_sub(k * 33))
                .max()
                .unwrap_or(0);
            let now = t + Duration::from_millis(n * 33 + waits);
            shown.push(playout.due(now, rtp(n)));
        }
        let gaps: Vec<u128> = shown[300..]
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis())
            .collect();
        assert!(gaps.iter().all(|g| (30..=36).contains(g)), "{gaps:?}");
        assert!((95.0..=105.0).contains(&playout.target_ms()));
    }

    #[test]
    fn a_sender_that_starts_over_is_not_held() {
        let t = Instant::now();
        let mut playout = VideoPlayout::default();
        for n in 0..100 {
            playout.due(t + Duration::from_millis(n * 33), rtp(100_000 + n));
        }
        // The timeline restarts far behind.
        let now = t + Duration::from_millis(100 * 33);
        assert!(playout.due(now, rtp(5)) - now < Duration::from_millis(2));
        let next = now + Duration::from_millis(33);
        assert!(playout.due(next, rtp(6)) - next < Duration::from_millis(2));
    }
}
