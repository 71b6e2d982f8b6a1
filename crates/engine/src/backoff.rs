//! Reconnect delays: exponential with ±20 % jitter, the same schedule as
//! the browser engine (`src-ui/src/engine/signaling.ts`), so that after a
//! server restart clients do not all come back in the same millisecond.

use std::time::Duration;

/// Base delays of the first attempts; later ones repeat the last.
pub const STEPS_MS: [u64; 5] = [500, 1000, 2000, 4000, 8000];

/// The delay before reconnect attempt `attempt` (0-based); `unit` in [0, 1)
/// picks the jitter.
pub fn delay(attempt: u32, unit: f64) -> Duration {
    let base = STEPS_MS[(attempt as usize).min(STEPS_MS.len() - 1)] as f64;
    Duration::from_millis((base * (0.8 + 0.4 * unit.clamp(0.0, 1.0))).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_stays_within_jitter() {
        assert_eq!(delay(0, 0.0), Duration::from_millis(400));
        assert_eq!(delay(1, 1.0), Duration::from_millis(1200));
        assert_eq!(delay(30, 0.5), Duration::from_millis(8000));
    }
}
