//! The lobby's live room list: a connection that joins nothing and asks the
//! server to keep sending `rooms` while it is open.
//!
//! [`RoomWatch::start`] spawns the task; it reconnects with the same backoff
//! as [`crate::signaling`] for as long as the handle lives, and reports
//! each list (or that the server offers none) as a [`LobbyEvent`].

use futures_util::{SinkExt, StreamExt};
use huddle_protocol::client::RoomsRequest;
use huddle_protocol::codec::{decode_server, encode_client};
use huddle_protocol::model::RoomSummary;
use huddle_protocol::{ClientMessage, ErrorCode, ServerMessage};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::backoff;
use crate::tls::{self, ServerTrust};

/// What the watch reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LobbyEvent {
    /// The rooms now open, sorted by name.
    Rooms(Vec<RoomSummary>),
    /// The server does not publish its room list.
    NotOffered,
    /// The connection dropped (or could not be made); retrying.
    Disconnected,
}

/// The handle to a running watch; dropping it closes the connection.
#[derive(Debug)]
pub struct RoomWatch {
    events: mpsc::Receiver<LobbyEvent>,
    task: JoinHandle<()>,
}

impl RoomWatch {
    /// Starts watching the room list of the server at `url` (`ws://…/ws`),
    /// with the access `token` a server started with `--token` asks for,
    /// trusting `trust` on `wss://`.
    pub fn start(url: impl Into<String>, token: Option<String>, trust: ServerTrust) -> RoomWatch {
        let (tx, events) = mpsc::channel(16);
        let task = tokio::spawn(run(url.into(), token, trust, tx));
        RoomWatch { events, task }
    }

    /// The next event; `None` once the watch ended (the server refused it).
    pub async fn next_event(&mut self) -> Option<LobbyEvent> {
        self.events.recv().await
    }
}

impl Drop for RoomWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    url: String,
    token: Option<String>,
    trust: ServerTrust,
    events: mpsc::Sender<LobbyEvent>,
) {
    let request = ClientMessage::Rooms(RoomsRequest { watch: true, token });
    let mut attempt = 0;
    loop {
        match watch_once(&url, &trust, &request, &events, &mut attempt).await {
            Ended::Refused => {
                let _ = events.send(LobbyEvent::NotOffered).await;
                return;
            }
            Ended::HandleGone => return,
            Ended::Dropped => {
                if events.send(LobbyEvent::Disconnected).await.is_err() {
                    return;
                }
            }
        }
        tokio::time::sleep(backoff::delay(attempt, rand::random())).await;
        attempt = attempt.saturating_add(1);
    }
}

enum Ended {
    Dropped,
    Refused,
    HandleGone,
}

async fn watch_once(
    url: &str,
    trust: &ServerTrust,
    request: &ClientMessage,
    events: &mpsc::Sender<LobbyEvent>,
    attempt: &mut u32,
) -> Ended {
    let Ok((mut ws, _)) = tls::connect(url, trust).await else {
        return Ended::Dropped;
    };
    if ws
        .send(Message::text(encode_client(request, None)))
        .await
        .is_err()
    {
        return Ended::Dropped;
    }
    while let Some(frame) = ws.next().await {
        let Ok(Message::Text(text)) = frame else {
            if frame.is_err() {
                return Ended::Dropped;
            }
            continue;
        };
        let Ok(frame) = decode_server(&text) else {
            continue;
        };
        let event = match frame.message {
            ServerMessage::Rooms { rooms } => {
                *attempt = 0;
                LobbyEvent::Rooms(rooms)
            }
            // A server started with `--no-room-list` says so once.
            ServerMessage::Error {
                code: ErrorCode::Forbidden,
                ..
            } => return Ended::Refused,
            _ => continue,
        };
        if events.send(event).await.is_err() {
            return Ended::HandleGone;
        }
    }
    Ended::Dropped
}
