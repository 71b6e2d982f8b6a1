//! Windows' primary screen, copied with GDI: `BitBlt` from the screen's
//! device context into a bitmap of ours, read back with `GetDIBits` as
//! top-down 32-bit BGRX rows. GDI is on every Windows (and in wine, which
//! runs it in the tests); Windows.Graphics.Capture and DXGI duplication
//! are faster on a GPU but neither exists under wine, so this is the
//! capturer that can be run here. `CAPTUREBLT` includes layered windows.
//!
//! The device contexts belong to the capture thread that opened them
//! (`Screen` is not `Send`; see `super::spawn`).

// GDI is a C API: every call is unsafe, each one's conditions said beside it.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::ptr::null_mut;

use windows_sys::Win32::Graphics::Gdi::{
    BitBlt, CreateCompatibleBitmap, CreateCompatibleDC, DeleteDC, DeleteObject, GetDC, GetDIBits,
    ReleaseDC, SelectObject, BITMAPINFO, BITMAPINFOHEADER, BI_RGB, CAPTUREBLT, DIB_RGB_COLORS,
    HBITMAP, HDC, HGDIOBJ, SRCCOPY,
};
use windows_sys::Win32::UI::HiDpi::{
    SetThreadDpiAwarenessContext, DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2,
};
use windows_sys::Win32::UI::WindowsAndMessaging::{GetSystemMetrics, SM_CXSCREEN, SM_CYSCREEN};

use super::{scale_for, Grab};
use crate::video::convert::{packed_to_i420, Packed};
use crate::video::source::CaptureError;
use crate::video::I420Frame;

/// The primary screen's device context and a bitmap of its size to copy
/// it into.
pub(super) struct Screen {
    screen: HDC,
    memory: HDC,
    bitmap: HBITMAP,
    /// What `memory` held before `bitmap` was selected into it.
    previous: HGDIOBJ,
    size: (i32, i32),
    pixels: Vec<u8>,
}

impl Screen {
    pub(super) fn open() -> Result<Screen, CaptureError> {
        // A thread unaware of display scaling sees the screen in scaled-down
        // units: at 150 % it would read 1280×720 of a 1920×1080 screen and
        // copy its top-left part only. This thread works in real pixels
        // (the rest of the process is left as it is).
        // SAFETY: a plain setting of the calling thread; a NULL answer (a
        // context this Windows does not know) leaves it unaware, which is
        // only less sharp. The call itself needs Windows 10 1607 or later,
        // as the WebView2 runtime the app runs in does.
        unsafe { SetThreadDpiAwarenessContext(DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2) };
        // SAFETY: GetDC(NULL) asks for the whole screen's context; it is
        // released in Drop.
        let screen = unsafe { GetDC(null_mut()) };
        if screen.is_null() {
            return Err(CaptureError::Screen(
                "Windows gave no device context for the screen".into(),
            ));
        }
        // SAFETY: `screen` is a valid context; the memory context is
        // deleted in Drop.
        let memory = unsafe { CreateCompatibleDC(screen) };
        let mut this = Screen {
            screen,
            memory,
            bitmap: null_mut(),
            previous: null_mut(),
            size: (0, 0),
            pixels: Vec::new(),
        };
        if memory.is_null() {
            return Err(CaptureError::Screen(
                "Windows could not make a device context to copy the screen into".into(),
            ));
        }
        this.fit(screen_size()?)?;
        Ok(this)
    }

    /// Makes the bitmap `size` (the screen's resolution may change while
    /// it is shared).
    fn fit(&mut self, size: (i32, i32)) -> Result<(), CaptureError> {
        if size == self.size && !self.bitmap.is_null() {
            return Ok(());
        }
        self.release_bitmap();
        // SAFETY: both contexts are valid; the bitmap is deleted by
        // release_bitmap, after the previous object is selected back.
        unsafe {
            let bitmap = CreateCompatibleBitmap(self.screen, size.0, size.1);
            if bitmap.is_null() {
                return Err(CaptureError::Stopped(format!(
                    "Windows could not make a {}x{} bitmap for the screen",
                    size.0, size.1
                )));
            }
            self.previous = SelectObject(self.memory, bitmap);
            self.bitmap = bitmap;
        }
        self.size = size;
        Ok(())
    }

    fn release_bitmap(&mut self) {
        if self.bitmap.is_null() {
            return;
        }
        // SAFETY: `bitmap` is ours and selected into `memory`; it is
        // selected out before it is deleted.
        unsafe {
            SelectObject(self.memory, self.previous);
            DeleteObject(self.bitmap);
        }
        self.bitmap = null_mut();
    }
}

/// The primary screen's size in pixels.
fn screen_size() -> Result<(i32, i32), CaptureError> {
    // SAFETY: plain queries without pointers.
    let size = unsafe { (GetSystemMetrics(SM_CXSCREEN), GetSystemMetrics(SM_CYSCREEN)) };
    if size.0 < 2 || size.1 < 2 {
        return Err(CaptureError::Stopped(format!(
            "the screen reads {}x{} pixels",
            size.0, size.1
        )));
    }
    Ok(size)
}

impl Grab for Screen {
    fn grab(&mut self) -> Result<I420Frame, CaptureError> {
        self.fit(screen_size()?)?;
        let (w, h) = self.size;
        // SAFETY: valid contexts of this thread; the copy stays within the
        // bitmap, which is `w`×`h`.
        let copied = unsafe {
            BitBlt(
                self.memory,
                0,
                0,
                w,
                h,
                self.screen,
                0,
                0,
                SRCCOPY | CAPTUREBLT,
            )
        };
        if copied == 0 {
            return Err(CaptureError::Stopped(
                "Windows refused to copy the screen".into(),
            ));
        }
        let (width, height) = (w as usize, h as usize);
        self.pixels.resize(width * height * 4, 0);
        let mut info = BITMAPINFO {
            bmiHeader: BITMAPINFOHEADER {
                biSize: std::mem::size_of::<BITMAPINFOHEADER>() as u32,
                biWidth: w,
                // Negative: rows top-down, as the converter reads them.
                biHeight: -h,
                biPlanes: 1,
                biBitCount: 32,
                biCompression: BI_RGB,
                ..Default::default()
            },
            ..Default::default()
        };
        // SAFETY: `pixels` holds `h` rows of `w` 32-bit pixels, exactly
        // what `info` asks for; the bitmap is not selected into another
        // context while it is read.
        let rows = unsafe {
            GetDIBits(
                self.memory,
                self.bitmap,
                0,
                h as u32,
                self.pixels.as_mut_ptr().cast::<c_void>(),
                &mut info,
                DIB_RGB_COLORS,
            )
        };
        if rows != h {
            return Err(CaptureError::Stopped(format!(
                "Windows gave {rows} of the screen's {h} rows"
            )));
        }
        packed_to_i420(
            &self.pixels,
            width,
            height,
            Packed::bgrx(width),
            scale_for(width),
        )
        .ok_or_else(|| CaptureError::Stopped(format!("a short {w}x{h} screen picture")))
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.release_bitmap();
        // SAFETY: both contexts were made in open and are released once.
        unsafe {
            if !self.memory.is_null() {
                DeleteDC(self.memory);
            }
            ReleaseDC(null_mut(), self.screen);
        }
    }
}
