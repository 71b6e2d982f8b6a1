// Benchmark of the desktop app (release build), driven like the e2e run:
//
//   - start-up: launching the app until its lobby is on screen; idle memory
//   - frame delivery: a huddle-peer sends 1280×720 at 30 fps; the window
//     draws it — pictures drawn per second, pictures the shell dropped
//     because the tile was still drawing, and the delay from leaving the
//     decoder to being drawn; the app's CPU and memory meanwhile
//   - a 4-way call: three huddle-peers at 640×360; the app's CPU, memory
//     and frame rate per tile
//
//   HUDDLE_APP_BIN=… HUDDLE_SERVER_BIN=… HUDDLE_PEER_BIN=… node e2e/bench-desktop.mjs
//
// CPU is the app with its WebKit processes, in % of one core.

import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { DesktopRig, connected, joinRoom } from "./desktop-rig.mjs";
import { freePort, newestPid, processTree, startServer, stop } from "./lib.mjs";

const need = (name) => process.env[name] ?? (console.error(`bench-desktop: set ${name}`), process.exit(2));
const appBin = need("HUDDLE_APP_BIN");
const serverBin = need("HUDDLE_SERVER_BIN");
const peerBin = need("HUDDLE_PEER_BIN");
const WINDOW_S = Number(process.env.BENCH_WINDOW_S ?? 15);
const MB = 1024 * 1024;

const percentile = (values, p) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};

/** The app's own process: the newest `huddle`. */
function appPid() {
  const pid = newestPid("huddle");
  if (!pid) throw new Error("no huddle process");
  return pid;
}

/** How busy the whole machine was over the last measurement (from /proc/stat), as "N % of M cores". */
let lastStat = null;
function machineStat() {
  const [, ...f] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).map(Number);
  return { busy: f[0] + f[1] + f[2] + f[5] + f[6] + f[7], total: f.reduce((a, b) => a + b, 0) };
}
async function machineCpu() {
  const now = machineStat();
  const before = lastStat;
  lastStat = now;
  if (!before) return "?";
  return `${((100 * (now.busy - before.busy)) / (now.total - before.total)).toFixed(0)} % of ${cpus().length} cores`;
}

/** Measures the app over `seconds`: CPU %, RSS at the end, tile figures before and after. */
async function measure(app, pid, seconds) {
  const tilesBefore = await app.execute(`return window.huddle.tiles()`);
  await app.execute(
    `for (const t of Object.values(window.huddle.tiles())) for (const a of [t.delays, t.arrivals, t.draws]) a.length = 0;`,
  );
  const before = processTree(pid);
  lastStat = machineStat();
  const started = Date.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const after = processTree(pid);
  const elapsed = (Date.now() - started) / 1000;
  const tilesAfter = await app.execute(`return window.huddle.tiles()`);
  const tiles = {};
  for (const [id, t] of Object.entries(tilesAfter)) {
    const b = tilesBefore[id] ?? { rendered: 0, sent: 0, dropped: 0 };
    tiles[id] = {
      size: `${t.width}×${t.height}`,
      drawnFps: (t.rendered - b.rendered) / elapsed,
      droppedPerS: (t.dropped - b.dropped) / elapsed,
      delayP50: percentile(t.delays, 50),
      delayP95: percentile(t.delays, 95),
      arrivalP50: percentile(t.arrivals, 50),
      drawP50: percentile(t.draws, 50),
    };
  }
  const perProcess = Object.entries(after.byName)
    .map(
      ([name, a]) =>
        `${name} ${((100 * (a.cpu - (before.byName[name]?.cpu ?? 0))) / elapsed).toFixed(0)} % ${(a.rss / MB).toFixed(0)} MB`,
    )
    .join(", ");
  const machine = await machineCpu(seconds);
  return {
    cpuPercent: (100 * (after.cpu - before.cpu)) / elapsed,
    rssMb: after.rss / MB,
    pssMb: after.pss / MB,
    perProcess,
    machine,
    tiles,
  };
}

function printTiles(tiles) {
  for (const [id, t] of Object.entries(tiles)) {
    console.log(
      `    ${id.padEnd(14)} ${t.size.padEnd(10)} drawn ${t.drawnFps.toFixed(1)} fps, dropped ${t.droppedPerS.toFixed(1)}/s, decoder→canvas p50 ${t.delayP50.toFixed(1)} ms p95 ${t.delayP95.toFixed(1)} ms (arrival p50 ${t.arrivalP50.toFixed(1)} ms, drawing p50 ${t.drawP50.toFixed(1)} ms)`,
    );
  }
}

const rig = await DesktopRig.start();
let server = null;
let app = null;
try {
  const port = await freePort();
  server = await startServer(serverBin, port);
  const address = `127.0.0.1:${port}`;

  // --- start-up and idle --------------------------------------------------
  const launched = Date.now();
  app = await rig.open(appBin);
  await app.waitFor(`return !!document.querySelector('input[name=server]')`, { what: "the lobby" });
  const startupMs = Date.now() - launched;
  const pid = appPid();
  await new Promise((r) => setTimeout(r, 5000));
  const idle = processTree(pid);
  const each = Object.entries(idle.byName)
    .map(([name, m]) => `${name} ${(m.rss / MB).toFixed(0)}/${(m.pss / MB).toFixed(0)}`)
    .join(", ");
  console.log(
    `bench-desktop: start-up to lobby ${startupMs} ms (incl. WebDriver session); idle over ${idle.names.length} processes: ` +
      `RSS ${(idle.rss / MB).toFixed(0)} MB, PSS ${(idle.pss / MB).toFixed(0)} MB (RSS/PSS MB: ${each})`,
  );

  // --- 1:1, 720p30 in ------------------------------------------------------
  // Alternatives to compare (BENCH_RENDERER=webgl|2d).
  await app.execute(`localStorage.setItem("huddle.renderer", arguments[0]);`, process.env.BENCH_RENDERER ?? "");
  await joinRoom(app, { server: address, name: "Bench", room: "bench" });
  await connected(app);
  await app.clickButton("Start video call");
  await app.waitFor(`return !!document.querySelector(".prejoin")`, { what: "the check before the call" });
  await app.clickButton("Join now");
  const peers = [];
  const peer = (name, size, room = "bench") =>
    rig.spawn(
      peerBin,
      [
        "--server",
        `ws://${address}/ws`,
        "--room",
        room,
        "--name",
        name,
        "--size",
        size,
        "--fps",
        "30",
        "--kbps",
        "2500",
        "--duration",
        "120s",
        "--udp",
        "127.0.0.1:0",
      ],
      { stdio: "ignore" },
    );
  peers.push(peer("Sender720", "1280x720"));
  await app.waitFor(
    `return Object.entries(window.huddle.tiles()).some(([id, t]) => id !== 'self' && t.width === 1280 && t.rendered > 30)`,
    { what: "720p pictures drawn", timeout: 60_000 },
  );
  await new Promise((r) => setTimeout(r, 3000));
  const oneToOne = await measure(app, pid, WINDOW_S);
  console.log(
    `  1:1 call, 1280×720 30 fps in (+ 640×480 test pattern out): app ${oneToOne.cpuPercent.toFixed(0)} % CPU, ${oneToOne.rssMb.toFixed(0)} MB RSS, ${oneToOne.pssMb.toFixed(0)} MB PSS (${oneToOne.perProcess}); machine busy ${oneToOne.machine}`,
  );
  printTiles(oneToOne.tiles);

  // --- 4-way --------------------------------------------------------------------
  await stop(peers.pop());
  for (const name of ["Peer2", "Peer3", "Peer4"]) peers.push(peer(name, "640x360"));
  await app.waitFor(
    `return Object.entries(window.huddle.tiles()).filter(([id, t]) => id !== 'self' && t.width === 640 && t.rendered > 30).length === 3`,
    { what: "three tiles drawing", timeout: 60_000 },
  );
  await new Promise((r) => setTimeout(r, 3000));
  const fourWay = await measure(app, pid, WINDOW_S);
  console.log(
    `  4-way call, 3 × 640×360 30 fps in (+ 640×480 out to each): app ${fourWay.cpuPercent.toFixed(0)} % CPU, ${fourWay.rssMb.toFixed(0)} MB RSS, ${fourWay.pssMb.toFixed(0)} MB PSS (${fourWay.perProcess}); machine busy ${fourWay.machine}`,
  );
  printTiles(fourWay.tiles);
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  await app?.close();
  await stop(server);
  await rig.stop();
}
