//! Screen sharing for real: a virtual X server (Xvfb, Debian package
//! `xvfb`) whose screen the test paints, captured by `ScreenSource`, sent in
//! a call in place of the camera and decoded by the other member.

#![allow(clippy::unwrap_used)]
#![cfg(all(unix, not(target_os = "macos")))]

mod common;

use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{ada_and_grace_in_a_call, server, until};
use huddle_engine::call::{Call, CallEvent, Command};
use huddle_engine::video::convert::i420_to_rgb;
use huddle_engine::video::screen::ScreenSource;
use huddle_engine::video::source::CaptureError;
use huddle_engine::video::I420Frame;
use huddle_protocol::ServerMessage;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt, CreateGCAux, Rectangle};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

const WIDTH: u16 = 640;
const HEIGHT: u16 = 480;

/// An Xvfb on a display of its own, killed when dropped.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        // Each test of this process its own display, free of other processes'.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let first = 300 + std::process::id() % 400;
        let n = std::iter::repeat_with(|| first + NEXT.fetch_add(1, Ordering::Relaxed))
            .take(100)
            .find(|n| !Path::new(&format!("/tmp/.X{n}-lock")).exists())
            .unwrap();
        let child = Process::new("Xvfb")
            .arg(format!(":{n}"))
            .args(["-screen", "0", &format!("{WIDTH}x{HEIGHT}x24")])
            .args(["-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (Debian package xvfb) must be installed");
        // 10 s was too short once: a CI run on a fresh machine, its two
        // cores busy compiling beside it, failed here.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
            assert!(Instant::now() < deadline, "Xvfb did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Xvfb {
            child,
            display: format!(":{n}"),
        }
    }

    /// Paints the screen: the left half `left`, the right half `right`
    /// (0xRRGGBB). The connection is returned to keep the paint.
    fn paint(&self, left: u32, right: u32) -> RustConnection {
        let (conn, number) = x11rb::connect(Some(&self.display)).unwrap();
        let root = conn.setup().roots[number].root;
        for (colour, x) in [(left, 0), (right, WIDTH as i16 / 2)] {
            let gc = conn.generate_id().unwrap();
            conn.create_gc(gc, root, &CreateGCAux::new().foreground(colour))
                .unwrap();
            let half = Rectangle {
                x,
                y: 0,
                width: WIDTH / 2,
                height: HEIGHT,
            };
            conn.poly_fill_rectangle(root, gc, &[half]).unwrap();
        }
        conn.sync().unwrap();
        conn
    }
}

impl Xvfb {
    /// Its screen as a source (opened off the async threads: it blocks).
    async fn capture(&self) -> ScreenSource {
        let display = self.display.clone();
        tokio::task::spawn_blocking(move || ScreenSource::open_display(Some(&display)))
            .await
            .unwrap()
            .unwrap()
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The colour (r, g, b) at the middle of the picture's left and right halves.
fn halves(frame: &I420Frame) -> ([u8; 3], [u8; 3]) {
    let rgb = i420_to_rgb(frame);
    let (w, h) = (frame.width(), frame.height());
    let at = |col: usize| {
        let i = ((h / 2) * w + col) * 3;
        [rgb[i], rgb[i + 1], rgb[i + 2]]
    };
    (at(w / 4), at(w * 3 / 4))
}

fn is_red([r, g, b]: [u8; 3]) -> bool {
    r > 200 && g < 60 && b < 60
}

fn is_blue([r, g, b]: [u8; 3]) -> bool {
    b > 200 && r < 60 && g < 60
}

/// Waits until `call` says `of` shares its screen (or no longer does).
async fn sharing_is(call: &mut Call, of: &str, on: bool) {
    let of = of.to_owned();
    until(call, 10, "the member's screen flag", move |e| {
        matches!(e, CallEvent::Message(ServerMessage::PeerUpdated { peer }) if peer.id == of && peer.media.screen == on)
    })
    .await;
}

/// The next picture from `from` that passes `want`.
async fn picture(call: &mut Call, from: &str, what: &str, want: impl Fn(&I420Frame) -> bool) {
    let from = from.to_owned();
    until(
        call,
        20,
        what,
        move |e| matches!(e, CallEvent::Video { from: who, frame } if *who == from && want(frame)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_screen_replaces_the_camera_and_the_other_member_decodes_it() {
    let xvfb = Xvfb::start();
    let _paint = xvfb.paint(0xff0000, 0x0000ff);
    let (ada, ada_id, mut grace, _) = ada_and_grace_in_a_call(server().await).await;
    picture(&mut grace, &ada_id, "Ada's camera", |f| {
        f.width() == 640 && f.height() == 360
    })
    .await;

    ada.command(Command::ShareScreen(Some(Box::new(xvfb.capture().await))));
    sharing_is(&mut grace, &ada_id, true).await;
    // The whole screen, red on the left and blue on the right.
    picture(&mut grace, &ada_id, "Ada's screen", |f| {
        let (left, right) = halves(f);
        f.width() == WIDTH as usize
            && f.height() == HEIGHT as usize
            && is_red(left)
            && is_blue(right)
    })
    .await;
    // What changes on the screen is what arrives.
    let _repaint = xvfb.paint(0x0000ff, 0xff0000);
    picture(&mut grace, &ada_id, "the repainted screen", |f| {
        let (left, right) = halves(f);
        is_blue(left) && is_red(right)
    })
    .await;

    // Sharing stops: the camera (the test pattern, still open) again.
    ada.command(Command::ShareScreen(None));
    sharing_is(&mut grace, &ada_id, false).await;
    picture(&mut grace, &ada_id, "Ada's camera again", |f| {
        f.width() == 640
            && f.height() == 360
            && huddle_engine::video::pattern::read_stamp(f).is_some()
    })
    .await;
    ada.command(Command::Leave);
    grace.command(Command::Leave);
}

#[tokio::test]
async fn a_screen_that_cannot_be_captured_says_why() {
    let free = (500..600)
        .find(|n| !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists())
        .unwrap();
    let error = ScreenSource::open_display(Some(&format!(":{free}"))).unwrap_err();
    assert!(matches!(error, CaptureError::Screen(_)), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with("the screen cannot be shared: no X server to capture"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_that_goes_away_stops_the_sharing_and_the_room_is_told() {
    let mut xvfb = Xvfb::start();
    let _paint = xvfb.paint(0x00ff00, 0x00ff00);
    let (mut ada, ada_id, mut grace, _) = ada_and_grace_in_a_call(server().await).await;
    ada.command(Command::ShareScreen(Some(Box::new(xvfb.capture().await))));
    sharing_is(&mut grace, &ada_id, true).await;
    // The X server dies under the capture.
    let _ = xvfb.child.kill();
    until(&mut ada, 10, "ScreenFailed", |e| {
        matches!(e, CallEvent::ScreenFailed(CaptureError::Stopped(_)))
    })
    .await;
    sharing_is(&mut grace, &ada_id, false).await;
    picture(
        &mut grace,
        &ada_id,
        "Ada's camera after the screen went",
        |f| f.width() == 640 && f.height() == 360,
    )
    .await;
}

/// `huddle-peer --video screen` in a Wayland session whose session bus is
/// `bus`: it must fail before joining, saying `expected`.
#[cfg(target_os = "linux")]
fn wayland_share_fails(bus: &str, expected: &str) {
    let output = Process::new(env!("CARGO_BIN_EXE_huddle-peer"))
        .args(["--server", "ws://127.0.0.1:9/ws", "--room", "r"])
        .args(["--video", "screen", "--audio", "none"])
        .env("WAYLAND_DISPLAY", "wayland-huddle-test")
        .env("XDG_SESSION_TYPE", "wayland")
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the screen cannot be shared: Wayland screen sharing: ")
            && stderr.contains(expected),
        "{stderr}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn in_a_wayland_session_without_a_session_bus_the_share_says_so() {
    wayland_share_fails(
        "unix:path=/nonexistent/huddle-test-bus",
        "there is no D-Bus session bus",
    );
}

/// A session bus of the test's own (`dbus-daemon`, Debian package
/// `dbus-daemon`) that starts no services: no desktop portal on it, as
/// under Xvfb or on a desktop without xdg-desktop-portal. Killed when
/// dropped.
#[cfg(target_os = "linux")]
struct SessionBus {
    daemon: Child,
    dir: std::path::PathBuf,
    address: String,
}

#[cfg(target_os = "linux")]
impl SessionBus {
    fn start(name: &str) -> SessionBus {
        use std::io::BufRead;
        let dir = std::env::temp_dir().join(format!("huddle-bus-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("session.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.display()
            ),
        )
        .unwrap();
        let mut daemon = Process::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (Debian package dbus-daemon) must be installed");
        let mut address = String::new();
        std::io::BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        SessionBus {
            daemon,
            dir,
            address: address.trim().to_owned(),
        }
    }
}

#[cfg(target_os = "linux")]
impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(target_os = "linux")]
#[test]
fn in_a_wayland_session_without_a_desktop_portal_the_share_says_so() {
    let bus = SessionBus::start("portal");
    wayland_share_fails(
        &bus.address,
        "the desktop portal (xdg-desktop-portal) is not running",
    );
}

/// A PipeWire daemon of the test's own (Debian packages `pipewire-bin`,
/// `wireplumber`), in a runtime directory of its own, with a GStreamer
/// source node (`gstreamer1.0-tools`, `gstreamer1.0-pipewire`) painting the
/// stream red: what a compositor's screen cast is to PipeWire. Killed when
/// dropped.
#[cfg(target_os = "linux")]
struct PipeWire {
    dir: std::path::PathBuf,
    children: Vec<Child>,
    /// WirePlumber, the session manager that links streams, needs one.
    bus: SessionBus,
}

#[cfg(target_os = "linux")]
impl PipeWire {
    fn start() -> PipeWire {
        let dir = std::env::temp_dir().join(format!("huddle-pw-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut pw = PipeWire {
            dir,
            children: Vec::new(),
            bus: SessionBus::start("pipewire"),
        };
        let daemon = pw.spawn("pipewire", &[]);
        pw.children.push(daemon);
        pw.wait_for(
            |pw| pw.dir.join("pipewire-0").exists(),
            "the PipeWire daemon",
        );
        let manager = pw.spawn("wireplumber", &[]);
        pw.children.push(manager);
        let source = pw.spawn(
            "gst-launch-1.0",
            &[
                "videotestsrc",
                "pattern=red",
                "is-live=true",
                "!",
                "video/x-raw,format=BGRx,width=320,height=240,framerate=10/1",
                "!",
                "pipewiresink",
                "mode=provide",
                "stream-properties=p,media.class=Video/Source,node.name=huddle-test-screen",
            ],
        );
        pw.children.push(source);
        pw
    }

    fn spawn(&self, program: &str, args: &[&str]) -> Child {
        Process::new(program)
            .args(args)
            .env("XDG_RUNTIME_DIR", &self.dir)
            .env("HOME", &self.dir)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus.address)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} must be installed: {e}"))
    }

    fn wait_for(&self, mut ready: impl FnMut(&PipeWire) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready(self) {
            assert!(Instant::now() < deadline, "{what} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The id of the source node, once it is there.
    fn source_node(&self) -> u32 {
        let mut node = None;
        self.wait_for(
            |pw| {
                let dump = Process::new("pw-dump")
                    .env("XDG_RUNTIME_DIR", &pw.dir)
                    .output()
                    .unwrap();
                let objects: serde_json::Value =
                    serde_json::from_slice(&dump.stdout).unwrap_or_default();
                node = objects.as_array().into_iter().flatten().find_map(|o| {
                    let name = &o["info"]["props"]["node.name"];
                    (name == "huddle-test-screen").then(|| o["id"].as_u64().unwrap() as u32)
                });
                node.is_some()
            },
            "the source node",
        );
        node.unwrap()
    }

    /// A new connection to the daemon, as the portal's `OpenPipeWireRemote`
    /// hands one out.
    fn remote(&self) -> std::os::fd::OwnedFd {
        std::os::unix::net::UnixStream::connect(self.dir.join("pipewire-0"))
            .unwrap()
            .into()
    }
}

#[cfg(target_os = "linux")]
impl Drop for PipeWire {
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The half of Wayland screen sharing that runs without a compositor: a
/// PipeWire video node read through a connection to its daemon, as the
/// portal grants one — format negotiated, buffers mapped, pictures decoded
/// to the colour the source paints.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipewire_screen_stream_is_read_as_the_portal_would_grant_it() {
    use huddle_engine::video::source::VideoSource;
    let pw = PipeWire::start();
    let node = pw.source_node();
    let remote = pw.remote();
    let mut screen = tokio::task::spawn_blocking(move || ScreenSource::open_pipewire(remote, node))
        .await
        .unwrap()
        .unwrap();
    for _ in 0..3 {
        let frame = screen.next_frame().await.unwrap();
        assert_eq!((frame.width(), frame.height()), (320, 240));
        let (left, right) = halves(&frame);
        assert!(is_red(left) && is_red(right), "{left:?} {right:?}");
    }
}
