// The network lab's browser peer: headless Chromium joins a room's call
// through the UI the lab's huddle-server serves, sends its fake camera (the
// busy test pattern from a Y4M file, as the native peer sends), and writes a
// report of what it presented from each other member (by name), in the fields
// huddle-peer's --report uses (per-second frame rate, the bitrate in, and
// freezes by WebRTC's definition, from the times pictures were presented).
//
// Run by `cargo xtask netlab` inside a side's network namespace:
//   node e2e/netlab-peer.mjs SERVER_URL ROOM NAME SECONDS REPORT.json [CAMERA.y4m]

import { writeFileSync } from "node:fs";
import { chromium } from "playwright-core";
import { CHROMIUM_FLAGS, CHROMIUM_PATH, KEEP_PCS, startCall } from "./lib.mjs";

const [serverUrl, room, name, secondsText, reportPath, y4m] = process.argv.slice(2);
if (!reportPath) {
  console.error("usage: netlab-peer.mjs SERVER_URL ROOM NAME SECONDS REPORT.json [CAMERA.y4m]");
  process.exit(2);
}
const started = Date.now();
const seconds = Number(secondsText);

/** As huddle-engine's quality.rs: a gap longer than max(3 × mean, mean +
 * 150 ms), the mean over the 30 gaps before it; a stream that stopped is
 * frozen until `until`; pictures after `until` are not looked at. */
function freezes(arrivals, until) {
  const out = { count: 0, total_ms: 0, longest_ms: 0 };
  const gaps = [];
  const note = (gap) => {
    if (gaps.length === 0) return;
    const window = gaps.slice(-30);
    const mean = window.reduce((a, b) => a + b, 0) / window.length;
    if (gap > Math.max(3 * mean, mean + 150)) {
      out.count += 1;
      out.total_ms += gap;
      out.longest_ms = Math.max(out.longest_ms, gap);
    }
  };
  arrivals = arrivals.filter((t) => t <= until);
  for (let i = 1; i < arrivals.length; i++) {
    const gap = arrivals[i] - arrivals[i - 1];
    note(gap);
    gaps.push(gap);
  }
  if (arrivals.length > 0) note(until - arrivals[arrivals.length - 1]);
  out.total_ms = Math.round(out.total_ms);
  out.longest_ms = Math.round(out.longest_ms);
  return out;
}

const browser = await chromium.launch({
  executablePath: CHROMIUM_PATH,
  headless: true,
  args: [
    ...CHROMIUM_FLAGS,
    // The lab's server is plain HTTP on a private address: let the page
    // have a camera there, as it would over HTTPS.
    `--unsafely-treat-insecure-origin-as-secure=${serverUrl}`,
    ...(y4m ? [`--use-file-for-fake-video-capture=${y4m}`] : []),
    "--autoplay-policy=no-user-gesture-required",
  ],
});
const report = { peers: {} };
try {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    permissions: ["camera", "microphone"],
  });
  const page = await context.newPage();
  // Every peer connection the page makes, for the log's video figures.
  await page.addInitScript(KEEP_PCS);
  // The side's log (beside its report): the page's notes, and each change
  // of the signaling status and of a link's connection state, timed.
  const at = () => ((Date.now() - started) / 1000).toFixed(1);
  page.on("console", (m) => {
    if (["debug", "info", "warning", "error"].includes(m.type())) console.error(`${at()} s page: ${m.text()}`);
  });
  let lastStates = "";
  // The page, loaded again if its join form does not come up: a load the
  // browser aborted (a network change in the side's namespace while the
  // lab was being set up) leaves a page without its script.
  for (let attempt = 1; ; attempt++) {
    const loaded = await page
      .goto(`${serverUrl}/`)
      .then(() => page.getByLabel("Your name").waitFor({ timeout: 10_000 }))
      .then(() => true)
      .catch((error) => {
        if (attempt === 3) throw error;
        console.error(`${at()} s the page did not load (attempt ${attempt}): ${String(error).split("\n")[0]}`);
        return false;
      });
    if (loaded) break;
  }
  await page.getByLabel("Your name").fill(name);
  await page.getByLabel("Room", { exact: true }).fill(room);
  await page.getByRole("button", { name: "Join room" }).click();
  await page.getByTestId("connection").filter({ hasText: "Connected" }).waitFor();
  // The first to arrive starts the call; whoever comes later joins it —
  // from the header, or from the "started a call" prompt if that came first
  // (it covers the header's button: a click there waited 30 s, and the
  // call had not started by the lab's network change — 4 runs in ~45).
  for (let joined = false; !joined;) {
    const prompt = page.getByRole("alertdialog").getByRole("button", { name: "Join", exact: true });
    if (await prompt.isVisible()) {
      await prompt.click();
      joined = true;
      console.error(`${at()} s joined the call from its prompt`);
    } else {
      joined = await page
        .getByRole("button", { name: /^(Start video call|Join call)/ })
        .waitFor({ timeout: 2000 })
        // Briefly: the other's "started a call" prompt may come up over
        // the button meanwhile (then it is joined from there).
        .then(() => startCall(page, undefined, { timeout: 2000 }))
        .then(() => console.error(`${at()} s joined the call from the header`))
        .then(() => true)
        .catch(async (error) => {
          // Why joining did not work, for the log: the error, and what
          // the page showed then (beside the report).
          console.error(`${at()} s not in the call yet: ${String(error).split("\n")[0]}`);
          await page.screenshot({ path: reportPath.replace(/\.json$/, `-${at()}s.png`) }).catch(() => undefined);
          return false;
        });
    }
  }
  // The pictures are judged over `seconds`; the page stays a second longer,
  // as the native peers do, so that a member who leaves a little earlier
  // on its own clock is not taken for frozen at the end.
  const untilMs = started + (seconds + 1) * 1000;
  await page
    .getByTestId("tile-remote")
    .first()
    .locator("video")
    .waitFor({ timeout: Math.max(1000, untilMs - Date.now()) });
  // Every presented picture's wall-clock time per remote tile (a mesh has
  // several; a tile may come later, or get a new <video>), with the name
  // of whose it is — the other side may leave first (it stops on its own
  // clock), so names are noted as tiles appear.
  const watch = () =>
    page.evaluate(() => {
      window.__tiles ??= {};
      for (const tile of document.querySelectorAll('[data-testid="tile-remote"]')) {
        const id = tile.dataset.peer;
        const video = tile.querySelector("video");
        const entry = window.__tiles[id];
        // A new <video>, or a new stream in it (loading one drops the
        // callbacks asked for before): count its pictures from here on.
        if (!video || (entry?.video === video && entry.source === video.srcObject)) continue;
        const name = window.huddle.state().members.find((m) => m.id === id)?.name ?? null;
        if (entry) console.info(`netlab: ${id}'s tile has a new ${entry.video === video ? "stream" : "<video>"}`);
        const next = entry ?? { arrivals: [], size: [0, 0], name };
        const chain = {};
        Object.assign(next, { video, source: video.srcObject, chain });
        window.__tiles[id] = next;
        const onFrame = () => {
          if (next.chain !== chain) return;
          next.arrivals.push(Date.now());
          next.size = [video.videoWidth, video.videoHeight];
          video.requestVideoFrameCallback(onFrame);
        };
        video.requestVideoFrameCallback(onFrame);
      }
    });
  await watch();
  // The bitrate in from each member, each second.
  const timelines = {};
  const audio = {};
  while (Date.now() < untilMs) {
    await new Promise((r) => setTimeout(r, 1000));
    await watch();
    const [stats, states, pictures] = await page.evaluate(() => {
      const s = window.huddle.state();
      const links = Object.entries(s.remote).map(([id, r]) => `${id} ${r.connection}`);
      const pictures = Object.entries(s.stats).map(
        ([id, st]) => `${id} decoded ${st.framesDecoded} shown ${window.__tiles?.[id]?.arrivals.length ?? 0}`,
      );
      return [s.stats, [s.status, ...links].join(", "), pictures.join(", ")];
    });
    if (process.env.NETLAB_PICTURES) {
      // What the video receivers and senders did, for a freeze's reason.
      const video = await page.evaluate(async () => {
        const out = [];
        for (const pc of window.__pcs.filter((p) => p.connectionState !== "closed")) {
          for (const s of (await pc.getStats()).values()) {
            if (s.type === "inbound-rtp" && s.kind === "video")
              out.push(
                `in: keyframes ${s.keyFramesDecoded} decoded ${s.framesDecoded} plis ${s.pliCount} nacks ${s.nackCount} lost ${s.packetsLost}`,
              );
            if (s.type === "outbound-rtp" && s.kind === "video")
              out.push(`out: keyframes ${s.keyFramesEncoded} plis ${s.pliCount} nacks ${s.nackCount}`);
          }
        }
        return out.join("; ");
      });
      console.error(`${at()} s ${pictures}; ${video}`);
    }
    if (states !== lastStates) console.error(`${at()} s ${states}`);
    lastStates = states;
    for (const [id, s] of Object.entries(stats)) {
      (timelines[id] ??= []).push([(Date.now() - started) / 1000, s.bitrateInKbps]);
      audio[id] = s;
    }
  }
  const tiles = await page.evaluate(() =>
    Object.fromEntries(
      Object.entries(window.__tiles).map(([id, t]) => [id, { arrivals: t.arrivals, size: t.size, name: t.name }]),
    ),
  );
  // How each remote tile ends, for the log: what was decoded and what the
  // <video> shows (a stream that arrives but is never presented shows here).
  const ending = await page.evaluate(() =>
    [...document.querySelectorAll('[data-testid="tile-remote"]')].map((tile) => {
      const video = tile.querySelector("video");
      const stats = window.huddle.state().stats[tile.dataset.peer];
      const tracks = video?.srcObject?.getTracks?.() ?? [];
      return {
        peer: tile.dataset.peer,
        decoded: stats?.framesDecoded,
        fps: stats?.fps,
        video: video && {
          readyState: video.readyState,
          paused: video.paused,
          size: [video.videoWidth, video.videoHeight],
        },
        tracks: tracks.map((t) => `${t.kind} ${t.id} ${t.readyState}${t.muted ? " muted" : ""}`),
      };
    }),
  );
  console.error(`${at()} s at the end: ${JSON.stringify(ending)}`);
  for (const [peer, { arrivals, size, name: from }] of Object.entries(tiles)) {
    const since = arrivals.map((t) => t - started);
    const perSecond = new Array(seconds).fill(0);
    for (const t of since) {
      const s = Math.floor(t / 1000);
      if (s >= 0 && s < seconds) perSecond[s] += 1;
    }
    const a = audio[peer];
    report.peers[peer] = {
      name: from,
      fps_per_second: perSecond,
      timeline: timelines[peer] ?? [],
      freezes: freezes(since, seconds * 1000),
      width: size[0],
      height: size[1],
      // NetEQ's figures, named as huddle-peer names its own.
      audio_concealed_share: a?.audioConcealedPercent !== undefined ? a.audioConcealedPercent / 100 : null,
      audio_delay_ms: a?.audioDelayMs ?? null,
      keyframes_received: a?.keyframesDecoded ?? null,
      keyframes_requested: a?.keyframesRequested ?? null,
    };
  }
} finally {
  writeFileSync(reportPath, JSON.stringify(report));
  await browser.close();
}
