//! A shared screen's sound in a real call (real server, Opus both ways):
//! sent with the microphone's, on while the microphone is muted, alone
//! when there is no microphone, gone when the sharing stops. The sound is a
//! tone of its own (the computer's sound itself is Windows-only and
//! cannot run here; see `audio/device/system.rs`).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{alone, joined, params, server, start, tone_of, until};
use huddle_engine::audio::processing::ProcessingSettings;
use huddle_engine::audio::tone::power_at;
use huddle_engine::audio::{AudioSource, ToneInput};
use huddle_engine::call::{Call, CallEvent, CallOptions, Command};
use huddle_engine::video::source::CaptureError;
use huddle_engine::video::{I420Frame, PatternSource, VideoSource};

/// The screen's sound: a note no member sings.
const SOUND_HZ: f32 = 1000.0;

/// `from`'s audio over the next `seconds` at `call`.
async fn listen(call: &mut Call, from: &str, seconds: f32) -> Vec<i16> {
    let wanted = (48_000.0 * seconds) as usize;
    let mut samples = Vec::with_capacity(wanted);
    tokio::time::timeout(Duration::from_secs(30), async {
        while samples.len() < wanted {
            match call.next_event().await {
                Some(CallEvent::Audio {
                    from: who,
                    samples: s,
                }) if who == from => {
                    samples.extend(s);
                }
                Some(CallEvent::Stopped(reason)) => panic!("stopped: {reason:?}"),
                Some(_) => {}
                None => panic!("call ended"),
            }
        }
    })
    .await
    .expect("audio within 30 s");
    samples
}

/// Which of the member's note and the screen's sound a second of `from`
/// holds, after half a second for what was on its way.
async fn notes(call: &mut Call, from: &str, note: f32) -> (bool, bool) {
    listen(call, from, 0.5).await;
    let second = listen(call, from, 1.0).await;
    // The median over 100 ms windows: playout's stretching and concealment
    // break a tone's phase, which a whole second's narrow band would count
    // against it.
    let power = |hz: f32| {
        let mut windows: Vec<f32> = second.chunks(4_800).map(|w| power_at(w, hz)).collect();
        windows.sort_by(f32::total_cmp);
        windows[windows.len() / 2]
    };
    let (voice, sound) = (power(note), power(SOUND_HZ));
    eprintln!("{note} Hz: {voice:.0}, {SOUND_HZ} Hz: {sound:.0}");
    // A quarter-scale tone measures ~1e7; what Opus leaves of an absent
    // one, under 1e3.
    let loud = |p: f32| p > 1e5;
    let silent = |p: f32| p < 1e3;
    assert!(loud(voice) || silent(voice), "note {note}: {voice}");
    assert!(loud(sound) || silent(sound), "sound: {sound}");
    (loud(voice), loud(sound))
}

/// Ada and Grace in a call through a server of their own; Ada sends a
/// small test pattern and `audio` as her microphone, unprocessed (noise
/// suppression takes a steady tone for noise). With Ada's id.
async fn ada_and_grace(audio: Option<Box<dyn AudioSource>>) -> (Call, String, Call) {
    let server = server().await;
    let mut ada = Call::start(
        format!("ws://{server}/ws"),
        params("standup", "Ada"),
        CallOptions {
            video: Some(Box::new(PatternSource::new(320, 180, 15))),
            audio,
            output: None,
            bitrate_bps: 500_000,
            udp_addrs: vec!["127.0.0.1:0".into()],
            relay_only: false,
            processing: ProcessingSettings::OFF,
            volume: Default::default(),
        },
    );
    let ada_id = joined(&mut ada).await;
    let mut grace = start(server, "Grace");
    joined(&mut grace).await;
    ada.command(Command::JoinCall);
    grace.command(Command::JoinCall);
    (ada, ada_id, grace)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screens_sound_goes_with_the_microphone_and_on_while_muted() {
    let _cores = alone().await;
    let note = tone_of("Ada");
    let (ada, ada_id, mut grace) = ada_and_grace(Some(Box::new(ToneInput::new(note)))).await;
    assert_eq!(notes(&mut grace, &ada_id, note).await, (true, false));

    ada.command(Command::ShareSound(Some(Box::new(ToneInput::new(
        SOUND_HZ,
    )))));
    assert_eq!(
        notes(&mut grace, &ada_id, note).await,
        (true, true),
        "the microphone and the screen's sound"
    );
    ada.command(Command::Mute(true));
    assert_eq!(
        notes(&mut grace, &ada_id, note).await,
        (false, true),
        "muted: the screen's sound alone"
    );
    ada.command(Command::Mute(false));
    // Stopping the screen's sharing stops its sound.
    ada.command(Command::ShareScreen(None));
    assert_eq!(notes(&mut grace, &ada_id, note).await, (true, false));
}

/// A shared screen that gives out after its first pictures (as a display
/// that goes away does).
#[derive(Debug)]
struct FailingScreen(PatternSource, u32);

#[async_trait::async_trait]
impl VideoSource for FailingScreen {
    fn fps(&self) -> u32 {
        self.0.fps()
    }

    async fn next_frame(&mut self) -> Result<I420Frame, CaptureError> {
        self.1 = self.1.saturating_sub(1);
        if self.1 == 0 {
            // Gone for good: never another picture.
            std::future::pending::<()>().await;
        }
        if self.1 == 1 {
            return Err(CaptureError::Stopped("the display went away".into()));
        }
        self.0.next_frame().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_that_gives_out_takes_its_sound_with_it() {
    let _cores = alone().await;
    let note = tone_of("Ada");
    let (mut ada, ada_id, mut grace) = ada_and_grace(Some(Box::new(ToneInput::new(note)))).await;
    ada.command(Command::ShareScreen(Some(Box::new(FailingScreen(
        PatternSource::new(320, 180, 15),
        // 15 pictures a second: out after ~4 s.
        60,
    )))));
    ada.command(Command::ShareSound(Some(Box::new(ToneInput::new(
        SOUND_HZ,
    )))));
    assert_eq!(notes(&mut grace, &ada_id, note).await, (true, true));
    // Grace's events are taken meanwhile, or the seconds waited here would
    // be heard after it.
    let failed = until(&mut ada, 20, "ScreenFailed", |e| {
        matches!(e, CallEvent::ScreenFailed(_))
    });
    tokio::pin!(failed);
    loop {
        tokio::select! {
            () = &mut failed => break,
            _ = grace.next_event() => {}
        }
    }
    assert_eq!(
        notes(&mut grace, &ada_id, note).await,
        (true, false),
        "the screen is gone, and its sound with it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_microphone_the_screens_sound_is_sent_alone() {
    let _cores = alone().await;
    let (ada, ada_id, mut grace) = ada_and_grace(None).await;
    until(
        &mut grace,
        30,
        "Ada's picture",
        |e| matches!(e, CallEvent::Video { from, .. } if *from == ada_id),
    )
    .await;
    ada.command(Command::ShareSound(Some(Box::new(ToneInput::new(
        SOUND_HZ,
    )))));
    assert_eq!(
        notes(&mut grace, &ada_id, tone_of("Ada")).await,
        (false, true)
    );
}
