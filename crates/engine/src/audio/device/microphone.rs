//! The microphone: a capture stream, averaged to mono and resampled to
//! 48 kHz on the device's callback thread, handed over in 20 ms frames; a
//! device that stops delivering is opened again a few times before the
//! call is told it stopped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cpal::traits::DeviceTrait;
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::{
    open_device, run_stream, short_period_ms, AudioError, Direction, ErrorLog, StreamGuard,
    SILENT_DEVICE,
};
use crate::audio::resample::{to_mono, Resampler};
use crate::audio::source::AudioSource;
use crate::audio::{FRAME_SAMPLES, SAMPLE_RATE};

/// A microphone, delivering 48 kHz mono in 20 ms frames.
#[derive(Debug)]
pub struct Microphone {
    name: String,
    /// What `open` was asked for, to open it again after a stall.
    asked: Option<String>,
    /// Times opened again since the last frame.
    reopened: u32,
    frames: mpsc::Receiver<Vec<i16>>,
    /// Samples the device's callback dropped since `take_dropped`.
    dropped: Arc<AtomicU64>,
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
        let dropped = Arc::new(AtomicU64::new(0));
        let period_ms = short_period_ms(Direction::Input);
        let counter = dropped.clone();
        let stream = run_stream(Direction::Input, config, period_ms, move |config| {
            by_sample_type!(
                format,
                Direction::Input,
                capture(&device, config, tx.clone(), counter.clone())
            )
        })?;
        Ok(Microphone {
            name: device_name,
            asked: name.map(str::to_owned),
            reopened: 0,
            frames,
            dropped,
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
        self.dropped = again.dropped;
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

    fn take_dropped(&mut self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }
}

/// Where the device's capture times stand against the samples it
/// delivered, a second at a time (debug logs only): a microphone that lost
/// samples (an overrun) shows as a step up; clocks that drift, as a slope.
#[derive(Debug)]
struct CaptureTiming {
    rate: u64,
    first: Option<cpal::StreamInstant>,
    /// Device samples delivered before this callback's.
    frames: u64,
    /// The second's least and most offset (capture time less the samples'
    /// duration since the first), in µs.
    low: i64,
    high: i64,
    /// The second's end, in samples.
    until: u64,
}

impl CaptureTiming {
    fn new(rate: u32) -> CaptureTiming {
        CaptureTiming {
            rate: u64::from(rate.max(1)),
            first: None,
            frames: 0,
            low: i64::MAX,
            high: i64::MIN,
            until: u64::from(rate.max(1)),
        }
    }

    fn observe(&mut self, capture: cpal::StreamInstant, samples: usize) {
        let first = *self.first.get_or_insert(capture);
        let elapsed = capture.saturating_duration_since(first).as_micros();
        let expected = u128::from(self.frames) * 1_000_000 / u128::from(self.rate);
        let offset = i64::try_from(elapsed).unwrap_or(i64::MAX)
            - i64::try_from(expected).unwrap_or(i64::MAX);
        self.low = self.low.min(offset);
        self.high = self.high.max(offset);
        self.frames += samples as u64;
        if self.frames >= self.until {
            debug!(
                low_ms = self.low as f64 / 1e3,
                high_ms = self.high as f64 / 1e3,
                "microphone capture times against its samples"
            );
            self.low = i64::MAX;
            self.high = i64::MIN;
            self.until = self.frames + self.rate;
        }
    }
}

fn capture<T>(
    device: &cpal::Device,
    config: StreamConfig,
    frames: mpsc::Sender<Vec<i16>>,
    dropped: Arc<AtomicU64>,
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
    let mut timing = CaptureTiming::new(config.sample_rate);
    device
        .build_input_stream::<T, _, _>(
            config,
            move |data: &[T], info: &cpal::InputCallbackInfo| {
                // Once, when the stream has settled: what the device gives.
                callbacks += 1;
                if callbacks == 100 {
                    debug!(samples = data.len() / channels.max(1), "microphone period");
                }
                if tracing::enabled!(tracing::Level::DEBUG) {
                    timing.observe(info.timestamp().capture, data.len() / channels.max(1));
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
                    // Full: the call is behind; this frame is the one to lose
                    // (and the echo's delay as the canceller sees it
                    // shortens by 20 ms: its reference is told).
                    if frames.try_send(frame).is_err() {
                        dropped.fetch_add(FRAME_SAMPLES as u64, Ordering::Relaxed);
                        debug!("a microphone frame lost: the call is behind");
                    }
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
