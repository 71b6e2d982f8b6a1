// What the end-to-end runs share: free ports, a real huddle-server, steps
// with a summary, and reading the test pattern's strip off a picture.

import { spawn } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { createServer } from "node:net";

/** The Debian Chromium the runs drive, and the flags every run needs: fake
 * camera and microphone without a prompt, and real loopback ICE candidates
 * (instead of mDNS names nobody resolves). */
export const CHROMIUM_PATH = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
  "--disable-features=WebRtcHideLocalIpsWithMdns",
  "--allow-loopback-in-peer-connection",
];

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/** Runs `bin` (a huddle-server; or `[launcher, …args]`, e.g. wine and the
 * .exe) on 127.0.0.1:`port`; resolves once /healthz answers. */
export async function startServer(bin, port, extraArgs = [], { timeoutMs = 10_000 } = {}) {
  const [program, ...pre] = [].concat(bin);
  const child = spawn(program, [...pre, "--listen", `127.0.0.1:${port}`, "--log-level", "warn", ...extraArgs], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  for (const until = Date.now() + timeoutMs; Date.now() < until && child.exitCode === null;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (r.ok) return child;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  throw new Error("huddle-server did not start");
}

/**
 * Waits until `fn(arg)`, evaluated in `page`, returns something truthy, and
 * returns it. Polls from here rather than with `page.waitForFunction`, whose
 * in-page polling needs `eval` — which the pages' Content-Security-Policy
 * (rightly) forbids; the tests run the UI under its real CSP.
 */
export async function waitFor(page, fn, arg = null, { timeout = 30_000, polling = 100 } = {}) {
  const until = Date.now() + timeout;
  for (;;) {
    const value = await page.evaluate(fn, arg);
    if (value) return value;
    if (Date.now() > until) throw new Error(`waitFor: not true within ${timeout} ms: ${String(fn).slice(0, 120)}`);
    await new Promise((r) => setTimeout(r, typeof polling === "number" ? polling : 100));
  }
}

/**
 * Resolves once `page` decodes exactly `remotes` remote streams, each with
 * a picture and a frame count that keeps advancing; returns what it decodes
 * (codec, size, frames, audio level per member).
 */
export async function decoding(page, remotes, timeout = 30_000) {
  await waitFor(
    page,
    (n) => {
      const s = window.huddle.state();
      const ids = Object.keys(s.remote);
      if (ids.length !== n) return false;
      window.__frames ??= {};
      let ok = true;
      for (const id of ids) {
        const st = s.stats[id];
        if (!st || st.width <= 0 || st.height <= 0) ok = false;
        else if ((window.__frames[id] ?? Infinity) >= st.framesDecoded) ok = false;
        if (st) window.__frames[id] = Math.min(window.__frames[id] ?? st.framesDecoded, st.framesDecoded);
      }
      return ok;
    },
    remotes,
    { timeout, polling: 500 },
  );
  return page.evaluate(() =>
    Object.entries(window.huddle.state().stats).map(([id, s]) => ({
      id,
      codec: s.codec,
      w: s.width,
      h: s.height,
      frames: s.framesDecoded,
      audio: s.audioLevel,
    })),
  );
}

/** Starts (or joins) the room's call from the header, through the check
 * before it ("Ready to join?"), with what the check offers; `options` are
 * the header click's (e.g. a shorter timeout). */
export async function startCall(page, button = /^(Start video call|Join call)/, options = {}) {
  await page.getByRole("button", { name: button }).first().click(options);
  await page.getByRole("dialog", { name: "Ready to join?" }).getByRole("button", { name: "Join now" }).click();
}

/** A page's init script keeping every RTCPeerConnection it makes in
 * `window.__pcs`, for stats read from outside. */
export const KEEP_PCS = () => {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Native(...args);
    window.__pcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
};

/** Stops a child process and waits for it to be gone. */
export async function stop(child, signal = "SIGTERM") {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill(signal);
  await exited;
}

/** Named steps, printed as they pass or fail; the first failure throws. */
export function steps() {
  const results = [];
  return {
    results,
    async step(name, fn) {
      const started = Date.now();
      try {
        await fn();
        results.push({ name, ok: true });
        console.log(`  ✓ ${name} (${Date.now() - started} ms)`);
      } catch (error) {
        results.push({ name, ok: false });
        console.log(`  ✗ ${name}: ${error.message.split("\n")[0]}`);
        throw error;
      }
    },
    summary: () => `${results.filter((r) => r.ok).length}/${results.length} steps passed`,
  };
}

/**
 * Page-side source of `readStrip(pixels, width)`: the test pattern's strip
 * (crates/engine/src/video/pattern.rs: three rows of 32 blocks of 16×16 at
 * the top left — sequence, capture ms, inverted sequence) read from RGBA
 * pixels of the top 48 rows; null when the check row does not match.
 */
export const READ_STRIP = `(pixels, width) => {
  const rows = [0, 1, 2].map((r) => {
    let value = 0;
    for (let bit = 0; bit < 32; bit++) {
      const at = ((r * 16 + 8) * width + bit * 16 + 8) * 4;
      value = ((value << 1) | (pixels[at] > 128 ? 1 : 0)) >>> 0;
    }
    return value;
  });
  return rows[2] === (~rows[0] >>> 0) ? { sequence: rows[0], captured: rows[1] } : null;
}`;

const TICKS_PER_S = 100; // Linux USER_HZ
const PAGE_BYTES = 4096;

/** Every process now: pid → { ppid, cpu seconds so far, rss bytes, executable }. */
function processes() {
  const all = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      all.set(Number(name), {
        ppid: Number(fields[1]),
        cpu: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S,
        rss: Number(fields[21]) * PAGE_BYTES,
        comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
      });
    } catch {
      /* gone meanwhile */
    }
  }
  return all;
}

/** A process's proportional set size in bytes: its private pages plus its share of pages it shares (0 if unreadable). */
function pssOf(pid) {
  try {
    const kb = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1];
    return Number(kb ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** `root` and its descendants: total CPU seconds used so far, and memory — resident (shared pages counted in each
 * process) and proportional (shared pages split between the processes sharing them: what summing should use). */
export function processTree(root) {
  const all = processes();
  let cpu = 0;
  let rss = 0;
  let pss = 0;
  const names = [];
  const byName = {};
  for (const [pid, p] of all) {
    for (let q = pid; q > 1; q = all.get(q)?.ppid ?? 0) {
      if (q === root) {
        const share = pssOf(pid);
        cpu += p.cpu;
        rss += p.rss;
        pss += share;
        names.push(p.comm);
        const seen = byName[p.comm] ?? { cpu: 0, rss: 0, pss: 0 };
        byName[p.comm] = { cpu: seen.cpu + p.cpu, rss: seen.rss + p.rss, pss: seen.pss + share };
        break;
      }
    }
  }
  return { cpu, rss, pss, names, byName };
}

/** CPU seconds used so far by `root` and its descendants. */
export const treeCpu = (root) => processTree(root).cpu;

/** The newest process running `comm` (its name as /proc shows it), if any. */
export function newestPid(comm) {
  let newest = null;
  for (const [pid, p] of processes()) if (p.comm === comm && (newest === null || pid > newest)) newest = pid;
  return newest;
}

/**
 * Runs axe-core (WCAG 2.2 A and AA rules) on `page` as it is now; returns
 * the serious and critical violations, each as "rule: what (where)". The
 * source is handed to the page through DevTools, which the page's CSP does
 * not govern; nothing is added to the page itself.
 */
export async function accessibilityViolations(page) {
  const source = readFileSync(new URL("../node_modules/axe-core/axe.min.js", import.meta.url), "utf8");
  await page.evaluate(source);
  const results = await page.evaluate(async () => {
    // Colours are judged once they have settled: a theme just switched is
    // mid-transition for 150 ms (a flaky contrast failure in the lobby).
    await Promise.all(document.getAnimations().map((a) => a.finished.catch(() => undefined)));
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] },
    });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
    }));
  });
  return results
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.help} (${v.nodes.join(", ")})`);
}
