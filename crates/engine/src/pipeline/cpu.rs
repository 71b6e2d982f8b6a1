//! Scaling under CPU overuse: when encoding takes most of the time between
//! pictures, the machine cannot keep up — pictures queue behind the encoder
//! and the frame rate falls unevenly, whatever the network allows. The
//! video is then made cheaper in steps ([`Level`]): camera pictures at half
//! size, then also at most 15 a second; and back when encoding is cheap
//! again for a while.
//!
//! The measure is libwebrtc's (its overuse frame detector): the share of
//! the time between pictures spent encoding them, over the last
//! [`WINDOW`] pictures, judged every [`CHECK_EVERY`] — over
//! [`HIGH_USAGE`] twice running is overuse. A step back up is taken only
//! when the usage, times what the step costs ([`Level::step_up_cost`]),
//! stays within [`HEADROOM`] of that — libwebrtc steps up under a fixed
//! 42 %, and at 720p here that flapped: 40–46 % at half size, 97 % (20
//! fps) at full size each time it stepped back up — and after
//! [`FIRST_RAMP_UP`], twice as long each time a step up was followed by
//! overuse within [`FLAP`] (to [`MAX_RAMP_UP`]).
//!
//! A plain state machine: pictures' encoding times and the time in, the
//! level out.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The pictures the usage is measured over (about a second).
pub const WINDOW: usize = 30;
/// How often the usage is judged.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);
/// Encoding busier than this share of the time between pictures is overuse.
pub const HIGH_USAGE: f64 = 0.85;
/// A step up must leave the usage it is expected to bring under this
/// share of [`HIGH_USAGE`].
pub const HEADROOM: f64 = 0.85;
/// The wait before a first step back up…
pub const FIRST_RAMP_UP: Duration = Duration::from_secs(10);
/// …doubled when overuse came back within this long of a step up…
pub const FLAP: Duration = Duration::from_secs(40);
/// …up to this.
pub const MAX_RAMP_UP: Duration = Duration::from_secs(240);

/// How far the video is made cheaper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Level {
    #[default]
    Full,
    /// Camera pictures at half size.
    HalfSize,
    /// …and at most [`CHEAPEST_FPS`] a second.
    HalfSizeFewer,
}

/// The most pictures a second at [`Level::HalfSizeFewer`].
pub const CHEAPEST_FPS: u32 = 15;

impl Level {
    fn lower(self) -> Level {
        match self {
            Level::Full => Level::HalfSize,
            _ => Level::HalfSizeFewer,
        }
    }

    fn higher(self) -> Level {
        match self {
            Level::HalfSizeFewer => Level::HalfSize,
            _ => Level::Full,
        }
    }

    /// How many times the usage grows when stepping up from here: twice
    /// the pictures, or four times the pixels (measured at 720p, per
    /// picture: 3.4 times the encoding time at full size as at half).
    pub fn step_up_cost(self) -> f64 {
        match self {
            Level::HalfSizeFewer => 2.0,
            Level::HalfSize => 3.0,
            Level::Full => 1.0,
        }
    }
}

/// The encoder's CPU usage and the level it asks for.
#[derive(Debug)]
pub struct CpuLoad {
    /// (time spent encoding, time since the picture before) per picture.
    samples: VecDeque<(Duration, Duration)>,
    last_picture: Option<Instant>,
    last_check: Instant,
    overused_checks: u32,
    level: Level,
    /// When the level last changed, and whether it was a step up.
    changed: Option<(Instant, bool)>,
    ramp_up: Duration,
}

impl CpuLoad {
    pub fn new(now: Instant) -> CpuLoad {
        CpuLoad {
            samples: VecDeque::with_capacity(WINDOW),
            last_picture: None,
            last_check: now,
            overused_checks: 0,
            level: Level::Full,
            changed: None,
            ramp_up: FIRST_RAMP_UP,
        }
    }

    pub fn level(&self) -> Level {
        self.level
    }

    /// A picture was encoded at `at` (captured), taking `encoding` (all
    /// its encodings together).
    pub fn note(&mut self, at: Instant, encoding: Duration) {
        if let Some(last) = self.last_picture {
            let interval = at.saturating_duration_since(last);
            // A pause (video off, no members) is no interval.
            if interval < Duration::from_secs(1) {
                if self.samples.len() == WINDOW {
                    self.samples.pop_front();
                }
                self.samples.push_back((encoding, interval));
            }
        }
        self.last_picture = Some(at);
    }

    /// The share of the time between pictures spent encoding, over the
    /// window (`None` before it has filled).
    pub fn usage(&self) -> Option<f64> {
        if self.samples.len() < WINDOW {
            return None;
        }
        let busy: Duration = self.samples.iter().map(|s| s.0).sum();
        let between: Duration = self.samples.iter().map(|s| s.1).sum();
        (!between.is_zero()).then(|| busy.as_secs_f64() / between.as_secs_f64())
    }

    /// Judges the usage if it is time; returns the new level when it
    /// changed.
    pub fn check(&mut self, now: Instant) -> Option<Level> {
        if now.saturating_duration_since(self.last_check) < CHECK_EVERY {
            return None;
        }
        self.last_check = now;
        let usage = self.usage()?;
        if usage > HIGH_USAGE {
            self.overused_checks += 1;
        } else {
            self.overused_checks = 0;
        }
        let next = if self.overused_checks >= 2 && self.level != Level::HalfSizeFewer {
            // Overuse soon after a step up: that step was too much.
            if let Some((at, true)) = self.changed {
                if now.saturating_duration_since(at) < FLAP {
                    self.ramp_up = (self.ramp_up * 2).min(MAX_RAMP_UP);
                }
            }
            self.level.lower()
        } else if usage * self.level.step_up_cost() < HEADROOM * HIGH_USAGE
            && self.level != Level::Full
            && self
                .changed
                .is_none_or(|(at, _)| now.saturating_duration_since(at) >= self.ramp_up)
        {
            self.level.higher()
        } else {
            return None;
        };
        let up = next < self.level;
        self.level = next;
        self.changed = Some((now, up));
        self.overused_checks = 0;
        // The new level's pictures cost differently: measure them afresh.
        self.samples.clear();
        Some(next)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `seconds` of pictures at 30 a second, each taking `busy_ms` to
    /// encode, checked as the video task does; the levels it changed to.
    fn run(load: &mut CpuLoad, t: &mut Instant, seconds: u64, busy_ms: u64) -> Vec<Level> {
        let mut changes = Vec::new();
        for _ in 0..seconds * 30 {
            *t += Duration::from_micros(33_333);
            load.note(*t, Duration::from_millis(busy_ms));
            if let Some(level) = load.check(*t) {
                changes.push(level);
            }
        }
        changes
    }

    #[test]
    fn a_machine_that_keeps_up_stays_at_full_size() {
        let mut t = Instant::now();
        let mut load = CpuLoad::new(t);
        assert_eq!(run(&mut load, &mut t, 60, 12), vec![]);
        assert!((load.usage().unwrap() - 0.36).abs() < 0.01);
    }

    #[test]
    fn overuse_steps_down_twice_then_room_steps_back_up_after_a_wait() {
        let mut t = Instant::now();
        let mut load = CpuLoad::new(t);
        // 31 ms of encoding per 33 ms: two checks (10 s) to the first step,
        // two more to the second.
        let down = run(&mut load, &mut t, 25, 31);
        assert_eq!(down, vec![Level::HalfSize, Level::HalfSizeFewer]);
        // Cheap again: back up one step per ramp-up wait (10 s).
        let up = run(&mut load, &mut t, 30, 5);
        assert_eq!(up, vec![Level::HalfSize, Level::Full]);
    }

    #[test]
    fn a_step_up_that_brings_overuse_back_waits_longer_next_time() {
        let mut t = Instant::now();
        let mut load = CpuLoad::new(t);
        assert_eq!(run(&mut load, &mut t, 12, 31), vec![Level::HalfSize]);
        assert_eq!(run(&mut load, &mut t, 12, 5), vec![Level::Full]);
        // Overuse again within 40 s of the step up: the wait doubles.
        assert_eq!(run(&mut load, &mut t, 12, 31), vec![Level::HalfSize]);
        assert_eq!(load.ramp_up, FIRST_RAMP_UP * 2);
        assert_eq!(run(&mut load, &mut t, 13, 5), vec![], "not within 19 s");
        assert_eq!(run(&mut load, &mut t, 10, 5), vec![Level::Full]);
    }

    #[test]
    fn no_step_up_that_would_overuse_again() {
        let mut t = Instant::now();
        let mut load = CpuLoad::new(t);
        assert_eq!(run(&mut load, &mut t, 12, 31), vec![Level::HalfSize]);
        // 43 % at half size (720p, measured): full size would be ~130 %.
        assert_eq!(run(&mut load, &mut t, 60, 14), vec![]);
        // 18 %: full size ~55 %, room enough.
        assert_eq!(run(&mut load, &mut t, 6, 6), vec![Level::Full]);
    }

    #[test]
    fn a_pause_is_not_counted_as_time_between_pictures() {
        let mut t = Instant::now();
        let mut load = CpuLoad::new(t);
        run(&mut load, &mut t, 2, 20);
        t += Duration::from_secs(30);
        load.note(t, Duration::from_millis(20));
        assert!((load.usage().unwrap() - 0.6).abs() < 0.01);
    }
}
