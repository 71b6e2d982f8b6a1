//! Calls relayed through a real TURN server (coturn), both members
//! relay-only: a path that dies is restarted (ICE restart) and the call
//! comes back; and congestion control on a narrow relay, which drops
//! whatever exceeds 500 kbit/s per session — the sender's estimate and
//! encoder must come down to what the path carries.
//!
//! Not asserted, because it does not hold: that the video keeps moving
//! under this cap. Measured: pictures stop within seconds of the start
//! (~1.5 Mbit/s offered into the 500 kbit/s policer) and do not come back,
//! even once the sender is down to ~270 kbit/s on the wire (the encoder at
//! its 100 kbit/s floor plus a keyframe a second for the stalled receiver):
//! the receiver then gets 0–20 kbit/s. Without a cap the same relay path
//! carries 870 kbit/s without loss, and a 1 Mbit/s cap with a 1.5 Mbit/s
//! call flows without loss — so coturn's policer, once overrun, passes far
//! less than its rate, and is not a faithful bottleneck. The next test is a
//! queueing bottleneck (tc in a network namespace).
//!
//! Nor is the estimate at one moment asserted: over a policer it moves.
//! Sampled once a second for 15 s after the encoder first came under the
//! cap (session 42): a sawtooth of 235–1,372 kbit/s with a period of ~5 s,
//! the encoder 102–1,066 kbit/s following it. A policer keeps no queue, so
//! only the loss half sees it, and that half grew ~2× a second while under
//! 2 % was lost. With the loss half's memory of where loss began (session
//! 43, `estimator.rs`), two runs of 40 s: after the first 10 s
//! 255–1,114 kbit/s, mostly 300–700, with a climb to 880–1,114 every
//! 5–10 s when the memory is let go; the encoder 100–870 kbit/s. Asserting
//! the estimate at the moment the encoder came under the cap failed 3 runs
//! in 4 on a faster machine. What is asserted is that the estimate came down under the
//! cap's reach at all.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::server_with;
use huddle_engine::call::{Call, CallEvent, CallOptions, Command};
use huddle_engine::stats::LinkStats;
use huddle_engine::video::pattern::TestPattern;
use huddle_engine::video::PatternSource;
use huddle_protocol::ServerMessage;
use huddle_testkit::Coturn;
use webrtc::peer_connection::RTCPeerConnectionState;

const CAP_BYTES_PER_SECOND: u32 = 62_500; // 500 kbit/s

fn start(url: &str, name: &str, video: bool) -> Call {
    Call::start(
        url.to_owned(),
        common::params("narrow", name),
        CallOptions {
            // Camera-like content wants far more than the cap at 1.5 Mbit/s.
            video: video.then(|| {
                Box::new(PatternSource::with_pattern(TestPattern::busy(640, 360), 30)) as _
            }),
            bitrate_bps: 1_500_000,
            udp_addrs: vec!["127.0.0.1:0".into()],
            relay_only: true,
            processing: Default::default(),
            ..CallOptions::default()
        },
    )
}

async fn joined(call: &mut Call) -> String {
    loop {
        match call.next_event().await.unwrap() {
            CallEvent::Message(ServerMessage::Joined { self_peer, .. }) => return self_peer.id,
            CallEvent::Stopped(reason) => panic!("{reason:?}"),
            _ => {}
        }
    }
}

/// Ada (sending the busy pattern) and Grace (sending nothing) joined and
/// in the call, both relay-only.
async fn call(server: std::net::SocketAddr) -> (Call, Call) {
    let url = format!("ws://{server}/ws");
    let mut ada = start(&url, "Ada", true);
    joined(&mut ada).await;
    let mut grace = start(&url, "Grace", false);
    joined(&mut grace).await;
    ada.command(Command::JoinCall);
    grace.command(Command::JoinCall);
    (ada, grace)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrow_relay_brings_the_estimate_and_the_encoder_down() {
    let coturn = Coturn::start(CAP_BYTES_PER_SECOND).await;
    let server = server_with(coturn.config()).await;
    let (mut ada, grace) = call(server).await;

    // Ada's figures once a second until both the encoder and the
    // estimate have come under the cap's reach (not necessarily at once:
    // the estimate is a sawtooth here, see the module's header).
    let mut last: Option<LinkStats> = None;
    let (mut encoder_under, mut least) = (false, f64::INFINITY);
    let settled = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            ada.command(Command::Stats);
            let stats = loop {
                match ada.next_event().await.unwrap() {
                    CallEvent::Stats { stats, .. } => break stats,
                    CallEvent::Stopped(reason) => panic!("{reason:?}"),
                    _ => {}
                }
            };
            encoder_under |= stats.encoder_bitrate_bps.is_some_and(|b| b <= 500_000);
            if let Some(target) = stats.target_bitrate_bps {
                least = least.min(target);
            }
            last = Some(stats);
            if encoder_under && least < 700_000.0 {
                return;
            }
        }
    })
    .await;
    let stats = last.expect("stats");
    assert!(
        settled.is_ok(),
        "the encoder under the cap: {encoder_under}; the least estimate: {least}; {stats:?}"
    );
    assert_eq!(
        stats.candidate_type.as_deref(),
        Some("relay"),
        "through the relay"
    );
    let target = stats.target_bitrate_bps.expect("an estimate");

    println!(
        "under a 500 kbit/s relay: estimate {:.0} kbit/s, encoder {} kbit/s",
        target / 1000.0,
        stats.encoder_bitrate_bps.unwrap_or(0) / 1000
    );
    ada.command(Command::Leave);
    grace.command(Command::Leave);
}

/// Waits until `call` decodes `count` pictures from anyone.
async fn pictures(call: &mut Call, count: usize, within: Duration) {
    let mut seen = 0;
    tokio::time::timeout(within, async {
        while seen < count {
            match call.next_event().await.unwrap() {
                CallEvent::Video { .. } => seen += 1,
                CallEvent::Stopped(reason) => panic!("{reason:?}"),
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{seen} of {count} pictures within {within:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_dies_is_restarted_and_the_call_comes_back() {
    let mut coturn = Coturn::start(0).await;
    let server = server_with(coturn.config()).await;
    let (ada, mut grace) = call(server).await;
    pictures(&mut grace, 20, Duration::from_secs(30)).await;

    // The relay dies and comes back empty: the relayed path is gone for
    // good, only new allocations (an ICE restart) can carry the call again.
    coturn.restart().await;
    let mut states = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match grace.next_event().await.unwrap() {
                CallEvent::Connection { state, .. } => {
                    states.push(state);
                    // ICE says so (5 s without an answer), or a restart is
                    // under way already (either counts as noticed).
                    if matches!(
                        state,
                        RTCPeerConnectionState::Disconnected | RTCPeerConnectionState::Connecting
                    ) {
                        return;
                    }
                }
                CallEvent::Stopped(reason) => panic!("{reason:?}"),
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the dead path was not noticed: {states:?}"));
    // Pictures again: only an ICE restart — new allocations, new relayed
    // candidates — can bring them.
    pictures(&mut grace, 20, Duration::from_secs(30)).await;
    ada.command(Command::Leave);
    grace.command(Command::Leave);
}
