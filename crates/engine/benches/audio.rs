//! `cargo bench -p huddle-engine --bench audio`: the capture path's audio
//! processing (sonora: AEC3, noise suppression, AGC2) on synthetic speech
//! through a synthetic linear room — echo left after 1 s, 2 s and in
//! steady state, what double-talk costs the near end, the echo left minute
//! by minute when the microphone's clock runs 0.1 % fast or slow against the
//! speaker's, and the CPU per 10 ms frame. Prints the figures; asserts
//! nothing. The room is linear, which
//! flatters the canceller (see `audio::synthetic`).

use std::time::{Duration, Instant};

use huddle_engine::audio::processing::{Processing, ProcessingSettings, PROCESS_SAMPLES};
use huddle_engine::audio::resample::Resampler;
use huddle_engine::audio::synthetic::{mix, room, talker};
use huddle_engine::audio::voice::dbfs;

const SECOND: usize = 48_000;

/// Runs far end (played) and microphone through `processing` 20 ms at a
/// time; returns what would be sent, and the CPU time per 10 ms frame.
fn run(processing: &Processing, far: &[i16], mic: &[i16]) -> (Vec<i16>, Duration) {
    let mut sent = Vec::with_capacity(mic.len());
    let start = Instant::now();
    for (far, mic) in far.chunks_exact(960).zip(mic.chunks_exact(960)) {
        processing.render(far);
        let mut frame = mic.to_vec();
        processing.capture(&mut frame);
        sent.extend(frame);
    }
    let frames = (mic.len() / 480).max(1) as u32;
    (sent, start.elapsed() / frames)
}

/// The far end talks for `minutes` through the room to a microphone whose
/// clock runs at `mic_hz` by the speaker's (48 000: the same clock): the
/// speaker plays 100 frames a second, the microphone delivers `mic_hz` /
/// 480, and each reaches the processing when it is due. Returns, second by
/// second of the microphone, the echo's level unprocessed and what was
/// left of it (dBFS).
fn drift(processing: &Processing, minutes: usize, mic_hz: u32) -> Vec<(f32, f32)> {
    let far = talker(minutes as f32 * 60.0, 11);
    let echo: Vec<f32> = room(&far).iter().map(|&s| f32::from(s)).collect();
    // What the microphone's clock samples of the room's sound.
    let mut mic = Vec::with_capacity(echo.len() + echo.len() / 500);
    let mut resampler = Resampler::new(48_000, mic_hz);
    echo.chunks(960)
        .for_each(|c| resampler.process(c, &mut mic));
    let mic: Vec<i16> = mic.iter().map(|&s| s as i16).collect();
    let (mut sent, mut heard) = (Vec::with_capacity(mic.len()), Vec::new());
    let (mut played, mut captured) = (0usize, 0usize);
    let frames = |v: &[i16]| v.len() / PROCESS_SAMPLES;
    while played < frames(&far) && captured < frames(&mic) {
        // Both in seconds of the speaker's clock.
        let play_due = played as f64 / 100.0;
        let capture_due = captured as f64 * PROCESS_SAMPLES as f64 / f64::from(mic_hz);
        if play_due <= capture_due {
            let at = played * PROCESS_SAMPLES;
            processing.render(&far[at..at + PROCESS_SAMPLES]);
            played += 1;
        } else {
            let at = captured * PROCESS_SAMPLES;
            let mut frame = mic[at..at + PROCESS_SAMPLES].to_vec();
            heard.extend_from_slice(&frame);
            processing.capture(&mut frame);
            sent.extend(frame);
            captured += 1;
        }
    }
    let second = mic_hz as usize;
    heard
        .chunks_exact(second)
        .zip(sent.chunks_exact(second))
        .map(|(h, s)| (dbfs(h), dbfs(s)))
        .collect()
}

/// A second of echo counts when the far end talked in it (the echo
/// unprocessed over −40 dBFS); it leaks when less than 25 dB came off.
const TALKED_DBFS: f32 = -40.0;
const LEAK_DB: f32 = 25.0;

/// Median and 10th percentile of the echo suppressed over the seconds the
/// far end talked, and the leaking seconds in each half of the run.
fn drift_summary(seconds: &[(f32, f32)]) -> (f32, f32, usize, usize) {
    let talked: Vec<(usize, f32)> = seconds
        .iter()
        .enumerate()
        .filter(|(_, (heard, _))| *heard > TALKED_DBFS)
        .map(|(i, (heard, sent))| (i, heard - sent))
        .collect();
    let mut suppressed: Vec<f32> = talked.iter().map(|&(_, d)| d).collect();
    suppressed.sort_by(f32::total_cmp);
    let at = |q: f32| {
        suppressed
            .get((q * (suppressed.len().max(1) - 1) as f32) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let half = seconds.len() / 2;
    let leaks = |first: bool| {
        talked
            .iter()
            .filter(|&&(i, d)| (i < half) == first && d < LEAK_DB)
            .count()
    };
    (at(0.5), at(0.1), leaks(true), leaks(false))
}

fn window(v: &[i16], from_s: usize, to_s: usize) -> &[i16] {
    &v[from_s * SECOND..(to_s * SECOND).min(v.len())]
}

fn main() {
    let aec_only = ProcessingSettings {
        echo_cancellation: true,
        noise_suppression: false,
        gain_control: false,
    };
    // Echo alone: the far end talks for 10 s, the near end is silent.
    let far = talker(10.0, 7);
    let echo = room(&far);
    let processing = Processing::new(aec_only);
    let (sent, per_frame) = run(&processing, &far, &echo);
    println!("echo through a linear room (40 ms, −6 dB, two reflections), AEC3 only:");
    for (label, from, to) in [("0–1 s", 0, 1), ("1–2 s", 1, 2), ("steady (6–10 s)", 6, 10)] {
        let before = dbfs(window(&echo, from, to));
        let after = dbfs(window(&sent, from, to));
        println!(
            "  {label:>16}: echo {before:6.1} dBFS → {after:6.1} dBFS, suppressed {:5.1} dB",
            before - after
        );
    }
    // Double talk: after 4 s of echo alone, the near end talks too.
    let near: Vec<i16> = (0..far.len())
        .map(|i| if i < 4 * SECOND { 0 } else { 1 })
        .zip(talker(10.0, 99))
        .map(|(on, s)| s * on)
        .collect();
    let processing = Processing::new(aec_only);
    let (sent, _) = run(&processing, &far, &mix(&echo, &near));
    let (near_alone, _) = run(&Processing::new(aec_only), &vec![0; far.len()], &near);
    println!(
        "double talk (6–10 s): near end alone through the same processing {:.1} dBFS, with the echo {:.1} dBFS",
        dbfs(window(&near_alone, 6, 10)),
        dbfs(window(&sent, 6, 10))
    );
    // Noise: the talker over steady noise at 5 dB SNR; the level in the
    // talker's syllables against the level in its pauses, before and after
    // noise suppression (a rough segmental SNR: the syllables carry noise
    // too, so it understates both).
    let voice = talker(10.0, 3);
    let mut state = 0x1234_5678_u32;
    let mut white = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as f32 / u32::MAX as f32 * 2.0 - 1.0
    };
    // Pink-ish: white through a one-pole low-pass, scaled to 5 dB under the voice.
    let mut low = 0.0f32;
    let raw_noise: Vec<f32> = (0..voice.len())
        .map(|_| {
            low = 0.97 * low + 0.03 * white();
            low
        })
        .collect();
    let rms = |v: &[f32]| (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt();
    let active: Vec<bool> = voice
        .chunks(480)
        .map(|c| c.iter().any(|&s| s != 0))
        .collect();
    let voiced: Vec<f32> = voice
        .chunks(480)
        .zip(&active)
        .filter(|(_, &a)| a)
        .flat_map(|(c, _)| c.iter().map(|&s| f32::from(s)))
        .collect();
    let voice_rms = rms(&voiced);
    let gain = voice_rms / rms(&raw_noise) / 10f32.powf(5.0 / 20.0);
    let noisy: Vec<i16> = voice
        .iter()
        .zip(&raw_noise)
        .map(|(&v, n)| (f32::from(v) + n * gain).clamp(-32_768.0, 32_767.0) as i16)
        .collect();
    let segmental = |v: &[i16]| {
        // From 3 s on (the suppressor has learnt the noise by then).
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for (chunk, &a) in v.chunks(480).zip(&active).skip(300) {
            if a {
                on.extend_from_slice(chunk)
            } else {
                off.extend_from_slice(chunk)
            }
        }
        dbfs(&on) - dbfs(&off)
    };
    let ns_only = ProcessingSettings {
        echo_cancellation: false,
        noise_suppression: true,
        gain_control: false,
    };
    let (cleaned, _) = run(&Processing::new(ns_only), &vec![0; noisy.len()], &noisy);
    println!(
        "noise at 5 dB SNR (pink-ish): syllables over pauses {:.1} dB in, {:.1} dB after noise suppression",
        segmental(&noisy),
        segmental(&cleaned)
    );
    // Clock drift between microphone and speaker (two USB devices, or a
    // headset's microphone with the laptop's speaker): 10 minutes each.
    let minutes = std::env::var("HUDDLE_DRIFT_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(10);
    for (label, mic_hz) in [
        ("same clock", 48_000),
        ("microphone 0.1 % fast", 48_048),
        ("microphone 0.1 % slow", 47_952),
    ] {
        for (taken_out, processing) in [
            ("left in", Processing::with_drift_left_in(aec_only)),
            ("taken out", Processing::new(aec_only)),
        ] {
            let seconds = drift(&processing, minutes, mic_hz);
            let (median, low, early, late) = drift_summary(&seconds);
            println!(
                "drift, {label}, {taken_out}, {minutes} min: echo suppressed {median:.0} dB (median second), {low:.0} dB (10th percentile); seconds leaking (< {LEAK_DB:.0} dB off) {early} in the first half, {late} in the second"
            );
        }
    }
    // CPU, everything on.
    let all = Processing::new(ProcessingSettings::default());
    let (_, all_per_frame) = run(&all, &far, &mix(&echo, &near));
    println!(
        "CPU per 10 ms frame (render + capture): AEC3 only {:.0} µs ({:.1} % of a core), AEC3 + NS + AGC2 {:.0} µs ({:.1} %) — debug or release as built",
        per_frame.as_secs_f64() * 1e6,
        per_frame.as_secs_f64() / 0.010 * 100.0,
        all_per_frame.as_secs_f64() * 1e6,
        all_per_frame.as_secs_f64() / 0.010 * 100.0
    );
}
