//! Counters and gauges for `/metrics`, in Prometheus text format.
//!
//! Plain atomics indexed by enum position: recording is one relaxed add on
//! the hot path, and rendering walks fixed arrays.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use huddle_protocol::{ClientMessage, ErrorCode, ServerMessage};

/// What a frame that is no client message counts as, after
/// [`ClientMessage::TYPES`].
pub const INVALID: &str = "invalid";

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Open WebSocket connections.
    pub connections: AtomicI64,
    /// WebSocket connections accepted since start.
    pub connections_total: AtomicU64,
    /// Connections refused (limits, origin, timeouts) since start.
    pub connections_refused: AtomicU64,
    /// Rooms that exist.
    pub rooms: AtomicI64,
    /// Members of all rooms (including those in their resume grace period).
    pub members: AtomicI64,
    /// Rooms with a running call.
    pub calls: AtomicI64,
    /// Successful resumes since start.
    pub resumes: AtomicU64,
    /// Frames written to a connection that ended before the client's TCP
    /// acknowledged them, queued again for the member's resume.
    pub frames_requeued: AtomicU64,
    /// Messages received by client type.
    pub received: [AtomicU64; ClientMessage::TYPES.len() + 1],
    /// Messages delivered to members' outboxes by server type.
    pub sent: [AtomicU64; ServerMessage::TYPES.len()],
    /// Errors answered, by code.
    pub errors: [AtomicU64; ErrorCode::ALL.len()],
    /// Runs with a Redis backplane (the `huddle_backplane_*` series are shown).
    pub backplane: AtomicBool,
    /// 1 while Redis is reachable and this instance registered.
    pub backplane_up: AtomicI64,
    /// Members connected here whose room another instance holds.
    pub backplane_links: AtomicI64,
    /// Envelopes published to other instances.
    pub backplane_published: AtomicU64,
    /// Envelopes received from other instances.
    pub backplane_received: AtomicU64,
    /// Rooms taken over from dead instances.
    pub backplane_takeovers: AtomicU64,
    /// Registrations lost (Redis errors, closed connections, expired heartbeat).
    pub backplane_errors: AtomicU64,
    /// Registrations made again after a loss.
    pub backplane_reconnects: AtomicU64,
}

impl Metrics {
    /// Counts a received message of the given client type.
    pub fn received(&self, kind: &str) {
        let i = ClientMessage::TYPES
            .iter()
            .position(|t| *t == kind)
            .unwrap_or(ClientMessage::TYPES.len());
        self.received[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `n` messages of the given server type handed to recipients.
    pub fn sent(&self, kind: &str, n: u64) {
        if let Some(i) = ServerMessage::TYPES.iter().position(|t| *t == kind) {
            self.sent[i].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counts an error answered.
    pub fn error(&self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds `delta` to a gauge.
    pub fn add(gauge: &AtomicI64, delta: i64) {
        gauge.fetch_add(delta, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let gauge = |out: &mut String, name: &str, help: &str, v: i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        let load = |a: &AtomicI64| a.load(Ordering::Relaxed);
        gauge(
            &mut out,
            "huddle_connections",
            "Open WebSocket connections.",
            load(&self.connections),
        );
        counter(
            &mut out,
            "huddle_connections_total",
            "WebSocket connections accepted.",
            self.connections_total.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "huddle_connections_refused_total",
            "Connections refused by limits, origin checks or handshake timeouts.",
            self.connections_refused.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "huddle_rooms",
            "Rooms that exist.",
            load(&self.rooms),
        );
        gauge(
            &mut out,
            "huddle_members",
            "Room members, including those within their resume grace.",
            load(&self.members),
        );
        gauge(
            &mut out,
            "huddle_calls",
            "Rooms with a running call.",
            load(&self.calls),
        );
        counter(
            &mut out,
            "huddle_resumes_total",
            "Memberships taken back after a drop.",
            self.resumes.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "huddle_frames_requeued_total",
            "Frames a dropped connection never had acknowledged, queued again for its resume.",
            self.frames_requeued.load(Ordering::Relaxed),
        );
        let family = |out: &mut String,
                      name: &str,
                      help: &str,
                      label: &str,
                      names: &[&str],
                      values: &[AtomicU64]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (n, v) in names.iter().zip(values) {
                let _ = writeln!(
                    out,
                    "{name}{{{label}=\"{n}\"}} {}",
                    v.load(Ordering::Relaxed)
                );
            }
        };
        family(
            &mut out,
            "huddle_messages_received_total",
            "Client messages received, by type.",
            "type",
            &[&ClientMessage::TYPES[..], &[INVALID]].concat(),
            &self.received,
        );
        family(
            &mut out,
            "huddle_messages_sent_total",
            "Messages delivered to members, by type.",
            "type",
            &ServerMessage::TYPES,
            &self.sent,
        );
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        family(
            &mut out,
            "huddle_errors_total",
            "Errors answered, by code.",
            "code",
            &codes,
            &self.errors,
        );
        if self.backplane.load(Ordering::Relaxed) {
            self.render_backplane(&mut out);
        }
        out
    }

    fn render_backplane(&self, out: &mut String) {
        let gauges = [
            (
                "huddle_backplane_up",
                "1 while Redis is reachable and this instance is registered.",
                &self.backplane_up,
            ),
            (
                "huddle_backplane_linked_members",
                "Members connected here whose room another instance holds.",
                &self.backplane_links,
            ),
        ];
        for (name, help, v) in gauges {
            let v = v.load(Ordering::Relaxed);
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        let counters = [
            (
                "huddle_backplane_published_total",
                "Messages published to other instances.",
                &self.backplane_published,
            ),
            (
                "huddle_backplane_received_total",
                "Messages received from other instances.",
                &self.backplane_received,
            ),
            (
                "huddle_backplane_takeovers_total",
                "Rooms taken over from instances that died.",
                &self.backplane_takeovers,
            ),
            (
                "huddle_backplane_errors_total",
                "Backplane registrations lost (Redis error or expired heartbeat).",
                &self.backplane_errors,
            ),
            (
                "huddle_backplane_reconnects_total",
                "Registrations made again after a loss.",
                &self.backplane_reconnects,
            ),
        ];
        for (name, help, v) in counters {
            let v = v.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
    }
}
