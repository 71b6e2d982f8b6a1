//! Online password guessing: how long a source must wait before its next
//! room password is checked.
//!
//! Every source (see [`crate::source`]) has a few free wrong passwords;
//! after them each check waits for the source's next slot, and each failure
//! pushes that slot out twice as far as the one before (1 s, 2 s, 4 s, … up
//! to [`MAX_DELAY`]). Slots are per source, not per connection, so parallel
//! sockets do not guess faster. A check that would wait longer than
//! [`MAX_WAIT`] is not made at all: the client gets `rate_limited` and its
//! socket is closed. A room that has drawn many failures from anywhere
//! ([`HOT_ROOM_FAILURES`]) leaves every source only one free guess at it —
//! a first try with the right password still gets in at once.
//!
//! Failures are forgotten after [`FORGET_AFTER`] without one. The state is
//! per instance: behind a balancer, a source spread over N instances has N
//! schedules (documented in `docs/security.md`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::source::Source;
use crate::sync::lock;

/// Wrong passwords a source may give before its checks are delayed.
pub const FREE_FAILURES: u32 = 5;
/// The wait after the first failure beyond the free ones.
pub const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest wait between two checks of one source.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// A check further away than this is refused (`rate_limited`, socket closed).
pub const MAX_WAIT: Duration = Duration::from_secs(10);
/// Failures are forgotten after this long without one.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Failures at one room (from all sources) after which it is "hot".
pub const HOT_ROOM_FAILURES: u32 = 20;
/// Most sources and rooms remembered; beyond it the stale ones are dropped,
/// then the oldest.
const MAX_ENTRIES: usize = 65_536;
/// Joins that give a password — each hashes or checks it, ~10 ms of a core
/// (`secret.rs`) — a source may make at once…
pub const HASH_BURST: f64 = 10.0;
/// …and then a second: so no source turns join messages into the server's
/// CPU.
pub const HASHES_PER_SECOND: f64 = 1.0;

/// Failures of one source, or at one room.
#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: Instant,
    /// The source's next check may not happen before this.
    next_check: Instant,
}

/// When a password check may happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Check at once.
    Now,
    /// Wait until then, then check.
    At(Instant),
    /// Do not check; the source may try again after this long.
    Refused(Duration),
}

/// The wait a source's failure number `failures` (counting from 0) imposes
/// on its next check.
pub fn delay_after(failures: u32) -> Duration {
    match failures.checked_sub(FREE_FAILURES) {
        None => Duration::ZERO,
        Some(n) => FIRST_DELAY
            .checked_mul(1u32 << n.min(16))
            .unwrap_or(MAX_DELAY)
            .min(MAX_DELAY),
    }
}

/// Password-guess bookkeeping for one instance.
#[derive(Debug, Default)]
pub struct Guesses {
    sources: Mutex<HashMap<Source, Record>>,
    rooms: Mutex<HashMap<String, Record>>,
    /// Password hashing each source may still cause: (tokens, as of).
    work: Mutex<HashMap<Source, (f64, Instant)>>,
}

impl Guesses {
    /// Reserves the slot for `source`'s next password check at `room`.
    pub fn reserve(&self, source: Source, room: &str, now: Instant) -> Slot {
        let hot = {
            let rooms = lock(&self.rooms);
            rooms.get(room).is_some_and(|r| {
                now.duration_since(r.last_failure) < FORGET_AFTER && r.failures >= HOT_ROOM_FAILURES
            })
        };
        let mut sources = lock(&self.sources);
        let Some(record) = sources
            .get_mut(&source)
            .filter(|r| now.duration_since(r.last_failure) < FORGET_AFTER)
        else {
            return Slot::Now;
        };
        // At a hot room a source has one free guess, not all of them.
        let failures = if hot {
            record.failures.saturating_add(FREE_FAILURES - 1)
        } else {
            record.failures
        };
        let delay = delay_after(failures);
        if delay.is_zero() {
            return Slot::Now;
        }
        let at = record.next_check.max(now);
        let wait = at - now;
        if wait > MAX_WAIT {
            return Slot::Refused(wait);
        }
        // Taken now, so that parallel connections queue behind each other.
        record.next_check = at + delay;
        if wait.is_zero() {
            Slot::Now
        } else {
            Slot::At(at)
        }
    }

    /// Takes one password hash from `source`'s budget; `Err` with how long
    /// until there is one again.
    pub fn take_hash(&self, source: Source, now: Instant) -> Result<(), Duration> {
        let mut work = lock(&self.work);
        let refill = |(tokens, at): (f64, Instant)| {
            (tokens + now.duration_since(at).as_secs_f64() * HASHES_PER_SECOND).min(HASH_BURST)
        };
        if work.len() >= MAX_ENTRIES && !work.contains_key(&source) {
            // Sources with a full budget again need no entry.
            work.retain(|_, b| refill(*b) < HASH_BURST);
        }
        let tokens = work.get(&source).map_or(HASH_BURST, |b| refill(*b));
        if tokens < 1.0 {
            return Err(Duration::from_secs_f64((1.0 - tokens) / HASHES_PER_SECOND));
        }
        work.insert(source, (tokens - 1.0, now));
        Ok(())
    }

    /// Records a wrong (or missing) password from `source` at `room`.
    pub fn failed(&self, source: Source, room: &str, now: Instant) {
        {
            let mut sources = lock(&self.sources);
            bump(&mut sources, source, now);
        }
        let mut rooms = lock(&self.rooms);
        bump(&mut rooms, room.to_owned(), now);
    }
}

/// Counts one failure for `key`, keeping the map bounded.
fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Record>, key: K, now: Instant) {
    if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
        map.retain(|_, r| now.duration_since(r.last_failure) < FORGET_AFTER);
        if map.len() >= MAX_ENTRIES {
            // Still full of live entries: forget the longest-quiet half.
            let mut ages: Vec<Instant> = map.values().map(|r| r.last_failure).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            map.retain(|_, r| r.last_failure > cut);
        }
    }
    let record = map.entry(key).or_insert(Record {
        failures: 0,
        last_failure: now,
        next_check: now,
    });
    if now.duration_since(record.last_failure) >= FORGET_AFTER {
        record.failures = 0;
    }
    record.failures = record.failures.saturating_add(1);
    record.last_failure = now;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn source(ip: &str) -> Source {
        Source::of(ip.parse().unwrap())
    }

    /// A guesser that always waits for its slot and reconnects when refused:
    /// the time its `n` guesses take.
    fn time_for(guesses: u32) -> Duration {
        let g = Guesses::default();
        let s = source("192.0.2.1");
        let start = Instant::now();
        let mut now = start;
        let mut made = 0;
        while made < guesses {
            match g.reserve(s, "standup", now) {
                Slot::Now => {}
                Slot::At(at) => now = at,
                Slot::Refused(after) => {
                    now += after - MAX_WAIT;
                    continue;
                }
            }
            g.failed(s, "standup", now);
            made += 1;
        }
        now - start
    }

    #[test]
    fn five_free_guesses_then_doubling_waits() {
        assert_eq!(time_for(5), Duration::ZERO);
        assert_eq!(delay_after(5), Duration::from_secs(1));
        assert_eq!(delay_after(8), Duration::from_secs(8));
        assert_eq!(delay_after(40), MAX_DELAY);
        // 1 + 2 + 4 + 8 s of waits between the 6th and 10th guesses.
        assert_eq!(time_for(10), Duration::from_secs(15));
    }

    #[test]
    fn two_hundred_guesses_take_well_over_a_minute() {
        let t = time_for(200);
        assert!(t >= Duration::from_secs(60), "{t:?}");
        // At most one guess a minute once the waits are at their cap.
        assert!(t >= MAX_DELAY * 180, "{t:?}");
    }

    #[test]
    fn a_wait_beyond_the_limit_is_refused_and_parallel_checks_queue() {
        let g = Guesses::default();
        let s = source("192.0.2.1");
        let now = Instant::now();
        for _ in 0..9 {
            g.failed(s, "r", now);
        }
        // Failure 9 → 16 s apart; parallel reservations queue behind each other.
        assert_eq!(g.reserve(s, "r", now), Slot::Now);
        assert_eq!(
            g.reserve(s, "r", now),
            Slot::Refused(Duration::from_secs(16))
        );
        // Another source is not affected.
        assert_eq!(g.reserve(source("192.0.2.2"), "r", now), Slot::Now);
    }

    #[test]
    fn a_hot_room_leaves_new_sources_one_free_guess() {
        let g = Guesses::default();
        let now = Instant::now();
        for i in 0..HOT_ROOM_FAILURES {
            g.failed(source(&format!("198.51.100.{i}")), "vault", now);
        }
        let fresh = source("203.0.113.9");
        // Its first try is free (it may be the right password)...
        assert_eq!(g.reserve(fresh, "vault", now), Slot::Now);
        g.failed(fresh, "vault", now);
        // ...its second waits; at another room it still has its free ones.
        assert!(matches!(
            g.reserve(fresh, "vault", now),
            Slot::Now | Slot::At(_)
        ));
        assert!(matches!(g.reserve(fresh, "vault", now), Slot::At(_)));
        assert_eq!(g.reserve(fresh, "other", now), Slot::Now);
    }

    #[test]
    fn password_hashing_is_budgeted_per_source() {
        let g = Guesses::default();
        let s = source("192.0.2.1");
        let now = Instant::now();
        for _ in 0..10 {
            assert_eq!(g.take_hash(s, now), Ok(()));
        }
        assert!(g.take_hash(s, now).is_err());
        assert_eq!(
            g.take_hash(source("192.0.2.2"), now),
            Ok(()),
            "others unaffected"
        );
        assert_eq!(g.take_hash(s, now + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn failures_are_forgotten() {
        let g = Guesses::default();
        let s = source("192.0.2.1");
        let now = Instant::now();
        for _ in 0..12 {
            g.failed(s, "r", now);
        }
        assert!(matches!(g.reserve(s, "r", now), Slot::Now | Slot::At(_)));
        assert_eq!(g.reserve(s, "r", now + FORGET_AFTER), Slot::Now);
    }
}
