//! Opus with libopus: 20 ms mono frames in, packets out; packets in,
//! samples out, with concealment for the packets that never came.

use opus::{Application, Channels, Decoder, Encoder};
use thiserror::Error;

use super::{FRAME_SAMPLES, SAMPLE_RATE};

/// The codec failed.
#[derive(Debug, Error)]
#[error("Opus: {0}")]
pub struct OpusError(#[from] opus::Error);

/// Encodes one frame at a time.
pub struct OpusEncoder {
    inner: Encoder,
    buffer: Vec<u8>,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder").finish_non_exhaustive()
    }
}

impl OpusEncoder {
    pub fn new() -> Result<OpusEncoder, OpusError> {
        let mut inner = Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Voip)?;
        // Forward error correction lets the receiver rebuild a lost packet
        // from the next one.
        inner.set_inband_fec(true)?;
        inner.set_packet_loss_perc(5)?;
        Ok(OpusEncoder {
            inner,
            buffer: vec![0; 4000],
        })
    }

    /// One packet for a 20 ms frame of [`FRAME_SAMPLES`] samples.
    pub fn encode(&mut self, frame: &[i16]) -> Result<Vec<u8>, OpusError> {
        let n = self.inner.encode(frame, &mut self.buffer)?;
        Ok(self.buffer[..n].to_vec())
    }
}

/// Decodes one member's packets.
pub struct OpusDecoder {
    inner: Decoder,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder").finish_non_exhaustive()
    }
}

impl OpusDecoder {
    pub fn new() -> Result<OpusDecoder, OpusError> {
        Ok(OpusDecoder {
            inner: Decoder::new(SAMPLE_RATE, Channels::Mono)?,
        })
    }

    /// The samples of one packet.
    pub fn decode(&mut self, packet: &[u8]) -> Result<Vec<i16>, OpusError> {
        let mut out = vec![0i16; FRAME_SAMPLES * 6];
        let n = self.inner.decode(packet, &mut out, false)?;
        out.truncate(n);
        Ok(out)
    }

    /// 20 ms that stand in for a lost packet (packet-loss concealment).
    pub fn conceal(&mut self) -> Result<Vec<i16>, OpusError> {
        let mut out = vec![0i16; FRAME_SAMPLES];
        let n = self.inner.decode(&[], &mut out, false)?;
        out.truncate(n);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::audio::tone::{dominant_frequency, ToneSource};

    #[test]
    fn a_tone_survives_opus_and_a_lost_packet_is_concealed() {
        let mut tone = ToneSource::new(660.0);
        let mut encoder = OpusEncoder::new().unwrap();
        let mut decoder = OpusDecoder::new().unwrap();
        let mut heard = Vec::new();
        for n in 0..25 {
            let packet = encoder.encode(&tone.next_frame()).unwrap();
            let samples = if n == 12 {
                decoder.conceal().unwrap()
            } else {
                decoder.decode(&packet).unwrap()
            };
            assert_eq!(samples.len(), FRAME_SAMPLES);
            heard.extend(samples);
        }
        assert_eq!(dominant_frequency(&heard[FRAME_SAMPLES * 5..]), Some(660.0));
    }
}
