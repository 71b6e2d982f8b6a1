//! Sound devices through `cpal`: the microphone as an [`AudioSource`] and
//! the speaker as an [`AudioSink`].
//!
//! A device stream runs on its own thread (cpal's streams are not `Send`
//! on every platform); the thread holds the stream until the handle is
//! dropped. Whatever the device's rate and channels, the call sees 48 kHz
//! mono in 20 ms frames: capture is averaged to mono and resampled on the
//! device's callback thread, playback is resampled as it is queued.

//!
//! Here: what both directions share — the errors, listing and opening
//! devices, the stream's own thread and its period; `microphone.rs` the
//! capture side, `speaker.rs` the playback side.

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{SampleFormat, StreamConfig};
use thiserror::Error;
use tracing::debug;

/// A sound device could not be used.
#[derive(Debug, Error)]
pub enum AudioError {
    #[error("no {0} device: is there a sound card, or a sound server running?")]
    NoDevice(Direction),
    #[error("no {direction} device named {name:?}")]
    NoSuchDevice { direction: Direction, name: String },
    #[error("the {direction} device has no usable configuration: {reason}")]
    Config {
        direction: Direction,
        reason: String,
    },
    #[error("the {direction} stream could not start: {reason}")]
    Stream {
        direction: Direction,
        reason: String,
    },
    #[error("the microphone stopped delivering sound")]
    Stopped,
    #[error("the speaker stopped playing: {0}")]
    SpeakerStopped(String),
    #[error("the computer's sound cannot be shared: {0}")]
    SystemSound(String),
    #[error("sharing the computer's sound needs Windows 10 version 2004 or later")]
    SystemSoundUnavailable,
    #[error("writing audio: {0}")]
    Io(#[from] std::io::Error),
}

/// Which way sound goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Input,
    Output,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Input => "input",
            Direction::Output => "output",
        })
    }
}

/// A sound device the system offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioDeviceInfo {
    /// Stable identifier (e.g. `alsa:pulse`): what to open it by.
    pub id: String,
    /// What the system calls it, for people.
    pub name: String,
    pub is_default: bool,
}

/// A device's stable identifier, or its name where it has none.
fn device_id(device: &cpal::Device) -> String {
    device
        .id()
        .map_or_else(|_| device.to_string(), |id| id.to_string())
}

/// The system's default device for `direction`, if it has one.
fn default_device(host: &cpal::Host, direction: Direction) -> Option<cpal::Device> {
    match direction {
        Direction::Input => host.default_input_device(),
        Direction::Output => host.default_output_device(),
    }
}

/// Every device for `direction` (none when the host cannot list them).
fn devices(host: &cpal::Host, direction: Direction) -> Vec<cpal::Device> {
    let devices = match direction {
        Direction::Input => host.input_devices().map(|d| d.collect::<Vec<_>>()),
        Direction::Output => host.output_devices().map(|d| d.collect::<Vec<_>>()),
    };
    devices.unwrap_or_default()
}

/// The devices that can capture (`Input`) or play (`Output`) now.
pub fn list_devices(direction: Direction) -> Vec<AudioDeviceInfo> {
    let host = cpal::default_host();
    let default = default_device(&host, direction).map(|d| device_id(&d));
    devices(&host, direction)
        .into_iter()
        .map(|d| {
            let id = device_id(&d);
            AudioDeviceInfo {
                is_default: default.as_ref() == Some(&id),
                name: d.to_string(),
                id,
            }
        })
        .collect()
}

/// The device, its name, and the sample format and configuration it
/// accepts. cpal hands out a default device even where there is no sound
/// card; only asking it for a configuration tells.
fn open_device(
    direction: Direction,
    name: Option<&str>,
) -> Result<(cpal::Device, String, SampleFormat, StreamConfig), AudioError> {
    let host = cpal::default_host();
    let device = match name {
        None => default_device(&host, direction).ok_or(AudioError::NoDevice(direction))?,
        Some(name) => devices(&host, direction)
            .into_iter()
            .find(|d| device_id(d) == name || d.to_string() == name)
            .ok_or_else(|| AudioError::NoSuchDevice {
                direction,
                name: name.to_owned(),
            })?,
    };
    let config = match direction {
        Direction::Input => device.default_input_config(),
        Direction::Output => device.default_output_config(),
    };
    match config.map(|default| at_call_rate(&device, direction, default)) {
        Ok(config) => {
            let device_name = device.to_string();
            Ok((device, device_name, config.sample_format(), config.into()))
        }
        // The usual reason on a machine without sound: say so plainly.
        Err(_) if name.is_none() => Err(AudioError::NoDevice(direction)),
        Err(e) => Err(AudioError::Config {
            direction,
            reason: e.to_string(),
        }),
    }
}

/// On Linux, the device's own configuration at the call's 48 kHz, if it
/// offers that with the same channels and sample format; else its default.
/// The sound server (PulseAudio, PipeWire) converts rates with a proper
/// filter; our own converter (`resample.rs`) interpolates linearly, and in
/// the acoustic loop both directions of the echo's path went through it at
/// the server's usual 44.1 kHz. Elsewhere a device's rate is left alone
/// (Core Audio would switch the hardware's rate under other programs).
fn at_call_rate(
    device: &cpal::Device,
    direction: Direction,
    default: cpal::SupportedStreamConfig,
) -> cpal::SupportedStreamConfig {
    if default.sample_rate() == super::SAMPLE_RATE || !cfg!(target_os = "linux") {
        return default;
    }
    let ranges: Vec<_> = match direction {
        Direction::Input => device
            .supported_input_configs()
            .map(Iterator::collect)
            .unwrap_or_default(),
        Direction::Output => device
            .supported_output_configs()
            .map(Iterator::collect)
            .unwrap_or_default(),
    };
    ranges
        .into_iter()
        .filter(|r| {
            r.channels() == default.channels() && r.sample_format() == default.sample_format()
        })
        .find_map(|r| r.try_with_sample_rate(super::SAMPLE_RATE))
        .unwrap_or(default)
}

/// Calls the generic stream builder `$build` with the Rust sample type of
/// cpal's `$format` (the ones devices offer in practice).
macro_rules! by_sample_type {
    ($format:expr, $direction:expr, $build:ident($($arg:expr),*)) => {
        match $format {
            SampleFormat::F32 => $build::<f32>($($arg),*),
            SampleFormat::I16 => $build::<i16>($($arg),*),
            SampleFormat::I32 => $build::<i32>($($arg),*),
            SampleFormat::U16 => $build::<u16>($($arg),*),
            other => Err(AudioError::Config {
                direction: $direction,
                reason: format!("sample format {other} is not supported"),
            }),
        }
    };
}

/// Runs `build` on a thread of its own that keeps the stream it returns
/// playing until the returned guard is dropped: first with `config` asking
/// for `period_ms` periods ([`with_period`]), then, if the device refuses
/// that, with `config` as it is.
fn run_stream(
    direction: Direction,
    config: StreamConfig,
    period_ms: u32,
    mut build: impl FnMut(StreamConfig) -> Result<cpal::Stream, AudioError> + Send + 'static,
) -> Result<StreamGuard, AudioError> {
    let (started_tx, started_rx) = std::sync::mpsc::sync_channel(1);
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name(format!("audio-{direction}"))
        .spawn(move || {
            let mut start = |config: StreamConfig| -> Result<cpal::Stream, AudioError> {
                let stream = build(config)?;
                stream.play().map_err(|e| AudioError::Stream {
                    direction,
                    reason: e.to_string(),
                })?;
                Ok(stream)
            };
            let stream = start(with_period(config, period_ms)).or_else(|e| {
                debug!(%direction, period_ms, error = %e, "no such period: the device's own");
                start(config)
            });
            match stream {
                Ok(stream) => {
                    let _ = started_tx.send(Ok(()));
                    // Until the guard goes: its sender is dropped.
                    let _ = stopped.recv();
                    drop(stream);
                }
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                }
            }
        })
        .map_err(|e| AudioError::Stream {
            direction,
            reason: e.to_string(),
        })?;
    started_rx.recv().map_err(|_| AudioError::Stream {
        direction,
        reason: "the stream thread ended".into(),
    })??;
    Ok(StreamGuard { _stop: stop })
}

/// The device period asked for first, per direction: every millisecond a
/// device buffers is a millisecond of mouth-to-ear delay. With cpal's
/// defaults PulseAudio's ALSA plugin chose 512-sample periods, two of them
/// buffered each way; asking for 5 ms capture and 10 ms playback periods
/// (it rounds them to 160 and 320 samples) took mouth-to-ear from 141 to
/// ~100 ms (`src-ui/e2e/bench-delay.mjs`). Playback at 5 ms ran into the
/// plugin's underruns several times a second; at 10 ms, none under two CPU
/// hogs. A speaker that still runs dry at the device asks for longer ones
/// (`speaker.rs`).
fn short_period_ms(direction: Direction) -> u32 {
    match direction {
        Direction::Input => 5,
        Direction::Output => 10,
    }
}

/// `config` asking for `period_ms` periods.
fn with_period(config: StreamConfig, period_ms: u32) -> StreamConfig {
    StreamConfig {
        buffer_size: cpal::BufferSize::Fixed(config.sample_rate * period_ms / 1000),
        ..config
    }
}

/// Stops a device stream when dropped.
#[derive(Debug)]
struct StreamGuard {
    _stop: std::sync::mpsc::Sender<()>,
}

/// A stream's errors as the log gets them: the first at once, then at most
/// one a second, saying how many were left out. A device that goes away can
/// report an error on every poll (43 in a fifth of a millisecond, measured
/// when the noise bench's PulseAudio stopped under a speaker).
#[derive(Debug, Default)]
struct ErrorLog {
    last: Option<std::time::Instant>,
    left_out: u64,
}

impl ErrorLog {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

    /// Whether an error at `now` is logged, with how many were left out
    /// since the last one that was.
    fn admit(&mut self, now: std::time::Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < Self::EVERY => {
                self.left_out += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.left_out))
            }
        }
    }
}

/// How long a capturing device may deliver nothing before it counts as gone.
pub const SILENT_DEVICE: std::time::Duration = std::time::Duration::from_secs(2);

mod microphone;
mod speaker;
pub mod system;

pub use microphone::{Microphone, REOPENS};
pub use speaker::Speaker;
pub use system::SystemSound;

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{short_period_ms, with_period, Direction, ErrorLog};

    #[test]
    fn the_short_period_is_5_ms_in_and_10_ms_out_at_the_device_rate() {
        let config = cpal::StreamConfig {
            channels: 2,
            sample_rate: 44_100,
            buffer_size: cpal::BufferSize::Default,
        };
        let fixed = |direction| with_period(config, short_period_ms(direction)).buffer_size;
        assert_eq!(fixed(Direction::Input), cpal::BufferSize::Fixed(220));
        assert_eq!(fixed(Direction::Output), cpal::BufferSize::Fixed(441));
        assert_eq!(
            with_period(config, 20).buffer_size,
            cpal::BufferSize::Fixed(882)
        );
        assert_eq!(with_period(config, 5).channels, 2);
    }

    #[test]
    fn a_flood_of_errors_is_logged_once_a_second_with_its_count() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut log = ErrorLog::default();
        assert_eq!(log.admit(at(0)), Some(0));
        for ms in [1, 2, 500, 999] {
            assert_eq!(log.admit(at(ms)), None);
        }
        assert_eq!(log.admit(at(1000)), Some(4));
        assert_eq!(log.admit(at(1500)), None);
        assert_eq!(log.admit(at(5000)), Some(1));
    }
}
