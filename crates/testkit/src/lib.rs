//! Test fixtures shared by Huddle's test suites, all real parts on loopback:
//! a `redis-server` process ([`Redis`]), `huddle-server` instances sharing
//! rooms through it that can be stopped or killed ([`Cluster`]), a
//! round-robin TCP load balancer in front of them ([`Balancer`]), and a
//! TURN server (coturn, [`Coturn`]).
//!
//! Fixtures panic on failure: they are for tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod balancer;
mod cluster;
mod coturn;
mod redis_server;

pub use balancer::Balancer;
pub use cluster::{Cluster, Instance};
pub use coturn::Coturn;
pub use redis_server::Redis;

/// A free TCP port on loopback (free when probed).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
