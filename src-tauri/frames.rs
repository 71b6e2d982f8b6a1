//! Pictures to the window: raw I420 bytes, never JSON, never queued.
//!
//! Each tile (a call member, or `self` for the self view) has a one-picture
//! mailbox, under a *view* name: the member's id for the main window's tile,
//! `pip` for the picture-in-picture window, which may show the same member —
//! every view of a member gets each of its pictures. The window pulls: it asks for the next picture
//! ([`FrameGate::next`], the `next_frame` command, answered with raw bytes)
//! when it has drawn the last one. Pictures that arrive meanwhile replace
//! each other, so a window that falls behind gets the newest picture next
//! and the older ones are counted as dropped; the added latency is at most
//! the one picture being drawn.
//!
//! Pulling measured faster than pushing through a `tauri::ipc::Channel`
//! with a "drawn" acknowledgement (21 against 17 pictures a second of 720p
//! on this project's 2-core test machine, `cargo xtask bench-desktop`): a
//! large channel message costs the webview an evaluated script and then a
//! fetch, and the acknowledgement a third crossing; a pull is one request
//! and its answer.
//!
//! A picture is a 24-byte header — width (u32 LE), height (u32 LE), the
//! wall-clock time it left the decoder (f64 LE, ms since the Unix epoch),
//! the tile's pictures sent and dropped so far (u32 LE each) — then the Y,
//! U and V planes, tightly packed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use huddle_engine::sync::lock;
use huddle_engine::video::I420Frame;
use tokio::sync::Notify;

/// Bytes before the planes.
pub const HEADER_BYTES: usize = 24;

/// Delivery figures for one tile since it was opened.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TileCounters {
    /// Pictures handed to the window.
    pub sent: u32,
    /// Pictures replaced by a newer one before the window asked.
    pub dropped: u32,
}

#[derive(Debug, Default)]
struct Tile {
    /// Whose pictures the view shows.
    member: String,
    waiting: Option<(I420Frame, f64)>,
    /// Wakes a pull waiting for this tile's next picture.
    fresh: Arc<Notify>,
    counters: TileCounters,
}

impl Tile {
    fn put(&mut self, frame: I420Frame, at: f64) {
        if self.waiting.replace((frame, at)).is_some() {
            self.counters.dropped += 1;
        }
        self.fresh.notify_one();
    }
}

/// Tiles by view name (see the module header).
#[derive(Debug, Default)]
pub struct FrameGate {
    tiles: Mutex<HashMap<String, Tile>>,
}

impl FrameGate {
    /// Keeps `member`'s pictures for the window from now on (reopening
    /// starts afresh).
    pub fn open(&self, member: String) {
        self.open_view(member.clone(), member);
    }

    /// Keeps `member`'s pictures under the view name `view` from now on
    /// (reopening, perhaps for another member, starts afresh).
    pub fn open_view(&self, view: String, member: String) {
        let tile = Tile {
            member,
            ..Tile::default()
        };
        if let Some(old) = self.lock().insert(view, tile) {
            // A pull waiting on the replaced tile ends now.
            old.fresh.notify_one();
        }
    }

    /// Whether some open view shows `member`'s pictures.
    pub fn shows(&self, member: &str) -> bool {
        self.lock().values().any(|t| t.member == member)
    }

    /// Closes the view `view`; the figures so far.
    pub fn close(&self, view: &str) -> Option<TileCounters> {
        let tile = self.lock().remove(view)?;
        // A pull waiting for this tile ends now.
        tile.fresh.notify_one();
        Some(tile.counters)
    }

    pub fn close_all(&self) {
        for (_, tile) in self.lock().drain() {
            tile.fresh.notify_one();
        }
    }

    /// A picture for every view of `member`: kept as the next one
    /// (replacing, and dropping, any kept before). Ignored when no view is open.
    pub fn offer(&self, member: &str, frame: I420Frame) {
        let now = unix_ms();
        let mut tiles = self.lock();
        let mut views = tiles.values_mut().filter(|t| t.member == member);
        let Some(first) = views.next() else {
            return;
        };
        // A second view of one member (picture-in-picture) costs a copy.
        for tile in views {
            tile.put(frame.clone(), now);
        }
        first.put(frame, now);
    }

    /// The newest picture of view `view` not yet taken, waiting up to
    /// `wait` for one; `None` when none came (or the view is not open).
    pub async fn next(&self, view: &str, wait: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let fresh = {
                let mut tiles = self.lock();
                let tile = tiles.get_mut(view)?;
                if let Some((frame, at)) = tile.waiting.take() {
                    tile.counters.sent += 1;
                    return Some(encode(&frame, at, tile.counters));
                }
                tile.fresh.clone()
            };
            tokio::time::timeout_at(deadline, fresh.notified())
                .await
                .ok()?;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tile>> {
        lock(&self.tiles)
    }
}

/// One picture as the window receives it (see the module header).
pub fn encode(frame: &I420Frame, at_unix_ms: f64, counters: TileCounters) -> Vec<u8> {
    let planes = frame.as_bytes();
    let mut out = Vec::with_capacity(HEADER_BYTES + planes.len());
    out.extend_from_slice(&(frame.width() as u32).to_le_bytes());
    out.extend_from_slice(&(frame.height() as u32).to_le_bytes());
    out.extend_from_slice(&at_unix_ms.to_le_bytes());
    out.extend_from_slice(&counters.sent.to_le_bytes());
    out.extend_from_slice(&counters.dropped.to_le_bytes());
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

    fn width_of(bytes: &[u8]) -> u32 {
        u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }

    #[test]
    fn header_then_planes() {
        let frame = I420Frame::black(4, 2);
        let bytes = encode(
            &frame,
            1.5,
            TileCounters {
                sent: 7,
                dropped: 3,
            },
        );
        assert_eq!(bytes.len(), HEADER_BYTES + 4 * 2 * 3 / 2);
        assert_eq!(width_of(&bytes), 4);
        assert_eq!(&bytes[4..8], &2u32.to_le_bytes());
        assert_eq!(&bytes[8..16], &1.5f64.to_le_bytes());
        assert_eq!(&bytes[16..20], &7u32.to_le_bytes());
        assert_eq!(&bytes[20..24], &3u32.to_le_bytes());
        assert_eq!(&bytes[HEADER_BYTES..], frame.as_bytes());
    }

    #[tokio::test]
    async fn every_view_of_a_member_gets_each_picture() {
        let gate = FrameGate::default();
        let wait = Duration::from_millis(50);
        gate.open("p_1".into());
        gate.open_view("pip".into(), "p_1".into());
        assert!(gate.shows("p_1"));
        gate.offer("p_1", I420Frame::black(4, 2));
        gate.offer("p_2", I420Frame::black(6, 2));
        assert_eq!(
            gate.next("p_1", wait).await.as_deref().map(width_of),
            Some(4)
        );
        assert_eq!(
            gate.next("pip", wait).await.as_deref().map(width_of),
            Some(4)
        );
        // The view follows another member from now on.
        gate.open_view("pip".into(), "p_2".into());
        gate.offer("p_2", I420Frame::black(8, 2));
        assert_eq!(
            gate.next("pip", wait).await.as_deref().map(width_of),
            Some(8)
        );
        assert_eq!(gate.next("p_1", wait).await, None);
        gate.close("pip");
        assert!(!gate.shows("p_2"));
    }

    #[tokio::test]
    async fn the_newest_picture_next_older_ones_dropped() {
        let gate = FrameGate::default();
        gate.offer("a", I420Frame::black(2, 2));
        let wait = Duration::from_millis(50);
        assert_eq!(gate.next("a", wait).await, None, "not open: nothing kept");
        gate.open("a".into());
        for width in [4, 6, 8] {
            gate.offer("a", I420Frame::black(width, 2));
        }
        let first = gate.next("a", wait).await.expect("a picture");
        assert_eq!(width_of(&first), 8);
        assert_eq!(gate.next("a", wait).await, None, "nothing new");
        // A pull waiting is answered by the next picture.
        let (pulled, ()) = tokio::join!(gate.next("a", Duration::from_secs(5)), async {
            gate.offer("a", I420Frame::black(10, 2));
        });
        assert_eq!(pulled.as_deref().map(width_of), Some(10));
        assert_eq!(
            gate.close("a"),
            Some(TileCounters {
                sent: 2,
                dropped: 2
            })
        );
    }
}
