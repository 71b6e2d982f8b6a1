//! What `huddle-peer` counts of each member while the call runs
//! ([`Received`]) and the JSON report it writes at the end ([`Report`]).

use std::collections::BTreeMap;
use std::time::Duration;

use huddle_engine::audio::tone::dominant_frequency;
use huddle_engine::audio::SAMPLE_RATE;
use huddle_engine::quality::FrameLog;
use huddle_engine::stats::LinkStats;
use huddle_engine::video::I420Frame;
use huddle_protocol::PeerId;
use serde::Serialize;

/// What arrived from one member.
#[derive(Debug, Default)]
pub(crate) struct Received {
    pub(crate) name: String,
    pub(crate) frames: u64,
    pub(crate) stamped: u64,
    pub(crate) first_sequence: Option<u32>,
    pub(crate) last_sequence: Option<u32>,
    pub(crate) latencies_ms: Vec<u32>,
    pub(crate) width: usize,
    pub(crate) height: usize,
    /// The last second of audio, for its dominant frequency.
    pub(crate) audio_tail: std::collections::VecDeque<i16>,
    pub(crate) audio_samples: u64,
    /// From sending `call_join` to this member's first decoded picture.
    pub(crate) first_frame: Option<Duration>,
    /// The connection's latest figures.
    pub(crate) stats: Option<LinkStats>,
    /// The latest picture (its brightness is reported; `--snapshot` saves it).
    pub(crate) last_frame: Option<I420Frame>,
    /// When each picture arrived (since the start), for freezes and fps.
    pub(crate) arrivals: FrameLog,
    /// When the member left the room (since the start), if it did and sent
    /// nothing after: its pictures stopped then, they did not freeze.
    pub(crate) left: Option<Duration>,
    /// `[seconds, kbit/s in, target kbit/s, rtt ms, media kbit/s out, kbit/s
    /// out on the wire, the encoder's kbit/s]` at each stats reading (-1:
    /// not known).
    pub(crate) timeline: Vec<[f64; 7]>,
}

impl Received {
    pub(crate) fn lost(&self) -> u64 {
        match (self.first_sequence, self.last_sequence) {
            (Some(first), Some(last)) => {
                u64::from(last.wrapping_sub(first)) + 1
                    - self.stamped.min(u64::from(last.wrapping_sub(first)) + 1)
            }
            _ => 0,
        }
    }

    pub(crate) fn latency(&self, percentile: f64) -> Option<u32> {
        let mut sorted = self.latencies_ms.clone();
        sorted.sort_unstable();
        let index = ((percentile / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted.get(index.clamp(1, sorted.len().max(1)) - 1).copied()
    }
}

/// What `huddle-peer` prints at the end, as JSON.
#[derive(Debug, Serialize)]
pub(crate) struct Report<'a> {
    pub(crate) room: &'a str,
    pub(crate) id: Option<PeerId>,
    pub(crate) seconds: f64,
    pub(crate) cpu_percent_of_one_core: Option<f64>,
    /// Why the call stopped, when it stopped before `--duration`.
    pub(crate) stopped: Option<String>,
    /// By member id.
    pub(crate) peers: BTreeMap<String, PeerReport>,
}

/// What arrived from one member, in the report.
#[derive(Debug, Serialize)]
pub(crate) struct PeerReport {
    pub(crate) name: String,
    pub(crate) frames: u64,
    pub(crate) stamped_frames: u64,
    pub(crate) lost_frames: u64,
    pub(crate) width: usize,
    pub(crate) height: usize,
    /// The last picture's mean luma (16 black … 235 white, BT.601): what
    /// was seen, e.g. a shared screen that arrived black.
    pub(crate) last_mean_luma: Option<f64>,
    pub(crate) latency_ms_p50: Option<u32>,
    pub(crate) latency_ms_p95: Option<u32>,
    pub(crate) latency_ms_max: Option<u32>,
    pub(crate) freezes: FreezeReport,
    pub(crate) fps_per_second: Vec<u32>,
    pub(crate) timeline: Vec<[f64; 7]>,
    pub(crate) first_frame_ms: Option<u64>,
    pub(crate) rtt_ms: Option<f64>,
    pub(crate) bitrate_in_bps: Option<f64>,
    pub(crate) bitrate_out_bps: Option<f64>,
    pub(crate) target_bitrate_bps: Option<f64>,
    pub(crate) encoder_bitrate_bps: Option<u32>,
    pub(crate) fps_in: Option<f64>,
    pub(crate) frames_dropped: Option<u64>,
    /// Keyframes of the member's video decoded, and asked of it (PLI).
    pub(crate) keyframes_received: Option<u64>,
    pub(crate) keyframes_requested: Option<u64>,
    pub(crate) codecs: Option<Vec<String>>,
    pub(crate) candidate_type: Option<String>,
    pub(crate) jitter_s: Option<f64>,
    pub(crate) packets_lost: Option<i64>,
    /// RTP packets received from the member (all its streams).
    pub(crate) packets_in: Option<u64>,
    pub(crate) audio_ms: u64,
    pub(crate) audio_dominant_hz: Option<f32>,
    pub(crate) audio_delay_ms: Option<f64>,
    pub(crate) audio_concealed_share: Option<f64>,
    pub(crate) audio_fec_ms: Option<u64>,
    pub(crate) audio_underruns: Option<u64>,
    /// Comfort noise played while the other side sent silence as silence
    /// (Opus DTX), ms.
    pub(crate) audio_comfort_ms: Option<u64>,
}

/// A stream's freezes, in the report.
#[derive(Debug, Serialize)]
pub(crate) struct FreezeReport {
    pub(crate) count: u32,
    pub(crate) total_ms: u64,
    pub(crate) longest_ms: u64,
}

impl PeerReport {
    /// The pictures are judged from the start `until` then (or until the
    /// member left, if earlier).
    pub(crate) fn of(r: &mut Received, until: Duration) -> PeerReport {
        let freezes = r.arrivals.freezes(r.left.unwrap_or(until).min(until));
        let stats = r.stats.as_ref();
        let playout = stats.and_then(|s| s.playout);
        PeerReport {
            name: r.name.clone(),
            frames: r.frames,
            stamped_frames: r.stamped,
            lost_frames: r.lost(),
            width: r.width,
            height: r.height,
            last_mean_luma: r.last_frame.as_ref().map(mean_luma),
            latency_ms_p50: r.latency(50.0),
            latency_ms_p95: r.latency(95.0),
            latency_ms_max: r.latency(100.0),
            freezes: FreezeReport {
                count: freezes.count,
                total_ms: freezes.total.as_millis() as u64,
                longest_ms: freezes.longest.as_millis() as u64,
            },
            fps_per_second: r.arrivals.per_second(until),
            timeline: r.timeline.clone(),
            first_frame_ms: r.first_frame.map(|d| d.as_millis() as u64),
            rtt_ms: stats.and_then(|s| s.rtt_ms),
            bitrate_in_bps: stats.and_then(|s| s.bitrate_in_bps),
            bitrate_out_bps: stats.and_then(|s| s.bitrate_out_bps),
            target_bitrate_bps: stats.and_then(|s| s.target_bitrate_bps),
            encoder_bitrate_bps: stats.and_then(|s| s.encoder_bitrate_bps),
            fps_in: stats.and_then(|s| s.fps_in),
            frames_dropped: stats.map(|s| s.frames_dropped),
            keyframes_received: stats.map(|s| s.keyframes_decoded),
            keyframes_requested: stats.map(|s| s.keyframes_requested),
            codecs: stats.map(|s| s.codecs.clone()),
            candidate_type: stats.and_then(|s| s.candidate_type.clone()),
            jitter_s: stats.and_then(|s| s.jitter_s),
            packets_lost: stats.map(|s| s.packets_lost),
            packets_in: stats.map(|s| s.packets_in),
            audio_ms: r.audio_samples * 1000 / u64::from(SAMPLE_RATE),
            audio_dominant_hz: dominant_frequency(r.audio_tail.make_contiguous()),
            audio_delay_ms: playout.map(|p| p.mean_delay_ms()),
            audio_concealed_share: playout.map(|p| p.concealed_share()),
            audio_fec_ms: playout.map(|p| p.recovered * 1000 / u64::from(SAMPLE_RATE)),
            audio_underruns: playout.map(|p| p.underruns),
            audio_comfort_ms: playout.map(|p| p.comfort * 1000 / u64::from(SAMPLE_RATE)),
        }
    }
}

/// The mean of a picture's luma plane.
fn mean_luma(frame: &I420Frame) -> f64 {
    let y = frame.y();
    let sum: u64 = y.iter().map(|&v| u64::from(v)).sum();
    (sum as f64 / y.len().max(1) as f64 * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_black_picture_reads_as_black() {
        assert_eq!(mean_luma(&I420Frame::black(64, 48)), 16.0);
    }
}
