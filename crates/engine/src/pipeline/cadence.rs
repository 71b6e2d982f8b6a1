//! Which of a source's pictures an encoding takes, for the frame rate the
//! bitrate allows (`congestion::frame_rate_for`).
//!
//! A picture is due one period after the previous *due time*, not after the
//! previous picture: a rate that does not divide the source's — 20 of a
//! camera's 30 — is then kept on average (two pictures in three). Counting
//! from each picture taken rounded it down to the next divisor: 20 a second
//! became 15, and rate control, which budgets each picture for the rate it
//! was told, sent three quarters of its bitrate (measured in the network
//! lab's 600 kbit/s plateau: 15 fps and 320 kbit/s sent for a 400 kbit/s
//! target).

use std::time::{Duration, Instant};

/// The share of a period a picture may come early and still be on time
/// (a source's ticks jitter).
const EARLY: f32 = 0.25;

/// The due time of an encoding's next picture.
#[derive(Debug, Default, Clone, Copy)]
pub struct Cadence {
    next_due: Option<Instant>,
}

impl Cadence {
    /// Whether the picture `captured` then is taken at one picture per
    /// `period`. After a pause the schedule starts again from the picture
    /// taken (no burst to catch up).
    pub fn take(&mut self, captured: Instant, period: Duration) -> bool {
        let due = match self.next_due {
            Some(due) if captured <= due + period => due,
            // A period or more behind: the schedule starts again.
            _ => captured,
        };
        if captured + period.mul_f32(EARLY) < due {
            return false;
        }
        self.next_due = Some(due + period);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of `seconds` of a 30 fps source's pictures (each up to
    /// `jitter_ms` late or early, alternately) are taken at `fps`.
    fn taken(fps: u32, seconds: u32, jitter_ms: u64) -> usize {
        let start = Instant::now() + Duration::from_secs(1);
        let period = Duration::from_secs(1) / fps;
        let mut cadence = Cadence::default();
        (0..30 * seconds)
            .filter(|&i| {
                let at = start + Duration::from_secs(1) * i / 30;
                let at = if i % 2 == 0 {
                    at + Duration::from_millis(jitter_ms)
                } else {
                    at - Duration::from_millis(jitter_ms)
                };
                cadence.take(at, period)
            })
            .count()
    }

    #[test]
    fn a_rate_that_does_not_divide_the_sources_is_kept_on_average() {
        assert_eq!(taken(20, 3, 0), 60);
        assert_eq!(taken(20, 3, 3), 60);
    }

    #[test]
    fn divisors_and_the_full_rate_are_kept_through_jitter() {
        assert_eq!(taken(30, 3, 4), 90);
        assert_eq!(taken(15, 3, 4), 45);
        assert_eq!(taken(10, 3, 4), 30);
    }

    #[test]
    fn after_a_pause_there_is_no_burst_to_catch_up() {
        let mut cadence = Cadence::default();
        let period = Duration::from_millis(50);
        let t = Instant::now();
        assert!(cadence.take(t, period));
        // The source stalls for a second, then ticks at 30 a second again.
        let back = t + Duration::from_secs(1);
        let tick = Duration::from_secs(1) / 30;
        let taken = (0..6)
            .filter(|&i| cadence.take(back + tick * i, period))
            .count();
        assert_eq!(taken, 4, "at 20 a second, as before the pause");
    }
}
