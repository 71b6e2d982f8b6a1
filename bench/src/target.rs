//! The servers under test: started as child processes on loopback and
//! measured from the outside through `/proc`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
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

/// A running server: one process, or a cluster of `huddle-server`
/// instances sharing rooms through a Redis of its own.
#[derive(Debug)]
pub struct Server {
    pub kind: Kind,
    /// Where clients connect; client `i` goes to `addrs[i % len]`.
    addrs: Vec<SocketAddr>,
    /// The server processes (the instances), measured together.
    processes: Vec<Process>,
    /// A cluster's Redis, measured on its own.
    redis: Option<Process>,
}

/// A child process and its id.
#[derive(Debug)]
struct Process {
    pid: u32,
    child: Child,
}

impl Process {
    fn spawn(label: &'static str, command: &mut Command) -> Result<Process, BenchError> {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::Start(label, e.to_string()))?;
        let pid = child
            .id()
            .ok_or_else(|| BenchError::Start(label, "exited at once".into()))?;
        Ok(Process { pid, child })
    }
}

/// A `huddle-server` on `addr`, with the limits lifted for the load.
fn huddle_command(program: &Path, addr: SocketAddr) -> Command {
    let mut c = Command::new(program);
    c.arg("--listen")
        .arg(addr.to_string())
        .args(["--max-connections", "20000"])
        .args(["--max-connections-per-ip", "20000"])
        .args(["--max-rooms", "20000"])
        .args(["--max-rooms-per-ip", "20000"])
        // The closed-loop throughput run sends far above the
        // per-connection default of 50 messages a second.
        .args(["--msg-rate", "100000"])
        .args(["--log-level", "warn"]);
    c
}

/// Waits until `addr` accepts connections.
async fn listening(label: &'static str, addr: SocketAddr) -> Result<(), BenchError> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            return Err(BenchError::Start(label, "never listened".into()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

impl Server {
    /// Starts a fresh server and waits until it accepts connections.
    pub async fn start(kind: Kind, programs: &Programs) -> Result<Server, BenchError> {
        let addr = local(free_port()?);
        let mut command = match kind {
            Kind::Huddle => huddle_command(&programs.huddle, addr),
            Kind::PeerJs => {
                let mut c = Command::new("node");
                c.arg(programs.peerjs.join("node_modules/peer/dist/bin/peerjs.js"))
                    .args(["--host", "127.0.0.1", "--port", &addr.port().to_string()])
                    .args(["--concurrent_limit", "20000"]);
                c
            }
        };
        let process = Process::spawn(kind.label(), &mut command)?;
        listening(kind.label(), addr).await?;
        Ok(Server {
            kind,
            addrs: vec![addr],
            processes: vec![process],
            redis: None,
        })
    }

    /// Starts a fresh `redis-server` (no persistence) and `instances`
    /// `huddle-server`s sharing it (`--redis`).
    pub async fn cluster(programs: &Programs, instances: usize) -> Result<Server, BenchError> {
        let redis_addr = local(free_port()?);
        let redis = Process::spawn(
            "redis-server",
            Command::new("redis-server")
                .args(["--port", &redis_addr.port().to_string()])
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]),
        )?;
        listening("redis-server", redis_addr).await?;
        let url = format!("redis://{redis_addr}/");
        let mut addrs = Vec::new();
        let mut processes = Vec::new();
        for _ in 0..instances {
            let addr = local(free_port()?);
            let mut command = huddle_command(&programs.huddle, addr);
            command.args(["--redis", &url]);
            processes.push(Process::spawn(Kind::Huddle.label(), &mut command)?);
            addrs.push(addr);
        }
        for addr in &addrs {
            listening(Kind::Huddle.label(), *addr).await?;
        }
        Ok(Server {
            kind: Kind::Huddle,
            addrs,
            processes,
            redis: Some(redis),
        })
    }

    /// Where client number `i` connects: the instances in turn.
    pub fn addr_for(&self, i: usize) -> SocketAddr {
        self.addrs[i % self.addrs.len()]
    }

    /// Resident memory in bytes (of all the server's processes).
    pub fn rss(&self) -> Result<u64, BenchError> {
        let mut total = 0;
        for process in &self.processes {
            let status = std::fs::read_to_string(format!("/proc/{}/status", process.pid))?;
            total += status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kb| kb * 1024)
                .ok_or(BenchError::Proc("VmRSS"))?;
        }
        Ok(total)
    }

    /// User + system CPU time used so far by the server's processes.
    pub fn cpu(&self) -> Result<Duration, BenchError> {
        let mut total = Duration::ZERO;
        for process in &self.processes {
            total += cpu_of(&process.pid.to_string())?;
        }
        Ok(total)
    }

    /// CPU time used so far by a cluster's Redis (zero without one).
    pub fn redis_cpu(&self) -> Result<Duration, BenchError> {
        match &self.redis {
            Some(redis) => cpu_of(&redis.pid.to_string()),
            None => Ok(Duration::ZERO),
        }
    }

    pub async fn stop(self) {
        // The server is killed: its shutdown behaviour is not what is measured.
        for mut process in self.processes.into_iter().chain(self.redis) {
            let _ = process.child.kill().await;
        }
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
