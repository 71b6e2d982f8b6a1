//! The screen as a [`VideoSource`]: the whole X11 screen (`$DISPLAY`),
//! read with the core protocol's `GetImage` through `x11rb` (no C library),
//! at [`SCREEN_FPS`]. Screens wider than [`MAX_WIDTH`] are shrunk by whole
//! factors (a 4K screen is sent as 1920×1080).
//!
//! Like the camera, capture runs on a thread of its own and hands pictures
//! over through a two-slot channel, so a slow encoder drops pictures rather
//! than building up delay; dropping the source stops the thread.
//!
//! Where this cannot work it says so when opened: on Windows and macOS (no
//! capturer yet), in a Wayland session (capture there goes through the
//! desktop portal and PipeWire, which this does not use), without an X
//! server, or on an X server whose pixels are not 32-bit little-endian.

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
    if !cfg!(all(unix, not(target_os = "macos"))) {
        return Some("Screen sharing is not available on this platform yet.");
    }
    if std::env::var("XDG_SESSION_TYPE").is_ok_and(|t| t == "wayland") {
        return Some("Screen sharing in a Wayland session needs the desktop portal, which Huddle does not use yet.");
    }
    if std::env::var_os("DISPLAY").is_none() {
        return Some("There is no X display to share.");
    }
    None
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

#[cfg(all(unix, not(target_os = "macos")))]
mod x11 {
    use std::time::{Duration, Instant};

    use tokio::sync::mpsc;
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{ConnectionExt, ImageFormat, ImageOrder, Window};
    use x11rb::rust_connection::RustConnection;

    use super::{scale_for, ScreenSource, SCREEN_FPS};
    use crate::video::convert::{packed_to_i420, Packed};
    use crate::video::source::CaptureError;
    use crate::video::I420Frame;

    fn unavailable(why: impl std::fmt::Display) -> CaptureError {
        CaptureError::Screen(why.to_string())
    }

    /// The X server's root window, checked to hold 32-bit BGRX pixels.
    struct Screen {
        conn: RustConnection,
        root: Window,
    }

    impl Screen {
        fn open(display: Option<&str>) -> Result<Screen, CaptureError> {
            if display.is_none() && std::env::var("XDG_SESSION_TYPE").is_ok_and(|t| t == "wayland")
            {
                return Err(unavailable(
                    "this is a Wayland session; sharing its screen needs the desktop portal, which Huddle does not use yet",
                ));
            }
            let (conn, number) = x11rb::connect(display)
                .map_err(|e| unavailable(format!("no X server to capture ({e})")))?;
            let setup = conn.setup();
            let screen = setup
                .roots
                .get(number)
                .ok_or_else(|| unavailable("the X server has no such screen"))?;
            let bits = setup
                .pixmap_formats
                .iter()
                .find(|f| f.depth == screen.root_depth)
                .map(|f| f.bits_per_pixel);
            if bits != Some(32) || setup.image_byte_order != ImageOrder::LSB_FIRST {
                return Err(unavailable(format!(
                    "the screen's pixels are not 32-bit little-endian (depth {}, {bits:?} bits)",
                    screen.root_depth
                )));
            }
            let root = screen.root;
            Ok(Screen { conn, root })
        }

        /// The whole screen now, as I420.
        fn grab(&self) -> Result<I420Frame, CaptureError> {
            let failed = |e: &dyn std::fmt::Display| CaptureError::Stopped(e.to_string());
            let geometry = self
                .conn
                .get_geometry(self.root)
                .map_err(|e| failed(&e))?
                .reply()
                .map_err(|e| failed(&e))?;
            let (w, h) = (geometry.width, geometry.height);
            let image = self
                .conn
                .get_image(ImageFormat::Z_PIXMAP, self.root, 0, 0, w, h, !0)
                .map_err(|e| failed(&e))?
                .reply()
                .map_err(|e| failed(&e))?;
            let (w, h) = (usize::from(w), usize::from(h));
            packed_to_i420(&image.data, w, h, Packed::bgrx(w), scale_for(w))
                .ok_or_else(|| CaptureError::Stopped(format!("a short {w}x{h} screen picture")))
        }
    }

    pub fn open(display: Option<&str>) -> Result<ScreenSource, CaptureError> {
        let screen = Screen::open(display)?;
        // The first picture is taken here: a screen that cannot be read
        // fails now, not after the call was told it is being shared.
        let first = screen.grab()?;
        let (tx, frames) = mpsc::channel(2);
        let _ = tx.try_send(Ok(first));
        std::thread::Builder::new()
            .name("screen".into())
            .spawn(move || capture(screen, tx))
            .map_err(unavailable)?;
        Ok(ScreenSource { frames })
    }

    /// Takes a picture every period until the source is dropped.
    fn capture(screen: Screen, frames: mpsc::Sender<Result<I420Frame, CaptureError>>) {
        let period = Duration::from_secs(1) / SCREEN_FPS;
        let mut next = Instant::now() + period;
        loop {
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            next = (next + period).max(Instant::now());
            let picture = screen.grab();
            let failed = picture.is_err();
            match frames.try_send(picture) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
            if failed {
                // The X server went away: the pipeline reports it and stops.
                return;
            }
        }
    }
}

impl ScreenSource {
    /// Starts capturing the screen of `$DISPLAY`. Blocks while it connects
    /// and takes the first picture (call it off the async threads).
    pub fn open() -> Result<ScreenSource, CaptureError> {
        ScreenSource::open_display(None)
    }

    /// Starts capturing the screen of X display `display` (`":1"`;
    /// `None`: `$DISPLAY`).
    #[cfg(all(unix, not(target_os = "macos")))]
    pub fn open_display(display: Option<&str>) -> Result<ScreenSource, CaptureError> {
        x11::open(display)
    }

    /// Screen capture is not available on this platform yet.
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    pub fn open_display(_display: Option<&str>) -> Result<ScreenSource, CaptureError> {
        Err(CaptureError::Screen(
            "screen sharing is not available on this platform yet".into(),
        ))
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
