//! `huddle-server` instances sharing rooms through one Redis, each in its
//! own thread and runtime so that it can be killed like a process: its
//! tasks vanish, its sockets close, its heartbeat stops.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use huddle_server::backplane::Backplane;
use huddle_server::metrics::Metrics;
use huddle_server::server::{run_with, Context};
use huddle_server::Config;
use tokio::sync::oneshot;

use crate::{Balancer, Redis};

/// One instance.
#[derive(Debug)]
pub struct Instance {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its counters.
    pub metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    kill: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Instance {
    /// Starts an instance on Redis `redis_url`.
    pub fn start(redis_url: &str, config: Config) -> Instance {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let (kill, killed) = oneshot::channel::<()>();
        let (ready, is_ready) = std::sync::mpsc::channel();
        let url = redis_url.to_owned();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let config = Arc::new(config);
                let metrics = Arc::new(Metrics::default());
                let registry = Backplane::connect(&url, config.clone(), metrics.clone())
                    .await
                    .unwrap();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                ready.send(metrics.clone()).unwrap();
                let ctx = Context::new(config, metrics, registry);
                tokio::select! {
                    _ = run_with(listener, ctx, async move { let _ = stopped.await; }) => {}
                    _ = killed => {}
                }
            });
            // Whatever still runs (connections, the backplane) is dropped
            // where it stands, as when a process dies.
            runtime.shutdown_background();
        });
        let metrics = is_ready.recv().expect("the instance started");
        Instance {
            addr,
            metrics,
            stop: Some(stop),
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    /// Its WebSocket URL.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Stops it as SIGTERM would (clients are closed with 1001).
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join();
    }

    /// Kills it as SIGKILL would: no goodbye to anyone.
    pub fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        self.join();
    }

    fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Redis, `n` instances and a balancer in front of them.
#[derive(Debug)]
pub struct Cluster {
    /// The shared Redis.
    pub redis: Redis,
    /// The instances.
    pub instances: Vec<Instance>,
    /// The balancer (round robin, in instance order).
    pub balancer: Balancer,
}

impl Cluster {
    /// Starts Redis and `n` instances with `config`.
    pub async fn start(n: usize, config: Config) -> Cluster {
        let redis = Redis::start().await;
        let url = redis.url();
        let instances: Vec<Instance> = (0..n)
            .map(|_| Instance::start(&url, config.clone()))
            .collect();
        let balancer = Balancer::start(instances.iter().map(|i| i.addr).collect()).await;
        Cluster {
            redis,
            instances,
            balancer,
        }
    }
}
