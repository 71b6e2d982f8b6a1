//! The media pipelines of a call, one task each: video out ([`video`]:
//! capture, encode once per [`plan::Plan`] entry — one [`encoding`] for
//! links alike, another for a weak one — send) and audio out ([`audio`]:
//! capture, encode once, send to every link); audio in is
//! [`crate::playout`].
//!
//! The call task steers them through [`Control`] messages — a new source,
//! mute or camera off, a new plan, a member's keyframe — and hears back
//! through [`Report`] when a device gives out.

mod cadence;
pub mod cpu;
pub mod encoding;
pub mod plan;
mod video;

pub use plan::{Plan, Planner};
pub use video::video;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use huddle_protocol::PeerId;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::audio::blend::Blend;
use crate::audio::opus::OpusEncoder;
use crate::audio::processing::Processing;
use crate::audio::{AudioError, AudioSource};
use crate::peer::PeerLink;
use crate::sync::lock;
use crate::video::CaptureError;

/// The links a pipeline sends to, shared with the call task.
pub type Links = Arc<Mutex<HashMap<PeerId, Arc<PeerLink>>>>;

/// What the call task tells a sending pipeline.
#[derive(Debug)]
pub enum Control<S: ?Sized> {
    /// Use this source from now on (`None`: stop sending and release the
    /// device).
    Source(Option<Box<S>>),
    /// Send (`true`) or hold back (`false`: muted, camera off) without
    /// letting go of the device, so that turning it back on is instant.
    Enabled(bool),
    /// Which encoding of the video each member gets, at what bitrate
    /// (video).
    Plan(Plan),
    /// This member's next picture is to be a keyframe: it connected
    /// (video).
    KeyframeNow(PeerId),
    /// This member asked for a keyframe (PLI/FIR; video).
    KeyframeRequest(PeerId),
    /// Send this screen instead of the source while it is there (video;
    /// `None`: back to the source; the source stays open meanwhile) — or,
    /// to the audio pipeline, this screen's sound alongside the source.
    Screen(Option<Box<S>>),
}

/// What a pipeline tells the call task.
#[derive(Debug)]
pub enum Report {
    VideoSourceFailed(CaptureError),
    ScreenFailed(CaptureError),
    AudioSourceFailed(AudioError),
    /// The shared screen's sound gave out (the screen itself goes on).
    ScreenSoundFailed(AudioError),
    AudioSinkFailed(AudioError),
    /// A picture as captured, for the self view (only while asked for).
    Preview(crate::video::I420Frame),
    /// The microphone started or stopped hearing voice.
    Voice(bool),
    /// The microphone's level after processing (dBFS), every
    /// [`LEVEL_EVERY`] frames, muted or not: the window's level meter.
    Level(f32),
    /// The most the pictures now sent are worth
    /// ([`crate::congestion::size_ceiling_bps`]), when it changes: the
    /// mesh's plan does not split links above it ([`Planner::set_ceiling`]).
    Ceiling(u32),
    /// 10 ms of a member's audio as played (or as it would be: a call
    /// without a speaker still hears).
    Heard(PeerId, Vec<i16>),
}

/// Audio frames (20 ms each) between two [`Report::Level`]s: 10 a second.
pub const LEVEL_EVERY: u32 = 5;

/// The links a pipeline sends this frame to, with their members' ids
/// (taken without holding the lock across the sends).
fn snapshot_named(links: &Links) -> Vec<(PeerId, Arc<PeerLink>)> {
    lock(links)
        .iter()
        .map(|(peer, link)| (peer.clone(), link.clone()))
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

/// Takes 20 ms of audio at a time, processes it (echo, noise, gain, voice
/// activity — muted or not), adds a shared screen's sound
/// ([`crate::audio::blend`]), encodes it once, sends it to every link.
///
/// Opus DTX is on unless voice activity hears someone in the frame itself:
/// libopus then stops sending after its own 200 ms without speech, and
/// sends a refresh and a DTX frame every 400 ms instead of 50 frames a
/// second; a frame our detector calls voice is always sent, whatever
/// libopus's detector makes of it. (Held through the pauses between words,
/// as the speaking indicator is, it sent 42 packets a second of a word a
/// second where Chromium sent 36: see the README.)
/// Every frame taken counts toward the RTP time, sent or not, so a
/// listener sees the silence as time that passed, not as loss.
///
/// The screen's sound (`Control::Screen`) is not the microphone's: it goes
/// out while muted, and with no microphone at all its own frames are sent.
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
    let mut dtx = true;
    if let Err(e) = encoder.set_dtx(dtx) {
        warn!(error = %e, "no Opus DTX: silence is sent in full");
    }
    let mut frames = 0u32;
    // RTP time (48 kHz) of the frame taken; its start is arbitrary.
    let mut rtp_time = 0u32;
    let mut sound: Option<Box<dyn AudioSource>> = None;
    let mut blend = Blend::default();
    loop {
        let taken = tokio::select! {
            control = controls.recv() => {
                match control {
                    None => return,
                    Some(Control::Source(new)) => source = new,
                    Some(Control::Enabled(on)) => enabled = on,
                    Some(Control::Screen(new)) => {
                        sound = new;
                        blend.clear();
                        processing.stopped_playing();
                    }
                    Some(
                        Control::Plan(_)
                        | Control::KeyframeNow(_)
                        | Control::KeyframeRequest(_),
                    ) => {}
                }
                continue;
            }
            frame = next_or_never(source.as_mut().map(|s| s.next_frame())) => Taken::Microphone(frame),
            frame = next_or_never(sound.as_mut().map(|s| s.next_frame())) => Taken::Sound(frame),
        };
        let mut frame = match taken {
            Taken::Microphone(Ok(frame)) => frame,
            Taken::Microphone(Err(e)) => {
                source = None;
                let _ = reports.send(Report::AudioSourceFailed(e));
                continue;
            }
            Taken::Sound(Err(e)) => {
                sound = None;
                blend.clear();
                processing.stopped_playing();
                let _ = reports.send(Report::ScreenSoundFailed(e));
                continue;
            }
            Taken::Sound(Ok(frame)) if source.is_some() => {
                // The speaker plays it too: the canceller is told.
                processing.also_playing(&frame);
                blend.push(frame);
                continue;
            }
            // No microphone: the sound paces itself.
            Taken::Sound(Ok(frame)) => {
                let at = rtp_time;
                rtp_time = rtp_time.wrapping_add(frame.len() as u32);
                send_audio(&mut encoder, &links, &frame, at).await;
                continue;
            }
        };
        if let Some(dropped) = source.as_mut().map(|s| s.take_dropped()) {
            processing.slipped(-i64::try_from(dropped).unwrap_or(i64::MAX));
        }
        // ~0.3 ms of work per 20 ms (see the `audio` bench).
        let voice = processing.capture(&mut frame);
        if voice.talking != voiced {
            voiced = voice.talking;
            let _ = reports.send(Report::Voice(voiced));
        }
        if voice.now == dtx {
            dtx = !voice.now;
            if let Err(e) = encoder.set_dtx(dtx) {
                debug!(error = %e, "Opus DTX not switched");
            }
        }
        let at = rtp_time;
        rtp_time = rtp_time.wrapping_add(frame.len() as u32);
        frames = frames.wrapping_add(1);
        if frames % LEVEL_EVERY == 0 {
            let _ = reports.send(Report::Level(crate::audio::voice::dbfs(&frame)));
        }
        // Muted: the microphone keeps running, nothing of it leaves.
        if !enabled {
            frame.fill(0);
        }
        let with_sound = blend.add_into(&mut frame);
        if enabled || with_sound {
            send_audio(&mut encoder, &links, &frame, at).await;
        }
    }
}

/// What the audio task took: a microphone frame or one of the screen's sound.
enum Taken {
    Microphone(Result<Vec<i16>, AudioError>),
    Sound(Result<Vec<i16>, AudioError>),
}

/// Encodes `frame` (RTP time `at`) and sends it to every link, if anyone
/// listens.
async fn send_audio(encoder: &mut OpusEncoder, links: &Links, frame: &[i16], at: u32) {
    let targets = snapshot_named(links);
    if targets.is_empty() {
        return;
    }
    // Opus at 20 ms mono is ~0.1 ms of work: no need to leave the task.
    let packet = match encoder.next_packet(frame) {
        Ok(Some(p)) => Bytes::from(p),
        // Silence the listeners already know of (DTX).
        Ok(None) => return,
        Err(e) => {
            warn!(error = %e, "Opus encoding failed");
            return;
        }
    };
    for (_, link) in targets {
        if let Err(e) = link.send_audio(packet.clone(), at).await {
            debug!(error = %e, "sending audio failed");
        }
    }
}
