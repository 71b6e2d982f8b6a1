//! A room membership with its call: signaling, the room state, one
//! [`PeerLink`] per remote call member, and one video encoder shared by all
//! of them (a frame is encoded once, whatever the number of peers).
//!
//! [`Call::start`] spawns the task that owns all of it; the application
//! sends [`Command`]s and receives [`CallEvent`]s.
//!
//! Here: the call's interface (options, commands, events, the handle);
//! `task.rs` the task — the room, the links, the media pipeline's controls.

mod task;

use huddle_protocol::{ClientMessage, PeerId, ServerMessage};
use tokio::sync::mpsc;
use webrtc::peer_connection::RTCPeerConnectionState;

use crate::audio::processing::ProcessingSettings;
use crate::audio::{AudioError, AudioSink, AudioSource, Volume};
use crate::signaling::{JoinParams, Signaling, StopReason};
use crate::stats::LinkStats;
use crate::video::{CaptureError, I420Frame, VideoSource};

/// How to run a call: the media to send, where remote audio goes, and the
/// most video may use.
#[derive(Debug)]
pub struct CallOptions {
    /// Outgoing video (`None`: none).
    pub video: Option<Box<dyn VideoSource>>,
    /// Outgoing audio (`None`: none).
    pub audio: Option<Box<dyn AudioSource>>,
    /// Where the members' mixed audio is played (`None`: nowhere; the
    /// application still gets [`CallEvent::Audio`]).
    pub output: Option<Box<dyn AudioSink>>,
    /// The playback volume (full by default); set it at any time.
    pub volume: Volume,
    /// The most video may use, bits per second; congestion control may ask
    /// for less.
    pub bitrate_bps: u32,
    /// Local UDP addresses for media ([`ANY_ADDRESS`] by default: every
    /// interface of either family).
    pub udp_addrs: Vec<String>,
    /// Media only through the room's TURN relay (hides this user's address
    /// from the other members; needs a server with TURN configured).
    pub relay_only: bool,
    /// Echo cancellation, noise suppression, gain control of the
    /// microphone (all on by default).
    pub processing: ProcessingSettings,
}

/// Media on every address the machine has, IPv4 and IPv6, as they are at
/// each gathering (an ICE restart after a network change finds the new
/// ones). An IPv6-only machine had no candidates at all with IPv4's alone;
/// a family with no usable address leaves only a wildcard socket, whose
/// candidate is never sent (`peer/mod.rs`).
pub const ANY_ADDRESS: [&str; 2] = ["0.0.0.0:0", "[::]:0"];

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            video: None,
            audio: None,
            output: None,
            volume: Volume::default(),
            bitrate_bps: 1_000_000,
            udp_addrs: ANY_ADDRESS.iter().map(|a| a.to_string()).collect(),
            relay_only: false,
            processing: ProcessingSettings::default(),
        }
    }
}

/// What the application asks for.
#[derive(Debug)]
pub enum Command {
    JoinCall,
    LeaveCall,
    Chat(String),
    /// Send a message the application composed: chat with a recipient or an
    /// attachment, `typing`, `ring`, `ring_reply`. Messages the call owns
    /// (join, leave, call membership, media, signals) are refused here;
    /// their commands send them.
    Send(ClientMessage),
    /// Report every link's figures now (as [`CallEvent::Stats`]).
    Stats,
    /// Stop (`true`) or resume sending audio; the microphone stays open.
    Mute(bool),
    /// Stop (`false`) or resume sending video; the camera stays open.
    Camera(bool),
    /// Send video from another source (`None`: none, the device released).
    /// No renegotiation: the track stays, only its pictures change.
    SetVideo(Option<Box<dyn VideoSource>>),
    /// Share a screen (e.g. [`crate::video::screen::ScreenSource`]) in place
    /// of the camera, which stays open; `None` stops sharing and the camera
    /// (if on) is sent again. Same track, no renegotiation; the room is told
    /// `screen` in `media`.
    ShareScreen(Option<Box<dyn VideoSource>>),
    /// Send this sound with the shared screen (e.g.
    /// [`crate::audio::SystemSound`]), added to the microphone's and sent
    /// while muted too; `None`, or the screen's sharing stopping, stops it.
    ShareSound(Option<Box<dyn AudioSource>>),
    /// Send audio from another source (`None`: none).
    SetAudio(Option<Box<dyn AudioSource>>),
    /// Play the members' audio elsewhere (`None`: nowhere).
    SetOutput(Option<Box<dyn AudioSink>>),
    /// Report the pictures sent as [`CallEvent::LocalVideo`] (`true`), for
    /// a self view, or stop.
    Preview(bool),
    /// Process the microphone's audio thus from now on.
    Processing(ProcessingSettings),
    Leave,
}

/// What the call reports.
#[derive(Debug)]
pub enum CallEvent {
    /// A server message (room, chat, presence, call state).
    Message(ServerMessage),
    /// A decoded picture from a call member.
    Video { from: PeerId, frame: I420Frame },
    /// A picture as captured here, while [`Command::Preview`] is on.
    LocalVideo(I420Frame),
    /// 10 ms of a call member's audio as played (48 kHz mono; concealment
    /// and stretching included), from its playout buffer.
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
    /// The camera (or other video source) gave out; video stopped.
    VideoFailed(CaptureError),
    /// The shared screen gave out; sharing stopped (the camera, if on, is
    /// sent again).
    ScreenFailed(CaptureError),
    /// The microphone gave out; audio stopped.
    AudioInFailed(AudioError),
    /// The shared screen's sound gave out; the screen is still shared.
    ScreenSoundFailed(AudioError),
    /// The speaker gave out; remote audio is no longer played.
    AudioOutFailed(AudioError),
    /// The microphone started (`true`) or stopped hearing voice — sent or
    /// not: while muted it is the "you are talking while muted" hint.
    Voice(bool),
    /// The microphone's level after processing, dBFS (10 a second while a
    /// microphone is open outside a call: the check before one).
    Level(f32),
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
        tokio::spawn(task::run(signaling, options, command_rx, event_tx));
        Call { commands, events }
    }

    pub fn command(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// A handle that sends commands, for whoever does not read the events.
    pub fn commander(&self) -> Commander {
        Commander(self.commands.clone())
    }

    /// The next event; `None` once stopped.
    pub async fn next_event(&mut self) -> Option<CallEvent> {
        self.events.recv().await
    }
}

/// Sends [`Command`]s to a running call (a clone of [`Call`]'s own sender).
#[derive(Debug, Clone)]
pub struct Commander(mpsc::UnboundedSender<Command>);

impl Commander {
    /// Sends `command`; `false` once the call has stopped.
    pub fn send(&self, command: Command) -> bool {
        self.0.send(command).is_ok()
    }
}
