//! `huddle-engine`: Huddle's native client, with no UI dependency. The
//! desktop app wraps it; `huddle-peer` runs it headless.
//!
//! [`call::Call`] is the entry point: it joins a room over protocol v1
//! ([`signaling`], with reconnect and `resume`), keeps a WebRTC link
//! ([`peer`]) to every member of the room's call, and runs the media
//! ([`pipeline`]): video and audio from a [`video::VideoSource`] and an
//! [`audio::AudioSource`] encoded once for everyone (video once per group
//! of links alike: a weak member does not lower everyone's), the members' pictures
//! decoded for the application and their audio mixed into an
//! [`audio::AudioSink`]. Devices — camera, microphone, speaker — are in
//! [`video::camera`] and [`audio::device`].

pub mod aimd;
pub mod audio;
pub mod backoff;
pub mod call;
pub mod congestion;
pub mod coverage;
pub mod estimator;
pub mod feedback;
pub mod heard;
pub mod interarrival;
pub mod lobby;
pub mod network;
pub mod overuse;
pub mod peer;
pub mod pipeline;
pub mod playout;
pub mod probe;
pub mod quality;
pub mod reorder;
pub mod repair;
pub mod resend;
pub mod resent_share;
pub mod room;
pub mod signaling;
pub mod standing_queue;
pub mod stats;
pub mod sync;
pub mod tap;
pub mod tls;
pub mod transit;
pub mod trendline;
pub mod video;

pub use room::{MeshAction, Room};
pub use signaling::{Event, JoinParams, Signaling, SignalingError};
