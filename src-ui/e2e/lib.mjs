// What the end-to-end runs share: free ports, a real huddle-server, steps
// with a summary, and reading the test pattern's strip off a picture.

import { spawn } from "node:child_process";
import { createServer } from "node:net";

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

/** Runs `bin` (a huddle-server) on 127.0.0.1:`port`; resolves once /healthz answers. */
export async function startServer(bin, port, extraArgs = []) {
  const child = spawn(bin, ["--listen", `127.0.0.1:${port}`, "--log-level", "warn", ...extraArgs], { stdio: ["ignore", "inherit", "inherit"] });
  for (let i = 0; i < 200; i++) {
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
