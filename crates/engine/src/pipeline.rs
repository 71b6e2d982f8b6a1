//! The media pipelines of a call, one task each: video out (capture, encode
//! once, send to every link) and audio out (capture, encode once, send);
//! audio in is [`crate::playout`].
//!
//! The call task steers them through [`Control`] messages — a new source,
//! mute or camera off, a new bitrate — and hears back through [`Report`]
//! when a device gives out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use huddle_protocol::PeerId;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::audio::opus::OpusEncoder;
use crate::audio::processing::Processing;
use crate::audio::{AudioError, AudioSource};
use crate::congestion::{frame_rate_for, halve, SendBudget};
use crate::peer::PeerLink;
use crate::video::h264::H264Encoder;
use crate::video::{CaptureError, VideoSource};

/// The links a pipeline sends to, shared with the call task.
pub type Links = Arc<Mutex<HashMap<PeerId, Arc<PeerLink>>>>;

/// The shortest stretch between two keyframes sent on request; longer
/// while the last keyframe takes long to send at the bitrate (see
/// [`keyframe_spacing`]).
const KEYFRAME_AT_MOST: Duration = Duration::from_secs(1);
/// …but never longer than this.
const KEYFRAME_AT_MOST_SLOW: Duration = Duration::from_secs(4);

/// The shortest stretch between keyframes on request: three times what the
/// last one takes to send at the bitrate (a receiver that asks again before
/// the keyframe it asked for could arrive must not get another), within
/// [`KEYFRAME_AT_MOST`]..[`KEYFRAME_AT_MOST_SLOW`].
fn keyframe_spacing(last_keyframe_bytes: usize, bitrate_bps: u32) -> Duration {
    let sending = last_keyframe_bytes as f64 * 8.0 / f64::from(bitrate_bps.max(1));
    Duration::from_secs_f64(3.0 * sending).clamp(KEYFRAME_AT_MOST, KEYFRAME_AT_MOST_SLOW)
}
/// The longest stretch without a keyframe.
const KEYFRAME_EVERY: Duration = Duration::from_secs(10);

/// Why the next picture should be a keyframe, shared by the call task and
/// the video pipeline.
#[derive(Debug, Default)]
pub struct KeyframeNeeds {
    /// A member connected, or video resumed: at the next picture.
    now: AtomicBool,
    /// A member asked (PLI/FIR): at most once per [`keyframe_spacing`] — on
    /// a path that loses packets every member's requests would otherwise
    /// have the encoder send nothing but keyframes, each too large to get
    /// through.
    requested: AtomicBool,
}

impl KeyframeNeeds {
    pub fn now(&self) {
        self.now.store(true, Ordering::Relaxed);
    }

    pub fn request(&self) {
        self.requested.store(true, Ordering::Relaxed);
    }

    /// Whether this picture is to be a keyframe, `since_last` after the
    /// last, requests honoured at most once per `spacing`.
    fn take(&self, since_last: Duration, spacing: Duration) -> bool {
        let now = self.now.swap(false, Ordering::Relaxed);
        let asked = since_last >= spacing && self.requested.swap(false, Ordering::Relaxed);
        now || asked || since_last > KEYFRAME_EVERY
    }
}

/// What the call task tells a sending pipeline.
#[derive(Debug)]
pub enum Control<S: ?Sized> {
    /// Use this source from now on (`None`: stop sending and release the
    /// device).
    Source(Option<Box<S>>),
    /// Send (`true`) or hold back (`false`: muted, camera off) without
    /// letting go of the device, so that turning it back on is instant.
    Enabled(bool),
    /// The bitrate to aim for (video), bits per second.
    Bitrate(u32),
    /// Send this screen instead of the source while it is there (video;
    /// `None`: back to the source). The source stays open meanwhile.
    Screen(Option<Box<S>>),
}

/// What a pipeline tells the call task.
#[derive(Debug)]
pub enum Report {
    VideoSourceFailed(CaptureError),
    ScreenFailed(CaptureError),
    AudioSourceFailed(AudioError),
    AudioSinkFailed(AudioError),
    /// A picture as captured, for the self view (only while asked for).
    Preview(crate::video::I420Frame),
    /// The microphone started or stopped hearing voice.
    Voice(bool),
    /// The microphone's level after processing (dBFS), every
    /// [`LEVEL_EVERY`] frames, muted or not: the window's level meter.
    Level(f32),
    /// 10 ms of a member's audio as played (or as it would be: a call
    /// without a speaker still hears).
    Heard(PeerId, Vec<i16>),
}

/// Audio frames (20 ms each) between two [`Report::Level`]s: 10 a second.
pub const LEVEL_EVERY: u32 = 5;

/// The links a pipeline sends this frame to (taken without holding the lock
/// across the sends).
fn snapshot(links: &Links) -> Vec<Arc<PeerLink>> {
    links
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .values()
        .cloned()
        .collect()
}

/// The next item of an optional, possibly paused source; pending forever
/// when there is none.
async fn next_or_never<T, F: std::future::Future<Output = T>>(future: Option<F>) -> T {
    match future {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

/// Captures, encodes once, and sends the result to every link; while
/// `preview` is set, also reports each picture as captured (the self view).
/// A shared screen, while there is one, is sent instead of the source, and
/// whether the source is enabled does not hold it back.
#[allow(clippy::too_many_arguments)]
pub async fn video(
    mut source: Option<Box<dyn VideoSource>>,
    mut bitrate_bps: u32,
    links: Links,
    keyframe: Arc<KeyframeNeeds>,
    preview: Arc<AtomicBool>,
    mut controls: mpsc::UnboundedReceiver<Control<dyn VideoSource>>,
    reports: mpsc::UnboundedSender<Report>,
) {
    let mut enabled = true;
    let mut screen: Option<Box<dyn VideoSource>> = None;
    let mut encoder: Option<H264Encoder> = None;
    let mut last_keyframe = Instant::now();
    let mut last_keyframe_bytes = 0usize;
    let mut budget = SendBudget::default();
    // Camera pictures at half size while the bitrate is low (see `halve`).
    let mut halved = false;
    // Where rate control's timeline is, when the last picture was sent,
    // and when the next may be (the frame rate follows the bitrate).
    let mut last_sent: Option<Instant> = None;
    let mut next_due = Instant::now();
    let mut rc_time = Duration::ZERO;
    loop {
        let frame = tokio::select! {
            control = controls.recv() => {
                match control {
                    None => return,
                    // While a screen is shared, what the camera does
                    // changes nothing that is sent.
                    Some(Control::Source(new)) => {
                        // A new source may have another frame rate.
                        if screen.is_none() {
                            encoder = None;
                        }
                        source = new;
                    }
                    Some(Control::Enabled(on)) => {
                        enabled = on;
                        // Receivers resume from a keyframe.
                        if screen.is_none() {
                            keyframe.now();
                        }
                    }
                    Some(Control::Bitrate(bps)) => {
                        bitrate_bps = bps;
                        if let Some(encoder) = encoder.as_mut() {
                            if let Err(e) = encoder.set_bitrate(bps) {
                                warn!(error = %e, "could not change the video bitrate");
                            }
                        }
                    }
                    Some(Control::Screen(new)) => {
                        // Another picture size and frame rate, from a keyframe.
                        encoder = None;
                        screen = new;
                    }
                }
                continue;
            }
            frame = next_or_never(screen.as_mut().or(source.as_mut()).map(|s| s.next_frame())) => frame,
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) if screen.is_some() => {
                screen = None;
                encoder = None;
                let _ = reports.send(Report::ScreenFailed(e));
                continue;
            }
            Err(e) => {
                source = None;
                let _ = reports.send(Report::VideoSourceFailed(e));
                continue;
            }
        };
        let sending = enabled || screen.is_some();
        if sending && preview.load(Ordering::Relaxed) {
            let _ = reports.send(Report::Preview(frame.clone()));
        }
        let targets = snapshot(&links);
        // Nothing is encoded before a member can receive it: the first
        // picture a member gets is the keyframe made when it connected.
        if !sending || !targets.iter().any(|link| link.sends_media()) {
            continue;
        }
        let fps = screen.as_ref().or(source.as_ref()).map_or(30, |s| s.fps());
        let captured = Instant::now();
        if captured < next_due {
            continue;
        }
        let rate = frame_rate_for(bitrate_bps, fps);
        let period = Duration::from_secs(1) / rate;
        // A little early is on time: the source's own ticks jitter.
        next_due = captured + period.mul_f32(0.85);
        let mut current = match encoder.take() {
            Some(encoder) => encoder,
            None => match H264Encoder::new(bitrate_bps, rate as f32) {
                Ok(encoder) => {
                    rc_time = Duration::ZERO;
                    encoder
                }
                Err(e) => {
                    warn!(error = %e, "no H.264 encoder: sending no video");
                    source = None;
                    continue;
                }
            },
        };
        // Rate control budgets each picture for the rate pictures are sent
        // at (at 15 a second with the encoder set for 30, video used half
        // of what the path allowed).
        if let Err(e) = current.set_frame_rate(rate as f32) {
            warn!(error = %e, "no H.264 encoder: sending no video");
            source = None;
            continue;
        }
        // A keyframe when needed (see `KeyframeNeeds`), and at least every
        // few seconds so that a member whose request was lost still recovers.
        let key = keyframe.take(
            last_keyframe.elapsed(),
            keyframe_spacing(last_keyframe_bytes, bitrate_bps),
        );
        // While earlier pictures still wait for the path, this one is
        // skipped (a keyframe a member needs is never held back).
        if !budget.allows(captured, bitrate_bps) && !key {
            tracing::trace!(
                backlog_ms = budget.backlog(bitrate_bps).as_millis() as u64,
                "a picture skipped: the path is behind"
            );
            encoder = Some(current);
            continue;
        }
        if key {
            last_keyframe = Instant::now();
        }
        // A camera picture at half size on a narrow path (a shared screen
        // keeps its size: text must stay legible; it gets fewer pictures).
        halved = screen.is_none() && halve(bitrate_bps, frame.width(), halved);
        let frame = if halved { frame.halved() } else { frame };
        // Encoding is CPU work: off the async threads.
        // Rate control's timeline: one period of the intended frame rate per
        // picture encoded. (Real capture time measured worse at 720p on saturated
        // cores: when the encoder managed ~20 fps, rate control then sent
        // ~1.2 Mbit/s of a 2.5 Mbit/s target, against ~2.0 this way.)
        let at = rc_time;
        rc_time += period;
        let encoded = tokio::task::spawn_blocking(move || {
            let unit = current.encode_at(&frame, key, at);
            (current, unit)
        })
        .await;
        let Ok((returned, unit)) = encoded else {
            return;
        };
        encoder = Some(returned);
        let unit = match unit {
            Ok(unit) if !unit.is_empty() => {
                budget.spend(unit.len());
                if key {
                    last_keyframe_bytes = unit.len();
                    debug!(
                        bytes = unit.len(),
                        nals = ?crate::video::h264::nal_types(&unit),
                        bitrate_bps,
                        backlog_ms = budget.backlog(bitrate_bps).as_millis() as u64,
                        "keyframe"
                    );
                }
                Bytes::from(unit)
            }
            Ok(_) => {
                tracing::trace!(key, "a picture skipped by rate control");
                continue;
            }
            Err(e) => {
                warn!(error = %e, "encoding failed");
                continue;
            }
        };
        // The RTP clock advances by the time since the last picture sent —
        // not a nominal frame period, which pictures that rate control or
        // the frame-rate cap dropped would have left behind real time.
        let duration = last_sent.map_or(period, |t| captured.duration_since(t));
        last_sent = Some(captured);
        for link in targets {
            if let Err(e) = link.send_video(unit.clone(), duration).await {
                debug!(error = %e, "sending video failed");
            }
        }
    }
}

/// Takes 20 ms of audio at a time, processes it (echo, noise, gain, voice
/// activity — muted or not), encodes it once, sends it to every link.
pub async fn audio(
    mut source: Option<Box<dyn AudioSource>>,
    links: Links,
    processing: Arc<Processing>,
    mut controls: mpsc::UnboundedReceiver<Control<dyn AudioSource>>,
    reports: mpsc::UnboundedSender<Report>,
) {
    let mut encoder = match OpusEncoder::new() {
        Ok(e) => e,
        Err(e) => {
            warn!(error = %e, "no Opus encoder: sending no audio");
            return;
        }
    };
    let mut enabled = true;
    let mut voiced = false;
    let mut frames = 0u32;
    loop {
        let frame = tokio::select! {
            control = controls.recv() => {
                match control {
                    None => return,
                    Some(Control::Source(new)) => source = new,
                    Some(Control::Enabled(on)) => enabled = on,
                    Some(Control::Bitrate(_) | Control::Screen(_)) => {}
                }
                continue;
            }
            frame = next_or_never(source.as_mut().map(|s| s.next_frame())) => frame,
        };
        let mut frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                source = None;
                let _ = reports.send(Report::AudioSourceFailed(e));
                continue;
            }
        };
        // ~0.3 ms of work per 20 ms (see the `audio` bench).
        let voice = processing.capture(&mut frame);
        if voice != voiced {
            voiced = voice;
            let _ = reports.send(Report::Voice(voice));
        }
        frames = frames.wrapping_add(1);
        if frames % LEVEL_EVERY == 0 {
            let _ = reports.send(Report::Level(crate::audio::voice::dbfs(&frame)));
        }
        // Muted: the microphone keeps running, nothing leaves.
        let targets = snapshot(&links);
        if targets.is_empty() || !enabled {
            continue;
        }
        // Opus at 20 ms mono is ~0.1 ms of work: no need to leave the task.
        let packet = match encoder.encode(&frame) {
            Ok(p) => Bytes::from(p),
            Err(e) => {
                warn!(error = %e, "Opus encoding failed");
                continue;
            }
        };
        for link in targets {
            if let Err(e) = link.send_audio(packet.clone()).await {
                debug!(error = %e, "sending audio failed");
            }
        }
    }
}
