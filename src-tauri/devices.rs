//! The devices a call can use: listing them (and noticing when that list
//! changes), and opening the chosen ones as the engine's sources and sinks.
//!
//! Ids are strings the UI keeps in the settings: `camera:<index>`, a sound
//! device's stable cpal id (`alsa:pulse`), or, with `HUDDLE_FAKE_MEDIA=1`
//! (tests, demos on machines without devices), `pattern` (a moving test
//! picture) and `tone` (a 440 Hz tone) — the same idea as Chromium's
//! fake-device flag.

use huddle_engine::audio::device::{list_devices, Direction, Microphone, Speaker};
use huddle_engine::audio::{AudioError, AudioSink, AudioSource, ToneInput};
use huddle_engine::video::camera::{list_cameras, CameraRequest, CameraSource};
use huddle_engine::video::screen::ScreenSource;
use huddle_engine::video::{CaptureError, PatternSource, VideoSource};
use serde::Serialize;
use ts_rs::TS;

/// The fake camera's and microphone's ids.
pub const PATTERN: &str = "pattern";
pub const TONE: &str = "tone";
/// The frequency of the fake microphone.
pub const TONE_HZ: f32 = 440.0;

/// Whether the fake devices are offered (`HUDDLE_FAKE_MEDIA=1`).
pub fn fake_media() -> bool {
    std::env::var("HUDDLE_FAKE_MEDIA").is_ok_and(|v| v == "1")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct Device {
    pub id: String,
    pub name: String,
    /// The system's default (the one used when none is chosen).
    pub is_default: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, TS)]
pub struct DeviceList {
    pub cameras: Vec<Device>,
    pub microphones: Vec<Device>,
    pub speakers: Vec<Device>,
}

/// Everything present now. Slow-ish (device enumeration): call off the UI
/// thread.
pub fn list() -> DeviceList {
    let sound = |direction| {
        list_devices(direction)
            .into_iter()
            .map(|d| Device {
                id: d.id,
                name: d.name,
                is_default: d.is_default,
            })
            .collect::<Vec<_>>()
    };
    let mut list = DeviceList {
        cameras: list_cameras()
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(n, c)| Device {
                id: format!("camera:{}", c.index),
                name: c.name,
                is_default: n == 0,
            })
            .collect(),
        microphones: sound(Direction::Input),
        speakers: sound(Direction::Output),
    };
    if fake_media() {
        let fake = |id: &str, name: &str| Device {
            id: id.into(),
            name: name.into(),
            is_default: true,
        };
        list.cameras.iter_mut().for_each(|d| d.is_default = false);
        list.cameras.insert(0, fake(PATTERN, "Test pattern"));
        list.microphones
            .iter_mut()
            .for_each(|d| d.is_default = false);
        list.microphones.insert(0, fake(TONE, "Test tone (440 Hz)"));
    }
    list
}

/// Opens the camera `id` (`None`: the default one).
pub fn open_camera(id: Option<&str>) -> Result<Box<dyn VideoSource>, CaptureError> {
    let id = id.or(fake_media().then_some(PATTERN));
    if id == Some(PATTERN) {
        return Ok(Box::new(PatternSource::new(640, 480, 30)));
    }
    let index = match id.and_then(|id| id.strip_prefix("camera:")) {
        Some(n) => Some(
            n.parse()
                .map_err(|_| CaptureError::UnknownCamera(n.to_owned()))?,
        ),
        None => None,
    };
    Ok(Box::new(CameraSource::open(CameraRequest {
        index,
        width: 1280,
        height: 720,
        fps: 30,
    })?))
}

/// Opens the microphone `id` (`None`: the default one).
pub fn open_microphone(id: Option<&str>) -> Result<Box<dyn AudioSource>, AudioError> {
    let id = id.or(fake_media().then_some(TONE));
    if id == Some(TONE) {
        return Ok(Box::new(ToneInput::new(TONE_HZ)));
    }
    Ok(Box::new(Microphone::open(id)?))
}

/// Starts capturing the screen (see `huddle_engine::video::screen` for
/// where that is possible).
pub fn open_screen() -> Result<Box<dyn VideoSource>, CaptureError> {
    Ok(Box::new(ScreenSource::open()?))
}

/// Opens the speaker `id` (`None`: the default one). The playback volume
/// is the call's (`CallOptions::volume`): applied before the echo
/// canceller's reference is taken.
pub fn open_speaker(id: Option<&str>) -> Result<Box<dyn AudioSink>, AudioError> {
    Ok(Box::new(Speaker::open(id)?))
}
