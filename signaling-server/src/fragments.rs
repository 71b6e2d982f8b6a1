//! Whether a client is in the middle of a fragmented message, and since
//! when.
//!
//! A WebSocket message may arrive in fragments, and control frames (pings)
//! may come between them; the WebSocket library holds the fragments until
//! the last one and shows nothing before. A client could so keep a message
//! open forever, holding up to a frame's worth of memory while its pings
//! keep the connection alive. [`Watched`] reads the frame headers of the
//! client's bytes as they pass (below the library, which still does all the
//! real parsing) and notes when a data message was started and not yet
//! finished; the handler closes a connection whose message stays unfinished
//! too long.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Where the header reader is in the byte stream.
#[derive(Debug, Clone, Copy)]
enum At {
    /// Reading a frame header; `have` of its bytes so far.
    Header { bytes: [u8; 14], have: u8 },
    /// Skipping a frame's payload.
    Payload { left: u64 },
}

/// Frame headers of one direction of a WebSocket, read as bytes pass.
#[derive(Debug, Clone, Copy)]
pub struct Fragments {
    at: At,
    /// When the unfinished data message began.
    open_since: Option<Instant>,
}

impl Default for Fragments {
    fn default() -> Self {
        Fragments {
            at: At::Header {
                bytes: [0; 14],
                have: 0,
            },
            open_since: None,
        }
    }
}

impl Fragments {
    /// When the data message still unfinished began, if one is.
    pub fn open_since(&self) -> Option<Instant> {
        self.open_since
    }

    /// Reads `data`, the next bytes from the client.
    pub fn observe(&mut self, mut data: &[u8], now: Instant) {
        while !data.is_empty() {
            match &mut self.at {
                At::Payload { left } => {
                    let skip = (*left).min(data.len() as u64);
                    *left -= skip;
                    data = &data[skip as usize..];
                    if *left == 0 {
                        self.at = At::Header {
                            bytes: [0; 14],
                            have: 0,
                        };
                    }
                }
                At::Header { bytes, have } => {
                    bytes[usize::from(*have)] = data[0];
                    *have += 1;
                    data = &data[1..];
                    let header = &bytes[..usize::from(*have)];
                    if let Some((fin, opcode, payload)) = parse(header) {
                        self.frame(fin, opcode, now);
                        self.at = if payload == 0 {
                            At::Header {
                                bytes: [0; 14],
                                have: 0,
                            }
                        } else {
                            At::Payload { left: payload }
                        };
                    }
                }
            }
        }
    }

    /// A frame header was read.
    fn frame(&mut self, fin: bool, opcode: u8, now: Instant) {
        match opcode {
            // Text or binary: a message starts (and ends, if `fin`).
            0x1 | 0x2 => self.open_since = (!fin).then_some(now),
            // Continuation: the last one ends the message.
            0x0 if fin => self.open_since = None,
            // Control frames and anything else: no change.
            _ => {}
        }
    }
}

/// `(fin, opcode, payload length)` once `header` is a whole frame header.
fn parse(header: &[u8]) -> Option<(bool, u8, u64)> {
    let [b0, b1, ..] = *header else {
        return None;
    };
    let masked = b1 & 0x80 != 0;
    let (extra, len7) = match b1 & 0x7f {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    let need = 2 + extra + if masked { 4 } else { 0 };
    if header.len() < need {
        return None;
    }
    let payload = match len7 {
        Some(n) => n,
        None => header[2..2 + extra]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
    };
    Some((b0 & 0x80 != 0, b0 & 0x0f, payload))
}

/// A stream whose incoming bytes pass through a [`Fragments`] reader.
#[derive(Debug)]
pub struct Watched<S> {
    inner: S,
    fragments: Fragments,
}

impl<S> Watched<S> {
    /// Watches `inner`; `read_ahead` are bytes already read from it.
    pub fn new(inner: S, read_ahead: &[u8]) -> Self {
        let mut fragments = Fragments::default();
        fragments.observe(read_ahead, Instant::now());
        Watched { inner, fragments }
    }

    /// The stream watched.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// What has been seen so far.
    pub fn fragments(&self) -> &Fragments {
        &self.fragments
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.fragments
                .observe(&buf.filled()[before..], Instant::now());
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n < 65_536 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&[1, 2, 3, 4]);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn a_fragmented_message_is_open_until_its_last_fragment_whatever_comes_between() {
        let now = Instant::now();
        let mut f = Fragments::default();
        f.observe(&frame(true, 0x1, b"{\"type\":\"ping\"}"), now);
        assert_eq!(f.open_since(), None, "a whole message");
        let mut stream = frame(false, 0x1, &[b'x'; 300]);
        stream.extend(frame(true, 0x9, b"")); // a ping in between
        stream.extend(frame(false, 0x0, &[b'y'; 70_000]));
        // Fed in awkward pieces, as sockets deliver.
        for piece in stream.chunks(7) {
            f.observe(piece, now);
        }
        assert_eq!(f.open_since(), Some(now));
        f.observe(&frame(true, 0x0, b"z"), now);
        assert_eq!(f.open_since(), None);
    }
}
