//! `cargo bench -p huddle-engine --bench codec`: OpenH264 encode and decode
//! time per frame at 640×480 and 1280×720 on moving camera-like content
//! ([`TestPattern::busy`]), and
//! Opus per 20 ms frame. Prints the figures; asserts nothing.

use std::time::{Duration, Instant};

use huddle_engine::audio::opus::{OpusDecoder, OpusEncoder};
use huddle_engine::audio::tone::ToneSource;
use huddle_engine::video::h264::{Complexity, H264Decoder, H264Encoder};
use huddle_engine::video::pattern::TestPattern;
use huddle_engine::video::I420Frame;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn mean(v: &[Duration]) -> Duration {
    v.iter().sum::<Duration>() / v.len().max(1) as u32
}

fn video(width: usize, height: usize, bitrate_bps: u32, complexity: Complexity) {
    const FRAMES: usize = 300;
    let mut scene = TestPattern::busy(width, height);
    let frames: Vec<I420Frame> = (0..FRAMES).map(|_| scene.next_frame()).collect();
    let Ok(mut encoder) = H264Encoder::with_complexity(bitrate_bps, 30.0, complexity) else {
        eprintln!("no encoder");
        return;
    };
    let mut encode_times = Vec::with_capacity(FRAMES);
    let mut units = Vec::with_capacity(FRAMES);
    let mut bytes = 0usize;
    for (n, frame) in frames.iter().enumerate() {
        let start = Instant::now();
        let unit = encoder.encode(frame, n == 0).unwrap_or_default();
        encode_times.push(start.elapsed());
        bytes += unit.len();
        units.push(unit);
    }
    let Ok(mut decoder) = H264Decoder::new() else {
        eprintln!("no decoder");
        return;
    };
    let mut decode_times = Vec::with_capacity(FRAMES);
    let mut decoded = 0;
    for unit in units.iter().filter(|u| !u.is_empty()) {
        let start = Instant::now();
        if let Ok(Some(_)) = decoder.decode(unit) {
            decoded += 1;
        }
        decode_times.push(start.elapsed());
    }
    println!(
        "H.264 {width}x{height} @ {} kbps, {complexity:?} complexity: encode median {:.2} ms, mean {:.2} ms | decode median {:.2} ms, mean {:.2} ms | {decoded}/{FRAMES} frames, {:.0} kbps actual",
        bitrate_bps / 1000,
        median(encode_times.clone()).as_secs_f64() * 1e3,
        mean(&encode_times).as_secs_f64() * 1e3,
        median(decode_times.clone()).as_secs_f64() * 1e3,
        mean(&decode_times).as_secs_f64() * 1e3,
        bytes as f64 * 8.0 / (FRAMES as f64 / 30.0) / 1000.0,
    );
}

fn audio() {
    let (Ok(mut encoder), Ok(mut decoder)) = (OpusEncoder::new(), OpusDecoder::new()) else {
        eprintln!("no Opus");
        return;
    };
    let mut tone = ToneSource::new(440.0);
    let (mut enc, mut dec) = (Vec::new(), Vec::new());
    for _ in 0..500 {
        let frame = tone.next_frame();
        let start = Instant::now();
        let packet = encoder.encode(&frame).unwrap_or_default();
        enc.push(start.elapsed());
        let start = Instant::now();
        let _ = decoder.decode(&packet);
        dec.push(start.elapsed());
    }
    println!(
        "Opus 20 ms mono 48 kHz: encode median {:.3} ms, decode median {:.3} ms",
        median(enc).as_secs_f64() * 1e3,
        median(dec).as_secs_f64() * 1e3
    );
}

fn main() {
    for complexity in [Complexity::Low, Complexity::Medium] {
        video(640, 480, 1_200_000, complexity);
        video(1280, 720, 2_500_000, complexity);
    }
    audio();
}
