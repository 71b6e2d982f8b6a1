//! A link's webrtc-rs set-up: the codecs of the interop contract (and
//! RTX for video's resends) and the interceptor chain — NACK, RTCP
//! reports, send-side congestion control and the engine's own taps.

use std::sync::Arc;
use std::time::Duration;

use rtc::interceptor::{
    CongestionControlBuilder, NackGeneratorBuilder, NackResponderBuilder, PacerBuilder, Registry,
    Slot, TwccReceiverBuilder, TwccSenderBuilder,
};
use rtc::peer_connection::configuration::interceptor_registry::configure_rtcp_reports;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability,
    RtpCodecKind, TYPE_RTCP_FB_TRANSPORT_CC,
};
use rtc::sdp::extmap::TRANSPORT_CC_URI;
use webrtc::peer_connection::MediaEngine;

use crate::congestion::{link_budget, start_bps, Estimate, Shared, PACING_FACTOR};
use crate::coverage::{Coverage, CoverageTap};
use crate::estimator::Estimator;
use crate::feedback::KeyframeRequests;
use crate::heard::{Heard, HeardTap};
use crate::reorder::ReorderWait;
use crate::repair::{RtxUnwrap, WithRepairStreams};
use crate::resend::ResendFilter;

use super::PeerError;

/// The H.264 every Huddle client offers and accepts.
pub const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";
const H264_PAYLOAD_TYPE: u8 = 102;
/// H.264's resends on a stream of their own (RTX, `repair.rs`).
const H264_RTX_PAYLOAD_TYPE: u8 = 103;
const OPUS_PAYLOAD_TYPE: u8 = 111;

/// The interceptor chain: NACK, RTCP reports, send-side congestion control
/// (GCC over transport-wide feedback, as browsers do it), the keyframe
/// requests the application must see, and the count of everything heard
/// from the member (`heard.rs`).
///
/// Congestion control is assembled here rather than with webrtc-rs's
/// `configure_congestion_control`, whose pacer starts at 1 Mbit/s whatever
/// the estimator says and then paces at exactly the estimate: every
/// keyframe waited its size over the estimate (measured at 720p: latency
/// grew to seconds). Here the pacer starts where the estimator does and
/// is told [`PACING_FACTOR`] times the estimate (see [`Shared`]).
pub(super) fn interceptors(
    engine: &mut MediaEngine,
    max_bitrate_bps: u32,
) -> Result<(Registry, Arc<Estimate>, Arc<Heard>), PeerError> {
    let max = link_budget(max_bitrate_bps.max(MIN_BITRATE_BPS));
    // Start where the call's video does (`congestion::START_VIDEO_BPS`):
    // on a good path the estimate climbs from there within seconds; on a
    // poor one it falls within the first round trips.
    let start = link_budget(start_bps(max_bitrate_bps).max(MIN_BITRATE_BPS));
    let coverage = Arc::new(Coverage::default());
    let heard = Arc::new(Heard::default());
    let (estimator, estimate) = Shared::new(
        Estimator::new(start, f64::from(MIN_BITRATE_BPS), max).with_coverage(coverage.clone()),
    );
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        engine.register_feedback(
            RTCPFeedback {
                typ: TYPE_RTCP_FB_TRANSPORT_CC.into(),
                parameter: String::new(),
            },
            kind,
        );
        engine.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: TRANSPORT_CC_URI.into(),
            },
            kind,
            None,
        )?;
    }
    // NACK (the video codec already names `nack` and `nack pli` in its
    // feedback), answered only where a resend can still help
    // (`resend.rs`), each missing packet asked for at most MAX_NACKS times:
    // webrtc-rs asks forever by default, and after a burst of losses the
    // retransmissions of long-stale packets took the path (measured in the
    // network lab's dip: the estimate pinned at its floor by the "losses").
    let registry = Registry::new()
        .with(
            Slot::NackResponder,
            NackResponderBuilder::new()
                .with_size(RETRANSMIT_HISTORY)
                .build(),
        )
        .with(
            Slot::NackGenerator,
            NackGeneratorBuilder::new()
                .with_interval(NACK_INTERVAL)
                .with_max_nacks_per_packet(MAX_NACKS)
                .build(),
        );
    let registry = configure_rtcp_reports(registry)
        .with(
            Slot::CongestionControl,
            WithRepairStreams(CongestionControlBuilder::new(estimator).build()),
        )
        .with(
            Slot::Pacer,
            PacerBuilder::new()
                .with_target_bitrate(max * PACING_FACTOR)
                .build(),
        )
        .with(
            Slot::TwccSender,
            WithRepairStreams(TwccSenderBuilder::new().build()),
        )
        .with(Slot::TwccReceiver, TwccReceiverBuilder::new().build())
        .with(CoverageTap::slot(), CoverageTap::interceptor(coverage))
        .with(
            ResendFilter::slot(),
            ResendFilter::interceptor(estimate.clone()),
        )
        .with(RtxUnwrap::slot(), RtxUnwrap::interceptor())
        .with(ReorderWait::slot(), ReorderWait::interceptor())
        .with(KeyframeRequests::slot(), KeyframeRequests::interceptor())
        .with(HeardTap::slot(), HeardTap::interceptor(heard.clone()));
    Ok((registry, estimate, heard))
}

/// The packets kept for retransmission (per stream; a power of two): about
/// 2.5 s at 1 Mbit/s, 1 s at 2.5 Mbit/s — retransmissions older than that
/// would arrive after their picture's deadline anyway. webrtc-rs keeps
/// 1024, and after the network lab's 3 s outage the receiver's NACKs for
/// all of it queued ~360 KB of stale video in the pacer ahead of new
/// pictures (libwebrtc bounds its history by time and its retransmissions
/// by the target rate).
const RETRANSMIT_HISTORY: u16 = 256;

/// How often missing packets are asked for. webrtc-rs asks every 100 ms:
/// a loss waited up to that long before its first NACK, and a lost NACK or
/// resend another 100 ms — past a 30 fps picture's freeze threshold
/// (~180 ms). Asking every 20 ms costs a small RTCP packet per 20 ms while
/// something is missing; the sender resends a packet at most once a round
/// trip however often it is asked (`resend.rs`).
const NACK_INTERVAL: Duration = Duration::from_millis(20);

/// How often one missing packet is asked for: for as long as its picture
/// is waited for (VIDEO_WAIT). (At 10, 200 ms of asking, a browser
/// sender's lost resend was often not asked for again: at 5 % loss,
/// Chromium → native gave up 20–30 pictures in 40 s.) The generator counts
/// the ticks `reorder.rs` holds back on a reordering path too (up to
/// `reorder::MAX_WAIT`, five ticks): those are added.
const MAX_NACKS: u16 = 25;

/// The least bitrate congestion control goes down to (video still moves).
pub const MIN_BITRATE_BPS: u32 = 100_000;

/// The codecs of the interop contract: H.264 constrained baseline and Opus.
pub fn media_engine() -> Result<MediaEngine, PeerError> {
    let mut engine = MediaEngine::default();
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.into(),
        parameter: parameter.into(),
    };
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: h264_codec(vec![
                feedback("goog-remb", ""),
                feedback("ccm", "fir"),
                feedback("nack", ""),
                feedback("nack", "pli"),
            ]),
            payload_type: H264_PAYLOAD_TYPE,
        },
        RtpCodecKind::Video,
    )?;
    // Resends of video on a stream of their own (`repair.rs`).
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: "video/rtx".into(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: format!("apt={H264_PAYLOAD_TYPE}"),
                rtcp_feedback: Vec::new(),
            },
            payload_type: H264_RTX_PAYLOAD_TYPE,
        },
        RtpCodecKind::Video,
    )?;
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus_codec(),
            payload_type: OPUS_PAYLOAD_TYPE,
        },
        RtpCodecKind::Audio,
    )?;
    Ok(engine)
}

pub(super) fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "audio/opus".into(),
        clock_rate: 48_000,
        channels: 2,
        // usedtx: a browser sends us silence as silence too (Opus DTX: a
        // packet every 400 ms while nobody talks), which playout expects.
        sdp_fmtp_line: "minptime=10;useinbandfec=1;usedtx=1".into(),
        rtcp_feedback: Vec::new(),
    }
}

pub(super) fn h264_codec(rtcp_feedback: Vec<RTCPFeedback>) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "video/H264".into(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: H264_FMTP.into(),
        rtcp_feedback,
    }
}
