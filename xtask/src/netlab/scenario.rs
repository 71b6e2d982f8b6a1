//! A scenario: what the path between the two sides does over time, read
//! from a text file (`bench/netlab/*.lab`).
//!
//! ```text
//! # what it is
//! duration 50s
//! queue 300ms          # the bottleneck's queue, in time at its rate
//! routes none          # no default route in A and B (default: via R)
//! seed 7               # the impairments' random draws (default 1)
//! at 0s both 2500kbit  # capacity toward both sides from 0 s
//! at 15s a>b 250kbit   # …toward B only (what A sends)
//! at 0s both delay 50ms    # one-way delay added
//! at 0s both jitter 30ms   # ± up to this much more per packet (reorders)
//! at 10s a>b loss 5%       # packets dropped at random…
//! at 10s a>b burst 5       # …in bursts of this many on average (Gilbert–Elliott)
//! at 10s both police 500kbit  # a policer: what exceeds the rate is dropped, not queued
//! at 30s both police off
//! at 12s renumber a        # A's address changes (a laptop changing networks)
//! family ipv6              # the links have only IPv6 addresses (default: ipv4)
//! spare a                  # A has two more interfaces: one up to a dead end, one down
//! members 3                # a third side, C, joins the call (a mesh)
//! at 0s c 600kbit          # C's own link, both ways (`>c`: toward C, `c>`: from C)
//! ```
//!
//! C's link is capacity only: the forwarder's impairments are between A and
//! B, and over IPv4 only.

use std::time::Duration;

use crate::Failed;

/// One of the lab's bottlenecks. `AtoB` is the router's egress toward B,
/// which everything for B crosses (from C too), and `BtoA` toward A; C's
/// own link has one each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Way {
    AtoB,
    BtoA,
    /// The router's egress toward C.
    ToC,
    /// C's own egress toward the router (its uplink).
    FromC,
}

impl Way {
    pub const BOTH: [Way; 2] = [Way::AtoB, Way::BtoA];

    pub fn arrow(self) -> &'static str {
        match self {
            Way::AtoB => "A→B",
            Way::BtoA => "B→A",
            Way::ToC => "→C",
            Way::FromC => "C→",
        }
    }

    /// The bottlenecks media from side `from` to side `to` crosses
    /// (`"a"`, `"b"`, `"c"`).
    pub fn route(from: &str, to: &str) -> Vec<Way> {
        let mut ways = Vec::new();
        if from == "c" {
            ways.push(Way::FromC);
        }
        ways.push(match to {
            "a" => Way::BtoA,
            "b" => Way::AtoB,
            _ => Way::ToC,
        });
        ways
    }
}

/// One thing a step changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// The bottleneck's rate, kbit/s.
    Rate(u32),
    Delay(Duration),
    Jitter(Duration),
    /// Share of packets lost, 0–1.
    Loss(f64),
    /// Mean length of a loss burst, in packets (1: independent losses).
    Burst(f64),
    /// A policer's rate, kbit/s (None: no policer): the forwarder drops
    /// what exceeds it beyond a short burst (`impair::Policer`), as a
    /// relay's per-session cap or a carrier's shaper does, and queues
    /// nothing.
    Police(Option<u32>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub at: Duration,
    pub way: Way,
    pub change: Change,
}

/// What the forwarder does to one way's packets at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairment {
    pub delay: Duration,
    pub jitter: Duration,
    pub loss: f64,
    pub burst: f64,
    /// The policer's rate, kbit/s.
    pub police: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// The file as written (the forwarder reads it again).
    pub text: String,
    pub duration: Duration,
    pub queue_ms: u32,
    pub default_route: bool,
    pub seed: u64,
    /// The sides in the call: 2 (A and B) or 3 (and C).
    pub members: usize,
    /// Only IPv6 on the lab's links (no IPv4 address but loopback's).
    pub ipv6_only: bool,
    /// The sides with spare interfaces (see `Lab::add_spares`).
    pub spares: Vec<&'static str>,
    /// In time order.
    pub steps: Vec<Step>,
    /// When a side's address changes (`"a"` or `"b"`), in time order.
    pub renumbers: Vec<(Duration, &'static str)>,
    /// When a side's path to the signaling server goes down (false) and
    /// comes back (true), in time order: with its links' loss at 100 %, the
    /// whole network of a laptop whose Wi-Fi dropped.
    pub signaling: Vec<(Duration, &'static str, bool)>,
}

fn parse_duration(text: &str) -> Option<Duration> {
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    text.strip_suffix('s')?
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// `text` as one of `sides`, with the lifetime the scenario keeps.
fn parse_side(text: &str, sides: &[&'static str]) -> Option<&'static str> {
    sides.iter().copied().find(|s| *s == text)
}

fn parse_change(words: &[&str]) -> Option<Change> {
    Some(match words {
        [rate] => Change::Rate(rate.strip_suffix("kbit")?.parse().ok()?),
        ["delay", d] => Change::Delay(parse_duration(d)?),
        ["jitter", d] => Change::Jitter(parse_duration(d)?),
        ["loss", p] => {
            let p: f64 = p.strip_suffix('%')?.parse().ok()?;
            if !(0.0..=100.0).contains(&p) {
                return None;
            }
            Change::Loss(p / 100.0)
        }
        ["burst", n] => Change::Burst(n.parse().ok().filter(|n: &f64| *n >= 1.0)?),
        ["police", "off"] => Change::Police(None),
        ["police", rate] => Change::Police(Some(
            rate.strip_suffix("kbit")?.parse().ok().filter(|r| *r > 0)?,
        )),
        _ => return None,
    })
}

/// What the lab itself does at a moment of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    Capacity(Way, u32),
    /// Applied by the forwarder; the lab only says when.
    Loss(Way, f64),
    Renumber(&'static str),
    /// A side's path to the signaling server comes back (true) or goes.
    Signaling(&'static str, bool),
}

impl Scenario {
    /// The capacity and loss changes, renumberings and signaling cuts, in
    /// time order.
    pub fn events(&self) -> Vec<(Duration, Event)> {
        let mut events: Vec<(Duration, Event)> = self
            .steps
            .iter()
            .filter_map(|step| match step.change {
                Change::Rate(kbit) => Some((step.at, Event::Capacity(step.way, kbit))),
                Change::Loss(share) => Some((step.at, Event::Loss(step.way, share))),
                _ => None,
            })
            .chain(
                self.renumbers
                    .iter()
                    .map(|&(at, side)| (at, Event::Renumber(side))),
            )
            .chain(
                self.signaling
                    .iter()
                    .map(|&(at, side, up)| (at, Event::Signaling(side, up))),
            )
            .collect();
        events.sort_by_key(|e| e.0);
        events
    }

    pub fn parse(name: &str, text: &str) -> Result<Scenario, Failed> {
        let mut scenario = Scenario {
            name: name.to_owned(),
            text: text.to_owned(),
            duration: Duration::from_secs(30),
            queue_ms: 300,
            default_route: true,
            seed: 1,
            members: 2,
            ipv6_only: false,
            spares: Vec::new(),
            steps: Vec::new(),
            renumbers: Vec::new(),
            signaling: Vec::new(),
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let at_line = format!("{name}:{}", n + 1);
            let bad = || Failed::Scenario(format!("{at_line}: cannot read {line:?}"));
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["duration", d] => scenario.duration = parse_duration(d).ok_or_else(bad)?,
                ["queue", d] => {
                    scenario.queue_ms = parse_duration(d).ok_or_else(bad)?.as_millis() as u32
                }
                ["routes", "none"] => scenario.default_route = false,
                ["routes", "default"] => scenario.default_route = true,
                ["seed", n] => scenario.seed = n.parse().map_err(|_| bad())?,
                ["family", "ipv4"] => scenario.ipv6_only = false,
                ["family", "ipv6"] => scenario.ipv6_only = true,
                ["spare", side] => {
                    let side = parse_side(side, &["a", "b", "c"]).ok_or_else(bad)?;
                    scenario.spares.push(side);
                }
                ["members", "2"] => scenario.members = 2,
                ["members", "3"] => scenario.members = 3,
                ["at", at, "renumber", side] => {
                    let at = parse_duration(at).ok_or_else(bad)?;
                    let side = parse_side(side, &["a", "b"]).ok_or_else(bad)?;
                    scenario.renumbers.push((at, side));
                }
                ["at", at, "signaling", side, state @ ("down" | "up")] => {
                    let at = parse_duration(at).ok_or_else(bad)?;
                    let side = parse_side(side, &["a", "b"]).ok_or_else(bad)?;
                    scenario.signaling.push((at, side, *state == "up"));
                }
                ["at", at, way, change @ ..] => {
                    let at = parse_duration(at).ok_or_else(bad)?;
                    let change = parse_change(change).ok_or_else(bad)?;
                    let ways: &[Way] = match *way {
                        "both" => &Way::BOTH,
                        "a>b" => &[Way::AtoB],
                        "b>a" => &[Way::BtoA],
                        "c" => &[Way::ToC, Way::FromC],
                        ">c" => &[Way::ToC],
                        "c>" => &[Way::FromC],
                        _ => return Err(bad()),
                    };
                    let on_c = ways.iter().any(|w| matches!(w, Way::ToC | Way::FromC));
                    if on_c && !matches!(change, Change::Rate(_)) {
                        return Err(Failed::Scenario(format!(
                            "{at_line}: C's link has a capacity only"
                        )));
                    }
                    for &way in ways {
                        scenario.steps.push(Step { at, way, change });
                    }
                }
                _ => return Err(bad()),
            }
        }
        scenario.steps.sort_by_key(|s| s.at);
        scenario.renumbers.sort_by_key(|r| r.0);
        scenario.signaling.sort_by_key(|r| r.0);
        let on_c = |s: &Step| matches!(s.way, Way::ToC | Way::FromC);
        if scenario.members < 3
            && (scenario.steps.iter().any(on_c) || scenario.spares.contains(&"c"))
        {
            return Err(Failed::Scenario(format!("{name}: C needs `members 3`")));
        }
        if scenario.ipv6_only && scenario.impaired() {
            return Err(Failed::Scenario(format!(
                "{name}: the forwarder's impairments are IPv4 only"
            )));
        }
        Ok(scenario)
    }

    pub fn load(path: &std::path::Path) -> Result<Scenario, Failed> {
        let text = std::fs::read_to_string(path).map_err(Failed::io(path.display()))?;
        let name = path
            .file_stem()
            .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
        Scenario::parse(&name, &text)
    }

    /// The capacity changes one way: (when, kbit/s), in time order.
    pub fn rates(&self, way: Way) -> impl Iterator<Item = (Duration, u32)> + '_ {
        self.steps
            .iter()
            .filter(move |s| s.way == way)
            .filter_map(|s| match s.change {
                Change::Rate(kbit) => Some((s.at, kbit)),
                _ => None,
            })
    }

    /// The capacity one way at `t` (None before the first step: unlimited):
    /// the bottleneck's rate, or a policer's where that is less.
    pub fn capacity(&self, way: Way, t: Duration) -> Option<u32> {
        let rate = self
            .rates(way)
            .filter(|(at, _)| *at <= t)
            .last()
            .map(|r| r.1);
        match (rate, self.impairment(way, t).police) {
            (Some(rate), Some(police)) => Some(rate.min(police)),
            (rate, police) => rate.or(police),
        }
    }

    /// The narrowest capacity along `route` at `t` (None: unlimited).
    pub fn route_capacity(&self, route: &[Way], t: Duration) -> Option<u32> {
        route.iter().filter_map(|&w| self.capacity(w, t)).min()
    }

    /// What the forwarder does one way at `t`.
    pub fn impairment(&self, way: Way, t: Duration) -> Impairment {
        let mut now = Impairment {
            burst: 1.0,
            ..Impairment::default()
        };
        for step in self.steps.iter().filter(|s| s.way == way && s.at <= t) {
            match step.change {
                Change::Rate(_) => {}
                Change::Delay(d) => now.delay = d,
                Change::Jitter(j) => now.jitter = j,
                Change::Loss(p) => now.loss = p,
                Change::Burst(n) => now.burst = n,
                Change::Police(rate) => now.police = rate,
            }
        }
        now
    }

    /// Whether anything but capacity is modelled (then the forwarder runs).
    pub fn impaired(&self) -> bool {
        self.steps
            .iter()
            .any(|s| !matches!(s.change, Change::Rate(_)))
    }

    /// Whether the path is unusable one way at `t` (all packets lost).
    pub fn cut(&self, way: Way, t: Duration) -> bool {
        self.impairment(way, t).loss >= 1.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_read_as_written() {
        let s = Scenario::parse(
            "t",
            "duration 50s\nqueue 300ms\nat 0s both 2500kbit # start\nat 15s a>b 250kbit\n",
        )
        .unwrap();
        assert_eq!(s.duration, Duration::from_secs(50));
        assert_eq!(s.steps.len(), 3);
        assert_eq!(s.capacity(Way::AtoB, Duration::from_secs(20)), Some(250));
        assert_eq!(s.capacity(Way::BtoA, Duration::from_secs(20)), Some(2500));
        assert!(!s.impaired());
        assert!(Scenario::parse("t", "at 1s sideways 5kbit").is_err());
    }

    #[test]
    fn a_policer_is_the_capacity_while_it_is_on_and_runs_the_forwarder() {
        let s = Scenario::parse(
            "t",
            "at 0s both 2500kbit\nat 10s a>b police 500kbit\nat 30s a>b police off\n",
        )
        .unwrap();
        assert!(s.impaired());
        let at = |secs| Duration::from_secs(secs);
        assert_eq!(s.capacity(Way::AtoB, at(5)), Some(2500));
        assert_eq!(s.capacity(Way::AtoB, at(20)), Some(500));
        assert_eq!(s.capacity(Way::BtoA, at(20)), Some(2500));
        assert_eq!(s.capacity(Way::AtoB, at(31)), Some(2500));
        assert_eq!(s.impairment(Way::AtoB, at(20)).police, Some(500));
        assert!(Scenario::parse("t", "at 1s both police 0kbit").is_err());
        assert!(Scenario::parse("t", "at 1s both police fast").is_err());
    }

    #[test]
    fn the_lab_s_own_events_come_in_time_order() {
        let s = Scenario::parse(
            "drop",
            "at 15s signaling a up\nat 12s both loss 100%\nat 12s signaling a down\nat 0s a>b 900kbit\nat 5s renumber b\nat 3s a>b delay 20ms\n",
        )
        .unwrap();
        let t = Duration::from_secs;
        assert_eq!(
            s.events(),
            vec![
                (t(0), Event::Capacity(Way::AtoB, 900)),
                (t(5), Event::Renumber("b")),
                (t(12), Event::Loss(Way::AtoB, 1.0)),
                (t(12), Event::Loss(Way::BtoA, 1.0)),
                (t(12), Event::Signaling("a", false)),
                (t(15), Event::Signaling("a", true)),
            ]
        );
        assert!(Scenario::parse("t", "at 1s signaling c down").is_err());
        assert!(Scenario::parse("t", "at 1s signaling a sideways").is_err());
    }

    #[test]
    fn a_third_member_has_a_link_of_its_own() {
        let s = Scenario::parse(
            "m",
            "members 3\nat 0s both 2500kbit\nat 0s c 600kbit\nat 9s c> 300kbit\n",
        )
        .unwrap();
        assert_eq!(s.members, 3);
        let t = Duration::from_secs(10);
        assert_eq!(s.route_capacity(&Way::route("a", "b"), t), Some(2500));
        assert_eq!(s.route_capacity(&Way::route("a", "c"), t), Some(600));
        assert_eq!(s.route_capacity(&Way::route("c", "b"), t), Some(300));
        assert_eq!(Way::route("c", "a"), vec![Way::FromC, Way::BtoA]);
        assert!(
            Scenario::parse("m", "at 0s c 600kbit").is_err(),
            "needs members 3"
        );
        assert!(Scenario::parse("m", "members 3\nat 0s c loss 5%").is_err());
        assert!(Scenario::parse("m", "members 4").is_err());
    }

    #[test]
    fn an_ipv6_lab_has_capacity_only() {
        let s = Scenario::parse("v6", "family ipv6\nspare a\nat 0s both 2000kbit\n").unwrap();
        assert!(s.ipv6_only);
        assert_eq!(s.spares, vec!["a"]);
        assert!(Scenario::parse("v6", "family ipv6\nat 1s both loss 5%").is_err());
        assert!(Scenario::parse("v6", "spare c").is_err(), "no C in a pair");
    }

    #[test]
    fn impairments_accumulate_per_way() {
        let s = Scenario::parse(
            "t",
            "seed 9\nat 0s both delay 50ms\nat 0s both jitter 30ms\nat 10s a>b loss 5%\nat 10s a>b burst 5\nat 20s a>b loss 100%\n",
        )
        .unwrap();
        assert!(s.impaired());
        assert_eq!(s.seed, 9);
        let at = |way, s_: u64| s.impairment(way, Duration::from_secs(s_));
        assert_eq!(at(Way::AtoB, 5).delay, Duration::from_millis(50));
        assert_eq!(at(Way::AtoB, 5).loss, 0.0);
        assert!((at(Way::AtoB, 15).loss - 0.05).abs() < 1e-9);
        assert_eq!(at(Way::AtoB, 15).burst, 5.0);
        assert_eq!(at(Way::BtoA, 15).loss, 0.0);
        assert!(s.cut(Way::AtoB, Duration::from_secs(21)));
        assert_eq!(s.capacity(Way::AtoB, Duration::from_secs(21)), None);
        for bad in [
            "at 1s both loss 120%",
            "at 1s both burst 0.5",
            "at 1s both delay -3s",
        ] {
            assert!(Scenario::parse("t", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_shipped_scenario_reads() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/netlab");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "lab") {
                let s = Scenario::load(&path).unwrap();
                assert!(!s.steps.is_empty(), "{}", s.name);
                n += 1;
            }
        }
        assert!(n >= 10, "{n}");
    }
}
