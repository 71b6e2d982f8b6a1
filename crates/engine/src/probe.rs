//! Whether the signaling server still answers, asked when a media path goes
//! silent — before a link restarts ICE.
//!
//! An ICE restart is negotiated through the server, and webrtc-rs gives up
//! the old path the moment it restarts (the browser keeps sending on it
//! until the new one works). When the whole network is out — a Wi-Fi
//! dropout, not a path that moved — the restart's offer waits in a dead
//! socket, and when the network returns media waits for it: measured in the
//! network lab's `network-drop-3s`, pictures came back 0.37–0.41 s after
//! the network did, Chromium's 0.10–0.27 s. So a link asks first: the call
//! sends the server a `ping`, and the link restarts only once the server
//! has been heard since it asked. Until then the old path stays, and media
//! flows on it the moment the network is back. A probe unanswered for
//! [`PROBE_TIMEOUT`] abandons the socket for a new one (a network change
//! may have killed it silently), as the browser engine's `probe` does
//! (`src-ui/src/engine/signaling.ts`); the new socket's `joined` answers.

use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

/// A probe unanswered this long gives the socket up: the server answers
/// within a round trip (the browser engine's `PROBE_TIMEOUT_MS`).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Shared by a call and its links: the links ask, the call probes and
/// says when the server was heard.
#[derive(Debug)]
pub struct ServerProbe {
    /// When anything last arrived from the server.
    heard: watch::Sender<Instant>,
    /// A link asked.
    wanted: Notify,
}

impl Default for ServerProbe {
    fn default() -> Self {
        ServerProbe {
            heard: watch::channel(now()).0,
            wanted: Notify::new(),
        }
    }
}

/// Tokio's clock, so that tests can run on paused time.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl ServerProbe {
    /// Something arrived from the server.
    pub fn heard(&self) {
        self.heard.send_replace(now());
    }

    /// Asks for a probe; returns once the server has been heard after the
    /// asking.
    pub async fn answered(&self) {
        let asked = now();
        let mut heard = self.heard.subscribe();
        self.wanted.notify_one();
        // The sender lives as long as `self`.
        let _ = heard.wait_for(|at| *at > asked).await;
    }

    /// Returns when a link has asked for a probe.
    pub async fn wanted(&self) {
        self.wanted.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn only_what_the_server_says_after_the_asking_answers() {
        let probe = Arc::new(ServerProbe::default());
        tokio::time::advance(Duration::from_millis(10)).await;
        // Heard before the asking: no answer.
        probe.heard();
        tokio::time::advance(Duration::from_millis(10)).await;
        let asking = tokio::spawn({
            let probe = probe.clone();
            async move { probe.answered().await }
        });
        // The call sees the asking.
        tokio::time::timeout(Duration::from_secs(1), probe.wanted())
            .await
            .expect("the call is asked to probe");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(
            !asking.is_finished(),
            "answered without a word from the server"
        );
        probe.heard();
        tokio::time::timeout(Duration::from_secs(1), asking)
            .await
            .expect("answered once the server spoke")
            .expect("the asking task");
    }
}
