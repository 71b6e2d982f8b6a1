//! A link's outgoing tracks (one video, one audio): each added to the
//! connection with an SSRC of its own, and written to once negotiation has
//! settled its payload type.
//!
//! Video goes through webrtc-rs's packetizer (a sample in, RTP packets
//! out). Audio is written as RTP directly, one Opus packet each, stamped
//! with the RTP time the pipeline gives it: a frame not sent (Opus DTX, or
//! muted) leaves a gap in the timestamps but none in the sequence numbers,
//! which is what tells a listener silence from loss.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::Mutex;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::Track;
use webrtc::peer_connection::PeerConnection;
use webrtc::rtp_transceiver::RtpSender;

use super::PeerError;

/// One outgoing track: what it writes to, and its negotiated SSRC and
/// payload type once known.
pub(super) struct Outgoing<T> {
    pub(super) track: Arc<T>,
    sender: Arc<dyn RtpSender>,
    negotiated: Mutex<Option<(u32, u8)>>,
}

/// The outgoing video: encoded pictures, packetized by webrtc-rs.
pub(super) type VideoOut = Outgoing<TrackLocalStaticSample>;

/// The outgoing audio: Opus packets, one RTP packet each.
pub(super) struct AudioOut {
    out: Outgoing<TrackLocalStaticRTP>,
    rtp: Mutex<AudioRtp>,
}

/// What the audio's RTP headers continue from.
struct AudioRtp {
    sequence: u16,
    /// Added to the pipeline's RTP time (a random start, RFC 3550 §5.1).
    offset: u32,
    /// The pipeline's RTP time of the packet after the last one sent.
    expected: Option<u32>,
}

/// The description of one outgoing track with an SSRC of its own.
fn media_track(owner: &str, kind: RtpCodecKind, codec: RTCRtpCodec) -> MediaStreamTrack {
    let label = if kind == RtpCodecKind::Video {
        "video"
    } else {
        "audio"
    };
    MediaStreamTrack::new(
        format!("huddle-{owner}"),
        format!("huddle-{label}-{owner}"),
        label.into(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(rand::random::<u32>()),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )
}

impl<T: TrackLocal + Track + 'static> Outgoing<T> {
    async fn add(pc: &dyn PeerConnection, track: T) -> Result<Outgoing<T>, PeerError> {
        let track = Arc::new(track);
        let sender = pc
            .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
            .await?;
        Ok(Outgoing {
            track,
            sender,
            negotiated: Mutex::new(None),
        })
    }

    /// The SSRC and payload type to write with; `None` before negotiation
    /// settled the codec.
    async fn negotiated(&self) -> Result<Option<(u32, u8)>, PeerError> {
        let mut negotiated = self.negotiated.lock().await;
        if negotiated.is_none() {
            let parameters = self.sender.get_parameters().await?;
            let Some(codec) = parameters.rtp_parameters.codecs.first() else {
                return Ok(None);
            };
            let Some(ssrc) = self.track.ssrcs().await.first().copied() else {
                return Ok(None);
            };
            *negotiated = Some((ssrc, codec.payload_type));
        }
        Ok(*negotiated)
    }
}

impl VideoOut {
    pub(super) async fn add_video(
        pc: &dyn PeerConnection,
        owner: &str,
        codec: RTCRtpCodec,
    ) -> Result<VideoOut, PeerError> {
        let track = TrackLocalStaticSample::new(
            Instant::now(),
            media_track(owner, RtpCodecKind::Video, codec),
        )?;
        Outgoing::add(pc, track).await
    }

    /// Writes one sample; before negotiation settled the codec, nothing.
    pub(super) async fn send(&self, data: Bytes, duration: Duration) -> Result<(), PeerError> {
        let Some((ssrc, payload_type)) = self.negotiated().await? else {
            return Ok(());
        };
        self.track
            .sample_writer(ssrc, payload_type)
            .write_sample(&Sample {
                data,
                duration,
                ..Sample::new(Instant::now())
            })
            .await?;
        Ok(())
    }
}

impl AudioOut {
    pub(super) async fn add_audio(
        pc: &dyn PeerConnection,
        owner: &str,
        codec: RTCRtpCodec,
    ) -> Result<AudioOut, PeerError> {
        let track = TrackLocalStaticRTP::new(media_track(owner, RtpCodecKind::Audio, codec));
        Ok(AudioOut {
            out: Outgoing::add(pc, track).await?,
            rtp: Mutex::new(AudioRtp {
                sequence: rand::random(),
                offset: rand::random(),
                expected: None,
            }),
        })
    }

    /// Writes one Opus packet of `samples` (48 kHz) captured at the
    /// pipeline's RTP time `at`; before negotiation settled the codec,
    /// nothing. The first packet after a gap in time starts a talk spurt
    /// and carries the marker bit (RFC 3551 §4.1).
    pub(super) async fn send(&self, packet: Bytes, at: u32, samples: u32) -> Result<(), PeerError> {
        let Some((ssrc, payload_type)) = self.out.negotiated().await? else {
            return Ok(());
        };
        let header = {
            let mut rtp = self.rtp.lock().await;
            let marker = rtp.expected != Some(at);
            rtp.expected = Some(at.wrapping_add(samples));
            let sequence_number = rtp.sequence;
            rtp.sequence = rtp.sequence.wrapping_add(1);
            rtp::header::Header {
                version: 2,
                marker,
                payload_type,
                sequence_number,
                timestamp: at.wrapping_add(rtp.offset),
                ssrc,
                ..Default::default()
            }
        };
        self.out
            .track
            .write_rtp(rtp::Packet {
                header,
                payload: packet,
            })
            .await?;
        Ok(())
    }
}
