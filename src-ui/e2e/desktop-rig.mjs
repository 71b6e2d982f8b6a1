// What driving the desktop app takes: an X display (Xvfb), a PulseAudio
// with a null sink, a D-Bus session bus with a notification service (dunst),
// tauri-driver (with WebKitWebDriver),
// and the app's own HOME; plus the window helpers the desktop e2e run and
// benchmark share.

import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import { READ_STRIP, freePort, stop } from "./lib.mjs";
import { pulseDaemon } from "./sound.mjs";
import { WebDriver } from "./webdriver.mjs";

export class DesktopRig {
  constructor() {
    this.children = [];
    this.scratch = mkdtempSync(joinPath(tmpdir(), "huddle-desktop-"));
  }

  /** Starts everything; `env` is what the app will run with. */
  static async start({ tauriDriver = process.env.TAURI_DRIVER ?? "tauri-driver", extraEnv = {} } = {}) {
    const rig = new DesktopRig();
    try {
      const DISPLAY = await rig.display();
      rig.pulseServer = await rig.pulse();
      const DBUS_SESSION_BUS_ADDRESS = await rig.sessionBus();
      const home = joinPath(rig.scratch, "home");
      mkdirSync(home, { recursive: true });
      const bin = rig.systemBrowser();
      rig.env = {
        ...process.env,
        DISPLAY,
        DBUS_SESSION_BUS_ADDRESS,
        PULSE_SERVER: rig.pulseServer,
        HUDDLE_FAKE_MEDIA: "1",
        HOME: home,
        XDG_CONFIG_HOME: joinPath(home, ".config"),
        XDG_DATA_HOME: joinPath(home, ".local/share"),
        XDG_CACHE_HOME: joinPath(home, ".cache"),
        // No GPU here: WebKit composites through Mesa's software renderer.
        LIBGL_ALWAYS_SOFTWARE: "1",
        // The "system browser": an xdg-open first on PATH that writes down
        // what it was asked to open.
        PATH: `${bin}:${process.env.PATH}`,
        ...extraEnv,
      };
      await rig.notifications();
      rig.driverBase = await rig.driver(tauriDriver);
      return rig;
    } catch (e) {
      await rig.stop();
      throw e;
    }
  }

  /** Launches the app (through tauri-driver) with `args` and returns its window. */
  open(appBin, args = []) {
    return WebDriver.open(this.driverBase, appBin, args);
  }

  spawn(bin, args, options = {}) {
    const child = spawn(bin, args, options);
    this.children.push(child);
    return child;
  }

  async display() {
    if (process.env.HUDDLE_E2E_DISPLAY) return process.env.HUDDLE_E2E_DISPLAY;
    const { child, display } = await startXvfb({ from: 90, size: "1280x800" });
    this.children.push(child);
    return display;
  }

  /** A D-Bus session bus of our own (the app finds its running instance there). */
  async sessionBus() {
    const socket = joinPath(this.scratch, "bus");
    this.spawn("dbus-daemon", ["--session", "--nofork", "--nopidfile", `--address=unix:path=${socket}`], {
      stdio: "ignore",
    });
    await until(() => existsSync(socket), "dbus-daemon");
    return `unix:path=${socket}`;
  }

  /** A notification service on the session bus: dunst, drawing on the display. Its notifications close after a
   * second, so that they reach its history (which is what can be asked for) soon. */
  async notifications() {
    const config = joinPath(this.scratch, "dunstrc");
    writeFileSync(config, ["low", "normal", "critical"].map((u) => `[urgency_${u}]\ntimeout = 1\n`).join(""));
    this.spawn("dunst", ["-config", config], { env: this.env, stdio: "ignore" });
    await until(() => this.notificationHistory() !== null, "dunst");
  }

  /** A stand-in for the system's browser (`xdg-open`); returns its directory. */
  systemBrowser() {
    const bin = joinPath(this.scratch, "bin");
    mkdirSync(bin, { recursive: true });
    const script = joinPath(bin, "xdg-open");
    writeFileSync(script, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${joinPath(this.scratch, "opened.txt")}'\n`);
    chmodSync(script, 0o755);
    return bin;
  }

  /** The links the app handed to the system's browser so far. */
  openedLinks() {
    try {
      return readFileSync(joinPath(this.scratch, "opened.txt"), "utf8").split("\n").filter(Boolean);
    } catch {
      return [];
    }
  }

  /** What the notification service showed and closed so far (the raw D-Bus reply), or null while there is none. */
  notificationHistory() {
    const reply = spawnSync(
      "dbus-send",
      [
        "--session",
        "--print-reply",
        "--dest=org.freedesktop.Notifications",
        "/org/freedesktop/Notifications",
        "org.dunstproject.cmd0.NotificationListHistory",
      ],
      { env: this.env, encoding: "utf8" },
    );
    return reply.status === 0 ? reply.stdout : null;
  }

  /** Takes the keyboard focus from the app's window, as another window would: the pointer leaves it for the screen's
   * far corner (with no window manager, a focused root gives the focus to the window under the pointer) and the
   * root window gets the focus. */
  focusElsewhere() {
    const xdotool = (...args) => spawnSync("xdotool", args, { env: this.env, encoding: "utf8" });
    const root = xdotool("search", "--maxdepth", "0", "--name", "").stdout.trim();
    const moved = xdotool("mousemove", "1279", "799");
    const focused = xdotool("windowfocus", root);
    if (!root || moved.status !== 0 || focused.status !== 0)
      throw new Error(`xdotool could not move the focus: ${moved.stderr}${focused.stderr}`);
  }

  /** A PulseAudio daemon of our own with one null sink, the default output. */
  async pulse() {
    const dir = joinPath(this.scratch, "pulse");
    mkdirSync(dir, { recursive: true });
    const { socket, args, options } = pulseDaemon(dir, ["module-null-sink sink_name=huddle_out"]);
    this.spawn("pulseaudio", args, options);
    await until(() => existsSync(socket), "pulseaudio");
    return `unix:${socket}`;
  }

  async driver(tauriDriver) {
    const port = await freePort();
    const nativePort = await freePort();
    this.spawn(tauriDriver, ["--port", String(port), "--native-port", String(nativePort)], {
      env: this.env,
      stdio: ["ignore", "ignore", "inherit"],
    });
    const base = `http://127.0.0.1:${port}`;
    await until(async () => (await fetch(`${base}/status`).catch(() => null))?.ok, "tauri-driver");
    return base;
  }

  /** Records `seconds` of what the null sink plays: 48 kHz mono s16. */
  async record(seconds) {
    const rec = spawn(
      "parec",
      ["--device=huddle_out.monitor", "--format=s16le", "--rate=48000", "--channels=1", "--raw", "--latency-msec=50"],
      {
        env: { ...process.env, PULSE_SERVER: this.pulseServer },
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    const chunks = [];
    rec.stdout.on("data", (c) => chunks.push(c));
    await new Promise((r) => setTimeout(r, seconds * 1000));
    await stop(rec);
    const bytes = Buffer.concat(chunks);
    return new Int16Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.length / 2));
  }

  async stop() {
    for (const child of this.children.reverse()) await stop(child);
    this.children = [];
    rmSync(this.scratch, { recursive: true, force: true });
  }
}

/** An Xvfb on the first free display from `from`, its screen `size`
 * (`WIDTHxHEIGHT`, 24-bit), with `extra` arguments (e.g. `-wr`, a white
 * root); resolves once it listens, to the process and its `:N`. */
export async function startXvfb({ from, size, extra = [] }) {
  let n = from;
  while (existsSync(`/tmp/.X11-unix/X${n}`) || existsSync(`/tmp/.X${n}-lock`)) n++;
  const child = spawn("Xvfb", [`:${n}`, "-screen", "0", `${size}x24`, ...extra, "-nolisten", "tcp"], {
    stdio: "ignore",
  });
  await until(() => existsSync(`/tmp/.X11-unix/X${n}`), "Xvfb");
  return { child, display: `:${n}` };
}

async function until(condition, what) {
  for (let i = 0; i < 200; i++) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not start`);
}

/** The strongest frequency of 100–2000 Hz (20 Hz steps), by Goertzel, and its share of the power. */
export function dominantTone(samples) {
  let dominant = 0;
  let best = -1;
  let total = 0;
  for (const x of samples) total += x * x;
  for (let hz = 100; hz <= 2000; hz += 20) {
    const coeff = 2 * Math.cos((2 * Math.PI * hz) / 48_000);
    let s1 = 0;
    let s2 = 0;
    for (const x of samples) {
      const s0 = x + coeff * s1 - s2;
      s2 = s1;
      s1 = s0;
    }
    const share = total > 0 ? (2 * (s1 * s1 + s2 * s2 - coeff * s1 * s2)) / (samples.length * total) : 0;
    if (share > best) [best, dominant] = [share, hz];
  }
  return { hz: dominant, share: best, rms: Math.sqrt(total / Math.max(1, samples.length)) };
}

// --- in the app's window ------------------------------------------------------

export async function joinRoom(app, { server, name, room, password = "" }) {
  await app.waitFor(`return !!document.querySelector('input[name=server]')`, { what: "the lobby" });
  if (server !== undefined) await app.type(await app.find("input[name=server]"), server);
  await app.type(await app.find("input[name=name]"), name);
  await app.type(await app.find("input[name=room]"), room);
  await app.type(await app.find("input[name=password]"), password);
  await app.clickButton("Join room");
}

export const connected = (app, what = "Connected") =>
  app.waitFor(`return document.querySelector('[data-testid=connection]')?.textContent === 'Connected'`, {
    what,
    timeout: 45_000,
  });

/** Page-side `(member) => …`: the member's tile's strip read off its canvas, with the tile's figures. */
export const READ_TILE = `(member) => {
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
