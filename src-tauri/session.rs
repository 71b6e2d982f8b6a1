//! One room membership and its call, as the window sees it: a running
//! `huddle_engine::call::Call`, and the task that turns its events into
//! [`UiEvent`]s and its pictures into tile frames.
//!
//! The session opens and releases devices around the call: nothing is
//! captured or played outside one.

use std::sync::Arc;
use std::time::Duration;

use huddle_engine::audio::processing::ProcessingSettings;
use huddle_engine::audio::{SystemSound, Volume};
use huddle_engine::call::{Call, CallEvent, CallOptions, Command, Commander};
use huddle_engine::signaling::StopReason;
use huddle_engine::tls::ServerTrust;
use huddle_engine::JoinParams;
use huddle_protocol::{ClientKind, Media};
use tauri::async_runtime::JoinHandle;

use crate::devices;
use crate::events::{DeviceKind, PeerFigures, StopInfo, UiEvent};
use crate::frames::FrameGate;
use crate::ui::Ui;

/// The most the video encoder may use; congestion control goes lower, and
/// the engine's ceiling for the pictures' size too (2.5 Mbit/s is its
/// ceiling at 1280×720, the camera's size, as Chromium's; 1.5 Mbit/s left
/// RFC 8867 §5.1's 2.5 Mbit/s plateau 51–61 % used in the network lab,
/// against 60–81 % at 2.5, with freezes alike).
pub const MAX_VIDEO_BPS: u32 = 2_500_000;
/// How long leaving waits for the server to hear of it.
const LEAVE_WAIT: Duration = Duration::from_secs(2);
/// How often call figures are refreshed.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// The tile showing this user's own pictures.
pub const SELF_TILE: &str = "self";

/// What to join.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub server: String,
    pub room: String,
    pub name: String,
    pub password: Option<String>,
    /// The server's access token.
    pub token: Option<String>,
    /// Whom to trust on `wss://`.
    pub trust: ServerTrust,
}

/// The devices a call uses (ids as in the settings; `None`: the default).
#[derive(Debug, Clone, Default)]
pub struct DeviceChoice {
    pub camera: Option<String>,
    pub microphone: Option<String>,
    pub speaker: Option<String>,
}

/// A running membership.
#[derive(Debug)]
pub struct Session {
    commands: Commander,
    pump: JoinHandle<()>,
    in_call: bool,
    /// Whether a camera is open (it may be paused: `Command::Camera`).
    has_video: bool,
    /// Whether a microphone is open for the check before a call; joining
    /// keeps it (a device is never opened twice at once).
    checking_audio: bool,
}

impl Session {
    /// Joins; events flow to `ui` and pictures to `frames` until left.
    pub fn start(
        request: JoinRequest,
        ui: Ui,
        frames: Arc<FrameGate>,
        // The playback volume, shared with the settings.
        volume: Volume,
        processing: ProcessingSettings,
    ) -> Session {
        let params = JoinParams {
            room: request.room,
            name: request.name,
            password: request.password,
            token: request.token,
            trust: request.trust,
            client: ClientKind::Desktop,
            media: Media::default(),
        };
        let options = CallOptions {
            bitrate_bps: MAX_VIDEO_BPS,
            volume,
            processing,
            ..CallOptions::default()
        };
        let call = Call::start(request.server, params, options);
        let commands = call.commander();
        let pump = tauri::async_runtime::spawn(pump(call, ui, frames));
        Session {
            commands,
            pump,
            in_call: false,
            has_video: false,
            checking_audio: false,
        }
    }

    pub fn in_call(&self) -> bool {
        self.in_call
    }

    /// Processes the microphone thus from now on.
    pub fn set_processing(&self, processing: ProcessingSettings) {
        self.commands.send(Command::Processing(processing));
    }

    /// Sends a message the UI composed (chat, typing, ring, ring reply).
    pub fn send(&self, message: huddle_protocol::ClientMessage) {
        self.commands.send(Command::Send(message));
    }

    /// Opens the devices and joins the room's call. A device that cannot be
    /// opened is reported and the call goes on without it.
    pub async fn join_call(&mut self, video: bool, choice: DeviceChoice, ui: &Ui) {
        // What the check before the call opened is kept, not opened twice.
        self.camera_open(video, choice.camera, ui).await;
        if !std::mem::take(&mut self.checking_audio) {
            self.use_device(DeviceKind::Microphone, choice.microphone, ui)
                .await;
        }
        self.use_device(DeviceKind::Speaker, choice.speaker, ui)
            .await;
        self.in_call = true;
        self.commands.send(Command::JoinCall);
    }

    /// The check before a call (`on`): opens the camera and microphone
    /// without joining, so the window shows the camera's pictures and the
    /// microphone's level; nothing is sent (no member is connected). Off:
    /// releases them again. In a call it changes nothing.
    pub async fn preview(&mut self, on: bool, video: bool, choice: DeviceChoice, ui: &Ui) {
        if self.in_call {
            return;
        }
        // What is open stays open (a device is never opened twice at once;
        // another device comes through `switch`).
        self.camera_open(on && video, choice.camera, ui).await;
        if on && !self.checking_audio {
            self.checking_audio = self
                .use_device(DeviceKind::Microphone, choice.microphone, ui)
                .await;
        } else if !on && self.checking_audio {
            self.checking_audio = false;
            self.commands.send(Command::SetAudio(None));
        }
    }

    /// Opens the camera `id` if `open` and none is, or releases it if
    /// `!open`; an open camera stays as it is.
    async fn camera_open(&mut self, open: bool, id: Option<String>, ui: &Ui) {
        if open && !self.has_video {
            self.use_device(DeviceKind::Camera, id, ui).await;
        } else if !open && self.has_video {
            self.has_video = false;
            self.commands.send(Command::SetVideo(None));
        }
    }

    /// Leaves the call and releases every device.
    pub fn leave_call(&mut self) {
        self.in_call = false;
        self.has_video = false;
        self.checking_audio = false;
        self.commands.send(Command::LeaveCall);
        self.commands.send(Command::ShareScreen(None));
        self.commands.send(Command::SetVideo(None));
        self.commands.send(Command::SetAudio(None));
        self.commands.send(Command::SetOutput(None));
    }

    /// Reports the pictures sent, for the self view's tile ([`SELF_TILE`]),
    /// while it is shown; no copies are made otherwise.
    pub fn show_self(&self, on: bool) {
        self.commands.send(Command::Preview(on));
    }

    pub fn set_microphone(&self, on: bool) {
        self.commands.send(Command::Mute(!on));
    }

    /// Turns the camera on or off; opens it when the call started without.
    pub async fn set_camera(&mut self, on: bool, camera: Option<String>, ui: &Ui) {
        if on && !self.has_video && !self.use_device(DeviceKind::Camera, camera, ui).await {
            return;
        }
        self.commands.send(Command::Camera(on));
    }

    /// Stops sharing the screen (back to the camera).
    pub fn stop_sharing(&mut self) {
        self.commands.send(Command::ShareScreen(None));
    }

    /// Shares `screen`, opened by [`open_screen`] (a screen that could not
    /// be captured is told to the window). Whether it is shared.
    pub fn share_screen(&mut self, screen: Opened, ui: &Ui) -> bool {
        self.hand_over(DeviceKind::Screen, screen, ui)
    }

    /// Sends `sound`, opened by [`open_sound`], with the shared screen
    /// (sound that could not be had is told to the window; the screen
    /// stays shared). It stops with the sharing.
    pub fn share_sound(&mut self, sound: Opened, ui: &Ui) {
        self.hand_over(DeviceKind::Sound, sound, ui);
    }

    /// Switches a device during the call (no renegotiation) or its check
    /// beforehand; a device not open is only remembered (by the window).
    pub async fn switch(&mut self, kind: DeviceKind, id: Option<String>, ui: &Ui) {
        let open = match kind {
            DeviceKind::Camera => self.has_video,
            DeviceKind::Microphone => self.in_call || self.checking_audio,
            DeviceKind::Speaker => self.in_call,
            DeviceKind::Screen | DeviceKind::Sound => false,
        };
        if open {
            self.use_device(kind, id, ui).await;
        }
    }

    /// Opens device `id` of `kind` (off the async threads: opening blocks)
    /// and hands it to the call; a failure is told to the window. Whether
    /// it opened.
    async fn use_device(&mut self, kind: DeviceKind, id: Option<String>, ui: &Ui) -> bool {
        let opened = tauri::async_runtime::spawn_blocking(move || {
            let id = id.as_deref();
            match kind {
                DeviceKind::Camera => devices::open_camera(id)
                    .map(|s| Command::SetVideo(Some(s)))
                    .map_err(|e| e.to_string()),
                DeviceKind::Microphone => devices::open_microphone(id)
                    .map(|s| Command::SetAudio(Some(s)))
                    .map_err(|e| e.to_string()),
                DeviceKind::Speaker => devices::open_speaker(id)
                    .map(|s| Command::SetOutput(Some(s)))
                    .map_err(|e| e.to_string()),
                DeviceKind::Screen => open_screen_now(),
                DeviceKind::Sound => open_sound_now(),
            }
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|opened| opened);
        self.hand_over(kind, opened, ui)
    }

    /// Hands an opened device to the call, or tells the window why it did
    /// not open. Whether it opened.
    fn hand_over(&mut self, kind: DeviceKind, opened: Opened, ui: &Ui) -> bool {
        match opened {
            Ok(command) => {
                if kind == DeviceKind::Camera {
                    self.has_video = true;
                }
                self.commands.send(command);
                true
            }
            Err(message) => {
                ui.emit(UiEvent::DeviceFailed {
                    device: kind,
                    message,
                });
                false
            }
        }
    }

    /// Leaves the room (the others see it at once) and waits, briefly, for
    /// the call to say it stopped.
    pub async fn leave(self) {
        self.commands.send(Command::Leave);
        let _ = tokio::time::timeout(LEAVE_WAIT, self.pump).await;
    }
}

/// A device opened for the call (the command that hands it over), or why
/// it could not be.
pub type Opened = Result<Command, String>;

fn open_screen_now() -> Opened {
    devices::open_screen()
        .map(|s| Command::ShareScreen(Some(s)))
        .map_err(|e| e.to_string())
}

/// Opens the screen, off the async threads. Holds nothing meanwhile: in a
/// Wayland session this waits for the user to pick in the desktop portal's
/// dialog, and the session must go on answering the window until then.
pub async fn open_screen() -> Opened {
    off_the_async_threads(open_screen_now).await
}

fn open_sound_now() -> Opened {
    SystemSound::open()
        .map(|s| Command::ShareSound(Some(Box::new(s))))
        .map_err(|e| e.to_string())
}

/// Starts capturing the computer's sound (Windows), off the async threads.
pub async fn open_sound() -> Opened {
    off_the_async_threads(open_sound_now).await
}

/// Runs `open` (which blocks) on a thread for blocking work.
async fn off_the_async_threads(open: fn() -> Opened) -> Opened {
    tauri::async_runtime::spawn_blocking(open)
        .await
        .map_err(|e| e.to_string())
        .and_then(|opened| opened)
}

/// Forwards the call's events until it stops.
async fn pump(mut call: Call, ui: Ui, frames: Arc<FrameGate>) {
    let mut stats = tokio::time::interval(STATS_EVERY);
    loop {
        let event = tokio::select! {
            event = call.next_event() => event,
            _ = stats.tick() => {
                call.command(Command::Stats);
                continue;
            }
        };
        let Some(event) = event else { break };
        let ui_event = match event {
            CallEvent::Message(message) => UiEvent::Server { message },
            CallEvent::Video { from, frame } => {
                frames.offer(&from, frame);
                continue;
            }
            CallEvent::LocalVideo(frame) => {
                frames.offer(SELF_TILE, frame);
                continue;
            }
            // Played natively by the speaker sink.
            CallEvent::Audio { .. } => continue,
            CallEvent::Connection { peer, state } => UiEvent::PeerConnection {
                peer,
                state: state.to_string(),
            },
            CallEvent::LinkClosed { peer } => UiEvent::LinkClosed { peer },
            CallEvent::Stats { peer, stats } => UiEvent::Stats {
                peer,
                stats: PeerFigures::from(&stats),
            },
            CallEvent::Reconnecting => UiEvent::Reconnecting,
            CallEvent::VideoFailed(e) => failed(DeviceKind::Camera, e.to_string()),
            CallEvent::ScreenFailed(e) => failed(DeviceKind::Screen, e.to_string()),
            CallEvent::AudioInFailed(e) => failed(DeviceKind::Microphone, e.to_string()),
            CallEvent::ScreenSoundFailed(e) => failed(DeviceKind::Sound, e.to_string()),
            CallEvent::AudioOutFailed(e) => failed(DeviceKind::Speaker, e.to_string()),
            CallEvent::Voice(talking) => UiEvent::Voice { talking },
            CallEvent::Level(dbfs) => UiEvent::Level { dbfs },
            CallEvent::Stopped(reason) => {
                ui.emit(UiEvent::Stopped {
                    reason: stop_info(reason),
                });
                break;
            }
        };
        ui.emit(ui_event);
    }
}

fn failed(device: DeviceKind, message: String) -> UiEvent {
    UiEvent::DeviceFailed { device, message }
}

fn stop_info(reason: StopReason) -> StopInfo {
    let (code, message) = match reason {
        StopReason::Left => ("left".to_string(), "You left the room.".to_string()),
        StopReason::JoinRefused { code, message } => (code.as_str().to_string(), message),
        StopReason::Closed { code, reason } => (
            "closed".to_string(),
            format!("The server closed the connection ({code}: {reason})."),
        ),
        StopReason::GaveUp => (
            "gave_up".to_string(),
            "Lost the connection to the server.".to_string(),
        ),
        StopReason::Unreachable { why } => (
            "unreachable".to_string(),
            format!("Could not reach the server: {why}."),
        ),
    };
    StopInfo { code, message }
}
