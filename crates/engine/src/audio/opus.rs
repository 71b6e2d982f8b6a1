//! Opus with libopus: 20 ms mono frames in, packets out; packets in,
//! samples out, with concealment for the packets that never came.
//!
//! Discontinuous transmission (DTX, RFC 7587 §3.1.3): while nobody talks,
//! libopus codes a frame as its table-of-contents byte alone ([`is_dtx`]),
//! and every 400 ms a real frame that refreshes the listener's comfort
//! noise. [`OpusEncoder::next_packet`] sends the first such byte, so the
//! listener knows silence began, and none of the rest — as libwebrtc does.

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
    /// The last packet coded was a DTX frame.
    in_dtx: bool,
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
        // Chromium's rate for a voice. At libopus's own choice (~64 kbit/s
        // here) speech goes out as CELT, which carries no FEC copy at all.
        inner.set_bitrate(opus::Bitrate::Bits(32_000))?;
        inner.set_signal(opus::Signal::Voice)?;
        Ok(OpusEncoder {
            inner,
            buffer: vec![0; 4000],
            in_dtx: false,
        })
    }

    /// Lets libopus stop sending while it hears no speech (on), or makes
    /// it code every frame (off). Its own detector decides which frames;
    /// the pipeline turns it off while its voice activity hears someone,
    /// so a quiet talker is never cut.
    pub fn set_dtx(&mut self, on: bool) -> Result<(), OpusError> {
        Ok(self.inner.set_dtx(on)?)
    }

    /// The packet to send for a 20 ms frame; `None` while discontinuous
    /// transmission holds back what the listener already knows (the first
    /// DTX frame of a silence is sent, the next ones are not).
    pub fn next_packet(&mut self, frame: &[i16]) -> Result<Option<Vec<u8>>, OpusError> {
        let packet = self.encode(frame)?;
        let dtx = is_dtx(&packet);
        let already = self.in_dtx;
        self.in_dtx = dtx;
        Ok((!(dtx && already)).then_some(packet))
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

    /// `samples` (a multiple of 2.5 ms) that stand in for audio that never
    /// came (packet-loss concealment).
    pub fn conceal(&mut self, samples: usize) -> Result<Vec<i16>, OpusError> {
        let mut out = vec![0i16; samples];
        let n = self.inner.decode(&[], &mut out, false)?;
        out.truncate(n);
        Ok(out)
    }

    /// The `samples` lost just before `next`, rebuilt from the copy of
    /// them `next` carries (in-band forward error correction). Where the
    /// sender put none in, libopus conceals instead.
    pub fn recover(&mut self, next: &[u8], samples: usize) -> Result<Vec<i16>, OpusError> {
        let mut out = vec![0i16; samples];
        let n = self.inner.decode(next, &mut out, true)?;
        out.truncate(n);
        Ok(out)
    }
}

/// Whether `packet` is a DTX frame: no coded audio, only its table of
/// contents (libopus's is one byte; libwebrtc also counts two as one).
/// Decoded, it gives the comfort noise of the silence it starts.
pub fn is_dtx(packet: &[u8]) -> bool {
    packet.len() <= 2
}

/// How many samples (48 kHz) `packet` holds; an error for what is not Opus.
pub fn duration(packet: &[u8]) -> Result<usize, OpusError> {
    Ok(opus::packet::get_nb_samples(packet, SAMPLE_RATE)?)
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
                decoder.conceal(FRAME_SAMPLES).unwrap()
            } else {
                decoder.decode(&packet).unwrap()
            };
            assert_eq!(samples.len(), FRAME_SAMPLES);
            heard.extend(samples);
        }
        assert_eq!(dominant_frequency(&heard[FRAME_SAMPLES * 5..]), Some(660.0));
    }

    #[test]
    fn a_lost_packet_of_speech_comes_back_from_the_next_ones_copy() {
        use crate::audio::synthetic::talker;
        let speech = talker(2.0, 3);
        let mut encoder = OpusEncoder::new().unwrap();
        let packets: Vec<Vec<u8>> = speech
            .chunks_exact(FRAME_SAMPLES)
            .map(|frame| encoder.encode(frame).unwrap())
            .collect();
        // What the lost frame decodes to when nothing is lost, then what
        // stands in for it from the next packet, and from concealment.
        let decode_to = |lost: usize, stand_in: &dyn Fn(&mut OpusDecoder) -> Vec<i16>| {
            let mut decoder = OpusDecoder::new().unwrap();
            for packet in &packets[..lost] {
                decoder.decode(packet).unwrap();
            }
            stand_in(&mut decoder)
        };
        let (mut fec_error, mut plc_error) = (0.0f64, 0.0f64);
        for lost in (10..90).step_by(7) {
            let truth = decode_to(lost, &|d| d.decode(&packets[lost]).unwrap());
            let fec = decode_to(lost, &|d| {
                d.recover(&packets[lost + 1], FRAME_SAMPLES).unwrap()
            });
            let plc = decode_to(lost, &|d| d.conceal(FRAME_SAMPLES).unwrap());
            let error = |x: &[i16]| -> f64 {
                x.iter()
                    .zip(&truth)
                    .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                    .sum()
            };
            fec_error += error(&fec);
            plc_error += error(&plc);
        }
        eprintln!("lost frames' error: FEC {fec_error:e}, PLC {plc_error:e}");
        // The copy is coarser than the packet, but far closer than a guess.
        assert!(
            fec_error * 4.0 < plc_error,
            "FEC {fec_error:e}, PLC {plc_error:e}"
        );
    }
}
