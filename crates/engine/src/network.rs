//! Notices the machine's network changing under a call: a laptop moving
//! from Wi-Fi to Ethernet, a renumbered interface, a VPN coming up.
//!
//! The addresses a peer could use (not loopback, not link-local) are looked
//! at every [`LOOK_EVERY`]. When one the call may be using goes away, the
//! call's paths are dead: nothing says so for seconds (ICE calls a path
//! disconnected after 5 s without an answered check, and a TCP socket from
//! a vanished address hangs until TCP gives up), so the call restarts ICE
//! on every link and reconnects signaling at once. An address that appears
//! restarts the links that are not connected (a machine back online).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

/// How often the addresses are looked at.
pub const LOOK_EVERY: Duration = Duration::from_secs(1);

/// The machine's usable addresses now (empty if they cannot be listed).
pub fn usable_addresses() -> BTreeSet<IpAddr> {
    let Ok(interfaces) = rtc::shared::ifaces::ifaces() else {
        return BTreeSet::new();
    };
    interfaces
        .into_iter()
        .filter_map(|interface| interface.addr.map(|a| a.ip()))
        .filter(|ip| usable(*ip))
        .collect()
}

/// Whether a peer elsewhere could reach `ip`.
fn usable(ip: IpAddr) -> bool {
    let link_local = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    !(ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() || link_local)
}

/// What changed since the last look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// An address went away.
    pub lost: bool,
    /// An address appeared.
    pub gained: bool,
}

/// The addresses seen last.
#[derive(Debug, Default)]
pub struct NetworkWatch {
    known: BTreeSet<IpAddr>,
}

impl NetworkWatch {
    pub fn new(addresses: BTreeSet<IpAddr>) -> NetworkWatch {
        NetworkWatch { known: addresses }
    }

    /// The addresses now; what changed, if anything.
    pub fn update(&mut self, addresses: BTreeSet<IpAddr>) -> Option<Change> {
        let change = Change {
            lost: self.known.difference(&addresses).next().is_some(),
            gained: addresses.difference(&self.known).next().is_some(),
        };
        self.known = addresses;
        (change.lost || change.gained).then_some(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(addresses: &[&str]) -> BTreeSet<IpAddr> {
        addresses.iter().filter_map(|a| a.parse().ok()).collect()
    }

    #[test]
    fn a_renumbered_interface_is_a_loss_and_a_gain() {
        let mut watch = NetworkWatch::new(set(&["10.0.0.2", "2001:db8::2"]));
        assert_eq!(watch.update(set(&["10.0.0.2", "2001:db8::2"])), None);
        assert_eq!(
            watch.update(set(&["10.0.0.3", "2001:db8::2"])),
            Some(Change {
                lost: true,
                gained: true
            })
        );
        assert_eq!(
            watch.update(set(&["10.0.0.3", "2001:db8::2", "192.168.1.5"])),
            Some(Change {
                lost: false,
                gained: true
            })
        );
        assert_eq!(
            watch.update(set(&["192.168.1.5"])),
            Some(Change {
                lost: true,
                gained: false
            })
        );
    }

    #[test]
    fn only_addresses_a_peer_could_reach_count() {
        for ip in [
            "127.0.0.1",
            "::1",
            "169.254.3.4",
            "fe80::1",
            "0.0.0.0",
            "224.0.0.251",
        ] {
            assert!(
                !usable(ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))),
                "{ip}"
            );
        }
        for ip in ["10.91.1.2", "192.168.1.5", "2001:db8::2"] {
            assert!(
                usable(ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))),
                "{ip}"
            );
        }
    }
}
