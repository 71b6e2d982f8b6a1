//! The lab's network: three namespaces (`hnl<pid>-{a,b,r}`), a veth pair
//! from the router to each side, and a `tbf` bottleneck on the router's
//! egress toward each side. Only these namespaces are ever touched; they
//! are removed when the [`Lab`] is dropped.

use std::path::Path;
use std::process::Command;

use super::scenario::Way;
use crate::Failed;

pub const SUBNET_A: &str = "10.91.1";
pub const SUBNET_B: &str = "10.91.2";

/// The lab's namespaces; removed when dropped.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
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

    pub fn up(default_route: bool) -> Result<Lab, Failed> {
        let lab = Lab {
            prefix: format!("hnl{}", std::process::id()),
        };
        let (r, a, b) = (lab.ns("r"), lab.ns("a"), lab.ns("b"));
        for ns in [&r, &a, &b] {
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        for (side, ns, subnet) in [("a", &a, SUBNET_A), ("b", &b, SUBNET_B)] {
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
    /// offline LAN) only to the other side's network.
    fn route(&self, side: &str, default_route: bool) -> Result<(), Failed> {
        let ns = self.ns(side);
        let (subnet, other) = if side == "a" {
            (SUBNET_A, SUBNET_B)
        } else {
            (SUBNET_B, SUBNET_A)
        };
        let via = format!("{subnet}.1");
        let net = format!("{other}.0/24");
        let to = if default_route { "default" } else { &net };
        ip(&["-n", &ns, "route", "replace", to, "via", &via])
    }

    /// Sets the bottleneck one way: `tbf` at `kbit` with a queue of `queue_ms`.
    pub fn set_capacity(&self, way: Way, kbit: u32, queue_ms: u32) -> Result<(), Failed> {
        // Traffic toward B leaves the router on `rb`.
        let dev = if way == Way::AtoB { "rb" } else { "ra" };
        let bytes_per_ms = (u64::from(kbit) * 1000 / 8 / 1000).max(1);
        let limit = (bytes_per_ms * u64::from(queue_ms)).max(3000);
        let burst = (bytes_per_ms * 10).max(3000); // 10 ms of traffic, at least two packets
        let r = self.ns("r");
        let (rate, burst, limit) = (format!("{kbit}kbit"), burst.to_string(), limit.to_string());
        let args = [
            "-n", &r, "qdisc", "replace", "dev", dev, "root", "tbf", "rate", &rate, "burst",
            &burst, "limit", &limit,
        ];
        run("tc", &args)
    }

    /// Gives `side` a new address in its subnet (`.3` for `.2`, as a
    /// laptop that moved to another network gets) and takes the old one
    /// away: sockets bound to it are dead from now on.
    pub fn renumber(&self, side: &str, default_route: bool) -> Result<(), Failed> {
        let (ns, dev) = (self.ns(side), format!("v{side}"));
        let subnet = if side == "a" { SUBNET_A } else { SUBNET_B };
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
        for side in ["a", "b", "r"] {
            let _ = ip(&["netns", "del", &self.ns(side)]);
        }
    }
}
