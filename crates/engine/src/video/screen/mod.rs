//! The screen as a [`VideoSource`], at [`SCREEN_FPS`]. Screens wider than
//! [`MAX_WIDTH`] are shrunk by whole factors (a 4K screen is sent as
//! 1920×1080). One backend per platform, each only opening the screen and
//! taking a picture of it ([`Grab`]):
//! - `x11.rs`: the whole X11 screen (`$DISPLAY`), read with the core
//!   protocol's `GetImage` through `x11rb` (no C library);
//! - `portal.rs` + `pipewire.rs`: in a Wayland session (Linux), the screen or
//!   window the user picks in the desktop portal's dialog, read from the
//!   PipeWire stream the portal grants;
//! - `gdi.rs`: Windows' primary screen, copied with GDI's `BitBlt`.
//!
//! Capture runs on a thread of its own — the backend is opened there and
//! never leaves it (a Windows device context belongs to its thread) — and
//! hands pictures over through a two-slot channel, so a slow encoder drops
//! pictures rather than building up delay; dropping the source stops the
//! thread. The first picture is taken before [`ScreenSource::open`]
//! returns: a screen that cannot be read fails then, not after the call was
//! told it is being shared.
//!
//! Where this cannot work it says so when opened: on macOS (no capturer
//! yet), in a Wayland session without a desktop portal (or when the user
//! cancels its dialog), without an X server, or on an X server whose pixels
//! are not 32-bit little-endian.

#[cfg(any(windows, all(unix, not(target_os = "macos"))))]
use std::time::{Duration, Instant};

#[cfg(any(windows, all(unix, not(target_os = "macos"))))]
use tokio::sync::mpsc;

use super::source::{CaptureError, VideoSource};
use super::I420Frame;

/// Pictures per second of a shared screen: text and slides need sharpness
/// more than motion, so each picture gets a larger share of the bitrate.
pub const SCREEN_FPS: u32 = 10;
/// The widest picture sent; wider screens are shrunk 2×, 3×, ….
pub const MAX_WIDTH: usize = 1920;

/// The shrink factor for a screen `width` pixels wide.
pub fn scale_for(width: usize) -> usize {
    width.div_ceil(MAX_WIDTH).max(1)
}

/// Why the screen cannot be shared here, when that can be told without
/// trying (the platform, the session type, no display); `None`: try.
pub fn unavailable() -> Option<&'static str> {
    if cfg!(windows) {
        return None;
    }
    if !cfg!(all(unix, not(target_os = "macos"))) {
        return Some("Screen sharing is not available on this platform yet.");
    }
    if wayland() {
        return if cfg!(target_os = "linux") {
            None // the desktop portal
        } else {
            Some("Screen sharing in a Wayland session needs the desktop portal, which Huddle uses only on Linux.")
        };
    }
    if std::env::var_os("DISPLAY").is_none() {
        return Some("There is no X display to share.");
    }
    None
}

/// Whether this is a Wayland session (where only the desktop portal may
/// read the screen; an X11 grab would see only XWayland's windows).
fn wayland() -> bool {
    std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| !d.is_empty())
        || std::env::var("XDG_SESSION_TYPE").is_ok_and(|t| t == "wayland")
}

/// A screen being captured.
#[derive(Debug)]
pub struct ScreenSource {
    frames: tokio::sync::mpsc::Receiver<Result<I420Frame, CaptureError>>,
}

#[async_trait::async_trait]
impl VideoSource for ScreenSource {
    fn fps(&self) -> u32 {
        SCREEN_FPS
    }

    async fn next_frame(&mut self) -> Result<I420Frame, CaptureError> {
        match self.frames.recv().await {
            Some(frame) => frame,
            None => Err(CaptureError::Stopped("the screen capture ended".into())),
        }
    }
}

#[cfg(target_os = "linux")]
mod pipewire;
#[cfg(target_os = "linux")]
mod portal;
#[cfg(all(unix, not(target_os = "macos")))]
mod x11;
#[cfg(all(unix, not(target_os = "macos")))]
use x11::Screen;

#[cfg(windows)]
mod gdi;
#[cfg(windows)]
use gdi::Screen;

/// A screen a backend has opened.
#[cfg(any(windows, all(unix, not(target_os = "macos"))))]
trait Grab {
    /// The whole screen now, as I420.
    fn grab(&mut self) -> Result<I420Frame, CaptureError>;
}

impl ScreenSource {
    /// Starts capturing the screen (on X11, that of `$DISPLAY`). Blocks
    /// while it connects and takes the first picture (call it off the
    /// async threads).
    pub fn open() -> Result<ScreenSource, CaptureError> {
        ScreenSource::open_display(None)
    }

    /// Starts capturing the screen of X display `display` (`":1"`;
    /// `None`: in a Wayland session the screen or window the user picks in
    /// the desktop portal's dialog, else `$DISPLAY`).
    #[cfg(all(unix, not(target_os = "macos")))]
    pub fn open_display(display: Option<&str>) -> Result<ScreenSource, CaptureError> {
        #[cfg(target_os = "linux")]
        if display.is_none() && wayland() {
            return spawn(portal::Screen::open);
        }
        let display = display.map(str::to_owned);
        spawn(move || Screen::open(display.as_deref()))
    }

    /// Reads PipeWire node `node` through `remote`, a connection to a
    /// PipeWire daemon: what the desktop portal grants in a Wayland session
    /// (the tests connect to a daemon of their own).
    #[cfg(target_os = "linux")]
    pub fn open_pipewire(
        remote: std::os::fd::OwnedFd,
        node: u32,
    ) -> Result<ScreenSource, CaptureError> {
        spawn(move || pipewire::Screen::open(remote, node))
    }

    /// The primary screen (there is no display to choose on Windows).
    #[cfg(windows)]
    pub fn open_display(_display: Option<&str>) -> Result<ScreenSource, CaptureError> {
        spawn(Screen::open)
    }

    /// Screen capture is not available on this platform yet.
    #[cfg(not(any(windows, all(unix, not(target_os = "macos")))))]
    pub fn open_display(_display: Option<&str>) -> Result<ScreenSource, CaptureError> {
        Err(CaptureError::Screen(
            "screen sharing is not available on this platform yet".into(),
        ))
    }
}

/// Opens a screen with `open` on a capture thread and waits for its first
/// picture.
#[cfg(any(windows, all(unix, not(target_os = "macos"))))]
fn spawn<S: Grab>(
    open: impl FnOnce() -> Result<S, CaptureError> + Send + 'static,
) -> Result<ScreenSource, CaptureError> {
    let (tx, frames) = mpsc::channel(2);
    let (started, first) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("screen".into())
        .spawn(move || {
            let opened = open().and_then(|mut screen| screen.grab().map(|frame| (screen, frame)));
            match opened {
                Ok((screen, frame)) => {
                    let _ = tx.try_send(Ok(frame));
                    let _ = started.send(Ok(()));
                    capture(screen, tx);
                }
                Err(e) => {
                    let _ = started.send(Err(e));
                }
            }
        })
        .map_err(|e| CaptureError::Screen(e.to_string()))?;
    first
        .recv()
        .map_err(|_| CaptureError::Screen("the screen capture thread ended".into()))??;
    Ok(ScreenSource { frames })
}

/// How long grabs may keep failing before the screen counts as gone: one
/// refused copy is not a lost screen (wine's GDI refused a single copy in
/// one CI run, and the share ended; Windows refuses them while another
/// desktop, e.g. a permission prompt's, is shown).
#[cfg(any(windows, all(unix, not(target_os = "macos"))))]
const GRAB_GRACE: Duration = Duration::from_secs(1);

/// Takes a picture every period until the source is dropped.
#[cfg(any(windows, all(unix, not(target_os = "macos"))))]
fn capture(mut screen: impl Grab, frames: mpsc::Sender<Result<I420Frame, CaptureError>>) {
    let period = Duration::from_secs(1) / SCREEN_FPS;
    let mut next = Instant::now() + period;
    let mut failing_since: Option<Instant> = None;
    loop {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next = (next + period).max(Instant::now());
        let picture = match screen.grab() {
            Ok(picture) => {
                failing_since = None;
                Ok(picture)
            }
            Err(e) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() < GRAB_GRACE {
                    continue;
                }
                Err(e)
            }
        };
        let failed = picture.is_err();
        match frames.try_send(picture) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
        if failed {
            // The screen went away: the pipeline reports it and stops.
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_screens_shrink_by_whole_factors() {
        assert_eq!(scale_for(1280), 1);
        assert_eq!(scale_for(1920), 1);
        assert_eq!(scale_for(2560), 2);
        assert_eq!(scale_for(3840), 2);
        assert_eq!(scale_for(5120), 3);
    }
}
