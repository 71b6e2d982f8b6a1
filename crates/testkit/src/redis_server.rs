//! A `redis-server` (Debian package `redis-server`) on a loopback port,
//! without persistence, killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Redis.
#[derive(Debug)]
pub struct Redis {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Redis {
    /// Starts Redis on a free port and waits until it answers.
    ///
    /// A free port is only free when it was looked at: a test running beside
    /// this one may take it first. Redis then cannot listen and exits, and the
    /// other test's Redis would answer in its place — two tests sharing rooms.
    /// So the Redis that answers must be this child, and a lost port is
    /// replaced by another.
    pub async fn start() -> Redis {
        let mut redis = Redis {
            child: None,
            port: crate::free_port(),
        };
        for _ in 0..PORT_ATTEMPTS {
            if redis.spawn().await {
                return redis;
            }
            redis.port = crate::free_port();
        }
        panic!("redis-server found no free port in {PORT_ATTEMPTS} attempts");
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills it (SIGKILL): every connection to it breaks, its data is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again, empty, on the same port.
    pub async fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn().await,
            "redis-server could not listen on its port {} again",
            self.port
        );
    }

    /// Its process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Spawns Redis on `self.port` and waits until it answers: true once
    /// this child answers, false when it exited (its port was taken).
    async fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server on PATH (Debian package redis-server)");
        let pid = child.id();
        let client = redis::Client::open(self.url()).unwrap();
        let child = self.child.insert(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait().ok().flatten().is_some() {
                self.child = None;
                return false;
            }
            if answering_pid(&client).await == Some(pid) {
                return true;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// How many ports [`Redis::start`] tries.
const PORT_ATTEMPTS: usize = 5;

/// The process id of the Redis answering at `client`'s address, if one does.
async fn answering_pid(client: &redis::Client) -> Option<u32> {
    let mut con = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut con)
        .await
        .ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_port_another_redis_holds_is_not_taken_for_ours() {
        let theirs = Redis::start().await;
        let mut ours = Redis {
            child: None,
            port: theirs.port,
        };
        assert!(
            !ours.spawn().await,
            "the Redis that answered was the other one"
        );
        assert_eq!(ours.pid(), None);
    }
}
