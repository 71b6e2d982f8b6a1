//! Per-link adaptation in a mesh: which encoding of our video each member
//! gets.
//!
//! Every link has its own congestion estimate and its own
//! [`BitrateControl`] (down at once, up in steps). One encoding at the
//! weakest link's rate — what a single encoder can do — gives a member on a
//! weak hotel link's rate to everyone; one encoder per link costs a core
//! per member. The [`Planner`] groups the links into at most
//! [`MAX_ENCODINGS`] encodings instead: the strong links share the first,
//! at the weakest of *their* rates, and the weak share a second, at the
//! weakest of theirs. It splits only when that carries clearly more video
//! to the members ([`SPLIT_GAIN`]) and joins the two again only when it no
//! longer does ([`JOIN_GAIN`]): a member moved from one encoding to another
//! starts over from a keyframe.
//!
//! The planner is a plain state machine: estimates and the time in, a
//! [`Plan`] out.

use std::collections::HashMap;
use std::time::Instant;

use huddle_protocol::PeerId;

use crate::congestion::{start_bps, BitrateControl};

/// At most this many encodings at once (each is an encoder's CPU).
pub const MAX_ENCODINGS: usize = 2;

/// A split happens when it sends the members at least this much more video
/// in all (e.g. two links whose rates differ by a third: 1 + 1/2 ÷ 2 · 1/2).
pub const SPLIT_GAIN: f64 = 1.25;
/// …and ends when it no longer sends more than this.
pub const JOIN_GAIN: f64 = 1.1;

/// Which encoding each link gets, and each encoding's bitrate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Per encoding, bits per second; the first is always there (links
    /// the plan does not name get it).
    pub bitrates: Vec<u32>,
    /// The links on an encoding other than the first, with its index.
    pub placed: HashMap<PeerId, usize>,
}

impl Plan {
    /// One encoding at `bps` for everyone.
    pub fn single(bps: u32) -> Plan {
        Plan {
            bitrates: vec![bps],
            placed: HashMap::new(),
        }
    }

    /// The encoding `peer` gets.
    pub fn encoding_of(&self, peer: &str) -> usize {
        self.placed
            .get(peer)
            .copied()
            .filter(|&i| i < self.bitrates.len())
            .unwrap_or(0)
    }

    /// The bitrate `peer`'s encoding aims for.
    pub fn bitrate_of(&self, peer: &str) -> u32 {
        self.bitrates[self.encoding_of(peer)]
    }
}

/// Turns the links' estimates into a [`Plan`], changing it only for a
/// real change.
#[derive(Debug)]
pub struct Planner {
    max_bps: u32,
    /// The most one encoding's pictures are worth (their size's ceiling,
    /// [`crate::congestion::size_ceiling_bps`]): links that carry more are
    /// alike to the plan.
    ceiling_bps: u32,
    /// Each link's own bitrate control.
    links: HashMap<PeerId, BitrateControl>,
    plan: Plan,
}

impl Planner {
    pub fn new(max_bps: u32) -> Planner {
        Planner {
            max_bps,
            ceiling_bps: u32::MAX,
            links: HashMap::new(),
            plan: Plan::single(start_bps(max_bps)),
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The pictures' ceiling now (another camera, a shared screen): two
    /// links both above it would get two encodings that the encoders make
    /// alike — a second encoder's CPU for nothing. Takes effect at the
    /// next [`Planner::update`].
    pub fn set_ceiling(&mut self, bps: u32) {
        self.ceiling_bps = bps;
    }

    /// Takes the links' estimates now (bits per second; `None` before a
    /// link's first feedback: it takes the first encoding and does not
    /// hold it back); returns the new plan when it changed. Links not
    /// named are gone.
    pub fn update(&mut self, estimates: &[(PeerId, Option<f64>)]) -> Option<&Plan> {
        self.update_at(Instant::now(), estimates)
    }

    pub fn update_at(
        &mut self,
        now: Instant,
        estimates: &[(PeerId, Option<f64>)],
    ) -> Option<&Plan> {
        self.links
            .retain(|peer, _| estimates.iter().any(|(p, _)| p == peer));
        let mut rates: Vec<(PeerId, u32)> = Vec::new();
        for (peer, estimate) in estimates {
            let Some(estimate) = *estimate else { continue };
            let control = self
                .links
                .entry(peer.clone())
                .or_insert_with(|| BitrateControl::new_at(now, self.max_bps));
            control.update_at(now, estimate);
            rates.push((peer.clone(), control.current().min(self.ceiling_bps)));
        }
        // Without any estimate the first encoding keeps its rate.
        let plan = if rates.is_empty() {
            Plan::single(self.plan.bitrates[0])
        } else {
            group(rates, self.plan.bitrates.len() > 1)
        };
        if plan == self.plan {
            return None;
        }
        self.plan = plan;
        Some(&self.plan)
    }
}

/// Groups links by their rates: everyone at the weakest rate, or — when it
/// carries enough more video in all (see [`SPLIT_GAIN`], [`JOIN_GAIN`];
/// `split` says whether it is split now) — the strongest few at the
/// weakest of theirs and the rest at the weakest of all.
fn group(mut rates: Vec<(PeerId, u32)>, split: bool) -> Plan {
    // Strongest first; ties in a fixed order, so the plan is stable.
    rates.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let n = rates.len();
    let weakest = rates[n - 1].1;
    let together = f64::from(weakest) * n as f64;
    // The best split: the first k links at the k-th rate, the rest at the
    // weakest.
    let best = (1..n)
        .map(|k| {
            let carried =
                f64::from(rates[k - 1].1) * k as f64 + f64::from(weakest) * (n - k) as f64;
            (k, carried)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let threshold = if split { JOIN_GAIN } else { SPLIT_GAIN };
    match best {
        Some((k, carried)) if MAX_ENCODINGS > 1 && carried >= threshold * together => Plan {
            bitrates: vec![rates[k - 1].1, weakest],
            placed: rates[k..]
                .iter()
                .map(|(peer, _)| (peer.clone(), 1))
                .collect(),
        },
        _ => Plan::single(weakest),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::congestion::{link_budget, START_VIDEO_BPS};

    fn links(rates: &[(&str, u32)]) -> Vec<(PeerId, Option<f64>)> {
        rates
            .iter()
            .map(|(p, bps)| (p.to_string(), Some(link_budget(*bps))))
            .collect()
    }

    #[test]
    fn links_alike_share_one_encoding_at_the_weakest_rate() {
        let mut planner = Planner::new(1_000_000);
        let t = Instant::now();
        let plan = planner
            .update_at(t, &links(&[("b", 1_000_000), ("c", 850_000)]))
            .unwrap();
        assert_eq!(plan, &Plan::single(850_000));
        assert_eq!(
            planner.update_at(t, &links(&[("b", 1_000_000), ("c", 850_000)])),
            None
        );
    }

    #[test]
    fn a_weak_member_gets_its_own_encoding_and_the_rest_keep_theirs() {
        let mut planner = Planner::new(1_000_000);
        let t = Instant::now();
        let three = links(&[("a", 1_000_000), ("b", 850_000), ("c", 250_000)]);
        let plan = planner.update_at(t, &three).unwrap();
        assert_eq!(plan.bitrates, vec![850_000, 250_000]);
        assert_eq!(plan.encoding_of("a"), 0);
        assert_eq!(plan.encoding_of("b"), 0);
        assert_eq!(plan.encoding_of("c"), 1);
        assert_eq!(plan.bitrate_of("c"), 250_000);
        assert_eq!(plan.encoding_of("newcomer"), 0);
    }

    #[test]
    fn the_split_holds_until_it_no_longer_pays() {
        let mut planner = Planner::new(1_000_000);
        let mut t = Instant::now();
        planner.update_at(t, &links(&[("b", 1_000_000), ("c", 300_000)]));
        assert_eq!(planner.plan().bitrates.len(), 2);
        // C's link recovers; its rate climbs in steps (×1.5 every 0.5 s).
        let mut joined_at = None;
        for step in 1..20 {
            t += Duration::from_millis(600);
            if let Some(plan) = planner.update_at(t, &links(&[("b", 1_000_000), ("c", 1_000_000)]))
            {
                if plan.bitrates.len() == 1 {
                    joined_at = Some(step);
                    break;
                }
            }
        }
        // 300 → 450 → 675 (gain 1.24: still split) → 1000: joined.
        assert_eq!(joined_at, Some(3));
        assert_eq!(planner.plan(), &Plan::single(1_000_000));
        // Not split again for a rate within the join gain's reach.
        t += Duration::from_millis(600);
        assert_eq!(
            planner.update_at(t, &links(&[("b", 1_000_000), ("c", 700_000)])),
            Some(&Plan::single(700_000))
        );
    }

    #[test]
    fn no_second_encoding_for_bits_the_pictures_cannot_use() {
        let mut planner = Planner::new(2_500_000);
        let t = Instant::now();
        let two = links(&[("b", 2_500_000), ("c", 1_600_000)]);
        assert_eq!(planner.update_at(t, &two).unwrap().bitrates.len(), 2);
        // A 640×480 camera is worth 1.7 Mbit/s at most: B's link is no
        // better for it than C's.
        planner.set_ceiling(1_700_000);
        assert_eq!(planner.update_at(t, &two), Some(&Plan::single(1_600_000)));
        // Back to 720p: split again.
        planner.set_ceiling(2_500_000);
        assert_eq!(
            planner.update_at(t, &two).unwrap().bitrates,
            vec![2_500_000, 1_600_000]
        );
    }

    #[test]
    fn a_call_that_wants_more_starts_at_the_start_rate_and_follows_its_links() {
        let mut planner = Planner::new(2_500_000);
        assert_eq!(planner.plan(), &Plan::single(START_VIDEO_BPS));
        let t = Instant::now();
        assert_eq!(planner.update_at(t, &[("b".to_string(), None)]), None);
        let plan = planner.update_at(t, &links(&[("b", 1_600_000)])).unwrap();
        assert_eq!(plan, &Plan::single(1_600_000));
    }

    #[test]
    fn links_without_an_estimate_hold_nothing_back_and_gone_links_are_forgotten() {
        let mut planner = Planner::new(1_000_000);
        let t = Instant::now();
        let plan = planner.update_at(t, &[("b".to_string(), None)]).cloned();
        assert_eq!(plan, None, "the first encoding keeps its starting rate");
        planner.update_at(t, &links(&[("b", 1_000_000), ("c", 200_000)]));
        assert_eq!(planner.plan().bitrates.len(), 2);
        let plan = planner.update_at(t, &links(&[("b", 1_000_000)])).unwrap();
        assert_eq!(plan, &Plan::single(1_000_000));
        assert_eq!(planner.links.len(), 1);
    }
}
