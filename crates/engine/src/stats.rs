//! Per-peer figures from a connection's stats report: the ones a user or a
//! report wants (round trip, bytes, loss, jitter in seconds, path).
//!
//! Round trip comes from the nominated candidate pair (webrtc-rs reports
//! remote-inbound RTT as zero); jitter comes in RTP clock units and is
//! converted with the stream's clock rate.

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::statistics::report::{RTCStatsReport, RTCStatsReportEntry};

/// One connection's figures at one moment (counters are totals so far).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkStats {
    /// Current round trip on the selected path, ms.
    pub rtt_ms: Option<f64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    /// Packets lost on the way in, as the receiver counts them.
    pub packets_lost: i64,
    /// The worst inbound interarrival jitter, in seconds.
    pub jitter_s: Option<f64>,
    /// `host`, `srflx`, `prflx` or `relay`: how the selected path was found.
    pub candidate_type: Option<String>,
}

impl LinkStats {
    pub fn from_report(report: &RTCStatsReport) -> LinkStats {
        let mut stats = LinkStats::default();
        let mut local_candidate = None;
        for entry in report.iter() {
            match entry {
                RTCStatsReportEntry::IceCandidatePair(pair) if pair.nominated => {
                    stats.rtt_ms = Some(pair.current_round_trip_time * 1000.0);
                    local_candidate = Some(pair.local_candidate_id.clone());
                }
                RTCStatsReportEntry::InboundRtp(inbound) => {
                    let received = &inbound.received_rtp_stream_stats;
                    stats.bytes_in += inbound.bytes_received;
                    stats.packets_in += received.packets_received;
                    stats.packets_lost += received.packets_lost;
                    let clock = match received.rtp_stream_stats.kind {
                        RtpCodecKind::Audio => 48_000.0,
                        _ => 90_000.0,
                    };
                    let jitter = received.jitter / clock;
                    stats.jitter_s = Some(stats.jitter_s.map_or(jitter, |j: f64| j.max(jitter)));
                }
                RTCStatsReportEntry::OutboundRtp(outbound) => {
                    stats.bytes_out += outbound.sent_rtp_stream_stats.bytes_sent;
                }
                _ => {}
            }
        }
        if let Some(id) = local_candidate {
            if let Some(RTCStatsReportEntry::LocalCandidate(candidate)) = report.get(&id) {
                stats.candidate_type = Some(candidate.candidate_type.to_string());
            }
        }
        stats
    }
}
