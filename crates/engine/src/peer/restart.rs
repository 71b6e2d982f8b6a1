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
//!
//! Towards a member that restarts ICE by itself when its own addresses
//! change (a Huddle engine: `network.rs`), the impolite side waits in
//! silence longer ([`STALL_TOWARDS_A_WATCHFUL_MEMBER`]): such a member
//! says so itself when it moved, so a short silence is a dropout that will
//! heal on the old path. A browser cannot say so, and a silence from it
//! may be an address change only this side's restart repairs.

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

/// How long the impolite side waits in silence before it restarts towards
/// a member that restarts ICE itself when its own addresses change. What
/// it still catches is what no address watch sees: a NAT that rebound, a
/// relay gone. A shorter wait throws away paths that were about to come
/// back: in the network lab's 3 s outages a restart 1.7 s in cost the
/// frozen side 0.1–0.5 s over Chromium↔Chromium. (The page restarts a
/// second into a silence too, but Chromium keeps the old path until the
/// new one works.) The page cannot wait like this: it cannot see its own
/// addresses, so only its own restart repairs its own move.
pub const STALL_TOWARDS_A_WATCHFUL_MEMBER: Duration = Duration::from_secs(4);

/// What a link's restart task needs of it.
pub(super) struct Restart {
    pub inputs: mpsc::UnboundedSender<Input>,
    /// The connection is up (ICE said connected).
    pub connected: Arc<AtomicBool>,
    pub heard: Arc<Heard>,
    /// Asked before each restart (`None`: a link outside a call).
    pub server: Option<Arc<ServerProbe>>,
    pub polite: bool,
    /// How long the impolite side waits in silence: [`heard::STALL`], or
    /// [`STALL_TOWARDS_A_WATCHFUL_MEMBER`].
    pub stall: Duration,
}

impl Restart {
    /// Restarts ICE, and again every [`RESTART_EVERY`], until the path is
    /// back or the link is gone.
    pub(super) async fn run(self) {
        let slower = if self.polite { 2 } else { 1 };
        if self.polite {
            tokio::time::sleep(RESTART_AFTER_DISCONNECTED * slower).await;
        } else {
            until_silent(&self.heard, self.stall, RESTART_AFTER_DISCONNECTED).await;
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

    /// An impolite link towards a browser whose path just went
    /// disconnected, its restart task running.
    fn disconnected() -> Link {
        disconnected_after(heard::STALL)
    }

    /// The same, waiting `stall` in silence before it restarts.
    fn disconnected_after(stall: Duration) -> Link {
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
            stall,
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

    /// The server answers each probe a round trip later, as in an outage
    /// of the media path only.
    async fn answer_always(server: Arc<ServerProbe>) {
        loop {
            server.wanted().await;
            pass(20).await;
            server.heard();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn towards_a_watchful_member_a_short_silence_heals_on_the_old_path() {
        let mut link = disconnected_after(STALL_TOWARDS_A_WATCHFUL_MEMBER);
        tokio::spawn(answer_always(link.server.clone()));
        pass(3_000).await;
        assert_eq!(restarts(&mut link), 0, "a browser's link restarts by now");
        // The path is back, and ICE says so at its next keepalive.
        link.heard.note_now();
        pass(300).await;
        link.heard.note_now();
        link.connected.store(true, Ordering::Relaxed);
        pass(60_000).await;
        assert_eq!(restarts(&mut link), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn towards_a_watchful_member_a_long_silence_restarts() {
        let mut link = disconnected_after(STALL_TOWARDS_A_WATCHFUL_MEMBER);
        tokio::spawn(answer_always(link.server.clone()));
        pass(3_800).await;
        assert_eq!(restarts(&mut link), 0);
        pass(300).await;
        assert_eq!(restarts(&mut link), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn towards_a_browser_a_short_silence_restarts() {
        let mut link = disconnected();
        tokio::spawn(answer_always(link.server.clone()));
        pass(1_200).await;
        assert_eq!(restarts(&mut link), 1);
    }
}
