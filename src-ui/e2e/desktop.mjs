// End-to-end for the desktop app: the real `huddle` binary under Xvfb,
// driven through tauri-driver + WebKitWebDriver, in rooms on a real
// huddle-server, with a native `huddle-peer` (test pattern + tone) and
// headless Chromium running the browser UI as the other members. Sound goes
// to a PulseAudio null sink of the test's own and is recorded from its
// monitor.
//
//   HUDDLE_APP_BIN=… HUDDLE_SERVER_BIN=… HUDDLE_PEER_BIN=… node e2e/desktop.mjs
//
// Over 600 lines: one run, its steps in order on one app window; the
// rig (Xvfb, PulseAudio, tauri-driver) is desktop-rig.mjs.
//
// Every step waits for what a user would see (polling the window), never
// for a fixed time. Screenshots go to e2e/out/desktop-*.png.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect as tlsConnect } from "node:tls";
import { dirname, join as joinPath } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { DesktopRig, READ_TILE, connected, dominantTone, joinRoom } from "./desktop-rig.mjs";
import { CHROMIUM_FLAGS, CHROMIUM_PATH, freePort, startCall, startServer, steps, stop, waitFor } from "./lib.mjs";

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
const PEER_TONE_HZ = 660;

// --- the run ----------------------------------------------------------------------

/** The SHA-256 fingerprint (AB:CD:…) of the certificate a TLS server presents. */
function servedFingerprint(url) {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      { host: url.hostname, port: Number(url.port), rejectUnauthorized: false, servername: "localhost" },
      () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.end();
      },
    );
    socket.on("error", reject);
  });
}

const { step, summary } = steps();
let failed = false;
let app = null;
let browser = null;
let server = null;
let rig = null;
try {
  rig = await DesktopRig.start();
  const port = await freePort();
  server = await startServer(serverBin, port);
  const serverAddress = `127.0.0.1:${port}`;
  console.log(`desktop e2e: huddle-server on ${serverAddress}, display ${rig.env.DISPLAY}`);

  await step("the app starts and shows the lobby", async () => {
    app = await rig.open(appBin);
    await app.waitFor(`return !!document.querySelector('input[name=server]')`, { what: "the lobby" });
  });

  await step("a bad server address is a clear message, and correcting it joins", async () => {
    await joinRoom(app, { server: "exa mple:80", name: "Ada", room: "desk" });
    const message = await app.waitFor(`return document.querySelector('.form-error')?.textContent`, {
      what: "an error",
    });
    if (!/not a server address/.test(message)) throw new Error(`unexpected message: ${message}`);
    // An address where nothing answers: said within seconds, with why.
    const started = Date.now();
    await joinRoom(app, { server: `127.0.0.1:${await freePort()}`, name: "Ada", room: "desk" });
    const refused = await app.waitFor(
      `const t = document.querySelector('.form-error')?.textContent; return t && t.includes('Could not reach') && t`,
      {
        what: "the unreachable server's message",
      },
    );
    if (!/refused/.test(refused) || Date.now() - started > 10_000)
      throw new Error(`after ${Date.now() - started} ms: ${refused}`);
    console.log(`    unreachable: "${refused}" after ${Date.now() - started} ms`);
    await joinRoom(app, { server: serverAddress, name: "Ada", room: "desk" });
    await connected(app);
  });

  let peerId = null;
  let peerReport = null;
  await step(
    "the check before a call shows the app's own camera natively and measures its microphone; then a huddle-peer joins the call: the app shows its pattern and plays its tone",
    async () => {
      await app.clickButton("Start video call");
      await app.waitFor(`return Number(document.querySelector(".prejoin canvas")?.dataset.rendered ?? 0) > 3`, {
        what: "the check's own pictures",
      });
      await app.waitFor(`return document.querySelector("[data-testid=mic-level]")?.dataset.level !== ""`, {
        what: "the check's microphone level",
      });
      writeFileSync(joinPath(out, "desktop-prejoin.png"), await app.screenshot());
      await app.clickButton("Join now");
      await app.waitFor(`return window.huddle.state().inCall`, { what: "in the call" });
      const reportPath = joinPath(rig.scratch, "peer.json");
      const peer = rig.spawn(
        peerBin,
        [
          "--server",
          `ws://${serverAddress}/ws`,
          "--room",
          "desk",
          "--name",
          "Native",
          "--duration",
          "14s",
          "--tone-hz",
          String(PEER_TONE_HZ),
          "--size",
          "640x360",
          "--udp",
          "127.0.0.1:0",
          "--report",
          reportPath,
        ],
        { stdio: ["ignore", "ignore", "inherit"] },
      );
      const exited = new Promise((r) => peer.once("exit", r));
      peerId = await app.waitFor(
        `return window.huddle.state().members.find((m) => m.name === 'Native' && m.in_call)?.id`,
        { what: "the peer in the call" },
      );
      const first = await app.waitFor(
        `return (${READ_TILE})(arguments[0])`,
        { what: "the pattern on the canvas" },
        peerId,
      );
      // Pictures keep coming and the strip keeps advancing.
      const later = await app.waitFor(
        `const s = (${READ_TILE})(arguments[0]); return s && s.sequence >= arguments[1] + 30 ? s : null;`,
        { what: "30 more pictures" },
        peerId,
        first.sequence,
      );
      console.log(
        `    canvas (${later.renderer}) ${later.width}×${later.height}: strip ${first.sequence} → ${later.sequence}, ${later.rendered} pictures drawn`,
      );
      // What the null sink plays, its first half second aside (the monitor warms up).
      const tone = dominantTone((await rig.record(2.5)).subarray(24_000));
      console.log(
        `    null sink monitor: rms ${tone.rms.toFixed(0)}, dominant ${tone.hz} Hz (${(tone.share * 100).toFixed(0)} % of the power)`,
      );
      if (tone.rms < 300 || tone.hz !== PEER_TONE_HZ)
        throw new Error(`the app does not play the peer's ${PEER_TONE_HZ} Hz tone: ${JSON.stringify(tone)}`);
      const self = await app.waitFor(`const t = window.huddle.tiles().self; return t && t.rendered > 10 && t;`, {
        what: "the self view",
      });
      console.log(`    self view: ${self.rendered} pictures ${self.width}×${self.height}`);
      writeFileSync(joinPath(out, "desktop-call.png"), await app.screenshot());
      const code = await exited;
      peerReport = JSON.parse(readFileSync(reportPath, "utf8"));
      if (code !== 0) throw new Error(`huddle-peer exit ${code}`);
    },
  );

  await step("the huddle-peer decodes the app's own test-pattern video and hears its tone", async () => {
    const fromApp = Object.values(peerReport.peers)[0];
    console.log(
      `    huddle-peer got ${fromApp?.frames} frames ${fromApp?.width}×${fromApp?.height}, ${fromApp?.audio_ms} ms audio at ${fromApp?.audio_dominant_hz} Hz`,
    );
    if (!fromApp || fromApp.frames < 60) throw new Error(`too few frames from the app: ${JSON.stringify(fromApp)}`);
    if (fromApp.audio_dominant_hz !== 440) throw new Error(`the app's tone not heard: ${JSON.stringify(fromApp)}`);
  });

  // --- with the browser UI in headless Chromium ---------------------------
  browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_FLAGS,
  });
  // `ignoreHTTPSErrors` stands for the guest clicking through the browser's
  // one-time warning about the hosted room's self-signed certificate.
  const context = await browser.newContext({ permissions: ["camera", "microphone"], ignoreHTTPSErrors: true });
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
    await app.waitFor(
      `return [...document.querySelectorAll('[data-testid=message]')].some((m) => m.textContent.includes('hello from the browser'))`,
      { what: "the browser's message" },
    );
    const input = await app.find("[aria-label=Message]");
    await app.type(input, "hello from the desktop");
    await app.command("POST", `/element/${input}/value`, { text: "\uE007" });
    await grace.getByTestId("message").filter({ hasText: "hello from the desktop" }).first().waitFor();
  });

  await step("a link in the chat opens in the system's browser; the window stays on the app", async () => {
    await grace.getByLabel("Message", { exact: true }).fill("agenda at https://example.org/agenda?week=49");
    await grace.getByLabel("Message", { exact: true }).press("Enter");
    await app.waitFor(`return !!document.querySelector('a[href="https://example.org/agenda?week=49"]')`, {
      what: "the link in the app's chat",
    });
    const link = await app.find(`a[href="https://example.org/agenda?week=49"]`);
    const before = await app.execute("return location.href");
    await app.click(link);
    let opened = [];
    for (let i = 0; i < 100 && !opened.includes("https://example.org/agenda?week=49"); i++) {
      await new Promise((r) => setTimeout(r, 100));
      opened = rig.openedLinks();
    }
    if (!opened.includes("https://example.org/agenda?week=49"))
      throw new Error(`the system's browser was not asked: ${JSON.stringify(opened)}`);
    const after = await app.execute("return location.href");
    if (after !== before) throw new Error(`the window left the app: ${before} → ${after}`);
    console.log(`    opened outside: ${opened.at(-1)}; the window stays on ${after}`);
  });

  await step("a browser joins the call: each side shows the other's video", async () => {
    await startCall(grace);
    const graceId = await grace.evaluate(() => window.huddle.state().self.id);
    const drawn = async () =>
      (await app.execute(`return window.huddle.tiles()[arguments[0]]?.rendered ?? 0`, graceId)) ?? 0;
    await app.waitFor(
      `return (window.huddle.tiles()[arguments[0]]?.rendered ?? 0) > 0`,
      { what: "Chromium's first picture" },
      graceId,
    );
    const first = await drawn();
    await app.waitFor(
      `return window.huddle.tiles()[arguments[0]].rendered >= arguments[1] + 20`,
      { what: "20 more of Chromium's pictures" },
      graceId,
      first,
    );
    // Chromium's fake camera is a moving colour picture: not one flat colour.
    const spread = await app.execute(
      `
      const canvas = document.querySelector('canvas[data-member="' + arguments[0] + '"]');
      const probe = document.createElement('canvas');
      probe.width = 64; probe.height = 64;
      const ctx = probe.getContext('2d');
      ctx.drawImage(canvas, 0, 0, 64, 64);
      const d = ctx.getImageData(0, 0, 64, 64).data;
      let min = 255, max = 0;
      for (let i = 0; i < d.length; i += 4) { min = Math.min(min, d[i + 1]); max = Math.max(max, d[i + 1]); }
      return { min, max, width: canvas.width, height: canvas.height };`,
      graceId,
    );
    console.log(`    app draws Chromium's camera ${spread.width}×${spread.height}, green ${spread.min}–${spread.max}`);
    if (spread.max - spread.min < 40) throw new Error(`Chromium's picture looks flat: ${JSON.stringify(spread)}`);
    await waitFor(
      grace,
      (id) => {
        const s = window.huddle.state().stats[id];
        window.__first ??= s?.framesDecoded;
        return s && s.width > 0 && s.framesDecoded > (window.__first ?? Infinity) + 20;
      },
      appId,
      { timeout: 30_000, polling: 500 },
    );
    const seen = await grace.evaluate((id) => window.huddle.state().stats[id], appId);
    console.log(
      `    Chromium decodes the app: ${seen.codec} ${seen.width}×${seen.height}, ${seen.framesDecoded} frames`,
    );
    writeFileSync(joinPath(out, "desktop-call-browser.png"), await app.screenshot());
    await grace.screenshot({ path: joinPath(out, "desktop-call-browser-side.png") });
  });

  await step(
    "picture in picture: a second, small window shows the spotlit member's pictures (Chromium) and its name; closing it from the call closes the window",
    async () => {
      const graceId = await grace.evaluate(() => window.huddle.state().self.id);
      const main = (await app.handles())[0];
      await app.clickButton("Picture in picture");
      let pip = null;
      for (let i = 0; i < 100 && !pip; i++) {
        pip = (await app.handles()).find((h) => h !== main) ?? null;
        if (!pip) await new Promise((r) => setTimeout(r, 100));
      }
      if (!pip) throw new Error("no second window appeared");
      await app.switchTo(pip);
      try {
        const shown = await app.waitFor(
          `const w = document.querySelector("[data-testid=pip-window]");
         const c = w && w.querySelector("canvas");
         return w && w.dataset.member === arguments[0] && Number(c.dataset.rendered ?? 0) > 10 && { name: w.textContent, width: c.width, height: c.height, rendered: Number(c.dataset.rendered) };`,
          { what: "Chromium's pictures in the picture-in-picture window" },
          graceId,
        );
        console.log(
          `    picture in picture: ${shown.rendered} pictures ${shown.width}×${shown.height} of "${shown.name}"`,
        );
        if (shown.name !== "Grace") throw new Error(`the window names ${JSON.stringify(shown.name)}`);
        writeFileSync(joinPath(out, "desktop-pip.png"), await app.screenshot());
      } finally {
        await app.switchTo(main);
      }
      await app.clickButton("Close picture in picture");
      for (let i = 0; i < 100 && (await app.handles()).length > 1; i++) await new Promise((r) => setTimeout(r, 100));
      const left = (await app.handles()).length;
      if (left !== 1) throw new Error(`${left} windows after closing picture in picture`);
    },
  );

  await step(
    "the app shares its screen natively: the browser sees it shared and decodes the whole X screen",
    async () => {
      const decoded = (widths) =>
        waitFor(
          grace,
          ([id, ws]) => {
            const s = window.huddle.state().stats[id];
            return s && ws.includes(s.width) && s.framesDecoded > 0 && s;
          },
          [appId, widths],
          { timeout: 30_000, polling: 250 },
        );
      await app.clickButton("Share screen");
      await waitFor(
        grace,
        (id) => window.huddle.state().members.find((m) => m.id === id)?.media.screen === true,
        appId,
        { timeout: 15_000 },
      );
      // The display is Xvfb's 1280×800 screen, the app's window on it.
      // A shared screen keeps its size whatever the CPU or the path.
      const shared = await decoded([1280]);
      console.log(
        `    Chromium decodes the shared screen: ${shared.width}×${shared.height}, ${shared.framesDecoded} frames`,
      );
      if (shared.height !== 800) throw new Error(`not the whole screen: ${JSON.stringify(shared)}`);
      await app.waitFor(`const t = window.huddle.tiles().self; return t && t.width === 1280 && t;`, {
        what: "the shared screen in the self view",
      });
      writeFileSync(joinPath(out, "desktop-screen-share.png"), await app.screenshot());
      await grace.screenshot({ path: joinPath(out, "desktop-screen-share-browser-side.png") });
      // Stopping goes back to the camera (the 640×480 test pattern), same
      // track — at half size if the app's encoder found the CPU overused
      // (or the path narrow) meanwhile.
      await app.clickButton("Stop sharing");
      await waitFor(
        grace,
        (id) => window.huddle.state().members.find((m) => m.id === id)?.media.screen === false,
        appId,
        { timeout: 15_000 },
      );
      const camera = await decoded([640, 320]);
      console.log(`    …and the camera again after stopping: ${camera.width}×${camera.height}`);
    },
  );

  await step(
    "a lost server shows Reconnecting… and the app comes back (into its call) when it returns; a message typed meanwhile shows as sending and goes out",
    async () => {
      await stop(server, "SIGKILL");
      await app.waitFor(`return document.querySelector('[data-testid=connection]')?.textContent === 'Reconnecting…'`, {
        what: "Reconnecting…",
      });
      const input = await app.find("[aria-label=Message]");
      await app.type(input, "typed while the server was down");
      await app.command("POST", `/element/${input}/value`, { text: "\uE007" });
      await app.waitFor(
        `return [...document.querySelectorAll('[data-testid=pending-message]')].some((m) => m.textContent.includes('typed while the server was down') && m.textContent.includes('sending'))`,
        { what: "the message shown as sending" },
      );
      server = await startServer(serverBin, port);
      await connected(app, "Connected again");
      // The server's echo confirms it: delivered, no longer pending.
      await app.waitFor(
        `return !document.querySelector('[data-testid=pending-message]') && [...document.querySelectorAll('[data-testid=message]')].some((m) => m.textContent.includes('typed while the server was down'))`,
        { what: "the message delivered after the return" },
      );
      // The call comes back too (it may a moment after the message: the
      // last CI run clicked for "Leave call" before it was there).
      await app.waitFor(
        `return [...document.querySelectorAll('button')].some((b) => b.textContent.includes('Leave call'))`,
        {
          what: "the app back in the call",
        },
      );
    },
  );

  await step("settings survive a restart: server, name and recent rooms", async () => {
    await app.clickButton("Leave call");
    await app.clickButton("Leave room");
    await app.waitFor(`return !!document.querySelector('input[name=server]')`, { what: "the lobby" });
    await app.close();
    app = await rig.open(appBin);
    const seen = await app.waitFor(
      `const v = (n) => document.querySelector('input[name=' + n + ']')?.value;
       const chips = [...document.querySelectorAll('.chip')].map((c) => c.textContent);
       return v('server') && { server: v('server'), name: v('name'), recent: chips };`,
      { what: "the lobby, filled in" },
    );
    console.log(`    after restart: ${JSON.stringify(seen)}`);
    if (seen.server !== serverAddress || seen.name !== "Ada" || !seen.recent.includes("desk"))
      throw new Error(`not remembered: ${JSON.stringify(seen)}`);
  });

  await step("a wrong room password is a clear message; the right one joins", async () => {
    await grace.goto(`http://${serverAddress}/`);
    await grace.getByLabel("Your name").fill("Grace");
    await grace.getByLabel("Room", { exact: true }).fill("locked");
    await grace.getByLabel(/Password/).fill("s3cret");
    await grace.getByRole("button", { name: "Join room" }).click();
    await grace.getByTestId("connection").filter({ hasText: "Connected" }).waitFor();
    await joinRoom(app, { name: "Ada", room: "locked", password: "wrong" });
    const message = await app.waitFor(`return document.querySelector('.form-error')?.textContent`, {
      what: "the password error",
    });
    if (!/Wrong password/.test(message)) throw new Error(`unexpected message: ${message}`);
    await joinRoom(app, { name: "Ada", room: "locked", password: "s3cret" });
    await connected(app);
  });

  await step("a huddle:// link opens the join screen with its server and room", async () => {
    await app.close();
    const link = `huddle://join?server=${encodeURIComponent(`http://${serverAddress}`)}&room=${encodeURIComponent("from a link")}`;
    app = await rig.open(appBin, [link]);
    const seen = await app.waitFor(
      `const v = (n) => document.querySelector('input[name=' + n + ']')?.value; return v('room') && { server: v('server'), room: v('room') };`,
      { what: "the join screen, filled in" },
    );
    if (seen.server !== `ws://${serverAddress}/ws` || seen.room !== "from a link")
      throw new Error(`not opened: ${JSON.stringify(seen)}`);
    await app.clickButton("Join room");
    await connected(app);
  });

  await step(
    "a huddle:// link opened while the app runs is handed to it: the second launch exits, the join screen follows the room",
    async () => {
      const link = `huddle://join?server=${encodeURIComponent(serverAddress)}&room=handed`;
      const second = rig.spawn(appBin, [link], { env: rig.env, stdio: ["ignore", "ignore", "inherit"] });
      const code = await new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error("the second launch did not hand over and exit within 20 s")),
          20_000,
        );
        second.once("exit", (c) => (clearTimeout(timer), resolve(c)));
      });
      if (code !== 0) throw new Error(`the second launch exited with ${code}`);
      // In a room, the link waits for the room to be left.
      const notice = await app.waitFor(
        `return window.huddle.state().error?.code === 'link' && window.huddle.state().error.message`,
        { what: "the link's notice" },
      );
      console.log(`    in a room: "${notice}"`);
      await app.clickButton("Leave room");
      const seen = await app.waitFor(
        `const v = (n) => document.querySelector('input[name=' + n + ']')?.value; return v('room') === 'handed' && { server: v('server'), room: v('room') };`,
        { what: "the handed link's join screen" },
      );
      if (seen.server !== `ws://${serverAddress}/ws`) throw new Error(`not opened: ${JSON.stringify(seen)}`);
      await app.clickButton("Join room");
      await connected(app);
    },
  );

  await step("Host a room: the app serves the room itself and a browser joins by its link", async () => {
    await app.clickButton("Leave room");
    await app.clickButton("Host a room");
    await app.type(await app.find("input[name=room]"), "hosted");
    // The links follow the room name as it is typed: wait for the whole of it.
    const web = await app.waitFor(
      `return [...document.querySelectorAll('[data-testid=hosting] input')].map((i) => i.value).find((v) => v.startsWith('http') && v.includes('/r/hosted#'))`,
      { what: "the hosting links" },
    );
    console.log(`    the app hosts at ${web.replace(/#token=.*/, "#token=…")}`);
    if (!web.startsWith("https://")) throw new Error(`the hosted room is not served over HTTPS: ${web}`);
    // The fingerprint beside the links is the certificate the server presents.
    const shown = await app.waitFor(
      `return document.querySelector('[data-testid=hosting] [data-testid=fingerprint] code')?.textContent`,
      { what: "the fingerprint" },
    );
    const served = await servedFingerprint(new URL(web));
    if (shown !== served) throw new Error(`the app shows ${shown}, the server presents ${served}`);
    console.log(`    certificate SHA-256 ${served.slice(0, 23)}… shown beside the links`);
    const token = new URL(web).hash.match(/^#token=([A-Za-z0-9]{22,})$/)?.[1];
    if (!token) throw new Error(`the browser link carries no access token: ${web}`);
    await app.clickButton("Join room");
    await connected(app);
    // Without the token the hosted server lets nobody in (from its own page too).
    const bare = web.replace(/#.*/, "");
    await grace.goto(bare);
    const refused = await grace.evaluate(
      (url) =>
        new Promise((resolve) => {
          const ws = new WebSocket(url);
          ws.onopen = () => ws.send(JSON.stringify({ type: "join", v: 1, room: "hosted", name: "Mallory" }));
          ws.onmessage = (e) => resolve(JSON.parse(e.data).code ?? JSON.parse(e.data).type);
          ws.onerror = () => resolve("socket error");
        }),
      bare.replace(/^http/, "ws").replace(/\/r\/.*$/, "/ws"),
    );
    if (refused !== "forbidden") throw new Error(`a client without the token got ${refused}`);
    // Opened as people open a link: in a fresh page.
    await grace.goto("about:blank");
    await grace.goto(web);
    await grace.getByLabel("Your name").fill("Grace");
    // The token is taken out of the address bar at once.
    if (grace.url().includes("token")) throw new Error(`the token stays in the address bar: ${grace.url()}`);
    if (!(await grace.evaluate(() => window.isSecureContext)))
      throw new Error("the hosted page is not a secure context: no camera or microphone for guests");
    await grace.getByRole("button", { name: "Join room" }).click();
    await grace.getByTestId("connection").filter({ hasText: "Connected" }).waitFor();
    await app.waitFor(`return window.huddle.state().members.some((m) => m.name === 'Grace')`, {
      what: "Grace in the hosted room",
    });
    // Inside the room the links stay reachable, under Invite.
    await app.clickButton("Invite");
    const inside = await app.waitFor(`return document.querySelector('[data-testid=invite-app] input')?.value`, {
      what: "the links inside the room",
    });
    if (!inside.includes("&fp=") || !inside.includes("&token="))
      throw new Error(`the app link lacks its pin or token: ${inside}`);
    await app.clickButton("Invite");
  });
  await step("someone rings while the window is elsewhere: a desktop notification says who", async () => {
    rig.focusElsewhere();
    await app.waitFor(`return window.huddle.state().desktop.focused === false`, {
      what: "the shell saying the window lost the focus",
    });
    const adaRow = grace.locator(".member", { hasText: "Ada" });
    await adaRow.hover();
    await adaRow.getByRole("button", { name: "Ring Ada" }).click();
    await app.waitFor(`return window.huddle.state().prompt?.kind === 'ring'`, { what: "the ring in the window" });
    let history = "";
    for (let i = 0; i < 150 && !history.includes("Grace is calling"); i++) {
      await new Promise((r) => setTimeout(r, 100));
      history = rig.notificationHistory() ?? "";
    }
    if (!history.includes("Grace is calling"))
      throw new Error(`no notification reached the notification service: ${history.slice(0, 400)}`);
    console.log(
      `    dunst shows "Grace is calling" (${history.includes("hosted") ? "with" : "without"} the room's name)`,
    );
    await app.clickButton("Decline");
    // The caller was alone in the call it rang from: the decline ends it.
    await grace.locator(".system-line", { hasText: "Ada declined your call" }).waitFor();
    await grace.getByTestId("tile-self").waitFor({ state: "detached" });
    await app.waitFor(`return window.huddle.state().prompt === null`, { what: "no prompt left in the app" });
  });
  await step(
    'the app rings a browser: "Calling Grace…" with Cancel, Grace joins the app\'s call, each draws the other',
    async () => {
      // Keyboard-reachable: the focused row shows its actions.
      await app.execute(`document.querySelector("button[aria-label='Ring Grace']").focus()`);
      await app.click(await app.find("button[aria-label='Ring Grace']"));
      await app.waitFor(
        `return document.querySelector("[data-testid=tile-calling]")?.textContent.includes("Calling Grace…")`,
        { what: "the Calling tile" },
      );
      const prompt = grace.getByRole("alertdialog").filter({ hasText: "Ada is calling you" });
      await prompt.waitFor();
      writeFileSync(joinPath(out, "desktop-ringing.png"), await app.screenshot());
      await prompt.getByRole("button", { name: "Join" }).click();
      await app.waitFor(
        `return !document.querySelector("[data-testid=tile-calling]") && window.huddle.state().call?.members.length === 2`,
        { what: "Grace in the app's call" },
      );
      const graceId = await grace.evaluate(() => window.huddle.state().self.id);
      await waitFor(grace, () => Object.values(window.huddle.state().stats).some((s) => s.framesDecoded > 10), null, {
        timeout: 30_000,
      });
      // A guest over HTTPS has a camera: the app draws it.
      await app.waitFor(
        `return (window.huddle.tiles()[arguments[0]]?.rendered ?? 0) > 10`,
        { what: "Grace's pictures in the app" },
        graceId,
      );
      const started = await grace.locator(".system-line", { hasText: "started a call" }).allTextContents();
      if (started.at(-1) !== "Ada started a call") throw new Error(`calls started: ${JSON.stringify(started)}`);
      await app.clickButton("Leave call");
      await grace.getByRole("button", { name: "Leave call", exact: true }).click();
      await app.waitFor(`return window.huddle.state().call === null && window.huddle.state().prompt === null`, {
        what: "the call over in the app, no prompt",
      });
    },
  );
  await step("Stop hosting: the hosted server ends and its link stops working", async () => {
    await app.clickButton("Leave room");
    await app.clickButton("Stop hosting");
    await app.waitFor(`return window.huddle.state().desktop.hosting === null`, { what: "hosting stopped" });
    await grace
      .getByTestId("connection")
      .filter({ hasText: /Reconnecting|Offline|Lost/ })
      .first()
      .waitFor();
    const port = new URL(await grace.evaluate(() => location.href)).port;
    const alive = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      () => true,
      () => false,
    );
    if (alive) throw new Error("the hosted server still answers after Stop hosting");
  });
} catch (error) {
  failed = true;
  console.error(error);
  if (app) writeFileSync(joinPath(out, "desktop-failure.png"), await app.screenshot().catch(() => Buffer.alloc(0)));
} finally {
  await app?.close();
  await browser?.close();
  await stop(server);
  await rig?.stop();
}
console.log(`desktop e2e: ${summary()}${failed ? " (stopped at the first failure)" : ""}; screenshots in ${out}`);
process.exit(failed ? 1 : 0);
