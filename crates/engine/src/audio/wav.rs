//! Reading a WAV file of 16-bit 48 kHz mono PCM — what [`super::sink::WavSink`]
//! writes and the sound benches make with espeak-ng and sox — for
//! `huddle-peer --audio wav:PATH`. Anything else is refused with what it
//! found; nothing is converted.

use std::path::Path;

use super::SAMPLE_RATE;

/// Why a WAV file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("reading the WAV file: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a WAV file (no RIFF/WAVE header)")]
    NotWav,
    #[error("the WAV file has no {0} chunk")]
    Missing(&'static str),
    #[error("the WAV file's {0} chunk runs past its end")]
    Truncated(&'static str),
    #[error(
        "16-bit {SAMPLE_RATE} Hz mono PCM wanted; the WAV file is format {format}, \
         {bits}-bit, {rate} Hz, {channels} channels"
    )]
    Format {
        format: u16,
        bits: u16,
        rate: u32,
        channels: u16,
    },
}

/// The samples of the WAV file at `path`.
pub fn read(path: &Path) -> Result<Vec<i16>, WavError> {
    parse(&std::fs::read(path)?)
}

/// The samples of a WAV file's `bytes`: its `fmt ` chunk checked, its `data`
/// chunk read; other chunks (LIST, fact…) are skipped.
pub fn parse(bytes: &[u8]) -> Result<Vec<i16>, WavError> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWav);
    }
    let mut at = 12;
    let mut format_seen = false;
    while let Some(header) = bytes.get(at..at + 8) {
        let id = &header[..4];
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let body_at = at + 8;
        match id {
            b"fmt " => {
                let body = bytes
                    .get(body_at..body_at + len.max(16))
                    .ok_or(WavError::Truncated("fmt "))?;
                let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
                let found = (
                    u16_at(0),
                    u16_at(2),
                    u32::from_le_bytes([body[4], body[5], body[6], body[7]]),
                    u16_at(14),
                );
                if found != (1, 1, SAMPLE_RATE, 16) {
                    return Err(WavError::Format {
                        format: found.0,
                        channels: found.1,
                        rate: found.2,
                        bits: found.3,
                    });
                }
                format_seen = true;
            }
            b"data" => {
                if !format_seen {
                    return Err(WavError::Missing("fmt "));
                }
                // A writer that stopped before fixing its header says 0 or
                // too much: read what is there.
                let end = (body_at + len).min(bytes.len());
                let body = bytes.get(body_at..end).ok_or(WavError::Truncated("data"))?;
                return Ok(body
                    .chunks_exact(2)
                    .map(|s| i16::from_le_bytes([s[0], s[1]]))
                    .collect());
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        at = body_at.saturating_add(len).saturating_add(len % 2);
    }
    Err(WavError::Missing(if format_seen { "data" } else { "fmt " }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::audio::sink::{AudioSink, WavSink};

    #[test]
    fn what_the_wav_sink_wrote_reads_back() {
        let path = std::env::temp_dir().join(format!("huddle-wav-read-{}.wav", std::process::id()));
        let mut sink = WavSink::create(&path).unwrap();
        sink.play(&[1, -1, 300, i16::MIN]).unwrap();
        drop(sink);
        let samples = read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(samples, [1, -1, 300, i16::MIN]);
    }

    fn wav(channels: u16, rate: u32, extra_chunk: bool) -> Vec<u8> {
        let mut b = b"RIFF\0\0\0\0WAVE".to_vec();
        if extra_chunk {
            b.extend(b"LIST\x03\0\0\0abc\0"); // odd length, padded
        }
        b.extend(b"fmt \x10\0\0\0");
        b.extend(1u16.to_le_bytes());
        b.extend(channels.to_le_bytes());
        b.extend(rate.to_le_bytes());
        b.extend((rate * 2 * u32::from(channels)).to_le_bytes());
        b.extend((2 * channels).to_le_bytes());
        b.extend(16u16.to_le_bytes());
        b.extend(b"data\x04\0\0\0");
        b.extend([5, 0, 0xfb, 0xff]);
        b
    }

    #[test]
    fn other_chunks_are_skipped() {
        assert_eq!(parse(&wav(1, 48_000, true)).unwrap(), [5, -5]);
    }

    #[test]
    fn anything_but_48_khz_mono_is_refused_with_what_it_is() {
        let e = parse(&wav(2, 44_100, false)).unwrap_err();
        assert!(matches!(
            e,
            WavError::Format {
                channels: 2,
                rate: 44_100,
                ..
            }
        ));
        assert!(e.to_string().contains("44100 Hz, 2 channels"), "{e}");
        assert!(matches!(parse(b"not a wav file"), Err(WavError::NotWav)));
        let mut cut = wav(1, 48_000, false);
        cut.truncate(30);
        assert!(matches!(parse(&cut), Err(WavError::Truncated("fmt "))));
        assert!(matches!(
            parse(&wav(1, 48_000, false)[..36]),
            Err(WavError::Missing("data"))
        ));
    }
}
