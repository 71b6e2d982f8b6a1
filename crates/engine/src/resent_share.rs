//! What share of a link's RTP went to resends lately, so that its video is
//! given what congestion control allows less what the resends take.
//!
//! Resends (`resend.rs`) may take the whole estimate in a second, as
//! libwebrtc's retransmission rate limit allows, and the video's bitrate
//! came from the estimate alone. Where the loss is the sender's own doing —
//! the network lab's 250 kbit/s dip, its 300 ms queue full — the two
//! together kept the link over its capacity: 250–280 kbit/s left for a
//! 250 kbit/s link, ~100 of it resends, the round trip 300–400 ms for the
//! whole dip. libwebrtc gives its encoder the estimate less the protection
//! it measured over the last second (retransmissions and FEC, at most
//! half: `FecControllerDefault`, `RtpVideoSender`). [`ResentShare`] counts
//! what left as first sends and as resends over [`WINDOW`];
//! `Estimate::for_media` takes the share off the estimate, at most
//! [`MAX_SHARE`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back the share is counted.
pub const WINDOW: Duration = Duration::from_secs(1);

/// The most the video's budget shrinks for resends: past it, the resends
/// are a burst's repair that ends, not a rate to make room for.
pub const MAX_SHARE: f64 = 0.5;

/// Bytes sent over the last [`WINDOW`], first sends and resends apart.
#[derive(Debug, Default)]
pub struct ResentShare {
    /// (when, bytes, whether a resend), oldest first.
    packets: VecDeque<(Instant, usize, bool)>,
    sent: usize,
    resent: usize,
}

impl ResentShare {
    /// Counts a packet of `bytes` that left `now`.
    pub fn note(&mut self, now: Instant, bytes: usize, resend: bool) {
        self.forget(now);
        self.packets.push_back((now, bytes, resend));
        if resend {
            self.resent += bytes;
        } else {
            self.sent += bytes;
        }
    }

    /// The share of what left in the last [`WINDOW`] before `now` that was
    /// resent (0 when nothing left).
    pub fn share(&mut self, now: Instant) -> f64 {
        self.forget(now);
        let all = self.sent + self.resent;
        if all == 0 {
            return 0.0;
        }
        self.resent as f64 / all as f64
    }

    fn forget(&mut self, now: Instant) {
        while let Some(&(at, bytes, resend)) = self.packets.front() {
            if now.saturating_duration_since(at) <= WINDOW {
                break;
            }
            self.packets.pop_front();
            if resend {
                self.resent -= bytes;
            } else {
                self.sent -= bytes;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_counts_the_last_second_only() {
        let start = Instant::now();
        let ms = |n: u64| start + Duration::from_millis(n);
        let mut share = ResentShare::default();
        assert_eq!(share.share(start), 0.0, "nothing sent");
        share.note(ms(0), 900, false);
        share.note(ms(100), 300, true);
        assert!((share.share(ms(100)) - 0.25).abs() < 1e-9);
        share.note(ms(1_050), 300, false);
        // The first send has aged out: 300 resent of 600.
        assert!((share.share(ms(1_050)) - 0.5).abs() < 1e-9);
        assert_eq!(share.share(ms(2_200)), 0.0, "all aged out");
    }
}
