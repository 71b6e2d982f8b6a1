// Mouth to ear, side by side: how long a word takes from one member's
// microphone to another member's speaker, through Huddle's native client
// or headless Chromium at either end, in one run on one sound server.
//
//   HUDDLE_SERVER_BIN=… HUDDLE_PEER_BIN=… node e2e/bench-delay.mjs
//
// Needs espeak-ng and sox (the words), pulseaudio, paplay and parecord.
// HUDDLE_BENCH_RUNS (default 2) repeats the calls, HUDDLE_PAIRS picks them
// (default "native-native,native-chromium,chromium-native,chromium-chromium",
// talker first); HUDDLE_KEEP=1 keeps
// the recordings and prints every word's delay.
//
// One clock for both ends of the path: a stereo null sink `bus` whose left
// channel is Ada's mouth (`paplay` into the remapped sink `mouth`; the
// remapped source `mic`, her microphone, hears only that channel) and whose
// right channel is Bob's ear (the remapped sink `ear`, his speaker). One
// `parecord` of `bus.monitor` holds both, so a word's delay is read from
// one recording with no offset between two recorders to guess. What it
// counts: Ada's capture (from the bus through her microphone's buffers),
// her audio processing and encoder, the path (loopback), Bob's jitter
// buffer and decoder, and his playback buffers until the bus renders the
// word — everything but real hardware's converters, which a null sink has
// none of. Ada runs with her processing on (each client's defaults); Bob
// says nothing (his microphone is a silent source).
//
// Each word's delay is the lag that best matches the two channels'
// envelopes (1 ms steps, refined to a fraction of a step), taken from 0 to
// 800 ms; words the two channels do not match in (r < 0.7) are counted and
// left out, as are the first three (the buffers settling).
//
// A second table says what Bob received of Ada's audio over the call: RTP
// packets a second (50 when every 20 ms frame is sent; fewer when silence
// goes as silence, Opus DTX), the share concealed, and — native Bob only —
// the comfort noise played and his buffer's underruns.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import { freePort, startServer, stop } from "./lib.mjs";
import {
  RATE,
  benchBinaries,
  chromiumNearEnd,
  heardInChromium,
  readWav,
  speak,
  spawnPeer,
  startPulse,
  writeWav,
} from "./sound.mjs";

const { serverBin, peerBin } = benchBinaries("bench-delay");
const RUNS = Number(process.env.HUDDLE_BENCH_RUNS ?? 2);
/** Seconds from both members being in the call to the first word. */
const SETTLE_S = 4;
/** One word a second. */
const WORD_EVERY_S = 1;
const SKIP_WORDS = 3;
const MAX_LAG_MS = 800;
const MIN_MATCH = 0.7;

const dir = mkdtempSync(joinPath(tmpdir(), "huddle-delay-"));
const pulse = await startPulse(
  dir,
  [
    "module-null-sink sink_name=bus channels=2 channel_map=front-left,front-right",
    "module-remap-sink sink_name=mouth master=bus channels=1 master_channel_map=front-left channel_map=mono remix=no",
    "module-remap-sink sink_name=ear master=bus channels=1 master_channel_map=front-right channel_map=mono remix=no",
    "module-remap-source source_name=mic master=bus.monitor channels=1 master_channel_map=front-left channel_map=mono remix=no",
    "module-null-sink sink_name=aside",
    "module-null-sink sink_name=hush",
    "module-remap-source source_name=quiet master=hush.monitor",
  ],
  { sink: "aside", source: "mic" },
);
/** Ada talks into `mic` and hears nothing anyone measures. */
const adaEnv = { ...pulse.env, PULSE_SINK: "aside", PULSE_SOURCE: "mic" };
/** Bob plays into `ear`; his microphone is silent. */
const bobEnv = { ...pulse.env, PULSE_SINK: "ear", PULSE_SOURCE: "quiet" };

/** The words Ada says: short, one a second, peaking at −12 dBFS. */
function words() {
  const list = "one two three four five six seven eight nine ten red green blue yellow";
  const more = "apple river mountain window paper coffee table garden music pencil orange";
  const all = `${list} ${more}`.split(" ");
  const every = WORD_EVERY_S * RATE;
  const out = new Float32Array(all.length * every);
  all.forEach((w, k) => {
    const said = speak(dir, `word-${k}`, "en-us", w).subarray(0, every - RATE / 10);
    out.set(said, k * every);
  });
  let peak = 0;
  for (const s of out) peak = Math.max(peak, Math.abs(s));
  const gain = 10 ** (-12 / 20) / Math.max(peak, 1e-6);
  const path = joinPath(dir, "words.wav");
  writeWav(
    path,
    out.map((s) => s * gain),
  );
  return { path, seconds: all.length * WORD_EVERY_S };
}

const port = await freePort();
const server = await startServer(serverBin, port);
const url = `ws://127.0.0.1:${port}/ws`;

/** A member as a native huddle-peer or headless Chromium; resolves to
 * something `leave` ends. */
async function member(who, name, room, env, seconds) {
  if (who === "native") {
    const role = name === "Ada" ? { audio: "mic", output: "speaker" } : { audio: "none", output: "speaker" };
    const report = joinPath(dir, `${room}-${name}.json`);
    const extra = ["--report", report];
    return { child: spawnPeer(peerBin, { url, room, name, ...role, seconds, env, extra }), report };
  }
  return { browser: await chromiumNearEnd(port, room, env, undefined, name) };
}

/** Ends a member; resolves to what it received of the other's audio:
 * `{ packets, seconds, concealed, comfort?, underruns? }`. */
async function leave(m) {
  let heard;
  if (m.browser) {
    heard = await audioInChromium(m.browser);
    await m.browser.close();
  }
  if (m.child) {
    await stop(m.child);
    try {
      const { seconds, peers } = JSON.parse(readFileSync(m.report, "utf8"));
      const [peer] = Object.values(peers);
      if (peer)
        heard = {
          packets: peer.packets_in,
          seconds,
          concealed: peer.audio_concealed_share,
          comfort: (peer.audio_comfort_ms ?? 0) / 1000,
          underruns: peer.audio_underruns,
        };
    } catch {
      // No report: the peer did not finish.
    }
  }
  return heard;
}

/** What Chromium's call received of audio, from its own statistics. */
async function audioInChromium(browser) {
  const page = browser.contexts()[0]?.pages()[0];
  if (!page) return undefined;
  return page.evaluate(async () => {
    for (const pc of window.__pcs ?? [])
      for (const s of (await pc.getStats()).values())
        if (s.type === "inbound-rtp" && s.kind === "audio")
          return {
            packets: s.packetsReceived,
            seconds: s.totalSamplesDuration,
            concealed: s.concealedSamples / Math.max(1, s.totalSamplesReceived),
          };
    return undefined;
  });
}

/** Records `bus.monitor` while the words play into Ada's mouth; resolves
 * to the two channels. */
async function record(room, wordsFile) {
  const wav = joinPath(dir, `${room}.wav`);
  const rec = spawn(
    "parecord",
    ["--device=bus.monitor", "--channels=2", "--rate=48000", "--format=s16le", "--file-format=wav", wav],
    { env: pulse.env, stdio: "ignore" },
  );
  const recExited = new Promise((r) => rec.once("exit", r));
  const play = spawn("paplay", ["--device=mouth", wordsFile], { env: pulse.env, stdio: "ignore" });
  await new Promise((r) => play.once("exit", r));
  // The last word's way to the ear.
  await new Promise((r) => setTimeout(r, MAX_LAG_MS + 200));
  rec.kill("SIGINT");
  await recExited;
  const { channels } = readWav(wav);
  if (channels.length !== 2) throw new Error(`${wav}: ${channels.length} channels`);
  return channels;
}

/** Per-millisecond envelope: mean absolute value over 5 ms. */
function envelope(samples) {
  const hop = RATE / 1000;
  const out = new Float64Array(Math.floor(samples.length / hop));
  for (let i = 0; i < out.length; i++) {
    let sum = 0;
    const from = Math.max(0, (i - 2) * hop);
    const to = Math.min(samples.length, (i + 3) * hop);
    for (let j = from; j < to; j++) sum += Math.abs(samples[j]);
    out[i] = sum / (to - from);
  }
  return out;
}

/** The words in the mouth channel: [start, end) in ms, from its envelope. */
function spans(env) {
  let peak = 0;
  for (const v of env) peak = Math.max(peak, v);
  const on = peak * 0.05;
  const found = [];
  let start = -1;
  let quiet = 0;
  for (let i = 0; i < env.length; i++) {
    if (env[i] > on) {
      if (start < 0) start = i;
      quiet = 0;
    } else if (start >= 0 && ++quiet > 150) {
      found.push([start, i - quiet + 1]);
      start = -1;
    }
  }
  return found.filter(([a, b]) => b - a >= 80);
}

/** Pearson correlation of `a[from..to)` with `b` shifted by `lag`. */
function match(a, b, from, to, lag) {
  let sa = 0,
    sb = 0,
    saa = 0,
    sbb = 0,
    sab = 0;
  const n = to - from;
  for (let i = from; i < to; i++) {
    const x = a[i];
    const y = b[i + lag] ?? 0;
    sa += x;
    sb += y;
    saa += x * x;
    sbb += y * y;
    sab += x * y;
  }
  const cov = sab - (sa * sb) / n;
  const den = Math.sqrt((saa - (sa * sa) / n) * (sbb - (sb * sb) / n));
  return den > 0 ? cov / den : 0;
}

/** Each word's delay (ms) from mouth to ear, and how many did not match. */
function delays([mouth, ear]) {
  const a = envelope(mouth);
  const b = envelope(ear);
  const out = [];
  let unmatched = 0;
  for (const [start, end] of spans(a)) {
    const from = Math.max(0, start - 50);
    const to = Math.min(a.length, end + 50);
    const r = [];
    for (let lag = 0; lag <= MAX_LAG_MS; lag++) r.push(match(a, b, from, to, lag));
    let best = 0;
    for (let lag = 1; lag < r.length; lag++) if (r[lag] > r[best]) best = lag;
    if (r[best] < MIN_MATCH) {
      unmatched++;
      continue;
    }
    // A parabola through the peak and its neighbours.
    const [l, c, h] = [r[best - 1] ?? r[best], r[best], r[best + 1] ?? r[best]];
    const curve = l - 2 * c + h;
    out.push(best + (curve < 0 ? (0.5 * (l - h)) / curve : 0));
  }
  return { delays: out.slice(SKIP_WORDS), unmatched };
}

const quantile = (xs, q) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};

/** One call: Ada (`from`) talks to Bob (`to`); resolves to the delays. */
async function call(from, to, room, spoken) {
  const seconds = SETTLE_S + spoken.seconds + 10;
  const ada = await member(from, "Ada", room, adaEnv, seconds);
  let bob;
  try {
    bob = await member(to, "Bob", room, bobEnv, seconds);
    await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
    const result = delays(await record(room, spoken.path));
    if (result.delays.length === 0 && bob.browser)
      console.log(`Bob heard nothing:\n${await heardInChromium(bob.browser)}`);
    const heard = await leave(bob);
    bob = undefined;
    return { ...result, heard };
  } finally {
    if (bob) await leave(bob);
    await leave(ada);
  }
}

const rows = [];
try {
  const spoken = words();
  const pairs = (process.env.HUDDLE_PAIRS ?? "native-native,native-chromium,chromium-native,chromium-chromium")
    .split(",")
    .map((p) => p.split("-"));
  for (let run = 1; run <= RUNS; run++)
    for (const [from, to] of pairs) {
      const result = await call(from, to, `${from}-${to}-${run}`, spoken);
      if (process.env.HUDDLE_KEEP)
        console.log(`${from} → ${to} ${run}: ${result.delays.map((d) => d.toFixed(0)).join(" ")}`);
      rows.push([`${from} → ${to}`, run, result]);
    }
} finally {
  await stop(server);
  pulse.kill();
  if (process.env.HUDDLE_KEEP) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
console.log("| Ada → Bob | run | mouth-to-ear p50 | p95 | min–max | words (unmatched) |");
console.log("| --- | --- | --- | --- | --- | --- |");
for (const [pair, run, { delays: d, unmatched }] of rows) {
  const ms = (x) => `${x.toFixed(0)} ms`;
  const range = d.length ? `${ms(Math.min(...d))}–${ms(Math.max(...d))}` : "—";
  console.log(
    `| ${pair} | ${run} | ${ms(quantile(d, 0.5))} | ${ms(quantile(d, 0.95))} | ${range} | ${d.length} (${unmatched}) |`,
  );
}
console.log();
console.log("| Ada → Bob | run | Bob's audio packets a second | concealed | comfort noise | underruns |");
console.log("| --- | --- | --- | --- | --- | --- |");
for (const [pair, run, { heard: h }] of rows) {
  if (!h) {
    console.log(`| ${pair} | ${run} | — | — | — | — |`);
    continue;
  }
  const rate = h.seconds > 0 ? (h.packets / h.seconds).toFixed(1) : "—";
  const comfort = h.comfort === undefined ? "—" : `${h.comfort.toFixed(1)} s`;
  console.log(
    `| ${pair} | ${run} | ${rate} | ${(100 * h.concealed).toFixed(1)} % | ${comfort} | ${h.underruns ?? "—"} |`,
  );
}
if (rows.some(([, , { delays: d }]) => d.length < 10)) throw new Error("a call carried fewer than 10 words");
