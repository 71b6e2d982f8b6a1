//! A client's WebSocket: frames in, encoded messages out. Nothing else in
//! the server touches the socket; JSON is handled by `huddle_protocol::codec`.

use futures_util::{SinkExt, StreamExt};
use huddle_protocol::codec::encode_server;
use huddle_protocol::ServerMessage;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::fragments::Watched;

/// Read buffer per connection. Deliberately small: most frames are far below
/// it, larger ones grow the buffer for as long as they need it, and idle
/// connections then cost little memory (tungstenite's default is 128 KiB).
const READ_BUFFER_BYTES: usize = 512;

/// Frames fed without a flush are written once they reach this size; the
/// handler flushes after each batch it drains from the outbox.
const WRITE_BATCH_BYTES: usize = 16 * 1024;

/// What arrived from the client.
#[derive(Debug)]
pub enum Inbound {
    /// A text frame.
    Text(Utf8Bytes),
    /// A binary frame (a protocol error).
    Binary,
    /// A ping, pong or other control frame: proof of life only.
    Control,
    /// A frame over the size limit; the connection must close (1009).
    TooLarge,
    /// The client closed or the connection broke.
    Closed,
}

/// The WebSocket of one client.
#[derive(Debug)]
pub struct Connection<S> {
    ws: WebSocketStream<Watched<S>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Wraps a stream whose HTTP upgrade is done; `read_ahead` holds bytes
    /// the client sent after its request head.
    pub async fn new(stream: S, read_ahead: Vec<u8>, max_frame_bytes: usize) -> Self {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(WRITE_BATCH_BYTES)
            .max_write_buffer_size(max_frame_bytes * 4)
            .max_message_size(Some(max_frame_bytes))
            .max_frame_size(Some(max_frame_bytes));
        let stream = Watched::new(stream, &read_ahead);
        let ws =
            WebSocketStream::from_partially_read(stream, read_ahead, Role::Server, Some(config))
                .await;
        Connection { ws }
    }

    /// When the message the client started and has not finished began
    /// (fragments, perhaps with pings between them), if it has one open.
    pub fn unfinished_since(&self) -> Option<tokio::time::Instant> {
        self.ws.get_ref().fragments().open_since()
    }

    /// The transport under the WebSocket (TCP, perhaps through TLS).
    pub fn transport(&self) -> &S {
        self.ws.get_ref().get_ref()
    }

    /// The next frame.
    pub async fn read(&mut self) -> Inbound {
        match self.ws.next().await {
            Some(Ok(Message::Text(text))) => Inbound::Text(text),
            Some(Ok(Message::Binary(_))) => Inbound::Binary,
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Inbound::Control,
            Some(Err(WsError::Capacity(
                CapacityError::MessageTooLong { .. } | CapacityError::TooManyHeaders,
            ))) => Inbound::TooLarge,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => Inbound::Closed,
        }
    }

    /// Sends one message now.
    pub async fn send(
        &mut self,
        message: &ServerMessage,
        rid: Option<&str>,
    ) -> Result<(), WsError> {
        self.ws
            .send(Message::Text(encode_server(message, rid).into()))
            .await
    }

    /// Queues an encoded frame; [`Connection::flush`] sends what is queued.
    pub async fn feed(&mut self, frame: Utf8Bytes) -> Result<(), WsError> {
        self.ws.feed(Message::Text(frame)).await
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> Result<(), WsError> {
        self.ws.flush().await
    }

    /// Sends a WebSocket ping.
    pub async fn ping(&mut self) -> Result<(), WsError> {
        self.ws.send(Message::Ping(Default::default())).await
    }

    /// Sends a close frame and lets the client finish the closing handshake.
    pub async fn close(mut self, code: u16, reason: &'static str) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        let _ = self.ws.close(Some(frame)).await;
        // Drain until the client answers the close or goes away, briefly.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}
