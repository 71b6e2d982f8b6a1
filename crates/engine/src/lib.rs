//! `huddle-engine`: Huddle's native client, with no UI dependency. The
//! desktop app wraps it; `huddle-peer` (next) runs it headless.
//!
//! Today: the signaling client ([`signaling`]), which joins a room over
//! protocol v1 and keeps the membership through dropped sockets with
//! `resume`. The WebRTC mesh, capture and codecs build on it.

pub mod audio;
pub mod backoff;
pub mod call;
pub mod congestion;
pub mod feedback;
pub mod peer;
pub mod pipeline;
pub mod room;
pub mod signaling;
pub mod stats;
pub mod video;

pub use room::{MeshAction, Room};
pub use signaling::{Event, JoinParams, Signaling, SignalingError};
