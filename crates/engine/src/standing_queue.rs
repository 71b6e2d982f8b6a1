//! How much queue stands on the path towards the remote now, from the
//! one-way delays the feedback reports.
//!
//! Each acknowledged packet's arrival (the receiver's clock) less its
//! departure (ours) is its one-way delay plus a constant offset between
//! the two clocks. The least of those over the last [`BASE_MEMORY`] is the
//! path with nothing queued; the least over the last [`NOW`] less that is
//! what stands in the queue now. Leasts, not means: a packet sent at the
//! moment the queue happened to be short shows the path's floor, and
//! jitter only ever adds delay. A clock drift of 50 ppm moves the base by
//! 1.5 ms over the memory, well under anything read from it.
//!
//! The rate control (`aimd.rs`) reads it at a known capacity's cap: a path
//! that carries the cap with no queue standing has room the capacity does
//! not know of.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc::interceptor::PacketReport;

use crate::estimator::forget_older;

/// How long the path's floor is remembered: long enough to span a
/// congested stretch, short enough that a path that moved (a roam, a
/// restart onto a longer route) is measured anew.
pub const BASE_MEMORY: Duration = Duration::from_secs(30);

/// The span the current delay is the least over: a few feedback batches.
pub const NOW: Duration = Duration::from_millis(500);

/// The least one-way delay (plus the clocks' offset) of recent batches.
#[derive(Debug, Default)]
pub struct StandingQueue {
    /// Our clock's zero for the departures.
    epoch: Option<Instant>,
    /// (when reported, least delay in the batch in seconds), oldest first.
    batches: VecDeque<(Instant, f64)>,
}

impl StandingQueue {
    /// Takes in one feedback batch, reported `now`.
    pub fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        let least = reports
            .iter()
            .filter_map(|r| {
                let arrival = r.arrival.filter(|_| r.arrived)?;
                let epoch = *self.epoch.get_or_insert(r.departure);
                let departure = r.departure.saturating_duration_since(epoch);
                Some(arrival.as_secs_f64() - departure.as_secs_f64())
            })
            .min_by(f64::total_cmp);
        if let Some(least) = least {
            self.batches.push_back((now, least));
        }
        forget_older(&mut self.batches, now, BASE_MEMORY);
    }

    /// What stands in the queue: the least delay of the last [`NOW`] over
    /// the least of the memory (`None` before any report, or when none
    /// came in the last [`NOW`]).
    pub fn depth(&self, now: Instant) -> Option<Duration> {
        let least = |keep: Duration| {
            self.batches
                .iter()
                .filter(|(at, _)| now.saturating_duration_since(*at) <= keep)
                .map(|b| b.1)
                .min_by(f64::total_cmp)
        };
        let depth = least(NOW)? - least(BASE_MEMORY)?;
        Some(Duration::from_secs_f64(depth.max(0.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    /// A batch of packets that left at `sent` and arrived `delay` later by
    /// a receiver clock 7 s ahead of ours.
    fn batch(start: Instant, sent: Duration, delay: Duration) -> Vec<PacketReport> {
        (0..5u16)
            .map(|i| {
                let spacing = Duration::from_millis(u64::from(i) * 4);
                PacketReport {
                    ssrc: 1,
                    id: u64::from(i),
                    rtp_sequence_number: i,
                    is_twcc: true,
                    twcc_sequence_number: i,
                    size: 1200,
                    arrived: true,
                    departure: start + sent + spacing,
                    arrival: Some(Duration::from_secs(7) + sent + spacing + delay),
                    ecn: Ecn::default(),
                }
            })
            .collect()
    }

    /// Feeds a batch every 100 ms for `seconds`, each with `delay`.
    fn feed(q: &mut StandingQueue, start: Instant, from: f64, seconds: f64, delay_ms: u64) {
        let mut s = from;
        while s < from + seconds {
            let sent = Duration::from_secs_f64(s);
            q.on_reports(
                start + sent + Duration::from_millis(delay_ms),
                &batch(start, sent, Duration::from_millis(delay_ms)),
            );
            s += 0.1;
        }
    }

    #[test]
    fn a_queue_reads_as_the_delay_over_the_paths_floor() {
        let start = Instant::now();
        let mut q = StandingQueue::default();
        assert_eq!(q.depth(start), None);
        feed(&mut q, start, 0.0, 3.0, 20);
        let at = start + Duration::from_secs(3);
        assert!(matches!(q.depth(at), Some(d) if d < Duration::from_millis(1)));
        // A 300 ms queue fills and stands.
        feed(&mut q, start, 3.0, 2.0, 320);
        let at = start + Duration::from_secs(5) + Duration::from_millis(320);
        let depth = q.depth(at).unwrap_or_default();
        assert!(
            (Duration::from_millis(299)..Duration::from_millis(301)).contains(&depth),
            "{depth:?}"
        );
        // It drains: within half a second of one short packet, it reads so.
        feed(&mut q, start, 5.0, 0.2, 25);
        let depth = q.depth(at + Duration::from_millis(200));
        assert!(
            matches!(depth, Some(d) if d < Duration::from_millis(10)),
            "{depth:?}"
        );
    }

    #[test]
    fn the_floor_is_forgotten_after_its_memory() {
        let start = Instant::now();
        let mut q = StandingQueue::default();
        feed(&mut q, start, 0.0, 1.0, 10);
        // A longer route from then on: after the memory it is the floor.
        feed(&mut q, start, 1.0, 40.0, 80);
        let depth = q.depth(start + Duration::from_secs(41));
        assert!(
            matches!(depth, Some(d) if d < Duration::from_millis(1)),
            "{depth:?}"
        );
        // With nothing reported lately, nothing is known of now.
        assert_eq!(q.depth(start + Duration::from_secs(60)), None);
    }
}
