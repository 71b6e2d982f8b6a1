//! The playout task: the members' audio packets into their playout buffers
//! ([`Mixer`], one `audio::jitter` buffer each), and 10 ms of the mix into
//! the sink whenever it wants them — paced by the sound card's clock where
//! there is one ([`AudioSink::wants`]), by the wall clock otherwise. What is
//! played, at the playback volume, is the echo canceller's reference; what
//! each member contributed goes back to the call as [`Report::Heard`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use huddle_protocol::PeerId;
use tokio::sync::mpsc;

use crate::audio::jitter::{AudioPacket, PlayoutStats};
use crate::audio::mixer::Mixer;
use crate::audio::processing::Processing;
use crate::audio::{AudioSink, Volume};
use crate::pipeline::Report;
use crate::sync::lock;

/// What one pull plays (`audio::jitter::PULL_SAMPLES`).
const FRAME: Duration = Duration::from_millis(10);
/// How often the task looks whether the sink wants more.
const LOOK_EVERY: Duration = Duration::from_millis(5);
/// After a stall longer than this many frames (half a second: a suspended
/// laptop, not a busy moment) the wall clock starts over instead of
/// catching up in a burst.
const MAX_BEHIND: u32 = 50;

/// What the playout task is told.
#[derive(Debug)]
pub enum Playout {
    /// An audio packet of a member.
    Packet(PeerId, AudioPacket),
    /// The member's link closed.
    Gone(PeerId),
    /// Play into this sink from now on (`None`: nowhere).
    Sink(Option<Box<dyn AudioSink>>),
}

/// Each member's playout figures, for the call's stats; brought up to date
/// every frame.
pub type PlayoutBoard = Arc<Mutex<HashMap<PeerId, PlayoutStats>>>;

/// When frames are due by the wall clock.
#[derive(Debug, Default)]
struct WallClock {
    next: Option<Instant>,
}

impl WallClock {
    fn due(&mut self, now: Instant) -> usize {
        let next = self.next.get_or_insert(now);
        let mut due = 0;
        while *next <= now {
            due += 1;
            *next += FRAME;
        }
        if due > MAX_BEHIND as usize {
            *next = now + FRAME;
            due = 1;
        }
        due
    }
}

/// Runs until the call drops its sender.
pub async fn playout(
    mut sink: Option<Box<dyn AudioSink>>,
    volume: Volume,
    processing: Arc<Processing>,
    mut inputs: mpsc::UnboundedReceiver<Playout>,
    reports: mpsc::UnboundedSender<Report>,
    board: PlayoutBoard,
) {
    let mut mixer = Mixer::default();
    let mut wall = WallClock::default();
    let mut look = tokio::time::interval(LOOK_EVERY);
    look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            input = inputs.recv() => match input {
                None => return,
                Some(Playout::Packet(peer, packet)) => mixer.insert(&peer, &packet),
                Some(Playout::Gone(peer)) => {
                    mixer.remove(&peer);
                    lock(&board).remove(&peer);
                }
                Some(Playout::Sink(new)) => {
                    sink = new;
                    wall = WallClock::default();
                }
            },
            _ = look.tick() => {
                let now = Instant::now();
                let due = match sink.as_ref().and_then(|s| s.wants()) {
                    Some(wanted) => wanted,
                    None => wall.due(now),
                };
                for _ in 0..due {
                    let mut mixed = mixer.mix(now);
                    for (peer, samples) in mixed.members {
                        let _ = reports.send(Report::Heard(peer, samples));
                    }
                    if let Some(out) = sink.as_mut() {
                        volume.apply(&mut mixed.sum);
                        processing.slipped(out.take_slip());
                        processing.queued_to_play(out.queued());
                        processing.render(&mixed.sum);
                        if let Err(e) = out.play(&mixed.sum) {
                            sink = None;
                            let _ = reports.send(Report::AudioSinkFailed(e));
                        }
                    }
                }
                if due > 0 {
                    let mut board = lock(&board);
                    for (peer, stats) in mixer.stats() {
                        board.insert(peer.clone(), stats);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wall_clock_gives_a_frame_per_10_ms_and_no_burst_after_a_stall() {
        let t0 = Instant::now();
        let mut wall = WallClock::default();
        assert_eq!(wall.due(t0), 1);
        assert_eq!(wall.due(t0 + Duration::from_millis(5)), 0);
        assert_eq!(wall.due(t0 + Duration::from_millis(25)), 2);
        assert_eq!(
            wall.due(t0 + Duration::from_millis(300)),
            28,
            "a busy moment: caught up"
        );
        assert_eq!(
            wall.due(t0 + Duration::from_secs(5)),
            1,
            "a stall: no burst"
        );
        assert_eq!(wall.due(t0 + Duration::from_millis(5_005)), 0);
    }
}
