//! The TCP settings of a client's connection: signaling is a thin stream —
//! a few small frames at a time, each waited for (an offer, a candidate).
//!
//! - No Nagle: a frame goes at once, not after the previous one's
//!   acknowledgement.
//! - Lost segments are sent again at a steady pace, not an exponential one
//!   (Linux's thin-stream linear timeouts: the first six retransmissions one
//!   retransmission timeout apart, then exponential as usual). After a
//!   network dropout, TCP's doubling timer decides when the first frame
//!   written into it arrives: in the network lab's `network-drop-3s` an ICE
//!   restart's offer reached the dropped member 164–284 ms after its
//!   network was back, and after a longer dropout it would be seconds. The
//!   kernel applies the linear pace only while fewer than four segments are
//!   in flight, so a flood is never sent faster — and so, measured, the
//!   offers were no faster with it (114–408 ms): the offer is resent every
//!   500 ms into the same stalled socket, and the queue grows past four. The
//!   native client sets the same on its end (`huddle-engine`'s `tls.rs`),
//!   where its answer is the first frame after the dropout.

use tokio::net::TcpStream;

/// Applies the settings to a newly accepted connection; a setting the
/// system refuses is left at its default.
pub fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = steady_retransmissions(stream);
}

/// Asks for linear retransmission timeouts (`TCP_THIN_LINEAR_TIMEOUTS`).
#[cfg(target_os = "linux")]
fn steady_retransmissions(stream: &TcpStream) -> std::io::Result<()> {
    socket2::SockRef::from(stream).set_tcp_thin_linear_timeouts(true)
}

#[cfg(not(target_os = "linux"))]
fn steady_retransmissions(_stream: &TcpStream) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_takes_the_settings() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        tune(&server);
        assert!(server.nodelay().unwrap());
        #[cfg(target_os = "linux")]
        assert!(socket2::SockRef::from(&server)
            .tcp_thin_linear_timeouts()
            .unwrap());
        drop(client);
    }
}
