//! Real WebRTC between two native links on loopback: the test pattern,
//! encoded with OpenH264, sent over webrtc-rs, decoded on the other side,
//! with keyframes only when the receiver asks for them (PLI).

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use huddle_engine::peer::{PeerEvent, PeerLink, PeerSetup};
use huddle_engine::video::h264::H264Encoder;
use huddle_engine::video::pattern::{now_ms, read_stamp, TestPattern};
use huddle_engine::video::I420Frame;
use tokio::sync::mpsc;

fn setup(me: &str, them: &str, initiator: bool) -> PeerSetup {
    PeerSetup {
        self_id: me.into(),
        remote_id: them.into(),
        initiator,
        ice_servers: Vec::new(),
        udp_addrs: vec!["127.0.0.1:0".into()],
        max_bitrate_bps: 1_000_000,
        relay_only: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_pattern_crosses_a_native_link_intact() {
    let (a_events, mut a_rx) = mpsc::unbounded_channel();
    let (b_events, mut b_rx) = mpsc::unbounded_channel();
    let a = PeerLink::connect(setup("p_1", "p_2", true), a_events)
        .await
        .unwrap();
    let b = PeerLink::connect(setup("p_2", "p_1", false), b_events)
        .await
        .unwrap();
    assert!(!a.polite() && b.polite());

    // Signaling, as the server would relay it; B's keyframe requests reach A.
    let to_b = b.clone();
    let keyframe_wanted = Arc::new(AtomicBool::new(false));
    let requests = keyframe_wanted.clone();
    tokio::spawn(async move {
        while let Some(event) = a_rx.recv().await {
            match event {
                PeerEvent::Signal(data) => to_b.handle(data).unwrap(),
                PeerEvent::KeyframeWanted => requests.store(true, Ordering::Relaxed),
                _ => {}
            }
        }
    });
    let (frames_tx, mut frames) = mpsc::unbounded_channel();
    let to_a = a.clone();
    tokio::spawn(async move {
        while let Some(event) = b_rx.recv().await {
            match event {
                PeerEvent::Signal(data) => to_a.handle(data).unwrap(),
                PeerEvent::Video(frame) => {
                    let _ = frames_tx.send(frame);
                }
                _ => {}
            }
        }
    });

    // The camera: 30 fps, a keyframe only at the start (sent before the link
    // is up, so lost) and when B asks: decoding proves B's PLI reached A.
    let sender = a.clone();
    tokio::spawn(async move {
        let mut pattern = TestPattern::new(640, 360);
        let mut encoder = H264Encoder::new(1_000_000, 30.0).unwrap();
        let mut ticks = tokio::time::interval(Duration::from_millis(33));
        for n in 0u32.. {
            ticks.tick().await;
            let key = n == 0 || keyframe_wanted.swap(false, Ordering::Relaxed);
            let unit = encoder.encode(&pattern.next_frame(), key).unwrap();
            let _ = sender
                .send_video(Bytes::from(unit), Duration::from_millis(33))
                .await;
        }
    });

    let mut sequences = Vec::new();
    let mut worst_age = 0;
    tokio::time::timeout(Duration::from_secs(20), async {
        while sequences.len() < 60 {
            let frame = frames.recv().await.unwrap();
            assert_eq!((frame.width(), frame.height()), (640, 360));
            let stamp = read_stamp(&frame).expect("a decoded frame carries an intact strip");
            worst_age = worst_age.max(stamp.age_ms(now_ms()));
            sequences.push(stamp.sequence);
        }
    })
    .await
    .expect("60 frames decoded within 20 s");
    assert!(
        sequences.windows(2).all(|w| w[0] < w[1]),
        "in order: {sequences:?}"
    );
    let span = sequences[59] - sequences[0];
    assert!(span < 90, "few frames lost: 60 decoded over {span} sent");
    println!("decoded 60 frames over {span} sent; worst capture-to-decode age {worst_age} ms");
    let (sent, received) = (a.stats().await, b.stats().await);
    println!("stats: sender {sent:?}\nreceiver {received:?}");
    // What webrtc-rs 0.21 reports reliably here: the path's round trip and
    // that packets came in. (Its byte counters read ~12 KB for ~60 frames of
    // 640×360 — far below what was sent; not relied on.)
    assert!(
        received.rtt_ms.is_some_and(|ms| ms > 0.0 && ms < 100.0),
        "a loopback round trip"
    );
    assert!(received.packets_in > 0 && sent.bytes_out > 0);
    a.close().await;
    b.close().await;
}

/// Waits for `count` decoded pictures.
async fn decode(frames: &mut mpsc::UnboundedReceiver<I420Frame>, count: usize) {
    tokio::time::timeout(Duration::from_secs(20), async {
        for _ in 0..count {
            frames.recv().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{count} frames decoded within 20 s"));
}

/// The ICE username fragment of a description.
fn ufrag(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .map(|u| u.trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ice_restart_renews_the_path_and_video_keeps_decoding() {
    let (a_events, mut a_rx) = mpsc::unbounded_channel();
    let (b_events, mut b_rx) = mpsc::unbounded_channel();
    let a = PeerLink::connect(setup("p_1", "p_2", true), a_events)
        .await
        .unwrap();
    let b = PeerLink::connect(setup("p_2", "p_1", false), b_events)
        .await
        .unwrap();
    // Relay signals both ways; note A's offers and B's connection states.
    let (offers_tx, mut offers) = mpsc::unbounded_channel();
    let to_b = b.clone();
    tokio::spawn(async move {
        while let Some(event) = a_rx.recv().await {
            if let PeerEvent::Signal(data) = event {
                if let huddle_protocol::SignalData::Sdp { sdp } = &data {
                    let _ = offers_tx.send(sdp.sdp.clone());
                }
                to_b.handle(data).unwrap();
            }
        }
    });
    let (frames_tx, mut frames) = mpsc::unbounded_channel();
    let (answers_tx, mut answers) = mpsc::unbounded_channel();
    let to_a = a.clone();
    tokio::spawn(async move {
        while let Some(event) = b_rx.recv().await {
            match event {
                PeerEvent::Signal(data) => {
                    if let huddle_protocol::SignalData::Sdp { sdp } = &data {
                        let _ = answers_tx.send(sdp.sdp.clone());
                    }
                    to_a.handle(data).unwrap();
                }
                PeerEvent::Video(frame) => {
                    let _ = frames_tx.send(frame);
                }
                _ => {}
            }
        }
    });
    let sender = a.clone();
    tokio::spawn(async move {
        let mut pattern = TestPattern::new(640, 360);
        let mut encoder = H264Encoder::new(1_000_000, 30.0).unwrap();
        let mut ticks = tokio::time::interval(Duration::from_millis(33));
        for n in 0u32.. {
            ticks.tick().await;
            // A keyframe every second: this test is about the path.
            let unit = encoder.encode(&pattern.next_frame(), n % 30 == 0).unwrap();
            let _ = sender
                .send_video(Bytes::from(unit), Duration::from_millis(33))
                .await;
        }
    });
    let first = ufrag(&offers.recv().await.unwrap()).unwrap();
    decode(&mut frames, 30).await;

    a.restart_ice().unwrap();
    let renewed = tokio::time::timeout(Duration::from_secs(10), offers.recv())
        .await
        .expect("a restart offer")
        .unwrap();
    let second = ufrag(&renewed).unwrap();
    assert_ne!(first, second, "new ICE credentials");
    let first_answer = ufrag(&answers.recv().await.unwrap()).unwrap();
    let second_answer = tokio::time::timeout(Duration::from_secs(10), answers.recv())
        .await
        .expect("B answers the restart")
        .unwrap();
    assert_ne!(
        first_answer,
        ufrag(&second_answer).unwrap(),
        "B restarted too"
    );
    // Drop what was decoded before the restart answer took effect.
    while frames.try_recv().is_ok() {}
    decode(&mut frames, 60).await;
    a.close().await;
    b.close().await;
}
