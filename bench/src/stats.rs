//! Samples and the figures printed from them.

use std::time::Duration;

/// Latency samples in nanoseconds.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples: Vec<u64>,
    sorted: bool,
}

impl Latencies {
    pub fn push(&mut self, nanos: u64) {
        self.samples.push(nanos);
        self.sorted = false;
    }

    pub fn extend(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
        self.sorted = false;
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// The `p`-th percentile (0–100), nearest rank; zero when empty.
    pub fn percentile(&mut self, p: f64) -> Duration {
        if self.samples.is_empty() {
            return Duration::ZERO;
        }
        if !self.sorted {
            self.samples.sort_unstable();
            self.sorted = true;
        }
        let rank = ((p / 100.0) * self.samples.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.samples.len()) - 1;
        Duration::from_nanos(self.samples[index])
    }

    pub fn max(&mut self) -> Duration {
        self.percentile(100.0)
    }
}

impl FromIterator<Latencies> for Latencies {
    fn from_iter<I: IntoIterator<Item = Latencies>>(parts: I) -> Self {
        let mut all = Latencies::default();
        for part in parts {
            all.extend(part);
        }
        all
    }
}

/// `1.23 ms`, `456 µs`.
pub fn duration(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros >= 1000.0 {
        format!("{:.2} ms", micros / 1000.0)
    } else {
        format!("{micros:.0} µs")
    }
}

/// `12.3 KB` (1 KB = 1000 bytes, as in the figures).
pub fn kilobytes(bytes: f64) -> String {
    format!("{:.1} KB", bytes / 1000.0)
}

/// How many times better ours is, where "better" is smaller.
pub fn ratio_smaller_better(ours: f64, theirs: f64) -> String {
    if ours <= 0.0 {
        return "-".into();
    }
    format!("{:.1}×", theirs / ours)
}

/// How many times better ours is, where "better" is larger.
pub fn ratio_larger_better(ours: f64, theirs: f64) -> String {
    if theirs <= 0.0 {
        return "-".into();
    }
    format!("{:.1}×", ours / theirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut l = Latencies::default();
        for n in 1..=100 {
            l.push(n * 1000);
        }
        assert_eq!(l.percentile(50.0), Duration::from_micros(50));
        assert_eq!(l.percentile(99.0), Duration::from_micros(99));
        assert_eq!(l.max(), Duration::from_micros(100));
        assert_eq!(Latencies::default().percentile(99.0), Duration::ZERO);
    }
}
