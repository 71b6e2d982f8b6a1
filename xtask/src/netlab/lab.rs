//! The lab's network: a router namespace and one per side
//! (`hnl<pid>-{r,a,b[,c]}`), a veth pair from the router to each side, and
//! a `tbf` bottleneck on the router's egress toward each side (and, for C,
//! on C's own egress: its uplink). Only these namespaces are ever touched;
//! they are removed when the [`Lab`] is dropped.

use std::path::Path;
use std::process::Command;

use super::scenario::Way;
use crate::Failed;

pub const SUBNET_A: &str = "10.91.1";
pub const SUBNET_B: &str = "10.91.2";
pub const SUBNET_C: &str = "10.91.3";

/// The sides a lab may have, with their subnets.
const SIDES: [(&str, &str); 3] = [("a", SUBNET_A), ("b", SUBNET_B), ("c", SUBNET_C)];

fn subnet(side: &str) -> &'static str {
    SIDES
        .iter()
        .find(|(s, _)| *s == side)
        .map_or(SUBNET_A, |(_, net)| net)
}

/// The lab's namespaces; removed when dropped.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    /// `"a"`, `"b"` and perhaps `"c"`.
    sides: Vec<&'static str>,
}

pub fn ip(args: &[&str]) -> Result<(), Failed> {
    run("ip", args)
}

pub fn run(program: &str, args: &[&str]) -> Result<(), Failed> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Lab {
    pub fn ns(&self, side: &str) -> String {
        format!("{}-{side}", self.prefix)
    }

    /// A lab with `members` sides (2: A and B; 3: and C).
    pub fn up(default_route: bool, members: usize) -> Result<Lab, Failed> {
        let lab = Lab {
            prefix: format!("hnl{}", std::process::id()),
            sides: SIDES
                .iter()
                .take(members.clamp(2, 3))
                .map(|s| s.0)
                .collect(),
        };
        let r = lab.ns("r");
        for ns in std::iter::once(r.clone()).chain(lab.sides.iter().map(|s| lab.ns(s))) {
            ip(&["netns", "add", &ns])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        for &side in &lab.sides {
            let (ns, subnet) = (lab.ns(side), subnet(side));
            let ns = &ns;
            let (outer, inner) = (format!("r{side}"), format!("v{side}"));
            ip(&[
                "-n", &r, "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns",
                ns,
            ])?;
            let router_addr = format!("{subnet}.1/24");
            ip(&["-n", &r, "addr", "add", &router_addr, "dev", &outer])?;
            ip(&["-n", &r, "link", "set", &outer, "up"])?;
            let side_addr = format!("{subnet}.2/24");
            ip(&["-n", ns, "addr", "add", &side_addr, "dev", &inner])?;
            ip(&["-n", ns, "link", "set", &inner, "up"])?;
            lab.route(side, default_route)?;
        }
        let sysctl = [
            "netns",
            "exec",
            &r,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
        ];
        run("ip", &sysctl)?;
        Ok(lab)
    }

    /// `side`'s route out through the router: the default one, or (an
    /// offline LAN) only to the other sides' networks.
    fn route(&self, side: &str, default_route: bool) -> Result<(), Failed> {
        let ns = self.ns(side);
        let via = format!("{}.1", subnet(side));
        if default_route {
            return ip(&["-n", &ns, "route", "replace", "default", "via", &via]);
        }
        for other in self.sides.iter().filter(|s| **s != side) {
            let net = format!("{}.0/24", subnet(other));
            ip(&["-n", &ns, "route", "replace", &net, "via", &via])?;
        }
        Ok(())
    }

    /// Sets the bottleneck one way: `tbf` at `kbit` with a queue of `queue_ms`.
    pub fn set_capacity(&self, way: Way, kbit: u32, queue_ms: u32) -> Result<(), Failed> {
        // Traffic toward B leaves the router on `rb`; C's uplink is its own
        // `vc` (a sender's queue, as on a home router or a phone).
        let (ns, dev) = match way {
            Way::AtoB => (self.ns("r"), "rb"),
            Way::BtoA => (self.ns("r"), "ra"),
            Way::ToC => (self.ns("r"), "rc"),
            Way::FromC => (self.ns("c"), "vc"),
        };
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
        let subnet = subnet(side);
        // The new address first (so the subnet's route stays), promoted
        // when the old one, the primary, goes.
        let promote = format!("net.ipv4.conf.{dev}.promote_secondaries=1");
        run(
            "ip",
            &["netns", "exec", &ns, "sysctl", "-q", "-w", &promote],
        )?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{subnet}.3/24"),
            "dev",
            &dev,
        ])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "del",
            &format!("{subnet}.2/24"),
            "dev",
            &dev,
        ])?;
        self.route(side, default_route)
    }

    /// `program` run in namespace `side`.
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
