//! The servers under test: started as child processes on loopback and
//! measured from the outside through `/proc`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::BenchError;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Huddle,
    PeerJs,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Huddle => "huddle-server",
            Kind::PeerJs => "peerjs-server",
        }
    }
}

/// Where the two servers are.
#[derive(Debug, Clone)]
pub struct Programs {
    /// The `huddle-server` binary (a release build).
    pub huddle: PathBuf,
    /// The directory holding `node_modules/peer`.
    pub peerjs: PathBuf,
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    pub kind: Kind,
    pub addr: SocketAddr,
    pid: u32,
    child: Child,
}

impl Server {
    /// Starts a fresh server and waits until it accepts connections.
    pub async fn start(kind: Kind, programs: &Programs) -> Result<Server, BenchError> {
        let port = free_port()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut command = match kind {
            Kind::Huddle => {
                let mut c = Command::new(&programs.huddle);
                c.arg("--listen")
                    .arg(addr.to_string())
                    .args(["--max-connections", "20000"])
                    .args(["--max-connections-per-ip", "20000"])
                    .args(["--max-rooms", "20000"])
                    // The closed-loop throughput run sends far above the
                    // per-connection default of 50 messages a second.
                    .args(["--msg-rate", "100000"])
                    .args(["--log-level", "warn"]);
                c
            }
            Kind::PeerJs => {
                let mut c = Command::new("node");
                c.arg(programs.peerjs.join("node_modules/peer/dist/bin/peerjs.js"))
                    .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                    .args(["--concurrent_limit", "20000"]);
                c
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::Start(kind.label(), e.to_string()))?;
        let pid = child
            .id()
            .ok_or_else(|| BenchError::Start(kind.label(), "exited at once".into()))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).await.is_err() {
            if Instant::now() > deadline {
                return Err(BenchError::Start(kind.label(), "never listened".into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Server {
            kind,
            addr,
            pid,
            child,
        })
    }

    /// Resident memory in bytes.
    pub fn rss(&self) -> Result<u64, BenchError> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .ok_or(BenchError::Proc("VmRSS"))
    }

    /// User + system CPU time used so far.
    pub fn cpu(&self) -> Result<Duration, BenchError> {
        cpu_of(&self.pid.to_string())
    }

    pub async fn stop(mut self) {
        // The server is killed: its shutdown behaviour is not what is measured.
        let _ = self.child.kill().await;
    }
}

/// CPU time of this process (the load client).
pub fn own_cpu() -> Result<Duration, BenchError> {
    cpu_of("self")
}

fn cpu_of(pid: &str) -> Result<Duration, BenchError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or(BenchError::Proc("stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64, BenchError> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or(BenchError::Proc("stat"))
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_secs_f64(total as f64 / clock_ticks() as f64))
}

fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

fn free_port() -> Result<u16, BenchError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}
