//! The app's state, shared by every command: the window's event channel,
//! the tiles, the session, the lobby watch, the hosted server, the
//! settings.

use std::sync::{Arc, Mutex};

use tauri::async_runtime::JoinHandle;
use tauri::Wry;
use tauri_plugin_store::Store;

use crate::error::CommandError;
use crate::frames::FrameGate;
use crate::host::Hosted;
use crate::links::JoinLink;
use crate::pip::PipTarget;
use crate::session::Session;
use crate::settings::{self, Settings};
use crate::ui::Ui;
use huddle_engine::audio::Volume;
use huddle_engine::sync::lock;

pub struct AppState {
    pub ui: Ui,
    pub frames: Arc<FrameGate>,
    pub session: tokio::sync::Mutex<Option<Session>>,
    pub lobby: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    pub host: tokio::sync::Mutex<Option<Hosted>>,
    pub volume: Volume,
    /// Whether the window's page is painted in software (see `lib.rs`).
    pub software_painting: bool,
    store: Arc<Store<Wry>>,
    settings: Mutex<Settings>,
    /// A `huddle://` link that arrived before the window asked for it.
    link: Mutex<Option<JoinLink>>,
    /// Whom the picture-in-picture window shows, while it is open.
    pip: Mutex<Option<PipTarget>>,
    /// Held while the picture-in-picture window opens or is pointed elsewhere.
    pub pip_opening: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("session", &self.session)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(
        store: Arc<Store<Wry>>,
        link: Option<JoinLink>,
        software_painting: bool,
    ) -> AppState {
        let settings = settings::load(&store);
        AppState {
            ui: Ui::default(),
            frames: Arc::default(),
            session: tokio::sync::Mutex::new(None),
            lobby: tokio::sync::Mutex::new(None),
            host: tokio::sync::Mutex::new(None),
            volume: Volume::new(settings.volume),
            software_painting,
            store,
            settings: Mutex::new(settings),
            link: Mutex::new(link),
            pip: Mutex::new(None),
            pip_opening: tokio::sync::Mutex::new(()),
        }
    }

    /// Whom the picture-in-picture window shows (`None`: it is closed).
    pub fn pip_target(&self) -> std::sync::MutexGuard<'_, Option<PipTarget>> {
        lock(&self.pip)
    }

    pub fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    /// Keeps `settings` and writes them to disk.
    pub fn store_settings(&self, settings: Settings) -> Result<(), CommandError> {
        settings::save(&self.store, &settings)?;
        *lock(&self.settings) = settings;
        Ok(())
    }

    /// The `huddle://` link the app was started with, once.
    pub fn take_link(&self) -> Option<JoinLink> {
        lock(&self.link).take()
    }
}
