//! Wire types of the Huddle signaling protocol, version 1.
//!
//! This crate is the only place that defines what travels over the signaling
//! WebSocket. The server, the native engine and (through the generated
//! TypeScript in `src-ui/src/protocol/`) the UI all import these types, so the
//! three can never disagree about a field name.
//!
//! - [`client`]: messages a client sends ([`ClientMessage`]).
//! - [`server`]: messages the server sends ([`ServerMessage`]).
//! - [`model`]: the nouns both sides share (peers, media state, rooms, ICE servers).
//! - [`signal`]: the WebRTC payload relayed between peers.
//! - [`limits`]: every bound of the protocol, in one place, with the checks.
//! - [`codec`]: text frame → message and message → text frame. Nothing else
//!   in the project parses or prints protocol JSON.
//!
//! The human-readable contract is `docs/protocol.md`; its JSON examples are
//! checked against these types by this crate's tests.

pub mod client;
pub mod codec;
pub mod error;
pub mod limits;
pub mod model;
pub mod server;
pub mod signal;

pub use client::ClientMessage;
pub use codec::{
    decode_client, decode_server, encode_client, encode_server, ClientFrame, DecodeError,
};
pub use error::ErrorCode;
pub use model::{ClientKind, IceServer, LeaveReason, Media, Peer, PeerId};
pub use server::ServerMessage;
pub use signal::SignalData;

/// The protocol version this crate speaks; `join.v` must equal it.
pub const PROTOCOL_VERSION: u32 = 1;
