// How much of a known talker a recording still holds: the recording is
// projected, second by second, onto the talker's own samples at the delay
// where they line up best. A canceller's suppressor, a noise suppressor and
// a gain stage each scale the spectrum by real gains, so what they take of
// the talker shows in the projection; what else is in the recording (an
// echo, noise) is uncorrelated with the talker and does not. A codec that
// does not keep the waveform lowers the projection too, alike in every call
// through it, so only a change between two calls means something.

import { bandPass, fft } from "./comb.mjs";
import { RATE } from "./sound.mjs";

/** Only this band is compared (Hz): below it a processing stage's high-pass
 * filter turns the phase of a low voice's fundamental, which no single
 * delay lines up (measured, a talker alone through a call: the projection
 * 3.0 dB under the level with our processing, 2.5 with Chromium's, 0.8
 * with none; in this band 2.0, 1.3 and 0.8), and above it Opus fills bands
 * with noise. */
const LOW_HZ = 300;
const HIGH_HZ = 4_000;

/** The lag (in samples) at which `b` shifted later best matches `a`, within
 * `from`…`to`: the peak of their cross-correlation, by FFT. */
function bestLag(a, b, from, to) {
  let n = 1;
  while (n < a.length + b.length) n <<= 1;
  const ar = new Float64Array(n);
  const ai = new Float64Array(n);
  const br = new Float64Array(n);
  const bi = new Float64Array(n);
  ar.set(a);
  br.set(b);
  fft(ar, ai);
  fft(br, bi);
  // a × conj(b): its inverse at lag L is Σ a[i + L] b[i].
  for (let k = 0; k < n; k++) {
    const re = ar[k] * br[k] + ai[k] * bi[k];
    const im = ai[k] * br[k] - ar[k] * bi[k];
    ar[k] = re;
    ai[k] = im;
  }
  fft(ar, ai, true);
  let best = from;
  for (let lag = from; lag <= to; lag++) if (ar[(lag + n) % n] > ar[(best + n) % n]) best = lag;
  return best;
}

/** The talker's power between LOW_HZ and HIGH_HZ (dBFS, as `dbfs` counts
 * it) that `recording`'s seconds `fromS`…`toS` hold of `talker` (samples
 * at RATE, played from `talker`'s first sample at about `atS` into the
 * recording, give or take a second), second by second: each second's
 * projection onto the talker's samples at that second's best lag (within
 * 30 ms of the whole window's). */
export function retainedLevel(recording, talker, atS, fromS, toS) {
  const window = bandPass(recording.subarray(Math.round(fromS * RATE), Math.round(toS * RATE)), LOW_HZ, HIGH_HZ);
  // The talker's samples from a second before the window's expected start.
  const start = Math.max(0, Math.round((fromS - atS - 1) * RATE));
  const spoken = bandPass(
    talker.subarray(start, Math.min(talker.length, start + window.length + 2 * RATE)),
    LOW_HZ,
    HIGH_HZ,
  );
  // window[i] ≈ g · spoken[i + lag]: spoken shifted earlier by lag.
  const whole = bestLag(spoken, window, -2 * RATE, 2 * RATE);
  const slack = Math.round(0.03 * RATE);
  let kept = 0;
  let count = 0;
  for (let at = 0; at + RATE <= window.length; at += RATE) {
    const heard = window.subarray(at, at + RATE);
    const from = at + whole - slack;
    if (from < 0 || from + RATE + 2 * slack > spoken.length) continue;
    const around = spoken.subarray(from, from + RATE + 2 * slack);
    const lag = bestLag(around, heard, 0, 2 * slack);
    const said = around.subarray(lag, lag + RATE);
    let dot = 0;
    let own = 0;
    for (let i = 0; i < RATE; i++) {
      dot += heard[i] * said[i];
      own += said[i] * said[i];
    }
    // The talker's part of this second: (dot / own) · said; its energy.
    if (own > 0) kept += (dot * dot) / own;
    count += RATE;
  }
  return count ? 10 * Math.log10(kept / count + 1e-12) : -120;
}
