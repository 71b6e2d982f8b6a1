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
//! [`HeardTap`], first on the inbound side of the interceptor chain, counts
//! every RTP and RTCP packet into [`Heard`]; [`Silence`] says how long the
//! count has not grown.

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

/// Every RTP and RTCP packet that arrived from the member so far.
#[derive(Debug, Default)]
pub struct Heard {
    packets: AtomicU64,
}

impl Heard {
    pub fn count(&self) -> u64 {
        self.packets.load(Ordering::Relaxed)
    }

    fn note(&self) {
        self.packets.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts inbound packets into [`Heard`]; every packet goes on.
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
        self.heard.note();
        Some(message)
    }
}

/// How long a count has stood still, from readings of it.
#[derive(Debug, Clone, Copy)]
pub struct Silence {
    count: u64,
    since: Instant,
}

impl Silence {
    /// Starts from a reading at `now`.
    pub fn new(count: u64, now: Instant) -> Silence {
        Silence { count, since: now }
    }

    /// A reading at `now`: how long nothing has been heard.
    pub fn observe(&mut self, count: u64, now: Instant) -> Duration {
        if count != self.count {
            *self = Silence::new(count, now);
        }
        now.saturating_duration_since(self.since)
    }
}

/// How often [`until_silent`] reads the count.
const POLL: Duration = Duration::from_millis(100);

/// Waits until nothing has been heard for `stall`, or `at_most` has passed.
pub async fn until_silent(heard: &Heard, stall: Duration, at_most: Duration) {
    // Tokio's clock, so that tests can run on paused time.
    let start = tokio::time::Instant::now().into_std();
    let mut silence = Silence::new(heard.count(), start);
    loop {
        tokio::time::sleep(POLL).await;
        let now = tokio::time::Instant::now().into_std();
        if silence.observe(heard.count(), now) >= stall || now - start >= at_most {
            return;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn silence_counts_from_the_last_growth() {
        let t = Instant::now();
        let mut silence = Silence::new(5, t);
        let ms = Duration::from_millis;
        assert_eq!(silence.observe(5, t + ms(400)), ms(400));
        assert_eq!(silence.observe(6, t + ms(500)), ms(0));
        assert_eq!(silence.observe(6, t + ms(1_600)), ms(1_100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_is_not_silent_until_it_stops() {
        let heard = Arc::new(Heard::default());
        let feeder = {
            let heard = heard.clone();
            tokio::spawn(async move {
                // 20 packets a second for 3 s, then nothing.
                for _ in 0..60 {
                    heard.note();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        let start = tokio::time::Instant::now();
        until_silent(&heard, STALL, Duration::from_secs(10)).await;
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(4) && waited < Duration::from_millis(4_200),
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
                    heard.note();
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
