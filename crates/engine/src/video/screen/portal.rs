//! Screen sharing in a Wayland session: the desktop portal's ScreenCast
//! (`org.freedesktop.portal.ScreenCast` over the session D-Bus, through
//! `ashpd`) asks the user what to share — its own dialog is the picker, a
//! screen or a window — and grants a PipeWire stream of it (`pipewire.rs`).
//!
//! A Wayland compositor lets no client read the screen by itself; the portal
//! is the only way in, and the user's consent is part of it. The D-Bus calls
//! run on a small runtime of the capture thread's own, which also closes the
//! portal session when the share ends.

use std::os::fd::OwnedFd;

use ashpd::desktop::screencast::{CursorMode, Screencast, SourceType};
use ashpd::desktop::{PersistMode, Session};

use super::{pipewire, Grab};
use crate::video::source::CaptureError;
use crate::video::I420Frame;

/// The user's screen (or window) as the portal granted it; dropping it
/// closes the portal session (the compositor's sharing indicator goes).
pub(super) struct Screen {
    stream: pipewire::Screen,
    session: Option<Session<'static, Screencast<'static>>>,
    runtime: tokio::runtime::Runtime,
}

/// Says why the portal could not be used, in the user's words.
fn refused(e: ashpd::Error) -> CaptureError {
    let bus = match &e {
        ashpd::Error::Zbus(bus) | ashpd::Error::Portal(ashpd::PortalError::ZBus(bus)) => Some(bus),
        _ => None,
    };
    let why = match (&e, bus) {
        (ashpd::Error::Response(ashpd::desktop::ResponseError::Cancelled), _) => {
            return CaptureError::Screen("screen sharing was cancelled".into())
        }
        (ashpd::Error::Response(ashpd::desktop::ResponseError::Other), _) => {
            "the desktop portal could not start the screen cast (its backend failed: see its log)"
        }
        (ashpd::Error::PortalNotFound(_), _) => {
            "the desktop portal has no screen cast here (install the portal for your desktop, e.g. xdg-desktop-portal-gnome, -kde or -wlr)"
        }
        (
            _,
            Some(
                zbus::Error::Connection(..)
                | zbus::Error::InputOutput(_)
                | zbus::Error::Address(_)
                | zbus::Error::Handshake(_),
            ),
        ) => "there is no D-Bus session bus to reach the desktop portal through",
        (_, Some(zbus::Error::MethodError(name, _, _)))
            if name.as_str() == "org.freedesktop.DBus.Error.ServiceUnknown" =>
        {
            "the desktop portal (xdg-desktop-portal) is not running"
        }
        _ => "the desktop portal refused",
    };
    CaptureError::Screen(format!("Wayland screen sharing: {why} ({e})"))
}

impl Screen {
    /// Asks the portal for a screen or window (the user picks in the
    /// portal's dialog; this blocks until they have) and connects to it.
    pub(super) fn open() -> Result<Screen, CaptureError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CaptureError::Screen(e.to_string()))?;
        let (session, remote, node) = runtime.block_on(ask()).map_err(refused)?;
        let stream = match pipewire::Screen::open(remote, node) {
            Ok(stream) => stream,
            Err(e) => {
                let _ = runtime.block_on(session.close());
                return Err(e);
            }
        };
        Ok(Screen {
            stream,
            session: Some(session),
            runtime,
        })
    }
}

/// The portal's dialog, then the granted stream: its session, a PipeWire
/// connection and the stream's node.
async fn ask() -> Result<(Session<'static, Screencast<'static>>, OwnedFd, u32), ashpd::Error> {
    let portal = Screencast::new().await?;
    // The pointer drawn into the pictures where the portal can, as an X11
    // grab shows it.
    let cursor = match portal.available_cursor_modes().await {
        Ok(modes) if modes.contains(CursorMode::Embedded) => CursorMode::Embedded,
        _ => CursorMode::Hidden,
    };
    let session = portal.create_session().await?;
    portal
        .select_sources(
            &session,
            cursor,
            SourceType::Monitor | SourceType::Window,
            false,
            None,
            PersistMode::DoNot,
        )
        .await?;
    let granted = portal.start(&session, None).await?.response()?;
    let node = granted
        .streams()
        .first()
        .map(|stream| stream.pipe_wire_node_id())
        .ok_or(ashpd::Error::NoResponse)?;
    let remote = portal.open_pipe_wire_remote(&session).await?;
    Ok((session, remote, node))
}

impl Grab for Screen {
    fn grab(&mut self) -> Result<I420Frame, CaptureError> {
        self.stream.grab()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            // Tells the compositor the share is over (its indicator goes).
            let _ = self.runtime.block_on(session.close());
        }
    }
}
