//! A link's outgoing tracks (one video, one audio): each added to the
//! connection with an SSRC of its own, and written to once negotiation has
//! settled its payload type.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::Mutex;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::Track;
use webrtc::peer_connection::PeerConnection;
use webrtc::rtp_transceiver::RtpSender;

use super::PeerError;

/// One outgoing track: what it writes to, and its negotiated SSRC and
/// payload type once known.
pub(super) struct Outgoing {
    pub(super) track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    negotiated: Mutex<Option<(u32, u8)>>,
}

impl Outgoing {
    pub(super) async fn add(
        pc: &dyn PeerConnection,
        owner: &str,
        kind: RtpCodecKind,
        codec: RTCRtpCodec,
    ) -> Result<Outgoing, PeerError> {
        let label = if kind == RtpCodecKind::Video {
            "video"
        } else {
            "audio"
        };
        let track = Arc::new(TrackLocalStaticSample::new(
            Instant::now(),
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
            ),
        )?);
        let sender = pc
            .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
            .await?;
        Ok(Outgoing {
            track,
            sender,
            negotiated: Mutex::new(None),
        })
    }

    /// Writes one sample; before negotiation settled the codec, nothing.
    pub(super) async fn send(&self, data: Bytes, duration: Duration) -> Result<(), PeerError> {
        let mut negotiated = self.negotiated.lock().await;
        if negotiated.is_none() {
            let parameters = self.sender.get_parameters().await?;
            let Some(codec) = parameters.rtp_parameters.codecs.first() else {
                return Ok(());
            };
            let Some(ssrc) = self.track.ssrcs().await.first().copied() else {
                return Ok(());
            };
            *negotiated = Some((ssrc, codec.payload_type));
        }
        let Some((ssrc, payload_type)) = *negotiated else {
            return Ok(());
        };
        drop(negotiated);
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
