//! The speaker: 48 kHz mono resampled to the device's rate and queued for
//! its callback, which plays it on every channel; how much is queued
//! follows the device's pulls (its clock paces playout), and the device's
//! own buffer grows when it runs dry ([`wider_period_ms`]). What it played
//! that it was not given, or was given and did not play, is told as a slip
//! ([`AudioSink::take_slip`]) for the echo canceller's reference.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpal::traits::DeviceTrait;
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig};
use tracing::{debug, info, warn};

use super::{
    open_device, run_stream, short_period_ms, AudioError, Direction, ErrorLog, StreamGuard,
    SILENT_DEVICE,
};
use crate::audio::resample::Resampler;
use crate::audio::sink::AudioSink;
use crate::audio::SAMPLE_RATE;
use crate::sync::lock;

/// A speaker stream's signs of life.
#[derive(Debug)]
struct Health {
    last_pull: Instant,
    last_error: Option<String>,
    /// The most samples the device took in one pull (its buffer size).
    largest_pull: usize,
    /// Pulls that found the queue short since sound was first queued: the
    /// playout task came late (a busy machine), and the device played a gap.
    starved: u32,
    /// Whether sound has been queued yet (before, an empty queue is no gap).
    fed: bool,
    /// The device ran dry since (see [`wider_period_ms`]).
    underran: bool,
    /// Device-rate samples played that were not queued (silence where the
    /// queue was short) less those queued and dropped unplayed, since
    /// [`AudioSink::take_slip`] last asked.
    slip: i64,
}

/// The longest period the speaker asks for.
const LONGEST_PERIOD_MS: u32 = 40;

/// The period after `period_ms` (twice as long), if there is one. A device
/// that ran dry under the speaker (its callback came later than its buffer
/// lasts: a busy machine — measured here with a video call's encoders on
/// the same two cores, the callback came 18–30 ms late against a 13 ms
/// buffer, seven times in 25 s) is opened again with these. Each such gap
/// is one the echo canceller's reference does not have, and of a length
/// nobody tells, so the canceller finds the echo's delay anew and its
/// filter starts over — in double talk, slowly: that call sent the far end
/// its own echo back 4 dB under the near end's voice (`bench-echo.mjs`
/// under load). With 20 ms periods the same load gave 0–1 underruns a call;
/// they cost 20–25 ms more mouth-to-ear (`bench-delay.mjs`), which is why
/// the speaker does not start there: a busy machine pays in delay, not in
/// gaps.
fn wider_period_ms(period_ms: u32) -> Option<u32> {
    (period_ms < LONGEST_PERIOD_MS).then(|| (period_ms * 2).min(LONGEST_PERIOD_MS))
}

/// What the speaker keeps queued beyond the device's largest pull: 10 ms,
/// and 5 ms more each time the device ran dry, up to 50 ms — a machine that
/// keeps the playout task waiting pays in delay, not in gaps.
fn speaker_margin_ms(starved: u32) -> u32 {
    10 + 5 * starved.min(8)
}

/// What the speaker's callback plays from: device-rate mono samples.
type PlayQueue = Arc<Mutex<VecDeque<f32>>>;

/// What opens the device's stream, again with other periods if need be.
#[derive(Clone)]
struct Opener {
    device: cpal::Device,
    format: SampleFormat,
    config: StreamConfig,
    queue: PlayQueue,
    health: Arc<Mutex<Health>>,
}

impl Opener {
    fn open(&self, period_ms: u32) -> Result<StreamGuard, AudioError> {
        let (device, format) = (self.device.clone(), self.format);
        let (queue, health) = (self.queue.clone(), self.health.clone());
        run_stream(Direction::Output, self.config, period_ms, move |config| {
            by_sample_type!(
                format,
                Direction::Output,
                play(&device, config, queue.clone(), health.clone())
            )
        })
    }
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

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
    opener: Opener,
    /// Slip not yet told, in device samples × 48 000 (the rest of a
    /// conversion to 48 kHz samples).
    slip_scaled: i64,
    /// The period the stream was asked for.
    period_ms: u32,
    /// `None` only while it is opened again.
    stream: Option<StreamGuard>,
    /// The stream being opened again, while it is.
    reopening: Option<std::sync::mpsc::Receiver<(Result<StreamGuard, AudioError>, u32)>>,
}

impl Speaker {
    /// Opens an output device by id or name, or the default one.
    pub fn open(name: Option<&str>) -> Result<Speaker, AudioError> {
        let (device, device_name, format, config) = open_device(Direction::Output, name)?;
        let rate = config.sample_rate;
        let queue = PlayQueue::default();
        let health = Arc::new(Mutex::new(Health {
            last_pull: Instant::now(),
            last_error: None,
            largest_pull: 0,
            starved: 0,
            fed: false,
            underran: false,
            slip: 0,
        }));
        let opener = Opener {
            device,
            format,
            config,
            queue: queue.clone(),
            health: health.clone(),
        };
        let period_ms = short_period_ms(Direction::Output);
        let stream = opener.open(period_ms)?;
        Ok(Speaker {
            name: device_name,
            queue,
            resampler: Resampler::new(SAMPLE_RATE, rate),
            rate,
            max_queued: rate as usize * 150 / 1000,
            scratch: Vec::new(),
            health,
            opener,
            slip_scaled: 0,
            period_ms,
            stream: Some(stream),
            reopening: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Opens the device again with longer periods ([`wider_period_ms`]),
    /// or if it refuses them, with the ones it had — on a thread of its own
    /// (opening waits for the device): [`Speaker::reopened`] takes the
    /// result.
    fn widen(&mut self, wider_ms: u32) -> Result<(), AudioError> {
        // One stream at a time: two would share the queue.
        self.stream = None;
        let (tx, rx) = std::sync::mpsc::channel();
        let (opener, from_ms) = (self.opener.clone(), self.period_ms);
        let started = Instant::now();
        std::thread::Builder::new()
            .name("audio-reopen".into())
            .spawn(move || {
                let opened = match opener.open(wider_ms) {
                    Ok(stream) => {
                        info!(
                            from_ms,
                            to_ms = wider_ms,
                            took_ms = started.elapsed().as_millis(),
                            "the speaker ran dry at the device: longer periods"
                        );
                        (Ok(stream), wider_ms)
                    }
                    Err(e) => {
                        warn!(error = %e, "the speaker could not take longer periods");
                        (opener.open(from_ms), from_ms)
                    }
                };
                let _ = tx.send(opened);
            })
            .map_err(|e| AudioError::Stream {
                direction: Direction::Output,
                reason: e.to_string(),
            })?;
        self.reopening = Some(rx);
        Ok(())
    }

    /// Takes the stream [`Speaker::widen`] opened, once it is there.
    fn reopened(&mut self) -> Result<(), AudioError> {
        let Some(reopening) = &self.reopening else {
            return Ok(());
        };
        match reopening.try_recv() {
            Err(std::sync::mpsc::TryRecvError::Empty) => return Ok(()),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                return Err(AudioError::SpeakerStopped(
                    "the device could not be opened again".into(),
                ))
            }
            Ok((opened, period_ms)) => {
                self.stream = Some(opened?);
                self.period_ms = period_ms;
            }
        }
        self.reopening = None;
        Ok(())
    }
}

impl AudioSink for Speaker {
    fn play(&mut self, frame: &[i16]) -> Result<(), AudioError> {
        let (largest_pull, widen) = {
            // A device that stopped asking for sound is gone.
            let mut health = lock(&self.health);
            if health.last_pull.elapsed() > SILENT_DEVICE {
                let reason = health
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "the device stopped asking for sound".into());
                return Err(AudioError::SpeakerStopped(reason));
            }
            let widen = std::mem::take(&mut health.underran);
            if widen {
                // A new stream pulls more at once, and fills its buffer
                // first: no gap until the queue holds one of its pulls.
                health.fed = false;
                health.largest_pull = 0;
            }
            (health.largest_pull, widen)
        };
        self.reopened()?;
        let idle = self.reopening.is_none();
        if let Some(wider_ms) = (widen && idle)
            .then(|| wider_period_ms(self.period_ms))
            .flatten()
        {
            self.widen(wider_ms)?;
        }
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
        if excess > 0 || full {
            let mut health = lock(&self.health);
            health.fed |= full;
            // Played no more: the echo canceller's reference holds it.
            health.slip -= excess as i64;
        }
        if excess > 0 {
            debug!(samples = excess, "the speaker's queue overflowed");
        }
        Ok(())
    }

    fn take_slip(&mut self) -> i64 {
        let device = std::mem::take(&mut lock(&self.health).slip);
        // In 48 kHz samples, the rest of the division kept for next time.
        self.slip_scaled += device * i64::from(SAMPLE_RATE);
        let rate = i64::from(self.rate.max(1));
        let slip = self.slip_scaled / rate;
        self.slip_scaled -= slip * rate;
        slip
    }

    fn queued(&self) -> usize {
        let queued = lock(&self.queue).len() as u64;
        (queued * u64::from(SAMPLE_RATE) / u64::from(self.rate.max(1))) as usize
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

/// How far ahead of its playing the speaker's device takes sound, and how
/// much waits in the queue before it, a second at a time (debug logs
/// only): the echo canceller's reference is queued with the sound, so the
/// two together are how long before it is heard the canceller has it, and
/// a change of either moves the echo's delay under the canceller.
#[derive(Debug)]
struct PlayTiming {
    rate: usize,
    /// Device samples taken in this second so far.
    taken: usize,
    lead: (std::time::Duration, std::time::Duration),
    queued: (usize, usize),
}

impl PlayTiming {
    fn new(rate: u32) -> PlayTiming {
        PlayTiming {
            rate: rate as usize,
            taken: 0,
            lead: (std::time::Duration::MAX, std::time::Duration::ZERO),
            queued: (usize::MAX, 0),
        }
    }

    fn observe(&mut self, lead: std::time::Duration, queued: usize, samples: usize) {
        self.lead = (self.lead.0.min(lead), self.lead.1.max(lead));
        self.queued = (self.queued.0.min(queued), self.queued.1.max(queued));
        self.taken += samples;
        if self.taken >= self.rate {
            let ms = |samples: usize| (samples * 1000 / self.rate.max(1)) as u64;
            debug!(
                lead_low_ms = self.lead.0.as_secs_f64() * 1e3,
                lead_high_ms = self.lead.1.as_secs_f64() * 1e3,
                queued_low_ms = ms(self.queued.0),
                queued_high_ms = ms(self.queued.1),
                "speaker timing"
            );
            *self = PlayTiming::new(self.rate as u32);
        }
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
    let rate = config.sample_rate.max(1);
    let mut timing = PlayTiming::new(rate);
    device
        .build_output_stream::<T, _, _>(
            config,
            {
                let health = health.clone();
                move |data: &mut [T], info: &cpal::OutputCallbackInfo| {
                    if tracing::enabled!(tracing::Level::DEBUG) {
                        let t = info.timestamp();
                        let lead = t.playback.saturating_duration_since(t.callback);
                        timing.observe(lead, lock(&queue).len(), data.len() / channels);
                    }
                    {
                        let mut health = lock(&health);
                        let now = Instant::now();
                        // Later than the device's two periods: it may have
                        // run dry (see `wider_period_ms`). Only looked at
                        // when it would be logged: this runs every period.
                        if health.fed && tracing::enabled!(tracing::Level::DEBUG) {
                            let since = now.duration_since(health.last_pull);
                            let period = Duration::from_secs_f64(
                                (data.len() / channels) as f64 / f64::from(rate),
                            );
                            if since > 2 * period {
                                let t = info.timestamp();
                                debug!(
                                    since_ms = since.as_secs_f64() * 1e3,
                                    queued_ahead_ms =
                                        t.playback.duration_since(t.callback).as_secs_f64() * 1e3,
                                    "the speaker's callback came late"
                                );
                            }
                        }
                        health.last_pull = now;
                        if health.largest_pull == 0 {
                            debug!(samples = data.len() / channels, "speaker period");
                        }
                        health.largest_pull = health.largest_pull.max(data.len() / channels);
                    }
                    let (short, missing) = {
                        let mut queue = lock(&queue);
                        let wanted = data.len() / channels;
                        let missing = wanted.saturating_sub(queue.len());
                        for frame in data.chunks_mut(channels) {
                            // Silence when the call has nothing queued.
                            let sample = queue.pop_front().unwrap_or(0.0);
                            frame.fill(T::from_sample(sample));
                        }
                        (missing > 0, missing)
                    };
                    if short {
                        let mut health = lock(&health);
                        // Played, not queued: the reference slips as much.
                        health.slip += missing as i64;
                        if health.fed {
                            health.starved = health.starved.saturating_add(1);
                            debug!(
                                starved = health.starved,
                                silence = missing,
                                margin_ms = speaker_margin_ms(health.starved),
                                "the speaker ran dry"
                            );
                        }
                    }
                }
            },
            {
                let mut errors = ErrorLog::default();
                move |e: cpal::Error| {
                    let now = Instant::now();
                    if let Some(left_out) = errors.admit(now) {
                        warn!(error = %e, left_out, "speaker stream error");
                    }
                    let mut health = lock(&health);
                    if e.kind() == cpal::ErrorKind::Xrun && health.fed {
                        health.underran = true;
                    }
                    health.last_error = Some(e.to_string());
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
    use super::*;

    #[test]
    fn periods_widen_twice_as_long_up_to_40_ms() {
        assert_eq!(wider_period_ms(10), Some(20));
        assert_eq!(wider_period_ms(20), Some(40));
        assert_eq!(wider_period_ms(30), Some(40));
        assert_eq!(wider_period_ms(40), None);
    }

    #[test]
    fn the_speaker_keeps_more_queued_each_time_it_ran_dry_up_to_50_ms() {
        assert_eq!(speaker_margin_ms(0), 10);
        assert_eq!(speaker_margin_ms(1), 15);
        assert_eq!(speaker_margin_ms(8), 50);
        assert_eq!(speaker_margin_ms(u32::MAX), 50);
    }
}
