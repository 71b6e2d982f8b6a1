//! Which frames written to a client its TCP has acknowledged.
//!
//! A frame written to a socket has only reached the kernel's send queue. When
//! the client's path dies (a laptop moving from Wi-Fi to Ethernet), whatever
//! its TCP had not acknowledged dies with the old connection, although every
//! write "succeeded"; and the server finds the connection dead only when the
//! client resumes on a new one, or when its pings go unanswered. The protocol
//! promises a resuming member everything it would have received, so a handler
//! keeps each frame from the member's outbox until the client's TCP has
//! acknowledged it ([`Unacknowledged`]), and when the connection ends without
//! `leave` the frames not acknowledged go back to the front of the outbox.
//!
//! Bytes are counted as they are handed to the kernel ([`Counted`]); the
//! kernel says how many the client acknowledged (Linux: `TCP_INFO`'s
//! `tcpi_bytes_acked`). On a plain connection each frame's last byte is known
//! exactly (a server frame is its header and its payload). Through TLS, records
//! hide the boundaries: all frames of a batch end where the batch ended, so a
//! partly acknowledged batch is sent again whole and the client may see some of
//! it twice (chat carries ids to tell). Behind a reverse proxy the proxy
//! acknowledges and nothing is gained. Elsewhere than Linux nothing is kept.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// What a transport says about delivery.
pub trait Delivery {
    /// Bytes handed to the kernel so far.
    fn written(&self) -> u64;
    /// Of those, the bytes the client's TCP has acknowledged; `None` where
    /// the system does not say.
    fn acknowledged(&self) -> Option<u64>;
    /// Whether a frame's bytes sit unchanged in the byte stream (no TLS).
    fn plain(&self) -> bool;
    /// Whether the system says what is acknowledged (checked once).
    fn tracked(&self) -> bool;
}

/// A TCP stream that counts the bytes written to it.
#[derive(Debug)]
pub struct Counted {
    inner: TcpStream,
    written: u64,
    /// What the kernel counted as acknowledged before the first byte was
    /// written (whether it counts the handshake is not ours to assume);
    /// `None` where it does not say.
    base: Option<u64>,
}

impl Counted {
    /// Counts from now on.
    pub fn new(inner: TcpStream) -> Self {
        let base = bytes_acked(&inner);
        Counted {
            inner,
            written: 0,
            base,
        }
    }
}

impl Delivery for Counted {
    fn written(&self) -> u64 {
        self.written
    }

    fn acknowledged(&self) -> Option<u64> {
        let base = self.base?;
        bytes_acked(&self.inner).map(|acked| acked.saturating_sub(base))
    }

    fn plain(&self) -> bool {
        true
    }

    fn tracked(&self) -> bool {
        self.base.is_some()
    }
}

impl<S: Delivery> Delivery for tokio_rustls::server::TlsStream<S> {
    fn written(&self) -> u64 {
        self.get_ref().0.written()
    }

    fn acknowledged(&self) -> Option<u64> {
        self.get_ref().0.acknowledged()
    }

    fn plain(&self) -> bool {
        false
    }

    fn tracked(&self) -> bool {
        self.get_ref().0.tracked()
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            self.written += n as u64;
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = written {
            self.written += n as u64;
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The bytes of `stream` its peer has acknowledged, as the kernel counts them.
#[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
#[allow(unsafe_code)] // one getsockopt; nothing in std or tokio reads TCP_INFO
fn bytes_acked(stream: &TcpStream) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is a zeroed, writable `tcp_info` of `len` bytes; the
    // kernel writes at most `len` bytes into it and sets `len` to how many it
    // wrote. The descriptor is borrowed from a live stream for the call.
    let done = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    // SAFETY: zeroed bytes are a valid `tcp_info` (integers only), whatever
    // the kernel filled in.
    let info = unsafe { info.assume_init() };
    // Kernels before 4.1 do not have the field.
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_bytes_acked) + 8;
    (done == 0 && len as usize >= needed).then_some(info.tcpi_bytes_acked)
}

#[cfg(not(all(target_os = "linux", any(target_env = "gnu", target_env = "musl"))))]
fn bytes_acked(_stream: &TcpStream) -> Option<u64> {
    None
}

/// The size on the wire of a server's (unmasked) text frame with `payload` bytes.
fn frame_bytes(payload: usize) -> u64 {
    let header = match payload {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    };
    (header + payload) as u64
}

/// Frames written and not yet known acknowledged, each with the stream
/// offset its last byte has; bounded like an outbox.
#[derive(Debug, Default)]
pub struct Unacknowledged {
    frames: VecDeque<(Utf8Bytes, u64)>,
    bytes: usize,
}

/// Frames and bytes held at most before asking the kernel what is
/// acknowledged (attachments make frames of up to ~700 KB).
const CHECK_AT: (usize, usize) = (64, 256 * 1024);

/// The most bytes not ours the library may slip into a batch: one pong
/// answering a client's ping (a header and at most 125 bytes), written
/// before, between or after our frames. A frame counts as acknowledged
/// only this far past its computed end.
const CONTROL_SLACK: u64 = 127;

impl Unacknowledged {
    /// Notes a batch of `frames` written from stream offset `start` (every
    /// byte before it handed to the kernel first); `end` is the offset after
    /// the batch's write, `None` if it failed. Keeps at most `max_messages`
    /// frames and `max_bytes` bytes, the oldest going first (they are then
    /// lost to a resume, as when an outbox overflows).
    pub fn wrote(
        &mut self,
        frames: &[Utf8Bytes],
        start: u64,
        end: Option<u64>,
        transport: &impl Delivery,
        (max_messages, max_bytes): (usize, usize),
    ) {
        if !transport.tracked() {
            return; // the system cannot say: nothing to keep
        }
        if self.frames.len() + frames.len() > CHECK_AT.0 || self.bytes > CHECK_AT.1 {
            self.forget_acknowledged(transport);
        }
        let mut offset = start;
        for frame in frames {
            offset += frame_bytes(frame.len());
            let last = match end {
                // A failed write may have left any frame unsent.
                None => u64::MAX,
                Some(end) if transport.plain() => (offset + CONTROL_SLACK).min(end),
                Some(end) => end,
            };
            self.bytes += frame.len();
            self.frames.push_back((frame.clone(), last));
        }
        while self.frames.len() > max_messages.max(1) || self.bytes > max_bytes {
            let Some((gone, _)) = self.frames.pop_front() else {
                break;
            };
            self.bytes -= gone.len();
            tracing::debug!("a frame left unacknowledged is no longer kept for a resume");
        }
    }

    /// Whether any frame is kept.
    pub fn holds_any(&self) -> bool {
        !self.frames.is_empty()
    }

    /// Drops the frames the client has acknowledged.
    pub fn forget_acknowledged(&mut self, transport: &impl Delivery) {
        if self.frames.is_empty() {
            return; // nothing to ask the kernel about
        }
        let Some(acked) = transport.acknowledged() else {
            return;
        };
        while let Some((frame, _)) = self.frames.front().filter(|(_, last)| *last <= acked) {
            self.bytes -= frame.len();
            self.frames.pop_front();
        }
        if self.frames.is_empty() {
            self.frames = VecDeque::new();
        }
    }

    /// The frames the client has not acknowledged, in order, as the
    /// connection ends.
    pub fn take(mut self, transport: &impl Delivery) -> Vec<Utf8Bytes> {
        self.forget_acknowledged(transport);
        self.frames.into_iter().map(|(frame, _)| frame).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A transport whose counts the test sets.
    struct Fake {
        acked: Option<u64>,
        plain: bool,
    }

    /// Room for every frame a test writes.
    const ROOMY: (usize, usize) = (64, 1 << 20);

    impl Delivery for Fake {
        fn written(&self) -> u64 {
            0 // only the handler reads it
        }
        fn acknowledged(&self) -> Option<u64> {
            self.acked
        }
        fn plain(&self) -> bool {
            self.plain
        }
        fn tracked(&self) -> bool {
            self.acked.is_some()
        }
    }

    fn frames(texts: &[&str]) -> Vec<Utf8Bytes> {
        texts.iter().map(|t| Utf8Bytes::from(*t)).collect()
    }

    fn texts(frames: Vec<Utf8Bytes>) -> Vec<String> {
        frames.into_iter().map(|f| f.to_string()).collect()
    }

    #[test]
    fn frame_sizes_follow_the_websocket_header() {
        assert_eq!(frame_bytes(0), 2);
        assert_eq!(frame_bytes(125), 127);
        assert_eq!(frame_bytes(126), 130);
        assert_eq!(frame_bytes(65535), 65539);
        assert_eq!(frame_bytes(65536), 65546);
    }

    #[test]
    fn on_a_plain_stream_each_frame_is_acknowledged_by_its_last_byte() {
        let mut t = Fake {
            acked: Some(100),
            plain: true,
        };
        let mut sent = Unacknowledged::default();
        // A pong may have come before them: a frame counts acknowledged
        // only 127 bytes past its end.
        let (a, b, c) = ("a".repeat(200), "b".repeat(200), "c".repeat(300));
        // On the wire 204, 204 and 304 bytes: ending at 304, 508 and 812.
        sent.wrote(&frames(&[&a, &b, &c]), 100, Some(812), &t, ROOMY);
        t.acked = Some(304 + 126);
        assert_eq!(
            texts(sent.take(&t)),
            [a.as_str(), &b, &c],
            "within the slack"
        );
        let mut sent = Unacknowledged::default();
        sent.wrote(&frames(&[&a, &b, &c]), 100, Some(812), &t, ROOMY);
        t.acked = Some(304 + 127);
        assert_eq!(texts(sent.take(&t)), [b.as_str(), &c]);
        let mut sent = Unacknowledged::default();
        sent.wrote(&frames(&[&a, &b, &c]), 100, Some(812), &t, ROOMY);
        t.acked = Some(508 + 127);
        assert_eq!(texts(sent.take(&t)), [c]);
    }

    #[test]
    fn through_tls_a_partly_acknowledged_batch_comes_back_whole() {
        let t = Fake {
            acked: Some(0),
            plain: false,
        };
        let mut sent = Unacknowledged::default();
        sent.wrote(&frames(&["a"]), 0, Some(40), &t, ROOMY);
        sent.wrote(&frames(&["b", "c"]), 40, Some(90), &t, ROOMY);
        let t = Fake {
            acked: Some(60),
            ..t
        };
        assert_eq!(texts(sent.take(&t)), ["b", "c"]);
    }

    #[test]
    fn a_failed_write_keeps_its_whole_batch() {
        let t = Fake {
            acked: Some(0),
            plain: true,
        };
        let mut sent = Unacknowledged::default();
        sent.wrote(&frames(&["a", "b"]), 0, None, &t, ROOMY);
        let t = Fake {
            acked: Some(1000),
            ..t
        };
        assert_eq!(texts(sent.take(&t)), ["a", "b"]);
    }

    #[test]
    fn bounded_like_an_outbox_and_pruned_as_acknowledgements_come() {
        let mut t = Fake {
            acked: Some(0),
            plain: true,
        };
        let mut sent = Unacknowledged::default();
        for (i, text) in ["1", "2", "3"].into_iter().enumerate() {
            let start = 3 * i as u64;
            sent.wrote(&frames(&[text]), start, Some(start + 3), &t, (2, 1 << 20));
        }
        assert_eq!(sent.frames.len(), 2, "the oldest went");
        t.acked = Some(6);
        sent.forget_acknowledged(&t);
        assert_eq!(texts(sent.take(&t)), ["3"]);
    }

    #[test]
    fn nothing_is_kept_where_the_system_cannot_say() {
        let t = Fake {
            acked: None,
            plain: true,
        };
        let mut sent = Unacknowledged::default();
        sent.wrote(&frames(&["a"]), 0, Some(3), &t, ROOMY);
        assert!(sent.frames.is_empty());
    }
}
