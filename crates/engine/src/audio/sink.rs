//! Where the mixed call audio goes: the [`AudioSink`] trait, a sink that
//! discards, and one that writes a WAV file (the speaker is in
//! [`super::device`]).

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use super::device::AudioError;
use super::SAMPLE_RATE;

/// Plays 48 kHz mono, 10 ms at a time (any length works).
pub trait AudioSink: Send + std::fmt::Debug {
    fn play(&mut self, frame: &[i16]) -> Result<(), AudioError>;

    /// How many 10 ms frames the sink wants now, by its own clock (a sound
    /// card's); `None` for a sink without one, which playout paces by the
    /// wall clock.
    fn wants(&self) -> Option<usize> {
        None
    }

    /// How far what the sink played has slipped from what it was given,
    /// since the last call, in 48 kHz samples: positive, silence it played
    /// where it had nothing (a device that ran dry); negative, samples it
    /// dropped unplayed. The echo canceller's reference slips as much
    /// ([`super::processing::Processing::slipped`]).
    fn take_slip(&mut self) -> i64 {
        0
    }

    /// 48 kHz samples given and not yet taken by the device (its queue).
    /// The echo canceller's feed leaves them out when it judges how far
    /// ahead of the microphone the far end's audio runs ([`super::feed`]).
    fn queued(&self) -> usize {
        0
    }
}

/// Discards what it is given.
#[derive(Debug, Default)]
pub struct NullSink;

impl AudioSink for NullSink {
    fn play(&mut self, _frame: &[i16]) -> Result<(), AudioError> {
        Ok(())
    }
}

/// Writes 16-bit 48 kHz mono PCM to a WAV file. The header's lengths are
/// brought up to date after every frame, so the file is valid whenever the
/// process stops.
#[derive(Debug)]
pub struct WavSink {
    file: BufWriter<File>,
    data_bytes: u32,
}

impl WavSink {
    pub fn create(path: &Path) -> Result<WavSink, AudioError> {
        let mut sink = WavSink {
            file: BufWriter::new(File::create(path)?),
            data_bytes: 0,
        };
        sink.write_header()?;
        Ok(sink)
    }

    fn write_header(&mut self) -> std::io::Result<()> {
        let f = &mut self.file;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(b"RIFF")?;
        f.write_all(&(36 + self.data_bytes).to_le_bytes())?;
        f.write_all(b"WAVEfmt ")?;
        f.write_all(&16u32.to_le_bytes())?; // fmt chunk size
        f.write_all(&1u16.to_le_bytes())?; // PCM
        f.write_all(&1u16.to_le_bytes())?; // mono
        f.write_all(&SAMPLE_RATE.to_le_bytes())?;
        f.write_all(&(SAMPLE_RATE * 2).to_le_bytes())?; // bytes per second
        f.write_all(&2u16.to_le_bytes())?; // block align
        f.write_all(&16u16.to_le_bytes())?; // bits per sample
        f.write_all(b"data")?;
        f.write_all(&self.data_bytes.to_le_bytes())?;
        f.seek(SeekFrom::End(0))?;
        Ok(())
    }
}

impl AudioSink for WavSink {
    fn play(&mut self, frame: &[i16]) -> Result<(), AudioError> {
        for sample in frame {
            self.file.write_all(&sample.to_le_bytes())?;
        }
        self.data_bytes = self.data_bytes.saturating_add(frame.len() as u32 * 2);
        self.write_header()?;
        self.file.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_wav_file_holds_what_was_played() {
        let path = std::env::temp_dir().join(format!("huddle-wav-{}.wav", std::process::id()));
        let mut sink = WavSink::create(&path).unwrap();
        sink.play(&[1, -1, 300]).unwrap();
        sink.play(&[7]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(bytes[40..44].try_into().unwrap()), 8);
        assert_eq!(bytes.len(), 44 + 8);
        assert_eq!(i16::from_le_bytes([bytes[48], bytes[49]]), 300);
    }
}
