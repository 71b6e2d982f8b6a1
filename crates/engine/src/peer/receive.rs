//! The receive path of a link: the member's video reassembled, decoded,
//! held for its playout time and asked for again (PLI) while it does not
//! decode; its audio handed to playout.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use tokio::sync::mpsc;
use tracing::debug;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::audio::jitter::AudioPacket;
use crate::stats::MediaCounters;
use crate::video::assembler::{Assembled, Assembler};
use crate::video::h264::{is_keyframe, nal_types, H264Decoder};
use crate::video::playout::VideoPlayout;
use crate::video::I420Frame;

use super::PeerEvent;

/// How long a picture with a missing packet is held for the packet to be
/// retransmitted (NACK) before it is given up on.
const VIDEO_WAIT: Duration = Duration::from_millis(400);

/// Reassembles, decodes and reports the member's video, each picture when
/// its playout delay says (`video::playout`); asks for a keyframe (PLI)
/// while nothing decodes: before the first picture, after an access unit
/// that would not decode, and when pictures stopped for a second while
/// packets still come (losses NACK did not repair).
pub(super) async fn receive_video(
    track: Arc<dyn TrackRemote>,
    events: mpsc::UnboundedSender<PeerEvent>,
    counters: Arc<MediaCounters>,
) {
    let Some(ssrc) = track.ssrcs().await.first().copied() else {
        return;
    };
    let Ok(mut decoder) = H264Decoder::new() else {
        return;
    };
    // A picture missing a packet is waited for while NACK can still bring
    // it (VIDEO_WAIT), then given up; a complete one leaves at once.
    let mut assembler = Assembler::new(VIDEO_WAIT);
    let mut playout = VideoPlayout::default();
    // Decoded pictures waiting for their time, in order.
    let mut held: VecDeque<(Instant, I420Frame)> = VecDeque::new();
    let mut last_picture: Option<Instant> = None;
    let mut broken = false;
    let mut last_pli: Option<Instant> = None;
    loop {
        let next_due = held.front().map(|(due, _)| *due);
        let event = tokio::select! {
            event = track.poll() => event,
            () = sleep_until(next_due) => {
                while held.front().is_some_and(|(due, _)| *due <= Instant::now()) {
                    let Some((_, frame)) = held.pop_front() else { break };
                    if events.send(PeerEvent::Video(frame)).is_err() {
                        return;
                    }
                }
                continue;
            }
        };
        let Some(event) = event else {
            break;
        };
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        tracing::trace!(
            seq = packet.header.sequence_number,
            ts = packet.header.timestamp,
            marker = packet.header.marker,
            bytes = packet.payload.len(),
            "video packet"
        );
        assembler.push(Instant::now(), packet);
        while let Some(assembled) = assembler.pop(Instant::now()) {
            let Assembled::Picture { data, timestamp } = assembled else {
                // Pictures were lost: what follows needs a keyframe (the
                // decoder refuses the pictures that reference them).
                debug!("pictures given up (a packet never came)");
                broken = true;
                counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            if broken {
                debug!(bytes = data.len(), nals = ?nal_types(&data), "while broken: a picture");
            }
            let due = playout.due(Instant::now(), timestamp);
            match decoder.decode(&data) {
                Ok(Some(frame)) => {
                    last_picture = Some(Instant::now());
                    broken = false;
                    counters.frames_decoded.fetch_add(1, Ordering::Relaxed);
                    if is_keyframe(&data) {
                        counters.keyframes_decoded.fetch_add(1, Ordering::Relaxed);
                    }
                    held.push_back((due, frame));
                    if held.len() > MAX_HELD {
                        held.pop_front();
                        counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    broken = true;
                    counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
                    debug!(error = %e, bytes = data.len(), nals = ?nal_types(&data), "undecodable access unit");
                }
            }
        }
        let stalled = last_picture.is_none_or(|t| t.elapsed() > Duration::from_secs(1));
        // Not more often than the sender answers (see `pipeline::encoding`).
        let pli_due = last_pli.is_none_or(|t| t.elapsed() > PLI_EVERY);
        if (stalled || broken) && pli_due {
            last_pli = Some(Instant::now());
            counters.keyframes_requested.fetch_add(1, Ordering::Relaxed);
            let _ = track
                .write_rtcp(vec![Box::new(PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc: ssrc,
                })])
                .await;
        }
    }
}

/// The receiver asks for a keyframe (PLI) at most this often while its
/// pictures are broken or stalled: as often as the sender answers
/// (`pipeline::encoding`'s `KEYFRAME_AT_MOST`).
const PLI_EVERY: Duration = Duration::from_millis(500);

/// Decoded pictures held for their playout time at most: a second at
/// 30 fps, beyond the playout delay's cap (300 ms) — more would be a
/// stalled sender's burst, not jitter.
const MAX_HELD: usize = 30;

/// Sleeps until `due`, or forever without one.
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

/// Hands the member's Opus packets, as they arrive, to playout (whose
/// jitter buffer orders, decodes and conceals them: `audio::jitter`).
pub(super) async fn receive_audio(
    track: Arc<dyn TrackRemote>,
    events: mpsc::UnboundedSender<PeerEvent>,
) {
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        let packet = AudioPacket {
            at: Instant::now(),
            timestamp: packet.header.timestamp,
            payload: packet.payload.to_vec(),
        };
        if events.send(PeerEvent::Audio(packet)).is_err() {
            return;
        }
    }
}
