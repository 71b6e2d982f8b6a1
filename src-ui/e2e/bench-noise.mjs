// Noise suppression, side by side: a member talking over noise — pink
// noise, babble, a fan's hum — into her microphone, as Huddle's native
// client or as headless Chromium with its own noise suppression, in one run
// on one sound server; what the other member hears is measured.
//
//   HUDDLE_SERVER_BIN=… HUDDLE_PEER_BIN=… node e2e/bench-noise.mjs
//
// Needs espeak-ng and sox (the speech and the babble), pulseaudio and
// paplay. HUDDLE_NOISES picks the noises (default
// "clean,pink:0,pink:5,pink:10,babble:5,fan:5": a kind and an SNR in dB);
// HUDDLE_KEEP=1 keeps the sound files and recordings.
//
// A user-mode PulseAudio of its own: null sink `micbus`, remapped as the
// source `mic`, is the near end's (Ada's) microphone; paplay plays the
// mixture into it. The mixture is a marker (three beeps in 2 s of
// silence), 4 s of noise, then 15 s of espeak-ng sentences with 0.8 s
// pauses between them over the noise (the SNR is the speech's level while
// it talks over the noise's mean level), then 2 s of noise. Grace, a
// huddle-peer, records what comes. Ada is a native huddle-peer
// (`--processing none|ns|all`) or Chromium (Devices' toggles).
//
// The figures, in the manner of ITU-T G.160 (the clean speech is known, so
// its talking and pause frames are too; the marker places them in the
// recording): the level in the pauses (noise) and in the talking frames
// less the pauses (speech), in and out. "SNR out − in" is the improvement;
// "noise" and "speech" are each one's level change through the call, and
// "speech out" the level the far end hears. With gain control on, both
// change with the gain; with it off, the speech's change is the coarse
// distortion figure: speech the suppressor took away.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import { freePort, startServer, stop } from "./lib.mjs";
import {
  RATE,
  benchBinaries,
  chromiumNearEnd,
  power,
  readWav,
  sentences,
  speak as speakIn,
  spawnAda,
  spawnGrace,
  startPulse,
  writeWav,
} from "./sound.mjs";

const { serverBin, peerBin } = benchBinaries("bench-noise");
const NOISES = (process.env.HUDDLE_NOISES ?? "clean,quiet:-40,pink:0,pink:5,pink:10,babble:5,fan:5").split(",");
/** Seconds of the marker, of noise before the speech, and after it. */
const MARK_S = 2;
const LEAD_S = 4;
const TAIL_S = 2;
const SPEECH_AT_S = MARK_S + LEAD_S;
/** Seconds from Grace's start to the mixture's: the call is set up by then. */
const PLAY_AFTER_S = 4;
const FRAME = RATE / 100;

const dir = mkdtempSync(joinPath(tmpdir(), "huddle-noise-"));

/** `text` spoken by espeak-ng's `voice`, at 48 kHz. */
const speak = (name, voice, text) => speakIn(dir, name, voice, text);

const db = (p) => 10 * Math.log10(p + 1e-15);

/** Per 10 ms frame, the mean power. */
function framePowers(samples) {
  const out = new Float64Array(Math.floor(samples.length / FRAME));
  for (let i = 0; i < out.length; i++) out[i] = power(samples.subarray(i * FRAME, (i + 1) * FRAME));
  return out;
}

/** A seeded generator: the same noise every run. */
function random(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32 - 0.5;
  };
}

/** Pink noise (−3 dB an octave; Paul Kellet's filter of white noise). */
function pink(n, seed = 1) {
  const r = random(seed);
  const out = new Float32Array(n);
  let [b0, b1, b2, b3, b4, b5, b6] = [0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < n; i++) {
    const w = r();
    b0 = 0.99886 * b0 + w * 0.0555179;
    b1 = 0.99332 * b1 + w * 0.0750759;
    b2 = 0.969 * b2 + w * 0.153852;
    b3 = 0.8665 * b3 + w * 0.3104856;
    b4 = 0.55 * b4 + w * 0.5329522;
    b5 = -0.7616 * b5 - w * 0.016898;
    out[i] = b0 + b1 + b2 + b3 + b4 + b5 + b6 + w * 0.5362;
    b6 = w * 0.115926;
  }
  return out;
}

/** A fan: a 120 Hz hum with its harmonics, slowly wavering, over its
 * airflow (pink noise 12 dB under the hum). */
function fan(n) {
  const hum = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / RATE;
    const waver = 1 + 0.1 * Math.sin(2 * Math.PI * 0.3 * t);
    for (const [k, a] of [
      [1, 1],
      [2, 0.5],
      [3, 0.25],
      [4, 0.12],
    ])
      hum[i] += waver * a * Math.sin(2 * Math.PI * 120 * k * t);
  }
  const air = pink(n, 7);
  const gain = Math.sqrt(power(hum) / power(air) / 10 ** (12 / 10));
  return hum.map((h, i) => h + gain * air[i]);
}

/** Babble: six espeak-ng voices at once, each saying its own text, each
 * looped from its own start. */
function babble(n) {
  const texts = [
    "The meeting moved to Thursday because the projector in the big room is broken again.",
    "Could you send me the figures from last quarter before lunch, the ones with the new totals.",
    "We walked along the river all afternoon and stopped for coffee at the small bakery.",
    "I think the train leaves at seven fifteen, but check the board when you get there.",
    "Somebody left a blue umbrella by the door, and it has been there since Monday.",
    "The kids wanted pizza again, so we ordered two large ones and a salad for the adults.",
  ];
  const voices = ["en-us+m3", "en+f2", "en-gb+m1", "en-us+f4", "en+m7", "en-gb+f3"];
  const out = new Float32Array(n);
  texts.forEach((text, k) => {
    const talk = speak(`babble-${k}`, voices[k], text);
    const from = Math.floor((k / texts.length) * talk.length);
    for (let i = 0; i < n; i++) out[i] += talk[(from + i) % talk.length];
  });
  return out;
}

/** The speech: sentences with 0.8 s of silence between them, scaled to
 * −26 dBFS while it talks (a microphone's speaking level). */
function speech() {
  const texts = [
    "Good morning everyone, thanks for joining the call today.",
    "First, the release is on track for the end of the month.",
    "Second, we still need two people to test the new installer.",
    "Please write your name in the document if you can help.",
    "That is all from me, over to you.",
  ];
  const out = sentences(dir, "speech", "en-us", texts, 0.8);
  const gain = 10 ** (-26 / 20) / Math.sqrt(talkingPower(out));
  return out.map((s) => s * gain);
}

/** The level of clean speech's loudest tenth of frames. */
function loudest(powers) {
  const sorted = [...powers].sort((a, b) => b - a);
  return sorted[Math.floor(sorted.length / 10)];
}

/** The mean power of clean speech over its talking frames. */
function talkingPower(clean) {
  const powers = framePowers(clean);
  const active = activeFrames(powers);
  return active.reduce((sum, i) => sum + powers[i], 0) / active.length;
}

/** Frames of clean speech that talk: within 25 dB of its loudest tenth. */
function activeFrames(powers) {
  const loud = loudest(powers);
  return [...powers.keys()].filter((i) => powers[i] > loud / 10 ** 2.5);
}

/** Frames of clean speech in its pauses: 60 dB under its loudest tenth,
 * and 150 ms from any talking frame (a word's tail, a frame of
 * misalignment). */
function pauseFrames(powers) {
  const loud = loudest(powers);
  const talking = new Set(activeFrames(powers));
  const near = (i) => {
    for (let d = -15; d <= 15; d++) if (talking.has(i + d)) return true;
    return false;
  };
  return [...powers.keys()].filter((i) => powers[i] < loud / 1e6 && !near(i));
}

/** Three 1 kHz beeps (100 ms at −20 dBFS, at 0.2, 0.4 and 0.9 s) in 2 s
 * of silence: where the mixture begins, found again in a recording by its
 * envelope whatever the processing did to the noise and the speech (gain
 * control pumping with babble moved the envelope enough to misplace
 * the speech when it was aligned on itself). */
function marker() {
  const out = new Float32Array(MARK_S * RATE);
  for (const at of [0.2, 0.4, 0.9]) {
    for (let i = 0; i < RATE / 10; i++)
      out[Math.round(at * RATE) + i] = 0.1 * Math.SQRT2 * Math.sin((2 * Math.PI * 1000 * i) / RATE);
  }
  return out;
}

/** The mixture: the marker, then `kind`'s noise at `value` dB SNR under
 * the speech; or, for `quiet`, the speech alone at `value` dBFS instead
 * of −26 (what gain control is for); or, for `clean`, the speech alone.
 * The speech starts SPEECH_AT_S into it. */
function mixture(clean, kind, value) {
  const n = clean.length + (LEAD_S + TAIL_S) * RATE;
  const body = new Float32Array(n);
  body.set(kind === "quiet" ? clean.map((s) => s * 10 ** ((value + 26) / 20)) : clean, LEAD_S * RATE);
  if (kind !== "clean" && kind !== "quiet") {
    const noise = { pink, babble, fan }[kind]?.(n);
    if (!noise) throw new Error(`unknown noise ${kind}`);
    const gain = Math.sqrt(talkingPower(clean) / power(noise) / 10 ** (value / 10));
    for (let i = 0; i < n; i++) body[i] += gain * noise[i];
  }
  const mix = new Float32Array(MARK_S * RATE + n);
  mix.set(marker());
  mix.set(body, MARK_S * RATE);
  return mix;
}

/** Where the mixture begins in a recording (in frames): the offset whose
 * envelope (dB) follows the marker's best. */
function align(recorded) {
  const ref = Array.from(framePowers(marker()), (p) => Math.max(-100, db(p)));
  const out = Array.from(framePowers(recorded), (p) => Math.max(-100, db(p)));
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const refMean = mean(ref);
  let best = [-Infinity, 0];
  for (let lag = 0; lag + ref.length <= out.length; lag++) {
    const seg = out.slice(lag, lag + ref.length);
    const m = mean(seg);
    let num = 0;
    let a = 0;
    let b = 0;
    for (let i = 0; i < ref.length; i++) {
      num += (ref[i] - refMean) * (seg[i] - m);
      a += (ref[i] - refMean) ** 2;
      b += (seg[i] - m) ** 2;
    }
    const r = num / Math.sqrt(a * b + 1e-12);
    if (r > best[0]) best = [r, lag];
  }
  return { lag: best[1], correlation: best[0] };
}

/** Speech and noise levels (dBFS) of `samples` over the clean speech's
 * talking and pause frames, the speech starting at frame `at`. */
function levels(samples, cleanPowers, at) {
  const p = framePowers(samples);
  const mean = (frames) => frames.reduce((sum, i) => sum + (p[at + i] ?? 0), 0) / frames.length;
  const talking = mean(activeFrames(cleanPowers));
  const noise = mean(pauseFrames(cleanPowers));
  return { speech: db(Math.max(talking - noise, 1e-15)), noise: db(noise) };
}

const pulse = await startPulse(
  dir,
  [
    "module-null-sink sink_name=spk",
    "module-null-sink sink_name=micbus",
    // Chromium lists no monitor source as a microphone.
    "module-remap-source master=micbus.monitor source_name=mic",
  ],
  { sink: "spk", source: "mic" },
);
const { env } = pulse;

const port = await freePort();
const server = await startServer(serverBin, port);
const url = `ws://127.0.0.1:${port}/ws`;

/** Grace records `seconds` of the call in `room` while the mixture file
 * plays into Ada's microphone; resolves to the recording. */
async function grace(room, mixPath, seconds) {
  const wav = joinPath(dir, `${room}.wav`);
  const child = spawnGrace(peerBin, { url, room, audio: "none", wav, seconds });
  const exited = new Promise((r) => child.once("exit", r));
  await new Promise((r) => setTimeout(r, PLAY_AFTER_S * 1000));
  const play = spawn("paplay", ["--device=micbus", mixPath], { env, stdio: "ignore" });
  await Promise.all([exited, new Promise((r) => play.once("exit", r))]);
  return readWav(wav).samples;
}

/** One call with Ada as `who` (`native` or `chromium`) with `processing`
 * (`none`, `ns`, `all`); resolves to what Grace heard. */
async function call(who, processing, room, mixPath, seconds) {
  if (who === "native") {
    const ada = spawnAda(peerBin, {
      url,
      room,
      seconds: seconds + 10,
      extra: ["--processing", processing],
      env,
    });
    try {
      return await grace(room, mixPath, seconds);
    } finally {
      await stop(ada);
    }
  }
  const on = { none: [], ns: ["ns"], all: ["ec", "ns", "agc"] }[processing];
  const browser = await chromiumNearEnd(port, room, env, on);
  try {
    return await grace(room, mixPath, seconds);
  } finally {
    await browser.close();
  }
}

const rows = [];
try {
  const clean = speech();
  const cleanPowers = framePowers(clean);
  for (const [n, spec] of NOISES.entries()) {
    const [kind, snr = "0"] = spec.split(":");
    const mix = mixture(clean, kind, Number(snr));
    const mixPath = joinPath(dir, `mix-${n}.wav`);
    writeWav(mixPath, mix);
    const input = levels(mix, cleanPowers, SPEECH_AT_S * 100);
    const seconds = PLAY_AFTER_S + Math.ceil(mix.length / RATE) + 3;
    for (const who of ["native", "chromium"]) {
      for (const processing of ["none", "ns", "all"]) {
        const heard = await call(who, processing, `${kind}${snr}-${who}-${processing}`, mixPath, seconds);
        const { lag, correlation } = align(heard);
        const out = levels(heard, cleanPowers, lag + SPEECH_AT_S * 100);
        rows.push({ spec, who, processing, input, out, correlation });
      }
    }
  }
} finally {
  await stop(server);
  pulse.kill();
  if (process.env.HUDDLE_KEEP) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}

const f = (x) => (Number.isFinite(x) ? x.toFixed(1) : "–");
console.log(
  "| noise | near end | processing | SNR in | SNR out | SNR out − in | noise | speech | speech out | marker match |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
for (const { spec, who, processing, input, out, correlation } of rows) {
  const snrIn = input.speech - input.noise;
  const snrOut = out.speech - out.noise;
  const noisy = !spec.startsWith("clean") && !spec.startsWith("quiet");
  console.log(
    `| ${spec} | ${who === "native" ? "native" : "Chromium"} | ${processing} | ${noisy ? `${f(snrIn)} dB` : "–"} | ${noisy ? `${f(snrOut)} dB` : "–"} | ${noisy ? `${f(snrOut - snrIn)} dB` : "–"} | ${noisy ? `${f(out.noise - input.noise)} dB` : "–"} | ${f(out.speech - input.speech)} dB | ${f(out.speech)} dBFS | ${correlation.toFixed(2)} |`,
  );
}
const lost = rows.filter((r) => r.correlation < 0.5);
if (lost.length) throw new Error(`the marker not found in ${lost.length} recordings (match under 0.5)`);
