//! The room list as clients receive it: capped, and encoded once per
//! version however many watchers are sent it.
//!
//! A change in any room reaches every watcher (at most once a second each);
//! encoding a list of thousands of rooms for each of them would let a few
//! hundred watchers turn one join into megabytes of work. So the list is cut
//! to [`MAX_LISTED_ROOMS`] (the most populous, in name order) and the frame
//! without a `rid` is encoded once per list the registry hands out.

use std::sync::{Arc, Mutex};

use huddle_protocol::codec::encode_server;
use huddle_protocol::model::RoomSummary;
use huddle_protocol::ServerMessage;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::sync::lock;

/// Most rooms a `rooms` answer lists.
pub const MAX_LISTED_ROOMS: usize = 500;

/// The last list encoded.
#[derive(Debug, Default)]
pub struct ListFrames {
    last: Mutex<Option<(Arc<Vec<RoomSummary>>, Utf8Bytes)>>,
}

impl ListFrames {
    /// The `rooms` frame for `rooms` (the registry's current list), with `rid`.
    pub fn frame(&self, rooms: &Arc<Vec<RoomSummary>>, rid: Option<&str>) -> Utf8Bytes {
        if rid.is_none() {
            let last = lock(&self.last);
            if let Some((list, frame)) = last.as_ref() {
                if Arc::ptr_eq(list, rooms) {
                    return frame.clone();
                }
            }
        }
        let frame: Utf8Bytes = encode_server(
            &ServerMessage::Rooms {
                rooms: capped(rooms),
            },
            rid,
        )
        .into();
        if rid.is_none() {
            *lock(&self.last) = Some((rooms.clone(), frame.clone()));
        }
        frame
    }
}

/// At most [`MAX_LISTED_ROOMS`]: the most populous, in name order.
fn capped(rooms: &[RoomSummary]) -> Vec<RoomSummary> {
    if rooms.len() <= MAX_LISTED_ROOMS {
        return rooms.to_vec();
    }
    let mut by_size: Vec<&RoomSummary> = rooms.iter().collect();
    by_size.sort_by(|a, b| b.peers.cmp(&a.peers).then_with(|| a.name.cmp(&b.name)));
    by_size.truncate(MAX_LISTED_ROOMS);
    by_size.sort_by(|a, b| a.name.cmp(&b.name));
    by_size.into_iter().cloned().collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn room(i: usize, peers: u32) -> RoomSummary {
        RoomSummary {
            name: format!("room-{i:05}"),
            peers,
            in_call: 0,
            locked: false,
        }
    }

    #[test]
    fn a_long_list_keeps_the_most_populous_in_name_order() {
        // Every fourth room has 8 members: exactly the 500 kept.
        let rooms: Vec<RoomSummary> = (0..2000)
            .map(|i| room(i, if i % 4 == 0 { 8 } else { 1 }))
            .collect();
        let kept = capped(&rooms);
        assert_eq!(kept.len(), MAX_LISTED_ROOMS);
        assert!(kept.iter().all(|r| r.peers == 8));
        assert!(kept.windows(2).all(|w| w[0].name < w[1].name));
    }

    #[test]
    fn the_same_list_is_encoded_once() {
        let frames = ListFrames::default();
        let list = Arc::new(vec![room(1, 2)]);
        let a = frames.frame(&list, None);
        let b = frames.frame(&list, None);
        assert_eq!(a.as_str().as_ptr(), b.as_str().as_ptr(), "the cached frame");
        assert!(frames
            .frame(&list, Some("r1"))
            .as_str()
            .contains("\"rid\":\"r1\""));
    }
}
