//! The signaling client: joins a room over protocol v1 and keeps the
//! membership while sockets come and go.
//!
//! One task owns the WebSocket. The application talks to it through
//! [`Signaling`]: commands in (sent at once, or queued while reconnecting),
//! [`Event`]s out. When the socket drops, the task reconnects with backoff
//! and joins again with the last `resume` token, so the server hands back the
//! same id and the messages queued meanwhile; the others notice nothing.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use huddle_protocol::client::Join;
use huddle_protocol::codec::{decode_server, encode_client};
use huddle_protocol::error::close;
use huddle_protocol::{ClientKind, ClientMessage, ErrorCode, Media, ServerMessage};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, warn};

use crate::backoff;
use crate::tls::{self, ServerTrust, Socket};

/// Messages queued while disconnected; beyond this `send` fails.
pub const MAX_PENDING: usize = 256;
/// Reconnect attempts after a drop before giving up.
pub const MAX_ATTEMPTS: u32 = 12;
/// Time allowed to connect and receive `joined`.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Who joins where.
#[derive(Debug, Clone)]
pub struct JoinParams {
    pub room: String,
    pub name: String,
    pub password: Option<String>,
    pub token: Option<String>,
    pub client: ClientKind,
    pub media: Media,
    /// Whom to trust on `wss://`.
    pub trust: ServerTrust,
}

/// What the client reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A message from the server. Each connection's first is `joined`; with
    /// `resumed: false` after a drop, the membership is new (a new id).
    Message(ServerMessage),
    /// The socket dropped; attempt `attempt` follows after `retry_in`.
    Reconnecting { attempt: u32, retry_in: Duration },
    /// The client stopped; no more events follow.
    Stopped(StopReason),
}

/// Why the client stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    /// [`Signaling::leave`] was called.
    Left,
    /// The server refused the join (wrong password, room full, …).
    JoinRefused { code: ErrorCode, message: String },
    /// The server closed with a code after which retrying cannot help.
    Closed { code: u16, reason: String },
    /// Every reconnect attempt failed.
    GaveUp,
    /// The very first connection failed: the server was never reached (or is
    /// not a Huddle server). Said at once, within [`JOIN_TIMEOUT`], with why:
    /// retrying a mistyped address for a minute helps nobody.
    Unreachable { why: String },
}

/// A command could not be taken.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignalingError {
    #[error("the signaling client has stopped")]
    Stopped,
    #[error("too many messages waiting for the connection (at most {MAX_PENDING})")]
    QueueFull,
}

enum Command {
    Send(ClientMessage),
    /// Drop the connection and connect again at once (resuming).
    Reconnect,
    Leave,
}

/// The handle to a running signaling client.
#[derive(Debug)]
pub struct Signaling {
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<Event>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print message content.
        f.write_str(match self {
            Command::Send(_) => "Send",
            Command::Reconnect => "Reconnect",
            Command::Leave => "Leave",
        })
    }
}

impl Signaling {
    /// Starts connecting to `url` (`ws://host:port/ws`) and joining.
    pub fn start(url: impl Into<String>, params: JoinParams) -> Signaling {
        let (commands, command_rx) = mpsc::channel(MAX_PENDING);
        let (event_tx, events) = mpsc::channel(1024);
        let task = tokio::spawn(run(url.into(), params, command_rx, event_tx));
        Signaling {
            commands,
            events,
            task,
        }
    }

    /// Sends a message now, or as soon as the connection is back.
    pub fn send(&self, message: ClientMessage) -> Result<(), SignalingError> {
        self.command(Command::Send(message))
    }

    /// Drops the connection and connects again at once, resuming the
    /// membership: the machine's network changed, and a socket from an
    /// address that is gone would otherwise hang until TCP gives up on it.
    pub fn reconnect(&self) -> Result<(), SignalingError> {
        self.command(Command::Reconnect)
    }

    fn command(&self, command: Command) -> Result<(), SignalingError> {
        self.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SignalingError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => SignalingError::Stopped,
        })
    }

    /// The next event; `None` after [`Event::Stopped`].
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Leaves the room (others see `peer_left` `left` at once) and stops.
    pub async fn leave(mut self) {
        if self.commands.send(Command::Leave).await.is_ok() {
            while self.events.recv().await.is_some() {}
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Signaling {
    fn drop(&mut self) {
        // Without `leave`, the membership stays for the server's grace period.
        self.task.abort();
    }
}

/// How one connection ended.
enum Outcome {
    Dropped,
    /// Asked to reconnect: at once, without a backoff.
    Reconnect,
    Left,
    Refused(ErrorCode, String),
    Closed(u16, String),
    /// Not connected yet, and this attempt failed: why.
    Unreachable(String),
    HandleGone,
}

struct State {
    url: String,
    params: JoinParams,
    resume: Option<String>,
    pending: VecDeque<ClientMessage>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    /// Whether a connection was ever joined: before that, a failure is
    /// reported at once (an address that never worked), after it retried.
    joined_once: bool,
}

async fn run(
    url: String,
    params: JoinParams,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
) {
    let mut state = State {
        url,
        params,
        resume: None,
        pending: VecDeque::new(),
        commands,
        events,
        joined_once: false,
    };
    let mut attempt = 0;
    loop {
        let outcome = state.connection(&mut attempt).await;
        let stop = match outcome {
            Outcome::Dropped => None,
            Outcome::Reconnect => {
                let _ = state
                    .events
                    .send(Event::Reconnecting {
                        attempt: 0,
                        retry_in: Duration::ZERO,
                    })
                    .await;
                continue;
            }
            Outcome::Left => Some(StopReason::Left),
            Outcome::Refused(code, message) => Some(StopReason::JoinRefused { code, message }),
            Outcome::Closed(code, reason) => Some(StopReason::Closed { code, reason }),
            Outcome::Unreachable(why) => Some(StopReason::Unreachable { why }),
            Outcome::HandleGone => return,
        };
        if let Some(reason) = stop {
            let _ = state.events.send(Event::Stopped(reason)).await;
            return;
        }
        if attempt >= MAX_ATTEMPTS {
            let _ = state.events.send(Event::Stopped(StopReason::GaveUp)).await;
            return;
        }
        let retry_in = backoff::delay(attempt, rand::random());
        let _ = state
            .events
            .send(Event::Reconnecting { attempt, retry_in })
            .await;
        attempt += 1;
        if let Some(outcome) = state.wait(retry_in).await {
            if matches!(outcome, Outcome::Left) {
                let _ = state.events.send(Event::Stopped(StopReason::Left)).await;
            }
            return;
        }
    }
}

impl State {
    /// Waits before reconnecting, queueing commands meanwhile. Returns an
    /// outcome when waiting should end the client.
    async fn wait(&mut self, delay: Duration) -> Option<Outcome> {
        let deadline = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return None,
                command = self.commands.recv() => match command {
                    Some(Command::Send(message)) => self.queue(message),
                    // Reconnecting already: now rather than after the wait.
                    Some(Command::Reconnect) => return None,
                    Some(Command::Leave) => return Some(Outcome::Left),
                    None => return Some(Outcome::HandleGone),
                },
            }
        }
    }

    fn queue(&mut self, message: ClientMessage) {
        if self.pending.len() >= MAX_PENDING {
            warn!("signaling: dropping the oldest queued message");
            self.pending.pop_front();
        }
        self.pending.push_back(message);
    }

    /// One connection: connect, join (resuming when possible), then relay
    /// until it ends.
    async fn connection(&mut self, attempt: &mut u32) -> Outcome {
        let mut ws = match tokio::time::timeout(JOIN_TIMEOUT, self.join()).await {
            Ok(Ok(ws)) => ws,
            // Never joined yet: say what failed instead of retrying.
            Ok(Err(Outcome::Unreachable(why))) if self.joined_once => {
                debug!(why, "signaling: reconnect failed");
                return Outcome::Dropped;
            }
            Ok(Err(outcome)) => return outcome,
            Err(_) if !self.joined_once => {
                return Outcome::Unreachable(format!(
                    "no answer within {} s",
                    JOIN_TIMEOUT.as_secs()
                ))
            }
            Err(_) => return Outcome::Dropped,
        };
        self.joined_once = true;
        *attempt = 0;
        while let Some(message) = self.pending.pop_front() {
            if send(&mut ws, &message).await.is_err() {
                self.pending.push_front(message);
                return Outcome::Dropped;
            }
        }
        loop {
            tokio::select! {
                frame = ws.next() => match frame {
                    Some(Ok(Message::Text(text))) => match decode_server(&text) {
                        Ok(frame) => {
                            if self.events.send(Event::Message(frame.message)).await.is_err() {
                                return Outcome::HandleGone;
                            }
                        }
                        Err(e) => debug!(error = %e, "signaling: undecodable server frame"),
                    },
                    Some(Ok(Message::Close(frame))) => {
                        let (code, reason) = frame
                            .map(|f| (u16::from(f.code), f.reason.to_string()))
                            .unwrap_or((close::NORMAL, String::new()));
                        return closed(code, reason);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return Outcome::Dropped,
                },
                command = self.commands.recv() => match command {
                    Some(Command::Send(message)) => {
                        if send(&mut ws, &message).await.is_err() {
                            self.queue(message);
                            return Outcome::Dropped;
                        }
                    }
                    Some(Command::Reconnect) => {
                        debug!("signaling: reconnecting (the network changed)");
                        return Outcome::Reconnect;
                    }
                    Some(Command::Leave) => {
                        let _ = send(&mut ws, &ClientMessage::Leave).await;
                        let _ = ws.close(None).await;
                        return Outcome::Left;
                    }
                    None => return Outcome::HandleGone,
                },
            }
        }
    }

    /// Connects and joins; the socket once `joined` arrived (and was reported).
    async fn join(&mut self) -> Result<Socket, Outcome> {
        let (mut ws, _) = tls::connect(&self.url, &self.params.trust)
            .await
            .map_err(|e| {
                debug!(error = %e, "signaling: connect failed");
                Outcome::Unreachable(why_unreachable(&e))
            })?;
        let p = &self.params;
        let join = ClientMessage::Join(Join {
            v: 1,
            room: p.room.clone(),
            name: p.name.clone(),
            client: p.client,
            password: p.password.clone(),
            token: p.token.clone(),
            resume: self.resume.take(),
            media: p.media,
        });
        send(&mut ws, &join).await.map_err(|_| Outcome::Dropped)?;
        loop {
            let text =
                match ws.next().await {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(frame))) => {
                        let (code, reason) = frame
                            .map(|f| (u16::from(f.code), f.reason.to_string()))
                            .unwrap_or((close::NORMAL, String::new()));
                        return Err(closed(code, reason));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None if !self.joined_once => return Err(Outcome::Unreachable(
                        "the connection closed before the server answered (is it a Huddle server?)"
                            .into(),
                    )),
                    Some(Err(_)) | None => return Err(Outcome::Dropped),
                };
            let Ok(frame) = decode_server(&text) else {
                continue;
            };
            match frame.message {
                ServerMessage::Joined { ref resume, .. } => {
                    self.resume = Some(resume.clone());
                    if self
                        .events
                        .send(Event::Message(frame.message))
                        .await
                        .is_err()
                    {
                        return Err(Outcome::HandleGone);
                    }
                    return Ok(ws);
                }
                ServerMessage::Error { code, message } if refuses_join(code) => {
                    return Err(Outcome::Refused(code, message));
                }
                other => {
                    if self.events.send(Event::Message(other)).await.is_err() {
                        return Err(Outcome::HandleGone);
                    }
                }
            }
        }
    }
}

async fn send(ws: &mut Socket, message: &ClientMessage) -> Result<(), ()> {
    ws.send(Message::text(encode_client(message, None)))
        .await
        .map_err(|_| ())
}

/// What failed, for someone who typed the server's address.
fn why_unreachable(error: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match error {
        WsError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            "the connection was refused (nothing listens at that address and port)".into()
        }
        WsError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            "the address did not answer".into()
        }
        WsError::Io(e) if e.to_string().contains("lookup") || e.to_string().contains("resolve") => {
            "the name could not be found (DNS)".into()
        }
        WsError::Io(e) => {
            tls::tls_failure(e).unwrap_or_else(|| format!("the connection failed: {e}"))
        }
        WsError::Tls(e) => format!("the secure connection (TLS) failed: {e}"),
        WsError::Http(response) => format!(
            "that is not a Huddle server (it answered HTTP {} instead of a WebSocket)",
            response.status().as_u16()
        ),
        WsError::Url(e) => format!("the address is not usable: {e}"),
        other => format!("the WebSocket handshake failed: {other}"),
    }
}

/// Join errors that another attempt would only repeat.
fn refuses_join(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::RoomFull
            | ErrorCode::BadPassword
            | ErrorCode::InvalidRoom
            | ErrorCode::InvalidName
            | ErrorCode::Forbidden
            | ErrorCode::UnsupportedVersion
            // Too many wrong passwords from this address: said with the wait.
            | ErrorCode::RateLimited
    )
}

/// A close from the server: policy closes end the client, the rest (going
/// away, replaced, try again later) are reconnected.
fn closed(code: u16, reason: String) -> Outcome {
    if code == close::POLICY || code == u16::from(CloseCode::Unsupported) {
        Outcome::Closed(code, reason)
    } else {
        Outcome::Dropped
    }
}
