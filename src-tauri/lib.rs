//! The desktop shell: Tauri wiring over `huddle-engine`. Media runs
//! natively (the engine); the window shows the `src-ui` UI, which reaches
//! the engine only through the commands in [`commands`] and the events in
//! [`events`]. Remote pictures travel as raw bytes ([`frames`]).

pub mod certificate;
pub mod commands;
pub mod devices;
pub mod error;
pub mod events;
pub mod external;
pub mod frames;
pub mod host;
pub mod links;
pub mod notifications;
pub mod pip;
pub mod session;
pub mod settings;
pub mod state;
pub mod ui;

use std::time::Duration;

use tauri::{LogicalPosition, LogicalSize, Manager, WindowEvent};

use crate::events::UiEvent;
use crate::state::AppState;

/// How often the device lists are read to notice hot-plugging.
const DEVICES_EVERY: Duration = Duration::from_secs(3);

/// WebKitGTK composites the page through OpenGL by default. Without a GPU
/// (Mesa's software renderer: virtual machines, remote desktops) that made
/// every picture cost the web process several times more than painting it
/// in software: 6 against 21 pictures a second of 720p on the test machine
/// (`cargo xtask bench-desktop`). The window is a few canvases and plain
/// CSS, so software painting is the default; `HUDDLE_GPU_COMPOSITING=1`
/// gives WebKit back its own choice.
/// Returns whether the page is painted in software (the window then draws
/// pictures with the 2D canvas: a WebGL canvas would be read back from
/// OpenGL for every picture).
#[cfg(target_os = "linux")]
fn choose_compositing() -> bool {
    let gpu = std::env::var_os("HUDDLE_GPU_COMPOSITING").is_some_and(|v| v == "1");
    if !gpu && std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none() {
        // Before any thread starts: nothing else reads the environment yet.
        std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
    }
    std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_some_and(|v| v != "0")
}

#[cfg(not(target_os = "linux"))]
fn choose_compositing() -> bool {
    false
}

/// Runs the app until its window closes.
pub fn run() {
    let software_painting = choose_compositing();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HUDDLE_LOG")
                .unwrap_or_else(|_| "warn,huddle_app=info".into()),
        )
        .try_init();
    let link = std::env::args().find_map(|a| links::parse_join_link(&a));
    let result = tauri::Builder::default()
        // First: a second launch (a `huddle://` link clicked while the app
        // runs) hands its arguments to this one and exits.
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            handed_over(app, &argv)
        }))
        .plugin(tauri_plugin_store::Builder::default().build())
        .plugin(tauri_plugin_opener::init())
        .plugin(external::guard())
        .setup(move |app| {
            let store = settings::open(app.handle())?;
            let state = AppState::new(store, link, software_painting);
            if let (Some(window), Some(saved)) =
                (app.get_webview_window("main"), state.settings().window)
            {
                let _ = window.set_size(LogicalSize::new(saved.width, saved.height));
                let _ = window.set_position(LogicalPosition::new(saved.x, saved.y));
                if saved.maximized {
                    let _ = window.maximize();
                }
            }
            watch_devices(state.ui.clone());
            app.manage(state);
            Ok(())
        })
        .on_window_event(|window, event| {
            if window.label() == pip::PIP_LABEL {
                if let (WindowEvent::Destroyed, Some(state)) =
                    (event, window.try_state::<AppState>())
                {
                    // Closed by its own button: the main window stops asking.
                    state.frames.close(pip::PIP_VIEW);
                    *state.pip_target() = None;
                    state.ui.emit(UiEvent::PipClosed);
                }
                return;
            }
            if let (WindowEvent::Focused(focused), Some(state)) =
                (event, window.try_state::<AppState>())
            {
                state.ui.emit(UiEvent::WindowFocus { focused: *focused });
            }
            if let WindowEvent::CloseRequested { api, .. } = event {
                let state = window.state::<AppState>();
                remember_window(window, &state);
                let in_call = state
                    .session
                    .try_lock()
                    .map(|s| s.as_ref().is_some_and(session::Session::in_call))
                    .unwrap_or(true);
                if in_call {
                    api.prevent_close();
                    state.ui.emit(UiEvent::ConfirmClose);
                }
            }
        })
        .invoke_handler(tauri::generate_handler![
            commands::attach,
            commands::save_settings,
            commands::watch_rooms,
            commands::join,
            commands::leave,
            commands::send,
            commands::join_call,
            commands::leave_call,
            commands::preview,
            commands::set_microphone,
            commands::set_camera,
            commands::set_screen_share,
            commands::select_device,
            commands::open_tile,
            commands::next_frame,
            commands::close_tile,
            commands::pip_show,
            commands::pip_target,
            commands::pip_close,
            commands::notify,
            commands::host,
            commands::join_link,
            commands::stop_hosting,
            external::open_url,
            commands::quit,
        ])
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("huddle: the window could not be shown: {e}");
        std::process::exit(1);
    }
}

/// Another launch's arguments: its link, if any, opens here, and the window
/// comes to the front.
fn handed_over(app: &tauri::AppHandle, argv: &[String]) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
    if let Some(link) = argv.iter().find_map(|a| links::parse_join_link(a)) {
        if let Some(state) = app.try_state::<AppState>() {
            state.ui.emit(UiEvent::OpenLink { link });
        }
    }
}

/// Keeps the window's size and place for the next start.
fn remember_window(window: &tauri::Window, state: &AppState) {
    let scale = window.scale_factor().unwrap_or(1.0);
    let (Ok(size), Ok(position)) = (window.inner_size(), window.outer_position()) else {
        return;
    };
    let size = size.to_logical::<f64>(scale);
    let position = position.to_logical::<f64>(scale);
    let mut settings = state.settings();
    settings.window = Some(settings::WindowState {
        width: size.width,
        height: size.height,
        x: position.x,
        y: position.y,
        maximized: window.is_maximized().unwrap_or(false),
    });
    if let Err(e) = state.store_settings(settings) {
        tracing::warn!(error = %e, "could not keep the window's place");
    }
}

/// Reads the device lists now and then; tells the window when they change.
fn watch_devices(ui: ui::Ui) {
    std::thread::Builder::new()
        .name("devices".into())
        .spawn(move || {
            let mut last = devices::list();
            loop {
                std::thread::sleep(DEVICES_EVERY);
                let now = devices::list();
                if now != last {
                    ui.emit(UiEvent::Devices {
                        devices: now.clone(),
                    });
                    last = now;
                }
            }
        })
        .map(|_| ())
        .unwrap_or_else(|e| tracing::warn!(error = %e, "no hot-plug watch"));
}
