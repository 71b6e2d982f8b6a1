//! When a link restarts ICE: after its path went disconnected (or failed)
//! and did not heal by itself.
//!
//! A restart costs the old path at once (webrtc-rs gives it up the moment
//! it restarts; the browser keeps it until the new one works), and then
//! the checks' round trips on the new one. So a link restarts only when
//! the old path is likely gone for good: the impolite side once nothing
//! at all was heard from the member for [`heard::STALL`] (or ICE has said
//! disconnected for [`RESTART_AFTER_DISCONNECTED`]), the polite side after
//! twice that. Before each restart it asks the signaling server
//! (`probe.rs`): while the server is out too, the whole network most
//! likely is, and a restart could not be negotiated anyway. When the
//! server answers, the old path may have come back meanwhile — it did in
//! the network lab's `network-drop-3s`, where a restart 0.16 s after the
//! network's return threw away a path that was carrying media again. So a
//! path that was silent and is heard again gets ICE's next keepalive to say
//! so, not a restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::debug;

use super::Input;
use crate::heard::{self, until_silent, Heard};
use crate::probe::ServerProbe;

/// How long a disconnected (or failed) path may stay so before the impolite
/// side restarts ICE (webrtc-rs takes ~30 s to declare a path failed) —
/// or less, once nothing at all has been heard from the member for
/// [`heard::STALL`]: a path that is gone, not one whose checks were lost.
/// The polite side waits twice as long, whatever it hears: when a path
/// dies both sides notice at once, and two restarts crossing each other
/// were measured never to connect, so normally only one side restarts and
/// the other answers.
pub const RESTART_AFTER_DISCONNECTED: Duration = Duration::from_secs(5);

/// While the path stays down, ICE is restarted again this often (the
/// polite side twice as seldom): one restart can fail for good — a network
/// still out when its checks ran, a relay that died — and webrtc-rs never
/// tries again by itself.
pub const RESTART_EVERY: Duration = Duration::from_secs(12);

/// What a link's restart task needs of it.
pub(super) struct Restart {
    pub inputs: mpsc::UnboundedSender<Input>,
    /// The connection is up (ICE said connected).
    pub connected: Arc<AtomicBool>,
    pub heard: Arc<Heard>,
    /// Asked before each restart (`None`: a link outside a call).
    pub server: Option<Arc<ServerProbe>>,
    pub polite: bool,
}

impl Restart {
    /// Restarts ICE, and again every [`RESTART_EVERY`], until the path is
    /// back or the link is gone.
    pub(super) async fn run(self) {
        let slower = if self.polite { 2 } else { 1 };
        if self.polite {
            tokio::time::sleep(RESTART_AFTER_DISCONNECTED * slower).await;
        } else {
            until_silent(&self.heard, heard::STALL, RESTART_AFTER_DISCONNECTED).await;
        }
        while !self.connected() {
            let silent = self.heard.silent() >= heard::STALL;
            if let Some(server) = &self.server {
                tokio::select! {
                    () = server.answered() => {}
                    () = self.inputs.closed() => return,
                }
                if self.connected() {
                    return;
                }
                if silent && self.heard.silent() < heard::STALL {
                    debug!("the old path is back: no ICE restart");
                    tokio::time::sleep(heard::STALL).await;
                    continue;
                }
            }
            if self.inputs.send(Input::RestartIce).is_err() {
                return; // the link is gone
            }
            tokio::time::sleep(RESTART_EVERY * slower).await;
        }
    }

    fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    struct Link {
        inputs: mpsc::UnboundedReceiver<Input>,
        connected: Arc<AtomicBool>,
        heard: Arc<Heard>,
        server: Arc<ServerProbe>,
    }

    /// An impolite link whose path just went disconnected, its restart
    /// task running.
    fn disconnected() -> Link {
        let (tx, inputs) = mpsc::unbounded_channel();
        let link = Link {
            inputs,
            connected: Arc::new(AtomicBool::new(false)),
            heard: Arc::new(Heard::default()),
            server: Arc::new(ServerProbe::default()),
        };
        let restart = Restart {
            inputs: tx,
            connected: link.connected.clone(),
            heard: link.heard.clone(),
            server: Some(link.server.clone()),
            polite: false,
        };
        tokio::spawn(restart.run());
        link
    }

    fn restarts(link: &mut Link) -> usize {
        std::iter::from_fn(|| link.inputs.try_recv().ok())
            .filter(|input| matches!(input, Input::RestartIce))
            .count()
    }

    async fn pass(ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_path_restarts_once_the_server_answers() {
        let mut link = disconnected();
        pass(3_000).await;
        assert_eq!(restarts(&mut link), 0, "the server has not answered");
        link.server.heard();
        pass(10).await;
        assert_eq!(restarts(&mut link), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_path_back_while_the_server_was_out_is_not_restarted() {
        let mut link = disconnected();
        pass(3_000).await;
        // The network returns: the member's media, then the server.
        link.heard.note_now();
        pass(150).await;
        link.server.heard();
        pass(10).await;
        assert_eq!(restarts(&mut link), 0);
        // ICE's next keepalive is answered.
        link.connected.store(true, Ordering::Relaxed);
        pass(60_000).await;
        assert_eq!(restarts(&mut link), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_path_heard_again_but_never_connected_is_restarted_after_all() {
        let mut link = disconnected();
        pass(3_000).await;
        link.heard.note_now();
        link.server.heard();
        pass(10).await;
        assert_eq!(restarts(&mut link), 0);
        // Nothing more came, and ICE never said connected.
        pass(1_500).await;
        link.server.heard();
        pass(10).await;
        assert_eq!(restarts(&mut link), 1);
    }
}
