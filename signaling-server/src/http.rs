//! The HTTP/1.1 request head that starts every connection: read within a
//! size bound, parsed, and answered (health, metrics, a refusal) or turned
//! into a WebSocket upgrade.

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Largest request head accepted.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;

/// What the server needs from a request head.
#[derive(Debug, Default)]
pub struct Head {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without query.
    pub path: String,
    /// `Upgrade: websocket` and `Connection: upgrade` were present.
    pub wants_websocket: bool,
    /// `Sec-WebSocket-Key`.
    pub websocket_key: Option<String>,
    /// `Sec-WebSocket-Version` is 13.
    pub websocket_version_ok: bool,
    /// `Origin`, sent by browsers.
    pub origin: Option<String>,
    /// The token of `Authorization: Bearer <token>`.
    pub bearer: Option<String>,
}

/// A request head that could not be read.
#[derive(Debug, Error)]
pub enum HttpError {
    /// The socket failed or closed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// Not HTTP.
    #[error("malformed request: {0}")]
    Malformed(httparse::Error),
    /// Over [`MAX_HEAD_BYTES`].
    #[error("request head too large")]
    TooLarge,
}

/// Reads a request head. Returns it and any bytes read past its end (a
/// client may send its first WebSocket frame without waiting).
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(Head, Vec<u8>), HttpError> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HttpError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf).map_err(HttpError::Malformed)? {
            httparse::Status::Complete(len) => {
                let head = head_of(&request);
                return Ok((head, buf.split_off(len)));
            }
            httparse::Status::Partial if buf.len() >= MAX_HEAD_BYTES => {
                return Err(HttpError::TooLarge)
            }
            httparse::Status::Partial => {}
        }
    }
}

fn head_of(request: &httparse::Request<'_, '_>) -> Head {
    let mut head = Head {
        method: request.method.unwrap_or("").to_owned(),
        path: request
            .path
            .unwrap_or("/")
            .split('?')
            .next()
            .unwrap_or("/")
            .to_owned(),
        ..Head::default()
    };
    let (mut upgrade, mut connection) = (false, false);
    for header in request.headers.iter() {
        let value = String::from_utf8_lossy(header.value);
        let has_token = |token: &str| {
            value
                .split(',')
                .any(|v| v.trim().eq_ignore_ascii_case(token))
        };
        match header.name.to_ascii_lowercase().as_str() {
            "upgrade" => upgrade = has_token("websocket"),
            "connection" => connection = has_token("upgrade"),
            "sec-websocket-key" => head.websocket_key = Some(value.trim().to_owned()),
            "sec-websocket-version" => head.websocket_version_ok = value.trim() == "13",
            "origin" => head.origin = Some(value.trim().to_owned()),
            "authorization" => {
                head.bearer = value
                    .trim()
                    .strip_prefix("Bearer ")
                    .map(|t| t.trim().to_owned())
            }
            _ => {}
        }
    }
    head.wants_websocket = upgrade && connection;
    head
}

/// Writes a complete response and shuts the stream down (for TLS that sends
/// `close_notify`, which HTTPS clients expect before the end of the body).
pub async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    respond_with(stream, status, content_type, "no-store", body.as_bytes()).await
}

/// Sent with every HTML page: scripts only from this server (no inline
/// script, no eval), pictures from here or `data:`/`blob:` (attachments,
/// video), sockets to any WebSocket server (a link may name another Huddle
/// server; the page asks before using it), never framed by another site.
const PAGE_HEADERS: &str = "Content-Security-Policy: default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
     connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'\r\nX-Frame-Options: DENY\r\n";

/// Writes a complete response with any body and cache policy, then closes;
/// HTML pages get [`PAGE_HEADERS`].
pub async fn respond_with<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: &str,
    content_type: &str,
    cache_control: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let page = if content_type.starts_with("text/html") {
        PAGE_HEADERS
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: {cache_control}\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n{page}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

/// Accepts a WebSocket upgrade.
pub async fn switch_protocols<S: AsyncWrite + Unpin>(
    stream: &mut S,
    key: &str,
) -> std::io::Result<()> {
    let accept = derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(response.as_bytes()).await?;
    stream.flush().await
}
