//! Shared by the engine's integration tests: a real server, a TCP proxy
//! whose connections a test can cut, the join parameters of a test member,
//! and calls of test members with the waits on what they decode (coturn
//! is in `huddle-testkit`).

#![allow(dead_code, clippy::unwrap_used)]

pub mod pulse;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use huddle_engine::audio::ToneInput;
use huddle_engine::call::{Call, CallEvent, CallOptions};
use huddle_engine::video::pattern::{now_ms, read_stamp, MIN_WIDTH};
use huddle_engine::video::PatternSource;
use huddle_protocol::ServerMessage;

use huddle_server::Config;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The machine's cores, shared by the tests of one test binary: a test
/// that measures what loopback gives (the bandwidth estimate, pictures in a
/// second, a three-way mesh's full-size pictures) runs [`alone`]; the others
/// [`beside_others`]. (On 2 cores, seven calls at once delay packets enough
/// that the estimate, rightly, falls; a CI run saw 10 pictures in a second
/// where the test wants more, and a mesh member 8 full-size pictures in 30 s.)
static CORES: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

pub async fn alone() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    CORES.write().await
}

pub async fn beside_others() -> tokio::sync::RwLockReadGuard<'static, ()> {
    CORES.read().await
}

/// A member named `name` joining `room`: a bot, no password, no media yet.
pub fn params(room: &str, name: &str) -> huddle_engine::JoinParams {
    huddle_engine::JoinParams {
        room: room.into(),
        name: name.into(),
        password: None,
        token: None,
        client: huddle_protocol::ClientKind::Bot,
        media: huddle_protocol::Media::default(),
        trust: huddle_engine::tls::ServerTrust::System,
    }
}

/// A real huddle-server on loopback.
pub async fn server_with(config: Config) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(huddle_server::run(
        listener,
        config,
        std::future::pending::<()>(),
    ));
    addr
}

pub async fn server() -> SocketAddr {
    server_with(Config::default()).await
}

/// Forwards TCP to `upstream`; `cut` drops every connection open now.
pub struct Proxy {
    pub addr: SocketAddr,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let registry = links.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let link = tokio::spawn(async move {
                    let mut server = TcpStream::connect(upstream).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                registry.lock().unwrap().push(link);
            }
        });
        Proxy { addr, links }
    }

    pub fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

/// A member `name` of room "standup" at `server`, sending the test pattern
/// and its own note ([`tone_of`]).
pub fn start(server: SocketAddr, name: &str) -> Call {
    start_url(format!("ws://{server}/ws"), name)
}

/// As [`start`], at a WebSocket URL.
pub fn start_url(url: String, name: &str) -> Call {
    Call::start(
        url,
        params("standup", name),
        CallOptions {
            video: Some(Box::new(PatternSource::new(640, 360, 30))),
            audio: Some(Box::new(ToneInput::new(tone_of(name)))),
            output: None,
            bitrate_bps: 800_000,
            udp_addrs: vec!["127.0.0.1:0".into()],
            relay_only: false,
            processing: Default::default(),
            volume: Default::default(),
        },
    )
}

/// Each member sings its own note.
pub fn tone_of(name: &str) -> f32 {
    match name {
        "Ada" => 440.0,
        "Grace" => 880.0,
        _ => 660.0,
    }
}

/// Waits for `joined` and returns the member's id.
pub async fn joined(call: &mut Call) -> String {
    loop {
        match call.next_event().await {
            Some(CallEvent::Message(ServerMessage::Joined { self_peer, .. })) => {
                return self_peer.id
            }
            Some(_) => continue,
            None => panic!("stopped before joining"),
        }
    }
}

/// Runs until `call` decoded `frames` stamped pictures from each of `from`;
/// returns the sequence numbers seen per sender.
pub async fn decode_from(
    call: &mut Call,
    from: &[String],
    frames: usize,
) -> HashMap<String, Vec<u32>> {
    let mut seen: HashMap<String, Vec<u32>> = HashMap::new();
    let mut halved = 0usize;
    tokio::time::timeout(Duration::from_secs(30), async {
        while from
            .iter()
            .any(|p| seen.get(p).map_or(0, Vec::len) < frames)
        {
            match call.next_event().await {
                // Halved pictures (the sender's answer to a low estimate,
                // e.g. when a loaded machine delays packets) carry the strip
                // at half size; every picture must carry it intact.
                Some(CallEvent::Video { from, frame }) => {
                    if frame.width() < MIN_WIDTH {
                        halved += 1;
                    }
                    let stamp = read_stamp(&frame).expect("intact strip");
                    assert!(stamp.age_ms(now_ms()) < 5_000);
                    seen.entry(from).or_default().push(stamp.sequence);
                }
                Some(CallEvent::Stopped(reason)) => panic!("stopped: {reason:?}"),
                Some(_) => {}
                None => panic!("call ended"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "not enough frames within 30 s: {:?} ({halved} of them halved)",
            seen.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>()
        )
    });
    for (peer, sequences) in &seen {
        assert!(
            sequences.windows(2).all(|w| w[0] < w[1]),
            "{peer}: in order"
        );
    }
    seen
}

/// Waits for an event matching `want`, failing after `secs` seconds.
pub async fn until(
    call: &mut Call,
    secs: u64,
    what: &str,
    mut want: impl FnMut(&CallEvent) -> bool,
) {
    tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            match call.next_event().await {
                Some(event) if want(&event) => return,
                Some(CallEvent::Stopped(reason)) => panic!("stopped: {reason:?}"),
                Some(_) => {}
                None => panic!("call ended"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} within {secs} s"));
}

/// Ada and Grace in room "standup" at `server`, both in its call; with
/// their ids.
pub async fn ada_and_grace_in_a_call(server: SocketAddr) -> (Call, String, Call, String) {
    let mut ada = start(server, "Ada");
    let ada_id = joined(&mut ada).await;
    let mut grace = start(server, "Grace");
    let grace_id = joined(&mut grace).await;
    ada.command(huddle_engine::call::Command::JoinCall);
    grace.command(huddle_engine::call::Command::JoinCall);
    (ada, ada_id, grace, grace_id)
}

/// Fails if, within `window`, the call reports a peer leaving or a link
/// closing.
pub async fn nobody_leaves(call: &mut Call, window: Duration) {
    let quiet = tokio::time::timeout(window, async {
        while let Some(event) = call.next_event().await {
            assert!(
                !matches!(
                    event,
                    CallEvent::LinkClosed { .. }
                        | CallEvent::Message(ServerMessage::PeerLeft { .. })
                ),
                "{event:?}"
            );
        }
    })
    .await;
    assert!(quiet.is_err(), "the call ended");
}
