// Attacks a room member can try on the others' media, performed for real:
// a hostile member speaks raw protocol v1 over its own WebSocket and makes
// its offers with a real RTCPeerConnection in headless Chromium; the
// victims are the browser UI (another Chromium context) and a native
// `huddle-peer`, both in a call, against a real huddle-server.
//
//   HUDDLE_SERVER_BIN=… HUDDLE_PEER_BIN=… node e2e/attack.mjs
//
// Each attack is paired with a control: the same offer, made once the
// attacker is legitimately in the call, is answered and decoded — so a
// refusal seen here is the rule at work, not a broken harness. Prints a
// table (attack, expected, observed) and exits 1 if any row fails.

import { spawn } from "node:child_process";
import { CHROMIUM_FLAGS, CHROMIUM_PATH, freePort, startCall, startServer, stop, waitFor } from "./lib.mjs";
import { chromium } from "playwright-core";

const serverBin = process.env.HUDDLE_SERVER_BIN;
const peerBin = process.env.HUDDLE_PEER_BIN;
if (!serverBin || !peerBin) {
  console.error("attack: set HUDDLE_SERVER_BIN and HUDDLE_PEER_BIN");
  process.exit(2);
}
const TIMEOUT = 30_000;
/** How long a refused offer is watched for an answer or a decoded frame.
 * The controls are answered and decode within ~1 s on this machine. */
const WATCH_MS = 6_000;

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const wsUrl = `ws://127.0.0.1:${port}/ws`;
const server = await startServer(serverBin, port);
const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_FLAGS });

const rows = [];
function row(attack, expected, observed, ok) {
  rows.push({ attack, expected, observed, ok });
  console.log(`  ${ok ? "✓" : "✗"} ${attack}: ${observed}`);
}

/**
 * Page-side attacker: joins `room` as `name` over a raw socket and can send
 * receive-only offers (real RTCPeerConnections) to a member, counting the
 * answers it gets and the frames it decodes.
 */
async function attacker(room, name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (e) => console.log(`  [attacker] page error: ${e.message}`));
  await page.goto(`${base}/healthz`);
  await page.evaluate(
    ({ wsUrl, room, name }) =>
      new Promise((resolve, reject) => {
        const a = (window.attack = {
          answers: 0,
          offersFromVictim: 0,
          pcs: [],
          ws: new WebSocket(wsUrl),
          peers: [],
          self: null,
        });
        a.send = (m) => a.ws.send(JSON.stringify(m));
        a.ws.onopen = () => a.send({ type: "join", v: 1, room, name, client: "bot" });
        a.ws.onerror = () => reject(new Error("socket error"));
        a.ws.onmessage = async (event) => {
          const m = JSON.parse(event.data);
          if (m.type === "joined") {
            a.self = m.self.id;
            a.peers = m.room.peers;
            resolve();
          } else if (m.type === "peer_joined" || m.type === "peer_updated") {
            a.peers = [...a.peers.filter((p) => p.id !== m.peer.id), m.peer];
          } else if (m.type === "signal") {
            const pc = a.pcs.find((p) => p.to === m.from && !p.closed);
            if (m.data.sdp?.type === "answer") {
              a.answers++;
              if (pc) await pc.pc.setRemoteDescription(m.data.sdp).catch(() => {});
            } else if (m.data.sdp?.type === "offer") {
              a.offersFromVictim++;
            } else if (m.data.candidate && pc) {
              await pc.pc.addIceCandidate(m.data.candidate).catch(() => {});
            }
          }
        };
        /** A receive-only offer (audio and video) to `to`; earlier ones to it are closed. */
        a.offer = async (to) => {
          for (const p of a.pcs.filter((p) => p.to === to)) {
            p.closed = true;
            p.pc.close();
          }
          const pc = new RTCPeerConnection();
          pc.addTransceiver("audio", { direction: "recvonly" });
          pc.addTransceiver("video", { direction: "recvonly" });
          pc.onicecandidate = (e) =>
            a.send({ type: "signal", to, data: { candidate: e.candidate ? e.candidate.toJSON() : null } });
          a.pcs.push({ to, pc, closed: false });
          const offer = await pc.createOffer();
          await pc.setLocalDescription(offer);
          a.send({ type: "signal", to, data: { sdp: { type: "offer", sdp: offer.sdp } } });
        };
        /** Video frames decoded from every open connection. */
        a.frames = async () => {
          let n = 0;
          for (const p of a.pcs.filter((p) => !p.closed)) {
            const report = await p.pc.getStats();
            report.forEach((s) => {
              if (s.type === "inbound-rtp" && s.kind === "video") n += s.framesDecoded ?? 0;
            });
          }
          return n;
        };
      }),
    { wsUrl, room, name },
  );
  return {
    page,
    idOf: (peerName) => page.evaluate((n) => window.attack.peers.find((p) => p.name === n)?.id ?? null, peerName),
    self: () => page.evaluate(() => window.attack.self),
    send: (m) => page.evaluate((m) => window.attack.send(m), m),
    offer: (to) => page.evaluate((to) => window.attack.offer(to), to),
    answers: () => page.evaluate(() => window.attack.answers),
    offersFromVictim: () => page.evaluate(() => window.attack.offersFromVictim),
    frames: () => page.evaluate(() => window.attack.frames()),
    close: () => context.close(),
  };
}

/** Watches the attacker for `ms`: answers received since `answersBefore`, and frames decoded (both should stay 0). */
async function watch(a, answersBefore, ms = WATCH_MS) {
  await new Promise((r) => setTimeout(r, ms));
  return { answers: (await a.answers()) - answersBefore, frames: await a.frames() };
}

/** Waits until the attacker's offer is answered and it decodes advancing video. */
async function decodes(a) {
  const until = Date.now() + TIMEOUT;
  let first = null;
  while (Date.now() < until) {
    const frames = await a.frames();
    if ((await a.answers()) > 0 && frames > 0) {
      if (first === null) first = frames;
      else if (frames > first) return frames;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error("the control offer was not answered with decodable video");
}

/** The attack against one victim: outsider, then control, then left-the-call. */
async function attackVictim(label, a, victimId, victimProcessed) {
  // 1. An outsider (never sent call_join) offers.
  const answersBefore = await a.answers();
  await a.offer(victimId);
  const linked = (await victimProcessed?.("probe-outsider")) ?? false;
  const outsider = await watch(a, answersBefore);
  row(
    `outsider's receive-only offer to a ${label} in a call`,
    "not answered, no frame",
    `${linked ? "the victim opened a link; " : ""}${outsider.answers} answers, ${outsider.frames} frames decoded in ${WATCH_MS / 1000} s`,
    !linked && outsider.answers === 0 && outsider.frames === 0,
  );
  // 2. Control: the same attacker joins the call; the same kind of offer works.
  await a.send({ type: "call_join", video: false });
  await a.offer(victimId);
  let control = 0;
  try {
    control = await decodes(a);
  } catch {
    control = 0;
  }
  row(
    `control: the same offer once in the call (${label})`,
    "answered, video decoded",
    control > 0 ? `${control} frames decoded` : "nothing decoded",
    control > 0,
  );
  // 3. The attacker leaves the call and offers again.
  await a.send({ type: "call_leave" });
  const offersBefore = await a.offersFromVictim();
  const answersBeforeLeft = await a.answers();
  await a.offer(victimId);
  const linkedAgain = (await victimProcessed?.("probe-left")) ?? false;
  const left = await watch(a, answersBeforeLeft);
  const offersAfter = (await a.offersFromVictim()) - offersBefore;
  row(
    `offer from a member who left the call, to a ${label}`,
    "not answered, no frame, not offered to",
    `${linkedAgain ? "the victim opened a link; " : ""}${left.answers} answers, ${left.frames} frames on the new connection, ${offersAfter} offers from the victim`,
    !linkedAgain && left.answers === 0 && left.frames === 0 && offersAfter === 0,
  );
}

let failed = false;
let peer = null;
try {
  console.log(`attack: huddle-server on ${base}, ${await browser.version()}`);

  // Victim 1: the browser UI, in a call on its own.
  const context = await browser.newContext({ permissions: ["camera", "microphone"] });
  const ada = await context.newPage();
  await ada.goto(`${base}/`);
  await ada.getByLabel("Your name").fill("Ada");
  await ada.getByLabel("Room", { exact: true }).fill("boardroom");
  await ada.getByRole("button", { name: "Join room" }).click();
  await ada.getByTestId("connection").filter({ hasText: "Connected" }).waitFor({ timeout: TIMEOUT });
  await startCall(ada);
  await waitFor(ada, () => window.huddle.state().inCall && window.huddle.state().local.stream, null, {
    timeout: TIMEOUT,
  });
  const mallory = await attacker("boardroom", "Mallory");
  const adaId = await mallory.idOf("Ada");
  // The victim handles messages in the room's order: once it shows a chat
  // line the attacker sent after its offer, it has acted on the offer.
  const adaProcessed = async (text) => {
    await mallory.send({ type: "chat", text });
    await ada.getByTestId("message").filter({ hasText: text }).first().waitFor({ timeout: TIMEOUT });
    // Whether it opened a link to the attacker.
    return ada.evaluate((id) => id in window.huddle.state().remote, await mallory.self());
  };
  await attackVictim("browser member", mallory, adaId, adaProcessed);
  await mallory.close();

  // Victim 2: a native huddle-peer, in a call on its own.
  peer = spawn(
    peerBin,
    ["--server", wsUrl, "--room", "lab", "--name", "Native", "--duration", "120s", "--udp", "127.0.0.1:0"],
    {
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  const eve = await attacker("lab", "Eve");
  const nativeId = await waitFor(
    eve.page,
    () => window.attack.peers.find((p) => p.name === "Native" && p.in_call)?.id,
    null,
    { timeout: TIMEOUT },
  ).catch(() => null);
  if (!nativeId) throw new Error("huddle-peer never joined the call");
  await attackVictim("huddle-peer", eve, nativeId, null);
  await eve.close();
} catch (error) {
  failed = true;
  console.error(error);
} finally {
  if (peer) await stop(peer, "SIGKILL");
  await browser.close();
  await stop(server);
}

const width = Math.max(...rows.map((r) => r.attack.length), 6);
console.log(`\n${"attack".padEnd(width)} | expected | observed`);
for (const r of rows) console.log(`${r.attack.padEnd(width)} | ${r.expected} | ${r.ok ? "" : "FAIL: "}${r.observed}`);
const bad = rows.filter((r) => !r.ok).length;
console.log(`attack: ${rows.length - bad}/${rows.length} rows as expected`);
process.exit(failed || bad > 0 ? 1 : 0);
