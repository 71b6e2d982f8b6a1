//! Sound devices through `cpal`: the microphone as an [`AudioSource`] and
//! the speaker as an [`AudioSink`].
//!
//! A device stream runs on its own thread (cpal's streams are not `Send`
//! on every platform); the thread holds the stream until the handle is
//! dropped. Whatever the device's rate and channels, the call sees 48 kHz
//! mono in 20 ms frames: capture is averaged to mono and resampled on the
//! device's callback thread, playback is resampled as it is queued.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig};
use thiserror::Error;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::resample::{to_mono, Resampler};
use super::sink::AudioSink;
use super::source::AudioSource;
use super::{FRAME_SAMPLES, SAMPLE_RATE};

use crate::sync::lock;

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
    match config {
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
/// for a short period ([`short_period`]), then, if the device refuses that,
/// with `config` as it is.
fn run_stream(
    direction: Direction,
    config: StreamConfig,
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
            let stream = start(short_period(direction, config)).or_else(|e| {
                debug!(%direction, error = %e, "no short period: the device's own");
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
/// hogs.
fn short_period_ms(direction: Direction) -> u32 {
    match direction {
        Direction::Input => 5,
        Direction::Output => 10,
    }
}

/// `config` asking for [`short_period_ms`] periods.
fn short_period(direction: Direction, config: StreamConfig) -> StreamConfig {
    StreamConfig {
        buffer_size: cpal::BufferSize::Fixed(
            config.sample_rate * short_period_ms(direction) / 1000,
        ),
        ..config
    }
}

/// Stops a device stream when dropped.
#[derive(Debug)]
struct StreamGuard {
    _stop: std::sync::mpsc::Sender<()>,
}

/// A microphone, delivering 48 kHz mono in 20 ms frames.
#[derive(Debug)]
pub struct Microphone {
    name: String,
    /// What `open` was asked for, to open it again after a stall.
    asked: Option<String>,
    /// Times opened again since the last frame.
    reopened: u32,
    frames: mpsc::Receiver<Vec<i16>>,
    /// `None` only between an old stream's end and a new one.
    stream: Option<StreamGuard>,
}

/// How many times in a row a microphone that stopped delivering is opened
/// again before it counts as gone: a sound server that suspended the device
/// for a few seconds (`pactl suspend-sink`; a stall at a call's start was
/// seen too) costs the call that much of its audio, not the rest of it.
pub const REOPENS: u32 = 5;
/// Between closing a stalled stream and opening the device again: a
/// hardware device opens once at a time, and its stream closes on a thread
/// of its own.
const REOPEN_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

impl Microphone {
    /// Opens an input device by id (`alsa:pulse`) or name, or the default one.
    pub fn open(name: Option<&str>) -> Result<Microphone, AudioError> {
        let (device, device_name, format, config) = open_device(Direction::Input, name)?;
        // 200 ms of frames; a consumer that falls further behind loses the oldest.
        let (tx, frames) = mpsc::channel(10);
        let stream = run_stream(Direction::Input, config, move |config| {
            by_sample_type!(
                format,
                Direction::Input,
                capture(&device, config, tx.clone())
            )
        })?;
        Ok(Microphone {
            name: device_name,
            asked: name.map(str::to_owned),
            reopened: 0,
            frames,
            stream: Some(stream),
        })
    }

    /// Opens the device again in place of a stream that stopped delivering
    /// (closed first).
    async fn reopen(&mut self) -> Result<(), AudioError> {
        self.stream = None;
        tokio::time::sleep(REOPEN_PAUSE).await;
        let asked = self.asked.clone();
        // Opening waits for the device's thread to start: off the runtime.
        let again = tokio::task::spawn_blocking(move || Microphone::open(asked.as_deref()))
            .await
            .map_err(|_| AudioError::Stopped)??;
        self.name = again.name;
        self.frames = again.frames;
        self.stream = again.stream;
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait::async_trait]
impl AudioSource for Microphone {
    /// The next 20 ms. A device that delivers nothing for [`SILENT_DEVICE`]
    /// is opened again, [`REOPENS`] times in a row at most; then, or when
    /// it cannot be opened (unplugged, or its sound server gone: cpal then
    /// often just stops calling back), the microphone has stopped.
    async fn next_frame(&mut self) -> Result<Vec<i16>, AudioError> {
        loop {
            match tokio::time::timeout(SILENT_DEVICE, self.frames.recv()).await {
                Ok(Some(frame)) => {
                    self.reopened = 0;
                    return Ok(frame);
                }
                Ok(None) | Err(_) if self.reopened < REOPENS => {
                    self.reopened += 1;
                    warn!(
                        device = %self.name,
                        attempt = self.reopened,
                        "the microphone delivered nothing: opening it again"
                    );
                    if let Err(e) = self.reopen().await {
                        warn!(error = %e, "the microphone could not be opened again");
                        return Err(AudioError::Stopped);
                    }
                }
                Ok(None) | Err(_) => return Err(AudioError::Stopped),
            }
        }
    }
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

fn capture<T>(
    device: &cpal::Device,
    config: StreamConfig,
    frames: mpsc::Sender<Vec<i16>>,
) -> Result<cpal::Stream, AudioError>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels);
    let mut resampler = Resampler::new(config.sample_rate, SAMPLE_RATE);
    let (mut as_f32, mut mono, mut at_48k) = (Vec::new(), Vec::new(), Vec::new());
    let mut pending: Vec<i16> = Vec::with_capacity(FRAME_SAMPLES * 2);
    let mut callbacks = 0u32;
    device
        .build_input_stream::<T, _, _>(
            config,
            move |data: &[T], _: &cpal::InputCallbackInfo| {
                // Once, when the stream has settled: what the device gives.
                callbacks += 1;
                if callbacks == 100 {
                    debug!(samples = data.len() / channels.max(1), "microphone period");
                }
                as_f32.clear();
                as_f32.extend(data.iter().map(|s| s.to_sample::<f32>()));
                mono.clear();
                to_mono(&as_f32, channels, &mut mono);
                at_48k.clear();
                resampler.process(&mono, &mut at_48k);
                pending.extend(
                    at_48k
                        .iter()
                        .map(|s| (s * 32767.0).clamp(-32768.0, 32767.0) as i16),
                );
                while pending.len() >= FRAME_SAMPLES {
                    let frame: Vec<i16> = pending.drain(..FRAME_SAMPLES).collect();
                    // Full: the call is behind; this frame is the one to lose.
                    let _ = frames.try_send(frame);
                }
            },
            {
                let mut errors = ErrorLog::default();
                move |e| {
                    if let Some(left_out) = errors.admit(std::time::Instant::now()) {
                        warn!(error = %e, left_out, "microphone stream error");
                    }
                }
            },
            None,
        )
        .map_err(|e| AudioError::Stream {
            direction: Direction::Input,
            reason: e.to_string(),
        })
}

/// A speaker stream's signs of life.
#[derive(Debug)]
struct Health {
    last_pull: std::time::Instant,
    last_error: Option<String>,
    /// The most samples the device took in one pull (its buffer size).
    largest_pull: usize,
    /// Pulls that found the queue short since sound was first queued: the
    /// playout task came late (a busy machine), and the device played a gap.
    starved: u32,
    /// Whether sound has been queued yet (before, an empty queue is no gap).
    fed: bool,
}

/// What the speaker keeps queued beyond the device's largest pull: 10 ms,
/// and 5 ms more each time the device ran dry, up to 50 ms — a machine that
/// keeps the playout task waiting pays in delay, not in gaps.
fn speaker_margin_ms(starved: u32) -> u32 {
    10 + 5 * starved.min(8)
}

/// What the speaker's callback plays from: device-rate mono samples.
type PlayQueue = Arc<Mutex<VecDeque<f32>>>;

/// A speaker (or headset): plays 48 kHz mono at the device's rate, on
/// every channel.
#[derive(Debug)]
pub struct Speaker {
    name: String,
    queue: PlayQueue,
    resampler: Resampler,
    /// The device's sample rate.
    rate: u32,
    /// The most the queue holds (150 ms at the device rate, or the device's
    /// largest pull plus 20 ms if that is more): beyond it the oldest samples
    /// go. A safety net: playout, paced by [`Speaker::wants`], keeps the queue
    /// near the device's largest pull plus 10 ms.
    max_queued: usize,
    scratch: Vec<f32>,
    /// The device's signs of life (errors alone are not fatal: ALSA
    /// reports passing ones).
    health: Arc<Mutex<Health>>,
    _stream: StreamGuard,
}

impl Speaker {
    /// Opens an output device by id or name, or the default one.
    pub fn open(name: Option<&str>) -> Result<Speaker, AudioError> {
        let (device, device_name, format, config) = open_device(Direction::Output, name)?;
        let rate = config.sample_rate;
        let queue = PlayQueue::default();
        let health = Arc::new(Mutex::new(Health {
            last_pull: std::time::Instant::now(),
            last_error: None,
            largest_pull: 0,
            starved: 0,
            fed: false,
        }));
        let (shared, reported) = (queue.clone(), health.clone());
        let stream = run_stream(Direction::Output, config, move |config| {
            by_sample_type!(
                format,
                Direction::Output,
                play(&device, config, shared.clone(), reported.clone())
            )
        })?;
        Ok(Speaker {
            name: device_name,
            queue,
            resampler: Resampler::new(SAMPLE_RATE, rate),
            rate,
            max_queued: rate as usize * 150 / 1000,
            scratch: Vec::new(),
            health,
            _stream: stream,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl AudioSink for Speaker {
    fn play(&mut self, frame: &[i16]) -> Result<(), AudioError> {
        let largest_pull = {
            // A device that stopped asking for sound is gone.
            let health = lock(&self.health);
            if health.last_pull.elapsed() > SILENT_DEVICE {
                let reason = health
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "the device stopped asking for sound".into());
                return Err(AudioError::SpeakerStopped(reason));
            }
            health.largest_pull
        };
        let input: Vec<f32> = frame.iter().map(|s| f32::from(*s) / 32768.0).collect();
        self.scratch.clear();
        self.resampler.process(&input, &mut self.scratch);
        let mut queue = lock(&self.queue);
        queue.extend(self.scratch.iter().copied());
        // The cap never cuts into what `wants` asks for, whatever the
        // device's buffer (one that takes 170 ms at a time would otherwise
        // lose sound every pull).
        let cap = self.max_queued.max(largest_pull + self.rate as usize / 50);
        let excess = queue.len().saturating_sub(cap);
        queue.drain(..excess);
        // From the first time the queue holds a whole pull, a short one is a gap.
        let full = largest_pull > 0 && queue.len() >= largest_pull;
        drop(queue);
        if full {
            lock(&self.health).fed = true;
        }
        Ok(())
    }

    /// Enough 10 ms frames to keep what is queued above the device's
    /// largest pull plus 10 ms: the device's clock paces playout, so a
    /// speaker slower or faster than the members' senders never builds up
    /// delay or runs dry here (the members' playout buffers absorb it).
    fn wants(&self) -> Option<usize> {
        let (largest_pull, starved) = {
            let health = lock(&self.health);
            if health.last_pull.elapsed() > SILENT_DEVICE {
                // A frame, so that `play` finds the device gone and says so.
                return Some(1);
            }
            (health.largest_pull, health.starved)
        };
        let queued = lock(&self.queue).len();
        let frame = self.rate as usize / 100;
        let margin = self.rate as usize * speaker_margin_ms(starved) as usize / 1000;
        let lead = largest_pull + margin;
        Some(lead.saturating_sub(queued).div_ceil(frame))
    }
}

fn play<T>(
    device: &cpal::Device,
    config: StreamConfig,
    queue: PlayQueue,
    health: Arc<Mutex<Health>>,
) -> Result<cpal::Stream, AudioError>
where
    T: SizedSample + FromSample<f32>,
{
    let channels = usize::from(config.channels).max(1);
    device
        .build_output_stream::<T, _, _>(
            config,
            {
                let health = health.clone();
                move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
                    {
                        let mut health = lock(&health);
                        health.last_pull = std::time::Instant::now();
                        if health.largest_pull == 0 {
                            debug!(samples = data.len() / channels, "speaker period");
                        }
                        health.largest_pull = health.largest_pull.max(data.len() / channels);
                    }
                    let short = {
                        let mut queue = lock(&queue);
                        let short = queue.len() < data.len() / channels;
                        for frame in data.chunks_mut(channels) {
                            // Silence when the call has nothing queued.
                            let sample = queue.pop_front().unwrap_or(0.0);
                            frame.fill(T::from_sample(sample));
                        }
                        short
                    };
                    if short {
                        let mut health = lock(&health);
                        if health.fed {
                            health.starved = health.starved.saturating_add(1);
                            debug!(
                                starved = health.starved,
                                margin_ms = speaker_margin_ms(health.starved),
                                "the speaker ran dry"
                            );
                        }
                    }
                }
            },
            {
                let mut errors = ErrorLog::default();
                move |e| {
                    if let Some(left_out) = errors.admit(std::time::Instant::now()) {
                        warn!(error = %e, left_out, "speaker stream error");
                    }
                    lock(&health).last_error = Some(e.to_string());
                }
            },
            None,
        )
        .map_err(|e| AudioError::Stream {
            direction: Direction::Output,
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{short_period, speaker_margin_ms, Direction, ErrorLog};

    #[test]
    fn the_short_period_is_5_ms_in_and_10_ms_out_at_the_device_rate() {
        let config = cpal::StreamConfig {
            channels: 2,
            sample_rate: 44_100,
            buffer_size: cpal::BufferSize::Default,
        };
        let fixed = |direction| short_period(direction, config).buffer_size;
        assert_eq!(fixed(Direction::Input), cpal::BufferSize::Fixed(220));
        assert_eq!(fixed(Direction::Output), cpal::BufferSize::Fixed(441));
        assert_eq!(short_period(Direction::Input, config).channels, 2);
    }

    #[test]
    fn the_speaker_keeps_more_queued_each_time_it_ran_dry_up_to_50_ms() {
        assert_eq!(speaker_margin_ms(0), 10);
        assert_eq!(speaker_margin_ms(1), 15);
        assert_eq!(speaker_margin_ms(8), 50);
        assert_eq!(speaker_margin_ms(u32::MAX), 50);
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
