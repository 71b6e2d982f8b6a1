//! Packet groups for the delay half, taken in the order packets *arrived*
//! (libwebrtc's inter-arrival), in place of webrtc-rs's accumulator, which
//! takes them in the order they were sent.
//!
//! A group is the packets sent within [`GROUP_LENGTH`] of its first; its
//! delay change is how much more the arrivals of two groups' last packets
//! spread than their departures did. In send order a group's arrival is
//! the latest of its packets': on a path that delays each packet by its
//! own amount (the network lab's ±30 and ±80 ms of jitter), every group
//! took its most delayed packet's arrival, the changes swung by the
//! jitter's whole width, and the trend read overuse a few times a second
//! on a path with room to spare (native↔native at ±80 ms: 297–889 kbit/s
//! on 2.5 Mbit/s, the loss half reading no loss).
//!
//! Here, as libwebrtc does it: a batch's packets are taken by arrival; one
//! sent before the open group's first packet is out of order and left out
//! (a late packet says nothing about the queue its group met); a packet
//! arriving within [`BURST_DELTA`] of the group's last, and earlier than
//! its sending spread implies, joins the group (a burst the path released
//! at once — Wi-Fi aggregation, a freed queue); a group whose arrival
//! would come before its predecessor's is not measured.

use std::time::{Duration, Instant};

use rtc::interceptor::PacketReport;

/// Packets sent within this of a group's first belong to it.
pub const GROUP_LENGTH: Duration = Duration::from_millis(5);
/// A packet arriving this soon after its group's last, ahead of its
/// sending spread, is part of the same burst…
pub const BURST_DELTA: Duration = Duration::from_millis(5);
/// …as long as the burst lasts no longer than this.
pub const MAX_BURST: Duration = Duration::from_millis(100);
/// After this many groups in a row arriving before their predecessor, the
/// groups start over (the receiver's clock or the path changed).
const MAX_REORDERED: u32 = 3;
/// An arrival spread this much larger than the sending spread is a clock
/// jump or a path change, not a queue: the groups start over.
const MAX_OFFSET: Duration = Duration::from_secs(3);

/// One group of packets: its first and last departure, its first and
/// last arrival (receiver's clock).
#[derive(Debug, Clone, Copy)]
struct Group {
    first_departure: Instant,
    departure: Instant,
    first_arrival: Duration,
    arrival: Duration,
}

impl Group {
    fn new(departure: Instant, arrival: Duration) -> Group {
        Group {
            first_departure: departure,
            departure,
            first_arrival: arrival,
            arrival,
        }
    }
}

/// A measured delay change: `delta_ms` between the group that left last at
/// `at` and its predecessor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupDelay {
    pub at: Instant,
    pub delta_ms: f64,
}

/// Reports in, the groups' delay changes out.
#[derive(Debug, Default)]
pub struct InterArrival {
    current: Option<Group>,
    previous: Option<Group>,
    reordered: u32,
}

impl InterArrival {
    /// The delay changes one feedback batch completes (its arrived packets
    /// taken by arrival time).
    pub fn on_reports(&mut self, reports: &[PacketReport]) -> Vec<GroupDelay> {
        let mut arrived: Vec<(Duration, Instant)> = reports
            .iter()
            .filter(|r| r.arrived)
            .filter_map(|r| Some((r.arrival?, r.departure)))
            .collect();
        arrived.sort_by_key(|(arrival, _)| *arrival);
        arrived
            .into_iter()
            .filter_map(|(arrival, departure)| self.packet(departure, arrival))
            .collect()
    }

    /// Takes one packet; the delay change of the group it closed, if any.
    fn packet(&mut self, departure: Instant, arrival: Duration) -> Option<GroupDelay> {
        let Some(current) = self.current.as_mut() else {
            self.current = Some(Group::new(departure, arrival));
            return None;
        };
        // Sent before the open group began: a late packet.
        if departure < current.first_departure {
            return None;
        }
        if Self::same_group(current, departure, arrival) {
            current.departure = current.departure.max(departure);
            current.arrival = arrival;
            return None;
        }
        let closed = *current;
        self.current = Some(Group::new(departure, arrival));
        let measured = self
            .previous
            .and_then(|previous| self.measure(&previous, &closed));
        self.previous = Some(closed);
        measured
    }

    fn same_group(group: &Group, departure: Instant, arrival: Duration) -> bool {
        let sent_after_first = departure.saturating_duration_since(group.first_departure);
        if sent_after_first <= GROUP_LENGTH {
            return true;
        }
        // A burst: arrived right after the group's last packet, sooner than
        // it was sent after it, the whole burst short.
        let sent_after_last = departure.saturating_duration_since(group.departure);
        let arrived_after_last = arrival.saturating_sub(group.arrival);
        arrival >= group.arrival
            && arrived_after_last < sent_after_last
            && arrived_after_last <= BURST_DELTA
            && arrival.saturating_sub(group.first_arrival) < MAX_BURST
    }

    fn measure(&mut self, previous: &Group, closed: &Group) -> Option<GroupDelay> {
        let sent = closed
            .departure
            .saturating_duration_since(previous.departure);
        let Some(arrived) = closed.arrival.checked_sub(previous.arrival) else {
            // Arrived before its predecessor: not a measurement.
            self.reordered += 1;
            if self.reordered >= MAX_REORDERED {
                self.restart();
            }
            return None;
        };
        self.reordered = 0;
        if arrived.saturating_sub(sent) >= MAX_OFFSET {
            self.restart();
            return None;
        }
        Some(GroupDelay {
            at: closed.departure,
            delta_ms: (arrived.as_secs_f64() - sent.as_secs_f64()) * 1000.0,
        })
    }

    fn restart(&mut self) {
        self.current = None;
        self.previous = None;
        self.reordered = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    fn report(start: Instant, sent_ms: u64, arrived_ms: u64) -> PacketReport {
        PacketReport {
            ssrc: 1,
            id: sent_ms,
            rtp_sequence_number: 0,
            is_twcc: true,
            twcc_sequence_number: 0,
            size: 1200,
            arrived: true,
            departure: start + Duration::from_millis(sent_ms),
            arrival: Some(Duration::from_millis(arrived_ms)),
            ecn: Ecn::default(),
        }
    }

    /// Reports of packets (sent ms, arrived ms) from `start`.
    fn reports(start: Instant, packets: &[(u64, u64)]) -> Vec<PacketReport> {
        packets
            .iter()
            .map(|&(sent, arrived)| report(start, sent, arrived))
            .collect()
    }

    fn deltas(reports: &[PacketReport]) -> Vec<f64> {
        InterArrival::default()
            .on_reports(reports)
            .iter()
            .map(|d| d.delta_ms.round())
            .collect()
    }

    #[test]
    fn a_steady_path_reads_no_change_and_a_growing_queue_reads_its_growth() {
        let start = Instant::now();
        // A packet every 10 ms, 50 ms on the way.
        let steady: Vec<_> = (0..6).map(|i| report(start, i * 10, 50 + i * 10)).collect();
        assert_eq!(deltas(&steady), vec![0.0; 4]);
        // The queue grows by 2 ms a packet.
        let growing: Vec<_> = (0..6).map(|i| report(start, i * 10, 50 + i * 12)).collect();
        assert_eq!(deltas(&growing), vec![2.0; 4]);
    }

    #[test]
    fn a_late_packet_is_left_out_rather_than_taken_as_its_groups_arrival() {
        let start = Instant::now();
        // The packet sent at 20 ms is held 40 ms longer than the rest.
        let reports = reports(
            start,
            &[
                (0, 50),
                (10, 60),
                (20, 110),
                (30, 80),
                (40, 90),
                (50, 100),
                (60, 120),
            ],
        );
        // In arrival order it comes after the group sent at 50 ms began:
        // out of order, no measurement swings.
        assert!(
            deltas(&reports).iter().all(|d| d.abs() < 1.0),
            "{:?}",
            deltas(&reports)
        );
    }

    #[test]
    fn a_burst_released_at_once_is_one_group() {
        let start = Instant::now();
        // Sent 10 ms apart, held, then released together 1 ms apart.
        let reports = reports(
            start,
            &[
                (0, 50),
                (10, 100),
                (20, 101),
                (30, 102),
                (40, 103),
                (50, 104),
                (60, 110),
                (70, 120),
            ],
        );
        let found = deltas(&reports);
        // The burst (10–50 ms) is one group: one change for it, not four.
        assert_eq!(found.len(), 2, "{found:?}");
    }

    #[test]
    fn reports_in_any_order_within_a_batch_are_taken_by_arrival() {
        let start = Instant::now();
        let mut reports: Vec<_> = (0..6).map(|i| report(start, i * 10, 50 + i * 10)).collect();
        reports.reverse();
        assert_eq!(deltas(&reports), vec![0.0; 4]);
    }
}
