//! What the shell tells the window, in order, over the one event channel
//! the UI opens at start (`attach`). Types shared with the UI through
//! ts-rs; protocol messages keep their protocol types.

use huddle_protocol::model::RoomSummary;
use huddle_protocol::ServerMessage;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::devices::DeviceList;
use crate::links::JoinLink;

#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UiEvent {
    /// A message from the server, exactly as the protocol defines it.
    Server {
        #[ts(type = "import(\"../../protocol\").ServerMessage")]
        message: ServerMessage,
    },
    /// The connection to the server dropped; resuming.
    Reconnecting,
    /// The membership ended: left, refused, closed by the server, or every
    /// reconnect failed.
    Stopped { reason: StopInfo },
    /// A call member's connection state (`new`, `connecting`, `connected`,
    /// `disconnected`, `failed`, `closed`).
    PeerConnection { peer: String, state: String },
    /// A call member's link is gone; so is its tile.
    LinkClosed { peer: String },
    /// Figures for one call member, once a second during a call.
    Stats { peer: String, stats: PeerFigures },
    /// A device gave out; what it carried stopped.
    DeviceFailed { device: DeviceKind, message: String },
    /// The microphone started or stopped hearing voice (muted or not: the
    /// "you are talking while muted" hint).
    Voice { talking: bool },
    /// The microphone's level after processing, dBFS, ten times a second
    /// while a microphone is open (a call, or the check before one).
    Level { dbfs: f32 },
    /// The picture-in-picture window was closed (by its own button).
    PipClosed,
    /// The lobby's room list (`None`: this server does not publish one).
    Rooms {
        #[ts(type = "Array<import(\"../../protocol\").RoomSummary> | null")]
        rooms: Option<Vec<RoomSummary>>,
    },
    /// The devices present changed (plugged in or out).
    Devices { devices: DeviceList },
    /// The window's close button was pressed during a call: ask first
    /// (`quit` closes).
    ConfirmClose,
    /// The window gained (`true`) or lost the keyboard focus: whether the
    /// user is looking elsewhere (for notifications).
    WindowFocus { focused: bool },
    /// A `huddle://` link was opened while the app was running (handed over
    /// by the second launch): show its join screen.
    OpenLink { link: JoinLink },
}

/// Why the membership ended.
#[derive(Debug, Clone, Serialize, TS)]
pub struct StopInfo {
    /// `left`, `gave_up`, `closed`, or the protocol's error code of a
    /// refused join (`bad_password`, `room_full`, …).
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Camera,
    Microphone,
    Speaker,
    /// The screen, while shared.
    Screen,
    /// The computer's sound, sent with a shared screen.
    Sound,
}

/// One call member's figures, as the UI's stats panel shows them.
#[derive(Debug, Clone, Default, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PeerFigures {
    pub bitrate_in_kbps: f64,
    pub bitrate_out_kbps: f64,
    pub fps: f64,
    #[ts(type = "number")]
    pub frames_decoded: u64,
    pub rtt_ms: Option<f64>,
    /// Inbound packets lost since the previous figures, percent.
    pub loss_percent: f64,
    pub codec: String,
    pub candidate_type: String,
}

impl From<&huddle_engine::stats::LinkStats> for PeerFigures {
    fn from(s: &huddle_engine::stats::LinkStats) -> Self {
        PeerFigures {
            bitrate_in_kbps: s.bitrate_in_bps.unwrap_or(0.0) / 1000.0,
            bitrate_out_kbps: s.bitrate_out_bps.unwrap_or(0.0) / 1000.0,
            fps: s.fps_in.unwrap_or(0.0),
            frames_decoded: s.frames_decoded,
            rtt_ms: s.rtt_ms,
            // Since the previous figures, as the browser's are: a loss long
            // ago says nothing of the connection now.
            loss_percent: 100.0 * s.loss_recent.unwrap_or(0.0),
            codec: s
                .codecs
                .iter()
                .find(|c| c.starts_with("video/"))
                .or(s.codecs.first())
                .map(|c| c.split('/').nth(1).unwrap_or(c).to_string())
                .unwrap_or_default(),
            candidate_type: s.candidate_type.clone().unwrap_or_default(),
        }
    }
}
