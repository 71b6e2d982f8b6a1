//! The playback volume, applied by the playout task to the mix before it
//! becomes the echo canceller's reference and goes to the speaker — so the
//! reference is what the speaker is handed, and turning the volume changes
//! the echo and its reference alike (the canceller's model of the room
//! stays true; a volume applied after the reference would change the
//! echo path's gain under its filter).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// A playback volume that can change while playing, shared by whoever sets
/// it (the settings) and the playout task: 0 (silent) to 1 (as received).
#[derive(Debug, Clone)]
pub struct Volume(Arc<AtomicU32>);

impl Volume {
    /// A volume at `level`, clamped to 0–1 (not a number: 1).
    pub fn new(level: f32) -> Volume {
        Volume(Arc::new(AtomicU32::new(clamp(level).to_bits())))
    }

    pub fn set(&self, level: f32) {
        self.0.store(clamp(level).to_bits(), Ordering::Relaxed);
    }

    pub fn get(&self) -> f32 {
        f32::from_bits(self.0.load(Ordering::Relaxed))
    }

    /// Scales `frame` by the volume (left as it is at full volume).
    pub fn apply(&self, frame: &mut [i16]) {
        let gain = self.get();
        if gain >= 0.999 {
            return;
        }
        for sample in frame {
            *sample = (f32::from(*sample) * gain) as i16;
        }
    }
}

impl Default for Volume {
    /// Full volume.
    fn default() -> Self {
        Volume::new(1.0)
    }
}

fn clamp(level: f32) -> f32 {
    if level.is_nan() {
        1.0
    } else {
        level.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_volume_scales_what_is_played_and_is_shared() {
        let volume = Volume::default();
        let mut frame = [1000, -1000, i16::MIN];
        volume.apply(&mut frame);
        assert_eq!(frame, [1000, -1000, i16::MIN], "full volume: as received");
        let settings = volume.clone();
        settings.set(0.25);
        volume.apply(&mut frame);
        assert_eq!(frame, [250, -250, -8192]);
        settings.set(7.0);
        assert_eq!(volume.get(), 1.0, "clamped");
        settings.set(f32::NAN);
        assert_eq!(volume.get(), 1.0, "not a number: full");
        settings.set(-1.0);
        assert_eq!(volume.get(), 0.0);
    }
}
