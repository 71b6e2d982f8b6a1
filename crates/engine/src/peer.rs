//! One remote call member over webrtc-rs: the native counterpart of the
//! browser's `PeerLink` (`src-ui/src/engine/peer.ts`).
//!
//! A link owns one `PeerConnection`, one H.264 video track out and the
//! decoding of the member's video in. Negotiation follows the protocol's
//! perfect-negotiation rules (polite = greater id). Every input — a remote
//! signal, or the connection asking for negotiation — is handled by one task,
//! one after the other, so a candidate never races its description.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use huddle_protocol::signal::{IceCandidate, SdpKind, SessionDescription};
use huddle_protocol::{IceServer, PeerId, SignalData};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{
    CongestionControlBuilder, NackGeneratorBuilder, NackResponderBuilder, PacerBuilder, Registry,
    Slot, TwccReceiverBuilder, TwccSenderBuilder,
};
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::configure_rtcp_reports;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
    TYPE_RTCP_FB_TRANSPORT_CC,
};
use rtc::sdp::extmap::TRANSPORT_CC_URI;
use thiserror::Error;
use tokio::sync::{mpsc, watch, Mutex};
use tracing::debug;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::media_stream::Track;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceServer, RTCIceTransportPolicy,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSdpType, RTCSessionDescription,
    SettingEngineBuilder, StatsSelector,
};
use webrtc::rtp_transceiver::RtpSender;

use crate::audio::jitter::AudioPacket;
use crate::congestion::{link_budget, Estimate, Shared, PACING_FACTOR};
use crate::coverage::{Coverage, CoverageTap};
use crate::estimator::Estimator;
use crate::feedback::{is_keyframe_request, KeyframeRequests};
use crate::reorder::ReorderWait;
use crate::repair::{RtxUnwrap, WithRepairStreams};
use crate::resend::ResendFilter;
use crate::stats::{LinkStats, MediaCounters};
use crate::sync::lock;
use crate::video::assembler::{Assembled, Assembler};
use crate::video::h264::{nal_types, H264Decoder};
use crate::video::playout::VideoPlayout;
use crate::video::I420Frame;

/// The H.264 every Huddle client offers and accepts.
pub const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";
const H264_PAYLOAD_TYPE: u8 = 102;
/// H.264's resends on a stream of their own (RTX, `repair.rs`).
const H264_RTX_PAYLOAD_TYPE: u8 = 103;
const OPUS_PAYLOAD_TYPE: u8 = 111;

/// A link could not be set up or used.
#[derive(Debug, Error)]
pub enum PeerError {
    #[error("WebRTC: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    #[error("the link is closed")]
    Closed,
}

/// What a link needs to know.
#[derive(Debug, Clone)]
pub struct PeerSetup {
    pub self_id: PeerId,
    pub remote_id: PeerId,
    /// This side joined the call later and sends the first offer.
    pub initiator: bool,
    pub ice_servers: Vec<IceServer>,
    /// Local UDP addresses to gather on (`0.0.0.0:0`: every interface).
    pub udp_addrs: Vec<String>,
    /// Where congestion control starts and the most it will ask for, bits
    /// per second.
    pub max_bitrate_bps: u32,
    /// Media only through a TURN relay (the user's address stays hidden
    /// from the other members).
    pub relay_only: bool,
}

/// What a link reports.
#[derive(Debug)]
pub enum PeerEvent {
    /// To send to the remote member through signaling.
    Signal(SignalData),
    State(RTCPeerConnectionState),
    /// A decoded picture of the member's video.
    Video(I420Frame),
    /// A packet of the member's audio, as it arrived.
    Audio(AudioPacket),
    /// The member asked for a keyframe (it joined, or lost packets).
    KeyframeWanted,
}

enum Input {
    NegotiationNeeded,
    /// The path failed (or stayed disconnected): gather anew and offer.
    RestartIce,
    Remote(SignalData),
}

/// How long a disconnected (or failed) path may stay so before the impolite
/// side restarts ICE (webrtc-rs takes ~30 s to declare a path failed). The
/// polite side waits twice as long: when a path dies both sides notice at
/// once, and two restarts crossing each other were measured never to
/// connect, so normally only one side restarts and the other answers.
pub const RESTART_AFTER_DISCONNECTED: Duration = Duration::from_secs(5);

/// While the path stays down, ICE is restarted again this often (the
/// polite side twice as seldom): one restart can fail for good — a network
/// still out when its checks ran, a relay that died — and webrtc-rs never
/// tries again by itself.
pub const RESTART_EVERY: Duration = Duration::from_secs(12);

/// How often a candidate pair is checked before it counts as failed, at
/// webrtc-rs's 200 ms spacing: 25 s (its own default, 7, gives up after
/// 1.4 s). A restart made while the network is out — the 20 s outage of the
/// network lab — otherwise failed all its pairs before the network came
/// back and the call never returned; pairs still being checked connect
/// within a check of the network's return.
const ICE_CHECKS_PER_PAIR: u16 = 125;

/// One outgoing track: what it writes to, and its negotiated SSRC and
/// payload type once known.
struct Outgoing {
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    negotiated: Mutex<Option<(u32, u8)>>,
}

impl Outgoing {
    async fn add(
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
    async fn send(&self, data: Bytes, duration: Duration) -> Result<(), PeerError> {
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

/// One remote call member.
pub struct PeerLink {
    pc: Arc<dyn PeerConnection>,
    video: Outgoing,
    audio: Outgoing,
    /// Media is sent (see [`Handler::media`]).
    media: Arc<AtomicBool>,
    counters: Arc<MediaCounters>,
    /// Congestion control's estimate for this path.
    estimate: Arc<Estimate>,
    /// The previous figures, to measure rates against.
    last_stats: std::sync::Mutex<Option<LinkStats>>,
    /// Tells the link's own tasks to end (dropping it does too).
    closed: watch::Sender<bool>,
    inputs: mpsc::UnboundedSender<Input>,
    polite: bool,
}

impl std::fmt::Debug for PeerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerLink")
            .field("polite", &self.polite)
            .finish_non_exhaustive()
    }
}

/// The interceptor chain: NACK, RTCP reports, send-side congestion control
/// (GCC over transport-wide feedback, as browsers do it) and the keyframe
/// requests the application must see.
///
/// Congestion control is assembled here rather than with webrtc-rs's
/// `configure_congestion_control`, whose pacer starts at 1 Mbit/s whatever
/// the estimator says and then paces at exactly the estimate: every
/// keyframe waited its size over the estimate (measured at 720p: latency
/// grew to seconds). Here the pacer starts where the estimator does and
/// is told [`PACING_FACTOR`] times the estimate (see [`Shared`]).
fn interceptors(
    engine: &mut MediaEngine,
    max_bitrate_bps: u32,
) -> Result<(Registry, Arc<Estimate>), PeerError> {
    let max = link_budget(max_bitrate_bps.max(MIN_BITRATE_BPS));
    // Start at the most the call wants: on a good path the estimate holds
    // and the first seconds are sharp; on a poor one it falls within the
    // first round trips.
    let coverage = Arc::new(Coverage::default());
    let (estimator, estimate) = Shared::new(
        Estimator::new(max, f64::from(MIN_BITRATE_BPS), max).with_coverage(coverage.clone()),
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
        .with(KeyframeRequests::slot(), KeyframeRequests::interceptor());
    Ok((registry, estimate))
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

fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "audio/opus".into(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
        rtcp_feedback: Vec::new(),
    }
}

fn h264_codec(rtcp_feedback: Vec<RTCPFeedback>) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "video/H264".into(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: H264_FMTP.into(),
        rtcp_feedback,
    }
}

struct Handler {
    inputs: mpsc::UnboundedSender<Input>,
    events: mpsc::UnboundedSender<PeerEvent>,
    /// The connection is up.
    connected: Arc<AtomicBool>,
    /// Media is written once the connection is up (before DTLS has keys,
    /// SRTP would refuse every packet), and goes on while it is only
    /// disconnected: ICE calls a connection disconnected when no STUN
    /// check was answered for 5 s, and says so even when the path has
    /// come back and media is flowing again until its next check is
    /// answered — after the network lab's 3 s outage, 1 s in which nothing
    /// was sent although the path was back. Browsers keep sending too.
    media: Arc<AtomicBool>,
    counters: Arc<MediaCounters>,
    /// This side yields in an offer collision (and restarts ICE later).
    polite: bool,
    /// A task is restarting ICE until the path is back.
    restarting: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_negotiation_needed(&self) {
        let _ = self.inputs.send(Input::NegotiationNeeded);
    }

    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            if unreachable_candidate(&init.candidate) {
                debug!(candidate = %init.candidate, "a wildcard candidate, not sent");
                return;
            }
            let _ = self.events.send(PeerEvent::Signal(SignalData::Candidate {
                candidate: Some(IceCandidate {
                    candidate: init.candidate,
                    sdp_mid: init.sdp_mid,
                    sdp_m_line_index: init.sdp_mline_index,
                    username_fragment: init.username_fragment,
                }),
            }));
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        debug!(?state, "connection state");
        let up = state == RTCPeerConnectionState::Connected;
        self.connected.store(up, Ordering::Relaxed);
        let disconnected = state == RTCPeerConnectionState::Disconnected;
        let media = up || (disconnected && self.media.load(Ordering::Relaxed));
        self.media.store(media, Ordering::Relaxed);
        if matches!(
            state,
            RTCPeerConnectionState::Disconnected | RTCPeerConnectionState::Failed
        ) {
            // Often a blip that heals itself; if it does not, restart, and
            // again while the path stays down (one task at a time).
            if !self.restarting.swap(true, Ordering::AcqRel) {
                let (inputs, connected) = (self.inputs.clone(), self.connected.clone());
                let restarting = self.restarting.clone();
                let slower = if self.polite { 2 } else { 1 };
                tokio::spawn(async move {
                    tokio::time::sleep(RESTART_AFTER_DISCONNECTED * slower).await;
                    while !connected.load(Ordering::Relaxed) {
                        if inputs.send(Input::RestartIce).is_err() {
                            break; // the link is gone
                        }
                        tokio::time::sleep(RESTART_EVERY * slower).await;
                    }
                    restarting.store(false, Ordering::Release);
                });
            }
        }
        let _ = self.events.send(PeerEvent::State(state));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        // Nothing is awaited in a handler: the connection's driver waits for
        // it, and a track's methods need the driver.
        let events = self.events.clone();
        let counters = self.counters.clone();
        tokio::spawn(async move {
            if track.kind().await == RtpCodecKind::Audio {
                receive_audio(track, events).await;
            } else {
                receive_video(track, events, counters).await;
            }
        });
    }
}

impl PeerLink {
    /// Sets up the connection; the initiator starts negotiating at once.
    pub async fn connect(
        setup: PeerSetup,
        events: mpsc::UnboundedSender<PeerEvent>,
    ) -> Result<Arc<PeerLink>, PeerError> {
        let mut engine = media_engine()?;
        let (registry, estimate) = interceptors(&mut engine, setup.max_bitrate_bps)?;
        let ice_servers = setup
            .ice_servers
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone().unwrap_or_default(),
                credential: s.credential.clone().unwrap_or_default(),
            })
            .collect();
        let policy = if setup.relay_only {
            RTCIceTransportPolicy::Relay
        } else {
            RTCIceTransportPolicy::All
        };
        let config = RTCConfigurationBuilder::new()
            .with_ice_servers(ice_servers)
            .with_ice_transport_policy(policy)
            .build();
        let (inputs, input_rx) = mpsc::unbounded_channel();
        let media = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(MediaCounters::default());
        let handler = Arc::new(Handler {
            inputs: inputs.clone(),
            events: events.clone(),
            connected: Arc::new(AtomicBool::new(false)),
            media: media.clone(),
            counters: counters.clone(),
            polite: setup.self_id > setup.remote_id,
            restarting: Arc::new(AtomicBool::new(false)),
        });
        let pc: Arc<dyn PeerConnection> = Arc::new(
            PeerConnectionBuilder::new()
                .with_configuration(config)
                .with_media_engine(engine)
                // An ICE restart gathers afresh — new sockets, new TURN
                // allocations: without this webrtc-rs keeps the old ones, and
                // a call whose relay died never came back (measured).
                .with_setting_engine(
                    SettingEngineBuilder::new()
                        .with_discard_local_candidates_during_ice_restart(true)
                        .with_ice_connection_attempts(None, Some(ICE_CHECKS_PER_PAIR))
                        .with_multicast_dns_mode(mdns_mode())
                        .build(),
                )
                .with_interceptor_registry(registry)
                .with_handler(handler)
                .with_udp_addrs(setup.udp_addrs.clone())
                .build()
                .await?,
        );
        let video = Outgoing::add(
            pc.as_ref(),
            &setup.self_id,
            RtpCodecKind::Video,
            h264_codec(Vec::new()),
        )
        .await?;
        let audio = Outgoing::add(
            pc.as_ref(),
            &setup.self_id,
            RtpCodecKind::Audio,
            opus_codec(),
        )
        .await?;
        let link = Arc::new(PeerLink {
            pc: pc.clone(),
            video,
            audio,
            media,
            counters,
            estimate,
            last_stats: std::sync::Mutex::new(None),
            closed: watch::channel(false).0,
            inputs,
            polite: setup.self_id > setup.remote_id,
        });
        if setup.initiator {
            // Offer now rather than wait for `negotiationneeded`: webrtc-rs
            // 0.21 queues that event inside its driver and delivers it only
            // when the driver next wakes for another reason (measured: never,
            // on an idle connection).
            let _ = link.inputs.send(Input::NegotiationNeeded);
        }
        tokio::spawn(watch_feedback(
            link.video.track.clone(),
            events.clone(),
            link.closed.subscribe(),
        ));
        tokio::spawn(negotiate(
            pc,
            link.polite,
            setup.initiator,
            input_rx,
            events,
            link.closed.subscribe(),
        ));
        Ok(link)
    }

    /// Whether media is sent (the connection is up, or only disconnected).
    pub fn sends_media(&self) -> bool {
        self.media.load(Ordering::Relaxed)
    }

    /// Whether this side yields in an offer collision.
    pub fn polite(&self) -> bool {
        self.polite
    }

    /// Restarts ICE: new credentials, new candidates, a new offer (what a
    /// failed path does by itself; see [`RESTART_AFTER_DISCONNECTED`]).
    pub fn restart_ice(&self) -> Result<(), PeerError> {
        self.inputs
            .send(Input::RestartIce)
            .map_err(|_| PeerError::Closed)
    }

    /// Queues a signal from the remote member.
    pub fn handle(&self, data: SignalData) -> Result<(), PeerError> {
        self.inputs
            .send(Input::Remote(data))
            .map_err(|_| PeerError::Closed)
    }

    /// Sends one encoded access unit (Annex B). Before the connection has
    /// negotiated its codec this does nothing.
    pub async fn send_video(
        &self,
        access_unit: Bytes,
        duration: Duration,
    ) -> Result<(), PeerError> {
        if !self.sends_media() {
            return Ok(());
        }
        self.video.send(access_unit, duration).await
    }

    /// Sends one Opus packet (20 ms); nothing before the connection is up.
    pub async fn send_audio(&self, packet: Bytes) -> Result<(), PeerError> {
        if !self.sends_media() {
            return Ok(());
        }
        self.audio.send(packet, Duration::from_millis(20)).await
    }

    /// The connection's figures now, with rates since the last call.
    pub async fn stats(&self) -> LinkStats {
        let report = self.pc.get_stats(Instant::now(), StatsSelector::None).await;
        let mut stats = LinkStats::from_report(&report, &self.counters);
        stats.target_bitrate_bps = self.estimate.get();
        let mut last = lock(&self.last_stats);
        if let Some(previous) = last.as_ref() {
            stats.rates_since(previous);
        }
        *last = Some(stats.clone());
        stats
    }

    /// Congestion control's estimate of what the path carries, bits per
    /// second (`None` before its first estimate).
    pub fn target_bitrate(&self) -> Option<f64> {
        self.estimate.get()
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.closed.send(true);
        let _ = self.pc.close().await;
    }
}

/// Turns the member's keyframe requests (PLI, FIR) into [`PeerEvent::KeyframeWanted`].
///
/// The track has no feedback to give until negotiation binds it (its `poll`
/// returns `None` at once until then), so an unbound track is asked again a
/// little later; the watch ends with the link.
async fn watch_feedback(
    track: Arc<TrackLocalStaticSample>,
    events: mpsc::UnboundedSender<PeerEvent>,
    mut closed: watch::Receiver<bool>,
) {
    loop {
        let event = tokio::select! {
            event = track.poll() => event,
            _ = closed.wait_for(|c| *c) => return,
        };
        match event {
            Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                let wants_keyframe = packets.iter().any(|p| is_keyframe_request(p.as_ref()));
                if wants_keyframe && events.send(PeerEvent::KeyframeWanted).is_err() {
                    return;
                }
            }
            Some(_) => {}
            None => tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = closed.wait_for(|c| *c) => return,
            },
        }
    }
}

/// The negotiation task: inputs one at a time, perfect negotiation.
async fn negotiate(
    pc: Arc<dyn PeerConnection>,
    polite: bool,
    initiator: bool,
    mut inputs: mpsc::UnboundedReceiver<Input>,
    events: mpsc::UnboundedSender<PeerEvent>,
    mut closed: watch::Receiver<bool>,
) {
    let mut ignoring_offer = false;
    // The later joiner offers first; the other side waits for that offer
    // even if its own connection asks to negotiate.
    let mut may_offer = initiator;
    let mut last_restart: Option<Instant> = None;
    loop {
        // The task holds the connection, and the connection's handler holds
        // this task's input: only the close signal can end it.
        let input = tokio::select! {
            input = inputs.recv() => match input {
                Some(input) => input,
                None => return,
            },
            _ = closed.wait_for(|c| *c) => return,
        };
        let result: Result<(), PeerError> = async {
            match input {
                Input::NegotiationNeeded => {
                    // Tracks never change after the start yet, so once a
                    // description has been agreed there is nothing to
                    // renegotiate; a late `negotiationneeded` from the driver
                    // (see `connect`) must not start a second round.
                    let agreed = pc.current_remote_description().await.is_some();
                    if !may_offer || agreed || !stable(pc.as_ref()).await {
                        return Ok(());
                    }
                    let offer = pc.create_offer(None).await?;
                    pc.set_local_description(offer).await?;
                    send_local(pc.as_ref(), &events).await;
                }
                Input::RestartIce => {
                    // Only an agreed connection restarts, one restart at a
                    // time; if both sides restart at once, perfect
                    // negotiation settles the collision like any other.
                    let agreed = pc.current_remote_description().await.is_some();
                    let recent = last_restart
                        .is_some_and(|t: Instant| t.elapsed() < RESTART_AFTER_DISCONNECTED);
                    if !agreed || recent || !stable(pc.as_ref()).await {
                        return Ok(());
                    }
                    last_restart = Some(Instant::now());
                    debug!("restarting ICE");
                    pc.restart_ice().await?;
                    let offer = pc.create_offer(None).await?;
                    pc.set_local_description(offer).await?;
                    send_local(pc.as_ref(), &events).await;
                }
                Input::Remote(SignalData::Sdp { sdp: description }) => {
                    let collision =
                        description.kind == SdpKind::Offer && !stable(pc.as_ref()).await;
                    ignoring_offer = !polite && collision;
                    if ignoring_offer {
                        return Ok(());
                    }
                    if collision {
                        pc.set_local_description(rollback()).await?;
                    }
                    let is_offer = description.kind == SdpKind::Offer;
                    pc.set_remote_description(to_rtc(description)?).await?;
                    may_offer = true;
                    if is_offer {
                        let answer = pc.create_answer(None).await?;
                        pc.set_local_description(answer).await?;
                        send_local(pc.as_ref(), &events).await;
                    }
                }
                Input::Remote(SignalData::Candidate {
                    candidate: Some(candidate),
                }) => {
                    let init = RTCIceCandidateInit {
                        candidate: candidate.candidate,
                        sdp_mid: candidate.sdp_mid,
                        sdp_mline_index: candidate.sdp_m_line_index,
                        username_fragment: candidate.username_fragment,
                        ..Default::default()
                    };
                    if let Err(e) = pc.add_ice_candidate(init).await {
                        if !ignoring_offer {
                            return Err(e.into());
                        }
                    }
                }
                Input::Remote(SignalData::Candidate { candidate: None }) => {}
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            debug!(error = %e, "negotiation step failed");
        }
    }
}

async fn stable(pc: &dyn PeerConnection) -> bool {
    pc.pending_local_description().await.is_none()
        && pc.pending_remote_description().await.is_none()
}

async fn send_local(pc: &dyn PeerConnection, events: &mpsc::UnboundedSender<PeerEvent>) {
    if let Some(local) = pc.local_description().await {
        tracing::trace!(sdp = %local.sdp, "local description");
        let kind = match local.sdp_type {
            RTCSdpType::Offer => SdpKind::Offer,
            RTCSdpType::Pranswer => SdpKind::Pranswer,
            _ => SdpKind::Answer,
        };
        let _ = events.send(PeerEvent::Signal(SignalData::Sdp {
            sdp: SessionDescription {
                kind,
                sdp: local.sdp,
            },
        }));
    }
}

/// A rollback description (its private fields have no constructor).
fn rollback() -> RTCSessionDescription {
    let mut description = RTCSessionDescription::default();
    description.sdp_type = RTCSdpType::Rollback;
    description
}

fn to_rtc(description: SessionDescription) -> Result<RTCSessionDescription, PeerError> {
    Ok(match description.kind {
        SdpKind::Offer => RTCSessionDescription::offer(description.sdp)?,
        SdpKind::Answer => RTCSessionDescription::answer(description.sdp)?,
        SdpKind::Pranswer => RTCSessionDescription::pranswer(description.sdp)?,
        SdpKind::Rollback => rollback(),
    })
}

/// How long a picture with a missing packet is held for the packet to be
/// retransmitted (NACK) before it is given up on.
const VIDEO_WAIT: Duration = Duration::from_millis(400);

/// Reassembles, decodes and reports the member's video, each picture when
/// its playout delay says (`video::playout`); asks for a keyframe (PLI)
/// while nothing decodes: before the first picture, after an access unit
/// that would not decode, and when pictures stopped for a second while
/// packets still come (losses NACK did not repair).
async fn receive_video(
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
async fn receive_audio(track: Arc<dyn TrackRemote>, events: mpsc::UnboundedSender<PeerEvent>) {
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

/// Whether a local candidate's address is one no peer can reach: the
/// unspecified address (`0.0.0.0`, `::`), which webrtc-rs offers when a
/// wildcard socket of a family had no interface to expand into (an IPv4-only
/// machine's `[::]:0`). Sent, it would have the other side check a path to
/// "any address" — its own machine.
fn unreachable_candidate(candidate: &str) -> bool {
    // `candidate:<foundation> <component> <transport> <priority> <address> <port> typ …`
    candidate
        .split_whitespace()
        .nth(4)
        .and_then(|address| address.parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.is_unspecified())
}

/// Whether `.local` candidates (a browser hiding its addresses) can be
/// resolved here. webrtc-rs opens its mDNS socket when it builds a peer
/// connection and, if that fails, builds no peer connection at all. It
/// fails where the socket cannot join 224.0.0.251 (a machine without a
/// default route — an offline LAN, a VPN-only host: "No such device (os
/// error 19)", measured in the network lab) and where the socket layer
/// refuses an option webrtc-rs sets on it (wine's Winsock: "operation not
/// supported", 10045, asked for IPV6_V6ONLY of an IPv4 socket). So the same
/// socket is built here first; where it cannot be, calls go without mDNS.
fn mdns_mode() -> MulticastDnsMode {
    let opens = rtc::mdns::MulticastSocket::new()
        .into_std()
        .and_then(|socket| webrtc::runtime::UdpSocketState::new((&socket).into()).map(drop));
    match opens {
        Ok(()) => MulticastDnsMode::QueryOnly,
        Err(e) => {
            tracing::warn!(error = %e, "no mDNS socket: `.local` candidates will not be resolved");
            MulticastDnsMode::Disabled
        }
    }
}

#[cfg(test)]
mod tests {
    use super::unreachable_candidate;

    #[test]
    fn wildcard_candidates_are_not_offered() {
        assert!(unreachable_candidate(
            "candidate:1 1 udp 2130706431 :: 40123 typ host"
        ));
        assert!(unreachable_candidate(
            "candidate:1 1 udp 2130706431 0.0.0.0 40123 typ host"
        ));
        assert!(!unreachable_candidate(
            "candidate:1 1 udp 2130706431 fd91:1::2 40123 typ host"
        ));
        assert!(!unreachable_candidate(
            "candidate:2 1 udp 1694498815 203.0.113.7 5000 typ srflx raddr 0.0.0.0 rport 0"
        ));
        assert!(!unreachable_candidate(
            "candidate:3 1 udp 2130706431 abc.local 40123 typ host"
        ));
    }
}
