//! The commands the window invokes. Each is thin: it checks its input and
//! hands the work to a session, the frame gate, the lobby watch, the
//! settings or the hosted server.

use huddle_engine::audio::SystemSound;
use huddle_engine::lobby::{LobbyEvent, RoomWatch};
use huddle_engine::tls::ServerTrust;
use huddle_protocol::ClientMessage;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use tauri::ipc::{Channel, Response};
use tauri::{Manager, State};
use ts_rs::TS;

use crate::devices::{self, DeviceList};
use crate::error::CommandError;
use crate::events::{DeviceKind, UiEvent};
use crate::host::{HostInfo, Hosted};
use crate::links::{self, JoinLink};
use crate::notifications;
use crate::pip::{self, PipTarget};
use crate::session::{self, DeviceChoice, JoinRequest, Session, SELF_TILE};
use crate::settings::Settings;
use crate::state::AppState;

/// The longest a `next_frame` waits before answering with nothing (the
/// window then asks again, or stops if the tile is gone).
const NEXT_FRAME_WAIT: Duration = Duration::from_secs(1);

/// What the window needs at start.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Startup {
    pub settings: Settings,
    pub devices: DeviceList,
    /// A `huddle://` link the app was opened with, if any.
    pub link: Option<JoinLink>,
    /// The hosted server, when this app hosts one.
    pub hosting: Option<HostInfo>,
    /// The page is painted in software: draw pictures with the 2D canvas
    /// (a WebGL canvas would be read back for every picture).
    pub software_painting: bool,
    /// Why the screen cannot be shared here, if that is known; `None`:
    /// sharing is offered.
    pub screen_share_unavailable: Option<String>,
    /// Why the computer's sound cannot go with a shared screen here;
    /// `None`: the choice is offered.
    pub screen_sound_unavailable: Option<String>,
}

#[derive(Debug, Clone, Deserialize, TS)]
pub struct JoinArgs {
    /// The server as typed (normalized here).
    pub server: String,
    pub room: String,
    pub name: String,
    pub password: Option<String>,
    /// The server's access token (from a link, or the hosted server's).
    pub token: Option<String>,
    /// The fingerprint of the certificate to trust on `wss://` (from a link,
    /// or the hosted server's); none: the system's authorities.
    pub fingerprint: Option<String>,
}

#[tauri::command]
pub async fn attach(
    events: Channel<UiEvent>,
    state: State<'_, AppState>,
) -> Result<Startup, CommandError> {
    state.ui.attach(events);
    let devices = tauri::async_runtime::spawn_blocking(devices::list)
        .await
        .unwrap_or_default();
    let hosting = state.host.lock().await.as_ref().map(Hosted::info);
    Ok(Startup {
        settings: state.settings(),
        devices,
        link: state.take_link(),
        hosting,
        software_painting: state.software_painting,
        screen_share_unavailable: huddle_engine::video::screen::unavailable().map(str::to_owned),
        screen_sound_unavailable: SystemSound::unavailable().map(str::to_owned),
    })
}

/// Keeps the window's settings. The window writes every field but one: the
/// window's own size and place, which the shell keeps (on close). The
/// volume and the microphone's processing apply at once.
#[tauri::command]
pub async fn save_settings(
    mut settings: Settings,
    state: State<'_, AppState>,
) -> Result<(), CommandError> {
    let before = state.settings();
    settings.window = before.window;
    state.volume.set(settings.volume);
    // Only a change: a new processor starts its echo canceller afresh, and
    // the window saves on every volume step.
    if settings.audio_processing != before.audio_processing {
        if let Some(session) = state.session.lock().await.as_ref() {
            session.set_processing(settings.audio_processing.into());
        }
    }
    state.store_settings(settings)
}

/// Watches the room list of `server` (`None`: stop watching).
#[tauri::command]
pub async fn watch_rooms(
    server: Option<String>,
    token: Option<String>,
    fingerprint: Option<String>,
    state: State<'_, AppState>,
) -> Result<(), CommandError> {
    let mut lobby = state.lobby.lock().await;
    if let Some(task) = lobby.take() {
        task.abort();
    }
    let Some(server) = server else {
        return Ok(());
    };
    let url = links::server_ws_url(&server)?;
    let trust = links::server_trust(fingerprint.as_deref())?;
    let ui = state.ui.clone();
    *lobby = Some(tauri::async_runtime::spawn(async move {
        let mut watch = RoomWatch::start(url, token, trust);
        while let Some(event) = watch.next_event().await {
            let rooms = match event {
                LobbyEvent::Rooms(rooms) => Some(rooms),
                LobbyEvent::NotOffered => None,
                LobbyEvent::Disconnected => continue,
            };
            ui.emit(UiEvent::Rooms { rooms });
        }
    }));
    Ok(())
}

#[tauri::command]
pub async fn join(args: JoinArgs, state: State<'_, AppState>) -> Result<(), CommandError> {
    let server = links::server_ws_url(&args.server)?;
    let trust = links::server_trust(args.fingerprint.as_deref())?;
    let mut session = state.session.lock().await;
    if let Some(old) = session.take() {
        old.leave().await;
    }
    let request = JoinRequest {
        server,
        room: args.room,
        name: args.name,
        password: args.password.filter(|p| !p.is_empty()),
        token: args.token.filter(|t| !t.is_empty()),
        trust,
    };
    *session = Some(Session::start(
        request,
        state.ui.new_session(),
        state.frames.clone(),
        state.volume.clone(),
        state.settings().audio_processing.into(),
    ));
    Ok(())
}

#[tauri::command]
pub async fn leave(app: tauri::AppHandle, state: State<'_, AppState>) -> Result<(), CommandError> {
    state.ui.end_sessions();
    if let Some(session) = state.session.lock().await.take() {
        session.leave().await;
    }
    close_pip(&app, &state).await;
    state.frames.close_all();
    Ok(())
}

/// Chat, typing, ring and ring replies, as the protocol spells them.
#[tauri::command]
pub async fn send(message: ClientMessage, state: State<'_, AppState>) -> Result<(), CommandError> {
    let session = state.session.lock().await;
    session
        .as_ref()
        .ok_or(CommandError::NotJoined)?
        .send(message);
    Ok(())
}

#[tauri::command]
pub async fn join_call(video: bool, state: State<'_, AppState>) -> Result<(), CommandError> {
    let choice = chosen_devices(&state);
    let mut session = state.session.lock().await;
    let session = session.as_mut().ok_or(CommandError::NotJoined)?;
    session.join_call(video, choice, &state.ui).await;
    Ok(())
}

/// The devices the settings name (`None`: the system's default).
fn chosen_devices(state: &AppState) -> DeviceChoice {
    let settings = state.settings();
    DeviceChoice {
        camera: settings.camera,
        microphone: settings.microphone,
        speaker: settings.speaker,
    }
}

/// The device check before a call: the camera's pictures (the `self`
/// tile; with `video` only) and the microphone's level, without joining
/// (`on`), or stops it.
#[tauri::command]
pub async fn preview(
    on: bool,
    video: bool,
    state: State<'_, AppState>,
) -> Result<(), CommandError> {
    let choice = chosen_devices(&state);
    let mut session = state.session.lock().await;
    let session = session.as_mut().ok_or(CommandError::NotJoined)?;
    session.preview(on, video, choice, &state.ui).await;
    Ok(())
}

#[tauri::command]
pub async fn leave_call(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
) -> Result<(), CommandError> {
    // The picture-in-picture window belongs to the call.
    close_pip(&app, &state).await;
    let mut session = state.session.lock().await;
    session
        .as_mut()
        .ok_or(CommandError::NotJoined)?
        .leave_call();
    Ok(())
}

#[tauri::command]
pub async fn set_microphone(on: bool, state: State<'_, AppState>) -> Result<(), CommandError> {
    let session = state.session.lock().await;
    let session = session.as_ref().ok_or(CommandError::NotJoined)?;
    if !session.in_call() {
        return Err(CommandError::NotInCall);
    }
    session.set_microphone(on);
    Ok(())
}

#[tauri::command]
pub async fn set_camera(on: bool, state: State<'_, AppState>) -> Result<(), CommandError> {
    let camera = state.settings().camera;
    let mut session = state.session.lock().await;
    let session = session.as_mut().ok_or(CommandError::NotJoined)?;
    if !session.in_call() {
        return Err(CommandError::NotInCall);
    }
    session.set_camera(on, camera, &state.ui).await;
    Ok(())
}

/// Shares the screen in place of the camera (`on`), or stops.
#[tauri::command]
pub async fn set_screen_share(on: bool, state: State<'_, AppState>) -> Result<(), CommandError> {
    let in_call = |session: &mut Option<Session>| match session.as_mut() {
        None => Err(CommandError::NotJoined),
        Some(s) if !s.in_call() => Err(CommandError::NotInCall),
        Some(_) => Ok(()),
    };
    if !on {
        let mut session = state.session.lock().await;
        in_call(&mut session)?;
        if let Some(session) = session.as_mut() {
            session.stop_sharing();
        }
        return Ok(());
    }
    in_call(&mut *state.session.lock().await)?;
    // Not under the session's lock: the user may take their time in the
    // desktop portal's dialog.
    let screen = session::open_screen().await;
    // The computer's sound with it, if the settings ask (and the screen
    // opened): the share goes on without it if it cannot be had.
    let sound = match &screen {
        Ok(_) if state.settings().share_sound => Some(session::open_sound().await),
        _ => None,
    };
    let mut session = state.session.lock().await;
    // The call may have ended meanwhile: the screen is then closed unused.
    in_call(&mut session)?;
    if let Some(session) = session.as_mut() {
        if session.share_screen(screen, &state.ui) {
            if let Some(sound) = sound {
                session.share_sound(sound, &state.ui);
            }
        }
    }
    Ok(())
}

/// Switches to a device at once during a call (the window remembers the
/// choice in the settings).
#[tauri::command]
pub async fn select_device(
    kind: DeviceKind,
    id: Option<String>,
    state: State<'_, AppState>,
) -> Result<(), CommandError> {
    if let Some(session) = state.session.lock().await.as_mut() {
        session.switch(kind, id, &state.ui).await;
    }
    Ok(())
}

/// Keeps `member`'s pictures (`self`: the self view) for the window, under
/// the view name `member`.
#[tauri::command]
pub async fn open_tile(member: String, state: State<'_, AppState>) -> Result<(), CommandError> {
    state.frames.open(member);
    sync_self_view(&state).await;
    Ok(())
}

/// The engine copies the pictures it sends only while some view shows them.
async fn sync_self_view(state: &AppState) {
    if let Some(session) = state.session.lock().await.as_ref() {
        session.show_self(state.frames.shows(SELF_TILE));
    }
}

/// View `view`'s newest picture not yet drawn (raw bytes, see `frames`),
/// waiting up to a second for one; empty when none came.
#[tauri::command]
pub async fn next_frame(
    view: String,
    state: State<'_, AppState>,
) -> Result<Response, CommandError> {
    let frame = state.frames.next(&view, NEXT_FRAME_WAIT).await;
    Ok(Response::new(frame.unwrap_or_default()))
}

#[tauri::command]
pub async fn close_tile(view: String, state: State<'_, AppState>) -> Result<(), CommandError> {
    state.frames.close(&view);
    sync_self_view(&state).await;
    Ok(())
}

/// Closes the picture-in-picture window, if open (never while it opens).
async fn close_pip(app: &tauri::AppHandle, state: &AppState) {
    let _opening = state.pip_opening.lock().await;
    *state.pip_target() = None;
    pip::close(app, &state.frames);
}

/// Shows `target` in the picture-in-picture window, opening it.
#[tauri::command]
pub async fn pip_show(
    target: PipTarget,
    app: tauri::AppHandle,
    state: State<'_, AppState>,
) -> Result<(), CommandError> {
    {
        // Two calls never open the window twice. (Not the target's lock:
        // opening waits on the main thread, which takes that one when the
        // window closes.)
        let _opening = state.pip_opening.lock().await;
        pip::show(&app, &state.frames, &target)?;
    }
    *state.pip_target() = Some(target);
    sync_self_view(&state).await;
    Ok(())
}

/// Whom the picture-in-picture window shows (asked by that window as it starts).
#[tauri::command]
pub fn pip_target(state: State<'_, AppState>) -> Option<PipTarget> {
    state.pip_target().clone()
}

/// Closes the picture-in-picture window.
#[tauri::command]
pub async fn pip_close(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
) -> Result<(), CommandError> {
    close_pip(&app, &state).await;
    sync_self_view(&state).await;
    Ok(())
}

/// Shows a desktop notification (a call started or someone rings while the
/// window is elsewhere).
#[tauri::command]
pub async fn notify(title: String, body: String) -> Result<(), CommandError> {
    let shown = tauri::async_runtime::spawn_blocking(move || notifications::show(&title, &body))
        .await
        .unwrap_or(Err(notifications::NotifyError::Interrupted));
    Ok(shown?)
}

/// Starts the in-process server (once) and says where it is.
#[tauri::command]
pub async fn host(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
) -> Result<HostInfo, CommandError> {
    let mut host = state.host.lock().await;
    if let Some(hosted) = host.as_ref() {
        return Ok(hosted.info());
    }
    let dir = app
        .path()
        .app_data_dir()
        .map_err(|e| CommandError::Host(std::io::Error::other(e)))?;
    let hosted = Hosted::start(&dir).await?;
    let info = hosted.info();
    *host = Some(hosted);
    Ok(info)
}

/// Stops the in-process server: its members are disconnected (1001) and its
/// links stop working.
#[tauri::command]
pub async fn stop_hosting(state: State<'_, AppState>) -> Result<(), CommandError> {
    state.host.lock().await.take();
    Ok(())
}

/// The link that opens the app on `room` of `server` (with its access token).
#[tauri::command]
pub fn join_link(
    server: String,
    room: String,
    token: Option<String>,
    fingerprint: Option<String>,
) -> Result<String, CommandError> {
    let pinned = match links::server_trust(fingerprint.as_deref())? {
        ServerTrust::Pinned(fingerprint) => Some(fingerprint),
        ServerTrust::System => None,
    };
    Ok(links::join_link(
        &links::server_ws_url(&server)?,
        &room,
        token.as_deref(),
        pinned.as_ref(),
    ))
}

/// Closes the app (the window asked first during a call).
#[tauri::command]
pub async fn quit(app: tauri::AppHandle, state: State<'_, AppState>) -> Result<(), CommandError> {
    if let Some(session) = state.session.lock().await.take() {
        session.leave().await;
    }
    app.exit(0);
    Ok(())
}
