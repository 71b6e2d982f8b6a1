//! The screen of an X11 display: its root window, checked to hold 32-bit
//! BGRX pixels, read whole with the core protocol's `GetImage` through
//! `x11rb` (pure Rust, no C library).

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt, ImageFormat, ImageOrder, Window};
use x11rb::rust_connection::RustConnection;

use super::{scale_for, Grab};
use crate::video::convert::{packed_to_i420, Packed};
use crate::video::source::CaptureError;
use crate::video::I420Frame;

fn unavailable(why: impl std::fmt::Display) -> CaptureError {
    CaptureError::Screen(why.to_string())
}

/// An X server's root window.
pub(super) struct Screen {
    conn: RustConnection,
    root: Window,
}

impl Screen {
    /// Connects to `display` (`None`: `$DISPLAY`).
    pub(super) fn open(display: Option<&str>) -> Result<Screen, CaptureError> {
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
}

impl Grab for Screen {
    fn grab(&mut self) -> Result<I420Frame, CaptureError> {
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
