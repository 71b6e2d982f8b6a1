//! `huddle-server`: Huddle's self-hostable signaling server, as a library
//! (the binary in `main.rs` and the desktop app's "Host a room" both run it).
//!
//! Shaped like tokio's mini-redis: [`server`] accepts connections and hands
//! each to a [`handler::Handler`], which speaks protocol v1 over a
//! [`connection::Connection`] and keeps room state behind the
//! [`registry::Registry`] seam ([`rooms::Rooms`] in memory by default).

pub mod backplane;
pub mod config;
pub mod connection;
pub mod delivery;
pub mod fragments;
pub mod guesses;
pub mod handler;
pub mod http;
pub mod ids;
pub mod listing;
pub mod metrics;
pub mod outbox;
pub mod ratelimit;
pub mod registry;
pub mod rooms;
pub mod secret;
pub mod server;
pub mod source;
mod sync;
pub mod tcp;
pub mod tls;
pub mod turn;
pub mod ui;

pub use config::{Args, Config};
pub use server::run;
