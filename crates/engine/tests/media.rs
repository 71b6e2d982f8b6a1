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
use tokio::sync::mpsc;

fn setup(me: &str, them: &str, initiator: bool) -> PeerSetup {
    PeerSetup {
        self_id: me.into(),
        remote_id: them.into(),
        initiator,
        ice_servers: Vec::new(),
        udp_addrs: vec!["127.0.0.1:0".into()],
        max_bitrate_bps: 1_000_000,
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
