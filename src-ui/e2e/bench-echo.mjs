// The acoustic loop, side by side: a member's voice coming back to her
// through another member's laptop — its speaker heard by its own microphone —
// that laptop being Huddle's native client, or headless Chromium with its own
// AEC3, noise suppression and AGC, in one run on one sound server.
//
//   HUDDLE_SERVER_BIN=… HUDDLE_PEER_BIN=… node e2e/bench-echo.mjs
//
// HUDDLE_BENCH_RUNS (default 2) repeats the calls (4 of echo, 12 of double
// talk; ~10 minutes a run), HUDDLE_PARTS picks
// them ("echo,double") and HUDDLE_NEAR_ENDS double talk's near ends
// ("raw,native,chromium"), HUDDLE_FAR_END what Grace says ("speech", espeak-ng
// sentences, or "voice", the synthetic talker), HUDDLE_LOOP_ADJUST_S whether
// the loop re-adjusts its rate (see below), HUDDLE_PROCESSING is the native near end's
// processing when on (default "all", as `huddle-peer --processing`); HUDDLE_KEEP=1 also
// prints each call's level second by second and keeps the recordings.
//
// A user-mode PulseAudio of its own: null sink `spk` is the near end's
// speaker, `module-loopback spk.monitor → micbus` (60 ms, full level) the
// room, `micbus.monitor` (remapped as a source `mic`, which Chromium lists)
// its microphone. Grace, a huddle-peer talking (espeak-ng sentences, looped),
// records what she hears; the near end (Ada) says nothing,
// so all Grace hears is her own voice's echo. Printed: its level (dBFS) in
// seconds 4–8 of Grace's call (while a canceller converges) and 10–22
// (steady), for Ada as a native huddle-peer without processing (the
// reference) and with it, and as Chromium with its processing off and on.
// The loop is linear, which flatters every canceller alike. Asserts only
// that the reference carried the echo.
//
// Then double talk: Ada talks too (espeak-ng sentences played into null
// sink `talker`, looped into her microphone bus, from 4 s on, −26 dBFS),
// in one call while Grace listens only and in one while Grace talks,
// measured over 9 s to the end of Ada's talk, twice over:
// - in full band: how much of Ada's voice itself reaches Grace
//   (`retained.mjs`, the recording projected second by second onto her
//   talk; an echo or noise does not count, a suppressor's cut or pumping
//   does, and the codec takes ~1 dB alike in every call);
// - in complementary bands (`comb.mjs`, as ITU-T P.502 does: Grace's
//   sentences keep every other 250 Hz band, Ada's the others): Ada's level
//   in hers, and Grace's echo in her own — less what Ada's talk spills
//   there through the codec and the processing (measured when Ada talks
//   alone: 20–25 dB under her talk). A suppressor working band by band is
//   spared here where the bands do not overlap, so the full-band figure is
//   the stricter of the two.
// The change from alone to double talk is what the near end's processing
// takes of Ada while the far end talks. The native near end unprocessed
// shows what there is to cancel. Needs espeak-ng, sox and paplay.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import { bandLevels, comb } from "./comb.mjs";
import { freePort, startServer, stop } from "./lib.mjs";
import { retainedLevel } from "./retained.mjs";
import {
  RATE,
  benchBinaries,
  chromiumNearEnd,
  dbfs,
  power,
  readWav,
  sentences,
  spawnAda,
  spawnGrace,
  startPulse,
  writeWav,
} from "./sound.mjs";

const { serverBin, peerBin } = benchBinaries("bench-echo");
const RUNS = Number(process.env.HUDDLE_BENCH_RUNS ?? 2);
/** The native near end's processing when on (`huddle-peer --processing`). */
const PROCESSING = process.env.HUDDLE_PROCESSING ?? "all";
/** Which parts run: the echo, double talk. */
const PARTS = (process.env.HUDDLE_PARTS ?? "echo,double").split(",");
/** Which near ends take part in double talk (HUDDLE_NEAR_ENDS: any of
 * `raw`, `native`, `chromium`; all by default) — fewer calls while chasing
 * one of them. */
const NEAR_ENDS = (process.env.HUDDLE_NEAR_ENDS ?? "raw,native,chromium").split(",");
const GRACE_SECONDS = 24;
/** What Grace says: `voice`, huddle-peer's synthetic talker (each
 * syllable's pitch held for 200 ms), or `speech`, espeak-ng sentences in a
 * voice other than Ada's, looped (HUDDLE_FAR_END). */
const FAR_END = process.env.HUDDLE_FAR_END ?? "speech";
/** How often PulseAudio's loopback (the room) re-adjusts its rate to hold
 * its latency, in seconds (HUDDLE_LOOP_ADJUST_S). 0, the default: never —
 * a room's delay is fixed, and both null sinks run on one clock. At
 * PulseAudio's default (10) the loop's delay slid 100 → 80 ms within a call
 * while the loopback converged on its 60 ms, and AEC3's linear filter, which
 * models one delay, did not converge for 16–18 s. */
const LOOP_ADJUST_S = Number(process.env.HUDDLE_LOOP_ADJUST_S ?? 0);

/** What Grace says as speech. */
const FAR_END_TEXTS = [
  "Good morning everyone, let us start with the numbers from last week.",
  "Sales went up in the north and stayed flat in the south and the west.",
  "The new office opens in two weeks, and the movers come on Friday.",
  "Please send me your questions before the end of the day.",
];

const dir = mkdtempSync(joinPath(tmpdir(), "huddle-echo-"));
const farEnd = farEndAudio();
const pulse = await startPulse(
  dir,
  [
    "module-null-sink sink_name=spk",
    "module-null-sink sink_name=micbus",
    `module-loopback source=spk.monitor sink=micbus latency_msec=60 adjust_time=${LOOP_ADJUST_S} source_dont_move=true sink_dont_move=true`,
    // Ada's own voice reaches the microphone bus through a path that is
    // there from the start: a stream joining the bus itself (paplay) can
    // change the bus's latency, and with it the room's delay under the
    // canceller. (Its delay estimate still moved 4–12 ms in some calls of
    // either kind with this path: gaps the devices made, which the
    // speaker now reports — see `audio/reference.rs`.)
    "module-null-sink sink_name=talker",
    "module-loopback source=talker.monitor sink=micbus latency_msec=60 adjust_time=0 source_dont_move=true sink_dont_move=true",
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

/** Grace talks (`audio`: `voice`, or `none` to listen only) in `room` for
 * GRACE_SECONDS, while `nearEnd` (a WAV file, if any) plays into Ada's
 * microphone from NEAR_END_AT_S on; resolves to Grace's WAV's samples. */
async function grace(room, { audio = farEnd, nearEnd } = {}) {
  const wav = joinPath(dir, `${room}.wav`);
  const child = spawnGrace(peerBin, { url, room, audio, wav, seconds: GRACE_SECONDS });
  const exited = new Promise((r) => child.once("exit", r));
  if (nearEnd) {
    await new Promise((r) => setTimeout(r, NEAR_END_AT_S * 1000));
    const play = spawn("paplay", ["--device=talker", nearEnd], { env: soundEnv, stdio: "ignore" });
    await new Promise((r) => play.once("exit", r));
  }
  await exited;
  return readWav(wav).samples;
}

/** Seconds into Grace's call when Ada starts talking (double talk). */
const NEAR_END_AT_S = 4;
/** `texts` spoken by espeak-ng's `voice` with `gapS` of silence after
 * each, only its `side` bands kept if `side` is given (`comb.mjs`), scaled
 * to `level` dBFS over the whole, written to `name`.wav in the scratch
 * directory: its path, length in seconds and samples as written. */
function spokenWav(name, voice, texts, gapS, level, side) {
  const spoken = sentences(dir, name, voice, texts, gapS);
  const out = side ? comb(spoken, side) : spoken;
  const gain = 10 ** (level / 20) / Math.sqrt(power(out));
  const path = joinPath(dir, `${name}.wav`);
  writeWav(
    path,
    out.map((v) => v * gain),
  );
  return { path, seconds: out.length / RATE, samples: readWav(path).samples };
}

/** Ada's talk: espeak-ng sentences with short pauses, in the `side` bands
 * only if given, −26 dBFS over the whole (a microphone's speaking level),
 * long enough to cover seconds 9–21 of Grace's call. */
function nearEndTalk(side) {
  const texts = [
    "Sorry to interrupt, but I think the numbers on the second slide are wrong.",
    "We counted the new users twice, once in March and once again in April.",
    "If we fix that, the growth is closer to eight percent than to twelve.",
    "I can send the corrected sheet to everyone after the call today.",
  ];
  return spokenWav(side ? `near-end-${side}` : "near-end", "en-gb", texts, 0.3, -26, side);
}

/** Grace's talk as `--audio` has it: the synthetic voice, or espeak-ng
 * sentences in another voice at −20 dBFS (the synthetic voice's level, near
 * enough: its echo unprocessed is −22 dBFS at Grace). */
function farEndAudio() {
  if (FAR_END === "voice") return "voice";
  if (FAR_END !== "speech") throw new Error(`HUDDLE_FAR_END: voice or speech, not ${FAR_END}`);
  return `wav:${spokenWav("far-end", "en-us", FAR_END_TEXTS, 0.5, -20).path}`;
}

/** Grace's talk in double talk: her sentences in the far bands only. */
function farEndCombed() {
  return `wav:${spokenWav("far-end-comb", "en-us", FAR_END_TEXTS, 0.5, -20, "far").path}`;
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

/** Ada as a native huddle-peer (its microphone processed, or not) in
 * `room` while `listen(room)` runs; resolves to what that resolves to. */
async function nativeAda(room, unprocessed, listen) {
  const ada = spawnAda(peerBin, {
    url,
    room,
    seconds: GRACE_SECONDS + 10,
    extra: ["--processing", unprocessed ? "none" : PROCESSING],
    env: soundEnv,
  });
  try {
    return await listen(room);
  } finally {
    await stop(ada);
  }
}

/** Ada as headless Chromium, on the same devices, while `listen(room)`
 * runs; `unprocessed`: with echo cancellation, noise suppression and gain
 * control turned off in Devices before Grace starts. */
async function chromiumAda(room, unprocessed, listen) {
  const browser = await chromiumNearEnd(port, room, soundEnv, unprocessed ? [] : undefined);
  try {
    return await listen(room);
  } finally {
    await browser.close();
  }
}

/** Until when (s into Grace's call) double talk is measured: from 9 s to
 * the end of Ada's `talk`. */
function doubleTalkEnd(talk) {
  return Math.min(GRACE_SECONDS - 2, NEAR_END_AT_S + talk.seconds);
}

/** What Grace heard while both talked, per set of bands (dBFS): `near` is
 * Ada's talk, `far` Grace's own voice coming back. */
function bandsHeard(samples, talk) {
  return bandLevels(samples.subarray(9 * RATE, Math.floor(doubleTalkEnd(talk) * RATE)));
}

/** How much of Ada's `talk` itself Grace heard while both talked (dBFS). */
function talkKept(samples, talk) {
  return retainedLevel(samples, talk.samples, NEAR_END_AT_S, 9, doubleTalkEnd(talk));
}

/** The echo in the far bands while both talk (dBFS), less what Ada's talk
 * spills there — her spill alone, scaled by how her level changed — or
 * null when the far bands hold no more than that. */
function echoLeak(single, double) {
  const fromDb = (db) => 10 ** (db / 10);
  const spill = fromDb(single.far + double.near - single.near);
  const leak = fromDb(double.far) - spill;
  return leak > spill / 4 ? 10 * Math.log10(leak) : null;
}

const rows = [];
const doubleTalk = [];
try {
  const echo = (room) => grace(room).then(levels);
  // Double talk twice: in full band, Ada's talk told apart by projection
  // (`retained.mjs`); in complementary bands (`comb.mjs`), what leaks of
  // Grace's echo too.
  const talk = nearEndTalk();
  const talkCombed = nearEndTalk("near");
  const graceCombed = farEndCombed();
  const alone = (room) => grace(room, { audio: "none", nearEnd: talk.path }).then((s) => talkKept(s, talk));
  const both = (room) => grace(room, { nearEnd: talk.path }).then((s) => talkKept(s, talk));
  const aloneCombed = (room) =>
    grace(room, { audio: "none", nearEnd: talkCombed.path }).then((s) => bandsHeard(s, talkCombed));
  const bothCombed = (room) =>
    grace(room, { audio: graceCombed, nearEnd: talkCombed.path }).then((s) => bandsHeard(s, talkCombed));
  const native = `native (${PROCESSING} via sonora)`;
  for (let run = 1; run <= RUNS; run++) {
    if (PARTS.includes("echo")) {
      rows.push(["native, unprocessed", run, await nativeAda(`raw-${run}`, true, echo)]);
      rows.push([native, run, await nativeAda(`native-${run}`, false, echo)]);
      rows.push(["Chromium, unprocessed", run, await chromiumAda(`chromium-raw-${run}`, true, echo)]);
      rows.push(["Chromium (its own processing)", run, await chromiumAda(`chromium-${run}`, false, echo)]);
    }
    if (!PARTS.includes("double")) continue;
    for (const [who, tag, ada, unprocessed] of [
      ["native, unprocessed", "raw", nativeAda, true],
      [native, "native", nativeAda, false],
      ["Chromium (its own processing)", "chromium", chromiumAda, false],
    ]) {
      if (!NEAR_ENDS.includes(tag)) continue;
      doubleTalk.push({
        who,
        run,
        kept: await ada(`${tag}-alone-${run}`, unprocessed, alone),
        keptBoth: await ada(`${tag}-both-${run}`, unprocessed, both),
        bands: await ada(`${tag}-alone-comb-${run}`, unprocessed, aloneCombed),
        bandsBoth: await ada(`${tag}-both-comb-${run}`, unprocessed, bothCombed),
      });
    }
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
console.log("");
console.log(
  "| near end | run | Ada's voice kept at Grace, alone → while Grace talks | change | Ada's level (near bands) | change | Grace's echo while both talk (far bands) |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- |");
const under = (db) => (db >= 0 ? `${db.toFixed(0)} dB under` : `${(-db).toFixed(0)} dB over`);
for (const { who, run, kept, keptBoth, bands, bandsBoth } of doubleTalk) {
  const echo = echoLeak(bands, bandsBoth);
  const leak =
    echo === null
      ? `under Ada's spill (${bandsBoth.far.toFixed(1)} dBFS, ${bands.far.toFixed(1)} alone)`
      : `${echo.toFixed(1)} dBFS, ${under(bandsBoth.near - echo)} Ada`;
  console.log(
    `| ${who} | ${run} | ${kept.toFixed(1)} → ${keptBoth.toFixed(1)} dBFS | ${(keptBoth - kept).toFixed(1)} dB | ` +
      `${bands.near.toFixed(1)} → ${bandsBoth.near.toFixed(1)} dBFS | ${(bandsBoth.near - bands.near).toFixed(1)} dB | ${leak} |`,
  );
}
