//! What the app remembers between runs, in `settings.json` through
//! tauri-plugin-store: one key per field, each read on its own so that a
//! damaged or hand-edited value loses only itself.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tauri::{Runtime, Wry};
use tauri_plugin_store::{Store, StoreExt};
use ts_rs::TS;

use crate::error::CommandError;

/// The store's file, in the app's data directory.
pub const FILE: &str = "settings.json";
/// Rooms remembered in the lobby.
pub const MAX_RECENT: usize = 6;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// The name others see.
    pub name: String,
    /// The signaling server as the user typed it; empty: none chosen yet.
    pub server_url: String,
    /// Rooms joined lately, newest first.
    pub recent_rooms: Vec<String>,
    /// Chosen devices by id (`None`: the system's default).
    pub camera: Option<String>,
    pub microphone: Option<String>,
    pub speaker: Option<String>,
    /// Playback volume, 0 to 1.
    pub volume: f32,
    /// `light`, `dark`, or `None` to follow the system.
    pub theme: Option<String>,
    /// The main window's last size and position, in logical pixels.
    pub window: Option<WindowState>,
    /// What is done to the microphone's sound before it is sent.
    pub audio_processing: AudioProcessing,
    /// Whether calls are joined with the microphone on (the last choice in
    /// the check before a call).
    pub join_microphone: bool,
    /// Whether a shared screen takes the computer's sound with it (off
    /// until asked for: notifications and music would go to everyone).
    pub share_sound: bool,
}

/// The microphone's processing, each part on by default (as a browser's
/// `getUserMedia` has them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AudioProcessing {
    pub echo_cancellation: bool,
    pub noise_suppression: bool,
    pub auto_gain_control: bool,
}

impl Default for AudioProcessing {
    fn default() -> Self {
        AudioProcessing {
            echo_cancellation: true,
            noise_suppression: true,
            auto_gain_control: true,
        }
    }
}

impl From<AudioProcessing> for huddle_engine::audio::processing::ProcessingSettings {
    fn from(p: AudioProcessing) -> Self {
        huddle_engine::audio::processing::ProcessingSettings {
            echo_cancellation: p.echo_cancellation,
            noise_suppression: p.noise_suppression,
            gain_control: p.auto_gain_control,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS)]
pub struct WindowState {
    pub width: f64,
    pub height: f64,
    pub x: f64,
    pub y: f64,
    pub maximized: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            name: String::new(),
            server_url: String::new(),
            recent_rooms: Vec::new(),
            camera: None,
            microphone: None,
            speaker: None,
            volume: 1.0,
            theme: None,
            window: None,
            audio_processing: AudioProcessing::default(),
            join_microphone: true,
            share_sound: false,
        }
    }
}

impl Settings {
    /// Makes any stored values sane (a hand-edited file can say anything).
    fn validated(mut self) -> Settings {
        self.volume = if self.volume.is_finite() {
            self.volume.clamp(0.0, 1.0)
        } else {
            1.0
        };
        self.recent_rooms.truncate(MAX_RECENT);
        if let Some(w) = self.window {
            let sane = [w.width, w.height, w.x, w.y].iter().all(|v| v.is_finite())
                && w.width >= 200.0
                && w.height >= 200.0;
            if !sane {
                self.window = None;
            }
        }
        self
    }
}

fn field<T: DeserializeOwned, R: Runtime>(store: &Store<R>, key: &str) -> Option<T> {
    let value = store.get(key)?;
    match serde_json::from_value(value) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(key, error = %e, "settings: ignoring a bad stored value");
            None
        }
    }
}

/// The settings as stored, defaults where nothing (valid) is.
pub fn load(store: &Store<Wry>) -> Settings {
    let d = Settings::default();
    Settings {
        name: field(store, "name").unwrap_or(d.name),
        server_url: field(store, "serverUrl").unwrap_or(d.server_url),
        recent_rooms: field(store, "recentRooms").unwrap_or(d.recent_rooms),
        camera: field(store, "camera").unwrap_or(d.camera),
        microphone: field(store, "microphone").unwrap_or(d.microphone),
        speaker: field(store, "speaker").unwrap_or(d.speaker),
        volume: field(store, "volume").unwrap_or(d.volume),
        theme: field(store, "theme").unwrap_or(d.theme),
        window: field(store, "window").unwrap_or(d.window),
        audio_processing: field(store, "audioProcessing").unwrap_or(d.audio_processing),
        join_microphone: field(store, "joinMicrophone").unwrap_or(d.join_microphone),
        share_sound: field(store, "shareSound").unwrap_or(d.share_sound),
    }
    .validated()
}

/// Writes every field and saves the file now.
pub fn save(store: &Store<Wry>, settings: &Settings) -> Result<(), CommandError> {
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(settings) {
        for (key, value) in fields {
            store.set(key, value);
        }
    }
    store.save()?;
    Ok(())
}

/// Opens the settings store of `app`.
pub fn open(app: &impl StoreExt<Wry>) -> Result<Arc<Store<Wry>>, CommandError> {
    Ok(app.store(FILE)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_become_defaults() {
        let s = Settings {
            volume: f32::NAN,
            window: Some(WindowState {
                width: 10.0,
                height: 5000.0,
                x: 0.0,
                y: 0.0,
                maximized: false,
            }),
            ..Settings::default()
        }
        .validated();
        assert_eq!(s.volume, 1.0);
        assert_eq!(s.window, None);
    }
}
