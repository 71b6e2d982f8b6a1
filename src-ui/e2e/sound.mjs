// What the audio benches share: a user-mode PulseAudio of their own, WAV
// files in and out, levels, the far end ("Grace", a recording huddle-peer),
// and a near end ("Ada") in headless Chromium on that sound server's
// devices with a chosen part of its processing on.

import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join as joinPath } from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM_PATH, KEEP_PCS, startCall, waitFor } from "./lib.mjs";

export const RATE = 48_000;

/**
 * The server and peer binaries a sound bench runs (`HUDDLE_SERVER_BIN`,
 * `HUDDLE_PEER_BIN`), once the sound tools are here; else it says what is
 * missing and exits with 2.
 */
export function benchBinaries(bench) {
  const { HUDDLE_SERVER_BIN: serverBin, HUDDLE_PEER_BIN: peerBin } = process.env;
  if (!serverBin || !peerBin) {
    console.error(`${bench}: set HUDDLE_SERVER_BIN and HUDDLE_PEER_BIN`);
    process.exit(2);
  }
  for (const tool of ["espeak-ng", "sox", "pulseaudio", "pactl", "paplay", "parecord"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
      console.error(`${bench}: needs ${tool} (apt install espeak-ng sox pulseaudio pulseaudio-utils)`);
      process.exit(2);
    }
  }
  return { serverBin, peerBin };
}

/** A headless `huddle-peer` without video named `name` in `room` at the
 * server `url` for `seconds`: `audio` is what it sends (`voice`, `mic`,
 * `none`), `output` where it plays what it hears (`speaker`, `wav:PATH`),
 * `extra` more flags; `env` its environment. Its log goes to the bench's
 * own (stderr), or with HUDDLE_PEER_LOGS set to a directory, to
 * `room-name.log` there. Returns the process. */
export function spawnPeer(peerBin, { url, room, name, audio, output, seconds, extra = [], env = process.env }) {
  const args = ["--server", url, "--room", room, "--name", name, "--video", "none", "--audio", audio];
  args.push("--output", output, "--duration", `${seconds}s`, "--udp", "127.0.0.1:0", ...extra);
  const logs = process.env.HUDDLE_PEER_LOGS;
  const log = logs ? openSync(joinPath(logs, `${room}-${name}.log`), "w") : "inherit";
  const child = spawn(peerBin, args, { env, stdio: ["ignore", "ignore", log] });
  if (logs) closeSync(log);
  return child;
}

/** Ada, the near end as a native client: her microphone in, her speaker out. */
export function spawnAda(peerBin, { url, room, seconds, extra, env }) {
  return spawnPeer(peerBin, { url, room, name: "Ada", audio: "mic", output: "speaker", seconds, extra, env });
}

/** Grace, the far end: sends `audio` and records what she hears into `wav`. */
export function spawnGrace(peerBin, { url, room, audio, wav, seconds }) {
  return spawnPeer(peerBin, { url, room, name: "Grace", audio, output: `wav:${wav}`, seconds });
}

/** How to start a user-mode PulseAudio of our own in `dir` with `modules`
 * (`--load` arguments): its arguments, spawn options and socket. */
export function pulseDaemon(dir, modules) {
  const socket = joinPath(dir, "native");
  const args = ["--daemonize=no", "-n", "--exit-idle-time=-1", "--use-pid-file=no"];
  args.push(`--load=module-native-protocol-unix auth-anonymous=1 socket=${socket}`);
  args.push(...modules.map((m) => `--load=${m}`));
  return { socket, args, options: { env: { ...process.env, PULSE_RUNTIME_PATH: dir, HOME: dir }, stdio: "ignore" } };
}

/** Starts PulseAudio in `dir` with `modules` (`--load` arguments) and
 * resolves to `{ env, kill }`: `env` points clients at it, with `sink` and
 * `source` as their defaults. */
export async function startPulse(dir, modules, { sink, source }) {
  const daemon = pulseDaemon(dir, modules);
  const socket = daemon.socket;
  const pulse = spawn("pulseaudio", daemon.args, daemon.options);
  for (const until = Date.now() + 10_000; !existsSync(socket);) {
    if (Date.now() > until) throw new Error("pulseaudio did not start");
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    env: { ...process.env, PULSE_SERVER: `unix:${socket}`, PULSE_SINK: sink, PULSE_SOURCE: source },
    kill: () => pulse.kill(),
  };
}

/** The samples of a 16-bit PCM WAV file as floats in −1…1 (`samples` its
 * first channel, `channels` each of them) and its rate. Reads the chunks:
 * espeak-ng's and sox's headers are not all 44 bytes. */
export function readWav(path) {
  const bytes = readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (bytes.toString("latin1", 0, 4) !== "RIFF" || bytes.toString("latin1", 8, 12) !== "WAVE")
    throw new Error(`${path}: not a WAV file`);
  let channels = 1;
  let rate = RATE;
  for (let at = 12; at + 8 <= bytes.length;) {
    const id = bytes.toString("latin1", at, at + 4);
    // A writer that could not seek back leaves the data chunk's size unset.
    const size = Math.min(view.getUint32(at + 4, true), bytes.length - at - 8);
    if (id === "fmt ") {
      if (view.getUint16(at + 8 + 14, true) !== 16) throw new Error(`${path}: not 16-bit`);
      channels = view.getUint16(at + 8 + 2, true);
      rate = view.getUint32(at + 8 + 4, true);
    } else if (id === "data") {
      const frames = Math.floor(size / 2 / channels);
      const all = Array.from({ length: channels }, () => new Float32Array(frames));
      for (let i = 0; i < frames; i++)
        for (let c = 0; c < channels; c++) all[c][i] = view.getInt16(at + 8 + (i * channels + c) * 2, true) / 32768;
      return { samples: all[0], channels: all, rate };
    }
    at += 8 + size + (size % 2);
  }
  throw new Error(`${path}: no data`);
}

/** Runs `cmd` with `args` to its end; throws with its stderr if it fails. */
export function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
}

/** `text` spoken by espeak-ng's `voice` at 48 kHz (via files in `dir`
 * named after `name`); needs espeak-ng and sox. */
export function speak(dir, name, voice, text) {
  const raw = joinPath(dir, `${name}-22k.wav`);
  const wav = joinPath(dir, `${name}.wav`);
  run("espeak-ng", ["-v", voice, "-s", "150", "-w", raw, text]);
  // -D: no dither, so the pauses stay silent.
  run("sox", ["-D", raw, "-r", String(RATE), "-b", "16", wav]);
  return readWav(wav).samples;
}

/** `texts` spoken by espeak-ng's `voice` one after another with `gapS`
 * seconds of silence after each, at 48 kHz (files in `dir` named after
 * `name`). */
export function sentences(dir, name, voice, texts, gapS) {
  const parts = texts.map((text, k) => speak(dir, `${name}-${k}`, voice, text));
  const gap = Math.round(gapS * RATE);
  const out = new Float32Array(parts.reduce((n, p) => n + p.length + gap, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length + gap;
  }
  return out;
}

/** Writes mono floats as a 16-bit WAV file at `rate` (clipped to full scale). */
export function writeWav(path, samples, rate = RATE) {
  const bytes = Buffer.alloc(44 + samples.length * 2);
  bytes.write("RIFF", 0, "latin1");
  bytes.writeUInt32LE(36 + samples.length * 2, 4);
  bytes.write("WAVEfmt ", 8, "latin1");
  bytes.writeUInt32LE(16, 16);
  bytes.writeUInt16LE(1, 20); // PCM
  bytes.writeUInt16LE(1, 22); // mono
  bytes.writeUInt32LE(rate, 24);
  bytes.writeUInt32LE(rate * 2, 28);
  bytes.writeUInt16LE(2, 32);
  bytes.writeUInt16LE(16, 34);
  bytes.write("data", 36, "latin1");
  bytes.writeUInt32LE(samples.length * 2, 40);
  for (let i = 0; i < samples.length; i++)
    bytes.writeInt16LE(Math.round(Math.max(-1, Math.min(1, samples[i])) * 32767), 44 + i * 2);
  writeFileSync(path, bytes);
}

/** Mean power of `samples` (floats, full scale ±1). */
export function power(samples) {
  let sum = 0;
  for (const s of samples) sum += s * s;
  return sum / Math.max(1, samples.length);
}

/** Mean power of `samples` as dBFS (a full-scale square wave is 0). */
export function dbfs(samples) {
  return samples.length ? 10 * Math.log10(power(samples) + 1e-12) : -120;
}

/** The three processing toggles of Devices, by their labels. */
const TOGGLES = { ec: "Echo cancellation", ns: "Noise suppression", agc: "Automatic gain" };

/** Ada (or `name`) in headless Chromium on the sound server `env`'s devices
 * (real PulseAudio ones, not fake), in an audio call in `room` on the
 * server at `port` — started, or joined if one is on — with only the
 * processing parts in `on` (of `ec`, `ns`, `agc`) left on in Devices.
 * Resolves to the browser, for the caller to close. */
export async function chromiumNearEnd(port, room, env, on = ["ec", "ns", "agc"], name = "Ada") {
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    env,
    // Sound on: Playwright mutes the browser by default.
    ignoreDefaultArgs: ["--mute-audio"],
    args: [
      "--no-sandbox",
      "--use-fake-ui-for-media-stream",
      "--autoplay-policy=no-user-gesture-required",
      "--allow-loopback-in-peer-connection",
      "--disable-features=WebRtcHideLocalIpsWithMdns",
    ],
  });
  try {
    const page = await (await browser.newContext({ permissions: ["microphone"] })).newPage();
    // The page's connections, for `heardInChromium`.
    await page.addInitScript(KEEP_PCS);
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.getByLabel("Your name").fill(name);
    await page.getByLabel("Room", { exact: true }).fill(room);
    await page.getByRole("button", { name: "Join room" }).click();
    await page.getByTestId("connection").filter({ hasText: "Connected" }).waitFor();
    await startCall(page, /^(Audio call|Join with audio)/);
    const off = Object.keys(TOGGLES).filter((k) => !on.includes(k));
    if (off.length) {
      await page.getByRole("button", { name: "Devices", exact: true }).click();
      for (const k of off) await page.getByLabel(TOGGLES[k]).uncheck();
      const want = { ec: "echoCancellation", ns: "noiseSuppression", agc: "autoGainControl" };
      await waitFor(
        page,
        (keys) => {
          const s = window.huddle.state().local.stream?.getAudioTracks()[0]?.getSettings();
          return !!s && keys.every((k) => s[k] === false);
        },
        off.map((k) => want[k]),
      );
      await page.keyboard.press("Escape");
    }
    return browser;
  } catch (e) {
    await browser.close();
    throw e;
  }
}

/** What a `chromiumNearEnd` browser received and played of the call's
 * audio: each connection's state and inbound audio, and each media
 * element's — for a call in which it was not heard. */
export async function heardInChromium(browser) {
  const page = browser.contexts()[0]?.pages()[0];
  if (!page) return "no page";
  return page.evaluate(async () => {
    const out = [];
    for (const pc of window.__pcs ?? []) {
      const parts = [`pc ${pc.connectionState}/${pc.signalingState}`];
      for (const s of (await pc.getStats()).values())
        if (s.type === "inbound-rtp" && s.kind === "audio")
          parts.push(
            `audio in: ${s.packetsReceived} packets, ${s.totalSamplesReceived} samples, level ${s.audioLevel}, concealed ${s.concealedSamples}`,
          );
      for (const t of pc.getTransceivers())
        parts.push(`${t.mid} ${t.receiver.track.kind} ${t.currentDirection} ${t.receiver.track.readyState}`);
      out.push(parts.join(", "));
    }
    for (const m of document.querySelectorAll("audio, video"))
      out.push(
        `<${m.tagName.toLowerCase()}> paused ${m.paused} ready ${m.readyState} muted ${m.muted} tracks ${m.srcObject?.getTracks().map((t) => `${t.kind}:${t.readyState}:${t.enabled}`)}`,
      );
    return out.join("\n");
  });
}
