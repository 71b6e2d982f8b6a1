//! A room membership with its call: signaling, the room state, one
//! [`PeerLink`] per remote call member, and one video encoder shared by all
//! of them (a frame is encoded once, whatever the number of peers).
//!
//! [`Call::start`] spawns the task that owns all of it; the application
//! sends [`Command`]s and receives [`CallEvent`]s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use huddle_protocol::client::{CallJoin, ChatSend, SignalSend};
use huddle_protocol::{ClientMessage, PeerId, ServerMessage, SignalData};
use tokio::sync::mpsc;
use tracing::{debug, warn};
use webrtc::peer_connection::RTCPeerConnectionState;

use crate::audio::opus::OpusEncoder;
use crate::audio::tone::ToneSource;
use crate::peer::{PeerEvent, PeerLink, PeerSetup};
use crate::room::{MeshAction, Room};
use crate::signaling::{Event, JoinParams, Signaling, StopReason};
use crate::stats::LinkStats;
use crate::video::h264::H264Encoder;
use crate::video::pattern::TestPattern;
use crate::video::I420Frame;

/// What video this client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoSource {
    None,
    /// The stamped test pattern at this size and frame rate.
    TestPattern {
        width: usize,
        height: usize,
        fps: u32,
    },
}

/// What audio this client sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AudioSource {
    None,
    /// A sine tone at this frequency, in Hz.
    Tone {
        frequency: f32,
    },
}

/// How to run a call.
#[derive(Debug, Clone)]
pub struct CallOptions {
    pub video: VideoSource,
    pub audio: AudioSource,
    /// Video bitrate, bits per second.
    pub bitrate_bps: u32,
    /// Local UDP addresses for media (`0.0.0.0:0`: every interface).
    pub udp_addrs: Vec<String>,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            video: VideoSource::TestPattern {
                width: 640,
                height: 360,
                fps: 30,
            },
            audio: AudioSource::Tone { frequency: 440.0 },
            bitrate_bps: 1_000_000,
            udp_addrs: vec!["0.0.0.0:0".into()],
        }
    }
}

/// What the application asks for.
#[derive(Debug, Clone)]
pub enum Command {
    JoinCall,
    LeaveCall,
    Chat(String),
    /// Report every link's figures now (as [`CallEvent::Stats`]).
    Stats,
    Leave,
}

/// What the call reports.
#[derive(Debug)]
pub enum CallEvent {
    /// A server message (room, chat, presence, call state).
    Message(ServerMessage),
    /// A decoded picture from a call member.
    Video { from: PeerId, frame: I420Frame },
    /// Decoded audio from a call member (48 kHz mono).
    Audio { from: PeerId, samples: Vec<i16> },
    /// A peer connection changed state.
    Connection {
        peer: PeerId,
        state: RTCPeerConnectionState,
    },
    /// The connection to a member was closed (it left the call or the room,
    /// or the call ended); its tile can go.
    LinkClosed { peer: PeerId },
    /// A link's figures, answering [`Command::Stats`].
    Stats { peer: PeerId, stats: LinkStats },
    /// Signaling is reconnecting; the call's media keeps going meanwhile.
    Reconnecting,
    /// Everything stopped.
    Stopped(StopReason),
}

/// The handle to a running call.
#[derive(Debug)]
pub struct Call {
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<CallEvent>,
}

impl Call {
    /// Joins `params.room` on the server at `url` and runs until left.
    pub fn start(url: impl Into<String>, params: JoinParams, options: CallOptions) -> Call {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        let signaling = Signaling::start(url, params);
        tokio::spawn(run(signaling, options, command_rx, event_tx));
        Call { commands, events }
    }

    pub fn command(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// The next event; `None` once stopped.
    pub async fn next_event(&mut self) -> Option<CallEvent> {
        self.events.recv().await
    }
}

/// The longest stretch without a keyframe.
const KEYFRAME_EVERY_SECS: u32 = 10;

/// The links the video pipeline sends to, shared with the call task.
type Links = Arc<Mutex<HashMap<PeerId, Arc<PeerLink>>>>;

struct State {
    signaling: Signaling,
    options: CallOptions,
    room: Option<Room>,
    links: Links,
    peer_events: mpsc::UnboundedSender<(PeerId, PeerEvent)>,
    keyframe: Arc<AtomicBool>,
    events: mpsc::UnboundedSender<CallEvent>,
    want_call: bool,
}

async fn run(
    signaling: Signaling,
    options: CallOptions,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<CallEvent>,
) {
    let (peer_events, mut peer_rx) = mpsc::unbounded_channel();
    let links: Links = Arc::default();
    let keyframe = Arc::new(AtomicBool::new(true));
    let video = tokio::spawn(video_pipeline(
        options.video,
        options.bitrate_bps,
        links.clone(),
        keyframe.clone(),
    ));
    let audio = tokio::spawn(audio_pipeline(options.audio, links.clone()));
    let pipelines = [video, audio];
    let mut state = State {
        signaling,
        options,
        room: None,
        links,
        peer_events,
        keyframe,
        events,
        want_call: false,
    };
    loop {
        tokio::select! {
            event = state.signaling.next_event() => match event {
                Some(Event::Message(message)) => state.on_message(message).await,
                Some(Event::Reconnecting { .. }) => {
                    let _ = state.events.send(CallEvent::Reconnecting);
                }
                Some(Event::Stopped(reason)) => {
                    let _ = state.events.send(CallEvent::Stopped(reason));
                    break;
                }
                None => break,
            },
            Some((peer, event)) = peer_rx.recv() => state.on_peer(peer, event),
            command = commands.recv() => match command {
                Some(Command::JoinCall) => state.join_call(),
                Some(Command::LeaveCall) => {
                    state.want_call = false;
                    state.send(ClientMessage::CallLeave);
                    let actions = state.room.as_mut().map(Room::leave_call).unwrap_or_default();
                    state.act(actions).await;
                }
                Some(Command::Stats) => {
                    let links: Vec<(PeerId, Arc<PeerLink>)> = state
                        .links
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .iter()
                        .map(|(id, link)| (id.clone(), link.clone()))
                        .collect();
                    for (peer, link) in links {
                        let stats = link.stats().await;
                        let _ = state.events.send(CallEvent::Stats { peer, stats });
                    }
                }
                Some(Command::Chat(text)) => state.send(ClientMessage::Chat(ChatSend {
                    text,
                    to: None,
                    attachment: None,
                })),
                Some(Command::Leave) | None => {
                    state.act(vec![MeshAction::CloseAll]).await;
                    pipelines.iter().for_each(|p| p.abort());
                    state.signaling.leave().await;
                    let _ = state.events.send(CallEvent::Stopped(StopReason::Left));
                    return;
                }
            },
        }
    }
    pipelines.iter().for_each(|p| p.abort());
    state.act(vec![MeshAction::CloseAll]).await;
}

impl State {
    fn send(&self, message: ClientMessage) {
        if let Err(e) = self.signaling.send(message) {
            warn!(error = %e, "signaling refused a message");
        }
    }

    fn join_call(&mut self) {
        self.want_call = true;
        let video = self.options.video != VideoSource::None;
        self.send(ClientMessage::CallJoin(CallJoin { video }));
        self.send(ClientMessage::Media(huddle_protocol::Media {
            audio: self.options.audio != AudioSource::None,
            video,
            screen: false,
        }));
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
        self.links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(peer)
            .cloned()
    }

    async fn open_link(&mut self, peer: PeerId, initiator: bool) -> Option<Arc<PeerLink>> {
        let room = self.room.as_ref()?;
        let setup = PeerSetup {
            self_id: room.me.id.clone(),
            remote_id: peer.clone(),
            initiator,
            ice_servers: room.ice_servers.clone(),
            udp_addrs: self.options.udp_addrs.clone(),
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
        self.links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(peer, link.clone());
        // A new member needs a keyframe to start decoding.
        self.keyframe.store(true, Ordering::Relaxed);
        Some(link)
    }

    async fn act(&mut self, actions: Vec<MeshAction>) {
        for action in actions {
            match action {
                MeshAction::Offer(peer) => {
                    self.open_link(peer, true).await;
                }
                MeshAction::Close(peer) => {
                    let link = self
                        .links
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&peer);
                    if let Some(link) = link {
                        link.close().await;
                        let _ = self.events.send(CallEvent::LinkClosed { peer });
                    }
                }
                MeshAction::CloseAll => {
                    let all: Vec<_> = self
                        .links
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .drain()
                        .collect();
                    for (peer, link) in all {
                        link.close().await;
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
            PeerEvent::Audio(samples) => {
                let _ = self.events.send(CallEvent::Audio {
                    from: peer,
                    samples,
                });
            }
            PeerEvent::KeyframeWanted => self.keyframe.store(true, Ordering::Relaxed),
            PeerEvent::State(state) => {
                if state == RTCPeerConnectionState::Connected {
                    // Whatever was sent before the path was up is lost: the
                    // member needs a keyframe to start decoding.
                    self.keyframe.store(true, Ordering::Relaxed);
                }
                let _ = self.events.send(CallEvent::Connection { peer, state });
            }
        }
    }
}

/// The links a pipeline sends this frame to (taken without holding the lock
/// across the sends).
fn snapshot(links: &Links) -> Vec<Arc<PeerLink>> {
    links
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .values()
        .cloned()
        .collect()
}

/// Captures, encodes once, and sends the result to every link.
async fn video_pipeline(
    source: VideoSource,
    bitrate_bps: u32,
    links: Links,
    keyframe: Arc<AtomicBool>,
) {
    let VideoSource::TestPattern { width, height, fps } = source else {
        return;
    };
    let fps = fps.clamp(1, 60);
    let Ok(mut encoder) = H264Encoder::new(bitrate_bps, fps as f32) else {
        warn!("no H.264 encoder: sending no video");
        return;
    };
    let mut pattern = TestPattern::new(width, height);
    let period = Duration::from_secs(1) / fps;
    let mut sent = 0u32;
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        let targets = snapshot(&links);
        if targets.is_empty() {
            continue;
        }
        let frame = pattern.next_frame();
        sent += 1;
        // A keyframe when asked for, and at least every few seconds so that
        // a member whose request was lost still recovers.
        let key =
            keyframe.swap(false, Ordering::Relaxed) || sent % (KEYFRAME_EVERY_SECS * fps) == 0;
        // Encoding is CPU work: off the async threads.
        let encoded = tokio::task::spawn_blocking(move || {
            let unit = encoder.encode(&frame, key);
            (encoder, unit)
        })
        .await;
        let Ok((returned, unit)) = encoded else {
            return;
        };
        encoder = returned;
        let unit = match unit {
            Ok(unit) if !unit.is_empty() => Bytes::from(unit),
            Ok(_) => continue,
            Err(e) => {
                warn!(error = %e, "encoding failed");
                continue;
            }
        };
        for link in targets {
            if let Err(e) = link.send_video(unit.clone(), period).await {
                debug!(error = %e, "sending video failed");
            }
        }
    }
}

/// Produces 20 ms of audio at a time, encodes it once, sends it to every link.
async fn audio_pipeline(source: AudioSource, links: Links) {
    let AudioSource::Tone { frequency } = source else {
        return;
    };
    let mut tone = ToneSource::new(frequency);
    let mut encoder = match OpusEncoder::new() {
        Ok(e) => e,
        Err(e) => {
            warn!(error = %e, "no Opus encoder: sending no audio");
            return;
        }
    };
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        ticks.tick().await;
        let targets = snapshot(&links);
        let frame = tone.next_frame();
        if targets.is_empty() {
            continue;
        }
        // Opus at 20 ms mono is ~0.1 ms of work: no need to leave the task.
        let packet = match encoder.encode(&frame) {
            Ok(p) => Bytes::from(p),
            Err(e) => {
                warn!(error = %e, "Opus encoding failed");
                continue;
            }
        };
        for link in targets {
            if let Err(e) = link.send_audio(packet.clone()).await {
                debug!(error = %e, "sending audio failed");
            }
        }
    }
}
