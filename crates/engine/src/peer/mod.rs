//! One remote call member over webrtc-rs: the native counterpart of the
//! browser's `PeerLink` (`src-ui/src/engine/peer.ts`).
//!
//! A link owns one `PeerConnection`, one H.264 video track out and the
//! decoding of the member's video in. Negotiation follows the protocol's
//! perfect-negotiation rules (polite = greater id). Every input — a remote
//! signal, or the connection asking for negotiation — is handled by one task,
//! one after the other, so a candidate never races its description.
//!
//! Here: the link and the connection's events; `send.rs` its outgoing
//! tracks, `setup.rs` the codecs and the interceptor chain, `ice.rs` ICE's
//! timing, `restart.rs` when ICE restarts, `negotiate.rs` the negotiation
//! (a state machine and the task that carries it out), `receive.rs` the
//! receive path.

mod ice;
mod negotiate;
mod receive;
mod restart;
mod send;
mod setup;

use negotiate::{negotiate, Negotiator};
use receive::{receive_audio, receive_video};
use restart::Restart;
pub use restart::{RESTART_AFTER_DISCONNECTED, RESTART_EVERY};
use send::{AudioOut, VideoOut};
use setup::{h264_codec, interceptors, opus_codec};
pub use setup::{media_engine, H264_FMTP, MIN_BITRATE_BPS};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use huddle_protocol::signal::IceCandidate;
use huddle_protocol::{IceServer, PeerId, SignalData};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tracing::debug;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceServer, RTCIceTransportPolicy, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    StatsSelector,
};

use crate::audio::jitter::AudioPacket;
use crate::congestion::Estimate;
use crate::feedback::is_keyframe_request;
use crate::heard::{self, Heard};
use crate::probe::ServerProbe;
use crate::stats::{LinkStats, MediaCounters};
use crate::sync::lock;
use crate::video::I420Frame;

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
    /// Asked before each ICE restart whether the signaling server answers
    /// (`probe.rs`); none: restart without asking.
    pub server: Option<Arc<ServerProbe>>,
    /// The member restarts ICE by itself when its own addresses change (a
    /// Huddle engine): a silence from it is waited out longer before this
    /// side restarts (`restart.rs`).
    pub member_watches_its_network: bool,
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

#[derive(Debug)]
enum Input {
    NegotiationNeeded,
    /// The path failed (or stayed disconnected): gather anew and offer.
    RestartIce,
    Remote(SignalData),
    /// The clock (every [`OFFER_RESEND`]): an offer unanswered that long
    /// goes again.
    Tick,
    /// The signaling socket was replaced: what went out on the old one may
    /// be lost, so a pending offer goes again now.
    Resync,
}

/// An offer still unanswered after this long is sent again: signals can be
/// lost with a signaling socket that died silently (the other side's
/// address changed: the server wrote our offer into the dead socket, and
/// only a resend reaches the new one), and a link waiting for an answer
/// never restarts. Half a second, as the browser engine's: the wait for the
/// next resend is part of a network change's freeze.
pub const OFFER_RESEND: Duration = Duration::from_millis(500);

/// How often one offer is sent again at most (30 s: the server's grace for
/// a vanished member is over by then).
const OFFER_RESENDS: u32 = 60;

/// One remote call member.
pub struct PeerLink {
    pc: Arc<dyn PeerConnection>,
    video: VideoOut,
    audio: AudioOut,
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

struct Handler {
    inputs: mpsc::UnboundedSender<Input>,
    events: mpsc::UnboundedSender<PeerEvent>,
    /// The connection is up.
    connected: Arc<AtomicBool>,
    /// Media is written once the connection is up (before DTLS has keys,
    /// SRTP would refuse every packet), and goes on while it is only
    /// disconnected: ICE calls a connection disconnected when no STUN
    /// check was answered for 2 s (`ice.rs`), and says so even when the
    /// path has come back and media is flowing again until its next check
    /// is answered — after the network lab's 3 s outage, 1 s in which nothing
    /// was sent although the path was back. Browsers keep sending too.
    media: Arc<AtomicBool>,
    counters: Arc<MediaCounters>,
    /// This side yields in an offer collision (and restarts ICE later).
    polite: bool,
    /// A task is restarting ICE until the path is back.
    restarting: Arc<AtomicBool>,
    /// Everything that arrived from the member (`heard.rs`).
    heard: Arc<Heard>,
    /// Asked before a restart (see [`PeerSetup::server`]).
    server: Option<Arc<ServerProbe>>,
    /// How long the impolite side waits in silence before it restarts.
    stall: Duration,
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
                let restart = Restart {
                    inputs: self.inputs.clone(),
                    connected: self.connected.clone(),
                    heard: self.heard.clone(),
                    server: self.server.clone(),
                    polite: self.polite,
                    stall: self.stall,
                };
                let restarting = self.restarting.clone();
                tokio::spawn(async move {
                    restart.run().await;
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
        let (registry, estimate, heard) = interceptors(&mut engine, setup.max_bitrate_bps)?;
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
            heard,
            server: setup.server.clone(),
            stall: if setup.member_watches_its_network {
                restart::STALL_TOWARDS_A_WATCHFUL_MEMBER
            } else {
                heard::STALL
            },
        });
        let pc: Arc<dyn PeerConnection> = Arc::new(
            PeerConnectionBuilder::new()
                .with_configuration(config)
                .with_media_engine(engine)
                .with_setting_engine(ice::setting_engine(local_candidates(&setup)))
                .with_interceptor_registry(registry)
                .with_handler(handler)
                .with_udp_addrs(setup.udp_addrs.clone())
                .build()
                .await?,
        );
        let video =
            VideoOut::add_video(pc.as_ref(), &setup.self_id, h264_codec(Vec::new())).await?;
        let audio = AudioOut::add_audio(pc.as_ref(), &setup.self_id, opus_codec()).await?;
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
            Negotiator::new(link.polite, setup.initiator),
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

    /// The signaling socket was replaced: a pending offer goes again now
    /// (the one sent on the old socket may be lost with it).
    pub fn resync(&self) -> Result<(), PeerError> {
        self.inputs
            .send(Input::Resync)
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

    /// Sends one Opus packet of 20 ms captured at RTP time `at` (48 kHz,
    /// counted by the audio pipeline from its first frame: the frames it
    /// did not send leave their gap); nothing before the connection is up.
    pub async fn send_audio(&self, packet: Bytes, at: u32) -> Result<(), PeerError> {
        if !self.sends_media() {
            return Ok(());
        }
        self.audio
            .send(packet, at, crate::audio::FRAME_SAMPLES as u32)
            .await
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

    /// What the link's media may take now, bits per second: congestion
    /// control's estimate of what the path carries less what resends took
    /// lately (`resent_share.rs`; `None` before its first estimate).
    pub fn media_bitrate(&self) -> Option<f64> {
        self.estimate.for_media()
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

/// The candidates this side will likely gather: one per usable address
/// and one per STUN or TURN URL (see `ice::check_pacing`).
fn local_candidates(setup: &PeerSetup) -> usize {
    let servers: usize = setup.ice_servers.iter().map(|s| s.urls.len()).sum();
    crate::network::usable_addresses().len() + servers
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
