// End-to-end for the desktop app: the real `huddle` binary under Xvfb,
// driven through tauri-driver + WebKitWebDriver, in rooms on a real
// huddle-server, with a native `huddle-peer` (test pattern + tone) and
// headless Chromium running the browser UI as the other members. Sound goes
// to a PulseAudio null sink of the test's own and is recorded from its
// monitor.
//
//   HUDDLE_APP_BIN=… HUDDLE_SERVER_BIN=… HUDDLE_PEER_BIN=… node e2e/desktop.mjs
//
// Every step waits for what a user would see (polling the window), never
// for a fixed time. Screenshots go to e2e/out/desktop-*.png.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join as joinPath } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { READ_STRIP, freePort, startServer, steps, stop } from "./lib.mjs";
import { WebDriver } from "./webdriver.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const out = joinPath(here, "out");
mkdirSync(out, { recursive: true });

const need = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`desktop e2e: set ${name}`);
    process.exit(2);
  }
  return value;
};
const appBin = need("HUDDLE_APP_BIN");
const serverBin = need("HUDDLE_SERVER_BIN");
const peerBin = need("HUDDLE_PEER_BIN");
const tauriDriver = process.env.TAURI_DRIVER ?? "tauri-driver";
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const PEER_TONE_HZ = 660;

const children = [];
const scratch = mkdtempSync(joinPath(tmpdir(), "huddle-desktop-e2e-"));

/** An X display of our own (Xvfb), unless one is given. */
async function display() {
  if (process.env.HUDDLE_E2E_DISPLAY) return process.env.HUDDLE_E2E_DISPLAY;
  let n = 90;
  while (existsSync(`/tmp/.X11-unix/X${n}`) || existsSync(`/tmp/.X${n}-lock`)) n++;
  const xvfb = spawn("Xvfb", [`:${n}`, "-screen", "0", "1280x800x24", "-nolisten", "tcp"], { stdio: "ignore" });
  children.push(xvfb);
  for (let i = 0; i < 100 && !existsSync(`/tmp/.X11-unix/X${n}`); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(`/tmp/.X11-unix/X${n}`)) throw new Error("Xvfb did not start");
  return `:${n}`;
}

/** A PulseAudio daemon with one null sink, the default output. */
async function pulse() {
  const dir = joinPath(scratch, "pulse");
  mkdirSync(dir, { recursive: true });
  const socket = joinPath(dir, "native");
  const daemon = spawn(
    "pulseaudio",
    ["--daemonize=no", "-n", "--exit-idle-time=-1", "--use-pid-file=no", `--load=module-native-protocol-unix auth-anonymous=1 socket=${socket}`, "--load=module-null-sink sink_name=huddle_out"],
    { env: { ...process.env, PULSE_RUNTIME_PATH: dir, HOME: dir }, stdio: "ignore" },
  );
  children.push(daemon);
  for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(socket)) throw new Error("pulseaudio did not start");
  return `unix:${socket}`;
}

/** Records `seconds` of what the null sink plays; 48 kHz mono s16. */
async function record(pulseServer, seconds) {
  const rec = spawn("parec", ["--device=huddle_out.monitor", "--format=s16le", "--rate=48000", "--channels=1", "--raw", "--latency-msec=50"], {
    env: { ...process.env, PULSE_SERVER: pulseServer },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const chunks = [];
  rec.stdout.on("data", (c) => chunks.push(c));
  await new Promise((r) => setTimeout(r, seconds * 1000));
  await stop(rec);
  const bytes = Buffer.concat(chunks);
  return new Int16Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.length / 2));
}

/** Power at `hz` (Goertzel), relative to the signal's total power. */
function toneShare(samples, hz) {
  const w = (2 * Math.PI * hz) / 48_000;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  let total = 0;
  for (const x of samples) {
    const s0 = x + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
    total += x * x;
  }
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return total > 0 ? (2 * power) / (samples.length * total) : 0;
}

async function startDriver(env) {
  const port = await freePort();
  const nativePort = await freePort();
  const driver = spawn(tauriDriver, ["--port", String(port), "--native-port", String(nativePort)], { env, stdio: ["ignore", "ignore", "inherit"] });
  children.push(driver);
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${base}/status`)).ok) return { base, driver };
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("tauri-driver did not start");
}

// --- in the app's window ------------------------------------------------------

async function joinRoom(app, { server, name, room, password = "" }) {
  await app.waitFor(`return !!document.querySelector('input[name=server]')`, { what: "the lobby" });
  if (server !== undefined) {
    await app.type(await app.find("input[name=server]"), server);
  }
  await app.type(await app.find("input[name=name]"), name);
  await app.type(await app.find("input[name=room]"), room);
  await app.type(await app.find("input[name=password]"), password);
  await app.clickButton("Join room");
}

const connected = (app) => app.waitFor(`return document.querySelector('[data-testid=connection]')?.textContent === 'Connected'`, { what: "Connected" });

/** The member's tile's strip, read off the canvas: proves the pixels are the pattern's. */
const READ_TILE = `(member) => {
  const readStrip = ${READ_STRIP};
  const canvas = document.querySelector('canvas[data-member="' + member + '"]');
  if (!canvas || canvas.width < 512) return null;
  const probe = document.createElement('canvas');
  probe.width = 512; probe.height = 48;
  const ctx = probe.getContext('2d');
  ctx.drawImage(canvas, 0, 0, 512, 48, 0, 0, 512, 48);
  const stamp = readStrip(ctx.getImageData(0, 0, 512, 48).data, 512);
  const figures = window.huddle.tiles()[member];
  return stamp && { ...stamp, rendered: figures.rendered, width: canvas.width, height: canvas.height, renderer: canvas.dataset.renderer };
}`;

async function chatLines(app) {
  return app.execute(`return [...document.querySelectorAll('[data-testid=message]')].map((m) => m.textContent)`);
}

// --- the run ----------------------------------------------------------------------

const { step, summary } = steps();
let failed = false;
let app = null;
let browser = null;
let server = null;
try {
  const DISPLAY = await display();
  const PULSE_SERVER = await pulse();
  const port = await freePort();
  server = await startServer(serverBin, port);
  const serverAddress = `127.0.0.1:${port}`;
  const home = joinPath(scratch, "home");
  mkdirSync(home, { recursive: true });
  const env = {
    ...process.env,
    DISPLAY,
    PULSE_SERVER,
    HUDDLE_FAKE_MEDIA: "1",
    HOME: home,
    XDG_CONFIG_HOME: joinPath(home, ".config"),
    XDG_DATA_HOME: joinPath(home, ".local/share"),
    XDG_CACHE_HOME: joinPath(home, ".cache"),
    // No GPU here: WebKit's compositing through Mesa's software renderer.
    LIBGL_ALWAYS_SOFTWARE: "1",
  };
  const { base } = await startDriver(env);
  console.log(`desktop e2e: huddle-server on ${serverAddress}, display ${DISPLAY}`);

  await step("the app starts and shows the lobby", async () => {
    app = await WebDriver.open(base, appBin);
    await app.waitFor(`return !!document.querySelector('input[name=server]')`, { what: "the lobby" });
  });

  await step("a bad server address is a clear message, and correcting it joins", async () => {
    await joinRoom(app, { server: "exa mple:80", name: "Ada", room: "desk" });
    const message = await app.waitFor(`return document.querySelector('.form-error')?.textContent`, { what: "an error" });
    if (!/not a server address/.test(message)) throw new Error(`unexpected message: ${message}`);
    await joinRoom(app, { server: serverAddress, name: "Ada", room: "desk" });
    await connected(app);
  });

  let peerId = null;
  let peerReport = null;
  await step("a huddle-peer joins the call: the app shows its pattern and plays its tone", async () => {
    await app.clickButton("Start video call");
    await app.waitFor(`return window.huddle.state().inCall`, { what: "in the call" });
    const reportPath = joinPath(scratch, "peer.json");
    const peer = spawn(
      peerBin,
      ["--server", `ws://${serverAddress}/ws`, "--room", "desk", "--name", "Native", "--duration", "14s", "--tone-hz", String(PEER_TONE_HZ), "--size", "640x360", "--udp", "127.0.0.1:0", "--report", reportPath],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    children.push(peer);
    const exited = new Promise((r) => peer.once("exit", r));
    peerId = await app.waitFor(`return window.huddle.state().members.find((m) => m.name === 'Native' && m.in_call)?.id`, { what: "the peer in the call" });
    const first = await app.waitFor(`return (${READ_TILE})(arguments[0])`, { what: "the pattern on the canvas" }, peerId);
    // Pictures keep coming and the strip keeps advancing.
    const later = await app.waitFor(`const s = (${READ_TILE})(arguments[0]); return s && s.sequence >= arguments[1] + 30 ? s : null;`, { what: "30 more pictures" }, peerId, first.sequence);
    console.log(`    canvas (${later.renderer}) ${later.width}×${later.height}: strip ${first.sequence} → ${later.sequence}, ${later.rendered} pictures drawn`);
    const samples = (await record(PULSE_SERVER, 2.5)).subarray(24_000);
    const rms = Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / Math.max(1, samples.length));
    // The strongest of 100–2000 Hz in 20 Hz steps must be the peer's tone.
    let dominant = 0;
    let best = -1;
    for (let hz = 100; hz <= 2000; hz += 20) {
      const share = toneShare(samples, hz);
      if (share > best) [best, dominant] = [share, hz];
    }
    console.log(`    null sink monitor: rms ${rms.toFixed(0)}, dominant ${dominant} Hz (${(best * 100).toFixed(0)} % of the power)`);
    if (rms < 300 || dominant !== PEER_TONE_HZ) throw new Error(`the app does not play the peer's ${PEER_TONE_HZ} Hz tone (dominant ${dominant} Hz, rms ${rms})`);
    const self = await app.waitFor(`const t = window.huddle.tiles().self; return t && t.rendered > 10 && t;`, { what: "the self view" });
    console.log(`    self view: ${self.rendered} pictures ${self.width}×${self.height}`);
    writeFileSync(joinPath(out, "desktop-call.png"), await app.screenshot());
    const code = await exited;
    peerReport = JSON.parse(readFileSync(reportPath, "utf8"));
    if (code !== 0) throw new Error(`huddle-peer exit ${code}`);
  });

  await step("the huddle-peer decodes the app's own test-pattern video and hears its tone", async () => {
    const fromApp = Object.values(peerReport.peers)[0];
    console.log(`    huddle-peer got ${fromApp?.frames} frames ${fromApp?.width}×${fromApp?.height}, ${fromApp?.audio_ms} ms audio at ${fromApp?.audio_dominant_hz} Hz`);
    if (!fromApp || fromApp.frames < 60) throw new Error(`too few frames from the app: ${JSON.stringify(fromApp)}`);
    if (fromApp.audio_dominant_hz !== 440) throw new Error(`the app's tone not heard: ${JSON.stringify(fromApp)}`);
  });

  // --- with the browser UI in headless Chromium ---------------------------
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--disable-features=WebRtcHideLocalIpsWithMdns", "--allow-loopback-in-peer-connection"],
  });
  const context = await browser.newContext({ permissions: ["camera", "microphone"] });
  const grace = await context.newPage();
  grace.on("pageerror", (e) => console.log(`  [Grace] page error: ${e.message}`));
  const appId = await app.execute(`return window.huddle.state().self.id`);

  await step("chat goes both ways between the app and a browser", async () => {
    await grace.goto(`http://${serverAddress}/r/desk`);
    await grace.getByLabel("Your name").fill("Grace");
    await grace.getByRole("button", { name: "Join room" }).click();
    await grace.getByTestId("connection").filter({ hasText: "Connected" }).waitFor();
    await grace.getByLabel("Message", { exact: true }).fill("hello from the browser");
    await grace.getByLabel("Message", { exact: true }).press("Enter");
    await app.waitFor(`return [...document.querySelectorAll('[data-testid=message]')].some((m) => m.textContent.includes('hello from the browser'))`, { what: "the browser's message" });
    const input = await app.find("[aria-label=Message]");
    await app.type(input, "hello from the desktop");
    await app.command("POST", `/element/${input}/value`, { text: "\uE007" });
    await grace.getByTestId("message").filter({ hasText: "hello from the desktop" }).first().waitFor();
  });

  await step("a browser joins the call: each side shows the other's video", async () => {
    await grace.getByRole("button", { name: /Join call/ }).click();
    const graceId = await grace.evaluate(() => window.huddle.state().self.id);
    const drawn = async () => (await app.execute(`return window.huddle.tiles()[arguments[0]]?.rendered ?? 0`, graceId)) ?? 0;
    await app.waitFor(`return (window.huddle.tiles()[arguments[0]]?.rendered ?? 0) > 0`, { what: "Chromium's first picture" }, graceId);
    const first = await drawn();
    await app.waitFor(`return window.huddle.tiles()[arguments[0]].rendered >= arguments[1] + 20`, { what: "20 more of Chromium's pictures" }, graceId, first);
    // Chromium's fake camera is a moving colour picture: not one flat colour.
    const spread = await app.execute(`
      const canvas = document.querySelector('canvas[data-member="' + arguments[0] + '"]');
      const probe = document.createElement('canvas');
      probe.width = 64; probe.height = 64;
      const ctx = probe.getContext('2d');
      ctx.drawImage(canvas, 0, 0, 64, 64);
      const d = ctx.getImageData(0, 0, 64, 64).data;
      let min = 255, max = 0;
      for (let i = 0; i < d.length; i += 4) { min = Math.min(min, d[i + 1]); max = Math.max(max, d[i + 1]); }
      return { min, max, width: canvas.width, height: canvas.height };`, graceId);
    console.log(`    app draws Chromium's camera ${spread.width}×${spread.height}, green ${spread.min}–${spread.max}`);
    if (spread.max - spread.min < 40) throw new Error(`Chromium's picture looks flat: ${JSON.stringify(spread)}`);
    await grace.waitForFunction(
      (id) => {
        const s = window.huddle.state().stats[id];
        window.__first ??= s?.framesDecoded;
        return s && s.width > 0 && s.framesDecoded > (window.__first ?? Infinity) + 20;
      },
      appId,
      { timeout: 30_000, polling: 500 },
    );
    const seen = await grace.evaluate((id) => window.huddle.state().stats[id], appId);
    console.log(`    Chromium decodes the app: ${seen.codec} ${seen.width}×${seen.height}, ${seen.framesDecoded} frames`);
    writeFileSync(joinPath(out, "desktop-call-browser.png"), await app.screenshot());
    await grace.screenshot({ path: joinPath(out, "desktop-call-browser-side.png") });
  });

  await step("a lost server shows Reconnecting… and the app comes back when it returns", async () => {
    await stop(server, "SIGKILL");
    await app.waitFor(`return document.querySelector('[data-testid=connection]')?.textContent === 'Reconnecting…'`, { what: "Reconnecting…" });
    server = await startServer(serverBin, port);
    await app.waitFor(`return document.querySelector('[data-testid=connection]')?.textContent === 'Connected'`, { what: "Connected again", timeout: 45_000 });
  });

  await step("settings survive a restart: server, name and recent rooms", async () => {
    await app.clickButton("Leave call");
    await app.clickButton("Leave room");
    await app.waitFor(`return !!document.querySelector('input[name=server]')`, { what: "the lobby" });
    await app.close();
    app = await WebDriver.open(base, appBin);
    const seen = await app.waitFor(
      `const v = (n) => document.querySelector('input[name=' + n + ']')?.value;
       const chips = [...document.querySelectorAll('.chip')].map((c) => c.textContent);
       return v('server') && { server: v('server'), name: v('name'), recent: chips };`,
      { what: "the lobby, filled in" },
    );
    console.log(`    after restart: ${JSON.stringify(seen)}`);
    if (seen.server !== serverAddress || seen.name !== "Ada" || !seen.recent.includes("desk")) throw new Error(`not remembered: ${JSON.stringify(seen)}`);
  });

  await step("a wrong room password is a clear message; the right one joins", async () => {
    await grace.goto(`http://${serverAddress}/`);
    await grace.getByLabel("Your name").fill("Grace");
    await grace.getByLabel("Room", { exact: true }).fill("locked");
    await grace.getByLabel(/Password/).fill("s3cret");
    await grace.getByRole("button", { name: "Join room" }).click();
    await grace.getByTestId("connection").filter({ hasText: "Connected" }).waitFor();
    await joinRoom(app, { name: "Ada", room: "locked", password: "wrong" });
    const message = await app.waitFor(`return document.querySelector('.form-error')?.textContent`, { what: "the password error" });
    if (!/Wrong password/.test(message)) throw new Error(`unexpected message: ${message}`);
    await joinRoom(app, { name: "Ada", room: "locked", password: "s3cret" });
    await connected(app);
    writeFileSync(joinPath(out, "desktop-room.png"), await app.screenshot());
  });
} catch (error) {
  failed = true;
  console.error(error);
  if (app) writeFileSync(joinPath(out, "desktop-failure.png"), await app.screenshot().catch(() => Buffer.alloc(0)));
} finally {
  await app?.close();
  await browser?.close();
  await stop(server);
  for (const child of children.reverse()) await stop(child);
  rmSync(scratch, { recursive: true, force: true });
}
console.log(`desktop e2e: ${summary()}${failed ? " (stopped at the first failure)" : ""}; screenshots in ${out}`);
process.exit(failed ? 1 : 0);
