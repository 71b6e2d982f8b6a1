//! Where a connection comes from, and how much of the server each origin
//! may hold at once.
//!
//! A [`Source`] is a client's IPv4 address, or the /64 prefix of its IPv6
//! address: one IPv6 subscriber usually gets a whole /64, so counting single
//! IPv6 addresses would let one machine be millions of sources. [`Quotas`]
//! counts what each source holds (connections, rooms it created, members
//! live or in their grace period); a [`Ticket`] is one unit of it, given
//! back when dropped, so whatever path removes a member or a room gives its
//! share back without bookkeeping of its own.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::sync::lock;

/// An IPv4 address or an IPv6 /64 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Source(IpAddr);

impl Source {
    /// The source of a client at `ip` (IPv4-mapped IPv6 counts as IPv4).
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Source(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// What a source holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Held {
    /// Open connections.
    Connection,
    /// Rooms it created that still exist.
    Room,
    /// Room members, connected or in their grace period.
    Member,
}

/// Counts of what each source holds.
#[derive(Debug, Default)]
pub struct Quotas {
    counts: Mutex<HashMap<(Source, Held), usize>>,
}

/// One unit of a source's quota; dropping it gives the unit back.
#[derive(Debug)]
pub struct Ticket {
    quotas: Arc<Quotas>,
    key: (Source, Held),
}

impl Quotas {
    /// A unit of `what` for `source`, if it holds fewer than `max`.
    pub fn take(self: &Arc<Self>, source: Source, what: Held, max: usize) -> Option<Ticket> {
        let mut counts = lock(&self.counts);
        let count = counts.entry((source, what)).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Ticket {
            quotas: self.clone(),
            key: (source, what),
        })
    }

    /// How many units of `what` `source` holds.
    pub fn held(&self, source: Source, what: Held) -> usize {
        let counts = lock(&self.counts);
        counts.get(&(source, what)).copied().unwrap_or(0)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = lock(&self.quotas.counts);
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Source::of(a), Source::of(b));
        assert_ne!(Source::of(a), Source::of(c));
        assert_eq!(Source::of(a).to_string(), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(Source::of(mapped), Source::of("192.0.2.7".parse().unwrap()));
    }

    #[test]
    fn tickets_are_given_back_on_drop() {
        let quotas = Arc::new(Quotas::default());
        let s = Source::of("192.0.2.1".parse().unwrap());
        let one = quotas.take(s, Held::Room, 2).unwrap();
        let _two = quotas.take(s, Held::Room, 2).unwrap();
        assert!(quotas.take(s, Held::Room, 2).is_none());
        assert!(
            quotas.take(s, Held::Member, 2).is_some(),
            "kinds are separate"
        );
        drop(one);
        assert!(quotas.take(s, Held::Room, 2).is_some());
    }
}
