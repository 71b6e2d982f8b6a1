//! Native calls across a cluster: two `huddle-server` instances sharing
//! rooms through a real Redis, behind a round-robin balancer. Members on
//! different instances call each other, and the call outlives the instance
//! that held its room.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{decode_from, joined, nobody_leaves, start_url, until};
use huddle_engine::call::{Call, CallEvent, Command};
use huddle_engine::video::pattern::read_stamp;
use huddle_protocol::ServerMessage;
use huddle_server::Config;
use huddle_testkit::Cluster;

/// Runs until the member has resumed (its own id, `resumed: true`) and has
/// decoded `frames` stamped pictures from `from` since this was called.
async fn resume_while_decoding(call: &mut Call, id: &str, from: &str, frames: usize) {
    let (mut resumed, mut decoded) = (false, 0);
    tokio::time::timeout(Duration::from_secs(30), async {
        while !resumed || decoded < frames {
            match call.next_event().await {
                Some(CallEvent::Message(ServerMessage::Joined {
                    resumed: true,
                    self_peer,
                    ..
                })) => {
                    assert_eq!(self_peer.id, id, "the same id");
                    resumed = true;
                }
                Some(CallEvent::Video { from: who, frame }) if who == from => {
                    // Halved too (a low estimate), the strip reads intact.
                    read_stamp(&frame).expect("an intact picture");
                    decoded += 1;
                }
                Some(CallEvent::Stopped(reason)) => panic!("stopped: {reason:?}"),
                Some(_) => {}
                None => panic!("call ended"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{id}: resumed {resumed}, {decoded} pictures within 30 s"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_across_two_instances_goes_on_when_one_dies() {
    let mut cluster = Cluster::start(
        2,
        Config {
            resume_grace: Duration::from_secs(20),
            ..Config::default()
        },
    )
    .await;
    let url = cluster.balancer.url();
    // The balancer sends the first connection to A, the second to B.
    let mut ada = start_url(url.clone(), "Ada");
    let ada_id = joined(&mut ada).await;
    let mut grace = start_url(url, "Grace");
    let grace_id = joined(&mut grace).await;
    for instance in &cluster.instances {
        assert_eq!(instance.metrics.connections.load(Ordering::Relaxed), 1);
    }
    // Ada made the room: A holds it, Grace reaches it through Redis.
    assert_eq!(
        cluster.instances[0].metrics.rooms.load(Ordering::Relaxed),
        1
    );
    assert_eq!(
        cluster.instances[1]
            .metrics
            .backplane_links
            .load(Ordering::Relaxed),
        1
    );

    // Every offer, answer and candidate crosses the backplane.
    ada.command(Command::JoinCall);
    grace.command(Command::JoinCall);
    let (at_ada, at_grace) = tokio::join!(
        decode_from(&mut ada, std::slice::from_ref(&grace_id), 30),
        decode_from(&mut grace, std::slice::from_ref(&ada_id), 30),
    );
    assert!(at_ada.contains_key(&grace_id) && at_grace.contains_key(&ada_id));

    // A dies with the room and Ada's socket.
    tokio::task::block_in_place(|| cluster.instances[0].kill());
    until(&mut ada, 10, "reconnecting", |e| {
        matches!(e, CallEvent::Reconnecting)
    })
    .await;
    // Media is peer to peer: it flows on while signaling fails over. Both
    // resume on B (which takes the room over), with their ids.
    tokio::join!(
        resume_while_decoding(&mut ada, &ada_id, &grace_id, 30),
        resume_while_decoding(&mut grace, &grace_id, &ada_id, 30),
    );
    let b = &cluster.instances[1].metrics;
    assert_eq!(b.backplane_takeovers.load(Ordering::Relaxed), 1);
    // Each resumes on B at least once. A third resume was seen once, in CI
    // under load, and a fourth once, in a CI run on an idle machine
    // (2026-12-05) — not explained yet: a resume racing B's takeover is the
    // suspect. What users see — nobody leaves, media goes on — is asserted
    // below; this bound only catches a storm of resumes.
    let resumes = b.resumes.load(Ordering::Relaxed);
    assert!((2..=4).contains(&resumes), "{resumes} resumes on B");

    // The call goes on both ways, and nobody saw anyone leave.
    let (at_ada, at_grace) = tokio::join!(
        decode_from(&mut ada, std::slice::from_ref(&grace_id), 30),
        decode_from(&mut grace, std::slice::from_ref(&ada_id), 30),
    );
    assert!(at_ada.contains_key(&grace_id) && at_grace.contains_key(&ada_id));
    tokio::join!(
        nobody_leaves(&mut ada, Duration::from_millis(500)),
        nobody_leaves(&mut grace, Duration::from_millis(500)),
    );
    ada.command(Command::Leave);
    grace.command(Command::Leave);
}
