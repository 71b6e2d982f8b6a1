//! `cargo bench -p huddle-engine --bench playout`: the adaptive playout
//! buffer (`audio::jitter`) against network jitter, a delay spike, loss and
//! clock drift. Synthetic speech goes through the real Opus encoder and
//! decoder; the network between them is simulated (seeded, so every run is
//! the same) and the speaker pulls 10 ms at a time on its own clock.
//! Prints, per scenario: mouth-to-ear delay (sending to playing, the 50th
//! and 95th percentile), the share of audio concealed and rebuilt from FEC,
//! underruns (the buffer ran dry: an audible gap filled by concealment),
//! packets that came too late to play, and how much was stretched.
//! Asserts nothing.

use std::time::{Duration, Instant};

use huddle_engine::audio::jitter::JitterBuffer;
use huddle_engine::audio::opus::OpusEncoder;
use huddle_engine::audio::synthetic::talker;

/// One way through the network, before jitter.
const BASE_MS: f64 = 50.0;

struct Scenario {
    name: &'static str,
    seconds: f32,
    /// Extra delay per packet, uniform in 0..jitter (packets overtake each
    /// other once it passes 20 ms).
    jitter_ms: f64,
    /// Packets sent in this span (s) are held until its end.
    spike: Option<(f64, f64)>,
    /// Random loss.
    loss: f64,
    /// How much faster the sender's clock runs than the speaker's.
    skew: f64,
}

fn main() {
    let scenarios = [
        Scenario {
            name: "steady",
            seconds: 60.0,
            jitter_ms: 0.0,
            spike: None,
            loss: 0.0,
            skew: 0.0,
        },
        Scenario {
            name: "jitter 30 ms",
            seconds: 60.0,
            jitter_ms: 30.0,
            spike: None,
            loss: 0.0,
            skew: 0.0,
        },
        Scenario {
            name: "jitter 80 ms, reordered",
            seconds: 60.0,
            jitter_ms: 80.0,
            spike: None,
            loss: 0.0,
            skew: 0.0,
        },
        Scenario {
            name: "300 ms spike at 20 s",
            seconds: 60.0,
            jitter_ms: 5.0,
            spike: Some((20.0, 20.3)),
            loss: 0.0,
            skew: 0.0,
        },
        Scenario {
            name: "loss 5 %",
            seconds: 60.0,
            jitter_ms: 5.0,
            spike: None,
            loss: 0.05,
            skew: 0.0,
        },
        Scenario {
            name: "loss 5 % + jitter 30 ms",
            seconds: 60.0,
            jitter_ms: 30.0,
            spike: None,
            loss: 0.05,
            skew: 0.0,
        },
        Scenario {
            name: "sender 0.1 % fast, 10 min",
            seconds: 600.0,
            jitter_ms: 5.0,
            spike: None,
            loss: 0.0,
            skew: 0.001,
        },
        Scenario {
            name: "sender 0.1 % slow, 10 min",
            seconds: 600.0,
            jitter_ms: 5.0,
            spike: None,
            loss: 0.0,
            skew: -0.001,
        },
    ];
    println!(
        "| scenario | mouth-to-ear p50 / p95 | concealed | rebuilt (FEC) | underruns | too late | stretched |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for scenario in &scenarios {
        run(scenario);
    }
}

fn run(s: &Scenario) {
    let speech = talker(s.seconds, 11);
    let mut encoder = OpusEncoder::new().expect("encoder");
    let mut random = Random(0x9e37_79b9);
    // (arrival ms, RTP timestamp, payload), in order of arrival.
    let mut arrivals: Vec<(f64, u32, Vec<u8>)> = Vec::new();
    for (n, frame) in speech.chunks_exact(960).enumerate() {
        let packet = encoder.encode(frame).expect("encode");
        let sent = sent_ms(n, s.skew);
        let lost = random.next() < s.loss;
        let mut arrival = sent + BASE_MS + random.next() * s.jitter_ms;
        if let Some((from, to)) = s.spike {
            if (from * 1000.0..to * 1000.0).contains(&sent) {
                arrival = arrival.max(to * 1000.0 + BASE_MS);
            }
        }
        if !lost {
            arrivals.push((arrival, (n * 960) as u32, packet));
        }
    }
    arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));

    // Pulls stop when the last packet has come: what runs dry after that is
    // the talker's stream ending (a fast sender's ten minutes end 0.6 s
    // early), not the buffer failing.
    let last_ms = arrivals.last().map_or(0.0, |a| a.0);
    let t0 = Instant::now();
    let at = |ms: f64| t0 + Duration::from_secs_f64(ms / 1000.0);
    let mut buffer = JitterBuffer::new().expect("decoder");
    let mut arrivals = arrivals.into_iter().peekable();
    let mut delays = Vec::new();
    let pulls = (f64::from(s.seconds) * 100.0) as usize;
    for tick in 0..pulls {
        let now_ms = tick as f64 * 10.0 + 3.0;
        if now_ms > last_ms {
            break;
        }
        while let Some((arrived, ts, packet)) = arrivals.next_if(|a| a.0 <= now_ms) {
            buffer.insert(at(arrived), ts, &packet);
        }
        if buffer.pull(at(now_ms)).is_some() {
            if let Some(position) = buffer.position() {
                // The 10 ms just pulled started before `position`.
                let first = f64::from(position) / 960.0 - 0.5;
                delays.push(now_ms - sent_ms_f(first, s.skew));
            }
        }
    }
    let stats = buffer.stats();
    let played = (stats.decoded + stats.recovered + stats.concealed).max(1) as f64;
    let percent = |x: u64| x as f64 / played * 100.0;
    delays.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        delays
            .get(((delays.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "| {} | {:.0} / {:.0} ms | {:.2} % | {:.2} % | {} | {} | {:.2} % |",
        s.name,
        pick(0.5),
        pick(0.95),
        percent(stats.concealed),
        percent(stats.recovered),
        stats.underruns,
        stats.late,
        percent(stats.shortened + stats.lengthened),
    );
}

/// When the sender sent packet `n`, ms, on the speaker's clock.
fn sent_ms(n: usize, skew: f64) -> f64 {
    sent_ms_f(n as f64, skew)
}

fn sent_ms_f(n: f64, skew: f64) -> f64 {
    n * 20.0 / (1.0 + skew)
}

/// xorshift, uniform in 0..1.
struct Random(u32);

impl Random {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        f64::from(self.0) / f64::from(u32::MAX)
    }
}
