//! Remote pictures to the window: raw I420 bytes over one
//! `tauri::ipc::Channel` per tile, never JSON, never queued.
//!
//! Each tile has one credit: a picture is sent only when the UI has said it
//! drew the previous one ([`FrameGate::drawn`]). Pictures arriving meanwhile
//! replace each other in a one-slot mailbox, so a UI that falls behind sees
//! the newest picture next and the older ones are counted as dropped; the
//! added latency is at most the one picture in flight.
//!
//! A message is a 16-byte header — width (u32 LE), height (u32 LE), the
//! wall-clock time the picture left the decoder (f64 LE, ms since the Unix
//! epoch) — then the Y, U and V planes, tightly packed.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use huddle_engine::video::I420Frame;
use serde::Serialize;
use tauri::ipc::{Channel, InvokeResponseBody};
use ts_rs::TS;

/// Bytes before the planes.
pub const HEADER_BYTES: usize = 16;

/// Delivery figures for one tile since it was opened.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, TS)]
pub struct TileCounters {
    /// Pictures handed to the window.
    pub sent: u64,
    /// Pictures replaced by a newer one before the window was ready.
    pub dropped: u64,
}

struct Tile {
    channel: Channel<InvokeResponseBody>,
    in_flight: bool,
    waiting: Option<(I420Frame, f64)>,
    counters: TileCounters,
}

impl std::fmt::Debug for Tile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tile")
            .field("in_flight", &self.in_flight)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// Tiles by the member id whose pictures they show (`self` is the local
/// preview).
#[derive(Debug, Default)]
pub struct FrameGate {
    tiles: Mutex<HashMap<String, Tile>>,
}

impl FrameGate {
    /// Shows `member`'s pictures on `channel` from now on (a new channel
    /// replaces the old one, whose picture in flight is forgotten).
    pub fn open(&self, member: String, channel: Channel<InvokeResponseBody>) {
        self.lock().insert(
            member,
            Tile {
                channel,
                in_flight: false,
                waiting: None,
                counters: TileCounters::default(),
            },
        );
    }

    /// Stops sending `member`'s pictures; the figures so far.
    pub fn close(&self, member: &str) -> Option<TileCounters> {
        self.lock().remove(member).map(|t| t.counters)
    }

    pub fn close_all(&self) {
        self.lock().clear();
    }

    /// A decoded picture from `member`: sent now if the tile is ready, else
    /// kept as the next one (replacing, and dropping, any kept before).
    pub fn offer(&self, member: &str, frame: I420Frame) {
        let now = unix_ms();
        let mut tiles = self.lock();
        let Some(tile) = tiles.get_mut(member) else {
            return;
        };
        if tile.in_flight {
            if tile.waiting.replace((frame, now)).is_some() {
                tile.counters.dropped += 1;
            }
            return;
        }
        tile.send(&frame, now);
    }

    /// The window drew `member`'s last picture: send the next one, if any.
    pub fn drawn(&self, member: &str) -> Option<TileCounters> {
        let mut tiles = self.lock();
        let tile = tiles.get_mut(member)?;
        tile.in_flight = false;
        if let Some((frame, at)) = tile.waiting.take() {
            tile.send(&frame, at);
        }
        Some(tile.counters)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tile>> {
        self.tiles.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Tile {
    fn send(&mut self, frame: &I420Frame, at: f64) {
        if self
            .channel
            .send(InvokeResponseBody::Raw(encode(frame, at)))
            .is_ok()
        {
            self.in_flight = true;
            self.counters.sent += 1;
        }
    }
}

/// One picture as the window receives it (see the module header).
pub fn encode(frame: &I420Frame, at_unix_ms: f64) -> Vec<u8> {
    let planes = frame.as_bytes();
    let mut out = Vec::with_capacity(HEADER_BYTES + planes.len());
    out.extend_from_slice(&(frame.width() as u32).to_le_bytes());
    out.extend_from_slice(&(frame.height() as u32).to_le_bytes());
    out.extend_from_slice(&at_unix_ms.to_le_bytes());
    out.extend_from_slice(planes);
    out
}

fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_then_planes() {
        let frame = I420Frame::black(4, 2);
        let bytes = encode(&frame, 1.5);
        assert_eq!(bytes.len(), HEADER_BYTES + 4 * 2 * 3 / 2);
        assert_eq!(&bytes[0..4], &4u32.to_le_bytes());
        assert_eq!(&bytes[4..8], &2u32.to_le_bytes());
        assert_eq!(&bytes[8..16], &1.5f64.to_le_bytes());
        assert_eq!(&bytes[HEADER_BYTES..], frame.as_bytes());
    }

    #[test]
    fn one_picture_in_flight_the_newest_next() {
        use std::sync::Arc;
        let got: Arc<Mutex<Vec<u32>>> = Arc::default();
        let sink = got.clone();
        let channel = Channel::new(move |body| {
            if let InvokeResponseBody::Raw(bytes) = body {
                let width = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(width);
            }
            Ok(())
        });
        let gate = FrameGate::default();
        gate.offer("a", I420Frame::black(2, 2));
        gate.open("a".into(), channel);
        for width in [4, 6, 8] {
            gate.offer("a", I420Frame::black(width, 2));
        }
        gate.offer("b", I420Frame::black(10, 2));
        let counters = gate.drawn("a").expect("tile a");
        assert_eq!(
            counters,
            TileCounters {
                sent: 2,
                dropped: 1
            }
        );
        assert_eq!(
            *got.lock().unwrap_or_else(PoisonError::into_inner),
            vec![4, 8]
        );
        // Nothing waits now: the next picture goes when this one is drawn.
        assert_eq!(
            gate.drawn("a"),
            Some(TileCounters {
                sent: 2,
                dropped: 1
            })
        );
        assert_eq!(
            gate.close("a"),
            Some(TileCounters {
                sent: 2,
                dropped: 1
            })
        );
        assert_eq!(gate.drawn("a"), None);
    }
}
