//! What a viewer sees of a stream, from the times its pictures arrived:
//! frames per second over time, and freezes as WebRTC's statistics define
//! them — an inter-frame gap longer than max(3 × the mean gap, the mean gap
//! plus 150 ms), the mean taken over the pictures before it. The network
//! lab and `huddle-peer --report` print these.

use std::time::Duration;

/// How many earlier gaps the mean is taken over.
const MEAN_OVER: usize = 30;

/// Arrival times of one stream's pictures.
#[derive(Debug, Clone, Default)]
pub struct FrameLog {
    /// Since the log's start.
    arrivals: Vec<Duration>,
}

/// The freezes of a stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Freezes {
    pub count: u32,
    pub total: Duration,
    pub longest: Duration,
}

impl FrameLog {
    /// A picture arrived `at` (since the start of the log).
    pub fn record(&mut self, at: Duration) {
        self.arrivals.push(at);
    }

    pub fn len(&self) -> usize {
        self.arrivals.len()
    }

    /// When the latest picture arrived.
    pub fn last(&self) -> Option<Duration> {
        self.arrivals.last().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.arrivals.is_empty()
    }

    /// Freezes between the first picture and `until`: those between
    /// pictures, and the one still going on at `until` if the last picture
    /// before it came too long before. Pictures after `until` are not
    /// looked at.
    pub fn freezes(&self, until: Duration) -> Freezes {
        let mut freezes = Freezes::default();
        let mut gaps: Vec<Duration> = Vec::new();
        let mut note = |gap: Duration, gaps: &[Duration]| {
            if gaps.is_empty() {
                return;
            }
            let window = &gaps[gaps.len().saturating_sub(MEAN_OVER)..];
            let mean = window.iter().sum::<Duration>() / window.len() as u32;
            let limit = (mean * 3).max(mean + Duration::from_millis(150));
            if gap > limit {
                freezes.count += 1;
                freezes.total += gap;
                freezes.longest = freezes.longest.max(gap);
            }
        };
        let judged = &self.arrivals[..self.arrivals.partition_point(|&at| at <= until)];
        for pair in judged.windows(2) {
            let gap = pair[1].saturating_sub(pair[0]);
            note(gap, &gaps);
            gaps.push(gap);
        }
        if let Some(&last) = judged.last() {
            note(until.saturating_sub(last), &gaps);
        }
        freezes
    }

    /// Pictures received in each whole second from the start up to `until`.
    pub fn per_second(&self, until: Duration) -> Vec<u32> {
        let seconds = until.as_secs() as usize;
        let mut counts = vec![0u32; seconds];
        for at in &self.arrivals {
            if let Some(slot) = counts.get_mut(at.as_secs() as usize) {
                *slot += 1;
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steady(log: &mut FrameLog, from_ms: u64, to_ms: u64, every_ms: u64) {
        let mut t = from_ms;
        while t < to_ms {
            log.record(Duration::from_millis(t));
            t += every_ms;
        }
    }

    #[test]
    fn a_steady_stream_never_freezes() {
        let mut log = FrameLog::default();
        steady(&mut log, 0, 10_000, 33);
        assert_eq!(
            log.freezes(Duration::from_millis(10_000)),
            Freezes::default()
        );
        assert_eq!(log.per_second(Duration::from_secs(3)), vec![31, 30, 30]);
    }

    #[test]
    fn a_gap_over_the_threshold_is_a_freeze_and_a_slow_stream_is_not() {
        let mut log = FrameLog::default();
        steady(&mut log, 0, 3_000, 33);
        steady(&mut log, 3_500, 6_000, 33); // ~530 ms gap: 33 ms mean + 150 < 530
        let f = log.freezes(Duration::from_millis(6_000));
        assert_eq!(f.count, 1);
        assert!(f.longest >= Duration::from_millis(500));
        // 5 fps steadily: a gap of 200 ms is its normal pace.
        let mut slow = FrameLog::default();
        steady(&mut slow, 0, 5_000, 200);
        assert_eq!(slow.freezes(Duration::from_millis(5_000)).count, 0);
    }

    #[test]
    fn a_stream_that_stops_for_good_is_one_freeze_until_the_end() {
        let mut log = FrameLog::default();
        steady(&mut log, 0, 2_000, 33);
        let f = log.freezes(Duration::from_secs(30));
        assert_eq!(f.count, 1);
        assert!(f.total >= Duration::from_secs(27));
    }

    #[test]
    fn only_the_pictures_up_to_until_are_judged() {
        let mut log = FrameLog::default();
        steady(&mut log, 0, 2_000, 33);
        steady(&mut log, 5_000, 6_000, 33); // a 3 s gap, after the window
        assert_eq!(
            log.freezes(Duration::from_millis(2_100)),
            Freezes::default()
        );
        assert_eq!(log.freezes(Duration::from_millis(6_000)).count, 1);
    }
}
