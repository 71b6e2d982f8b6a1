//! The speaker: 48 kHz mono resampled to the device's rate and queued for
//! its callback, which plays it on every channel; how much is queued
//! follows the device's pulls (its clock paces playout).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use cpal::traits::DeviceTrait;
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig};
use tracing::{debug, warn};

use super::{open_device, run_stream, AudioError, Direction, ErrorLog, StreamGuard, SILENT_DEVICE};
use crate::audio::resample::Resampler;
use crate::audio::sink::AudioSink;
use crate::audio::SAMPLE_RATE;
use crate::sync::lock;

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
    use super::speaker_margin_ms;

    #[test]
    fn the_speaker_keeps_more_queued_each_time_it_ran_dry_up_to_50_ms() {
        assert_eq!(speaker_margin_ms(0), 10);
        assert_eq!(speaker_margin_ms(1), 15);
        assert_eq!(speaker_margin_ms(8), 50);
        assert_eq!(speaker_margin_ms(u32::MAX), 50);
    }
}
