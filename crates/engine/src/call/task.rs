//! The task of one call: owns the signaling, the room state, one
//! [`PeerLink`] per remote call member and the media pipeline's controls;
//! takes [`Command`]s, the links' events and the pipeline's reports one at a
//! time and turns them into [`CallEvent`]s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use huddle_protocol::client::{CallJoin, ChatSend, SignalSend};
use huddle_protocol::{ClientMessage, PeerId, ServerMessage, SignalData};
use tokio::sync::mpsc;
use tracing::{debug, warn};
use webrtc::peer_connection::RTCPeerConnectionState;

use crate::audio::processing::Processing;
use crate::audio::AudioSource;
use crate::network::{self, Change, NetworkWatch};
use crate::peer::{PeerEvent, PeerLink, PeerSetup};
use crate::pipeline::{self, Control, Links, Planner, Report};
use crate::playout::{self, Playout, PlayoutBoard};
use crate::probe::{ServerProbe, PROBE_TIMEOUT};
use crate::room::{MeshAction, Room};
use crate::signaling::{Event, Signaling, StopReason};
use crate::sync::lock;
use crate::video::VideoSource;

use super::{CallEvent, CallOptions, Command};

/// How often the links' congestion estimates are read to set the encoder's
/// bitrate: a path that narrows is followed within this (steps up are
/// paced by `congestion::UP_AFTER`). At a second, a member whose link fell
/// from 5 to 0.6 Mbit/s in the network lab's `mesh-600` kept getting
/// 1 Mbit/s for up to a second after the estimate had fallen; the full
/// queue then dropped the keyframes it asked for, and its picture froze
/// for 2–5 s.
const RATE_EVERY: Duration = Duration::from_millis(100);

struct State {
    signaling: Signaling,
    room: Option<Room>,
    links: Links,
    udp_addrs: Vec<String>,
    max_bitrate_bps: u32,
    relay_only: bool,
    peer_events: mpsc::UnboundedSender<(PeerId, PeerEvent)>,
    events: mpsc::UnboundedSender<CallEvent>,
    want_call: bool,
    media: MediaState,
    video: mpsc::UnboundedSender<Control<dyn VideoSource>>,
    audio: mpsc::UnboundedSender<Control<dyn AudioSource>>,
    playout: mpsc::UnboundedSender<Playout>,
    /// The members' playout figures, for [`Command::Stats`].
    playout_board: PlayoutBoard,
    /// Whether captured pictures are reported for a self view.
    preview: Arc<AtomicBool>,
    processing: Arc<Processing>,
    /// Which encoding of the video each member gets (see `pipeline::plan`).
    planner: Planner,
    /// Whether the server still answers, asked by the links (`probe.rs`).
    server: Arc<ServerProbe>,
    /// When a probe unanswered so far gives the socket up.
    probe_deadline: Option<tokio::time::Instant>,
}

/// What this member sends, as the room is told in `media`.
#[derive(Debug, Clone, Copy)]
struct MediaState {
    has_video: bool,
    has_audio: bool,
    camera_on: bool,
    muted: bool,
    sharing: bool,
}

impl MediaState {
    fn to_protocol(self) -> huddle_protocol::Media {
        huddle_protocol::Media {
            audio: self.has_audio && !self.muted,
            video: self.has_video && self.camera_on,
            screen: self.sharing,
        }
    }
}

pub(super) async fn run(
    signaling: Signaling,
    options: CallOptions,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<CallEvent>,
) {
    let (peer_events, mut peer_rx) = mpsc::unbounded_channel();
    let (reports, mut report_rx) = mpsc::unbounded_channel();
    let links: Links = Arc::default();
    let preview = Arc::new(AtomicBool::new(false));
    let media = MediaState {
        has_video: options.video.is_some(),
        has_audio: options.audio.is_some(),
        camera_on: true,
        muted: false,
        sharing: false,
    };
    let (video, video_rx) = mpsc::unbounded_channel();
    let (audio, audio_rx) = mpsc::unbounded_channel();
    let (playout, playout_rx) = mpsc::unbounded_channel();
    let playout_board = PlayoutBoard::default();
    let processing = Arc::new(Processing::new(options.processing));
    let pipelines = [
        tokio::spawn(pipeline::video(
            options.video,
            options.bitrate_bps,
            links.clone(),
            preview.clone(),
            video_rx,
            reports.clone(),
        )),
        tokio::spawn(pipeline::audio(
            options.audio,
            links.clone(),
            processing.clone(),
            audio_rx,
            reports.clone(),
        )),
        tokio::spawn(playout::playout(
            options.output,
            options.volume,
            processing.clone(),
            playout_rx,
            reports,
            playout_board.clone(),
        )),
    ];
    let mut state = State {
        signaling,
        room: None,
        links,
        udp_addrs: options.udp_addrs,
        max_bitrate_bps: options.bitrate_bps,
        relay_only: options.relay_only,
        peer_events,
        events,
        want_call: false,
        media,
        video,
        audio,
        playout,
        playout_board,
        preview,
        processing,
        planner: Planner::new(options.bitrate_bps),
        server: Arc::default(),
        probe_deadline: None,
    };
    let mut rate_ticks = tokio::time::interval(RATE_EVERY);
    let mut network_ticks = tokio::time::interval(network::LOOK_EVERY);
    let mut network = NetworkWatch::new(network::usable_addresses());
    let server = state.server.clone();
    loop {
        tokio::select! {
            event = state.signaling.next_event() => match event {
                Some(Event::Message(message)) => {
                    state.server.heard();
                    state.probe_deadline = None;
                    state.on_message(message).await
                }
                Some(Event::Reconnecting { .. }) => {
                    let _ = state.events.send(CallEvent::Reconnecting);
                }
                Some(Event::Stopped(reason)) => {
                    let _ = state.events.send(CallEvent::Stopped(reason));
                    break;
                }
                None => break,
            },
            () = server.wanted() => state.probe(),
            () = until(state.probe_deadline) => {
                debug!("signaling: no answer to a probe, a new socket");
                state.probe_deadline = None;
                if let Err(e) = state.signaling.reconnect() {
                    debug!(error = %e, "signaling: could not reconnect");
                }
            }
            Some((peer, event)) = peer_rx.recv() => state.on_peer(peer, event),
            Some(report) = report_rx.recv() => state.on_report(report),
            _ = rate_ticks.tick() => state.follow_congestion().await,
            _ = network_ticks.tick() => {
                if let Some(change) = network.update(network::usable_addresses()) {
                    state.on_network_change(change);
                }
            }
            command = commands.recv() => match command {
                Some(Command::Leave) | None => {
                    state.act(vec![MeshAction::CloseAll]).await;
                    pipelines.iter().for_each(|p| p.abort());
                    state.signaling.leave().await;
                    let _ = state.events.send(CallEvent::Stopped(StopReason::Left));
                    return;
                }
                Some(command) => state.on_command(command).await,
            },
        }
    }
    pipelines.iter().for_each(|p| p.abort());
    state.act(vec![MeshAction::CloseAll]).await;
}

/// Waits until `deadline`, or for ever without one.
async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl State {
    /// A link asked whether the server still answers: a `ping`, unless one
    /// is out already.
    fn probe(&mut self) {
        if self.probe_deadline.is_none() {
            self.probe_deadline = Some(tokio::time::Instant::now() + PROBE_TIMEOUT);
            self.send(ClientMessage::Ping);
        }
    }

    fn send(&self, message: ClientMessage) {
        if let Err(e) = self.signaling.send(message) {
            warn!(error = %e, "signaling refused a message");
        }
    }

    fn join_call(&mut self) {
        self.want_call = true;
        let media = self.media.to_protocol();
        self.send(ClientMessage::CallJoin(CallJoin { video: media.video }));
        self.send(ClientMessage::Media(media));
    }

    /// Tells the room what this member sends now.
    fn send_media(&self) {
        self.send(ClientMessage::Media(self.media.to_protocol()));
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::JoinCall => self.join_call(),
            Command::LeaveCall => {
                self.want_call = false;
                self.send(ClientMessage::CallLeave);
                let actions = self.room.as_mut().map(Room::leave_call).unwrap_or_default();
                self.act(actions).await;
            }
            Command::Stats => {
                for (peer, link) in self.all_links() {
                    let mut stats = link.stats().await;
                    stats.encoder_bitrate_bps = self
                        .media
                        .has_video
                        .then(|| self.planner.plan().bitrate_of(&peer));
                    stats.playout = lock(&self.playout_board).get(&peer).copied();
                    let _ = self.events.send(CallEvent::Stats { peer, stats });
                }
            }
            Command::Chat(text) => self.send(ClientMessage::Chat(ChatSend {
                text,
                to: None,
                attachment: None,
            })),
            Command::Send(message) => match message {
                ClientMessage::Chat(_)
                | ClientMessage::Typing(_)
                | ClientMessage::Ring(_)
                | ClientMessage::RingReply(_)
                | ClientMessage::Rooms(_)
                | ClientMessage::Ping => self.send(message),
                _ => warn!("a message the call sends itself came through `Send`; ignored"),
            },
            Command::Mute(muted) => {
                self.media.muted = muted;
                let _ = self.audio.send(Control::Enabled(!muted));
                self.send_media();
            }
            Command::Camera(on) => {
                self.media.camera_on = on;
                let _ = self.video.send(Control::Enabled(on));
                self.send_media();
            }
            Command::SetVideo(source) => {
                self.media.has_video = source.is_some();
                let _ = self.video.send(Control::Source(source));
                self.send_media();
            }
            Command::ShareScreen(screen) => {
                self.media.sharing = screen.is_some();
                if screen.is_none() {
                    let _ = self.audio.send(Control::Screen(None));
                }
                let _ = self.video.send(Control::Screen(screen));
                self.send_media();
            }
            Command::ShareSound(sound) => {
                let _ = self.audio.send(Control::Screen(sound));
            }
            Command::SetAudio(source) => {
                self.media.has_audio = source.is_some();
                let _ = self.audio.send(Control::Source(source));
                self.send_media();
            }
            Command::Preview(on) => self.preview.store(on, Ordering::Relaxed),
            Command::Processing(settings) => self.processing.set(settings),
            Command::SetOutput(sink) => {
                let _ = self.playout.send(Playout::Sink(sink));
            }
            // Handled by the loop (it ends the call).
            Command::Leave => {}
        }
    }

    fn on_report(&mut self, report: Report) {
        let event = match report {
            Report::VideoSourceFailed(e) => {
                self.media.has_video = false;
                self.send_media();
                CallEvent::VideoFailed(e)
            }
            Report::ScreenFailed(e) => {
                self.media.sharing = false;
                // The screen's sound ends with it.
                let _ = self.audio.send(Control::Screen(None));
                self.send_media();
                CallEvent::ScreenFailed(e)
            }
            Report::AudioSourceFailed(e) => {
                self.media.has_audio = false;
                self.send_media();
                CallEvent::AudioInFailed(e)
            }
            Report::ScreenSoundFailed(e) => CallEvent::ScreenSoundFailed(e),
            Report::AudioSinkFailed(e) => CallEvent::AudioOutFailed(e),
            Report::Preview(frame) => CallEvent::LocalVideo(frame),
            Report::Voice(on) => CallEvent::Voice(on),
            // Only the check before a call draws the level: in a call it
            // would be ten messages a second to a window that shows none.
            Report::Level(_) if self.want_call => return,
            Report::Level(dbfs) => CallEvent::Level(dbfs),
            Report::Heard(from, samples) => CallEvent::Audio { from, samples },
            Report::Ceiling(bps) => {
                self.planner.set_ceiling(bps);
                return;
            }
        };
        let _ = self.events.send(event);
    }

    fn all_links(&self) -> Vec<(PeerId, Arc<PeerLink>)> {
        lock(&self.links)
            .iter()
            .map(|(id, link)| (id.clone(), link.clone()))
            .collect()
    }

    /// The machine's addresses changed (see `network`): an address gone
    /// may have been the one a path or the signaling socket used — restart
    /// every link and reconnect at once; a new one may bring back a link
    /// that is down.
    fn on_network_change(&mut self, change: Change) {
        debug!(?change, "the network changed");
        if change.lost {
            if let Err(e) = self.signaling.reconnect() {
                debug!(error = %e, "signaling: could not reconnect");
            }
        }
        for (peer, link) in self.all_links() {
            if change.lost || !link.sends_media() {
                if let Err(e) = link.restart_ice() {
                    debug!(%peer, error = %e, "could not restart ICE");
                }
            }
        }
    }

    /// Reads the links' congestion estimates and moves the video's
    /// encodings to what the links carry (see `pipeline::plan`).
    async fn follow_congestion(&mut self) {
        let estimates: Vec<(PeerId, Option<f64>)> = self
            .all_links()
            .into_iter()
            .map(|(peer, link)| (peer, link.media_bitrate()))
            .collect();
        if let Some(plan) = self.planner.update(&estimates) {
            debug!(bitrates = ?plan.bitrates, placed = ?plan.placed, "video follows the network");
            let _ = self.video.send(Control::Plan(plan.clone()));
        }
    }

    async fn on_message(&mut self, message: ServerMessage) {
        let actions = match (&mut self.room, &message) {
            (_, ServerMessage::Joined { resumed, .. }) => {
                let fresh = !resumed;
                let actions = match &mut self.room {
                    Some(room) => room.apply(&message),
                    None => {
                        self.room = Room::from_joined(&message);
                        Vec::new()
                    }
                };
                self.act(actions).await;
                if fresh && self.want_call {
                    // A new membership: the old call is gone for the others.
                    self.join_call();
                } else if !fresh {
                    // The same membership over a new socket: an offer sent
                    // on the old one may be lost with it.
                    for (peer, link) in self.all_links() {
                        if let Err(e) = link.resync() {
                            debug!(%peer, error = %e, "could not resync");
                        }
                    }
                }
                Vec::new()
            }
            (Some(room), _) => room.apply(&message),
            (None, _) => Vec::new(),
        };
        // The message first, then what it caused (e.g. `peer_left`, then
        // that member's `LinkClosed`).
        if let ServerMessage::Signal { from, data } = message {
            self.act(actions).await;
            self.on_signal(from, data).await;
        } else {
            let _ = self.events.send(CallEvent::Message(message));
            self.act(actions).await;
        }
    }

    async fn on_signal(&mut self, from: PeerId, data: SignalData) {
        let existing = self.link(&from);
        let link = match existing {
            Some(link) => link,
            None => {
                let is_offer = matches!(&data, SignalData::Sdp { sdp } if sdp.kind == huddle_protocol::signal::SdpKind::Offer);
                let accepted = self
                    .room
                    .as_ref()
                    .is_some_and(|r| r.accepts_offer_from(&from));
                if !is_offer || !accepted {
                    return;
                }
                match self.open_link(from.clone(), false).await {
                    Some(link) => link,
                    None => return,
                }
            }
        };
        if link.handle(data).is_err() {
            debug!("signal for a closed link");
        }
    }

    fn link(&self, peer: &str) -> Option<Arc<PeerLink>> {
        lock(&self.links).get(peer).cloned()
    }

    async fn open_link(&mut self, peer: PeerId, initiator: bool) -> Option<Arc<PeerLink>> {
        let room = self.room.as_ref()?;
        let setup = PeerSetup {
            self_id: room.me.id.clone(),
            remote_id: peer.clone(),
            initiator,
            ice_servers: room.ice_servers.clone(),
            udp_addrs: self.udp_addrs.clone(),
            max_bitrate_bps: self.max_bitrate_bps,
            relay_only: self.relay_only,
            server: Some(self.server.clone()),
            member_watches_its_network: room.watches_its_network(&peer),
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let link = match PeerLink::connect(setup, tx).await {
            Ok(link) => link,
            Err(e) => {
                warn!(error = %e, "could not open a peer connection");
                return None;
            }
        };
        let forward = self.peer_events.clone();
        let from = peer.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                if forward.send((from.clone(), event)).is_err() {
                    return;
                }
            }
        });
        lock(&self.links).insert(peer.clone(), link.clone());
        // A new member needs a keyframe to start decoding.
        let _ = self.video.send(Control::KeyframeNow(peer));
        Some(link)
    }

    async fn act(&mut self, actions: Vec<MeshAction>) {
        for action in actions {
            match action {
                MeshAction::Offer(peer) => {
                    // A link that exists stays: a second one would replace
                    // it mid-negotiation (a `call_join` sent again while in
                    // the call is answered with the same members).
                    if self.link(&peer).is_some() {
                        debug!(%peer, "already linked: no second offer");
                        continue;
                    }
                    self.open_link(peer, true).await;
                }
                MeshAction::Close(peer) => {
                    let link = lock(&self.links).remove(&peer);
                    if let Some(link) = link {
                        link.close().await;
                        let _ = self.playout.send(Playout::Gone(peer.clone()));
                        let _ = self.events.send(CallEvent::LinkClosed { peer });
                    }
                }
                MeshAction::CloseAll => {
                    let all: Vec<_> = lock(&self.links).drain().collect();
                    for (peer, link) in all {
                        link.close().await;
                        let _ = self.playout.send(Playout::Gone(peer.clone()));
                        let _ = self.events.send(CallEvent::LinkClosed { peer });
                    }
                }
            }
        }
    }

    fn on_peer(&mut self, peer: PeerId, event: PeerEvent) {
        match event {
            PeerEvent::Signal(data) => {
                self.send(ClientMessage::Signal(SignalSend { to: peer, data }))
            }
            PeerEvent::Video(frame) => {
                let _ = self.events.send(CallEvent::Video { from: peer, frame });
            }
            PeerEvent::Audio(packet) => {
                let _ = self.playout.send(Playout::Packet(peer, packet));
            }
            PeerEvent::KeyframeWanted => {
                let _ = self.video.send(Control::KeyframeRequest(peer));
            }
            PeerEvent::State(state) => {
                if state == RTCPeerConnectionState::Connected {
                    // Whatever was sent before the path was up is lost: the
                    // member needs a keyframe to start decoding.
                    let _ = self.video.send(Control::KeyframeNow(peer.clone()));
                }
                let _ = self.events.send(CallEvent::Connection { peer, state });
            }
        }
    }
}
