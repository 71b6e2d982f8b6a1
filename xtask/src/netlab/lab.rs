//! The lab's network: a router namespace and one per side
//! (`hnl<pid>-{r,a,b[,c]}`), a veth pair from the router to each side
//! addressed in IPv4 or only in IPv6 ([`Family`]), and a `tbf` bottleneck
//! on the router's egress toward each side (and, for C, on C's own egress:
//! its uplink). Only these namespaces are ever touched;
//! they are removed when the [`Lab`] is dropped.

use std::path::Path;
use std::process::Command;

use super::scenario::Way;
use crate::Failed;

pub const SUBNET_A: &str = "10.91.1";
pub const SUBNET_B: &str = "10.91.2";

/// The sides a lab may have, in order.
const SIDES: [&str; 3] = ["a", "b", "c"];

/// The addresses a lab's links have: IPv4 (`10.91.<n>.0/24`) or only IPv6
/// (`fd91:<n>::/64`), `n` being 1, 2, 3 for A, B, C.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

fn side_number(side: &str) -> usize {
    SIDES.iter().position(|s| *s == side).map_or(1, |i| i + 1)
}

/// Host `host` of `side`'s network (the router is 1, the side 2, its new
/// address after a renumbering 3), in network `base` (91: the lab's links;
/// 92 and 93: a side's spare interfaces).
fn host_in(family: Family, base: u8, side: &str, host: u8) -> String {
    let n = side_number(side);
    match family {
        Family::V4 => format!("10.{base}.{n}.{host}"),
        Family::V6 => format!("fd{base}:{n}::{host}"),
    }
}

/// …with its prefix length, as `ip addr` takes it.
fn with_prefix(family: Family, base: u8, side: &str, host: u8) -> String {
    let length = if family == Family::V4 { 24 } else { 64 };
    format!("{}/{length}", host_in(family, base, side, host))
}

/// `side`'s network.
fn network(family: Family, side: &str) -> String {
    match family {
        Family::V4 => format!("10.91.{}.0/24", side_number(side)),
        Family::V6 => format!("fd91:{}::/64", side_number(side)),
    }
}

/// The lab's namespaces; removed when dropped.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    /// `"a"`, `"b"` and perhaps `"c"`.
    sides: Vec<&'static str>,
    family: Family,
}

pub fn ip(args: &[&str]) -> Result<(), Failed> {
    run("ip", args)
}

pub fn run(program: &str, args: &[&str]) -> Result<(), Failed> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(Failed::io(program))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Failed::check(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl Lab {
    pub fn ns(&self, side: &str) -> String {
        format!("{}-{side}", self.prefix)
    }

    /// A lab with `members` sides (2: A and B; 3: and C) addressed in
    /// `family`.
    pub fn up(default_route: bool, members: usize, family: Family) -> Result<Lab, Failed> {
        let lab = Lab {
            prefix: format!("hnl{}", std::process::id()),
            sides: SIDES.iter().take(members.clamp(2, 3)).copied().collect(),
            family,
        };
        let r = lab.ns("r");
        for ns in std::iter::once(r.clone()).chain(lab.sides.iter().map(|s| lab.ns(s))) {
            ip(&["netns", "add", &ns])?;
            // No duplicate address detection for any interface's IPv6
            // addresses, link-local ones included: an address that turns
            // valid a second after the link came up is a network change to
            // a browser started meanwhile, which aborts the page's loads
            // with ERR_NETWORK_CHANGED (one CI run in ~60: its Chromium
            // peer never showed the join form).
            let (all, default) = (
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            );
            run(
                "ip",
                &["netns", "exec", &ns, "sysctl", "-q", "-w", all, default],
            )?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        for &side in &lab.sides {
            let ns = &lab.ns(side);
            let (outer, inner) = (format!("r{side}"), format!("v{side}"));
            ip(&[
                "-n", &r, "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns",
                ns,
            ])?;
            lab.add_address(&r, &outer, &with_prefix(family, 91, side, 1))?;
            ip(&["-n", &r, "link", "set", &outer, "up"])?;
            lab.add_address(ns, &inner, &with_prefix(family, 91, side, 2))?;
            ip(&["-n", ns, "link", "set", &inner, "up"])?;
            lab.route(side, default_route)?;
        }
        let forwarding = match family {
            Family::V4 => "net.ipv4.ip_forward=1",
            Family::V6 => "net.ipv6.conf.all.forwarding=1",
        };
        run(
            "ip",
            &["netns", "exec", &r, "sysctl", "-q", "-w", forwarding],
        )?;
        Ok(lab)
    }

    /// Where the router's server listens (`host:port`).
    pub fn server_addr(&self) -> String {
        match self.family {
            Family::V4 => format!("{}:8443", host_in(Family::V4, 91, "a", 1)),
            Family::V6 => format!("[{}]:8443", host_in(Family::V6, 91, "a", 1)),
        }
    }

    /// An address on `dev` in namespace `ns` (IPv6 at once: no duplicate
    /// address detection to wait for).
    fn add_address(&self, ns: &str, dev: &str, address: &str) -> Result<(), Failed> {
        let mut args = vec!["-n", ns, "addr", "add", address, "dev", dev];
        if self.family == Family::V6 {
            args.push("nodad");
        }
        ip(&args)
    }

    /// Gives `side` two more interfaces, as a laptop with a VPN and a
    /// docking station has: one up whose traffic goes nowhere (a tunnel to
    /// a dead end), one down, each with an address of its own.
    pub fn add_spares(&self, side: &str) -> Result<(), Failed> {
        let ns = self.ns(side);
        // Veth pairs with both ends in the side (this kernel has no
        // `dummy` links): what goes into one comes out of the other, where
        // nothing answers.
        for (dev, base, up) in [("dead0", 92, true), ("down0", 93, false)] {
            let end = format!("{dev}e");
            ip(&[
                "-n", &ns, "link", "add", dev, "type", "veth", "peer", "name", &end,
            ])?;
            self.add_address(&ns, dev, &with_prefix(self.family, base, side, 2))?;
            if up {
                ip(&["-n", &ns, "link", "set", dev, "up"])?;
                ip(&["-n", &ns, "link", "set", &end, "up"])?;
            }
        }
        Ok(())
    }

    /// `side`'s route out through the router: the default one, or (an
    /// offline LAN) only to the other sides' networks.
    fn route(&self, side: &str, default_route: bool) -> Result<(), Failed> {
        let ns = self.ns(side);
        let via = host_in(self.family, 91, side, 1);
        let family = if self.family == Family::V4 {
            "-4"
        } else {
            "-6"
        };
        if default_route {
            return ip(&[
                family, "-n", &ns, "route", "replace", "default", "via", &via,
            ]);
        }
        for other in self.sides.iter().filter(|s| **s != side) {
            let net = network(self.family, other);
            ip(&[family, "-n", &ns, "route", "replace", &net, "via", &via])?;
        }
        Ok(())
    }

    /// The namespace and device of `way`'s bottleneck. Traffic toward B
    /// leaves the router on `rb`; C's uplink is its own `vc` (a sender's
    /// queue, as on a home router or a phone).
    pub fn bottleneck(&self, way: Way) -> (String, &'static str) {
        match way {
            Way::AtoB => (self.ns("r"), "rb"),
            Way::BtoA => (self.ns("r"), "ra"),
            Way::ToC => (self.ns("r"), "rc"),
            Way::FromC => (self.ns("c"), "vc"),
        }
    }

    /// Sets the bottleneck one way: `tbf` at `kbit` with a queue of `queue_ms`.
    pub fn set_capacity(&self, way: Way, kbit: u32, queue_ms: u32) -> Result<(), Failed> {
        let (ns, dev) = self.bottleneck(way);
        let bytes_per_ms = (u64::from(kbit) * 1000 / 8 / 1000).max(1);
        let limit = (bytes_per_ms * u64::from(queue_ms)).max(3000);
        let burst = (bytes_per_ms * 10).max(3000); // 10 ms of traffic, at least two packets
        let (rate, burst, limit) = (format!("{kbit}kbit"), burst.to_string(), limit.to_string());
        let args = [
            "-n", &ns, "qdisc", "replace", "dev", dev, "root", "tbf", "rate", &rate, "burst",
            &burst, "limit", &limit,
        ];
        run("tc", &args)
    }

    /// Gives `side` a new address in its subnet (`.3` for `.2`, as a
    /// laptop that moved to another network gets) and takes the old one
    /// away: sockets bound to it are dead from now on.
    pub fn renumber(&self, side: &str, default_route: bool) -> Result<(), Failed> {
        let (ns, dev) = (self.ns(side), format!("v{side}"));
        if self.family == Family::V4 {
            // The new address first (so the subnet's route stays), promoted
            // when the old one, the primary, goes.
            let promote = format!("net.ipv4.conf.{dev}.promote_secondaries=1");
            run(
                "ip",
                &["netns", "exec", &ns, "sysctl", "-q", "-w", &promote],
            )?;
        }
        self.add_address(&ns, &dev, &with_prefix(self.family, 91, side, 3))?;
        let old = with_prefix(self.family, 91, side, 2);
        ip(&["-n", &ns, "addr", "del", &old, "dev", &dev])?;
        self.route(side, default_route)
    }

    /// `program` run in namespace `side`.
    /// Cuts (or restores) `side`'s path to the signaling server, both
    /// ways, and nothing else: a blackhole rule in the side's namespace
    /// for what it sends to the server, and one in the router's for what
    /// the server sends to it.
    pub fn cut_signaling(&self, side: &str, cut: bool) -> Result<(), Failed> {
        let server = host_in(self.family, 91, "a", 1);
        let action = if cut { "add" } else { "del" };
        let family = if self.family == Family::V4 {
            "-4"
        } else {
            "-6"
        };
        let (ns, router) = (self.ns(side), self.ns("r"));
        ip(&[
            family,
            "-n",
            &ns,
            "rule",
            action,
            "to",
            &server,
            "blackhole",
            "pref",
            "10",
        ])?;
        ip(&[
            family,
            "-n",
            &router,
            "rule",
            action,
            "from",
            &server,
            "to",
            &network(self.family, side),
            "blackhole",
            "pref",
            "10",
        ])
    }

    pub fn exec(&self, side: &str, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(side)]).arg(program);
        cmd
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for side in self.sides.iter().chain(&["r"]) {
            let _ = ip(&["netns", "del", &self.ns(side)]);
        }
    }
}
