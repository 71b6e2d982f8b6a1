//! Whether anything at all still arrives from a member: the first sign of a
//! dead path.
//!
//! ICE judges a path by its STUN checks alone (webrtc-rs: a path is
//! `disconnected` when no check was answered for [`crate::peer`]'s
//! timeout), and checks are lost on a lossy path while media gets through.
//! A path that is really gone delivers nothing: no media, no RTCP (a member
//! that sends no media still sends reports and feedback about ours). So a
//! link restarts ICE early only when both say so: ICE calls the path
//! disconnected *and* nothing was heard for [`STALL`] — the browser
//! engine's `STALL_MS` (`src-ui/src/engine/peer.ts`) on the native side.
//!
//! [`HeardTap`], first on the inbound side of the interceptor chain, notes
//! when each RTP and RTCP packet arrives in [`Heard`], which says how long
//! nothing has.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::interceptor::{Slot, TaggedPacket};

use crate::tap::{Tap, Tapped};

/// Where it sits: wire-most, so it counts what arrived before any other
/// interceptor keeps a packet back.
pub const SLOT: usize = 50;

/// Nothing heard for this long on a path ICE calls disconnected: the path
/// is gone (a browser's audio alone brings 50 packets a second, 2.5 while
/// it is silent; a native member's reports and feedback several).
pub const STALL: Duration = Duration::from_secs(1);

/// When the last RTP or RTCP packet arrived from the member.
#[derive(Debug)]
pub struct Heard {
    epoch: Instant,
    /// Milliseconds from `epoch` to the last packet (0: none yet).
    last_ms: AtomicU64,
}

impl Default for Heard {
    fn default() -> Self {
        Heard {
            epoch: now(),
            last_ms: AtomicU64::new(0),
        }
    }
}

/// Tokio's clock, so that tests can run on paused time.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Heard {
    /// How long nothing has arrived, at `at` (since the start if nothing
    /// ever did).
    pub fn silent_for(&self, at: Instant) -> Duration {
        let last = self.epoch + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        at.saturating_duration_since(last)
    }

    /// How long nothing has arrived, now.
    pub fn silent(&self) -> Duration {
        self.silent_for(now())
    }

    /// A packet arrived now (for tests elsewhere).
    #[cfg(test)]
    pub fn note_now(&self) {
        self.note(now());
    }

    /// A packet arrived at `at`.
    fn note(&self, at: Instant) {
        let ms = at.saturating_duration_since(self.epoch).as_millis();
        let ms = u64::try_from(ms).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }
}

/// Notes each inbound packet in [`Heard`]; every packet goes on.
#[derive(Debug)]
pub struct HeardTap {
    heard: Arc<Heard>,
}

impl HeardTap {
    pub fn interceptor(heard: Arc<Heard>) -> Tapped<HeardTap> {
        Tapped::new(HeardTap { heard })
    }

    pub fn slot() -> Slot {
        Slot::from(SLOT)
    }
}

impl Tap for HeardTap {
    fn read(&mut self, message: TaggedPacket) -> Option<TaggedPacket> {
        // The arrival time webrtc-rs took: no clock read per packet here.
        self.heard.note(message.now);
        Some(message)
    }
}

/// How often [`until_silent`] looks.
const POLL: Duration = Duration::from_millis(100);

/// Waits until nothing has been heard for `stall` (at once if that is so
/// already), or `at_most` has passed.
pub async fn until_silent(heard: &Heard, stall: Duration, at_most: Duration) {
    let start = now();
    loop {
        let at = now();
        if heard.silent_for(at) >= stall || at - start >= at_most {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn silence_counts_from_the_last_packet() {
        let heard = Heard::default();
        let ms = Duration::from_millis;
        tokio::time::sleep(ms(300)).await;
        assert_eq!(
            heard.silent_for(now()),
            ms(300),
            "nothing yet: since the start"
        );
        heard.note(now());
        tokio::time::sleep(ms(400)).await;
        assert_eq!(heard.silent_for(now()), ms(400));
        heard.note(now());
        assert_eq!(heard.silent_for(now()), ms(0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_path_silent_long_enough_already_is_not_waited_for() {
        let heard = Heard::default();
        heard.note(now());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let start = tokio::time::Instant::now();
        until_silent(&heard, STALL, Duration::from_secs(5)).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_is_not_silent_until_it_stops() {
        let heard = Arc::new(Heard::default());
        let feeder = {
            let heard = heard.clone();
            tokio::spawn(async move {
                // 20 packets a second for 3 s, then nothing.
                for _ in 0..60 {
                    heard.note(now());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        let start = tokio::time::Instant::now();
        until_silent(&heard, STALL, Duration::from_secs(10)).await;
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(3_950) && waited < Duration::from_millis(4_100),
            "silent after {waited:?}: the stream ran 3 s, then 1 s of nothing"
        );
        feeder.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_ends_at_its_limit_while_packets_still_come() {
        let heard = Arc::new(Heard::default());
        let feeder = {
            let heard = heard.clone();
            tokio::spawn(async move {
                for _ in 0..200 {
                    heard.note(now());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        let start = tokio::time::Instant::now();
        until_silent(&heard, STALL, Duration::from_secs(5)).await;
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(5) && waited < Duration::from_millis(5_200));
        feeder.abort();
    }
}
