// Two talkers told apart by frequency: complementary comb filters, in the
// manner of ITU-T P.502's double-talk measurements. One talker's speech keeps
// only the "far" bands, the other's only the "near" bands; in a recording of
// both (each through a codec, a canceller, a suppressor) the energy in each
// set of bands is then mostly one talker's. What spills into the other set
// (codec noise, a suppressor's comfort noise) is measured, not assumed: a
// recording of one talker alone shows it.

import { RATE } from "./sound.mjs";

/** Width of each band (Hz); bands alternate far, near, far, … from LOW_HZ. */
const BAND_HZ = 250;
/** The combs span LOW_HZ…HIGH_HZ; nothing outside passes either. */
const LOW_HZ = 250;
const HIGH_HZ = 7_750;
/** Measured bins keep this far (Hz) from a band's edge, where a codec's
 * and a window's smearing spill most. */
const GUARD_HZ = 40;
/** Only bands under this are measured: above it Opus fills what it does not
 * code with noise shaped like its neighbours (measured: a near-bands-only
 * talk through a call came out with its far bands 0–5 dB under its near
 * ones above 4 kHz, 20–30 dB under below). Speech's power is nearly all
 * below. */
const MEASURED_HZ = 4_000;

/** Which set of bands `hz` belongs to: "far", "near", or null (outside). */
function bandOf(hz) {
  if (hz < LOW_HZ || hz >= HIGH_HZ) return null;
  return Math.floor((hz - LOW_HZ) / BAND_HZ) % 2 === 0 ? "far" : "near";
}

/** Whether `hz` is at least GUARD_HZ inside its band. */
function wellInside(hz) {
  const into = (hz - LOW_HZ) % BAND_HZ;
  return into >= GUARD_HZ && into < BAND_HZ - GUARD_HZ;
}

/** In-place radix-2 FFT of `re`/`im` (length a power of two); `inverse`
 * also scales by 1/n. */
export function fft(re, im, inverse = false) {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const angle = ((inverse ? 2 : -2) * Math.PI) / len;
    const wr = Math.cos(angle);
    const wi = Math.sin(angle);
    for (let start = 0; start < n; start += len) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const a = start + k;
        const b = a + len / 2;
        const tr = re[b] * cr - im[b] * ci;
        const ti = re[b] * ci + im[b] * cr;
        re[b] = re[a] - tr;
        im[b] = im[a] - ti;
        re[a] += tr;
        im[a] += ti;
        [cr, ci] = [cr * wr - ci * wi, cr * wi + ci * wr];
      }
    }
  }
  if (inverse)
    for (let i = 0; i < n; i++) {
      re[i] /= n;
      im[i] /= n;
    }
}

/** `samples` (at RATE) with only the `side` ("far" or "near") bands kept. */
export function comb(samples, side) {
  return keep(samples, (hz) => bandOf(hz) === side);
}

/** `samples` (at RATE) between `lowHz` and `highHz` only. */
export function bandPass(samples, lowHz, highHz) {
  return keep(samples, (hz) => hz >= lowHz && hz < highHz);
}

/** `samples` (at RATE) with only the frequencies `wanted` kept: one
 * transform of the whole signal, zero-padded, so the cut is sharp. */
function keep(samples, wanted) {
  let n = 1;
  while (n < samples.length * 2) n <<= 1;
  const re = new Float64Array(n);
  const im = new Float64Array(n);
  re.set(samples);
  fft(re, im);
  for (let k = 0; k <= n / 2; k++) {
    if (wanted((k * RATE) / n)) continue;
    re[k] = im[k] = 0;
    if (k > 0 && k < n / 2) re[n - k] = im[n - k] = 0;
  }
  fft(re, im, true);
  return Float32Array.from(re.subarray(0, samples.length));
}

/** Mean power (dBFS, as `dbfs` counts it) of `samples` in each set of bands
 * under MEASURED_HZ, over their inner parts (GUARD_HZ from the edges) and
 * scaled back up to those bands' whole width: `{ far, near }`. Hann windows
 * of 4096 samples, half overlapping. */
export function bandLevels(samples) {
  const size = 4096;
  const hop = size / 2;
  const window = Float64Array.from({ length: size }, (_, i) => Math.sin((Math.PI * i) / size) ** 2);
  // A Hann window at half overlap sums to one; its power gain is 3/8.
  const windowPower = 3 / 8;
  const sum = { far: 0, near: 0 };
  const bins = { far: 0, near: 0 };
  let frames = 0;
  const re = new Float64Array(size);
  const im = new Float64Array(size);
  for (let at = 0; at + size <= samples.length; at += hop, frames++) {
    for (let i = 0; i < size; i++) {
      re[i] = samples[at + i] * window[i];
      im[i] = 0;
    }
    fft(re, im);
    for (let k = 1; k < size / 2; k++) {
      const hz = (k * RATE) / size;
      const side = bandOf(hz);
      if (!side || hz >= MEASURED_HZ || !wellInside(hz)) continue;
      sum[side] += re[k] * re[k] + im[k] * im[k];
      if (frames === 0) bins[side]++;
    }
  }
  const level = (side) => {
    if (!frames || !bins[side]) return -120;
    // Parseval: a bin's power over n² is its share of the mean power, counted
    // twice (the mirrored half); spread over all the side's bins, not only
    // the measured inner ones.
    const allBins = (bins[side] * BAND_HZ) / (BAND_HZ - 2 * GUARD_HZ);
    const p = ((2 * sum[side]) / (size * size * windowPower * frames)) * (allBins / bins[side]);
    // `dbfs` counts a full-scale square wave as 0: mean power 1.
    return 10 * Math.log10(p + 1e-12);
  };
  return { far: level("far"), near: level("near") };
}
