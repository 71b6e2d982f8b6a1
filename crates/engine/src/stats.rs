//! Per-peer figures from a connection's stats report and the link's own
//! counters: the ones a user or a report wants (round trip, bitrates,
//! frame rate, loss, jitter in seconds, congestion target, codecs, path).
//!
//! Round trip comes from the nominated candidate pair (webrtc-rs reports
//! remote-inbound RTT as zero); jitter comes in RTP clock units and is
//! converted with the stream's clock rate. Rates are measured between two
//! reports of the same link ([`LinkStats::rates_since`]).

use crate::audio::jitter::PlayoutStats;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::statistics::report::{RTCStatsReport, RTCStatsReportEntry};

/// One connection's figures at one moment (counters are totals so far).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkStats {
    /// When these figures were taken.
    pub at: Instant,
    /// Current round trip on the selected path, ms.
    pub rtt_ms: Option<f64>,
    pub bytes_in: u64,
    /// RTP payload and headers sent as media (retransmissions not counted).
    pub bytes_out: u64,
    /// Everything sent on the selected path: media, retransmissions, RTCP.
    pub wire_bytes_out: u64,
    pub packets_in: u64,
    /// Packets lost on the way in, as the receiver counts them.
    pub packets_lost: i64,
    /// The worst inbound interarrival jitter, in seconds.
    pub jitter_s: Option<f64>,
    /// What congestion control says this path carries now, bits per second
    /// (`None` until feedback from the remote informed it; filled in by the
    /// link, see [`crate::congestion`]).
    pub target_bitrate_bps: Option<f64>,
    /// What the video encoder aims for now (shared by every link: the
    /// weakest link's estimate decides), bits per second.
    pub encoder_bitrate_bps: Option<u32>,
    /// Inbound and outbound bitrate since the previous report, bits per second.
    pub bitrate_in_bps: Option<f64>,
    pub bitrate_out_bps: Option<f64>,
    /// The same for [`LinkStats::wire_bytes_out`].
    pub wire_bitrate_out_bps: Option<f64>,
    /// Pictures decoded per second since the previous report.
    pub fps_in: Option<f64>,
    /// The share of inbound packets lost since the previous report (0–1).
    pub loss_recent: Option<f64>,
    /// Pictures of the member's video decoded, and access units that could
    /// not be (lost parts, or waiting for a keyframe).
    pub frames_decoded: u64,
    pub frames_dropped: u64,
    /// Keyframes of the member's video decoded, and asked of it (PLI).
    pub keyframes_decoded: u64,
    pub keyframes_requested: u64,
    /// Negotiated codecs, as MIME types (`video/H264`, `audio/opus`).
    pub codecs: Vec<String>,
    /// `host`, `srflx`, `prflx` or `relay`: how the selected path was found.
    pub candidate_type: Option<String>,
    /// The member's audio playout: delay, concealment, FEC (filled in by
    /// the call; `None` before any audio came).
    pub playout: Option<PlayoutStats>,
}

/// Counters a link's receiving tasks keep (the stats report has none for
/// what the application decodes).
#[derive(Debug, Default)]
pub struct MediaCounters {
    pub frames_decoded: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub keyframes_decoded: AtomicU64,
    pub keyframes_requested: AtomicU64,
}

impl LinkStats {
    pub fn from_report(report: &RTCStatsReport, counters: &MediaCounters) -> LinkStats {
        let mut stats = LinkStats {
            at: Instant::now(),
            rtt_ms: None,
            bytes_in: 0,
            bytes_out: 0,
            wire_bytes_out: 0,
            packets_in: 0,
            packets_lost: 0,
            jitter_s: None,
            target_bitrate_bps: None,
            encoder_bitrate_bps: None,
            bitrate_in_bps: None,
            bitrate_out_bps: None,
            wire_bitrate_out_bps: None,
            loss_recent: None,
            fps_in: None,
            frames_decoded: counters.frames_decoded.load(Ordering::Relaxed),
            frames_dropped: counters.frames_dropped.load(Ordering::Relaxed),
            keyframes_decoded: counters.keyframes_decoded.load(Ordering::Relaxed),
            keyframes_requested: counters.keyframes_requested.load(Ordering::Relaxed),
            codecs: Vec::new(),
            candidate_type: None,
            playout: None,
        };
        let mut local_candidate = None;
        for entry in report.iter() {
            match entry {
                RTCStatsReportEntry::IceCandidatePair(pair) if pair.nominated => {
                    stats.rtt_ms = Some(pair.current_round_trip_time * 1000.0);
                    stats.wire_bytes_out = pair.bytes_sent;
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
                RTCStatsReportEntry::Codec(codec) if !stats.codecs.contains(&codec.mime_type) => {
                    stats.codecs.push(codec.mime_type.clone());
                }
                _ => {}
            }
        }
        stats.codecs.sort();
        if let Some(id) = local_candidate {
            // webrtc-rs 0.21 names the pair's candidate by its ICE id but
            // files the candidate's stats under a prefixed one: try both.
            let prefixed = format!("RTCLocalIceCandidate_{id}");
            let entry = report.get(&id).or_else(|| report.get(&prefixed));
            if let Some(RTCStatsReportEntry::LocalCandidate(candidate)) = entry {
                stats.candidate_type = Some(candidate.candidate_type.to_string());
            }
        }
        stats
    }

    /// Fills in the rates measured since `previous` (the same link's last
    /// report).
    pub fn rates_since(&mut self, previous: &LinkStats) {
        let seconds = self.at.duration_since(previous.at).as_secs_f64();
        if seconds < 0.05 {
            return;
        }
        let per_second = |now: u64, then: u64| now.saturating_sub(then) as f64 / seconds;
        self.bitrate_in_bps = Some(8.0 * per_second(self.bytes_in, previous.bytes_in));
        self.bitrate_out_bps = Some(8.0 * per_second(self.bytes_out, previous.bytes_out));
        self.wire_bitrate_out_bps =
            Some(8.0 * per_second(self.wire_bytes_out, previous.wire_bytes_out));
        self.fps_in = Some(per_second(self.frames_decoded, previous.frames_decoded));
        let received = self.packets_in.saturating_sub(previous.packets_in) as f64;
        let lost = self
            .packets_lost
            .saturating_sub(previous.packets_lost)
            .max(0) as f64;
        self.loss_recent = (received + lost > 0.0).then(|| lost / (received + lost));
    }
}
