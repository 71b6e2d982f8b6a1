// The media benchmark of a 1:1 720p call between headless Chromium (the
// browser UI) and a native huddle-peer, both sending camera-like content
// (the busy test pattern; Chromium's fake camera plays it from a Y4M file):
//
//   - CPU of each side over the same window: Chromium's whole process tree,
//     and huddle-peer, from /proc; their ratio;
//   - glass-to-glass latency native → Chromium: Chromium reads the strip of
//     every picture it presents (requestVideoFrameCallback) and compares its
//     capture time with the clock (same machine, same clock);
//   - time from joining the call to the first remote picture, both sides.
//
//   HUDDLE_SERVER_BIN=… HUDDLE_PEER_BIN=… HUDDLE_Y4M=busy-720p.y4m node e2e/bench-media.mjs
//
// Prints the figures; asserts only that media flowed.

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM_FLAGS, CHROMIUM_PATH, startCall, treeCpu } from "./lib.mjs";

const { HUDDLE_SERVER_BIN: serverBin, HUDDLE_PEER_BIN: peerBin, HUDDLE_Y4M: y4m } = process.env;
if (!serverBin || !peerBin) {
  console.error("bench-media: set HUDDLE_SERVER_BIN and HUDDLE_PEER_BIN");
  process.exit(2);
}
const WINDOW_S = Number(process.env.HUDDLE_BENCH_SECONDS ?? 20);

const port = await new Promise((resolve) => {
  const s = createServer();
  s.listen(0, "127.0.0.1", () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});
const server = spawn(serverBin, ["--listen", `127.0.0.1:${port}`, "--log-level", "warn"], { stdio: "inherit" });
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
  } catch {
    if (i > 200) throw new Error("huddle-server did not start");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** CPU seconds (user + system) of `pid` and all its descendants. */

const browser = await chromium.launch({
  executablePath: CHROMIUM_PATH,
  headless: true,
  args: [
    ...CHROMIUM_FLAGS,
    ...(y4m ? [`--use-file-for-fake-video-capture=${y4m}`] : []),
    "--autoplay-policy=no-user-gesture-required",
  ],
});
// Chromium is a child of this node process; huddle-server and huddle-peer
// are too, so they are left out by pid.
const page = await (
  await browser.newContext({ viewport: { width: 1280, height: 800 }, permissions: ["camera", "microphone"] })
).newPage();
await page.goto(`http://127.0.0.1:${port}/`);
await page.getByLabel("Your name").fill("Chromium");
await page.getByLabel("Room", { exact: true }).fill("bench");
await page.getByRole("button", { name: "Join room" }).click();
await page.getByTestId("connection").filter({ hasText: "Connected" }).waitFor();
await startCall(page);
const callStarted = Date.now();

const report = joinPath(tmpdir(), `huddle-bench-${process.pid}.json`);
const peer = spawn(
  peerBin,
  [
    "--server",
    `ws://127.0.0.1:${port}/ws`,
    "--room",
    "bench",
    "--name",
    "Native",
    "--size",
    "1280x720",
    "--fps",
    "30",
    "--kbps",
    "2500",
    "--content",
    "busy",
    "--duration",
    `${WINDOW_S + 15}s`,
    "--udp",
    "127.0.0.1:0",
    "--report",
    report,
  ],
  { stdio: ["ignore", "ignore", "inherit"] },
);
const peerExited = new Promise((resolve) => peer.once("exit", resolve));

// Chromium presents the native peer's pictures: read each one's strip.
await page.getByTestId("tile-remote").locator("video").waitFor();
const chromiumFirstFrameMs = await page.evaluate(async () => {
  const video = document.querySelector('[data-testid="tile-remote"] video');
  const canvas = new OffscreenCanvas(512, 48);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  window.__latencies = [];
  window.__sequences = [];
  let first = null;
  const started = performance.now();
  const read = () => {
    context.drawImage(video, 0, 0, 512, 48, 0, 0, 512, 48);
    const pixels = context.getImageData(0, 0, 512, 48).data;
    const rows = [0, 1, 2].map((r) => {
      let value = 0;
      for (let bit = 0; bit < 32; bit++) {
        const at = ((r * 16 + 8) * 512 + bit * 16 + 8) * 4;
        value = ((value << 1) | (pixels[at] > 128 ? 1 : 0)) >>> 0;
      }
      return value;
    });
    if (rows[2] !== ~rows[0] >>> 0) return null;
    return { sequence: rows[0], captured: rows[1] };
  };
  return new Promise((resolve) => {
    const onFrame = () => {
      const stamp = video.videoWidth >= 512 ? read() : null;
      if (stamp) {
        const now = Date.now() % 2 ** 32;
        window.__latencies.push((now - stamp.captured + 2 ** 32) % 2 ** 32);
        window.__sequences.push(stamp.sequence);
        if (first === null) {
          first = performance.now() - started;
          resolve(first);
        }
      }
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  });
});
const chromiumFirstFromCall = Date.now() - callStarted;

// Let both sides settle (ramp-up, keyframes), then measure a window.
await new Promise((r) => setTimeout(r, 3000));
await page.evaluate(() => {
  window.__latencies = [];
  window.__sequences = [];
});
const before = { chromium: treeCpu(process.pid) - treeCpu(peer.pid) - treeCpu(server.pid), peer: treeCpu(peer.pid) };
const windowStart = Date.now();
await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
const seconds = (Date.now() - windowStart) / 1000;
const after = { chromium: treeCpu(process.pid) - treeCpu(peer.pid) - treeCpu(server.pid), peer: treeCpu(peer.pid) };
const { latencies, sequences, stats } = await page.evaluate(() => ({
  latencies: window.__latencies,
  sequences: window.__sequences,
  stats: Object.values(window.huddle.state().stats),
}));
await peerExited;
await browser.close();
server.kill("SIGTERM");

const native = JSON.parse(readFileSync(report, "utf8"));
const fromChromium = Object.values(native.peers)[0] ?? {};
const percentile = (v, p) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : null;
};
const cpu = (k) => (100 * (after[k] - before[k])) / seconds;
const span = sequences.length ? sequences[sequences.length - 1] - sequences[0] + 1 : 0;
const chromiumStats = stats[0] ?? {};
console.log(
  `media bench: 1:1 call, 1280x720 @ 30 fps, busy content, ${seconds.toFixed(0)} s window${y4m ? "" : " (Chromium's own fake camera: no Y4M given)"}`,
);
console.log(
  `  CPU, % of one core: Chromium (all processes) ${cpu("chromium").toFixed(0)} %, huddle-peer ${cpu("peer").toFixed(0)} %, ratio ${(cpu("peer") / cpu("chromium")).toFixed(2)}`,
);
console.log(
  `  Chromium receives: ${chromiumStats.codec} ${chromiumStats.width}x${chromiumStats.height} at ${Math.round(chromiumStats.bitrateInKbps ?? 0)} kbit/s; presented ${sequences.length} of ${span} frames sent in the window`,
);
console.log(
  `  glass-to-glass native → Chromium: p50 ${percentile(latencies, 50)} ms, p95 ${percentile(latencies, 95)} ms, max ${percentile(latencies, 100)} ms`,
);
console.log(
  `  first remote picture after joining the call: Chromium ${chromiumFirstFromCall} ms (incl. huddle-peer's start), huddle-peer ${fromChromium.first_frame_ms} ms`,
);
console.log(
  `  huddle-peer receives: ${fromChromium.frames} frames ${fromChromium.width}x${fromChromium.height}, ${Math.round((fromChromium.bitrate_in_bps ?? 0) / 1000)} kbit/s; sends at ${Math.round((fromChromium.encoder_bitrate_bps ?? 0) / 1000)} kbit/s (estimate ${Math.round((fromChromium.target_bitrate_bps ?? 0) / 1000)})`,
);
void chromiumFirstFrameMs;
if (!sequences.length || !fromChromium.frames) {
  console.error("bench-media: media did not flow");
  process.exit(1);
}
