//! The picture-in-picture window: a small always-on-top window with one
//! call member's pictures, for while the main window is elsewhere. The main
//! window picks whom (its spotlight: the pinned tile, a shared screen, the
//! speaker) and says so with `pip_show`; this module opens the window, points
//! the frame gate's [`PIP_VIEW`] at that member and tells the window
//! ([`PIP_EVENT`]). The window pulls the pictures like any tile; closing it
//! (or leaving the call) closes the view.

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, Manager, WebviewUrl, WebviewWindowBuilder};
use ts_rs::TS;

use crate::frames::FrameGate;

/// The window's label (its capability in `tauri.conf.json` names it).
pub const PIP_LABEL: &str = "pip";
/// The frame gate's view the window pulls.
pub const PIP_VIEW: &str = "pip";
/// The event that tells the window whom it shows.
pub const PIP_EVENT: &str = "pip";
/// The window's first size (16:9), in logical pixels.
const SIZE: (f64, f64) = (384.0, 216.0);

/// Whom the picture-in-picture window shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct PipTarget {
    /// The member's id (`self`: the self view).
    pub member: String,
    /// The name to show under the pictures.
    pub name: String,
}

/// Shows `target` in the window, opening it if need be.
pub fn show(app: &AppHandle, frames: &FrameGate, target: &PipTarget) -> tauri::Result<()> {
    frames.open_view(PIP_VIEW.into(), target.member.clone());
    if let Some(window) = app.get_webview_window(PIP_LABEL) {
        window.set_title(&title(target))?;
        return window.emit(PIP_EVENT, target);
    }
    WebviewWindowBuilder::new(app, PIP_LABEL, WebviewUrl::App("index.html".into()))
        .title(title(target))
        .inner_size(SIZE.0, SIZE.1)
        .min_inner_size(SIZE.0 / 2.0, SIZE.1 / 2.0)
        .always_on_top(true)
        .skip_taskbar(true)
        .build()?;
    Ok(())
}

/// Closes the window (if open) and its view.
pub fn close(app: &AppHandle, frames: &FrameGate) {
    frames.close(PIP_VIEW);
    if let Some(window) = app.get_webview_window(PIP_LABEL) {
        // Already going: nothing more to do.
        let _ = window.destroy();
    }
}

fn title(target: &PipTarget) -> String {
    format!("{} — Huddle", target.name)
}
