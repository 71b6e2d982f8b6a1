//! ICE's timing and set-up for one link: how often candidate pairs are
//! checked while a path is sought, how long a pair is tried, how often the
//! chosen path's consent is checked and when it counts as disconnected, and
//! whether mDNS candidates can be resolved.
//!
//! webrtc-rs checks *every* pair still in progress once per check interval
//! (200 ms unless told). A path that comes back after an outage is found
//! only at a check: the controlling side's check, its answer, the next
//! check with the nomination and its answer — two intervals and two round
//! trips. RFC 8445 paces an agent's checks at one per Ta = 50 ms, all pairs
//! together; so the interval here is Ta times the pairs expected, never
//! longer than webrtc-rs's own 200 ms: a machine with one address and no
//! STUN or TURN server (a LAN, the network lab) checks its one pair every
//! 50 ms, one with several addresses or servers as webrtc-rs always did.

use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use webrtc::peer_connection::{SettingEngine, SettingEngineBuilder};

/// RFC 8445's pacing: one check per this, whatever the pair.
const TA: Duration = Duration::from_millis(50);

/// webrtc-rs's own check interval, the longest used here.
const SLOWEST_CHECKS: Duration = Duration::from_millis(200);

/// How long a candidate pair is checked before it counts as failed: 25 s
/// (webrtc-rs's default, 7 checks at 200 ms, gives up after 1.4 s). A
/// restart made while the network is out — the 20 s outage of the network
/// lab — otherwise failed all its pairs before the network came back and
/// the call never returned; pairs still being checked connect within a
/// check of the network's return.
const CHECK_A_PAIR_FOR: Duration = Duration::from_secs(25);

/// ICE's consent checks on the chosen path go out this often (webrtc-rs:
/// every 2 s), and a path none of them was answered on for
/// [`DISCONNECTED_AFTER`] is disconnected (webrtc-rs: 5 s). With its
/// defaults, a browser whose address changed was noticed 3.7 s after the
/// change and the call came back only when the browser restarted by
/// itself (3.1–3.7 s in the network lab's `renumber-b`). A check and its
/// answer are ~100 bytes each way.
const KEEPALIVE: Duration = Duration::from_millis(500);
const DISCONNECTED_AFTER: Duration = Duration::from_secs(2);

/// How often each candidate pair is checked, and how many times, for a
/// side with `local_candidates` candidates (its usable addresses and one
/// for each STUN or TURN URL); the other side is taken to have as many, so
/// the pairs are their square.
pub fn check_pacing(local_candidates: usize) -> (Duration, u16) {
    let pairs = u32::try_from(local_candidates.max(1).saturating_pow(2)).unwrap_or(u32::MAX);
    let interval = TA.saturating_mul(pairs).min(SLOWEST_CHECKS);
    let checks = CHECK_A_PAIR_FOR.as_millis() / interval.as_millis().max(1);
    (interval, u16::try_from(checks).unwrap_or(u16::MAX))
}

/// webrtc-rs's settings for one link.
pub fn setting_engine(local_candidates: usize) -> SettingEngine {
    let (interval, checks) = check_pacing(local_candidates);
    SettingEngineBuilder::new()
        // An ICE restart gathers afresh — new sockets, new TURN
        // allocations: without this webrtc-rs keeps the old ones, and a
        // call whose relay died never came back (measured).
        .with_discard_local_candidates_during_ice_restart(true)
        .with_ice_connection_attempts(Some(interval), Some(checks))
        .with_ice_timeouts(Some(DISCONNECTED_AFTER), None, Some(KEEPALIVE))
        .with_multicast_dns_mode(mdns_mode())
        .build()
}

/// Whether `.local` candidates (a browser hiding its addresses) can be
/// resolved here. webrtc-rs opens its mDNS socket when it builds a peer
/// connection and, if that fails, builds no peer connection at all. It
/// fails where the socket cannot join 224.0.0.251 (a machine without a
/// default route — an offline LAN, a VPN-only host: "No such device (os
/// error 19)", measured in the network lab) and where the socket layer
/// refuses an option webrtc-rs sets on it (wine's Winsock: "operation not
/// supported", 10045, asked for IPV6_V6ONLY of an IPv4 socket). So the same
/// socket is built here first; where it cannot be, calls go without mDNS.
fn mdns_mode() -> MulticastDnsMode {
    let opens = rtc::mdns::MulticastSocket::new()
        .into_std()
        .and_then(|socket| webrtc::runtime::UdpSocketState::new((&socket).into()).map(drop));
    match opens {
        Ok(()) => MulticastDnsMode::QueryOnly,
        Err(e) => {
            tracing::warn!(error = %e, "no mDNS socket: `.local` candidates will not be resolved");
            MulticastDnsMode::Disabled
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_is_checked_at_rfc_8445_pace_and_many_at_webrtc_rs_pace() {
        assert_eq!(check_pacing(0), (Duration::from_millis(50), 500));
        assert_eq!(check_pacing(1), (Duration::from_millis(50), 500));
        assert_eq!(check_pacing(2), (Duration::from_millis(200), 125));
        assert_eq!(check_pacing(9), (Duration::from_millis(200), 125));
        assert_eq!(check_pacing(usize::MAX), (Duration::from_millis(200), 125));
    }
}
