// The acoustic loop, side by side: a member's voice coming back to her
// through another member's laptop — its speaker heard by its own microphone —
// that laptop being Huddle's native client, or headless Chromium with its own
// AEC3, noise suppression and AGC, in one run on one sound server.
//
//   HUDDLE_SERVER_BIN=… HUDDLE_PEER_BIN=… node e2e/bench-echo.mjs
//
// HUDDLE_BENCH_RUNS (default 2) repeats the four calls; HUDDLE_KEEP=1 also
// prints each call's level second by second and keeps the recordings.
//
// A user-mode PulseAudio of its own: null sink `spk` is the near end's
// speaker, `module-loopback spk.monitor → micbus` (60 ms, full level) the
// room, `micbus.monitor` (remapped as a source `mic`, which Chromium lists)
// its microphone. Grace, a huddle-peer talking with the
// synthetic voice, records what she hears; the near end (Ada) says nothing,
// so all Grace hears is her own voice's echo. Printed: its level (dBFS) in
// seconds 4–8 of Grace's call (while a canceller converges) and 10–22
// (steady), for Ada as a native huddle-peer without processing (the
// reference) and with it, and as Chromium with its processing off and on.
// The loop is linear, which flatters every canceller alike. Asserts only
// that the reference carried the echo.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import { freePort, startServer, stop } from "./lib.mjs";
import { chromiumNearEnd, dbfs, readWav, spawnAda, spawnGrace, startPulse } from "./sound.mjs";

const { HUDDLE_SERVER_BIN: serverBin, HUDDLE_PEER_BIN: peerBin } = process.env;
if (!serverBin || !peerBin) {
  console.error("bench-echo: set HUDDLE_SERVER_BIN and HUDDLE_PEER_BIN");
  process.exit(2);
}
const RUNS = Number(process.env.HUDDLE_BENCH_RUNS ?? 2);
const GRACE_SECONDS = 24;

const dir = mkdtempSync(joinPath(tmpdir(), "huddle-echo-"));
const pulse = await startPulse(
  dir,
  [
    "module-null-sink sink_name=spk",
    "module-null-sink sink_name=micbus",
    "module-loopback source=spk.monitor sink=micbus latency_msec=60 source_dont_move=true sink_dont_move=true",
    // Chromium lists no monitor source as a microphone: the same sound as a
    // source of its own. (It becomes the default source, and a loopback free
    // to move follows the default: hence the loopback's `_dont_move`.)
    "module-remap-source master=micbus.monitor source_name=mic",
  ],
  { sink: "spk", source: "mic" },
);
/** What the near end's devices are: the loop. */
const soundEnv = pulse.env;

const port = await freePort();
const server = await startServer(serverBin, port);
const url = `ws://127.0.0.1:${port}/ws`;

/** Grace talks in `room` for GRACE_SECONDS; resolves to her WAV's samples. */
async function grace(room) {
  const wav = joinPath(dir, `${room}.wav`);
  const child = spawnGrace(peerBin, { url, room, audio: "voice", wav, seconds: GRACE_SECONDS });
  await new Promise((r) => child.once("exit", r));
  return readWav(wav).samples;
}

/** The echo Grace heard: early and steady levels. */
function levels(samples) {
  const at = (s) => s * 48_000;
  if (process.env.HUDDLE_KEEP) {
    const perSecond = [];
    for (let s = 0; s + 1 <= samples.length / 48_000; s++)
      perSecond.push(dbfs(samples.subarray(at(s), at(s + 1))).toFixed(0));
    console.log(`per second: ${perSecond.join(" ")}`);
  }
  return { early: dbfs(samples.subarray(at(4), at(8))), steady: dbfs(samples.subarray(at(10), at(22))) };
}

/** Ada as a native huddle-peer (its microphone processed, or not). */
async function nativeAda(room, unprocessed) {
  const ada = spawnAda(peerBin, {
    url,
    room,
    seconds: GRACE_SECONDS + 10,
    extra: unprocessed ? ["--unprocessed"] : [],
    env: soundEnv,
  });
  try {
    return levels(await grace(room));
  } finally {
    await stop(ada);
  }
}

/** Ada as headless Chromium, on the same devices; `unprocessed`: with
 * echo cancellation, noise suppression and gain control turned off in
 * Devices before Grace starts. */
async function chromiumAda(room, unprocessed = false) {
  const browser = await chromiumNearEnd(port, room, soundEnv, unprocessed ? [] : undefined);
  try {
    return levels(await grace(room));
  } finally {
    await browser.close();
  }
}

const rows = [];
try {
  for (let run = 1; run <= RUNS; run++) {
    rows.push(["native, unprocessed", run, await nativeAda(`raw-${run}`, true)]);
    rows.push(["native (AEC3, NS, AGC2 via sonora)", run, await nativeAda(`native-${run}`, false)]);
    rows.push(["Chromium, unprocessed", run, await chromiumAda(`chromium-raw-${run}`, true)]);
    rows.push(["Chromium (its own processing)", run, await chromiumAda(`chromium-${run}`)]);
  }
} finally {
  await stop(server);
  pulse.kill();
  if (process.env.HUDDLE_KEEP) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
console.log("| near end | run | echo at Grace, 4–8 s | 10–22 s |");
console.log("| --- | --- | --- | --- |");
for (const [who, run, { early, steady }] of rows)
  console.log(`| ${who} | ${run} | ${early.toFixed(1)} dBFS | ${steady.toFixed(1)} dBFS |`);
const raw = rows.filter(([who]) => who.endsWith("unprocessed")).map(([, , l]) => l.steady);
if (!raw.every((l) => l > -40)) throw new Error(`the loop carried no echo: ${raw}`);
