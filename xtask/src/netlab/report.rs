//! What a run showed: each receiver's report read back, and cut into the
//! scenario's phases (frame rate, bitrate against capacity, freezes, the
//! time video took to come back after the capacity did).

use std::path::Path;
use std::time::Duration;

use super::meter::LinkBytes;
use super::scenario::{Scenario, Way};
use crate::Failed;

/// What one side received from the other, from its report (`huddle-peer
/// --report`, or the browser rig's, which writes the same fields).
#[derive(Debug, Default)]
pub struct Received {
    pub fps_per_second: Vec<u32>,
    /// (t s, kbit/s in) from the receiver's stats: each the rate over the
    /// second or so before `t` (the time the receiver read its counters).
    pub kbps_in: Vec<(f64, f64)>,
    pub freeze_count: u64,
    pub freeze_total_ms: u64,
    pub freeze_longest_ms: u64,
    pub width: u64,
    pub height: u64,
    /// The receiver's audio playout: the share concealed (0–1) and the mean
    /// time audio waited in its jitter buffer, ms (None: not reported).
    pub audio_concealed: Option<f64>,
    pub audio_delay_ms: Option<f64>,
    pub counted: Counted,
}

/// What a receiver counted of a sender's video beyond its pictures (None:
/// not reported).
#[derive(Debug, Default, Clone, Copy)]
pub struct Counted {
    /// Glass-to-glass, ms: from the stamp a native sender puts in each
    /// picture to its display (`huddle-peer` reads it; the browser rig
    /// does not, and Chromium's camera pictures carry none).
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    /// Keyframes asked of the sender (PLI), and keyframes decoded.
    pub keyframes_requested: Option<u64>,
    pub keyframes_received: Option<u64>,
}

/// What the report at `path` says was received from the member named
/// `from` (both `huddle-peer` and the browser rig name each sender; an
/// unnamed only sender is taken whatever its name).
pub fn read_report(path: &Path, from: &str) -> Result<Received, Failed> {
    let text = std::fs::read_to_string(path).map_err(Failed::io(path.display()))?;
    let report: serde_json::Value = serde_json::from_str(&text).map_err(|source| Failed::Json {
        what: path.display().to_string(),
        source,
    })?;
    let peers = report["peers"].as_object();
    let named = peers.and_then(|p| p.values().find(|peer| peer["name"] == from));
    let only = peers
        .filter(|p| p.len() == 1)
        .and_then(|p| p.values().next())
        .filter(|peer| peer["name"].is_null());
    let Some(peer) = named.or(only) else {
        return Ok(Received::default());
    };
    let u = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    Ok(Received {
        fps_per_second: peer["fps_per_second"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_u64().unwrap_or(0) as u32).collect())
            .unwrap_or_default(),
        kbps_in: peer["timeline"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|row| Some((row[0].as_f64()?, row[1].as_f64()?)))
                    .collect()
            })
            .unwrap_or_default(),
        freeze_count: u(&peer["freezes"]["count"]),
        freeze_total_ms: u(&peer["freezes"]["total_ms"]),
        freeze_longest_ms: u(&peer["freezes"]["longest_ms"]),
        width: u(&peer["width"]),
        height: u(&peer["height"]),
        audio_concealed: peer["audio_concealed_share"].as_f64(),
        audio_delay_ms: peer["audio_delay_ms"].as_f64(),
        counted: Counted {
            latency_p50_ms: peer["latency_ms_p50"].as_u64(),
            latency_p95_ms: peer["latency_ms_p95"].as_u64(),
            keyframes_requested: peer["keyframes_requested"].as_u64(),
            keyframes_received: peer["keyframes_received"].as_u64(),
        },
    })
}

/// One phase of one direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// Seconds into the run.
    pub from: u64,
    pub to: u64,
    /// The route's bottleneck, kbit/s (`None`: unlimited).
    pub capacity: Option<u32>,
    /// Pictures received a second, on average.
    pub fps: f64,
    /// Media received (every stream's RTP payload), kbit/s.
    pub kbps: f64,
    /// Everything that went through the route's bottleneck, kbit/s (see
    /// `meter`): the link's use by the call.
    pub link_kbps: Option<f64>,
}

/// One direction's figures.
#[derive(Debug)]
pub struct Direction {
    pub label: String,
    pub phases: Vec<Phase>,
    pub freeze_count: u64,
    pub freeze_total_ms: u64,
    pub freeze_longest_ms: u64,
    /// After the path last came back (capacity rose, or an outage ended):
    /// seconds until video ran at full rate for 3 s running (see
    /// [`at_full_rate`]); None: never.
    pub recovery_s: Option<u64>,
    /// After the path last came back: seconds until the first picture
    /// (by whole seconds of the report); None: none came.
    pub first_back_s: Option<u64>,
    pub size: (u64, u64),
    pub audio_concealed: Option<f64>,
    pub audio_delay_ms: Option<f64>,
    pub counted: Counted,
}

/// When the path along `route` last got better: a rise in capacity at one
/// of its bottlenecks, the end of an outage, or a side's new address (the
/// old path is gone, a new one is there to be found).
fn last_return(scenario: &Scenario, route: &[Way]) -> Option<u64> {
    route
        .iter()
        .filter_map(|&way| last_return_one_way(scenario, way))
        .max()
}

fn last_return_one_way(scenario: &Scenario, way: Way) -> Option<u64> {
    let before = |t: Duration| t.saturating_sub(Duration::from_millis(1));
    let better = scenario
        .steps
        .iter()
        .filter(|s| s.way == way && s.at > Duration::ZERO)
        .filter(|s| {
            let rose = match (
                scenario.capacity(way, before(s.at)),
                scenario.capacity(way, s.at),
            ) {
                (Some(was), Some(now)) => now > was,
                _ => false,
            };
            rose || (scenario.cut(way, before(s.at)) && !scenario.cut(way, s.at))
        })
        .map(|s| s.at);
    better
        .chain(scenario.renumbers.iter().map(|r| r.0))
        .max()
        .map(|at| at.as_secs())
}

/// Whether `seconds` of pictures (per-second counts) ran at full rate:
/// on average at least 80 % of `first_fps` (the direction's first phase),
/// and no second under half of it. An average, not every second: a
/// second's count moves by a picture or two with where the second's
/// boundary falls (27–31 at a steady 30 fps here), and a machine short of
/// CPU slows every direction alike (session 20's CI run: the mesh's
/// unaffected A↔B at 25 fps in its last phase, which left C→B's seconds
/// at 22–27 and its recovery at 11 s by the every-second rule).
fn at_full_rate(seconds: &[f64], first_fps: f64) -> bool {
    let mean = seconds.iter().sum::<f64>() / seconds.len().max(1) as f64;
    mean >= 0.8 * first_fps && seconds.iter().all(|&f| f >= 0.5 * first_fps)
}

pub fn summarize(
    scenario: &Scenario,
    route: &[Way],
    label: String,
    r: &Received,
    link: &LinkBytes,
    skip: u64,
) -> Direction {
    let end = scenario.duration.as_secs();
    let mut bounds: Vec<u64> = vec![0];
    bounds.extend(
        scenario
            .steps
            .iter()
            // In a mesh a change anywhere changes what every sender does.
            .filter(|s| scenario.members > 2 || route.contains(&s.way))
            .map(|s| s.at.as_secs()),
    );
    bounds.push(end);
    bounds.sort_unstable();
    bounds.dedup();
    let fps_at = |s: u64| f64::from(r.fps_per_second.get(s as usize).copied().unwrap_or(0));
    let mut phases = Vec::new();
    for pair in bounds.windows(2) {
        // Leave out the call's setup and the first seconds after a change.
        let from = (pair[0] + 3).max(skip);
        let to = pair[1];
        if from >= to {
            continue;
        }
        let fps = (from..to).map(fps_at).sum::<f64>() / (to - from) as f64;
        // A rate belongs to the second it was measured over, which ends at
        // its time: the sample at `from` measured the second before the
        // phase's window, the one at `to` its last second.
        let within = |t: f64| (from as f64..to as f64).contains(&(t - 0.5));
        let rates: Vec<f64> = r
            .kbps_in
            .iter()
            .filter(|(t, k)| within(*t) && *k >= 0.0)
            .map(|(_, k)| *k)
            .collect();
        let kbps = if rates.is_empty() {
            0.0
        } else {
            rates.iter().sum::<f64>() / rates.len() as f64
        };
        let at = Duration::from_secs(pair[0]);
        let capacity = scenario.route_capacity(route, at);
        // The bottleneck that sets the capacity (the first, unlimited).
        let narrowest = route
            .iter()
            .copied()
            .find(|&w| capacity.is_none() || scenario.capacity(w, at) == capacity);
        let link_kbps = narrowest.and_then(|w| link.kbps(w, from as f64, to as f64));
        phases.push(Phase {
            from: pair[0],
            to: pair[1],
            capacity,
            fps,
            kbps,
            link_kbps,
        });
    }
    let first_fps = phases.first().map_or(0.0, |p| p.fps);
    let back = last_return(scenario, route);
    let recovery_s = match back {
        None => Some(0),
        Some(back) => (back..end.saturating_sub(2))
            .find(|&s| at_full_rate(&(s..s + 3).map(fps_at).collect::<Vec<_>>(), first_fps))
            .map(|s| s - back),
    };
    let first_back_s = match back {
        None => Some(0),
        Some(back) => (back..end).find(|&s| fps_at(s) > 0.0).map(|s| s - back),
    };
    Direction {
        label,
        phases,
        freeze_count: r.freeze_count,
        freeze_total_ms: r.freeze_total_ms,
        freeze_longest_ms: r.freeze_longest_ms,
        recovery_s,
        first_back_s,
        size: (r.width, r.height),
        audio_concealed: r.audio_concealed,
        audio_delay_ms: r.audio_delay_ms,
        counted: r.counted,
    }
}

/// Now as UTC `hh:mm:ss.mmm`, the peers' log timestamps' form.
pub fn time_of_day() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_path_comes_back_when_capacity_rises_or_an_outage_ends() {
        let dip = Scenario::parse(
            "d",
            "at 0s both 2500kbit\nat 15s both 250kbit\nat 30s both 1500kbit\n",
        )
        .unwrap();
        assert_eq!(last_return(&dip, &[Way::AtoB]), Some(30));
        let outage = Scenario::parse(
            "o",
            "at 0s both 2000kbit\nat 10s a>b loss 100%\nat 13s a>b loss 0%\n",
        )
        .unwrap();
        assert_eq!(last_return(&outage, &[Way::AtoB]), Some(13));
        assert_eq!(last_return(&outage, &[Way::BtoA]), None);
        let renumber = Scenario::parse("r", "at 0s both 2500kbit\nat 12s renumber a\n").unwrap();
        assert_eq!(last_return(&renumber, &[Way::AtoB]), Some(12));
        assert_eq!(last_return(&renumber, &[Way::BtoA]), Some(12));
        assert!(Scenario::parse("r", "at 12s renumber c\n").is_err());
    }

    #[test]
    fn a_report_gives_what_its_receiver_counted_and_dashes_for_the_rest() {
        let path = std::env::temp_dir().join(format!("netlab-report-{}.json", std::process::id()));
        let text = r#"{"peers": {
            "p1": {"name": "A", "fps_per_second": [30, 29], "width": 640, "height": 360,
                   "freezes": {"count": 1, "total_ms": 300, "longest_ms": 300},
                   "latency_ms_p50": 61, "latency_ms_p95": 140,
                   "keyframes_requested": 3, "keyframes_received": 5},
            "p2": {"name": "B", "fps_per_second": [30], "keyframes_requested": null}
        }}"#;
        std::fs::write(&path, text).unwrap();
        let a = read_report(&path, "A").unwrap();
        let b = read_report(&path, "B").unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(a.fps_per_second, vec![30, 29]);
        assert_eq!((a.freeze_count, a.freeze_total_ms), (1, 300));
        let c = a.counted;
        assert_eq!((c.latency_p50_ms, c.latency_p95_ms), (Some(61), Some(140)));
        assert_eq!(
            (c.keyframes_requested, c.keyframes_received),
            (Some(3), Some(5))
        );
        let c = b.counted;
        assert_eq!(
            (
                c.latency_p50_ms,
                c.keyframes_requested,
                c.keyframes_received
            ),
            (None, None, None)
        );
    }

    #[test]
    fn recovery_counts_from_the_return_to_three_good_seconds() {
        let dip = Scenario::parse(
            "d",
            "duration 20s\nat 0s both 2000kbit\nat 8s both 200kbit\nat 12s both 2000kbit\n",
        )
        .unwrap();
        let mut fps = vec![30; 8];
        fps.extend([2, 2, 2, 2, 0, 5, 30, 30, 30, 30, 30, 30]);
        let r = Received {
            fps_per_second: fps,
            ..Received::default()
        };
        let d = summarize(&dip, &[Way::AtoB], "t".into(), &r, &LinkBytes::default(), 0);
        assert_eq!(d.recovery_s, Some(2));
        assert_eq!(d.first_back_s, Some(1));
        let never = Received {
            fps_per_second: vec![30; 8],
            ..Received::default()
        };
        assert_eq!(
            summarize(
                &dip,
                &[Way::AtoB],
                "t".into(),
                &never,
                &LinkBytes::default(),
                0
            )
            .recovery_s,
            None
        );
    }

    #[test]
    fn a_phase_counts_the_rates_measured_within_it() {
        let steps = Scenario::parse(
            "s",
            "duration 10s\nat 0s both 1000kbit\nat 5s both 600kbit\n",
        )
        .unwrap();
        // Each sample is the rate over the second before it: the one at 8 s
        // is the last second of the drop's transition (5–8 s, left out);
        // the one at 10 s is the phase's last second.
        let r = Received {
            kbps_in: (1..=10)
                .map(|t| (f64::from(t), if t <= 8 { 100.0 } else { 500.0 }))
                .collect(),
            ..Received::default()
        };
        let d = summarize(
            &steps,
            &[Way::AtoB],
            "t".into(),
            &r,
            &LinkBytes::default(),
            0,
        );
        assert_eq!((d.phases[1].from, d.phases[1].to), (5, 10));
        assert_eq!(d.phases[1].kbps, 500.0);
    }

    #[test]
    fn full_rate_is_an_average_without_a_deep_dip() {
        assert!(at_full_rate(&[25.0, 22.0, 26.0], 30.0));
        assert!(!at_full_rate(&[30.0, 14.0, 30.0], 30.0));
        assert!(!at_full_rate(&[23.0, 23.0, 24.0], 30.0));
    }
}
