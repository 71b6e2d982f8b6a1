//! Sound devices for real: a user-mode PulseAudio with a null sink stands
//! in for a sound card. What the speaker plays into the sink is captured
//! from the sink's monitor by the microphone; a device suspended for a
//! while comes back; with no sound server at all, opening either device is
//! a clear error.
//!
//! One test, because the sound server is chosen through the process's
//! environment (`PULSE_SERVER`, read by ALSA's pulse plugin).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::pulse::{use_sound_server, Pulse};

use huddle_engine::audio::device::list_devices;
use huddle_engine::audio::tone::dominant_frequency;
use huddle_engine::audio::{
    AudioError, AudioSink, AudioSource, Direction, Microphone, Speaker, ToneInput,
};
use huddle_engine::call::{Call, CallEvent, CallOptions, Command};
use huddle_protocol::ServerMessage;

/// Listens to `mic` a second at a time, past the null sink's warm-up
/// (~1.5 s before its monitor carries sound), until a second's dominant
/// frequency is `hz` — the sound may take a while to start (a call connects
/// first) — or 15 s pass; returns the last second's dominant frequency.
async fn hears(mic: &mut Microphone, hz: f32) -> Option<f32> {
    let mut heard = None;
    let mut samples = Vec::new();
    let mut skipped = 0;
    let _ = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            samples.extend(mic.next_frame().await.unwrap());
            if skipped < 48_000 * 2 {
                skipped += samples.len();
                samples.clear();
                continue;
            }
            if samples.len() >= 48_000 {
                heard = dominant_frequency(&samples);
                samples.clear();
                if heard == Some(hz) {
                    return;
                }
            }
        }
    })
    .await;
    heard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_speaker_is_heard_by_the_microphone_and_no_sound_server_is_a_clear_error() {
    // No sound server: errors, not panics, that say what is missing.
    use_sound_server(Path::new("/nonexistent/huddle-pulse"));
    let mic = Microphone::open(None).unwrap_err().to_string();
    assert!(mic.contains("no input device"), "{mic}");
    let speaker = Speaker::open(None).unwrap_err().to_string();
    assert!(speaker.contains("no output device"), "{speaker}");
    let named = Microphone::open(Some("no such microphone"))
        .unwrap_err()
        .to_string();
    assert!(named.contains("no such microphone"), "{named}");

    let pulse = Pulse::start(&["module-null-sink sink_name=huddle_test"]);
    use_sound_server(&pulse.socket());
    assert!(list_devices(Direction::Input)
        .iter()
        .any(|d| d.id == "alsa:pulse"));

    // A tone played through the speaker comes back through the microphone.
    let mut speaker = Speaker::open(None).unwrap();
    // By the id `--list-devices` shows (ALSA's route to the sound server).
    let mut mic = Microphone::open(Some("alsa:pulse")).unwrap();
    let playing = tokio::spawn(async move {
        let mut tone = ToneInput::new(660.0);
        loop {
            let frame = tone.next_frame().await.unwrap();
            speaker.play(&frame).unwrap();
        }
    });
    assert_eq!(hears(&mut mic, 660.0).await, Some(660.0));
    playing.abort();
    let _ = playing.await;

    // A call's remote audio, mixed and played: Ada plays what Grace sends.
    let server = common::server().await;
    let join = |name: &str| common::params("sound", name);
    let url = format!("ws://{server}/ws");
    let mut ada = Call::start(
        url.clone(),
        join("Ada"),
        CallOptions {
            output: Some(Box::new(Speaker::open(None).unwrap())),
            udp_addrs: vec!["127.0.0.1:0".into()],
            ..CallOptions::default()
        },
    );
    let mut grace = Call::start(
        url,
        join("Grace"),
        CallOptions {
            audio: Some(Box::new(ToneInput::new(880.0))),
            udp_addrs: vec!["127.0.0.1:0".into()],
            ..CallOptions::default()
        },
    );
    for call in [&mut ada, &mut grace] {
        loop {
            match call.next_event().await.unwrap() {
                CallEvent::Message(ServerMessage::Joined { .. }) => break,
                CallEvent::Stopped(reason) => panic!("{reason:?}"),
                _ => {}
            }
        }
        call.command(Command::JoinCall);
    }
    // Keep both calls' events flowing while the microphone listens.
    let drain = |mut call: Call| {
        tokio::spawn(async move {
            while let Some(event) = call.next_event().await {
                if let CallEvent::AudioOutFailed(e) = event {
                    panic!("playback failed: {e}");
                }
            }
        })
    };
    let (ada, grace) = (drain(ada), drain(grace));
    assert_eq!(
        hears(&mut mic, 880.0).await,
        Some(880.0),
        "Grace's note from Ada's speaker"
    );
    ada.abort();
    grace.abort();

    // The sound server suspends the device for 3 s (as it may for a
    // headset's profile switch): the microphone comes back by itself —
    // opened again, not given up after 2 s of silence.
    let suspend = |on: &str| {
        let status = std::process::Command::new("pactl")
            .args(["suspend-sink", "huddle_test", on])
            .status()
            .expect("pactl (Debian package pulseaudio-utils) must be installed");
        assert!(status.success(), "pactl suspend-sink {on}");
    };
    suspend("1");
    let resume = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        suspend("0");
    });
    let after_stall = tokio::time::timeout(Duration::from_secs(15), async {
        let mut frames = 0;
        // A second of sound after the resume.
        while !resume.is_finished() || frames < 50 {
            mic.next_frame()
                .await
                .expect("the microphone survives a stall");
            if resume.is_finished() {
                frames += 1;
            }
        }
    })
    .await;
    assert!(after_stall.is_ok(), "no sound within 12 s of the resume");

    // The call falls behind for 600 ms: the microphone keeps 200 ms and
    // drops the rest, and says how much (the echo canceller's reference
    // drops as much, or the echo's delay would seem 400 ms shorter).
    mic.take_dropped();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let dropped = mic.take_dropped();
    assert!(
        dropped % 960 == 0 && (960 * 10..=960 * 30).contains(&dropped),
        "dropped {dropped} samples in 600 ms not taken, 200 ms of them kept"
    );

    // The sound server goes away mid-use: the microphone says so (it does
    // not just go quiet), and so does the speaker.
    let mut speaker = Speaker::open(None).unwrap();
    drop(pulse);
    let gone = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Err(e) = mic.next_frame().await {
                return e;
            }
        }
    })
    .await
    .expect("the microphone reports its end");
    assert!(matches!(gone, AudioError::Stopped), "{gone:?}");
    let silent = vec![0i16; 960];
    let stopped = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Err(e) = speaker.play(&silent) {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the speaker reports its end");
    assert!(
        matches!(stopped, AudioError::SpeakerStopped(_)),
        "{stopped:?}"
    );
}
