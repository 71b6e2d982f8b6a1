//! `cargo bench -p huddle-engine --bench audio`: the capture path's audio
//! processing (sonora: AEC3, noise suppression, AGC2) on synthetic speech
//! through a synthetic linear room — echo left after 1 s, 2 s and in
//! steady state, what double-talk costs the near end, and the CPU per 10 ms
//! frame. Prints the figures; asserts nothing. The room is linear, which
//! flatters the canceller (see `audio::synthetic`).

use std::time::{Duration, Instant};

use huddle_engine::audio::processing::{Processing, ProcessingSettings};
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
